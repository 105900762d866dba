// SPDX-License-Identifier: GPL-2.0
/*
 * The mpbal KUnit suite. The module loader runs it at insmod (CONFIG_KUNIT)
 * and prints KTAP. Most cases are Rust (src/policy/kunit.rs) and exercise
 * the same core code the packet path runs, built by the kernel's rustc; the
 * C cases test the glue that only exists in C.
 */

#include <kunit/test.h>
#include <linux/math64.h>
#include <linux/sysctl.h>
#include <net/net_namespace.h>

#include "../include/mpbal.h"

void mpbal_kunit_rebalance(struct mpbal_nh *nh, int n)
{
	int total = 0, w = 0, i;

	/* fib_rebalance(), net/ipv4/fib_semantics.c */
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

int mpbal_kunit_fib_select(const struct mpbal_nh *nh, int n, int hash)
{
	int i;

	/* fib_select_multipath() without fib_multipath_use_neigh */
	for (i = 0; i < n; i++) {
		if (hash > nh[i].upper_bound)
			continue;
		return i;
	}
	return -1;
}

/* The real net.mpbal.strategy handler: good names switch, bad ones don't. */
static void mpbal_kunit_sysctl_strategy(struct kunit *test)
{
	struct mpbal_sysctl_conf conf = { .net = &init_net, .strategy = 2 };

	KUNIT_EXPECT_EQ(test, mpbal_kunit_strategy_write(&conf, "packet\n", 7), 0);
	KUNIT_EXPECT_EQ(test, conf.strategy, 1);
	KUNIT_EXPECT_EQ(test, mpbal_kunit_strategy_write(&conf, "bandwidth", 9), 0);
	KUNIT_EXPECT_EQ(test, conf.strategy, 3);
	KUNIT_EXPECT_EQ(test, mpbal_kunit_strategy_write(&conf, "bogus\n", 6), -EINVAL);
	KUNIT_EXPECT_EQ(test, mpbal_kunit_strategy_write(&conf, "", 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, mpbal_kunit_strategy_write(&conf, "route \n", 7), -EINVAL);
	KUNIT_EXPECT_EQ(test, conf.strategy, 3);
}

static struct kunit_case mpbal_kunit_cases[] = {
	KUNIT_CASE(mpbal_rust_kunit_strategy_names),
	KUNIT_CASE(mpbal_rust_kunit_wrr),
	KUNIT_CASE(mpbal_rust_kunit_hash_range),
	KUNIT_CASE(mpbal_rust_kunit_desttable),
	KUNIT_CASE(mpbal_rust_kunit_estimator),
	KUNIT_CASE(mpbal_rust_kunit_markfield),
	KUNIT_CASE(mpbal_rust_kunit_percpu),
	KUNIT_CASE(mpbal_rust_kunit_skb_hash),
	KUNIT_CASE(mpbal_kunit_sysctl_strategy),
	{}
};

static struct kunit_suite mpbal_kunit_suite = {
	.name = "mpbal",
	.test_cases = mpbal_kunit_cases,
};

kunit_test_suite(mpbal_kunit_suite);
