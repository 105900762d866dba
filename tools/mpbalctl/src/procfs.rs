// SPDX-License-Identifier: GPL-2.0

//! The module's /proc/sys/net/mpbal sysctls and /proc/net/mpbal files.
//!
//! Both trees are per network namespace, so they must be opened after
//! setns(). The root is overridable (MPBAL_PROC_ROOT) so tests can point the
//! tool at fixture trees. The files are parsed generically (by name/header)
//! because the module may add counters and columns.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{strerror, Error};

pub struct Proc {
    root: PathBuf,
}

impl Proc {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Proc { root: root.into() }
    }

    /// `$MPBAL_PROC_ROOT`, or /proc.
    pub fn from_env() -> Self {
        match std::env::var_os("MPBAL_PROC_ROOT") {
            Some(r) if !r.is_empty() => Proc::new(r),
            _ => Proc::new("/proc"),
        }
    }

    pub fn sysctl_dir(&self) -> PathBuf {
        self.root.join("sys/net/mpbal")
    }

    pub fn sysctl(&self, name: &str) -> PathBuf {
        self.sysctl_dir().join(name)
    }

    pub fn dev_conf(&self, dev: &str) -> PathBuf {
        self.sysctl_dir().join("conf").join(dev)
    }

    pub fn stats(&self) -> PathBuf {
        self.root.join("net/mpbal/stats")
    }

    pub fn uplinks(&self) -> PathBuf {
        self.root.join("net/mpbal/uplinks")
    }

    /// The sysctl directory exists exactly while the module is loaded.
    pub fn is_loaded(&self) -> bool {
        self.sysctl_dir().is_dir()
    }

    /// An operational error (exit 1) unless the module is loaded.
    pub fn ensure_loaded(&self) -> Result<(), Error> {
        let dir = self.sysctl_dir();
        if self.is_loaded() {
            Ok(())
        } else {
            Err(Error::op(format!(
                "mpbal: module not loaded (no {})",
                dir.display()
            )))
        }
    }
}

pub fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path)
        .map_err(|e| Error::op(format!("cannot read {}: {}", path.display(), strerror(&e))))
}

/// Write a sysctl value in one write(2), as the kernel's proc handlers want.
/// The file must already exist: a missing sysctl is never created.
/// `what` names the value for the EINVAL message, e.g. "strategy 'x'".
pub fn write(path: &Path, value: &str, what: &str) -> Result<(), Error> {
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()))
        .map_err(|e| write_error(path, &e, what))
}

/// EINVAL from a sysctl write means the module refused the value.
pub fn write_error(path: &Path, e: &io::Error, what: &str) -> Error {
    if e.raw_os_error() == Some(Errno::EINVAL as i32) {
        Error::op(format!("kernel rejected {what}: {}", strerror(e)))
    } else {
        Error::op(format!("cannot write {}: {}", path.display(), strerror(e)))
    }
}

/// `NAME VALUE` lines, in file order; blank lines and `#` comments skipped.
pub fn parse_kv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((k, v)) => (k.to_string(), v.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// A whitespace-separated table whose first line names the columns.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The cell of `row` in column `col`, if both exist.
    pub fn get<'a>(&self, row: &'a [String], col: &str) -> Option<&'a str> {
        let i = self.columns.iter().position(|c| c == col)?;
        row.get(i).map(String::as_str)
    }

    /// The cell in column `col` as a u64 (None if absent or not a number).
    pub fn get_u64(&self, row: &[String], col: &str) -> Option<u64> {
        self.get(row, col)?.parse().ok()
    }
}

pub fn parse_table(text: &str) -> Table {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let columns = match lines.next() {
        Some(h) => h.split_whitespace().map(str::to_string).collect(),
        None => return Table::default(),
    };
    let rows = lines
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    Table { columns, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "strategy session\nequalize_routes 1\n# comment\n\nhash_policy managed\npackets_fwd 1234\nlonely\n";

    #[test]
    fn kv_keeps_order_and_skips_comments() {
        let kv = parse_kv(STATS);
        let names: Vec<_> = kv.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "strategy",
                "equalize_routes",
                "hash_policy",
                "packets_fwd",
                "lonely"
            ]
        );
        assert_eq!(kv[0].1, "session");
        assert_eq!(kv[3].1, "1234");
        assert_eq!(kv[4].1, "");
    }

    #[test]
    fn kv_tabs_and_multiple_spaces() {
        assert_eq!(
            parse_kv("a\t 5 \n"),
            vec![("a".to_string(), "5".to_string())]
        );
    }

    #[test]
    fn table_by_header() {
        let t = parse_table(
            "dev ifindex up packets bytes sessions rate_bps capacity_bps capacity_src\n\
             eth1 3 1 1000 1500000 4 8123456 10000000 config\n\
             eth2 4 0 0 0 0 0 0 none\n",
        );
        assert_eq!(t.columns.len(), 9);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.get(&t.rows[0], "dev"), Some("eth1"));
        assert_eq!(t.get_u64(&t.rows[0], "rate_bps"), Some(8_123_456));
        assert_eq!(t.get(&t.rows[1], "capacity_src"), Some("none"));
        assert_eq!(t.get(&t.rows[1], "nosuch"), None);
        assert_eq!(t.get_u64(&t.rows[0], "dev"), None);
    }

    #[test]
    fn table_header_only_and_empty_and_short_rows() {
        let t = parse_table("dev ifindex\n");
        assert_eq!(t.columns, ["dev", "ifindex"]);
        assert!(t.rows.is_empty());
        assert_eq!(parse_table(""), Table::default());
        let t = parse_table("a b c\n1\n");
        assert_eq!(t.get(&t.rows[0], "a"), Some("1"));
        assert_eq!(t.get(&t.rows[0], "c"), None);
    }

    #[test]
    fn einval_is_a_rejection() {
        let e = io::Error::from_raw_os_error(Errno::EINVAL as i32);
        let err = write_error(Path::new("/x"), &e, "strategy 'foo'");
        assert_eq!(
            err,
            Error::op("kernel rejected strategy 'foo': Invalid argument")
        );
        let e = io::Error::from_raw_os_error(Errno::EACCES as i32);
        assert_eq!(
            write_error(Path::new("/x"), &e, "strategy 'foo'"),
            Error::op("cannot write /x: Permission denied")
        );
    }

    #[test]
    fn paths_follow_root() {
        let p = Proc::new("/tmp/r");
        assert_eq!(
            p.sysctl("strategy"),
            Path::new("/tmp/r/sys/net/mpbal/strategy")
        );
        assert_eq!(
            p.dev_conf("eth1").join("capacity"),
            Path::new("/tmp/r/sys/net/mpbal/conf/eth1/capacity")
        );
        assert_eq!(p.stats(), Path::new("/tmp/r/net/mpbal/stats"));
        assert_eq!(p.uplinks(), Path::new("/tmp/r/net/mpbal/uplinks"));
        assert_eq!(
            Proc::new("/nonexistent").ensure_loaded(),
            Err(Error::op(
                "mpbal: module not loaded (no /nonexistent/sys/net/mpbal)"
            ))
        );
    }
}
