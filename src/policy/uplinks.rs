//! The uplinks of a netns: devices that are nexthops of its equalize routes.
//!
//! A fixed array of slots, so the packet path finds an uplink with a short
//! scan of atomics and no lock. Slots change only when the set of equalize
//! routes changes (under the route set's lock) or a device goes away.

use super::counters::MAX_UPLINKS;
use crate::mpbal_core::estimator::booked_rate;
use crate::mpbal_core::strategy::{LoadSource, UplinkLoad};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::macros::Zeroable;

/// Where an uplink's capacity comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CapacitySource {
    /// Unknown: see the bandwidth strategy for how it is treated.
    None,
    /// `net.mpbal.conf.DEV.capacity`.
    Config,
    /// The ethtool link speed.
    Ethtool,
}

impl CapacitySource {
    pub(crate) fn name(self) -> &'static str {
        match self {
            CapacitySource::None => "none",
            CapacitySource::Config => "config",
            CapacitySource::Ethtool => "ethtool",
        }
    }
}

/// One uplink. `ifindex == 0` marks a free slot.
#[derive(Default)]
pub(crate) struct UplinkSlot {
    ifindex: AtomicU32,
    /// Estimated tx rate, bit/s (written by the worker).
    rate_bps: AtomicU64,
    /// Capacity in bit/s, 0 if unknown (written by the worker).
    capacity_bps: AtomicU64,
    up: AtomicBool,
    /// Connections assigned to this uplink since it became one: first
    /// choices, rechoices and inbound connections (a running total).
    sessions: AtomicU64,
    /// Per-CPU counter sums when the slot was taken, so a reused slot
    /// starts from zero without touching other CPUs' counters.
    base_packets: AtomicU64,
    base_bytes: AtomicU64,
}

/// Snapshot of one uplink for display.
pub(crate) struct UplinkView {
    pub(crate) slot: usize,
    pub(crate) ifindex: u32,
    pub(crate) rate_bps: u64,
    pub(crate) up: bool,
    pub(crate) sessions: u64,
    pub(crate) base_packets: u64,
    pub(crate) base_bytes: u64,
}

/// The uplink table of a netns.
pub(crate) struct Uplinks {
    slots: [UplinkSlot; MAX_UPLINKS],
}

impl Default for Uplinks {
    fn default() -> Self {
        Uplinks {
            slots: core::array::from_fn(|_| UplinkSlot::default()),
        }
    }
}

impl Uplinks {
    /// Slot of `ifindex`.
    pub(crate) fn find(&self, ifindex: u32) -> Option<usize> {
        if ifindex == 0 {
            return None;
        }
        self.slots
            .iter()
            .position(|s| s.ifindex.load(Ordering::Acquire) == ifindex)
    }

    pub(crate) fn contains(&self, ifindex: u32) -> bool {
        self.find(ifindex).is_some()
    }

    /// Makes the table hold exactly `oifs` (as far as slots go): frees the
    /// slots of devices no longer used and takes slots for new ones, with
    /// `sums(slot)` giving the counter sums to start from.
    ///
    /// Callers serialize (the route set's lock).
    pub(crate) fn sync(&self, oifs: &[u32], sums: impl Fn(usize) -> (u64, u64)) {
        for s in &self.slots {
            let ifindex = s.ifindex.load(Ordering::Relaxed);
            if ifindex != 0 && !oifs.contains(&ifindex) {
                s.ifindex.store(0, Ordering::Release);
            }
        }
        for &oif in oifs {
            if oif == 0 || self.contains(oif) {
                continue;
            }
            let Some(slot) = self
                .slots
                .iter()
                .position(|s| s.ifindex.load(Ordering::Relaxed) == 0)
            else {
                return;
            };
            let s = &self.slots[slot];
            let (packets, bytes) = sums(slot);
            s.base_packets.store(packets, Ordering::Relaxed);
            s.base_bytes.store(bytes, Ordering::Relaxed);
            s.sessions.store(0, Ordering::Relaxed);
            s.rate_bps.store(0, Ordering::Relaxed);
            s.capacity_bps.store(0, Ordering::Relaxed);
            s.up.store(true, Ordering::Relaxed);
            // Publish last: readers that see the ifindex see a clean slot.
            s.ifindex.store(oif, Ordering::Release);
        }
    }

