//! Assembly and teardown of one netns's state and registrations.
//!
//! Teardown order is what makes the raw pointers handed to C sound: every
//! registration that can call back with the state pointer goes before the
//! state, and the work goes after everything that can schedule it.

use super::bindings;
use super::entry;
use super::fib::FibNotifier;
use super::net::Net;
use super::proc::ProcDir;
use super::sysctl::SysctlTable;
use super::work::DelayedWork;
use crate::policy::state::NetState;
use crate::policy::worker;
use core::ffi::c_void;
use core::pin::Pin;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::Result;
use kernel::init::InPlaceInit;

/// Dropped in declaration order: FIB notifier (no more route events),
/// sysctls and proc (no more readers or writers, no more kicks), and last the
/// work, which nothing can schedule any more. The netfilter hooks are the
/// worker's (registered while equalize routes exist); `worker::shutdown`
/// switches them off after all of these.
struct Registrations {
    _fib: FibNotifier,
    _sysctl: SysctlTable,
    _proc: ProcDir,
    _work: DelayedWork,
}

/// One netns: its state and everything registered on its behalf.
pub(crate) struct NetNs {
    regs: Option<Registrations>,
    state: Pin<KBox<NetState>>,
}

impl NetNs {
    pub(crate) fn new(net: *mut bindings::net) -> Result<KBox<NetNs>> {
        // SAFETY: pernet init hands us a live netns that outlives its exit
        // callback, which drops this state.
        let net = unsafe { Net::from_raw(net) }.ok_or(kernel::error::code::EINVAL)?;
        let state = KBox::pin_init(NetState::new(net), GFP_KERNEL)?;
        let ptr: *const c_void = core::ptr::from_ref::<NetState>(&state).cast();
        // If a step below fails, `netns` drops after the steps already done
        // (locals drop in reverse), and its Drop undoes the worker's effects.
        let mut netns = KBox::new(NetNs { regs: None, state }, GFP_KERNEL)?;
        let st = &netns.state;

        // SAFETY: `ptr` is the pinned state, which outlives `work` (the
        // state is dropped after `regs`, see `Drop`).
        let work = unsafe { DelayedWork::new(entry::mpbal_rust_work, ptr)? };
        // SAFETY: `work` is dropped after every registration that can
        // schedule it, and before the state that holds the reference.
        unsafe { st.work.set(&work) };
        st.conf.set_kick_work(Some(&work));
        // SAFETY: `ptr` is the pinned state the hook entry points expect;
        // `worker::shutdown` (in `Drop`) switches the hooks off before the
        // state goes, and `hooks` is the state's first field, so even its
        // own drop unregisters them before anything they use.
        unsafe { st.hooks.set_state(ptr) };
        // The three registrations below are dropped (in `Registrations`)
        // before the state they point to.
        // SAFETY: `st.conf` lives in the pinned state, which outlives it.
        let sysctl = unsafe { SysctlTable::register(net, &st.conf)? };
        // SAFETY: `ptr` is the pinned state the show callbacks expect.
        let proc = unsafe { ProcDir::create(net, ptr)? };
        // SAFETY: `ptr` is the pinned state the FIB callbacks expect.
        let fib = unsafe { FibNotifier::register(net, ptr)? };
        netns.regs = Some(Registrations {
            _fib: fib,
            _sysctl: sysctl,
            _proc: proc,
            _work: work,
        });
        Ok(netns)
    }

    pub(crate) fn state(&self) -> &NetState {
        &self.state
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        drop(self.regs.take());
        // Nothing but packets can call into the state now: switch the hooks
        // off, give back conntrack and the hash policy.
        worker::shutdown(&self.state);
    }
}
