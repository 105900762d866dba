// SPDX-License-Identifier: GPL-2.0

//! Uplink state: administratively down uplinks and tiers, in the mask the
//! strategies choose from and in what they remember.

mod common;

use std::sync::atomic::AtomicU64;

use common::{config, kernel_nexthops, loads};
use mpbal_core::desttable::DestTable;
use mpbal_core::flowlettable::FlowletTable;
use mpbal_core::nexthop::{best_tier, Nexthop, NexthopMask, Route, MAX_TIER, MIN_TIER};
use mpbal_core::strategy::{Env, Flowlets, NoQueues, Outcome, Rechoose, Selection, StrategyId};
use mpbal_core::wrr::WrrState;
use proptest::prelude::*;

/// Nexthops with oifs (and uplink ids) 2, 3, ..., weight 1, alive, each
/// with its `(tier, admin_down)`.
fn nexthops(spec: &[(u8, bool)]) -> Vec<Nexthop> {
    let k: Vec<(u32, u32, bool)> = (0..spec.len()).map(|i| (2 + i as u32, 1, true)).collect();
    let mut nhs = kernel_nexthops(&k);
    for (nh, &(tier, down)) in nhs.iter_mut().zip(spec) {
        nh.tier = tier;
        nh.admin_down = down;
    }
    nhs
}

fn r(nhs: &[Nexthop]) -> Route<'_> {
    Route::new(0xffff_8881_0000_0080, nhs)
}

fn sid(name: &str) -> StrategyId {
    StrategyId::from_name(name.as_bytes()).expect("a strategy of that name")
}

/// The state one route keeps across packets: rotations and tables.
struct Harness {
    wrr: WrrState,
    first: WrrState,
    dests: Vec<AtomicU64>,
    flows: Vec<AtomicU64>,
    loads: mpbal_core::loadtable::LoadTable,
}

impl Harness {
    fn new() -> Self {
        let mut loads = loads();
        // Every uplink idle at 10 Mbit/s: the load strategies then follow
        // their bookings around the uplinks.
        for id in 2..18 {
            loads.set(id, 0, 10_000_000);
        }
        Harness {
            wrr: WrrState::ZERO,
            first: WrrState::ZERO,
            dests: (0..64).map(|_| AtomicU64::new(0)).collect(),
            flows: (0..64).map(|_| AtomicU64::new(0)).collect(),
            loads,
        }
    }

    /// One packet to `daddr` (also its flow) of a connection that remembers
    /// `stored`, allowed `allowed`.
    fn select(
        &mut self,
        id: StrategyId,
        route: &Route<'_>,
        daddr: u32,
        stored: u32,
        allowed: NexthopMask,
    ) -> Option<Selection> {
        let dests = DestTable::new(&self.dests);
        let flowlets = Flowlets {
            table: FlowletTable::new(&self.flows),
            flow: daddr,
            now_us: 1_000_000,
            gap_us: 50_000,
            queue_wait: false,
            queues: &NoQueues,
        };
        let mut env = Env {
            daddr,
            wrr: &mut self.wrr,
            first: &mut self.first,
            dests: &dests,
            now_s: 1000,
            idle_timeout_s: 300,
            stored_uplink: stored,
            allowed,
            has_conn: true,
            load: &mut self.loads,
            bits: 1500 * 8,
            flowlets: &flowlets,
        };
        id.ops().select(route, &mut env)
    }
}

// ------------------------------------------------------------ the rule

#[test]
fn best_tier_takes_the_lowest_tier_present() {
    let nhs = nexthops(&[(2, false), (1, false), (3, false), (1, false)]);
    assert_eq!(best_tier(0b1111, &nhs), 0b1010);
    assert_eq!(best_tier(0b0101, &nhs), 0b0001, "tier 1 absent: tier 2");
    assert_eq!(best_tier(0b0100, &nhs), 0b0100);
    assert_eq!(best_tier(0, &nhs), 0);
    // Bits past the nexthops are not nexthops.
    assert_eq!(best_tier(0xffff_0000, &nhs), 0);
}

#[test]
fn admin_down_is_not_eligible_and_takes_no_tier() {
    // The only tier-1 uplink is down: tier 2 takes over.
    let nhs = nexthops(&[(1, true), (2, false), (2, false), (3, false)]);
    let route = r(&nhs);
    assert_eq!(route.available_mask(), 0b1110);
    assert_eq!(route.eligible(), 0b0110);
    assert_eq!(route.uplinks_of(route.eligible()), (1 << 2) | (1 << 3));
}

