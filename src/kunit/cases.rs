// SPDX-License-Identifier: GPL-2.0

//! The KUnit cases of suite `mpbal` (declared in `mpbal_kunit.rs`): the
//! core logic as the kernel's rustc builds it, checked against the kernel's
//! own rules, plus the in-kernel pieces the host cannot test (per-CPU memory,
//! skb hashes, the sysctl handler). No `unsafe` here.

use crate::mpbal_core::desttable::{DestTable, Insert};
use crate::mpbal_core::estimator::RateEstimator;
use crate::mpbal_core::hashrange;
use crate::mpbal_core::markfield::MarkField;
use crate::mpbal_core::nexthop::{Nexthop, Route, MAX_NEXTHOPS};
use crate::mpbal_core::strategy::StrategyId;
use crate::mpbal_core::wrr::WrrState;
use crate::percpu::{CpuCounter, PerCpuPair};
use crate::suite::oracle::{self, RawNexthop, DEAD};
use crate::suite::{entropy_unseeded, init_net_hash_policy, set_init_net_hash_policy};
use crate::suite::{MpathEvents, Test, TestConf};
use core::sync::atomic::AtomicU64;
use kernel::macros::Zeroable;

macro_rules! check {
    ($t:expr, $cond:expr $(,)?) => {
        if !$cond {
            $t.fail(file!(), line!(), format_args!("check failed: {}", stringify!($cond)));
        }
    };
    ($t:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            $t.fail(file!(), line!(), format_args!($($fmt)+));
        }
    };
}

/// xorshift32: deterministic cases without a kernel RNG dependency.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

pub(crate) fn strategy_names(t: &mut Test) {
    for s in StrategyId::all() {
        check!(t, StrategyId::from_name(s.name().as_bytes()) == Some(s));
        check!(t, StrategyId::from_index(s.index()) == Some(s));
        check!(t, s.ops().name() == s.name());
    }
    check!(
        t,
        StrategyId::from_name(b"session\n") == Some(StrategyId::DEFAULT)
    );
    for bad in [
        &b""[..],
        b"Session",
        b" route",
        b"packet\n\n",
        b"bandwidthx",
    ] {
        check!(
            t,
            StrategyId::from_name(bad).is_none(),
            "accepted {:?}",
            bad
        );
    }
}

/// The real `net.mpbal.strategy` handler: every name switches, one
/// trailing newline is allowed, bad names change nothing.
pub(crate) fn sysctl_strategy(t: &mut Test) {
    let mut conf = TestConf::new(i32::from(StrategyId::DEFAULT.index()));
    for s in StrategyId::all() {
        let mut line = [0u8; 32];
        let name = s.name().as_bytes();
        line[..name.len()].copy_from_slice(name);
        line[name.len()] = b'\n';
        check!(
            t,
            conf.write(&line[..=name.len()]) == 0,
            "{} rejected",
            s.name()
        );
        check!(t, conf.strategy() == i32::from(s.index()));
        check!(t, conf.write(name) == 0);
    }
    let last = conf.strategy();
    for bad in [&b"bogus\n"[..], b"", b"route \n", b"packet\n\n"] {
        check!(t, conf.write(bad) == -22, "{:?} accepted", bad);
        check!(t, conf.strategy() == last);
    }
}

fn nexthops(weights: &[u32]) -> [Nexthop; MAX_NEXTHOPS] {
    let mut raw = [RawNexthop::default(); MAX_NEXTHOPS];
    for (r, &w) in raw.iter_mut().zip(weights) {
        r.weight = w;
    }
    oracle::rebalance(&mut raw[..weights.len()]);
    let mut nh = [Nexthop::default(); MAX_NEXTHOPS];
    for (i, (n, r)) in nh
        .iter_mut()
        .zip(raw.iter())
        .enumerate()
        .take(weights.len())
    {
        *n = Nexthop {
            oif: i as u32 + 1,
            gw: 0,
            uplink: i as u32 + 1,
            weight: r.weight,
            upper_bound: r.upper_bound,
            usable: true,
            admin_down: false,
            tier: 1,
        };
    }
    nh
}

