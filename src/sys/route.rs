// SPDX-License-Identifier: GPL-2.0

//! The route a packet will take, looked up before the kernel does so that
//! the policy can steer the kernel's nexthop choice.

use super::bindings;
use super::skb::SkBuff;
use core::marker::PhantomData;

pub(crate) use bindings::mpbal_flow_key as FlowInputs;
pub(crate) use bindings::mpbal_nh as RawNexthop;

/// `RTNH_F_DEAD` and `RTNH_F_LINKDOWN` in [`RawNexthop::flags`].
pub(crate) const NH_F_DEAD: u32 = bindings::MPBAL_NH_F_DEAD;
pub(crate) const NH_F_LINKDOWN: u32 = bindings::MPBAL_NH_F_LINKDOWN;

/// The route type mpbal steers.
pub(crate) const RTN_UNICAST: u8 = bindings::MPBAL_RTN_UNICAST as u8;

/// What a route lookup found: a `fib_info` and its facts, valid for the
/// hook call (`'a`), which holds the RCU read lock the `fib_info` needs.
pub(crate) struct FibLookup<'a> {
    facts: bindings::mpbal_fib_facts,
    _rcu: PhantomData<&'a ()>,
}

/// What decides whether mpbal steers a route, alike for the route of a FIB
/// event and the result of a lookup.
pub(crate) trait RouteFacts {
    fn is_unicast(&self) -> bool;
    /// `fib_info_num_path()`.
    fn paths(&self) -> u32;
    /// `RTM_F_EQUALIZE` is set.
    fn equalize_flag(&self) -> bool;
    /// The route uses a nexthop object.
    fn nh_object(&self) -> bool;
}

impl RouteFacts for FibLookup<'_> {
    fn is_unicast(&self) -> bool {
        self.facts.type_ == RTN_UNICAST
    }

    fn paths(&self) -> u32 {
        self.facts.nr_paths
    }

    fn equalize_flag(&self) -> bool {
        self.facts.equalize_flag
    }

    fn nh_object(&self) -> bool {
        self.facts.nh_object
    }
}

impl FibLookup<'_> {
    /// Identity of the route (the `fib_info` address): only compared.
    pub(crate) fn key(&self) -> usize {
        self.facts.fi as usize
    }

    /// Copies the first nexthops into `out`; returns how many.
    pub(crate) fn nexthops(&self, out: &mut [RawNexthop]) -> usize {
        if self.facts.fi.is_null() {
            return 0;
        }
        // SAFETY: `fi` is live under the hook's RCU read lock for `'a`
        // (type invariant); `out` has room for `out.len()` entries.
        let n = unsafe {
            bindings::mpbal_fib_info_nexthops(self.facts.fi, out.as_mut_ptr(), out.len() as u32)
        };
        (n as usize).min(out.len())
    }
}

/// `mpbal_route_input()` or `mpbal_route_output()`.
type LookupFn = unsafe extern "C" fn(
    *mut bindings::sk_buff,
    *const bindings::nf_hook_state,
    *mut bindings::mpbal_fib_facts,
) -> i32;

/// What the input route lookup of a packet depends on.
pub(crate) enum InputKey {
    /// The packet is not routed onwards (local, multicast, no forwarding).
    NotForwarded,
    /// These inputs, and the routing generation.
    Key(FlowInputs),
    /// FIB rules look at more (ports): every packet needs its own lookup.
    Uncached,
}

impl<'a> SkBuff<'a> {
    /// The inputs of [`SkBuff::route_input`], for a per-CPU cache.
    pub(crate) fn input_key(&mut self) -> InputKey {
        let mut key = FlowInputs::default();
        // SAFETY: skb and state are valid (type invariant); `key` is a
        // valid out-buffer.
        let kind = unsafe {
            bindings::mpbal_route_input_key(self.skb.as_ptr(), self.state.as_ptr(), &mut key)
        };
        match kind as u32 {
            bindings::mpbal_flow_kind_MPBAL_FLOW_KEY => InputKey::Key(key),
            bindings::mpbal_flow_kind_MPBAL_FLOW_UNCACHED => InputKey::Uncached,
            _ => InputKey::NotForwarded,
        }
    }

    /// The route of a packet entering at PRE_ROUTING, `None` if it has none
    /// or is not forwarded.
    pub(crate) fn route_input(&mut self) -> Option<FibLookup<'a>> {
        self.lookup(bindings::mpbal_route_input)
    }

    /// The route of a locally generated packet at LOCAL_OUT, as
    /// `ip_route_me_harder()` would find it without the socket's oif.
    pub(crate) fn route_output(&mut self) -> Option<FibLookup<'a>> {
        self.lookup(bindings::mpbal_route_output)
    }

    fn lookup(&mut self, f: LookupFn) -> Option<FibLookup<'a>> {
        let mut facts = bindings::mpbal_fib_facts::default();
        // SAFETY: skb and state are valid (type invariant); `facts` is a
        // valid out-buffer; the helper runs under the hook's RCU read lock.
        let err = unsafe { f(self.skb.as_ptr(), self.state.as_ptr(), &mut facts) };
        (err == 0).then_some(FibLookup {
            facts,
            _rcu: PhantomData,
        })
    }
}
