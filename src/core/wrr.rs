// SPDX-License-Identifier: GPL-2.0

//! Smooth weighted round-robin (as in nginx and IPVS `ip_vs_wrr.c`'s aim),
//! used by every strategy that makes a "next uplink" choice.
//!
//! Each pick adds every candidate's weight to its `current`, takes the
//! largest, and subtracts the total from the winner. Over any `W` consecutive
//! picks (`W` = sum of weights) each nexthop is taken exactly `weight` times,
//! and the picks interleave instead of coming in bursts.
//!
//! State is tiny and copied per CPU in the kernel, so no cache line is shared
//! between CPUs per packet; the aggregate error grows only by the CPU count.

use super::nexthop::{route_bits, Members, NexthopMask, Route, MAX_NEXTHOPS};

/// Something that picks the next nexthop in weighted round-robin order: a
/// per-CPU [`WrrState`] for per-packet choices, or (in the kernel) one shared
/// by all CPUs for first choices, where the spread must be exact.
pub trait Pick {
    /// The next nexthop among `mask`, or `None` if `mask` is empty.
    fn pick(&mut self, route: &Route<'_>, mask: NexthopMask) -> Option<usize>;

    /// Takes back a pick of `i` that was not used (another CPU placed the
    /// same destination first), so the spread counts only real choices.
    fn unpick(&mut self, route: &Route<'_>, mask: NexthopMask, i: usize);
}

impl Pick for WrrState {
    fn pick(&mut self, route: &Route<'_>, mask: NexthopMask) -> Option<usize> {
        WrrState::pick(self, route, mask)
    }

    fn unpick(&mut self, route: &Route<'_>, mask: NexthopMask, i: usize) {
        WrrState::unpick(self, route, mask, i)
    }
}

/// Longest period [`WrrState`] records and replays (sum of the weights).
pub const WRR_PERIOD_MAX: usize = 64;

/// WRR state of one route on one CPU. All-zero is the initial state.
///
/// Smooth WRR repeats itself: after `W` picks (`W` = sum of the weights)
/// every `current` is back to zero. So the first period's picks are
/// recorded, and from then on replayed: a pick costs a table read instead
/// of a pass over the nexthops. Weights summing to more than
/// [`WRR_PERIOD_MAX`] keep scanning.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct WrrState {
    /// Route identity the counters belong to; 0 = none.
    key: usize,
    /// Candidate set the counters were built for; a change restarts them, so a
    /// nexthop coming back from the dead does not arrive with a burst.
    mask: NexthopMask,
    current: [i32; MAX_NEXTHOPS],
    /// The picks of the first period, in order.
    sched: [u8; WRR_PERIOD_MAX],
    /// Picks since the restart while recording; position in the period
    /// while replaying.
    pos: u8,
    /// Replaying a period of this many picks (0: scanning).
    period: u8,
    /// Recording: every pick since the restart came from the scan, none was
    /// given back.
    recording: bool,
    /// [`signature`] of the weights the period was recorded with, checked
    /// every [`SIG_LAPS`] periods: a route key (a freed and reused
    /// `fib_info`) with other weights starts over within that many.
    sig: u32,
    /// Periods replayed, modulo 256.
    laps: u8,
}

/// Periods replayed between two checks of the weights (so with two equal
/// nexthops the check costs a pick well under one instruction).
pub const SIG_LAPS: u8 = 16;

impl Default for WrrState {
    fn default() -> Self {
        WrrState::ZERO
    }
}

impl WrrState {
    /// The initial state.
    pub const ZERO: WrrState = WrrState {
        key: 0,
        mask: 0,
        current: [0; MAX_NEXTHOPS],
        sched: [0; WRR_PERIOD_MAX],
        pos: 0,
        period: 0,
        recording: false,
        sig: 0,
        laps: 0,
    };

    /// Fresh counters for `key` and `mask` (the old recording is dead
    /// without `period`, so it is not cleared: restarts are frequent when
    /// the bandwidth strategy's ties change).
    fn restart(&mut self, key: usize, mask: NexthopMask) {
        self.key = key;
        self.mask = mask;
        self.current = [0; MAX_NEXTHOPS];
        self.pos = 0;
        self.period = 0;
        self.laps = 0;
        self.recording = true;
    }

    /// Picks the next nexthop among `mask`, or `None` if `mask` is empty.
    pub fn pick(&mut self, route: &Route<'_>, mask: NexthopMask) -> Option<usize> {
        let mask = mask & route_bits(route);
        if self.key != route.key || self.mask != mask {
            self.restart(route.key, mask);
        }
        if self.period != 0 {
            if self.pos == 0 && self.laps % SIG_LAPS == 0 && signature(route, mask) != self.sig {
                self.restart(route.key, mask);
            } else {
                let i = self.sched[usize::from(self.pos) % WRR_PERIOD_MAX];
                self.pos += 1;
                if self.pos >= self.period {
                    self.pos = 0;
                    self.laps = self.laps.wrapping_add(1);
                }
                return Some(usize::from(i) % MAX_NEXTHOPS);
            }
        }
        self.scan(route, mask)
    }

