// SPDX-License-Identifier: GPL-2.0

//! Runs the built binary against fixture /proc trees (MPBAL_PROC_ROOT).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use tempfile::TempDir;

const STATS: &str = "strategy session\nequalize_routes 1\nhash_policy managed\npackets_fwd 1234\n\
packets_local 56\nsteered 1290\nsessions_new 12\nfallback_dead 0\nfallback_oif_gone 0\n\
fallback_hash_policy 0\n";

const UPLINKS: &str = "dev ifindex up packets bytes sessions rate_bps capacity_bps capacity_src\n\
eth1 3 1 1000 1500000 4 8123456 10000000 config\n\
eth2 4 0 0 0 0 0 0 none\n";

/// A /proc tree as the loaded module would present it.
fn fixture() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let sys = r.join("sys/net/mpbal");
    for dev in ["lo", "eth1", "eth2", "eth3"] {
        fs::create_dir_all(sys.join("conf").join(dev)).unwrap();
        fs::write(sys.join("conf").join(dev).join("capacity"), "0\n").unwrap();
    }
    fs::write(sys.join("conf/eth1/capacity"), "10000000\n").unwrap();
    fs::write(sys.join("strategy"), "session\n").unwrap();
    fs::write(sys.join("route_idle_timeout"), "60\n").unwrap();
    fs::create_dir_all(r.join("net/mpbal")).unwrap();
    fs::write(r.join("net/mpbal/stats"), STATS).unwrap();
    fs::write(r.join("net/mpbal/uplinks"), UPLINKS).unwrap();
    dir
}

