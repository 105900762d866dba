//! A small cache of route lookups, one per CPU.
//!
//! PRE_ROUTING must look the route up before the kernel does (to know the
//! nexthops it steers between), so without a cache every forwarded packet
//! on an equalize route pays two FIB lookups. Packets come in trains of the
//! same flow, so even a few slots catch most of them.
//!
//! An entry is valid only for the routing generation it was filled in: the
//! key carries the netns's `rt_genid_ipv4()`, which `rt_cache_flush()` bumps
//! on every route, rule, address and link change (the kernel's own cached
//! dsts are validated the same way). Nothing has to be invalidated by hand.

/// Slots per CPU per netns (sets of two ways).
pub const FLOW_CACHE_SLOTS: usize = 8;

const WAYS: usize = 2;

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
        // Addresses are in network byte order: mix high and low bytes alike.
        let mut h = self.daddr ^ self.saddr.rotate_left(16) ^ self.iif ^ self.mark ^ self.tos;
        h ^= h >> 16;
        h = h.wrapping_mul(0x9e37_79b1);
        h ^= h >> 15;
        ((u64::from(h) * sets as u64) >> 32) as usize
    }
}

/// [`FLOW_CACHE_SLOTS`] slots of `V` in sets of two ways, each slot
/// remembering the key it was filled for; a miss replaces the way of its set
/// used least recently.
///
/// All-zero is a valid empty cache if it is for `V` (the kernel's per-CPU
/// copies start zeroed), hence integers and flags, no `Option`s.
#[cfg_attr(MODULE, derive(::kernel::macros::Zeroable))]
pub struct FlowCache<V> {
    keys: [FlowKey; FLOW_CACHE_SLOTS],
    used: [bool; FLOW_CACHE_SLOTS],
    values: [V; FLOW_CACHE_SLOTS],
    /// Per set (first `SETS` entries): the way used last.
    recent: [u8; FLOW_CACHE_SLOTS],
}

impl<V: Default> Default for FlowCache<V> {
    fn default() -> Self {
        FlowCache {
            keys: [FlowKey::default(); FLOW_CACHE_SLOTS],
            used: [false; FLOW_CACHE_SLOTS],
            values: core::array::from_fn(|_| V::default()),
            recent: [0; FLOW_CACHE_SLOTS],
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
        let (way, hit) = match (0..WAYS).find(|&w| self.holds(base + w, key)) {
            Some(w) => (w, true),
            None => {
                let lru = (usize::from(self.recent[set]) + 1) % WAYS;
                let empty = (0..WAYS).find(|&w| !self.used[base + w]);
                (empty.unwrap_or(lru), false)
            }
        };
        self.recent[set] = way as u8;
        self.keys[base + way] = key;
        self.used[base + way] = true;
        (hit, &mut self.values[base + way])
    }

    fn holds(&self, i: usize, key: FlowKey) -> bool {
        self.used[i] && self.keys[i] == key
    }
}
