// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the integration tests (each test binary includes this
//! module with `mod common;` and uses only part of it).

#![allow(dead_code)]

use mpbal_core::loadtable::LoadTable;
use mpbal_core::nexthop::Nexthop;
use proptest::test_runner::{Config, RngSeed};

/// Proptest configuration: `cases` cases, a fixed seed unless the
/// environment chooses one (`PROPTEST_RNG_SEED`), and no regression files
/// written into the source tree.
pub fn config(cases: u32) -> Config {
    let base = Config::default();
    let rng_seed = match base.rng_seed {
        RngSeed::Random => RngSeed::Fixed(0x6d70_6261_6c00_0001),
        fixed => fixed,
    };
    Config {
        cases,
        rng_seed,
        failure_persistence: None,
        ..base
    }
}

/// `fib_rebalance()`'s upper bounds, written independently of
/// `mpbal_core::hashrange::upper_bounds`: 128-bit arithmetic, and
/// `DIV_ROUND_CLOSEST_ULL(x, d) = (x + d / 2) / d` followed by the C
/// assignment of `u64 - 1` to an `int` (the result always fits in
/// `-1..=i32::MAX`).
pub fn reference_upper_bounds(nexthops: &[(u32, bool)]) -> Vec<i32> {
    let total: u128 = nexthops
        .iter()
        .filter(|(_, alive)| *alive)
        .map(|&(w, _)| u128::from(w))
        .sum();
    let mut cum = 0u128;
    nexthops
        .iter()
        .map(|&(w, alive)| {
            if !alive || total == 0 {
                return -1;
            }
            cum += u128::from(w);
            let rounded = ((cum << 31) + total / 2) / total;
            i32::try_from(rounded as i128 - 1).expect("upper bound fits an int")
        })
        .collect()
}

/// Nexthops as the wrapper layer builds them from a `fib_info` whose
/// nexthops have these `(oif, weight, alive)`; `usable` = alive. Each is
/// its own uplink, with the oif as its id.
pub fn kernel_nexthops(spec: &[(u32, u32, bool)]) -> Vec<Nexthop> {
    let pairs: Vec<(u32, bool)> = spec.iter().map(|&(_, w, a)| (w, a)).collect();
    let bounds = reference_upper_bounds(&pairs);
    spec.iter()
        .zip(bounds)
        .map(|(&(oif, weight, alive), upper_bound)| Nexthop {
            oif,
            gw: 0,
            uplink: oif,
            weight,
            upper_bound,
            usable: alive,
            admin_down: false,
            tier: 1,
        })
        .collect()
}

/// Nexthops with oifs `10, 11, ...`, these weights, all alive.
pub fn live_nexthops(weights: &[u32]) -> Vec<Nexthop> {
    let spec: Vec<(u32, u32, bool)> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (10 + i as u32, w, true))
        .collect();
    kernel_nexthops(&spec)
}

/// The fixture loads: a [`LoadTable`] filled by hand (uplink ids are the
/// tests' ifindexes). Bookings are kept apart from the load here, so a test
/// sets exactly the load the strategy sees: the window (the time since the
/// sample) is so long that what is booked adds nothing to the rate.
pub fn loads() -> LoadTable {
    let mut t = LoadTable::default();
    t.set_window(1, u64::MAX);
    t
}

/// A small deterministic PRNG (xorshift64*) for tests that want many
/// reproducible values without proptest's shrinking.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform-ish in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
