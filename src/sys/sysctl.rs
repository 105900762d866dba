// SPDX-License-Identifier: GPL-2.0

//! `net.mpbal.*` sysctls: their backing store and registrations.

use super::bindings;
use super::net::{IfName, Net};
use super::work::{DelayedWork, WorkRef};
use core::ffi::CStr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::EINVAL, Error, Result};
use kernel::types::Opaque;

/// An integer sysctl: its name, bounds and initial value.
pub(crate) struct IntKnob {
    pub(crate) name: &'static CStr,
    pub(crate) default: i32,
    pub(crate) min: i32,
    pub(crate) max: i32,
}

/// Values of the per-netns sysctls, shared with the kernel's proc handlers:
/// `strategy` (by id) and the integer knobs, in the order given to `new`.
///
/// Readers load each value once (relaxed atomic loads, the Rust spelling of
/// `READ_ONCE`); the handlers in `sysctl.c` store with `WRITE_ONCE`.
pub(crate) struct SysctlConf {
    inner: Opaque<bindings::mpbal_sysctl_conf>,
}

// SAFETY: every field the C side or `&self` methods touch after creation is
// accessed atomically (see the methods); the rest is written once by `new`.
unsafe impl Sync for SysctlConf {}
// SAFETY: no thread affinity.
unsafe impl Send for SysctlConf {}

impl SysctlConf {
    /// The store for `net` with `strategy` and `knobs` (their names must
    /// stay valid: they are statics).
    pub(crate) fn new<const N: usize>(
        net: Net,
        strategy: i32,
        knobs: &'static [IntKnob; N],
    ) -> Self {
        const { assert!(N <= bindings::MPBAL_SYSCTL_MAX_INTS as usize) };
        let mut raw = bindings::mpbal_sysctl_conf {
            net: net.as_ptr(),
            kick_work: core::ptr::null_mut(),
            strategy,
            nr_ints: N as u32,
            ints: Default::default(),
        };
        for (slot, k) in raw.ints.iter_mut().zip(knobs) {
            *slot = bindings::mpbal_sysctl_int {
                procname: k.name.as_ptr().cast(),
                value: k.default,
                min: k.min,
                max: k.max,
            };
        }
        SysctlConf {
            inner: Opaque::new(raw),
        }
    }

    pub(crate) fn strategy(&self) -> i32 {
        // SAFETY: projects to an `int` field of the live struct, which the
        // kernel only accesses with READ_ONCE/WRITE_ONCE, compatible with
        // atomic accesses of the same size and alignment.
        unsafe { AtomicI32::from_ptr(core::ptr::addr_of_mut!((*self.inner.get()).strategy)) }
            .load(Ordering::Relaxed)
    }

    /// The value of knob `i` (its position in `new`'s list); 0 past the end.
    pub(crate) fn int(&self, i: usize) -> i32 {
        if i >= bindings::MPBAL_SYSCTL_MAX_INTS as usize {
            return 0;
        }
        // SAFETY: as in `strategy`, for `ints[i].value` (in bounds).
        unsafe { AtomicI32::from_ptr(core::ptr::addr_of_mut!((*self.inner.get()).ints[i].value)) }
            .load(Ordering::Relaxed)
    }

    /// Makes successful sysctl writes kick `work`. Cleared again before the
    /// work is destroyed (see `netns.rs`).
    pub(crate) fn set_kick_work(&self, work: Option<&DelayedWork>) {
        let p = work.map_or(core::ptr::null_mut(), |w| w.as_ptr());
        // SAFETY: projects to the pointer field of the live struct; the
        // handler reads it with a plain load of the same size, ordered
        // before its registration by `register_net_sysctl_sz()`.
        let field = unsafe { core::ptr::addr_of_mut!((*self.inner.get()).kick_work) };
        // SAFETY: valid, aligned pointer field, accessed atomically only here.
        unsafe { AtomicPtr::from_ptr(field) }.store(p, Ordering::Release);
    }
}

/// The registered `net/mpbal` table of one netns.
///
/// # Invariants
///
/// `hdr` is a live registration whose table points into a `SysctlConf` that
/// outlives `self` (guaranteed by `register`'s contract).
pub(crate) struct SysctlTable {
    hdr: NonNull<bindings::ctl_table_header>,
}

