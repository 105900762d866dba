// SPDX-License-Identifier: GPL-2.0

//! The transmit rate estimator (`mpbal_core::estimator`).

mod common;

use common::config;
use mpbal_core::estimator::{headroom, RateEstimator, MAX_EWMA_LOG, SCALE_SHIFT};
use proptest::prelude::*;

/// Feeds `samples` intervals of `dt_ms` with `bytes` each, continuing from
/// `(t, total)`; returns the new `(t, total)`.
fn feed(
    est: &mut RateEstimator,
    (mut t, mut total): (u64, u64),
    dt_ms: u64,
    bytes: u64,
    samples: u32,
    log: u32,
) -> (u64, u64) {
    for _ in 0..samples {
        t += dt_ms;
        total += bytes;
        est.sample(t, total, log);
    }
    (t, total)
}

/// The rate a sample sees: whole bit/s, as the estimator divides.
fn sample_rate(bytes: u64, dt_ms: u64) -> u64 {
    bytes * 8 * 1000 / dt_ms
}

/// Error bound after `k` samples of a constant rate, starting `start_err`
/// bit/s away: the EWMA shrinks the error by `1 - 2^-log` per sample; the
/// floor of the shift leaves at most `2^log - 1` scaled units (< 0.25 bit/s
/// for log <= 8) and reading `rate_bps()` truncates one more bit/s.
fn bound(start_err: f64, log: u32, k: u32) -> f64 {
    let keep = 1.0 - 1.0 / f64::from(1u32 << log);
    start_err * keep.powi(k as i32) * (1.0 + 1e-12) + ((1u64 << log) as f64 / 1024.0) + 1.0
}

proptest! {
    #![proptest_config(config(512))]

    /// From the initial state, a constant rate R is approached from below
    /// with error <= R (1 - 2^-log)^k + rounding after k samples.
    #[test]
    fn converges_to_a_constant_rate(
        dt_ms in prop_oneof![Just(1u64), Just(100), Just(1000), 1u64..=10_000],
        bytes in prop_oneof![0u64..=1000, 1u64..=2_000_000_000],
        log in 0u32..=MAX_EWMA_LOG,
        k in 1u32..=200,
    ) {
        let mut est = RateEstimator::default();
        est.sample(5_000, 1 << 40, log); // primes
        prop_assert_eq!(est.rate_bps(), 0);
        let r = sample_rate(bytes, dt_ms);
        let mut at = (5_000, 1 << 40);
        for i in 1..=k {
            at = feed(&mut est, at, dt_ms, bytes, 1, log);
            let got = est.rate_bps();
            prop_assert!(got <= r, "overshoot: {} > {}", got, r);
            let err = (r - got) as f64;
            prop_assert!(err <= bound(r as f64, log, i), "after {} samples: {} vs {} (log {})", i, got, r, log);
        }
    }

    /// A step from one constant rate to another (up or down) converges the
    /// same way from wherever the estimate was.
    #[test]
    fn step_converges(
        dt_ms in prop_oneof![Just(1000u64), 1u64..=5000],
        before in 0u64..=1_250_000_000,
        after in 0u64..=1_250_000_000,
        warm in 0u32..=100,
        log in 0u32..=MAX_EWMA_LOG,
        k in 1u32..=100,
    ) {
        let mut est = RateEstimator::default();
        est.sample(0, 0, log);
        let at = feed(&mut est, (0, 0), dt_ms, before, warm, log);
        let start = est.rate_bps();
        let r = sample_rate(after, dt_ms);
        let mut at = at;
        for i in 1..=k {
            at = feed(&mut est, at, dt_ms, after, 1, log);
            let got = est.rate_bps();
            // The estimate is kept with 10 fraction bits, so it may start up
            // to one bit/s above what rate_bps() showed.
            let err = (got as f64 - r as f64).abs();
            let start_err = (start as f64 - r as f64).abs() + 1.0;
            prop_assert!(err <= bound(start_err, log, i), "step {} -> {}: after {} samples {} (log {})", start, r, i, got, log);
            // Never crosses to the other side of the target.
            if start <= r { prop_assert!(got <= r) } else { prop_assert!(got + 1 >= r) }
        }
    }

    /// Any sequence of samples, however large or odd, never panics and the
    /// estimate never exceeds the largest rate a sample can show.
    #[test]
    fn arbitrary_samples_never_panic(samples in prop::collection::vec((any::<u64>(), any::<u64>(), any::<u32>()), 1..50)) {
        let mut est = RateEstimator::default();
        for (t, b, log) in samples {
            est.sample(t, b, log);
            prop_assert!(est.rate_bps() <= u64::MAX >> SCALE_SHIFT);
        }
    }

    /// `headroom` is capacity minus rate, signed.
    #[test]
    fn headroom_is_signed_difference(cap in any::<u64>(), rate in any::<u64>()) {
        let h = headroom(cap, rate);
        let max = i64::MAX as u64;
        if cap <= max && rate <= max {
            prop_assert_eq!(i128::from(h), i128::from(cap) - i128::from(rate));
            prop_assert_eq!(h.signum(), (cap as i128 - rate as i128).signum() as i64);
        } else {
            // Clamped to i64::MAX on both sides: no overflow, sign kept or 0.
            let (c, r) = (cap.min(max) as i64, rate.min(max) as i64);
            prop_assert_eq!(h, c - r);
        }
    }
}

