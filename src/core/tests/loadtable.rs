//! The bandwidth strategy's per-CPU load table (`mpbal_core::loadtable`).

use mpbal_core::estimator::booked_rate;
use mpbal_core::loadtable::{LoadTable, MAX_UPLINK_IDS};
use mpbal_core::strategy::UplinkLoad;

const M: u64 = 1_000_000;

#[test]
fn set_tracks_and_untrack_forgets() {
    let mut t = LoadTable::default();
    assert_eq!(t.load(1), None, "all-zero is the empty table");
    t.set(1, 5 * M, 100 * M).set(MAX_UPLINK_IDS as u32, 1, 0);
    assert_eq!(
        t.load(1),
        Some(UplinkLoad {
            rate_bps: 5 * M,
            capacity_bps: 100 * M
        })
    );
    assert_eq!(t.load(MAX_UPLINK_IDS as u32).map(|l| l.rate_bps), Some(1));
    t.untrack(1);
    assert_eq!(t.load(1), None);
    t.clear();
    assert_eq!(t.load(MAX_UPLINK_IDS as u32), None);
}

#[test]
fn ids_out_of_range_are_ignored() {
    let mut t = LoadTable::default();
    for id in [0, MAX_UPLINK_IDS as u32 + 1, u32::MAX] {
        t.set(id, 1, 1);
        t.book(id, 1000);
        assert_eq!(t.load(id), None);
        assert_eq!(t.booked_bits(id), 0);
    }
}

#[test]
fn bookings_add_their_rate_over_the_window() {
    let mut t = LoadTable::default();
    t.set(3, 10 * M, 100 * M);
    t.set_window(1000, 200);
    t.book(3, 4 * M);
    t.book(3, 4 * M);
    assert_eq!(t.booked_bits(3), 8 * M);
    // 8 Mbit over a 1 s interval: 8 Mbit/s on top of the estimate.
    assert_eq!(
        t.load(3).unwrap().rate_bps,
        10 * M + booked_rate(8 * M, 1000, 200)
    );
    assert_eq!(t.load(3).unwrap().rate_bps, 18 * M);
    // A late sample spreads them over the time since it.
    t.set_window(1000, 4000);
    t.book(3, 0);
    assert_eq!(t.load(3).unwrap().rate_bps, 12 * M);
    // A new estimate starts the booking over.
    t.set(3, 20 * M, 100 * M);
    assert_eq!(t.booked_bits(3), 0);
    assert_eq!(t.load(3).unwrap().rate_bps, 20 * M);
}

#[test]
fn bookings_saturate() {
    let mut t = LoadTable::default();
    t.set(1, u64::MAX - 1, 0);
    t.set_window(1, 0);
    t.book(1, u64::MAX);
    t.book(1, u64::MAX);
    assert_eq!(t.booked_bits(1), u64::MAX);
    assert_eq!(t.load(1).unwrap().rate_bps, u64::MAX);
}