#[test]
fn dead_tier_one_hands_over_like_admin_down() {
    let mut nhs = nexthops(&[(1, false), (1, false), (2, false)]);
    assert_eq!(r(&nhs).eligible(), 0b011);
    nhs[0].usable = false;
    assert_eq!(r(&nhs).eligible(), 0b010);
    nhs[1].admin_down = true;
    assert_eq!(r(&nhs).eligible(), 0b100);
    nhs[0].usable = true;
    assert_eq!(r(&nhs).eligible(), 0b001, "back up: tier 1 again");
}

#[test]
fn allowed_nexthops_take_their_own_best_tier() {
    // A local packet pinned to the device of nexthops 2 and 3 (tiers 2
    // and 3) takes tier 2 though tier 1 is up elsewhere: it cannot leave
    // by nexthop 0 or 1.
    let nhs = nexthops(&[(1, false), (1, false), (2, false), (3, false)]);
    let route = r(&nhs);
    assert_eq!(route.eligible_within(!0), 0b0011);
    assert_eq!(route.eligible_within(0b0110), 0b0010);
    assert_eq!(route.eligible_within(0b1100), 0b0100);
    assert_eq!(route.eligible_within(0b1000), 0b1000);
    assert_eq!(route.eligible_within(0), 0);
}

/// The rule written plainly: the candidates are the usable, tracked, not
/// admin-down nexthops with a non-empty hash range and a weight, of the
/// lowest tier any of them has.
fn model(nhs: &[Nexthop], allowed: NexthopMask) -> NexthopMask {
    let mut prev = -1i32;
    let mut open = Vec::new();
    for (i, nh) in nhs.iter().enumerate() {
        let reachable = nh.upper_bound > prev;
        prev = prev.max(nh.upper_bound);
        if nh.usable
            && reachable
            && nh.weight > 0
            && nh.uplink != 0
            && !nh.admin_down
            && allowed & (1 << i) != 0
        {
            open.push(i);
        }
    }
    let Some(best) = open.iter().map(|&i| nhs[i].tier).min() else {
        return 0;
    };
    open.iter()
        .filter(|&&i| nhs[i].tier == best)
        .fold(0, |m, &i| m | 1 << i)
}

/// `(weight, alive, linkdown, tracked, admin_down, tier)` of 1..=16 nexthops.
type Spec = Vec<(u32, bool, bool, bool, bool, u8)>;

fn spec() -> impl Strategy<Value = Spec> {
    prop::collection::vec(
        (
            1u32..=256,
            prop::bool::weighted(0.85),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.3),
            prop_oneof![Just(MIN_TIER), Just(2u8), MIN_TIER..=MAX_TIER],
        ),
        1..=16,
    )
}

fn build(spec: &Spec) -> Vec<Nexthop> {
    let k: Vec<(u32, u32, bool)> = spec
        .iter()
        .enumerate()
        .map(|(i, s)| (2 + i as u32, s.0, s.1))
        .collect();
    let mut nhs = kernel_nexthops(&k);
    for (nh, s) in nhs.iter_mut().zip(spec) {
        nh.usable &= !s.2;
        if !s.3 {
            nh.uplink = 0;
        }
        nh.admin_down = s.4;
        nh.tier = s.5;
    }
    nhs
}

proptest! {
    #![proptest_config(config(512))]

    /// `Route::eligible_of` and `eligible_within` match the model, for
    /// every packet's allowed set.
    #[test]
    fn eligibility_matches_the_model(s in spec(), allowed in any::<u32>()) {
        let nhs = build(&s);
        let route = r(&nhs);
        prop_assert_eq!(route.eligible(), model(&nhs, !0));
        prop_assert_eq!(route.eligible_within(!0), model(&nhs, !0));
        prop_assert_eq!(route.eligible_within(allowed), model(&nhs, allowed));
    }

    /// Every strategy picks from the model's candidates only, whatever it
    /// remembers, and gives up only when there are none.
    #[test]
    fn strategies_pick_only_the_best_tier_up(
        s in spec(),
        pkts in prop::collection::vec((1u32..32, 0u32..20), 1..30),
    ) {
        let nhs = build(&s);
        let route = r(&nhs);
        let want = model(&nhs, !0);
        for id in StrategyId::all() {
            let mut h = Harness::new();
            for &(d, stored) in &pkts {
                match h.select(id, &route, d, stored, !0) {
                    None => prop_assert_eq!(want, 0, "{} gave up", id.name()),
                    Some(sel) => prop_assert!(
                        want & (1 << sel.index) != 0,
                        "{} took {} of {:#b}", id.name(), sel.index, want
                    ),
                }
            }
        }
    }
}

