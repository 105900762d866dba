// SPDX-License-Identifier: GPL-2.0

use mpbal_core::flowcache::{FlowCache, FlowKey, FLOW_CACHE_SLOTS};
use proptest::prelude::*;

type Cache = FlowCache<u32>;

/// Ways per set, as the cache has them.
const WAYS: usize = FLOW_CACHE_SLOTS / Cache::SETS;

fn key(daddr: u32, genid: u32) -> FlowKey {
    FlowKey {
        daddr,
        saddr: 0x0100_000a,
        iif: 2,
        genid,
        ..FlowKey::default()
    }
}

/// `n` keys that share `k`'s set.
fn same_set(k: FlowKey, n: usize) -> Vec<FlowKey> {
    (1..1_000_000)
        .map(|d| key(k.daddr.wrapping_add(d), k.genid))
        .filter(|o| o.set(Cache::SETS) == k.set(Cache::SETS))
        .take(n)
        .collect()
}

#[test]
fn miss_fill_hit() {
    let mut c = Cache::default();
    let k = key(0x0100_630a, 7);
    let (hit, v) = c.slot(k);
    assert!(!hit);
    *v = 42;
    let (hit, v) = c.slot(k);
    assert!(hit);
    assert_eq!(*v, 42);
    assert_eq!(c.get(k), Some(&42));
}

#[test]
fn new_generation_misses() {
    let mut c = Cache::default();
    *c.slot(key(1, 7)).1 = 42;
    assert_eq!(c.get(key(1, 8)), None);
    assert!(!c.slot(key(1, 8)).0, "a route change must invalidate");
}

#[test]
fn every_field_is_part_of_the_key() {
    let base = key(0x0100_630a, 1);
    let variants = [
        FlowKey { daddr: 2, ..base },
        FlowKey { saddr: 2, ..base },
        FlowKey { iif: 3, ..base },
        FlowKey { mark: 1, ..base },
        FlowKey { tos: 4, ..base },
        FlowKey { genid: 2, ..base },
    ];
    for v in variants {
        let mut c = Cache::default();
        c.slot(base);
        assert!(!c.slot(v).0, "{v:?} hit {base:?}'s entry");
    }
}

#[test]
fn a_set_of_flows_all_stay() {
    let a = key(1, 1);
    let mut keys = same_set(a, WAYS - 1);
    keys.push(a);
    let mut c = Cache::default();
    for &k in &keys {
        c.slot(k);
    }
    for _ in 0..10 {
        for &k in &keys {
            assert!(c.slot(k).0, "{k:?} was evicted");
        }
    }
}

#[test]
fn a_full_set_replaces_the_oldest_way() {
    let a = key(1, 1);
    let others = same_set(a, WAYS);
    let mut c = Cache::default();
    c.slot(a);
    for &k in &others[..WAYS - 1] {
        c.slot(k);
    }
    assert!(c.slot(a).0, "a hit does not reorder the set");
    assert!(!c.slot(others[WAYS - 1]).0);
    assert!(c.get(a).is_none(), "the first filled goes");
    for &k in &others[..WAYS] {
        assert!(c.get(k).is_some(), "{k:?} stays");
    }
}

/// `n` source/destination pairs of the thesis testbed and of the demo:
/// sources 172.16.S.2, destinations in 10.0.1/24 and 10.0.2/24 (network
/// byte order), one iif per source.
fn testbed_keys(sources: u32, dests: u32) -> Vec<FlowKey> {
    let mut keys = Vec::new();
    for s in 1..=sources {
        for d in 0..dests {
            let (net, host) = (1 + d % 2, 1 + d / 2);
            keys.push(FlowKey {
                daddr: u32::from_le_bytes([10, 0, net as u8, host as u8]),
                saddr: u32::from_le_bytes([172, 16, s as u8, 2]),
                iif: 2 + s,
                genid: 1,
                ..FlowKey::default()
            });
        }
    }
    keys
}

