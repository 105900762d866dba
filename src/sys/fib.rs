//! The FIB notifier that tells which routes of a netns are equalize routes.

use super::bindings;
use super::net::Net;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::error::{code::ENOMEM, Result};

pub(crate) use super::bindings::mpbal_fib_route as FibRoute;

/// A FIB route change, as the notifier reports it.
pub(crate) enum FibEvent<'a> {
    /// The route now heads its prefix (added, replaced or promoted).
    Replace(&'a FibRoute),
    /// The prefix has no route any more.
    Del(&'a FibRoute),
}

impl FibRoute {
    /// Output ifindexes of the nexthops (empty unless equalize).
    pub(crate) fn oifs(&self) -> &[u32] {
        &self.oifs[..(self.nr_oifs as usize).min(self.oifs.len())]
    }
}

/// A registered FIB notifier.
///
/// # Invariants
///
/// `handle` is registered in `net` with a private pointer outliving `self`.
pub(crate) struct FibNotifier {
    net: Net,
    handle: NonNull<c_void>,
}

// SAFETY: only used to unregister.
unsafe impl Send for FibNotifier {}
// SAFETY: no shared-reference methods.
unsafe impl Sync for FibNotifier {}

impl FibNotifier {
    /// Registers; the kernel first replays every existing route as a
    /// `Replace` event.
    ///
    /// # Safety
    ///
    /// `state` must be the `NetState` that `mpbal_rust_fib_*` expect and must
    /// outlive the returned value.
    pub(crate) unsafe fn register(net: Net, state: *const c_void) -> Result<Self> {
        // SAFETY: `net` live; `state` outlives the notifier (contract).
        let handle =
            unsafe { bindings::mpbal_fib_notifier_register(net.as_ptr(), state.cast_mut()) };
        Ok(FibNotifier {
            net,
            handle: NonNull::new(handle).ok_or(ENOMEM)?,
        })
    }
}

impl Drop for FibNotifier {
    fn drop(&mut self) {
        // SAFETY: registered (type invariant); unregistering an atomic
        // notifier waits for callbacks in flight (synchronize_rcu).
        unsafe { bindings::mpbal_fib_notifier_unregister(self.net.as_ptr(), self.handle.as_ptr()) }
    }
}
