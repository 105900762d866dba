//! The three netfilter hooks (DESIGN.md section 3).
//!
//! - PRE_ROUTING chooses a nexthop for forwarded packets and steers the
//!   kernel's own multipath choice to it through the skb hash.
//! - LOCAL_OUT chooses for locally generated packets and re-routes them with
//!   the chosen output device.
//! - POST_ROUTING sees where a forwarded packet really leaves, counts it on
//!   that uplink and stores it in the connection (session strategy).
//!
//! Every hook returns at once in a netns without equalize routes. The packet
//! path takes no lock and allocates nothing; sysctls are read once per packet.

use super::counters::{Counter, CpuCounters};
use super::state::{Booking, CpuWrr, NetState, Steered};
use super::uplinks::BookedLoad;
use crate::mpbal_core::hashrange;
use crate::mpbal_core::nexthop::{NexthopMask, Route};
use crate::mpbal_core::strategy::{Env, Outcome, Rechoose, Selection, StrategyId};
use crate::mpbal_core::wrr::Pick;
use crate::sys::log::warn_ratelimited;
use crate::sys::net::{now_ms, now_secs};
use crate::sys::packet::{Conn, Packet, RouteBuf, RouteKind};
use core::sync::atomic::Ordering;
use kernel::sync::SpinLock;

/// The hash policy the forwarding lever needs.
const HASH_POLICY_L4: i32 = 1;

fn active(st: &NetState) -> bool {
    st.equalize_routes.load(Ordering::Relaxed) != 0
}

/// The shared first-choice WRR, locked only when a first choice is made.
struct SharedPick<'a>(&'a SpinLock<CpuWrr>);

impl Pick for SharedPick<'_> {
    fn pick(&mut self, route: &Route<'_>, mask: NexthopMask) -> Option<usize> {
        self.0.lock().for_route(route.key).pick(route, mask)
    }

    fn unpick(&mut self, route: &Route<'_>, mask: NexthopMask, i: usize) {
        self.0.lock().for_route(route.key).unpick(route, mask, i)
    }
}

/// Whether the packet's route is ours; counts the multipath routes that are
/// not, and the equalize routes mpbal cannot steer (as `seen` packets).
fn is_equalize(st: &NetState, kind: RouteKind, seen: Counter) -> bool {
    match kind {
        RouteKind::Equalize => return true,
        RouteKind::None => {}
        RouteKind::Multipath => st.counters.local(|c| c.inc(Counter::PacketsMultipath)),
        RouteKind::Unsupported => st.counters.local(|c| {
            c.inc(seen);
            c.inc(Counter::FallbackUnsupported);
        }),
    }
    false
}

/// What a strategy gets to know about one packet.
struct Query {
    strategy: StrategyId,
    daddr: u32,
    stored_oif: u32,
    has_conn: bool,
    idle_timeout_s: u32,
    /// Packet size in bits, booked against the chosen uplink (bandwidth).
    bits: u64,
}

impl Query {
    fn new(st: &NetState, pkt: &Packet<'_>, strategy: StrategyId, conn: Option<&Conn<'_>>) -> Self {
        Query {
            strategy,
            daddr: pkt.daddr(),
            stored_oif: conn.map_or(0, |c| st.mark.get(c.mark())),
            has_conn: conn.is_some(),
            idle_timeout_s: st.conf.route_idle_timeout().max(1) as u32,
            bits: u64::from(pkt.len()) * 8,
        }
    }

    /// Runs the strategy on this CPU's WRR and booking state.
    fn select(
        &self,
        st: &NetState,
        route: &Route<'_>,
        wrr: &mut CpuWrr,
        booking: &mut Booking,
    ) -> Option<Selection> {
        let dests = st.dest_table();
        let mut first = SharedPick(&st.first_wrr);
        booking.refresh(st.sample_epoch.load(Ordering::Acquire));
        let load = BookedLoad {
            uplinks: &st.uplinks,
            booking,
            interval_ms: st.conf.bw_interval_ms().max(1) as u32,
            // Only the bandwidth strategy reads it: no clock read otherwise.
            since_sample_ms: match self.strategy {
                StrategyId::Bandwidth => {
                    now_ms().saturating_sub(st.sample_ms.load(Ordering::Relaxed))
                }
                _ => 0,
            },
        };
        let mut env = Env {
            daddr: self.daddr,
            wrr: wrr.for_route(route.key),
            first: &mut first,
            dests: &dests,
            now_s: now_secs(),
            idle_timeout_s: self.idle_timeout_s,
            stored_oif: self.stored_oif,
            has_conn: self.has_conn,
            load: &load,
        };
        let sel = self.strategy.ops().select(route, &mut env)?;
        if self.strategy == StrategyId::Bandwidth {
            let oif = route.nexthops.get(sel.index)?.oif;
            if let Some(b) = st.uplinks.find(oif).and_then(|s| booking.bits.get_mut(s)) {
                *b = b.saturating_add(self.bits);
            }
        }
        Some(sel)
    }
}

