// SPDX-License-Identifier: GPL-2.0

//! Routing table and protocol names, read from iproute2's files so that
//! `table NAME` and `proto NAME` mean what they mean to `ip route`, both when
//! parsing and when printing (lib/rt_names.c).
//!
//! Files: `ETC/rt_tables`, or `USR/rt_tables` if that does not exist; then
//! `rt_tables.d/*.conf` of USR (unless ETC has a file of the same name) and
//! of ETC; the same for `rt_protos`. That is iproute2 >= 6.5; Debian 12's
//! 6.1 reads the ETC files only, the same thing where USR does not exist.
//! Directories are read in name order (ip: readdir order).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const ETC_DIR: &str = "/etc/iproute2";
pub const USR_DIR: &str = "/usr/share/iproute2";

pub const RT_TABLE_UNSPEC: u32 = 0;
pub const RT_TABLE_DEFAULT: u32 = 253;
pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;
pub const RTPROT_BOOT: u8 = 3;

/// ip's built-in table names, plus `unspec`, which every rt_tables has.
const TABLES: &[(u32, &str)] = &[
    (RT_TABLE_UNSPEC, "unspec"),
    (RT_TABLE_DEFAULT, "default"),
    (RT_TABLE_MAIN, "main"),
    (RT_TABLE_LOCAL, "local"),
];

/// ip's built-in protocol names (rtnl_rtprot_tab).
const PROTOS: &[(u8, &str)] = &[
    (0, "unspec"),
    (1, "redirect"),
    (2, "kernel"),
    (RTPROT_BOOT, "boot"),
    (4, "static"),
    (8, "gated"),
    (9, "ra"),
    (10, "mrt"),
    (11, "zebra"),
    (12, "bird"),
    (13, "dnrouted"),
    (14, "xorp"),
    (15, "ntk"),
    (16, "dhcp"),
    (18, "keepalived"),
    (42, "babel"),
    (99, "openr"),
    (186, "bgp"),
    (187, "isis"),
    (188, "ospf"),
    (189, "rip"),
    (192, "eigrp"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtNames {
    /// Built-ins first, then in the order read.
    tables: Vec<(u32, String)>,
    /// By protocol number; a later file overrides.
    protos: Vec<Option<String>>,
    /// ip's "Database FILE is corrupted at LINE" messages.
    pub warnings: Vec<String>,
}

impl RtNames {
    pub fn builtin() -> Self {
        let mut protos = vec![None; 256];
        for (id, name) in PROTOS {
            protos[usize::from(*id)] = Some(name.to_string());
        }
        RtNames {
            tables: TABLES.iter().map(|(i, n)| (*i, n.to_string())).collect(),
            protos,
            warnings: Vec::new(),
        }
    }

    /// The built-ins plus the files under `etc` and `usr` (see the top).
    pub fn load(etc: &Path, usr: &Path) -> Self {
        let mut names = Self::builtin();
        for path in config_files(etc, usr, "rt_tables") {
            names.read(&path, |n, id, name| {
                // ip reads ids as an int: negative ones (or above i32) are skipped.
                if let Ok(id @ 0..=0x7fff_ffff) = u32::try_from(id) {
                    n.tables.push((id, name.to_string()));
                }
            });
        }
        for path in config_files(etc, usr, "rt_protos") {
            names.read(&path, |n, id, name| {
                if let Ok(id) = u8::try_from(id) {
                    n.protos[usize::from(id)] = Some(name.to_string());
                }
            });
        }
        names
    }

    /// The system's names, read once, on first use; warnings go to stderr.
    pub fn system() -> &'static RtNames {
        static NAMES: OnceLock<RtNames> = OnceLock::new();
        NAMES.get_or_init(|| {
            let names = RtNames::load(Path::new(ETC_DIR), Path::new(USR_DIR));
            for w in &names.warnings {
                crate::error::warn(w);
            }
            names
        })
    }

    /// `ID NAME` lines; like ip, a bad line ends the file with a warning.
    fn read(&mut self, path: &Path, mut add: impl FnMut(&mut Self, i64, &str)) {
        let Ok(text) = fs::read_to_string(path) else {
            return;
        };
        for line in text.lines() {
            let line = line.trim_start_matches([' ', '\t']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            match (words.next().and_then(parse_file_id), words.next()) {
                (Some(id), Some(name)) => add(self, id, name),
                _ => {
                    self.warnings.push(format!(
                        "Database {} is corrupted at {line}",
                        path.display()
                    ));
                    return;
                }
            }
        }
    }

    /// A table's number: a name first (as ip tries), else a number.
    pub fn table_id(&self, s: &str) -> Option<u32> {
        // ip looks names up by hash bucket (id & 255), newest first.
        let named = self
            .tables
            .iter()
            .rev()
            .filter(|(_, n)| n == s)
            .min_by_key(|(id, _)| id & 255);
        match named {
            Some((id, _)) => Some(*id),
            None => parse_c_number(s).and_then(|n| u32::try_from(n).ok()),
        }
    }

    /// A table's name, the newest one read, else its number.
    pub fn table_name(&self, id: u32) -> String {
        self.tables
            .iter()
            .rev()
            .find(|(i, _)| *i == id)
            .map_or_else(|| id.to_string(), |(_, n)| n.clone())
    }

    /// A protocol's number: a name (the lowest number having it), else a number.
    pub fn proto_id(&self, s: &str) -> Option<u8> {
        match self.protos.iter().position(|n| n.as_deref() == Some(s)) {
            Some(id) => u8::try_from(id).ok(),
            None => parse_c_number(s).and_then(|n| u8::try_from(n).ok()),
        }
    }

    pub fn proto_name(&self, id: u8) -> String {
        self.protos[usize::from(id)]
            .clone()
            .unwrap_or_else(|| id.to_string())
    }
}

/// The files to read for database `base`, in order.
fn config_files(etc: &Path, usr: &Path, base: &str) -> Vec<PathBuf> {
    let main = etc.join(base);
    let mut files = vec![if main.exists() { main } else { usr.join(base) }];
    let dir = format!("{base}.d");
    let etc_d = conf_d(&etc.join(&dir));
    for f in conf_d(&usr.join(&dir)) {
        if !etc_d.iter().any(|e| e.file_name() == f.file_name()) {
            files.push(f);
        }
    }
    files.extend(etc_d);
    files
}

/// `DIR/*.conf`, without hidden files, in name order.
fn conf_d(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n.len() > 5 && n.ends_with(".conf"))
        })
        .collect();
    files.sort();
    files
}

