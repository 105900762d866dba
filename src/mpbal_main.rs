// SPDX-License-Identifier: GPL-2.0

//! mpbal: outgoing traffic balancing over multipath routes flagged
//! `equalize`, with the four strategies of "Channel balancing strategies to
//! optimize uplink utilization" (route, packet, session, bandwidth), on an
//! unpatched Linux 6.12.
//!
//! Layers:
//! - `mpbal_core` (src/core): pure strategies and arithmetic, host-tested;
//! - `policy`: per-netns state, hooks, worker; no `unsafe`;
//! - `sys`: safe wrappers over the C helper; all the `unsafe`.

// try_pin_init! expands once per field of the per-netns state.
#![recursion_limit = "256"]

use kernel::prelude::*;

// The core is a library shared with the host crate: its `pub` API is
// crate-internal here, and host-only helpers (test oracles) are unused.
#[allow(unreachable_pub, dead_code)]
#[path = "core/mod.rs"]
mod mpbal_core;
mod policy;
mod sys;

module! {
    type: Mpbal,
    name: "mpbal",
    author: "mpbal developers",
    description: "Balances outgoing traffic over equalize multipath routes",
    license: "GPL",
}

struct Mpbal {
    _registration: sys::module::Registration,
}

impl kernel::Module for Mpbal {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let registration = sys::module::Registration::new()?;
        let strategy = u8::try_from(sys::module::params::strategy())
            .ok()
            .and_then(mpbal_core::strategy::StrategyId::from_u8)
            .map_or("?", |s| s.name());
        pr_info!(
            "loaded: default strategy {}, ct_mark_mask {:#010x}\n",
            strategy,
            sys::module::params::ct_mark_mask()
        );
        Ok(Mpbal {
            _registration: registration,
        })
    }
}

impl Drop for Mpbal {
    fn drop(&mut self) {
        pr_info!("unloading\n");
    }
}
