// SPDX-License-Identifier: GPL-2.0

//! `bandwidth`: every packet takes the uplink with the most unused bandwidth,
//! capacity minus estimated rate (thesis 4.1.4).
//!
//! Capacity comes from configuration or the ethtool link speed. An uplink
//! whose capacity is unknown is assumed as fast as the fastest uplink of the
//! netns whose capacity is known; if none is known, the least loaded uplink
//! wins. A nexthop the netns does not track as an uplink is never a
//! candidate (see `Env::candidates`), so none gets an unknown, unbounded
//! headroom.
//!
//! The load table keeps the uplinks in a tournament tree by headroom and
//! books what each packet sends, so the choice is the tree's winner among
//! the uplinks the route may use: its cost does not grow with the nexthops.
//! Ties (say, idle uplinks of equal capacity) go to the lower id; booking
//! then puts the chosen one behind the others, so such uplinks take turns.

use super::nexthop::Route;
use super::strategy::{Direct, Env, Needs, Outcome, Selection, Strategy};

/// The bandwidth-usage strategy.
pub struct BandwidthStrategy;

impl Direct for BandwidthStrategy {
    const NEEDS: Needs = Needs {
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

    /// The choice is booked at once: until the next sample, what was sent
    /// counts as load, so packets fill the uplinks in order of headroom
    /// instead of all going to the one that had the most at the last
    /// sample.
    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let usable = env.candidates(route);
        let (_, index) = env.load.take_nexthop::<false>(route, usable, env.bits)?;
        Some(Selection {
            index,
            outcome: Outcome::PerPacket,
        })
    }
}
