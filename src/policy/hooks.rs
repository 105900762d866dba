// SPDX-License-Identifier: GPL-2.0

//! The three netfilter hooks (how they steer the kernel without a patch:
//! Documentation/overview.rst, "How mpbal steers the kernel").
//!
//! - PRE_ROUTING chooses a nexthop for forwarded packets and steers the
//!   kernel's own multipath choice to it through the skb hash.
//! - LOCAL_OUT chooses for locally generated packets, unless something pins
//!   them (a bound socket, a VRF, IPsec, their source address), and re-routes
//!   them the way `ip_route_me_harder()` does, onto the chosen nexthop.
//! - POST_ROUTING sees where a forwarded packet really leaves, gives it back
//!   a full-range hash (qdiscs and TX queues use its high bits), counts it on
//!   that uplink and stores it in the connection (session strategy).
//!
//! The hooks are registered only while the netns has equalize routes, and
//! `Active` exists for as long. The packet path takes no lock and allocates
//! nothing; sysctls are read once per packet.

use super::benchstub::{self, Stage};
use super::counters::{Counter, CpuCounters};
use super::routecache::{RouteBuf, RouteCache};
use super::state::{Active, Knob, NetState, HASH_POLICY_L4};
use super::uplinks::Booking;
use crate::mpbal_core::desttable::DestTable;
use crate::mpbal_core::nexthop::{NexthopMask, Route, RouteKind};
use crate::mpbal_core::strategy::{
    queue_us, recall, Direct, Env, Flowlets, Needs, Outcome, Rechoose, Selection, StrategyId,
    UplinkQueues, WithStrategy, NO_FLOWLETS,
};
use crate::mpbal_core::wrr::{Pick, WrrCache};
use crate::sys::log::warn_ratelimited;
use crate::sys::net::{coarse_ms, now_secs, now_us, TICK_US};
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
    /// The steering hash PRE_ROUTING wrote.
    hash: u32,
    /// The flow's own full-range hash, given back at POST_ROUTING.
    entropy: u32,
    /// Device and uplink id chosen.
    oif: u32,
    uplink: u32,
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
    /// LOCAL_OUT's route, here rather than on the stack.
    out_route: RouteBuf,
    /// Per-packet WRR of each route.
    wrr: WrrCache,
    steered: Steered,
    booking: Booking,
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
fn is_equalize(c: &CpuCounters, kind: RouteKind, seen: Counter) -> bool {
    match kind {
        RouteKind::EQUALIZE => return true,
        RouteKind::MULTIPATH => c.inc(Counter::PacketsMultipath),
        RouteKind::UNSUPPORTED => {
            c.inc(seen);
            c.inc(Counter::FallbackUnsupported);
        }
        _ => {}
    }
    false
}

/// The netns's strategy for one packet, and what it needs (asked once).
#[derive(Clone, Copy)]
struct Strat {
    id: StrategyId,
    needs: Needs,
}

impl Strat {
    fn of(st: &NetState) -> Self {
        let id = st.strategy();
        Strat {
            id,
            needs: id.needs(),
        }
    }
}

/// What a strategy gets to know about one packet.
struct Query {
    strat: Strat,
    daddr: u32,
    /// The uplink the connection's mark names, 0 if none.
    stored: u32,
    has_conn: bool,
    /// A reply of a connection whose uplink is known: it goes back that way
    /// under every strategy.
    pinned_reply: bool,
    allowed: NexthopMask,
    idle_timeout_s: u32,
    /// Packet size in bits, booked against the chosen uplink (strategies
    /// that read the load; 0 for the others).
    bits: u64,
    /// The flow hash (what the steering hash keeps of the flow).
    flow: u32,
}

