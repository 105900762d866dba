// SPDX-License-Identifier: GPL-2.0

//! Per-device configuration: `net.mpbal.conf.DEV.{capacity,uplink_id,down,
//! tier}` and the ethtool link speed, kept for every device of the netns so
//! they can be set before a device becomes an uplink; and what an
//! administrative state change does.

use super::counters::MAX_UPLINKS;
use super::state::{Knob, NetState};
use super::uplinks::{Admin, CapacitySource, Pins};
use crate::mpbal_core::nexthop::{uplink_bit, UplinkMask, MAX_TIER, MIN_TIER};
use crate::sys::log::{info_ratelimited, warn_ratelimited};
use crate::sys::net::NetDevice;
use crate::sys::netns::{AdminEvent, NetdevEvent};
use crate::sys::sysctl::{DevConf, DevSysctl, DevValues};
use core::sync::atomic::Ordering;
use kernel::alloc::{flags::GFP_KERNEL, KBox, KVec};
use kernel::error::Result;

struct DevEntry {
    ifindex: u32,
    speed_mbps: u32,
    sysctl: KBox<DevSysctl>,
}

/// All devices of the netns. Entries of removed devices become `None` and
/// are reused (6.12's `KVec` cannot remove elements).
pub(crate) struct Devices {
    list: KVec<Option<DevEntry>>,
}

impl Devices {
    pub(crate) fn new() -> Self {
        Devices { list: KVec::new() }
    }

    fn get(&self, ifindex: u32) -> Option<&DevEntry> {
        self.list.iter().flatten().find(|d| d.ifindex == ifindex)
    }

    fn get_mut(&mut self, ifindex: u32) -> Option<&mut DevEntry> {
        self.list
            .iter_mut()
            .flatten()
            .find(|d| d.ifindex == ifindex)
    }

    /// Capacity of a device in bit/s and where it comes from.
    pub(crate) fn capacity(&self, ifindex: u32) -> (u64, CapacitySource) {
        let Some(d) = self.get(ifindex) else {
            return (0, CapacitySource::None);
        };
        match d.sysctl.conf().capacity() {
            0 if d.speed_mbps != 0 => {
                (u64::from(d.speed_mbps) * 1_000_000, CapacitySource::Ethtool)
            }
            0 => (0, CapacitySource::None),
            bps => (bps, CapacitySource::Config),
        }
    }

    /// The uplink ids the devices pin.
    pub(crate) fn pins(&self, pins: &mut Pins) {
        for d in self.list.iter().flatten() {
            let id = d.sysctl.conf().uplink_id();
            if let Some(p) = usize::try_from(id - 1).ok().and_then(|i| pins.get_mut(i)) {
                // Two devices pinning one id: the first keeps it.
                if *p == 0 {
                    *p = d.ifindex;
                }
            }
        }
    }

    /// The administrative state of a device's uplinks.
    pub(crate) fn admin(&self, ifindex: u32) -> Admin {
        self.get(ifindex)
            .map_or(Admin::UP, |d| admin_of(d.sysctl.conf()))
    }

    /// What `net.mpbal.conf.DEV` holds for a device.
    pub(crate) fn values(&self, ifindex: u32) -> DevValues {
        self.get(ifindex)
            .map_or(DevValues::NEW, |d| d.sysctl.conf().values())
    }

    /// Forgets every device (netns teardown): their sysctls go.
    pub(crate) fn clear(&mut self) {
        for d in self.list.as_mut_slice() {
            drop(d.take());
        }
    }

    fn remove(&mut self, ifindex: u32) -> Option<DevEntry> {
        self.list
            .iter_mut()
            .find(|d| d.as_ref().is_some_and(|d| d.ifindex == ifindex))?
            .take()
    }

    fn insert(&mut self, conf: DevEntry) -> Result {
        match self.list.iter_mut().find(|d| d.is_none()) {
            Some(free) => *free = Some(conf),
            None => self.list.push(Some(conf), GFP_KERNEL)?,
        }
        Ok(())
    }
}

