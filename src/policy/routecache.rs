// SPDX-License-Identifier: GPL-2.0

//! The route a packet will take, as far as mpbal cares, and PRE_ROUTING's
//! per-CPU cache of route lookups (see `mpbal_core::flowcache`): flow
//! entries that point into a few copies of equalize routes.

use super::uplinks::Uplinks;
use crate::mpbal_core::flowcache::{FlowCache, FlowKey};
use crate::mpbal_core::hashrange;
use crate::mpbal_core::nexthop::{Eligible, Nexthop, Route, RouteKind, MAX_NEXTHOPS};
use crate::sys::route::{
    FibLookup, FlowInputs, InputKey, RawNexthop, RouteFacts, NH_F_DEAD, NH_F_LINKDOWN,
};
use crate::sys::skb::SkBuff;
use kernel::macros::Zeroable;

/// The kind of a packet's route and, for an equalize route, its nexthops,
/// copied out of its `fib_info` under RCU.
#[derive(Clone, Copy, Default, Zeroable)]
pub(crate) struct RouteBuf {
    kind: RouteKind,
    key: usize,
    nexthops: [Nexthop; MAX_NEXTHOPS],
    len: usize,
    /// `Route::eligible_of` the nexthops.
    eligible: Eligible,
    /// `hashrange::ranges` of the nexthops.
    ranges: [(u32, u32); MAX_NEXTHOPS],
}

/// The kind of a route, of a lookup or of a FIB event.
pub(crate) fn kind_of(r: &impl RouteFacts) -> RouteKind {
    RouteKind::classify(r.is_unicast(), r.paths(), r.equalize_flag(), r.nh_object())
}

/// mpbal never picks a dead or link-down nexthop.
const NH_UNUSABLE: u32 = NH_F_DEAD | NH_F_LINKDOWN;

impl RouteBuf {
    /// Fills the buffer from a lookup (none: the packet has no route), with
    /// each nexthop's uplink id from `uplinks`.
    pub(crate) fn fill(&mut self, lookup: Option<&FibLookup<'_>>, uplinks: &Uplinks) {
        self.len = 0;
        self.eligible = Eligible::default();
        let Some(l) = lookup else {
            self.kind = RouteKind::NONE;
            return;
        };
        self.kind = kind_of(l);
        if self.kind != RouteKind::EQUALIZE {
            return;
        }
        let mut raw = [RawNexthop::default(); MAX_NEXTHOPS];
        let n = l.nexthops(&mut raw);
        self.key = l.key();
        for (nh, raw) in self.nexthops.iter_mut().zip(raw.iter()).take(n) {
            let (uplink, admin) = uplinks.find(raw.oif, raw.gw);
            *nh = Nexthop {
                oif: raw.oif,
                gw: raw.gw,
                uplink,
                weight: raw.weight,
                upper_bound: raw.upper_bound,
                usable: raw.flags & NH_UNUSABLE == 0,
                admin_down: admin.down,
                tier: admin.tier,
            };
        }
        self.len = n;
        self.eligible = Route::eligible_of(&self.nexthops[..n]);
        self.ranges = hashrange::ranges(&self.nexthops[..n]);
    }

    /// `hashrange::skb_hash_for` nexthop `i` of this route, from the ranges
    /// kept with it.
    pub(crate) fn steering_hash(&self, i: usize, entropy: u32) -> Option<u32> {
        let &(lo, hi) = self.ranges.get(i).filter(|_| i < self.len)?;
        (lo <= hi).then(|| hashrange::skb_hash_in(lo, hi, entropy))
    }

    pub(crate) fn kind(&self) -> RouteKind {
        self.kind
    }

    /// A buffer that only tells a route's kind (not `EQUALIZE`).
    fn set_kind(&mut self, kind: RouteKind) {
        self.kind = kind;
        self.len = 0;
        self.eligible = Eligible::default();
    }

    /// The route as the core sees it (no nexthops unless `EQUALIZE`).
    pub(crate) fn route(&self) -> Route<'_> {
        Route::with_eligible(self.key, &self.nexthops[..self.len], self.eligible)
    }
}

