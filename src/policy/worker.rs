//! The per-netns worker: everything that may sleep or runs on a timer.
//!
//! It runs when the set of equalize routes becomes empty or non-empty, when a
//! sysctl changes, and every `bw_interval_ms` while equalize routes exist:
//! - registers the netfilter hooks while equalize routes exist, so other
//!   netns pay nothing per packet;
//! - holds conntrack while the session strategy needs it (conntrack costs
//!   every packet, so netns that don't use it don't pay);
//! - sets `fib_multipath_hash_policy=1` while equalize routes exist (the
//!   forwarding lever needs it) and restores the old value afterwards;
//! - samples each uplink's tx bytes into the rate estimator and publishes
//!   rate and capacity for the bandwidth strategy.

use super::counters::MAX_UPLINKS;
use super::state::{Knob, NetState, HASH_POLICY_L4};
use crate::mpbal_core::estimator::{RateEstimator, MAX_EWMA_LOG};
use crate::sys::log::warn_ratelimited;
use crate::sys::net::now_ms;
use crate::sys::params;
use core::sync::atomic::Ordering;
use kernel::prelude::*;

pub(crate) struct WorkerState {
    conntrack_held: bool,
    /// Hash policy found before mpbal set it to 1.
    saved_hash_policy: Option<i32>,
    /// The "not steered" warning was given for this activation.
    warned_hash_policy: bool,
    est: [RateEstimator; MAX_UPLINKS],
    /// Ifindex each estimator belongs to; a slot reused by another device
    /// restarts its estimator.
    est_ifindex: [u32; MAX_UPLINKS],
    last_sample_ms: u64,
}

impl WorkerState {
    pub(crate) fn new() -> Self {
        WorkerState {
            conntrack_held: false,
            saved_hash_policy: None,
            warned_hash_policy: false,
            est: [RateEstimator::default(); MAX_UPLINKS],
            est_ifindex: [0; MAX_UPLINKS],
            last_sample_ms: 0,
        }
    }

    /// Whether the hash policy is mpbal's doing (for stats).
    pub(crate) fn hash_policy_managed(&self) -> bool {
        self.saved_hash_policy.is_some()
    }

    /// Whether mpbal holds conntrack in this netns (for stats).
    pub(crate) fn conntrack_held(&self) -> bool {
        self.conntrack_held
    }
}

/// One run of the worker.
pub(crate) fn run(st: &NetState) {
    let mut ws = st.worker.lock();
    let active = st.equalize_routes.load(Ordering::Acquire) > 0;
    let interval = st.knob(Knob::BwIntervalMs).max(1) as u32;

    // Hooks go on last and off first: once they are on (`hooks on` in the
    // stats, which `mpbalctl route add` waits for), everything is in place.
    if !active {
        reconcile_hooks(st, false);
    }
    reconcile_conntrack(st, &mut ws, active && st.ops().needs_conntrack());
    reconcile_hash_policy(st, &mut ws, active);
    if !active {
        return;
    }
    reconcile_hooks(st, true);
    // A kick between ticks (config change) must not make a tiny sample.
    let now = now_ms();
    if now.saturating_sub(ws.last_sample_ms) >= u64::from(interval / 2) {
        sample(st, &mut ws, now);
    }
    st.work.schedule(interval);
}

/// Undoes what the worker holds; the work can no longer run.
pub(crate) fn shutdown(st: &NetState) {
    let mut ws = st.worker.lock();
    reconcile_hooks(st, false);
    reconcile_conntrack(st, &mut ws, false);
    reconcile_hash_policy(st, &mut ws, false);
}

/// A failed registration is retried at the next run (every `bw_interval_ms`
/// while equalize routes exist); meanwhile they get stock ECMP.
fn reconcile_hooks(st: &NetState, want: bool) {
    if let Err(e) = st.hooks.set(want) {
        warn_ratelimited(format_args!(
            "netns {}: cannot register the netfilter hooks ({:?}): equalize routes get stock ECMP",
            st.net.inum(),
            e
        ));
    }
}

fn reconcile_conntrack(st: &NetState, ws: &mut WorkerState, want: bool) {
    if want && !ws.conntrack_held {
        match st.net.conntrack_get() {
            Ok(()) => ws.conntrack_held = true,
            Err(e) => pr_warn!(
                "netns {}: cannot enable conntrack for the {} strategy ({:?}); connections are balanced per packet\n",
                st.net.inum(),
                st.strategy().name(),
                e
            ),
        }
    } else if !want && ws.conntrack_held {
        st.net.conntrack_put();
        ws.conntrack_held = false;
    }
}

fn reconcile_hash_policy(st: &NetState, ws: &mut WorkerState, active: bool) {
    let current = st.net.hash_policy();
    if active && ws.saved_hash_policy.is_none() && current != HASH_POLICY_L4 {
        if params::manage_hash_policy() {
            st.net.set_hash_policy(HASH_POLICY_L4);
            ws.saved_hash_policy = Some(current);
            pr_info!(
                "netns {}: set net.ipv4.fib_multipath_hash_policy {} -> 1 for equalize routes; restored when they are gone\n",
                st.net.inum(),
                current
            );
        } else if !ws.warned_hash_policy {
            ws.warned_hash_policy = true;
            pr_warn!(
                "netns {}: net.ipv4.fib_multipath_hash_policy is {}, not 1: forwarded packets on equalize routes are NOT steered (manage_hash_policy=N)\n",
                st.net.inum(),
                current
            );
        }
    } else if !active {
        ws.warned_hash_policy = false;
        if let Some(old) = ws.saved_hash_policy.take() {
            // Leave it alone if the admin changed it meanwhile.
            if current == HASH_POLICY_L4 {
                st.net.set_hash_policy(old);
                pr_info!(
                    "netns {}: restored net.ipv4.fib_multipath_hash_policy to {}\n",
                    st.net.inum(),
                    old
                );
            }
        }
    }
}

fn sample(st: &NetState, ws: &mut WorkerState, now: u64) {
    ws.last_sample_ms = now;
    let log = st.knob(Knob::BwEwmaLog).clamp(0, MAX_EWMA_LOG as i32) as u32;
    let ifindexes = st.uplinks.ifindexes();
    let devs = st.devices.lock();
    for (slot, &ifindex) in ifindexes.iter().enumerate() {
        if ifindex == 0 {
            continue;
        }
        if ws.est_ifindex[slot] != ifindex {
            ws.est_ifindex[slot] = ifindex;
            ws.est[slot] = RateEstimator::default();
        }
        let (capacity, _) = devs.capacity(ifindex);
        let Some((tx_bytes, up)) = st.net.dev_tx_bytes(ifindex) else {
            continue;
        };
        ws.est[slot].sample(now, tx_bytes, log);
        st.uplinks
            .set_load(slot, ws.est[slot].rate_bps(), capacity, up);
    }
}