/// A netdevice notifier event (RTNL held, process context).
pub(crate) fn netdev_event(st: &NetState, event: NetdevEvent, dev: &NetDevice<'_>) {
    let ifindex = dev.ifindex();
    match event {
        NetdevEvent::Register => {
            let mut devs = st.devices.lock();
            if devs.get(ifindex).is_some() {
                return;
            }
            if let Err(e) = add(&mut devs, st, dev, &DevValues::NEW) {
                warn_ratelimited(format_args!(
                    "netns {}: no net.mpbal.conf.{} sysctls: {:?}",
                    st.net.inum(),
                    dev.name().as_str(),
                    e
                ));
            }
        }
        NetdevEvent::Unregister => {
            drop(st.devices.lock().remove(ifindex));
            st.device_gone(ifindex);
        }
        NetdevEvent::ChangeName => {
            // The sysctl directory is named after the device: re-register it,
            // keeping the configured values and counters.
            let mut devs = st.devices.lock();
            let kept = devs
                .remove(ifindex)
                .map_or(DevValues::NEW, |d| d.sysctl.conf().values());
            if let Err(e) = add(&mut devs, st, dev, &kept) {
                warn_ratelimited(format_args!(
                    "netns {}: lost net.mpbal.conf.{}: {:?}",
                    st.net.inum(),
                    dev.name().as_str(),
                    e
                ));
            }
        }
        NetdevEvent::Change => {
            let speed = dev.speed_mbps();
            if let Some(d) = st.devices.lock().get_mut(ifindex) {
                d.speed_mbps = speed;
            }
        }
    }
}

fn add(devs: &mut Devices, st: &NetState, dev: &NetDevice<'_>, values: &DevValues) -> Result {
    let ifindex = dev.ifindex();
    let conf = DevEntry {
        ifindex,
        speed_mbps: dev.speed_mbps(),
        sysctl: DevSysctl::register(
            st.net,
            &dev.name(),
            ifindex,
            values,
            (MAX_UPLINKS as i32, i32::from(MAX_TIER)),
            &st.work,
        )?,
    };
    devs.insert(conf)
}

/// The state a device's values give its uplinks.
fn admin_of(conf: &DevConf) -> Admin {
    Admin {
        down: conf.down(),
        // The handler keeps it in range; the clamp only makes it a tier.
        tier: conf.tier().clamp(MIN_TIER.into(), MAX_TIER.into()) as u8,
    }
}

/// `net.mpbal.conf.DEV.down` or `tier` changed (the sysctl write, process
/// context): the device's uplinks follow before the write returns. A down
/// is counted and, with `ct_flush_on_down`, removes the source-NATed
/// connections stored on those uplinks, so that their clients reconnect
/// (through another uplink, with its address) instead of hanging.
pub(crate) fn admin_event(st: &NetState, conf: &DevConf, ev: AdminEvent) {
    let ifindex = conf.ifindex();
    // Stored, then checked against the values again: of two racing
    // copies (another write's, the worker's), the last one stored is
    // of the values as they stay.
    loop {
        let admin = admin_of(conf);
        st.uplinks.set_device_admin(ifindex, admin);
        if admin_of(conf) == admin {
            break;
        }
    }
    let mut flushed = 0;
    match ev {
        AdminEvent::Tier => return,
        AdminEvent::Up => conf.count_admin(false),
        AdminEvent::Down => {
            conf.count_admin(true);
            if st.knob(Knob::CtFlushOnDown) != 0 {
                flushed = ct_flush_device(st, ifindex);
                conf.add_ct_flushed(flushed);
                st.ct_flushed.fetch_add(flushed, Ordering::Relaxed);
            }
        }
    }
    let name = st.net.dev_name(ifindex);
    info_ratelimited(format_args!(
        "netns {}: uplink device {} administratively {} ({} conntrack entries flushed)",
        st.net.inum(),
        name.as_ref().map_or("?", |n| n.as_str()),
        if ev == AdminEvent::Down { "down" } else { "up" },
        flushed
    ));
}

/// Deletes the source-NATed connections whose mark names an uplink of
/// device `ifindex`; returns how many.
fn ct_flush_device(st: &NetState, ifindex: u32) -> u64 {
    let mut ids: UplinkMask = 0;
    st.uplinks.for_each_id(|id, ifi| {
        if ifi == ifindex {
            ids |= uplink_bit(id);
        }
    });
    if ids == 0 {
        return 0;
    }
    let mark = st.mark;
    st.net
        .ct_flush_snat(&|m: u32| ids & uplink_bit(mark.get(m)) != 0)
}
