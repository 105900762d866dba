// SPDX-License-Identifier: GPL-2.0
/*
 * Per-netns sysctls: net.mpbal.strategy (by name), available_strategies
 * (read-only) and the integer knobs whose names, bounds and defaults the Rust
 * state gives in struct mpbal_sysctl_conf; and net.mpbal.conf.DEV.*.
 */

#include <kunit/visibility.h>
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/if.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysctl.h>
#include <net/net_namespace.h>

#include "../../include/mpbal.h"
#include "helpers.h"

/* Space separated, in id order, like tcp_available_congestion_control. */
static char strategy_names[128];

int mpbal_strategy_names_build(const struct mpbal_ops *ops)
{
	const char *name;
	size_t len, used = 0;
	int id;

	for (id = 0; (name = ops->strategy_name(id, &len)); id++) {
		if (used + !!id + len >= sizeof(strategy_names))
			return -ENAMETOOLONG;
		if (id)
			strategy_names[used++] = ' ';
		memcpy(strategy_names + used, name, len);
		used += len;
	}
	strategy_names[used] = '\0';
	return 0;
}

/* Writes need CAP_NET_ADMIN over the netns, whatever the file mode says. */
static int check_admin(const struct net *net, int write)
{
	if (write && !ns_capable(net->user_ns, CAP_NET_ADMIN))
		return -EPERM;
	return 0;
}

static int proc_strategy(const struct ctl_table *table, int write,
			 void *buffer, size_t *lenp, loff_t *ppos)
{
	const struct mpbal_ops *ops = mpbal_ops_get();
	struct mpbal_sysctl_conf *conf = table->data;
	char name[MPBAL_STRATEGY_NAME_MAX] = "?";
	struct ctl_table tmp = {
		.data = name,
		.maxlen = sizeof(name),
	};
	const char *n;
	size_t len;
	int err, id;

	err = check_admin(conf->net, write);
	if (err)
		return err;
	if (!write) {
		n = ops->strategy_name(READ_ONCE(conf->strategy), &len);
		if (n) {
			len = min(len, sizeof(name) - 1);
			memcpy(name, n, len);
			name[len] = '\0';
		}
		return proc_dostring(&tmp, write, buffer, lenp, ppos);
	}
	/* Whole writes only: a continued write would commit half a name. */
	if (*ppos || *lenp >= sizeof(name))
		return -EINVAL;
	id = ops->strategy_parse(buffer, *lenp);
	if (id < 0)
		return -EINVAL;
	WRITE_ONCE(conf->strategy, id);
	*ppos += *lenp;
	mpbal_dwork_kick(conf->kick_work);
	return 0;
}

static int proc_available(const struct ctl_table *table, int write,
			  void *buffer, size_t *lenp, loff_t *ppos)
{
	struct ctl_table tmp = {
		.data = strategy_names,
		.maxlen = sizeof(strategy_names),
	};

	return write ? -EPERM : proc_dostring(&tmp, 0, buffer, lenp, ppos);
}

/*
 * The numeric knobs: only the netns admin writes, @handler checks the
 * value against @min and @max, and a successful write kicks the work.
 */
static int proc_bounded(const struct ctl_table *table, int write, void *buffer,
			size_t *lenp, loff_t *ppos, const struct net *net,
			struct mpbal_dwork *kick, proc_handler *handler,
			const void *min, const void *max)
{
	struct ctl_table tmp = *table;
	int err = check_admin(net, write);

	if (err)
		return err;
	tmp.extra1 = (void *)min;
	tmp.extra2 = (void *)max;
	err = handler(&tmp, write, buffer, lenp, ppos);
	if (!err && write)
		mpbal_dwork_kick(kick);
	return err;
}

