// SPDX-License-Identifier: GPL-2.0

//! What the bandwidth strategy reads of the uplinks, by uplink id: the
//! capacity, the estimated rate and the bits sent since the estimate, and
//! which uplink has the most headroom left.
//!
//! The kernel keeps one table per CPU, copied from the netns's uplink table
//! at each estimator sample, so a packet reads plain arrays and shares no
//! cache line with other CPUs; tests fill one by hand.
//!
//! Headroom is kept as what an uplink can still take in the booking window
//! (`estimator::booking_window_ms`), in thousandths of a bit:
//! `(capacity - estimate) * window_ms - 1000 * booked_bits`. Ordering uplinks
//! by it is ordering them exactly by `capacity - (estimate + booked rate)`,
//! without a division per packet: a booking subtracts its bits.
//!
//! The headroom strategy orders uplinks by the *share* of their capacity
//! left instead: the same quantity scaled by `2^SHARE_SHIFT / capacity`, so a
//! booking subtracts `bits * cost` with a per-uplink cost computed at the
//! sample (again no division per packet). The table is built for one key at
//! a time; asking for the other rebuilds it.
//!
//! The uplinks sit at the leaves of a tournament tree: each inner node holds
//! the better of its two children (more headroom; if equal, the lower id),
//! so the root is the best uplink. A booking changes only the
//! booked uplink's headroom and plays the matches on its path to the root
//! again: a choice and a booking cost O(log uplinks), however many nexthops
//! the route has and however many of them tie. A sample, a capacity, a
//! change of uplinks or of the window rebuilds the tree, once per sample
//! and CPU.

use super::estimator::{booked_rate, booking_window_ms, headroom, MAX_BOOKING_WINDOW_MS};
use super::nexthop::{NexthopMask, Route, UplinkMask};
use super::strategy::UplinkLoad;

/// Uplink ids a table holds (1 to this): as many as a netns tracks.
pub const MAX_UPLINK_IDS: usize = 32;

/// Leaves of the tree at most: one per uplink id.
const LEAVES: usize = MAX_UPLINK_IDS;

/// The slot of "no uplink" in the tree: its headroom is below any uplink's.
const NONE: u8 = MAX_UPLINK_IDS as u8;

/// Keeps an index below `2 * LEAVES`, the length of the arrays indexed by
/// slot or tree node.
const MASK: usize = 2 * LEAVES - 1;

/// Fixed-point scale of a share of capacity: a share of 1 over a window of
/// `w` ms is `w << SHARE_SHIFT`, at most 2^56 for the longest window.
const SHARE_SHIFT: u32 = 40;

/// A booked bit's cost in the bandwidth key (thousandths of a bit).
const BIT_COST: i64 = 1000;

/// What `room` and `tree` were built for.
const STALE: u8 = 0;
const BUILT_BITS: u8 = 1;
const BUILT_SHARE: u8 = 2;

/// Headroom of [`NONE`]; an uplink's is always above it.
const NO_ROOM: i64 = i64::MIN;

/// Bound of an uplink's headroom either way, so a booking needs no
/// overflow check: 2^62 thousandths of a bit is 2^52 bits (a window of
/// 65.5 s at 69 Tbit/s).
const ROOM_MAX: i64 = 1 << 62;

/// Loads of uplinks 1 to [`MAX_UPLINK_IDS`]; all-zero is the empty table.
#[derive(Clone, Debug)]
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct LoadTable {
    /// Bit `id - 1`: the uplink is tracked.
    tracked: UplinkMask,
    capacity_bps: [u64; MAX_UPLINK_IDS],
    /// The estimate at the last sample.
    estimate_bps: [u64; MAX_UPLINK_IDS],
    /// Bits booked since the estimate.
    bits: [u64; MAX_UPLINK_IDS],
    /// Headroom over the window in thousandths of a bit, by slot
    /// (`id - 1`), and [`NONE`]'s; sized so a mask keeps indexes in range.
    room: [i64; 2 * LEAVES],
    /// Per slot, what a booked bit takes off `room`: [`BIT_COST`] for the
    /// bandwidth key, scaled by the capacity for the share key.
    cost: [i64; MAX_UPLINK_IDS],
    /// Per slot, the nexthop index the uplink had on the route it was last
    /// chosen for: where [`LoadTable::nexthop_hint`] tells the strategy to
    /// look first, so finding the chosen uplink's nexthop is O(1) too.
    hint: [u8; MAX_UPLINK_IDS],
    /// The tournament tree of slots: `tree[1]` is the root, `tree[n]` the
    /// winner of `tree[2n]` and `tree[2n + 1]`, and the `leaves` leaves
    /// from `tree[leaves]` on hold their slot or [`NONE`].
    tree: [u8; 2 * LEAVES],
    /// Leaves in use: a power of two above the highest tracked slot.
    leaves: u8,
    /// The key `room` and `tree` hold ([`BUILT_BITS`] or [`BUILT_SHARE`]),
    /// or [`STALE`]: a sample, a capacity, the set of uplinks or the window
    /// changed, and the next choice rebuilds them.
    built: u8,
    /// `bw_interval_ms` and the time since the estimate: the booking
    /// window is the larger (see `estimator::booked_rate`).
    interval_ms: u32,
    since_sample_ms: u64,
    /// The window `room` was computed for, ms.
    window_ms: u64,
}

