// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the C helpers (`src/helpers/*.c`, ABI in
//! `include/mpbal.h`): the only layer with `unsafe`, each block with a
//! `// SAFETY:` comment. `src/helpers/X.c` is the C half of `X.rs` here.
//!
//! The wrappers know no policy: they hand out borrowed views (a packet for
//! the duration of a hook, a device for the duration of a notifier call),
//! RAII registrations whose `Drop` unregisters, and the [`netns::NetnsOps`]
//! trait that the policy layer implements for its per-netns state.

pub(crate) mod bindings;
pub(crate) mod fib;
pub(crate) mod log;
pub(crate) mod net;
pub(crate) mod netfilter;
pub(crate) mod netns;
pub(crate) mod params;
pub(crate) mod percpu;
pub(crate) mod pernet;
pub(crate) mod proc;
pub(crate) mod rcu;
pub(crate) mod route;
pub(crate) mod skb;
pub(crate) mod sysctl;
pub(crate) mod work;

use crate::mpbal_core::nexthop::MAX_NEXTHOPS;

// Constants the C side mirrors, checked once here.
const _: () = assert!(bindings::MPBAL_MAX_NEXTHOPS as usize == MAX_NEXTHOPS);
const _: () = assert!(bindings::MPBAL_IFNAMSIZ as usize == net::IFNAMSIZ);
