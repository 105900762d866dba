// SPDX-License-Identifier: GPL-2.0

//! `net.mpbal.*` sysctls: their backing store and registrations.

use super::bindings;
use super::net::{IfName, Net};
use super::work::{DelayedWork, WorkRef};
use core::ffi::CStr;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
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

/// What `net.mpbal.conf.DEV` holds for one device, kept across a rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DevValues {
    /// bit/s, 0 if unset.
    pub(crate) capacity: u64,
    /// The pinned uplink id, 0 if automatic.
    pub(crate) uplink_id: i32,
    /// Administratively down.
    pub(crate) down: bool,
    /// 1 (preferred) and up.
    pub(crate) tier: i32,
    /// Counters: `down` 0 -> 1 and 1 -> 0 writes, conntrack entries flushed.
    pub(crate) admin_downs: u64,
    pub(crate) admin_ups: u64,
    pub(crate) ct_flushed: u64,
}

impl DevValues {
    /// A new device's.
    pub(crate) const NEW: DevValues = DevValues {
        capacity: 0,
        uplink_id: 0,
        down: false,
        tier: 1,
        admin_downs: 0,
        admin_ups: 0,
        ct_flushed: 0,
    };
}

/// The values of `net.mpbal.conf.DEV.*`, shared with the proc handlers of
/// `sysctl.c`, which write the configured ones with plain stores (or
/// `xchg`); the counters are only written here.
#[repr(transparent)]
pub(crate) struct DevConf {
    inner: Opaque<bindings::mpbal_devconf>,
}

/// An atomic view of an `int` field of a live `mpbal_devconf`.
macro_rules! conf_i32 {
    ($self:ident . $field:ident) => {{
        // SAFETY: `addr_of_mut!` on the valid pointer of a live struct only
        // computes an address.
        let p = unsafe { core::ptr::addr_of_mut!((*$self.inner.get()).$field) };
        // SAFETY: an aligned `int` field of the live struct that the proc
        // handlers access with plain loads, stores or `xchg` of the same
        // size, compatible with atomic accesses.
        unsafe { AtomicI32::from_ptr(p) }
    }};
}

/// The same for a `u64` counter field, which only `DevConf` writes.
macro_rules! conf_u64 {
    ($self:ident . $field:ident) => {{
        // SAFETY: as in `conf_i32!`.
        let p = unsafe { core::ptr::addr_of_mut!((*$self.inner.get()).$field) };
        // SAFETY: an aligned `u64` field of the live struct that C never
        // touches; every access is atomic through here.
        unsafe { AtomicU64::from_ptr(p) }
    }};
}

impl DevConf {
    /// The values as they are now.
    pub(crate) fn values(&self) -> DevValues {
        DevValues {
            capacity: self.capacity(),
            uplink_id: self.uplink_id(),
            down: self.down(),
            tier: self.tier(),
            admin_downs: conf_u64!(self.admin_downs).load(Ordering::Relaxed),
            admin_ups: conf_u64!(self.admin_ups).load(Ordering::Relaxed),
            ct_flushed: conf_u64!(self.ct_flushed).load(Ordering::Relaxed),
        }
    }

    /// The device's ifindex.
    pub(crate) fn ifindex(&self) -> u32 {
        // Written once before the registration, never by the handlers.
        conf_i32!(self.ifindex).load(Ordering::Relaxed) as u32
    }

    /// The configured capacity in bit/s, 0 if unset.
    pub(crate) fn capacity(&self) -> u64 {
        // SAFETY: `addr_of_mut!` on a valid pointer only computes an address.
        let field = unsafe { core::ptr::addr_of_mut!((*self.inner.get()).capacity) };
        // SAFETY: an aligned `unsigned long` field of the live struct that
        // the proc handler writes with plain stores of the same size.
        unsafe { AtomicUsize::from_ptr(field) }.load(Ordering::Relaxed) as u64
    }

    /// The pinned uplink id, 0 if automatic.
    pub(crate) fn uplink_id(&self) -> i32 {
        conf_i32!(self.uplink_id).load(Ordering::Relaxed)
    }

    /// Administratively down (`down` is 1).
    pub(crate) fn down(&self) -> bool {
        conf_i32!(self.down).load(Ordering::Relaxed) != 0
    }

    /// The tier, 1 (preferred) to the registration's `tier_max`.
    pub(crate) fn tier(&self) -> i32 {
        conf_i32!(self.tier).load(Ordering::Relaxed)
    }

    /// Counts a `down` 0 -> 1 (`down`) or 1 -> 0 write.
    pub(crate) fn count_admin(&self, down: bool) {
        let c = if down {
            conf_u64!(self.admin_downs)
        } else {
            conf_u64!(self.admin_ups)
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts conntrack entries flushed when the device went down.
    pub(crate) fn add_ct_flushed(&self, n: u64) {
        conf_u64!(self.ct_flushed).fetch_add(n, Ordering::Relaxed);
    }

    /// The values of the devconf at `p`, for the duration of a callback.
    ///
    /// # Safety
    ///
    /// `p` must point to a live `mpbal_devconf` (one in a registered
    /// [`DevSysctl`]) for `'a`.
    pub(crate) unsafe fn from_raw<'a>(p: *mut bindings::mpbal_devconf) -> &'a DevConf {
        // SAFETY: `DevConf` is `repr(transparent)` over `Opaque<T>`, itself
        // transparent over `T`, so the cast keeps layout; live for `'a` per
        // the function contract.
        unsafe { &*p.cast::<DevConf>() }
    }
}

/// `net.mpbal.conf.DEV.*` of one device: values and registration in one
/// allocation, so the values outlive the registration by construction.
pub(crate) struct DevSysctl {
    conf: DevConf,
    hdr: AtomicPtr<bindings::ctl_table_header>,
}

// SAFETY: the values are accessed atomically (see `DevConf`); the header
// is only used to unregister.
unsafe impl Sync for DevSysctl {}
// SAFETY: no thread affinity.
unsafe impl Send for DevSysctl {}

impl DevSysctl {
    /// Registers the directory for device `name` (`ifindex`) with `v`
    /// (`uplink_id` 0 to `uplink_id_max`, `tier` 1 to `tier_max`),
    /// kicking `work` on writes.
    pub(crate) fn register(
        net: Net,
        name: &IfName,
        ifindex: u32,
        v: &DevValues,
        (uplink_id_max, tier_max): (i32, i32),
        work: &WorkRef,
    ) -> Result<KBox<Self>> {
        let this = KBox::new(
            DevSysctl {
                conf: DevConf {
                    inner: Opaque::new(bindings::mpbal_devconf {
                        net: net.as_ptr(),
                        kick_work: work.as_ptr(),
                        ifindex: ifindex as i32,
                        capacity: usize::try_from(v.capacity).unwrap_or(usize::MAX),
                        uplink_id: v.uplink_id,
                        uplink_id_max,
                        down: i32::from(v.down),
                        tier: v.tier,
                        tier_max,
                        admin_downs: v.admin_downs,
                        admin_ups: v.admin_ups,
                        ct_flushed: v.ct_flushed,
                    }),
                },
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
                this.conf.inner.get(),
                &mut hdr,
            )
        };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        this.hdr.store(hdr, Ordering::Relaxed);
        Ok(this)
    }

    /// The values.
    pub(crate) fn conf(&self) -> &DevConf {
        &self.conf
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
