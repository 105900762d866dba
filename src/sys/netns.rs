// SPDX-License-Identifier: GPL-2.0

//! One netns's state and registrations, and the callbacks C makes into it.
//!
//! The policy layer implements [`NetnsOps`] for its per-netns state;
//! [`Adapter`] turns that into the `struct mpbal_ops` of function pointers
//! the C helpers call through (as `phy::Adapter<T>` and block/mq's
//! `OperationsVTable<T>` do), so every C↔Rust signature is bindgen's and the
//! compiler checks it.
//!
//! Teardown order is what makes the raw pointers handed to C sound: every
//! registration that can call back with the state pointer goes before the
//! state, and the work goes after everything that can schedule it.

use super::bindings;
use super::fib::{FibEvent, FibNotifier, FibRoute};
use super::log::warn_ratelimited;
use super::net::{Net, NetDevice};
use super::netfilter::HookSwitch;
use super::proc::{ProcDir, SeqFile};
use super::skb::SkBuff;
use super::sysctl::{DevConf, SysctlConf, SysctlTable};
use super::work::{DelayedWork, WorkRef};
use core::ffi::{c_int, c_uint, c_void};
use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::EINVAL, Error, Result};
use kernel::ffi::c_char;
use kernel::init::{InPlaceInit, PinInit};

/// `NF_ACCEPT`: mpbal never drops; it only steers.
const NF_ACCEPT: c_uint = 1;

/// Device events the per-netns state hears of (netdevice notifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetdevEvent {
    Register,
    Unregister,
    ChangeName,
    /// Up, or link parameters (speed) changed.
    Change,
}

/// What changed in a device's `net.mpbal.conf.DEV` (`enum mpbal_admin_event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AdminEvent {
    /// `down` 0 -> 1.
    Down,
    /// `down` 1 -> 0.
    Up,
    /// `tier` changed.
    Tier,
}

