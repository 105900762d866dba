// SPDX-License-Identifier: GPL-2.0

//! The per-netns worker: everything that may sleep or runs on a timer.
//!
//! It runs when the set of equalize routes becomes empty or non-empty, when a
//! sysctl changes, and every `bw_interval_ms` while equalize routes exist:
//! - allocates the packet path's state (`Active`) when the netns gets
//!   equalize routes and frees it when they are gone, so other netns hold
//!   no per-CPU memory;
//! - registers the netfilter hooks while equalize routes exist, so other
//!   netns pay nothing per packet;
//! - holds conntrack while the strategy needs it (conntrack costs every
//!   packet, so netns that don't use it don't pay);
//! - sets `fib_multipath_hash_policy=1` while equalize routes exist (the
//!   forwarding lever needs it) and restores the old value afterwards,
//!   unless someone else wrote it meanwhile;
//! - keeps the uplink ids the devices pin, and copies each device's
//!   administrative state (`down`, `tier`) to its uplinks (the sysctl write
//!   does so at once; this catches uplinks that appear later);
//! - samples each uplink's tx bytes into the rate estimator and publishes
//!   rate and capacity for the bandwidth strategy.
//!
//! Every log line here can be triggered by a netns admin (route flaps from an
//! unprivileged user namespace), so all are rate-limited.

use super::counters::{Counter, MAX_UPLINKS};
use super::state::{Active, Knob, NetState, HASH_POLICY_L4};
use super::uplinks::Pins;
use crate::mpbal_core::estimator::{RateEstimator, MAX_EWMA_LOG};
use crate::sys::log::{info_ratelimited, warn_ratelimited};
use crate::sys::net::{coarse_ms, now_ms};
use crate::sys::params;
use core::sync::atomic::Ordering;
use kernel::alloc::{flags::GFP_KERNEL_ACCOUNT, KBox};
use kernel::error::Error;

/// How soon a failed allocation of the packet path's state is retried.
const RETRY_MS: u32 = 1000;

pub(crate) struct WorkerState {
    conntrack_held: bool,
    /// Hash policy found before mpbal set it to 1.
    saved_hash_policy: Option<i32>,
    /// The "not steered" warning was given for this activation.
    warned_hash_policy: bool,
    /// The packet path's state could not be allocated.
    degraded: bool,
    /// The rate estimator of each uplink id, while the netns is active.
    est: Option<KBox<Estimators>>,
    last_sample_ms: u64,
}

/// The estimator of each uplink id, and the ifindex it belongs to (an id
/// taken over by another device restarts its estimator).
struct Estimators {
    est: [RateEstimator; MAX_UPLINKS],
    ifindex: [u32; MAX_UPLINKS],
}

