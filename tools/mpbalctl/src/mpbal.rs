// SPDX-License-Identifier: GPL-2.0

//! The `strategy`, `stats` and `link` objects: the module's sysctls and
//! procfs files, rendered through the common printer.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::command::LinkSet;
use crate::error::Error;
use crate::grammar::strategies;
use crate::output::{scalar, Printer};
use crate::procfs::{self, Proc, Table};
use crate::rate::format_rate;

/// Unknown names are the user's mistake (exit 2), checked before touching
/// the kernel; the kernel still has the last word (EINVAL -> exit 1).
pub fn check_strategy(name: &str) -> Result<(), Error> {
    if strategies().any(|s| s == name) {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "unknown strategy '{name}' (allowed: {})",
            strategies().collect::<Vec<_>>().join(", ")
        )))
    }
}

/// Same rules as the kernel's dev_valid_name(); also keeps DEV from
/// escaping the conf/ directory.
pub fn check_ifname(dev: &str) -> Result<(), Error> {
    let ok = !dev.is_empty()
        && dev.len() < 16
        && dev != "."
        && dev != ".."
        && !dev.contains(['/', ':'])
        && !dev.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "\"{dev}\" is not a valid device name"
        )))
    }
}

pub fn strategy_show(proc: &Proc, p: &mut Printer) -> Result<(), Error> {
    proc.ensure_loaded()?;
    let name = procfs::read(&proc.sysctl("strategy"))?;
    p.open_object(None);
    p.string("strategy", "{}\n", name.trim());
    p.close();
    Ok(())
}

pub fn strategy_set(proc: &Proc, name: &str) -> Result<(), Error> {
    check_strategy(name)?;
    proc.ensure_loaded()?;
    procfs::write(
        &proc.sysctl("strategy"),
        name,
        &format!("strategy '{name}'"),
    )
}

pub fn stats(proc: &Proc, p: &mut Printer) -> Result<(), Error> {
    proc.ensure_loaded()?;
    let counters = procfs::parse_kv(&procfs::read(&proc.stats())?);
    let uplinks = procfs::parse_table(&procfs::read(&proc.uplinks())?);

    p.open_object(None);
    p.open_object(Some("counters"));
    for (name, value) in &counters {
        p.field(name, scalar(value), &format!("{name} {value}\n"));
    }
    p.close();
    print_table(p, "uplinks", &uplinks);
    p.close();
    Ok(())
}

/// A generic table: aligned columns in text, an array of objects in JSON.
fn print_table(p: &mut Printer, key: &str, t: &Table) {
    let width = |i: usize| {
        t.rows
            .iter()
            .filter_map(|r| r.get(i))
            .map(String::len)
            .chain([t.columns[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..t.columns.len()).map(width).collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join(" ").trim_end())
    };

    if !t.columns.is_empty() {
        p.text("\n");
        p.text(&line(&t.columns));
    }
    p.open_array(Some(key));
    for row in &t.rows {
        p.open_object(None);
        for (col, cell) in t.columns.iter().zip(row) {
            p.field(col, cell_value(col, cell), "");
        }
        p.text(&line(row));
        p.close();
    }
    p.close();
}

/// A cell of a /proc table as JSON: a number or a string (see `scalar`),
/// except the 0/1 flag columns, which are JSON booleans as in `link show`
/// and `ip -j` (the text keeps the file's 0/1).
fn cell_value(col: &str, cell: &str) -> Value {
    match (col, cell) {
        ("up", "1") => Value::Bool(true),
        ("up", "0") => Value::Bool(false),
        _ => scalar(cell),
    }
}

/// One row of /proc/net/mpbal/uplinks, by column name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Uplink {
    pub dev: String,
    /// The uplink id connection marks hold.
    pub id: Option<u64>,
    /// The nexthop's gateway; "0.0.0.0" for a device route.
    pub gw: Option<String>,
    pub ifindex: Option<u64>,
    pub up: Option<bool>,
    pub capacity_bps: Option<u64>,
    pub capacity_src: Option<String>,
    pub rate_bps: Option<u64>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    pub sessions: Option<u64>,
    /// net.mpbal.conf.DEV.tier; None on a module without tiers.
    pub tier: Option<u64>,
    /// Admin state, net.mpbal.conf.DEV.down: true is down; None on a
    /// module without it.
    pub admin_down: Option<bool>,
}

