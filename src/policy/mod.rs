// SPDX-License-Identifier: GPL-2.0

//! What mpbal decides, on top of the safe wrappers in `sys` and the pure
//! strategies in `mpbal_core`. No `unsafe` here.
//!
//! [`state::NetState`] is the per-netns state; it implements
//! `sys::netns::NetnsOps`, through which the C side reaches the hook bodies
//! (`hooks`), the FIB and device events (`eqroutes`, `devices`), the proc
//! files (`stats`) and the worker (`worker`).

#![deny(unsafe_code)]

pub(crate) mod benchstub;
pub(crate) mod counters;
pub(crate) mod devices;
pub(crate) mod eqroutes;
pub(crate) mod hooks;
pub(crate) mod modparams;
pub(crate) mod routecache;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod uplinks;
pub(crate) mod worker;
