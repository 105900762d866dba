// SPDX-License-Identifier: GPL-2.0

//! `mpbalctl apply`: makes the system what the configuration file says.
//!
//! In four steps, so that nothing is changed unless all of it can be:
//! the file is read and checked (config.rs); the system is checked against
//! it (the module is loaded, the devices and sysctls exist); the current
//! state is read; `diff`, a pure function, lists the changes. Only then are
//! they made, sysctls first (an uplink's capacity and tier are in place
//! before a route makes it an uplink), each printed once it is done.
//! Routes the file does not name are left alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use netlink_packet_route::route::RouteType;

use crate::config::{self, Config, Pos, DEFAULT_TIER};
use crate::error::Error;
use crate::procfs::{self, Proc};
use crate::route;
use crate::routeargs::{NextHopSpec, Prefix, RouteSpec, Verb};
use crate::rtnames::RtNames;
use crate::rtnl::{Links, Rtnl};

/// Reads and checks FILE; no system access.
pub fn load(path: &Path, names: &RtNames) -> Result<Config, Error> {
    let text = procfs::read(path)?;
    config::parse(&text, names).map_err(|e| Error::config(e.render(&path.display().to_string())))
}

/// A route of the kernel, with its devices by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub dst: Prefix,
    pub table: u32,
    pub metric: u32,
    pub protocol: u8,
    /// Unicast, and equalize.
    pub unicast: bool,
    pub equalize: bool,
    pub nexthops: Vec<NextHopSpec>,
}

/// What `diff` compares the file with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Sysctl values (trimmed) by path under net/mpbal ("strategy",
    /// "conf/wan1/capacity"); a file that does not exist is not here.
    pub sysctls: BTreeMap<String, String>,
    /// The kernel's routes (only those at a table, prefix and metric of
    /// the file matter).
    pub routes: Vec<KernelRoute>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Sysctl {
        key: String,
        from: String,
        to: String,
    },
    Route {
        verb: Verb,
        spec: RouteSpec,
        /// The route it replaces, as text.
        was: Option<String>,
    },
}

/// The sysctl `key` ("conf/eth0.100/tier") as sysctl(8) names it
/// ("net.mpbal.conf.eth0/100.tier").
pub fn sysctl_name(key: &str) -> String {
    let parts: Vec<String> = key.split('/').map(|p| p.replace('.', "/")).collect();
    format!("net.mpbal.{}", parts.join("."))
}

fn conf_key(dev: &str, what: &str) -> String {
    format!("conf/{dev}/{what}")
}

/// Route text in `route add` grammar: `default table main equalize
/// nexthop via GW dev DEV weight N ... [metric N] [proto P]`.
fn route_text(spec: &RouteSpec, names: &RtNames) -> String {
    let mut s = format!(
        "{} table {}{}",
        spec.dst,
        names.table_name(spec.table),
        if spec.equalize { " equalize" } else { "" }
    );
    for nh in &spec.nexthops {
        s.push_str(" nexthop");
        if let Some(via) = nh.via {
            let _ = write!(s, " via {via}");
        }
        if let Some(dev) = &nh.dev {
            let _ = write!(s, " dev {dev}");
        }
        let _ = write!(s, " weight {}", nh.weight);
    }
    if let Some(m) = spec.metric {
        let _ = write!(s, " metric {m}");
    }
    if let Some(p) = spec.proto {
        let _ = write!(s, " proto {}", names.proto_name(p));
    }
    s
}

impl KernelRoute {
    fn text(&self, names: &RtNames) -> String {
        let mut s = route_text(
            &RouteSpec {
                dst: self.dst,
                equalize: self.equalize,
                nexthops: self.nexthops.clone(),
                table: self.table,
                metric: Some(self.metric),
                proto: Some(self.protocol),
            },
            names,
        );
        if !self.unicast {
            s.push_str(" (not unicast)");
        }
        s
    }

