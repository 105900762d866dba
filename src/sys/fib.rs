// SPDX-License-Identifier: GPL-2.0

//! The FIB notifier of a netns: route changes as plain facts.

use super::bindings;
use super::net::Net;
use super::route::{RouteFacts, RTN_UNICAST};
use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::{Error, Result};

/// A route as the notifier reports it.
#[repr(transparent)]
pub(crate) struct FibRoute(bindings::mpbal_fib_route);

/// A FIB route change.
pub(crate) enum FibEvent<'a> {
    /// The route now heads its prefix (added, replaced or promoted).
    Replace(&'a FibRoute),
    /// The prefix has no route any more; this is the route deleted.
    Del(&'a FibRoute),
}

impl FibRoute {
    pub(crate) fn from_raw(r: &bindings::mpbal_fib_route) -> &FibRoute {
        // SAFETY: `FibRoute` is a `repr(transparent)` wrapper of the struct.
        unsafe { &*core::ptr::from_ref(r).cast::<FibRoute>() }
    }

    pub(crate) fn tb_id(&self) -> u32 {
        self.0.tb_id
    }

    /// Destination, network byte order.
    pub(crate) fn dst(&self) -> u32 {
        self.0.dst
    }

    pub(crate) fn dst_len(&self) -> u32 {
        self.0.dst_len
    }

    /// Output device and gateway of the first nexthops (none with nexthop
    /// objects).
    pub(crate) fn nexthops(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let n = (self.0.nr_oifs as usize).min(self.0.oifs.len());
        self.0.oifs[..n]
            .iter()
            .copied()
            .zip(self.0.gws[..n].iter().copied())
    }
}

/// A registered FIB notifier.
///
/// # Invariants
///
/// A non-null `nb` is registered in `net` with `state` as private pointer,
/// which outlives `self`.
pub(crate) struct FibNotifier {
    net: Net,
    state: *const c_void,
    nb: AtomicPtr<bindings::mpbal_fib_nb>,
}

// SAFETY: `state` is only handed to C; the rest is atomics and `Net`.
unsafe impl Send for FibNotifier {}
// SAFETY: as above.
unsafe impl Sync for FibNotifier {}

impl FibNotifier {
    /// Registers; the kernel first replays every existing route as a
    /// `Replace` event.
    ///
    /// # Safety
    ///
    /// `state` must be the state the FIB trampolines expect and must outlive
    /// the returned value.
    pub(crate) unsafe fn register(net: Net, state: *const c_void) -> Result<Self> {
        let this = FibNotifier {
            net,
            state,
            nb: AtomicPtr::new(core::ptr::null_mut()),
        };
        this.attach()?;
        Ok(this)
    }

    fn attach(&self) -> Result {
        let mut nb = core::ptr::null_mut();
        // SAFETY: `net` live; `state` outlives `self` (type invariant); `nb`
        // is a valid out-pointer.
        let err = unsafe {
            bindings::mpbal_fib_notifier_register(self.net.as_ptr(), self.state.cast_mut(), &mut nb)
        };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        self.nb.store(nb, Ordering::Release);
        Ok(())
    }

    fn detach(&self) {
        let nb = self.nb.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !nb.is_null() {
            // SAFETY: registered (type invariant), swapped out once;
            // unregistering an atomic notifier waits for callbacks in flight.
            unsafe { bindings::mpbal_fib_notifier_unregister(self.net.as_ptr(), nb) }
        }
    }

    /// Unregisters and registers again, so the kernel replays every route:
    /// the state, flushed first, becomes exact again. May sleep; callers
    /// serialize (the per-netns work).
    pub(crate) fn resync(&self) -> Result {
        self.detach();
        self.attach()
    }
}

impl Drop for FibNotifier {
    fn drop(&mut self) {
        self.detach();
    }
}

impl RouteFacts for FibRoute {
    fn is_unicast(&self) -> bool {
        self.0.type_ == RTN_UNICAST
    }

    fn paths(&self) -> u32 {
        self.0.nr_paths
    }

    fn equalize_flag(&self) -> bool {
        self.0.equalize_flag
    }

    fn nh_object(&self) -> bool {
        self.0.nh_object
    }
}
