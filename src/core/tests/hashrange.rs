// SPDX-License-Identifier: GPL-2.0

//! Steering through the kernel's hash-threshold multipath choice
//! (`mpbal_core::hashrange`), checked against an independent model of
//! `fib_rebalance()` and `fib_select_multipath()`.

mod common;

use common::{config, kernel_nexthops, reference_upper_bounds};
use mpbal_core::hashrange::{
    range_of, ranges, select_by_hash, skb_hash_for, skb_hash_in, upper_bounds,
};
use mpbal_core::nexthop::{Nexthop, Route};
use proptest::prelude::*;

/// 2^31: the 31-bit hash space is `0..SPACE`.
const SPACE: u64 = 1 << 31;

/// `(weight, alive)` for 1..=16 nexthops, weights 1..=256.
fn weights_alive() -> impl Strategy<Value = Vec<(u32, bool)>> {
    prop::collection::vec((1u32..=256, prop::bool::weighted(0.8)), 1..=16)
}

fn nexthops_of(pairs: &[(u32, bool)]) -> Vec<Nexthop> {
    let spec: Vec<(u32, u32, bool)> = pairs
        .iter()
        .enumerate()
        .map(|(i, &(w, a))| (i as u32 + 2, w, a))
        .collect();
    kernel_nexthops(&spec)
}

/// `fib_select_multipath()` on a 31-bit hash, written from the kernel
/// source: the first nexthop with `hash <= upper_bound` (signed compare).
fn kernel_select(nhs: &[Nexthop], h: u32) -> Option<usize> {
    let h = h as i32;
    nhs.iter().position(|nh| h <= nh.upper_bound)
}

proptest! {
    #![proptest_config(config(512))]

    /// `upper_bounds()` equals `fib_rebalance()` (here in 128-bit
    /// arithmetic) for every weight/alive vector.
    #[test]
    fn upper_bounds_match_kernel(pairs in weights_alive()) {
        let mut out = vec![0x5555_5555i32; pairs.len()];
        upper_bounds(&pairs, &mut out);
        prop_assert_eq!(out, reference_upper_bounds(&pairs));
    }

    /// For every live nexthop and any entropy, the raw hash steers the
    /// kernel to exactly that nexthop; dead ones get `None`.
    #[test]
    fn skb_hash_selects_its_nexthop(
        pairs in weights_alive(),
        entropies in prop::collection::vec(any::<u32>(), 32),
    ) {
        let nhs = nexthops_of(&pairs);
        for (i, &(_, alive)) in pairs.iter().enumerate() {
            let specials = [0, 1, 2, u32::MAX, u32::MAX - 1, 1 << 31, (1 << 31) - 1];
            for &e in entropies.iter().chain(&specials) {
                let got = skb_hash_for(&nhs, i, e);
                if !alive {
                    prop_assert_eq!(got, None);
                    continue;
                }
                let raw = got.expect("live nexthop has a hash");
                prop_assert_eq!(select_by_hash(&nhs, raw >> 1), Some(i));
                prop_assert_eq!(kernel_select(&nhs, raw >> 1), Some(i));
                // fib_multipath_hash() drops the low bit; it carries entropy.
                prop_assert_eq!(raw & 1, e & 1);
            }
        }
    }

    /// The one-pass `ranges()` a route copy keeps gives what `range_of()`
    /// does for every nexthop, and `skb_hash_in()` on it what
    /// `skb_hash_for()` does.
    #[test]
    fn ranges_match_range_of(pairs in weights_alive(), e in any::<u32>()) {
        let nhs = nexthops_of(&pairs);
        let all = ranges(&nhs);
        for (i, &(lo, hi)) in all.iter().enumerate().take(nhs.len()) {
            let want = range_of(&nhs, i);
            prop_assert_eq!((lo <= hi).then_some((lo, hi)), want);
            let got = (lo <= hi).then(|| skb_hash_in(lo, hi, e));
            prop_assert_eq!(got, skb_hash_for(&nhs, i, e));
        }
    }

    /// Entropy 0 hits the low end of the range and `u32::MAX` the high end;
    /// in between the hash is the entropy scaled into the range, so flows
    /// spread over all of it.
    #[test]
    fn entropy_scales_over_the_whole_range(pairs in weights_alive(), e in any::<u32>()) {
        let nhs = nexthops_of(&pairs);
        for i in 0..nhs.len() {
            let Some((lo, hi)) = range_of(&nhs, i) else { continue };
            prop_assert_eq!(skb_hash_for(&nhs, i, 0).unwrap() >> 1, lo);
            prop_assert_eq!(skb_hash_for(&nhs, i, u32::MAX).unwrap() >> 1, hi);
            let width = u128::from(hi - lo) + 1;
            let expect = u128::from(lo) + ((u128::from(e) * width) >> 32);
            prop_assert_eq!(u128::from(skb_hash_for(&nhs, i, e).unwrap() >> 1), expect);
        }
    }

    /// The ranges of the live nexthops, in order, tile `[0, 2^31)`: no gap,
    /// no overlap; dead nexthops have no range. Every hash selects the
    /// nexthop whose range holds it.
    #[test]
    fn ranges_tile_the_hash_space(pairs in weights_alive(), probes in prop::collection::vec(0u32..(1 << 31), 16)) {
        let nhs = nexthops_of(&pairs);
        let mut next = 0u64;
        let mut ranges = Vec::new();
        for (i, &(w, alive)) in pairs.iter().enumerate() {
            match range_of(&nhs, i) {
                None => prop_assert!(!alive, "live nexthop {} (w={}) has no range", i, w),
                Some((lo, hi)) => {
                    prop_assert!(alive);
                    prop_assert_eq!(u64::from(lo), next, "gap or overlap before {}", i);
                    prop_assert!(lo <= hi);
                    // Width proportional to the weight, within rounding.
                    let total: u64 = pairs.iter().filter(|p| p.1).map(|p| u64::from(p.0)).sum();
                    let ideal = SPACE as f64 * f64::from(w) / total as f64;
                    prop_assert!((f64::from(hi - lo + 1) - ideal).abs() <= 1.0);
                    next = u64::from(hi) + 1;
                    ranges.push((lo, hi, i));
                }
            }
        }
        if pairs.iter().any(|p| p.1) {
            prop_assert_eq!(next, SPACE, "ranges do not reach 2^31 - 1");
        } else {
            prop_assert!(ranges.is_empty());
        }
        for h in probes.into_iter().chain([0, (1 << 31) - 1]) {
            let owner = ranges.iter().find(|r| r.0 <= h && h <= r.1).map(|r| r.2);
            prop_assert_eq!(select_by_hash(&nhs, h), owner);
            prop_assert_eq!(kernel_select(&nhs, h), owner);
        }
    }

    /// `usable_mask()` holds exactly the usable nexthops with a range.
    #[test]
    fn usable_mask_matches_ranges(pairs in weights_alive(), linkdown in any::<u16>()) {
        let mut nhs = nexthops_of(&pairs);
        for (i, nh) in nhs.iter_mut().enumerate() {
            if linkdown & (1 << i) != 0 {
                nh.usable = false;
            }
        }
        let route = Route::new(1, &nhs);
        let mask = route.usable_mask();
        for (i, nh) in nhs.iter().enumerate() {
            let expect = nh.usable && range_of(&nhs, i).is_some();
            prop_assert_eq!(mask & (1 << i) != 0, expect, "nexthop {}", i);
        }
        prop_assert_eq!(mask >> nhs.len(), 0);
    }
}

