// SPDX-License-Identifier: GPL-2.0

//! `flowlet`: per flowlet, the burst of a flow's packets closer together
//! than `flowlet_gap_us` (what FLARE and LetFlow do in switch hardware).
//!
//! A flow keeps its uplink while it keeps sending. After a pause longer than
//! the gap, its earlier packets have left every uplink's queue and path (if
//! the gap exceeds the difference in path delay), so the next packet may
//! take another uplink without arriving ahead of them: it takes the uplink
//! with the largest share of capacity unused, as `headroom` does. Bulk
//! transfers thus move off an uplink whose queue slows them down, with no
//! reordering, and short flows spread by capacity.
//!
//! Every packet is booked against its uplink's load, so headroom choices
//! see what the flowlets already send. The flow table is shared by the CPUs
//! of the netns (lock-free, 4-way); a remembered uplink that is dead, link-down or
//! no longer a nexthop starts a new flowlet at once.

use super::nexthop::Route;
use super::strategy::{recall, Direct, Env, Needs, Outcome, Selection, Strategy};

/// The flowlet strategy.
pub struct FlowletStrategy;

impl Direct for FlowletStrategy {
    const NEEDS: Needs = Needs {
        load: true,
        flowlets: true,
        ..Needs::NOTHING
    };
}

impl Strategy for FlowletStrategy {
    fn name(&self) -> &'static str {
        "flowlet"
    }

    fn needs(&self) -> Needs {
        Self::NEEDS
    }

    fn select(&self, route: &Route<'_>, env: &mut Env<'_>) -> Option<Selection> {
        let usable = env.candidates(route);
        let fl = env.flowlets;
        let (flow, now) = (fl.flow, fl.now_us);
        // A flow's stamp is written only once it is an eighth of the gap
        // old (not a store per packet), so it may be that much behind the
        // flow's last packet: a flowlet ends once the stamp is a gap and an
        // eighth old, after a pause of at least the gap.
        let refresh = fl.gap_us >> 3;
        let mut outcome = Outcome::New;
        let gap = fl.gap_us + refresh;
        if let Some(found) = fl.table.lookup(flow, now, gap) {
            let id = found.id;
            // Where the load table last found the uplink: O(1) for a flow
            // that stays.
            if let Some(index) = env.load.nexthop_in(route, usable, id) {
                env.load.book_share(id, env.bits);
                if found.idle_us >= refresh {
                    fl.table.refresh(flow, &found, now);
                }
                return Some(Selection {
                    index,
                    outcome: Outcome::Remembered,
                });
            }
            // Not usable now: only says why.
            if let Err(rechosen) = recall(route, usable, id) {
                outcome = rechosen;
            }
        }
        let (id, index) = env.load.take_nexthop::<true>(route, usable, env.bits)?;
        fl.table.place(flow, id, now, gap);
        Some(Selection { index, outcome })
    }
}
