//! `route`: per destination (thesis 4.1.1). A destination keeps its uplink
//! while it stays in use; new destinations take uplinks in weighted
//! round-robin order. The 2.4 kernel got this from its route cache; here the
//! [`DestTable`](super::desttable::DestTable) remembers the choice, with an
//! idle timeout.

use super::desttable::Insert;
use super::nexthop::Route;
use super::strategy::{recall, Env, Outcome, Selection, Strategy};

/// The per-destination strategy.
pub struct RouteStrategy;

impl Strategy for RouteStrategy {
    fn name(&self) -> &'static str {
        "route"
    }

    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let usable = route.usable_mask();
        let remembered = env.dests.lookup(env.daddr, env.now_s, env.idle_timeout_s);
        let mut outcome = Outcome::New;
        if let Some(oif) = remembered {
            match recall(route, usable, oif) {
                Ok(remembered) => return Some(remembered),
                Err(rechosen) => outcome = rechosen,
            }
        }
        let index = env.wrr.pick(route, usable)?;
        // A full table only costs stickiness, so the packet goes on either way.
        let _: Insert = env.dests.insert(
            env.daddr,
            route.nexthops.get(index)?.oif,
            env.now_s,
            env.idle_timeout_s,
        );
        Some(Selection { index, outcome })
    }
}
