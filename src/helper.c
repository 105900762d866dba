// SPDX-License-Identifier: GPL-2.0
/*
 * mpbal C helper: the glue Rust-for-Linux 6.12 cannot express.
 *
 * Module parameters, pernet operations, sysctl tables, netfilter hook ops,
 * FIB and netdevice notifiers, delayed work, per-CPU memory, and the static
 * inlines of the networking headers. No policy lives here: every decision is
 * made in Rust (src/policy/), which calls these through src/sys/.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ethtool.h>
#include <linux/inetdevice.h>
#include <linux/jhash.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/netdevice.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/skbuff.h>
#include <linux/sysctl.h>
#include <linux/workqueue.h>
#include <kunit/test.h>
#include <net/fib_notifier.h>
#include <net/ip.h>
#include <net/ip_fib.h>
#include <net/net_namespace.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_conntrack_ecache.h>
#include <net/netns/generic.h>
#include <net/route.h>

#include "../include/mpbal.h"

/* ------------------------------------------------------------------ */
/* Module parameters                                                   */

static int strategy_default = 2;	/* session; ids from mpbal_rust_strategy_parse */
static u32 ct_mark_mask = 0xffff0000;
static u32 route_table_size = 1024;
static bool manage_hash_policy = true;

static void print_allowed_strategies(const char *bad)
{
	/* A sysfs write usually ends in a newline: keep the message one line. */
	int len = strcspn(bad, "\n");
	const char *n[4];
	int i;

	for (i = 0; i < ARRAY_SIZE(n); i++)
		n[i] = mpbal_rust_strategy_name(i);
	pr_err("invalid strategy '%.*s': allowed are %s, %s, %s, %s\n",
	       len, bad, n[0], n[1], n[2], n[3]);
}

static int param_set_strategy(const char *val, const struct kernel_param *kp)
{
	int id = mpbal_rust_strategy_parse(val, strlen(val));

	if (id < 0) {
		print_allowed_strategies(val);
		return -EINVAL;
	}
	WRITE_ONCE(strategy_default, id);
	return 0;
}

static int param_get_strategy(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n",
			  mpbal_rust_strategy_name(READ_ONCE(strategy_default)));
}

static const struct kernel_param_ops strategy_param_ops = {
	.set = param_set_strategy,
	.get = param_get_strategy,
};
module_param_cb(strategy, &strategy_param_ops, NULL, 0644);
MODULE_PARM_DESC(strategy,
		 "Strategy of new network namespaces: route, packet, session (default) or bandwidth");

static int param_set_mask(const char *val, const struct kernel_param *kp)
{
	u32 mask;

	if (kstrtou32(val, 0, &mask) || !mpbal_rust_mark_mask_valid(mask)) {
		pr_err("invalid ct_mark_mask '%s': need one contiguous run of set bits, e.g. 0xffff0000\n",
		       val);
		return -EINVAL;
	}
	*(u32 *)kp->arg = mask;
	return 0;
}

static const struct kernel_param_ops mask_param_ops = {
	.set = param_set_mask,
	.get = param_get_hexint,
};
module_param_cb(ct_mark_mask, &mask_param_ops, &ct_mark_mask, 0444);
MODULE_PARM_DESC(ct_mark_mask,
		 "ct->mark bits holding a connection's uplink ifindex (default 0xffff0000)");

static int param_set_table_size(const char *val, const struct kernel_param *kp)
{
	u32 n;

	if (kstrtou32(val, 0, &n) || !is_power_of_2(n) || n < 16 || n > 65536) {
		pr_err("invalid route_table_size '%s': need a power of two from 16 to 65536\n",
		       val);
		return -EINVAL;
	}
	*(u32 *)kp->arg = n;
	return 0;
}

static const struct kernel_param_ops table_size_param_ops = {
	.set = param_set_table_size,
	.get = param_get_uint,
};
module_param_cb(route_table_size, &table_size_param_ops, &route_table_size, 0444);
MODULE_PARM_DESC(route_table_size,
		 "Per-destination entries per netns for the route strategy (default 1024)");

module_param(manage_hash_policy, bool, 0644);
MODULE_PARM_DESC(manage_hash_policy,
		 "Set net.ipv4.fib_multipath_hash_policy=1 where equalize routes exist and restore it (default Y)");

int mpbal_param_strategy(void) { return READ_ONCE(strategy_default); }
u32 mpbal_param_ct_mark_mask(void) { return ct_mark_mask; }
u32 mpbal_param_route_table_size(void) { return route_table_size; }
bool mpbal_param_manage_hash_policy(void) { return READ_ONCE(manage_hash_policy); }

/* ------------------------------------------------------------------ */
/* Pernet operations: one Rust state per netns, kept in net_generic.   */