impl Query {
    // Inlined into both hooks: out of line, the fields go through memory
    // (about 50 instructions a packet under icount).
    #[inline(always)]
    fn new(
        st: &NetState,
        skb: &SkBuff<'_>,
        strat: Strat,
        conn: Option<&NfConn<'_>>,
        allowed: NexthopMask,
        flow: u32,
    ) -> Self {
        let stored = conn.map_or(0, |c| st.mark.get(c.mark()));
        Query {
            strat,
            daddr: skb.daddr(),
            stored,
            has_conn: conn.is_some(),
            pinned_reply: stored != 0 && conn.is_some_and(|c| c.is_reply()),
            allowed,
            idle_timeout_s: if strat.needs.dest_table {
                st.knob(Knob::RouteIdleTimeout).max(1) as u32
            } else {
                0
            },
            bits: if strat.needs.load {
                u64::from(skb.len()) * 8
            } else {
                0
            },
            flow,
        }
    }

    /// Runs the strategy on this CPU's WRR and booking state.
    #[inline(always)]
    fn select(
        &self,
        st: &NetState,
        a: &Active,
        c: &CpuCounters,
        route: &Route<'_>,
        wrr: &mut WrrCache,
        booking: &mut Booking,
    ) -> Option<Selection> {
        self.strat.id.with(Choose {
            q: self,
            st,
            a,
            c,
            route,
            wrr,
            booking,
        })
    }
}

/// Gaps of at least this many ticks are timed on the tick.
const COARSE_GAP_TICKS: u64 = 10;

/// The flowlet clock for a gap of `gap_us`, and the gap to compare with
/// it. A gap of many ticks is timed with `jiffies` (a load, where reading
/// the clocksource costs tens of instructions a packet): a stamp is then
/// up to a tick early, so the gap grows by a tick and a flowlet never ends
/// before a pause of `gap_us`. Shorter gaps read the clocksource.
#[inline(always)]
fn flowlet_clock(gap_us: u64) -> (u64, u64) {
    if gap_us >= COARSE_GAP_TICKS * TICK_US {
        (coarse_ms() * 1000, gap_us + TICK_US)
    } else {
        (now_us(), gap_us)
    }
}

/// The uplinks' qdiscs, for the flowlet strategy: read only when a flow
/// has paused for the gap.
struct Qdiscs<'x>(&'x NetState);

impl UplinkQueues for Qdiscs<'_> {
    fn queue_us(&self, id: u32) -> u64 {
        let st = self.0;
        st.uplinks.drain_of(id).map_or(0, |(ifindex, bps)| {
            queue_us(st.net.dev_backlog(ifindex), bps)
        })
    }
}

/// One choice, compiled per strategy ([`StrategyId::with`]): what a
/// strategy does not need is neither read nor tested on its packets.
struct Choose<'x, 'r> {
    q: &'x Query,
    st: &'x NetState,
    a: &'x Active,
    c: &'x CpuCounters,
    route: &'x Route<'r>,
    wrr: &'x mut WrrCache,
    booking: &'x mut Booking,
}

impl WithStrategy for Choose<'_, '_> {
    type Output = Option<Selection>;

    #[inline(always)]
    fn with<S: Direct>(self, s: &S) -> Option<Selection> {
        let Choose {
            q,
            st,
            a,
            c,
            route,
            wrr,
            booking,
        } = self;
        let needs = S::NEEDS;
        let mut first = SharedPick(&a.first_wrr);
        let dests = if needs.dest_table {
            a.dest_table()
        } else {
            DestTable::EMPTY
        };
        let flows;
        let qdiscs = Qdiscs(st);
        let flowlets = if needs.flowlets {
            let (now_us, gap_us) = flowlet_clock(st.knob(Knob::FlowletGapUs).max(1) as u64);
            flows = Flowlets {
                table: a.flowlet_table(),
                flow: q.flow,
                now_us,
                gap_us,
                queue_wait: st.knob(Knob::FlowletQueueWait) != 0,
                queues: &qdiscs,
            };
            &flows
        } else {
            &NO_FLOWLETS
        };
        // Only strategies that read the load or the table need the clocks.
        let load = if needs.load {
            booking.refresh(
                &st.uplinks,
                st.sample_epoch.load(Ordering::Acquire),
                coarse_ms(),
                || {
                    let interval = st.knob(Knob::BwIntervalMs).max(1) as u32;
                    (interval, st.sample_ms.load(Ordering::Relaxed))
                },
            )
        } else {
            booking.table()
        };
        let mut env = Env {
            daddr: q.daddr,
            wrr: wrr.for_route(route.key),
            first: &mut first,
            dests: &dests,
            now_s: if needs.dest_table { now_secs() } else { 0 },
            idle_timeout_s: q.idle_timeout_s,
            stored_uplink: q.stored,
            allowed: q.allowed,
            has_conn: q.has_conn,
            load,
            bits: q.bits,
            flowlets,
        };
        // A strategy that keeps connections on an uplink does this itself.
        if q.pinned_reply && !needs.conntrack {
            if let Ok(sel) = recall(route, env.candidates(route), q.stored) {
                c.inc(Counter::InboundReplies);
                return Some(sel);
            }
        }
        s.select(route, &mut env)
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
        Outcome::Held => {
            c.inc(Counter::Remembered);
            c.inc(Counter::FlowletHeld);
        }
        Outcome::Moved => {
            c.inc(Counter::NewChoices);
            c.inc(Counter::FlowletMoves);
        }
        Outcome::PerPacket => {}
    }
}

