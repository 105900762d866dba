// SPDX-License-Identifier: GPL-2.0

//! The two kinds of failure mpbalctl reports, and how they map to exit codes.

use std::fmt;
use std::io::{self, Write};

use nix::errno::Errno;

/// Every failure is either the user's (bad arguments, exit 2, usage is shown)
/// or the system's (netlink/proc/netns errors, exit 1), like iproute2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Bad arguments: one-line message, then usage.
    Usage(String),
    /// The operation itself failed.
    Op(String),
    /// A configuration file is invalid: `FILE:LINE:COL: message`, exit 2
    /// like bad arguments, but without the usage.
    Config(String),
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub fn op(msg: impl Into<String>) -> Self {
        Error::Op(msg.into())
    }

    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config(_) => 2,
            Error::Op(_) => 1,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::Usage(m) | Error::Op(m) | Error::Config(m) => m,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A warning on stderr: something worked, but maybe not as the user hoped.
pub fn warn(msg: &str) {
    let _ = writeln!(io::stderr(), "mpbalctl: warning: {msg}");
}

/// The bare strerror text ("Invalid argument"), without Rust's "(os error 22)"
/// suffix, so messages read like ip's and the kernel's.
pub fn strerror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => errno_desc(code),
        None => e.to_string(),
    }
}

/// strerror for a positive errno value.
pub fn errno_desc(code: i32) -> String {
    Errno::from_raw(code).desc().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::op("x").exit_code(), 1);
        assert_eq!(Error::config("x").exit_code(), 2);
    }

    #[test]
    fn strerror_has_no_rust_suffix() {
        let e = io::Error::from_raw_os_error(libc_einval());
        assert_eq!(strerror(&e), "Invalid argument");
        assert_eq!(errno_desc(17), "File exists");
    }

    fn libc_einval() -> i32 {
        Errno::EINVAL as i32
    }
}
