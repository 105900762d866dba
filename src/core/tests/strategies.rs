// SPDX-License-Identifier: GPL-2.0

//! The four strategies end to end through `StrategyId::ops()`, with a
//! fixture load table.

mod common;

use std::sync::atomic::AtomicU64;

use common::{config, kernel_nexthops, loads};
use mpbal_core::desttable::DestTable;
use mpbal_core::estimator::headroom;
use mpbal_core::flowlettable::FlowletTable;
use mpbal_core::loadtable::{LoadTable, MAX_UPLINK_IDS};
use mpbal_core::nexthop::{Nexthop, Route};
use mpbal_core::strategy::{
    queue_us, Direct, Env, Flowlets, Needs, Outcome, Rechoose, Selection, StrategyId, UplinkQueues,
    WithStrategy, MAX_QUEUE_US, NO_FLOWLETS,
};
use mpbal_core::wrr::WrrState;
use proptest::prelude::*;

const TIMEOUT: u32 = 300;
/// The flowlet gap of the fixture, us.
const GAP_US: u64 = 50_000;

/// Per-packet inputs besides the route.
#[derive(Clone, Copy, Debug)]
struct Pkt {
    daddr: u32,
    now_s: u32,
    stored_uplink: u32,
    has_conn: bool,
    allowed: u32,
    flow: u32,
    now_us: u64,
}

impl Pkt {
    fn to(daddr: u32) -> Self {
        Pkt {
            daddr,
            now_s: 1000,
            stored_uplink: 0,
            has_conn: true,
            allowed: !0,
            flow: 0,
            now_us: 1_000_000,
        }
    }
    fn flow(self, flow: u32, now_us: u64) -> Self {
        Pkt {
            flow,
            now_us,
            ..self
        }
    }
    fn allowed(self, allowed: u32) -> Self {
        Pkt { allowed, ..self }
    }
    fn at(self, now_s: u32) -> Self {
        Pkt { now_s, ..self }
    }
    fn stored(self, stored_uplink: u32) -> Self {
        Pkt {
            stored_uplink,
            ..self
        }
    }
    fn untracked(self) -> Self {
        Pkt {
            has_conn: false,
            ..self
        }
    }
}

/// The state a CPU and a netns keep for one route.
struct Harness {
    /// Per-packet rotation (per CPU in the kernel).
    wrr: WrrState,
    /// First choices of destinations and connections (shared in the kernel).
    first: WrrState,
    mem: Vec<AtomicU64>,
    /// The flowlet table (shared in the kernel).
    flows: Vec<AtomicU64>,
    loads: LoadTable,
    /// What each uplink id's queue takes to drain, us.
    queues: Queues,
    /// `flowlet_queue_wait`.
    queue_wait: bool,
}

/// Fixed queue delays by uplink id.
#[derive(Default)]
struct Queues([u64; 8]);

impl UplinkQueues for Queues {
    fn queue_us(&self, id: u32) -> u64 {
        self.0.get(id as usize).copied().unwrap_or(0)
    }
}

impl Harness {
    fn new(table_slots: usize) -> Self {
        Harness {
            wrr: WrrState::ZERO,
            first: WrrState::ZERO,
            mem: (0..table_slots).map(|_| AtomicU64::new(0)).collect(),
            flows: (0..table_slots).map(|_| AtomicU64::new(0)).collect(),
            loads: loads(),
            queues: Queues::default(),
            queue_wait: false,
        }
    }

    fn select(&mut self, id: StrategyId, route: &Route<'_>, p: Pkt) -> Option<Selection> {
        self.select_by(route, p, |route, env| id.ops().select(route, env))
    }

    /// One packet through `choose`, on this harness's state.
    fn select_by(
        &mut self,
        route: &Route<'_>,
        p: Pkt,
        choose: impl FnOnce(&Route<'_>, &mut Env<'_>) -> Option<Selection>,
    ) -> Option<Selection> {
        let dests = DestTable::new(&self.mem);
        let flowlets = Flowlets {
            table: FlowletTable::new(&self.flows),
            flow: p.flow,
            now_us: p.now_us,
            gap_us: GAP_US,
            queue_wait: self.queue_wait,
            queues: &self.queues,
        };
        let mut env = Env {
            daddr: p.daddr,
            wrr: &mut self.wrr,
            first: &mut self.first,
            dests: &dests,
            now_s: p.now_s,
            idle_timeout_s: TIMEOUT,
            stored_uplink: p.stored_uplink,
            allowed: p.allowed,
            has_conn: p.has_conn,
            load: &mut self.loads,
            bits: 1500 * 8,
            flowlets: &flowlets,
        };
        choose(route, &mut env)
    }
}

/// `(oif, weight, alive)` -> nexthops; oifs are what the tests name.
fn route_of(spec: &[(u32, u32, bool)]) -> Vec<Nexthop> {
    kernel_nexthops(spec)
}

fn r(nhs: &[Nexthop]) -> Route<'_> {
    Route::new(0xffff_8881_0000_0040, nhs)
}

/// The strategy named `name`.
fn sid(name: &str) -> StrategyId {
    StrategyId::from_name(name.as_bytes()).expect("a strategy of that name")
}

/// 10.1.0.0 + i, host order.
fn dest(i: u32) -> u32 {
    0x0a01_0000 + i
}

/// Asserts every prefix of `choices` is within one pick of the weights.
fn assert_prefix_within_one(choices: &[usize], weights: &[u32]) {
    let total: u32 = weights.iter().sum();
    let mut count = vec![0u32; weights.len()];
    for (n, &c) in choices.iter().enumerate() {
        count[c] += 1;
        for (i, &w) in weights.iter().enumerate() {
            let ideal = f64::from(w) * (n + 1) as f64 / f64::from(total);
            let err = f64::from(count[i]) - ideal;
            assert!(
                err.abs() <= 1.0,
                "after {} choices nexthop {i}: {count:?}",
                n + 1
            );
        }
    }
}

// ---------------------------------------------------------------- packet

