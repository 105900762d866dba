// SPDX-License-Identifier: GPL-2.0

//! The per-netns state of mpbal.
//!
//! What every netns has is small: sysctls, the uplink table, the record of
//! equalize routes (its entries allocated with the first one) and counter
//! totals. What the packet path needs, the per-CPU state and the route
//! strategy's table, is [`Active`]: the worker allocates it when the netns
//! gets its first equalize route, before the hooks go on, and frees it after
//! they are off again, so a netns without equalize routes holds no per-CPU
//! memory at all.

use super::counters::{Counter, CpuCounters, Totals, MAX_UPLINKS};
use super::devices::{self, Devices};
use super::eqroutes::{Change, EqRouteSet};
use super::hooks::{self, CpuLocal};
use super::routecache::kind_of;
use super::stats;
use super::uplinks::{Pins, Uplinks};
use super::worker::{self, WorkerState};
use crate::mpbal_core::desttable::DestTable;
use crate::mpbal_core::estimator::MAX_EWMA_LOG;
use crate::mpbal_core::flowlettable::FlowletTable;
use crate::mpbal_core::markfield::MarkField;
use crate::mpbal_core::nexthop::{RouteKind, MAX_NEXTHOPS};
use crate::mpbal_core::strategy::StrategyId;
use crate::mpbal_core::wrr::WrrCache;
use crate::sys::fib::FibEvent;
use crate::sys::log::{warn_ratelimited, Ipv4};
use crate::sys::net::now_ms;
use crate::sys::net::{Net, NetDevice};
use crate::sys::netfilter::HookSwitch;
use crate::sys::netns::{AdminEvent, NetdevEvent, NetnsOps};
use crate::sys::params;
use crate::sys::percpu::PerCpuPair;
use crate::sys::proc::SeqFile;
use crate::sys::rcu::{RcuGuard, RcuReader, RcuSlot};
use crate::sys::skb::SkBuff;
use crate::sys::sysctl::{DevConf, IntKnob, SysctlConf};
use crate::sys::work::WorkRef;
use core::fmt;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::alloc::{flags::GFP_KERNEL_ACCOUNT, KBox, KVVec};
use kernel::error::{code::EINVAL, Error, Result};
use kernel::init::{InPlaceInit, PinInit};
use kernel::prelude::pin_data;
use kernel::sync::{Mutex, SpinLock};
use kernel::{new_mutex, new_spinlock, try_pin_init};

/// `net.ipv4.fib_multipath_hash_policy` the forwarding lever needs: L4, with
/// an skb hash that is already set used as it is.
pub(crate) const HASH_POLICY_L4: i32 = 1;

/// Bits of `ct->mark` an uplink id needs: ids 1 to [`MAX_UPLINKS`], 0 for
/// none (Documentation/overview.rst, "Connection marks").
pub(crate) const UPLINK_ID_BITS: u32 = (MAX_UPLINKS as u32).ilog2() + 1;

/// The integer sysctls of `net.mpbal`, by position in [`KNOBS`].
#[derive(Clone, Copy)]
pub(crate) enum Knob {
    RouteIdleTimeout,
    BwIntervalMs,
    BwEwmaLog,
    FlowletGapUs,
    CtFlushOnDown,
    FlowletQueueWait,
}

/// Names, defaults and bounds (Documentation/sysctl.rst).
static KNOBS: [IntKnob; 6] = [
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
    // A pause that ends a flowlet (flowlet strategy): above the spread of
    // path delays of typical uplinks (tens of ms), so a flow that moves
    // after it does not overtake its own packets.
    IntKnob {
        name: c"flowlet_gap_us",
        default: 50_000,
        min: 100,
        max: 10_000_000,
    },
    // 1: an uplink set administratively down loses its source-NATed
    // connections, whose replies could only come back through it.
    IntKnob {
        name: c"ct_flush_on_down",
        default: 0,
        min: 0,
        max: 1,
    },
    // 1: a paused flow also waits for its uplink's queue (flowlet
    // strategy): no reordering from queues; 0 spreads a little more
    // (Documentation/strategies.rst).
    IntKnob {
        name: c"flowlet_queue_wait",
        default: 1,
        min: 0,
        max: 1,
    },
];

/// Entries of the flowlet strategy's flow table (32 KiB per active netns).
pub(crate) const FLOWLET_TABLE_SIZE: usize = 4096;

