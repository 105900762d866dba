//! `net.mpbal.*` sysctls: their backing store and registrations.

use super::bindings;
use super::net::{IfName, Net};
use super::work::DelayedWork;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::ENOMEM, Result};
use kernel::types::Opaque;

/// Values of the per-netns sysctls, shared with the kernel's proc handlers.
///
/// Readers load each field once (relaxed atomic loads, the Rust spelling of
/// `READ_ONCE`); the handlers in `helper.c` store with `WRITE_ONCE`.
pub(crate) struct SysctlConf {
    inner: Opaque<bindings::mpbal_sysctl_conf>,
}

/// Initial values of [`SysctlConf`].
pub(crate) struct ConfDefaults {
    pub(crate) strategy: i32,
    pub(crate) route_idle_timeout: i32,
    pub(crate) bw_interval_ms: i32,
    pub(crate) bw_ewma_log: i32,
}

impl SysctlConf {
    pub(crate) fn new(net: Net, d: ConfDefaults) -> Self {
        SysctlConf {
            inner: Opaque::new(bindings::mpbal_sysctl_conf {
                net: net.as_ptr(),
                kick_work: core::ptr::null_mut(),
                strategy: d.strategy,
                route_idle_timeout: d.route_idle_timeout,
                bw_interval_ms: d.bw_interval_ms,
                bw_ewma_log: d.bw_ewma_log,
            }),
        }
    }

    fn field(&self, f: impl FnOnce(*mut bindings::mpbal_sysctl_conf) -> *mut i32) -> &AtomicI32 {
        // SAFETY: `f` projects to an `int` field of the live, properly aligned
        // struct; the kernel only accesses it with READ_ONCE/WRITE_ONCE, which
        // is compatible with atomic accesses of the same size.
        unsafe { AtomicI32::from_ptr(f(self.inner.get())) }
    }

    pub(crate) fn strategy(&self) -> i32 {
        // SAFETY: `addr_of_mut!` on a valid pointer only computes an address.
        self.field(|c| unsafe { core::ptr::addr_of_mut!((*c).strategy) })
            .load(Ordering::Relaxed)
    }

    pub(crate) fn route_idle_timeout(&self) -> i32 {
        // SAFETY: as above.
        self.field(|c| unsafe { core::ptr::addr_of_mut!((*c).route_idle_timeout) })
            .load(Ordering::Relaxed)
    }

    pub(crate) fn bw_interval_ms(&self) -> i32 {
        // SAFETY: as above.
        self.field(|c| unsafe { core::ptr::addr_of_mut!((*c).bw_interval_ms) })
            .load(Ordering::Relaxed)
    }

    pub(crate) fn bw_ewma_log(&self) -> i32 {
        // SAFETY: as above.
        self.field(|c| unsafe { core::ptr::addr_of_mut!((*c).bw_ewma_log) })
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
        // SAFETY: `net` is live; `conf` outlives the registration (contract).
        let hdr = unsafe { bindings::mpbal_sysctl_register(net.as_ptr(), conf.inner.get()) };
        Ok(SysctlTable {
            hdr: NonNull::new(hdr).ok_or(ENOMEM)?,
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

/// `net.mpbal.conf.DEV.capacity` of one device: value and registration in
/// one allocation, so the value outlives the registration by construction.
pub(crate) struct DevCapacity {
    value: Opaque<kernel::ffi::c_ulong>,
    hdr: AtomicPtr<bindings::ctl_table_header>,
}

impl DevCapacity {
    /// Registers the directory for device `name` with `initial` bit/s.
    pub(crate) fn register(net: Net, name: &IfName, initial: u64) -> Result<KBox<Self>> {
        let this = KBox::new(
            DevCapacity {
                value: Opaque::new(usize::try_from(initial).unwrap_or(usize::MAX)),
                hdr: AtomicPtr::new(core::ptr::null_mut()),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `net` is live; `name` is NUL-terminated; the value lives in
        // the box, which is only freed after `Drop` unregisters.
        let hdr = unsafe {
            bindings::mpbal_devconf_register(net.as_ptr(), name.as_c_ptr().cast(), this.value.get())
        };
        if hdr.is_null() {
            return Err(ENOMEM);
        }
        this.hdr.store(hdr, Ordering::Relaxed);
        Ok(this)
    }

    /// The configured capacity in bit/s, 0 if unset.
    pub(crate) fn get(&self) -> u64 {
        // SAFETY: the value is an aligned `unsigned long` that the proc
        // handler writes with plain stores of the same size.
        let v = unsafe { AtomicUsize::from_ptr(self.value.get()) }.load(Ordering::Relaxed);
        v as u64
    }
}

impl Drop for DevCapacity {
    fn drop(&mut self) {
        let hdr = self.hdr.load(Ordering::Relaxed);
        if !hdr.is_null() {
            // SAFETY: live registration made in `register`, unregistered once.
            unsafe { bindings::mpbal_devconf_unregister(hdr) }
        }
    }
}