impl Default for LoadTable {
    /// The empty table (all-zero, as the kernel's per-CPU copies start).
    fn default() -> Self {
        LoadTable {
            tracked: 0,
            capacity_bps: [0; MAX_UPLINK_IDS],
            estimate_bps: [0; MAX_UPLINK_IDS],
            bits: [0; MAX_UPLINK_IDS],
            room: [0; 2 * LEAVES],
            cost: [0; MAX_UPLINK_IDS],
            hint: [0; MAX_UPLINK_IDS],
            tree: [0; 2 * LEAVES],
            leaves: 0,
            built: STALE,
            interval_ms: 0,
            since_sample_ms: 0,
            window_ms: 0,
        }
    }
}

/// The share key of an uplink of capacity `cap` (not 0) and estimate `est`
/// after `bits` booked over `window` ms, and the cost of a booked bit:
/// `((cap - est) * window - 1000 * bits) * 2^SHARE_SHIFT / cap`, computed
/// as `window * share - bits * cost` in 64 bits (the kernel has no 128-bit
/// division). The share keeps 23 bits of the capacity, and an estimate
/// above twice the capacity counts as twice (a share of -1).
fn share_room(cap: u64, est: u64, window: u64, bits: u64) -> (i64, i64) {
    let shift = (u64::BITS - cap.leading_zeros()).saturating_sub(23);
    // 1 <= c < 2^23 and e <= 2c: |c - e| << SHARE_SHIFT stays below 2^63.
    let c = (cap >> shift).max(1);
    let e = (est >> shift).min(2 * c);
    let (free, used) = (c.saturating_sub(e), e.saturating_sub(c));
    let frac = |x: u64| ((x << SHARE_SHIFT).checked_div(c).unwrap_or(0)) as i64;
    let share = frac(free) - frac(used);
    let cost = ((BIT_COST as u64) << SHARE_SHIFT)
        .checked_div(cap)
        .unwrap_or(0)
        .max(1) as i64;
    // |share| <= 2^40 and window <= 2^16: no overflow before the booking.
    let room = share
        .saturating_mul(window.min(MAX_BOOKING_WINDOW_MS) as i64)
        .saturating_sub((bits.min(1 << 40) as i64).saturating_mul(cost));
    (room.clamp(-ROOM_MAX, ROOM_MAX), cost)
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
        self.built = STALE;
    }

    /// Uplink `id` is tracked with this estimate and capacity (0: unknown),
    /// and nothing booked since. Ids out of range are ignored.
    pub fn set(&mut self, id: u32, rate_bps: u64, capacity_bps: u64) -> &mut Self {
        if let Some(i) = slot(id) {
            self.tracked |= 1 << i;
            self.capacity_bps[i] = capacity_bps;
            self.estimate_bps[i] = rate_bps;
            self.bits[i] = 0;
            self.built = STALE;
        }
        self
    }

    /// Uplink `id` is no longer tracked.
    pub fn untrack(&mut self, id: u32) {
        if let Some(i) = slot(id) {
            self.tracked &= !(1 << i);
            self.built = STALE;
        }
    }

    /// The sampling interval and the time since the last sample: what the
    /// bookings are spread over.
    #[inline]
    pub fn set_window(&mut self, interval_ms: u32, since_sample_ms: u64) {
        self.interval_ms = interval_ms;
        self.since_sample_ms = since_sample_ms;
        // A new window rebuilds at the next choice.
        if booking_window_ms(interval_ms, since_sample_ms) != self.window_ms {
            self.built = STALE;
        }
    }

    /// Load of uplink `id`, the booked bits spread over the window as a
    /// rate; `None` if it is not tracked.
    pub fn load(&self, id: u32) -> Option<UplinkLoad> {
        let i = slot(id)?;
        let booked = booked_rate(self.bits[i], self.interval_ms, self.since_sample_ms);
        (self.tracked & (1 << i) != 0).then(|| UplinkLoad {
            rate_bps: self.estimate_bps[i].saturating_add(booked),
            capacity_bps: self.capacity_bps[i],
        })
    }

    /// Accounts `bits` sent to uplink `id` since the estimate.
    pub fn book(&mut self, id: u32, bits: u64) {
        if let Some(i) = slot(id) {
            match self.built {
                BUILT_BITS => self.charge::<false>(i, bits, true),
                BUILT_SHARE => self.charge::<true>(i, bits, true),
                // The rebuild counts the bits.
                _ => self.charge::<false>(i, bits, false),
            }
        }
    }

    /// [`LoadTable::book`] for a table kept by share (the flowlet strategy,
    /// between its choices): no test of the key per packet.
    #[inline]
    pub fn book_share(&mut self, id: u32, bits: u64) {
        if let Some(i) = slot(id) {
            let fresh = self.built == BUILT_SHARE;
            self.charge::<true>(i, bits, fresh);
        }
    }

    /// [`LoadTable::best`] among `want`, booked `bits` at once: what the
    /// bandwidth strategy does for each packet, in one pass.
    #[inline]
    pub fn take(&mut self, want: UplinkMask, bits: u64) -> Option<u32> {
        self.take_by::<false>(want, bits)
    }

    /// [`LoadTable::best_share`] among `want`, booked `bits` at once: what
    /// the headroom strategy does for each packet.
    #[inline]
    pub fn take_share(&mut self, want: UplinkMask, bits: u64) -> Option<u32> {
        self.take_by::<true>(want, bits)
    }

    #[inline]
    fn take_by<const SHARE: bool>(&mut self, want: UplinkMask, bits: u64) -> Option<u32> {
        let id = self.best_by::<SHARE>(want)?;
        // best_by() left the tree up to date, for this key.
        self.charge::<SHARE>((id as usize - 1) % MAX_UPLINK_IDS, bits, true);
        Some(id)
    }

    /// Books `bits` to slot `i`; `fresh`: the tree is up to date for key
    /// `SHARE`, so the matches on the slot's path are replayed (else the
    /// next choice rebuilds).
    #[inline]
    fn charge<const SHARE: bool>(&mut self, i: usize, bits: u64, fresh: bool) {
        self.bits[i] = self.bits[i].saturating_add(bits);
        if !fresh {
            return;
        }
        // A packet is far below 2^40 bits, and a headroom never below
        // -ROOM_MAX: with the constant cost this cannot overflow; a share's
        // cost may be large (a slow uplink), so it saturates.
        let bits = bits.min(1 << 40) as i64;
        self.room[i] = if SHARE {
            let used = bits.saturating_mul(self.cost[i]);
            self.room[i].saturating_sub(used).max(-ROOM_MAX)
        } else {
            (self.room[i] - bits * BIT_COST).max(-ROOM_MAX)
        };
        if self.tracked & (1 << i) != 0 {
            self.replay(i);
        }
    }

    /// Where uplink `id`'s nexthop was last found (a guess to check).
    #[inline]
    pub fn nexthop_hint(&self, id: u32) -> usize {
        slot(id).map_or(0, |i| usize::from(self.hint[i]))
    }

    /// Uplink `id` was found at nexthop `index`.
    #[inline]
    pub fn set_nexthop_hint(&mut self, id: u32, index: usize) {
        if let Some(i) = slot(id) {
            self.hint[i] = index as u8;
        }
    }

    /// The nexthop of `mask` on `route` that is uplink `id`, looked for
    /// where it was found last (and remembered for next time).
    #[inline]
    pub fn nexthop_in(&mut self, route: &Route<'_>, mask: NexthopMask, id: u32) -> Option<usize> {
        let hint = self.nexthop_hint(id);
        let index = route.nexthop_of(mask, id, hint)?;
        if index != hint {
            self.set_nexthop_hint(id, index);
        }
        Some(index)
    }

    /// [`LoadTable::take`] (with `SHARE`, [`LoadTable::take_share`]) among
    /// the uplinks of `mask` on `route`, and the nexthop the chosen uplink
    /// is there: a choice of the load-reading strategies, whole.
    #[inline]
    pub fn take_nexthop<const SHARE: bool>(
        &mut self,
        route: &Route<'_>,
        mask: NexthopMask,
        bits: u64,
    ) -> Option<(u32, usize)> {
        let id = self.take_by::<SHARE>(route.uplinks_of(mask), bits)?;
        Some((id, self.nexthop_in(route, mask, id)?))
    }

    /// Bits booked to uplink `id` since the estimate.
    pub fn booked_bits(&self, id: u32) -> u64 {
        slot(id).map_or(0, |i| self.bits[i])
    }

    /// The uplink among `want` with the most headroom, `None` if `want` has
    /// none. An uplink whose capacity is unknown counts as fast as the
    /// fastest known one; with none known, the least loaded wins. An uplink
    /// in `want` the table does not track has no estimate and counts as
    /// full (zero headroom). Among equal headroom the lower id wins; as the
    /// winner is booked, it falls behind the others, so equal uplinks take
    /// turns.
    #[inline]
    pub fn best(&mut self, want: UplinkMask) -> Option<u32> {
        self.best_by::<false>(want)
    }

    /// The uplink among `want` with the largest share of its capacity left,
    /// the headroom strategy's key: `(capacity - load) / capacity`, with
    /// the load including what was booked. Unknown capacities, ties and
    /// untracked uplinks as in [`LoadTable::best`]; with no capacity known
    /// at all, the least loaded wins.
    #[inline]
    pub fn best_share(&mut self, want: UplinkMask) -> Option<u32> {
        self.best_by::<true>(want)
    }

    #[inline]
    fn best_by<const SHARE: bool>(&mut self, want: UplinkMask) -> Option<u32> {
        let key = if SHARE { BUILT_SHARE } else { BUILT_BITS };
        if self.built != key {
            self.rebuild(SHARE);
        }
        // The route may use every tracked uplink (one route, none dead):
        // the root, a tracked uplink once anything is tracked.
        if want == self.tracked && want != 0 {
            return Some(u32::from(self.tree[1] % NONE) + 1);
        }
        let mine = want & self.tracked;
        // Otherwise the matches are played again among `mine`.
        let found = slots(mine).fold(NONE, |a, s| self.winner(a, s as u8));
        let untracked = want & !self.tracked;
        match usize::from(found) {
            s if s < MAX_UPLINK_IDS && (untracked == 0 || self.room[s] >= 0) => Some(s as u32 + 1),
            _ if untracked != 0 => Some(untracked.trailing_zeros() + 1),
            _ => None,
        }
    }

    /// The better of two slots (or [`NONE`]s): more headroom; `a` if equal.
    #[inline]
    fn winner(&self, a: u8, b: u8) -> u8 {
        let (x, y) = (usize::from(a) & MASK, usize::from(b) & MASK);
        if self.room[y] > self.room[x] {
            b
        } else {
            a
        }
    }

    /// Recomputes every headroom for the current window and key, and the
    /// whole tree.
    fn rebuild(&mut self, share: bool) {
        let window = booking_window_ms(self.interval_ms, self.since_sample_ms);
        let fastest = slots(self.tracked)
            .map(|i| self.capacity_bps[i])
            .max()
            .unwrap_or(0);
        for i in slots(self.tracked) {
            let cap = match self.capacity_bps[i] {
                0 => fastest,
                c => c,
            };
            // With no capacity known at all, shares are meaningless: the
            // least loaded wins, as for the bandwidth key.
            let (room, cost) = if share && cap != 0 {
                share_room(cap, self.estimate_bps[i], window, self.bits[i])
            } else {
                // In i128 nothing overflows (64-bit factors); the result
                // is kept within ROOM_MAX either way.
                let room = i128::from(headroom(cap, self.estimate_bps[i])) * i128::from(window)
                    - i128::from(self.bits[i]) * i128::from(BIT_COST);
                let room = room.clamp(-i128::from(ROOM_MAX), i128::from(ROOM_MAX)) as i64;
                (room, BIT_COST)
            };
            self.room[i] = room;
            self.cost[i] = cost;
        }
        self.room[usize::from(NONE)] = NO_ROOM;
        let top = (UplinkMask::BITS - self.tracked.leading_zeros()) as usize;
        let leaves = top.next_power_of_two().clamp(2, LEAVES);
        for s in 0..leaves {
            let tracked = self.tracked & (1 << s) != 0;
            self.tree[leaves + s] = if tracked { s as u8 } else { NONE };
        }
        for n in (1..leaves).rev() {
            self.tree[n] = self.winner(self.tree[2 * n], self.tree[2 * n + 1]);
        }
        self.leaves = leaves as u8;
        self.window_ms = window;
        self.built = if share { BUILT_SHARE } else { BUILT_BITS };
    }

    /// Plays the matches on the path from slot `i`'s leaf to the root again,
    /// after its headroom changed.
    #[inline]
    fn replay(&mut self, i: usize) {
        // leaves <= LEAVES and i < LEAVES, so every n is below 2 * LEAVES:
        // the masks change nothing but keep the path panic-free.
        let mut n = (usize::from(self.leaves) + i) / 2;
        while n >= 1 {
            self.tree[n & MASK] =
                self.winner(self.tree[(2 * n) & MASK], self.tree[(2 * n + 1) & MASK]);
            n /= 2;
        }
    }
}
