// SPDX-License-Identifier: GPL-2.0

//! The wrapper layer of mpbal_kunit.ko: the KUnit suite declared from Rust
//! (6.12's kernel crate has no `#[kunit_tests]`), and safe views of what the
//! cases touch. All of this crate's `unsafe` is here.

use crate::bindings;
use crate::log::StackBuf;
use core::ffi::CStr;
use core::fmt::{self, Write};
use core::ptr::NonNull;
use kernel::bindings as k;
use kernel::ffi::c_char;

/// A `struct kunit_case` for `run`.
pub(crate) const fn case(
    name: &'static CStr,
    run: unsafe extern "C" fn(*mut k::kunit),
) -> k::kunit_case {
    k::kunit_case {
        run_case: Some(run),
        name: name.as_ptr().cast(),
        generate_params: None,
        attr: k::kunit_attributes {
            speed: k::kunit_speed_KUNIT_SPEED_NORMAL,
        },
        status: k::kunit_status_KUNIT_SUCCESS,
        module_name: core::ptr::null_mut(),
        log: core::ptr::null_mut(),
    }
}

/// The all-zero `struct kunit_case` that ends a case array.
pub(crate) const fn case_end() -> k::kunit_case {
    k::kunit_case {
        run_case: None,
        name: core::ptr::null(),
        generate_params: None,
        attr: k::kunit_attributes {
            speed: k::kunit_speed_KUNIT_SPEED_UNSET,
        },
        status: k::kunit_status_KUNIT_SUCCESS,
        module_name: core::ptr::null_mut(),
        log: core::ptr::null_mut(),
    }
}

/// A `struct kunit_suite` named `name` over `cases` (ended by `case_end`).
pub(crate) const fn suite(name: &str, cases: *mut k::kunit_case) -> k::kunit_suite {
    let mut n = [0 as c_char; 256];
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() && i < n.len() - 1 {
        n[i] = b[i] as c_char;
        i += 1;
    }
    k::kunit_suite {
        name: n,
        suite_init: None,
        suite_exit: None,
        init: None,
        exit: None,
        test_cases: cases,
        attr: k::kunit_attributes {
            speed: k::kunit_speed_KUNIT_SPEED_UNSET,
        },
        status_comment: [0; 256],
        debugfs: core::ptr::null_mut(),
        log: core::ptr::null_mut(),
        suite_init_err: 0,
        is_init: false,
    }
}

/// Declares the module's suite: `$name` over the cases `$case => $fn`, each
/// `fn(&mut Test)`. The module loader finds it in `.kunit_test_suites` and
/// KUnit runs it once the module is live, printing KTAP.
macro_rules! kunit_suite {
    ($name:literal, [$($case:literal => $f:path),* $(,)?]) => {
        const _: () = {
            const N: usize = [$($case),*].len() + 1;
            // KUnit writes each case's status and log: mutable memory.
            static mut CASES: [::kernel::bindings::kunit_case; N] = [
                $({
                    /// # Safety
                    ///
                    /// Called by KUnit only, as a case of this suite.
                    unsafe extern "C" fn run(test: *mut ::kernel::bindings::kunit) {
                        // SAFETY: KUnit passes the running case's test.
                        if let Some(mut t) = unsafe { $crate::suite::Test::from_raw(test) } {
                            $f(&mut t);
                        }
                    }
                    $crate::suite::case($case, run)
                },)*
                $crate::suite::case_end(),
            ];
            static mut SUITE: ::kernel::bindings::kunit_suite =
                $crate::suite::suite($name, core::ptr::addr_of_mut!(CASES).cast());
            #[used]
            #[link_section = ".kunit_test_suites"]
            static mut SUITE_ENTRY: *const ::kernel::bindings::kunit_suite =
                core::ptr::addr_of_mut!(SUITE);
        };
    };
}
pub(crate) use kunit_suite;

/// The test a KUnit case runs for.
///
/// # Invariants
///
/// `test` is the live `struct kunit` of the running case.
pub(crate) struct Test {
    test: NonNull<k::kunit>,
}

impl Test {
    /// # Safety
    ///
    /// `test` must be the argument of a running KUnit case, and the value
    /// must not outlive that case.
    pub(crate) unsafe fn from_raw(test: *mut k::kunit) -> Option<Self> {
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
                self.test.as_ptr().cast(),
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

    /// A UDP skb 10.0.0.1:1000 -> 10.0.0.2:2000 without a hash.
    pub(crate) fn udp_skb(&mut self) -> Option<TestSkb> {
        // SAFETY: plain allocation in process context.
        let skb = unsafe { bindings::mpbal_kunit_udp_skb() };
        NonNull::new(skb).map(|skb| TestSkb { skb })
    }
}

/// An skb owned by a test.
pub(crate) struct TestSkb {
    skb: NonNull<bindings::sk_buff>,
}

impl TestSkb {
    /// mpbal.ko's `mpbal_skb_set_l4_hash()`, as the packet path calls it.
    pub(crate) fn set_l4_hash(&mut self, hash: u32) {
        // SAFETY: we own the live skb.
        unsafe { bindings::mpbal_skb_set_l4_hash(self.skb.as_ptr(), hash) }
    }