static unsigned int mpbal_net_id __read_mostly;

static int __net_init mpbal_net_init(struct net *net)
{
	void *state = NULL;
	int err = mpbal_rust_net_init(net, &state);

	if (err)
		return err;
	WRITE_ONCE(*(void **)net_generic(net, mpbal_net_id), state);
	return 0;
}

static void __net_exit mpbal_net_exit(struct net *net)
{
	void **slot = net_generic(net, mpbal_net_id);
	void *state = *slot;

	WRITE_ONCE(*slot, NULL);
	if (state)
		mpbal_rust_net_exit(state);
}

static struct pernet_operations mpbal_net_ops = {
	.init = mpbal_net_init,
	.exit = mpbal_net_exit,
	.id = &mpbal_net_id,
	.size = sizeof(void *),
};

int mpbal_pernet_register(void) { return register_pernet_subsys(&mpbal_net_ops); }
void mpbal_pernet_unregister(void) { unregister_pernet_subsys(&mpbal_net_ops); }

void *mpbal_net_state(const struct net *net)
{
	return READ_ONCE(*(void **)net_generic(net, mpbal_net_id));
}

u32 mpbal_net_inum(const struct net *net) { return net->ns.inum; }

/* ------------------------------------------------------------------ */
/* Netdevice notifier                                                   */

static int mpbal_netdev_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	void *state = mpbal_net_state(dev_net(dev));
	int ev;

	switch (event) {
	case NETDEV_REGISTER:
		ev = MPBAL_NETDEV_REGISTER;
		break;
	case NETDEV_UNREGISTER:
		ev = MPBAL_NETDEV_UNREGISTER;
		break;
	case NETDEV_CHANGENAME:
		ev = MPBAL_NETDEV_CHANGENAME;
		break;
	case NETDEV_UP:
	case NETDEV_CHANGE:
		ev = MPBAL_NETDEV_CHANGE;
		break;
	default:
		return NOTIFY_DONE;
	}
	if (state)
		mpbal_rust_netdev_event(state, ev, dev);
	return NOTIFY_DONE;
}

static struct notifier_block mpbal_netdev_nb = {
	.notifier_call = mpbal_netdev_event,
};

int mpbal_netdev_notifier_register(void)
{
	return register_netdevice_notifier(&mpbal_netdev_nb);
}

void mpbal_netdev_notifier_unregister(void)
{
	unregister_netdevice_notifier(&mpbal_netdev_nb);
}

/* ------------------------------------------------------------------ */
/* Sysctls                                                              */

/* Writes need CAP_NET_ADMIN over the netns, whatever the file mode says. */
static int check_admin(const struct mpbal_sysctl_conf *conf, int write)
{
	if (write && !ns_capable(conf->net->user_ns, CAP_NET_ADMIN))
		return -EPERM;
	return 0;
}

/* Tell the netns's worker that configuration changed (conntrack, policy). */
static void conf_changed(const struct mpbal_sysctl_conf *conf)
{
	if (conf->kick_work)
		mpbal_dwork_schedule(conf->kick_work, 0);
}

static int proc_strategy(const struct ctl_table *table, int write,
			 void *buffer, size_t *lenp, loff_t *ppos)
{
	struct mpbal_sysctl_conf *conf = table->data;
	char name[32];
	struct ctl_table tmp = {
		.data = name,
		.maxlen = sizeof(name),
	};
	int err, id;

	err = check_admin(conf, write);
	if (err)
		return err;
	if (!write) {
		strscpy(name, mpbal_rust_strategy_name(READ_ONCE(conf->strategy)),
			sizeof(name));
		return proc_dostring(&tmp, write, buffer, lenp, ppos);
	}
	/* Whole writes only: a continued write would commit half a name. */
	if (*ppos || *lenp >= sizeof(name))
		return -EINVAL;
	id = mpbal_rust_strategy_parse(buffer, *lenp);
	if (id < 0)
		return -EINVAL;
	WRITE_ONCE(conf->strategy, id);
	*ppos += *lenp;
	conf_changed(conf);
	return 0;
}

/* Read-only: the strategy names, space separated, in id order. */
static int proc_available_strategies(const struct ctl_table *table, int write,
				     void *buffer, size_t *lenp, loff_t *ppos)
{
	char names[128] = "";
	struct ctl_table tmp = {
		.data = names,
		.maxlen = sizeof(names),
	};
	const char *n;
	int i;

	if (write)
		return -EPERM;
	for (i = 0; (n = mpbal_rust_strategy_name(i))[0] != '?'; i++) {
		if (i)
			strlcat(names, " ", sizeof(names));
		strlcat(names, n, sizeof(names));
	}
	return proc_dostring(&tmp, write, buffer, lenp, ppos);
}

