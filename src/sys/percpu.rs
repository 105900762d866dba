// SPDX-License-Identifier: GPL-2.0

//! Per-CPU memory for the packet path, so no cache line is shared between
//! CPUs per packet.
//!
//! Copies come zeroed from `__alloc_percpu()` and are never built on the
//! stack: some are kilobytes, and a kernel stack is 16 KiB without guard
//! pages (no `VMAP_STACK` in small configs), so a few nested copies of a large
//! `T::default()` silently overran it. Hence `T: Zeroable`, the kernel
//! crate's trait, derived next to each type.

use super::bindings;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::error::{code::ENOMEM, Result};
use kernel::init::Zeroable;
use kernel::macros::Zeroable;

/// A per-CPU allocation of `T`, every copy all-zero at first.
///
/// # Invariants
///
/// `pcpu` is a live per-CPU allocation sized and aligned for `T`, and every
/// possible CPU's copy holds a valid `T`.
struct Raw<T> {
    pcpu: NonNull<c_void>,
    _t: PhantomData<T>,
}

impl<T: Zeroable> Raw<T> {
    fn new() -> Result<Self> {
        // SAFETY: plain allocation of zero-filled per-CPU memory for `T`, or
        // NULL; all-zero is a valid `T` (`Zeroable`), so every copy is valid.
        let p = unsafe {
            bindings::mpbal_percpu_alloc(core::mem::size_of::<T>(), core::mem::align_of::<T>())
        };
        Ok(Raw {
            pcpu: NonNull::new(p).ok_or(ENOMEM)?,
            _t: PhantomData,
        })
    }
}

/// `unsafe impl Zeroable` for a plain-data struct with public fields, which
/// 6.12's `derive(Zeroable)` cannot take. As safe as the derive: the
/// exhaustive pattern fails to compile unless every field is listed, and
/// each listed type must be `Zeroable`.
macro_rules! zeroable_fields {
    ($t:path { $($f:ident: $ft:ty),* $(,)? }) => {
        // SAFETY: every field is listed (checked below) and every field's
        // type is `Zeroable`, so all-zero is a valid value; padding may be
        // anything.
        unsafe impl Zeroable for $t {}
        const _: () = {
            fn assert_zeroable<T: Zeroable>() {}
            #[allow(dead_code)]
            fn check(x: $t) {
                let $t { $($f),* } = x;
                $(
                    let _: $ft = $f;
                    assert_zeroable::<$ft>();
                )*
            }
        };
    };
}

zeroable_fields!(crate::mpbal_core::nexthop::Nexthop {
    oif: u32,
    gw: u32,
    uplink: u32,
    weight: u32,
    upper_bound: i32,
    usable: bool,
    admin_down: bool,
    tier: u8,
});
zeroable_fields!(crate::mpbal_core::flowcache::FlowKey {
    daddr: u32,
    saddr: u32,
    iif: u32,
    mark: u32,
    tos: u32,
    genid: u32,
});

/// A counter in per-CPU memory: only the owning CPU writes it (with BH
/// disabled), so a relaxed load and store is enough and no locked
/// instruction is needed; anyone may read it for a sum.
#[repr(transparent)]
#[derive(Default)]
pub(crate) struct CpuCounter(AtomicU64);

// SAFETY: `AtomicU64` has the in-memory representation of `u64`, for which
// all-zero is 0.
unsafe impl Zeroable for CpuCounter {}

impl CpuCounter {
    /// Adds `n`; call only on this CPU's copy (through `PerCpuPair::with`).
    pub(crate) fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Calls `f` with every possible CPU's number.
fn for_each_possible_cpu(mut f: impl FnMut(i32)) {
    // SAFETY: no preconditions.
    let nr = unsafe { bindings::mpbal_nr_cpu_ids() };
    let mut cpu = -1;
    loop {
        // SAFETY: no preconditions.
        cpu = unsafe { bindings::mpbal_cpu_next(cpu) };
        if cpu < 0 || cpu >= nr {
            return;
        }
        f(cpu);
    }
}

/// How many CPUs are possible (per-CPU allocations have a copy for each).
pub(crate) fn possible_cpus() -> usize {
    let mut n = 0;
    for_each_possible_cpu(|_| n += 1);
    n
}

impl<T> Raw<T> {
    /// Calls `f` with a pointer to every possible CPU's copy.
    fn each_cpu(&self, mut f: impl FnMut(*mut T)) {
        for_each_possible_cpu(|cpu| {
            // SAFETY: `cpu` is a possible CPU of a live allocation.
            f(unsafe { bindings::mpbal_percpu_ptr(self.pcpu.as_ptr(), cpu) }.cast::<T>())
        });
    }

