// SPDX-License-Identifier: GPL-2.0
/*
 * skb accessors: static inlines and macros of the networking headers that
 * Rust cannot call. The hash helpers are exported to mpbal_kunit.ko only.
 */

#include <kunit/visibility.h>
#include <linux/jhash.h>
#include <linux/net.h>
#include <linux/netfilter.h>
#include <linux/skbuff.h>
#include <net/dst.h>
#include <net/ip.h>

#include "../../include/mpbal.h"

u32 mpbal_skb_daddr(const struct sk_buff *skb)
{
	return (__force u32)ip_hdr(skb)->daddr;
}

/*
 * Per-flow entropy for the steered hash. skb_get_hash() would run the whole
 * flow dissector on every skb without a hash (veth, most software paths),
 * which costs more than the rest of the decision; addresses, protocol and
 * ports are all the dissector would feed the hash here anyway. A hash the
 * sender or device already set (TCP's sk_txhash, RSS) is reused. The seed
 * is random per boot, like the flow dissector's, so a remote sender cannot
 * aim flows at one uplink or one queue.
 */
static u32 entropy_seed __read_mostly;

/* Protocols whose first four bytes are the ports (as the flow dissector). */
static bool has_ports(u8 protocol)
{
	return protocol == IPPROTO_UDP || protocol == IPPROTO_TCP ||
	       protocol == IPPROTO_UDPLITE || protocol == IPPROTO_SCTP ||
	       protocol == IPPROTO_DCCP;
}

u32 mpbal_skb_entropy(struct sk_buff *skb)
{
	const struct iphdr *iph = ip_hdr(skb);
	__be32 ports = 0, buf;
	const __be32 *p;

	if (skb->l4_hash)
		return skb->hash;
	net_get_random_once(&entropy_seed, sizeof(entropy_seed));
	if (likely(!ip_is_fragment(iph)) && has_ports(iph->protocol)) {
		p = skb_header_pointer(skb, iph->ihl * 4, sizeof(buf), &buf);
		if (p)
			ports = *p;
	}
	return jhash_3words((__force u32)iph->saddr, (__force u32)iph->daddr,
			    (__force u32)ports ^ iph->protocol, entropy_seed);
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_skb_entropy);

void mpbal_skb_set_l4_hash(struct sk_buff *skb, u32 hash)
{
	skb_set_hash(skb, hash, PKT_HASH_TYPE_L4);
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_skb_set_l4_hash);

u32 mpbal_skb_hash(const struct sk_buff *skb) { return skb->hash; }
EXPORT_SYMBOL_IF_KUNIT(mpbal_skb_hash);

u32 mpbal_skb_len(const struct sk_buff *skb) { return skb->len; }

u32 mpbal_skb_segs(const struct sk_buff *skb)
{
	return skb_is_gso(skb) ? skb_shinfo(skb)->gso_segs : 1;
}

bool mpbal_skb_forwarded(const struct sk_buff *skb)
{
	return IPCB(skb)->flags & IPSKB_FORWARDED;
}

bool mpbal_skb_dst_xfrm(const struct sk_buff *skb)
{
	const struct dst_entry *dst = skb_dst(skb);

	return dst && dst->xfrm;
}

int mpbal_state_in_ifindex(const struct nf_hook_state *state)
{
	return state->in ? state->in->ifindex : 0;
}

void mpbal_post_facts(const struct sk_buff *skb, const struct nf_hook_state *state,
		      struct mpbal_post_facts *out)
{
	out->forwarded = mpbal_skb_forwarded(skb);
	out->hash = skb->hash;
	out->out_ifindex = state->out ? state->out->ifindex : 0;
	out->segs = mpbal_skb_segs(skb);
	out->len = skb->len;
}