#[test]
fn packet_follows_weights_exactly() {
    let nhs = route_of(&[(2, 1, true), (3, 2, true), (4, 3, true)]);
    let route = r(&nhs);
    let mut h = Harness::new(0);
    let mut count = [0usize; 3];
    let mut seq = Vec::new();
    for i in 0..6000 {
        let s = h
            .select(sid("packet"), &route, Pkt::to(dest(i % 7)))
            .unwrap();
        assert_eq!(s.outcome, Outcome::PerPacket);
        count[s.index] += 1;
        seq.push(s.index);
    }
    assert_eq!(count, [1000, 2000, 3000]);
    for window in seq.chunks(6) {
        let mut c = [0; 3];
        window.iter().for_each(|&i| c[i] += 1);
        assert_eq!(c, [1, 2, 3]);
    }
    assert_prefix_within_one(&seq, &[1, 2, 3]);
}

#[test]
fn packet_skips_unusable_nexthops() {
    let mut nhs = route_of(&[(2, 1, true), (3, 2, false), (4, 3, true), (5, 4, true)]);
    nhs[3].usable = false; // linkdown, still has its hash range
    let route = r(&nhs);
    let mut h = Harness::new(0);
    let mut count = [0usize; 4];
    for _ in 0..400 {
        count[h.select(sid("packet"), &route, Pkt::to(1)).unwrap().index] += 1;
    }
    assert_eq!(count, [100, 0, 300, 0]);
}

#[test]
fn every_strategy_returns_none_without_usable_nexthops() {
    let mut nhs = route_of(&[(2, 1, false), (3, 2, true)]);
    nhs[1].usable = false;
    let route = r(&nhs);
    for id in StrategyId::all() {
        let mut h = Harness::new(64);
        h.loads.set(3, 0, 1_000_000);
        assert_eq!(
            h.select(id, &route, Pkt::to(dest(1)).stored(3)),
            None,
            "{id:?}"
        );
        assert_eq!(
            h.select(id, &route, Pkt::to(dest(1)).untracked()),
            None,
            "{id:?}"
        );
    }
    let empty = r(&[]);
    for id in StrategyId::all() {
        assert_eq!(Harness::new(64).select(id, &empty, Pkt::to(dest(1))), None);
    }
}

// ----------------------------------------------------------------- route

#[test]
fn route_destinations_stick_and_new_ones_follow_weights() {
    let weights = [1, 2, 3];
    let nhs = route_of(&[(2, 1, true), (3, 2, true), (4, 3, true)]);
    let route = r(&nhs);
    let mut h = Harness::new(4096);
    let mut assigned = vec![None; 600];
    let mut firsts = Vec::new();
    // Destinations come and come back in a scrambled order.
    let mut rng = common::Rng::new(3);
    let mut next_new = 0u32;
    for step in 0..6000u32 {
        let i = if next_new < 600 && (step % 3 == 0 || next_new == 0) {
            next_new += 1;
            next_new - 1
        } else {
            rng.below(u64::from(next_new)) as u32
        };
        let s = h
            .select(sid("route"), &route, Pkt::to(dest(i)).at(1000 + step / 100))
            .unwrap();
        match assigned[i as usize] {
            None => {
                assert_eq!(s.outcome, Outcome::New, "first packet to {i}");
                assigned[i as usize] = Some(s.index);
                firsts.push(s.index);
            }
            Some(k) => {
                assert_eq!(s.outcome, Outcome::Remembered, "packet to {i}");
                assert_eq!(s.index, k, "destination {i} moved");
            }
        }
    }
    assert_eq!(firsts.len(), 600);
    let mut count = [0; 3];
    firsts.iter().for_each(|&k| count[k] += 1);
    assert_eq!(count, [100, 200, 300]);
    assert_prefix_within_one(&firsts, &weights);
}

#[test]
fn route_dead_stored_nexthop_is_rechosen() {
    let spec = [(2, 1, true), (3, 1, true), (4, 1, true)];
    let nhs = route_of(&spec);
    let mut h = Harness::new(1024);
    let d = dest(5);
    let first = h.select(sid("route"), &r(&nhs), Pkt::to(d)).unwrap();
    assert_eq!(first.outcome, Outcome::New);
    let k = first.index;

    // The nexthop dies: fib_rebalance() drops its range.
    let mut dead = spec;
    dead[k].2 = false;
    let nhs_dead = route_of(&dead);
    let s = h
        .select(sid("route"), &r(&nhs_dead), Pkt::to(d).at(1001))
        .unwrap();
    assert_eq!(s.outcome, Outcome::Rechosen(Rechoose::StoredDead));
    assert_ne!(s.index, k);
    let again = h
        .select(sid("route"), &r(&nhs_dead), Pkt::to(d).at(1002))
        .unwrap();
    assert_eq!(
        again,
        Selection {
            index: s.index,
            outcome: Outcome::Remembered
        }
    );

    // Link down only (the kernel keeps the range): also StoredDead.
    let mut nhs_down = nhs.clone();
    nhs_down[s.index].usable = false;
    let s2 = h
        .select(sid("route"), &r(&nhs_down), Pkt::to(d).at(1003))
        .unwrap();
    assert_eq!(s2.outcome, Outcome::Rechosen(Rechoose::StoredDead));
    assert_ne!(s2.index, s.index);
}

#[test]
fn route_removed_nexthop_is_rechosen() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    let mut h = Harness::new(1024);
    let d = dest(9);
    let k = h.select(sid("route"), &r(&nhs), Pkt::to(d)).unwrap().index;
    let gone_oif = nhs[k].oif;
    let spec: Vec<(u32, u32, bool)> = nhs
        .iter()
        .filter(|nh| nh.oif != gone_oif)
        .map(|nh| (nh.oif, nh.weight, true))
        .collect();
    let smaller = route_of(&spec);
    let s = h
        .select(sid("route"), &r(&smaller), Pkt::to(d).at(1001))
        .unwrap();
    assert_eq!(s.outcome, Outcome::Rechosen(Rechoose::StoredGone));
    assert_ne!(smaller[s.index].oif, gone_oif);
    let again = h
        .select(sid("route"), &r(&smaller), Pkt::to(d).at(1002))
        .unwrap();
    assert_eq!(
        again,
        Selection {
            index: s.index,
            outcome: Outcome::Remembered
        }
    );
}

