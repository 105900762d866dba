// SPDX-License-Identifier: GPL-2.0

//! The uplinks of a netns: the (device, gateway) pairs that are nexthops of
//! its equalize routes, each with a small id.
//!
//! The id (1 to [`MAX_UPLINKS`]) is what a connection's mark and the route
//! strategy's table store, so it must not change while the uplink exists and
//! must mean the same uplink on another router configured alike (a backup
//! that receives replicated conntrack marks):
//! - an uplink keeps its id for as long as it is a nexthop of some equalize
//!   route, whatever happens to its device's ifindex elsewhere;
//! - new uplinks take the lowest free id, in the order the routes list them,
//!   so the same routes give the same ids;
//! - `net.mpbal.conf.DEV.uplink_id` pins the id of the device's first
//!   uplink (lowest gateway), whatever the order.
//!
//! A fixed array of slots (slot `id - 1`), so the packet path reads an
//! uplink with no lock. Slots change only under the route set's lock.

use super::counters::MAX_UPLINKS;
use crate::mpbal_core::loadtable::LoadTable;
use crate::mpbal_core::nexthop::{MAX_TIER, MIN_TIER};
use crate::mpbal_core::strategy::UplinkLoad;
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

/// An uplink's administrative state, its device's `net.mpbal.conf.DEV.down`
/// and `tier`, as the packet path reads it (one word, one load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Admin {
    pub(crate) down: bool,
    pub(crate) tier: u8,
}

impl Admin {
    /// Every device's until configured otherwise.
    pub(crate) const UP: Admin = Admin {
        down: false,
        tier: MIN_TIER,
    };

    /// A new uplink of a netns whose devices were configured, until the
    /// worker has copied its device's state: never chosen meanwhile.
    const UNKNOWN: Admin = Admin {
        down: true,
        tier: MAX_TIER,
    };

    fn pack(self) -> u32 {
        u32::from(self.down) | (u32::from(self.tier) << 8)
    }

    fn unpack(w: u32) -> Self {
        Admin {
            down: w & 1 != 0,
            tier: ((w >> 8) as u8).clamp(MIN_TIER, MAX_TIER),
        }
    }
}

/// One uplink. `ifindex == 0` marks a free slot.
#[derive(Default)]
pub(crate) struct UplinkSlot {
    ifindex: AtomicU32,
    /// Gateway, network byte order; 0 for a device route.
    gw: AtomicU32,
    /// Estimated tx rate, bit/s (written by the worker).
    rate_bps: AtomicU64,
    /// Capacity in bit/s, 0 if unknown (written by the worker).
    capacity_bps: AtomicU64,
    up: AtomicBool,
    /// [`Admin`], packed.
    admin: AtomicU32,
    /// Connections assigned to this uplink since it became one: first
    /// choices, rechoices and inbound connections (a running total).
    sessions: AtomicU64,
    /// Per-CPU counter sums when the slot was taken, so a reused slot
    /// starts from zero without touching other CPUs' counters.
    base_packets: AtomicU64,
    base_bytes: AtomicU64,
}

impl UplinkSlot {
    fn key(&self) -> (u32, u32) {
        (
            self.ifindex.load(Ordering::Acquire),
            self.gw.load(Ordering::Relaxed),
        )
    }
}

/// Snapshot of one uplink for display.
pub(crate) struct UplinkView {
    pub(crate) id: u32,
    pub(crate) ifindex: u32,
    pub(crate) gw: u32,
    pub(crate) rate_bps: u64,
    pub(crate) up: bool,
    pub(crate) sessions: u64,
    pub(crate) base_packets: u64,
    pub(crate) base_bytes: u64,
}

/// `pins[i]`: the ifindex whose first uplink has id `i + 1`, 0 if none.
pub(crate) type Pins = [u32; MAX_UPLINKS];