struct int_bounds {
	int min, max;
};

static const struct int_bounds route_idle_timeout_bounds = {
	MPBAL_ROUTE_IDLE_TIMEOUT_MIN, MPBAL_ROUTE_IDLE_TIMEOUT_MAX
};
static const struct int_bounds bw_interval_ms_bounds = {
	MPBAL_BW_INTERVAL_MS_MIN, MPBAL_BW_INTERVAL_MS_MAX
};
static const struct int_bounds bw_ewma_log_bounds = { 0, MPBAL_BW_EWMA_LOG_MAX };

/* extra1 = bounds, extra2 = conf; proc_dointvec_minmax wants the bounds. */
static int proc_conf_int(const struct ctl_table *table, int write,
			 void *buffer, size_t *lenp, loff_t *ppos)
{
	const struct int_bounds *b = table->extra1;
	struct mpbal_sysctl_conf *conf = table->extra2;
	struct ctl_table tmp = *table;
	int err = check_admin(conf, write);

	if (err)
		return err;
	tmp.extra1 = (void *)&b->min;
	tmp.extra2 = (void *)&b->max;
	err = proc_dointvec_minmax(&tmp, write, buffer, lenp, ppos);
	if (!err && write)
		conf_changed(conf);
	return err;
}

static const struct ctl_table mpbal_sysctl_template[] = {
	{
		.procname = "strategy",
		.maxlen = 32,
		.mode = 0644,
		.proc_handler = proc_strategy,
	},
	{
		.procname = "available_strategies",
		.maxlen = 128,
		.mode = 0444,
		.proc_handler = proc_available_strategies,
	},
	{
		.procname = "route_idle_timeout",
		.maxlen = sizeof(int),
		.mode = 0644,
		.proc_handler = proc_conf_int,
		.extra1 = (void *)&route_idle_timeout_bounds,
	},
	{
		.procname = "bw_interval_ms",
		.maxlen = sizeof(int),
		.mode = 0644,
		.proc_handler = proc_conf_int,
		.extra1 = (void *)&bw_interval_ms_bounds,
	},
	{
		.procname = "bw_ewma_log",
		.maxlen = sizeof(int),
		.mode = 0644,
		.proc_handler = proc_conf_int,
		.extra1 = (void *)&bw_ewma_log_bounds,
	},
};

struct ctl_table_header *mpbal_sysctl_register(struct net *net,
					       struct mpbal_sysctl_conf *conf)
{
	struct ctl_table_header *hdr;
	struct ctl_table *t;
	int i;

	t = kmemdup(mpbal_sysctl_template, sizeof(mpbal_sysctl_template),
		    GFP_KERNEL);
	if (!t)
		return NULL;
	t[0].data = conf;
	t[2].data = &conf->route_idle_timeout;
	t[3].data = &conf->bw_interval_ms;
	t[4].data = &conf->bw_ewma_log;
	for (i = 2; i < ARRAY_SIZE(mpbal_sysctl_template); i++)
		t[i].extra2 = conf;
	hdr = register_net_sysctl_sz(net, "net/mpbal", t,
				     ARRAY_SIZE(mpbal_sysctl_template));
	if (!hdr)
		kfree(t);
	return hdr;
}

void mpbal_sysctl_unregister(struct ctl_table_header *hdr)
{
	const struct ctl_table *t = hdr->ctl_table_arg;

	unregister_net_sysctl_table(hdr);
	kfree(t);
}

/*
 * net.mpbal.conf.DEV.capacity. extra2 carries the netns for the capability
 * check; proc_doulongvec_minmax() must not see it (it reads extra1/extra2 as
 * bounds), so it gets a copy without bounds: any unsigned long is valid.
 */
static int proc_capacity(const struct ctl_table *table, int write,
			 void *buffer, size_t *lenp, loff_t *ppos)
{
	struct net *net = table->extra2;
	struct ctl_table tmp = *table;

	if (write && !ns_capable(net->user_ns, CAP_NET_ADMIN))
		return -EPERM;
	tmp.extra1 = NULL;
	tmp.extra2 = NULL;
	return proc_doulongvec_minmax(&tmp, write, buffer, lenp, ppos);
}

static const struct ctl_table mpbal_devconf_template[] = {
	{
		.procname = "capacity",
		.maxlen = sizeof(unsigned long),
		.mode = 0644,
		.proc_handler = proc_capacity,
	},
};

