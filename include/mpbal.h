/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C <-> Rust ABI of mpbal.
 *
 * bindgen reads this header (with the kernel's own bindgen flags, see Kbuild)
 * to produce src/bindings_generated.rs, so every signature on both sides is
 * checked by a compiler. It includes nothing but <linux/types.h>: kernel
 * objects are forward-declared and only handled by pointer on the Rust side,
 * so the bindings stay small and never clash with kernel::bindings.
 *
 * Rust calls the mpbal_* functions below; they live in src/helpers/, one file
 * per facility, and each is the C half of the wrapper of the same name in
 * src/sys/. C calls Rust only through the function pointers of struct
 * mpbal_ops, which src/sys/netns.rs fills with its trampolines.
 *
 * Conventions: functions that register or create something return 0 or a
 * negative errno and hand the object out through a pointer argument.
 * Nothing here makes a policy decision; src/policy/ does.
 */
#ifndef MPBAL_H
#define MPBAL_H

#include <linux/types.h>

struct ctl_table_header;
struct fib_info;
struct kunit;
struct mpbal_dwork;
struct mpbal_fib_nb;
struct net;
struct net_device;
struct nf_conn;
struct nf_hook_ops;
struct nf_hook_state;
struct proc_dir_entry;
struct seq_file;
struct sk_buff;

/* Nexthops copied per route; the core's MAX_NEXTHOPS (checked in Rust). */
#define MPBAL_MAX_NEXTHOPS 16

/* Longest interface name including NUL (IFNAMSIZ). */
#define MPBAL_IFNAMSIZ 16

/* Longest strategy name as written, including a newline and the NUL. */
#define MPBAL_STRATEGY_NAME_MAX 32

/* ---------------------------------------------------------------------- */
/* Callbacks into Rust (src/sys/netns.rs).                                 */

struct mpbal_fib_route;

enum mpbal_netdev_event {
	MPBAL_NETDEV_REGISTER = 1,
	MPBAL_NETDEV_UNREGISTER = 2,
	MPBAL_NETDEV_CHANGENAME = 3,
	MPBAL_NETDEV_CHANGE = 4,	/* NETDEV_UP or NETDEV_CHANGE */
};

/* What changed in net.mpbal.conf.DEV (ops->dev_admin). */
enum mpbal_admin_event {
	MPBAL_ADMIN_DOWN = 1,	/* down 0 -> 1 */
	MPBAL_ADMIN_UP = 2,	/* down 1 -> 0 */
	MPBAL_ADMIN_TIER = 3,	/* tier changed */
};

struct mpbal_devconf;

enum mpbal_fib_event_kind {
	MPBAL_FIB_REPLACE = 1,	/* this route now heads its prefix */
	MPBAL_FIB_DEL = 2,	/* the prefix is gone; the route is the deleted one */
};

struct mpbal_ops {
	/* Strategy id of a name as written (sysctl, parameter), or -EINVAL. */
	int (*strategy_parse)(const char *name, size_t len);
	/* Name of strategy @id (not NUL-terminated) and its length in *len;
	 * NULL past the last id. */
	const char *(*strategy_name)(int id, size_t *len);
	/* Logs that @name is not a strategy, naming the valid ones. */
	void (*strategy_invalid)(const char *name, size_t len);

	/*
	 * pernet init: the state of @net in *state (NULL: the netns is not
	 * balanced); never fails the netns. pre_exit stops what could still
	 * use the state (hooks, work) without waiting; exit, after the grace
	 * period the core runs in between, frees it.
	 */
	int (*net_init)(struct net *net, void **state);
	void (*net_pre_exit)(void *state);
	void (*net_exit)(void *state);

	/* Netfilter hooks (nf_hookfn), registered with the state as priv. */
	unsigned int (*prerouting)(void *priv, struct sk_buff *skb,
				   const struct nf_hook_state *state);
	unsigned int (*local_out)(void *priv, struct sk_buff *skb,
				  const struct nf_hook_state *state);
	unsigned int (*postrouting)(void *priv, struct sk_buff *skb,
				    const struct nf_hook_state *state);

	/* FIB notifier (atomic context); flush: the dump restarts. */
	void (*fib_event)(void *state, int kind, const struct mpbal_fib_route *r);
	void (*fib_flush)(void *state);

	/* A device event in the netns of @state (RTNL held). */
	void (*netdev_event)(void *state, int event, struct net_device *dev);
	/* net.ipv4.fib_multipath_hash_policy of the netns was written
	 * (NETEVENT_IPV4_MPATH_HASH_UPDATE; atomic context). */
	void (*hash_policy_event)(void *state);

	/*
	 * net.mpbal.conf.DEV.down or tier of @conf changed (enum
	 * mpbal_admin_event), once per change however writers race; process
	 * context, from the sysctl write, which returns after it.
	 */
	void (*dev_admin)(void *state, struct mpbal_devconf *conf, int event);

	/* /proc/net/mpbal/{stats,uplinks} show callbacks. */
	int (*show_stats)(void *state, struct seq_file *m);
	int (*show_uplinks)(void *state, struct seq_file *m);
};

struct mpbal_params_effective;

/*
 * Module-wide registration (src/helpers/pernet.c): makes @ops the callbacks
 * and @params the module parameters in force, registers the pernet
 * operations (each netns gets ops->net_init) and the netdevice notifier
 * (which replays REGISTER for existing devices). @ops must stay valid while
 * the module's parameters exist (a static in the module).
 */
int mpbal_register(const struct mpbal_ops *ops,
		   const struct mpbal_params_effective *params);
void mpbal_unregister(void);

/* The per-netns Rust state of @net, NULL outside its lifetime. */
void *mpbal_net_state(const struct net *net);
/* netns inode number, to name the netns in log messages. */
u32 mpbal_net_inum(const struct net *net);

/* ---------------------------------------------------------------------- */
/* Module parameters (src/helpers/params.c; 6.12's module! has none).       */

#define MPBAL_PARAM_TEXT_MAX 32

/* What was given at insmod, as text; module init validates it. */
struct mpbal_params_given {
	bool strategy_given;
	char strategy[MPBAL_PARAM_TEXT_MAX];
	bool ct_mark_mask_given;
	char ct_mark_mask[MPBAL_PARAM_TEXT_MAX];
	bool route_table_size_given;
	char route_table_size[MPBAL_PARAM_TEXT_MAX];
	bool manage_hash_policy_given;
	bool manage_hash_policy;
};

/* The values in force, defaults filled in; /sys/module/mpbal/parameters. */
struct mpbal_params_effective {
	int strategy;		/* strategy id */
	u32 ct_mark_mask;
	u32 route_table_size;
	bool manage_hash_policy;
};

void mpbal_params_get_given(struct mpbal_params_given *out);
/* kstrtou32(@s, 0, @res): decimal, 0x hex or 0 octal; 0 or -errno. */
int mpbal_kstrtou32(const char *s, u32 *res);
/* The current values (strategy and manage_hash_policy are writable). */
int mpbal_param_strategy(void);
u32 mpbal_param_ct_mark_mask(void);
u32 mpbal_param_route_table_size(void);
bool mpbal_param_manage_hash_policy(void);
/* Bench builds only (-DMPBAL_BENCH_STUBS): see src/policy/benchstub.rs. */
int mpbal_param_bench_stop(void);

/* ---------------------------------------------------------------------- */
/* Per-netns sysctls: net.mpbal.* (src/helpers/sysctl.c).                   */

#define MPBAL_SYSCTL_MAX_INTS 8

/* An integer sysctl; value is read with READ_ONCE, written by the handler. */
struct mpbal_sysctl_int {
	const char *procname;	/* NUL-terminated, static */
	int value;
	int min;
	int max;
};

/*
 * Backing store of one netns's sysctls, owned by the Rust state. Besides the
 * integers: strategy (by name) and available_strategies (read-only).
 */
struct mpbal_sysctl_conf {
	struct net *net;		/* for the CAP_NET_ADMIN check on write */
	struct mpbal_dwork *kick_work;	/* run after a successful write */
	int strategy;			/* strategy id */
	u32 nr_ints;
	struct mpbal_sysctl_int ints[MPBAL_SYSCTL_MAX_INTS];
};

int mpbal_sysctl_register(struct net *net, struct mpbal_sysctl_conf *conf,
			  struct ctl_table_header **out);
void mpbal_sysctl_unregister(struct ctl_table_header *hdr);

/*
 * net.mpbal.conf.DEV.*, owned by the Rust state; must outlive the
 * registration. The handlers write capacity, uplink_id, down and tier; the
 * counters are Rust's alone.
 */
struct mpbal_devconf {
	struct net *net;		/* for the CAP_NET_ADMIN check on write */
	struct mpbal_dwork *kick_work;	/* run after a successful write */
	int ifindex;			/* the device */
	unsigned long capacity;		/* bit/s, 0 = not configured */
	int uplink_id;			/* pinned uplink id, 0 = automatic */
	int uplink_id_max;
	int down;			/* 1 = administratively down */
	int tier;			/* 1 (preferred) to tier_max */
	int tier_max;
	u64 admin_downs;		/* down 0 -> 1 writes */
	u64 admin_ups;			/* down 1 -> 0 writes */
	u64 ct_flushed;			/* conntrack entries flushed at a down */
};

int mpbal_devconf_register(struct net *net, const char *ifname,
			   struct mpbal_devconf *conf, struct ctl_table_header **out);
void mpbal_devconf_unregister(struct ctl_table_header *hdr);

/* ---------------------------------------------------------------------- */
/* /proc/net/mpbal/{stats,uplinks} (src/helpers/proc.c).                   */

/* @state is passed to ops->show_*(). */
int mpbal_proc_create(struct net *net, void *state, struct proc_dir_entry **out);
void mpbal_proc_remove(struct proc_dir_entry *dir);
void mpbal_seq_write(struct seq_file *m, const char *buf, size_t len);

/* ---------------------------------------------------------------------- */
/* Netfilter and conntrack (src/helpers/netfilter.c).                       */

/* Registers ops->prerouting, local_out, postrouting in @net with @priv. */
int mpbal_hooks_register(struct net *net, void *priv, struct nf_hook_ops **out);
/* Unregisters them and waits until no hook call is in flight; may sleep. */
void mpbal_hooks_unregister(struct net *net, struct nf_hook_ops *ops);
/* Unregisters them without waiting (pernet pre_exit); free after a grace period. */
void mpbal_hooks_unregister_nowait(struct net *net, struct nf_hook_ops *ops);
void mpbal_hooks_free(struct nf_hook_ops *ops);

/* Holds conntrack in @net (nf_ct_netns_get); 0 or -errno. May sleep. */
int mpbal_conntrack_get(struct net *net);
void mpbal_conntrack_put(struct net *net);

/* The packet's conntrack entry, NULL if untracked. */
struct nf_conn *mpbal_skb_ct(const struct sk_buff *skb, bool *reply, bool *is_new);
u32 mpbal_ct_mark(const struct nf_conn *ct);
/* Writes ct->mark and raises IPCT_MARK if it changes. */
void mpbal_ct_set_mark(struct nf_conn *ct, u32 mark);

/*
 * Deletes the source-NATed (IPS_SRC_NAT) conntrack entries of @net whose
 * mark @match accepts, with nf_ct_iterate_cleanup_net(); returns how many.
 * @match runs under a conntrack bucket lock (BH off): no sleeping. May
 * sleep itself.
 */
u64 mpbal_ct_flush_snat(struct net *net, bool (*match)(void *data, u32 mark),
			void *data);

int mpbal_hash_policy(const struct net *net);
/* Writes the hash policy and sends NETEVENT_IPV4_MPATH_HASH_UPDATE. */
void mpbal_set_hash_policy(struct net *net, int policy);

/* ---------------------------------------------------------------------- */
/* FIB notifier (src/helpers/fib.c).                                        */

/* RTN_UNICAST, the route type mpbal steers (checked in src/helpers/fib.c). */
#define MPBAL_RTN_UNICAST 1

/* A route as the notifier reports it: facts only, Rust classifies. */
struct mpbal_fib_route {
	u32 tb_id;
	u32 dst;		/* network byte order */
	u32 dst_len;
	u8 type;		/* RTN_* */
	bool equalize_flag;	/* RTM_F_EQUALIZE in fib_flags */
	bool nh_object;		/* uses a nexthop object */
	u32 nr_paths;		/* fib_info_num_path() */
	u32 nr_oifs;		/* the first paths, without nh objects: */
	u32 oifs[MPBAL_MAX_NEXTHOPS];	/* output device */
	u32 gws[MPBAL_MAX_NEXTHOPS];	/* IPv4 gateway (network order), 0 if none */
};

int mpbal_fib_notifier_register(struct net *net, void *priv,
				struct mpbal_fib_nb **out);
void mpbal_fib_notifier_unregister(struct net *net, struct mpbal_fib_nb *nb);

/* ---------------------------------------------------------------------- */
/* Route lookups of the packet path (src/helpers/route.c).                  */

/* What a lookup found. @fi is valid under the hook's RCU read lock only. */
struct mpbal_fib_facts {
	const struct fib_info *fi;
	u8 type;		/* RTN_* */
	bool equalize_flag;
	bool nh_object;
	u32 nr_paths;
};

struct mpbal_nh {
	u32 oif;
	u32 gw;			/* IPv4 gateway, network byte order; 0 if none */
	u32 weight;
	s32 upper_bound;
	u32 flags;		/* RTNH_F_* */
};

#define MPBAL_NH_F_DEAD 1	/* RTNH_F_DEAD */
#define MPBAL_NH_F_LINKDOWN 16	/* RTNH_F_LINKDOWN */

/* Copies the first @max nexthops of @fi (no nh object); returns how many. */
u32 mpbal_fib_info_nexthops(const struct fib_info *fi, struct mpbal_nh *nh, u32 max);

/* The input lookup of a packet at PRE_ROUTING; 0 or -errno (no route). */
int mpbal_route_input(struct sk_buff *skb, const struct nf_hook_state *state,
		      struct mpbal_fib_facts *out);

/* What mpbal_route_input()'s lookup depends on, for a per-CPU cache. */
struct mpbal_flow_key {
	u32 daddr;		/* network byte order */
	u32 saddr;		/* network byte order */
	u32 iif;
	u32 mark;
	u32 tos;
	u32 genid;		/* rt_genid_ipv4(), read before any lookup */
};

enum mpbal_flow_kind {
	MPBAL_FLOW_NONE = 0,		/* not routed for forwarding: no route */
	MPBAL_FLOW_KEY = 1,		/* key filled */
	MPBAL_FLOW_UNCACHED = 2,	/* FIB rules match on more (ports) */
};

int mpbal_route_input_key(struct sk_buff *skb, const struct nf_hook_state *state,
			  struct mpbal_flow_key *key);

/* What pins a locally generated packet to a device, as mpbal sees it. */
struct mpbal_local_facts {
	int bound_oif;		/* SO_BINDTODEVICE (sk_bound_dev_if) */
	int unicast_if;		/* IP_UNICAST_IF (inet->uc_index) */
	bool l3mdev;		/* its route is in a VRF */
	int saddr_ifindex;	/* device owning the source address, 0 if none */
};

void mpbal_local_facts(const struct sk_buff *skb, const struct nf_hook_state *state,
		       struct mpbal_local_facts *out);
/*
 * The output lookup of a locally generated packet at LOCAL_OUT, as
 * ip_route_me_harder() would do it, without the socket's oif; 0 or -errno.
 */
int mpbal_route_output(struct sk_buff *skb, const struct nf_hook_state *state,
		       struct mpbal_fib_facts *out);
/*
 * Re-routes a LOCAL_OUT packet as ip_route_me_harder() does, xfrm lookup
 * included, with the nexthop chosen by @hash (as for forwarded packets);
 * the skb's own hash is kept. 0 or -errno.
 */
int mpbal_reroute_hash(struct sk_buff *skb, const struct nf_hook_state *state,
		       u32 hash);
/* The device and gateway the skb's route leaves by (0 if none). */
void mpbal_skb_nexthop(const struct sk_buff *skb, u32 *oif, u32 *gw);

/* ---------------------------------------------------------------------- */
/* Packets (src/helpers/skb.c).                                             */

u32 mpbal_skb_daddr(const struct sk_buff *skb);	/* network byte order */
u32 mpbal_skb_entropy(struct sk_buff *skb);		/* per-flow, no dissector */
void mpbal_skb_set_l4_hash(struct sk_buff *skb, u32 hash);
u32 mpbal_skb_hash(const struct sk_buff *skb);
u32 mpbal_skb_len(const struct sk_buff *skb);
u32 mpbal_skb_segs(const struct sk_buff *skb);
bool mpbal_skb_forwarded(const struct sk_buff *skb);
/* The skb's dst is an IPsec (xfrm) bundle. */
bool mpbal_skb_dst_xfrm(const struct sk_buff *skb);

int mpbal_state_in_ifindex(const struct nf_hook_state *state);

/* What POST_ROUTING reads of every packet, in one call. */
struct mpbal_post_facts {
	bool forwarded;
	u32 hash;
	u32 out_ifindex;
	u32 segs;
	u32 len;
};
void mpbal_post_facts(const struct sk_buff *skb, const struct nf_hook_state *state,
		      struct mpbal_post_facts *out);

/* ---------------------------------------------------------------------- */
/* Delayed work (src/helpers/work.c).                                       */

int mpbal_dwork_create(void (*fn)(void *data), void *data,
		       struct mpbal_dwork **out);
void mpbal_dwork_schedule(struct mpbal_dwork *work, unsigned int delay_ms);
/* Cancels and waits; the work is not queued afterwards even if it requeues. */
void mpbal_dwork_cancel_sync(struct mpbal_dwork *work);
void mpbal_dwork_destroy(struct mpbal_dwork *work);

/* ---------------------------------------------------------------------- */
/* Per-CPU memory, zeroed (src/helpers/percpu.c).                           */

/* __alloc_percpu(): NULL when out of memory. */
void *mpbal_percpu_alloc(size_t size, size_t align);
void mpbal_percpu_free(void *pcpu);
/*
 * This CPU's copy, with bottom halves disabled until mpbal_percpu_put_bh():
 * by this call (*disabled set) or already (softirq or a BH-off section).
 */
void *mpbal_percpu_get_bh(void *pcpu, bool *disabled);
void mpbal_percpu_put_bh(bool disabled);
void *mpbal_percpu_ptr(void *pcpu, int cpu);
/* Next possible CPU after @cpu (start with -1); >= mpbal_nr_cpu_ids() at end. */
int mpbal_cpu_next(int cpu);
int mpbal_nr_cpu_ids(void);

/* ---------------------------------------------------------------------- */
/* Devices, time, log (src/helpers/net.c).                                  */

/* tx bytes and operational state of @ifindex in @net; false if gone. */
bool mpbal_dev_tx_bytes(struct net *net, int ifindex, u64 *bytes, bool *up);
/* Copies the name of @ifindex into @buf (MPBAL_IFNAMSIZ); false if gone. */
bool mpbal_dev_name_by_index(struct net *net, int ifindex, char *buf);
int mpbal_dev_ifindex(const struct net_device *dev);
/* Copies the device name into @buf (MPBAL_IFNAMSIZ). */
void mpbal_dev_name(const struct net_device *dev, char *buf);
/* ethtool link speed in Mbit/s, 0 if unknown. Caller holds RTNL. */
u32 mpbal_dev_speed_mbps(struct net_device *dev);
/* Bytes waiting in the qdiscs of @ifindex in @net (0 if gone or none); any
 * context. */
u32 mpbal_dev_backlog(struct net *net, int ifindex);

u32 mpbal_now_secs(void);
u64 mpbal_now_ms(void);
u64 mpbal_now_us(void);
u64 mpbal_coarse_ms(void);	/* jiffies, in ms: a tick's resolution */

void mpbal_rcu_read_lock(void);
void mpbal_rcu_read_unlock(void);
/* May sleep. */
void mpbal_synchronize_rcu(void);

/* net_warn_ratelimited("mpbal: <msg>"), net_info_ratelimited if !@warn */
void mpbal_log_ratelimited(bool warn, const char *msg, size_t len);

/* ---------------------------------------------------------------------- */
/* For mpbal_kunit.ko only.                                                */

/*
 * src/helpers/sysctl.c, exported with EXPORT_SYMBOL_IF_KUNIT like the
 * per-CPU and skb helpers the KUnit cases use: writes @buf to
 * net.mpbal.strategy of @conf through the real handler.
 */
int mpbal_sysctl_strategy_write(struct mpbal_sysctl_conf *conf,
				const char *buf, size_t len);

/* src/kunit/glue.c */
void mpbal_kunit_fail(struct kunit *test, const char *file, int line,
		      const char *msg, size_t len);
struct sk_buff *mpbal_kunit_alloc_skb(void);
void mpbal_kunit_free_skb(struct sk_buff *skb);
struct net *mpbal_kunit_init_net(void);
/* fib_rebalance()'s upper bounds, with the kernel's own macros. */
void mpbal_kunit_rebalance(struct mpbal_nh *nh, int n);
/* fib_select_multipath()'s choice for a 31-bit @hash, -1 if none. */
int mpbal_kunit_fib_select(const struct mpbal_nh *nh, int n, int hash);
/* A UDP skb 10.0.0.1:1000 -> 10.0.0.2:2000 without a hash. */
struct sk_buff *mpbal_kunit_udp_skb(void);
/* Its entropy as a fixed jhash seed of 0 would make it. */
u32 mpbal_kunit_entropy_unseeded(void);
/* Counts NETEVENT_IPV4_MPATH_HASH_UPDATE for init_net while watching. */
int mpbal_kunit_netevent_watch(bool on);
int mpbal_kunit_netevent_count(void);

#endif /* MPBAL_H */
