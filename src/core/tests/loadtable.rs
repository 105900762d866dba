// SPDX-License-Identifier: GPL-2.0

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

mod order {
    use super::*;
    use mpbal_core::estimator::{booking_window_ms, headroom};
    use proptest::prelude::*;

    /// What the table was told, per id: estimate, capacity, bits booked.
    #[derive(Default)]
    struct Model {
        /// By id (index 0 unused).
        uplinks: Vec<Option<(u64, u64, u64)>>,
        window_ms: u64,
    }

    impl Model {
        /// Exact headroom left in the window, in thousandths of a bit:
        /// unknown capacities as the fastest known, an id the table does
        /// not track as zero.
        fn room(&self, id: u32) -> i128 {
            let fastest = self
                .uplinks
                .iter()
                .flatten()
                .map(|u| u.1)
                .max()
                .unwrap_or(0);
            self.uplinks[id as usize].map_or(0, |(est, cap, bits)| {
                let cap = if cap == 0 { fastest } else { cap };
                i128::from(headroom(cap, est)) * i128::from(self.window_ms)
                    - i128::from(bits) * 1000
            })
        }

        fn best_room(&self, want: u32) -> Option<i128> {
            (1..=MAX_UPLINK_IDS as u32)
                .filter(|id| want & (1 << (id - 1)) != 0)
                .map(|id| self.room(id))
                .max()
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Set(u32, u64, u64),
        Untrack(u32),
        Book(u32, u64),
        Window(u32, u64),
        Best(u32),
        Take(u32, u64),
    }

    /// Small rates and bookings of the same order, so that bookings
    /// change the winner and near ties are common.
    fn op() -> impl Strategy<Value = Op> {
        let id = 1u32..=8;
        prop_oneof![
            1 => (id.clone(), 0u64..=20_000, prop_oneof![Just(0u64), 1u64..=20_000])
                .prop_map(|(i, r, c)| Op::Set(i, r, c)),
            1 => id.clone().prop_map(Op::Untrack),
            6 => (id, 0u64..=5_000).prop_map(|(i, b)| Op::Book(i, b)),
            1 => (1u32..=2000, 0u64..=5000).prop_map(|(i, s)| Op::Window(i, s)),
            6 => (1u32..=0xff).prop_map(Op::Best),
            6 => (1u32..=0xff, 0u64..=5_000).prop_map(|(w, b)| Op::Take(w, b)),
        ]
    }

    proptest! {
        /// Whatever was set, booked or untracked, `best` names an uplink
        /// of `want` with the most headroom, and every order change a
        /// booking makes keeps it so.
        #[test]
        fn best_has_the_most_headroom(ops in prop::collection::vec(op(), 1..200)) {
            let mut t = LoadTable::default();
            let mut m = Model { uplinks: vec![None; MAX_UPLINK_IDS + 1], ..Model::default() };
            t.set_window(1000, 0);
            m.window_ms = booking_window_ms(1000, 0);
            for op in ops {
                match op.clone() {
                    Op::Set(id, r, c) => {
                        t.set(id, r, c);
                        m.uplinks[id as usize] = Some((r, c, 0));
                    }
                    Op::Untrack(id) => {
                        t.untrack(id);
                        m.uplinks[id as usize] = None;
                    }
                    Op::Book(id, b) => {
                        t.book(id, b);
                        if let Some(u) = &mut m.uplinks[id as usize] {
                            u.2 += b;
                        }
                    }
                    Op::Window(i, s) => {
                        t.set_window(i, s);
                        m.window_ms = booking_window_ms(i, s);
                    }
                    Op::Best(want) | Op::Take(want, _) => {
                        let got = match op {
                            Op::Take(_, bits) => t.take(want, bits),
                            _ => t.best(want),
                        };
                        match (m.best_room(want), got) {
                            (None, None) => {}
                            (Some(b), Some(id)) => {
                                prop_assert!(want & (1 << (id - 1)) != 0, "{} not in {:#x}", id, want);
                                prop_assert_eq!(m.room(id), b, "id {}", id);
                                // take() books what it chose.
                                if let (Op::Take(_, bits), Some(u)) = (&op, &mut m.uplinks[id as usize]) {
                                    u.2 += bits;
                                }
                            }
                            (b, g) => prop_assert!(false, "best {:?}, got {:?}", b, g),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn equal_uplinks_take_turns_when_booked() {
        let mut t = LoadTable::default();
        t.set_window(1000, 0);
        for id in 1..=4 {
            t.set(id, 0, 100 * M);
        }
        let mut seq = Vec::new();
        for _ in 0..12 {
            let id = t.best(0b1111).unwrap();
            t.book(id, 12_000);
            seq.push(id);
        }
        assert_eq!(seq, [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
        // Only the wanted ones.
        let id = t.best(0b1010).unwrap();
        assert_eq!(id, 2);
        assert_eq!(t.best(0), None);
        // An untracked uplink counts as full: it loses to room, wins over
        // an overload.
        t.set(1, 200 * M, 100 * M);
        assert_eq!(t.best(0b1_0001), Some(5));
        assert_eq!(t.best(0b1_0010), Some(2));
    }
}
