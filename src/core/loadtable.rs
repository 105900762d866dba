//! What the bandwidth strategy reads of the uplinks, by uplink id: the
//! capacity, and the estimated rate plus the rate of what was sent since the
//! estimate (`estimator::booked_rate`), and the uplinks ordered by the
//! headroom that leaves.
//!
//! The kernel keeps one table per CPU, copied from the netns's uplink table
//! at each estimator sample, so a packet reads plain arrays and shares no
//! cache line with other CPUs; tests fill one by hand.
//!
//! The order is what makes a choice cost the same at 2 or 16 nexthops: a
//! choice takes the first uplink of the order that the route may use, and a
//! booking changes only the booked uplink's headroom, so it moves that one
//! uplink to its new place (a step or two, as bookings are small). A new
//! sample or capacity sorts again, once per sample and CPU.

use super::estimator::{booked_rate, headroom};
use super::nexthop::UplinkMask;
use super::strategy::UplinkLoad;

/// Uplink ids a table holds (1 to this): as many as a netns tracks.
pub const MAX_UPLINK_IDS: usize = 32;

/// Loads of uplinks 1 to [`MAX_UPLINK_IDS`]; all-zero is the empty table.
#[derive(Clone, Debug, Default)]
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct LoadTable {
    /// Bit `id - 1`: the uplink is tracked.
    tracked: UplinkMask,
    capacity_bps: [u64; MAX_UPLINK_IDS],
    /// The estimate at the last sample.
    estimate_bps: [u64; MAX_UPLINK_IDS],
    /// The estimate plus the rate of what was booked since, as of the last
    /// booking of that uplink.
    rate_bps: [u64; MAX_UPLINK_IDS],
    /// Bits booked since the estimate.
    bits: [u64; MAX_UPLINK_IDS],
    /// Headroom: capacity (or, if unknown, `fastest`) minus `rate_bps`.
    room: [i64; MAX_UPLINK_IDS],
    /// The tracked slots, most headroom first; among equal headroom, the
    /// one booked least recently first.
    order: [u8; MAX_UPLINK_IDS],
    /// Slots in `order`.
    len: u8,
    /// The largest known capacity: what an uplink of unknown capacity is
    /// measured against.
    fastest_bps: u64,
    /// `room`, `order` and `fastest_bps` are out of date (a sample, a
    /// capacity or the set of uplinks changed): the next choice sorts again.
    stale: bool,
    /// `bw_interval_ms` and the time since the estimate, for booking.
    interval_ms: u32,
    since_sample_ms: u64,
}

fn slot(id: u32) -> Option<usize> {
    (id as usize).checked_sub(1).filter(|&i| i < MAX_UPLINK_IDS)
}

/// The slots (`id - 1`) of a mask's uplinks, lowest first, each below
/// [`MAX_UPLINK_IDS`] (so they index the arrays unchecked).
fn slots(mut mask: UplinkMask) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        let i = mask.trailing_zeros() as usize;
        mask &= mask.wrapping_sub(1);
        (i < MAX_UPLINK_IDS).then_some(i)
    })
}

impl LoadTable {
    /// No uplink tracked, nothing booked.
    pub fn clear(&mut self) {
        self.tracked = 0;
        self.bits = [0; MAX_UPLINK_IDS];
        self.len = 0;
        self.stale = false;
    }

    /// Uplink `id` is tracked with this estimate and capacity (0: unknown),
    /// and nothing booked since. Ids out of range are ignored.
    pub fn set(&mut self, id: u32, rate_bps: u64, capacity_bps: u64) -> &mut Self {
        if let Some(i) = slot(id) {
            self.tracked |= 1 << i;
            self.capacity_bps[i] = capacity_bps;
            self.estimate_bps[i] = rate_bps;
            self.rate_bps[i] = rate_bps;
            self.bits[i] = 0;
            self.stale = true;
        }
        self
    }

    /// Uplink `id` is no longer tracked.
    pub fn untrack(&mut self, id: u32) {
        if let Some(i) = slot(id) {
            self.tracked &= !(1 << i);
            self.stale = true;
        }
    }

    /// The sampling interval and the time since the last sample: what the
    /// next bookings are spread over.
    pub fn set_window(&mut self, interval_ms: u32, since_sample_ms: u64) {
        self.interval_ms = interval_ms;
        self.since_sample_ms = since_sample_ms;
    }

