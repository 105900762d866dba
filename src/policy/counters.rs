// SPDX-License-Identifier: GPL-2.0

//! Per-CPU counters of one netns, summed when read.

use crate::sys::percpu::CpuCounter;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::macros::Zeroable;

/// Uplinks tracked per netns: devices that are nexthops of equalize routes
/// (as many as the bandwidth strategy's load table holds).
pub(crate) const MAX_UPLINKS: usize = crate::mpbal_core::loadtable::MAX_UPLINK_IDS;

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
    /// Flows that paused for the flowlet gap and took another uplink.
    FlowletMoves => "flowlet_moves",
    /// Flows that paused for the flowlet gap but stayed: their uplink's
    /// queue was longer than the new one's by more than the pause.
    FlowletHeld => "flowlet_held",
    /// Inbound connections whose uplink was remembered for their replies.
    InboundRecorded => "inbound_recorded",
    /// Replies of inbound connections sent through the uplink they came in
    /// by, under a strategy that does not remember connections itself.
    InboundReplies => "inbound_replies",
    /// Local packets left alone: bound to a device (SO_BINDTODEVICE,
    /// IP_UNICAST_IF) or routed in a VRF.
    LocalPinned => "local_pinned",
    /// Local packets kept to the uplinks of the device owning their source
    /// address.
    LocalSrcPinned => "local_src_pinned",
    /// Local packets left to their IPsec transform (already on an xfrm
    /// route).
    LocalIpsec => "local_ipsec",
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
    /// An uplink id did not fit in ct_mark_mask: not remembered.
    MarkOverflow => "mark_overflow",
    /// A hook re-entered on the same CPU (a packet sent from a hook).
    Reentered => "reentered",
    /// FIB lookups PRE_ROUTING made: packets its per-CPU route cache missed.
    RouteLookups => "route_lookups",
}

const NCOUNTERS: usize = Counter::ALL.len();

/// Counts that outlive the per-CPU counters: those are freed when the netns
/// has no equalize route left, and their sums are added here first.
pub(crate) struct Totals {
    global: [AtomicU64; NCOUNTERS],
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            global: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Totals {
    pub(crate) fn get(&self, c: Counter) -> u64 {
        self.global
            .get(c as usize)
            .map_or(0, |v| v.load(Ordering::Relaxed))
    }

    pub(crate) fn add(&self, c: Counter, n: u64) {
        if let Some(v) = self.global.get(c as usize) {
            v.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// One CPU's counters (see `CpuCounter` for why no locked instruction).
#[derive(Zeroable)]
pub(crate) struct CpuCounters {
    global: [CpuCounter; NCOUNTERS],
    uplink_packets: [CpuCounter; MAX_UPLINKS],
    uplink_bytes: [CpuCounter; MAX_UPLINKS],
}

impl CpuCounters {
    pub(crate) fn add(&self, c: Counter, n: u64) {
        if let Some(c) = self.global.get(c as usize) {
            c.add(n);
        }
    }

    pub(crate) fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    pub(crate) fn add_uplink(&self, slot: usize, packets: u64, bytes: u64) {
        if let (Some(p), Some(b)) = (self.uplink_packets.get(slot), self.uplink_bytes.get(slot)) {
            p.add(packets);
            b.add(bytes);
        }
    }

    pub(crate) fn get(&self, c: Counter) -> u64 {
        self.global.get(c as usize).map_or(0, CpuCounter::get)
    }

    pub(crate) fn get_uplink(&self, slot: usize) -> (u64, u64) {
        match (self.uplink_packets.get(slot), self.uplink_bytes.get(slot)) {
            (Some(p), Some(b)) => (p.get(), b.get()),
            _ => (0, 0),
        }
    }
}
