//! A packet inside a netfilter hook, and what mpbal reads and writes on it.

use super::bindings;
use crate::mpbal_core::flowcache::{FlowCache, FlowKey, FLOW_CACHE_SLOTS};
use crate::mpbal_core::nexthop::{Nexthop, Route, MAX_NEXTHOPS};
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{Error, Result};

/// The route a packet will take, as far as mpbal cares.
///
/// `repr(u8)` with `None = 0`: zero is a valid value (per-CPU caches start
/// zeroed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RouteKind {
    /// No route, not unicast, or a single path: not ours.
    None = 0,
    /// A multipath route without `equalize`: stock ECMP, untouched.
    Multipath,
    /// A multipath route flagged `equalize`; the buffer holds its nexthops.
    Equalize,
    /// `equalize` but with nexthop objects or too many paths.
    Unsupported,
}

impl RouteKind {
    fn from_raw(kind: i32) -> Self {
        match kind as u32 {
            bindings::mpbal_route_kind_MPBAL_ROUTE_MULTIPATH => RouteKind::Multipath,
            bindings::mpbal_route_kind_MPBAL_ROUTE_EQUALIZE => RouteKind::Equalize,
            bindings::mpbal_route_kind_MPBAL_ROUTE_UNSUPPORTED => RouteKind::Unsupported,
            _ => RouteKind::None,
        }
    }
}

/// The kind of a packet's route and, for an equalize route, its nexthops,
/// copied out of its `fib_info` under RCU.
#[derive(Clone, Copy)]
pub(crate) struct RouteBuf {
    kind: RouteKind,
    key: usize,
    nexthops: [Nexthop; MAX_NEXTHOPS],
    len: usize,
}

const NH_UNUSABLE: u32 = bindings::MPBAL_NH_F_DEAD | bindings::MPBAL_NH_F_LINKDOWN;

impl Default for RouteBuf {
    fn default() -> Self {
        RouteBuf {
            kind: RouteKind::None,
            key: 0,
            nexthops: [Nexthop::default(); MAX_NEXTHOPS],
            len: 0,
        }
    }
}

impl RouteBuf {
    /// Fills the buffer from a lookup helper's result.
    fn fill(&mut self, kind: i32, raw: &bindings::mpbal_route) {
        self.kind = RouteKind::from_raw(kind);
        self.len = 0;
        if self.kind != RouteKind::Equalize {
            return;
        }
        self.key = raw.key;
        self.len = (raw.nr_nexthops as usize).min(MAX_NEXTHOPS);
        for (nh, raw) in self.nexthops.iter_mut().zip(raw.nh.iter()).take(self.len) {
            *nh = Nexthop {
                oif: raw.oif,
                weight: raw.weight,
                upper_bound: raw.upper_bound,
                usable: raw.flags & NH_UNUSABLE == 0,
            };
        }
    }

    pub(crate) fn kind(&self) -> RouteKind {
        self.kind
    }

    /// The route as the core sees it (no nexthops unless `Equalize`).
    pub(crate) fn route(&self) -> Route<'_> {
        Route {
            key: self.key,
            nexthops: &self.nexthops[..self.len],
        }
    }
}

/// PRE_ROUTING route lookups of one CPU (see `flowcache`), and the buffer
/// for lookups that cannot be cached.
#[derive(Default)]
pub(crate) struct RouteCache {
    flows: FlowCache<RouteBuf, FLOW_CACHE_SLOTS>,
    uncached: RouteBuf,
}

impl From<bindings::mpbal_flow_key> for FlowKey {
    fn from(k: bindings::mpbal_flow_key) -> Self {
        FlowKey {
            daddr: k.daddr,
            saddr: k.saddr,
            iif: k.iif,
            mark: k.mark,
            tos: k.tos,
            genid: k.genid,
        }
    }
}