    pub(crate) fn hash(&self) -> u32 {
        // SAFETY: we own the live skb.
        unsafe { bindings::mpbal_skb_hash(self.skb.as_ptr()) }
    }

    /// mpbal.ko's entropy: must keep an L4 hash that was set, not recompute.
    pub(crate) fn entropy(&mut self) -> u32 {
        // SAFETY: we own the live skb; it has no network header, but one
        // with an L4 hash returns before reading it.
        unsafe { bindings::mpbal_skb_entropy(self.skb.as_ptr()) }
    }
}

impl Drop for TestSkb {
    fn drop(&mut self) {
        // SAFETY: allocated by `Test::skb`, freed once.
        unsafe { bindings::mpbal_kunit_free_skb(self.skb.as_ptr()) }
    }
}

/// The entropy of `udp_skb` with a fixed jhash seed of 0.
pub(crate) fn entropy_unseeded() -> u32 {
    // SAFETY: pure computation.
    unsafe { bindings::mpbal_kunit_entropy_unseeded() }
}

/// Counts `NETEVENT_IPV4_MPATH_HASH_UPDATE` events for init_net while alive.
pub(crate) struct MpathEvents(());

impl MpathEvents {
    pub(crate) fn watch() -> Option<Self> {
        // SAFETY: registers a static notifier block, unregistered on drop.
        (unsafe { bindings::mpbal_kunit_netevent_watch(true) } == 0).then_some(MpathEvents(()))
    }

    pub(crate) fn count(&self) -> i32 {
        // SAFETY: reads an atomic.
        unsafe { bindings::mpbal_kunit_netevent_count() }
    }
}

impl Drop for MpathEvents {
    fn drop(&mut self) {
        // SAFETY: registered by `watch`.
        unsafe { bindings::mpbal_kunit_netevent_watch(false) };
    }
}

/// init_net's `fib_multipath_hash_policy`, read and written through mpbal.ko.
pub(crate) fn init_net_hash_policy() -> i32 {
    // SAFETY: init_net lives forever; the helper uses READ_ONCE.
    unsafe { bindings::mpbal_hash_policy(bindings::mpbal_kunit_init_net()) }
}

pub(crate) fn set_init_net_hash_policy(policy: i32) {
    // SAFETY: as above; the helper writes with WRITE_ONCE and sends the
    // netevent, as the sysctl handler does.
    unsafe { bindings::mpbal_set_hash_policy(bindings::mpbal_kunit_init_net(), policy) }
}

/// A `net.mpbal.*` store of init_net, driven through mpbal.ko's real
/// `net.mpbal.strategy` handler.
pub(crate) struct TestConf(bindings::mpbal_sysctl_conf);

impl TestConf {
    pub(crate) fn new(strategy: i32) -> Self {
        TestConf(bindings::mpbal_sysctl_conf {
            // SAFETY: returns &init_net, which lives forever.
            net: unsafe { bindings::mpbal_kunit_init_net() },
            strategy,
            ..Default::default()
        })
    }

    pub(crate) fn strategy(&self) -> i32 {
        self.0.strategy
    }

    /// One write(2) of `buf`; 0 or -errno.
    pub(crate) fn write(&mut self, buf: &[u8]) -> i32 {
        // SAFETY: the conf is valid and has no kick work; the handler reads
        // `buf.len()` bytes (it copies them first) and keeps nothing.
        unsafe {
            bindings::mpbal_sysctl_strategy_write(&mut self.0, buf.as_ptr().cast(), buf.len())
        }
    }
}

/// The kernel's `fib_rebalance()` and `fib_select_multipath()` rules,
/// re-stated in C with the kernel's own macros, as an oracle for the core.
pub(crate) mod oracle {
    use crate::bindings::mpbal_nh;

    pub(crate) fn rebalance(nh: &mut [mpbal_nh]) {
        // SAFETY: the pointer and length describe `nh`.
        unsafe { crate::bindings::mpbal_kunit_rebalance(nh.as_mut_ptr(), nh.len() as i32) }
    }

    pub(crate) fn select(nh: &[mpbal_nh], hash: u32) -> Option<usize> {
        // SAFETY: the pointer and length describe `nh`.
        let i = unsafe {
            crate::bindings::mpbal_kunit_fib_select(nh.as_ptr(), nh.len() as i32, hash as i32)
        };
        usize::try_from(i).ok()
    }

    pub(crate) use crate::bindings::mpbal_nh as RawNexthop;
    pub(crate) const DEAD: u32 = crate::bindings::MPBAL_NH_F_DEAD;
}
