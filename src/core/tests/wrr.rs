// SPDX-License-Identifier: GPL-2.0

//! Smooth weighted round-robin (`mpbal_core::wrr`).
//!
//! Notation: `W` = sum of the weights of the masked nexthops, `N` = number of
//! masked nexthops, `c_i(n)` = picks of nexthop `i` among the first `n`
//! picks after a (re)start, `err_i(n) = c_i(n) - n * w_i / W`.
//!
//! The implementation keeps `current_i = n * w_i - W * c_i(n)`, so
//! `err_i(n) = -current_i / W`. Bounds:
//!
//! * Proved: after every pick `sum(current) = 0` and every
//!   `current_i > -W` (the winner had at least the average `W / N > 0` before
//!   losing `W`; losers only grow). Hence over-service `err_i < 1` and
//!   under-service `-err_i < N - 1`, so `|err_i| < max(1, N - 1) < N`: the
//!   expected "< number of nexthops" holds.
//! * Measured (exhaustive search N <= 4 with weights <= 30, random and
//!   hill-climbing search over weights 1..=256 for N <= 16): over-service
//!   stays below 1 (largest seen 0.94), under-service grows slowly with N:
//!   0.5 (N=2), 0.825 (N=3), 1.0 (N=4), 1.195 (N=5), 1.44 (N=8),
//!   1.58 (N=12), 1.7066 = 1483/869 (N=16, `WORST_UNDER_SERVICE_16`; three
//!   independent searches converged on it). So the tight bound for N <= 16
//!   is 1.7066 as far as search can tell: `|err_i(n)| < 2` at every prefix,
//!   which the property tests assert along with the proved bounds. It is
//!   NOT below 1 from N = 4 on, so "within one pick" only holds for <= 3
//!   nexthops.
//! * Runs: a run of `k` consecutive picks of nexthop `i` (with `w_i < W`)
//!   goes from `c(a)` to `c(a) + k`, so from the two error bounds
//!   `k * (W - w_i) < (1 + U) * W`, where `U` bounds the under-service:
//!   proved `k < N * W / (W - w_i)`. Measured: `k * (W - w_i) / W` peaks at
//!   `2 (N - 1) / N` (0.998 for N=2, 1.33 for N=3, 1.75 for N=8, 1.87 for
//!   N=16: near-equal weights with one nexthop one heavier, a run of two
//!   across the period boundary), so `k < 2 W / (W - w_i)`, asserted too.
//!   Runs are not `ceil(w / (W - w))`: `[256, 1, 1]` has a run of 171 where
//!   `W / (W - w) = 129`.

mod common;

use common::{config, live_nexthops, Rng};
use mpbal_core::nexthop::{Nexthop, NexthopMask, Route};
use mpbal_core::wrr::{WrrCache, WrrState, SIG_LAPS, WRR_PERIOD_MAX};
use proptest::prelude::*;

/// Weights for which the under-service reaches 1.7066 with 16 nexthops
/// (found by hill-climbing).
const WORST_UNDER_SERVICE_16: [u32; 16] = [1, 256, 1, 256, 5, 1, 37, 1, 37, 1, 1, 256, 1, 5, 5, 5];

/// `n` picks from a fresh state.
fn picks(route: &Route<'_>, mask: NexthopMask, n: usize) -> Vec<usize> {
    let mut st = WrrState::ZERO;
    (0..n)
        .map(|_| st.pick(route, mask).expect("non-empty mask"))
        .collect()
}

/// Masked weights, `W` and `N`.
fn masked(nhs: &[Nexthop], mask: NexthopMask) -> (Vec<i64>, i64, usize) {
    let w: Vec<i64> = nhs
        .iter()
        .enumerate()
        .map(|(i, nh)| {
            if mask & (1 << i) != 0 {
                i64::from(nh.weight)
            } else {
                0
            }
        })
        .collect();
    let total = w.iter().sum();
    let n = w.iter().filter(|&&x| x > 0).count();
    (w, total, n)
}

/// Largest over- and under-service over the first `len` picks of `seq`,
/// scaled by `W` (so an error of 1 pick is `W`).
fn scaled_errors(seq: &[usize], w: &[i64], total: i64) -> (i64, i64) {
    let mut count = vec![0i64; w.len()];
    let (mut over, mut under) = (0i64, 0i64);
    for (n, &p) in seq.iter().enumerate() {
        count[p] += 1;
        let n = n as i64 + 1;
        for i in 0..w.len() {
            let e = count[i] * total - n * w[i];
            over = over.max(e);
            under = under.max(-e);
        }
    }
    (over, under)
}

