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
//! uplink's qdisc holds far more than the paths' delays differ), and then
//! a flow moved after the gap overtakes them. With `flowlet_queue_wait` a
//! paused flow moves only toward a queue no longer than its own, once the
//! pause also exceeds the difference (see `after_pause`): no reordering,
//! but flows stay in a full uplink's queue while another uplink idles. The
//! queues are read from the qdiscs
//! ([`UplinkQueues`](super::strategy::UplinkQueues)) only then.
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
        let mut previous = None;
        if let Some(found) = fl.table.lookup(flow, now, gap + MAX_QUEUE_US) {
            let id = found.id;
            // Where the load table last found the uplink: O(1) for a flow
            // that stays.
            if let Some(index) = env.load.nexthop_in(route, usable, id) {
                let stay = match (found.idle_us < gap, fl.queue_wait) {
                    (true, _) => Some(Outcome::Remembered),
                    (false, false) => None,
                    (false, true) => after_pause(route, env, usable, &found, gap),
                };
                if let Some(outcome) = stay {
                    env.load.book_share(id, env.bits);
                    if found.idle_us >= refresh {
                        fl.table.refresh(flow, &found, now);
                    }
                    return Some(Selection { index, outcome });
                }
                previous = Some(id);
            } else if found.idle_us < gap {
                // Not usable now: only says why.
                if let Err(rechosen) = recall(route, usable, id) {
                    outcome = rechosen;
                }
            }
        }
        let (id, index) = env.load.take_nexthop::<true>(route, usable, env.bits)?;
        fl.table.place(flow, id, now, gap);
        if previous.is_some_and(|p| p != id) {
            outcome = Outcome::Moved;
        }
        Some(Selection { index, outcome })
    }
}

/// With `flowlet_queue_wait`, what a flow that paused for the gap does:
/// stays where the headroom choice is its uplink anyway (`Remembered`),
/// moves (`None`), or stays because its last packets may still wait in its
/// uplink's queue and the next ones would overtake them on the new uplink
/// (`Held`; the packet restarts the pause). It moves:
/// - once the pause exceeds the gap (for the paths' delays) plus how much
///   longer its queue is than the new one's;
/// - never onto a longer queue, though that would not reorder: a long queue
///   means a full uplink, and flows that moved there never paused long
///   enough to leave again (28 of 32 MB on one uplink while another sat
///   idle, in `make thesis`'s mixed run).
fn after_pause(
    route: &Route<'_>,
    env: &mut Env<'_>,
    usable: NexthopMask,
    found: &Found,
    gap: u64,
) -> Option<Outcome> {
    let queues = env.flowlets.queues;
    let next = match env.load.best_share(route.uplinks_of(usable)) {
        Some(next) if next != found.id => next,
        _ => return Some(Outcome::Remembered),
    };
    let (old_q, next_q) = (queues.queue_us(found.id), queues.queue_us(next));
    (next_q > old_q || found.idle_us < gap.saturating_add(old_q - next_q)).then_some(Outcome::Held)
}