struct ctl_table_header *mpbal_devconf_register(struct net *net,
						const char *ifname,
						unsigned long *capacity)
{
	char path[sizeof("net/mpbal/conf/") + IFNAMSIZ];
	struct ctl_table_header *hdr;
	struct ctl_table *t;

	t = kmemdup(mpbal_devconf_template, sizeof(mpbal_devconf_template),
		    GFP_KERNEL);
	if (!t)
		return NULL;
	t[0].data = capacity;
	t[0].extra2 = net;
	snprintf(path, sizeof(path), "net/mpbal/conf/%s", ifname);
	hdr = register_net_sysctl_sz(net, path, t,
				     ARRAY_SIZE(mpbal_devconf_template));
	if (!hdr)
		kfree(t);
	return hdr;
}

void mpbal_devconf_unregister(struct ctl_table_header *hdr)
{
	mpbal_sysctl_unregister(hdr);
}

/* ------------------------------------------------------------------ */
/* /proc/net/mpbal                                                      */

/* single_open_net() puts the netns in m->private; our state is the PDE data. */
static void *show_state(struct seq_file *m)
{
	return pde_data(file_inode(m->file));
}

static int show_stats(struct seq_file *m, void *v)
{
	return mpbal_rust_show_stats(show_state(m), m);
}

static int show_uplinks(struct seq_file *m, void *v)
{
	return mpbal_rust_show_uplinks(show_state(m), m);
}

struct proc_dir_entry *mpbal_proc_create(struct net *net, void *state)
{
	struct proc_dir_entry *dir = proc_net_mkdir(net, "mpbal", net->proc_net);

	if (!dir)
		return NULL;
	if (!proc_create_net_single("stats", 0444, dir, show_stats, state) ||
	    !proc_create_net_single("uplinks", 0444, dir, show_uplinks, state)) {
		proc_remove(dir);
		return NULL;
	}
	return dir;
}

void mpbal_proc_remove(struct proc_dir_entry *dir)
{
	proc_remove(dir);
}

void mpbal_seq_write(struct seq_file *m, const char *buf, size_t len)
{
	seq_write(m, buf, len);
}

/* ------------------------------------------------------------------ */
/* Netfilter hooks                                                      */

/*
 * PRE_ROUTING: after conntrack, DNAT and every mangle or filter chain that may
 * set a mark, and before the route lookup in ip_rcv_finish().
 * LOCAL_OUT: after conntrack, DNAT and the mangle reroute, so ours stands.
 * POST_ROUTING: after SNAT, just before conntrack confirms the entry, so the
 * uplink stored in ct->mark is part of the NEW event conntrackd replicates.
 */
static const struct nf_hook_ops mpbal_nf_ops_template[] = {
	{
		.hook = mpbal_rust_hook_prerouting,
		.pf = NFPROTO_IPV4,
		.hooknum = NF_INET_PRE_ROUTING,
		.priority = NF_IP_PRI_LAST - 1,
	},
	{
		.hook = mpbal_rust_hook_local_out,
		.pf = NFPROTO_IPV4,
		.hooknum = NF_INET_LOCAL_OUT,
		.priority = NF_IP_PRI_LAST - 1,
	},
	{
		.hook = mpbal_rust_hook_postrouting,
		.pf = NFPROTO_IPV4,
		.hooknum = NF_INET_POST_ROUTING,
		.priority = NF_IP_PRI_CONNTRACK_CONFIRM - 1,
	},
};

void *mpbal_hooks_register(struct net *net, void *priv)
{
	struct nf_hook_ops *ops;
	int i, err;

	ops = kmemdup(mpbal_nf_ops_template, sizeof(mpbal_nf_ops_template),
		      GFP_KERNEL);
	if (!ops)
		return NULL;
	for (i = 0; i < ARRAY_SIZE(mpbal_nf_ops_template); i++)
		ops[i].priv = priv;
	err = nf_register_net_hooks(net, ops, ARRAY_SIZE(mpbal_nf_ops_template));
	if (err) {
		kfree(ops);
		return NULL;
	}
	return ops;
}

/*
 * nf_unregister_net_hooks() does not wait: a packet that already fetched the
 * old hook entries (under rcu_read_lock) can still be inside one of our
 * hooks with the state as priv. Wait for those before the caller frees
 * anything, and before the ops that the old entries still point to go.
 */
void mpbal_hooks_unregister(struct net *net, void *hooks)
{
	nf_unregister_net_hooks(net, hooks, ARRAY_SIZE(mpbal_nf_ops_template));
	synchronize_net();
	kfree(hooks);
}

/* Conntrack is only needed (and only costs) while the session strategy runs. */
int mpbal_conntrack_get(struct net *net)
{
	return nf_ct_netns_get(net, NFPROTO_IPV4);
}

void mpbal_conntrack_put(struct net *net)
{
	nf_ct_netns_put(net, NFPROTO_IPV4);
}

/* ------------------------------------------------------------------ */
/* FIB notifier                                                         */

struct mpbal_fib_nb {
	struct notifier_block nb;
	void *priv;
};

