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

use super::nexthop::{NexthopMask, Route, MAX_NEXTHOPS};

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

/// WRR state of one route on one CPU. All-zero is the initial state.
#[derive(Clone, Copy, Debug, Default)]
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct WrrState {
    /// Route identity the counters belong to; 0 = none.
    key: usize,
    /// Candidate set the counters were built for; a change restarts them, so a
    /// nexthop coming back from the dead does not arrive with a burst.
    mask: NexthopMask,
    current: [i32; MAX_NEXTHOPS],
}

impl WrrState {
    /// The initial state.
    pub const ZERO: WrrState = WrrState {
        key: 0,
        mask: 0,
        current: [0; MAX_NEXTHOPS],
    };

    /// Picks the next nexthop among `mask`, or `None` if `mask` is empty.
    pub fn pick(&mut self, route: &Route<'_>, mask: NexthopMask) -> Option<usize> {
        if self.key != route.key || self.mask != mask {
            *self = WrrState {
                key: route.key,
                mask,
                ..WrrState::ZERO
            };
        }
        let mut total = 0i32;
        let mut best: Option<usize> = None;
        for (i, nh) in route.nexthops.iter().enumerate().take(MAX_NEXTHOPS) {
            if mask & (1 << i) == 0 {
                continue;
            }
            // Weights are at most 256 and there are at most 16 nexthops, so
            // neither `current` nor `total` can overflow.
            let w = nh.weight.min(256) as i32;
            self.current[i] += w;
            total += w;
            // (Not `is_none_or`: the kernel's minimum rustc is 1.78.)
            let better = match best {
                None => true,
                Some(b) => self.current[i] > self.current[b],
            };
            if better {
                best = Some(i);
            }
        }
        let b = best?;
        self.current[b] -= total;
        Some(b)
    }

    /// Undoes one `pick` that returned `i` for the same route and mask.
    /// `current` only ever holds "weight times rounds minus total times
    /// wins", so this is exact even after other picks; if the state has
    /// restarted since (route or mask changed), there is nothing to undo.
    pub fn unpick(&mut self, route: &Route<'_>, mask: NexthopMask, i: usize) {
        if self.key != route.key || self.mask != mask || mask & (1 << i) == 0 {
            return;
        }
        let mut total = 0i32;
        for (j, nh) in route.nexthops.iter().enumerate().take(MAX_NEXTHOPS) {
            if mask & (1 << j) != 0 {
                let w = nh.weight.min(256) as i32;
                self.current[j] -= w;
                total += w;
            }
        }
        self.current[i] += total;
    }
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