fn run(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpbalctl"))
        .args(args)
        .env("MPBAL_PROC_ROOT", root)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(root: &Path, args: &[&str]) -> String {
    let o = run(root, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

fn json_of(root: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(root, args)).unwrap()
}

fn fails(root: &Path, args: &[&str], code: i32) -> String {
    let o = run(root, args);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
    assert!(o.stdout.is_empty(), "{args:?}");
    let err = stderr(&o);
    assert!(err.starts_with("mpbalctl: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    if code == 2 {
        assert!(err.contains("\nUsage: "), "{args:?}: {err}");
    } else {
        assert!(!err.contains("Usage:"), "{args:?}: {err}");
    }
    err
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap()
}

#[test]
fn strategy_show() {
    let f = fixture();
    assert_eq!(ok(f.path(), &["strategy"]), "session\n");
    assert_eq!(ok(f.path(), &["strategy", "show"]), "session\n");
    assert_eq!(
        json_of(f.path(), &["-j", "strategy"]),
        json!({"strategy": "session"})
    );
}

#[test]
fn strategy_set() {
    let f = fixture();
    assert_eq!(ok(f.path(), &["strategy", "set", "packet"]), "");
    assert_eq!(read(f.path(), "sys/net/mpbal/strategy"), "packet\n");
    ok(f.path(), &["strategy", "set", "route"]);
    assert_eq!(read(f.path(), "sys/net/mpbal/strategy"), "route\n");
    assert_eq!(ok(f.path(), &["strategy"]), "route\n");
    // Commands that print nothing print nothing in JSON mode too.
    assert_eq!(ok(f.path(), &["-j", "strategy", "set", "bandwidth"]), "");
    assert_eq!(read(f.path(), "sys/net/mpbal/strategy"), "bandwidth\n");
}

#[test]
fn strategy_set_unknown_is_bad_argument() {
    let f = fixture();
    let err = fails(f.path(), &["strategy", "set", "fastest"], 2);
    assert!(err.contains("unknown strategy 'fastest'"), "{err}");
    assert!(err.contains("route, packet, session, bandwidth"), "{err}");
    assert_eq!(read(f.path(), "sys/net/mpbal/strategy"), "session\n");
    fails(f.path(), &["strategy", "set"], 2);
    fails(f.path(), &["strategy", "set", "route", "extra"], 2);
    fails(f.path(), &["strategy", "bogus"], 2);
}

#[test]
fn strategy_write_failure_is_operational() {
    let f = fixture();
    let p = f.path().join("sys/net/mpbal/strategy");
    fs::remove_file(&p).unwrap();
    fs::create_dir(&p).unwrap();
    let err = fails(f.path(), &["strategy", "set", "packet"], 1);
    assert!(err.contains("cannot write"), "{err}");
}

#[test]
fn stats_text() {
    let f = fixture();
    let out = ok(f.path(), &["stats"]);
    assert!(out.starts_with(STATS), "{out}");
    let table: Vec<&str> = out[STATS.len()..].lines().collect();
    assert_eq!(table[0], "");
    assert_eq!(
        table[1],
        "dev  ifindex up packets bytes   sessions rate_bps capacity_bps capacity_src"
    );
    assert_eq!(
        table[2],
        "eth1 3       1  1000    1500000 4        8123456  10000000     config"
    );
    assert_eq!(table.len(), 4);
}

#[test]
fn stats_json() {
    let f = fixture();
    let v = json_of(f.path(), &["-j", "stats"]);
    let counters = v["counters"].as_object().unwrap();
    assert_eq!(counters.len(), 10);
    assert_eq!(counters.keys().next().unwrap(), "strategy");
    assert_eq!(v["counters"]["strategy"], json!("session"));
    assert_eq!(v["counters"]["hash_policy"], json!("managed"));
    assert_eq!(v["counters"]["packets_fwd"], json!(1234));
    assert_eq!(v["uplinks"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["uplinks"][0],
        json!({"dev":"eth1","ifindex":3,"up":true,"packets":1000,"bytes":1500000,"sessions":4,
               "rate_bps":8123456,"capacity_bps":10000000,"capacity_src":"config"})
    );
    // A JSON bool, as in link show.
    assert_eq!(v["uplinks"][1]["up"], json!(false));
    let link = json_of(f.path(), &["-j", "link", "show"]);
    assert_eq!(link[0]["up"], v["uplinks"][0]["up"]);
}

#[test]
fn stats_generic_and_empty_table() {
    let f = fixture();
    fs::write(
        f.path().join("net/mpbal/stats"),
        "# comment\nnew_counter 5\nmode x y\n",
    )
    .unwrap();
    fs::write(f.path().join("net/mpbal/uplinks"), "dev newcol\n").unwrap();
    let v = json_of(f.path(), &["-json", "-pretty", "stats"]);
    assert_eq!(
        v,
        json!({"counters": {"new_counter": 5, "mode": "x y"}, "uplinks": []})
    );
    assert_eq!(
        ok(f.path(), &["stats"]),
        "new_counter 5\nmode x y\n\ndev newcol\n"
    );
}

#[test]
fn link_show() {
    let f = fixture();
    assert_eq!(
        ok(f.path(), &["link", "show"]),
        "eth1: ifindex 3 up capacity 10Mbit (config) rate 8123Kbit headroom 1876Kbit packets 1000 bytes 1500000 sessions 4\n\
         eth2: ifindex 4 down capacity unknown (none) rate 0bit headroom unknown packets 0 bytes 0 sessions 0\n"
    );
    assert_eq!(ok(f.path(), &["link"]), ok(f.path(), &["link", "show"]));
    assert!(ok(f.path(), &["link", "show", "dev", "eth2"]).starts_with("eth2: "));
    assert!(ok(f.path(), &["link", "show", "eth2"]).starts_with("eth2: "));
    // Exists but is no uplink: nothing to show.
    assert_eq!(ok(f.path(), &["link", "show", "dev", "eth3"]), "");
    assert_eq!(
        json_of(f.path(), &["-j", "link", "show", "dev", "eth3"]),
        json!([])
    );
    let err = fails(f.path(), &["link", "show", "dev", "eth9"], 1);
    assert!(err.contains("Cannot find device \"eth9\""), "{err}");
    fails(f.path(), &["link", "show", "dev"], 2);
    fails(f.path(), &["link", "show", "dev", "a", "b"], 2);
    fails(f.path(), &["link", "show", "dev", "../../x"], 2);
}

#[test]
fn link_show_json() {
    let f = fixture();
    let v = json_of(f.path(), &["-j", "link", "show"]);
    assert_eq!(
        v[0],
        json!({"dev":"eth1","ifindex":3,"up":true,"admin":null,"tier":null,"capacity_bps":10000000,
               "capacity_src":"config","rate_bps":8123456,"headroom_bps":1876544,"packets":1000,
               "bytes":1500000,"sessions":4})
    );
    assert_eq!(v[1]["headroom_bps"], Value::Null);
    assert_eq!(v[1]["up"], json!(false));
    let pretty = ok(f.path(), &["-j", "-p", "link", "show"]);
    assert!(pretty.contains("\n  {\n"), "{pretty}");
}

#[test]
fn link_set_capacity() {
    let f = fixture();
    let cap = "sys/net/mpbal/conf/eth2/capacity";
    for (arg, want) in [
        ("100mbit", "100000000\n"),
        ("1.5MBps", "12000000\n"),
        ("1Gibit", "1073741824\n"),
        ("2500", "2500\n"),
        ("none", "0\n"),
        ("0", "0\n"),
    ] {
        assert_eq!(ok(f.path(), &["link", "set", "eth2", "capacity", arg]), "");
        assert_eq!(read(f.path(), cap), want, "{arg}");
    }
}

#[test]
fn link_set_errors() {
    let f = fixture();
    let err = fails(f.path(), &["link", "set", "eth9", "capacity", "1mbit"], 1);
    assert!(err.contains("Cannot find device \"eth9\""), "{err}");
    for args in [
        &["link", "set", "eth1", "capacity", "10m"][..],
        &["link", "set", "eth1", "capacity", "fast"],
        &["link", "set", "eth1", "capacity", "99999999999tbit"],
        &["link", "set", "eth1", "capacity"],
        &["link", "set", "eth1", "speed", "1mbit"],
        &["link", "set", "eth1"],
        &["link", "set", "../eth1", "capacity", "1"],
        &["link", "set"],
    ] {
        fails(f.path(), args, 2);
    }
    assert_eq!(
        read(f.path(), "sys/net/mpbal/conf/eth1/capacity"),
        "10000000\n"
    );
}

/// A module with tiers and admin state: conf.DEV.tier and conf.DEV.down.
fn with_tiers(root: &Path) {
    for dev in ["lo", "eth1", "eth2", "eth3"] {
        let conf = root.join("sys/net/mpbal/conf").join(dev);
        fs::write(conf.join("tier"), "1\n").unwrap();
        fs::write(conf.join("down"), "0\n").unwrap();
    }
}

#[test]
fn link_set_tier_and_state() {
    let f = fixture();
    with_tiers(f.path());
    let conf = "sys/net/mpbal/conf/eth2";
    assert_eq!(ok(f.path(), &["link", "set", "eth2", "tier", "3"]), "");
    assert_eq!(read(f.path(), &format!("{conf}/tier")), "3\n");
    ok(f.path(), &["link", "set", "eth2", "state", "down"]);
    assert_eq!(read(f.path(), &format!("{conf}/down")), "1\n");
    let text = ok(f.path(), &["link", "show", "eth2"]);
    assert!(
        text.starts_with("eth2: ifindex 4 down admin down tier 3 capacity"),
        "{text}"
    );
    let v = json_of(f.path(), &["-j", "link", "show", "eth2"]);
    assert_eq!((&v[0]["tier"], &v[0]["admin"]), (&json!(3), &json!("down")));
    // Several at once, as ip link set takes them.
    ok(
        f.path(),
        &[
            "l", "s", "eth2", "state", "up", "tier", "1", "capacity", "2mbit",
        ],
    );
    assert_eq!(read(f.path(), &format!("{conf}/down")), "0\n");
    assert_eq!(read(f.path(), &format!("{conf}/tier")), "1\n");
    assert_eq!(read(f.path(), &format!("{conf}/capacity")), "2000000\n");
    for args in [
        &["link", "set", "eth2", "tier", "0"][..],
        &["link", "set", "eth2", "tier", "16"],
        &["link", "set", "eth2", "state", "dormant"],
        &["link", "set", "eth2", "tier", "2", "tier", "3"],
        &["link", "set", "eth2", "tier"],
    ] {
        fails(f.path(), args, 2);
    }
    assert_eq!(read(f.path(), &format!("{conf}/tier")), "1\n");
}

#[test]
fn link_set_tier_on_an_older_module() {
    let f = fixture();
    let err = fails(
        f.path(),
        &["link", "set", "eth2", "capacity", "1mbit", "tier", "2"],
        1,
    );
    assert_eq!(
        err,
        "mpbalctl: net.mpbal.conf.eth2.tier does not exist: the loaded mpbal module is older \
         and has no tiers\n"
    );
    // Nothing written: the capacity either.
    assert_eq!(read(f.path(), "sys/net/mpbal/conf/eth2/capacity"), "0\n");
    let err = fails(f.path(), &["link", "set", "eth2", "state", "down"], 1);
    assert!(err.contains("has no admin state"), "{err}");
    // link show leaves them out (null in JSON).
    let text = ok(f.path(), &["link", "show", "eth2"]);
    assert!(!text.contains("tier") && !text.contains("admin"), "{text}");
}

/// The configuration of the apply tests: only what this namespace has
/// (lo), so that the host's routes are never touched.
const APPLY_OK: &str = "strategy = \"packet\"\n\
[sysctl]\n\
route_idle_timeout = 30\n\
[uplink.lo]\n\
capacity = \"10mbit\"\n\
tier = 2\n\
[uplink.lo.probe]\n\
targets = [\"127.0.0.1\"]\n";

fn conf_file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The fixture's sysctls, to see that nothing changed.
fn sysctls(root: &Path) -> Vec<String> {
    [
        "strategy",
        "route_idle_timeout",
        "conf/lo/capacity",
        "conf/lo/tier",
    ]
    .iter()
    .map(|k| read(root, &format!("sys/net/mpbal/{k}")))
    .collect()
}

#[test]
fn apply_twice_changes_once() {
    let f = fixture();
    with_tiers(f.path());
    let file = conf_file(f.path(), "mpbal.toml", APPLY_OK);
    let out = ok(f.path(), &["apply", "-f", &file]);
    assert_eq!(
        out,
        "sysctl net.mpbal.strategy session -> packet\n\
         sysctl net.mpbal.route_idle_timeout 60 -> 30\n\
         sysctl net.mpbal.conf.lo.capacity 0 -> 10000000\n\
         sysctl net.mpbal.conf.lo.tier 1 -> 2\n"
    );
    assert_eq!(sysctls(f.path()), ["packet\n", "30\n", "10000000\n", "2\n"]);
    assert_eq!(ok(f.path(), &["apply", "-f", &file]), "no changes\n");
    assert_eq!(ok(f.path(), &["apply", "--file", &file]), "no changes\n");
    // Something changed behind its back: only that is put back.
    fs::write(f.path().join("sys/net/mpbal/conf/lo/tier"), "5\n").unwrap();
    assert_eq!(
        ok(f.path(), &["apply", "-f", &file]),
        "sysctl net.mpbal.conf.lo.tier 5 -> 2\n"
    );
}

#[test]
fn apply_check() {
    let f = fixture();
    let file = conf_file(f.path(), "good.toml", APPLY_OK);
    // No module, no devices needed: only the file is read.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        ok(empty.path(), &["apply", "--check", "-f", &file]),
        format!("{file}: ok\n")
    );
    let bad = conf_file(
        f.path(),
        "bad.toml",
        &APPLY_OK.replace("tier = 2", "tier = 16"),
    );
    let o = run(f.path(), &["apply", "--check", "-f", &bad]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(2), String::new()));
    // One line, no usage: the file is wrong, not the command line.
    assert_eq!(
        stderr(&o),
        format!("mpbalctl: {bad}:6:8: tier 16 is out of range (1..15, 1 preferred)\n")
    );
    let err = fails(
        f.path(),
        &["apply", "--check", "-f", "/nonexistent/mpbal.toml"],
        1,
    );
    assert!(err.contains("cannot read /nonexistent/mpbal.toml"), "{err}");
}

#[test]
fn apply_a_broken_file_changes_nothing() {
    let f = fixture();
    with_tiers(f.path());
    let before = sysctls(f.path());
    for (text, want) in [
        // The last line is wrong: the lines before it must not be applied.
        (
            format!("{APPLY_OK}reliability = 2\n"),
            ":9:15: reliability 2 is more than the 1 target(s)",
        ),
        (
            APPLY_OK.replace("tier = 2", "tier = 0"),
            ":6:8: tier 0 is out of range",
        ),
        (
            format!("{APPLY_OK}colour = \"blue\"\n"),
            ":9:1: unknown field `colour`",
        ),
        (
            APPLY_OK.replace("\"packet\"", "\"fastest\""),
            ":1:12: unknown strategy 'fastest'",
        ),
        (
            format!("{APPLY_OK}[uplink.nosuchdev0]\ntier = 3\n"),
            ":9:9: Cannot find device \"nosuchdev0\"",
        ),
        (
            APPLY_OK.replace("route_idle", "[oops"),
            ":3:14: unclosed table, expected `]`",
        ),
    ] {
        let file = conf_file(f.path(), "broken.toml", &text);
        let o = run(f.path(), &["apply", "-f", &file]);
        let err = stderr(&o);
        assert!(matches!(o.status.code(), Some(1 | 2)), "{err}");
        assert!(
            err.starts_with(&format!("mpbalctl: {file}{want}")),
            "{err}\nwant: {want}"
        );
        assert!(!err.contains("Usage:"), "{err}");
        assert_eq!(stdout(&o), "");
        assert_eq!(sysctls(f.path()), before, "{text}");
    }
}

#[test]
fn apply_tier_on_an_older_module() {
    let f = fixture();
    let file = conf_file(f.path(), "t.toml", APPLY_OK);
    let err = fails(f.path(), &["apply", "-f", &file], 1);
    assert_eq!(
        err,
        format!(
            "mpbalctl: {file}:6:8: net.mpbal.conf.lo.tier does not exist (the loaded mpbal \
             module is older and has no tiers)\n"
        )
    );
    assert_eq!(read(f.path(), "sys/net/mpbal/strategy"), "session\n");
    // Tier 1, what every uplink has there, is no error.
    let file = conf_file(
        f.path(),
        "t1.toml",
        &APPLY_OK.replace("tier = 2", "tier = 1"),
    );
    let out = ok(f.path(), &["apply", "-f", &file]);
    assert!(!out.contains("tier"), "{out}");
    assert!(out.contains("conf.lo.capacity 0 -> 10000000"), "{out}");
}

#[test]
fn module_not_loaded() {
    let empty = tempfile::tempdir().unwrap();
    let want = format!(
        "mpbalctl: mpbal: module not loaded (no {}/sys/net/mpbal)\n",
        empty.path().display()
    );
    for args in [
        &["strategy"][..],
        &["strategy", "set", "packet"],
        &["stats"],
        &["-j", "stats"],
        &["link", "show"],
        &["link", "set", "eth1", "capacity", "1mbit"],
        &["apply", "-f", "/dev/null"],
    ] {
        assert_eq!(fails(empty.path(), args, 1), want, "{args:?}");
    }
}

#[test]
fn bad_arguments() {
    let f = fixture();
    for args in [
        &[][..],
        &["bogus"],
        &["-x", "stats"],
        &["stats", "extra"],
        &["-n"],
        &["route", "add"],
        &["route", "add", "20.0.0.0/24"],
        &[
            "route",
            "add",
            "equalize",
            "20.0.0.0/24",
            "nexthop",
            "via",
            "10.0.0.1",
            "dev",
            "x",
            "weight",
            "0",
        ],
        &["route", "add", "20.0.0.0/33", "nexthop", "dev", "x"],
        &["route", "frobnicate"],
        &["route", "show", "table"],
        &["route", "show", "table", "nosuch"],
        &["route", "del"],
        &["s"],
        &["st"],
        &["route", "get"],
        &["-jx", "stats"],
        &["-jn"],
        &["-nj"],
        &["help", "bogus"],
        &["help", "route", "add", "x"],
        &["stats", "show", "x"],
    ] {
        fails(f.path(), args, 2);
    }
}

/// Commands that must fail while parsing, before anything is touched. The
/// namespace does not exist, so a regression ends at setns (exit 1) rather
/// than changing the host's routes.
#[test]
fn bad_routes_change_nothing() {
    let f = fixture();
    let ns = ["-n", "mpbalctl-no-such-ns"];
    let nh = ["nexthop", "dev", "lo"];
    let eq = [&ns[..], &["route", "add", "equalize", "20.0.0.0/24"], &nh].concat();

    // One nexthop: no equalize route the kernel could report or mpbal balance.
    for verb in ["add", "replace", "a", "r"] {
        let mut args = eq.clone();
        args[3] = verb;
        let err = fails(f.path(), &args, 2);
        assert!(
            err.starts_with("mpbalctl: \"equalize\" needs two or more nexthops"),
            "{err}"
        );
        assert!(err.contains("\nUsage: mpbalctl route"), "{err}");
    }

    let two = [&eq[..], &nh].concat();
    let err = fails(f.path(), &[&two[..], &["table", "nosuch"]].concat(), 2);
    assert!(
        err.starts_with(
            "mpbalctl: invalid table \"nosuch\": not a number, nor a name in /etc/iproute2/rt_tables\n"
        ),
        "{err}"
    );
    let err = fails(f.path(), &[&two[..], &["proto", "nosuch"]].concat(), 2);
    assert!(err.contains("invalid protocol \"nosuch\""), "{err}");
    let err = fails(f.path(), &[&two[..], &["table", "unspec"]].concat(), 2);
    assert!(err.contains("table 0 (unspec)"), "{err}");
    // Well-formed: it gets as far as the namespace.
    let err = fails(
        f.path(),
        &[&two[..], &["table", "main", "proto", "static"]].concat(),
        1,
    );
    assert!(err.contains("Cannot open network namespace"), "{err}");
}

#[test]
fn arguments_are_checked_before_entering_netns() {
    let f = fixture();
    fails(
        f.path(),
        &["-n", "mpbalctl-no-such-ns", "strategy", "set", "nope"],
        2,
    );
    let err = fails(f.path(), &["-n", "mpbalctl-no-such-ns", "strategy"], 1);
    assert!(
        err.contains("Cannot open network namespace \"mpbalctl-no-such-ns\""),
        "{err}"
    );
    fails(f.path(), &["-netns", "mpbalctl-no-such-ns", "stats"], 1);
}

#[test]
fn abbreviations() {
    let f = fixture();
    for args in [
        &["str"][..],
        &["strat", "sh"],
        &["strategy", "list"],
        &["str", "ls"],
    ] {
        assert_eq!(ok(f.path(), args), "session\n", "{args:?}");
    }
    ok(f.path(), &["str", "s", "packet"]);
    assert_eq!(read(f.path(), "sys/net/mpbal/strategy"), "packet\n");
    let stats = ok(f.path(), &["stats"]);
    assert_eq!(ok(f.path(), &["sta"]), stats);
    assert_eq!(ok(f.path(), &["stats", "show"]), stats);
    assert_eq!(ok(f.path(), &["stat", "s"]), stats);
    let link = ok(f.path(), &["link", "show"]);
    for args in [&["l"][..], &["li", "sh"], &["l", "ls"], &["link", "l"]] {
        assert_eq!(ok(f.path(), args), link, "{args:?}");
    }
    ok(f.path(), &["l", "s", "eth2", "capacity", "5mbit"]);
    assert_eq!(
        read(f.path(), "sys/net/mpbal/conf/eth2/capacity"),
        "5000000\n"
    );

    let err = fails(f.path(), &["st"], 2);
    assert!(
        err.starts_with("mpbalctl: \"st\" is ambiguous (strategy, stats), try \"mpbalctl help\"\n"),
        "{err}"
    );
    let err = fails(f.path(), &["link", "frob"], 2);
    assert!(
        err.starts_with("mpbalctl: Command \"frob\" is unknown, try \"mpbalctl link help\"\n"),
        "{err}"
    );
}

#[test]
fn grouped_short_options() {
    let f = fixture();
    let plain = ok(f.path(), &["-j", "link", "show"]);
    assert_eq!(ok(f.path(), &["-json", "link"]), plain);
    assert_eq!(
        ok(f.path(), &["-jp", "link"]),
        ok(f.path(), &["-j", "-p", "link"])
    );
    assert_ne!(ok(f.path(), &["-jp", "link"]), plain);
    // -n takes the next argument wherever it is in the group.
    for args in [
        &["-jn", "mpbalctl-no-such-ns", "link"][..],
        &["-nj", "mpbalctl-no-such-ns", "link"],
        &["-j", "-n", "mpbalctl-no-such-ns", "link"],
        &["-jpn", "mpbalctl-no-such-ns", "link"],
        &["-npj", "mpbalctl-no-such-ns", "link"],
    ] {
        let err = fails(f.path(), args, 1);
        assert!(
            err.contains("Cannot open network namespace \"mpbalctl-no-such-ns\""),
            "{args:?}: {err}"
        );
    }
}

/// Help: stdout, exit 0, nothing on stderr, and the grammar of what was named.
fn help_of(root: &Path, args: &[&str]) -> String {
    let o = run(root, args);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
    assert!(o.stderr.is_empty(), "{args:?}: {}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("\n\nUsage: mpbalctl "), "{args:?}: {out}");
    out
}

#[test]
fn help_and_version_succeed() {
    let f = fixture();
    let all = help_of(f.path(), &["--help"]);
    assert!(all.contains("route add [equalize]"), "{all}");
    assert!(all.contains("  objects         r[oute] l[ink]"), "{all}");
    for args in [&["-h"][..], &["-help"], &["help"], &["h"], &["-jh"]] {
        assert_eq!(help_of(f.path(), args), all, "{args:?}");
    }
    assert!(ok(f.path(), &["-V"]).starts_with("mpbalctl "));
    assert!(ok(f.path(), &["--version"]).starts_with("mpbalctl "));

    let route = help_of(f.path(), &["route", "help"]);
    assert!(route.contains("mpbalctl route del PREFIX"), "{route}");
    assert!(!route.contains("strategy"), "{route}");
    for args in [
        &["r", "h"][..],
        &["help", "route"],
        &["route", "-h"],
        &["route", "--help"],
        &["-h", "route"],
        &["route", "frobnicate", "-h"],
    ] {
        assert_eq!(help_of(f.path(), args), route, "{args:?}");
    }

    let add = help_of(f.path(), &["route", "add", "help"]);
    assert!(
        add.contains("\nUsage: mpbalctl route add [equalize] PREFIX NH..."),
        "{add}"
    );
    assert!(add.contains("\n  NH       := nexthop"), "{add}");
    assert!(!add.contains("route del"), "{add}");
    for args in [
        &["route", "add", "-h"][..],
        &["r", "a", "--help"],
        &["help", "route", "add"],
        &["route", "help", "add"],
        &["route", "add", "equalize", "1.0.0.0/8", "-h"],
        &["-h", "route", "add"],
        &["-jh", "r", "a", "1.0.0.0/8"],
    ] {
        assert_eq!(help_of(f.path(), args), add, "{args:?}");
    }
    assert!(help_of(f.path(), &["strategy", "set", "-h"]).contains("STRATEGY := route | packet"));
    assert!(help_of(f.path(), &["link", "set", "help"]).contains("RATE     := NUMBER"));
    assert!(help_of(f.path(), &["stats", "help"]).contains("Usage: mpbalctl stats [show]"));
    let apply = help_of(f.path(), &["apply", "-h"]);
    assert!(
        apply.contains("\nUsage: mpbalctl apply [-f FILE] [--check]\n"),
        "{apply}"
    );
    assert!(apply.contains("default /etc/mpbal/mpbal.toml"), "{apply}");
    for args in [
        &["help", "apply"][..],
        &["-h", "apply"],
        &["apply", "--help"],
    ] {
        assert_eq!(help_of(f.path(), args), apply, "{args:?}");
    }
    let set = help_of(f.path(), &["link", "set", "help"]);
    assert!(set.contains("TIER     := 1..15"), "{set}");
    // Help never runs the command.
    for args in [
        &["strategy", "set", "packet", "-h"][..],
        &["-h", "strategy", "set", "packet"],
        &["link", "set", "eth1", "capacity", "1", "--help"],
        &["apply", "-f", "/dev/null", "--help"],
    ] {
        help_of(f.path(), args);
    }
    assert_eq!(read(f.path(), "sys/net/mpbal/strategy"), "session\n");
    assert_eq!(
        read(f.path(), "sys/net/mpbal/conf/eth1/capacity"),
        "10000000\n"
    );
}

#[test]
fn usage_errors_show_the_grammar_of_what_was_named() {
    let f = fixture();
    let err = fails(f.path(), &["link", "set", "eth1", "mtu", "1"], 2);
    assert!(
        err.contains(
            "\nUsage: mpbalctl link set DEV { capacity RATE | tier TIER | state { up | down } }...\n  RATE "
        ),
        "{err}"
    );
    let err = fails(f.path(), &["strategy", "set"], 2);
    assert!(
        err.contains("\nUsage: mpbalctl strategy set STRATEGY\n"),
        "{err}"
    );
    let err = fails(f.path(), &["bogus"], 2);
    assert!(err.contains("\nUsage: mpbalctl [OPTIONS] OBJECT"), "{err}");
    let err = fails(f.path(), &[], 2);
    assert!(
        err.starts_with("mpbalctl: missing OBJECT\nUsage: "),
        "{err}"
    );
}

#[test]
fn garbage_never_panics() {
    let f = fixture();
    let words = [
        "route",
        "add",
        "del",
        "show",
        "replace",
        "equalize",
        "nexthop",
        "via",
        "dev",
        "weight",
        "table",
        "metric",
        "proto",
        "all",
        "default",
        "1.2.3.0/24",
        "300.1.1.1",
        "",
        "-",
        "--",
        "-j",
        "strategy",
        "set",
        "link",
        "capacity",
        "stats",
        "\u{fffd}",
        "99999999999999999999",
        "lo",
        "-n",
    ];
    // A deterministic spread of word sequences.
    for i in 0..400usize {
        let len = i % 7;
        let args: Vec<&str> = (0..len)
            .map(|k| words[(i * 31 + k * 17) % words.len()])
            .collect();
        // Never touch the host's routes from this test (verbs abbreviate).
        let changes = |a: &&str| {
            !a.is_empty()
                && ["add", "delete", "replace"]
                    .iter()
                    .any(|v| v.starts_with(*a))
        };
        if args.contains(&"route") && args.iter().any(changes) {
            continue;
        }
        let o = run(f.path(), &args);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0..=2)),
            "{args:?}: {code:?} {}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}
