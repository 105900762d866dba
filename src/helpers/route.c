// SPDX-License-Identifier: GPL-2.0
/*
 * Route lookups of the hooks. The kernel exports no function that
 * looks up the route an skb will take without also choosing its nexthop,
 * which mpbal must do first, so the flows below are built as the kernel
 * builds them. They mirror Linux v6.12.117; re-check them on a kernel bump:
 *  - input:  ip_route_input_slow(), net/ipv4/route.c
 *  - output: ip_route_me_harder(), net/ipv4/netfilter.c (with its xfrm step)
 */

#include <linux/inetdevice.h>
#include <linux/netfilter.h>
#include <net/inet_sock.h>
#include <net/ip.h>
#include <net/l3mdev.h>
#include <net/ip_fib.h>
#include <net/nexthop.h>
#include <net/route.h>
#include <net/xfrm.h>

#include "../../include/mpbal.h"
#include "helpers.h"

static_assert(MPBAL_NH_F_DEAD == RTNH_F_DEAD);
static_assert(MPBAL_NH_F_LINKDOWN == RTNH_F_LINKDOWN);

static void fill_facts(const struct fib_result *res, struct mpbal_fib_facts *out)
{
	const struct fib_info *fi = res->fi;

	out->fi = fi;
	out->type = res->type;
	out->equalize_flag = fi && (fi->fib_flags & RTM_F_EQUALIZE);
	out->nh_object = fi && fi->nh;
	out->nr_paths = fi ? fib_info_num_path(fi) : 0;
}

u32 mpbal_fib_info_nexthops(const struct fib_info *cfi, struct mpbal_nh *nh, u32 max)
{
	/* fib_info_nh() takes no const; nothing is written. */
	struct fib_info *fi = (struct fib_info *)cfi;
	u32 i, n = min_t(u32, fib_info_num_path(fi), max);

	if (fi->nh)
		return 0;
	for (i = 0; i < n; i++) {
		const struct fib_nh *f = fib_info_nh(fi, i);

		nh[i].oif = f->fib_nh_oif;
		nh[i].gw = f->fib_nh_gw_family == AF_INET ? (__force u32)f->fib_nh_gw4 : 0;
		nh[i].weight = f->fib_nh_weight;
		nh[i].upper_bound = atomic_read(&f->fib_nh_upper_bound);
		nh[i].flags = f->fib_nh_flags;
	}
	return n;
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
	in_dev = __in_dev_get_rcu(state->in);
	return in_dev && IN_DEV_FORWARD(in_dev);
}

/* ip_route_input_slow()'s flow (no tunnel keys, no l3mdev). */
int mpbal_route_input(struct sk_buff *skb, const struct nf_hook_state *state,
		      struct mpbal_fib_facts *out)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct net *net = state->net;
	struct flowi4 fl4 = {};
	struct flow_keys flkeys;
	struct fib_result res;
	int err;

	if (!input_routable(skb, state))
		return -ENETUNREACH;
	fl4.flowi4_iif = state->in->ifindex;
	fl4.flowi4_mark = skb->mark;
	fl4.flowi4_tos = iph->tos & INET_DSCP_MASK;
	fl4.flowi4_scope = RT_SCOPE_UNIVERSE;
	fl4.daddr = iph->daddr;
	fl4.saddr = iph->saddr;
	fl4.flowi4_uid = sock_net_uid(net, NULL);
	fib4_rules_early_flow_dissect(net, skb, &fl4, &flkeys);
	err = fib_lookup(net, &fl4, &res, 0);
	if (err)
		return err;
	fill_facts(&res, out);
	return 0;
}

/*
 * The inputs of mpbal_route_input()'s flow: everything but the uid, which is
 * the same for every forwarded skb of a netns, and the ports, which only
 * FIB rules with port matches read (then nothing is cached).
 *
 * input_routable() is left to the lookup on a miss: what it reads is in the
 * key (daddr, iif) or bumps the generation when it changes (forwarding, see
 * devinet_sysctl_forward()). Where it does not (forwarding set through
 * netlink's IFLA_INET_CONF), mpbal only steers a packet the kernel then
 * does not forward.
 */
int mpbal_route_input_key(struct sk_buff *skb, const struct nf_hook_state *state,
			  struct mpbal_flow_key *key)
{
	const struct iphdr *iph = ip_hdr(skb);
	struct net *net = state->net;

	if (!state->in)
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

/*
 * ip_route_me_harder()'s flow, without the socket's oif (a socket that has
 * one is left alone: see mpbal_local_facts()).
 */
static void output_flow(struct sk_buff *skb, const struct nf_hook_state *state,
			struct flowi4 *fl4, struct flow_keys *flkeys)
{
	struct net_device *dev = skb_dst_dev(skb);
	const struct iphdr *iph = ip_hdr(skb);
	struct sock *sk = sk_to_full_sk(state->sk);
	struct net *net = state->net;
	__be32 saddr = iph->saddr;
	unsigned int addr_type;
	__u8 flags;