/// Weight vectors (1..=16 nexthops, weights 1..=256) and a non-empty mask
/// over them. Half the time the mask is full.
fn weights_and_mask() -> impl Strategy<Value = (Vec<u32>, NexthopMask)> {
    prop::collection::vec(1u32..=256, 1..=16).prop_flat_map(|w| {
        let n = w.len();
        let full: NexthopMask = (1 << n) - 1;
        (
            Just(w),
            prop_oneof![Just(full), (1..=full)].prop_map(move |m| m & full),
        )
    })
}

/// Weight vectors biased towards the shapes that stress WRR: a few heavy
/// nexthops among many light ones.
fn skewed_weights() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(
        prop_oneof![1u32..=3, 4u32..=64, Just(256u32), 200u32..=256],
        1..=16,
    )
}

proptest! {
    #![proptest_config(config(256))]

    /// Every window of `W` consecutive picks holds each masked nexthop
    /// exactly `weight` times, and only masked nexthops are picked.
    #[test]
    fn every_window_of_w_picks_has_exact_counts((weights, mask) in weights_and_mask(), key in 1usize..) {
        let nhs = live_nexthops(&weights);
        let route = Route::new(key, &nhs);
        let (w, total, _) = masked(&nhs, mask);
        let total = total as usize;
        let seq = picks(&route, mask, 3 * total);
        let mut count = vec![0usize; w.len()];
        for (t, &p) in seq.iter().enumerate() {
            prop_assert!(mask & (1 << p) != 0, "picked masked-out nexthop {}", p);
            count[p] += 1;
            if t >= total {
                count[seq[t - total]] -= 1;
            }
            if t + 1 >= total {
                for i in 0..w.len() {
                    prop_assert_eq!(count[i] as i64, w[i], "window ending at {}", t);
                }
            }
        }
    }

    /// Picks given back (a CPU that lost a race for a new destination) leave
    /// no trace: after any mix of kept and returned picks, each nexthop's
    /// share of the kept ones is within the same bound as plain picking.
    #[test]
    fn unpicked_picks_leave_no_trace((weights, mask) in weights_and_mask(), undo in prop::collection::vec(any::<bool>(), 1..200)) {
        let nhs = live_nexthops(&weights);
        let route = Route::new(1, &nhs);
        let (w, total, n) = masked(&nhs, mask);
        let mut st = WrrState::default();
        let mut kept = vec![0i64; w.len()];
        let mut rounds = 0i64;
        for u in undo {
            let Some(i) = st.pick(&route, mask) else { break };
            if u {
                st.unpick(&route, mask, i);
            } else {
                kept[i] += 1;
                rounds += 1;
            }
        }
        for i in 0..w.len() {
            // err_i = kept_i - rounds * w_i / W, scaled by W.
            let err = kept[i] * total - rounds * w[i];
            prop_assert!(err < total && -err < (n as i64).max(2) * total,
                "nexthop {}: {} kept of {} rounds (weight {}/{})", i, kept[i], rounds, w[i], total);
        }
    }

    /// The count error at every prefix: over-service < 1 and under-service
    /// < N - 1 (proved), and |error| < 2 (measured tight bound for N <= 16).
    #[test]
    fn prefix_error_is_bounded((weights, mask) in weights_and_mask()) {
        check_prefix_error(&weights, mask)?;
    }

    #[test]
    fn prefix_error_is_bounded_skewed(weights in skewed_weights()) {
        let mask = (1 << weights.len()) - 1;
        check_prefix_error(&weights, mask)?;
    }

    /// No nexthop of weight `w < W` is picked `k` times in a row with
    /// `k * (W - w) >= N * W` (proved) or `>= 2 * W` (measured; see the
    /// module comment); checked over two periods so runs across the period
    /// boundary count.
    #[test]
    fn runs_are_bounded(weights in skewed_weights()) {
        let nhs = live_nexthops(&weights);
        let route = Route::new(7, &nhs);
        let mask = (1 << weights.len()) - 1;
        let (w, total, n) = masked(&nhs, mask);
        let seq = picks(&route, mask, 2 * total as usize);
        let mut run = 0i64;
        for (t, &p) in seq.iter().enumerate() {
            run = if t > 0 && seq[t - 1] == p { run + 1 } else { 1 };
            if w[p] < total {
                prop_assert!(
                    run * (total - w[p]) < n as i64 * total,
                    "nexthop {} (w={}, W={}) picked {} times in a row", p, w[p], total, run
                );
                prop_assert!(
                    run * (total - w[p]) < 2 * total,
                    "nexthop {} (w={}, W={}) picked {} times in a row", p, w[p], total, run
                );
            }
        }
    }

    /// A state built for one route restarts on another route key: the picks
    /// equal those of a fresh state. Coming back to the first key restarts
    /// again rather than resuming.
    #[test]
    fn route_key_change_restarts((weights, mask) in weights_and_mask(), before in 0usize..50, after in 1usize..50) {
        let nhs = live_nexthops(&weights);
        let a = Route::new(0x1000, &nhs);
        let b = Route::new(0x2000, &nhs);
        let mut st = WrrState::ZERO;
        for _ in 0..before {
            st.pick(&a, mask);
        }
        let got: Vec<usize> = (0..after).map(|_| st.pick(&b, mask).unwrap()).collect();
        prop_assert_eq!(&got, &picks(&b, mask, after));
        let back: Vec<usize> = (0..after).map(|_| st.pick(&a, mask).unwrap()).collect();
        prop_assert_eq!(&back, &picks(&a, mask, after));
    }

    /// A changed candidate set restarts the rotation: no burst for a
    /// nexthop that comes back.
    #[test]
    fn mask_change_restarts((weights, mask) in weights_and_mask(), before in 0usize..50, after in 1usize..50) {
        let nhs = live_nexthops(&weights);
        let route = Route::new(3, &nhs);
        let full: NexthopMask = (1 << weights.len()) - 1;
        let mut st = WrrState::ZERO;
        for _ in 0..before {
            st.pick(&route, mask);
        }
        let other = if mask == full { 1 } else { full };
        let got: Vec<usize> = (0..after).map(|_| st.pick(&route, other).unwrap()).collect();
        prop_assert_eq!(got, picks(&route, other, after));
    }

    /// Nexthops the route marks unusable, or whose hash range is empty,
    /// are never picked through `usable_mask()`.
    #[test]
    fn unusable_nexthops_never_picked(
        spec in prop::collection::vec((1u32..=256, any::<bool>(), any::<bool>()), 1..=16),
    ) {
        let kernel: Vec<(u32, u32, bool)> = spec
            .iter()
            .enumerate()
            .map(|(i, &(w, alive, _))| (i as u32 + 1, w, alive))
            .collect();
        let mut nhs = common::kernel_nexthops(&kernel);
        // Linkdown: the kernel keeps its hash range, mpbal must not pick it.
        for (nh, &(_, _, linkdown)) in nhs.iter_mut().zip(&spec) {
            if linkdown {
                nh.usable = false;
            }
        }
        let route = Route::new(9, &nhs);
        let mask = route.usable_mask();
        let mut st = WrrState::ZERO;
        for _ in 0..600 {
            match st.pick(&route, mask) {
                None => prop_assert_eq!(mask, 0),
                Some(i) => {
                    prop_assert!(nhs[i].usable);
                    prop_assert!(nhs[i].upper_bound >= 0);
                    prop_assert!(mask & (1 << i) != 0);
                }
            }
        }
    }
}

