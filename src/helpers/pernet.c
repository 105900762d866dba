// SPDX-License-Identifier: GPL-2.0
/*
 * Module-wide registration: the callbacks into Rust, pernet operations (one
 * Rust state per netns, kept in net_generic) and the netdevice notifier.
 */

#include <linux/module.h>
#include <linux/netdevice.h>
#include <net/net_namespace.h>
#include <net/netevent.h>
#include <net/netns/generic.h>

#include "../../include/mpbal.h"
#include "helpers.h"

static const struct mpbal_ops *mpbal_ops;

const struct mpbal_ops *mpbal_ops_get(void)
{
	return READ_ONCE(mpbal_ops);
}

static unsigned int mpbal_net_id __read_mostly;

static int __net_init mpbal_net_init(struct net *net)
{
	void *state = NULL;
	int err = mpbal_ops->net_init(net, &state);

	if (err)
		return err;
	WRITE_ONCE(*(void **)net_generic(net, mpbal_net_id), state);
	return 0;
}

static void __net_exit mpbal_net_pre_exit(struct net *net)
{
	void *state = *(void **)net_generic(net, mpbal_net_id);

	if (state)
		mpbal_ops->net_pre_exit(state);
}

static void __net_exit mpbal_net_exit(struct net *net)
{
	void **slot = net_generic(net, mpbal_net_id);
	void *state = *slot;

	WRITE_ONCE(*slot, NULL);
	if (state)
		mpbal_ops->net_exit(state);
}

static struct pernet_operations mpbal_net_ops = {
	.init = mpbal_net_init,
	.pre_exit = mpbal_net_pre_exit,
	.exit = mpbal_net_exit,
	.id = &mpbal_net_id,
	.size = sizeof(void *),
};

void *mpbal_net_state(const struct net *net)
{
	return READ_ONCE(*(void **)net_generic(net, mpbal_net_id));
}

u32 mpbal_net_inum(const struct net *net) { return net->ns.inum; }

static int mpbal_netdev_event(struct notifier_block *nb, unsigned long event,
			      void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	void *state = mpbal_net_state(dev_net(dev));
	int ev;

	switch (event) {
	case NETDEV_REGISTER:
		ev = MPBAL_NETDEV_REGISTER;
		break;
	case NETDEV_UNREGISTER:
		ev = MPBAL_NETDEV_UNREGISTER;
		break;
	case NETDEV_CHANGENAME:
		ev = MPBAL_NETDEV_CHANGENAME;
		break;
	case NETDEV_UP:
	case NETDEV_CHANGE:
		ev = MPBAL_NETDEV_CHANGE;
		break;
	default:
		return NOTIFY_DONE;
	}
	if (state)
		mpbal_ops->netdev_event(state, ev, dev);
	return NOTIFY_DONE;
}

static struct notifier_block mpbal_netdev_nb = {
	.notifier_call = mpbal_netdev_event,
};

/* Someone (the admin, or mpbal itself) changed a netns's hash policy. */
static int mpbal_netevent(struct notifier_block *nb, unsigned long event,
			  void *ptr)
{
	void *state;

	if (event != NETEVENT_IPV4_MPATH_HASH_UPDATE)
		return NOTIFY_DONE;
	state = mpbal_net_state(ptr);
	if (state)
		mpbal_ops->hash_policy_event(state);
	return NOTIFY_DONE;
}

static struct notifier_block mpbal_netevent_nb = {
	.notifier_call = mpbal_netevent,
};

int mpbal_register(const struct mpbal_ops *ops,
		   const struct mpbal_params_effective *params)
{
	int err;

	err = mpbal_strategy_names_build(ops);
	if (err)
		return err;
	/* Serialized with sysfs parameter writes, which then use @ops. */
	kernel_param_lock(THIS_MODULE);
	WRITE_ONCE(mpbal_ops, ops);
	mpbal_params_publish(params);
	kernel_param_unlock(THIS_MODULE);

	err = register_pernet_subsys(&mpbal_net_ops);
	if (err)
		return err;
	err = register_netdevice_notifier(&mpbal_netdev_nb);
	if (err)
		goto pernet;
	err = register_netevent_notifier(&mpbal_netevent_nb);
	if (err)
		goto netdev;
	return 0;
netdev:
	unregister_netdevice_notifier(&mpbal_netdev_nb);
pernet:
	unregister_pernet_subsys(&mpbal_net_ops);
	return err;
}

/*
 * The notifier goes first: its unregistration replays UNREGISTER for every
 * device, removing the per-device sysctls before the netns states go. The
 * callbacks stay set: parameter writes may still use them until the module's
 * memory, which holds them, is freed.
 */
void mpbal_unregister(void)
{
	unregister_netevent_notifier(&mpbal_netevent_nb);
	unregister_netdevice_notifier(&mpbal_netdev_nb);
	unregister_pernet_subsys(&mpbal_net_ops);
}
