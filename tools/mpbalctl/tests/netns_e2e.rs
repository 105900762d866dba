// SPDX-License-Identifier: GPL-2.0

//! End-to-end check against the real kernel's rtnetlink in a scratch network
//! namespace. Needs root and iproute2, so it is ignored by default:
//!
//!     sudo -E cargo test --test netns_e2e -- --ignored
//!
//! The mpbal module does not need to be loaded: routes with RTM_F_EQUALIZE
//! are accepted and dumped back by a stock kernel (multipath ones, at least).

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// Deletes the namespace (and with it its veths and routes) on drop.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        // One per test: the tests run in parallel.
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let ns = Netns(format!("mpbalctl-e2e-{}-{n}", std::process::id()));
        ip(&["netns", "add", &ns.0]);
        for (a, b) in [("va", "vb"), ("vc", "vd")] {
            ip(&[
                "-n", &ns.0, "link", "add", a, "type", "veth", "peer", "name", b,
            ]);
        }
        for dev in ["lo", "va", "vb", "vc", "vd"] {
            ip(&["-n", &ns.0, "link", "set", dev, "up"]);
        }
        ip(&["-n", &ns.0, "addr", "add", "10.0.1.1/24", "dev", "va"]);
        ip(&["-n", &ns.0, "addr", "add", "10.0.2.1/24", "dev", "vc"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn mpbalctl(ns: &Netns, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpbalctl"))
        .args(["-n", &ns.0])
        .args(args)
        .output()
        .unwrap()
}

fn ok(ns: &Netns, args: &[&str]) -> String {
    let o = mpbalctl(ns, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(ns: &Netns, args: &[&str], code: i32) -> String {
    let o = mpbalctl(ns, args);
    assert_eq!(o.status.code(), Some(code), "{args:?}");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn by_dst<'a>(routes: &'a Value, dst: &str) -> Option<&'a Value> {
    routes.as_array()?.iter().find(|r| r["dst"] == dst)
}

const EQ_ROUTE: &[&str] = &[
    "route",
    "add",
    "equalize",
    "20.0.0.0/24",
    "nexthop",
    "via",
    "10.0.1.2",
    "dev",
    "va",
    "weight",
    "1",
    "nexthop",
    "via",
    "10.0.2.2",
    "dev",
    "vc",
    "weight",
    "2",
];

#[test]
#[ignore = "needs root: creates a network namespace"]
fn routes_in_a_real_netns() {
    let ns = Netns::new();

    // Added, but with no module nothing balances it: say so.
    let o = mpbalctl(&ns, EQ_ROUTE);
    assert_eq!(o.status.code(), Some(0));
    if !std::path::Path::new("/proc/sys/net/mpbal").exists() {
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            "mpbalctl: warning: mpbal is not loaded (no /proc/sys/net/mpbal): \
             the route is added, but nothing balances it\n"
        );
    }
    ok(
        &ns,
        &[
            "route",
            "add",
            "30.0.0.0/24",
            "nexthop",
            "via",
            "10.0.1.2",
            "dev",
            "va",
            "nexthop",
            "via",
            "10.0.2.2",
            "dev",
            "vc",
        ],
    );

    // The kernel has it, as ip sees it.
    let ipr = ip(&["-n", &ns.0, "-d", "route", "show"]);
    assert!(ipr.contains("20.0.0.0/24 proto boot"), "{ipr}");
    assert!(
        ipr.contains("nexthop via 10.0.1.2 dev va weight 1"),
        "{ipr}"
    );
    assert!(
        ipr.contains("nexthop via 10.0.2.2 dev vc weight 2"),
        "{ipr}"
    );

    // mpbalctl marks only the equalize one, and skips single-path routes.
    let text = ok(&ns, &["route", "show"]);
    assert!(
        text.contains(
            "20.0.0.0/24 equalize proto boot metric 0\n\
             \tnexthop via 10.0.1.2 dev va weight 1\n\
             \tnexthop via 10.0.2.2 dev vc weight 2\n"
        ),
        "{text}"
    );
    assert!(text.contains("30.0.0.0/24 proto boot metric 0\n"), "{text}");
    assert!(!text.contains("10.0.1.0/24"), "{text}");

    let json: Value = serde_json::from_str(&ok(&ns, &["-j", "route", "show"])).unwrap();
    let eq = by_dst(&json, "20.0.0.0/24").unwrap();
    assert_eq!(eq["equalize"], true);
    assert_eq!(eq["table"], "main");
    assert_eq!(eq["nexthops"][1]["weight"], 2);
    assert_eq!(eq["nexthops"][1]["dev"], "vc");
    assert_eq!(by_dst(&json, "30.0.0.0/24").unwrap()["equalize"], false);

    // Kernel errors come back as ip prints them.
    let err = fails(&ns, EQ_ROUTE, 1);
    assert!(err.contains("RTNETLINK answers: File exists"), "{err}");
    let err = fails(
        &ns,
        &[
            "route",
            "add",
            "40.0.0.0/24",
            "nexthop",
            "via",
            "10.0.1.2",
            "dev",
            "nosuch",
        ],
        1,
    );
    assert_eq!(err, "mpbalctl: Cannot find device \"nosuch\"\n");

    // replace turns the plain route into an equalize one.
    ok(
        &ns,
        &[
            "route",
            "replace",
            "equalize",
            "30.0.0.0/24",
            "nexthop",
            "via",
            "10.0.1.2",
            "dev",
            "va",
            "nexthop",
            "via",
            "10.0.2.2",
            "dev",
            "vc",
            "weight",
            "3",
        ],
    );
    let json: Value = serde_json::from_str(&ok(&ns, &["-j", "route", "show"])).unwrap();
    let r = by_dst(&json, "30.0.0.0/24").unwrap();
    assert_eq!(r["equalize"], true);
    assert_eq!(r["nexthops"][1]["weight"], 3);

    // Other tables, metrics, protocols.
    ok(
        &ns,
        &[
            "route",
            "add",
            "equalize",
            "20.0.0.0/24",
            "nexthop",
            "dev",
            "va",
            "nexthop",
            "dev",
            "vc",
            "table",
            "1000",
            "metric",
            "5",
            "proto",
            "static",
        ],
    );
    let t = ok(&ns, &["route", "show", "table", "1000"]);
    assert!(
        t.starts_with(
            "20.0.0.0/24 table 1000 equalize proto static metric 5\n\tnexthop dev va weight 1\n"
        ),
        "{t}"
    );
    let all: Value =
        serde_json::from_str(&ok(&ns, &["-j", "route", "show", "table", "all"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    // Tables are strings in JSON, as with ip -j: a name, else the number.
    let tables: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["table"])
        .collect();
    assert!(tables.contains(&&Value::from("1000")), "{tables:?}");
    assert!(tables.contains(&&Value::from("main")), "{tables:?}");
    assert!(!ok(&ns, &["route", "show"]).contains("table 1000"));

    // Single nexthop with equalize: refused, nothing added (the kernel would
    // keep it single-path and dump it without the flag).
    let single = [
        "route",
        "add",
        "equalize",
        "50.0.0.0/24",
        "nexthop",
        "via",
        "10.0.1.2",
        "dev",
        "va",
    ];
    let err = fails(&ns, &single, 2);
    assert!(err.contains("needs two or more nexthops"), "{err}");
    assert_eq!(ip(&["-n", &ns.0, "route", "show", "50.0.0.0/24"]), "");
    // Without equalize it is a plain route, added as asked and not listed.
    ok(&ns, &[&single[..2], &single[3..]].concat());
    assert!(ip(&["-n", &ns.0, "route", "show", "50.0.0.0/24"]).contains("via 10.0.1.2 dev va"));
    assert!(!ok(&ns, &["route", "show"]).contains("50.0.0.0/24"));

    // ip's abbreviations, and table names.
    ok(
        &ns,
        &[
            "r",
            "a",
            "60.0.0.0/24",
            "nexthop",
            "dev",
            "va",
            "nexthop",
            "dev",
            "vc",
            "table",
            "default",
        ],
    );
    let t = ok(&ns, &["ro", "sh", "table", "default"]);
    assert!(t.starts_with("60.0.0.0/24 table default proto boot"), "{t}");
    let all: Value = serde_json::from_str(&ok(&ns, &["-j", "r", "l", "table", "all"])).unwrap();
    assert_eq!(by_dst(&all, "60.0.0.0/24").unwrap()["table"], "default");
    ok(&ns, &["r", "d", "60.0.0.0/24", "table", "default"]);
    assert_eq!(ip(&["-n", &ns.0, "route", "show", "table", "default"]), "");

    // del removes exactly what it names.
    ok(&ns, &["route", "del", "20.0.0.0/24"]);
    let ipr = ip(&["-n", &ns.0, "route", "show", "20.0.0.0/24"]);
    assert_eq!(ipr, "", "{ipr}");
    assert!(ip(&["-n", &ns.0, "route", "show", "table", "1000"]).contains("20.0.0.0/24"));
    let err = fails(&ns, &["route", "del", "20.0.0.0/24"], 1);
    assert!(err.contains("RTNETLINK answers: No such process"), "{err}");
    ok(
        &ns,
        &[
            "route",
            "del",
            "20.0.0.0/24",
            "table",
            "1000",
            "metric",
            "5",
        ],
    );
    assert_eq!(ip(&["-n", &ns.0, "route", "show", "table", "1000"]), "");

    // The module is not loaded in this namespace (nor anywhere here).
    let err = fails(&ns, &["strategy"], 1);
    assert!(err.contains("module not loaded"), "{err}");
}

/// `apply` against the real kernel's routes, with the module's sysctls in
/// a fixture tree (MPBAL_PROC_ROOT): the guest test (mpbal_sysctl.sh,
/// test_mpbalctl_apply) does the same with the module loaded.
#[test]
#[ignore = "needs root: creates a network namespace"]
fn apply_in_a_real_netns() {
    let ns = Netns::new();
    let proc = tempfile::tempdir().unwrap();
    let sys = proc.path().join("sys/net/mpbal");
    for dev in ["va", "vc"] {
        std::fs::create_dir_all(sys.join("conf").join(dev)).unwrap();
        std::fs::write(sys.join("conf").join(dev).join("capacity"), "0\n").unwrap();
    }
    std::fs::write(sys.join("strategy"), "session\n").unwrap();
    std::fs::write(sys.join("available_strategies"), "route packet session\n").unwrap();
    ip(&[
        "-n", &ns.0, "route", "add", "default", "via", "10.0.1.2", "dev", "va",
    ]);
    ip(&[
        "-n",
        &ns.0,
        "route",
        "add",
        "10.9.0.0/16",
        "via",
        "10.0.2.2",
    ]);
    let file = proc.path().join("mpbal.toml");
    let good = "strategy = \"packet\"\n\
                [[route]]\n\
                to = \"default\"\n\
                nexthops = [{ via = \"10.0.1.2\", dev = \"va\" }, { via = \"10.0.2.2\", dev = \"vc\", weight = 2 }]\n\
                [[route]]\n\
                to = \"20.0.0.0/24\"\n\
                table = 100\n\
                nexthops = [{ via = \"10.0.1.2\" }, { via = \"10.0.2.2\" }]\n\
                [uplink.va]\n\
                capacity = \"10mbit\"\n";
    let apply = |text: &str| {
        std::fs::write(&file, text).unwrap();
        Command::new(env!("CARGO_BIN_EXE_mpbalctl"))
            .args(["-n", &ns.0, "apply", "-f"])
            .arg(&file)
            .env("MPBAL_PROC_ROOT", proc.path())
            .output()
            .unwrap()
    };
    let routes = || ip(&["-n", &ns.0, "route", "show", "table", "all"]);

    let o = apply(good);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "sysctl net.mpbal.strategy session -> packet\n\
         sysctl net.mpbal.conf.va.capacity 0 -> 10000000\n\
         route replace default table main equalize nexthop via 10.0.1.2 dev va weight 1 \
         nexthop via 10.0.2.2 dev vc weight 2 (was: default table main nexthop via 10.0.1.2 \
         dev va weight 1 metric 0 proto boot)\n\
         route add 20.0.0.0/24 table 100 equalize nexthop via 10.0.1.2 weight 1 \
         nexthop via 10.0.2.2 weight 1\n"
    );
    let json: Value =
        serde_json::from_str(&ok(&ns, &["-j", "route", "show", "table", "all"])).unwrap();
    let def = by_dst(&json, "default").unwrap();
    assert_eq!(def["equalize"], true);
    assert_eq!(def["nexthops"][1]["weight"], 2);
    assert_eq!(
        by_dst(&json, "20.0.0.0/24").unwrap()["nexthops"][1]["dev"],
        "vc"
    );
    assert!(routes().contains("10.9.0.0/16 via 10.0.2.2"));

    let before = routes();
    let o = apply(good);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "no changes\n");
    assert_eq!(routes(), before);

    // A device the namespace does not have: nothing changes.
    let o = apply(
        &good
            .replace("\"packet\"", "\"route\"")
            .replace("dev = \"vc\"", "dev = \"vx\""),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).ends_with(":4:73: Cannot find device \"vx\"\n"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(routes(), before);
    assert_eq!(
        std::fs::read_to_string(sys.join("strategy")).unwrap(),
        "packet\n"
    );

    // Another weight: the route is replaced, nothing else.
    let o = apply(&good.replace("weight = 2", "weight = 3"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("route replace default table main equalize"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 1, "{out}");
}
