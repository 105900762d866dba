// SPDX-License-Identifier: GPL-2.0

//! mpbal: outgoing traffic balancing over multipath routes flagged
//! `equalize`, with the four strategies of "Channel balancing strategies to
//! optimize uplink utilization" (route, packet, session, bandwidth) and two
//! more (headroom, flowlet), on an unpatched Linux 6.12.
//!
//! Layers, each using only those below it:
//! - `policy` (src/policy): what mpbal decides; no `unsafe`;
//! - `sys` (src/sys): safe wrappers over the C helpers (src/helpers); all the
//!   `unsafe`, and no policy;
//! - `mpbal_core` (src/core): pure strategies and arithmetic, host-tested.
//!
//! This root is the only place that ties the policy's per-netns state to
//! the wrapper layer's registration.

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

use mpbal_core::strategy::StrategyId;
use policy::state::NetState;

module! {
    type: Mpbal,
    name: "mpbal",
    author: "mpbal developers",
    description: "Balances outgoing traffic over equalize multipath routes",
    license: "GPL",
}

struct Mpbal {
    _registration: sys::pernet::Registration<NetState>,
}

impl kernel::Module for Mpbal {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let params = policy::modparams::load()?;
        let registration = sys::pernet::Registration::<NetState>::new(&params)?;
        let strategy = u8::try_from(params.strategy)
            .ok()
            .and_then(StrategyId::from_index)
            .map_or("?", StrategyId::name);
        pr_info!(
            "loaded: default strategy {}, ct_mark_mask {:#010x}\n",
            strategy,
            params.ct_mark_mask
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
