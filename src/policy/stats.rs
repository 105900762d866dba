// SPDX-License-Identifier: GPL-2.0

//! `/proc/net/mpbal/stats` and `/proc/net/mpbal/uplinks` (formats in
//! Documentation/sysctl.rst; mpbalctl parses them generically).

use super::counters::Counter;
use super::state::{Active, Knob, NetState, FLOWLET_TABLE_SIZE};
use crate::sys::log::Ipv4;
use crate::sys::net::now_us;
use crate::sys::rcu::RcuGuard;
use crate::sys::{params, percpu};
use core::fmt::{self, Write};
use core::sync::atomic::Ordering;

/// `managed`: mpbal set it to 1; `ok`: it was 1 already; `mismatch`: not 1,
/// forwarded packets are not steered; `idle`: no equalize route needs it.
fn hash_policy_state(st: &NetState, routes: u32, managed: bool) -> &'static str {
    match (st.net.hash_policy(), managed) {
        _ if routes == 0 => "idle",
        (1, true) => "managed",
        (1, false) => "ok",
        _ => "mismatch",
    }
}

/// Global state and counters, one `name value` per line.
pub(crate) fn show_stats(st: &NetState, m: &mut impl Write) -> fmt::Result {
    let (managed, conntrack, degraded) = {
        let ws = st.worker.lock();
        (ws.hash_policy_managed(), ws.conntrack_held(), ws.degraded())
    };
    let routes = st.equalize_routes.load(Ordering::Relaxed);
    let (untracked, alloc_failed) = {
        let r = st.routes.lock();
        (r.untracked(), r.alloc_failed())
    };
    let now = crate::sys::net::now_secs();
    let timeout = st.knob(Knob::RouteIdleTimeout).max(1) as u32;
    let rcu = RcuGuard::new();
    let active = st.active.get(&rcu);
    // `degraded`: it has equalize routes but no memory to balance them.
    let state = match (routes, active.is_some(), degraded || alloc_failed) {
        (_, _, true) => "degraded",
        (0, _, _) => "idle",
        (_, true, _) => "active",
        (_, false, _) => "starting",
    };
    writeln!(m, "strategy {}", st.strategy().name())?;
    writeln!(m, "state {}", state)?;
    writeln!(m, "equalize_routes {}", routes)?;
    writeln!(m, "equalize_routes_untracked {}", untracked)?;
    writeln!(m, "uplinks_untracked {}", st.uplinks.untracked())?;
    writeln!(m, "hash_policy {}", hash_policy_state(st, routes, managed))?;
    writeln!(m, "conntrack {}", if conntrack { "held" } else { "off" })?;
    writeln!(m, "hooks {}", if st.hooks.is_on() { "on" } else { "off" })?;
    // The table exists while the netns is active; its size is the
    // module parameter's either way.
    let (entries, capacity) = active.map_or((0, params::route_table_size() as usize), |a| {
        let d = a.dest_table();
        (d.live_entries(now, timeout), d.capacity())
    });
    writeln!(m, "dest_entries {}", entries)?;
    writeln!(m, "dest_capacity {}", capacity)?;
    // Flows inside a flowlet now (flowlet strategy), of the table's size.
    let gap = st.knob(Knob::FlowletGapUs).max(1) as u64;
    let (flows, flow_capacity) = active.map_or((0, FLOWLET_TABLE_SIZE), |a| {
        let f = a.flowlet_table();
        (f.live_entries(now_us(), gap), f.capacity())
    });
    writeln!(m, "flowlet_entries {}", flows)?;
    writeln!(m, "flowlet_capacity {}", flow_capacity)?;
    // What the netns costs: always, and while it balances (per CPU, and
    // the rest). Connections cost nothing: their uplink is in ct->mark.
    writeln!(m, "memory_netns_bytes {}", core::mem::size_of::<NetState>())?;
    let (percpu, shared) = active.map_or((0, 0), |a| (Active::PERCPU_BYTES, a.shared_bytes()));
    writeln!(m, "memory_percpu_bytes {}", percpu)?;
    writeln!(m, "memory_cpus {}", percpu::possible_cpus())?;
    writeln!(m, "memory_active_bytes {}", shared)?;
    writeln!(m, "fib_events {}", st.fib_events.load(Ordering::Relaxed))?;
    writeln!(
        m,
        "fib_events_equalize {}",
        st.fib_events_equalize.load(Ordering::Relaxed)
    )?;
    writeln!(m, "fib_resyncs {}", st.fib_resyncs.load(Ordering::Relaxed))?;
    writeln!(m, "ct_flushed {}", st.ct_flushed.load(Ordering::Relaxed))?;
    for &c in Counter::ALL {
        writeln!(m, "{} {}", c.name(), st.sum(c, &rcu))?;
    }
    Ok(())
}

/// One row per uplink under a header naming the columns.
pub(crate) fn show_uplinks(st: &NetState, m: &mut impl Write) -> fmt::Result {
    writeln!(
        m,
        "dev ifindex up packets bytes sessions rate_bps capacity_bps capacity_src id gw admin_down tier admin_downs admin_ups ct_flushed"
    )?;
    let devs = st.devices.lock();
    let rcu = RcuGuard::new();
    let active = st.active.get(&rcu);
    let mut res = Ok(());
    st.uplinks.for_each(|u| {
        if res.is_err() {
            return;
        }
        let name = st.net.dev_name(u.ifindex);
        let slot = (u.id as usize).saturating_sub(1);
        let (packets, bytes) = active.map_or((0, 0), |a| a.sum_uplink(slot));
        // Capacity as configured now, so `mpbalctl link set` shows at once.
        let (capacity, src) = devs.capacity(u.ifindex);
        // The device's state and counters: all its uplinks share them.
        let v = devs.values(u.ifindex);
        res = writeln!(
            m,
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            name.as_ref().map_or("?", |n| n.as_str()),
            u.ifindex,
            u8::from(u.up),
            packets.saturating_sub(u.base_packets),
            bytes.saturating_sub(u.base_bytes),
            u.sessions,
            u.rate_bps,
            capacity,
            src.name(),
            u.id,
            Ipv4(u.gw),
            u8::from(v.down),
            v.tier,
            v.admin_downs,
            v.admin_ups,
            v.ct_flushed
        );
    });
    res
}
