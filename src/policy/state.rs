//! The per-netns state of mpbal.

use super::counters::{Counter, CpuCounters, MAX_UPLINKS};
use super::devices::Devices;
use super::eqroutes::EqRouteSet;
use super::hooks::{self, CpuLocal};
use super::uplinks::Uplinks;
use super::worker::{self, WorkerState};
use super::{devices, stats};
use crate::mpbal_core::desttable::DestTable;
use crate::mpbal_core::estimator::MAX_EWMA_LOG;
use crate::mpbal_core::markfield::MarkField;
use crate::mpbal_core::nexthop::{RouteKind, MAX_NEXTHOPS};
use crate::mpbal_core::strategy::{Strategy, StrategyId};
use crate::mpbal_core::wrr::WrrCache;
use crate::sys::fib::FibEvent;
use crate::sys::log::{warn_ratelimited, Ipv4};
use crate::sys::net::{Net, NetDevice};
use crate::sys::netfilter::HookSwitch;
use crate::sys::netns::{NetdevEvent, NetnsOps};
use crate::sys::params;
use crate::sys::percpu::{PerCpuExclusive, PerCpuShared};
use crate::sys::proc::SeqFile;
use crate::sys::skb::SkBuff;
use crate::sys::sysctl::{IntKnob, SysctlConf};
use crate::sys::work::WorkRef;
use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{code::EINVAL, Error, Result};
use kernel::init::PinInit;
use kernel::prelude::pin_data;
use kernel::sync::{Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock, try_pin_init};

/// `net.ipv4.fib_multipath_hash_policy` the forwarding lever needs: L4, with
/// an skb hash that is already set used as it is.
pub(crate) const HASH_POLICY_L4: i32 = 1;

/// The integer sysctls of `net.mpbal`, by position in [`KNOBS`].
#[derive(Clone, Copy)]
pub(crate) enum Knob {
    RouteIdleTimeout,
    BwIntervalMs,
    BwEwmaLog,
}

/// Names, defaults and bounds (Documentation/sysctl.rst).
static KNOBS: [IntKnob; 3] = [
    // Seconds a destination keeps its uplink while idle (route strategy).
    IntKnob {
        name: c"route_idle_timeout",
        default: 60,
        min: 1,
        max: 3600,
    },
    // Estimator sampling interval; the thesis sampled every second.
    IntKnob {
        name: c"bw_interval_ms",
        default: 1000,
        min: 100,
        max: 60000,
    },
    // EWMA weight 1/2^n; 3 averages over about 8 samples, the thesis's 8 s.
    IntKnob {
        name: c"bw_ewma_log",
        default: 3,
        min: 0,
        max: MAX_EWMA_LOG as i32,
    },
];

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
    pub(crate) routes: SpinLock<EqRouteSet>,
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
    pub(crate) first_wrr: SpinLock<WrrCache>,
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
        try_pin_init!(NetState {
            hooks: HookSwitch::new(netns),
            net: netns,
            conf: SysctlConf::new(netns, params::strategy(), &KNOBS),
            mark: MarkField::new(params::ct_mark_mask()).ok_or(EINVAL)?,
            equalize_routes: AtomicU32::new(0),
            routes <- new_spinlock!(EqRouteSet::new()?, "mpbal_eqroutes"),
            uplinks: Uplinks::default(),
            sample_epoch: AtomicU32::new(0),
            sample_ms: AtomicU64::new(0),
            dests: alloc_dests(params::route_table_size() as usize)?,
            local: PerCpuExclusive::new()?,
            first_wrr <- new_spinlock!(WrrCache::default(), "mpbal_first_wrr"),
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
            .and_then(StrategyId::from_index)
            .unwrap_or(StrategyId::DEFAULT)
    }

    /// The current strategy's ops, read once.
    pub(crate) fn ops(&self) -> &'static dyn Strategy {
        self.strategy().ops()
    }

    /// An integer sysctl, read once.
    pub(crate) fn knob(&self, k: Knob) -> i32 {
        self.conf.int(k as usize)
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
            let kind =
                RouteKind::classify(r.is_unicast(), r.paths(), r.equalize_flag(), r.nh_object());
            if kind == RouteKind::UNSUPPORTED {
                warn_ratelimited(format_args!(
                    "netns {}: equalize route {}/{} uses nexthop objects or more than {} nexthops: left to stock ECMP",
                    self.net.inum(),
                    Ipv4(r.dst()),
                    r.dst_len(),
                    MAX_NEXTHOPS
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

    fn routes_changed(&self, routes: &EqRouteSet) {
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

impl NetnsOps for NetState {
    fn strategy_parse(name: &[u8]) -> Option<i32> {
        StrategyId::from_name(name).map(|s| i32::from(s.index()))
    }

    fn strategy_name(id: i32) -> Option<&'static str> {
        let id = u8::try_from(id).ok()?;
        StrategyId::from_index(id).map(StrategyId::name)
    }

    fn strategy_invalid(name: &[u8]) {
        super::modparams::strategy_invalid(name)
    }

    fn new(net: Net) -> impl PinInit<Self, Error> {
        NetState::new(net)
    }

    fn sysctl_conf(&self) -> &SysctlConf {
        &self.conf
    }

    fn hooks(&self) -> &HookSwitch {
        &self.hooks
    }

    fn work_ref(&self) -> &WorkRef {
        &self.work
    }

    fn prerouting(&self, skb: &mut SkBuff<'_>) {
        hooks::prerouting(self, skb)
    }

    fn local_out(&self, skb: &mut SkBuff<'_>) {
        hooks::local_out(self, skb)
    }

    fn postrouting(&self, skb: &mut SkBuff<'_>) {
        hooks::postrouting(self, skb)
    }

    fn fib_event(&self, ev: FibEvent<'_>) {
        NetState::fib_event(self, ev)
    }

    fn fib_flush(&self) {
        NetState::fib_flush(self)
    }

    fn netdev_event(&self, ev: NetdevEvent, dev: &NetDevice<'_>) {
        devices::netdev_event(self, ev, dev)
    }

    fn show_stats(&self, m: &mut SeqFile<'_>) -> fmt::Result {
        stats::show_stats(self, m)
    }

    fn show_uplinks(&self, m: &mut SeqFile<'_>) -> fmt::Result {
        stats::show_uplinks(self, m)
    }

    fn run_work(&self) {
        worker::run(self)
    }

    fn shutdown(&self) {
        worker::shutdown(self)
    }
}
