// SPDX-License-Identifier: GPL-2.0

//! The three netfilter hooks of one netns (the C half registers them with
//! the trampolines of `netns.rs`), switched on and off at run time.
//!
//! The hooks are registered only while the netns has equalize routes, so a
//! netns without them runs no mpbal code per packet at all (a registered
//! hook costs every packet a call through `nf_hook_slow()`, even one that
//! returns at once).

use super::bindings;
use super::net::Net;
use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::{code::EINVAL, Error, Result};

/// The hooks of one netns.
///
/// # Invariants
///
/// A non-null `ops` is live and registered in `net` with `state` as private
/// pointer; whoever swaps it out of `ops` unregisters it. A non-null `state`
/// outlives every registration (see `set_state`).
pub(crate) struct HookSwitch {
    net: Net,
    state: AtomicPtr<c_void>,
    ops: AtomicPtr<bindings::nf_hook_ops>,
    /// Unregistered by `off_nowait`, freed on drop.
    retired: AtomicPtr<bindings::nf_hook_ops>,
}

impl HookSwitch {
    pub(crate) const fn new(net: Net) -> Self {
        HookSwitch {
            net,
            state: AtomicPtr::new(core::ptr::null_mut()),
            ops: AtomicPtr::new(core::ptr::null_mut()),
            retired: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// Sets the private pointer the hooks are registered with.
    ///
    /// # Safety
    ///
    /// `state` must be the state the hook trampolines expect, and it must
    /// stay valid until the hooks are switched off for good: by `set(false)`
    /// or by dropping `self` before anything the hooks use.
    pub(crate) unsafe fn set_state(&self, state: *const c_void) {
        self.state.store(state.cast_mut(), Ordering::Release);
    }

    /// Registers or unregisters the hooks; may sleep. Concurrent callers are
    /// safe: at most one registration stays.
    pub(crate) fn set(&self, on: bool) -> Result {
        if !on {
            let ops = self.ops.swap(core::ptr::null_mut(), Ordering::AcqRel);
            if !ops.is_null() {
                // SAFETY: swapped out a registered `ops` (type invariant);
                // the helper waits (synchronize_net) until no hook call is in
                // flight before it returns.
                unsafe { bindings::mpbal_hooks_unregister(self.net.as_ptr(), ops) };
            }
            return Ok(());
        }
        if !self.ops.load(Ordering::Acquire).is_null() {
            return Ok(());
        }
        let state = self.state.load(Ordering::Acquire);
        if state.is_null() {
            return Err(EINVAL);
        }
        let mut ops = core::ptr::null_mut();
        // SAFETY: `net` is live; `state` outlives the registration
        // (`set_state` contract); `ops` is a valid out-pointer.
        let err = unsafe { bindings::mpbal_hooks_register(self.net.as_ptr(), state, &mut ops) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        if self
            .ops
            .compare_exchange(
                core::ptr::null_mut(),
                ops,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // Someone else registered meanwhile: theirs stays.
            // SAFETY: `ops` was registered above and never published.
            unsafe { bindings::mpbal_hooks_unregister(self.net.as_ptr(), ops) };
        }
        Ok(())
    }

    /// Unregisters the hooks without waiting for calls in flight, for netns
    /// teardown (pernet pre_exit): the core runs a grace period before the
    /// exit that drops `self`, and the state the hooks use is dropped after.
    pub(crate) fn off_nowait(&self) {
        let ops = self.ops.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if ops.is_null() {
            return;
        }
        if self
            .retired
            .compare_exchange(
                core::ptr::null_mut(),
                ops,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // A second teardown (not done today): wait, and free at once.
            // SAFETY: swapped out a registered `ops` (type invariant).
            unsafe { bindings::mpbal_hooks_unregister(self.net.as_ptr(), ops) };
            return;
        }
        // SAFETY: swapped out a registered `ops`; it is freed on drop, after
        // the teardown's grace period.
        unsafe { bindings::mpbal_hooks_unregister_nowait(self.net.as_ptr(), ops) };
    }

    /// Whether the hooks are registered now.
    pub(crate) fn is_on(&self) -> bool {
        !self.ops.load(Ordering::Acquire).is_null()
    }
}

impl Drop for HookSwitch {
    fn drop(&mut self) {
        // Cannot fail when switching off.
        let _ = self.set(false);
        let retired = *self.retired.get_mut();
        if !retired.is_null() {
            // SAFETY: unregistered by `off_nowait`, and the grace period of
            // netns teardown has passed (see there).
            unsafe { bindings::mpbal_hooks_free(retired) };
        }
    }
}
