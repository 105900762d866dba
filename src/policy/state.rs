//! The per-netns state of mpbal.

use super::counters::{Counter, CpuCounters, MAX_UPLINKS};
use super::devices::Devices;
use super::routes::RouteSet;
use super::uplinks::Uplinks;
use super::worker::WorkerState;
use crate::mpbal_core::desttable::DestTable;
use crate::mpbal_core::markfield::MarkField;
use crate::mpbal_core::strategy::StrategyId;
use crate::mpbal_core::wrr::WrrCache;
use crate::sys::fib::FibEvent;
use crate::sys::hooks::HookSwitch;
use crate::sys::log::{warn_ratelimited, Ipv4};
use crate::sys::module::params;
use crate::sys::net::Net;
use crate::sys::packet::RouteCache;
use crate::sys::percpu::{PerCpuExclusive, PerCpuShared};
use crate::sys::sysctl::{ConfDefaults, SysctlConf};
use crate::sys::work::WorkRef;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{code::EINVAL, Error, Result};
use kernel::init::PinInit;
use kernel::prelude::pin_data;
use kernel::sync::{Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock, try_pin_init};

/// Default of `net.mpbal.route_idle_timeout`, seconds.
pub(crate) const ROUTE_IDLE_TIMEOUT_DEFAULT: i32 = 60;
/// Default of `net.mpbal.bw_interval_ms` (the thesis sampled every second).
pub(crate) const BW_INTERVAL_MS_DEFAULT: i32 = 1000;
/// Default of `net.mpbal.bw_ewma_log`: 1/8, about the thesis's 8 s average.
pub(crate) const BW_EWMA_LOG_DEFAULT: i32 = 3;

/// WRR states kept per CPU per netns (direct-mapped by route).
pub(crate) const WRR_ROUTES_PER_CPU: usize = 8;

/// What PRE_ROUTING steered, for POST_ROUTING of the same packet.
///
/// A forwarded packet goes PRE_ROUTING -> FORWARD -> POST_ROUTING inside one
/// softirq on one CPU, so a per-CPU note keyed by skb address and hash is
/// enough to count the uplink it really left by; a packet dropped in between
/// just leaves a stale note that the next one overwrites.
#[derive(Clone, Copy, Default)]
pub(crate) struct Steered {
    pub(crate) skb: usize,
    pub(crate) hash: u32,
    /// Uplink chosen.
    pub(crate) oif: u32,
    /// Whether the choice should be stored in the connection (session).
    pub(crate) remember: bool,
    /// Whether it is a first choice for a connection.
    pub(crate) new_session: bool,
}

/// WRR states of the routes of a netns, direct-mapped by route.
pub(crate) type CpuWrr = WrrCache<WRR_ROUTES_PER_CPU>;

/// Bits this CPU steered to each uplink since the estimator's last sample
/// (see `estimator::booked_rate`). Per CPU, so the bandwidth strategy shares
/// no cache line between CPUs per packet; each CPU books only its own
/// traffic, which is exact when a flow's packets stay on one CPU.
#[derive(Default)]
pub(crate) struct Booking {
    /// `NetState::sample_epoch` the bits were booked in.
    pub(crate) epoch: u32,
    pub(crate) bits: [u64; MAX_UPLINKS],
}

impl Booking {
    /// Starts over when the estimator has sampled since.
    pub(crate) fn refresh(&mut self, epoch: u32) {
        if self.epoch != epoch {
            *self = Booking {
                epoch,
                ..Booking::default()
            };
        }
    }
}

/// Per-CPU state only its CPU touches.
#[derive(Default)]
pub(crate) struct CpuLocal {
    /// PRE_ROUTING's route lookups.
    pub(crate) routes: RouteCache,
    pub(crate) wrr: CpuWrr,
    pub(crate) steered: Steered,
    pub(crate) booking: Booking,
}

/// Everything mpbal keeps for one network namespace.
#[pin_data]
pub(crate) struct NetState {
    /// First, so that it drops first: the hooks go before anything they use.
    pub(crate) hooks: HookSwitch,
    pub(crate) net: Net,
    /// `net.mpbal.*` values.
    pub(crate) conf: SysctlConf,
    /// Where the session strategy stores the uplink in `ct->mark`.
    pub(crate) mark: MarkField,
    /// Equalize routes in the netns; 0 lets every hook return at once.
    pub(crate) equalize_routes: AtomicU32,
    /// Guards the set of equalize routes and slot changes of `uplinks`.
    /// Taken only in process or notifier context, never on the packet path.
    #[pin]
    pub(crate) routes: SpinLock<RouteSet>,
    pub(crate) uplinks: Uplinks,
    /// Bumped by the worker after each estimator sample.
    pub(crate) sample_epoch: AtomicU32,
    /// When the last sample was taken (`now_ms`).
    pub(crate) sample_ms: AtomicU64,
    /// The route strategy's destination table (lock-free).
    dests: KVec<AtomicU64>,
    pub(crate) local: PerCpuExclusive<CpuLocal>,
    /// WRR for first choices of destinations and connections, shared so
    /// that their spread follows the weights exactly. Taken only for a first
    /// choice, always with BH disabled (inside `local.with`).
    #[pin]
    pub(crate) first_wrr: SpinLock<CpuWrr>,
    pub(crate) counters: PerCpuShared<CpuCounters>,
    /// Guards per-device configuration (netdev notifier, worker, proc).
    #[pin]
    pub(crate) devices: Mutex<Devices>,
    /// Guards the worker's own state (it is also taken at teardown).
    #[pin]
    pub(crate) worker: Mutex<WorkerState>,
    pub(crate) work: WorkRef,
}