#[test]
fn upper_bounds_single_live_nexthop() {
    // One live nexthop owns the whole space: DIV_ROUND_CLOSEST_ULL(1 << 31,
    // 1) - 1 = 2^31 - 1 = i32::MAX.
    let mut out = [0i32; 1];
    upper_bounds(&[(1, true)], &mut out);
    assert_eq!(out, [i32::MAX]);
}

#[test]
fn upper_bounds_examples() {
    let mut out = [0i32; 3];
    upper_bounds(&[(1, true), (1, true), (2, true)], &mut out);
    assert_eq!(out, [(1 << 29) - 1, (1 << 30) - 1, i32::MAX]);

    let mut out = [0i32; 3];
    upper_bounds(&[(1, true), (5, false), (1, true)], &mut out);
    assert_eq!(out, [(1 << 30) - 1, -1, i32::MAX]);

    let mut out = [7i32; 2];
    upper_bounds(&[(1, false), (1, false)], &mut out);
    assert_eq!(out, [-1, -1]);
}

#[test]
fn reference_model_examples() {
    // The independent model on the same examples, so a wrong model cannot
    // hide a wrong implementation.
    assert_eq!(reference_upper_bounds(&[(1, true)]), [i32::MAX]);
    assert_eq!(
        reference_upper_bounds(&[(1, true), (1, true), (2, true)]),
        [(1 << 29) - 1, (1 << 30) - 1, i32::MAX]
    );
    // 1/3 and 2/3 of 2^31 round to the closest integer.
    assert_eq!(
        reference_upper_bounds(&[(1, true), (1, true), (1, true)]),
        [715_827_882, 1_431_655_764, i32::MAX]
    );
}

#[test]
fn empty_range_gets_no_hash() {
    // A nexthop whose bound does not exceed an earlier one is unreachable.
    let mk = |ub: i32| Nexthop {
        oif: 1,
        gw: 0,
        uplink: 1,
        weight: 1,
        upper_bound: ub,
        usable: true,
        admin_down: false,
        tier: 1,
    };
    let nhs = [mk(1000), mk(1000), mk(500), mk(i32::MAX)];
    assert_eq!(range_of(&nhs, 0), Some((0, 1000)));
    assert_eq!(range_of(&nhs, 1), None);
    assert_eq!(range_of(&nhs, 2), None);
    assert_eq!(range_of(&nhs, 3), Some((1001, i32::MAX as u32)));
    assert_eq!(skb_hash_for(&nhs, 1, 12345), None);
    assert_eq!(skb_hash_for(&nhs, 2, 12345), None);
    assert_eq!(skb_hash_for(&nhs, 4, 12345), None, "index past the end");
    let route = Route::new(1, &nhs);
    assert_eq!(route.usable_mask(), 0b1001);
}

#[test]
fn one_wide_range() {
    // A range of a single hash value: every entropy maps onto it.
    let mk = |ub: i32| Nexthop {
        oif: 1,
        gw: 0,
        uplink: 1,
        weight: 1,
        upper_bound: ub,
        usable: true,
        admin_down: false,
        tier: 1,
    };
    let nhs = [mk(41), mk(42), mk(i32::MAX)];
    for e in [0, 1, 77, u32::MAX] {
        assert_eq!(skb_hash_for(&nhs, 1, e).unwrap() >> 1, 42);
    }
}

#[test]
fn all_dead_selects_nothing() {
    let nhs = nexthops_of(&[(3, false), (4, false)]);
    assert_eq!(select_by_hash(&nhs, 0), None);
    assert_eq!(select_by_hash(&nhs, (1 << 31) - 1), None);
    assert_eq!(skb_hash_for(&nhs, 0, 0), None);
}
