//! The three netfilter hooks (how they steer the kernel without a patch:
//! Documentation/overview.rst, "How mpbal steers the kernel").
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
use super::routecache::{RouteBuf, RouteCache};
use super::state::{Knob, NetState, HASH_POLICY_L4};
use super::uplinks::{BookedLoad, Booking};
use crate::mpbal_core::hashrange;
use crate::mpbal_core::nexthop::{NexthopMask, Route, RouteKind};
use crate::mpbal_core::strategy::{Env, Outcome, Rechoose, Selection, Strategy};
use crate::mpbal_core::wrr::{Pick, WrrCache};
use crate::sys::log::warn_ratelimited;
use crate::sys::net::{now_ms, now_secs};
use crate::sys::skb::{NfConn, SkBuff};
use core::sync::atomic::Ordering;
use kernel::macros::Zeroable;
use kernel::sync::SpinLock;

/// What PRE_ROUTING steered, for POST_ROUTING of the same packet.
///
/// A forwarded packet goes PRE_ROUTING -> FORWARD -> POST_ROUTING inside one
/// softirq on one CPU, so a per-CPU note keyed by skb address and hash is
/// enough to count the uplink it really left by; a packet dropped in between
/// just leaves a stale note that the next one overwrites.
#[derive(Clone, Copy, Default, Zeroable)]
struct Steered {
    skb: usize,
    hash: u32,
    /// Uplink chosen.
    oif: u32,
    /// Whether the choice should be stored in the connection (session).
    remember: bool,
    /// Whether it is a first choice for a connection.
    new_session: bool,
}

/// Per-CPU state of the hooks; only its CPU touches it.
#[derive(Zeroable)]
pub(crate) struct CpuLocal {
    /// PRE_ROUTING's route lookups.
    routes: RouteCache,
    /// Per-packet WRR of each route.
    wrr: WrrCache,
    steered: Steered,
    booking: Booking,
}

fn active(st: &NetState) -> bool {
    st.equalize_routes.load(Ordering::Relaxed) != 0
}

/// The shared first-choice WRR, locked only when a first choice is made.
struct SharedPick<'a>(&'a SpinLock<WrrCache>);

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
        RouteKind::EQUALIZE => return true,
        RouteKind::MULTIPATH => st.counters.local(|c| c.inc(Counter::PacketsMultipath)),
        RouteKind::UNSUPPORTED => st.counters.local(|c| {
            c.inc(seen);
            c.inc(Counter::FallbackUnsupported);
        }),
        _ => {}
    }
    false
}

/// What a strategy gets to know about one packet.
struct Query {
    ops: &'static dyn Strategy,
    daddr: u32,
    stored_oif: u32,
    has_conn: bool,
    idle_timeout_s: u32,
    /// Packet size in bits, booked against the chosen uplink (bandwidth).
    bits: u64,
}

impl Query {
    fn new(
        st: &NetState,
        pkt: &SkBuff<'_>,
        ops: &'static dyn Strategy,
        conn: Option<&NfConn<'_>>,
    ) -> Self {
        Query {
            ops,
            daddr: pkt.daddr(),
            stored_oif: conn.map_or(0, |c| st.mark.get(c.mark())),
            has_conn: conn.is_some(),
            idle_timeout_s: st.knob(Knob::RouteIdleTimeout).max(1) as u32,
            bits: u64::from(pkt.len()) * 8,
        }
    }

    /// Runs the strategy on this CPU's WRR and booking state.
    fn select(
        &self,
        st: &NetState,
        route: &Route<'_>,
        wrr: &mut WrrCache,
        booking: &mut Booking,
    ) -> Option<Selection> {
        let dests = st.dest_table();
        let mut first = SharedPick(&st.first_wrr);
        booking.refresh(st.sample_epoch.load(Ordering::Acquire));
        let mut load = BookedLoad {
            uplinks: &st.uplinks,
            booking,
            interval_ms: st.knob(Knob::BwIntervalMs).max(1) as u32,
            // Only strategies that read the load need the clock.
            since_sample_ms: if self.ops.uses_load() {
                now_ms().saturating_sub(st.sample_ms.load(Ordering::Relaxed))
            } else {
                0
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
            load: &mut load,
        };
        let sel = self.ops.select(route, &mut env)?;
        let oif = route.nexthops.get(sel.index)?.oif;
        self.ops.book(&mut env, oif, self.bits);
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

/// Stores the uplink a connection really left by in its mark.
fn store_uplink(st: &NetState, c: &CpuCounters, conn: &NfConn<'_>, oif: u32, first: bool) {
    let mark = conn.mark();
    if st.mark.get(mark) == oif {
        return;
    }
    // The admin's bits outside the mask stay as they are.
    let Some(value) = st.mark.set(mark, oif) else {
        c.inc(Counter::MarkOverflow);
        return;
    };
    conn.set_mark(value);
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
fn remember_inbound(st: &NetState, pkt: &SkBuff<'_>, conn: &NfConn<'_>) {
    let mark = conn.mark();
    if !conn.is_new() || conn.is_reply() || st.mark.get(mark) != 0 {
        return;
    }
    let iif = pkt.in_ifindex();
    if !st.uplinks.contains(iif) {
        return;
    }
    let value = st.mark.set(mark, iif);
    if let Some(value) = value {
        conn.set_mark(value);
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
pub(crate) fn prerouting(st: &NetState, pkt: &mut SkBuff<'_>) {
    if !active(st) {
        return;
    }
    let ops = st.ops();
    let conn = if ops.needs_conntrack() {
        pkt.conn()
    } else {
        None
    };
    if let Some(c) = &conn {
        remember_inbound(st, pkt, c);
    }
    let skb = pkt.id();
    // One BH-off section for the lookup (its cache is per CPU), the choice
    // and the note for POST_ROUTING.
    let done = st.local.with(|local| {
        let (buf, looked_up) = local.routes.input(pkt);
        if buf.kind() != RouteKind::EQUALIZE {
            return (Pre::Other(buf.kind()), looked_up);
        }
        let policy = st.net.hash_policy();
        if policy != HASH_POLICY_L4 {
            return (Pre::HashPolicy(policy), looked_up);
        }
        let route = buf.route();
        let q = Query::new(st, pkt, ops, conn.as_ref());
        let mut steer = || {
            let sel = q.select(st, &route, &mut local.wrr, &mut local.booking)?;
            let hash = hashrange::skb_hash_for(route.nexthops, sel.index, pkt.entropy())?;
            local.steered = Steered {
                skb,
                hash,
                oif: route.nexthops.get(sel.index)?.oif,
                remember: conn.is_some(),
                new_session: sel.outcome.is_first_choice(),
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
pub(crate) fn local_out(st: &NetState, pkt: &mut SkBuff<'_>) {
    if !active(st) {
        return;
    }
    // A socket bound to a device has chosen its uplink itself.
    if pkt.sk_bound_oif() != 0 {
        return;
    }
    let mut buf = RouteBuf::default();
    buf.fill(pkt.route_output().as_ref());
    if !is_equalize(st, buf.kind(), Counter::PacketsLocal) {
        return;
    }
    let ops = st.ops();
    let conn = if ops.needs_conntrack() {
        pkt.conn()
    } else {
        None
    };
    let route = buf.route();
    let q = Query::new(st, pkt, ops, conn.as_ref());
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
            store_uplink(st, c, conn, out, sel.outcome.is_first_choice());
        }
    });
}

/// POST_ROUTING, after SNAT, before conntrack confirms a new entry.
pub(crate) fn postrouting(st: &NetState, pkt: &mut SkBuff<'_>) {
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