/// Stores the uplink a connection really left by in its mark.
fn store_uplink(st: &NetState, c: &CpuCounters, conn: &NfConn<'_>, id: u32, first: bool) {
    let mark = conn.mark();
    if id == 0 || st.mark.get(mark) == id {
        return;
    }
    // The admin's bits outside the mask stay as they are.
    let Some(value) = st.mark.set(mark, id) else {
        c.inc(Counter::MarkOverflow);
        return;
    };
    conn.set_mark(value);
    if first {
        c.inc(Counter::SessionsNew);
        st.uplinks.add_session(id);
    }
}

/// A connection that comes in through an uplink remembers it, so that its
/// replies leave through the same uplink (thesis 4.2.3: conntrack "would
/// remember the incoming interface"). Whenever the netns tracks
/// connections, under every strategy.
fn remember_inbound(st: &NetState, c: &CpuCounters, skb: &SkBuff<'_>, conn: &NfConn<'_>) {
    let mark = conn.mark();
    if !conn.is_new() || conn.is_reply() || st.mark.get(mark) != 0 {
        return;
    }
    let id = st.uplinks.id_of_device(skb.in_ifindex());
    if id == 0 {
        return;
    }
    let value = st.mark.set(mark, id);
    if let Some(value) = value {
        conn.set_mark(value);
        st.uplinks.add_session(id);
    }
    c.inc(match value {
        Some(_) => Counter::InboundRecorded,
        None => Counter::MarkOverflow,
    });
}

/// What PRE_ROUTING made of a packet.
enum Pre {
    /// Not an equalize route (or one mpbal cannot steer).
    Other(RouteKind),
    /// Equalize route, but the hash policy does not let mpbal steer it.
    HashPolicy(i32),
    NoUsable,
    Steered(Selection, u32),
    /// Bench builds: stopped after a stage (`benchstub`).
    Stub,
}

/// PRE_ROUTING's choice for a forwarded packet, on this CPU's state (BH
/// off): the route (cached per flow), the strategy, and the note for
/// POST_ROUTING.
fn steer_forwarded(
    st: &NetState,
    a: &Active,
    c: &CpuCounters,
    local: &mut CpuLocal,
    skb: &mut SkBuff<'_>,
    strat: Strat,
    conn: Option<&NfConn<'_>>,
) -> Pre {
    let (buf, looked_up) = local.routes.input(skb, &st.uplinks);
    if looked_up {
        c.inc(Counter::RouteLookups);
    }
    if benchstub::stops_after(Stage::Route) {
        return Pre::Stub;
    }
    if buf.kind() != RouteKind::EQUALIZE {
        return Pre::Other(buf.kind());
    }
    let policy = st.net.hash_policy();
    if policy != HASH_POLICY_L4 {
        return Pre::HashPolicy(policy);
    }
    let route = buf.route();
    // The flow's hash: the flowlet strategy's key, and the steering hash's
    // entropy.
    let entropy = skb.entropy();
    let q = Query::new(st, skb, strat, conn, !0, entropy);
    if benchstub::stops_after(Stage::Query) {
        return Pre::Stub;
    }
    let Some(sel) = q.select(st, a, c, &route, &mut local.wrr, &mut local.booking) else {
        return Pre::NoUsable;
    };
    if benchstub::stops_after(Stage::Strategy) {
        return Pre::Stub;
    }
    let (Some(hash), Some(nh)) = (
        buf.steering_hash(sel.index, entropy),
        route.nexthops.get(sel.index),
    ) else {
        return Pre::NoUsable;
    };
    local.steered = Steered {
        skb: skb.id(),
        hash,
        entropy,
        oif: nh.oif,
        uplink: nh.uplink,
        remember: strat.needs.conntrack && conn.is_some(),
        new_session: sel.outcome.is_first_choice(),
    };
    Pre::Steered(sel, hash)
}

