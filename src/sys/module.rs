//! Module-wide registrations: pernet operations and the netdevice notifier.

use super::bindings;
use kernel::error::{Error, Result};

/// Module parameters, declared in C (6.12's `module!` has no params).
pub(crate) mod params {
    use super::bindings;

    /// Default strategy id for new netns.
    pub(crate) fn strategy() -> i32 {
        // SAFETY: reads a module parameter with READ_ONCE.
        unsafe { bindings::mpbal_param_strategy() }
    }

    pub(crate) fn ct_mark_mask() -> u32 {
        // SAFETY: read-only after load.
        unsafe { bindings::mpbal_param_ct_mark_mask() }
    }

    pub(crate) fn route_table_size() -> u32 {
        // SAFETY: read-only after load.
        unsafe { bindings::mpbal_param_route_table_size() }
    }

    pub(crate) fn manage_hash_policy() -> bool {
        // SAFETY: reads a module parameter with READ_ONCE.
        unsafe { bindings::mpbal_param_manage_hash_policy() }
    }
}

fn check(err: i32) -> Result {
    if err < 0 {
        return Err(Error::from_errno(err));
    }
    Ok(())
}

/// While alive, every netns has its mpbal state and devices their sysctls.
pub(crate) struct Registration(());

impl Registration {
    /// Registers pernet operations first (each netns gets its state), then
    /// the netdevice notifier (which replays existing devices into them).
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: called once from module init.
        check(unsafe { bindings::mpbal_pernet_register() })?;
        // SAFETY: called once from module init, after pernet registration.
        if let Err(e) = check(unsafe { bindings::mpbal_netdev_notifier_register() }) {
            // SAFETY: registered just above.
            unsafe { bindings::mpbal_pernet_unregister() };
            return Err(e);
        }
        Ok(Registration(()))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: both registered in `new`. The notifier goes first; its
        // unregistration replays UNREGISTER for every device, removing the
        // per-device sysctls before the per-netns states are torn down.
        unsafe {
            bindings::mpbal_netdev_notifier_unregister();
            bindings::mpbal_pernet_unregister();
        }
    }
}