/// What the packet path needs while the netns has equalize routes.
#[pin_data]
pub(crate) struct Active {
    /// The hooks' per-CPU state and counters, reached in one BH-off
    /// section per hook.
    pub(crate) cpu: PerCpuPair<CpuLocal, CpuCounters>,
    /// The route strategy's destination table (lock-free).
    dests: KVVec<AtomicU64>,
    /// The flowlet strategy's flow table (lock-free).
    flows: KVVec<AtomicU64>,
    /// WRR for first choices of destinations and connections, shared so
    /// that their spread follows the weights exactly. Taken only for a first
    /// choice, always with BH disabled (inside `cpu.with`).
    #[pin]
    pub(crate) first_wrr: SpinLock<WrrCache>,
}

fn alloc_table(n: usize) -> Result<KVVec<AtomicU64>> {
    let mut v = KVVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
    for _ in 0..n {
        v.push(AtomicU64::new(0), GFP_KERNEL_ACCOUNT)?;
    }
    Ok(v)
}

impl Active {
    fn new(table_size: usize) -> impl PinInit<Self, Error> {
        try_pin_init!(Active {
            cpu: PerCpuPair::new()?,
            dests: alloc_table(table_size)?,
            flows: alloc_table(FLOWLET_TABLE_SIZE)?,
            first_wrr <- new_spinlock!(WrrCache::default(), "mpbal_first_wrr"),
        }? Error)
    }

    /// Allocates it (process context); the caller publishes it.
    pub(crate) fn alloc() -> Result<Pin<KBox<Self>>> {
        KBox::pin_init(
            Active::new(params::route_table_size() as usize),
            GFP_KERNEL_ACCOUNT,
        )
    }

    pub(crate) fn dest_table(&self) -> DestTable<'_> {
        DestTable::new(&self.dests)
    }

    pub(crate) fn flowlet_table(&self) -> FlowletTable<'_> {
        FlowletTable::new(&self.flows)
    }

    /// Bytes of one CPU's copy of the hooks' state and counters.
    pub(crate) const PERCPU_BYTES: usize = PerCpuPair::<CpuLocal, CpuCounters>::COPY_SIZE;

    /// Bytes besides the per-CPU copies: this struct and the tables.
    pub(crate) fn shared_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + (self.dests.len() + self.flows.len()) * core::mem::size_of::<AtomicU64>()
    }

    /// Sum of a counter over all CPUs.
    pub(crate) fn sum(&self, c: Counter) -> u64 {
        let mut n = 0u64;
        self.cpu.for_each_shared(|cc| n = n.wrapping_add(cc.get(c)));
        n
    }

    /// Packets and bytes counted on uplink slot `slot` over all CPUs.
    pub(crate) fn sum_uplink(&self, slot: usize) -> (u64, u64) {
        let (mut p, mut b) = (0u64, 0u64);
        self.cpu.for_each_shared(|cc| {
            let (cp, cb) = cc.get_uplink(slot);
            p = p.wrapping_add(cp);
            b = b.wrapping_add(cb);
        });
        (p, b)
    }
}