    /// A pick the plain way: a pass over `mask` (already within the route).
    /// Out of line, so that callers who rarely get here (the bandwidth
    /// strategy's ties) keep their registers.
    #[inline(never)]
    fn scan(&mut self, route: &Route<'_>, mask: NexthopMask) -> Option<usize> {
        // Weights are at most 256 and there are at most 16 nexthops, so
        // `current` stays within +-16 * 256 and `total` within 16 * 256:
        // the wrapping operations never wrap (they only spare the per-packet
        // loop its overflow branches).
        let mut total = 0i32;
        let mut best = usize::MAX;
        let mut best_current = i32::MIN;
        for i in Members(mask) {
            let w = weight(route, i);
            let c = self.current[i].wrapping_add(w);
            self.current[i] = c;
            total = total.wrapping_add(w);
            if c > best_current {
                (best, best_current) = (i, c);
            }
        }
        let b = self.current.get_mut(best)?;
        *b = b.wrapping_sub(total);
        if self.recording {
            self.record(route, best, total);
        }
        Some(best)
    }

    /// Appends pick `best` of a period of `total` picks; a full period
    /// switches to replaying it.
    fn record(&mut self, route: &Route<'_>, best: usize, total: i32) {
        let pos = usize::from(self.pos);
        if total as usize > WRR_PERIOD_MAX || pos >= WRR_PERIOD_MAX {
            self.recording = false;
            return;
        }
        self.sched[pos] = best as u8;
        self.pos += 1;
        if usize::from(self.pos) < total as usize {
            return;
        }
        self.recording = false;
        self.pos = 0;
        // Back to all zero unless the weights changed under the key.
        if self.current.iter().all(|&c| c == 0) {
            self.period = total as u8;
            self.sig = signature(route, self.mask);
        }
    }

    /// Undoes one `pick` that returned `i` for the same route and mask.
    /// `current` only ever holds "weight times rounds minus total times
    /// wins", so this is exact even after other picks; if the state has
    /// restarted since (route or mask changed), there is nothing to undo.
    pub fn unpick(&mut self, route: &Route<'_>, mask: NexthopMask, i: usize) {
        let mask = mask & route_bits(route);
        if self.key != route.key || self.mask != mask || mask & (1 << i) == 0 {
            return;
        }
        if self.period != 0 {
            self.leave_replay(route);
        }
        // The recorded picks no longer make a period.
        self.recording = false;
        let mut total = 0i32;
        for j in Members(mask) {
            let w = weight(route, j);
            self.current[j] = self.current[j].wrapping_sub(w);
            total = total.wrapping_add(w);
        }
        self.current[i] = self.current[i].wrapping_add(total);
    }

    /// Back to scanning from where the replay is: after `pos` picks of a
    /// period, `current_j = pos * w_j - W * (wins of j so far)`.
    fn leave_replay(&mut self, route: &Route<'_>) {
        let pos = usize::from(self.pos).min(WRR_PERIOD_MAX);
        let total = i32::from(self.period);
        self.current = [0; MAX_NEXTHOPS];
        for j in Members(self.mask) {
            self.current[j] = (pos as i32).wrapping_mul(weight(route, j));
        }
        for &won in &self.sched[..pos] {
            let c = &mut self.current[usize::from(won) % MAX_NEXTHOPS];
            *c = c.wrapping_sub(total);
        }
        self.period = 0;
    }
}

/// The weights of `mask`'s nexthops, folded into a word.
fn signature(route: &Route<'_>, mask: NexthopMask) -> u32 {
    Members(mask).fold(0u32, |sig, i| sig.rotate_left(9) ^ weight(route, i) as u32)
}

/// Nexthop `i`'s weight, clamped to the kernel's 1..=256.
fn weight(route: &Route<'_>, i: usize) -> i32 {
    route
        .nexthops
        .get(i)
        .map_or(0, |nh| nh.weight.min(256) as i32)
}

/// WRR states kept per [`WrrCache`] (direct-mapped by route).
pub const WRR_ROUTES: usize = 8;

/// A few WRR states, direct-mapped by route, so several equalize routes in
/// one netns each keep their own rotation. All-zero is the initial state.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct WrrCache {
    slots: [WrrState; WRR_ROUTES],
}

impl Default for WrrCache {
    fn default() -> Self {
        WrrCache {
            slots: [WrrState::ZERO; WRR_ROUTES],
        }
    }
}

impl WrrCache {
    /// The state for `route`; a slot taken over by another route restarts.
    pub fn for_route(&mut self, key: usize) -> &mut WrrState {
        // fib_info is slab-allocated: drop the always-equal low bits.
        let slot = ((key >> 6) ^ (key >> 12)) % WRR_ROUTES;
        &mut self.slots[slot]
    }
}