pub(crate) fn wrr(t: &mut Test) {
    let nh = nexthops(&[1, 2, 3]);
    let route = Route::new(0x1000, &nh[..3]);
    let mut wrr = WrrState::default();
    let mut counts = [0u32; 3];
    for _ in 0..6000 {
        match wrr.pick(&route, 0b111) {
            Some(i) => counts[i] += 1,
            None => check!(t, false, "no pick"),
        }
    }
    check!(t, counts == [1000, 2000, 3000], "counts {:?}", counts);
    // A nexthop outside the mask is never taken.
    for _ in 0..100 {
        check!(t, wrr.pick(&route, 0b101) != Some(1));
    }
    check!(t, wrr.pick(&route, 0).is_none());
}

pub(crate) fn hash_range(t: &mut Test) {
    let mut rng = Rng(0x2545_f491);
    for _ in 0..200 {
        let n = (rng.next() % MAX_NEXTHOPS as u32) as usize + 1;
        let mut raw = [RawNexthop::default(); MAX_NEXTHOPS];
        for r in raw.iter_mut().take(n) {
            r.weight = rng.next() % 256 + 1;
            r.flags = if rng.next() % 5 == 0 { DEAD } else { 0 };
        }
        oracle::rebalance(&mut raw[..n]);
        let mut nh = [Nexthop::default(); MAX_NEXTHOPS];
        for (a, b) in nh.iter_mut().zip(raw.iter()).take(n) {
            *a = Nexthop {
                oif: 1,
                gw: 0,
                uplink: 1,
                weight: b.weight,
                upper_bound: b.upper_bound,
                usable: b.flags & DEAD == 0,
                admin_down: false,
                tier: 1,
            };
        }
        for i in 0..n {
            for entropy in [0, u32::MAX, rng.next(), rng.next()] {
                let Some(h) = hashrange::skb_hash_for(&nh[..n], i, entropy) else {
                    check!(
                        t,
                        raw[i].flags & DEAD != 0 || raw[i].upper_bound < 0 || i > 0,
                        "no range for live nexthop {}",
                        i
                    );
                    continue;
                };
                let got = oracle::select(&raw[..n], h >> 1);
                check!(
                    t,
                    got == Some(i),
                    "nexthop {} of {}: hash {:#x} selects {:?}",
                    i,
                    n,
                    h,
                    got
                );
            }
        }
    }
}

pub(crate) fn desttable(t: &mut Test) {
    let slots: [AtomicU64; 16] = core::array::from_fn(|_| AtomicU64::new(0));
    let table = DestTable::new(&slots);
    check!(t, table.insert(0x0a00_0001, 3, 100, 60) == Insert::Stored);
    check!(t, table.lookup(0x0a00_0001, 130, 60) == Some(3));
    // The lookup at 130 refreshed the entry: alive at 189, gone at 190.
    check!(t, table.lookup(0x0a00_0001, 189, 60) == Some(3));
    check!(t, table.lookup(0x0a00_0001, 250, 60).is_none());
    check!(
        t,
        table.insert(0x0a00_0002, 70_000, 100, 60) == Insert::NotStored
    );
    // Fill far beyond capacity: never more live entries than slots.
    for d in 1..200u32 {
        let _ = table.insert(d, 2, 300, 60);
    }
    check!(t, table.live_entries(300, 60) <= 16);
    table.flush_uplink(2);
    check!(t, table.live_entries(300, 60) == 0);
}

pub(crate) fn estimator(t: &mut Test) {
    let mut e = RateEstimator::default();
    // 1 Mbit/s = 125000 bytes per second, sampled every second.
    for s in 0..64u64 {
        e.sample(s * 1000, s * 125_000, 3);
    }
    let r = e.rate_bps();
    check!(t, r.abs_diff(1_000_000) <= 10_000, "rate {}", r);
}

