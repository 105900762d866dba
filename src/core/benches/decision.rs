// SPDX-License-Identifier: GPL-2.0

//! Per-decision cost of each strategy through `StrategyId::ops().select()`
//! (bandwidth's includes booking the packet), with 2, 4 and 16 nexthops.
//! The kernel dispatches with `StrategyId::select()`, a `match` it can
//! inline; here that would inline all four strategies into one closure and
//! measure its register pressure rather than each strategy.
//!
//! `cargo bench --bench decision -- --noplot` prints one line per case,
//! `decision/<strategy>/<nexthops>  time: [low mid high]`.

use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mpbal_core::desttable::DestTable;
use mpbal_core::flowlettable::FlowletTable;
use mpbal_core::loadtable::LoadTable;
use mpbal_core::nexthop::{Nexthop, Route};
use mpbal_core::strategy::{Env, Flowlets, NoQueues, StrategyId, NO_FLOWLETS};
use mpbal_core::wrr::WrrState;

/// Entries of the route strategy's destination table.
const TABLE: usize = 1024;
/// Entries of the flowlet table, as the kernel has (`FLOWLET_TABLE_SIZE`).
const FLOWLET_TABLE: usize = 4096;
/// Hot destinations the route strategy keeps coming back to.
const HOT: usize = TABLE / 2;
const TIMEOUT_S: u32 = 300;

/// `n` live nexthops on ifindexes 2.., weights 1..=4, with the upper bounds
/// `fib_rebalance()` would set (computed here, not with the library helper,
/// so the bench does not depend on it).
fn nexthops(n: usize) -> Vec<Nexthop> {
    let weights: Vec<u64> = (0..n as u64).map(|i| 1 + i % 4).collect();
    let total: u64 = weights.iter().sum();
    let mut cum = 0;
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            cum += w;
            Nexthop {
                oif: 2 + i as u32,
                gw: 0,
                uplink: 2 + i as u32,
                weight: w as u32,
                upper_bound: (((cum << 31) + total / 2) / total - 1) as i32,
                usable: true,
                admin_down: false,
                tier: 1,
            }
        })
        .collect()
}

/// Some uplinks loaded, some idle, some of unknown capacity, with ties.
fn loads(n: usize) -> LoadTable {
    let mut t = LoadTable::default();
    // The default 1 s window: each booking lowers the booked uplink's
    // headroom, so the order of the uplinks changes as in the kernel.
    t.set_window(1000, 0);
    for id in 2..n as u32 + 2 {
        let i = id as usize;
        t.set(
            id,
            [0, 250_000_000, 40_000_000, 0, 900_000_000][i % 5],
            [1_000_000_000, 0, 100_000_000, 1_000_000_000][i % 4],
        );
    }
    t
}

/// A well-mixed non-zero address for `x` (murmur3 finalizer).
fn mix(x: u32) -> u32 {
    let mut x = x.wrapping_add(0x9e37_79b9);
    x = (x ^ (x >> 16)).wrapping_mul(0x85eb_ca6b);
    x = (x ^ (x >> 13)).wrapping_mul(0xc2b2_ae35);
    (x ^ (x >> 16)).max(1)
}

/// Destination of decision `i`: 7 of 8 from a hot set of `HOT`, 1 of 8 a
/// destination never seen before. With the 1024-entry table this gives
/// about 80 % remembered and 20 % new decisions (new ones insert, and most
/// evict the least recently used entry of a full group).
fn destination(i: usize) -> u32 {
    if i % 8 == 7 {
        mix(0x8000_0000 | (i / 8) as u32)
    } else {
        mix((i % HOT) as u32)
    }
}

fn decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("decision");
    for id in StrategyId::all() {
        for n in [2usize, 4, 16] {
            let nhs = nexthops(n);
            let route = Route::new(0xffff_8881_0420_0c00, &nhs);
            let mut load = loads(n);
            let mem: Vec<AtomicU64> = (0..TABLE).map(|_| AtomicU64::new(0)).collect();
            let table = DestTable::new(&mem);
            let flow_mem: Vec<AtomicU64> = (0..FLOWLET_TABLE).map(|_| AtomicU64::new(0)).collect();
            let flow_table = FlowletTable::new(&flow_mem);
            let keeps_flows = id.needs().flowlets;
            let mut wrr = WrrState::ZERO;
            let mut first = WrrState::ZERO;
            let mut i = 0usize;
            let mut decide = |i: usize| {
                // Route: see `destination`; the clock ticks every 1024
                // decisions, so entries get refreshed now and then.
                // Session: three packets of known connections (stored
                // uplink) for one new connection.
                let daddr = destination(i);
                let now_s = 10_000 + (i / 1024) as u32;
                let stored_uplink = if i % 4 == 0 {
                    0
                } else {
                    nhs[(i / 4) % n].uplink
                };
                // Flowlet: one of 1024 flows, 10 us apart: each sends
                // every 10 ms, within the default gap (as in the icount
                // bench). The others get no flow data, as in the kernel.
                let flows = Flowlets {
                    table: flow_table,
                    flow: (i as u32 % 1024).wrapping_mul(0x9e37_79b1),
                    now_us: i as u64 * 10,
                    gap_us: 50_000,
                    queue_wait: false,
                    queues: &NoQueues,
                };
                let mut env = Env {
                    daddr,
                    wrr: &mut wrr,
                    first: &mut first,
                    dests: &table,
                    now_s,
                    idle_timeout_s: TIMEOUT_S,
                    stored_uplink,
                    allowed: !0,
                    has_conn: true,
                    load: &mut load,
                    // A 1500-byte packet.
                    bits: 12_000,
                    flowlets: if keeps_flows { &flows } else { &NO_FLOWLETS },
                };
                id.ops().select(black_box(&route), &mut env)
            };
            // Warm up the destination table.
            for _ in 0..4 * TABLE {
                i += 1;
                decide(i);
            }
            group.bench_function(BenchmarkId::new(id.name(), n), |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    black_box(decide(black_box(i)))
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = decision
}
criterion_main!(benches);
