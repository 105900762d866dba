// SPDX-License-Identifier: GPL-2.0

//! `route`: per destination (thesis 4.1.1). A destination keeps its uplink
//! while it stays in use; new destinations take uplinks in weighted
//! round-robin order. The 2.4 kernel got this from its route cache; here the
//! [`DestTable`](super::desttable::DestTable) remembers the choice, with an
//! idle timeout.

use super::desttable::Claim;
use super::nexthop::Route;
use super::strategy::{recall, Direct, Env, Needs, Outcome, Selection, Strategy};

/// The per-destination strategy.
pub struct RouteStrategy;

impl Direct for RouteStrategy {
    const NEEDS: Needs = Needs {
        dest_table: true,
        ..Needs::NOTHING
    };
}

impl Strategy for RouteStrategy {
    fn name(&self) -> &'static str {
        "route"
    }

    fn needs(&self) -> Needs {
        Self::NEEDS
    }

    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let usable = env.candidates(route);
        let (now, timeout) = (env.now_s, env.idle_timeout_s);
        let remembered = env.dests.lookup(env.daddr, now, timeout);
        let mut outcome = Outcome::New;
        if let Some(id) = remembered {
            match recall(route, usable, id) {
                Ok(remembered) => return Some(remembered),
                Err(rechosen) => outcome = rechosen,
            }
        }
        let index = env.first.pick(route, usable)?;
        let id = route.nexthops.get(index)?.uplink;
        let stale = remembered.unwrap_or(0);
        match env.dests.claim(env.daddr, id, stale, now, timeout) {
            // Another CPU placed this destination meanwhile: follow it, and
            // give our pick back so the spread stays by weight.
            Claim::Taken(theirs) => match recall(route, usable, theirs) {
                Ok(sel) => {
                    env.first.unpick(route, usable, index);
                    Some(sel)
                }
                Err(_) => Some(Selection { index, outcome }),
            },
            // A full table only costs stickiness; the packet goes on.
            Claim::Stored | Claim::Evicted | Claim::NotStored => Some(Selection { index, outcome }),
        }
    }
}
