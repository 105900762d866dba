// SPDX-License-Identifier: GPL-2.0

//! The per-destination table of the route strategy: daddr -> uplink id.
//!
//! It stands in for the 2.4 route cache the thesis relied on. Lock-free and
//! allocation-free on the packet path: the table is a fixed array of atomic
//! words allocated with the netns, each word one whole entry, so a reader
//! never sees a torn entry and writers need no lock:
//!
//! ```text
//!  63      48 47      32 31              0
//! | stamp    | uplink   | daddr            |
//! ```
//!
//! `stamp` is the last-use time in seconds modulo 2^16, so idle timeouts must
//! stay below 2^15 s. Address 0.0.0.0 is never forwarded, so a zero word
//! means "free". Lookups probe one aligned group of [`WAYS`] words; a full
//! group evicts its least recently used entry. Two CPUs racing to place the
//! same new destination agree through [`DestTable::claim`]: the first
//! compare-and-swap wins and the loser follows its choice.

use core::sync::atomic::{AtomicU64, Ordering};

/// Entries probed per lookup (one 32-byte group).
pub const WAYS: usize = 4;

/// Largest idle timeout the 16-bit stamp can express unambiguously.
pub const MAX_IDLE_TIMEOUT_S: u32 = 1 << 15;

/// Result of [`DestTable::insert`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// Stored in a free or expired entry (or updated in place).
    Stored,
    /// Stored by evicting a live entry: the table is too small for the load.
    Evicted,
    /// Not stored: id above 65535, or the table has no room at all.
    NotStored,
}

/// Result of [`DestTable::claim`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Stored in a free or expired entry (or over the stale one).
    Stored,
    /// Stored by evicting a live entry.
    Evicted,
    /// Another CPU stored this uplink for the destination first: use it.
    Taken(u32),
    /// Not stored: id above 65535, or contention.
    NotStored,
}

/// A view of the table memory.
pub struct DestTable<'a> {
    slots: &'a [AtomicU64],
}

fn pack(daddr: u32, uplink: u32, now_s: u32) -> u64 {
    u64::from(daddr) | (u64::from(uplink) << 32) | (u64::from(now_s & 0xffff) << 48)
}

fn daddr_of(e: u64) -> u32 {
    e as u32
}

fn uplink_of(e: u64) -> u32 {
    ((e >> 32) & 0xffff) as u32
}

fn age(e: u64, now_s: u32) -> u32 {
    (now_s as u16).wrapping_sub((e >> 48) as u16).into()
}

impl DestTable<'static> {
    /// A table that stores nothing, for strategies that keep none.
    pub const EMPTY: DestTable<'static> = DestTable { slots: &[] };
}

impl<'a> DestTable<'a> {
    /// Wraps `slots`; its length should be a power of two and at least
    /// [`WAYS`] (anything else is rounded down; an empty table stores nothing).
    pub fn new(slots: &'a [AtomicU64]) -> Self {
        let len = if slots.len() < WAYS {
            0
        } else {
            1usize << (usize::BITS - 1 - slots.len().leading_zeros())
        };
        DestTable {
            slots: &slots[..len],
        }
    }

