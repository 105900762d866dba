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
//! A flow's entry is at the low bits of its hash, and `tag` holds the hash's
//! high 16 bits to tell most colliding flows apart. A collision costs only
//! stickiness (the flow starts a new flowlet), never a wrong uplink: the
//! strategy checks a remembered uplink against the route like any other.
//! `stamp` is a microsecond clock modulo 2^40 (12.7 days), so gaps must stay
//! far below that; uplink 0 marks a free entry.

use core::sync::atomic::{AtomicU64, Ordering};

/// Bits of the stamp.
const STAMP_BITS: u32 = 40;
const STAMP_MASK: u64 = (1 << STAMP_BITS) - 1;

/// Largest gap the stamp measures unambiguously, us (about 6 days; the
/// sysctl allows far less).
pub const MAX_GAP_US: u64 = 1 << (STAMP_BITS - 1);

/// A view of the table memory.
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
    /// Wraps `slots`; its length should be a power of two (anything else is
    /// rounded down).
    pub fn new(slots: &'a [AtomicU64]) -> Self {
        let len = match slots.len() {
            0 => 0,
            n => 1usize << (usize::BITS - 1 - n.leading_zeros()),
        };
        FlowletTable {
            slots: &slots[..len],
        }
    }

    fn slot(&self, flow: u32) -> Option<&'a AtomicU64> {
        // len is a power of two (or 0: `get` then finds nothing).
        self.slots
            .get(flow as usize & self.slots.len().wrapping_sub(1))
    }

    /// The uplink of `flow`'s flowlet and how long ago its stamp was
    /// written, if that is less than `gap_us`; `None` starts a new flowlet.
    #[inline]
    pub fn lookup(&self, flow: u32, now_us: u64, gap_us: u64) -> Option<(u32, u64)> {
        let e = self.slot(flow)?.load(Ordering::Relaxed);
        let (id, idle) = (uplink_of(e), idle_us(e, now_us));
        (id != 0 && e >> 48 == tag_of(flow) && idle < gap_us).then_some((id, idle))
    }

    /// `flow` sent a packet by uplink `id` at `now_us` (ids above 255 are
    /// not stored). Whoever writes last wins: two CPUs racing on one flow
    /// both chose for the same flowlet.
    #[inline]
    pub fn touch(&self, flow: u32, id: u32, now_us: u64) {
        if let Some(slot) = self.slot(flow).filter(|_| id != 0 && id <= 0xff) {
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
