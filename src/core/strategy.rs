// SPDX-License-Identifier: GPL-2.0

//! The strategy ops table, selected by name like the IPVS schedulers
//! (`struct ip_vs_scheduler`): one strategy per `strategy_*.rs` file, each
//! owning its name, what kernel state it needs and its choice.

use super::desttable::DestTable;
use super::flowlettable::FlowletTable;
use super::loadtable::LoadTable;
use super::nexthop::{NexthopMask, Route};
use super::strategy_bandwidth::BandwidthStrategy;
use super::strategy_flowlet::FlowletStrategy;
use super::strategy_headroom::HeadroomStrategy;
use super::strategy_packet::PacketStrategy;
use super::strategy_route::RouteStrategy;
use super::strategy_session::SessionStrategy;
use super::wrr::Pick;

/// One balancing strategy. Implementations are stateless; their state lives
/// in [`Env`] so the kernel can keep it per CPU or per netns.
pub trait Strategy: Sync {
    /// The name users select it by (sysctl, module parameter, mpbalctl).
    fn name(&self) -> &'static str;

    /// What it needs of the kernel besides the route (none by default).
    fn needs(&self) -> Needs {
        Needs::NOTHING
    }

    /// Chooses a nexthop, or `None` to leave the packet to stock ECMP (no
    /// usable nexthop).
    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection>;
}

/// What a strategy needs of the kernel, as data: the packet path asks once
/// per packet and passes the answer on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// It reads connections (`ct->mark`): the netns then holds conntrack
    /// while this strategy is selected.
    pub conntrack: bool,
    /// It reads [`Env::load`] and books what it sends: the hook then
    /// measures the time since the last estimator sample.
    pub load: bool,
    /// It keeps destinations in [`Env::dests`], stamped with [`Env::now_s`].
    pub dest_table: bool,
    /// It keeps flows in [`Env::flowlets`]: the hook then reads the flow
    /// hash, the microsecond clock and `flowlet_gap_us`.
    pub flowlets: bool,
}

impl Needs {
    /// Only the route.
    pub const NOTHING: Needs = Needs {
        conntrack: false,
        load: false,
        dest_table: false,
        flowlets: false,
    };
}

/// A strategy and its needs, kept as data so the packet path reads them
/// without a call.
struct Entry {
    ops: &'static dyn Strategy,
    needs: Needs,
}

/// Every strategy, in id order: `net.mpbal.strategy` is stored as the index.
static STRATEGIES: [Entry; 6] = [
    Entry {
        ops: &RouteStrategy,
        needs: <RouteStrategy as Direct>::NEEDS,
    },
    Entry {
        ops: &PacketStrategy,
        needs: <PacketStrategy as Direct>::NEEDS,
    },
    Entry {
        ops: &SessionStrategy,
        needs: <SessionStrategy as Direct>::NEEDS,
    },
    Entry {
        ops: &BandwidthStrategy,
        needs: <BandwidthStrategy as Direct>::NEEDS,
    },
    Entry {
        ops: &HeadroomStrategy,
        needs: <HeadroomStrategy as Direct>::NEEDS,
    },
    Entry {
        ops: &FlowletStrategy,
        needs: <FlowletStrategy as Direct>::NEEDS,
    },
];

/// A strategy, by its position in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrategyId(u8);

impl StrategyId {
    /// The strategy new network namespaces start with: the thesis's
    /// recommendation (session keeps connections on one uplink).
    pub const DEFAULT: StrategyId = StrategyId(2);

    /// All strategies, in id order.
    pub fn all() -> impl Iterator<Item = StrategyId> {
        (0..STRATEGIES.len() as u8).map(StrategyId)
    }