static bool fib_info_equalize(const struct fib_info *fi)
{
	return fib_info_num_path(fi) > 1 && (fi->fib_flags & RTM_F_EQUALIZE);
}

static int mpbal_fib_event(struct notifier_block *nb, unsigned long event,
			   void *ptr)
{
	struct mpbal_fib_nb *f = container_of(nb, struct mpbal_fib_nb, nb);
	struct fib_notifier_info *info = ptr;
	struct fib_entry_notifier_info *fen;
	struct mpbal_fib_route r = {};
	int i;

	if (info->family != AF_INET)
		return NOTIFY_DONE;
	if (event != FIB_EVENT_ENTRY_REPLACE && event != FIB_EVENT_ENTRY_APPEND &&
	    event != FIB_EVENT_ENTRY_DEL)
		return NOTIFY_DONE;

	fen = container_of(info, struct fib_entry_notifier_info, info);
	r.tb_id = fen->tb_id;
	r.dst = htonl(fen->dst);
	r.dst_len = fen->dst_len;
	if (event == FIB_EVENT_ENTRY_DEL) {
		mpbal_rust_fib_event(f->priv, MPBAL_FIB_DEL, &r);
		return NOTIFY_DONE;
	}
	r.equalize = fib_info_equalize(fen->fi);
	r.steerable = r.equalize && !fen->fi->nh &&
		      fib_info_num_path(fen->fi) <= MPBAL_MAX_NEXTHOPS;
	if (r.steerable) {
		r.nr_oifs = min_t(u32, fib_info_num_path(fen->fi),
				  MPBAL_MAX_NEXTHOPS);
		for (i = 0; i < r.nr_oifs; i++)
			r.oifs[i] = fib_info_nh(fen->fi, i)->fib_nh_oif;
	}
	mpbal_rust_fib_event(f->priv, MPBAL_FIB_REPLACE, &r);
	return NOTIFY_DONE;
}

static void mpbal_fib_dump_flush(struct notifier_block *nb)
{
	struct mpbal_fib_nb *f = container_of(nb, struct mpbal_fib_nb, nb);

	mpbal_rust_fib_flush(f->priv);
}

void *mpbal_fib_notifier_register(struct net *net, void *priv)
{
	struct mpbal_fib_nb *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return NULL;
	f->nb.notifier_call = mpbal_fib_event;
	f->priv = priv;
	if (register_fib_notifier(net, &f->nb, mpbal_fib_dump_flush, NULL)) {
		kfree(f);
		return NULL;
	}
	return f;
}

void mpbal_fib_notifier_unregister(struct net *net, void *handle)
{
	struct mpbal_fib_nb *f = handle;

	unregister_fib_notifier(net, &f->nb);
	kfree(f);
}

/* ------------------------------------------------------------------ */
/* Delayed work                                                          */

struct mpbal_dwork {
	struct delayed_work dw;
	void (*fn)(void *data);
	void *data;
};

static void mpbal_dwork_fn(struct work_struct *w)
{
	struct mpbal_dwork *d = container_of(to_delayed_work(w),
					     struct mpbal_dwork, dw);

	d->fn(d->data);
}

void *mpbal_dwork_create(void (*fn)(void *data), void *data)
{
	struct mpbal_dwork *d = kzalloc(sizeof(*d), GFP_KERNEL);

	if (!d)
		return NULL;
	INIT_DELAYED_WORK(&d->dw, mpbal_dwork_fn);
	d->fn = fn;
	d->data = data;
	return d;
}

void mpbal_dwork_schedule(void *work, unsigned int delay_ms)
{
	struct mpbal_dwork *d = work;

	mod_delayed_work(system_power_efficient_wq, &d->dw,
			 msecs_to_jiffies(delay_ms));
}

void mpbal_dwork_cancel_sync(void *work)
{
	struct mpbal_dwork *d = work;

	disable_delayed_work_sync(&d->dw);
}

void mpbal_dwork_destroy(void *work)
{
	kfree(work);
}

/* ------------------------------------------------------------------ */
/* Per-CPU memory                                                        */

void *mpbal_percpu_alloc(size_t size, size_t align)
{
	return (void __force *)__alloc_percpu(size, align);
}

void mpbal_percpu_free(void *pcpu)
{
	free_percpu((void __percpu __force *)pcpu);
}

void *mpbal_percpu_get_bh(void *pcpu)
{
	local_bh_disable();
	return this_cpu_ptr((void __percpu __force *)pcpu);
}

void mpbal_percpu_put_bh(void)
{
	local_bh_enable();
}

void *mpbal_percpu_ptr(void *pcpu, int cpu)
{
	return per_cpu_ptr((void __percpu __force *)pcpu, cpu);
}