#[test]
fn route_idle_destination_expires() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true)]);
    let route = r(&nhs);
    let mut h = Harness::new(1024);
    let d = dest(1);
    let t0 = 65_500; // and across the 16-bit stamp wrap
    assert_eq!(
        h.select(sid("route"), &route, Pkt::to(d).at(t0))
            .unwrap()
            .outcome,
        Outcome::New
    );
    let last_use = t0 + TIMEOUT - 1;
    assert_eq!(
        h.select(sid("route"), &route, Pkt::to(d).at(last_use))
            .unwrap()
            .outcome,
        Outcome::Remembered
    );
    assert_eq!(
        h.select(sid("route"), &route, Pkt::to(d).at(last_use + TIMEOUT - 1))
            .unwrap()
            .outcome,
        Outcome::Remembered
    );
    let t = last_use + TIMEOUT - 1 + TIMEOUT;
    assert_eq!(
        h.select(sid("route"), &route, Pkt::to(d).at(t))
            .unwrap()
            .outcome,
        Outcome::New
    );
}

#[test]
fn route_without_table_room_still_balances() {
    let nhs = route_of(&[(2, 1, true), (3, 3, true)]);
    let route = r(&nhs);
    let mut h = Harness::new(0); // no table at all
    let mut count = [0; 2];
    for i in 0..400 {
        let s = h
            .select(sid("route"), &route, Pkt::to(dest(i % 3)))
            .unwrap();
        assert_eq!(s.outcome, Outcome::New);
        count[s.index] += 1;
    }
    assert_eq!(count, [100, 300]);
}

#[test]
fn route_stored_uplink_above_16_bits_is_not_remembered() {
    // The table cannot hold ifindex > 65535: such an uplink is chosen every
    // time but never remembered.
    let nhs = route_of(&[(70_000, 1, true)]);
    let route = r(&nhs);
    let mut h = Harness::new(64);
    for _ in 0..3 {
        let s = h.select(sid("route"), &route, Pkt::to(dest(2))).unwrap();
        assert_eq!(
            s,
            Selection {
                index: 0,
                outcome: Outcome::New
            }
        );
    }
}

// --------------------------------------------------------------- session

#[test]
fn session_keeps_stored_uplink_without_advancing_wrr() {
    let nhs = route_of(&[(2, 1, true), (3, 2, true), (4, 3, true)]);
    let route = r(&nhs);
    let expected = rotation(&route, 60);
    let mut h = Harness::new(0);
    let mut news = Vec::new();
    for i in 0..60 {
        let s = h.select(sid("session"), &route, Pkt::to(dest(i))).unwrap();
        assert_eq!(s.outcome, Outcome::New);
        news.push(s.index);
        for oif in [2, 3, 4] {
            let kept = h
                .select(sid("session"), &route, Pkt::to(dest(i)).stored(oif))
                .unwrap();
            assert_eq!(
                kept,
                Selection {
                    index: (oif - 2) as usize,
                    outcome: Outcome::Remembered
                }
            );
        }
    }
    assert_eq!(news, expected);
}

/// The first `n` picks of a fresh smooth WRR rotation over `route`.
fn rotation(route: &Route<'_>, n: usize) -> Vec<usize> {
    let mut plain = Harness::new(0);
    (0..n)
        .map(|_| {
            plain
                .select(sid("packet"), route, Pkt::to(1))
                .unwrap()
                .index
        })
        .collect()
}

/// New connections take the shared first-choice rotation and untracked
/// packets the per-packet one: interleaving them disturbs neither.
#[test]
fn session_first_choices_and_untracked_packets_rotate_separately() {
    let nhs = route_of(&[(2, 1, true), (3, 2, true), (4, 3, true)]);
    let route = r(&nhs);
    let expected = rotation(&route, 60);
    let mut h = Harness::new(0);
    let (mut news, mut untracked) = (Vec::new(), Vec::new());
    for i in 0..60 {
        let s = h.select(sid("session"), &route, Pkt::to(dest(i))).unwrap();
        assert_eq!(s.outcome, Outcome::New);
        news.push(s.index);
        let s = h
            .select(sid("session"), &route, Pkt::to(dest(i)).untracked())
            .unwrap();
        assert_eq!(s.outcome, Outcome::Untracked);
        untracked.push(s.index);
    }
    assert_eq!(news, expected);
    assert_eq!(untracked, expected);
}

/// Likewise for the route strategy and per-packet strategies sharing a
/// CPU: new destinations follow the first-choice rotation exactly.
#[test]
fn route_first_choices_ignore_per_packet_traffic() {
    let nhs = route_of(&[(2, 1, true), (3, 2, true), (4, 3, true)]);
    let route = r(&nhs);
    let expected = rotation(&route, 60);
    let mut h = Harness::new(1024);
    let mut news = Vec::new();
    for i in 0..60 {
        h.select(sid("packet"), &route, Pkt::to(1)).unwrap();
        let s = h.select(sid("route"), &route, Pkt::to(dest(i))).unwrap();
        assert_eq!(s.outcome, Outcome::New);
        news.push(s.index);
    }
    assert_eq!(news, expected);
}