    /// Load of uplink `id`; `None` if it is not tracked.
    #[inline]
    pub fn load(&self, id: u32) -> Option<UplinkLoad> {
        let i = slot(id)?;
        (self.tracked & (1 << i) != 0).then(|| UplinkLoad {
            rate_bps: self.rate_bps[i],
            capacity_bps: self.capacity_bps[i],
        })
    }

    /// Accounts `bits` sent to uplink `id` since the estimate. When the next
    /// sample is late, an uplink not booked since keeps the booked rate of
    /// its last booking (the window it was spread over then).
    pub fn book(&mut self, id: u32, bits: u64) {
        let Some(i) = slot(id) else {
            return;
        };
        self.bits[i] = self.bits[i].saturating_add(bits);
        let booked = booked_rate(self.bits[i], self.interval_ms, self.since_sample_ms);
        self.rate_bps[i] = self.estimate_bps[i].saturating_add(booked);
        if self.tracked & (1 << i) != 0 && !self.stale {
            self.room[i] = self.room_of(i);
            self.reorder(i);
        }
    }

    /// Bits booked to uplink `id` since the estimate.
    pub fn booked_bits(&self, id: u32) -> u64 {
        slot(id).map_or(0, |i| self.bits[i])
    }

    /// The uplink among `want` with the most headroom, `None` if `want` has
    /// none. An uplink whose capacity is unknown counts as fast as the
    /// fastest known one; with none known, the least loaded wins. An uplink
    /// in `want` the table does not track has no estimate and counts as
    /// full (zero headroom). Among equal headroom, the uplink booked least
    /// recently wins, so equal uplinks take turns.
    pub fn best(&mut self, want: UplinkMask) -> Option<u32> {
        if self.stale {
            self.sort();
        }
        let len = usize::from(self.len).min(MAX_UPLINK_IDS);
        let found = self.order[..len]
            .iter()
            .map(|&s| usize::from(s) % MAX_UPLINK_IDS)
            .find(|&s| want & (1 << s) != 0);
        let untracked = want & !self.tracked;
        match found {
            Some(s) if untracked == 0 || self.room[s] >= 0 => Some(s as u32 + 1),
            _ if untracked != 0 => Some(untracked.trailing_zeros() + 1),
            _ => None,
        }
    }

    fn room_of(&self, i: usize) -> i64 {
        let cap = match self.capacity_bps[i] {
            0 => self.fastest_bps,
            c => c,
        };
        headroom(cap, self.rate_bps[i])
    }

    /// Recomputes every headroom and sorts the order (insertion sort: at
    /// most [`MAX_UPLINK_IDS`] slots, once per sample).
    fn sort(&mut self) {
        self.fastest_bps = slots(self.tracked)
            .map(|i| self.capacity_bps[i])
            .max()
            .unwrap_or(0);
        let mut len = 0;
        for i in slots(self.tracked) {
            self.room[i] = self.room_of(i);
            // Ties keep id order (lowest first).
            let mut p = len;
            while p > 0 && self.room[usize::from(self.order[p - 1]) % MAX_UPLINK_IDS] < self.room[i]
            {
                self.order[p] = self.order[p - 1];
                p -= 1;
            }
            self.order[p] = i as u8;
            len += 1;
        }
        self.len = len as u8;
        self.stale = false;
    }

    /// Moves slot `i`, whose headroom just changed, to its place in the
    /// order: behind every slot with as much headroom, ahead of those with
    /// less.
    fn reorder(&mut self, i: usize) {
        let len = usize::from(self.len).min(MAX_UPLINK_IDS);
        let order = &mut self.order[..len];
        // The booked uplink was most likely the one just chosen, the first.
        let at = |p: usize| order.get(p).is_some_and(|&s| usize::from(s) == i);
        let Some(mut p) = (if at(0) {
            Some(0)
        } else {
            (1..len).find(|&p| at(p))
        }) else {
            return;
        };
        let room = self.room[i];
        let room_at = |s: u8| self.room[usize::from(s) % MAX_UPLINK_IDS];
        while p + 1 < len && room_at(order[p + 1]) >= room {
            order[p] = order[p + 1];
            p += 1;
        }
        while p > 0 && room_at(order[p - 1]) < room {
            order[p] = order[p - 1];
            p -= 1;
        }
        order[p] = i as u8;
    }
}