impl Uplink {
    pub fn from_row(t: &Table, row: &[String]) -> Self {
        Uplink {
            dev: t.get(row, "dev").unwrap_or("?").to_string(),
            id: t.get_u64(row, "id"),
            gw: t.get(row, "gw").map(str::to_string),
            ifindex: t.get_u64(row, "ifindex"),
            up: t.get_u64(row, "up").map(|u| u != 0),
            capacity_bps: t.get_u64(row, "capacity_bps"),
            capacity_src: t.get(row, "capacity_src").map(str::to_string),
            rate_bps: t.get_u64(row, "rate_bps"),
            packets: t.get_u64(row, "packets"),
            bytes: t.get_u64(row, "bytes"),
            sessions: t.get_u64(row, "sessions"),
            tier: t.get_u64(row, "tier"),
            admin_down: t.get_u64(row, "down").map(|d| d != 0),
        }
    }

    /// Tier and admin state from the device's sysctls, where the uplinks
    /// table has no column for them.
    pub fn read_conf(&mut self, proc: &Proc) {
        let conf = proc.dev_conf(&self.dev);
        let read =
            |f: &str| -> Option<u64> { procfs::read(&conf.join(f)).ok()?.trim().parse().ok() };
        if self.tier.is_none() {
            self.tier = read("tier");
        }
        if self.admin_down.is_none() {
            self.admin_down = read("down").map(|d| d != 0);
        }
    }

    /// Spare capacity (never negative); None when the capacity is unknown (0).
    pub fn headroom_bps(&self) -> Option<u64> {
        match self.capacity_bps {
            Some(c) if c > 0 => Some(c.saturating_sub(self.rate_bps.unwrap_or(0))),
            _ => None,
        }
    }

    /// The JSON form: `link show -j`'s object, and the `module` part of
    /// the daemon's status file (daemon/metrics.rs), one definition.
    pub fn json(&self) -> UplinkJson {
        UplinkJson {
            dev: self.dev.clone(),
            id: self.id,
            gw: self
                .gw
                .as_ref()
                .map(|g| (g != "0.0.0.0").then(|| g.clone())),
            ifindex: self.ifindex,
            up: self.up,
            admin: self.admin_down.map(|d| if d { "down" } else { "up" }),
            tier: self.tier,
            capacity_bps: self.capacity_bps,
            capacity_src: self.capacity_src.clone(),
            rate_bps: self.rate_bps,
            headroom_bps: self.headroom_bps(),
            packets: self.packets,
            bytes: self.bytes,
            sessions: self.sessions,
        }
    }

    pub fn print(&self, p: &mut Printer) {
        if p.is_json() {
            p.value(serde_json::to_value(self.json()).unwrap_or(Value::Null));
            return;
        }
        p.text(&format!("{}:", self.dev));
        if let Some(id) = self.id {
            p.text(&format!(" id {id}"));
        }
        if let Some(gw) = self.gw.as_deref().filter(|g| *g != "0.0.0.0") {
            p.text(&format!(" via {gw}"));
        }
        if let Some(i) = self.ifindex {
            p.text(&format!(" ifindex {i}"));
        }
        if let Some(up) = self.up {
            p.text(if up { " up" } else { " down" });
        }
        if let Some(down) = self.admin_down {
            p.text(if down { " admin down" } else { " admin up" });
        }
        if let Some(t) = self.tier {
            p.text(&format!(" tier {t}"));
        }
        match self.capacity_bps {
            Some(0) => p.text(" capacity unknown"),
            Some(c) => p.text(&format!(" capacity {}", format_rate(c))),
            None => {}
        }
        if let Some(src) = &self.capacity_src {
            p.text(&format!(" ({src})"));
        }
        if let Some(r) = self.rate_bps {
            p.text(&format!(" rate {}", format_rate(r)));
        }
        match self.headroom_bps() {
            Some(h) => p.text(&format!(" headroom {}", format_rate(h))),
            None => p.text(" headroom unknown"),
        }
        for (name, v) in [
            ("packets", self.packets),
            ("bytes", self.bytes),
            ("sessions", self.sessions),
        ] {
            if let Some(v) = v {
                p.text(&format!(" {name} {v}"));
            }
        }
        p.text("\n");
    }
}