/* extra1 = the knob (bounds), extra2 = conf. */
static int proc_conf_int(const struct ctl_table *table, int write,
			 void *buffer, size_t *lenp, loff_t *ppos)
{
	struct mpbal_sysctl_int *knob = table->extra1;
	struct mpbal_sysctl_conf *conf = table->extra2;

	return proc_bounded(table, write, buffer, lenp, ppos, conf->net, conf->kick_work,
			    proc_dointvec_minmax, &knob->min, &knob->max);
}

static const struct ctl_table strategy_entries[] = {
	{
		.procname = "strategy",
		.maxlen = MPBAL_STRATEGY_NAME_MAX,
		.mode = 0644,
		.proc_handler = proc_strategy,
	},
	{
		.procname = "available_strategies",
		.maxlen = sizeof(strategy_names),
		.mode = 0444,
		.proc_handler = proc_available,
	},
};

int mpbal_sysctl_register(struct net *net, struct mpbal_sysctl_conf *conf,
			  struct ctl_table_header **out)
{
	size_t n = ARRAY_SIZE(strategy_entries) + conf->nr_ints;
	struct ctl_table_header *hdr;
	struct ctl_table *t;
	u32 i;

	if (conf->nr_ints > MPBAL_SYSCTL_MAX_INTS)
		return -EINVAL;
	t = kcalloc(n, sizeof(*t), GFP_KERNEL_ACCOUNT);
	if (!t)
		return -ENOMEM;
	memcpy(t, strategy_entries, sizeof(strategy_entries));
	t[0].data = conf;
	for (i = 0; i < conf->nr_ints; i++) {
		struct ctl_table *e = &t[ARRAY_SIZE(strategy_entries) + i];
		struct mpbal_sysctl_int *knob = &conf->ints[i];

		e->procname = knob->procname;
		e->data = &knob->value;
		e->maxlen = sizeof(int);
		e->mode = 0644;
		e->proc_handler = proc_conf_int;
		e->extra1 = knob;
		e->extra2 = conf;
	}
	hdr = register_net_sysctl_sz(net, "net/mpbal", t, n);
	if (!hdr) {
		kfree(t);
		return -ENOMEM;
	}
	*out = hdr;
	return 0;
}

void mpbal_sysctl_unregister(struct ctl_table_header *hdr)
{
	const struct ctl_table *t = hdr->ctl_table_arg;

	unregister_net_sysctl_table(hdr);
	kfree(t);
}

/*
 * net.mpbal.conf.DEV.capacity: any unsigned long is valid, so
 * proc_doulongvec_minmax() gets no bounds.
 */
static int proc_capacity(const struct ctl_table *table, int write,
			 void *buffer, size_t *lenp, loff_t *ppos)
{
	struct mpbal_devconf *conf = table->extra2;

	return proc_bounded(table, write, buffer, lenp, ppos, conf->net, conf->kick_work,
			    proc_doulongvec_minmax, NULL, NULL);
}

static const int zero;
static const int one = 1;

/* net.mpbal.conf.DEV.uplink_id: 0 to uplink_id_max. */
static int proc_uplink_id(const struct ctl_table *table, int write,
			  void *buffer, size_t *lenp, loff_t *ppos)
{
	struct mpbal_devconf *conf = table->extra2;

	return proc_bounded(table, write, buffer, lenp, ppos, conf->net, conf->kick_work,
			    proc_dointvec_minmax, &zero, &conf->uplink_id_max);
}

/*
 * net.mpbal.conf.DEV.{down,tier}: the value is parsed aside and swapped in,
 * so that each change reaches ops->dev_admin exactly once however writers
 * race; rejected writes change nothing. Rust applies it before the write
 * returns (and the kick makes the worker check again after).
 */
