// SPDX-License-Identifier: GPL-2.0
/*
 * Module parameters: 6.12's Rust module! macro has none, so they are
 * declared here. This file stores what was given at insmod, as text, and
 * what module init then published as the effective values. Which values are
 * valid, the error messages and the defaults are Rust's (src/policy/modparams.rs):
 * init validates the given text and publishes the result; later writes of the
 * strategy go through the Rust callbacks in mpbal_ops.
 */

#include <linux/kstrtox.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "../../include/mpbal.h"
#include "helpers.h"

static struct mpbal_params_given given;
static struct mpbal_params_effective effective = { .strategy = -1 };
/* Published: the effective values are what the parameters show. */
static bool published;

/* Stores the text as given; too long is a syntax error. */
static int store_text(char *dst, bool *is_given, const char *val)
{
	if (strscpy(dst, val, MPBAL_PARAM_TEXT_MAX) < 0)
		return -EINVAL;
	*is_given = true;
	return 0;
}

static int param_set_strategy(const char *val, const struct kernel_param *kp)
{
	const struct mpbal_ops *ops = mpbal_ops_get();
	size_t len = strlen(val);
	int id;

	if (!published)
		return store_text(given.strategy, &given.strategy_given, val);
	/* The callbacks stay valid until the parameters are gone. */
	id = ops->strategy_parse(val, len);
	if (id < 0) {
		ops->strategy_invalid(val, len);
		return -EINVAL;
	}
	WRITE_ONCE(effective.strategy, id);
	return 0;
}

static int param_get_strategy(char *buf, const struct kernel_param *kp)
{
	const struct mpbal_ops *ops = mpbal_ops_get();
	const char *name = NULL;
	size_t len = 0;

	if (published && ops)
		name = ops->strategy_name(READ_ONCE(effective.strategy), &len);
	if (!name)
		return sysfs_emit(buf, "%s\n", given.strategy);
	return sysfs_emit(buf, "%.*s\n", (int)len, name);
}

static const struct kernel_param_ops strategy_param_ops = {
	.set = param_set_strategy,
	.get = param_get_strategy,
};
module_param_cb(strategy, &strategy_param_ops, NULL, 0644);
MODULE_PARM_DESC(strategy,
		 "Strategy of new network namespaces (net.mpbal.available_strategies lists them)");

static int param_set_mask(const char *val, const struct kernel_param *kp)
{
	return store_text(given.ct_mark_mask, &given.ct_mark_mask_given, val);
}

static int param_get_mask(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "0x%08x\n", effective.ct_mark_mask);
}

static const struct kernel_param_ops mask_param_ops = {
	.set = param_set_mask,
	.get = param_get_mask,
};
module_param_cb(ct_mark_mask, &mask_param_ops, NULL, 0444);
MODULE_PARM_DESC(ct_mark_mask,
		 "ct->mark bits holding a connection's uplink: one contiguous run of bits");

static int param_set_table_size(const char *val, const struct kernel_param *kp)
{
	return store_text(given.route_table_size, &given.route_table_size_given, val);
}

static int param_get_table_size(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%u\n", effective.route_table_size);
}

static const struct kernel_param_ops table_size_param_ops = {
	.set = param_set_table_size,
	.get = param_get_table_size,
};
module_param_cb(route_table_size, &table_size_param_ops, NULL, 0444);
MODULE_PARM_DESC(route_table_size,
		 "Per-destination entries per netns for the route strategy (a power of two)");

static int param_set_manage(const char *val, const struct kernel_param *kp)
{
	bool v;

	if (kstrtobool(val, &v))
		return -EINVAL;
	if (!published) {
		given.manage_hash_policy = v;
		given.manage_hash_policy_given = true;
	}
	WRITE_ONCE(effective.manage_hash_policy, v);
	return 0;
}

static int param_get_manage(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%c\n", READ_ONCE(effective.manage_hash_policy) ? 'Y' : 'N');
}

static const struct kernel_param_ops manage_param_ops = {
	.set = param_set_manage,
	.get = param_get_manage,
};
module_param_cb(manage_hash_policy, &manage_param_ops, NULL, 0644);
MODULE_PARM_DESC(manage_hash_policy,
		 "Set net.ipv4.fib_multipath_hash_policy=1 where equalize routes exist and restore it");

void mpbal_params_get_given(struct mpbal_params_given *out)
{
	*out = given;
}

int mpbal_kstrtou32(const char *s, u32 *res)
{
	return kstrtou32(s, 0, res);
}

/*
 * From mpbal_register(), under kernel_param_lock(), which serializes it with
 * sysfs parameter writes: those see the callbacks once they see published.
 */
void mpbal_params_publish(const struct mpbal_params_effective *p)
{
	WRITE_ONCE(effective.strategy, p->strategy);
	effective.ct_mark_mask = p->ct_mark_mask;
	effective.route_table_size = p->route_table_size;
	WRITE_ONCE(effective.manage_hash_policy, p->manage_hash_policy);
	WRITE_ONCE(published, true);
}

int mpbal_param_strategy(void) { return READ_ONCE(effective.strategy); }
u32 mpbal_param_ct_mark_mask(void) { return effective.ct_mark_mask; }
u32 mpbal_param_route_table_size(void) { return effective.route_table_size; }
bool mpbal_param_manage_hash_policy(void)
{
	return READ_ONCE(effective.manage_hash_policy);
}

#ifdef MPBAL_BENCH_STUBS
/*
 * Bench builds only (make bench): the packet-path stage after which the
 * hooks stop, to count what each stage costs (src/policy/benchstub.rs).
 */
static int bench_stop;
module_param(bench_stop, int, 0444);
MODULE_PARM_DESC(bench_stop, "Bench build: stop the hooks after this stage (0: never)");
int mpbal_param_bench_stop(void) { return bench_stop; }
#endif
