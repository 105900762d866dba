//! `bandwidth`: every packet takes the uplink with the most unused bandwidth,
//! capacity minus estimated rate (thesis 4.1.4).
//!
//! Capacity comes from configuration or the ethtool link speed. An uplink
//! whose capacity is unknown is assumed as fast as the fastest known sibling
//! of the route; if no sibling's capacity is known, the least loaded uplink
//! wins. A nexthop the netns does not track as an uplink is never a
//! candidate (see `Env::candidates`), so none gets an unknown, unbounded
//! headroom. Ties (say, idle uplinks of equal
//! capacity) rotate in weighted round-robin order rather than all landing on
//! the first.

use super::estimator::headroom;
use super::nexthop::{NexthopMask, Route, MAX_NEXTHOPS};
use super::strategy::{Env, Outcome, Selection, Strategy, UplinkLoad};

/// The bandwidth-usage strategy.
pub struct BandwidthStrategy;

impl Strategy for BandwidthStrategy {
    fn name(&self) -> &'static str {
        "bandwidth"
    }

    fn uses_load(&self) -> bool {
        true
    }

    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let usable = env.candidates(route);
        let mut loads = [None::<UplinkLoad>; MAX_NEXTHOPS];
        let mut fastest = 0u64;
        for (i, nh) in route.nexthops.iter().enumerate().take(MAX_NEXTHOPS) {
            if usable & (1 << i) != 0 {
                loads[i] = env.load.load(nh.uplink);
                fastest = fastest.max(loads[i].map_or(0, |l| l.capacity_bps));
            }
        }
        let mut best = i64::MIN;
        let mut ties: NexthopMask = 0;
        for (i, load) in loads.iter().enumerate().take(route.nexthops.len()) {
            if usable & (1 << i) == 0 {
                continue;
            }
            let room = match load {
                None => 0,
                Some(l) if l.capacity_bps != 0 => headroom(l.capacity_bps, l.rate_bps),
                Some(l) => headroom(fastest, l.rate_bps),
            };
            if room > best {
                best = room;
                ties = 0;
            }
            if room == best {
                ties |= 1 << i;
            }
        }
        let index = env.wrr.pick(route, ties)?;
        Some(Selection {
            index,
            outcome: Outcome::PerPacket,
        })
    }

    /// Until the next sample, what was sent counts as load, so packets fill
    /// the uplinks in order of headroom instead of all going to the one that
    /// had the most at the last sample.
    fn book(&self, env: &mut Env<'_>, id: u32, bits: u64) {
        env.load.book(id, bits);
    }
}