/// A packet in a hook call.
///
/// # Invariants
///
/// `skb` and `state` are valid for `'a`, the duration of the hook call, and
/// the hook owns the skb for that time (netfilter's contract).
pub(crate) struct Packet<'a> {
    skb: NonNull<bindings::sk_buff>,
    state: NonNull<bindings::nf_hook_state>,
    _life: PhantomData<&'a mut bindings::sk_buff>,
}

impl<'a> Packet<'a> {
    /// # Safety
    ///
    /// `skb` and `state` must be the arguments of a netfilter hook call for
    /// an IPv4 packet, and `'a` must not outlive that call.
    pub(crate) unsafe fn from_raw(
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> Option<Self> {
        Some(Packet {
            skb: NonNull::new(skb)?,
            state: NonNull::new(state.cast_mut())?,
            _life: PhantomData,
        })
    }

    /// The route of a packet entering at PRE_ROUTING, from this CPU's
    /// `cache` when the netns's routing has not changed since it was looked
    /// up. Also tells whether a FIB lookup was needed.
    pub(crate) fn route_input<'c>(&mut self, cache: &'c mut RouteCache) -> (&'c RouteBuf, bool) {
        let mut key = bindings::mpbal_flow_key::default();
        // SAFETY: skb and state are valid (type invariant); `key` is a valid
        // out-buffer.
        let flow = unsafe {
            bindings::mpbal_route_input_key(self.skb.as_ptr(), self.state.as_ptr(), &mut key)
        };
        let buf = match flow as u32 {
            bindings::mpbal_flow_kind_MPBAL_FLOW_NONE => {
                // Only kind and length are read for a non-equalize route.
                cache.uncached.kind = RouteKind::None;
                cache.uncached.len = 0;
                return (&cache.uncached, false);
            }
            bindings::mpbal_flow_kind_MPBAL_FLOW_KEY => match cache.flows.slot(key.into()) {
                (true, buf) => return (buf, false),
                (false, buf) => buf,
            },
            _ => &mut cache.uncached,
        };
        let mut raw = bindings::mpbal_route::default();
        // SAFETY: as above; `raw` is a valid out-buffer; the helper runs
        // under the hook's RCU read lock.
        let kind = unsafe {
            bindings::mpbal_route_input(self.skb.as_ptr(), self.state.as_ptr(), &mut raw)
        };
        buf.fill(kind, &raw);
        (buf, true)
    }

    /// Looks up the route of a locally generated packet at LOCAL_OUT.
    pub(crate) fn route_output(&mut self, buf: &mut RouteBuf) -> RouteKind {
        let mut raw = bindings::mpbal_route::default();
        // SAFETY: skb and state are valid (type invariant); `raw` is a valid
        // out-buffer; the helper runs under the hook's RCU read lock.
        let kind = unsafe {
            bindings::mpbal_route_output(self.skb.as_ptr(), self.state.as_ptr(), &mut raw)
        };
        buf.fill(kind, &raw);
        buf.kind()
    }

    /// Re-routes a LOCAL_OUT packet out of `oif`.
    pub(crate) fn reroute_oif(&mut self, oif: u32) -> Result {
        // SAFETY: skb and state are valid and the hook owns the skb, so its
        // dst may be replaced (as ip_route_me_harder() does).
        let err = unsafe {
            bindings::mpbal_reroute_oif(self.skb.as_ptr(), self.state.as_ptr(), oif as i32)
        };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }

    /// Destination address, network byte order.
    pub(crate) fn daddr(&self) -> u32 {
        // SAFETY: valid skb with an IPv4 header (type invariant).
        unsafe { bindings::mpbal_skb_daddr(self.skb.as_ptr()) }
    }

    /// Per-flow entropy: the skb's L4 hash if it has one, else a hash of
    /// addresses, protocol and ports.
    pub(crate) fn entropy(&mut self) -> u32 {
        // SAFETY: valid skb owned by the hook.
        unsafe { bindings::mpbal_skb_entropy(self.skb.as_ptr()) }
    }

