// SPDX-License-Identifier: GPL-2.0

//! Rate-limited warnings from the packet path, formatted without allocation.

use super::bindings;
use core::fmt::{self, Write};

/// A fixed buffer that truncates instead of failing.
pub(crate) struct StackBuf<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackBuf<N> {
    /// An empty buffer.
    pub(crate) const fn new() -> Self {
        StackBuf {
            buf: [0; N],
            len: 0,
        }
    }

    /// The bytes written so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl<const N: usize> Write for StackBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = N - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn log_ratelimited(warn: bool, args: fmt::Arguments<'_>) {
    let mut b = StackBuf::<192>::new();
    let _ = b.write_fmt(args);
    let bytes = b.as_bytes();
    // SAFETY: the pointer and length describe `bytes`, valid for the call;
    // the helper prints them with "%.*s" and keeps no reference.
    unsafe { bindings::mpbal_log_ratelimited(warn, bytes.as_ptr().cast(), bytes.len()) };
}

/// `net_warn_ratelimited("mpbal: ...")`.
pub(crate) fn warn_ratelimited(args: fmt::Arguments<'_>) {
    log_ratelimited(true, args)
}

/// `net_info_ratelimited("mpbal: ...")`.
pub(crate) fn info_ratelimited(args: fmt::Arguments<'_>) {
    log_ratelimited(false, args)
}

/// An IPv4 address in network byte order, displayed dotted.
pub(crate) struct Ipv4(pub(crate) u32);

impl fmt::Display for Ipv4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0.to_ne_bytes();
        write!(f, "{a}.{b}.{c}.{d}")
    }
}