int mpbal_cpu_next(int cpu) { return cpumask_next(cpu, cpu_possible_mask); }
int mpbal_nr_cpu_ids(void) { return nr_cpu_ids; }

/* ------------------------------------------------------------------ */
/* Packet path                                                           */

/* Copies what the strategies need out of a multipath fib_info. */
static int fill_route(const struct fib_result *res, struct mpbal_route *out)
{
	struct fib_info *fi = res->fi;
	unsigned int i, n;

	if (!fi || res->type != RTN_UNICAST || fib_info_num_path(fi) < 2)
		return MPBAL_ROUTE_NONE;
	if (!(fi->fib_flags & RTM_F_EQUALIZE))
		return MPBAL_ROUTE_MULTIPATH;
	n = fib_info_num_path(fi);
	if (fi->nh || n > MPBAL_MAX_NEXTHOPS)
		return MPBAL_ROUTE_UNSUPPORTED;

	out->key = (unsigned long)fi;
	out->nr_nexthops = n;
	for (i = 0; i < n; i++) {
		const struct fib_nh *nh = fib_info_nh(fi, i);

		out->nh[i].oif = nh->fib_nh_oif;
		out->nh[i].weight = nh->fib_nh_weight;
		out->nh[i].upper_bound = atomic_read(&nh->fib_nh_upper_bound);
		out->nh[i].flags = nh->fib_nh_flags;
	}
	return MPBAL_ROUTE_EQUALIZE;
}

/* ip_route_input_slow()'s early exits: what it never routes onwards. */
static bool input_routable(const struct sk_buff *skb,
			   const struct nf_hook_state *state)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct in_device *in_dev;

	if (!state->in || ipv4_is_multicast(iph->daddr) ||
	    ipv4_is_lbcast(iph->daddr) || ipv4_is_zeronet(iph->daddr))
		return false;
	/* ip_route_input_slow() drops what the device may not forward. */
	in_dev = __in_dev_get_rcu(state->in);
	return in_dev && IN_DEV_FORWARD(in_dev);
}

/* As ip_route_input_slow() builds its flow (no tunnel keys, no l3mdev). */
int mpbal_route_input(struct sk_buff *skb, const struct nf_hook_state *state,
		      struct mpbal_route *out)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct net *net = state->net;
	struct flowi4 fl4 = {};
	struct flow_keys flkeys;
	struct fib_result res;

	if (!input_routable(skb, state))
		return MPBAL_ROUTE_NONE;
	fl4.flowi4_iif = state->in->ifindex;
	fl4.flowi4_mark = skb->mark;
	fl4.flowi4_tos = iph->tos & INET_DSCP_MASK;
	fl4.flowi4_scope = RT_SCOPE_UNIVERSE;
	fl4.daddr = iph->daddr;
	fl4.saddr = iph->saddr;
	fl4.flowi4_uid = sock_net_uid(net, NULL);
	fib4_rules_early_flow_dissect(net, skb, &fl4, &flkeys);
	if (fib_lookup(net, &fl4, &res, 0))
		return MPBAL_ROUTE_NONE;
	return fill_route(&res, out);
}

/*
 * The inputs of mpbal_route_input()'s flow: everything but the uid, which is
 * the same for every forwarded packet of a netns, and the ports, which only
 * FIB rules with port matches read (then nothing is cached).
 */
int mpbal_route_input_key(struct sk_buff *skb, const struct nf_hook_state *state,
			  struct mpbal_flow_key *key)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct net *net = state->net;

	if (!input_routable(skb, state))
		return MPBAL_FLOW_NONE;
#ifdef CONFIG_IP_MULTIPLE_TABLES
	if (READ_ONCE(net->ipv4.fib_rules_require_fldissect))
		return MPBAL_FLOW_UNCACHED;
#endif
	key->genid = (u32)rt_genid_ipv4(net);
	/*
	 * The generation is read before the lookup the entry will hold, so a
	 * change that lands in between leaves the entry already stale.
	 */
	smp_rmb();
	key->daddr = (__force u32)iph->daddr;
	key->saddr = (__force u32)iph->saddr;
	key->iif = state->in->ifindex;
	key->mark = skb->mark;
	key->tos = iph->tos & INET_DSCP_MASK;
	return MPBAL_FLOW_KEY;
}

/* The flow ip_route_me_harder() would use, without the socket's oif. */
static void output_flow(struct sk_buff *skb, const struct nf_hook_state *state,
			struct flowi4 *fl4, struct flow_keys *flkeys)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct sock *sk = sk_to_full_sk(state->sk);

	memset(fl4, 0, sizeof(*fl4));
	fl4->daddr = iph->daddr;
	fl4->saddr = iph->saddr;
	fl4->flowi4_tos = iph->tos & INET_DSCP_MASK;
	fl4->flowi4_mark = skb->mark;
	fl4->flowi4_flags = (sk ? inet_sk_flowi_flags(sk) : 0) | FLOWI_FLAG_ANYSRC;
	fl4->flowi4_uid = sock_net_uid(state->net, sk);
	fib4_rules_early_flow_dissect(state->net, skb, fl4, flkeys);
}