	flags = sk ? inet_sk_flowi_flags(sk) : 0;
	addr_type = inet_addr_type_dev_table(net, dev, saddr);
	if (addr_type == RTN_LOCAL || addr_type == RTN_UNICAST)
		flags |= FLOWI_FLAG_ANYSRC;
	else
		saddr = 0;

	memset(fl4, 0, sizeof(*fl4));
	fl4->daddr = iph->daddr;
	fl4->saddr = saddr;
	fl4->flowi4_tos = iph->tos & INET_DSCP_MASK;
	fl4->flowi4_l3mdev = l3mdev_master_ifindex(dev);
	fl4->flowi4_mark = skb->mark;
	fl4->flowi4_flags = flags;
	fl4->flowi4_uid = sock_net_uid(net, sk);
	fib4_rules_early_flow_dissect(net, skb, fl4, flkeys);
}

void mpbal_local_facts(const struct sk_buff *skb, const struct nf_hook_state *state,
		       struct mpbal_local_facts *out)
{
	struct sock *sk = sk_to_full_sk(state->sk);
	struct net_device *dev = skb_dst_dev(skb), *sdev;

	out->bound_oif = sk ? READ_ONCE(sk->sk_bound_dev_if) : 0;
	out->unicast_if = sk && sk_fullsock(sk) ? READ_ONCE(inet_sk(sk)->uc_index) : 0;
	out->l3mdev = dev && (netif_is_l3_master(dev) || l3mdev_master_ifindex_rcu(dev));
	/* The device that owns the source address, if it is local. */
	sdev = __ip_dev_find(state->net, ip_hdr(skb)->saddr, false);
	out->saddr_ifindex = sdev ? sdev->ifindex : 0;
}

int mpbal_route_output(struct sk_buff *skb, const struct nf_hook_state *state,
		       struct mpbal_fib_facts *out)
{
	struct flow_keys flkeys;
	struct fib_result res;
	struct flowi4 fl4;
	int err;

	if (!skb_dst(skb))
		return -EINVAL;
	output_flow(skb, state, &fl4, &flkeys);
	fl4.flowi4_iif = LOOPBACK_IFINDEX;
	fl4.flowi4_scope = RT_SCOPE_UNIVERSE;
	err = fib_lookup(state->net, &fl4, &res, 0);
	if (err)
		return err;
	fill_facts(&res, out);
	return 0;
}

/*
 * ip_route_me_harder() with the nexthop chosen by @hash: with the skb,
 * ip_route_output_key_hash() lets fib_multipath_hash() take the skb's L4
 * hash (policy 1), the same lever as for forwarded packets, so two
 * gateways on one device are distinct choices. Then, like the kernel's
 * reroute, the xfrm lookup: a packet an IPsec policy covers leaves through
 * its transform. The skb keeps its own hash for TX queues and qdiscs.
 */
int mpbal_reroute_hash(struct sk_buff *skb, const struct nf_hook_state *state,
		       u32 hash)
{
	struct sock *sk = sk_to_full_sk(state->sk);
	bool l4 = skb->l4_hash, sw = skb->sw_hash;
	struct net *net = state->net;
	u32 saved = skb->hash;
	struct flow_keys flkeys;
	unsigned int hh_len;
	struct rtable *rt;
	struct flowi4 fl4;

	if (!skb_dst(skb))
		return -EINVAL;
	output_flow(skb, state, &fl4, &flkeys);
	skb_set_hash(skb, hash, PKT_HASH_TYPE_L4);
	rt = ip_route_output_key_hash(net, &fl4, skb);
	__skb_set_hash(skb, saved, sw, l4);
	if (IS_ERR(rt))
		return PTR_ERR(rt);

	/* Drop old route. */
	skb_dst_drop(skb);
	skb_dst_set(skb, &rt->dst);

	if (skb_dst(skb)->error)
		return skb_dst(skb)->error;

#ifdef CONFIG_XFRM
	if (!(IPCB(skb)->flags & IPSKB_XFRM_TRANSFORMED) &&
	    xfrm_decode_session(net, skb, flowi4_to_flowi(&fl4), AF_INET) == 0) {
		struct dst_entry *dst = skb_dst(skb);

		skb_dst_set(skb, NULL);
		dst = xfrm_lookup(net, dst, flowi4_to_flowi(&fl4), sk, 0);
		if (IS_ERR(dst))
			return PTR_ERR(dst);
		skb_dst_set(skb, dst);
	}
#endif

	/* Change in oif may mean change in hh_len. */
	hh_len = skb_dst_dev(skb)->hard_header_len;
	if (skb_headroom(skb) < hh_len &&
	    pskb_expand_head(skb, HH_DATA_ALIGN(hh_len - skb_headroom(skb)),
			     0, GFP_ATOMIC))
		return -ENOMEM;
	return 0;
}

/* The device and gateway the skb's route leaves by (0, 0 if none). */
void mpbal_skb_nexthop(const struct sk_buff *skb, u32 *oif, u32 *gw)
{
	const struct rtable *rt = skb_rtable(skb);

	*oif = rt && rt->dst.dev ? rt->dst.dev->ifindex : 0;
	*gw = rt && rt->rt_gw_family == AF_INET ? (__force u32)rt->rt_gw4 : 0;
}
