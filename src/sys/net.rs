// SPDX-License-Identifier: GPL-2.0

//! Network namespaces and devices.

use super::bindings;
use core::ptr::NonNull;
use kernel::error::{Error, Result};

/// A `struct net` that outlives its holder: mpbal only keeps one inside the
/// per-netns state, which pernet init creates and pernet exit destroys.
///
/// # Invariants
///
/// `self.0` points to a live `struct net` for as long as this value exists.
#[derive(Clone, Copy)]
pub(crate) struct Net(NonNull<bindings::net>);

// SAFETY: `struct net` is shared by design; everything done through `Net`
// goes through helpers that use the kernel's own synchronization
// (READ_ONCE/WRITE_ONCE, RCU, nf_ct_netns_get's mutex).
unsafe impl Send for Net {}
// SAFETY: as above.
unsafe impl Sync for Net {}

/// `IFNAMSIZ`: longest interface name including its NUL.
pub(crate) const IFNAMSIZ: usize = 16;

/// An interface name, NUL-padded like `IFNAMSIZ` buffers.
#[derive(Clone, Copy, Default)]
pub(crate) struct IfName([u8; IFNAMSIZ]);

impl IfName {
    /// The name up to its NUL.
    pub(crate) fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        core::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }

    /// The buffer, NUL-terminated (names are at most 15 bytes).
    pub(crate) fn as_c_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
}

impl Net {
    /// Wraps a `struct net` pointer.
    ///
    /// # Safety
    ///
    /// `net` must stay valid for the lifetime of the returned value and of
    /// all its copies.
    pub(crate) unsafe fn from_raw(net: *mut bindings::net) -> Option<Self> {
        NonNull::new(net).map(Net)
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::net {
        self.0.as_ptr()
    }

    /// The netns inode number, as `ip netns identify` and `/proc/PID/ns/net`
    /// show it; names the netns in log messages.
    pub(crate) fn inum(self) -> u32 {
        // SAFETY: `self.0` is live (type invariant).
        unsafe { bindings::mpbal_net_inum(self.0.as_ptr()) }
    }

    /// `net.ipv4.fib_multipath_hash_policy`, read once.
    pub(crate) fn hash_policy(self) -> i32 {
        // SAFETY: `self.0` is live (type invariant); the helper uses READ_ONCE.
        unsafe { bindings::mpbal_hash_policy(self.0.as_ptr()) }
    }

    /// Writes `net.ipv4.fib_multipath_hash_policy` (WRITE_ONCE).
    pub(crate) fn set_hash_policy(self, policy: i32) {
        // SAFETY: `self.0` is live (type invariant); the helper uses WRITE_ONCE.
        unsafe { bindings::mpbal_set_hash_policy(self.0.as_ptr(), policy) }
    }

    /// Takes a reference on IPv4 conntrack in this netns (registers its hooks
    /// if nobody else did). May sleep.
    pub(crate) fn conntrack_get(self) -> Result {
        // SAFETY: `self.0` is live (type invariant); process context is the
        // caller's duty, and the only callers are work items.
        let err = unsafe { bindings::mpbal_conntrack_get(self.0.as_ptr()) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }

    /// Deletes the source-NATed conntrack entries of the netns whose mark
    /// `matches` accepts (`nf_ct_iterate_cleanup_net()`); returns how many.
    /// Process context: it may sleep. `matches` runs under a conntrack
    /// bucket lock with BH off, so it must not sleep.
    pub(crate) fn ct_flush_snat<F: Fn(u32) -> bool + Sync>(self, matches: &F) -> u64 {
        /// # Safety
        ///
        /// `data` is the `&F` of the enclosing call, live while it runs.
        unsafe extern "C" fn trampoline<F: Fn(u32) -> bool>(
            data: *mut core::ffi::c_void,
            mark: u32,
        ) -> bool {
            // SAFETY: per the function contract.
            let f = unsafe { &*data.cast::<F>() };
            f(mark)
        }
        let data = core::ptr::from_ref(matches).cast_mut().cast();
        // SAFETY: `self.0` is live (type invariant); the helper calls the
        // trampoline with `data` only before it returns, while `matches`
        // is borrowed.
        unsafe { bindings::mpbal_ct_flush_snat(self.0.as_ptr(), Some(trampoline::<F>), data) }
    }

    /// Drops the reference from [`Net::conntrack_get`].
    pub(crate) fn conntrack_put(self) {
        // SAFETY: `self.0` is live; called once per successful get.
        unsafe { bindings::mpbal_conntrack_put(self.0.as_ptr()) }
    }

    /// Cumulative tx bytes and whether the device is up with carrier.
    pub(crate) fn dev_tx_bytes(self, ifindex: u32) -> Option<(u64, bool)> {
        let mut bytes = 0u64;
        let mut up = false;
        // SAFETY: `self.0` is live; the out-pointers are valid locals; the
        // helper looks the device up under RCU and keeps no reference.
        let found = unsafe {
            bindings::mpbal_dev_tx_bytes(self.0.as_ptr(), ifindex as i32, &mut bytes, &mut up)
        };
        found.then_some((bytes, up))
    }

    /// Bytes waiting in the qdiscs of device `ifindex` (0 if it is gone).
    pub(crate) fn dev_backlog(self, ifindex: u32) -> u32 {
        // SAFETY: `self.0` is live; the helper looks the device up under
        // RCU, reads its qdiscs' counters there and keeps no reference.
        unsafe { bindings::mpbal_dev_backlog(self.0.as_ptr(), ifindex as i32) }
    }

    /// The name of device `ifindex`, if it exists.
    pub(crate) fn dev_name(self, ifindex: u32) -> Option<IfName> {
        let mut name = IfName::default();
        // SAFETY: `self.0` is live; `name.0` has IFNAMSIZ bytes as required.
        let found = unsafe {
            bindings::mpbal_dev_name_by_index(
                self.0.as_ptr(),
                ifindex as i32,
                name.0.as_mut_ptr().cast(),
            )
        };
        found.then_some(name)
    }
}

/// A device borrowed for the duration of a netdevice notifier call, which
/// runs with RTNL held.
///
/// # Invariants
///
/// `self.dev` is valid and RTNL is held for the lifetime `'a`.
pub(crate) struct NetDevice<'a> {
    dev: &'a bindings::net_device,
}

impl<'a> NetDevice<'a> {
    /// # Safety
    ///
    /// `dev` must be valid and RTNL held for `'a` (a netdevice notifier call).
    pub(crate) unsafe fn from_raw(dev: *mut bindings::net_device) -> Option<Self> {
        // SAFETY: per the function contract `dev` is valid for `'a` if non-null.
        unsafe { dev.as_ref() }.map(|dev| NetDevice { dev })
    }

