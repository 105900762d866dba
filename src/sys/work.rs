// SPDX-License-Identifier: GPL-2.0

//! Delayed work (6.12's Rust has none), for the per-netns worker.

use super::bindings;
use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::{code::EINVAL, Error, Result};

/// A delayed work item calling `func(data)`.
///
/// # Invariants
///
/// `work` is a live `mpbal_dwork` whose `data` outlives `self`.
pub(crate) struct DelayedWork {
    work: NonNull<bindings::mpbal_dwork>,
}

// SAFETY: workqueue functions may be called from any context.
unsafe impl Send for DelayedWork {}
// SAFETY: as above.
unsafe impl Sync for DelayedWork {}

impl DelayedWork {
    /// # Safety
    ///
    /// `data` must stay valid for `func` until the returned value is dropped.
    pub(crate) unsafe fn new(
        func: unsafe extern "C" fn(*mut c_void),
        data: *const c_void,
    ) -> Result<Self> {
        let mut work = core::ptr::null_mut();
        // SAFETY: plain allocation and INIT_DELAYED_WORK; `work` is a valid
        // out-pointer.
        let err = unsafe { bindings::mpbal_dwork_create(Some(func), data.cast_mut(), &mut work) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(DelayedWork {
            work: NonNull::new(work).ok_or(EINVAL)?,
        })
    }

    /// Cancels it, waits for a running instance, and makes later schedule
    /// calls no-ops. May sleep.
    pub(crate) fn disable(&self) {
        // SAFETY: live work (type invariant); disabling nests, so `Drop`
        // may do it again.
        unsafe { bindings::mpbal_dwork_cancel_sync(self.work.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut bindings::mpbal_dwork {
        self.work.as_ptr()
    }
}

impl Drop for DelayedWork {
    fn drop(&mut self) {
        // SAFETY: live work; disabling waits for a running instance and makes
        // later schedule calls no-ops, so nothing runs after the free.
        unsafe {
            bindings::mpbal_dwork_cancel_sync(self.work.as_ptr());
            bindings::mpbal_dwork_destroy(self.work.as_ptr());
        }
    }
}

/// Where the per-netns state (re)arms its work from: the FIB notifier, the
/// work itself. Set by `netns.rs` once the work exists.
///
/// # Invariants
///
/// A non-null `work` points to a live `DelayedWork` that outlives every
/// caller of `schedule` (see the teardown order in `netns.rs`).
pub(crate) struct WorkRef {
    work: AtomicPtr<bindings::mpbal_dwork>,
}

impl WorkRef {
    pub(crate) const fn new() -> Self {
        WorkRef {
            work: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// # Safety
    ///
    /// `work` must outlive every later `schedule` call on `self`.
    pub(crate) unsafe fn set(&self, work: &DelayedWork) {
        self.work.store(work.as_ptr(), Ordering::Release);
    }

    /// The work, null before `set`.
    pub(crate) fn as_ptr(&self) -> *mut bindings::mpbal_dwork {
        self.work.load(Ordering::Acquire)
    }

    /// Runs the worker after `delay_ms`; a no-op before `set`.
    pub(crate) fn schedule(&self, delay_ms: u32) {
        let w = self.work.load(Ordering::Acquire);
        if !w.is_null() {
            // SAFETY: `w` is a live work (type invariant).
            unsafe { bindings::mpbal_dwork_schedule(w, delay_ms) }
        }
    }
}
