// SPDX-License-Identifier: GPL-2.0

//! The view of an equalize route that strategies work on.
//!
//! The wrapper layer copies what it needs out of `struct fib_info` into a
//! small array of [`Nexthop`]s, so strategies never touch kernel memory and
//! can be tested on the host.

/// Routes with more nexthops than this are left to stock ECMP (and counted).
pub const MAX_NEXTHOPS: usize = 16;

/// One nexthop of a multipath route, as `fib_select_multipath()` sees it.
/// (All-zero is valid: the kernel's per-CPU route cache holds these.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Nexthop {
    /// Output device ifindex (`fib_nh_dev->ifindex`).
    pub oif: u32,
    /// Gateway (`fib_nh_gw4`, network byte order), 0 for a device route.
    pub gw: u32,
    /// The uplink this nexthop is, by its per-netns id (1 and up, see the
    /// policy's uplink table); 0 if the netns does not track it.
    pub uplink: u32,
    /// `fib_nh_weight`, 1..=256.
    pub weight: u32,
    /// `fib_nh_upper_bound`: the largest 31-bit hash that selects this nexthop,
    /// or -1 when `fib_rebalance()` excluded it (dead or ignored linkdown).
    pub upper_bound: i32,
    /// Whether mpbal may choose it: not dead and the link is not down.
    ///
    /// Stricter than the kernel, which still routes over a linkdown nexthop
    /// unless `ignore_routes_with_linkdown` is set; mpbal never picks one.
    pub usable: bool,
    /// The uplink is administratively down (`net.mpbal.conf.DEV.down`):
    /// never chosen, as if dead, though the kernel still routes over it.
    pub admin_down: bool,
    /// The uplink's tier (`net.mpbal.conf.DEV.tier`), [`MIN_TIER`] to
    /// [`MAX_TIER`]: see [`best_tier`].
    pub tier: u8,
}

/// The preferred tier, every uplink's by default.
pub const MIN_TIER: u8 = 1;

/// The last-resort tier.
pub const MAX_TIER: u8 = 15;

/// The nexthops of `available` whose tier is the lowest among them: an
/// uplink of tier N is a candidate only while no uplink of a lower tier is
/// available (mwan3's member metric, pfSense's gateway group tiers). Bits
/// of `available` beyond `nexthops` are dropped.
pub fn best_tier(available: NexthopMask, nexthops: &[Nexthop]) -> NexthopMask {
    let mut best = u8::MAX;
    let mut mask = 0;
    for i in Members(available & bits_of(nexthops.len())) {
        let Some(nh) = nexthops.get(i) else { break };
        if nh.tier < best {
            best = nh.tier;
            mask = 0;
        }
        if nh.tier == best {
            mask |= 1 << i;
        }
    }
    mask
}

/// What a route is to mpbal. A C-style enum in a `u8` (`NONE` = 0), so that
/// caches of it are valid when all-zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct RouteKind {
    kind: u8,
}

impl RouteKind {
    /// No route, not unicast, or a single path: not ours.
    pub const NONE: RouteKind = RouteKind { kind: 0 };
    /// A multipath route without `equalize`: stock ECMP, untouched.
    pub const MULTIPATH: RouteKind = RouteKind { kind: 1 };
    /// A multipath route flagged `equalize` that mpbal steers.
    pub const EQUALIZE: RouteKind = RouteKind { kind: 2 };
    /// Flagged `equalize`, but with nexthop objects or more than
    /// [`MAX_NEXTHOPS`] paths: left to stock ECMP, and counted.
    pub const UNSUPPORTED: RouteKind = RouteKind { kind: 3 };

    /// The one definition of which routes mpbal steers, for the FIB
    /// notifier and the packet path alike. `paths` is
    /// `fib_info_num_path()`, `equalize` is `RTM_F_EQUALIZE` in
    /// `fib_flags`, `nh_object` whether the route uses a nexthop object.
    pub fn classify(unicast: bool, paths: u32, equalize: bool, nh_object: bool) -> RouteKind {
        if !unicast || paths < 2 {
            RouteKind::NONE
        } else if !equalize {
            RouteKind::MULTIPATH
        } else if nh_object || paths as usize > MAX_NEXTHOPS {
            RouteKind::UNSUPPORTED
        } else {
            RouteKind::EQUALIZE
        }
    }

    /// Flagged `equalize`, steerable or not.
    pub fn is_flagged(self) -> bool {
        self == RouteKind::EQUALIZE || self == RouteKind::UNSUPPORTED
    }
}

/// Bit set of nexthop indexes (bit `i` = nexthop `i`).
pub type NexthopMask = u32;

/// Bit set of uplink ids (bit `id - 1` = uplink `id`, ids 1 to 32).
pub type UplinkMask = u32;

/// The bit of uplink `id` in an [`UplinkMask`]; 0 for id 0 (untracked) and
/// ids above 32.
pub fn uplink_bit(id: u32) -> UplinkMask {
    match id {
        1..=32 => 1 << (id - 1),
        _ => 0,
    }
}

/// The indexes of a mask's set bits, lowest first, each below
/// [`MAX_NEXTHOPS`] (higher bits wrap: pass masks of a route's nexthops).
pub struct Members(pub NexthopMask);

impl Iterator for Members {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let i = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        // The modulo lets callers index `[_; MAX_NEXTHOPS]` unchecked.
        Some(i % MAX_NEXTHOPS)
    }
}

/// The bits of `route`'s nexthops (at most [`MAX_NEXTHOPS`]).
pub fn route_bits(route: &Route<'_>) -> NexthopMask {
    bits_of(route.nexthops.len())
}

