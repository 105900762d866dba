// SPDX-License-Identifier: GPL-2.0

//! A packet inside a netfilter hook, and its conntrack entry.

use super::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{Error, Result};

/// `forwarded` (IPSKB_FORWARDED), `hash`, `out_ifindex`, `segs` (GSO
/// segments) and `len` of a packet at POST_ROUTING.
pub(crate) use bindings::mpbal_post_facts as PostFacts;

/// A packet in a hook call.
///
/// # Invariants
///
/// `skb` and `state` are valid for `'a`, the duration of the hook call, and
/// the hook owns the skb for that time (netfilter's contract).
pub(crate) struct SkBuff<'a> {
    pub(super) skb: NonNull<bindings::sk_buff>,
    pub(super) state: NonNull<bindings::nf_hook_state>,
    _life: PhantomData<&'a mut bindings::sk_buff>,
}

impl<'a> SkBuff<'a> {
    /// # Safety
    ///
    /// `skb` and `state` must be the arguments of a netfilter hook call for
    /// an IPv4 packet, and `'a` must not outlive that call.
    pub(crate) unsafe fn from_raw(
        skb: *mut bindings::sk_buff,
        state: *const bindings::nf_hook_state,
    ) -> Option<Self> {
        Some(SkBuff {
            skb: NonNull::new(skb)?,
            state: NonNull::new(state.cast_mut())?,
            _life: PhantomData,
        })
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

    pub(crate) fn len(&self) -> u32 {
        // SAFETY: valid skb.
        unsafe { bindings::mpbal_skb_len(self.skb.as_ptr()) }
    }

    /// Wire packets this skb stands for (GSO segments).
    pub(crate) fn segs(&self) -> u32 {
        // SAFETY: valid skb.
        unsafe { bindings::mpbal_skb_segs(self.skb.as_ptr()) }
    }

    /// What POST_ROUTING reads of every packet, in one call.
    pub(crate) fn post_facts(&self) -> PostFacts {
        let mut f = PostFacts::default();
        // SAFETY: valid skb and hook state (type invariant); `f` is a valid
        // out-buffer.
        unsafe { bindings::mpbal_post_facts(self.skb.as_ptr(), self.state.as_ptr(), &mut f) };
        f
    }

    /// Whether the packet is routed through an IPsec transform (xfrm).
    pub(crate) fn dst_is_xfrm(&self) -> bool {
        // SAFETY: valid skb.
        unsafe { bindings::mpbal_skb_dst_xfrm(self.skb.as_ptr()) }
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

    /// What pins a locally generated packet to a device (LOCAL_OUT).
    pub(crate) fn local_facts(&self) -> LocalFacts {
        let mut f = bindings::mpbal_local_facts::default();
        // SAFETY: valid skb and hook state; `f` is a valid out-buffer; the
        // helper reads the socket and devices under the hook's RCU read lock.
        unsafe { bindings::mpbal_local_facts(self.skb.as_ptr(), self.state.as_ptr(), &mut f) };
        LocalFacts {
            bound_oif: f.bound_oif as u32,
            unicast_if: f.unicast_if as u32,
            l3mdev: f.l3mdev,
            saddr_ifindex: f.saddr_ifindex as u32,
        }
    }

    /// Re-routes a LOCAL_OUT packet as `ip_route_me_harder()` does, IPsec
    /// included, onto the nexthop whose hash range holds `hash`; the skb
    /// keeps its own hash.
    pub(crate) fn reroute_hash(&mut self, hash: u32) -> Result {
        // SAFETY: skb and state are valid and the hook owns the skb, so its
        // dst may be replaced (as ip_route_me_harder() does).
        let err =
            unsafe { bindings::mpbal_reroute_hash(self.skb.as_ptr(), self.state.as_ptr(), hash) };
        if err < 0 {
            return Err(Error::from_errno(err));
        }
        Ok(())
    }

    /// The device and gateway (network byte order, 0 if none) the packet's
    /// route leaves by.
    pub(crate) fn dst_nexthop(&self) -> (u32, u32) {
        let (mut oif, mut gw) = (0u32, 0u32);
        // SAFETY: valid skb; the out-pointers are valid locals.
        unsafe { bindings::mpbal_skb_nexthop(self.skb.as_ptr(), &mut oif, &mut gw) };
        (oif, gw)
    }

    /// The packet's conntrack entry, if tracked.
    pub(crate) fn conn(&self) -> Option<NfConn<'a>> {
        let mut reply = false;
        let mut is_new = false;
        // SAFETY: valid skb; out-pointers are valid locals.
        let ct = unsafe { bindings::mpbal_skb_ct(self.skb.as_ptr(), &mut reply, &mut is_new) };
        Some(NfConn {
            ct: NonNull::new(ct)?,
            reply,
            is_new,
            _life: PhantomData,
        })
    }
}

/// What pins a locally generated packet to a device.
pub(crate) struct LocalFacts {
    /// `SO_BINDTODEVICE`.
    pub(crate) bound_oif: u32,
    /// `IP_UNICAST_IF`.
    pub(crate) unicast_if: u32,
    /// Its route is in a VRF (l3mdev).
    pub(crate) l3mdev: bool,
    /// The local device that owns the source address, 0 if none does.
    pub(crate) saddr_ifindex: u32,
}

/// A conntrack entry, borrowed from the skb that holds a reference on it.
///
/// # Invariants
///
/// `ct` is valid for `'a` (the skb's `_nfct` reference keeps it alive).
pub(crate) struct NfConn<'a> {
    ct: NonNull<bindings::nf_conn>,
    reply: bool,
    is_new: bool,
    _life: PhantomData<&'a bindings::nf_conn>,
}

impl NfConn<'_> {
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

    /// Writes `ct->mark`, raising IPCT_MARK when it changes so ctnetlink
    /// listeners (conntrackd) see it.
    pub(crate) fn set_mark(&self, mark: u32) {
        // SAFETY: `ct` is valid; the helper writes with WRITE_ONCE as the
        // kernel's own ct mark writers do.
        unsafe { bindings::mpbal_ct_set_mark(self.ct.as_ptr(), mark) }
    }
}
