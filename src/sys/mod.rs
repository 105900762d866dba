//! Safe wrappers over the C helper (`src/helper.c`, ABI in `include/mpbal.h`).
//!
//! Every `unsafe` block of mpbal lives below this module, each with a
//! `// SAFETY:` comment; `policy` and `core` have none. The wrappers hand out
//! borrowed views (a packet for the duration of a hook, a device for the
//! duration of a notifier call) and RAII registrations whose `Drop`
//! unregisters, so the policy code cannot outlive what it touches.

pub(crate) mod bindings;
pub(crate) mod entry;
pub(crate) mod fib;
pub(crate) mod hooks;
pub(crate) mod kunit;
pub(crate) mod log;
pub(crate) mod module;
pub(crate) mod net;
pub(crate) mod netns;
pub(crate) mod packet;
pub(crate) mod percpu;
pub(crate) mod proc;
pub(crate) mod sysctl;
pub(crate) mod work;

/// `NF_ACCEPT`: mpbal never drops; it only steers.
pub(crate) const NF_ACCEPT: u32 = 1;
