// SPDX-License-Identifier: GPL-2.0

//! The per-destination table of the route strategy
//! (`mpbal_core::desttable`).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use common::{config, Rng};
use mpbal_core::desttable::{Claim, DestTable, Insert, MAX_IDLE_TIMEOUT_S, WAYS};
use proptest::prelude::*;

fn slots(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn words(s: &[AtomicU64]) -> Vec<u64> {
    s.iter().map(|w| w.load(Ordering::Relaxed)).collect()
}

/// `a.b.c.d` in host order.
fn ip(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

const T: u32 = 300;

#[test]
fn lookup_after_insert() {
    let mem = slots(1024);
    let t = DestTable::new(&mem);
    assert_eq!(t.capacity(), 1024);
    assert_eq!(t.lookup(ip(192, 0, 2, 1), 10, T), None);
    assert_eq!(t.insert(ip(192, 0, 2, 1), 3, 10, T), Insert::Stored);
    assert_eq!(t.insert(ip(198, 51, 100, 7), 4, 10, T), Insert::Stored);
    assert_eq!(t.lookup(ip(192, 0, 2, 1), 11, T), Some(3));
    assert_eq!(t.lookup(ip(198, 51, 100, 7), 11, T), Some(4));
    assert_eq!(t.lookup(ip(192, 0, 2, 2), 11, T), None);
    assert_eq!(t.lookup(0, 11, T), None);
    assert_eq!(t.live_entries(11, T), 2);
}

#[test]
fn insert_updates_in_place() {
    let mem = slots(64);
    let t = DestTable::new(&mem);
    let d = ip(203, 0, 113, 9);
    assert_eq!(t.insert(d, 3, 10, T), Insert::Stored);
    assert_eq!(t.insert(d, 5, 12, T), Insert::Stored);
    assert_eq!(t.lookup(d, 13, T), Some(5));
    assert_eq!(t.live_entries(13, T), 1);
}

/// `insert` replaces the entry already holding `daddr` even when a free or
/// expired entry comes before it in the group. Regression: it used to take
/// the earlier free/expired entry and leave the old one, two entries for one
/// destination, and once the new uplink was flushed the stale one answered
/// again.
#[test]
fn reinsert_replaces_existing_entry_behind_an_expired_one() {
    // One group: every destination shares it.
    let mem = slots(WAYS);
    let t = DestTable::new(&mem);
    let (x, d) = (ip(10, 0, 0, 1), ip(10, 0, 0, 2));
    assert_eq!(t.insert(x, 7, 0, 10), Insert::Stored); // way 0
    assert_eq!(t.insert(d, 1, 5, 10), Insert::Stored); // way 1
                                                       // At 12, x is expired (age 12) and d is live (age 7): d moves to uplink 2.
    assert_eq!(t.insert(d, 2, 12, 10), Insert::Stored);
    assert_eq!(t.lookup(d, 12, 10), Some(2));
    assert_eq!(t.live_entries(12, 10), 1, "one destination, one entry");
    // Uplink 2 goes away: d must not fall back to its replaced uplink 1.
    t.flush_uplink(2);
    assert_eq!(t.lookup(d, 12, 10), None);
}

#[test]
fn reinsert_replaces_existing_entry_behind_a_free_one() {
    let mem = slots(WAYS);
    let t = DestTable::new(&mem);
    let (x, d) = (ip(10, 0, 0, 1), ip(10, 0, 0, 2));
    assert_eq!(t.insert(x, 7, 0, T), Insert::Stored); // way 0
    assert_eq!(t.insert(d, 1, 0, T), Insert::Stored); // way 1
    t.flush_uplink(7); // way 0 free again
    assert_eq!(t.insert(d, 2, 1, T), Insert::Stored);
    assert_eq!(t.lookup(d, 1, T), Some(2));
    assert_eq!(t.live_entries(1, T), 1, "one destination, one entry");
}

proptest! {
    #![proptest_config(config(512))]

    /// An entry idle for `timeout - 1` seconds is found, one idle for
    /// `timeout` seconds is not, wherever the clock is (including around
    /// 2^16 and 2^32 wrap-arounds).
    #[test]
    fn expiry_at_exactly_the_timeout(
        now in prop_oneof![any::<u32>(), (1u32..65536).prop_map(|k| k.wrapping_mul(65536).wrapping_sub(3)), Just(u32::MAX - 1)],
        timeout in prop_oneof![1u32..=MAX_IDLE_TIMEOUT_S, Just(1), Just(MAX_IDLE_TIMEOUT_S)],
        daddr in 1u32..,
        oif in 1u32..=0xffff,
    ) {
        let (a, b) = (slots(64), slots(64));
        let (ta, tb) = (DestTable::new(&a), DestTable::new(&b));
        prop_assert_eq!(ta.insert(daddr, oif, now, timeout), Insert::Stored);
        prop_assert_eq!(tb.insert(daddr, oif, now, timeout), Insert::Stored);
        prop_assert_eq!(ta.lookup(daddr, now.wrapping_add(timeout - 1), timeout), Some(oif));
        prop_assert_eq!(tb.lookup(daddr, now.wrapping_add(timeout), timeout), None);
        prop_assert_eq!(tb.live_entries(now.wrapping_add(timeout), timeout), 0);
    }

    /// A lookup refreshes the entry: it lives `timeout` seconds from the
    /// last use, not from the insert.
    #[test]
    fn lookup_refreshes(now in any::<u32>(), timeout in 2u32..=MAX_IDLE_TIMEOUT_S, daddr in 1u32..) {
        let (a, b) = (slots(16), slots(16));
        let (ta, tb) = (DestTable::new(&a), DestTable::new(&b));
        for t in [&ta, &tb] {
            prop_assert_eq!(t.insert(daddr, 9, now, timeout), Insert::Stored);
            prop_assert_eq!(t.lookup(daddr, now.wrapping_add(timeout - 1), timeout), Some(9));
        }
        let used = now.wrapping_add(timeout - 1);
        prop_assert_eq!(ta.lookup(daddr, used.wrapping_add(timeout - 1), timeout), Some(9));
        prop_assert_eq!(tb.lookup(daddr, used.wrapping_add(timeout), timeout), None);
    }

    /// Never more live entries than capacity, every insert accounted for,
    /// and a saturated table stays full.
    #[test]
    fn table_is_bounded(seed in any::<u64>(), size in prop_oneof![Just(4usize), Just(64), Just(100), Just(256)]) {
        let mem = slots(size);
        let t = DestTable::new(&mem);
        let cap = t.capacity();
        let mut rng = Rng::new(seed);
        let mut evicted = 0;
        for i in 0..(cap * 20) as u32 {
            let now = 1000 + i / 16;
            let d = rng.next_u32().max(1);
            match t.insert(d, 1 + rng.below(0xffff) as u32, now, 30_000) {
                Insert::Stored => {}
                Insert::Evicted => evicted += 1,
                Insert::NotStored => prop_assert!(false, "single writer cannot lose a race"),
            }
            let live = t.live_entries(now, 30_000);
            prop_assert!(live <= cap, "{} live entries in {} slots", live, cap);
            prop_assert_eq!(t.lookup(d, now, 30_000).is_some(), true);
        }
        prop_assert_eq!(t.live_entries(1000 + (cap as u32 * 20) / 16, 30_000), cap);
        prop_assert!(evicted > 0);
    }
}

#[test]
fn lookup_writes_at_most_once_a_second() {
    let mem = slots(16);
    let t = DestTable::new(&mem);
    let d = ip(192, 0, 2, 77);
    t.insert(d, 2, 100, T);
    let before = words(&mem);
    assert_eq!(t.lookup(d, 100, T), Some(2));
    assert_eq!(words(&mem), before, "same second: no write");
    assert_eq!(t.lookup(d, 101, T), Some(2));
    assert_ne!(words(&mem), before, "next second: stamp refreshed");
}

#[test]
fn stamp_wraps_around_2_pow_16() {
    let mem = slots(16);
    let t = DestTable::new(&mem);
    let d = ip(192, 0, 2, 5);
    for base in [65_530u32, 3 * 65_536 - 1, u32::MAX - 4] {
        mem.iter().for_each(|w| w.store(0, Ordering::Relaxed));
        assert_eq!(t.insert(d, 4, base, 20), Insert::Stored);
        assert_eq!(
            t.lookup(d, base.wrapping_add(19), 20),
            Some(4),
            "base {base}"
        );
        assert_eq!(t.live_entries(base.wrapping_add(38), 20), 1);
        assert_eq!(t.lookup(d, base.wrapping_add(39), 20), None, "base {base}");
    }
}

#[test]
fn full_group_evicts_least_recently_used() {
    let mem = slots(WAYS); // one group
    let t = DestTable::new(&mem);
    let d: Vec<u32> = (1..=5).map(|i| ip(10, 1, 1, i)).collect();
    for (i, &x) in d[..4].iter().enumerate() {
        assert_eq!(t.insert(x, 1 + i as u32, i as u32, T), Insert::Stored);
    }
    // Touch the oldest; the second oldest becomes least recently used.
    assert_eq!(t.lookup(d[0], 4, T), Some(1));
    assert_eq!(t.insert(d[4], 5, 5, T), Insert::Evicted);
    assert_eq!(t.lookup(d[1], 5, T), None, "LRU entry evicted");
    assert_eq!(t.lookup(d[0], 5, T), Some(1));
    assert_eq!(t.lookup(d[2], 5, T), Some(3));
    assert_eq!(t.lookup(d[3], 5, T), Some(4));
    assert_eq!(t.lookup(d[4], 5, T), Some(5));
    assert_eq!(t.live_entries(5, T), 4);
}

#[test]
fn full_group_updates_existing_destination_without_eviction() {
    let mem = slots(WAYS);
    let t = DestTable::new(&mem);
    let d: Vec<u32> = (1..=4).map(|i| ip(10, 1, 1, i)).collect();
    for &x in &d {
        t.insert(x, 1, 0, T);
    }
    assert_eq!(t.insert(d[3], 2, 1, T), Insert::Stored);
    for &x in &d[..3] {
        assert_eq!(t.lookup(x, 1, T), Some(1));
    }
    assert_eq!(t.lookup(d[3], 1, T), Some(2));
}

#[test]
fn expired_entry_is_reused_before_evicting() {
    let mem = slots(WAYS);
    let t = DestTable::new(&mem);
    let d: Vec<u32> = (1..=5).map(|i| ip(10, 1, 1, i)).collect();
    t.insert(d[0], 1, 0, 10);
    for &x in &d[1..4] {
        t.insert(x, 2, 5, 10);
    }
    assert_eq!(t.insert(d[4], 3, 12, 10), Insert::Stored);
    for &x in &d[1..4] {
        assert_eq!(t.lookup(x, 12, 10), Some(2));
    }
    assert_eq!(t.lookup(d[4], 12, 10), Some(3));
}

#[test]
fn not_stored_cases() {
    let mem = slots(64);
    let t = DestTable::new(&mem);
    let d = ip(192, 0, 2, 1);
    assert_eq!(t.insert(d, 0x1_0000, 0, T), Insert::NotStored);
    assert_eq!(t.insert(d, u32::MAX, 0, T), Insert::NotStored);
    assert_eq!(t.insert(d, 0, 0, T), Insert::NotStored);
    assert_eq!(t.insert(0, 3, 0, T), Insert::NotStored);
    assert_eq!(t.live_entries(0, T), 0);
    assert!(words(&mem).iter().all(|&w| w == 0));
    // The extremes that do fit.
    assert_eq!(t.insert(d, 0xffff, 0, T), Insert::Stored);
    assert_eq!(t.lookup(d, 0, T), Some(0xffff));
    assert_eq!(t.insert(u32::MAX, 1, 0, T), Insert::Stored);
    assert_eq!(t.lookup(u32::MAX, 0, T), Some(1));
}

#[test]
fn flush_uplink_forgets_only_that_uplink() {
    let mem = slots(1024);
    let t = DestTable::new(&mem);
    for i in 1..=300u32 {
        assert_eq!(
            t.insert(ip(10, 9, 0, 0) + i, 1 + i % 3, 0, T),
            Insert::Stored
        );
    }
    t.flush_uplink(2);
    for i in 1..=300u32 {
        let got = t.lookup(ip(10, 9, 0, 0) + i, 1, T);
        if 1 + i % 3 == 2 {
            assert_eq!(got, None);
        } else {
            assert_eq!(got, Some(1 + i % 3));
        }
    }
    assert_eq!(t.live_entries(1, T), 200);
    t.flush_uplink(0);
    t.flush_uplink(0x1_0001); // does not alias uplink 1
    assert_eq!(t.live_entries(1, T), 200);
}

#[test]
fn sizes_round_down_to_a_power_of_two() {
    for (len, cap) in [
        (0, 0),
        (1, 0),
        (3, 0),
        (4, 4),
        (5, 4),
        (7, 4),
        (8, 8),
        (12, 8),
        (1000, 512),
        (1023, 512),
        (1024, 1024),
        (1025, 1024),
        (3000, 2048),
    ] {
        let mem = slots(len);
        let t = DestTable::new(&mem);
        assert_eq!(t.capacity(), cap, "len {len}");
        let mut rng = Rng::new(len as u64);
        for i in 0..4 * len as u32 {
            let got = t.insert(rng.next_u32().max(1), 1, i, T);
            if cap == 0 {
                assert_eq!(got, Insert::NotStored);
            }
        }
        assert!(
            words(&mem)[cap..].iter().all(|&w| w == 0),
            "len {len}: wrote past the rounded size"
        );
        if cap == 0 {
            assert_eq!(t.lookup(1, 0, T), None);
            assert_eq!(t.live_entries(0, T), 0);
            t.flush_uplink(1);
        }
    }
}

#[test]
fn sequential_destinations_spread_over_groups() {
    let mem = slots(1024);
    let t = DestTable::new(&mem);
    for i in 1..=256u32 {
        assert_eq!(t.insert(ip(10, 0, 0, 0) + i, 1, 0, T), Insert::Stored);
    }
    assert_eq!(t.live_entries(0, T), 256);
}

/// Destinations that differ only above the last octet (one host per
/// subnet, or a few hosts in each of many subnets) at 25 % load of a
/// 1024-entry table. Any reasonable spread keeps almost all of them.
/// Regression: the group index used to be the low bits of
/// `daddr * 0x9e3779b1`, which depend only on the low bits of `daddr`, so
/// each of these sets landed in one to sixteen groups (4 or 16 of 256 kept).
#[test]
fn destinations_differing_in_high_bits_spread_over_groups() {
    let sets: [(&str, Vec<u32>); 3] = [
        ("10.0.N.1", (0..=255).map(|n| ip(10, 0, n, 1)).collect()),
        ("N.M.0.1", (0..=255).map(|n| ip(n, 7, 0, 1)).collect()),
        (
            "10.0.N.1-4",
            (0..64u8)
                .flat_map(|n| (1..=4u8).map(move |h| ip(10, 0, n, h)))
                .collect(),
        ),
    ];
    // The same sets in network byte order too (the raw `__be32` as read on
    // a little-endian CPU), so the spread does not depend on the order the
    // caller passes.
    let swapped: Vec<(String, Vec<u32>)> = sets
        .iter()
        .map(|(name, d)| {
            (
                format!("{name} (byte-swapped)"),
                d.iter().map(|x| x.swap_bytes()).collect(),
            )
        })
        .collect();
    let sets = sets
        .into_iter()
        .map(|(name, d)| (name.to_string(), d))
        .chain(swapped);
    for (name, dests) in sets {
        let mem = slots(1024);
        let t = DestTable::new(&mem);
        let evicted = dests
            .iter()
            .filter(|&&d| t.insert(d, 1, 0, T) == Insert::Evicted)
            .count();
        let live = t.live_entries(0, T);
        assert!(
            live >= 224,
            "{name}: only {live} of 256 destinations kept in 1024 entries ({evicted} evictions)"
        );
    }
}

/// Threads hammer one small table with inserts, lookups and flushes. Each
/// destination is only ever stored with the uplink derived from it, so any
/// torn or mixed-up entry shows as a mismatched pair.
#[test]
fn concurrent_inserts_and_lookups_never_tear() {
    fn uplink_of(daddr: u32) -> u32 {
        1 + (daddr.wrapping_mul(0x2c1b_3c6d) >> 16) % 0xffff
    }
    let mem = slots(256);
    let table = DestTable::new(&mem);
    let clock = AtomicU32::new(65_000); // crosses the 2^16 stamp wrap
    let done = AtomicBool::new(false);
    let pool: Vec<u32> = {
        let mut rng = Rng::new(7);
        (0..2048).map(|_| rng.next_u32().max(1)).collect()
    };
    std::thread::scope(|s| {
        let mut workers = Vec::new();
        for id in 0..6u64 {
            let (table, clock, pool) = (&table, &clock, &pool);
            workers.push(s.spawn(move || {
                let mut rng = Rng::new(100 + id);
                let mut found = 0u64;
                for _ in 0..60_000 {
                    let d = pool[rng.below(pool.len() as u64) as usize];
                    let now = clock.load(Ordering::Relaxed);
                    if rng.below(4) == 0 {
                        table.insert(d, uplink_of(d), now, 20);
                    } else if let Some(oif) = table.lookup(d, now, 20) {
                        assert_eq!(oif, uplink_of(d), "lookup of {d:#x}");
                        found += 1;
                    }
                }
                found
            }));
        }
        s.spawn(|| {
            let mut rng = Rng::new(1);
            while !done.load(Ordering::Relaxed) {
                clock.fetch_add(1, Ordering::Relaxed);
                table.flush_uplink(1 + rng.below(0xffff) as u32);
                for w in words(&mem) {
                    if w != 0 {
                        let (d, oif) = (w as u32, ((w >> 32) & 0xffff) as u32);
                        assert_ne!(d, 0);
                        assert_eq!(oif, uplink_of(d), "torn entry {w:#018x}");
                    }
                }
                std::thread::yield_now();
            }
        });
        let found: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        done.store(true, Ordering::Relaxed);
        assert!(found > 0, "lookups never hit");
    });
    let now = clock.load(Ordering::Relaxed);
    assert!(table.live_entries(now, 20) <= table.capacity());
}

#[test]
fn claim_stores_when_free_and_yields_to_a_live_entry() {
    let mem = slots(64);
    let t = DestTable::new(&mem);
    let d = ip(192, 0, 2, 40);
    assert_eq!(t.claim(d, 3, 0, 10, T), Claim::Stored);
    assert_eq!(t.lookup(d, 10, T), Some(3));
    // Someone else's live entry wins: the caller should follow it.
    assert_eq!(t.claim(d, 4, 0, 11, T), Claim::Taken(3));
    assert_eq!(t.lookup(d, 11, T), Some(3));
    // Unless it is the entry the caller found unusable.
    assert_eq!(t.claim(d, 4, 3, 12, T), Claim::Stored);
    assert_eq!(t.lookup(d, 12, T), Some(4));
    // An expired entry does not win either.
    assert_eq!(t.claim(d, 5, 0, 12 + T, T), Claim::Stored);
    assert_eq!(t.lookup(d, 12 + T, T), Some(5));
    assert_eq!(t.live_entries(12 + T, T), 1);
}

#[test]
fn claim_rejects_what_insert_rejects() {
    let mem = slots(64);
    let t = DestTable::new(&mem);
    assert_eq!(t.claim(0, 3, 0, 0, T), Claim::NotStored);
    assert_eq!(t.claim(ip(192, 0, 2, 1), 0, 0, 0, T), Claim::NotStored);
    assert_eq!(
        t.claim(ip(192, 0, 2, 1), 0x1_0000, 0, 0, T),
        Claim::NotStored
    );
    let empty = DestTable::new(&mem[..3]);
    assert_eq!(empty.claim(ip(192, 0, 2, 1), 1, 0, 0, T), Claim::NotStored);
}

#[test]
fn claim_evicts_lru_in_a_full_group() {
    let mem = slots(WAYS);
    let t = DestTable::new(&mem);
    for i in 1..=4u8 {
        t.insert(ip(10, 2, 2, i), u32::from(i), u32::from(i), T);
    }
    assert_eq!(t.claim(ip(10, 2, 2, 9), 9, 0, 10, T), Claim::Evicted);
    assert_eq!(t.lookup(ip(10, 2, 2, 1), 10, T), None);
    assert_eq!(t.lookup(ip(10, 2, 2, 9), 10, T), Some(9));
}

/// Threads claim the same new destinations at once, each for its own
/// uplink: exactly one claim stores, every other one is told the winner's
/// uplink, and the table holds the winner.
#[test]
fn concurrent_claims_agree() {
    use std::sync::Barrier;
    const THREADS: u32 = 4;
    const ROUNDS: u32 = 400;
    let mem = slots(4096);
    let t = DestTable::new(&mem);
    let barrier = Barrier::new(THREADS as usize);
    let results: Vec<Vec<Claim>> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=THREADS)
            .map(|oif| {
                let (t, barrier) = (&t, &barrier);
                s.spawn(move || {
                    (0..ROUNDS)
                        .map(|round| {
                            barrier.wait();
                            t.claim(ip(172, 16, 0, 0) + round + 1, oif, 0, 100, T)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for round in 0..ROUNDS as usize {
        let got: Vec<Claim> = results.iter().map(|r| r[round]).collect();
        let stored = t.lookup(ip(172, 16, 0, 0) + round as u32 + 1, 100, T);
        let winners: Vec<u32> = got
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(c, Claim::Stored | Claim::Evicted))
            .map(|(i, _)| i as u32 + 1)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {got:?}");
        assert_eq!(stored, Some(winners[0]), "round {round}: {got:?}");
        for c in got {
            if let Claim::Taken(oif) = c {
                assert_eq!(oif, winners[0], "round {round}");
            }
        }
    }
}
