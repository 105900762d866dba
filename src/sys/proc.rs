// SPDX-License-Identifier: GPL-2.0

//! `/proc/net/mpbal/{stats,uplinks}`.

use super::bindings;
use super::net::Net;
use core::ffi::c_void;
use core::fmt;
use core::ptr::NonNull;
use kernel::error::{code::EINVAL, Error, Result};

/// A seq_file being filled by a show callback.
///
/// # Invariants
///
/// `m` is valid for the duration of the show call that created `self`.
pub(crate) struct SeqFile<'a> {
    m: NonNull<bindings::seq_file>,
    _life: core::marker::PhantomData<&'a mut bindings::seq_file>,
}

impl SeqFile<'_> {
    /// # Safety
    ///
    /// `m` must be the seq_file of a show call in progress, and the value
    /// must not outlive that call.
    pub(crate) unsafe fn from_raw(m: *mut bindings::seq_file) -> Option<Self> {
        Some(SeqFile {
            m: NonNull::new(m)?,
            _life: core::marker::PhantomData,
        })
    }
}

impl fmt::Write for SeqFile<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // SAFETY: `m` is valid (type invariant); `s` is valid for the call and
        // seq_write copies it. Overflow is handled by seq_file's retry.
        unsafe { bindings::mpbal_seq_write(self.m.as_ptr(), s.as_ptr().cast(), s.len()) };
        Ok(())
    }
}

/// The `/proc/net/mpbal` directory of one netns.
///
/// # Invariants
///
/// `dir` is a live proc entry whose show callbacks receive a state pointer
/// that outlives `self` (guaranteed by `create`'s contract).
pub(crate) struct ProcDir {
    dir: NonNull<bindings::proc_dir_entry>,
}

// SAFETY: only used to remove the entry, from any process context.
unsafe impl Send for ProcDir {}
// SAFETY: no shared-reference methods.
unsafe impl Sync for ProcDir {}

impl ProcDir {
    /// # Safety
    ///
    /// `state` must be what the show trampolines expect and outlive `self`.
    pub(crate) unsafe fn create(net: Net, state: *const c_void) -> Result<Self> {
        let mut dir = core::ptr::null_mut();
        // SAFETY: `net` is live; `state` outlives the entries (contract);
        // `dir` is a valid out-pointer.
        let err = unsafe { bindings::mpbal_proc_create(net.as_ptr(), state.cast_mut(), &mut dir) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(ProcDir {
            dir: NonNull::new(dir).ok_or(EINVAL)?,
        })
    }
}

impl Drop for ProcDir {
    fn drop(&mut self) {
        // SAFETY: live entry (type invariant); proc_remove() waits for
        // readers in progress.
        unsafe { bindings::mpbal_proc_remove(self.dir.as_ptr()) }
    }
}
