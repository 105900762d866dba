//! Host build of the mpbal core (see `mod.rs`), for `cargo test` and benches.

#![no_std]

#[path = "mod.rs"]
mod tree;

pub use tree::*;