// SAFETY: the header is only used to unregister, from any thread.
unsafe impl Send for SysctlTable {}
// SAFETY: no shared-reference methods.
unsafe impl Sync for SysctlTable {}

impl SysctlTable {
    /// # Safety
    ///
    /// `conf` must outlive the returned registration.
    pub(crate) unsafe fn register(net: Net, conf: &SysctlConf) -> Result<Self> {
        let mut hdr = core::ptr::null_mut();
        // SAFETY: `net` is live; `conf` outlives the registration (contract);
        // `hdr` is a valid out-pointer.
        let err =
            unsafe { bindings::mpbal_sysctl_register(net.as_ptr(), conf.inner.get(), &mut hdr) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(SysctlTable {
            hdr: NonNull::new(hdr).ok_or(EINVAL)?,
        })
    }
}

impl Drop for SysctlTable {
    fn drop(&mut self) {
        // SAFETY: live registration (type invariant), unregistered once; this
        // waits for handlers in progress.
        unsafe { bindings::mpbal_sysctl_unregister(self.hdr.as_ptr()) }
    }
}

/// `net.mpbal.conf.DEV.*` of one device: values and registration in one
/// allocation, so the values outlive the registration by construction.
pub(crate) struct DevSysctl {
    conf: Opaque<bindings::mpbal_devconf>,
    hdr: AtomicPtr<bindings::ctl_table_header>,
}

// SAFETY: the values are accessed atomically (see the getters); the header
// is only used to unregister.
unsafe impl Sync for DevSysctl {}
// SAFETY: no thread affinity.
unsafe impl Send for DevSysctl {}

impl DevSysctl {
    /// Registers the directory for device `name` with `capacity` bit/s and
    /// `uplink_id` (0 to `uplink_id_max`), kicking `work` on writes.
    pub(crate) fn register(
        net: Net,
        name: &IfName,
        capacity: u64,
        uplink_id: i32,
        uplink_id_max: i32,
        work: &WorkRef,
    ) -> Result<KBox<Self>> {
        let this = KBox::new(
            DevSysctl {
                conf: Opaque::new(bindings::mpbal_devconf {
                    net: net.as_ptr(),
                    kick_work: work.as_ptr(),
                    capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
                    uplink_id,
                    uplink_id_max,
                }),
                hdr: AtomicPtr::new(core::ptr::null_mut()),
            },
            GFP_KERNEL,
        )?;
        let mut hdr = core::ptr::null_mut();
        // SAFETY: `net` is live; `name` is NUL-terminated; the values live in
        // the box, which is only freed after `Drop` unregisters; the work
        // outlives every device of the netns (see `netns.rs`).
        let err = unsafe {
            bindings::mpbal_devconf_register(
                net.as_ptr(),
                name.as_c_ptr().cast(),
                this.conf.get(),
                &mut hdr,
            )
        };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        this.hdr.store(hdr, Ordering::Relaxed);
        Ok(this)
    }

    /// The configured capacity in bit/s, 0 if unset.
    pub(crate) fn capacity(&self) -> u64 {
        // SAFETY: `addr_of_mut!` on a valid pointer only computes an address.
        let field = unsafe { core::ptr::addr_of_mut!((*self.conf.get()).capacity) };
        // SAFETY: an aligned `unsigned long` field of the live struct that
        // the proc handler writes with plain stores of the same size.
        unsafe { AtomicUsize::from_ptr(field) }.load(Ordering::Relaxed) as u64
    }

    /// The pinned uplink id, 0 if automatic.
    pub(crate) fn uplink_id(&self) -> i32 {
        // SAFETY: as above, for an `int` field.
        unsafe { AtomicI32::from_ptr(core::ptr::addr_of_mut!((*self.conf.get()).uplink_id)) }
            .load(Ordering::Relaxed)
    }
}

impl Drop for DevSysctl {
    fn drop(&mut self) {
        let hdr = self.hdr.load(Ordering::Relaxed);
        if !hdr.is_null() {
            // SAFETY: live registration made in `register`, unregistered once.
            unsafe { bindings::mpbal_devconf_unregister(hdr) }
        }
    }
}