/// Everything mpbal keeps for one network namespace.
#[pin_data]
pub(crate) struct NetState {
    /// First, so that it drops first: the hooks go before anything they use.
    pub(crate) hooks: HookSwitch,
    pub(crate) net: Net,
    /// `net.mpbal.*` values.
    pub(crate) conf: SysctlConf,
    /// Where a connection's uplink id is kept in `ct->mark`.
    pub(crate) mark: MarkField,
    /// Equalize routes in the netns; 0 turns the hooks off.
    pub(crate) equalize_routes: AtomicU32,
    /// Guards the set of equalize routes and id changes of `uplinks`.
    /// Taken only in process or notifier context, never on the packet path.
    #[pin]
    pub(crate) routes: SpinLock<EqRouteSet>,
    pub(crate) uplinks: Uplinks,
    /// Bumped by the worker after each estimator sample.
    pub(crate) sample_epoch: AtomicU32,
    /// When the last sample was taken (`coarse_ms`: the packet path reads
    /// it against that cheaper clock).
    pub(crate) sample_ms: AtomicU64,
    /// Published by the worker while the hooks may run.
    pub(crate) active: RcuSlot<Active>,
    /// Counter sums of `Active`s that were freed.
    pub(crate) totals: Totals,
    /// FIB notifier events, and those that touched an equalize route.
    pub(crate) fib_events: AtomicU64,
    pub(crate) fib_events_equalize: AtomicU64,
    /// Replays of every route asked of the FIB (record not exact).
    pub(crate) fib_resyncs: AtomicU64,
    /// Conntrack entries `ct_flush_on_down` removed.
    pub(crate) ct_flushed: AtomicU64,
    /// The record of routes wants a replay, and when the last one was.
    fib_resync: AtomicBool,
    fib_resync_ms: AtomicU64,
    /// `pins[i]`: the device that pins uplink id `i + 1` (the worker keeps
    /// it from `net.mpbal.conf.DEV.uplink_id`; the notifier reads it).
    pins: [AtomicU32; MAX_UPLINKS],
    /// The worker is writing the hash policy itself (its own netevent).
    pub(crate) hash_policy_writing: AtomicBool,
    /// Someone else wrote the hash policy since mpbal set it.
    pub(crate) hash_policy_touched: AtomicBool,
    /// Guards per-device configuration (netdev notifier, worker, proc).
    #[pin]
    pub(crate) devices: Mutex<Devices>,
    /// Guards the worker's own state (it is also taken at teardown).
    #[pin]
    pub(crate) worker: Mutex<WorkerState>,
    pub(crate) work: WorkRef,
}