    /// The file's route is there as it says: equalize, the same nexthops
    /// in the same order (a nexthop without `dev` takes the kernel's), and
    /// the same protocol if the file names one.
    pub fn matches(&self, spec: &RouteSpec) -> bool {
        let hop_eq = |want: &NextHopSpec, have: &NextHopSpec| {
            want.via == have.via
                && want.weight == have.weight
                && (want.dev.is_none() || want.dev == have.dev)
        };
        self.unicast
            && self.equalize == spec.equalize
            && spec.proto.is_none_or(|p| p == self.protocol)
            && self.nexthops.len() == spec.nexthops.len()
            && spec
                .nexthops
                .iter()
                .zip(&self.nexthops)
                .all(|(w, h)| hop_eq(w, h))
    }
}

impl Change {
    pub fn text(&self, names: &RtNames) -> String {
        match self {
            Change::Sysctl { key, from, to } => {
                format!("sysctl {} {from} -> {to}", sysctl_name(key))
            }
            Change::Route { verb, spec, was } => {
                let verb = if *verb == Verb::Add { "add" } else { "replace" };
                let mut s = format!("route {verb} {}", route_text(spec, names));
                if let Some(w) = was {
                    let _ = write!(s, " (was: {w})");
                }
                s
            }
        }
    }
}

/// A sysctl the file sets: its path under net/mpbal, the value, where the
/// file says it, and whether it is a tier (which an older module lacks).
struct Wanted {
    key: String,
    value: String,
    pos: Pos,
    tier: bool,
}

/// The sysctls the file sets, in the order `diff` changes them: the
/// strategy, the others, then per device.
fn wanted_sysctls(cfg: &Config) -> Vec<Wanted> {
    let mut out = Vec::new();
    let mut want = |key: String, value: String, pos: Pos, tier: bool| {
        out.push(Wanted {
            key,
            value,
            pos,
            tier,
        })
    };
    if let Some(s) = &cfg.strategy {
        want("strategy".into(), s.value.clone(), s.pos, false);
    }
    for (name, v) in &cfg.sysctls {
        want(name.value.clone(), v.to_string(), name.pos, false);
    }
    for u in &cfg.uplinks {
        let dev = &u.dev.value;
        if let Some(c) = u.capacity {
            want(conf_key(dev, "capacity"), c.to_string(), u.dev.pos, false);
        }
        if let Some(t) = &u.tier {
            want(conf_key(dev, "tier"), t.value.to_string(), t.pos, true);
        }
        if let Some(id) = u.uplink_id {
            want(conf_key(dev, "uplink_id"), id.to_string(), u.dev.pos, false);
        }
    }
    out
}

/// The sysctl paths `diff` needs to read.
pub fn sysctl_keys(cfg: &Config) -> Vec<String> {
    wanted_sysctls(cfg).into_iter().map(|w| w.key).collect()
}

/// The changes that make `cur` what `cfg` says; none when it already is.
/// `file` names the configuration in errors; `names` are for the text of
/// a replaced route.
pub fn diff(cfg: &Config, cur: &State, names: &RtNames, file: &str) -> Result<Vec<Change>, Error> {
    let mut changes = Vec::new();
    for Wanted {
        key,
        value: to,
        pos,
        tier,
    } in wanted_sysctls(cfg)
    {
        let Some(from) = cur.sysctls.get(&key) else {
            // An older module has no tiers: fine while the file asks for
            // the tier every uplink has anyway.
            if tier && to == DEFAULT_TIER.to_string() {
                continue;
            }
            let why = if tier {
                " (the loaded mpbal module is older and has no tiers)"
            } else {
                ""
            };
            return Err(Error::op(format!(
                "{file}:{pos}: {} does not exist{why}",
                sysctl_name(&key)
            )));
        };
        if *from != to {
            changes.push(Change::Sysctl {
                key,
                from: from.clone(),
                to,
            });
        }
    }
    for r in &cfg.routes {
        let spec = &r.spec;
        let metric = spec.metric.unwrap_or(0);
        let have = cur
            .routes
            .iter()
            .find(|k| k.dst == spec.dst && k.table == spec.table && k.metric == metric);
        match have {
            Some(k) if k.matches(spec) => {}
            Some(k) => changes.push(Change::Route {
                verb: Verb::Replace,
                spec: spec.clone(),
                was: Some(k.text(names)),
            }),
            None => changes.push(Change::Route {
                verb: Verb::Add,
                spec: spec.clone(),
                was: None,
            }),
        }
    }
    Ok(changes)
}