fn alloc_dests(n: usize) -> Result<KVec<AtomicU64>> {
    let mut v = KVec::with_capacity(n, GFP_KERNEL)?;
    for _ in 0..n {
        v.push(AtomicU64::new(0), GFP_KERNEL)?;
    }
    Ok(v)
}

impl NetState {
    pub(crate) fn new(netns: Net) -> impl PinInit<Self, Error> {
        let defaults = ConfDefaults {
            strategy: params::strategy(),
            route_idle_timeout: ROUTE_IDLE_TIMEOUT_DEFAULT,
            bw_interval_ms: BW_INTERVAL_MS_DEFAULT,
            bw_ewma_log: BW_EWMA_LOG_DEFAULT,
        };
        try_pin_init!(NetState {
            hooks: HookSwitch::new(netns),
            net: netns,
            conf: SysctlConf::new(netns, defaults),
            mark: MarkField::new(params::ct_mark_mask()).ok_or(EINVAL)?,
            equalize_routes: AtomicU32::new(0),
            routes <- new_spinlock!(RouteSet::new()?, "mpbal_routes"),
            uplinks: Uplinks::default(),
            sample_epoch: AtomicU32::new(0),
            sample_ms: AtomicU64::new(0),
            dests: alloc_dests(params::route_table_size() as usize)?,
            local: PerCpuExclusive::new()?,
            first_wrr <- new_spinlock!(CpuWrr::default(), "mpbal_first_wrr"),
            counters: PerCpuShared::new()?,
            devices <- new_mutex!(Devices::new(), "mpbal_devices"),
            worker <- new_mutex!(WorkerState::new(), "mpbal_worker"),
            work: WorkRef::new(),
        }? Error)
    }

    /// The current strategy, read once.
    pub(crate) fn strategy(&self) -> StrategyId {
        u8::try_from(self.conf.strategy())
            .ok()
            .and_then(StrategyId::from_u8)
            .unwrap_or(StrategyId::Session)
    }

    pub(crate) fn dest_table(&self) -> DestTable<'_> {
        DestTable::new(&self.dests)
    }

    /// Sum of a counter over all CPUs.
    pub(crate) fn sum(&self, c: Counter) -> u64 {
        let mut n = 0u64;
        self.counters.for_each(|cc| n = n.wrapping_add(cc.get(c)));
        n
    }

    /// Packets and bytes counted on an uplink slot over all CPUs.
    pub(crate) fn sum_uplink(&self, slot: usize) -> (u64, u64) {
        let (mut p, mut b) = (0u64, 0u64);
        self.counters.for_each(|cc| {
            let (cp, cb) = cc.get_uplink(slot);
            p = p.wrapping_add(cp);
            b = b.wrapping_add(cb);
        });
        (p, b)
    }

    /// A route changed (FIB notifier, atomic context).
    pub(crate) fn fib_event(&self, ev: FibEvent<'_>) {
        if let FibEvent::Replace(r) = &ev {
            if r.equalize && !r.steerable {
                warn_ratelimited(format_args!(
                    "netns {}: equalize route {}/{} uses nexthop objects or more than {} nexthops: left to stock ECMP",
                    self.net.inum(),
                    Ipv4(r.dst),
                    r.dst_len,
                    crate::mpbal_core::nexthop::MAX_NEXTHOPS
                ));
            }
        }
        let mut routes = self.routes.lock();
        routes.apply(ev);
        self.routes_changed(&routes);
    }

    /// The notifier restarts its dump from scratch.
    pub(crate) fn fib_flush(&self) {
        let mut routes = self.routes.lock();
        routes.flush();
        self.routes_changed(&routes);
    }

    fn routes_changed(&self, routes: &RouteSet) {
        let mut oifs = [0u32; MAX_UPLINKS];
        let n = routes.oifs(&mut oifs);
        self.uplinks.sync(&oifs[..n], |slot| self.sum_uplink(slot));
        let count = routes.count();
        let before = self.equalize_routes.swap(count, Ordering::AcqRel);
        if (before == 0) != (count == 0) {
            // Conntrack, the hash policy and the estimator follow; they may
            // sleep, so the worker does it.
            self.work.schedule(0);
        }
    }

    /// Forgets what refers to a device that is going away.
    pub(crate) fn device_gone(&self, ifindex: u32) {
        {
            let _routes = self.routes.lock();
            self.uplinks.release(ifindex);
        }
        self.dest_table().flush_oif(ifindex);
    }
}