/// What the module does per network namespace, and the strategy names the
/// C side needs for parameters and sysctls.
pub(crate) trait NetnsOps: Sync + Sized + 'static {
    /// Strategy id of a name as written to a sysctl or parameter.
    fn strategy_parse(name: &[u8]) -> Option<i32>;
    /// Name of strategy `id`, `None` past the last one.
    fn strategy_name(id: i32) -> Option<&'static str>;
    /// Logs that `name` is not a strategy.
    fn strategy_invalid(name: &[u8]);

    /// The state of a new netns.
    fn new(net: Net) -> impl PinInit<Self, Error>;
    /// The sysctls' backing store, registered for the state's lifetime.
    fn sysctl_conf(&self) -> &SysctlConf;
    /// The netfilter hooks, which the state switches on and off.
    fn hooks(&self) -> &HookSwitch;
    /// Where the state schedules its work from.
    fn work_ref(&self) -> &WorkRef;

    /// Netfilter hook bodies (softirq or process context, RCU held).
    fn prerouting(&self, skb: &mut SkBuff<'_>);
    fn local_out(&self, skb: &mut SkBuff<'_>);
    fn postrouting(&self, skb: &mut SkBuff<'_>);
    /// A route changed (FIB notifier, atomic context).
    fn fib_event(&self, ev: FibEvent<'_>);
    /// The FIB notifier restarts its dump: forget every route.
    fn fib_flush(&self);
    /// A device of the netns changed (RTNL held).
    fn netdev_event(&self, ev: NetdevEvent, dev: &NetDevice<'_>);
    /// `net.ipv4.fib_multipath_hash_policy` was written, by the admin or by
    /// `Net::set_hash_policy` (atomic context).
    fn hash_policy_event(&self);
    /// `net.mpbal.conf.DEV.down` or `tier` of `conf` changed: once per
    /// change, from the sysctl write before it returns (process context,
    /// may sleep).
    fn dev_admin(&self, conf: &DevConf, ev: AdminEvent);
    /// `/proc/net/mpbal/stats` and `uplinks`.
    fn show_stats(&self, m: &mut SeqFile<'_>) -> fmt::Result;
    fn show_uplinks(&self, m: &mut SeqFile<'_>) -> fmt::Result;
    /// The delayed work (process context, may sleep).
    fn run_work(&self);
    /// Whether the work wants the FIB notifier to replay every route (its
    /// record is not exact any more); asked after each run.
    fn take_fib_resync(&self) -> bool;
    /// A replay starts: forget every route, and apply the replayed ones as a
    /// whole when it ends (`ok` false: no replay, the notifier is gone).
    fn fib_replay_begin(&self);
    fn fib_replay_end(&self, ok: bool);
    /// The netns goes away (pernet pre_exit): the work can no longer run.
    /// Undo whatever the state holds without waiting for packets in flight:
    /// hooks off with `HookSwitch::off_nowait`, conntrack, hash policy. The
    /// state is dropped after a grace period.
    fn shutdown(&self);
}

/// Dropped in declaration order: FIB notifier (no more route events),
/// sysctls and proc (no more readers or writers, no more kicks), and last the
/// work, which nothing can schedule any more. The netfilter hooks are the
/// state's; `shutdown` switches them off at pre_exit, before all of these.
struct Registrations {
    fib: FibNotifier,
    _sysctl: SysctlTable,
    _proc: ProcDir,
    work: DelayedWork,
}

/// One netns: its state and everything registered on its behalf.
pub(crate) struct NetNs<T: NetnsOps> {
    regs: Option<Registrations>,
    state: Pin<KBox<T>>,
}

impl<T: NetnsOps> NetNs<T> {
    fn new(net: Net) -> Result<KBox<Self>> {
        let state = KBox::pin_init(T::new(net), GFP_KERNEL)?;
        let ptr: *const c_void = core::ptr::from_ref::<T>(&state).cast();
        // If a step below fails, `netns` drops after the steps already done
        // (locals drop in reverse), and its Drop undoes the state's effects.
        let mut netns = KBox::new(NetNs { regs: None, state }, GFP_KERNEL)?;
        let netns_ptr: *const c_void = core::ptr::from_ref::<Self>(&netns).cast();
        let st = &*netns.state;

        // SAFETY: `netns_ptr` is this box, which outlives `work` (dropped
        // with `regs`, before the box is freed).
        let work = unsafe { DelayedWork::new(Adapter::<T>::work, netns_ptr)? };
        // SAFETY: `work` is dropped after every registration that can
        // schedule it, and before the state that holds the reference.
        unsafe { st.work_ref().set(&work) };
        st.sysctl_conf().set_kick_work(Some(&work));
        // SAFETY: `ptr` is the pinned state the hook trampolines expect; it
        // is dropped only after the hooks are off (`shutdown` or its own
        // drop, which unregisters them first).
        unsafe { st.hooks().set_state(ptr) };
        // The three registrations below are dropped (in `Registrations`)
        // before the state they point to.
        // SAFETY: the conf lives in the pinned state, which outlives it.
        let sysctl = unsafe { SysctlTable::register(net, st.sysctl_conf())? };
        // SAFETY: `ptr` is the pinned state the show trampolines expect.
        let proc = unsafe { ProcDir::create(net, ptr)? };
        // SAFETY: `ptr` is the pinned state the FIB trampolines expect.
        let fib = unsafe { FibNotifier::register(net, ptr)? };
        netns.regs = Some(Registrations {
            fib,
            _sysctl: sysctl,
            _proc: proc,
            work,
        });
        Ok(netns)
    }

    /// pernet pre_exit: nothing may start using the state any more.
    fn pre_exit(&self) {
        if let Some(regs) = &self.regs {
            regs.work.disable();
        }
        self.state.shutdown();
    }

    /// The per-netns work: the state's, then a FIB replay if it asks.
    fn work(&self) {
        self.state.run_work();
        if self.state.take_fib_resync() {
            if let Some(regs) = &self.regs {
                self.state.fib_replay_begin();
                let res = regs.fib.resync();
                if let Err(e) = res {
                    warn_ratelimited(format_args!("cannot replay the FIB routes: {e:?}"));
                }
                self.state.fib_replay_end(res.is_ok());
            }
        }
    }
}

impl<T: NetnsOps> Drop for NetNs<T> {
    fn drop(&mut self) {
        if let Some(regs) = self.regs.take() {
            // Not torn down through pre_exit (a failed init): stop first.
            regs.work.disable();
            self.state.shutdown();
            drop(regs);
        }
    }
}

/// The `mpbal_ops` of `T`: trampolines from C's raw pointers to `T`'s
/// methods, each under the contract `include/mpbal.h` documents.
pub(crate) struct Adapter<T>(PhantomData<T>);

impl<T: NetnsOps> Adapter<T> {
    const OPS: bindings::mpbal_ops = bindings::mpbal_ops {
        strategy_parse: Some(Self::strategy_parse),
        strategy_name: Some(Self::strategy_name),
        strategy_invalid: Some(Self::strategy_invalid),
        net_init: Some(Self::net_init),
        net_pre_exit: Some(Self::net_pre_exit),
        net_exit: Some(Self::net_exit),
        prerouting: Some(Self::prerouting),
        local_out: Some(Self::local_out),
        postrouting: Some(Self::postrouting),
        fib_event: Some(Self::fib_event),
        fib_flush: Some(Self::fib_flush),
        netdev_event: Some(Self::netdev_event),
        hash_policy_event: Some(Self::hash_policy_event),
        dev_admin: Some(Self::dev_admin),
        show_stats: Some(Self::show_stats),
        show_uplinks: Some(Self::show_uplinks),
    };

    /// The table for `mpbal_register()`; it lives in the module's image.
    pub(crate) const fn ops() -> &'static bindings::mpbal_ops {
        &Self::OPS
    }

    /// The state behind a private pointer given to C.
    ///
    /// # Safety
    ///
    /// `p` must be null or the pinned state of a live `NetNs<T>` (what
    /// `NetNs::new` registers), and stay so for `'a`.
    unsafe fn state<'a>(p: *mut c_void) -> Option<&'a T> {
        // SAFETY: per the function contract.
        unsafe { p.cast::<T>().as_ref() }
    }

    /// # Safety
    ///
    /// `name` must point to `len` readable bytes (or be null).
    unsafe fn bytes<'a>(name: *const c_char, len: usize) -> &'a [u8] {
        if name.is_null() {
            return &[];
        }
        // SAFETY: per the function contract.
        unsafe { core::slice::from_raw_parts(name.cast::<u8>(), len) }
    }

    /// # Safety
    ///
    /// Called by C with `len` readable bytes at `name`.
    unsafe extern "C" fn strategy_parse(name: *const c_char, len: usize) -> c_int {
        // SAFETY: per the function contract.
        T::strategy_parse(unsafe { Self::bytes(name, len) }).unwrap_or(EINVAL.to_errno())
    }

    /// # Safety
    ///
    /// Called by C with `len` pointing to a writable `size_t`.
    unsafe extern "C" fn strategy_name(id: c_int, len: *mut usize) -> *const c_char {
        let Some(name) = T::strategy_name(id) else {
            return core::ptr::null();
        };
        // SAFETY: `len` is the caller's writable out-parameter.
        unsafe { *len = name.len() };
        name.as_ptr().cast()
    }

    /// # Safety
    ///
    /// As for `strategy_parse`.
    unsafe extern "C" fn strategy_invalid(name: *const c_char, len: usize) {
        // SAFETY: per the function contract.
        T::strategy_invalid(unsafe { Self::bytes(name, len) })
    }

    /// # Safety
    ///
    /// pernet init: `net` is a live netns that outlives its exit callback,
    /// `out` the caller's writable local.
    unsafe extern "C" fn net_init(net: *mut bindings::net, out: *mut *mut c_void) -> c_int {
        // SAFETY: `net` outlives the state, which pernet exit drops.
        let Some(net) = (unsafe { Net::from_raw(net) }) else {
            return EINVAL.to_errno();
        };
        let netns = match NetNs::<T>::new(net) {
            Ok(netns) => KBox::into_raw(netns).cast(),
            Err(e) => {
                // Never fail the netns: it goes unbalanced, and says so.
                warn_ratelimited(format_args!("netns {}: not balanced: {:?}", net.inum(), e));
                core::ptr::null_mut()
            }
        };
        // SAFETY: `out` is valid; ownership of the box goes to C until
        // `net_exit`.
        unsafe { *out = netns };
        0
    }

    /// # Safety
    ///
    /// pernet pre_exit, with what `net_init` stored.
    unsafe extern "C" fn net_pre_exit(netns: *mut c_void) {
        // SAFETY: `netns` came from `net_init` and is freed only by
        // `net_exit`, after this.
        if let Some(netns) = unsafe { netns.cast::<NetNs<T>>().as_ref() } {
            netns.pre_exit();
        }
    }

    /// # Safety
    ///
    /// pernet exit, with what `net_init` stored, exactly once.
    unsafe extern "C" fn net_exit(netns: *mut c_void) {
        if !netns.is_null() {
            // SAFETY: `netns` came from `KBox::into_raw` in `net_init`.
            drop(unsafe { KBox::from_raw(netns.cast::<NetNs<T>>()) });
        }
    }

    /// # Safety
    ///
    /// The arguments of a netfilter hook call for a hook registered by
    /// `HookSwitch::set` (so `priv_` is the live state).
    unsafe fn hook(
        priv_: *mut c_void,
        skb: *mut bindings::sk_buff,
        st: *const bindings::nf_hook_state,
        f: fn(&T, &mut SkBuff<'_>),
    ) -> c_uint {
        // SAFETY: per the function contract.
        let args = unsafe { (Self::state(priv_), SkBuff::from_raw(skb, st)) };
        if let (Some(state), Some(mut skb)) = args {
            f(state, &mut skb);
        }
        NF_ACCEPT
    }

    /// # Safety
    ///
    /// Called by netfilter only, for the PRE_ROUTING hook of `HookSwitch`.
    unsafe extern "C" fn prerouting(
        priv_: *mut c_void,
        skb: *mut bindings::sk_buff,
        st: *const bindings::nf_hook_state,
    ) -> c_uint {
        // SAFETY: a hook call of our registration.
        unsafe { Self::hook(priv_, skb, st, T::prerouting) }
    }

    /// # Safety
    ///
    /// As for `prerouting`, LOCAL_OUT.
    unsafe extern "C" fn local_out(
        priv_: *mut c_void,
        skb: *mut bindings::sk_buff,
        st: *const bindings::nf_hook_state,
    ) -> c_uint {
        // SAFETY: a hook call of our registration.
        unsafe { Self::hook(priv_, skb, st, T::local_out) }
    }

    /// # Safety
    ///
    /// As for `prerouting`, POST_ROUTING.
    unsafe extern "C" fn postrouting(
        priv_: *mut c_void,
        skb: *mut bindings::sk_buff,
        st: *const bindings::nf_hook_state,
    ) -> c_uint {
        // SAFETY: a hook call of our registration.
        unsafe { Self::hook(priv_, skb, st, T::postrouting) }
    }

    /// # Safety
    ///
    /// Called by the notifier of `FibNotifier::register` only, with `r`
    /// valid for the call.
    unsafe extern "C" fn fib_event(
        priv_: *mut c_void,
        kind: c_int,
        r: *const bindings::mpbal_fib_route,
    ) {
        // SAFETY: registered with the live state; `r` is the helper's local.
        let (Some(st), Some(r)) = (unsafe { Self::state(priv_) }, unsafe { r.as_ref() }) else {
            return;
        };
        let r = FibRoute::from_raw(r);
        let ev = match kind as u32 {
            bindings::mpbal_fib_event_kind_MPBAL_FIB_REPLACE => FibEvent::Replace(r),
            bindings::mpbal_fib_event_kind_MPBAL_FIB_DEL => FibEvent::Del(r),
            _ => return,
        };
        st.fib_event(ev);
    }

    /// # Safety
    ///
    /// As for `fib_event`.
    unsafe extern "C" fn fib_flush(priv_: *mut c_void) {
        // SAFETY: registered with the live state.
        if let Some(st) = unsafe { Self::state(priv_) } {
            st.fib_flush();
        }
    }

    /// # Safety
    ///
    /// Called by the netdevice notifier only, with RTNL held, `dev` valid
    /// and `netns` what `net_init` stored for the device's netns (the
    /// notifier is unregistered before any netns state is freed).
    unsafe extern "C" fn netdev_event(
        netns: *mut c_void,
        event: c_int,
        dev: *mut bindings::net_device,
    ) {
        // SAFETY: per the function contract.
        let Some(netns) = (unsafe { netns.cast::<NetNs<T>>().as_ref() }) else {
            return;
        };
        // SAFETY: a netdevice notifier call: `dev` is valid and RTNL held.
        let Some(dev) = (unsafe { NetDevice::from_raw(dev) }) else {
            return;
        };
        let ev = match event as u32 {
            bindings::mpbal_netdev_event_MPBAL_NETDEV_REGISTER => NetdevEvent::Register,
            bindings::mpbal_netdev_event_MPBAL_NETDEV_UNREGISTER => NetdevEvent::Unregister,
            bindings::mpbal_netdev_event_MPBAL_NETDEV_CHANGENAME => NetdevEvent::ChangeName,
            bindings::mpbal_netdev_event_MPBAL_NETDEV_CHANGE => NetdevEvent::Change,
            _ => return,
        };
        netns.state.netdev_event(ev, &dev);
    }

    /// # Safety
    ///
    /// Called by the netevent notifier only, with what `net_init` stored for
    /// the netns (or null); the notifier goes before any netns state.
    unsafe extern "C" fn hash_policy_event(netns: *mut c_void) {
        // SAFETY: per the function contract.
        if let Some(netns) = unsafe { netns.cast::<NetNs<T>>().as_ref() } {
            netns.state.hash_policy_event();
        }
    }

    /// # Safety
    ///
    /// Called by the `down` and `tier` sysctl handlers only (process
    /// context), with what `net_init` stored for the netns (or null) and
    /// the handler's devconf: both live for the call, since the device
    /// sysctls are unregistered, which waits for running handlers, before
    /// the netns state goes (`shutdown` clears them).
    unsafe extern "C" fn dev_admin(
        netns: *mut c_void,
        conf: *mut bindings::mpbal_devconf,
        event: c_int,
    ) {
        // SAFETY: per the function contract.
        let Some(netns) = (unsafe { netns.cast::<NetNs<T>>().as_ref() }) else {
            return;
        };
        if conf.is_null() {
            return;
        }
        // SAFETY: non-null and live for the call, per the function contract.
        let conf = unsafe { DevConf::from_raw(conf) };
        let ev = match event as u32 {
            bindings::mpbal_admin_event_MPBAL_ADMIN_DOWN => AdminEvent::Down,
            bindings::mpbal_admin_event_MPBAL_ADMIN_UP => AdminEvent::Up,
            bindings::mpbal_admin_event_MPBAL_ADMIN_TIER => AdminEvent::Tier,
            _ => return,
        };
        netns.state.dev_admin(conf, ev);
    }

    /// # Safety
    ///
    /// `priv_` is the proc entry's state and `m` its seq_file in a show call.
    unsafe fn show(
        priv_: *mut c_void,
        m: *mut bindings::seq_file,
        f: fn(&T, &mut SeqFile<'_>) -> fmt::Result,
    ) -> c_int {
        // SAFETY: per the function contract.
        if let (Some(st), Some(mut m)) = unsafe { (Self::state(priv_), SeqFile::from_raw(m)) } {
            // A short write is retried by seq_file with a bigger buffer.
            let _ = f(st, &mut m);
        }
        0
    }

    /// # Safety
    ///
    /// Called by seq_file only, for an entry made by `ProcDir::create`.
    unsafe extern "C" fn show_stats(priv_: *mut c_void, m: *mut bindings::seq_file) -> c_int {
        // SAFETY: the "stats" entry was created with the live state.
        unsafe { Self::show(priv_, m, T::show_stats) }
    }

    /// # Safety
    ///
    /// As for `show_stats`.
    unsafe extern "C" fn show_uplinks(priv_: *mut c_void, m: *mut bindings::seq_file) -> c_int {
        // SAFETY: the "uplinks" entry was created with the live state.
        unsafe { Self::show(priv_, m, T::show_uplinks) }
    }

    /// # Safety
    ///
    /// Called by the workqueue only, for the work `NetNs::new` made with its
    /// box, which outlives the work.
    unsafe extern "C" fn work(data: *mut c_void) {
        // SAFETY: per the function contract.
        if let Some(netns) = unsafe { data.cast::<NetNs<T>>().as_ref() } {
            netns.work();
        }
    }
}
