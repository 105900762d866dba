// SPDX-License-Identifier: GPL-2.0

//! `packet`: every packet takes the next uplink in smooth weighted
//! round-robin order, whatever its destination (thesis 4.1.2, the "nano"
//! patch). Reorders packets of a flow across uplinks.

use super::nexthop::Route;
use super::strategy::{Direct, Env, Needs, Outcome, Selection, Strategy};

/// The per-packet strategy.
pub struct PacketStrategy;

impl Direct for PacketStrategy {
    const NEEDS: Needs = Needs::NOTHING;
}

impl Strategy for PacketStrategy {
    fn name(&self) -> &'static str {
        "packet"
    }

    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let index = env.wrr.pick(route, env.candidates(route))?;
        Some(Selection {
            index,
            outcome: Outcome::PerPacket,
        })
    }
}
