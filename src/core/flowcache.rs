// SPDX-License-Identifier: GPL-2.0

//! A small cache of route lookups, one per CPU.
//!
//! PRE_ROUTING must look the route up before the kernel does (to know the
//! nexthops it steers between), so without a cache every forwarded packet
//! on an equalize route pays two FIB lookups. A slot is small (the key and
//! a reference to the route, see the policy's route cache), so there are
//! enough of them for the source/destination pairs a router forwards at
//! once.
//!
//! An entry is valid only for the routing generation it was filled in: the
//! key carries the netns's `rt_genid_ipv4()`, which `rt_cache_flush()` bumps
//! on every route, rule, address and link change (the kernel's own cached
//! dsts are validated the same way). Nothing has to be invalidated by hand.

/// Slots per CPU per netns (sets of eight ways). Flows arrive interleaved,
/// so a set that holds more keys than ways misses on every one of them:
/// 64 sets of 8 keep that rare for a few hundred source/destination pairs.
pub const FLOW_CACHE_SLOTS: usize = 512;

const WAYS: usize = 8;

/// Everything the input route lookup depends on (when no FIB rule matches on
/// ports), plus the routing generation it was made in.
/// (All-zero is valid: the kernel's per-CPU route cache holds these.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey {
    pub daddr: u32,
    pub saddr: u32,
    pub iif: u32,
    pub mark: u32,
    pub tos: u32,
    pub genid: u32,
}

impl FlowKey {
    /// Index of the key's set among `sets`; the generation is left out so a
    /// flow keeps its set across route changes.
    pub fn set(&self, sets: usize) -> usize {
        // Each field is multiplied by its own odd constant: every bit of a
        // field reaches the product's high bits, which are the ones the set
        // is taken from (addresses are in network byte order, so hosts of one
        // subnet differ in the high bits, and those count too).
        let h = self.daddr.wrapping_mul(0x9e37_79b1)
            ^ self.saddr.wrapping_mul(0x85eb_ca6b)
            ^ (self.iif ^ self.mark.rotate_left(8) ^ (self.tos << 24)).wrapping_mul(0xc2b2_ae35);
        ((u64::from(h) * sets as u64) >> 32) as usize
    }
}

/// [`FLOW_CACHE_SLOTS`] slots of `V` in sets of eight ways, each slot
/// remembering the key it was filled for; a miss takes an empty way, else
/// the ways of its set in turn (first in, first out).
///
/// All-zero is a valid empty cache if it is for `V` (the kernel's per-CPU
/// copies start zeroed), hence integers and flags, no `Option`s.
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct FlowCache<V> {
    keys: [FlowKey; FLOW_CACHE_SLOTS],
    used: [bool; FLOW_CACHE_SLOTS],
    values: [V; FLOW_CACHE_SLOTS],
    /// Per set: the way the next miss replaces.
    next: [u8; FLOW_CACHE_SLOTS / WAYS],
}

impl<V: Default> Default for FlowCache<V> {
    fn default() -> Self {
        FlowCache {
            keys: [FlowKey::default(); FLOW_CACHE_SLOTS],
            used: [false; FLOW_CACHE_SLOTS],
            values: core::array::from_fn(|_| V::default()),
            next: [0; FLOW_CACHE_SLOTS / WAYS],
        }
    }
}

impl<V> FlowCache<V> {
    /// Sets of the cache.
    pub const SETS: usize = FLOW_CACHE_SLOTS / WAYS;

    /// The value cached for `key`, without touching the replacement order.
    pub fn get(&self, key: FlowKey) -> Option<&V> {
        let base = key.set(Self::SETS) * WAYS;
        (base..base + WAYS)
            .find(|&i| self.holds(i, key))
            .map(|i| &self.values[i])
    }

    /// The slot for `key`: `(true, value)` on a hit, else `(false, value)`
    /// with a slot now claimed for `key`, which the caller must fill.
    pub fn slot(&mut self, key: FlowKey) -> (bool, &mut V) {
        let set = key.set(Self::SETS);
        let base = set * WAYS;
        if let Some(w) = (0..WAYS).find(|&w| self.holds(base + w, key)) {
            return (true, &mut self.values[base + w]);
        }
        let way = match (0..WAYS).find(|&w| !self.used[base + w]) {
            Some(w) => w,
            None => {
                let w = usize::from(self.next[set]) % WAYS;
                self.next[set] = ((w + 1) % WAYS) as u8;
                w
            }
        };
        self.keys[base + way] = key;
        self.used[base + way] = true;
        (false, &mut self.values[base + way])
    }

    fn holds(&self, i: usize, key: FlowKey) -> bool {
        self.used[i] && self.keys[i] == key
    }
}
