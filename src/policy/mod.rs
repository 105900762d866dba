//! What mpbal decides, on top of the safe wrappers in `sys` and the pure
//! strategies in `core`. No `unsafe` here.

#![deny(unsafe_code)]

pub(crate) mod counters;
pub(crate) mod devices;
pub(crate) mod hooks;
pub(crate) mod kunit;
pub(crate) mod routes;
pub(crate) mod state;
pub(crate) mod stats;
pub(crate) mod uplinks;
pub(crate) mod worker;