/// The bits of the first `n` nexthops (at most [`MAX_NEXTHOPS`]).
fn bits_of(n: usize) -> NexthopMask {
    // n <= 16 < 32: no shift overflow.
    (1u32 << n.min(MAX_NEXTHOPS)).wrapping_sub(1)
}

/// A multipath route flagged `equalize`.
#[derive(Clone, Copy, Debug)]
pub struct Route<'a> {
    /// Identity of the route for per-route state caches (the `fib_info`
    /// address in the kernel). Only compared, never dereferenced.
    pub key: usize,
    /// The nexthops in kernel order, at most [`MAX_NEXTHOPS`].
    pub nexthops: &'a [Nexthop],
    /// [`Route::eligible_of`] the nexthops: made once per route copy, not
    /// per packet.
    eligible: Eligible,
}

/// The nexthops a strategy may choose at all, as nexthop indexes and as
/// the uplinks they are, and those it could choose but for their tier.
/// All-zero: none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct Eligible {
    nexthops: NexthopMask,
    uplinks: UplinkMask,
    available: NexthopMask,
}

impl<'a> Route<'a> {
    /// The route of these nexthops.
    pub fn new(key: usize, nexthops: &'a [Nexthop]) -> Self {
        Route {
            key,
            nexthops,
            eligible: Self::eligible_of(nexthops),
        }
    }

    /// The same, with `eligible` computed earlier by
    /// [`Route::eligible_of`] for exactly these nexthops.
    pub fn with_eligible(key: usize, nexthops: &'a [Nexthop], eligible: Eligible) -> Self {
        Route {
            key,
            nexthops,
            eligible,
        }
    }

    /// Nexthops a strategy may choose at all: the [`Route::available_mask`]
    /// ones of the [`best_tier`] among them.
    pub fn eligible_of(nexthops: &[Nexthop]) -> Eligible {
        let r = Route {
            key: 0,
            nexthops,
            eligible: Eligible::default(),
        };
        let available = r.available_mask();
        let mask = best_tier(available, nexthops);
        Eligible {
            nexthops: mask,
            uplinks: r.uplinks_of(mask),
            available,
        }
    }

    /// The nexthops of [`Route::eligible_of`].
    pub fn eligible(&self) -> NexthopMask {
        self.eligible.nexthops
    }

    /// The eligible nexthops among `allowed`, for a packet that may only
    /// take those: the best tier it can take, which is the route's unless
    /// none of that tier is allowed.
    pub fn eligible_within(&self, allowed: NexthopMask) -> NexthopMask {
        match self.eligible.nexthops & allowed {
            0 => best_tier(self.eligible.available & allowed, self.nexthops),
            mask => mask,
        }
    }

    /// Nexthops mpbal could choose but for their tier: usable, tracked and
    /// not administratively down.
    pub fn available_mask(&self) -> NexthopMask {
        let mut up = 0;
        for (i, nh) in self.nexthops.iter().enumerate().take(MAX_NEXTHOPS) {
            if !nh.admin_down {
                up |= 1 << i;
            }
        }
        self.usable_mask() & self.tracked_mask() & up
    }

    /// The uplinks the nexthops of `mask` are.
    pub fn uplinks_of(&self, mask: NexthopMask) -> UplinkMask {
        if mask == self.eligible.nexthops {
            return self.eligible.uplinks;
        }
        let mut uplinks = 0;
        for i in Members(mask & route_bits(self)) {
            uplinks |= self.nexthops.get(i).map_or(0, |nh| uplink_bit(nh.uplink));
        }
        uplinks
    }

    /// A nexthop of `mask` that is uplink `id`: `guess` if it is one (where
    /// the uplink was found before), else the first.
    pub fn nexthop_of(&self, mask: NexthopMask, id: u32, guess: usize) -> Option<usize> {
        let is_it = |i: usize| {
            mask & (1 << (i % MAX_NEXTHOPS)) != 0
                && self.nexthops.get(i).is_some_and(|nh| nh.uplink == id)
        };
        if is_it(guess) {
            return Some(guess);
        }
        Members(mask & route_bits(self)).find(|&i| is_it(i))
    }

    /// Index of the nexthop that is uplink `id`.
    pub fn find_uplink(&self, id: u32) -> Option<usize> {
        if id == 0 {
            return None;
        }
        self.nexthops.iter().position(|nh| nh.uplink == id)
    }

    /// Nexthops that leave by device `oif`.
    pub fn on_device(&self, oif: u32) -> NexthopMask {
        let mut mask = 0;
        for (i, nh) in self.nexthops.iter().enumerate().take(MAX_NEXTHOPS) {
            if nh.oif == oif {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// Nexthops that are tracked uplinks (a nexthop the netns cannot track
    /// is never chosen: it has no estimate and no mark).
    pub fn tracked_mask(&self) -> NexthopMask {
        let mut mask = 0;
        for (i, nh) in self.nexthops.iter().enumerate().take(MAX_NEXTHOPS) {
            if nh.uplink != 0 {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// Nexthops mpbal may choose from. Only those with a non-empty hash range
    /// count, because the forwarding lever can reach no others.
    pub fn usable_mask(&self) -> NexthopMask {
        let mut mask = 0;
        let mut prev = -1i32;
        for (i, nh) in self.nexthops.iter().enumerate().take(MAX_NEXTHOPS) {
            let reachable = nh.upper_bound > prev;
            if nh.usable && reachable && nh.weight > 0 {
                mask |= 1 << i;
            }
            prev = prev.max(nh.upper_bound);
        }
        mask
    }
}