/// PRE_ROUTING, after conntrack and DNAT, before the route lookup. One
/// BH-off section for the choice and its counters.
pub(crate) fn prerouting(st: &NetState, skb: &mut SkBuff<'_>) {
    let rcu = skb.rcu();
    let Some(a) = st.active.get(&rcu) else {
        return;
    };
    if benchstub::stops_after(Stage::Hooks) {
        skb.set_l4_hash(0);
        return;
    }
    let strat = Strat::of(st);
    let conn = skb.conn();
    let hash = a.cpu.with(|local, c| {
        // Whoever runs conntrack here (mpbal for session, or NAT rules),
        // its entries carry the inbound uplink.
        if let Some(conn) = &conn {
            remember_inbound(st, c, skb, conn);
        }
        let Some(local) = local else {
            c.inc(Counter::Reentered);
            return None;
        };
        let conn = conn.as_ref().filter(|c| strat.needs.conntrack || c.is_reply());
        let pre = steer_forwarded(st, a, c, local, skb, strat, conn);
        match pre {
            Pre::Stub => return Some(0),
            Pre::Steered(_, hash) if benchstub::stops_after(Stage::Hash) => return Some(hash),
            _ => {}
        }
        if let Pre::Other(kind) = pre {
            is_equalize(c, kind, Counter::PacketsFwd);
            return None;
        }
        c.inc(Counter::PacketsFwd);
        match pre {
            Pre::HashPolicy(policy) => {
                warn_ratelimited(format_args!(
                    "netns {}: fib_multipath_hash_policy is {}, not 1: equalize routes not steered for forwarded packets",
                    st.net.inum(),
                    policy
                ));
                c.inc(Counter::FallbackHashPolicy);
                None
            }
            Pre::Steered(sel, hash) => {
                count_outcome(c, sel.outcome);
                Some(hash)
            }
            _ => {
                c.inc(Counter::FallbackNoUsable);
                None
            }
        }
    });
    if let Some(hash) = hash {
        skb.set_l4_hash(hash);
    }
}

/// What LOCAL_OUT may choose from, or why it leaves the packet alone.
enum Local {
    /// Pinned (bound socket, VRF) or left to IPsec: counted, not steered.
    Leave(Counter),
    /// These nexthops (all, or those of the source address's device).
    Choose(NexthopMask, bool),
}

/// The rules for locally generated packets (Documentation/overview.rst,
/// "Locally generated traffic"), on the packet's route.
fn local_rules(skb: &SkBuff<'_>, route: &Route<'_>) -> Local {
    let facts = skb.local_facts();
    if facts.bound_oif != 0 || facts.unicast_if != 0 || facts.l3mdev {
        return Local::Leave(Counter::LocalPinned);
    }
    if skb.dst_is_xfrm() {
        return Local::Leave(Counter::LocalIpsec);
    }
    // A source address on one uplink's device leaves through that device:
    // the upstream drops it elsewhere (BCP38), and NAT cannot fix replies.
    match route.on_device(facts.saddr_ifindex) {
        0 => Local::Choose(!0, false),
        mask => Local::Choose(mask, true),
    }
}