#[test]
fn first_sample_only_primes() {
    let mut est = RateEstimator::default();
    est.sample(1_000, 123_456_789, 3);
    assert_eq!(est.rate_bps(), 0);
    assert_eq!(est, {
        let mut e = RateEstimator::default();
        e.sample(1_000, 123_456_789, 0);
        e
    });
}

#[test]
fn log_zero_follows_each_sample() {
    let mut est = RateEstimator::default();
    est.sample(0, 0, 0);
    est.sample(1_000, 125_000_000, 0);
    assert_eq!(est.rate_bps(), 1_000_000_000);
    est.sample(1_500, 125_000_000 + 6_250_000, 0);
    assert_eq!(est.rate_bps(), 100_000_000);
}

#[test]
fn log_three_steps() {
    // 1 Gbit/s from zero with log 3: 1/8, then 1/8 of the rest, ...
    let mut est = RateEstimator::default();
    est.sample(0, 0, 3);
    let mut at = (0, 0);
    let mut expect = 0f64;
    for _ in 0..40 {
        at = feed(&mut est, at, 1000, 125_000_000, 1, 3);
        expect += (1e9 - expect) / 8.0;
        assert!((est.rate_bps() as f64 - expect).abs() <= 1.0);
    }
    // Step down to 100 Mbit/s.
    at = feed(&mut est, at, 1000, 12_500_000, 1, 3);
    let _ = at;
    let r = est.rate_bps() as f64;
    let expect = expect - (expect - 1e8) / 8.0;
    assert!((r - expect).abs() <= 1.0, "{r} vs {expect}");
}

#[test]
fn counter_reset_reprimes() {
    let mut est = RateEstimator::default();
    est.sample(0, 1_000_000_000, 0);
    est.sample(1_000, 1_000_000_000 + 1_250_000, 0);
    assert_eq!(est.rate_bps(), 10_000_000);
    // The device was reset (or the ifindex reused): the counter restarts.
    est.sample(2_000, 500, 0);
    assert_eq!(est.rate_bps(), 10_000_000, "reset sample only re-primes");
    est.sample(3_000, 500 + 2_500_000, 0);
    assert_eq!(est.rate_bps(), 20_000_000, "rate from the new base");
}

#[test]
fn clock_going_backwards_reprimes() {
    let mut est = RateEstimator::default();
    est.sample(10_000, 0, 0);
    est.sample(11_000, 125_000, 0);
    assert_eq!(est.rate_bps(), 1_000_000);
    est.sample(5_000, 250_000, 0);
    assert_eq!(est.rate_bps(), 1_000_000);
    est.sample(6_000, 250_000 + 250_000, 0);
    assert_eq!(est.rate_bps(), 2_000_000);
}

