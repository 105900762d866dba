//! `/proc/net/mpbal/stats` and `/proc/net/mpbal/uplinks` (formats in
//! Documentation/sysctl.rst; mpbalctl parses them generically).

use super::counters::Counter;
use super::state::{Knob, NetState};
use core::fmt::{self, Write};

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
    let (managed, conntrack) = {
        let ws = st.worker.lock();
        (ws.hash_policy_managed(), ws.conntrack_held())
    };
    let routes = st
        .equalize_routes
        .load(core::sync::atomic::Ordering::Relaxed);
    let untracked = st.routes.lock().untracked();
    let now = crate::sys::net::now_secs();
    let timeout = st.knob(Knob::RouteIdleTimeout).max(1) as u32;
    let dests = st.dest_table();
    writeln!(m, "strategy {}", st.strategy().name())?;
    writeln!(m, "equalize_routes {}", routes)?;
    writeln!(m, "equalize_routes_untracked {}", untracked)?;
    writeln!(m, "hash_policy {}", hash_policy_state(st, routes, managed))?;
    writeln!(m, "conntrack {}", if conntrack { "held" } else { "off" })?;
    writeln!(m, "hooks {}", if st.hooks.is_on() { "on" } else { "off" })?;
    writeln!(m, "dest_entries {}", dests.live_entries(now, timeout))?;
    writeln!(m, "dest_capacity {}", dests.capacity())?;
    for &c in Counter::ALL {
        writeln!(m, "{} {}", c.name(), st.sum(c))?;
    }
    Ok(())
}

/// One row per uplink under a header naming the columns.
pub(crate) fn show_uplinks(st: &NetState, m: &mut impl Write) -> fmt::Result {
    writeln!(
        m,
        "dev ifindex up packets bytes sessions rate_bps capacity_bps capacity_src"
    )?;
    let devs = st.devices.lock();
    let mut res = Ok(());
    st.uplinks.for_each(|u| {
        if res.is_err() {
            return;
        }
        let name = st.net.dev_name(u.ifindex);
        let (packets, bytes) = st.sum_uplink(u.slot);
        // Capacity as configured now, so `mpbalctl link set` shows at once.
        let (capacity, src) = devs.capacity(u.ifindex);
        res = writeln!(
            m,
            "{} {} {} {} {} {} {} {} {}",
            name.as_ref().map_or("?", |n| n.as_str()),
            u.ifindex,
            u8::from(u.up),
            packets.wrapping_sub(u.base_packets),
            bytes.wrapping_sub(u.base_bytes),
            u.sessions,
            u.rate_bps,
            capacity,
            src.name()
        );
    });
    res
}
