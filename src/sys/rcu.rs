// SPDX-License-Identifier: GPL-2.0

//! Objects the packet path reads under RCU, published and retired by
//! process context: the per-netns state that exists only while a netns has
//! equalize routes (per-CPU memory, the destination table).

use super::bindings;
use super::skb::SkBuff;
use core::marker::PhantomData;
use core::pin::Pin;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::alloc::KBox;

/// Proof of being inside an RCU read-side critical section.
///
/// # Safety
///
/// A value of an implementing type may exist only inside an RCU read-side
/// critical section that lasts at least as long as the value.
pub(crate) unsafe trait RcuReader {}

/// The RCU read-side section of a netfilter hook call (`'a`).
#[derive(Clone, Copy)]
pub(crate) struct HookRcu<'a>(PhantomData<&'a ()>);

// SAFETY: netfilter calls hooks inside rcu_read_lock() (nf_hook()), and a
// `HookRcu<'a>` is only made by `SkBuff<'a>::rcu`, whose `'a` is that call.
unsafe impl RcuReader for HookRcu<'_> {}

impl<'a> SkBuff<'a> {
    /// The hook call's RCU read-side section, apart from the packet borrow.
    pub(crate) fn rcu(&self) -> HookRcu<'a> {
        HookRcu(PhantomData)
    }
}

/// `rcu_read_lock()` until dropped.
pub(crate) struct RcuGuard(PhantomData<*mut ()>);

impl RcuGuard {
    pub(crate) fn new() -> Self {
        // SAFETY: no preconditions; paired with the unlock in `Drop`, on the
        // same task (`RcuGuard` is not `Send`).
        unsafe { bindings::mpbal_rcu_read_lock() };
        RcuGuard(PhantomData)
    }
}

impl Drop for RcuGuard {
    fn drop(&mut self) {
        // SAFETY: pairs with the lock in `new`.
        unsafe { bindings::mpbal_rcu_read_unlock() };
    }
}

// SAFETY: the guard holds the read lock for its whole life.
unsafe impl RcuReader for RcuGuard {}

/// At most one `T`, readable lock-free under RCU.
///
/// # Invariants
///
/// A non-null `ptr` came from `KBox::into_raw` of a pinned box and is owned
/// by the slot; it is freed only after it was unpublished and a grace
/// period passed (`retire`), or when the slot is dropped.
pub(crate) struct RcuSlot<T> {
    ptr: AtomicPtr<T>,
}

// SAFETY: readers on any CPU get `&T` (needs `T: Sync`); the value may be
// dropped on another thread than the one that published it (`T: Send`).
unsafe impl<T: Send + Sync> Sync for RcuSlot<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Send for RcuSlot<T> {}

impl<T> RcuSlot<T> {
    pub(crate) const fn new() -> Self {
        RcuSlot {
            ptr: AtomicPtr::new(core::ptr::null_mut()),
        }
    }

    /// The value, if published, for as long as the read-side section lasts.
    pub(crate) fn get<'a>(&'a self, _rcu: &'a impl RcuReader) -> Option<&'a T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: a published value stays valid until a grace period after it
        // is unpublished (type invariant), and `_rcu` proves we are inside a
        // read-side section that started before any such grace period ends.
        unsafe { p.as_ref() }
    }

    pub(crate) fn is_set(&self) -> bool {
        !self.ptr.load(Ordering::Acquire).is_null()
    }

    /// Publishes `v`; gives it back if a value is published already.
    pub(crate) fn publish(&self, v: Pin<KBox<T>>) -> core::result::Result<(), Pin<KBox<T>>> {
        // SAFETY: the value is never moved out of its allocation: it is only
        // reached by reference and given back pinned.
        let p = KBox::into_raw(unsafe { Pin::into_inner_unchecked(v) });
        match self.ptr.compare_exchange(
            core::ptr::null_mut(),
            p,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            // SAFETY: `p` came from `into_raw` above and was not published.
            Err(_) => Err(unsafe { Pin::new_unchecked(KBox::from_raw(p)) }),
        }
    }

    /// Unpublishes the value and gives it back once no reader can see it
    /// (after `synchronize_rcu()`). May sleep.
    pub(crate) fn retire(&self) -> Option<Pin<KBox<T>>> {
        let p = self.ptr.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if p.is_null() {
            return None;
        }
        // SAFETY: process context (the caller's duty, like any sleeping call).
        unsafe { bindings::mpbal_synchronize_rcu() };
        // SAFETY: `p` was published (type invariant), is unpublished now and
        // a grace period has passed, so no reference to it remains.
        Some(unsafe { Pin::new_unchecked(KBox::from_raw(p)) })
    }
}

impl<T> Drop for RcuSlot<T> {
    fn drop(&mut self) {
        let p = *self.ptr.get_mut();
        if !p.is_null() {
            // SAFETY: owned (type invariant); `&mut self` means no `get`
            // borrow is alive, and the owner drops the slot only after the
            // hooks that read it are gone and a grace period has passed.
            drop(unsafe { KBox::from_raw(p) });
        }
    }
}
