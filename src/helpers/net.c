// SPDX-License-Identifier: GPL-2.0
/* Devices, clocks and rate-limited logging. */

#include <linux/ethtool.h>
#include <linux/jiffies.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/timekeeping.h>
#include <net/net_namespace.h>
#include <net/sch_generic.h>

#include "../../include/mpbal.h"

bool mpbal_dev_tx_bytes(struct net *net, int ifindex, u64 *bytes, bool *up)
{
	struct rtnl_link_stats64 st;
	struct net_device *dev;
	bool found = false;

	rcu_read_lock();
	dev = dev_get_by_index_rcu(net, ifindex);
	if (dev) {
		dev_get_stats(dev, &st);
		*bytes = st.tx_bytes;
		*up = netif_running(dev) && netif_carrier_ok(dev);
		found = true;
	}
	rcu_read_unlock();
	return found;
}

bool mpbal_dev_name_by_index(struct net *net, int ifindex, char *buf)
{
	struct net_device *dev;
	bool found = false;

	rcu_read_lock();
	dev = dev_get_by_index_rcu(net, ifindex);
	if (dev) {
		strscpy(buf, dev->name, MPBAL_IFNAMSIZ);
		found = true;
	}
	rcu_read_unlock();
	return found;
}

int mpbal_dev_ifindex(const struct net_device *dev) { return dev->ifindex; }

void mpbal_dev_name(const struct net_device *dev, char *buf)
{
	strscpy(buf, dev->name, MPBAL_IFNAMSIZ);
}

u32 mpbal_dev_speed_mbps(struct net_device *dev)
{
	struct ethtool_link_ksettings ks;

	ASSERT_RTNL();
	if (__ethtool_get_link_ksettings(dev, &ks) ||
	    ks.base.speed == SPEED_UNKNOWN)
		return 0;
	return ks.base.speed;
}

/*
 * The root qdisc's backlog; a multiqueue root (mq, mqprio) keeps none of its
 * own, so its children's are summed as mq_dump() (net/sched/sch_mq.c, 6.12)
 * does. Without the qdisc locks: an estimate, read when a flowlet may end.
 */
u32 mpbal_dev_backlog(struct net *net, int ifindex)
{
	struct net_device *dev;
	u32 qlen, backlog, sum = 0;
	struct Qdisc *q;
	unsigned int i;

	rcu_read_lock();
	dev = dev_get_by_index_rcu(net, ifindex);
	q = dev ? rcu_dereference(dev->qdisc) : NULL;
	if (q && !(q->flags & TCQ_F_MQROOT)) {
		qdisc_qstats_qlen_backlog(q, &qlen, &sum);
	} else if (q) {
		for (i = 0; i < dev->num_tx_queues; i++) {
			q = rcu_dereference(netdev_get_tx_queue(dev, i)->qdisc_sleeping);
			if (!q)
				continue;
			qdisc_qstats_qlen_backlog(q, &qlen, &backlog);
			sum += backlog;
		}
	}
	rcu_read_unlock();
	return sum;
}

u32 mpbal_now_secs(void) { return (u32)(jiffies / HZ); }
u64 mpbal_now_ms(void) { return ktime_get_ns() / NSEC_PER_MSEC; }
u64 mpbal_now_us(void) { return ktime_get_ns() / NSEC_PER_USEC; }
u64 mpbal_coarse_ms(void) { return jiffies64_to_msecs(get_jiffies_64()); }

void mpbal_log_ratelimited(bool warn, const char *msg, size_t len)
{
	if (warn)
		net_warn_ratelimited(KBUILD_MODNAME ": %.*s\n", (int)len, msg);
	else
		net_info_ratelimited(KBUILD_MODNAME ": %.*s\n", (int)len, msg);
}

void mpbal_rcu_read_lock(void) { rcu_read_lock(); }
void mpbal_rcu_read_unlock(void) { rcu_read_unlock(); }
void mpbal_synchronize_rcu(void) { synchronize_rcu(); }
