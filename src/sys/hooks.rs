//! Registration of the three netfilter hooks of one netns. The hook
//! functions themselves are in `entry.rs`.

use super::bindings;
use super::net::Net;
use core::ffi::c_void;
use core::ptr::NonNull;
use kernel::error::{code::ENOMEM, Result};

/// Registered PRE_ROUTING, LOCAL_OUT and POST_ROUTING hooks.
///
/// # Invariants
///
/// `ops` is live and registered in `net`, with a private pointer that
/// outlives `self`.
pub(crate) struct Hooks {
    net: Net,
    ops: NonNull<c_void>,
}

// SAFETY: only used to unregister, from process context on any CPU.
unsafe impl Send for Hooks {}
// SAFETY: no shared-reference methods.
unsafe impl Sync for Hooks {}

impl Hooks {
    /// # Safety
    ///
    /// `state` must be the `NetState` the hook entry points expect, and it
    /// must outlive the returned value.
    pub(crate) unsafe fn register(net: Net, state: *const c_void) -> Result<Self> {
        // SAFETY: `net` is live; `state` outlives the hooks (contract).
        let ops = unsafe { bindings::mpbal_hooks_register(net.as_ptr(), state.cast_mut()) };
        Ok(Hooks {
            net,
            ops: NonNull::new(ops).ok_or(ENOMEM)?,
        })
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        // SAFETY: registered ops (type invariant); nf_unregister_net_hooks()
        // waits (synchronize_net) until no hook call is in flight.
        unsafe { bindings::mpbal_hooks_unregister(self.net.as_ptr(), self.ops.as_ptr()) }
    }
}
