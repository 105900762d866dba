// SPDX-License-Identifier: GPL-2.0

//! mpbal_core: the pure core of mpbal, the strategies and the arithmetic
//! they rest on.
//!
//! Everything here is `no_std`, allocation-free, float-free and has no
//! `unsafe`. The same files are two crates' code:
//! - the kernel module includes this directory as its module `mpbal_core`
//!   (`#[path = "core/mod.rs"]` in `src/mpbal_main.rs`);
//! - `Cargo.toml` here builds it as the host crate `mpbal_core`, so the logic
//!   is tested, benchmarked and fuzzed on the host (6.12 kbuild runs no
//!   module `#[test]`), and `mpbalctl` takes the strategy names from it.
//!
//! Siblings refer to each other with `super::`, which means the crate root on
//! the host and the `mpbal_core` module in the kernel.
//!
//! The only mention of the kernel is `cfg_attr(MODULE, derive(Zeroable))` on
//! the plain-data types with private fields that live in per-CPU memory:
//! kbuild sets `--cfg MODULE`, and the kernel's derive checks at compile time
//! that every field is valid when all-zero, which is how `__alloc_percpu()`
//! hands them out. (6.12's derive takes no field visibility; the two such
//! types with public fields are checked in `src/sys/percpu.rs`.)

#![cfg_attr(not(MODULE), no_std)]
#![forbid(unsafe_code)]

pub mod desttable;
pub mod estimator;
pub mod flowcache;
pub mod flowlettable;
pub mod hashrange;
pub mod loadtable;
pub mod markfield;
pub mod nexthop;
pub mod strategy;
pub mod strategy_bandwidth;
pub mod strategy_flowlet;
pub mod strategy_headroom;
pub mod strategy_packet;
pub mod strategy_route;
pub mod strategy_session;
pub mod wrr;