/// LOCAL_OUT, after conntrack, DNAT and the mangle reroute.
pub(crate) fn local_out(st: &NetState, skb: &mut SkBuff<'_>) {
    let rcu = skb.rcu();
    let Some(a) = st.active.get(&rcu) else {
        return;
    };
    let strat = Strat::of(st);
    let conn = skb.conn().filter(|c| strat.needs.conntrack || c.is_reply());
    // The choice in one BH-off section; the reroute outside it (it may
    // look up xfrm policies), then the counters.
    let chosen = a.cpu.with(|local, c| {
        let Some(local) = local else {
            c.inc(Counter::PacketsLocal);
            c.inc(Counter::Reentered);
            return None;
        };
        let buf = &mut local.out_route;
        buf.fill(skb.route_output().as_ref(), &st.uplinks);
        if !is_equalize(c, buf.kind(), Counter::PacketsLocal) {
            return None;
        }
        let route = buf.route();
        let (allowed, by_source) = match local_rules(skb, &route) {
            Local::Leave(why) => {
                c.inc(Counter::PacketsLocal);
                c.inc(why);
                return None;
            }
            Local::Choose(mask, by_source) => (mask, by_source),
        };
        let entropy = skb.entropy();
        let q = Query::new(st, skb, strat, conn.as_ref(), allowed, entropy);
        let sel = q.select(st, a, c, &route, &mut local.wrr, &mut local.booking);
        let chosen = sel.and_then(|sel| {
            let nh = *route.nexthops.get(sel.index)?;
            let hash = buf.steering_hash(sel.index, entropy)?;
            Some((sel, nh, hash, by_source))
        });
        if chosen.is_none() {
            c.inc(Counter::PacketsLocal);
            c.inc(Counter::FallbackNoUsable);
        }
        chosen
    });
    let Some((sel, nh, hash, by_source)) = chosen else {
        return;
    };
    // The socket's cached route often already leaves by the chosen nexthop.
    let cached = skb.dst_nexthop();
    let (rerouted, (out_oif, out_gw)) = if cached == (nh.oif, nh.gw) {
        (true, cached)
    } else {
        (skb.reroute_hash(hash).is_ok(), skb.dst_nexthop())
    };
    let out = st.uplinks.id(out_oif, out_gw);
    let (segs, len) = (u64::from(skb.segs()), u64::from(skb.len()));
    a.cpu.with(|_, c| {
        c.inc(Counter::PacketsLocal);
        if !rerouted {
            c.inc(Counter::FallbackReroute);
            return;
        }
        if by_source {
            c.inc(Counter::LocalSrcPinned);
        }
        count_outcome(c, sel.outcome);
        if out != nh.uplink {
            c.inc(Counter::FallbackDiverted);
        }
        if let Some(slot) = (out as usize).checked_sub(1) {
            c.add_uplink(slot, segs, len);
        }
        if let Some(conn) = conn.as_ref().filter(|_| strat.needs.conntrack) {
            store_uplink(st, c, conn, out, sel.outcome.is_first_choice());
        }
    });
}

/// POST_ROUTING, after SNAT, before conntrack confirms a new entry. One
/// BH-off section for the note PRE_ROUTING left and the counters.
pub(crate) fn postrouting(st: &NetState, skb: &mut SkBuff<'_>) {
    let rcu = skb.rcu();
    let Some(a) = st.active.get(&rcu) else {
        return;
    };
    let f = skb.post_facts();
    if !f.forwarded || benchstub::stops_before(Stage::Post) {
        return;
    }
    a.cpu.with(|local, c| {
        let Some(local) = local else {
            return;
        };
        // Consumed: a later packet at this address must not match it.
        let note = local.steered;
        local.steered.skb = 0;
        if note.skb != skb.id() || note.hash != f.hash {
            return;
        }
        // The route is decided: qdiscs and TX queues get the flow's hash back.
        skb.set_l4_hash(note.entropy);
        let out = if f.out_ifindex == note.oif {
            note.uplink
        } else {
            let (oif, gw) = skb.dst_nexthop();
            st.uplinks.id(oif, gw)
        };
        if benchstub::stops_after(Stage::Post) {
            return;
        }
        if out != note.uplink {
            c.inc(Counter::FallbackDiverted);
        }
        if let Some(slot) = (out as usize).checked_sub(1) {
            c.add_uplink(slot, u64::from(f.segs), u64::from(f.len));
        }
        if note.remember {
            if let Some(conn) = skb.conn() {
                store_uplink(st, c, &conn, out, note.new_session);
            }
        }
    });
}
