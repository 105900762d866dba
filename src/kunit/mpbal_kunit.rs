// SPDX-License-Identifier: GPL-2.0

//! mpbal_kunit: the KUnit suite of mpbal, as its own module so that a
//! production `insmod mpbal.ko` runs no tests, does not taint the kernel
//! with TAINT_TEST and needs no kunit.ko. It builds the same core and
//! per-CPU wrapper sources as mpbal.ko with the kernel's rustc, and reaches
//! mpbal.ko's C helpers through EXPORT_SYMBOL_IF_KUNIT:
//!
//! ```text
//! insmod mpbal.ko && insmod mpbal_kunit.ko   # prints the suite's KTAP
//! ```
//!
//! - `cases.rs`: the cases (no `unsafe`);
//! - `suite.rs`: the suite declaration and the views the cases use;
//! - `glue.c`: the C side (KUNIT_FAIL, skbs, the kernel's multipath rules).

use kernel::prelude::*;

#[allow(unreachable_pub, dead_code)]
#[path = "../core/mod.rs"]
mod mpbal_core;

// The wrappers under test, as mpbal.ko builds them (module paths as in
// `src/sys`, whose siblings they name with `super::`).
#[path = "../sys/bindings.rs"]
mod bindings;
#[allow(dead_code)]
#[path = "../sys/log.rs"]
mod log;
#[allow(dead_code)]
#[path = "../sys/percpu.rs"]
mod percpu;

mod cases;
mod suite;

module! {
    type: MpbalKunit,
    name: "mpbal_kunit",
    author: "mpbal developers",
    description: "KUnit suite of mpbal",
    license: "GPL",
}

suite::kunit_suite!(
    "mpbal",
    [
        c"strategy_names" => cases::strategy_names,
        c"sysctl_strategy" => cases::sysctl_strategy,
        c"wrr" => cases::wrr,
        c"hash_range" => cases::hash_range,
        c"desttable" => cases::desttable,
        c"estimator" => cases::estimator,
        c"markfield" => cases::markfield,
        c"percpu" => cases::percpu,
        c"skb_hash" => cases::skb_hash,
        c"entropy_seeded" => cases::entropy_seeded,
        c"hash_policy_netevent" => cases::hash_policy_netevent,
    ]
);

struct MpbalKunit;

impl kernel::Module for MpbalKunit {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        Ok(MpbalKunit)
    }
}