    fn group(&self, daddr: u32) -> &'a [AtomicU64] {
        let groups = self.slots.len() / WAYS;
        if groups == 0 {
            return &[];
        }
        // Fibonacci hashing, reduced with the product's high bits: every
        // address bit reaches them (the low bits only see the low address
        // bits, which for a big-endian IPv4 address are its constant first
        // octets).
        let h = daddr.wrapping_mul(0x9e37_79b1);
        let g = ((u64::from(h) * groups as u64) >> 32) as usize;
        // Never out of range (g < groups); `get` keeps the path panic-free.
        self.slots.get(g * WAYS..(g + 1) * WAYS).unwrap_or(&[])
    }

    /// The uplink `daddr` was given, if its entry has not been idle for
    /// `timeout_s` or longer. Refreshes the stamp (at most once a second, so a
    /// busy destination costs no write per packet).
    pub fn lookup(&self, daddr: u32, now_s: u32, timeout_s: u32) -> Option<u32> {
        if daddr == 0 {
            return None;
        }
        for slot in self.group(daddr) {
            let e = slot.load(Ordering::Relaxed);
            if daddr_of(e) != daddr {
                continue;
            }
            if age(e, now_s) >= timeout_s {
                return None;
            }
            let fresh = pack(daddr, uplink_of(e), now_s);
            if fresh != e {
                // Losing this race to another refresh or insert is harmless.
                let _ = slot.compare_exchange(e, fresh, Ordering::Relaxed, Ordering::Relaxed);
            }
            return Some(uplink_of(e));
        }
        None
    }

    /// Remembers uplink `id` for `daddr`, replacing any entry for it.
    pub fn insert(&self, daddr: u32, id: u32, now_s: u32, timeout_s: u32) -> Insert {
        match self.store(daddr, id, None, now_s, timeout_s) {
            Claim::Stored => Insert::Stored,
            Claim::Evicted => Insert::Evicted,
            Claim::Taken(_) | Claim::NotStored => Insert::NotStored,
        }
    }

    /// Remembers uplink `id` for `daddr` unless another CPU got there first: an
    /// entry for `daddr` whose uplink is not `stale` (the one the caller
    /// found unusable, 0 for none) wins, and its uplink is returned, so a
    /// destination never ends up with two uplinks.
    pub fn claim(&self, daddr: u32, id: u32, stale: u32, now_s: u32, timeout_s: u32) -> Claim {
        self.store(daddr, id, Some(stale), now_s, timeout_s)
    }

    /// `keep`: `None` replaces any entry for `daddr`; `Some(stale)` yields
    /// to an entry for `daddr` with another uplink than `stale`.
    fn store(&self, daddr: u32, id: u32, keep: Option<u32>, now_s: u32, timeout_s: u32) -> Claim {
        if daddr == 0 || id == 0 || id > 0xffff {
            return Claim::NotStored;
        }
        let group = self.group(daddr);
        let new = pack(daddr, id, now_s);
        // A lost race re-reads the group; a few rounds settle any contest.
        for _ in 0..4 {
            let Some((i, old, evicts)) = self.victim(group, daddr, now_s, timeout_s) else {
                return Claim::NotStored;
            };
            if let Some(stale) = keep {
                if old != 0
                    && daddr_of(old) == daddr
                    && uplink_of(old) != stale
                    && age(old, now_s) < timeout_s
                {
                    return Claim::Taken(uplink_of(old));
                }
            }
            match group[i].compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) if evicts => return Claim::Evicted,
                Ok(_) => return Claim::Stored,
                Err(_) => continue,
            }
        }
        Claim::NotStored
    }

    /// The entry to write for `daddr`: the one already holding it (wherever
    /// it is in the group), else a free or expired one, else the least
    /// recently used (`true`: a live entry is evicted).
    fn victim(
        &self,
        group: &[AtomicU64],
        daddr: u32,
        now_s: u32,
        timeout_s: u32,
    ) -> Option<(usize, u64, bool)> {
        let mut victim: Option<(usize, u64, bool)> = None;
        let mut oldest = 0u32;
        for (i, slot) in group.iter().enumerate() {
            let e = slot.load(Ordering::Relaxed);
            if e != 0 && daddr_of(e) == daddr {
                return Some((i, e, false));
            }
            let a = age(e, now_s);
            let reusable = e == 0 || a >= timeout_s;
            match victim {
                Some((_, _, false)) => {}
                _ if reusable => victim = Some((i, e, false)),
                None => {
                    oldest = a;
                    victim = Some((i, e, true));
                }
                Some(_) if a > oldest => {
                    oldest = a;
                    victim = Some((i, e, true));
                }
                Some(_) => {}
            }
        }
        victim
    }

    /// Number of entries not idle for `timeout_s` (for stats; O(table)).
    pub fn live_entries(&self, now_s: u32, timeout_s: u32) -> usize {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&e| e != 0 && age(e, now_s) < timeout_s)
            .count()
    }

    /// Forgets every entry that points at uplink `id` (it went away).
    pub fn flush_uplink(&self, id: u32) {
        for slot in self.slots {
            let e = slot.load(Ordering::Relaxed);
            if e != 0 && uplink_of(e) == id {
                let _ = slot.compare_exchange(e, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }

    /// Capacity in entries.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}