    /// Sets an L4 hash: with `fib_multipath_hash_policy=1` the kernel's
    /// multipath choice then uses it verbatim.
    pub(crate) fn set_l4_hash(&mut self, hash: u32) {
        // SAFETY: valid skb owned by the hook.
        unsafe { bindings::mpbal_skb_set_l4_hash(self.skb.as_ptr(), hash) }
    }

    pub(crate) fn hash(&self) -> u32 {
        // SAFETY: valid skb.
        unsafe { bindings::mpbal_skb_hash(self.skb.as_ptr()) }
    }

    pub(crate) fn len(&self) -> u32 {
        // SAFETY: valid skb.
        unsafe { bindings::mpbal_skb_len(self.skb.as_ptr()) }
    }

    /// Wire packets this skb stands for (GSO segments).
    pub(crate) fn segs(&self) -> u32 {
        // SAFETY: valid skb.
        unsafe { bindings::mpbal_skb_segs(self.skb.as_ptr()) }
    }

    /// Whether `ip_forward()` handled it (IPSKB_FORWARDED).
    pub(crate) fn forwarded(&self) -> bool {
        // SAFETY: valid skb at an IPv4 hook, so IPCB is meaningful.
        unsafe { bindings::mpbal_skb_forwarded(self.skb.as_ptr()) }
    }

    /// Device of the current dst, 0 if none.
    pub(crate) fn dst_oif(&self) -> u32 {
        // SAFETY: valid skb.
        unsafe { bindings::mpbal_skb_dst_oif(self.skb.as_ptr()) as u32 }
    }

    /// Identity of the skb for matching across hooks of one traversal; never
    /// dereferenced.
    pub(crate) fn id(&self) -> usize {
        self.skb.as_ptr() as usize
    }

    pub(crate) fn in_ifindex(&self) -> u32 {
        // SAFETY: valid hook state.
        unsafe { bindings::mpbal_state_in_ifindex(self.state.as_ptr()) as u32 }
    }

    pub(crate) fn out_ifindex(&self) -> u32 {
        // SAFETY: valid hook state.
        unsafe { bindings::mpbal_state_out_ifindex(self.state.as_ptr()) as u32 }
    }

    /// The packet's conntrack entry, if tracked.
    pub(crate) fn conn(&self) -> Option<Conn<'a>> {
        let mut reply = false;
        let mut is_new = false;
        // SAFETY: valid skb; out-pointers are valid locals.
        let ct = unsafe { bindings::mpbal_skb_ct(self.skb.as_ptr(), &mut reply, &mut is_new) };
        Some(Conn {
            ct: NonNull::new(ct)?,
            reply,
            is_new,
            _life: PhantomData,
        })
    }
}

/// A conntrack entry, borrowed from the skb that holds a reference on it.
///
/// # Invariants
///
/// `ct` is valid for `'a` (the skb's `_nfct` reference keeps it alive).
pub(crate) struct Conn<'a> {
    ct: NonNull<bindings::nf_conn>,
    reply: bool,
    is_new: bool,
    _life: PhantomData<&'a bindings::nf_conn>,
}

impl Conn<'_> {
    /// The packet travels in the reply direction.
    pub(crate) fn is_reply(&self) -> bool {
        self.reply
    }

    /// First packet of the connection (IP_CT_NEW).
    pub(crate) fn is_new(&self) -> bool {
        self.is_new
    }

    /// `ct->mark`, read once.
    pub(crate) fn mark(&self) -> u32 {
        // SAFETY: `ct` is valid (type invariant).
        unsafe { bindings::mpbal_ct_mark(self.ct.as_ptr()) }
    }

    /// Sets the `mask` bits of `ct->mark` to `value`, raising IPCT_MARK so
    /// ctnetlink listeners (conntrackd) see it.
    pub(crate) fn set_mark(&self, mask: u32, value: u32) {
        // SAFETY: `ct` is valid; the helper writes with WRITE_ONCE as the
        // kernel's own ct mark writers do.
        unsafe { bindings::mpbal_ct_set_mark(self.ct.as_ptr(), mask, value) }
    }
}
