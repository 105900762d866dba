//! Every function C calls into Rust (`mpbal_rust_*` in `include/mpbal.h`).
//!
//! Each one turns raw pointers into the safe views of this module, under the
//! contract the C side documents, and hands them to `policy`.

use super::bindings;
use super::fib::{FibEvent, FibRoute};
use super::kunit::Test;
use super::net::NetDevice;
use super::netns::NetNs;
use super::packet::Packet;
use super::proc::SeqFile;
use super::NF_ACCEPT;
use crate::mpbal_core::markfield::MarkField;
use crate::mpbal_core::strategy::StrategyId;
use crate::policy::devices::{self, NetdevEvent};
use crate::policy::state::NetState;
use crate::policy::{hooks, kunit, stats, worker};
use core::ffi::{c_char, c_int, c_void};
use kernel::alloc::KBox;
use kernel::error::code::EINVAL;

/// The per-netns state behind a private pointer given to C.
///
/// # Safety
///
/// `p` must be a `NetState` pointer registered by `NetNs::new` whose
/// registration is still live (so the state is too), or null.
unsafe fn state<'a>(p: *mut c_void) -> Option<&'a NetState> {
    // SAFETY: per the function contract.
    unsafe { p.cast::<NetState>().as_ref() }
}

#[no_mangle]
extern "C" fn mpbal_rust_strategy_parse(name: *const c_char, len: usize) -> c_int {
    if name.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: C passes `len` readable bytes at `name` (a param string or a
    // sysctl write buffer).
    let bytes = unsafe { core::slice::from_raw_parts(name.cast::<u8>(), len) };
    StrategyId::from_name(bytes).map_or(EINVAL.to_errno(), |s| s as c_int)
}

#[no_mangle]
extern "C" fn mpbal_rust_strategy_name(id: c_int) -> *const c_char {
    u8::try_from(id)
        .ok()
        .and_then(StrategyId::from_u8)
        .map_or(c"?".as_ptr(), |s| s.name_with_nul().as_ptr().cast())
}

#[no_mangle]
extern "C" fn mpbal_rust_mark_mask_valid(mask: u32) -> bool {
    MarkField::new(mask).is_some()
}

#[no_mangle]
extern "C" fn mpbal_rust_net_init(net: *mut bindings::net, out: *mut *mut c_void) -> c_int {
    match NetNs::new(net) {
        Ok(netns) => {
            // SAFETY: `out` points to the caller's local; ownership of the
            // box goes to C until `mpbal_rust_net_exit`.
            unsafe { *out = KBox::into_raw(netns).cast() };
            0
        }
        Err(e) => e.to_errno(),
    }
}

#[no_mangle]
extern "C" fn mpbal_rust_net_exit(netns: *mut c_void) {
    if !netns.is_null() {
        // SAFETY: `netns` came from `KBox::into_raw` in `mpbal_rust_net_init`
        // and pernet exit hands it back exactly once.
        drop(unsafe { KBox::from_raw(netns.cast::<NetNs>()) });
    }
}

/// Runs a hook body on a packet.
///
/// # Safety
///
/// The arguments must be those of a netfilter hook call registered by
/// `HookSwitch::set` (so `priv_` is a live `NetState`).
unsafe fn run_hook(
    priv_: *mut c_void,
    skb: *mut bindings::sk_buff,
    st: *const bindings::nf_hook_state,
    f: fn(&NetState, &mut Packet<'_>),
) -> u32 {
    // SAFETY: per the function contract.
    if let (Some(state), Some(mut pkt)) = unsafe { (state(priv_), Packet::from_raw(skb, st)) } {
        f(state, &mut pkt);
    }
    NF_ACCEPT
}

/// The PRE_ROUTING hook.
///
/// # Safety
///
/// Called by netfilter only, with the arguments of a hook registered by
/// `HookSwitch::set`.
#[no_mangle]
unsafe extern "C" fn mpbal_rust_hook_prerouting(
    priv_: *mut c_void,
    skb: *mut bindings::sk_buff,
    st: *const bindings::nf_hook_state,
) -> u32 {
    // SAFETY: registered as the PRE_ROUTING hook with the state as priv.
    unsafe { run_hook(priv_, skb, st, hooks::prerouting) }
}

/// The LOCAL_OUT hook.
///
/// # Safety
///
/// As for `mpbal_rust_hook_prerouting`.
#[no_mangle]
unsafe extern "C" fn mpbal_rust_hook_local_out(
    priv_: *mut c_void,
    skb: *mut bindings::sk_buff,
    st: *const bindings::nf_hook_state,
) -> u32 {
    // SAFETY: registered as the LOCAL_OUT hook with the state as priv.
    unsafe { run_hook(priv_, skb, st, hooks::local_out) }
}

/// The POST_ROUTING hook.
///
/// # Safety
///
/// As for `mpbal_rust_hook_prerouting`.
#[no_mangle]
unsafe extern "C" fn mpbal_rust_hook_postrouting(
    priv_: *mut c_void,
    skb: *mut bindings::sk_buff,
    st: *const bindings::nf_hook_state,
) -> u32 {
    // SAFETY: registered as the POST_ROUTING hook with the state as priv.
    unsafe { run_hook(priv_, skb, st, hooks::postrouting) }
}

/// A FIB notifier event.
///
/// # Safety
///
/// Called by the notifier registered by `FibNotifier::register` only, with
/// `r` valid for the call.
#[no_mangle]
unsafe extern "C" fn mpbal_rust_fib_event(priv_: *mut c_void, kind: c_int, r: *const FibRoute) {
    // SAFETY: the notifier was registered with the live state; `r` points to
    // the helper's local for the duration of the call.
    let (Some(st), Some(r)) = (unsafe { state(priv_) }, unsafe { r.as_ref() }) else {
        return;
    };
    let ev = match kind as u32 {
        bindings::mpbal_fib_event_kind_MPBAL_FIB_REPLACE => FibEvent::Replace(r),
        bindings::mpbal_fib_event_kind_MPBAL_FIB_DEL => FibEvent::Del(r),
        _ => return,
    };
    st.fib_event(ev);
}

/// The FIB notifier restarts its dump.
///
/// # Safety
///
/// As for `mpbal_rust_fib_event`.
#[no_mangle]
unsafe extern "C" fn mpbal_rust_fib_flush(priv_: *mut c_void) {
    // SAFETY: the notifier was registered with the live state.
    if let Some(st) = unsafe { state(priv_) } {
        st.fib_flush();
    }
}

/// A netdevice notifier event.
///
/// # Safety
///
/// Called by the C notifier only, with RTNL held, the device valid and
/// `netns` the live `NetNs` of its netns.
#[no_mangle]
unsafe extern "C" fn mpbal_rust_netdev_event(
    netns: *mut c_void,
    event: c_int,
    dev: *mut bindings::net_device,
) {
    // SAFETY: C passes `mpbal_net_state()`, the live `NetNs` of the device's
    // netns (the notifier is unregistered before any NetNs is freed).
    let Some(netns) = (unsafe { netns.cast::<NetNs>().as_ref() }) else {
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
    devices::netdev_event(netns.state(), ev, &dev);
}

/// Runs a proc show callback.
///
/// # Safety
///
/// `priv_` must be the proc entry's state and `m` its seq_file in a show call.
unsafe fn show(
    priv_: *mut c_void,
    m: *mut bindings::seq_file,
    f: fn(&NetState, &mut SeqFile<'_>) -> core::fmt::Result,
) -> c_int {
    // SAFETY: per the function contract.
    if let (Some(st), Some(mut m)) = unsafe { (state(priv_), SeqFile::from_raw(m)) } {
        let _ = f(st, &mut m);
    }
    0
}

/// Show callback of `/proc/net/mpbal/stats`.
///
/// # Safety
///
/// Called by seq_file only, for an entry made by `ProcDir::create`.
#[no_mangle]
unsafe extern "C" fn mpbal_rust_show_stats(
    priv_: *mut c_void,
    m: *mut bindings::seq_file,
) -> c_int {
    // SAFETY: the "stats" entry was created with the live state.
    unsafe { show(priv_, m, |st, m| stats::show_stats(st, m)) }
}

/// Show callback of `/proc/net/mpbal/uplinks`.
///
/// # Safety
///
/// As for `mpbal_rust_show_stats`.
#[no_mangle]
unsafe extern "C" fn mpbal_rust_show_uplinks(
    priv_: *mut c_void,
    m: *mut bindings::seq_file,
) -> c_int {
    // SAFETY: the "uplinks" entry was created with the live state.
    unsafe { show(priv_, m, |st, m| stats::show_uplinks(st, m)) }
}

/// The worker's work function (not in the header: passed by pointer).
///
/// # Safety
///
/// Called by the workqueue only, for a work made by `NetNs::new`.
pub(crate) unsafe extern "C" fn mpbal_rust_work(data: *mut c_void) {
    // SAFETY: `NetNs::new` created the work with the pinned state, which
    // outlives it.
    if let Some(st) = unsafe { state(data) } {
        worker::run(st);
    }
}

macro_rules! kunit_entries {
    ($($name:ident => $case:path,)*) => {$(
        /// A KUnit case.
        ///
        /// # Safety
        ///
        /// Called by KUnit only, as a case of the mpbal suite.
        #[no_mangle]
        unsafe extern "C" fn $name(test: *mut bindings::kunit) {
            // SAFETY: called by KUnit as a case of the mpbal suite.
            if let Some(mut t) = unsafe { Test::from_raw(test) } {
                $case(&mut t);
            }
        }
    )*};
}

kunit_entries! {
    mpbal_rust_kunit_strategy_names => kunit::strategy_names,
    mpbal_rust_kunit_wrr => kunit::wrr,
    mpbal_rust_kunit_hash_range => kunit::hash_range,
    mpbal_rust_kunit_desttable => kunit::desttable,
    mpbal_rust_kunit_estimator => kunit::estimator,
    mpbal_rust_kunit_markfield => kunit::markfield,
    mpbal_rust_kunit_percpu => kunit::percpu,
    mpbal_rust_kunit_skb_hash => kunit::skb_hash,
}
