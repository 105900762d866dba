// SPDX-License-Identifier: GPL-2.0

//! `session`: per connection (thesis 4.1.3). A new connection takes the next
//! uplink in weighted round-robin order; conntrack remembers it (the hook
//! stores the uplink it really left by in the connection's mark) and later
//! packets keep it. If that uplink is dead, link-down or no longer a nexthop,
//! the connection chooses again. Connections that came in through an uplink
//! have that uplink stored on arrival, so their replies leave through it.

use super::nexthop::Route;
use super::strategy::{recall, Direct, Env, Needs, Outcome, Selection, Strategy};

/// The per-connection strategy.
pub struct SessionStrategy;

impl Direct for SessionStrategy {
    const NEEDS: Needs = Needs {
        conntrack: true,
        ..Needs::NOTHING
    };
}

impl Strategy for SessionStrategy {
    fn name(&self) -> &'static str {
        "session"
    }

    fn needs(&self) -> Needs {
        Self::NEEDS
    }

    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let usable = env.candidates(route);
        let mut outcome = if env.has_conn {
            Outcome::New
        } else {
            Outcome::Untracked
        };
        if env.has_conn && env.stored_uplink != 0 {
            match recall(route, usable, env.stored_uplink) {
                Ok(remembered) => return Some(remembered),
                Err(rechosen) => outcome = rechosen,
            }
        }
        // Untracked packets are chosen per packet; connections once, from
        // the shared rotation so their spread is exact.
        let index = match outcome {
            Outcome::Untracked => env.wrr.pick(route, usable)?,
            _ => env.first.pick(route, usable)?,
        };
        Some(Selection { index, outcome })
    }
}