/// Smooth WRR the plain way, one pass per pick: what `WrrState` must
/// match whether it scans or replays a recorded period.
struct Reference {
    current: Vec<i64>,
}

impl Reference {
    fn new(n: usize) -> Self {
        Reference {
            current: vec![0; n],
        }
    }

    fn pick(&mut self, w: &[i64]) -> usize {
        let total: i64 = w.iter().sum();
        let mut best = usize::MAX;
        for (i, &wi) in w.iter().enumerate() {
            if wi == 0 {
                continue;
            }
            self.current[i] += wi;
            if best == usize::MAX || self.current[i] > self.current[best] {
                best = i;
            }
        }
        self.current[best] -= total;
        best
    }

    fn unpick(&mut self, w: &[i64], i: usize) {
        let total: i64 = w.iter().sum();
        for (c, &wi) in self.current.iter_mut().zip(w) {
            *c -= wi;
        }
        self.current[i] += total;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Recording and replaying a period is invisible: many periods of
    /// picks, with picks given back at any point (which ends the replay),
    /// equal the plain algorithm's.
    #[test]
    fn replay_matches_plain_wrr(
        weights in prop::collection::vec(1u32..=4, 1..=16),
        ops in prop::collection::vec(0u8..16, 1..400),
    ) {
        let nhs = live_nexthops(&weights);
        let route = Route::new(0x40, &nhs);
        let mask = (1 << weights.len()) - 1;
        let (w, _, _) = masked(&nhs, mask);
        let mut st = WrrState::ZERO;
        let mut plain = Reference::new(w.len());
        for (t, op) in ops.into_iter().enumerate() {
            let got = st.pick(&route, mask).unwrap();
            prop_assert_eq!(got, plain.pick(&w), "pick {}", t);
            // Rarely give it back, as a CPU that lost a race does.
            if op == 0 {
                st.unpick(&route, mask, got);
                plain.unpick(&w, got);
            }
        }
    }
}

/// A freed `fib_info` whose address comes back with other weights (same
/// key, same mask): the replay notices within `SIG_LAPS` periods and
/// follows the new weights.
#[test]
fn reused_route_key_with_other_weights_starts_over() {
    let old = live_nexthops(&[1, 3]);
    let new = live_nexthops(&[3, 1]);
    let mut st = WrrState::ZERO;
    for _ in 0..10 {
        st.pick(&Route::new(0x80, &old), 0b11);
    }
    let route = Route::new(0x80, &new);
    let laps = 4 * usize::from(SIG_LAPS);
    let seq: Vec<usize> = (0..laps + 40)
        .map(|_| st.pick(&route, 0b11).unwrap())
        .collect();
    // At most SIG_LAPS old periods (of 4 picks) go by; from then on every
    // window of 4 picks holds the new weights exactly.
    for win in seq[laps..].windows(4) {
        assert_eq!(win.iter().filter(|&&i| i == 0).count(), 3, "{seq:?}");
    }
}

/// Weights summing to more than a period can hold keep scanning, and stay
/// exact.
#[test]
fn long_period_keeps_scanning() {
    let weights = [WRR_PERIOD_MAX as u32, 1];
    let nhs = live_nexthops(&weights);
    let route = Route::new(1, &nhs);
    let (w, total, _) = masked(&nhs, 0b11);
    let mut plain = Reference::new(2);
    let seq = picks(&route, 0b11, 3 * total as usize);
    let expect: Vec<usize> = (0..seq.len()).map(|_| plain.pick(&w)).collect();
    assert_eq!(seq, expect);
}

fn check_prefix_error(weights: &[u32], mask: NexthopMask) -> Result<(), TestCaseError> {
    let nhs = live_nexthops(weights);
    let route = Route::new(5, &nhs);
    let (w, total, n) = masked(&nhs, mask);
    // The sequence has period W, so one period covers every prefix.
    let seq = picks(&route, mask, total as usize);
    let (over, under) = scaled_errors(&seq, &w, total);
    prop_assert!(over < total, "over-service {}/{} >= 1", over, total);
    if n >= 2 {
        prop_assert!(
            under < (n as i64 - 1) * total,
            "under-service {}/{} >= N-1",
            under,
            total
        );
    } else {
        prop_assert_eq!(under, 0);
    }
    prop_assert!(under < 2 * total, "under-service {}/{} >= 2", under, total);
    Ok(())
}

#[test]
fn worst_known_under_service_is_attained() {
    let nhs = live_nexthops(&WORST_UNDER_SERVICE_16);
    let route = Route::new(1, &nhs);
    let mask = (1 << 16) - 1;
    let (w, total, _) = masked(&nhs, mask);
    let seq = picks(&route, mask, total as usize);
    let (over, under) = scaled_errors(&seq, &w, total);
    // 1.7066 picks behind: an error bound below 1.7 would be wrong.
    assert_eq!(total, 869);
    assert_eq!(under, 1483, "under-service {under}/{total}");
    assert!(over < total);
}

#[test]
fn long_run_of_a_heavy_nexthop() {
    let nhs = live_nexthops(&[256, 1, 1]);
    let route = Route::new(1, &nhs);
    let seq = picks(&route, 0b111, 2 * 258);
    let mut longest = 0;
    let mut run = 0;
    for (t, &p) in seq.iter().enumerate() {
        run = if t > 0 && seq[t - 1] == p { run + 1 } else { 1 };
        if p == 0 {
            longest = longest.max(run);
        }
    }
    // W / (W - w) = 129, but the phase of the two light nexthops makes a
    // run of 171 across the period boundary (measured bound 2 * 129).
    assert_eq!(longest, 171);
}

#[test]
fn weights_one_two_three() {
    let nhs = live_nexthops(&[1, 2, 3]);
    let route = Route::new(1, &nhs);
    // current after adding: [1,2,3] -> 2; [2,4,0] -> 1; [3,0,3] -> 0 (ties
    // go to the lower index); [-2,2,6] -> 2; [-1,4,3] -> 1; [0,0,6] -> 2,
    // back to all zero: smooth, not 0,1,1,2,2,2.
    assert_eq!(
        picks(&route, 0b111, 12),
        [2, 1, 0, 2, 1, 2, 2, 1, 0, 2, 1, 2]
    );
}

#[test]
fn empty_mask_picks_nothing() {
    let nhs = live_nexthops(&[1, 2, 3]);
    let route = Route::new(1, &nhs);
    let mut st = WrrState::ZERO;
    assert_eq!(st.pick(&route, 0), None);
    // Bits past the end of the route select nothing either.
    assert_eq!(st.pick(&route, 1 << 3), None);
    assert_eq!(st.pick(&route, 0xffff_0000), None);
    // And an empty route.
    let empty = Route::new(2, &[]);
    assert_eq!(st.pick(&empty, 0xffff_ffff), None);
    // The state still works afterwards.
    assert!(st.pick(&route, 0b111).is_some());
}

#[test]
fn single_candidate_always_picked() {
    let nhs = live_nexthops(&[5, 7, 9, 11]);
    let route = Route::new(1, &nhs);
    let mut st = WrrState::ZERO;
    for _ in 0..100 {
        assert_eq!(st.pick(&route, 0b0100), Some(2));
    }
}

#[test]
fn default_equals_zero_state() {
    let nhs = live_nexthops(&[3, 1, 4, 1, 5]);
    let route = Route::new(1, &nhs);
    let mut a = WrrState::default();
    let mut b = WrrState::ZERO;
    for _ in 0..50 {
        assert_eq!(a.pick(&route, 0b11111), b.pick(&route, 0b11111));
    }
}

#[test]
fn route_key_zero_works() {
    // The zero state has key 0 and mask 0; a route with key 0 must still
    // rotate correctly.
    let nhs = live_nexthops(&[1, 1]);
    let route = Route::new(0, &nhs);
    assert_eq!(picks(&route, 0b11, 4), [0, 1, 0, 1]);
}

#[test]
fn weights_above_256_are_clamped() {
    let mut nhs = live_nexthops(&[256, 1]);
    let route = Route::new(1, &nhs);
    let expected = picks(&route, 0b11, 600);
    nhs[0].weight = u32::MAX;
    let route = Route::new(1, &nhs);
    assert_eq!(picks(&route, 0b11, 600), expected);
}

#[test]
fn many_random_vectors_error_below_two() {
    // A deterministic sweep beyond the proptest cases, in the shapes that
    // stress the under-service most.
    let mut rng = Rng::new(42);
    for _ in 0..300 {
        let n = 1 + rng.below(16) as usize;
        let weights: Vec<u32> = (0..n)
            .map(|_| match rng.below(4) {
                0 => 1,
                1 => 256,
                2 => 1 + rng.below(8) as u32,
                _ => 1 + rng.below(256) as u32,
            })
            .collect();
        check_prefix_error(&weights, (1 << n) - 1).unwrap();
    }
}

#[test]
fn cache_keeps_one_state_per_route() {
    let nhs = live_nexthops(&[1, 2, 3]);
    let a = Route::new(0xffff_8880_0000_1000, &nhs);
    let mut cache = WrrCache::default();
    let mut got = Vec::new();
    for _ in 0..12 {
        got.push(cache.for_route(a.key).pick(&a, 0b111).unwrap());
    }
    assert_eq!(got, picks(&a, 0b111, 12));
    // Routes in different slots do not disturb each other.
    let b = Route::new(a.key + 64, &nhs);
    let mut interleaved = Vec::new();
    for _ in 0..12 {
        interleaved.push(cache.for_route(a.key).pick(&a, 0b111).unwrap());
        cache.for_route(b.key).pick(&b, 0b111).unwrap();
    }
    assert_eq!(interleaved, picks(&a, 0b111, 12));
}