/// The uplink table of a netns.
pub(crate) struct Uplinks {
    slots: [UplinkSlot; MAX_UPLINKS],
    /// Bumped whenever an id changes hands or an uplink's [`Admin`]
    /// changes: cached routes carry both.
    gen: AtomicU32,
    /// Uplinks of equalize routes that found no free id (never chosen).
    untracked: AtomicU32,
    /// A device was once set down or to another tier: new uplinks wait
    /// for the worker to copy their device's state.
    configured: AtomicBool,
}

impl Default for Uplinks {
    fn default() -> Self {
        Uplinks {
            slots: core::array::from_fn(|_| UplinkSlot::default()),
            gen: AtomicU32::new(0),
            untracked: AtomicU32::new(0),
            configured: AtomicBool::new(false),
        }
    }
}

fn index(id: u32) -> Option<usize> {
    (id as usize).checked_sub(1)
}

impl Uplinks {
    /// The id of the uplink `(ifindex, gw)`, 0 if it is not one.
    pub(crate) fn id(&self, ifindex: u32, gw: u32) -> u32 {
        self.find(ifindex, gw).0
    }

    /// The id and state of the uplink `(ifindex, gw)`; `(0, UP)` if it is
    /// not one.
    pub(crate) fn find(&self, ifindex: u32, gw: u32) -> (u32, Admin) {
        if ifindex == 0 {
            return (0, Admin::UP);
        }
        self.slots
            .iter()
            .position(|s| s.key() == (ifindex, gw))
            .map_or((0, Admin::UP), |i| {
                let admin = self.slots[i].admin.load(Ordering::Relaxed);
                (i as u32 + 1, Admin::unpack(admin))
            })
    }

