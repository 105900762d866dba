//! KUnit from Rust: the suite is declared in `src/kunit.c`; its Rust cases
//! report failures through `KUNIT_FAIL`.

use super::bindings;
use super::log::StackBuf;
use core::fmt::{self, Write};
use core::ptr::NonNull;

/// The test a KUnit case runs for.
///
/// # Invariants
///
/// `test` is the live `struct kunit` of the running case.
pub(crate) struct Test {
    test: NonNull<bindings::kunit>,
}

impl Test {
    /// # Safety
    ///
    /// `test` must be the argument of a running KUnit case, and the value
    /// must not outlive that case.
    pub(crate) unsafe fn from_raw(test: *mut bindings::kunit) -> Option<Self> {
        Some(Test {
            test: NonNull::new(test)?,
        })
    }

    /// Marks the case failed with a message (like `KUNIT_FAIL`).
    pub(crate) fn fail(&mut self, file: &str, line: u32, args: fmt::Arguments<'_>) {
        let mut msg = StackBuf::<192>::new();
        let _ = msg.write_fmt(args);
        let m = msg.as_bytes();
        // Always NUL-terminated: at most 63 bytes of the path are kept.
        let mut path = [0u8; 64];
        let n = file.len().min(path.len() - 1);
        path[..n].copy_from_slice(&file.as_bytes()[..n]);
        // SAFETY: `test` is live (type invariant); `path` is NUL-terminated
        // and `m` is valid for the call; the helper keeps neither.
        unsafe {
            bindings::mpbal_kunit_fail(
                self.test.as_ptr(),
                path.as_ptr().cast(),
                line as i32,
                m.as_ptr().cast(),
                m.len(),
            )
        };
    }

    /// A bare skb for hash tests, freed on drop.
    pub(crate) fn skb(&mut self) -> Option<TestSkb> {
        // SAFETY: plain allocation in process context (KUnit runs at insmod).
        let skb = unsafe { bindings::mpbal_kunit_alloc_skb() };
        NonNull::new(skb).map(|skb| TestSkb { skb })
    }
}

/// An skb owned by a test.
pub(crate) struct TestSkb {
    skb: NonNull<bindings::sk_buff>,
}

impl TestSkb {
    pub(crate) fn set_l4_hash(&mut self, hash: u32) {
        // SAFETY: we own the live skb.
        unsafe { bindings::mpbal_skb_set_l4_hash(self.skb.as_ptr(), hash) }
    }

    pub(crate) fn hash(&self) -> u32 {
        // SAFETY: we own the live skb.
        unsafe { bindings::mpbal_skb_hash(self.skb.as_ptr()) }
    }

    /// `skb_get_hash()`: must keep an L4 hash that was set, not recompute.
    pub(crate) fn get_hash(&mut self) -> u32 {
        // SAFETY: we own the live skb.
        unsafe { bindings::mpbal_skb_entropy(self.skb.as_ptr()) }
    }
}

impl Drop for TestSkb {
    fn drop(&mut self) {
        // SAFETY: allocated by `Test::skb`, freed once.
        unsafe { bindings::mpbal_kunit_free_skb(self.skb.as_ptr()) }
    }
}

/// The kernel's `fib_rebalance()` and `fib_select_multipath()` rules,
/// re-stated in C with the kernel's own macros, as an oracle for the core.
pub(crate) mod oracle {
    use super::bindings::mpbal_nh;

    pub(crate) fn rebalance(nh: &mut [mpbal_nh]) {
        // SAFETY: the pointer and length describe `nh`.
        unsafe { super::bindings::mpbal_kunit_rebalance(nh.as_mut_ptr(), nh.len() as i32) }
    }

    pub(crate) fn select(nh: &[mpbal_nh], hash: u32) -> Option<usize> {
        // SAFETY: the pointer and length describe `nh`.
        let i = unsafe {
            super::bindings::mpbal_kunit_fib_select(nh.as_ptr(), nh.len() as i32, hash as i32)
        };
        usize::try_from(i).ok()
    }

    pub(crate) use super::bindings::mpbal_nh as RawNexthop;
    pub(crate) const DEAD: u32 = super::bindings::MPBAL_NH_F_DEAD;
}
