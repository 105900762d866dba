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
//! A flow's packets may still wait in its uplink's queue (a saturated
//! uplink's qdisc holds far more than the paths' delays differ): a flow
//! that paused for the gap moves only once the pause also exceeds how much
//! longer its uplink's queue is than the new one's, read from the qdiscs
//! at that moment ([`UplinkQueues`](super::strategy::UplinkQueues)).
//!
//! Every packet is booked against its uplink's load, so headroom choices
//! see what the flowlets already send. The flow table is shared by the CPUs
//! of the netns (lock-free, 4-way); a remembered uplink that is dead, link-down or
//! no longer a nexthop starts a new flowlet at once.

use super::flowlettable::Found;
use super::nexthop::{NexthopMask, Route};
use super::strategy::{recall, Direct, Env, Needs, Outcome, Selection, Strategy, MAX_QUEUE_US};

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
        if let Some(found) = fl.table.lookup(flow, now, gap + MAX_QUEUE_US) {
            let id = found.id;
            // Where the load table last found the uplink: O(1) for a flow
            // that stays.
            if let Some(index) = env.load.nexthop_in(route, usable, id) {
                if found.idle_us < gap || held_by_queue(route, env, usable, &found, gap) {
                    env.load.book_share(id, env.bits);
                    if found.idle_us >= refresh {
                        fl.table.refresh(flow, &found, now);
                    }
                    return Some(Selection {
                        index,
                        outcome: Outcome::Remembered,
                    });
                }
            } else if found.idle_us < gap {
                // Not usable now: only says why.
                if let Err(rechosen) = recall(route, usable, id) {
                    outcome = rechosen;
                }
            }
        }
        let (id, index) = env.load.take_nexthop::<true>(route, usable, env.bits)?;
        fl.table.place(flow, id, now, gap);
        Some(Selection { index, outcome })
    }
}

/// Whether a flow that paused for the gap must still stay on its uplink:
/// its last packets may wait in that uplink's queue, and would arrive after
/// the next ones if these took an uplink with a shorter queue. It may move
/// once the pause exceeds the gap (for the paths' delays) plus the
/// difference of the two queues (a longer queue ahead never reorders).
fn held_by_queue(
    route: &Route<'_>,
    env: &mut Env<'_>,
    usable: NexthopMask,
    found: &Found,
    gap: u64,
) -> bool {
    let queues = env.flowlets.queues;
    let Some(next) = env.load.best_share(route.uplinks_of(usable)) else {
        return true;
    };
    if next == found.id {
        return true;
    }
    let extra = queues
        .queue_us(found.id)
        .saturating_sub(queues.queue_us(next));
    found.idle_us < gap + extra.min(MAX_QUEUE_US)
}
