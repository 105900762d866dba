// SPDX-License-Identifier: GPL-2.0
/* Delayed work: 6.12's Rust has no DelayedWork. */

#include <linux/slab.h>
#include <linux/workqueue.h>

#include "../../include/mpbal.h"
#include "helpers.h"

struct mpbal_dwork {
	struct delayed_work dw;
	void (*fn)(void *data);
	void *data;
};

static void mpbal_dwork_fn(struct work_struct *w)
{
	struct mpbal_dwork *d = container_of(to_delayed_work(w),
					     struct mpbal_dwork, dw);

	d->fn(d->data);
}

int mpbal_dwork_create(void (*fn)(void *data), void *data,
		       struct mpbal_dwork **out)
{
	struct mpbal_dwork *d = kzalloc(sizeof(*d), GFP_KERNEL_ACCOUNT);

	if (!d)
		return -ENOMEM;
	INIT_DELAYED_WORK(&d->dw, mpbal_dwork_fn);
	d->fn = fn;
	d->data = data;
	*out = d;
	return 0;
}

void mpbal_dwork_schedule(struct mpbal_dwork *d, unsigned int delay_ms)
{
	mod_delayed_work(system_power_efficient_wq, &d->dw,
			 msecs_to_jiffies(delay_ms));
}

/* A sysctl changed: run the worker now (conntrack, hash policy, state). */
void mpbal_dwork_kick(struct mpbal_dwork *d)
{
	if (d)
		mpbal_dwork_schedule(d, 0);
}

void mpbal_dwork_cancel_sync(struct mpbal_dwork *d)
{
	disable_delayed_work_sync(&d->dw);
}

void mpbal_dwork_destroy(struct mpbal_dwork *d)
{
	kfree(d);
}