    pub(crate) fn ifindex(&self) -> u32 {
        // SAFETY: `self.dev` is valid (type invariant).
        unsafe { bindings::mpbal_dev_ifindex(self.dev) as u32 }
    }

    pub(crate) fn name(&self) -> IfName {
        let mut name = IfName::default();
        // SAFETY: `self.dev` is valid; `name.0` has IFNAMSIZ bytes.
        unsafe { bindings::mpbal_dev_name(self.dev, name.0.as_mut_ptr().cast()) };
        name
    }

    /// ethtool link speed in Mbit/s, 0 if unknown.
    pub(crate) fn speed_mbps(&self) -> u32 {
        let dev = core::ptr::from_ref(self.dev).cast_mut();
        // SAFETY: `dev` is valid and RTNL is held (type invariant), which
        // `__ethtool_get_link_ksettings()` requires; it does not retain `dev`.
        unsafe { bindings::mpbal_dev_speed_mbps(dev) }
    }
}

/// The tick rate `jiffies` counts in.
const HZ: u64 = kernel::bindings::CONFIG_HZ as u64;

/// `jiffies`, read in place as C code reads it, with no call: the packet
/// path asks for the time. Only on 64-bit, where it is `jiffies_64`.
#[cfg(target_pointer_width = "64")]
fn jiffies() -> u64 {
    // SAFETY: `jiffies` is the kernel's exported tick counter, an aligned
    // word written only by the timer tick. A volatile read, as its C
    // declaration makes every read, of an aligned word is atomic on 64-bit.
    let j = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(kernel::bindings::jiffies)) };
    j as u64
}

/// Coarse clock in seconds (jiffies), for destination table stamps.
pub(crate) fn now_secs() -> u32 {
    #[cfg(target_pointer_width = "64")]
    return (jiffies() / HZ) as u32;
    #[cfg(not(target_pointer_width = "64"))]
    // SAFETY: reads jiffies; no preconditions.
    unsafe {
        bindings::mpbal_now_secs()
    }
}

/// Milliseconds at a tick's resolution (jiffies), cheap enough per packet:
/// `jiffies64_to_msecs()` (kernel/time/time.c, 6.12) for a tick rate that
/// divides 1000, as x86's 100, 250 and 1000 do; a call otherwise.
pub(crate) fn coarse_ms() -> u64 {
    #[cfg(target_pointer_width = "64")]
    if 1000 % HZ == 0 {
        return jiffies() * (1000 / HZ);
    }
    // SAFETY: reads jiffies; no preconditions.
    unsafe { bindings::mpbal_coarse_ms() }
}

/// A tick, in microseconds (rounded up): how late [`coarse_ms`] may be.
pub(crate) const TICK_US: u64 = 1_000_000_u64.div_ceil(HZ);

/// Monotonic microseconds, for the flowlet table.
pub(crate) fn now_us() -> u64 {
    // SAFETY: reads the monotonic clock; no preconditions.
    unsafe { bindings::mpbal_now_us() }
}

/// Monotonic milliseconds, for the estimator.
pub(crate) fn now_ms() -> u64 {
    // SAFETY: reads the monotonic clock; no preconditions.
    unsafe { bindings::mpbal_now_ms() }
}
