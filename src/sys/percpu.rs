//! Per-CPU state for the packet path: counters and WRR rotation, so no cache
//! line is shared between CPUs per packet.

use super::bindings;
use crate::policy::counters::CpuCounters;
use crate::policy::state::CpuLocal;
use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{code::ENOMEM, Result};

/// A per-CPU allocation of `T`, every copy initialized with `T::default()`.
///
/// # Invariants
///
/// `pcpu` is a live per-CPU allocation sized and aligned for `T`, and every
/// possible CPU's copy holds a valid `T`.
struct Raw<T> {
    pcpu: NonNull<c_void>,
    _t: PhantomData<T>,
}

/// Types whose all-zero bit pattern is a valid value, equal to their
/// `Default`. Per-CPU copies of them come zeroed from `__alloc_percpu()` and
/// are never built on the stack: some are kilobytes, and a kernel stack is
/// 16 KiB without guard pages (no `VMAP_STACK` in small configs), so a few
/// nested copies of a large `T::default()` silently overran it.
///
/// # Safety
///
/// The all-zero bit pattern must be a valid value of the type.
pub(crate) unsafe trait Zeroed {}

// SAFETY: integers are valid at zero.
unsafe impl Zeroed for u32 {}

// SAFETY: atomics and arrays of them, valid at zero.
unsafe impl Zeroed for CpuCounters {}

// SAFETY: every field is, recursively, integers, bools and arrays of them
// (`FlowCache` keeps no `Option`s, `WrrState` is documented all-zero valid)
// or a `RouteKind`, whose `repr(u8)` has `None = 0`. Zero is the empty
// route cache, fresh WRR state, no note and no booking: the `Default`.
unsafe impl Zeroed for CpuLocal {}

impl<T: Zeroed> Raw<T> {
    fn new() -> Result<Self> {
        // SAFETY: plain allocation of zero-filled per-CPU memory for `T`, or
        // NULL; all-zero is a valid `T` (`Zeroed`), so every copy is valid.
        let p = unsafe {
            bindings::mpbal_percpu_alloc(core::mem::size_of::<T>(), core::mem::align_of::<T>())
        };
        Ok(Raw {
            pcpu: NonNull::new(p).ok_or(ENOMEM)?,
            _t: PhantomData,
        })
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

struct Exclusive<T> {
    busy: bool,
    value: T,
}

// SAFETY: a `bool` and a `Zeroed` value, both valid at zero.
unsafe impl<T: Zeroed> Zeroed for Exclusive<T> {}

/// Per-CPU state only ever touched by its own CPU (WRR rotation, scratch).
pub(crate) struct PerCpuExclusive<T> {
    raw: Raw<Exclusive<T>>,
}

// SAFETY: a CPU's copy is only reached through `with`, which disables BH on
// that CPU and refuses re-entry, so no two contexts share a copy.
unsafe impl<T: Send> Sync for PerCpuExclusive<T> {}
// SAFETY: the allocation is not tied to a thread.
unsafe impl<T: Send> Send for PerCpuExclusive<T> {}

impl<T: Zeroed> PerCpuExclusive<T> {
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

impl<T: Zeroed + Sync> PerCpuShared<T> {
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
