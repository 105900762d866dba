//! A packet inside a netfilter hook, and its conntrack entry.

use super::bindings;
use core::marker::PhantomData;
use core::ptr::NonNull;
use kernel::error::{Error, Result};

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

    /// The device the packet's socket is bound to, 0 if none.
    pub(crate) fn sk_bound_oif(&self) -> u32 {
        // SAFETY: valid hook state; the helper reads the socket under the
        // hook's RCU read lock.
        unsafe { bindings::mpbal_state_sk_bound_oif(self.state.as_ptr()) as u32 }
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