/// CPUs racing on the same new destinations, each with its own rotation
/// state (so they would choose differently), all end up sending a
/// destination through one uplink: the loser of the race follows the
/// winner's entry.
#[test]
fn route_racing_cpus_agree_on_a_destination() {
    use std::sync::Barrier;
    const CPUS: usize = 4;
    const ROUNDS: u32 = 300;
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true), (5, 1, true)]);
    let mem: Vec<AtomicU64> = (0..4096).map(|_| AtomicU64::new(0)).collect();
    let table = DestTable::new(&mem);
    let barrier = Barrier::new(CPUS);
    let results: Vec<Vec<usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CPUS)
            .map(|cpu| {
                let (nhs, table, barrier) = (&nhs, &table, &barrier);
                s.spawn(move || {
                    let route = r(nhs);
                    let mut loads = loads();
                    let mut wrr = WrrState::ZERO;
                    let mut first = WrrState::ZERO;
                    // Different phases: CPU k would pick nexthop k first.
                    for _ in 0..cpu {
                        first.pick(&route, route.usable_mask());
                    }
                    (0..ROUNDS)
                        .map(|round| {
                            barrier.wait();
                            let mut env = Env {
                                daddr: dest(round + 1),
                                wrr: &mut wrr,
                                first: &mut first,
                                dests: table,
                                now_s: 1000,
                                idle_timeout_s: TIMEOUT,
                                stored_uplink: 0,
                                allowed: !0,
                                has_conn: true,
                                load: &mut loads,
                                bits: 0,
                                flowlets: &NO_FLOWLETS,
                            };
                            sid("route").ops().select(&route, &mut env).unwrap().index
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for round in 0..ROUNDS as usize {
        let stored = table.lookup(dest(round as u32 + 1), 1000, TIMEOUT).unwrap();
        for cpu in &results {
            assert_eq!(
                nhs[cpu[round]].oif,
                stored,
                "destination {round}: {:?}",
                results.iter().map(|c| c[round]).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn session_rechooses_dead_and_gone_uplinks() {
    let mut nhs = route_of(&[(2, 1, false), (3, 2, true), (4, 3, true)]);
    nhs[2].usable = false; // linkdown
    let route = r(&nhs);
    let mut h = Harness::new(0);
    for stored in [2, 4] {
        let s = h
            .select(sid("session"), &route, Pkt::to(1).stored(stored))
            .unwrap();
        assert_eq!(
            s,
            Selection {
                index: 1,
                outcome: Outcome::Rechosen(Rechoose::StoredDead)
            }
        );
    }
    let s = h
        .select(sid("session"), &route, Pkt::to(1).stored(99))
        .unwrap();
    assert_eq!(
        s,
        Selection {
            index: 1,
            outcome: Outcome::Rechosen(Rechoose::StoredGone)
        }
    );
}

#[test]
fn session_untracked_packets_use_wrr() {
    let nhs = route_of(&[(2, 1, true), (3, 3, true)]);
    let route = r(&nhs);
    let mut h = Harness::new(0);
    let mut count = [0; 2];
    for i in 0..400 {
        // A stored uplink means nothing without a connection.
        let p = if i % 2 == 0 {
            Pkt::to(1).untracked()
        } else {
            Pkt::to(1).untracked().stored(2)
        };
        let s = h.select(sid("session"), &route, p).unwrap();
        assert_eq!(s.outcome, Outcome::Untracked);
        count[s.index] += 1;
    }
    assert_eq!(count, [100, 300]);
}

// ------------------------------------------------------------- bandwidth

const G: u64 = 1_000_000_000;
const M: u64 = 1_000_000;

fn bw_pick(h: &mut Harness, nhs: &[Nexthop]) -> usize {
    let s = h.select(sid("bandwidth"), &r(nhs), Pkt::to(1)).unwrap();
    assert_eq!(s.outcome, Outcome::PerPacket);
    s.index
}

#[test]
fn bandwidth_picks_most_headroom() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    let mut h = Harness::new(0);
    h.loads
        .set(2, 90 * M, 100 * M)
        .set(3, 10 * M, 100 * M)
        .set(4, 50 * M, 100 * M);
    for _ in 0..10 {
        assert_eq!(bw_pick(&mut h, &nhs), 1);
    }
    // Capacity matters, not only load: 950M of 1G leaves less than 0 of 100M.
    h.loads
        .set(2, 950 * M, G)
        .set(3, 0, 100 * M)
        .set(4, 99 * M, 100 * M);
    assert_eq!(bw_pick(&mut h, &nhs), 1);
    // All overloaded: the least overloaded.
    h.loads
        .set(2, 300 * M, 100 * M)
        .set(3, 150 * M, 100 * M)
        .set(4, 180 * M, 100 * M);
    assert_eq!(bw_pick(&mut h, &nhs), 1);
}

#[test]
fn bandwidth_unknown_capacity_is_fastest_known() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    let mut h = Harness::new(0);
    // Unknown capacity taken as 1G: 800M headroom beats 700M and 100M.
    h.loads
        .set(2, 200 * M, 0)
        .set(3, 300 * M, G)
        .set(4, 0, 100 * M);
    assert_eq!(bw_pick(&mut h, &nhs), 0);
    // Same, unknown: loaded more than the known one.
    h.loads.set(2, 400 * M, 0);
    assert_eq!(bw_pick(&mut h, &nhs), 1);
    // An uplink the load source does not track has no estimate: it counts
    // as full (zero headroom), so any tracked uplink with room wins.
    h.loads.untrack(2);
    h.loads.set(3, 1, G);
    assert_eq!(bw_pick(&mut h, &nhs), 1);
    // The fastest known uplink need not be on the route: a 10G uplink of
    // another route makes the unknown one 10G here too.
    h.loads
        .set(2, 400 * M, 0)
        .set(3, 300 * M, G)
        .set(4, 0, 100 * M);
    h.loads.set(9, 0, 10 * G);
    assert_eq!(bw_pick(&mut h, &nhs), 0);
}

#[test]
fn bandwidth_all_unknown_takes_least_loaded() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    let mut h = Harness::new(0);
    h.loads
        .set(2, 30 * M, 0)
        .set(3, 10 * M, 0)
        .set(4, 20 * M, 0);
    assert_eq!(bw_pick(&mut h, &nhs), 1);
    h.loads.set(3, 40 * M, 0);
    assert_eq!(bw_pick(&mut h, &nhs), 2);
}

#[test]
fn bandwidth_ties_take_turns() {
    // The fixture's window is so long that bookings add no rate: the three
    // uplinks stay tied, and the one chosen least recently goes next,
    // whatever the weights.
    let nhs = route_of(&[(2, 1, true), (3, 2, true), (4, 3, true)]);
    let mut h = Harness::new(0);
    h.loads.set(2, 0, G).set(3, 0, G).set(4, 0, G);
    let seq: Vec<usize> = (0..600).map(|_| bw_pick(&mut h, &nhs)).collect();
    for (n, w) in seq.chunks(3).enumerate() {
        assert_eq!(w, [0, 1, 2], "round {n}");
    }
    // Only the tied ones take turns.
    h.loads.set(3, 5 * M, G);
    let mut count = [0; 3];
    for _ in 0..400 {
        count[bw_pick(&mut h, &nhs)] += 1;
    }
    assert_eq!(count, [200, 0, 200]);
}

#[test]
fn bandwidth_bookings_fill_uplinks_by_headroom() {
    // Idle 10 and 30 Mbit/s uplinks, 1500-byte packets booked over a 1 s
    // window (12 kbit/s each): the 30 Mbit/s one takes every packet until
    // its headroom is down to the other's, then they alternate.
    let nhs = route_of(&[(2, 1, true), (3, 1, true)]);
    let mut h = Harness::new(0);
    h.loads.set(2, 0, 10 * M).set(3, 0, 30 * M);
    h.loads.set_window(1000, 0);
    let first: Vec<usize> = (0..1667).map(|_| bw_pick(&mut h, &nhs)).collect();
    assert!(first.iter().all(|&i| i == 1), "{:?}", &first[..10]);
    let mut count = [0; 2];
    for _ in 0..1000 {
        count[bw_pick(&mut h, &nhs)] += 1;
    }
    assert_eq!(count, [500, 500]);
    // Headroom is what counts, so the shares after the first packets are
    // equal in bits, and the whole run is within one packet of 1:3 of
    // capacity until the slower one's headroom is gone.
    let booked = |id| h.loads.booked_bits(id);
    assert_eq!(booked(2) + booked(3), 2667 * 1500 * 8);
    assert_eq!(booked(3) - booked(2), 1667 * 1500 * 8);
}

#[test]
fn bandwidth_never_picks_unusable_even_if_idle() {
    let mut nhs = route_of(&[(2, 1, false), (3, 1, true), (4, 1, true)]);
    nhs[2].usable = false;
    let mut h = Harness::new(0);
    h.loads
        .set(2, 0, 10 * G)
        .set(3, 99 * M, 100 * M)
        .set(4, 0, 10 * G);
    for _ in 0..10 {
        assert_eq!(bw_pick(&mut h, &nhs), 1);
    }
}

// -------------------------------------------------------------- headroom

fn pick_of(h: &mut Harness, name: &str, nhs: &[Nexthop], p: Pkt) -> usize {
    h.select(sid(name), &r(nhs), p).unwrap().index
}

#[test]
fn headroom_uses_the_slow_uplink_that_bandwidth_leaves_idle() {
    // The thesis's uplinks: 1, 10 and 10 Mbit/s, half loaded except the
    // slow one (40%). Bandwidth sees 5 Mbit/s spare on the fast ones and
    // 0.6 on the slow one; headroom sees 60% against 50%.
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    let mut h = Harness::new(0);
    h.loads
        .set(2, 400_000, M)
        .set(3, 5 * M, 10 * M)
        .set(4, 5 * M, 10 * M);
    assert_eq!(pick_of(&mut h, "headroom", &nhs, Pkt::to(1)), 0);
    let mut b = Harness::new(0);
    b.loads
        .set(2, 400_000, M)
        .set(3, 5 * M, 10 * M)
        .set(4, 5 * M, 10 * M);
    assert_eq!(pick_of(&mut b, "bandwidth", &nhs, Pkt::to(1)), 1);
}

#[test]
fn headroom_splits_by_capacity_idle_and_saturated() {
    // Booked over a 1 s window, 1500-byte packets: whether the uplinks are
    // idle or running at capacity, packets split 1:10:10 (within one).
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    for load in [0, 1] {
        let mut h = Harness::new(0);
        h.loads
            .set(2, load * M, M)
            .set(3, load * 10 * M, 10 * M)
            .set(4, load * 10 * M, 10 * M);
        h.loads.set_window(1000, 0);
        let mut count = [0usize; 3];
        for n in 1..=2100 {
            count[pick_of(&mut h, "headroom", &nhs, Pkt::to(1))] += 1;
            for (i, cap) in [1, 10, 10].into_iter().enumerate() {
                let ideal = n as f64 * cap as f64 / 21.0;
                assert!(
                    (count[i] as f64 - ideal).abs() <= 1.0,
                    "load {load}, after {n}: {count:?}"
                );
            }
        }
        assert_eq!(count, [100, 1000, 1000]);
    }
}

#[test]
fn headroom_unknown_capacities() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true)]);
    let mut h = Harness::new(0);
    // Unknown capacity: as fast as the fastest known (10M): 90% free
    // against 50%.
    h.loads.set(2, M, 0).set(3, 5 * M, 10 * M);
    assert_eq!(pick_of(&mut h, "headroom", &nhs, Pkt::to(1)), 0);
    // None known: the least loaded.
    h.loads.set(2, 3 * M, 0).set(3, 2 * M, 0);
    assert_eq!(pick_of(&mut h, "headroom", &nhs, Pkt::to(1)), 1);
}

#[test]
fn bandwidth_and_headroom_share_one_table() {
    // Switching strategy switches the table's key; bookings made under one
    // count for the other.
    let nhs = route_of(&[(2, 1, true), (3, 1, true)]);
    let mut h = Harness::new(0);
    h.loads.set(2, 0, M).set(3, 0, 10 * M);
    h.loads.set_window(1000, 0);
    // Bandwidth: the 10M uplink until its spare bit/s fall to 1M.
    assert_eq!(pick_of(&mut h, "bandwidth", &nhs, Pkt::to(1)), 1);
    // Headroom: both are nearly idle; the 1M one has 100% left.
    assert_eq!(pick_of(&mut h, "headroom", &nhs, Pkt::to(1)), 0);
    // 9.1 Mbit booked on the 10M uplink leaves it 9%, 0.9 Mbit/s: the 1M
    // one (97.6% and 0.976 Mbit/s after two packets) wins under both.
    h.loads.book(3, 9_100_000 - 12_000);
    assert_eq!(pick_of(&mut h, "headroom", &nhs, Pkt::to(1)), 0);
    assert_eq!(pick_of(&mut h, "bandwidth", &nhs, Pkt::to(1)), 0);
    assert_eq!(h.loads.booked_bits(2), 3 * 12_000);
    assert_eq!(h.loads.booked_bits(3), 9_100_000);
}

// --------------------------------------------------------------- flowlet

#[test]
fn flowlet_keeps_a_flow_within_the_gap() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    let mut h = Harness::new(64);
    h.loads
        .set(2, 0, 10 * M)
        .set(3, 0, 10 * M)
        .set(4, 0, 10 * M);
    h.loads.set_window(1000, 0);
    // Packets 1 ms apart: one flowlet, one uplink, though booking it makes
    // the others more attractive.
    let first = h
        .select(sid("flowlet"), &r(&nhs), Pkt::to(1).flow(7, 0))
        .unwrap();
    assert_eq!(first.outcome, Outcome::New);
    for t in 1..200u64 {
        let s = h
            .select(sid("flowlet"), &r(&nhs), Pkt::to(1).flow(7, t * 1000))
            .unwrap();
        assert_eq!(
            (s.index, s.outcome),
            (first.index, Outcome::Remembered),
            "at {t} ms"
        );
    }
    // Its packets were booked: after 200 packets a new flow avoids it.
    let other = pick_of(&mut h, "flowlet", &nhs, Pkt::to(1).flow(8, 200_000));
    assert_ne!(other, first.index);
    assert_eq!(h.loads.booked_bits(nhs[first.index].uplink), 200 * 12_000);
}

/// A packet of flow 7 at `now_us`.
fn flow7(h: &mut Harness, nhs: &[Nexthop], now_us: u64) -> Selection {
    h.select(sid("flowlet"), &r(nhs), Pkt::to(1).flow(7, now_us))
        .unwrap()
}

/// A new flowlet, away from nexthop `from`.
fn assert_moved(s: Selection, from: usize) {
    assert_eq!(s.outcome, Outcome::Moved);
    assert_ne!(s.index, from);
}

/// Two 10 Mbit/s uplinks and flow 7 started on one of them at 0 (its
/// index is returned).
fn flow_on_one_of_two() -> (Vec<Nexthop>, Harness, usize) {
    let nhs = route_of(&[(2, 1, true), (3, 1, true)]);
    let mut h = Harness::new(64);
    h.loads.set(2, 0, 10 * M).set(3, 0, 10 * M);
    h.loads.set_window(1000, 0);
    let a = pick_of(&mut h, "flowlet", &nhs, Pkt::to(1).flow(7, 0));
    (nhs, h, a)
}

#[test]
fn flowlet_may_move_after_a_gap() {
    let (nhs, mut h, a) = flow_on_one_of_two();
    // Under the gap: same flowlet.
    let s = flow7(&mut h, &nhs, GAP_US - 1);
    assert_eq!((s.index, s.outcome), (a, Outcome::Remembered));
    // The other uplink has more room now (two packets booked on this one).
    // The stamp was written at GAP_US - 1 (an eighth of the gap after the
    // first): a pause of the gap is not yet enough to be sure of a pause
    // of the gap since the last packet, the gap and an eighth is.
    let s = flow7(&mut h, &nhs, 2 * GAP_US - 1);
    assert_eq!((s.index, s.outcome), (a, Outcome::Remembered));
    let t = 2 * GAP_US - 1 + GAP_US + GAP_US / 8;
    let s = flow7(&mut h, &nhs, t);
    assert_moved(s, a);
}

#[test]
fn flowlet_without_queue_wait_moves_at_the_gap() {
    // flowlet_queue_wait off (the default): the queues are not read, a
    // flow moves after the gap even from a long queue.
    let (nhs, mut h, a) = flow_on_one_of_two();
    h.queues.0[nhs[a].uplink as usize] = 300_000;
    let s = flow7(&mut h, &nhs, GAP_US + GAP_US / 8);
    assert_moved(s, a);
}

#[test]
fn flowlet_waits_for_its_uplinks_queue() {
    let (nhs, mut h, a) = flow_on_one_of_two();
    h.queue_wait = true;
    let (mine, other) = (nhs[a].uplink, nhs[1 - a].uplink);
    // 200 ms wait in its uplink's queue, 50 ms in the other's: after the
    // gap and an eighth it stays (its last packet may still be queued)...
    h.queues.0[mine as usize] = 200_000;
    h.queues.0[other as usize] = 50_000;
    let gap = GAP_US + GAP_US / 8;
    let s = flow7(&mut h, &nhs, gap);
    assert_eq!((s.index, s.outcome), (a, Outcome::Held));
    // ... and that packet restarted the pause. Until the gap and the 150
    // ms the queues differ by have passed, it stays.
    let s = flow7(&mut h, &nhs, 2 * gap + 149_999);
    assert_eq!((s.index, s.outcome), (a, Outcome::Held));
    let t = 2 * gap + 149_999 + gap + 150_000;
    let s = flow7(&mut h, &nhs, t);
    assert_moved(s, a);
}

#[test]
fn flowlet_never_moves_onto_a_longer_queue() {
    // The other uplink has the room but the longer queue: moving would not
    // reorder, but flows that move onto a full uplink's queue never pause
    // long enough to leave it again, and pile up there.
    let (nhs, mut h, a) = flow_on_one_of_two();
    h.queue_wait = true;
    let gap = GAP_US + GAP_US / 8;
    h.queues.0[nhs[1 - a].uplink as usize] = 300_000;
    let s = flow7(&mut h, &nhs, gap);
    assert_eq!((s.index, s.outcome), (a, Outcome::Held));
    let s = flow7(&mut h, &nhs, 2 * gap + MAX_QUEUE_US / 2);
    assert_eq!((s.index, s.outcome), (a, Outcome::Held));
    // Once it has drained, the next pause of a gap moves the flow.
    h.queues.0[nhs[1 - a].uplink as usize] = 0;
    let s = flow7(&mut h, &nhs, 3 * gap + MAX_QUEUE_US / 2);
    assert_moved(s, a);
}

#[test]
fn flowlet_queue_wait_is_bounded() {
    // A pause of the gap and MAX_QUEUE_US ends a flowlet whatever the
    // queues: the flow is placed afresh (it may stay).
    let (nhs, mut h, _) = flow_on_one_of_two();
    h.queue_wait = true;
    for q in h.queues.0.iter_mut() {
        *q = u64::MAX;
    }
    let t = GAP_US + GAP_US / 8 + MAX_QUEUE_US;
    assert_eq!(flow7(&mut h, &nhs, t).outcome, Outcome::New);
}

#[test]
fn queue_us_is_backlog_over_rate() {
    // 9000 bytes at 1 Mbit/s: 72 ms; at 10 Mbit/s, 7.2 ms.
    assert_eq!(queue_us(9000, M), 72_000);
    assert_eq!(queue_us(9000, 10 * M), 7_200);
    assert_eq!(queue_us(0, M), 0);
    // Unknown rate: not measured.
    assert_eq!(queue_us(9000, 0), 0);
    // Bounded, without overflow.
    assert_eq!(queue_us(u32::MAX, 1), MAX_QUEUE_US);
}

#[test]
fn flowlet_new_flowlets_split_by_capacity() {
    // Every packet a new flow: the choice is headroom's, 1:10:10.
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    let mut h = Harness::new(4096);
    h.loads
        .set(2, M, M)
        .set(3, 10 * M, 10 * M)
        .set(4, 10 * M, 10 * M);
    h.loads.set_window(1000, 0);
    let mut count = [0usize; 3];
    for f in 0..2100u32 {
        // Distinct hashes, as the kernel's are.
        let flow = f.wrapping_mul(0x9e37_79b1);
        count[pick_of(&mut h, "flowlet", &nhs, Pkt::to(1).flow(flow, 0))] += 1;
    }
    assert_eq!(count, [100, 1000, 1000]);
}

#[test]
fn flowlet_leaves_a_dead_uplink_at_once() {
    let mut nhs = route_of(&[(2, 1, true), (3, 1, true)]);
    let mut h = Harness::new(64);
    h.loads.set(2, 0, 10 * M).set(3, 0, 10 * M);
    let a = pick_of(&mut h, "flowlet", &nhs, Pkt::to(1).flow(7, 0));
    nhs[a].usable = false;
    let s = h
        .select(sid("flowlet"), &r(&nhs), Pkt::to(1).flow(7, 10))
        .unwrap();
    assert_eq!(s.outcome, Outcome::Rechosen(Rechoose::StoredDead));
    assert_ne!(s.index, a);
    // And stays on its new uplink.
    nhs[a].usable = true;
    let again = pick_of(&mut h, "flowlet", &nhs, Pkt::to(1).flow(7, 20));
    assert_eq!(again, s.index);
}

#[test]
fn flowlet_without_a_table_chooses_per_packet() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true)]);
    let mut h = Harness::new(0);
    h.loads.set(2, 0, 10 * M).set(3, 0, 10 * M);
    let seq: Vec<Outcome> = (0..4)
        .map(|t| {
            h.select(sid("flowlet"), &r(&nhs), Pkt::to(1).flow(7, t))
                .unwrap()
                .outcome
        })
        .collect();
    assert_eq!(seq, [Outcome::New; 4]);
}

