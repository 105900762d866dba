/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C <-> Rust ABI of mpbal.
 *
 * bindgen reads this header (with the kernel's own bindgen flags) to produce
 * src/bindings_generated.rs. It deliberately includes nothing but
 * <linux/types.h>: kernel objects are forward-declared and only ever handled
 * by pointer on the Rust side, so the generated bindings stay small and never
 * clash with kernel::bindings.
 *
 * Two directions:
 *  - mpbal_*       implemented in C (src/helper.c): what Rust-for-Linux 6.12
 *                  cannot express (module_param, pernet ops, sysctl tables,
 *                  netfilter hook ops, notifiers, delayed work, per-CPU
 *                  memory) and the static inlines of the networking headers.
 *  - mpbal_rust_*  implemented in Rust (src/sys/entry.rs), called from C.
 */
#ifndef MPBAL_H
#define MPBAL_H

#include <linux/types.h>

struct ctl_table_header;
struct kunit;
struct net;
struct net_device;
struct nf_conn;
struct nf_hook_state;
struct proc_dir_entry;
struct seq_file;
struct sk_buff;

/* Routes with more nexthops are left to stock ECMP. Matches the core. */
#define MPBAL_MAX_NEXTHOPS 16

/* Longest interface name including NUL (IFNAMSIZ). */
#define MPBAL_IFNAMSIZ 16

/* ---------------------------------------------------------------------- */
/* Module parameters (declared in C: 6.12's module! macro has no params).  */

/* Default strategy id for new network namespaces (see mpbal_rust_strategy_*). */
int mpbal_param_strategy(void);
/* ct->mark bits that hold the session's uplink ifindex. */
u32 mpbal_param_ct_mark_mask(void);
/* Entries of the per-destination table of each netns (power of two). */
u32 mpbal_param_route_table_size(void);
/* Whether mpbal may set net.ipv4.fib_multipath_hash_policy=1 itself. */
bool mpbal_param_manage_hash_policy(void);

/* ---------------------------------------------------------------------- */
/* Module-wide registration.                                               */

/* Registers the pernet operations; each netns then gets mpbal_rust_net_init. */
int mpbal_pernet_register(void);
void mpbal_pernet_unregister(void);
/* Registers the netdevice notifier (replays REGISTER for existing devices). */
int mpbal_netdev_notifier_register(void);
void mpbal_netdev_notifier_unregister(void);

/* ---------------------------------------------------------------------- */
/* Per-netns sysctls: net.mpbal.*                                          */

/*
 * Backing store of the per-netns sysctls. Owned by the Rust per-netns state;
 * the kernel's proc handlers write it, Rust reads it once per packet with
 * READ_ONCE semantics (relaxed atomic loads).
 */
struct mpbal_sysctl_conf {
	struct net *net;		/* for the CAP_NET_ADMIN check on write */
	void *kick_work;		/* mpbal_dwork run after a successful write */
	int strategy;			/* strategy id */
	int route_idle_timeout;		/* seconds */
	int bw_interval_ms;
	int bw_ewma_log;
};

#define MPBAL_ROUTE_IDLE_TIMEOUT_MIN 1
#define MPBAL_ROUTE_IDLE_TIMEOUT_MAX 3600
#define MPBAL_BW_INTERVAL_MS_MIN 100
#define MPBAL_BW_INTERVAL_MS_MAX 60000
#define MPBAL_BW_EWMA_LOG_MAX 8

struct ctl_table_header *mpbal_sysctl_register(struct net *net,
					       struct mpbal_sysctl_conf *conf);
void mpbal_sysctl_unregister(struct ctl_table_header *hdr);

/*
 * net.mpbal.conf.DEV.capacity, bit/s (0 = not configured). *capacity must
 * outlive the registration.
 */
struct ctl_table_header *mpbal_devconf_register(struct net *net,
						const char *ifname,
						unsigned long *capacity);
void mpbal_devconf_unregister(struct ctl_table_header *hdr);

/* ---------------------------------------------------------------------- */
/* /proc/net/mpbal/{stats,uplinks}                                         */

/* @state is passed to mpbal_rust_show_*(); NULL on failure. */
struct proc_dir_entry *mpbal_proc_create(struct net *net, void *state);
void mpbal_proc_remove(struct proc_dir_entry *dir);
void mpbal_seq_write(struct seq_file *m, const char *buf, size_t len);

/* ---------------------------------------------------------------------- */
/* Netfilter hooks: PRE_ROUTING, LOCAL_OUT, POST_ROUTING (IPv4).           */

/* Registers the three hooks in @net with @priv as their private pointer. */
void *mpbal_hooks_register(struct net *net, void *priv);
/* Unregisters them and waits until no hook call is in flight; may sleep. */
void mpbal_hooks_unregister(struct net *net, void *hooks);

/* Holds conntrack in @net (nf_ct_netns_get); 0 or -errno. May sleep. */
int mpbal_conntrack_get(struct net *net);
void mpbal_conntrack_put(struct net *net);

/* ---------------------------------------------------------------------- */
/* FIB notifier: which routes of the netns are equalize multipath routes.  */

enum mpbal_fib_event_kind {
	MPBAL_FIB_REPLACE = 1,	/* this route now heads its prefix */
	MPBAL_FIB_DEL = 2,	/* the prefix is gone */
};

struct mpbal_fib_route {
	u32 tb_id;
	u32 dst;		/* network byte order */
	u32 dst_len;
	bool equalize;		/* multipath and RTM_F_EQUALIZE */
	bool steerable;		/* equalize, classic nexthops, at most MAX_NEXTHOPS */
	u32 nr_oifs;
	u32 oifs[MPBAL_MAX_NEXTHOPS];
};

void *mpbal_fib_notifier_register(struct net *net, void *priv);
void mpbal_fib_notifier_unregister(struct net *net, void *handle);

/* ---------------------------------------------------------------------- */
/* Delayed work.                                                            */

void *mpbal_dwork_create(void (*fn)(void *data), void *data);
void mpbal_dwork_schedule(void *work, unsigned int delay_ms);
/* Cancels and waits; the work is not queued afterwards even if it requeues. */
void mpbal_dwork_cancel_sync(void *work);
void mpbal_dwork_destroy(void *work);

/* ---------------------------------------------------------------------- */
/* Per-CPU memory (zeroed).                                                */

void *mpbal_percpu_alloc(size_t size, size_t align);
void mpbal_percpu_free(void *pcpu);
/* This CPU's copy, with bottom halves disabled until mpbal_percpu_put_bh(). */
void *mpbal_percpu_get_bh(void *pcpu);
void mpbal_percpu_put_bh(void);
void *mpbal_percpu_ptr(void *pcpu, int cpu);
/* Next possible CPU after @cpu (start with -1); >= mpbal_nr_cpu_ids() at end. */
int mpbal_cpu_next(int cpu);
int mpbal_nr_cpu_ids(void);

/* ---------------------------------------------------------------------- */
/* Packet path.                                                            */

enum mpbal_route_kind {
	MPBAL_ROUTE_NONE = 0,		/* no route, not unicast or single path */
	MPBAL_ROUTE_MULTIPATH = 1,	/* multipath without RTM_F_EQUALIZE */
	MPBAL_ROUTE_EQUALIZE = 2,	/* ours */
	MPBAL_ROUTE_UNSUPPORTED = 3,	/* equalize but nexthop objects or too many paths */
};

struct mpbal_nh {
	u32 oif;
	u32 weight;
	s32 upper_bound;
	u32 flags;		/* RTNH_F_* */
};

#define MPBAL_NH_F_DEAD 1	/* RTNH_F_DEAD */
#define MPBAL_NH_F_LINKDOWN 16	/* RTNH_F_LINKDOWN */

struct mpbal_route {
	unsigned long key;	/* fib_info address: identity only */
	u32 nr_nexthops;
	struct mpbal_nh nh[MPBAL_MAX_NEXTHOPS];
};

/* The route the kernel will use for a packet entering at PRE_ROUTING. */
int mpbal_route_input(struct sk_buff *skb, const struct nf_hook_state *state,
		      struct mpbal_route *out);

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
/*
 * The route for a locally generated packet at LOCAL_OUT, as
 * ip_route_me_harder() would look it up. MPBAL_ROUTE_NONE when the socket is
 * bound to a device: the application chose the uplink.
 */
int mpbal_route_output(struct sk_buff *skb, const struct nf_hook_state *state,
		       struct mpbal_route *out);
/* Re-routes a LOCAL_OUT packet with flowi4_oif = @oif; 0 or -errno. */
int mpbal_reroute_oif(struct sk_buff *skb, const struct nf_hook_state *state,
		      int oif);

u32 mpbal_skb_daddr(const struct sk_buff *skb);	/* network byte order */
u32 mpbal_skb_entropy(struct sk_buff *skb);		/* per-flow, no dissector */
void mpbal_skb_set_l4_hash(struct sk_buff *skb, u32 hash);
u32 mpbal_skb_hash(const struct sk_buff *skb);
u32 mpbal_skb_len(const struct sk_buff *skb);
u32 mpbal_skb_segs(const struct sk_buff *skb);
bool mpbal_skb_forwarded(const struct sk_buff *skb);
/* Ifindex of the device the rerouted dst leaves by, 0 if none. */
int mpbal_skb_dst_oif(const struct sk_buff *skb);

int mpbal_state_in_ifindex(const struct nf_hook_state *state);
int mpbal_state_out_ifindex(const struct nf_hook_state *state);
struct net *mpbal_state_net(const struct nf_hook_state *state);

/* The packet's conntrack entry, NULL if untracked. */
struct nf_conn *mpbal_skb_ct(const struct sk_buff *skb, bool *reply, bool *is_new);
u32 mpbal_ct_mark(const struct nf_conn *ct);
/* Sets the @mask bits of ct->mark to @value (event IPCT_MARK if changed). */
void mpbal_ct_set_mark(struct nf_conn *ct, u32 mask, u32 value);

int mpbal_hash_policy(const struct net *net);
void mpbal_set_hash_policy(struct net *net, int policy);

/* ---------------------------------------------------------------------- */
/* Devices and time.                                                       */

/* tx bytes and operational state of @ifindex in @net; false if gone. */
bool mpbal_dev_tx_bytes(struct net *net, int ifindex, u64 *bytes, bool *up);
/* Copies the name of @ifindex into @buf (MPBAL_IFNAMSIZ); false if gone. */
bool mpbal_dev_name_by_index(struct net *net, int ifindex, char *buf);
int mpbal_dev_ifindex(const struct net_device *dev);
struct net *mpbal_dev_net(const struct net_device *dev);
/* Copies the device name into @buf (MPBAL_IFNAMSIZ). */
void mpbal_dev_name(const struct net_device *dev, char *buf);
/* ethtool link speed in Mbit/s, 0 if unknown. Caller holds RTNL. */
u32 mpbal_dev_speed_mbps(struct net_device *dev);

/* The per-netns Rust state of @net, NULL outside its lifetime. */
void *mpbal_net_state(const struct net *net);
/* netns inode number, to name the netns in log messages. */
u32 mpbal_net_inum(const struct net *net);

u32 mpbal_now_secs(void);
u64 mpbal_now_ms(void);

/* net_warn_ratelimited("mpbal: <msg>") */
void mpbal_warn_ratelimited(const char *msg, size_t len);

/* KUNIT_FAIL(test, "<file>:<line>: <msg>") */
void mpbal_kunit_fail(struct kunit *test, const char *file, int line,
		      const char *msg, size_t len);

/* ---------------------------------------------------------------------- */
/* Implemented in Rust.                                                    */

/* Strategy id for a name as written to sysctl/param, or -EINVAL. */
int mpbal_rust_strategy_parse(const char *name, size_t len);
/* NUL-terminated static name of a strategy id ("?" if unknown). */
const char *mpbal_rust_strategy_name(int id);
/* Whether @mask is usable as ct_mark_mask (non-zero, contiguous). */
bool mpbal_rust_mark_mask_valid(u32 mask);

int mpbal_rust_net_init(struct net *net, void **state);
void mpbal_rust_net_exit(void *state);

unsigned int mpbal_rust_hook_prerouting(void *priv, struct sk_buff *skb,
					const struct nf_hook_state *state);
unsigned int mpbal_rust_hook_local_out(void *priv, struct sk_buff *skb,
				       const struct nf_hook_state *state);
unsigned int mpbal_rust_hook_postrouting(void *priv, struct sk_buff *skb,
					 const struct nf_hook_state *state);

void mpbal_rust_fib_event(void *priv, int kind, const struct mpbal_fib_route *r);
/* The dump is being restarted: forget every route seen so far. */
void mpbal_rust_fib_flush(void *priv);

enum mpbal_netdev_event {
	MPBAL_NETDEV_REGISTER = 1,
	MPBAL_NETDEV_UNREGISTER = 2,
	MPBAL_NETDEV_CHANGENAME = 3,
	MPBAL_NETDEV_CHANGE = 4,	/* NETDEV_UP or NETDEV_CHANGE */
};

/* A device event in a netns whose state is @state (RTNL held). */
void mpbal_rust_netdev_event(void *state, int event, struct net_device *dev);

int mpbal_rust_show_stats(void *state, struct seq_file *m);
int mpbal_rust_show_uplinks(void *state, struct seq_file *m);

/* KUnit cases (src/policy/kunit.rs) for the suite in src/kunit.c. */
void mpbal_rust_kunit_strategy_names(struct kunit *test);
void mpbal_rust_kunit_wrr(struct kunit *test);
void mpbal_rust_kunit_hash_range(struct kunit *test);
void mpbal_rust_kunit_desttable(struct kunit *test);
void mpbal_rust_kunit_estimator(struct kunit *test);
void mpbal_rust_kunit_markfield(struct kunit *test);
void mpbal_rust_kunit_percpu(struct kunit *test);
void mpbal_rust_kunit_skb_hash(struct kunit *test);

/* For the KUnit suite (src/kunit.c). */
struct sk_buff *mpbal_kunit_alloc_skb(void);
void mpbal_kunit_free_skb(struct sk_buff *skb);
/* fib_rebalance()'s upper bounds, with the kernel's own macros. */
void mpbal_kunit_rebalance(struct mpbal_nh *nh, int n);
/* fib_select_multipath()'s choice for a 31-bit @hash, -1 if none. */
int mpbal_kunit_fib_select(const struct mpbal_nh *nh, int n, int hash);
/* Writes @buf to net.mpbal.strategy of @conf through the real handler. */
int mpbal_kunit_strategy_write(struct mpbal_sysctl_conf *conf,
			       const char *buf, size_t len);

#endif /* MPBAL_H */