/// Before anything changes: the module is loaded, and every device,
/// strategy and sysctl the file names is there.
pub fn check_system(cfg: &Config, file: &str, proc: &Proc, links: &Links) -> Result<(), Error> {
    proc.ensure_loaded()?;
    let at = |pos: Pos, msg: String| Error::op(format!("{file}:{pos}: {msg}"));
    if let Some(s) = &cfg.strategy {
        if let Ok(avail) = procfs::read(&proc.sysctl("available_strategies")) {
            if !avail.split_whitespace().any(|a| a == s.value) {
                return Err(at(
                    s.pos,
                    format!(
                        "the loaded mpbal module has no strategy '{}' (it has: {})",
                        s.value,
                        avail.trim()
                    ),
                ));
            }
        }
    }
    for (name, _) in &cfg.sysctls {
        if !proc.sysctl(&name.value).exists() {
            return Err(at(
                name.pos,
                format!("{} does not exist", sysctl_name(&name.value)),
            ));
        }
    }
    let no_dev = |pos, dev: &str| at(pos, crate::mpbal::cannot_find_device(dev).to_string());
    for u in &cfg.uplinks {
        let dev = &u.dev.value;
        if links.index(dev).is_err() || !proc.dev_conf(dev).is_dir() {
            return Err(no_dev(u.dev.pos, dev));
        }
    }
    for r in &cfg.routes {
        for (nh, pos) in r.spec.nexthops.iter().zip(&r.dev_pos) {
            if let Some(dev) = &nh.dev {
                if links.index(dev).is_err() {
                    return Err(no_dev(*pos, dev));
                }
            }
        }
    }
    Ok(())
}

/// The current state of what `cfg` names.
pub fn read_state(
    cfg: &Config,
    proc: &Proc,
    rtnl: &mut Rtnl,
    links: &Links,
) -> Result<State, Error> {
    let mut sysctls = BTreeMap::new();
    for key in sysctl_keys(cfg) {
        let path = proc.sysctl(&key);
        if path.exists() {
            sysctls.insert(key, procfs::read(&path)?.trim().to_string());
        }
    }
    let routes = route::dump(rtnl)?
        .iter()
        .filter_map(route::any_from_message)
        .map(|(r, kind)| KernelRoute {
            dst: r.dst,
            table: r.table,
            metric: r.metric,
            protocol: r.protocol,
            unicast: kind == RouteType::Unicast,
            equalize: r.equalize,
            nexthops: r
                .nexthops
                .iter()
                .map(|nh| NextHopSpec {
                    via: nh.gateway,
                    dev: (nh.ifindex != 0).then(|| links.name(nh.ifindex)),
                    weight: nh.weight,
                })
                .collect(),
        })
        .collect();
    Ok(State { sysctls, routes })
}

