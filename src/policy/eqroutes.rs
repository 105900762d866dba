//! The equalize routes of a netns, as the FIB notifier reports them.
//!
//! Only routes mpbal can steer count (`RouteKind::EQUALIZE`); the others
//! are reported once and left to stock ECMP. Only their count and
//! nexthop devices matter: the count lets netns without
//! equalize routes skip all work with one atomic load per packet, and the
//! devices are the uplinks. The packet path never reads this set; it does
//! its own route lookup.

use super::counters::MAX_UPLINKS;
use crate::mpbal_core::nexthop::{RouteKind, MAX_NEXTHOPS};
use crate::sys::fib::{FibEvent, FibRoute};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::Result;

/// Equalize routes remembered per netns. Beyond this they are still
/// steered, but counted as untracked and their devices are not uplinks.
pub(crate) const MAX_EQUALIZE_ROUTES: usize = 64;

#[derive(Clone, Copy, Default)]
struct Entry {
    used: bool,
    tb_id: u32,
    dst: u32,
    dst_len: u32,
    nr_oifs: usize,
    oifs: [u32; MAX_NEXTHOPS],
}

impl Entry {
    fn is(&self, r: &FibRoute) -> bool {
        self.used && self.tb_id == r.tb_id() && self.dst == r.dst() && self.dst_len == r.dst_len()
    }
}

/// The set; callers serialize (a spinlock: the notifier runs atomically).
pub(crate) struct EqRouteSet {
    /// Always `MAX_EQUALIZE_ROUTES` long: allocated once, never grown from
    /// the notifier's atomic context.
    entries: KVec<Entry>,
    /// Equalize routes that found no free entry. Sticky until the next full
    /// dump, because a later DEL cannot tell whether it was one of them.
    untracked: u32,
}

impl EqRouteSet {
    pub(crate) fn new() -> Result<Self> {
        Ok(EqRouteSet {
            entries: KVec::from_elem(Entry::default(), MAX_EQUALIZE_ROUTES, GFP_KERNEL)?,
            untracked: 0,
        })
    }

    /// Applies one notifier event.
    pub(crate) fn apply(&mut self, ev: FibEvent<'_>) {
        let (r, equalize) = match ev {
            FibEvent::Replace(r) => {
                let kind = RouteKind::classify(
                    r.is_unicast(),
                    r.paths(),
                    r.equalize_flag(),
                    r.nh_object(),
                );
                (r, kind == RouteKind::EQUALIZE)
            }
            FibEvent::Del(r) => (r, false),
        };
        let entries = self.entries.as_mut_slice();
        let existing = entries.iter().position(|e| e.is(r));
        if !equalize {
            if let Some(i) = existing {
                entries[i].used = false;
            }
            return;
        }
        let slot = existing.or_else(|| entries.iter().position(|e| !e.used));
        let Some(i) = slot else {
            self.untracked = self.untracked.saturating_add(1);
            return;
        };
        let oifs = r.oifs();
        let mut e = Entry {
            used: true,
            tb_id: r.tb_id(),
            dst: r.dst(),
            dst_len: r.dst_len(),
            nr_oifs: oifs.len(),
            ..Entry::default()
        };
        e.oifs[..oifs.len()].copy_from_slice(oifs);
        entries[i] = e;
    }

    /// Forgets everything (the notifier restarts its dump).
    pub(crate) fn flush(&mut self) {
        for e in self.entries.as_mut_slice() {
            e.used = false;
        }
        self.untracked = 0;
    }

    /// Equalize routes known, including untracked ones.
    pub(crate) fn count(&self) -> u32 {
        let tracked = self.entries.iter().filter(|e| e.used).count() as u32;
        tracked.saturating_add(self.untracked)
    }

    pub(crate) fn untracked(&self) -> u32 {
        self.untracked
    }

    /// The union of nexthop devices, at most [`MAX_UPLINKS`]; returns how
    /// many were written.
    pub(crate) fn oifs(&self, out: &mut [u32; MAX_UPLINKS]) -> usize {
        let mut n = 0;
        for e in self.entries.iter().filter(|e| e.used) {
            for &oif in &e.oifs[..e.nr_oifs] {
                if oif != 0 && !out[..n].contains(&oif) && n < MAX_UPLINKS {
                    out[n] = oif;
                    n += 1;
                }
            }
        }
        n
    }
}
