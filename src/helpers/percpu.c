// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU memory for the hooks. Exported to mpbal_kunit.ko only
 * (EXPORT_SYMBOL_IF_KUNIT), which tests the Rust wrapper over it.
 */

#include <kunit/visibility.h>
#include <linux/bottom_half.h>
#include <linux/cpumask.h>
#include <linux/percpu.h>
#include <linux/preempt.h>

#include "../../include/mpbal.h"

void *mpbal_percpu_alloc(size_t size, size_t align)
{
	return (void __force *)__alloc_percpu_gfp(size, align, GFP_KERNEL_ACCOUNT);
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_percpu_alloc);

void mpbal_percpu_free(void *pcpu)
{
	free_percpu((void __percpu __force *)pcpu);
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_percpu_free);

/*
 * The hooks of forwarded packets run in softirq, where BH is off already:
 * disabling it again would only add a local_bh_enable() per packet.
 */
void *mpbal_percpu_get_bh(void *pcpu, bool *disabled)
{
	*disabled = !softirq_count();
	if (*disabled)
		local_bh_disable();
	return this_cpu_ptr((void __percpu __force *)pcpu);
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_percpu_get_bh);

void mpbal_percpu_put_bh(bool disabled)
{
	if (disabled)
		local_bh_enable();
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_percpu_put_bh);

void *mpbal_percpu_ptr(void *pcpu, int cpu)
{
	return per_cpu_ptr((void __percpu __force *)pcpu, cpu);
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_percpu_ptr);

int mpbal_cpu_next(int cpu) { return cpumask_next(cpu, cpu_possible_mask); }
EXPORT_SYMBOL_IF_KUNIT(mpbal_cpu_next);

int mpbal_nr_cpu_ids(void) { return nr_cpu_ids; }
EXPORT_SYMBOL_IF_KUNIT(mpbal_nr_cpu_ids);
