// SPDX-License-Identifier: GPL-2.0

//! Module-wide registration: pernet operations and the netdevice notifier,
//! with the callbacks of `netns::Adapter`.

use super::bindings;
use super::netns::{Adapter, NetnsOps};
use super::params;
use core::marker::PhantomData;
use kernel::error::{Error, Result};

/// While alive, every netns has its `T` and the devices their sysctls.
pub(crate) struct Registration<T: NetnsOps>(PhantomData<T>);

impl<T: NetnsOps> Registration<T> {
    /// Publishes `params` and registers pernet operations and the netdevice
    /// notifier with `T`'s callbacks.
    pub(crate) fn new(params: &params::Effective) -> Result<Self> {
        // SAFETY: called once from module init; the ops table is a constant
        // in the module image, valid as long as the module's parameters.
        let err = unsafe { bindings::mpbal_register(Adapter::<T>::ops(), params) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(Registration(PhantomData))
    }
}

impl<T: NetnsOps> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `new`.
        unsafe { bindings::mpbal_unregister() }
    }
}
