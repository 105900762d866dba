//! What the bandwidth strategy reads of the uplinks, by uplink id: the
//! capacity, and the estimated rate plus the rate of what was sent since the
//! estimate (`estimator::booked_rate`).
//!
//! The kernel keeps one table per CPU, copied from the netns's uplink table
//! at each estimator sample, so a packet reads two plain arrays and shares no
//! cache line with other CPUs; tests fill one by hand. A concrete type
//! rather than a trait object: the strategy's scan over the nexthops then
//! compiles to array reads, with no call per candidate.

use super::estimator::booked_rate;
use super::strategy::UplinkLoad;

/// Uplink ids a table holds (1 to this): as many as a netns tracks.
pub const MAX_UPLINK_IDS: usize = 32;

/// Loads of uplinks 1 to [`MAX_UPLINK_IDS`]; all-zero is the empty table.
#[derive(Clone, Debug, Default)]
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct LoadTable {
    /// Bit `id - 1`: the uplink is tracked.
    tracked: u32,
    capacity_bps: [u64; MAX_UPLINK_IDS],
    /// The estimate at the last sample.
    estimate_bps: [u64; MAX_UPLINK_IDS],
    /// The estimate plus the rate of what was booked since, as of the last
    /// booking of that uplink.
    rate_bps: [u64; MAX_UPLINK_IDS],
    /// Bits booked since the estimate.
    bits: [u64; MAX_UPLINK_IDS],
    /// `bw_interval_ms` and the time since the estimate, for booking.
    interval_ms: u32,
    since_sample_ms: u64,
}

fn slot(id: u32) -> Option<usize> {
    (id as usize).checked_sub(1).filter(|&i| i < MAX_UPLINK_IDS)
}

impl LoadTable {
    /// No uplink tracked, nothing booked.
    pub fn clear(&mut self) {
        self.tracked = 0;
        self.bits = [0; MAX_UPLINK_IDS];
    }

    /// Uplink `id` is tracked with this estimate and capacity (0: unknown),
    /// and nothing booked since. Ids out of range are ignored.
    pub fn set(&mut self, id: u32, rate_bps: u64, capacity_bps: u64) -> &mut Self {
        if let Some(i) = slot(id) {
            self.tracked |= 1 << i;
            self.capacity_bps[i] = capacity_bps;
            self.estimate_bps[i] = rate_bps;
            self.rate_bps[i] = rate_bps;
            self.bits[i] = 0;
        }
        self
    }

    /// Uplink `id` is no longer tracked.
    pub fn untrack(&mut self, id: u32) {
        if let Some(i) = slot(id) {
            self.tracked &= !(1 << i);
        }
    }

    /// The sampling interval and the time since the last sample: what the
    /// next bookings are spread over.
    pub fn set_window(&mut self, interval_ms: u32, since_sample_ms: u64) {
        self.interval_ms = interval_ms;
        self.since_sample_ms = since_sample_ms;
    }

    /// Load of uplink `id`; `None` if it is not tracked.
    #[inline]
    pub fn load(&self, id: u32) -> Option<UplinkLoad> {
        let i = slot(id)?;
        (self.tracked & (1 << i) != 0).then(|| UplinkLoad {
            rate_bps: self.rate_bps[i],
            capacity_bps: self.capacity_bps[i],
        })
    }

    /// Accounts `bits` sent to uplink `id` since the estimate. When the next
    /// sample is late, an uplink not booked since keeps the booked rate of
    /// its last booking (the window it was spread over then).
    pub fn book(&mut self, id: u32, bits: u64) {
        let Some(i) = slot(id) else {
            return;
        };
        self.bits[i] = self.bits[i].saturating_add(bits);
        let booked = booked_rate(self.bits[i], self.interval_ms, self.since_sample_ms);
        self.rate_bps[i] = self.estimate_bps[i].saturating_add(booked);
    }

    /// Bits booked to uplink `id` since the estimate.
    pub fn booked_bits(&self, id: u32) -> u64 {
        slot(id).map_or(0, |i| self.bits[i])
    }
}
