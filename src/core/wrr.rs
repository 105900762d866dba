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
        let mask = mask & route_bits(route);
        if self.key != route.key || self.mask != mask {
            *self = WrrState {
                key: route.key,
                mask,
                ..WrrState::ZERO
            };
        }
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
        Some(best)
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
        let mut total = 0i32;
        for j in Members(mask) {
            let w = weight(route, j);
            self.current[j] = self.current[j].wrapping_sub(w);
            total = total.wrapping_add(w);
        }
        self.current[i] = self.current[i].wrapping_add(total);
    }
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