/// One uplink in JSON, typed: `mpbalctl -j link show` prints an array of
/// these, and the daemon's status file embeds them. Keys and types follow
/// `ip -j`: `up` is a bool, an unknown value is null. `id` is left out,
/// and `gw` too, when the module's table has no such column (an older
/// module); `gw` is null for a device route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UplinkJson {
    pub dev: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gw: Option<Option<String>>,
    pub ifindex: Option<u64>,
    pub up: Option<bool>,
    /// "up" or "down": net.mpbal.conf.DEV.down.
    pub admin: Option<&'static str>,
    pub tier: Option<u64>,
    pub capacity_bps: Option<u64>,
    pub capacity_src: Option<String>,
    pub rate_bps: Option<u64>,
    pub headroom_bps: Option<u64>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    pub sessions: Option<u64>,
}

pub fn link_show(proc: &Proc, p: &mut Printer, dev: Option<&str>) -> Result<(), Error> {
    if let Some(d) = dev {
        check_ifname(d)?;
    }
    proc.ensure_loaded()?;
    let table = procfs::parse_table(&procfs::read(&proc.uplinks())?);
    let uplinks: Vec<Uplink> = table
        .rows
        .iter()
        .map(|r| Uplink::from_row(&table, r))
        .filter(|u| dev.is_none_or(|d| u.dev == d))
        .map(|mut u| {
            u.read_conf(proc);
            u
        })
        .collect();
    // A device that exists but is not an uplink just shows nothing; one that
    // does not exist at all is an error, as with `ip link show dev`.
    if let Some(d) = dev {
        if uplinks.is_empty() && !proc.dev_conf(d).is_dir() {
            return Err(cannot_find_device(d));
        }
    }
    p.open_array(None);
    for u in &uplinks {
        u.print(p);
    }
    p.close();
    Ok(())
}

/// `link set`: every file it writes must exist before any is written.
pub fn link_set(proc: &Proc, set: &LinkSet) -> Result<(), Error> {
    let dev = &set.dev;
    check_ifname(dev)?;
    proc.ensure_loaded()?;
    let conf = proc.dev_conf(dev);
    if !conf.is_dir() {
        return Err(cannot_find_device(dev));
    }
    let mut writes = Vec::new();
    if let Some((bps, arg)) = &set.capacity {
        writes.push((
            "capacity",
            bps.to_string(),
            format!("capacity '{arg}' for {dev}"),
        ));
    }
    if let Some(t) = set.tier {
        writes.push(("tier", t.to_string(), format!("tier {t} for {dev}")));
    }
    if let Some(down) = set.down {
        let state = if down { "down" } else { "up" };
        writes.push((
            "down",
            u8::from(down).to_string(),
            format!("state {state} for {dev}"),
        ));
    }
    for (file, ..) in &writes {
        if !conf.join(file).exists() {
            return Err(Error::op(format!(
                "net.mpbal.conf.{}.{file} does not exist: the loaded mpbal module is older \
                 and has no {}",
                dev.replace('.', "/"),
                if *file == "tier" {
                    "tiers"
                } else {
                    "admin state"
                }
            )));
        }
    }
    for (file, value, what) in &writes {
        procfs::write(&conf.join(file), value, what)?;
    }
    Ok(())
}

/// Why a just-added equalize route is not balanced, if it is not: the
/// module is not loaded (the kernel keeps the flag, but nothing acts on
/// it), or its worker has not put the route in force within `timeout`.
pub fn steering_warning(proc: &Proc, timeout: Duration) -> Option<String> {
    if !proc.is_loaded() {
        return Some(format!(
            "mpbal is not loaded (no {}): the route is added, but nothing balances it",
            proc.sysctl_dir().display()
        ));
    }
    match wait_hooks_on(proc, timeout) {
        Some(false) => Some(
            "mpbal is not steering this netns yet (see 'mpbalctl stats': hooks, hash_policy)"
                .to_string(),
        ),
        _ => None,
    }
}

