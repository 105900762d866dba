// SPDX-License-Identifier: GPL-2.0
/*
 * C half of mpbal_kunit.ko: what the Rust cases (cases.rs) need from C, and
 * the kernel's multipath rules restated with the kernel's own macros as an
 * oracle for the core. The suite itself is declared in Rust (suite.rs).
 */

#include <kunit/test.h>
#include <linux/math64.h>
#include <linux/module.h>
#include <linux/skbuff.h>
#include <net/net_namespace.h>

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
