// SPDX-License-Identifier: GPL-2.0

//! Stage stubs of the packet path, in bench builds only (`make bench`
//! builds a second module with `--cfg mpbal_bench`; its `bench_stop`
//! parameter names the stage after which the hooks stop). The bench counts
//! the instructions of each stop, so the difference between two stops is
//! what a stage costs. A stop before the hash is set still sets one (a
//! constant), so that the kernel's own multipath choice costs what it does
//! when mpbal steers. Ordinary builds compile every check to `false`.

/// The stages of a forwarded packet, in order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// The hook calls alone: PRE_ROUTING sets a constant hash and returns,
    /// POST_ROUTING returns at once.
    Hooks = 1,
    /// And the route identification (cache or FIB lookup).
    Route,
    /// And what the strategy is told of the packet (`Query`).
    Query,
    /// And the strategy's choice.
    Strategy,
    /// And the steering hash and the note for POST_ROUTING.
    Hash,
    /// And PRE_ROUTING's counters. Only ever a stop value: POST_ROUTING
    /// returns at once before `Post`.
    #[allow(dead_code)]
    Counters,
    /// And POST_ROUTING without its counters.
    Post,
}

#[cfg(mpbal_bench)]
mod imp {
    use core::sync::atomic::{AtomicU8, Ordering};

    static STOP: AtomicU8 = AtomicU8::new(0);

    /// At module init.
    pub(crate) fn load() {
        let v = crate::sys::params::bench_stop().clamp(0, super::Stage::Post as i32);
        STOP.store(v as u8, Ordering::Relaxed);
    }

    #[inline(always)]
    pub(crate) fn stop() -> u8 {
        STOP.load(Ordering::Relaxed)
    }
}

#[cfg(not(mpbal_bench))]
mod imp {
    pub(crate) fn load() {}

    #[inline(always)]
    pub(crate) fn stop() -> u8 {
        0
    }
}

pub(crate) use imp::load;

/// Whether the hooks stop right after `stage`.
#[inline(always)]
pub(crate) fn stops_after(stage: Stage) -> bool {
    imp::stop() == stage as u8
}

/// Whether the hooks stop before `stage` is reached.
#[inline(always)]
pub(crate) fn stops_before(stage: Stage) -> bool {
    let s = imp::stop();
    s != 0 && s < stage as u8
}
