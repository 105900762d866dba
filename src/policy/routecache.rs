//! The route a packet will take, as far as mpbal cares, and PRE_ROUTING's
//! per-CPU cache of route lookups (see `mpbal_core::flowcache`).

use super::uplinks::Uplinks;
use crate::mpbal_core::flowcache::{FlowCache, FlowKey};
use crate::mpbal_core::nexthop::{Nexthop, Route, RouteKind, MAX_NEXTHOPS};
use crate::sys::route::{FibLookup, FlowInputs, InputKey, RawNexthop, NH_F_DEAD, NH_F_LINKDOWN};
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
}

/// mpbal never picks a dead or link-down nexthop.
const NH_UNUSABLE: u32 = NH_F_DEAD | NH_F_LINKDOWN;

impl RouteBuf {
    /// Fills the buffer from a lookup (none: the packet has no route), with
    /// each nexthop's uplink id from `uplinks`.
    pub(crate) fn fill(&mut self, lookup: Option<&FibLookup<'_>>, uplinks: &Uplinks) {
        self.len = 0;
        let Some(l) = lookup else {
            self.kind = RouteKind::NONE;
            return;
        };
        self.kind =
            RouteKind::classify(l.is_unicast(), l.paths(), l.equalize_flag(), l.nh_object());
        if self.kind != RouteKind::EQUALIZE {
            return;
        }
        let mut raw = [RawNexthop::default(); MAX_NEXTHOPS];
        let n = l.nexthops(&mut raw);
        self.key = l.key();
        for (nh, raw) in self.nexthops.iter_mut().zip(raw.iter()).take(n) {
            *nh = Nexthop {
                oif: raw.oif,
                gw: raw.gw,
                uplink: uplinks.id(raw.oif, raw.gw),
                weight: raw.weight,
                upper_bound: raw.upper_bound,
                usable: raw.flags & NH_UNUSABLE == 0,
            };
        }
        self.len = n;
    }

    pub(crate) fn kind(&self) -> RouteKind {
        self.kind
    }

    /// The route as the core sees it (no nexthops unless `EQUALIZE`).
    pub(crate) fn route(&self) -> Route<'_> {
        Route {
            key: self.key,
            nexthops: &self.nexthops[..self.len],
        }
    }
}

/// PRE_ROUTING route lookups of one CPU, and the buffer for lookups that
/// cannot be cached.
#[derive(Zeroable)]
pub(crate) struct RouteCache {
    flows: FlowCache<RouteBuf>,
    uncached: RouteBuf,
}

/// The cache key: a cached entry is valid for one routing generation and
/// one assignment of uplink ids (both only grow, so their sum changes
/// whenever either does).
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
        let buf = match skb.input_key() {
            InputKey::NotForwarded => {
                // Only kind and length are read for a non-equalize route.
                self.uncached.fill(None, uplinks);
                return (&self.uncached, false);
            }
            InputKey::Key(k) => match self.flows.slot(flow_key(k, uplinks.gen())) {
                (true, buf) => return (buf, false),
                (false, buf) => buf,
            },
            InputKey::Uncached => &mut self.uncached,
        };
        buf.fill(skb.route_input().as_ref(), uplinks);
        (buf, true)
    }
}