fn count_outcome(c: &CpuCounters, outcome: Outcome) {
    c.inc(Counter::Steered);
    match outcome {
        Outcome::Remembered => c.inc(Counter::Remembered),
        Outcome::New => c.inc(Counter::NewChoices),
        Outcome::Rechosen(Rechoose::StoredDead) => c.inc(Counter::RechosenDead),
        Outcome::Rechosen(Rechoose::StoredGone) => c.inc(Counter::RechosenGone),
        Outcome::Untracked => c.inc(Counter::Untracked),
        Outcome::PerPacket => {}
    }
}

fn is_first_choice(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::New | Outcome::Rechosen(_))
}

/// Stores the uplink a connection really left by in its mark.
fn store_uplink(st: &NetState, c: &CpuCounters, conn: &Conn<'_>, oif: u32, first: bool) {
    if st.mark.get(conn.mark()) == oif {
        return;
    }
    let Some(value) = st.mark.set(0, oif) else {
        c.inc(Counter::MarkOverflow);
        return;
    };
    conn.set_mark(st.mark.mask(), value);
    if first {
        c.inc(Counter::SessionsNew);
        if let Some(slot) = st.uplinks.find(oif) {
            st.uplinks.add_session(slot);
        }
    }
}

/// A connection that comes in through an uplink remembers it, so that its
/// replies leave through the same uplink (thesis 4.2.3: conntrack "would
/// remember the incoming interface").
fn remember_inbound(st: &NetState, pkt: &Packet<'_>, conn: &Conn<'_>) {
    if !conn.is_new() || conn.is_reply() || st.mark.get(conn.mark()) != 0 {
        return;
    }
    let iif = pkt.in_ifindex();
    if !st.uplinks.contains(iif) {
        return;
    }
    let value = st.mark.set(0, iif);
    if let Some(value) = value {
        conn.set_mark(st.mark.mask(), value);
        if let Some(slot) = st.uplinks.find(iif) {
            st.uplinks.add_session(slot);
        }
    }
    st.counters.local(|c| {
        c.inc(match value {
            Some(_) => Counter::InboundRecorded,
            None => Counter::MarkOverflow,
        })
    });
}

/// What PRE_ROUTING made of a packet, counted once BH is back on.
enum Pre {
    /// Not an equalize route (or one mpbal cannot steer).
    Other(RouteKind),
    /// Equalize route, but the hash policy does not let mpbal steer it.
    HashPolicy(i32),
    NoUsable,
    Steered(Selection, u32),
}

