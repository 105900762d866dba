// SPDX-License-Identifier: GPL-2.0

//! Module parameters, declared in C (6.12's `module!` has none). What was
//! given at insmod is text; module init validates it and publishes the
//! values in force through `pernet::Registration::new`.

use super::bindings;

pub(crate) use bindings::mpbal_params_effective as Effective;
pub(crate) use bindings::mpbal_params_given as Given;

/// The parameters as given at insmod.
pub(crate) fn given() -> Given {
    let mut g = Given::default();
    // SAFETY: `g` is a valid out-buffer; the helper copies a struct.
    unsafe { bindings::mpbal_params_get_given(&mut g) };
    g
}

/// A parameter's text up to its NUL.
pub(crate) fn text(raw: &[u8]) -> &[u8] {
    let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    &raw[..len]
}

/// `kstrtou32(text, 0)`: decimal, `0x` hex or `0` octal, one trailing
/// newline allowed; the kernel's own parser.
pub(crate) fn parse_u32(raw: &[u8]) -> Option<u32> {
    if !raw.contains(&0) {
        return None;
    }
    let mut v = 0u32;
    // SAFETY: `raw` is NUL-terminated (checked above); `v` is valid.
    (unsafe { bindings::mpbal_kstrtou32(raw.as_ptr().cast(), &mut v) } == 0).then_some(v)
}

/// Default strategy id for new netns (writable at run time).
pub(crate) fn strategy() -> i32 {
    // SAFETY: reads a module parameter with READ_ONCE.
    unsafe { bindings::mpbal_param_strategy() }
}

pub(crate) fn ct_mark_mask() -> u32 {
    // SAFETY: read-only after init.
    unsafe { bindings::mpbal_param_ct_mark_mask() }
}

pub(crate) fn route_table_size() -> u32 {
    // SAFETY: read-only after init.
    unsafe { bindings::mpbal_param_route_table_size() }
}

pub(crate) fn manage_hash_policy() -> bool {
    // SAFETY: reads a module parameter with READ_ONCE.
    unsafe { bindings::mpbal_param_manage_hash_policy() }
}

/// Bench builds only: the stage after which the hooks stop.
#[cfg(mpbal_bench)]
pub(crate) fn bench_stop() -> i32 {
    // SAFETY: read-only after init.
    unsafe { bindings::mpbal_param_bench_stop() }
}
