// SPDX-License-Identifier: GPL-2.0

//! Per-device configuration: `net.mpbal.conf.DEV.{capacity,uplink_id}` and
//! the ethtool link speed, kept for every device of the netns so they can be
//! set before a device becomes an uplink.

use super::counters::MAX_UPLINKS;
use super::state::NetState;
use super::uplinks::{CapacitySource, Pins};
use crate::sys::log::warn_ratelimited;
use crate::sys::net::NetDevice;
use crate::sys::netns::NetdevEvent;
use crate::sys::sysctl::DevSysctl;
use kernel::alloc::{flags::GFP_KERNEL, KBox, KVec};
use kernel::error::Result;

struct DevConf {
    ifindex: u32,
    speed_mbps: u32,
    sysctl: KBox<DevSysctl>,
}

/// All devices of the netns. Entries of removed devices become `None` and
/// are reused (6.12's `KVec` cannot remove elements).
pub(crate) struct Devices {
    list: KVec<Option<DevConf>>,
}

impl Devices {
    pub(crate) fn new() -> Self {
        Devices { list: KVec::new() }
    }

    fn get(&self, ifindex: u32) -> Option<&DevConf> {
        self.list.iter().flatten().find(|d| d.ifindex == ifindex)
    }

    fn get_mut(&mut self, ifindex: u32) -> Option<&mut DevConf> {
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
        match d.sysctl.capacity() {
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
            let id = d.sysctl.uplink_id();
            if let Some(p) = usize::try_from(id - 1).ok().and_then(|i| pins.get_mut(i)) {
                // Two devices pinning one id: the first keeps it.
                if *p == 0 {
                    *p = d.ifindex;
                }
            }
        }
    }

    /// Forgets every device (netns teardown): their sysctls go.
    pub(crate) fn clear(&mut self) {
        for d in self.list.as_mut_slice() {
            drop(d.take());
        }
    }

    fn remove(&mut self, ifindex: u32) -> Option<DevConf> {
        self.list
            .iter_mut()
            .find(|d| d.as_ref().is_some_and(|d| d.ifindex == ifindex))?
            .take()
    }

    fn insert(&mut self, conf: DevConf) -> Result {
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
            if let Err(e) = add(&mut devs, st, dev, (0, 0)) {
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
            // keeping the configured values.
            let mut devs = st.devices.lock();
            let kept = devs
                .remove(ifindex)
                .map_or((0, 0), |d| (d.sysctl.capacity(), d.sysctl.uplink_id()));
            if let Err(e) = add(&mut devs, st, dev, kept) {
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

fn add(
    devs: &mut Devices,
    st: &NetState,
    dev: &NetDevice<'_>,
    (capacity, id): (u64, i32),
) -> Result {
    let conf = DevConf {
        ifindex: dev.ifindex(),
        speed_mbps: dev.speed_mbps(),
        sysctl: DevSysctl::register(
            st.net,
            &dev.name(),
            capacity,
            id,
            MAX_UPLINKS as i32,
            &st.work,
        )?,
    };
    devs.insert(conf)
}