int mpbal_route_output(struct sk_buff *skb, const struct nf_hook_state *state,
		       struct mpbal_route *out)
{
	struct sock *sk = sk_to_full_sk(state->sk);
	struct flow_keys flkeys;
	struct fib_result res;
	struct flowi4 fl4;

	/* A socket bound to a device has already chosen its uplink. */
	if (sk && sk->sk_bound_dev_if)
		return MPBAL_ROUTE_NONE;
	if (ipv4_is_multicast(ip_hdr(skb)->daddr) ||
	    ipv4_is_lbcast(ip_hdr(skb)->daddr))
		return MPBAL_ROUTE_NONE;
	output_flow(skb, state, &fl4, &flkeys);
	fl4.flowi4_iif = LOOPBACK_IFINDEX;
	fl4.flowi4_scope = RT_SCOPE_UNIVERSE;
	if (fib_lookup(state->net, &fl4, &res, 0))
		return MPBAL_ROUTE_NONE;
	return fill_route(&res, out);
}

/* ip_route_me_harder() with flowi4_oif = @oif: fib_select_path() then skips
 * hashing and fib_table_lookup() keeps only nexthops leaving by @oif.
 */
int mpbal_reroute_oif(struct sk_buff *skb, const struct nf_hook_state *state,
		      int oif)
{
	struct flow_keys flkeys;
	unsigned int hh_len;
	struct rtable *rt;
	struct flowi4 fl4;

	output_flow(skb, state, &fl4, &flkeys);
	fl4.flowi4_oif = oif;
	rt = ip_route_output_key(state->net, &fl4);
	if (IS_ERR(rt))
		return PTR_ERR(rt);
	if (rt->dst.error) {
		int err = rt->dst.error;

		ip_rt_put(rt);
		return err;
	}
	skb_dst_drop(skb);
	skb_dst_set(skb, &rt->dst);

	/* Change in oif may mean change in hh_len. */
	hh_len = skb_dst(skb)->dev->hard_header_len;
	if (skb_headroom(skb) < hh_len &&
	    pskb_expand_head(skb, HH_DATA_ALIGN(hh_len - skb_headroom(skb)),
			     0, GFP_ATOMIC))
		return -ENOMEM;
	return 0;
}

u32 mpbal_skb_daddr(const struct sk_buff *skb) { return (__force u32)ip_hdr(skb)->daddr; }

/* Per-flow entropy for the steered hash. skb_get_hash() would run the whole
 * flow dissector on every packet without a hash (veth, most software paths),
 * which costs more than the rest of the decision; addresses, protocol and
 * ports are all the dissector would feed the hash here anyway. A hash the
 * sender or device already set (TCP's sk_txhash, RSS) is reused.
 */
u32 mpbal_skb_entropy(struct sk_buff *skb)
{
	const struct iphdr *iph = ip_hdr(skb);
	__be32 ports = 0, buf;
	const __be32 *p;

	if (skb->l4_hash)
		return skb->hash;
	if (!ip_is_fragment(iph)) {
		switch (iph->protocol) {
		case IPPROTO_TCP:
		case IPPROTO_UDP:
		case IPPROTO_UDPLITE:
		case IPPROTO_SCTP:
		case IPPROTO_DCCP:
			p = skb_header_pointer(skb, iph->ihl * 4, sizeof(buf), &buf);
			if (p)
				ports = *p;
		}
	}
	return jhash_3words((__force u32)iph->saddr, (__force u32)iph->daddr,
			    (__force u32)ports ^ iph->protocol, 0);
}
u32 mpbal_skb_hash(const struct sk_buff *skb) { return skb->hash; }
u32 mpbal_skb_len(const struct sk_buff *skb) { return skb->len; }
u32 mpbal_skb_segs(const struct sk_buff *skb)
{
	return skb_is_gso(skb) ? skb_shinfo(skb)->gso_segs : 1;
}

void mpbal_skb_set_l4_hash(struct sk_buff *skb, u32 hash)
{
	skb_set_hash(skb, hash, PKT_HASH_TYPE_L4);
}

bool mpbal_skb_forwarded(const struct sk_buff *skb)
{
	return IPCB(skb)->flags & IPSKB_FORWARDED;
}

int mpbal_skb_dst_oif(const struct sk_buff *skb)
{
	const struct dst_entry *dst = skb_dst(skb);

	return dst && dst->dev ? dst->dev->ifindex : 0;
}