    /// Frees the slot of a device that is going away.
    pub(crate) fn release(&self, ifindex: u32) {
        if let Some(slot) = self.find(ifindex) {
            self.slots[slot].ifindex.store(0, Ordering::Release);
        }
    }

    /// Counts a connection assigned to the uplink in `slot`.
    pub(crate) fn add_session(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            s.sessions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Publishes the worker's view of an uplink.
    pub(crate) fn set_load(&self, slot: usize, rate_bps: u64, capacity_bps: u64, up: bool) {
        if let Some(s) = self.slots.get(slot) {
            s.rate_bps.store(rate_bps, Ordering::Relaxed);
            s.capacity_bps.store(capacity_bps, Ordering::Relaxed);
            s.up.store(up, Ordering::Relaxed);
        }
    }

    /// Ifindex of every used slot, by slot.
    pub(crate) fn ifindexes(&self) -> [u32; MAX_UPLINKS] {
        core::array::from_fn(|i| self.slots[i].ifindex.load(Ordering::Acquire))
    }

    /// Snapshot of every used slot.
    pub(crate) fn for_each(&self, mut f: impl FnMut(UplinkView)) {
        for (slot, s) in self.slots.iter().enumerate() {
            let ifindex = s.ifindex.load(Ordering::Acquire);
            if ifindex == 0 {
                continue;
            }
            f(UplinkView {
                slot,
                ifindex,
                rate_bps: s.rate_bps.load(Ordering::Relaxed),
                up: s.up.load(Ordering::Relaxed),
                sessions: s.sessions.load(Ordering::Relaxed),
                base_packets: s.base_packets.load(Ordering::Relaxed),
                base_bytes: s.base_bytes.load(Ordering::Relaxed),
            });
        }
    }
}

/// Bits this CPU steered to each uplink since the estimator's last sample
/// (see `estimator::booked_rate`). Per CPU, so the bandwidth strategy shares
/// no cache line between CPUs per packet; each CPU books only its own
/// traffic, which is exact when a flow's packets stay on one CPU.
#[derive(Default, Zeroable)]
pub(crate) struct Booking {
    /// `NetState::sample_epoch` the bits were booked in.
    epoch: u32,
    bits: [u64; MAX_UPLINKS],
}

impl Booking {
    /// Starts over when the estimator has sampled since.
    pub(crate) fn refresh(&mut self, epoch: u32) {
        if self.epoch != epoch {
            *self = Booking {
                epoch,
                ..Booking::default()
            };
        }
    }
}

/// Uplink load as the bandwidth strategy sees it: the estimate plus what
/// this CPU has steered since the estimate was made.
pub(crate) struct BookedLoad<'a> {
    pub(crate) uplinks: &'a Uplinks,
    pub(crate) booking: &'a mut Booking,
    pub(crate) interval_ms: u32,
    pub(crate) since_sample_ms: u64,
}

impl LoadSource for BookedLoad<'_> {
    fn load(&self, oif: u32) -> Option<UplinkLoad> {
        let slot = self.uplinks.find(oif)?;
        let mut load = self.uplinks.load_of(slot)?;
        let booked = self.booking.bits.get(slot).copied().unwrap_or(0);
        load.rate_bps = load.rate_bps.saturating_add(booked_rate(
            booked,
            self.interval_ms,
            self.since_sample_ms,
        ));
        Some(load)
    }

    fn book(&mut self, oif: u32, bits: u64) {
        if let Some(b) = self
            .uplinks
            .find(oif)
            .and_then(|s| self.booking.bits.get_mut(s))
        {
            *b = b.saturating_add(bits);
        }
    }
}

impl Uplinks {
    fn load_of(&self, slot: usize) -> Option<UplinkLoad> {
        let s = self.slots.get(slot)?;
        Some(UplinkLoad {
            rate_bps: s.rate_bps.load(Ordering::Relaxed),
            capacity_bps: s.capacity_bps.load(Ordering::Relaxed),
        })
    }
}