impl NetState {
    pub(crate) fn new(netns: Net) -> impl PinInit<Self, Error> {
        try_pin_init!(NetState {
            hooks: HookSwitch::new(netns),
            net: netns,
            conf: SysctlConf::new(netns, params::strategy(), &KNOBS),
            mark: MarkField::new(params::ct_mark_mask()).ok_or(EINVAL)?,
            equalize_routes: AtomicU32::new(0),
            routes <- new_spinlock!(EqRouteSet::new(), "mpbal_eqroutes"),
            uplinks: Uplinks::default(),
            sample_epoch: AtomicU32::new(0),
            sample_ms: AtomicU64::new(0),
            active: RcuSlot::new(),
            totals: Totals::default(),
            fib_events: AtomicU64::new(0),
            fib_events_equalize: AtomicU64::new(0),
            fib_resyncs: AtomicU64::new(0),
            ct_flushed: AtomicU64::new(0),
            fib_resync: AtomicBool::new(false),
            fib_resync_ms: AtomicU64::new(0),
            pins: core::array::from_fn(|_| AtomicU32::new(0)),
            hash_policy_writing: AtomicBool::new(false),
            hash_policy_touched: AtomicBool::new(false),
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

    /// An integer sysctl, read once.
    pub(crate) fn knob(&self, k: Knob) -> i32 {
        self.conf.int(k as usize)
    }

    /// A counter: the freed `Active`s' sums plus the live one's.
    pub(crate) fn sum(&self, c: Counter, rcu: &impl RcuReader) -> u64 {
        let live = self.active.get(rcu).map_or(0, |a| a.sum(c));
        self.totals.get(c).wrapping_add(live)
    }

    /// A route changed (FIB notifier, atomic context).
    pub(crate) fn fib_event(&self, ev: FibEvent<'_>) {
        self.fib_events.fetch_add(1, Ordering::Relaxed);
        if let FibEvent::Replace(r) = &ev {
            if kind_of(*r) == RouteKind::UNSUPPORTED {
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
        if routes.apply(ev) == Change::Routes {
            self.fib_events_equalize.fetch_add(1, Ordering::Relaxed);
            // A replay's routes count when they are all in.
            if !routes.replaying() {
                self.routes_changed(&mut routes);
            }
        }
    }

    /// The notifier restarts its dump from scratch.
    pub(crate) fn fib_flush(&self) {
        let mut routes = self.routes.lock();
        routes.flush();
        if !routes.replaying() {
            self.routes_changed(&mut routes);
        }
    }

    /// A replay starts: the routes it brings replace the record. Until it
    /// ends, uplinks and hooks keep following the old record, so a replay
    /// neither renumbers uplinks nor switches hooks off and on.
    pub(crate) fn fib_replay_begin(&self) {
        let mut routes = self.routes.lock();
        routes.flush();
        routes.set_replaying(true);
    }

    pub(crate) fn fib_replay_end(&self, ok: bool) {
        let mut routes = self.routes.lock();
        routes.set_replaying(false);
        if !ok {
            // No notifier now: try again (at most once a second).
            self.fib_resync.store(true, Ordering::Release);
        }
        self.routes_changed(&mut routes);
    }

    /// The uplink ids the devices pin.
    fn pins(&self) -> Pins {
        core::array::from_fn(|i| self.pins[i].load(Ordering::Relaxed))
    }

    /// Sets the pins (worker); true if they changed.
    pub(crate) fn set_pins(&self, pins: &Pins) -> bool {
        let mut changed = false;
        for (slot, &p) in self.pins.iter().zip(pins) {
            changed |= slot.swap(p, Ordering::Relaxed) != p;
        }
        changed
    }

    fn routes_changed(&self, routes: &mut EqRouteSet) {
        let mut nexthops = [(0u32, 0u32); MAX_UPLINKS];
        let (n, more) = routes.nexthops(&mut nexthops);
        let rcu = RcuGuard::new();
        let active = self.active.get(&rcu);
        let gen = self.uplinks.gen();
        self.uplinks
            .sync(&nexthops[..n], &self.pins(), more, |slot| {
                active.map_or((0, 0), |a| a.sum_uplink(slot))
            });
        // New uplinks of a netns with configured devices are not chosen
        // until the worker copies their device's state.
        let admin_pending = self.uplinks.configured() && self.uplinks.gen() != gen;
        let count = routes.count();
        if routes.take_resync() {
            self.fib_resync.store(true, Ordering::Release);
        }
        let before = self.equalize_routes.swap(count, Ordering::AcqRel);
        if (before == 0) != (count == 0) || admin_pending || self.fib_resync.load(Ordering::Relaxed)
        {
            // Hooks, conntrack, the hash policy and the estimator follow;
            // they may sleep, so the worker does it.
            self.work.schedule(0);
        }
    }

    /// Recomputes the uplink ids (the pins changed).
    pub(crate) fn resync_uplinks(&self) {
        let mut routes = self.routes.lock();
        self.routes_changed(&mut routes);
    }

    /// Forgets what refers to a device that is going away.
    pub(crate) fn device_gone(&self, ifindex: u32) {
        let rcu = RcuGuard::new();
        let mut ids = [0u32; MAX_UPLINKS];
        let mut n = 0;
        self.uplinks.for_each_id(|id, ifi| {
            if ifi == ifindex && n < ids.len() {
                ids[n] = id;
                n += 1;
            }
        });
        {
            let _routes = self.routes.lock();
            self.uplinks.release_device(ifindex);
        }
        if let Some(a) = self.active.get(&rcu) {
            for &id in &ids[..n] {
                a.dest_table().flush_uplink(id);
                a.flowlet_table().flush_uplink(id);
            }
        }
    }

    /// Whether to replay the FIB now: at most once a second, however many
    /// events ask for it (a later request is served by a later run).
    pub(crate) fn take_fib_resync(&self) -> bool {
        const MIN_GAP_MS: u64 = 1000;
        if !self.fib_resync.load(Ordering::Acquire) {
            return false;
        }
        let now = now_ms();
        let last = self.fib_resync_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < MIN_GAP_MS {
            self.work
                .schedule((MIN_GAP_MS - now.saturating_sub(last)) as u32);
            return false;
        }
        self.fib_resync.store(false, Ordering::Release);
        self.fib_resync_ms.store(now, Ordering::Relaxed);
        self.fib_resyncs.fetch_add(1, Ordering::Relaxed);
        true
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

    fn hash_policy_event(&self) {
        if !self.hash_policy_writing.load(Ordering::Acquire) {
            self.hash_policy_touched.store(true, Ordering::Release);
        }
    }

    fn dev_admin(&self, conf: &DevConf, ev: AdminEvent) {
        devices::admin_event(self, conf, ev)
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

    fn take_fib_resync(&self) -> bool {
        NetState::take_fib_resync(self)
    }

    fn fib_replay_begin(&self) {
        NetState::fib_replay_begin(self)
    }

    fn fib_replay_end(&self, ok: bool) {
        NetState::fib_replay_end(self, ok)
    }

    fn shutdown(&self) {
        worker::shutdown(self)
    }
}