    fn entry(self) -> &'static Entry {
        // Ids are only made from valid indexes.
        &STRATEGIES[usize::from(self.0) % STRATEGIES.len()]
    }

    /// The strategy's ops.
    pub fn ops(self) -> &'static dyn Strategy {
        self.entry().ops
    }

    /// Calls `w` with this id's strategy as a type, so that the caller is
    /// compiled once per strategy: its needs are constants there, and the
    /// choice inlines instead of a vtable call. The arms follow the order
    /// of the table (a test checks each against `ops()`).
    #[inline(always)]
    pub fn with<W: WithStrategy>(self, w: W) -> W::Output {
        match self.0 {
            0 => w.with(&RouteStrategy),
            1 => w.with(&PacketStrategy),
            2 => w.with(&SessionStrategy),
            3 => w.with(&BandwidthStrategy),
            4 => w.with(&HeadroomStrategy),
            _ => w.with(&FlowletStrategy),
        }
    }

    /// `self.ops().select(route, env)`, through [`StrategyId::with`].
    #[inline]
    pub fn select(self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        struct Select<'r, 'e, 'a>(&'r Route<'r>, &'e mut Env<'a>);
        impl WithStrategy for Select<'_, '_, '_> {
            type Output = Option<Selection>;
            fn with<S: Direct>(self, s: &S) -> Option<Selection> {
                s.select(self.0, self.1)
            }
        }
        self.with(Select(route, env))
    }

    /// `self.ops().needs()`, without the call.
    pub fn needs(self) -> Needs {
        self.entry().needs
    }

    /// The sysctl and module parameter spelling.
    pub fn name(self) -> &'static str {
        self.ops().name()
    }

    /// Parses a name as written to a sysctl: one trailing newline is allowed,
    /// nothing else (no other whitespace, no prefixes, case-sensitive).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        let name = name.strip_suffix(b"\n").unwrap_or(name);
        Self::all().find(|s| s.name().as_bytes() == name)
    }

    /// The id as stored in the sysctl.
    pub fn index(self) -> u8 {
        self.0
    }

    /// Inverse of [`StrategyId::index`].
    pub fn from_index(id: u8) -> Option<Self> {
        (usize::from(id) < STRATEGIES.len()).then_some(StrategyId(id))
    }
}

/// A strategy as a type, with its needs as a constant (the same as
/// [`Strategy::needs`]): what [`StrategyId::with`] hands over.
pub trait Direct: Strategy {
    /// What it needs of the kernel.
    const NEEDS: Needs;
}

/// Work generic over the strategy (see [`StrategyId::with`]).
pub trait WithStrategy {
    /// What the work returns.
    type Output;
    /// Does the work with strategy `s`.
    fn with<S: Direct>(self, s: &S) -> Self::Output;
}

/// Load of an uplink, for the bandwidth strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UplinkLoad {
    /// Estimated transmit rate, bit/s.
    pub rate_bps: u64,
    /// Capacity in bit/s; 0 when neither configured nor known from ethtool.
    pub capacity_bps: u64,
}

/// Everything a strategy may consult or update besides the route.
pub struct Env<'a> {
    /// Destination address of the packet as it carries it (network byte
    /// order read as a native integer); only compared and hashed.
    pub daddr: u32,
    /// Smooth WRR of this route for per-packet choices (per CPU).
    pub wrr: &'a mut dyn Pick,
    /// Smooth WRR of this route for first choices of a destination or
    /// connection (shared, so their spread is exact across CPUs).
    pub first: &'a mut dyn Pick,
    /// The per-destination table (route strategy).
    pub dests: &'a DestTable<'a>,
    /// Coarse clock in seconds, for the destination table.
    pub now_s: u32,
    /// `net.mpbal.route_idle_timeout`, seconds.
    pub idle_timeout_s: u32,
    /// Uplink id remembered by the connection (conntrack mark), 0 if none.
    pub stored_uplink: u32,
    /// Nexthops the packet may take at all (its source address pins it to
    /// one device, say); strategies choose among these and the usable ones.
    pub allowed: NexthopMask,
    /// Whether the packet belongs to a tracked connection.
    pub has_conn: bool,
    /// Uplink load for the bandwidth strategy (this CPU's copy).
    pub load: &'a mut LoadTable,
    /// The packet's size in bits: a strategy that reads the load books it
    /// against the uplink it chooses, so it counts until the next sample.
    pub bits: u64,
    /// The flow table and what it needs (flowlet strategy; [`NO_FLOWLETS`]
    /// for the others).
    pub flowlets: &'a Flowlets<'a>,
}

/// What the flowlet strategy reads besides the route: one reference in
/// [`Env`], so the strategies that do not keep flows pay one store.
pub struct Flowlets<'a> {
    /// The per-flow table.
    pub table: FlowletTable<'a>,
    /// The packet's flow hash.
    pub flow: u32,
    /// Microsecond clock.
    pub now_us: u64,
    /// `net.mpbal.flowlet_gap_us`.
    pub gap_us: u64,
    /// `net.mpbal.flowlet_queue_wait`: a paused flow also waits for its
    /// uplink's queue.
    pub queue_wait: bool,
    /// The uplinks' queues, read only when a flowlet may end and
    /// `queue_wait` is set.
    pub queues: &'a dyn UplinkQueues,
}

