// SPDX-License-Identifier: GPL-2.0
/*
 * Netfilter hooks, conntrack and the multipath hash policy of a netns.
 */

#include <kunit/visibility.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/slab.h>
#include <net/net_namespace.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netevent.h>
#include <net/netfilter/nf_conntrack_ecache.h>

#include "../../include/mpbal.h"
#include "helpers.h"

/*
 * PRE_ROUTING: after conntrack, DNAT and every mangle or filter chain that may
 * set a mark, and before the route lookup in ip_rcv_finish().
 * LOCAL_OUT: after conntrack, DNAT and the mangle reroute, so ours stands.
 * POST_ROUTING: after SNAT, just before conntrack confirms the entry, so the
 * uplink stored in ct->mark is part of the NEW event conntrackd replicates.
 */
static const struct nf_hook_ops hook_template[] = {
	{
		.pf = NFPROTO_IPV4,
		.hooknum = NF_INET_PRE_ROUTING,
		.priority = NF_IP_PRI_LAST - 1,
	},
	{
		.pf = NFPROTO_IPV4,
		.hooknum = NF_INET_LOCAL_OUT,
		.priority = NF_IP_PRI_LAST - 1,
	},
	{
		.pf = NFPROTO_IPV4,
		.hooknum = NF_INET_POST_ROUTING,
		.priority = NF_IP_PRI_CONNTRACK_CONFIRM - 1,
	},
};

int mpbal_hooks_register(struct net *net, void *priv, struct nf_hook_ops **out)
{
	const struct mpbal_ops *cb = mpbal_ops_get();
	struct nf_hook_ops *ops;
	int i, err;

	ops = kmemdup(hook_template, sizeof(hook_template), GFP_KERNEL_ACCOUNT);
	if (!ops)
		return -ENOMEM;
	ops[0].hook = cb->prerouting;
	ops[1].hook = cb->local_out;
	ops[2].hook = cb->postrouting;
	for (i = 0; i < ARRAY_SIZE(hook_template); i++)
		ops[i].priv = priv;
	err = nf_register_net_hooks(net, ops, ARRAY_SIZE(hook_template));
	if (err) {
		kfree(ops);
		return err;
	}
	*out = ops;
	return 0;
}

/*
 * nf_unregister_net_hooks() does not wait: an skb that already fetched the
 * old hook entries (under rcu_read_lock) can still be inside one of our
 * hooks with the state as priv. Wait for those before the caller frees
 * anything, and before the ops that the old entries still point to go.
 */
void mpbal_hooks_unregister(struct net *net, struct nf_hook_ops *ops)
{
	nf_unregister_net_hooks(net, ops, ARRAY_SIZE(hook_template));
	synchronize_net();
	kfree(ops);
}

/*
 * At netns teardown: unregister without waiting. pernet pre_exit calls
 * this, and the core runs a grace period before exit, which covers the hook
 * calls in flight; the ops are freed then, with mpbal_hooks_free().
 */
void mpbal_hooks_unregister_nowait(struct net *net, struct nf_hook_ops *ops)
{
	nf_unregister_net_hooks(net, ops, ARRAY_SIZE(hook_template));
}

void mpbal_hooks_free(struct nf_hook_ops *ops)
{
	kfree(ops);
}

int mpbal_conntrack_get(struct net *net)
{
	return nf_ct_netns_get(net, NFPROTO_IPV4);
}

void mpbal_conntrack_put(struct net *net)
{
	nf_ct_netns_put(net, NFPROTO_IPV4);
}

struct nf_conn *mpbal_skb_ct(const struct sk_buff *skb, bool *reply, bool *is_new)
{
	enum ip_conntrack_info ctinfo;
	struct nf_conn *ct = nf_ct_get(skb, &ctinfo);

	if (!ct)
		return NULL;
	*reply = CTINFO2DIR(ctinfo) == IP_CT_DIR_REPLY;
	*is_new = ctinfo == IP_CT_NEW;
	return ct;
}

u32 mpbal_ct_mark(const struct nf_conn *ct)
{
	return READ_ONCE(ct->mark);
}

/* As the kernel's own mark writers (nft_ct_set_eval()): WRITE_ONCE + event. */
void mpbal_ct_set_mark(struct nf_conn *ct, u32 mark)
{
	if (READ_ONCE(ct->mark) != mark) {
		WRITE_ONCE(ct->mark, mark);
		nf_conntrack_event_cache(IPCT_MARK, ct);
	}
}

struct ct_flush {
	bool (*match)(void *data, u32 mark);
	void *data;
	u64 flushed;
};

/* Under the bucket lock, once per entry (its reply tuple). */
static int ct_flush_iter(struct nf_conn *ct, void *data)
{
	struct ct_flush *f = data;

	/* Entries another CPU is deleting are not ours to count. */
	if (!test_bit(IPS_SRC_NAT_BIT, &ct->status) || nf_ct_is_dying(ct))
		return 0;
	if (!f->match(f->data, READ_ONCE(ct->mark)))
		return 0;
	f->flushed++;
	return 1;
}

u64 mpbal_ct_flush_snat(struct net *net, bool (*match)(void *data, u32 mark),
			void *data)
{
	struct ct_flush f = { .match = match, .data = data };
	struct nf_ct_iter_data iter = { .net = net, .data = &f };

	/* Serialized by nf_conntrack_mutex: f.flushed needs no atomics. */
	nf_ct_iterate_cleanup_net(ct_flush_iter, &iter);
	return f.flushed;
}

int mpbal_hash_policy(const struct net *net)
{
	return READ_ONCE(net->ipv4.sysctl_fib_multipath_hash_policy);
}

/*
 * As the sysctl's handler (proc_fib_multipath_hash_policy()) does: the
 * netevent tells offloading drivers to follow.
 */
void mpbal_set_hash_policy(struct net *net, int policy)
{
	WRITE_ONCE(net->ipv4.sysctl_fib_multipath_hash_policy, policy);
	call_netevent_notifiers(NETEVENT_IPV4_MPATH_HASH_UPDATE, net);
}
EXPORT_SYMBOL_IF_KUNIT(mpbal_set_hash_policy);
EXPORT_SYMBOL_IF_KUNIT(mpbal_hash_policy);
