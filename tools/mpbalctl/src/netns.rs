// SPDX-License-Identifier: GPL-2.0

//! `-n NETNS`: switch the whole process into a named network namespace.
//!
//! Everything mpbalctl touches is per netns (the rtnetlink socket, the
//! /proc/sys/net/mpbal sysctls and /proc/net/mpbal files), so this must run
//! before any of them is opened.

use std::fs::File;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};

use crate::error::{strerror, Error};

/// Names are looked up under /run/netns like `ip netns`; anything with a
/// slash is taken as a path (e.g. /proc/PID/ns/net).
pub fn path(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/run/netns").join(name)
    }
}

pub fn enter(name: &str) -> Result<(), Error> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::usage(format!(
            "invalid network namespace name \"{name}\""
        )));
    }
    let file = File::open(path(name)).map_err(|e| {
        Error::op(format!(
            "Cannot open network namespace \"{name}\": {}",
            strerror(&e)
        ))
    })?;
    setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| {
        Error::op(format!(
            "failed to enter network namespace \"{name}\": {}",
            e.desc()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(path("ns1"), PathBuf::from("/run/netns/ns1"));
        assert_eq!(path("/proc/1/ns/net"), PathBuf::from("/proc/1/ns/net"));
    }

    #[test]
    fn missing_namespace_is_operational_error() {
        let e = enter("mpbalctl-test-no-such-ns").unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.message().starts_with("Cannot open network namespace"));
        assert_eq!(enter("").unwrap_err().exit_code(), 2);
    }
}
