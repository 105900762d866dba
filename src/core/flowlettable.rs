// SPDX-License-Identifier: GPL-2.0

//! The flowlet strategy's table: flow hash -> the uplink its current
//! flowlet takes, and when the flow last sent.
//!
//! Like the destination table it is a fixed array of atomic words allocated
//! with the netns, one word an entry, so CPUs share it without a lock and
//! the packet path allocates nothing:
//!
//! ```text
//!  63    48 47    40 39                0
//! | tag    | uplink | stamp (us)        |
//! ```
//!
//! A flow's entry is in the group of [`WAYS`] words the low bits of its hash
//! name, and `tag` holds the hash's high 16 bits to tell the flows of a
//! group apart. A new flowlet takes the flow's own entry, a free or expired
//! one, or the one idle longest. An eviction or two flows with one tag cost
//! only stickiness (a new flowlet), never a wrong uplink: the strategy
//! checks a remembered uplink against the route like any other.
//! `stamp` is a microsecond clock modulo 2^40 (12.7 days), so gaps must stay
//! far below that; uplink 0 marks a free entry.

use core::sync::atomic::{AtomicU64, Ordering};

/// Bits of the stamp.
const STAMP_BITS: u32 = 40;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;

/// Largest gap the stamp measures unambiguously, us (about 6 days; the
/// sysctl allows far less).
pub const MAX_GAP_US: u64 = 1 << (STAMP_BITS - 1);

/// Entries a flow may sit in (one 32-byte group): colliding flows evict
/// each other only when more than this many share a group.
pub const WAYS: usize = 4;

/// A flow's entry, as [`FlowletTable::lookup`] found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The flowlet's uplink.
    pub id: u32,
    /// How long ago its stamp was written.
    pub idle_us: u64,
    /// Where in the group.
    way: usize,
}

/// A view of the table memory.
#[derive(Clone, Copy)]
pub struct FlowletTable<'a> {
    slots: &'a [AtomicU64],
}

fn tag_of(flow: u32) -> u64 {
    u64::from(flow >> 16)
}

fn pack(flow: u32, uplink: u32, now_us: u64) -> u64 {
    (tag_of(flow) << 48) | (u64::from(uplink & 0xff) << 40) | (now_us & STAMP_MASK)
}

fn uplink_of(e: u64) -> u32 {
    ((e >> 40) & 0xff) as u32
}

/// Microseconds from the entry's stamp to `now_us`, modulo 2^40.
fn idle_us(e: u64, now_us: u64) -> u64 {
    now_us.wrapping_sub(e) & STAMP_MASK
}

impl FlowletTable<'static> {
    /// A table that stores nothing: every packet starts a flowlet.
    pub const EMPTY: FlowletTable<'static> = FlowletTable { slots: &[] };
}

impl<'a> FlowletTable<'a> {
    /// Wraps `slots`; its length should be a power of two of at least
    /// [`WAYS`] (anything else is rounded down).
    pub fn new(slots: &'a [AtomicU64]) -> Self {
        let len = match slots.len() {
            n if n < WAYS => 0,
            n => 1usize << (usize::BITS - 1 - n.leading_zeros()),
        };
        FlowletTable {
            slots: &slots[..len],
        }
    }

    /// The group of [`WAYS`] entries `flow` may sit in (`None` for a table
    /// without one). A fixed-size group, so loops over it unroll.
    #[inline]
    fn group(&self, flow: u32) -> Option<&'a [AtomicU64; WAYS]> {
        let groups = self.slots.len() / WAYS;
        let g = flow as usize & groups.wrapping_sub(1);
        self.slots.get(g * WAYS..(g + 1) * WAYS)?.try_into().ok()
    }

    /// `flow`'s flowlet, if its stamp was written less than `gap_us` ago;
    /// `None` starts a new flowlet.
    #[inline]
    pub fn lookup(&self, flow: u32, now_us: u64, gap_us: u64) -> Option<Found> {
        let tag = tag_of(flow);
        self.group(flow)?
            .iter()
            .enumerate()
            .find_map(|(way, slot)| {
                let e = slot.load(Ordering::Relaxed);
                let (id, idle_us) = (uplink_of(e), idle_us(e, now_us));
                (e >> 48 == tag && id != 0 && idle_us < gap_us).then_some(Found {
                    id,
                    idle_us,
                    way,
                })
            })
    }

    /// A packet of the flowlet `found` at `now_us`: its stamp moves on.
    #[inline]
    pub fn refresh(&self, flow: u32, found: &Found, now_us: u64) {
        if let Some(slot) = self.group(flow).and_then(|g| g.get(found.way)) {
            slot.store(pack(flow, found.id, now_us), Ordering::Relaxed);
        }
    }

    /// A new flowlet of `flow` on uplink `id` at `now_us` (ids above 255
    /// are not stored), in the group's entry of the flow, else a free one
    /// or one idle for `gap_us`, else the one idle longest. Whoever writes
    /// last wins: two CPUs racing on one flow both chose for it.
    pub fn place(&self, flow: u32, id: u32, now_us: u64, gap_us: u64) {
        if id == 0 || id > 0xff {
            return;
        }
        let tag = tag_of(flow);
        let mut victim: Option<(&AtomicU64, u64)> = None;
        for slot in self.group(flow).into_iter().flatten() {
            let e = slot.load(Ordering::Relaxed);
            let idle = if uplink_of(e) == 0 {
                u64::MAX
            } else {
                idle_us(e, now_us)
            };
            if e >> 48 == tag || idle >= gap_us {
                victim = Some((slot, u64::MAX));
                if e >> 48 == tag {
                    break;
                }
            } else if victim.map_or(true, |(_, v)| idle > v) {
                victim = Some((slot, idle));
            }
        }
        if let Some((slot, _)) = victim {
            slot.store(pack(flow, id, now_us), Ordering::Relaxed);
        }
    }

    /// Forgets every flowlet on uplink `id` (it went away).
    pub fn flush_uplink(&self, id: u32) {
        for slot in self.slots {
            let e = slot.load(Ordering::Relaxed);
            if e != 0 && uplink_of(e) == id {
                let _ = slot.compare_exchange(e, 0, Ordering::Relaxed, Ordering::Relaxed);
            }
        }
    }

    /// Flows that sent within `gap_us` of `now_us` (for stats; O(table)).
    pub fn live_entries(&self, now_us: u64, gap_us: u64) -> usize {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .filter(|&e| uplink_of(e) != 0 && idle_us(e, now_us) < gap_us)
            .count()
    }

    /// Capacity in entries.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }
}