// ---------------------------------------------------- what is remembered

/// Nexthops 0 (uplink 2) and 1 (uplink 3), tier 1, and 2 (uplink 4), tier 2.
fn three() -> Vec<Nexthop> {
    nexthops(&[(1, false), (1, false), (2, false)])
}

#[test]
fn tier_two_gets_nothing_while_tier_one_is_up() {
    let nhs = three();
    let route = r(&nhs);
    for id in StrategyId::all() {
        let mut h = Harness::new();
        for d in 1..200 {
            let sel = h.select(id, &route, d, 0, !0).unwrap();
            assert_ne!(sel.index, 2, "{} used tier 2", id.name());
        }
    }
}

#[test]
fn tier_two_takes_over_when_tier_one_is_down() {
    let mut nhs = three();
    nhs[0].admin_down = true;
    nhs[1].usable = false;
    let route = r(&nhs);
    for id in StrategyId::all() {
        let mut h = Harness::new();
        for d in 1..50 {
            let sel = h.select(id, &route, d, 0, !0).unwrap();
            assert_eq!(sel.index, 2, "{}", id.name());
        }
    }
}

/// What each remembering strategy does with a choice it made before the
/// uplink went down: `(strategy, stored uplink passed with the packet)`.
fn rememberers() -> [(&'static str, bool); 3] {
    // The session strategy remembers in the connection's mark (passed in
    // `stored`), route and flowlet in their own tables.
    [("session", true), ("route", false), ("flowlet", false)]
}

#[test]
fn remembered_admin_down_uplink_is_rechosen() {
    for (name, in_mark) in rememberers() {
        let mut nhs = nexthops(&[(1, false), (1, false), (1, false)]);
        let mut h = Harness::new();
        // First choices until one lands on nexthop 1 (uplink 3).
        let (d, sel) = (1..50)
            .map(|d| (d, h.select(sid(name), &r(&nhs), d, 0, !0).unwrap()))
            .find(|(_, s)| s.index == 1)
            .expect("nexthop 1 chosen at some point");
        assert!(sel.outcome.is_first_choice(), "{name}");
        let stored = if in_mark { 3 } else { 0 };
        let again = h.select(sid(name), &r(&nhs), d, stored, !0).unwrap();
        assert_eq!(
            again,
            Selection {
                index: 1,
                outcome: Outcome::Remembered
            },
            "{name}"
        );
        nhs[1].admin_down = true;
        let moved = h.select(sid(name), &r(&nhs), d, stored, !0).unwrap();
        assert_eq!(
            moved.outcome,
            Outcome::Rechosen(Rechoose::StoredDead),
            "{name}"
        );
        assert_ne!(moved.index, 1, "{name}");
        // The new choice is remembered (the hook stores it in the mark).
        let stored = if in_mark { nhs[moved.index].uplink } else { 0 };
        let kept = h.select(sid(name), &r(&nhs), d, stored, !0).unwrap();
        assert_eq!(
            kept,
            Selection {
                index: moved.index,
                outcome: Outcome::Remembered
            },
            "{name}"
        );
    }
}

#[test]
fn remembered_tier_two_uplink_moves_back_to_tier_one() {
    for (name, in_mark) in rememberers() {
        let mut nhs = three();
        nhs[0].admin_down = true;
        nhs[1].admin_down = true;
        let mut h = Harness::new();
        let first = h.select(sid(name), &r(&nhs), 7, 0, !0).unwrap();
        assert_eq!(first.index, 2, "{name}");
        nhs[1].admin_down = false;
        let stored = if in_mark { 4 } else { 0 };
        let back = h.select(sid(name), &r(&nhs), 7, stored, !0).unwrap();
        assert_eq!(
            back,
            Selection {
                index: 1,
                outcome: Outcome::Rechosen(Rechoose::StoredDead)
            },
            "{name}"
        );
    }
}