/// Routes a CPU's flow cache can point to at once: equalize routes in use
/// together are few (one per uplink group), and each copy is large.
const ROUTE_SLOTS: usize = 4;

/// What a flow-cache entry holds: the kind of the flow's route and, for an
/// equalize route, the route slot filled for it (and which filling).
#[derive(Clone, Copy, Default, Zeroable)]
struct RouteRef {
    kind: RouteKind,
    slot: u8,
    fill: u32,
}

/// A copy of an equalize route, shared by the flows that take it.
#[derive(Clone, Copy, Default, Zeroable)]
struct RouteSlot {
    route: RouteBuf,
    /// The routing generation (see `flow_key`) the copy was made in.
    genid: u32,
    /// Counts the fillings, so an entry of an older one misses.
    fill: u32,
}

/// PRE_ROUTING route lookups of one CPU: a flow cache of small entries that
/// point into a few route copies, and a buffer for what cannot be cached.
#[derive(Zeroable)]
pub(crate) struct RouteCache {
    flows: FlowCache<RouteRef>,
    routes: [RouteSlot; ROUTE_SLOTS],
    next: usize,
    uncached: RouteBuf,
}

/// The cache key: a cached entry is valid for one routing generation and
/// one generation of the uplinks' ids and states (both only grow, so their
/// sum changes whenever either does).
fn flow_key(k: FlowInputs, uplinks_gen: u32) -> FlowKey {
    FlowKey {
        daddr: k.daddr,
        saddr: k.saddr,
        iif: k.iif,
        mark: k.mark,
        tos: k.tos,
        genid: k.genid.wrapping_add(uplinks_gen),
    }
}

impl RouteCache {
    /// The route of a packet entering at PRE_ROUTING, from the cache when
    /// the netns's routing has not changed since it was looked up. Also
    /// tells whether a FIB lookup was needed.
    pub(crate) fn input<'c>(
        &'c mut self,
        skb: &mut SkBuff<'_>,
        uplinks: &Uplinks,
    ) -> (&'c RouteBuf, bool) {
        let key = match skb.input_key() {
            InputKey::NotForwarded => {
                // Only kind and length are read for a non-equalize route.
                self.uncached.fill(None, uplinks);
                return (&self.uncached, false);
            }
            InputKey::Uncached => {
                self.uncached.fill(skb.route_input().as_ref(), uplinks);
                return (&self.uncached, true);
            }
            InputKey::Key(k) => flow_key(k, uplinks.gen()),
        };
        let (hit, r) = self.flows.slot(key);
        if hit {
            let r = *r;
            if r.kind != RouteKind::EQUALIZE {
                self.uncached.set_kind(r.kind);
                return (&self.uncached, false);
            }
            let i = usize::from(r.slot);
            if i < ROUTE_SLOTS && self.routes[i].fill == r.fill {
                return (&self.routes[i].route, false);
            }
        }
        // A miss, or the route copy was reused since: look up and refill.
        let lookup = skb.route_input();
        let kind = lookup.as_ref().map_or(RouteKind::NONE, kind_of);
        if kind != RouteKind::EQUALIZE {
            *r = RouteRef {
                kind,
                ..RouteRef::default()
            };
            self.uncached.set_kind(kind);
            return (&self.uncached, true);
        }
        let fi = lookup.as_ref().map_or(0, |l| l.key());
        // Flows of one route share its copy while the generation holds.
        let i = match (0..ROUTE_SLOTS).find(|&i| {
            let s = &self.routes[i];
            s.fill != 0 && s.genid == key.genid && s.route.key == fi
        }) {
            Some(i) => i,
            None => {
                let i = self.next % ROUTE_SLOTS;
                self.next = (i + 1) % ROUTE_SLOTS;
                let s = &mut self.routes[i];
                s.route.fill(lookup.as_ref(), uplinks);
                s.genid = key.genid;
                s.fill = s.fill.wrapping_add(1).max(1);
                i
            }
        };
        *r = RouteRef {
            kind,
            slot: i as u8,
            fill: self.routes[i].fill,
        };
        (&self.routes[i].route, true)
    }
}
