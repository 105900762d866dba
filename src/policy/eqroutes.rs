// SPDX-License-Identifier: GPL-2.0

//! The equalize routes of a netns, as the FIB notifier reports them.
//!
//! Only routes mpbal can steer count (`RouteKind::EQUALIZE`); the others
//! are reported once and left to stock ECMP. Only their count and nexthops
//! matter: the count turns the netns's hooks on and off, and the nexthops are
//! the uplinks. The packet path never reads this set; it does its own route
//! lookup.
//!
//! Events for routes that are not equalize routes cost O(1): a deleted route
//! says what it was, and a replaced prefix is looked for only if a small
//! filter says it may be here. The entries are allocated with the first
//! equalize route (atomic context), so a netns without any holds none.
//!
//! At most [`MAX_EQUALIZE_ROUTES`] are tracked. Beyond that a route is
//! counted as untracked, is not steered (its nexthops are not uplinks), and
//! because an event cannot tell a new untracked route from a replaced one,
//! the set asks for a replay of every route, which makes it exact again.

use super::counters::MAX_UPLINKS;
use super::routecache::kind_of;
use crate::mpbal_core::nexthop::{RouteKind, MAX_NEXTHOPS};
use crate::sys::fib::{FibEvent, FibRoute};
use kernel::alloc::{flags::GFP_ATOMIC, KVec};

/// Equalize routes tracked per netns.
pub(crate) const MAX_EQUALIZE_ROUTES: usize = 64;

#[derive(Clone, Copy, Default)]
struct Entry {
    used: bool,
    tb_id: u32,
    dst: u32,
    dst_len: u32,
    nr_nexthops: usize,
    /// `(ifindex, gateway)` of each nexthop.
    nexthops: [(u32, u32); MAX_NEXTHOPS],
}

impl Entry {
    fn is(&self, r: &FibRoute) -> bool {
        self.used && self.tb_id == r.tb_id() && self.dst == r.dst() && self.dst_len == r.dst_len()
    }
}

/// A bit per prefix hash: clear means "no entry for that prefix".
fn filter_bit(tb_id: u32, dst: u32, dst_len: u32) -> u64 {
    let h = (dst ^ tb_id.rotate_left(8) ^ dst_len.rotate_left(24)).wrapping_mul(0x9e37_79b1);
    1 << (h >> 26)
}

fn is_equalize(r: &FibRoute) -> bool {
    kind_of(r) == RouteKind::EQUALIZE
}

/// What an event did to the set.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing that matters to mpbal.
    None,
    /// The set of equalize routes or their nexthops changed.
    Routes,
}

/// The set; callers serialize (a spinlock: the notifier runs atomically).
pub(crate) struct EqRouteSet {
    /// Empty until the first equalize route, then exactly the maximum
    /// (6.12's `KVec` cannot remove elements; `used` marks the live ones).
    entries: KVec<Entry>,
    /// Live entries.
    len: usize,
    filter: u64,
    /// Equalize routes that found no entry (or no memory).
    untracked: u32,
    /// The record is not exact: ask the FIB to replay every route.
    resync: bool,
    /// Entries could not be allocated (the netns is not balanced).
    alloc_failed: bool,
    /// A replay of every route is under way: it is exact when it ends.
    replaying: bool,
}

impl EqRouteSet {
    pub(crate) const fn new() -> Self {
        EqRouteSet {
            entries: KVec::new(),
            len: 0,
            filter: 0,
            untracked: 0,
            resync: false,
            alloc_failed: false,
            replaying: false,
        }
    }

    fn position(&self, r: &FibRoute) -> Option<usize> {
        if self.filter & filter_bit(r.tb_id(), r.dst(), r.dst_len()) == 0 {
            return None;
        }
        self.entries.iter().position(|e| e.is(r))
    }

    fn remove(&mut self, i: usize) {
        if let Some(e) = self.entries.as_mut_slice().get_mut(i) {
            e.used = false;
            self.len -= 1;
        }
        // A free entry: an untracked route may have it, after a replay.
        self.want_resync();
        self.filter = self
            .entries
            .iter()
            .filter(|e| e.used)
            .fold(0, |f, e| f | filter_bit(e.tb_id, e.dst, e.dst_len));
    }

    fn want_resync(&mut self) {
        if self.untracked > 0 && !self.replaying {
            self.resync = true;
        }
    }

    fn untracked_route(&mut self) {
        self.untracked = self.untracked.saturating_add(1);
        self.want_resync();
    }