#[test]
fn zero_interval_is_ignored_without_losing_bytes() {
    let mut est = RateEstimator::default();
    est.sample(0, 0, 0);
    est.sample(1_000, 125, 0);
    assert_eq!(est.rate_bps(), 1_000);
    let before = est;
    est.sample(1_000, 250, 0);
    assert_eq!(est, before, "dt = 0: ignored entirely");
    // The bytes of the ignored sample count in the next interval.
    est.sample(2_000, 375, 0);
    assert_eq!(est.rate_bps(), 2_000);
}

#[test]
fn idle_link_decays_to_zero() {
    let mut est = RateEstimator::default();
    est.sample(0, 0, 3);
    let at = feed(&mut est, (0, 0), 1000, 125_000_000, 100, 3);
    assert!(est.rate_bps() > 999_000_000);
    feed(&mut est, at, 1000, 0, 400, 3);
    assert_eq!(est.rate_bps(), 0);
}

#[test]
fn huge_values_saturate() {
    let mut est = RateEstimator::default();
    est.sample(0, 0, 0);
    est.sample(1, u64::MAX, 0);
    assert_eq!(est.rate_bps(), u64::MAX >> SCALE_SHIFT);
    let mut est = RateEstimator::default();
    est.sample(u64::MAX - 1, 0, 8);
    est.sample(u64::MAX, u64::MAX / 2, 8);
    assert!(est.rate_bps() > 0);
    est.sample(u64::MAX, u64::MAX, 8); // dt = 0
                                       // 400 Gbit/s sampled every millisecond: no overflow, converges to
                                       // within the rounding of the fixed-point average.
    let mut est = RateEstimator::default();
    est.sample(0, 0, 3);
    feed(&mut est, (0, 0), 1, 50_000_000, 10_000, 3);
    assert!(400_000_000_000 - est.rate_bps() <= 1);
}

#[test]
fn ewma_log_is_clamped() {
    let run = |log: u32| {
        let mut est = RateEstimator::default();
        est.sample(0, 0, log);
        feed(&mut est, (0, 0), 1000, 1_000_000, 20, log);
        est.rate_bps()
    };
    assert_eq!(run(MAX_EWMA_LOG + 1), run(MAX_EWMA_LOG));
    assert_eq!(run(u32::MAX), run(MAX_EWMA_LOG));
    assert!(run(MAX_EWMA_LOG - 1) > run(MAX_EWMA_LOG));
}

#[test]
fn headroom_examples() {
    assert_eq!(headroom(1_000_000_000, 400_000_000), 600_000_000);
    assert_eq!(headroom(100, 100), 0);
    assert_eq!(headroom(100_000_000, 150_000_000), -50_000_000);
    assert_eq!(headroom(0, 7), -7);
    assert_eq!(headroom(u64::MAX, 0), i64::MAX);
    assert_eq!(headroom(0, u64::MAX), -i64::MAX);
}

#[test]
fn booked_rate_spreads_bits_over_the_interval() {
    use mpbal_core::estimator::booked_rate;
    // 250 kbit sent in a 250 ms interval is 1 Mbit/s of load, whenever in
    // the interval it is asked.
    assert_eq!(booked_rate(250_000, 250, 10), 1_000_000);
    assert_eq!(booked_rate(250_000, 250, 250), 1_000_000);
    // A late sample spreads the bits over the real window.
    assert_eq!(booked_rate(250_000, 250, 1000), 250_000);
    assert_eq!(booked_rate(0, 1000, 0), 0);
    // A zero window is treated as 1 ms; huge values saturate.
    assert_eq!(booked_rate(8, 0, 0), 8000);
    assert_eq!(booked_rate(u64::MAX, 1, 0), u64::MAX);
}