int mpbal_state_in_ifindex(const struct nf_hook_state *state)
{
	return state->in ? state->in->ifindex : 0;
}

int mpbal_state_out_ifindex(const struct nf_hook_state *state)
{
	return state->out ? state->out->ifindex : 0;
}

struct net *mpbal_state_net(const struct nf_hook_state *state) { return state->net; }

struct nf_conn *mpbal_skb_ct(const struct sk_buff *skb, bool *reply, bool *is_new)
{
	enum ip_conntrack_info ctinfo;
	struct nf_conn *ct = nf_ct_get(skb, &ctinfo);

	if (!ct)
		return NULL;
	*reply = CTINFO2DIR(ctinfo) == IP_CT_DIR_REPLY;
	*is_new = ctinfo == IP_CT_NEW;
	return ct;
}

u32 mpbal_ct_mark(const struct nf_conn *ct)
{
	return READ_ONCE(ct->mark);
}

void mpbal_ct_set_mark(struct nf_conn *ct, u32 mask, u32 value)
{
	u32 old = READ_ONCE(ct->mark);
	u32 new = (old & ~mask) | (value & mask);

	if (new != old) {
		WRITE_ONCE(ct->mark, new);
		nf_conntrack_event_cache(IPCT_MARK, ct);
	}
}

int mpbal_hash_policy(const struct net *net)
{
	return READ_ONCE(net->ipv4.sysctl_fib_multipath_hash_policy);
}

void mpbal_set_hash_policy(struct net *net, int policy)
{
	WRITE_ONCE(net->ipv4.sysctl_fib_multipath_hash_policy, policy);
}

/* ------------------------------------------------------------------ */
/* Devices and time                                                      */

bool mpbal_dev_tx_bytes(struct net *net, int ifindex, u64 *bytes, bool *up)
{
	struct rtnl_link_stats64 st;
	struct net_device *dev;
	bool found = false;

	rcu_read_lock();
	dev = dev_get_by_index_rcu(net, ifindex);
	if (dev) {
		dev_get_stats(dev, &st);
		*bytes = st.tx_bytes;
		*up = netif_running(dev) && netif_carrier_ok(dev);
		found = true;
	}
	rcu_read_unlock();
	return found;
}

bool mpbal_dev_name_by_index(struct net *net, int ifindex, char *buf)
{
	struct net_device *dev;
	bool found = false;

	rcu_read_lock();
	dev = dev_get_by_index_rcu(net, ifindex);
	if (dev) {
		strscpy(buf, dev->name, MPBAL_IFNAMSIZ);
		found = true;
	}
	rcu_read_unlock();
	return found;
}

int mpbal_dev_ifindex(const struct net_device *dev) { return dev->ifindex; }
struct net *mpbal_dev_net(const struct net_device *dev) { return dev_net(dev); }

void mpbal_dev_name(const struct net_device *dev, char *buf)
{
	strscpy(buf, dev->name, MPBAL_IFNAMSIZ);
}

u32 mpbal_dev_speed_mbps(struct net_device *dev)
{
	struct ethtool_link_ksettings ks;

	ASSERT_RTNL();
	if (__ethtool_get_link_ksettings(dev, &ks) ||
	    ks.base.speed == SPEED_UNKNOWN)
		return 0;
	return ks.base.speed;
}

u32 mpbal_now_secs(void) { return (u32)(jiffies / HZ); }
u64 mpbal_now_ms(void) { return ktime_get_ns() / NSEC_PER_MSEC; }

void mpbal_warn_ratelimited(const char *msg, size_t len)
{
	net_warn_ratelimited(KBUILD_MODNAME ": %.*s\n", (int)len, msg);
}

void mpbal_kunit_fail(struct kunit *test, const char *file, int line,
		      const char *msg, size_t len)
{
	KUNIT_FAIL(test, "%s:%d: %.*s", file, line, (int)len, msg);
}

struct sk_buff *mpbal_kunit_alloc_skb(void)
{
	return alloc_skb(0, GFP_KERNEL);
}

void mpbal_kunit_free_skb(struct sk_buff *skb)
{
	kfree_skb(skb);
}


/* For KUnit: drive the real strategy handler with a kernel buffer. */
int mpbal_kunit_strategy_write(struct mpbal_sysctl_conf *conf,
			       const char *buf, size_t len)
{
	struct ctl_table t = mpbal_sysctl_template[0];
	char copy[32] = {};
	loff_t pos = 0;

	if (len > sizeof(copy))
		return -EINVAL;
	memcpy(copy, buf, len);
	t.data = conf;
	return proc_strategy(&t, 1, copy, &len, &pos);
}
