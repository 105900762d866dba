// SPDX-License-Identifier: GPL-2.0
/*
 * FIB notifier: reports the routes of a netns to Rust as plain facts; which
 * of them are equalize routes mpbal steers is decided in Rust
 * (RouteKind::classify in src/core/nexthop.rs).
 */

#include <linux/slab.h>
#include <net/fib_notifier.h>
#include <net/ip_fib.h>
#include <net/nexthop.h>

#include "../../include/mpbal.h"
#include "helpers.h"

static_assert(MPBAL_RTN_UNICAST == RTN_UNICAST);

struct mpbal_fib_nb {
	struct notifier_block nb;
	void *priv;
};

static int mpbal_fib_event(struct notifier_block *nb, unsigned long event,
			   void *ptr)
{
	struct mpbal_fib_nb *f = container_of(nb, struct mpbal_fib_nb, nb);
	const struct mpbal_ops *ops = mpbal_ops_get();
	struct fib_notifier_info *info = ptr;
	struct fib_entry_notifier_info *fen;
	struct mpbal_fib_route r = {};
	struct fib_info *fi;
	u32 i;

	if (info->family != AF_INET)
		return NOTIFY_DONE;
	if (event != FIB_EVENT_ENTRY_REPLACE && event != FIB_EVENT_ENTRY_APPEND &&
	    event != FIB_EVENT_ENTRY_DEL)
		return NOTIFY_DONE;

	fen = container_of(info, struct fib_entry_notifier_info, info);
	fi = fen->fi;
	r.tb_id = fen->tb_id;
	r.dst = htonl(fen->dst);
	r.dst_len = fen->dst_len;
	r.type = fen->type;
	r.equalize_flag = fi->fib_flags & RTM_F_EQUALIZE;
	r.nh_object = fi->nh;
	r.nr_paths = fib_info_num_path(fi);
	if (!fi->nh) {
		r.nr_oifs = min_t(u32, r.nr_paths, MPBAL_MAX_NEXTHOPS);
		for (i = 0; i < r.nr_oifs; i++) {
			const struct fib_nh *nh = fib_info_nh(fi, i);

			r.oifs[i] = nh->fib_nh_oif;
			r.gws[i] = nh->fib_nh_gw_family == AF_INET ?
				   (__force u32)nh->fib_nh_gw4 : 0;
		}
	}
	if (event == FIB_EVENT_ENTRY_DEL) {
		ops->fib_event(f->priv, MPBAL_FIB_DEL, &r);
		return NOTIFY_DONE;
	}
	ops->fib_event(f->priv, MPBAL_FIB_REPLACE, &r);
	return NOTIFY_DONE;
}

static void mpbal_fib_dump_flush(struct notifier_block *nb)
{
	struct mpbal_fib_nb *f = container_of(nb, struct mpbal_fib_nb, nb);

	mpbal_ops_get()->fib_flush(f->priv);
}

int mpbal_fib_notifier_register(struct net *net, void *priv,
				struct mpbal_fib_nb **out)
{
	struct mpbal_fib_nb *f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	int err;

	if (!f)
		return -ENOMEM;
	f->nb.notifier_call = mpbal_fib_event;
	f->priv = priv;
	/* Replays every existing route before it returns. */
	err = register_fib_notifier(net, &f->nb, mpbal_fib_dump_flush, NULL);
	if (err) {
		kfree(f);
		return err;
	}
	*out = f;
	return 0;
}

/* Unregistering an atomic notifier waits for callbacks in flight. */
void mpbal_fib_notifier_unregister(struct net *net, struct mpbal_fib_nb *f)
{
	unregister_fib_notifier(net, &f->nb);
	kfree(f);
}