    /// Applies one notifier event.
    pub(crate) fn apply(&mut self, ev: FibEvent<'_>) -> Change {
        match ev {
            FibEvent::Del(r) => {
                if !is_equalize(r) {
                    // Cannot have been one of ours: O(1).
                    return Change::None;
                }
                match self.position(r) {
                    Some(i) => self.remove(i),
                    // Not tracked, so it was an untracked one.
                    None if self.untracked > 0 => self.untracked -= 1,
                    None => return Change::None,
                }
                Change::Routes
            }
            FibEvent::Replace(r) => {
                let existing = self.position(r);
                if !is_equalize(r) {
                    // Replaced without the flag (or no longer steerable).
                    if let Some(i) = existing {
                        self.remove(i);
                        return Change::Routes;
                    }
                    // It may have been an untracked equalize route.
                    self.want_resync();
                    return Change::None;
                }
                let mut e = Entry {
                    used: true,
                    tb_id: r.tb_id(),
                    dst: r.dst(),
                    dst_len: r.dst_len(),
                    ..Entry::default()
                };
                for (slot, nh) in e.nexthops.iter_mut().zip(r.nexthops()) {
                    *slot = nh;
                    e.nr_nexthops += 1;
                }
                if self.entries.is_empty() {
                    match KVec::from_elem(Entry::default(), MAX_EQUALIZE_ROUTES, GFP_ATOMIC) {
                        Ok(v) => {
                            self.entries = v;
                            self.alloc_failed = false;
                        }
                        Err(_) => {
                            self.alloc_failed = true;
                            self.untracked_route();
                            return Change::Routes;
                        }
                    }
                }
                let slot = existing.or_else(|| self.entries.iter().position(|e| !e.used));
                let Some(entry) = slot.and_then(|i| self.entries.as_mut_slice().get_mut(i)) else {
                    self.untracked_route();
                    return Change::Routes;
                };
                *entry = e;
                if existing.is_none() {
                    self.len += 1;
                    self.filter |= filter_bit(e.tb_id, e.dst, e.dst_len);
                }
                Change::Routes
            }
        }
    }

    /// A replay starts (`true`: [`flush`](Self::flush) first) or ends.
    pub(crate) fn set_replaying(&mut self, on: bool) {
        self.replaying = on;
    }

    pub(crate) fn replaying(&self) -> bool {
        self.replaying
    }

    /// Forgets everything (the notifier restarts its dump).
    pub(crate) fn flush(&mut self) {
        for e in self.entries.as_mut_slice() {
            e.used = false;
        }
        self.len = 0;
        self.filter = 0;
        self.untracked = 0;
        self.resync = false;
    }

    /// Equalize routes known, including untracked ones.
    pub(crate) fn count(&self) -> u32 {
        (self.len as u32).saturating_add(self.untracked)
    }

    pub(crate) fn untracked(&self) -> u32 {
        self.untracked
    }

    pub(crate) fn alloc_failed(&self) -> bool {
        self.alloc_failed
    }

    /// Whether a replay is wanted; clears the request.
    pub(crate) fn take_resync(&mut self) -> bool {
        core::mem::take(&mut self.resync)
    }

    /// The union of nexthops `(ifindex, gateway)`, in route and nexthop
    /// order; returns how many were written (at most [`MAX_UPLINKS`]) and how
    /// many more there were.
    pub(crate) fn nexthops(&self, out: &mut [(u32, u32); MAX_UPLINKS]) -> (usize, u32) {
        let (mut n, mut more) = (0, 0u32);
        for (i, e) in self.entries.iter().enumerate().filter(|(_, e)| e.used) {
            for (j, &nh) in e.nexthops.iter().take(e.nr_nexthops).enumerate() {
                if nh.0 == 0 || out[..n].contains(&nh) {
                    continue;
                }
                if n < MAX_UPLINKS {
                    out[n] = nh;
                    n += 1;
                } else if !self.seen_before(i, j, nh) {
                    // Counted once, however many routes share it.
                    more = more.saturating_add(1);
                }
            }
        }
        (n, more)
    }

    /// Whether `nh` is a nexthop of a live entry before entry `i`, or
    /// before its nexthop `j`. Only asked beyond the uplinks that fit.
    fn seen_before(&self, i: usize, j: usize, nh: (u32, u32)) -> bool {
        self.entries.iter().take(i + 1).enumerate().any(|(k, e)| {
            let upto = if k == i { j } else { e.nr_nexthops };
            e.used && e.nexthops.iter().take(upto).any(|&x| x == nh)
        })
    }

    /// Frees the entries once the netns has no equalize route left.
    pub(crate) fn shrink(&mut self) {
        if self.len == 0 && !self.entries.is_empty() {
            self.entries = KVec::new();
        }
    }
}
