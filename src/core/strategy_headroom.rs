// SPDX-License-Identifier: GPL-2.0

//! `headroom`: every packet takes the uplink with the largest *share* of its
//! capacity unused, `(capacity - load) / capacity`, so every uplink runs at
//! the same fraction of its capacity (the strategy the thesis proposes as
//! future work, chapter 7).
//!
//! Where `bandwidth` compares unused bit/s, and so leaves a slow uplink idle
//! while a fast one has more bit/s to spare, this keeps the slow uplink at
//! the same utilization as the others: traffic splits in proportion to
//! capacity, and no uplink is pushed past its capacity while another still
//! has room. The load is the estimate plus what was sent since it (booked
//! per packet, as for `bandwidth`), so packets between two samples spread
//! by share instead of herding onto the uplink that led at the sample.
//!
//! Capacities as for `bandwidth`: configured, else the ethtool speed, else
//! the fastest known uplink's; with none known, the least loaded uplink
//! wins. Ties go to the lower id and booking makes equal uplinks take turns.

use super::nexthop::Route;
use super::strategy::{Direct, Env, Needs, Outcome, Selection, Strategy};

/// The capacity-share strategy.
pub struct HeadroomStrategy;

impl Direct for HeadroomStrategy {
    const NEEDS: Needs = Needs {
        load: true,
        ..Needs::NOTHING
    };
}

impl Strategy for HeadroomStrategy {
    fn name(&self) -> &'static str {
        "headroom"
    }

    fn needs(&self) -> Needs {
        Self::NEEDS
    }

    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let usable = env.candidates(route);
        let (_, index) = env.load.take_nexthop::<true>(route, usable, env.bits)?;
        Some(Selection {
            index,
            outcome: Outcome::PerPacket,
        })
    }
}