// ------------------------------------------------------------ properties

/// `(oif, weight, alive, linkdown)` of 1..=16 nexthops with distinct oifs.
fn route_spec() -> impl Strategy<Value = Vec<(u32, u32, bool, bool)>> {
    prop::collection::vec(
        (
            1u32..=256,
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.15),
        ),
        1..=16,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (w, alive, down))| (2 + i as u32, w, alive, down))
            .collect()
    })
}

fn build(spec: &[(u32, u32, bool, bool)]) -> Vec<Nexthop> {
    let k: Vec<(u32, u32, bool)> = spec.iter().map(|&(o, w, a, _)| (o, w, a)).collect();
    let mut nhs = kernel_nexthops(&k);
    for (nh, s) in nhs.iter_mut().zip(spec) {
        if s.3 {
            nh.usable = false;
        }
    }
    nhs
}

proptest! {
    #![proptest_config(config(256))]

    /// Whatever the inputs, a strategy picks a usable nexthop, or `None`
    /// exactly when there is none.
    #[test]
    fn strategies_only_pick_usable_nexthops(
        spec in route_spec(),
        pkts in prop::collection::vec((1u32..64, 0u32..20, 0u32..3, any::<bool>()), 1..40),
        loads in prop::collection::vec((0u64..=2 * G, prop_oneof![Just(0u64), 1u64..=10 * G]), 16),
    ) {
        let nhs = build(&spec);
        let route = r(&nhs);
        let usable = route.usable_mask();
        for id in StrategyId::all() {
            let mut h = Harness::new(64);
            for (i, &(rate, cap)) in loads.iter().enumerate() {
                h.loads.set(2 + i as u32, rate, cap);
            }
            for &(d, stored, t, conn) in &pkts {
                let p = Pkt { daddr: dest(d), now_s: 1000 + t, stored_uplink: stored, has_conn: conn, allowed: !0, flow: d, now_us: u64::from(t) * 10_000 };
                match h.select(id, &route, p) {
                    None => prop_assert_eq!(usable, 0, "{:?} gave up", id),
                    Some(s) => {
                        prop_assert!(usable & (1 << s.index) != 0, "{:?} picked {}", id, s.index);
                        prop_assert!(nhs[s.index].usable);
                    }
                }
            }
        }
    }

    /// The bandwidth strategy's choice has the largest headroom among the
    /// usable nexthops, unknown capacities taken as the fastest known
    /// uplink's.
    #[test]
    fn bandwidth_choice_has_max_headroom(
        spec in route_spec(),
        loads in prop::collection::vec((0u64..=2 * G, prop_oneof![Just(0u64), 1u64..=10 * G]), 16),
        untracked in any::<u16>(),
    ) {
        let nhs = build(&spec);
        let route = r(&nhs);
        let usable = route.usable_mask();
        let mut h = Harness::new(0);
        for (i, &(rate, cap)) in loads.iter().enumerate() {
            if untracked & (1 << i) == 0 {
                h.loads.set(2 + i as u32, rate, cap);
            }
        }
        let got = h.select(sid("bandwidth"), &route, Pkt::to(1));
        let load = |i: usize| h.loads.load(2 + i as u32);
        let fastest = (0..loads.len())
            .filter_map(|i| load(i).map(|l| l.capacity_bps))
            .max()
            .unwrap_or(0);
        // Untracked: no estimate, zero headroom.
        let room = |i: usize| match load(i) {
            None => 0,
            Some(l) => headroom(if l.capacity_bps == 0 { fastest } else { l.capacity_bps }, l.rate_bps),
        };
        let best = (0..nhs.len()).filter(|&i| usable & (1 << i) != 0).map(room).max();
        match (best, got) {
            (None, None) => {}
            (Some(b), Some(s)) => {
                prop_assert_eq!(room(s.index), b);
                prop_assert!(usable & (1 << s.index) != 0);
            }
            (b, s) => prop_assert!(false, "best {:?}, got {:?}", b, s),
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// The headroom strategy's choice has the largest unused share of
    /// capacity among the usable nexthops (nothing booked yet), compared
    /// exactly as fractions.
    #[test]
    fn headroom_choice_has_max_share(
        spec in route_spec(),
        loads in prop::collection::vec((0u64..=2 * G, 1u64..=10 * G), 16),
    ) {
        let nhs = build(&spec);
        let route = r(&nhs);
        let usable = route.usable_mask();
        let mut h = Harness::new(0);
        for (i, &(rate, cap)) in loads.iter().enumerate() {
            h.loads.set(2 + i as u32, rate, cap);
        }
        let got = h.select(sid("headroom"), &route, Pkt::to(1));
        // (capacity - rate) / capacity, as a pair to cross-multiply.
        let share = |i: usize| {
            let (rate, cap) = loads[i];
            (i128::from(cap) - i128::from(rate), i128::from(cap))
        };
        let best = (0..nhs.len()).filter(|&i| usable & (1 << i) != 0).max_by(|&a, &b| {
            let ((na, da), (nb, db)) = (share(a), share(b));
            (na * db).cmp(&(nb * da))
        });
        match (best, got) {
            (None, None) => {}
            (Some(b), Some(s)) => {
                let ((nb, db), (ns, ds)) = (share(b), share(s.index));
                // Equal up to the table's fixed point (2^-40 of a share).
                let diff = (nb * ds - ns * db).abs();
                prop_assert!(diff * (1 << 40) <= db * ds * 2, "best {} got {}", b, s.index);
            }
            (b, s) => prop_assert!(false, "best {:?}, got {:?}", b, s),
        }
    }
}

#[test]
fn no_strategy_leaves_the_allowed_nexthops() {
    // A local packet whose source address is on the device of nexthops 1
    // and 2 may only take those.
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true), (5, 1, true)]);
    let mut h = Harness::new(64);
    for &(a, b, c, d) in &[(2u64, 1u64, 1u64, 1u64), (3, 2, 1, 1)] {
        h.loads.set(2, 0, a * 1_000_000);
        h.loads.set(3, 0, b * 1_000_000);
        h.loads.set(4, 0, c * 1_000_000);
        h.loads.set(5, 0, d * 1_000_000);
        for id in StrategyId::all() {
            for i in 0..50 {
                let sel = h
                    .select(id, &r(&nhs), Pkt::to(dest(i)).allowed(0b0110))
                    .unwrap();
                assert!(
                    matches!(sel.index, 1 | 2),
                    "{} took {}",
                    id.name(),
                    sel.index
                );
            }
            let none = h.select(id, &r(&nhs), Pkt::to(dest(99)).allowed(0b1_0000));
            assert_eq!(none, None, "{}: nothing allowed", id.name());
        }
    }
}