impl WorkerState {
    pub(crate) fn new() -> Self {
        WorkerState {
            conntrack_held: false,
            saved_hash_policy: None,
            warned_hash_policy: false,
            degraded: false,
            est: None,
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

    /// Whether the netns should be balanced but is not (out of memory).
    pub(crate) fn degraded(&self) -> bool {
        self.degraded
    }
}

/// One run of the worker.
pub(crate) fn run(st: &NetState) {
    let mut ws = st.worker.lock();
    let active = st.equalize_routes.load(Ordering::Acquire) > 0;
    let interval = st.knob(Knob::BwIntervalMs).max(1) as u32;

    sync_pins(st);
    sync_admin(st);
    // Hooks go on last and off first: once they are on (`hooks on` in the
    // stats, which `mpbalctl route add` waits for), everything is in place.
    if !active {
        reconcile_hooks(st, false);
        retire_active(st);
        ws.est = None;
        st.routes.lock().shrink();
    }
    reconcile_conntrack(st, &mut ws, active && st.strategy().needs().conntrack);
    reconcile_hash_policy(st, &mut ws, active);
    if !active {
        ws.degraded = false;
        return;
    }
    if !ensure_active(st, &mut ws) {
        st.work.schedule(RETRY_MS);
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

/// The netns goes away (pernet pre_exit): undo what the worker holds,
/// without waiting for packets in flight (the teardown's grace period does).
pub(crate) fn shutdown(st: &NetState) {
    let mut ws = st.worker.lock();
    st.hooks.off_nowait();
    reconcile_conntrack(st, &mut ws, false);
    reconcile_hash_policy(st, &mut ws, false);
    // The per-device sysctls kick the work: gone before the work is freed.
    st.devices.lock().clear();
}

/// Allocates and publishes the packet path's state; false if out of memory
/// (the netns then gets stock ECMP, and the stats say so).
fn ensure_active(st: &NetState, ws: &mut WorkerState) -> bool {
    if st.active.is_set() && ws.est.is_some() {
        ws.degraded = false;
        return true;
    }
    let est = KBox::new(
        Estimators {
            est: [RateEstimator::default(); MAX_UPLINKS],
            ifindex: [0; MAX_UPLINKS],
        },
        GFP_KERNEL_ACCOUNT,
    );
    let made = est.map_err(Error::from).and_then(|est| {
        if !st.active.is_set() {
            // Only the worker publishes, under its lock.
            let _ = st.active.publish(Active::alloc()?);
        }
        Ok(est)
    });
    match made {
        Ok(est) => {
            ws.est = Some(est);
            ws.degraded = false;
            true
        }
        Err(e) => {
            ws.degraded = true;
            warn_ratelimited(format_args!(
                "netns {}: not balanced: cannot allocate its per-CPU state ({:?}); retrying",
                st.net.inum(),
                e
            ));
            false
        }
    }
}

/// Frees the packet path's state once the hooks are off, keeping its
/// counters in the totals.
fn retire_active(st: &NetState) {
    let Some(a) = st.active.retire() else {
        return;
    };
    for &c in Counter::ALL {
        st.totals.add(c, a.sum(c));
    }
}

/// Copies the devices' `uplink_id` pins where the FIB notifier reads them.
fn sync_pins(st: &NetState) {
    let mut pins: Pins = [0; MAX_UPLINKS];
    st.devices.lock().pins(&mut pins);
    if st.set_pins(&pins) {
        st.resync_uplinks();
    }
}

/// Copies each device's `down` and `tier` to its uplinks, checking as
/// `devices::admin_event` does that a racing sysctl write did not change
/// them in between (its own copy may have gone first).
fn sync_admin(st: &NetState) {
    let devs = st.devices.lock();
    st.uplinks.for_each_id(|id, ifindex| loop {
        let admin = devs.admin(ifindex);
        st.uplinks.set_admin(id, admin);
        if devs.admin(ifindex) == admin {
            break;
        }
    });
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
            Err(e) => warn_ratelimited(format_args!(
                "netns {}: cannot enable conntrack for the {} strategy ({:?}); connections are balanced per packet",
                st.net.inum(),
                st.strategy().name(),
                e
            )),
        }
    } else if !want && ws.conntrack_held {
        st.net.conntrack_put();
        ws.conntrack_held = false;
    }
}

/// Writes the hash policy, telling the netevent it causes from the admin's.
fn set_hash_policy(st: &NetState, policy: i32) {
    st.hash_policy_writing.store(true, Ordering::Release);
    st.net.set_hash_policy(policy);
    st.hash_policy_writing.store(false, Ordering::Release);
}

fn reconcile_hash_policy(st: &NetState, ws: &mut WorkerState, active: bool) {
    let current = st.net.hash_policy();
    if active && ws.saved_hash_policy.is_none() && current != HASH_POLICY_L4 {
        if params::manage_hash_policy() {
            set_hash_policy(st, HASH_POLICY_L4);
            st.hash_policy_touched.store(false, Ordering::Release);
            ws.saved_hash_policy = Some(current);
            info_ratelimited(format_args!(
                "netns {}: set net.ipv4.fib_multipath_hash_policy {} -> 1 for equalize routes; restored when they are gone",
                st.net.inum(),
                current
            ));
        } else if !ws.warned_hash_policy {
            ws.warned_hash_policy = true;
            warn_ratelimited(format_args!(
                "netns {}: net.ipv4.fib_multipath_hash_policy is {}, not 1: forwarded packets on equalize routes are NOT steered (manage_hash_policy=N)",
                st.net.inum(),
                current
            ));
        }
    } else if !active {
        ws.warned_hash_policy = false;
        if let Some(old) = ws.saved_hash_policy.take() {
            // Never overwrite what someone else wrote after mpbal's change.
            if !st.hash_policy_touched.load(Ordering::Acquire) && current == HASH_POLICY_L4 {
                set_hash_policy(st, old);
                info_ratelimited(format_args!(
                    "netns {}: restored net.ipv4.fib_multipath_hash_policy to {}",
                    st.net.inum(),
                    old
                ));
            }
        }
    }
}

fn sample(st: &NetState, ws: &mut WorkerState, now: u64) {
    let Some(est) = ws.est.as_mut() else {
        return;
    };
    ws.last_sample_ms = now;
    let log = st.knob(Knob::BwEwmaLog).clamp(0, MAX_EWMA_LOG as i32) as u32;
    let devs = st.devices.lock();
    st.uplinks.for_each_id(|id, ifindex| {
        let Some(i) = (id as usize).checked_sub(1).filter(|&i| i < MAX_UPLINKS) else {
            return;
        };
        if est.ifindex[i] != ifindex {
            est.ifindex[i] = ifindex;
            est.est[i] = RateEstimator::default();
        }
        let (capacity, _) = devs.capacity(ifindex);
        let Some((tx_bytes, up)) = st.net.dev_tx_bytes(ifindex) else {
            return;
        };
        est.est[i].sample(now, tx_bytes, log);
        st.uplinks.set_load(id, est.est[i].rate_bps(), capacity, up);
    });
    st.sample_ms.store(coarse_ms(), Ordering::Relaxed);
    st.sample_epoch.fetch_add(1, Ordering::AcqRel);
}