pub(crate) fn markfield(t: &mut Test) {
    let f = MarkField::new(0xffff_0000);
    check!(t, f.is_some());
    if let Some(f) = f {
        let m = f.set(0x1234, 7);
        check!(t, m == Some(0x0007_1234), "{:?}", m);
        check!(t, f.get(0x0007_1234) == 7);
        check!(t, f.set(0, 0x1_0000).is_none());
    }
    check!(t, MarkField::new(0).is_none());
    check!(t, MarkField::new(0xf0f0).is_none());
}

/// Per-CPU counters as the module keeps them.
#[derive(Zeroable)]
struct Counters {
    c: [CpuCounter; 4],
}

pub(crate) fn percpu(t: &mut Test) {
    let Ok(x) = PerCpuPair::<u32, Counters>::new() else {
        check!(t, false, "percpu alloc failed");
        return;
    };
    for _ in 0..10 {
        x.with(|_, c| c.c[2].add(1));
    }
    let mut sum = 0;
    x.for_each_shared(|c| sum += c.c[2].get() + c.c[0].get());
    check!(t, sum == 10, "sum {}", sum);

    let inner = x.with(|v, c| {
        if let Some(v) = v {
            *v += 1;
        }
        c.c[1].add(1);
        // Re-entry on the same CPU gets the counters but never the
        // exclusive part: no aliased `&mut`.
        x.with(|v, c| {
            c.c[1].add(1);
            v.is_some()
        })
    });
    check!(t, !inner, "re-entry got the exclusive part");
    check!(t, x.with(|v, _| v.map(|v| *v)) == Some(1));
    let mut sum = 0;
    x.for_each_shared(|c| sum += c.c[1].get());
    check!(t, sum == 2, "counted inside and re-entered: {}", sum);
}

pub(crate) fn skb_hash(t: &mut Test) {
    let nh = nexthops(&[1, 1, 2]);
    let raw = {
        let mut raw = [RawNexthop::default(); 3];
        for (r, n) in raw.iter_mut().zip(nh.iter()) {
            r.weight = n.weight;
            r.upper_bound = n.upper_bound;
        }
        raw
    };
    let Some(mut skb) = t.skb() else {
        check!(t, false, "skb alloc failed");
        return;
    };
    for i in 0..3 {
        let Some(h) = hashrange::skb_hash_for(&nh[..3], i, 0xdead_beef) else {
            check!(t, false, "no range for {}", i);
            continue;
        };
        skb.set_l4_hash(h);
        // skb_get_hash() keeps an L4 hash: fib_multipath_hash() sees ours.
        check!(t, skb.entropy() == h && skb.hash() == h);
        check!(t, oracle::select(&raw, skb.hash() >> 1) == Some(i));
    }
}

/// The steered hash's entropy is seeded per boot: a remote sender cannot
/// compute which uplink or queue a flow lands on. (Fails with probability
/// 2^-32 by chance.)
pub(crate) fn entropy_seeded(t: &mut Test) {
    let (Some(mut a), Some(mut b)) = (t.udp_skb(), t.udp_skb()) else {
        check!(t, false, "skb alloc failed");
        return;
    };
    let e = a.entropy();
    check!(t, e == b.entropy(), "one flow, one entropy");
    check!(
        t,
        e != entropy_unseeded(),
        "entropy {:#x} is the unseeded jhash",
        e
    );
}

/// mpbal's own writes of the hash policy send the netevent the sysctl
/// handler sends, so offloading drivers follow.
pub(crate) fn hash_policy_netevent(t: &mut Test) {
    let Some(ev) = MpathEvents::watch() else {
        check!(t, false, "cannot register a netevent notifier");
        return;
    };
    let before = ev.count();
    let policy = init_net_hash_policy();
    set_init_net_hash_policy(policy);
    check!(
        t,
        ev.count() == before + 1,
        "events {} -> {}",
        before,
        ev.count()
    );
    check!(t, init_net_hash_policy() == policy);
}