/// Waits (bounded) until the module's worker has put the netns's equalize
/// routes in force. Its hooks go on last, after the hash policy and
/// conntrack, so `hooks on` means packets sent from now on are balanced.
/// `None` when the module is not loaded: nothing to wait for.
fn wait_hooks_on(proc: &Proc, timeout: Duration) -> Option<bool> {
    let stats = proc.stats();
    if !stats.exists() {
        return None;
    }
    let deadline = Instant::now() + timeout;
    loop {
        let on = procfs::read(&stats).is_ok_and(|text| {
            procfs::parse_kv(&text)
                .iter()
                .any(|(k, v)| k == "hooks" && v == "on")
        });
        if on || Instant::now() >= deadline {
            return Some(on);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn cannot_find_device(dev: &str) -> Error {
    Error::op(format!("Cannot find device \"{dev}\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::parse_table;
    use serde_json::json;

    const UPLINKS: &str =
        "dev ifindex up packets bytes sessions rate_bps capacity_bps capacity_src\n\
                           eth1 3 1 1000 1500000 4 8123456 10000000 config\n\
                           eth2 4 0 0 0 0 0 0 none\n";

    fn uplinks() -> Vec<Uplink> {
        let t = parse_table(UPLINKS);
        t.rows.iter().map(|r| Uplink::from_row(&t, r)).collect()
    }

    #[test]
    fn strategy_names() {
        for s in strategies() {
            assert!(check_strategy(s).is_ok());
        }
        let e = check_strategy("fastest").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e
            .message()
            .contains("route, packet, session, bandwidth, headroom, flowlet"));
        assert!(check_strategy("Session").is_err());
    }

    #[test]
    fn ifnames() {
        assert!(check_ifname("eth1").is_ok());
        assert!(check_ifname("veth-a.100").is_ok());
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a:1",
            "a b",
            "abcdefghijklmnop",
        ] {
            assert_eq!(check_ifname(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    fn stats_fixture(hooks: Option<&str>) -> (tempfile::TempDir, Proc) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(h) = hooks {
            std::fs::create_dir_all(dir.path().join("sys/net/mpbal")).unwrap();
            let net = dir.path().join("net/mpbal");
            std::fs::create_dir_all(&net).unwrap();
            std::fs::write(net.join("stats"), format!("strategy packet\nhooks {h}\n")).unwrap();
        }
        let proc = Proc::new(dir.path());
        (dir, proc)
    }

    #[test]
    fn wait_for_hooks() {
        let t = Duration::from_millis(30);
        let (_d, proc) = stats_fixture(None);
        assert_eq!(wait_hooks_on(&proc, t), None);
        let (_d, proc) = stats_fixture(Some("on"));
        assert_eq!(wait_hooks_on(&proc, t), Some(true));
        let (_d, proc) = stats_fixture(Some("off"));
        let start = Instant::now();
        assert_eq!(wait_hooks_on(&proc, t), Some(false));
        assert!(start.elapsed() >= t);
    }

    #[test]
    fn warning_when_nothing_will_balance() {
        let t = Duration::from_millis(30);
        let (_d, proc) = stats_fixture(None);
        let w = steering_warning(&proc, t).unwrap();
        assert!(w.starts_with("mpbal is not loaded (no "), "{w}");
        assert!(
            w.ends_with("the route is added, but nothing balances it"),
            "{w}"
        );
        let (_d, proc) = stats_fixture(Some("off"));
        assert!(steering_warning(&proc, t).unwrap().contains("not steering"));
        let (_d, proc) = stats_fixture(Some("on"));
        assert_eq!(steering_warning(&proc, t), None);
    }

    #[test]
    fn headroom() {
        let u = uplinks();
        assert_eq!(u[0].headroom_bps(), Some(1_876_544));
        assert_eq!(u[1].headroom_bps(), None);
        let over = Uplink {
            capacity_bps: Some(10),
            rate_bps: Some(20),
            ..Default::default()
        };
        assert_eq!(over.headroom_bps(), Some(0));
    }

    #[test]
    fn link_text() {
        let mut p = Printer::new(false, false);
        for u in uplinks() {
            u.print(&mut p);
        }
        assert_eq!(
            p.finish(),
            "eth1: ifindex 3 up capacity 10Mbit (config) rate 8123Kbit headroom 1876Kbit packets 1000 bytes 1500000 sessions 4\n\
             eth2: ifindex 4 down capacity unknown (none) rate 0bit headroom unknown packets 0 bytes 0 sessions 0\n"
        );
    }

    #[test]
    fn link_json_shape() {
        let mut p = Printer::new(true, false);
        p.open_array(None);
        for u in uplinks() {
            u.print(&mut p);
        }
        p.close();
        let v: Value = serde_json::from_str(&p.finish()).unwrap();
        assert_eq!(
            v[0],
            json!({"dev":"eth1","ifindex":3,"up":true,"admin":null,"tier":null,
                   "capacity_bps":10000000,"capacity_src":"config","rate_bps":8123456,
                   "headroom_bps":1876544,"packets":1000,"bytes":1500000,"sessions":4})
        );
        assert_eq!(v[1]["headroom_bps"], Value::Null);
        assert_eq!(v[1]["up"], json!(false));
    }

    #[test]
    fn uplink_id_and_gateway() {
        let t = parse_table(
            "dev ifindex up packets bytes sessions rate_bps capacity_bps capacity_src id gw\n\
             eth1 70000 1 0 0 0 0 0 none 2 10.0.1.2\n\
             eth2 5 1 0 0 0 0 0 none 1 0.0.0.0\n",
        );
        let mut p = Printer::new(false, false);
        for r in &t.rows {
            Uplink::from_row(&t, r).print(&mut p);
        }
        let text = p.finish();
        assert!(
            text.starts_with("eth1: id 2 via 10.0.1.2 ifindex 70000 up"),
            "{text}"
        );
        assert!(text.contains("eth2: id 1 ifindex 5 up"), "{text}");
        let mut p = Printer::new(true, false);
        Uplink::from_row(&t, &t.rows[0]).print(&mut p);
        let v: Value = serde_json::from_str(&p.finish()).unwrap();
        assert_eq!(v["id"], json!(2));
        assert_eq!(v["gw"], json!("10.0.1.2"));
    }

    /// Tier and admin state: from the uplinks table if it has them, else
    /// from the device's sysctls, else nothing (a module without them).
    #[test]
    fn tier_and_admin_state() {
        let (dir, proc) = stats_fixture(None);
        let conf = dir.path().join("sys/net/mpbal/conf");
        for (dev, tier, down) in [("eth1", "2\n", "1\n"), ("eth2", "1\n", "0\n")] {
            std::fs::create_dir_all(conf.join(dev)).unwrap();
            std::fs::write(conf.join(dev).join("tier"), tier).unwrap();
            std::fs::write(conf.join(dev).join("down"), down).unwrap();
        }
        let mut u = uplinks();
        for x in &mut u {
            x.read_conf(&proc);
        }
        assert_eq!((u[0].tier, u[0].admin_down), (Some(2), Some(true)));
        assert_eq!((u[1].tier, u[1].admin_down), (Some(1), Some(false)));
        let mut p = Printer::new(false, false);
        u[0].print(&mut p);
        assert!(p
            .finish()
            .starts_with("eth1: ifindex 3 up admin down tier 2 capacity 10Mbit"));
        let mut p = Printer::new(true, false);
        u[1].print(&mut p);
        let v: Value = serde_json::from_str(&p.finish()).unwrap();
        assert_eq!((&v["tier"], &v["admin"]), (&json!(1), &json!("up")));
        // A column wins over the sysctl.
        let t = parse_table("dev tier down\neth1 7 0\n");
        let mut w = Uplink::from_row(&t, &t.rows[0]);
        w.read_conf(&proc);
        assert_eq!((w.tier, w.admin_down), (Some(7), Some(false)));
        // Neither: nothing in text, null in JSON.
        let (_d, old) = stats_fixture(None);
        let mut x = uplinks().remove(0);
        x.read_conf(&old);
        assert_eq!((x.tier, x.admin_down), (None, None));
    }

    #[test]
    fn missing_columns_are_null() {
        let t = parse_table("dev rate_bps\nx 5\n");
        let u = Uplink::from_row(&t, &t.rows[0]);
        let mut p = Printer::new(true, false);
        u.print(&mut p);
        let v: Value = serde_json::from_str(&p.finish()).unwrap();
        assert_eq!(v["rate_bps"], json!(5));
        assert_eq!(v["capacity_bps"], Value::Null);
        let mut p = Printer::new(false, false);
        u.print(&mut p);
        assert_eq!(p.finish(), "x: rate 5bit headroom unknown\n");
    }

    #[test]
    fn table_text_and_json() {
        let t = parse_table(UPLINKS);
        let mut p = Printer::new(false, false);
        print_table(&mut p, "uplinks", &t);
        let text = p.finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert!(lines[1].starts_with("dev  ifindex up packets"));
        assert!(lines[2].starts_with("eth1 3       1  1000"));
        let mut p = Printer::new(true, false);
        p.open_object(None);
        print_table(&mut p, "uplinks", &t);
        let v: Value = serde_json::from_str(&p.finish()).unwrap();
        assert_eq!(v["uplinks"][1]["capacity_src"], json!("none"));
        assert_eq!(v["uplinks"][1]["ifindex"], json!(4));
        assert_eq!(v["uplinks"][0]["up"], json!(true));
        assert_eq!(v["uplinks"][1]["up"], json!(false));
    }
}