static int proc_admin(const struct ctl_table *table, int write, void *buffer,
		      size_t *lenp, loff_t *ppos, const int *min, const int *max,
		      bool is_down)
{
	struct mpbal_devconf *conf = table->extra2;
	int *value = table->data;
	int val = READ_ONCE(*value), old, event;
	struct ctl_table tmp = *table;
	void *state;
	int err = check_admin(conf->net, write);

	if (err)
		return err;
	tmp.data = &val;
	tmp.extra1 = (void *)min;
	tmp.extra2 = (void *)max;
	err = proc_dointvec_minmax(&tmp, write, buffer, lenp, ppos);
	if (err || !write)
		return err;
	old = xchg(value, val);
	if (old != val) {
		if (is_down)
			event = val ? MPBAL_ADMIN_DOWN : MPBAL_ADMIN_UP;
		else
			event = MPBAL_ADMIN_TIER;
		state = mpbal_net_state(conf->net);
		if (state)
			mpbal_ops_get()->dev_admin(state, conf, event);
	}
	mpbal_dwork_kick(conf->kick_work);
	return 0;
}

/* net.mpbal.conf.DEV.down: 0 or 1. */
static int proc_down(const struct ctl_table *table, int write, void *buffer,
		     size_t *lenp, loff_t *ppos)
{
	return proc_admin(table, write, buffer, lenp, ppos, &zero, &one, true);
}

/* net.mpbal.conf.DEV.tier: 1 to tier_max. */
static int proc_tier(const struct ctl_table *table, int write, void *buffer,
		     size_t *lenp, loff_t *ppos)
{
	struct mpbal_devconf *conf = table->extra2;

	return proc_admin(table, write, buffer, lenp, ppos, &one,
			  &conf->tier_max, false);
}

static const struct ctl_table devconf_template[] = {
	{
		.procname = "capacity",
		.maxlen = sizeof(unsigned long),
		.mode = 0644,
		.proc_handler = proc_capacity,
	},
	{
		.procname = "uplink_id",
		.maxlen = sizeof(int),
		.mode = 0644,
		.proc_handler = proc_uplink_id,
	},
	{
		.procname = "down",
		.maxlen = sizeof(int),
		.mode = 0644,
		.proc_handler = proc_down,
	},
	{
		.procname = "tier",
		.maxlen = sizeof(int),
		.mode = 0644,
		.proc_handler = proc_tier,
	},
};

int mpbal_devconf_register(struct net *net, const char *ifname,
			   struct mpbal_devconf *conf, struct ctl_table_header **out)
{
	char path[sizeof("net/mpbal/conf/") + IFNAMSIZ];
	struct ctl_table_header *hdr;
	struct ctl_table *t;

	t = kmemdup(devconf_template, sizeof(devconf_template), GFP_KERNEL_ACCOUNT);
	if (!t)
		return -ENOMEM;
	t[0].data = &conf->capacity;
	t[0].extra2 = conf;
	t[1].data = &conf->uplink_id;
	t[1].extra2 = conf;
	t[2].data = &conf->down;
	t[2].extra2 = conf;
	t[3].data = &conf->tier;
	t[3].extra2 = conf;
	snprintf(path, sizeof(path), "net/mpbal/conf/%s", ifname);
	hdr = register_net_sysctl_sz(net, path, t, ARRAY_SIZE(devconf_template));
	if (!hdr) {
		kfree(t);
		return -ENOMEM;
	}
	*out = hdr;
	return 0;
}

void mpbal_devconf_unregister(struct ctl_table_header *hdr)
{
	mpbal_sysctl_unregister(hdr);
}

#if IS_ENABLED(CONFIG_KUNIT)
/* For mpbal_kunit.ko: drive the real strategy handler with a kernel buffer. */
int mpbal_sysctl_strategy_write(struct mpbal_sysctl_conf *conf,
				const char *buf, size_t len)
{
	struct ctl_table t = strategy_entries[0];
	char copy[MPBAL_STRATEGY_NAME_MAX] = {};
	loff_t pos = 0;

	if (len > sizeof(copy))
		return -EINVAL;
	memcpy(copy, buf, len);
	t.data = conf;
	return proc_strategy(&t, 1, copy, &len, &pos);
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_sysctl_strategy_write);
#endif
