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
use super::nexthop::{route_bits, Members, NexthopMask, Route};
use super::strategy::{Env, Needs, Outcome, Selection, Strategy};

/// The nexthops with the most headroom seen so far.
struct Most {
    room: i64,
    ties: NexthopMask,
}

impl Default for Most {
    fn default() -> Self {
        Most {
            room: i64::MIN,
            ties: 0,
        }
    }
}

impl Most {
    fn offer(&mut self, i: usize, room: i64) {
        if room > self.room {
            (self.room, self.ties) = (room, 0);
        }
        if room == self.room {
            self.ties |= 1 << i;
        }
    }
}

fn uplink(route: &Route<'_>, i: usize) -> Option<u32> {
    route.nexthops.get(i).map(|nh| nh.uplink)
}

/// The bandwidth-usage strategy.
pub struct BandwidthStrategy;

impl BandwidthStrategy {
    /// What it needs (see [`Strategy::needs`]).
    pub const NEEDS: Needs = Needs {
        load: true,
        ..Needs::NOTHING
    };
}

impl Strategy for BandwidthStrategy {
    fn name(&self) -> &'static str {
        "bandwidth"
    }

    fn needs(&self) -> Needs {
        Self::NEEDS
    }

    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let usable = env.candidates(route) & route_bits(route);
        let mut most = Most::default();
        // Known capacities first: the unknown ones are measured against the
        // fastest of them (rare, so their loads are read again).
        let (mut fastest, mut unknown) = (0u64, 0);
        for i in Members(usable) {
            let load = uplink(route, i).and_then(|id| env.load.load(id));
            match load {
                Some(l) if l.capacity_bps == 0 => unknown |= 1 << i,
                Some(l) => {
                    fastest = fastest.max(l.capacity_bps);
                    most.offer(i, headroom(l.capacity_bps, l.rate_bps));
                }
                None => most.offer(i, 0),
            }
        }
        for i in Members(unknown) {
            let load = uplink(route, i).and_then(|id| env.load.load(id));
            most.offer(i, load.map_or(0, |l| headroom(fastest, l.rate_bps)));
        }
        // One best needs no rotation (and leaves the rotation of ties be).
        let index = match most.ties {
            0 => return None,
            t if t.is_power_of_two() => t.trailing_zeros() as usize,
            t => env.wrr.pick(route, t)?,
        };
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