#[test]
fn untracked_uplinks_are_never_chosen() {
    // Nexthop 0 is a device the netns could not track: no id, no estimate.
    let mut nhs = route_of(&[(2, 5, true), (3, 1, true), (4, 1, true)]);
    nhs[0].uplink = 0;
    let mut h = Harness::new(64);
    h.loads.set(3, 900_000, 1_000_000);
    h.loads.set(4, 900_000, 1_000_000);
    for id in StrategyId::all() {
        for i in 0..60 {
            let sel = h.select(id, &r(&nhs), Pkt::to(dest(i))).unwrap();
            assert_ne!(sel.index, 0, "{} chose an untracked uplink", id.name());
        }
    }
}

#[test]
fn stored_uplink_not_allowed_is_rechosen() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true), (4, 1, true)]);
    let mut h = Harness::new(0);
    let p = Pkt::to(1).stored(2).allowed(0b110);
    let sel = h.select(sid("session"), &r(&nhs), p).unwrap();
    assert_eq!(sel.outcome, Outcome::Rechosen(Rechoose::StoredDead));
    assert_ne!(sel.index, 0);
}

#[test]
fn only_the_bandwidth_strategy_books() {
    let nhs = route_of(&[(2, 1, true), (3, 1, true)]);
    for id in StrategyId::all() {
        let mut h = Harness::new(64);
        h.loads.set(2, 0, 10_000_000);
        h.loads.set(3, 0, 10_000_000);
        for i in 0..10 {
            h.select(id, &r(&nhs), Pkt::to(dest(i))).unwrap();
        }
        let booked: u64 = (1..=MAX_UPLINK_IDS as u32)
            .map(|id| h.loads.booked_bits(id))
            .sum();
        let expect = if id.ops().needs().load {
            10 * 1500 * 8
        } else {
            0
        };
        assert_eq!(booked, expect, "{}", id.name());
    }
}

