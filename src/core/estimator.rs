// SPDX-License-Identifier: GPL-2.0

//! Per-device transmit rate estimator for the bandwidth strategy.
//!
//! The thesis sampled each interface every second and averaged over 8 s. We
//! keep an integer EWMA like `ip_vs_est.c`: every `bw_interval_ms` the sample
//! rate (bytes sent since the last sample over the elapsed time) moves the
//! average by `1 / 2^ewma_log` of the difference; `ewma_log = 3` averages over
//! about 8 samples. The average is kept scaled by 2^[`SCALE_SHIFT`] so small
//! rates and small steps don't vanish in integer division.

/// Fixed-point scaling of the stored average.
pub const SCALE_SHIFT: u32 = 10;

/// Largest accepted `ewma_log`.
pub const MAX_EWMA_LOG: u32 = 8;

/// Estimator state of one device. All-zero is the initial state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RateEstimator {
    last_bytes: u64,
    last_ms: u64,
    /// bit/s << SCALE_SHIFT.
    avg_scaled: u64,
    primed: bool,
}

impl RateEstimator {
    /// Feeds the device's cumulative tx byte counter at time `now_ms`.
    ///
    /// The first sample only primes the state. A counter that goes backwards
    /// (device reset, ifindex reuse) re-primes. A sample closer than 1 ms to
    /// the previous one is ignored.
    pub fn sample(&mut self, now_ms: u64, tx_bytes: u64, ewma_log: u32) {
        if !self.primed || tx_bytes < self.last_bytes || now_ms < self.last_ms {
            self.last_bytes = tx_bytes;
            self.last_ms = now_ms;
            self.primed = true;
            return;
        }
        let dt = now_ms - self.last_ms;
        if dt == 0 {
            return;
        }
        let bits = (tx_bytes - self.last_bytes).saturating_mul(8);
        let rate = bits.saturating_mul(1000) / dt;
        let sample = rate.saturating_mul(1 << SCALE_SHIFT);
        let log = ewma_log.min(MAX_EWMA_LOG);
        // avg += (sample - avg) >> log, on unsigned values.
        if sample >= self.avg_scaled {
            self.avg_scaled += (sample - self.avg_scaled) >> log;
        } else {
            self.avg_scaled -= (self.avg_scaled - sample) >> log;
        }
        self.last_bytes = tx_bytes;
        self.last_ms = now_ms;
    }

    /// The averaged rate in bit/s.
    pub fn rate_bps(&self) -> u64 {
        self.avg_scaled >> SCALE_SHIFT
    }
}

/// Unused bandwidth in bit/s; negative when the estimate exceeds capacity.
pub fn headroom(capacity_bps: u64, rate_bps: u64) -> i64 {
    let cap = capacity_bps.min(i64::MAX as u64) as i64;
    let rate = rate_bps.min(i64::MAX as u64) as i64;
    cap - rate
}

/// The rate, in bit/s, that `bits` sent since the last sample add to an
/// uplink's load: spread over the sampling interval, or over the time since
/// the sample if the next one is late (a starved worker must not turn a long
/// window's traffic into a burst).
///
/// Between two samples the estimate stands still; without this, every packet
/// of the interval would go to the one uplink that had the most headroom at
/// the last sample. Booking what has been sent since lets packets fill the
/// uplinks in order of headroom, the thesis's intent at sub-interval scale.
pub fn booked_rate(bits: u64, interval_ms: u32, since_sample_ms: u64) -> u64 {
    bits.saturating_mul(1000) / booking_window_ms(interval_ms, since_sample_ms)
}

/// Longest window bookings are spread over, ms: above the largest
/// `bw_interval_ms` (60 s), and small enough that a headroom times it stays
/// within 64 bits for any uplink below 2^47 bit/s.
pub const MAX_BOOKING_WINDOW_MS: u64 = 1 << 16;

/// The window of [`booked_rate`]: the sampling interval, or the time since
/// the sample if that is longer, at most [`MAX_BOOKING_WINDOW_MS`].
pub fn booking_window_ms(interval_ms: u32, since_sample_ms: u64) -> u64 {
    // Not `clamp`: the compiler then sees a divisor that is never 0, and
    // emits no panic path for `booked_rate`.
    match u64::from(interval_ms).max(since_sample_ms) {
        0 => 1,
        w => w.min(MAX_BOOKING_WINDOW_MS),
    }
}
