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
    /// Adds `n`; call only on this CPU's copy (through `PerCpuShared::local`).
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

impl<T> Raw<T> {
    /// Calls `f` with a pointer to every possible CPU's copy.
    fn each_cpu(&self, mut f: impl FnMut(*mut T)) {
        // SAFETY: no preconditions.
        let nr = unsafe { bindings::mpbal_nr_cpu_ids() };
        let mut cpu = -1;
        loop {
            // SAFETY: no preconditions.
            cpu = unsafe { bindings::mpbal_cpu_next(cpu) };
            if cpu < 0 || cpu >= nr {
                break;
            }
            // SAFETY: `cpu` is a possible CPU of a live allocation.
            f(unsafe { bindings::mpbal_percpu_ptr(self.pcpu.as_ptr(), cpu) }.cast::<T>());
        }
    }

    /// Runs `f` on this CPU's copy with bottom halves disabled: no softirq
    /// can interleave on this CPU and the task cannot migrate.
    ///
    /// # Safety
    ///
    /// Nothing else may hold a `&mut` to this CPU's copy while `f` runs.
    unsafe fn with_this_cpu<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        // SAFETY: live allocation (type invariant); the helper disables BH.
        let p = unsafe { bindings::mpbal_percpu_get_bh(self.pcpu.as_ptr()) }.cast::<T>();
        let r = f(p);
        // SAFETY: pairs with the get above.
        unsafe { bindings::mpbal_percpu_put_bh() };
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
struct Exclusive<T> {
    busy: bool,
    value: T,
}

/// Per-CPU state only ever touched by its own CPU (WRR rotation, scratch).
pub(crate) struct PerCpuExclusive<T> {
    raw: Raw<Exclusive<T>>,
}

// SAFETY: a CPU's copy is only reached through `with`, which disables BH on
// that CPU and refuses re-entry, so no two contexts share a copy.
unsafe impl<T: Send> Sync for PerCpuExclusive<T> {}
// SAFETY: the allocation is not tied to a thread.
unsafe impl<T: Send> Send for PerCpuExclusive<T> {}

impl<T: Zeroable> PerCpuExclusive<T> {
    pub(crate) fn new() -> Result<Self> {
        Ok(PerCpuExclusive { raw: Raw::new()? })
    }
}

impl<T> PerCpuExclusive<T> {
    /// Runs `f` on this CPU's copy; `None` if this CPU is already inside
    /// `with` for this state (a packet sent from within a hook).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        // SAFETY: only `with` creates references to a copy, and the `busy`
        // flag makes the `&mut` unique even if `f` re-enters on this CPU.
        unsafe {
            self.raw.with_this_cpu(|slot| {
                if (*slot).busy {
                    return None;
                }
                (*slot).busy = true;
                let r = f(&mut (*slot).value);
                (*slot).busy = false;
                Some(r)
            })
        }
    }
}

/// Per-CPU state written by its own CPU and read by anyone: counters made of
/// atomics, updated with relaxed load+store since only the owner writes.
pub(crate) struct PerCpuShared<T> {
    raw: Raw<T>,
}

// SAFETY: only `&T` is ever handed out and `T: Sync`.
unsafe impl<T: Sync> Sync for PerCpuShared<T> {}
// SAFETY: the allocation is not tied to a thread.
unsafe impl<T: Sync> Send for PerCpuShared<T> {}

impl<T: Zeroable + Sync> PerCpuShared<T> {
    pub(crate) fn new() -> Result<Self> {
        Ok(PerCpuShared { raw: Raw::new()? })
    }
}

impl<T: Sync> PerCpuShared<T> {
    /// Runs `f` on this CPU's copy with BH disabled.
    pub(crate) fn local<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        // SAFETY: no `&mut` to any copy is ever created, only `&T`.
        unsafe { self.raw.with_this_cpu(|p| f(&*p)) }
    }

    /// Visits every possible CPU's copy (for sums).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) {
        self.raw.each_cpu(|p: *mut T| {
            // SAFETY: valid `T` (type invariant), shared only as `&T`.
            f(unsafe { &*p })
        });
    }
}
