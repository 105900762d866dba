//! Strategy names and the ops table, selected by name like IPVS schedulers.

use super::desttable::DestTable;
use super::nexthop::{NexthopMask, Route};
use super::wrr::Pick;

/// The four strategies of the thesis (chapter 4), in sysctl order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StrategyId {
    /// Per destination: a destination keeps its uplink while in use.
    Route = 0,
    /// Per packet: smooth weighted round-robin.
    Packet = 1,
    /// Per connection, remembered in conntrack.
    Session = 2,
    /// Per packet, to the uplink with the most unused bandwidth.
    Bandwidth = 3,
}

/// What a bad name error message lists.
pub const STRATEGY_NAMES: &str = "route, packet, session, bandwidth";

/// Names with a trailing NUL, so C can print them without a copy.
const NAMES_NUL: [&str; 4] = ["route\0", "packet\0", "session\0", "bandwidth\0"];

impl StrategyId {
    /// All strategies, in id order.
    pub const ALL: [StrategyId; 4] = [Self::Route, Self::Packet, Self::Session, Self::Bandwidth];

    /// The sysctl and module parameter spelling.
    pub fn name(self) -> &'static str {
        let n = self.name_with_nul();
        n.strip_suffix('\0').unwrap_or(n)
    }

    /// The name followed by a NUL byte.
    pub fn name_with_nul(self) -> &'static str {
        NAMES_NUL[self as usize]
    }

    /// Parses a name as written to a sysctl: one trailing newline is allowed,
    /// nothing else (no other whitespace, no prefixes, case-sensitive).
    pub fn from_name(name: &[u8]) -> Option<Self> {
        let name = name.strip_suffix(b"\n").unwrap_or(name);
        Self::ALL.into_iter().find(|s| s.name().as_bytes() == name)
    }

    /// Inverse of `as u8`.
    pub fn from_u8(id: u8) -> Option<Self> {
        Self::ALL.get(usize::from(id)).copied()
    }

    /// The strategy's ops.
    pub fn ops(self) -> &'static dyn Strategy {
        match self {
            Self::Route => &super::route::RouteStrategy,
            Self::Packet => &super::packet::PacketStrategy,
            Self::Session => &super::session::SessionStrategy,
            Self::Bandwidth => &super::bandwidth::BandwidthStrategy,
        }
    }
}

/// Load of an uplink, for the bandwidth strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UplinkLoad {
    /// Estimated transmit rate, bit/s.
    pub rate_bps: u64,
    /// Capacity in bit/s; 0 when neither configured nor known from ethtool.
    pub capacity_bps: u64,
}

/// Where strategies read uplink load from (the per-netns uplink table in the
/// kernel, a fixture in tests).
pub trait LoadSource {
    /// Load of the uplink with this ifindex; `None` if it is not tracked.
    fn load(&self, oif: u32) -> Option<UplinkLoad>;
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
    /// Uplink remembered by the connection (conntrack mark), 0 if none.
    pub stored_oif: u32,
    /// Whether the packet belongs to a tracked connection.
    pub has_conn: bool,
    /// Uplink load for the bandwidth strategy.
    pub load: &'a dyn LoadSource,
}

/// Why a remembered uplink was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rechoose {
    /// The uplink is still a nexthop but dead or link-down.
    StoredDead,
    /// The uplink is no longer a nexthop of the route.
    StoredGone,
}

/// Checks a remembered uplink against the route as it is now: the
/// remembered selection if still usable, else the outcome of the new choice
/// that must replace it.
pub fn recall(route: &Route<'_>, usable: NexthopMask, oif: u32) -> Result<Selection, Outcome> {
    match route.find_oif(oif) {
        Some(index) if usable & (1 << index) != 0 => Ok(Selection {
            index,
            outcome: Outcome::Remembered,
        }),
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
}

/// A strategy's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Index into `Route::nexthops`.
    pub index: usize,
    /// How it was chosen.
    pub outcome: Outcome,
}

/// One balancing strategy. Implementations are stateless; their state lives
/// in [`Env`] so the kernel can keep it per CPU or per netns.
pub trait Strategy: Sync {
    /// The name users select it by.
    fn name(&self) -> &'static str;

    /// Chooses a nexthop, or `None` to leave the packet to stock ECMP (no
    /// usable nexthop).
    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection>;
}