    /// Sets the state of device `ifindex`'s uplinks (a sysctl write): the
    /// next packet sees it, since cached routes carry it.
    pub(crate) fn set_device_admin(&self, ifindex: u32, admin: Admin) {
        if admin != Admin::UP {
            self.configured.store(true, Ordering::Release);
        }
        let mut changed = false;
        for s in &self.slots {
            if ifindex != 0 && s.ifindex.load(Ordering::Acquire) == ifindex {
                changed |= s.admin.swap(admin.pack(), Ordering::Relaxed) != admin.pack();
            }
        }
        if changed {
            self.gen.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Sets the state of uplink `id` (the worker, from its device).
    pub(crate) fn set_admin(&self, id: u32, admin: Admin) {
        let Some(s) = index(id).and_then(|i| self.slots.get(i)) else {
            return;
        };
        if s.admin.swap(admin.pack(), Ordering::Relaxed) != admin.pack() {
            self.gen.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether new uplinks wait for the worker (see [`Admin::UNKNOWN`]).
    pub(crate) fn configured(&self) -> bool {
        self.configured.load(Ordering::Acquire)
    }

    /// The id of the first uplink on device `ifindex`, 0 if none: what a
    /// connection arriving through the device came in by.
    pub(crate) fn id_of_device(&self, ifindex: u32) -> u32 {
        if ifindex == 0 {
            return 0;
        }
        self.slots
            .iter()
            .position(|s| s.ifindex.load(Ordering::Acquire) == ifindex)
            .map_or(0, |i| i as u32 + 1)
    }

    /// Generation of the id assignment.
    pub(crate) fn gen(&self) -> u32 {
        self.gen.load(Ordering::Acquire)
    }

    pub(crate) fn untracked(&self) -> u32 {
        self.untracked.load(Ordering::Relaxed)
    }

    fn free(&self, s: &UplinkSlot) {
        s.ifindex.store(0, Ordering::Release);
        s.gw.store(0, Ordering::Relaxed);
    }

    fn take(&self, i: usize, (ifindex, gw): (u32, u32), sums: &impl Fn(usize) -> (u64, u64)) {
        let s = &self.slots[i];
        let (packets, bytes) = sums(i);
        s.base_packets.store(packets, Ordering::Relaxed);
        s.base_bytes.store(bytes, Ordering::Relaxed);
        s.sessions.store(0, Ordering::Relaxed);
        s.rate_bps.store(0, Ordering::Relaxed);
        s.capacity_bps.store(0, Ordering::Relaxed);
        s.up.store(true, Ordering::Relaxed);
        let admin = if self.configured() {
            Admin::UNKNOWN
        } else {
            Admin::UP
        };
        s.admin.store(admin.pack(), Ordering::Relaxed);
        s.gw.store(gw, Ordering::Relaxed);
        // Publish last: readers that see the ifindex see a clean slot.
        s.ifindex.store(ifindex, Ordering::Release);
    }

    /// Makes the table hold exactly `wanted` (as far as ids go), honouring
    /// `pins`, with `sums(slot)` giving the counter sums a new slot starts
    /// from; `more` uplinks did not even fit in `wanted`. Returns the ids
    /// that were freed (bit `id - 1`). Callers serialize (the route set's
    /// lock).
    pub(crate) fn sync(
        &self,
        wanted: &[(u32, u32)],
        pins: &Pins,
        more: u32,
        sums: impl Fn(usize) -> (u64, u64),
    ) -> u32 {
        let mut changed = false;
        let mut freed = 0u32;
        // The uplink a pin names: the device's first, by gateway.
        let pinned = |ifindex: u32| {
            wanted
                .iter()
                .filter(|w| w.0 == ifindex)
                .min_by_key(|w| w.1)
                .copied()
        };
        for (i, s) in self.slots.iter().enumerate() {
            let key = s.key();
            if key.0 == 0 {
                continue;
            }
            let gone = !wanted.contains(&key);
            // A pin that names another uplink for this id, or another id
            // for this uplink, moves it.
            let wrong_pin = (pins[i] != 0 && pinned(pins[i]) != Some(key))
                || pins
                    .iter()
                    .enumerate()
                    .any(|(j, &p)| j != i && p == key.0 && pinned(p) == Some(key));
            if gone || wrong_pin {
                self.free(s);
                freed |= 1 << i;
                changed = true;
            }
        }
        for (i, &p) in pins.iter().enumerate() {
            if let Some(key) = pinned(p).filter(|_| p != 0) {
                if self.slots[i].key().0 == 0 {
                    self.take(i, key, &sums);
                    changed = true;
                }
            }
        }
        let mut untracked = more;
        for &key in wanted {
            if key.0 == 0 || self.id(key.0, key.1) != 0 {
                continue;
            }
            let free = (0..MAX_UPLINKS).find(|&i| pins[i] == 0 && self.slots[i].key().0 == 0);
            match free {
                Some(i) => {
                    self.take(i, key, &sums);
                    changed = true;
                }
                None => untracked = untracked.saturating_add(1),
            }
        }
        self.untracked.store(untracked, Ordering::Relaxed);
        if changed {
            self.gen.fetch_add(1, Ordering::AcqRel);
        }
        freed
    }

    /// Frees the uplinks of a device that is going away.
    pub(crate) fn release_device(&self, ifindex: u32) -> bool {
        let mut changed = false;
        for s in &self.slots {
            if ifindex != 0 && s.ifindex.load(Ordering::Acquire) == ifindex {
                self.free(s);
                changed = true;
            }
        }
        if changed {
            self.gen.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }

    /// Counts a connection assigned to uplink `id`.
    pub(crate) fn add_session(&self, id: u32) {
        if let Some(s) = index(id).and_then(|i| self.slots.get(i)) {
            s.sessions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Publishes the worker's view of uplink `id`.
    pub(crate) fn set_load(&self, id: u32, rate_bps: u64, capacity_bps: u64, up: bool) {
        if let Some(s) = index(id).and_then(|i| self.slots.get(i)) {
            s.rate_bps.store(rate_bps, Ordering::Relaxed);
            s.capacity_bps.store(capacity_bps, Ordering::Relaxed);
            s.up.store(up, Ordering::Relaxed);
        }
    }

    /// `(id, ifindex)` of every uplink.
    pub(crate) fn for_each_id(&self, mut f: impl FnMut(u32, u32)) {
        for (i, s) in self.slots.iter().enumerate() {
            let ifindex = s.ifindex.load(Ordering::Acquire);
            if ifindex != 0 {
                f(i as u32 + 1, ifindex);
            }
        }
    }

    /// Snapshot of every uplink.
    pub(crate) fn for_each(&self, mut f: impl FnMut(UplinkView)) {
        for (i, s) in self.slots.iter().enumerate() {
            let (ifindex, gw) = s.key();
            if ifindex == 0 {
                continue;
            }
            f(UplinkView {
                id: i as u32 + 1,
                ifindex,
                gw,
                rate_bps: s.rate_bps.load(Ordering::Relaxed),
                up: s.up.load(Ordering::Relaxed),
                sessions: s.sessions.load(Ordering::Relaxed),
                base_packets: s.base_packets.load(Ordering::Relaxed),
                base_bytes: s.base_bytes.load(Ordering::Relaxed),
            });
        }
    }

    /// Device of uplink `id` and the rate its queue drains at: the
    /// capacity, else the estimated rate (0 if neither is known).
    pub(crate) fn drain_of(&self, id: u32) -> Option<(u32, u64)> {
        let s = self.slots.get(index(id)?)?;
        let ifindex = s.ifindex.load(Ordering::Acquire);
        let bps = match s.capacity_bps.load(Ordering::Relaxed) {
            0 => s.rate_bps.load(Ordering::Relaxed),
            c => c,
        };
        (ifindex != 0).then_some((ifindex, bps))
    }

    fn load_of(&self, id: u32) -> Option<UplinkLoad> {
        let s = self.slots.get(index(id)?)?;
        if s.ifindex.load(Ordering::Acquire) == 0 {
            return None;
        }
        Some(UplinkLoad {
            rate_bps: s.rate_bps.load(Ordering::Relaxed),
            capacity_bps: s.capacity_bps.load(Ordering::Relaxed),
        })
    }
}

/// This CPU's copy of the uplinks' load (`LoadTable`), made again when the
/// estimator samples or an id changes hands. Per CPU, so the bandwidth
/// strategy shares no cache line between CPUs per packet; each CPU books
/// only its own traffic, which is exact when a flow's packets stay on one
/// CPU.
#[derive(Default, Zeroable)]
pub(crate) struct Booking {
    /// `NetState::sample_epoch` and `Uplinks::gen` the copy was made in.
    epoch: u32,
    gen: u32,
    /// `bw_interval_ms` and `NetState::sample_ms` as of the copy, and
    /// when the next sample is due: until then the window is the interval.
    interval_ms: u32,
    sample_ms: u64,
    due_ms: u64,
    table: LoadTable,
}

impl Booking {
    /// The table for this packet at `now_ms`: copied again if the estimator
    /// has sampled or an id has changed hands since (what was booked starts
    /// over). `sample` gives `bw_interval_ms` and the sample's time, read
    /// only for a new copy.
    pub(crate) fn refresh(
        &mut self,
        uplinks: &Uplinks,
        epoch: u32,
        now_ms: u64,
        sample: impl FnOnce() -> (u32, u64),
    ) -> &mut LoadTable {
        let gen = uplinks.gen();
        if self.epoch != epoch || self.gen != gen {
            (self.epoch, self.gen) = (epoch, gen);
            (self.interval_ms, self.sample_ms) = sample();
            self.due_ms = self.sample_ms.saturating_add(self.interval_ms.into());
            self.table.clear();
            for id in 1..=MAX_UPLINKS as u32 {
                if let Some(l) = uplinks.load_of(id) {
                    self.table.set(id, l.rate_bps, l.capacity_bps);
                }
            }
            self.table.set_window(self.interval_ms, 0);
        }
        // Only a late sample stretches the window.
        if now_ms > self.due_ms {
            self.table
                .set_window(self.interval_ms, now_ms.saturating_sub(self.sample_ms));
        }
        &mut self.table
    }

    /// The table as it is, for strategies that do not read the load.
    pub(crate) fn table(&mut self) -> &mut LoadTable {
        &mut self.table
    }
}