/// PRE_ROUTING, after conntrack and DNAT, before the route lookup.
pub(crate) fn prerouting(st: &NetState, pkt: &mut Packet<'_>) {
    if !active(st) {
        return;
    }
    let strategy = st.strategy();
    let conn = match strategy {
        StrategyId::Session => pkt.conn(),
        _ => None,
    };
    if let Some(c) = &conn {
        remember_inbound(st, pkt, c);
    }
    let skb = pkt.id();
    // One BH-off section for the lookup (its cache is per CPU), the choice
    // and the note for POST_ROUTING.
    let done = st.local.with(|local| {
        let (buf, looked_up) = pkt.route_input(&mut local.routes);
        if buf.kind() != RouteKind::Equalize {
            return (Pre::Other(buf.kind()), looked_up);
        }
        let policy = st.net.hash_policy();
        if policy != HASH_POLICY_L4 {
            return (Pre::HashPolicy(policy), looked_up);
        }
        let route = buf.route();
        let q = Query::new(st, pkt, strategy, conn.as_ref());
        let mut steer = || {
            let sel = q.select(st, &route, &mut local.wrr, &mut local.booking)?;
            let hash = hashrange::skb_hash_for(route.nexthops, sel.index, pkt.entropy())?;
            local.steered = Steered {
                skb,
                hash,
                oif: route.nexthops.get(sel.index)?.oif,
                remember: conn.is_some(),
                new_session: is_first_choice(sel.outcome),
            };
            Some(Pre::Steered(sel, hash))
        };
        (steer().unwrap_or(Pre::NoUsable), looked_up)
    });
    let Some((pre, looked_up)) = done else {
        st.counters.local(|c| c.inc(Counter::Reentered));
        return;
    };
    if looked_up {
        st.counters.local(|c| c.inc(Counter::RouteLookups));
    }
    let hash = match pre {
        Pre::Other(kind) => {
            is_equalize(st, kind, Counter::PacketsFwd);
            return;
        }
        Pre::HashPolicy(policy) => {
            warn_ratelimited(format_args!(
                "netns {}: fib_multipath_hash_policy is {}, not 1: equalize routes not steered for forwarded packets",
                st.net.inum(),
                policy
            ));
            st.counters.local(|c| {
                c.inc(Counter::PacketsFwd);
                c.inc(Counter::FallbackHashPolicy);
            });
            return;
        }
        Pre::NoUsable => {
            st.counters.local(|c| {
                c.inc(Counter::PacketsFwd);
                c.inc(Counter::FallbackNoUsable);
            });
            return;
        }
        Pre::Steered(sel, hash) => {
            st.counters.local(|c| {
                c.inc(Counter::PacketsFwd);
                count_outcome(c, sel.outcome);
            });
            hash
        }
    };
    pkt.set_l4_hash(hash);
}

/// LOCAL_OUT, after conntrack, DNAT and the mangle reroute.
pub(crate) fn local_out(st: &NetState, pkt: &mut Packet<'_>) {
    if !active(st) {
        return;
    }
    let mut buf = RouteBuf::default();
    if !is_equalize(st, pkt.route_output(&mut buf), Counter::PacketsLocal) {
        return;
    }
    let strategy = st.strategy();
    let conn = match strategy {
        StrategyId::Session => pkt.conn(),
        _ => None,
    };
    let route = buf.route();
    let q = Query::new(st, pkt, strategy, conn.as_ref());
    let chosen = st.local.with(|local| {
        let sel = q.select(st, &route, &mut local.wrr, &mut local.booking)?;
        Some((sel, route.nexthops.get(sel.index)?.oif))
    });
    let (sel, oif) = match chosen {
        Some(Some(chosen)) => chosen,
        other => {
            st.counters.local(|c| {
                c.inc(Counter::PacketsLocal);
                c.inc(if other.is_none() {
                    Counter::Reentered
                } else {
                    Counter::FallbackNoUsable
                });
            });
            return;
        }
    };
    // The socket's cached route often already leaves by the chosen uplink.
    let rerouted = pkt.dst_oif() == oif || pkt.reroute_oif(oif).is_ok();
    let out = pkt.dst_oif();
    let (segs, len) = (u64::from(pkt.segs()), u64::from(pkt.len()));
    st.counters.local(|c| {
        c.inc(Counter::PacketsLocal);
        if !rerouted {
            c.inc(Counter::FallbackReroute);
            return;
        }
        count_outcome(c, sel.outcome);
        if out != oif {
            c.inc(Counter::FallbackDiverted);
        }
        if let Some(slot) = st.uplinks.find(out) {
            c.add_uplink(slot, segs, len);
        }
        if let Some(conn) = &conn {
            store_uplink(st, c, conn, out, is_first_choice(sel.outcome));
        }
    });
}

/// POST_ROUTING, after SNAT, before conntrack confirms a new entry.
pub(crate) fn postrouting(st: &NetState, pkt: &mut Packet<'_>) {
    if !active(st) || !pkt.forwarded() {
        return;
    }
    let Some(note) = st.local.with(|local| core::mem::take(&mut local.steered)) else {
        return;
    };
    if note.skb != pkt.id() || note.hash != pkt.hash() {
        return;
    }
    let out = pkt.out_ifindex();
    let (segs, len) = (u64::from(pkt.segs()), u64::from(pkt.len()));
    let conn = if note.remember { pkt.conn() } else { None };
    st.counters.local(|c| {
        if out != note.oif {
            c.inc(Counter::FallbackDiverted);
        }
        if let Some(slot) = st.uplinks.find(out) {
            c.add_uplink(slot, segs, len);
        }
        if let Some(conn) = &conn {
            store_uplink(st, c, conn, out, note.new_session);
        }
    });
}