/// `StrategyId::select` dispatches by index: each arm must be the
/// strategy the table holds at that index.
#[test]
fn static_dispatch_matches_the_table() {
    let nhs = route_of(&[(2, 1, true), (3, 2, true), (4, 3, true)]);
    for id in StrategyId::all() {
        let (mut a, mut b) = (Harness::new(64), Harness::new(64));
        for h in [&mut a, &mut b] {
            h.loads
                .set(2, 10 * M, 100 * M)
                .set(3, 0, 10 * M)
                .set(4, 5 * M, G);
        }
        for i in 0..40 {
            let p = Pkt::to(dest(i % 7)).stored(2 + i % 4);
            let by_table = a.select(id, &r(&nhs), p);
            let by_match = b.select_by(&r(&nhs), p, |route, env| id.select(route, env));
            assert_eq!(by_match, by_table, "{} packet {i}", id.name());
        }
    }
}

/// `StrategyId::with` hands over the strategy of the table's entry, with
/// the needs the table lists.
#[test]
fn with_hands_over_the_tables_strategy() {
    struct Probe;
    impl WithStrategy for Probe {
        type Output = (&'static str, Needs);
        fn with<S: Direct>(self, s: &S) -> Self::Output {
            (s.name(), S::NEEDS)
        }
    }
    for id in StrategyId::all() {
        assert_eq!(id.with(Probe), (id.name(), id.needs()), "{}", id.name());
    }
}