#[test]
fn testbed_flows_all_fit() {
    // The bench (2 sources x 4 destinations) and the demo (2 x 64).
    for (sources, dests) in [(2, 4), (2, 64)] {
        let keys = testbed_keys(sources, dests);
        let mut c = Cache::default();
        for &k in &keys {
            c.slot(k);
        }
        let kept = keys.iter().filter(|&&k| c.get(k).is_some()).count();
        assert!(
            kept * 100 >= keys.len() * 97,
            "{sources}x{dests}: {kept} of {} kept",
            keys.len()
        );
    }
}

/// Steady-state hits when the flows of `keys` arrive interleaved, as the
/// bench and a busy router send them (a set with more keys than ways then
/// misses on all of them).
fn interleaved_hits(keys: &[FlowKey]) -> f64 {
    let mut c = Cache::default();
    for &k in keys {
        c.slot(k);
    }
    let mut hits = 0;
    for _ in 0..10 {
        for &k in keys {
            hits += usize::from(c.slot(k).0);
        }
    }
    hits as f64 / (10 * keys.len()) as f64
}

#[test]
fn interleaved_testbed_flows_hit() {
    // make bench's scaling row "dests=64": 2 sources x 64 destinations
    // (the testbed's 10.0.1.1-2, 10.0.2.1-2 and 10.0.{1,2}.10-39).
    let mut keys = Vec::new();
    for s in 1..=2u8 {
        let mut hosts: Vec<(u8, u8)> = vec![(1, 1), (1, 2), (2, 1), (2, 2)];
        for h in 10..40u8 {
            hosts.push((1, h));
            hosts.push((2, h));
        }
        for (net, host) in hosts {
            keys.push(FlowKey {
                daddr: u32::from_le_bytes([10, 0, net, host]),
                saddr: u32::from_le_bytes([172, 16, s, 2]),
                iif: 3 + u32::from(s),
                genid: 1,
                ..FlowKey::default()
            });
        }
    }
    let share = interleaved_hits(&keys);
    assert!(share >= 0.95, "{share} of interleaved packets hit");
    // And 256 random pairs, on average over many draws.
    let mut seed = 0x9876_5432u32;
    let mut sum = 0.0;
    for _ in 0..50 {
        let keys: Vec<FlowKey> = (0..256)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                key(0x0000_640a | ((seed >> 16) << 16), 1)
            })
            .collect();
        sum += interleaved_hits(&keys);
    }
    assert!(
        sum / 50.0 >= 0.95,
        "{} of interleaved packets hit",
        sum / 50.0
    );
}

#[test]
fn keys_spread_like_a_uniform_hash() {
    // 128 random hosts of one /16 (network byte order) from one source: a
    // key is lost only when five or more share a set; a uniform hash over
    // 64 sets of 4 keeps about 98% of them.
    let mut seed = 0x1234_5678u32;
    let mut kept = 0usize;
    let rounds = 200;
    let n = 128;
    for _ in 0..rounds {
        let mut c = Cache::default();
        let mut keys = Vec::new();
        for _ in 0..n {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let host = (seed >> 16) & 0xffff;
            keys.push(key(0x0000_640a | (host << 16), 1));
        }
        for &k in &keys {
            c.slot(k);
        }
        kept += keys.iter().filter(|&&k| c.get(k).is_some()).count();
    }
    let share = kept as f64 / (rounds * n) as f64;
    assert!(share > 0.96, "{share} of the keys kept");
}

proptest! {
    /// A hit returns exactly what was stored for that key, whatever else
    /// went through the cache in between.
    #[test]
    fn hits_return_what_was_stored(ops in prop::collection::vec((0u32..64, 0u32..3), 1..300)) {
        let mut c: FlowCache<(u32, u32)> = FlowCache::default();
        for (d, g) in ops {
            let k = key(d, g);
            let (hit, v) = c.slot(k);
            if hit {
                prop_assert_eq!(*v, (d, g));
            } else {
                *v = (d, g);
            }
        }
    }
}