    /// Runs `f` on this CPU's copy with bottom halves disabled: no softirq
    /// can interleave on this CPU and the task cannot migrate.
    ///
    /// # Safety
    ///
    /// Nothing else may hold a `&mut` to this CPU's copy while `f` runs.
    unsafe fn with_this_cpu<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        let mut disabled = false;
        // SAFETY: live allocation (type invariant); `disabled` is a valid
        // out-parameter. The helper disables BH unless it is off already.
        let p = unsafe { bindings::mpbal_percpu_get_bh(self.pcpu.as_ptr(), &mut disabled) };
        let r = f(p.cast::<T>());
        // SAFETY: pairs with the get above, with what it did.
        unsafe { bindings::mpbal_percpu_put_bh(disabled) };
        r
    }
}

impl<T> Drop for Raw<T> {
    fn drop(&mut self) {
        self.each_cpu(|p| {
            // SAFETY: every copy holds a valid `T` (type invariant), dropped once.
            unsafe { core::ptr::drop_in_place(p) }
        });
        // SAFETY: live allocation, freed once, no user remains.
        unsafe { bindings::mpbal_percpu_free(self.pcpu.as_ptr()) }
    }
}

#[derive(Zeroable)]
struct Pair<L, C> {
    busy: bool,
    local: L,
    shared: C,
}

/// Per-CPU state of two parts, reached together in one BH-off section (one
/// per hook): `L`, only ever touched by its own CPU (caches, WRR rotation,
/// scratch), and `C`, written by its own CPU and read by anyone (counters
/// made of atomics, updated with relaxed load+store since only the owner
/// writes).
pub(crate) struct PerCpuPair<L, C> {
    raw: Raw<Pair<L, C>>,
}

// SAFETY: a CPU's `L` is only reached through `with`, which disables BH on
// that CPU and refuses re-entry, so no two contexts share it; `C` is only
// ever handed out as `&C`, and `C: Sync`.
unsafe impl<L: Send, C: Sync> Sync for PerCpuPair<L, C> {}
// SAFETY: the allocation is not tied to a thread.
unsafe impl<L: Send, C: Sync> Send for PerCpuPair<L, C> {}

impl<L: Zeroable, C: Zeroable> PerCpuPair<L, C> {
    pub(crate) fn new() -> Result<Self> {
        Ok(PerCpuPair { raw: Raw::new()? })
    }
}

impl<L, C: Sync> PerCpuPair<L, C> {
    /// Runs `f` on this CPU's copy with BH disabled. `L` is `None` if this
    /// CPU is already inside `with` for this state (a packet sent from
    /// within a hook); `C` is always there.
    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&mut L>, &C) -> R) -> R {
        // SAFETY: `&mut` to a copy's `local` is created only here, and the
        // `busy` flag makes it unique even if `f` re-enters on this CPU;
        // `shared` is a disjoint field only ever borrowed shared.
        unsafe {
            self.raw.with_this_cpu(|slot| {
                let shared = &*core::ptr::addr_of!((*slot).shared);
                if (*slot).busy {
                    return f(None, shared);
                }
                (*slot).busy = true;
                let r = f(Some(&mut *core::ptr::addr_of_mut!((*slot).local)), shared);
                (*slot).busy = false;
                r
            })
        }
    }

    /// Bytes of one CPU's copy.
    pub(crate) const COPY_SIZE: usize = core::mem::size_of::<Pair<L, C>>();

    /// Visits every possible CPU's `C` (for sums).
    pub(crate) fn for_each_shared(&self, mut f: impl FnMut(&C)) {
        self.raw.each_cpu(|p: *mut Pair<L, C>| {
            // SAFETY: valid copy (type invariant); `shared` is only ever
            // borrowed shared.
            f(unsafe { &*core::ptr::addr_of!((*p).shared) })
        });
    }
}