/// Makes the changes in order; `done` is told of each once it is made.
/// On a failure the error says which change failed and how many were made.
pub fn execute(
    changes: &[Change],
    proc: &Proc,
    rtnl: &mut Rtnl,
    names: &RtNames,
    done: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    for (i, c) in changes.iter().enumerate() {
        let text = c.text(names);
        let r = match c {
            Change::Sysctl { key, to, .. } => {
                procfs::write(&proc.sysctl(key), to, &format!("{} {to}", sysctl_name(key)))
            }
            Change::Route { verb, spec, .. } => route::change(rtnl, *verb, spec),
        };
        if let Err(e) = r {
            return Err(Error::op(format!(
                "{e}, in: {text}; {i} of {} changes made (printed above), the rest not tried",
                changes.len()
            )));
        }
        done(&text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtnames::RT_TABLE_MAIN;

    /// The guest test's file (selftests/mpbal_sysctl.sh), with wan1 in
    /// tier 2, so that the tier is a change too. One of its routes has
    /// nexthops with a gateway only: the kernel picks their device.
    fn file() -> String {
        include_str!("../../../selftests/mpbal_apply.toml").replace("tier = 1", "tier = 2")
    }

    fn cfg(text: &str) -> Config {
        config::parse(text, &RtNames::builtin()).unwrap()
    }

    /// A fresh namespace with the module loaded: defaults, no routes.
    fn fresh() -> State {
        let mut s = State::default();
        for (k, v) in [
            ("strategy", "session"),
            ("flowlet_gap_us", "50000"),
            ("conf/wan1/capacity", "0"),
            ("conf/wan1/tier", "1"),
            ("conf/wan2/capacity", "0"),
            ("conf/wan2/tier", "1"),
        ] {
            s.sysctls.insert(k.into(), v.into());
        }
        s
    }

    /// `diff` with the built-in names, for file "f".
    fn diff(c: &Config, s: &State) -> Result<Vec<Change>, Error> {
        super::diff(c, s, &RtNames::builtin(), "f")
    }

    fn texts(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|c| c.text(&RtNames::builtin()))
            .collect()
    }

    /// What the kernel would hold after the changes: a fake system.
    fn applied(mut s: State, changes: &[Change]) -> State {
        for c in changes {
            match c {
                Change::Sysctl { key, to, .. } => {
                    s.sysctls.insert(key.clone(), to.clone());
                }
                Change::Route { spec, .. } => {
                    let metric = spec.metric.unwrap_or(0);
                    s.routes.retain(|k| {
                        !(k.dst == spec.dst && k.table == spec.table && k.metric == metric)
                    });
                    s.routes.push(KernelRoute {
                        dst: spec.dst,
                        table: spec.table,
                        metric,
                        protocol: spec.proto.unwrap_or(3),
                        unicast: true,
                        equalize: spec.equalize,
                        // The kernel fills in the device of a gateway.
                        nexthops: spec
                            .nexthops
                            .iter()
                            .map(|nh| NextHopSpec {
                                dev: nh.dev.clone().or(Some("wan1".into())),
                                ..nh.clone()
                            })
                            .collect(),
                    });
                }
            }
        }
        s
    }

    #[test]
    fn from_a_fresh_namespace() {
        let changes = diff(&cfg(&file()), &fresh()).unwrap();
        assert_eq!(
            texts(&changes),
            [
                "sysctl net.mpbal.strategy session -> flowlet",
                "sysctl net.mpbal.flowlet_gap_us 50000 -> 20000",
                "sysctl net.mpbal.conf.wan1.capacity 0 -> 10000000",
                "sysctl net.mpbal.conf.wan1.tier 1 -> 2",
                "sysctl net.mpbal.conf.wan2.capacity 0 -> 20000000",
                "route add default table main equalize nexthop via 192.0.2.1 dev wan1 weight 1 \
                 nexthop via 198.51.100.1 dev wan2 weight 2",
                "route add 20.0.0.0/24 table 100 equalize nexthop via 192.0.2.1 weight 1 \
                 nexthop via 198.51.100.1 weight 1",
            ]
        );
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let c = cfg(&file());
        let changes = diff(&c, &fresh()).unwrap();
        let after = applied(fresh(), &changes);
        assert_eq!(diff(&c, &after).unwrap(), []);
        // And an empty file never changes anything.
        assert_eq!(diff(&cfg(""), &fresh()).unwrap(), []);
    }

    #[test]
    fn routes_that_differ_are_replaced() {
        let c = cfg(&file());
        let mut s = applied(fresh(), &diff(&c, &fresh()).unwrap());
        let default = |s: &mut State| -> usize {
            s.routes
                .iter()
                .position(|k| k.dst.len == 0 && k.table == RT_TABLE_MAIN)
                .unwrap()
        };
        let base = s.clone();
        for change in [
            |k: &mut KernelRoute| k.nexthops[1].weight = 1,
            |k: &mut KernelRoute| k.nexthops.reverse(),
            |k: &mut KernelRoute| k.equalize = false,
            |k: &mut KernelRoute| k.unicast = false,
            |k: &mut KernelRoute| k.nexthops.truncate(1),
            |k: &mut KernelRoute| k.nexthops[0].dev = Some("wan3".into()),
            |k: &mut KernelRoute| k.nexthops[0].via = None,
        ] {
            s = base.clone();
            let i = default(&mut s);
            change(&mut s.routes[i]);
            let t = texts(&diff(&c, &s).unwrap());
            assert_eq!(t.len(), 1, "{t:?}");
            assert!(
                t[0].starts_with("route replace default table main equalize"),
                "{t:?}"
            );
            assert!(t[0].contains(" (was: default table main"), "{t:?}");
        }
        // Another metric is another route: the file's is added beside it.
        s = base.clone();
        let i = default(&mut s);
        s.routes[i].metric = 100;
        let t = texts(&diff(&c, &s).unwrap());
        assert_eq!(t.len(), 1);
        assert!(t[0].starts_with("route add default"), "{t:?}");
        // A protocol is compared only if the file names one.
        s = base.clone();
        let i = default(&mut s);
        s.routes[i].protocol = 4;
        assert_eq!(diff(&c, &s).unwrap(), []);
        let with_proto =
            file().replacen("to = \"default\"", "to = \"default\"\nproto = \"boot\"", 1);
        let t = texts(&diff(&cfg(&with_proto), &s).unwrap());
        assert!(
            t[0].ends_with(
                "proto boot (was: default table main equalize nexthop via \
                                192.0.2.1 dev wan1 weight 1 nexthop via 198.51.100.1 dev wan2 \
                                weight 2 metric 0 proto static)"
            ),
            "{t:?}"
        );
        // Routes the file does not name are left alone.
        s = base.clone();
        let mut other = s.routes[0].clone();
        other.dst = crate::routeargs::parse_prefix("30.0.0.0/8").unwrap();
        s.routes.push(other);
        assert_eq!(diff(&c, &s).unwrap(), []);
    }

    #[test]
    fn sysctls_are_written_only_when_they_differ() {
        let c = cfg(&file());
        let mut s = applied(fresh(), &diff(&c, &fresh()).unwrap());
        s.sysctls.insert("conf/wan1/tier".into(), "3".into());
        assert_eq!(
            texts(&diff(&c, &s).unwrap()),
            ["sysctl net.mpbal.conf.wan1.tier 3 -> 2"]
        );
        // Not in the file: not touched, whatever its value.
        s.sysctls.insert("conf/wan1/tier".into(), "2".into());
        s.sysctls.insert("conf/wan2/tier".into(), "7".into());
        s.sysctls.insert("bw_ewma_log".into(), "5".into());
        assert_eq!(diff(&c, &s).unwrap(), []);
    }

    #[test]
    fn an_older_module_without_tiers() {
        let mut s = fresh();
        s.sysctls.remove("conf/wan1/tier");
        s.sysctls.remove("conf/wan2/tier");
        let e = super::diff(
            &cfg(&file()),
            &s,
            &RtNames::builtin(),
            "/etc/mpbal/mpbal.toml",
        )
        .unwrap_err();
        assert_eq!(
            e,
            Error::op(
                "/etc/mpbal/mpbal.toml:14:8: net.mpbal.conf.wan1.tier does not exist \
                 (the loaded mpbal module is older and has no tiers)"
            )
        );
        // Tier 1 is what every uplink has there: nothing to do, no error.
        let t1 = file().replace("tier = 2", "tier = 1");
        let t = texts(&diff(&cfg(&t1), &s).unwrap());
        assert!(!t.iter().any(|l| l.contains("tier")), "{t:?}");
        // Any other missing sysctl is an error too.
        s.sysctls.remove("conf/wan2/capacity");
        let e = diff(&cfg(&t1), &s).unwrap_err();
        assert_eq!(
            e,
            Error::op("f:15:9: net.mpbal.conf.wan2.capacity does not exist")
        );
    }

    /// A write that fails halfway: the changes before it are made and told
    /// of, the error names the change and how many were made, the rest is
    /// not tried.
    #[test]
    fn execute_stops_at_the_first_failure() {
        let (dir, proc) = fixture();
        let sys = dir.path().join("sys/net/mpbal");
        std::fs::write(sys.join("strategy"), "session\n").unwrap();
        let set = |key: &str, to: &str| Change::Sysctl {
            key: key.into(),
            from: "x".into(),
            to: to.into(),
        };
        let changes = [
            set("strategy", "packet"),
            set("conf/gone/tier", "2"),
            set("flowlet_gap_us", "100"),
        ];
        let mut done = Vec::new();
        let e = execute(
            &changes,
            &proc,
            &mut Rtnl::open().unwrap(),
            &RtNames::builtin(),
            &mut |l| done.push(l.to_string()),
        )
        .unwrap_err();
        assert_eq!(done, ["sysctl net.mpbal.strategy x -> packet"]);
        assert!(
            e.message().ends_with(
                ": No such file or directory, in: sysctl net.mpbal.conf.gone.tier x -> 2; \
                 1 of 3 changes made (printed above), the rest not tried"
            ),
            "{e}"
        );
        assert_eq!(
            std::fs::read_to_string(sys.join("strategy")).unwrap(),
            "packet\n"
        );
        assert_eq!(
            std::fs::read_to_string(sys.join("flowlet_gap_us")).unwrap(),
            "50000\n"
        );
    }

    #[test]
    fn sysctl_names_like_sysctl() {
        assert_eq!(sysctl_name("strategy"), "net.mpbal.strategy");
        assert_eq!(
            sysctl_name("conf/eth0.100/capacity"),
            "net.mpbal.conf.eth0/100.capacity"
        );
    }

    fn fixture() -> (tempfile::TempDir, Proc) {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path().join("sys/net/mpbal");
        std::fs::create_dir_all(sys.join("conf/wan1")).unwrap();
        std::fs::create_dir_all(sys.join("conf/wan2")).unwrap();
        std::fs::write(sys.join("available_strategies"), "route packet flowlet\n").unwrap();
        std::fs::write(sys.join("flowlet_gap_us"), "50000\n").unwrap();
        let proc = Proc::new(dir.path());
        (dir, proc)
    }

    fn links() -> Links {
        let mut l = Links::default();
        l.insert(2, "wan1".into());
        l.insert(3, "wan2".into());
        l
    }

    #[test]
    fn the_system_is_checked_first() {
        let (dir, proc) = fixture();
        let c = cfg(&file());
        assert_eq!(check_system(&c, "f", &proc, &links()), Ok(()));

        let e = check_system(&cfg("strategy = \"session\"\n"), "f", &proc, &links());
        assert_eq!(
            e,
            Err(Error::op(
                "f:1:12: the loaded mpbal module has no strategy 'session' (it has: route packet flowlet)"
            ))
        );
        let e = check_system(&cfg("[sysctl]\nbw_ewma_log = 2\n"), "f", &proc, &links());
        assert_eq!(
            e,
            Err(Error::op("f:2:1: net.mpbal.bw_ewma_log does not exist"))
        );

        let mut l = Links::default();
        l.insert(2, "wan1".into());
        let e = check_system(&c, "f", &proc, &l);
        assert_eq!(e, Err(Error::op("f:15:9: Cannot find device \"wan2\"")));
        let f = file();
        let routes_only = f.split("[uplink.wan1]").next().unwrap();
        let e = check_system(&cfg(routes_only), "f", &proc, &l);
        assert_eq!(e, Err(Error::op("f:7:80: Cannot find device \"wan2\"")));

        std::fs::remove_dir_all(dir.path().join("sys")).unwrap();
        let e = check_system(&c, "f", &proc, &links()).unwrap_err();
        assert!(e.message().contains("module not loaded"), "{e}");
    }
}
