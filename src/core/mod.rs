//! The pure core of mpbal: strategies and the arithmetic they rest on.
//!
//! Everything here is `no_std`, allocation-free, float-free and has no
//! `unsafe`. The kernel module includes these files with `#[path]`, and a host
//! cargo crate (`lib.rs` next to this file) includes the same files so the
//! logic is tested, benchmarked and fuzzed on the host: 6.12 kbuild runs no
//! module `#[test]`.
//!
//! Siblings refer to each other with `super::` so the tree works under both
//! crate roots.

#![forbid(unsafe_code)]

pub mod bandwidth;
pub mod desttable;
pub mod estimator;
pub mod flowcache;
pub mod hashrange;
pub mod markfield;
pub mod nexthop;
pub mod packet;
pub mod route;
pub mod session;
pub mod strategy;
pub mod wrr;
