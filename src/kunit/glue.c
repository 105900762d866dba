// SPDX-License-Identifier: GPL-2.0
/*
 * C half of mpbal_kunit.ko: what the Rust cases (cases.rs) need from C, and
 * the kernel's multipath rules restated with the kernel's own macros as an
 * oracle for the core. The suite itself is declared in Rust (suite.rs).
 */

#include <kunit/test.h>
#include <linux/ip.h>
#include <linux/jhash.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/skbuff.h>
#include <linux/udp.h>
#include <net/net_namespace.h>
#include <net/netevent.h>

#include "../../include/mpbal.h"

/* The per-CPU, skb and sysctl helpers of mpbal.ko (EXPORT_SYMBOL_IF_KUNIT). */
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

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

struct net *mpbal_kunit_init_net(void)
{
	return &init_net;
}

/* fib_rebalance(), net/ipv4/fib_semantics.c (v6.12) */
void mpbal_kunit_rebalance(struct mpbal_nh *nh, int n)
{
	int total = 0, w = 0, i;

	for (i = 0; i < n; i++)
		if (!(nh[i].flags & MPBAL_NH_F_DEAD))
			total += nh[i].weight;
	for (i = 0; i < n; i++) {
		if (!total || nh[i].flags & MPBAL_NH_F_DEAD) {
			nh[i].upper_bound = -1;
		} else {
			w += nh[i].weight;
			nh[i].upper_bound =
				DIV_ROUND_CLOSEST_ULL((u64)w << 31, total) - 1;
		}
	}
}

/* fib_select_multipath() without fib_multipath_use_neigh (v6.12) */
int mpbal_kunit_fib_select(const struct mpbal_nh *nh, int n, int hash)
{
	int i;

	for (i = 0; i < n; i++) {
		if (hash > nh[i].upper_bound)
			continue;
		return i;
	}
	return -1;
}

/* A UDP packet 10.0.0.1:1000 -> 10.0.0.2:2000 with no hash, for entropy. */
struct sk_buff *mpbal_kunit_udp_skb(void)
{
	struct sk_buff *skb = alloc_skb(128, GFP_KERNEL);
	struct udphdr *uh;
	struct iphdr *iph;

	if (!skb)
		return NULL;
	skb_reserve(skb, 32);
	skb_reset_network_header(skb);
	iph = skb_put_zero(skb, sizeof(*iph));
	iph->version = 4;
	iph->ihl = 5;
	iph->protocol = IPPROTO_UDP;
	iph->saddr = htonl(0x0a000001);
	iph->daddr = htonl(0x0a000002);
	skb_set_transport_header(skb, sizeof(*iph));
	uh = skb_put_zero(skb, sizeof(*uh));
	uh->source = htons(1000);
	uh->dest = htons(2000);
	return skb;
}

/* What mpbal's entropy would be with the fixed seed 0 it used to have. */
u32 mpbal_kunit_entropy_unseeded(void)
{
	__be32 ports = htonl((1000 << 16) | 2000);

	return jhash_3words((__force u32)htonl(0x0a000001),
			    (__force u32)htonl(0x0a000002),
			    (__force u32)ports ^ IPPROTO_UDP, 0);
}

static atomic_t mpath_events = ATOMIC_INIT(0);

static int count_mpath_event(struct notifier_block *nb, unsigned long event,
			     void *ptr)
{
	if (event == NETEVENT_IPV4_MPATH_HASH_UPDATE && ptr == &init_net)
		atomic_inc(&mpath_events);
	return NOTIFY_DONE;
}

static struct notifier_block mpath_nb = { .notifier_call = count_mpath_event };

int mpbal_kunit_netevent_watch(bool on)
{
	return on ? register_netevent_notifier(&mpath_nb) :
		    unregister_netevent_notifier(&mpath_nb);
}

int mpbal_kunit_netevent_count(void)
{
	return atomic_read(&mpath_events);
}
