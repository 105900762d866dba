//! Per-CPU counters of one netns, summed when read.

use core::sync::atomic::{AtomicU64, Ordering};

/// Uplinks tracked per netns: devices that are nexthops of equalize routes.
pub(crate) const MAX_UPLINKS: usize = 32;

macro_rules! counters {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// Global counters, in `/proc/net/mpbal/stats` order.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub(crate) enum Counter { $($(#[$doc])* $variant,)* }

        impl Counter {
            pub(crate) const ALL: &'static [Counter] = &[$(Counter::$variant,)*];

            /// Name in `/proc/net/mpbal/stats`.
            pub(crate) fn name(self) -> &'static str {
                match self { $(Counter::$variant => $name,)* }
            }
        }
    };
}

counters! {
    /// Forwarded packets on equalize routes (PRE_ROUTING).
    PacketsFwd => "packets_fwd",
    /// Locally generated packets on equalize routes (LOCAL_OUT).
    PacketsLocal => "packets_local",
    /// Packets on multipath routes without `equalize`, left to stock ECMP.
    PacketsMultipath => "packets_multipath",
    /// Packets whose nexthop mpbal chose.
    Steered => "steered",
    /// Choices taken from memory (destination table, connection mark).
    Remembered => "remembered",
    /// First choices for a new destination or connection.
    NewChoices => "new_choices",
    /// New connections assigned an uplink (session strategy).
    SessionsNew => "sessions_new",
    /// Remembered uplink still a nexthop but dead or link-down: chose again.
    RechosenDead => "rechosen_dead",
    /// Remembered uplink no longer a nexthop of the route: chose again.
    RechosenGone => "rechosen_gone",
    /// Session strategy on packets without conntrack (chosen per packet).
    Untracked => "untracked",
    /// Inbound connections whose uplink was remembered for their replies.
    InboundRecorded => "inbound_recorded",
    /// No usable nexthop: left to the kernel.
    FallbackNoUsable => "fallback_no_usable",
    /// fib_multipath_hash_policy is not 1 here: forwarded packets not steered.
    FallbackHashPolicy => "fallback_hash_policy",
    /// Equalize route with nexthop objects or too many paths: not steered.
    FallbackUnsupported => "fallback_unsupported",
    /// Rerouting a local packet to the chosen uplink failed.
    FallbackReroute => "fallback_reroute",
    /// The kernel sent a steered packet elsewhere (e.g. neighbour failure).
    FallbackDiverted => "fallback_diverted",
    /// An uplink ifindex did not fit in ct_mark_mask: not remembered.
    MarkOverflow => "mark_overflow",
    /// A hook re-entered on the same CPU (a packet sent from a hook).
    Reentered => "reentered",
    /// FIB lookups PRE_ROUTING made: packets its per-CPU route cache missed.
    RouteLookups => "route_lookups",
}

const NCOUNTERS: usize = Counter::ALL.len();

/// One CPU's counters. Only the owning CPU writes (with BH disabled), so a
/// relaxed load+store is enough and no locked instruction is needed.
pub(crate) struct CpuCounters {
    global: [AtomicU64; NCOUNTERS],
    uplink_packets: [AtomicU64; MAX_UPLINKS],
    uplink_bytes: [AtomicU64; MAX_UPLINKS],
}

impl Default for CpuCounters {
    fn default() -> Self {
        CpuCounters {
            global: core::array::from_fn(|_| AtomicU64::new(0)),
            uplink_packets: core::array::from_fn(|_| AtomicU64::new(0)),
            uplink_bytes: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl CpuCounters {
    pub(crate) fn add(&self, c: Counter, n: u64) {
        bump(&self.global[c as usize], n);
    }

    pub(crate) fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    pub(crate) fn add_uplink(&self, slot: usize, packets: u64, bytes: u64) {
        if slot < MAX_UPLINKS {
            bump(&self.uplink_packets[slot], packets);
            bump(&self.uplink_bytes[slot], bytes);
        }
    }

    pub(crate) fn get(&self, c: Counter) -> u64 {
        self.global[c as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn get_uplink(&self, slot: usize) -> (u64, u64) {
        if slot >= MAX_UPLINKS {
            return (0, 0);
        }
        (
            self.uplink_packets[slot].load(Ordering::Relaxed),
            self.uplink_bytes[slot].load(Ordering::Relaxed),
        )
    }
}
