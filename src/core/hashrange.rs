// SPDX-License-Identifier: GPL-2.0

//! Steering forwarded packets through the kernel's own multipath choice.
//!
//! With `fib_multipath_hash_policy=1` and an L4 skb hash, the kernel computes
//! `h = skb->hash >> 1` and `fib_select_multipath()` takes the first nexthop
//! with `h <= upper_bound`, where `fib_rebalance()` set
//! `upper_bound = DIV_ROUND_CLOSEST_ULL(cum_weight << 31, total) - 1`, or -1
//! for a dead nexthop. So choosing nexthop `i` means writing a hash whose top
//! 31 bits fall in `(max(upper_bound[..i]), upper_bound[i]]`.
//!
//! The hash also picks TX queues and fq buckets, so we spread the flow's own
//! entropy over the whole range instead of using one constant per nexthop.

use super::nexthop::{Nexthop, MAX_NEXTHOPS};

/// Upper bounds as `fib_rebalance()` computes them, for `(weight, alive)`
/// pairs. Used by tests to check [`skb_hash_for`] against the kernel's rule.
pub fn upper_bounds(nexthops: &[(u32, bool)], out: &mut [i32]) {
    let total: u64 = nexthops
        .iter()
        .filter(|(_, alive)| *alive)
        .map(|(w, _)| u64::from(*w))
        .sum();
    let mut w = 0u64;
    for ((weight, alive), ub) in nexthops.iter().zip(out.iter_mut()) {
        *ub = if total == 0 || !alive {
            -1
        } else {
            w += u64::from(*weight);
            // DIV_ROUND_CLOSEST_ULL(w << 31, total) - 1, at most 2^31 - 1.
            ((((w << 31) + total / 2) / total) - 1) as i32
        };
    }
}

/// Inclusive range of 31-bit hashes that makes the kernel pick nexthop `i`.
pub fn range_of(nexthops: &[Nexthop], i: usize) -> Option<(u32, u32)> {
    let hi = nexthops.get(i)?.upper_bound;
    let lo = nexthops
        .iter()
        .take(i)
        .map(|nh| nh.upper_bound)
        .fold(-1, i32::max);
    if hi <= lo {
        return None;
    }
    // hi > lo >= -1, so lo + 1 >= 0 and both fit in u32.
    Some(((lo + 1) as u32, hi as u32))
}

/// What [`range_of`] would give for each nexthop, in one pass, as
/// `(lo, hi)` with `lo > hi` for a nexthop no hash reaches.
pub fn ranges(nexthops: &[Nexthop]) -> [(u32, u32); MAX_NEXTHOPS] {
    let mut out = [(1, 0); MAX_NEXTHOPS];
    let mut prev = -1i32;
    for (nh, r) in nexthops.iter().zip(out.iter_mut()) {
        if nh.upper_bound > prev {
            // upper_bound > prev >= -1: both bounds fit in u32.
            *r = ((prev + 1) as u32, nh.upper_bound as u32);
        }
        prev = prev.max(nh.upper_bound);
    }
    out
}

/// The raw skb hash that steers the packet to nexthop `i`: `entropy` scaled
/// into the nexthop's range (multiply-shift, no division), shifted left by
/// one with the lowest bit kept from `entropy`, as `fib_multipath_hash()`
/// drops it.
pub fn skb_hash_for(nexthops: &[Nexthop], i: usize, entropy: u32) -> Option<u32> {
    let (lo, hi) = range_of(nexthops, i)?;
    Some(skb_hash_in(lo, hi, entropy))
}

/// [`skb_hash_for`] with the range already known (`lo <= hi`, from
/// [`range_of`]): what a route copy keeps so the packet path does not
/// fold over the nexthops before `i`.
pub fn skb_hash_in(lo: u32, hi: u32, entropy: u32) -> u32 {
    let width = u64::from(hi.saturating_sub(lo)) + 1;
    // width <= 2^31, so the scaled entropy stays below it and lo + it <= hi.
    let h = lo.wrapping_add(((u64::from(entropy) * width) >> 32) as u32);
    (h << 1) | (entropy & 1)
}

/// What `fib_select_multipath()` does with a 31-bit hash (without
/// `fib_multipath_use_neigh`): the first nexthop whose upper bound is not
/// below it.
pub fn select_by_hash(nexthops: &[Nexthop], h: u32) -> Option<usize> {
    nexthops
        .iter()
        .position(|nh| nh.upper_bound >= 0 && h <= nh.upper_bound as u32)
}