/// An id in a database file: `0x` hex or decimal, as ip's sscanf reads it.
fn parse_file_id(s: &str) -> Option<i64> {
    match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A number on the command line as ip reads it (strtoul with base 0):
/// decimal, `0x` hex, or octal when it starts with 0.
pub fn parse_c_number(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (hex, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ETC and a USR directory with the given files.
    fn dirs(etc: &[(&str, &str)], usr: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let (e, u) = (root.path().join("etc"), root.path().join("usr"));
        for (dir, files) in [(&e, etc), (&u, usr)] {
            fs::create_dir_all(dir).unwrap();
            for (name, text) in files {
                let path = dir.join(name);
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(path, text).unwrap();
            }
        }
        (root, e, u)
    }

    const DEBIAN_TABLES: &str = "#\n# reserved values\n#\n255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n#\n# local\n#\n#1\tinr.ruhep\n";

    #[test]
    fn builtins() {
        let n = RtNames::builtin();
        assert_eq!(n.table_id("main"), Some(254));
        assert_eq!(n.table_id("local"), Some(255));
        assert_eq!(n.table_id("default"), Some(253));
        assert_eq!(n.table_id("unspec"), Some(0));
        assert_eq!(n.table_id("100"), Some(100));
        assert_eq!(n.table_id("4294967295"), Some(u32::MAX));
        assert_eq!(n.table_id("4294967296"), None);
        assert_eq!(n.table_id("nosuch"), None);
        assert_eq!(n.table_name(254), "main");
        assert_eq!(n.table_name(100), "100");
        assert_eq!(n.proto_id("boot"), Some(RTPROT_BOOT));
        assert_eq!(n.proto_id("kernel"), Some(2));
        assert_eq!(n.proto_id("static"), Some(4));
        assert_eq!(n.proto_id("bgp"), Some(186));
        assert_eq!(n.proto_id("255"), Some(255));
        assert_eq!(n.proto_id("256"), None);
        assert_eq!(n.proto_id("nosuch"), None);
        assert_eq!(n.proto_name(4), "static");
        assert_eq!(n.proto_name(200), "200");
    }

    #[test]
    fn numbers_as_ip_reads_them() {
        assert_eq!(parse_c_number("100"), Some(100));
        assert_eq!(parse_c_number("0x64"), Some(100));
        assert_eq!(parse_c_number("0X64"), Some(100));
        assert_eq!(parse_c_number("0144"), Some(100));
        assert_eq!(parse_c_number("0"), Some(0));
        for bad in [
            "",
            "0x",
            "08",
            "1e3",
            "-1",
            "+1",
            " 1",
            "0x1g",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_c_number(bad), None, "{bad:?}");
        }
        let n = RtNames::builtin();
        assert_eq!(n.table_id("0x10"), Some(16));
        assert_eq!(n.proto_id("010"), Some(8));
    }

    #[test]
    fn tables_from_files() {
        let (_d, etc, usr) = dirs(
            &[
                (
                    "rt_tables",
                    &format!("{DEBIAN_TABLES}100 isp1\n 0x65\tisp2 # comment\n"),
                ),
                ("rt_tables.d/vpn.conf", "300 vpn\n"),
                ("rt_tables.d/ignored.txt", "301 ignored\n"),
                ("rt_tables.d/.hidden.conf", "302 hidden\n"),
            ],
            &[],
        );
        let n = RtNames::load(&etc, &usr);
        assert!(n.warnings.is_empty(), "{:?}", n.warnings);
        assert_eq!(n.table_id("isp1"), Some(100));
        assert_eq!(n.table_id("isp2"), Some(101));
        assert_eq!(n.table_id("vpn"), Some(300));
        assert_eq!(n.table_id("main"), Some(254));
        assert_eq!(n.table_id("ignored"), None);
        assert_eq!(n.table_id("hidden"), None);
        assert_eq!(n.table_name(100), "isp1");
        assert_eq!(n.table_name(300), "vpn");
        assert_eq!(n.table_name(254), "main");
        assert_eq!(n.table_name(301), "301");
    }

    #[test]
    fn newest_name_prints_and_names_win_over_numbers() {
        let (_d, etc, usr) = dirs(&[("rt_tables", "254 main\n254 primary\n7 100\n")], &[]);
        let n = RtNames::load(&etc, &usr);
        assert_eq!(n.table_name(254), "primary");
        assert_eq!(n.table_id("main"), Some(254));
        assert_eq!(n.table_id("primary"), Some(254));
        // ip tries names first: "100" is table 7 here.
        assert_eq!(n.table_id("100"), Some(7));
    }

    #[test]
    fn usr_share_is_a_fallback() {
        let (_d, etc, usr) = dirs(
            &[("rt_tables.d/a.conf", "11 etc_a\n")],
            &[
                ("rt_tables", "10 usr_main\n"),
                ("rt_tables.d/a.conf", "12 usr_a\n"),
                ("rt_tables.d/b.conf", "13 usr_b\n"),
            ],
        );
        let n = RtNames::load(&etc, &usr);
        assert_eq!(n.table_id("usr_main"), Some(10));
        assert_eq!(n.table_id("etc_a"), Some(11));
        assert_eq!(n.table_id("usr_a"), None); // overridden by ETC's a.conf
        assert_eq!(n.table_id("usr_b"), Some(13));

        // An ETC rt_tables hides USR's.
        let (_d, etc, usr) = dirs(&[("rt_tables", "20 etc\n")], &[("rt_tables", "10 usr\n")]);
        let n = RtNames::load(&etc, &usr);
        assert_eq!((n.table_id("etc"), n.table_id("usr")), (Some(20), None));
    }

    #[test]
    fn protos_from_files() {
        let (_d, etc, usr) = dirs(
            &[
                ("rt_protos", "4 static\n200 mine\n# 201 no\n"),
                (
                    "rt_protos.d/x.conf",
                    "0xca other\n300 too_big\n-1 negative\n",
                ),
            ],
            &[],
        );
        let n = RtNames::load(&etc, &usr);
        assert_eq!(n.proto_id("mine"), Some(200));
        assert_eq!(n.proto_name(200), "mine");
        assert_eq!(n.proto_id("other"), Some(202));
        assert_eq!(n.proto_id("too_big"), None);
        assert_eq!(n.proto_id("negative"), None);
        assert_eq!(n.proto_id("boot"), Some(3)); // built-ins stay
        assert_eq!(n.proto_name(201), "201");
    }

    #[test]
    fn corrupt_file_stops_with_a_warning() {
        let (_d, etc, usr) = dirs(&[("rt_tables", "100 a\nbogus line\n101 b\n")], &[]);
        let n = RtNames::load(&etc, &usr);
        assert_eq!(n.table_id("a"), Some(100));
        assert_eq!(n.table_id("b"), None);
        assert_eq!(n.warnings.len(), 1);
        assert!(
            n.warnings[0].contains("is corrupted at bogus line"),
            "{:?}",
            n.warnings
        );
        let (_d, etc, usr) = dirs(&[("rt_tables", "100\n")], &[]);
        assert_eq!(RtNames::load(&etc, &usr).warnings.len(), 1);
    }

    #[test]
    fn missing_files_leave_builtins() {
        let n = RtNames::load(Path::new("/nonexistent/etc"), Path::new("/nonexistent/usr"));
        assert_eq!(n, RtNames::builtin());
    }
}