/// How long the bytes waiting in an uplink's queue (its qdisc) take to
/// leave. The flowlet strategy asks this only when a flow has paused for
/// the gap: a flow's last packets may still wait there.
pub trait UplinkQueues: Sync {
    /// Microseconds uplink `id`'s queue takes to drain, 0 if unknown.
    fn queue_us(&self, id: u32) -> u64;
}

/// Queues that are always empty (no qdisc, or not measured).
pub struct NoQueues;

impl UplinkQueues for NoQueues {
    fn queue_us(&self, _id: u32) -> u64 {
        0
    }
}

/// Longest queue the flowlet strategy waits for, us: a pause of the gap and
/// this long always ends a flowlet.
pub const MAX_QUEUE_US: u64 = 1 << 20;

/// Microseconds `backlog_bytes` take to leave at `bps` (0 when the rate is
/// not known), at most [`MAX_QUEUE_US`].
pub fn queue_us(backlog_bytes: u32, bps: u64) -> u64 {
    // Below 2^32 * 8e6 < 2^56: no overflow, and no 128-bit division (the
    // kernel has none).
    match bps {
        0 => 0,
        _ => (u64::from(backlog_bytes) * 8_000_000 / bps).min(MAX_QUEUE_US),
    }
}

/// No table: every packet would start a flowlet (the strategies that keep
/// no flows get this). A static: it holds a reference to a trait object.
pub static NO_FLOWLETS: Flowlets<'static> = Flowlets {
    table: FlowletTable::EMPTY,
    flow: 0,
    now_us: 0,
    gap_us: 0,
    queue_wait: false,
    queues: &NoQueues,
};

/// Why a remembered uplink was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rechoose {
    /// The uplink is still a nexthop but dead, link-down, administratively
    /// down, of a tier not in use, or not allowed for this packet.
    StoredDead,
    /// The uplink is no longer a nexthop of the route.
    StoredGone,
}

impl Env<'_> {
    /// The nexthops a strategy may choose from for this packet. A
    /// remembered uplink outside them is chosen again ([`recall`]), so an
    /// uplink that goes down, administratively or not, or whose tier is
    /// no longer the best, loses its destinations, connections and flows.
    pub fn candidates(&self, route: &Route<'_>) -> NexthopMask {
        route.eligible_within(self.allowed)
    }
}

/// Checks a remembered uplink against the route as it is now: the
/// remembered selection if still a candidate, else the outcome of the new
/// choice that must replace it.
pub fn recall(route: &Route<'_>, usable: NexthopMask, id: u32) -> Result<Selection, Outcome> {
    match route.find_uplink(id) {
        Some(index) if usable & (1 << index) != 0 => Ok(Selection {
            index,
            outcome: Outcome::Remembered,
        }),
        // Dead, link-down, admin down, a tier not in use, or not allowed
        // for this packet.
        Some(_) => Err(Outcome::Rechosen(Rechoose::StoredDead)),
        None => Err(Outcome::Rechosen(Rechoose::StoredGone)),
    }
}

/// How a nexthop was chosen; the hook turns this into counters and state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A remembered choice (destination table entry or connection mark).
    Remembered,
    /// A first choice for a new destination or connection: remember it.
    New,
    /// The remembered uplink was unusable; this new choice replaces it.
    Rechosen(Rechoose),
    /// A per-packet choice; nothing to remember.
    PerPacket,
    /// Session strategy on a packet without conntrack: per-packet WRR.
    Untracked,
    /// A flow that paused for the flowlet gap kept its uplink: its last
    /// packets may still wait in that uplink's queue.
    Held,
    /// A flow that paused for the flowlet gap took another uplink.
    Moved,
}

impl Outcome {
    /// A first choice for a destination or connection (new or replacing).
    pub fn is_first_choice(self) -> bool {
        matches!(self, Outcome::New | Outcome::Rechosen(_) | Outcome::Moved)
    }
}

/// A strategy's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Index into `Route::nexthops`.
    pub index: usize,
    /// How it was chosen.
    pub outcome: Outcome,
}
