// SPDX-License-Identifier: GPL-2.0

//! The configuration file, `/etc/mpbal/mpbal.toml`: the strategy, other
//! `net.mpbal.*` sysctls, the equalize routes, and per uplink its capacity,
//! tier and health probes (Documentation/mpbalctl.rst, "Configuration
//! file").
//!
//! Two layers, so that a daemon can share them: `File` is the file as
//! serde reads it (unknown keys are errors, and the values that are
//! checked after parsing keep their spans), and `Config` is the checked
//! result, where every value has its range and every error has the line and
//! column of what it is about. Nothing here touches the system. The file's
//! default path is `grammar::CONFIG_FILE`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::grammar::strategies;
use crate::mpbal::check_ifname;
use crate::rate::parse_rate;
use crate::routeargs::{parse_prefix, parse_proto, parse_table, NextHopSpec, RouteSpec};
use crate::rtnames::{RtNames, RT_TABLE_MAIN};

/// The tier an uplink has unless configured: the preferred one.
pub const DEFAULT_TIER: u8 = 1;
/// Tiers are 1 (preferred) to 15.
pub const TIERS: std::ops::RangeInclusive<u8> = 1..=15;

/// The `net.mpbal.*` sysctls that `[sysctl]` may set, with their ranges
/// (Documentation/sysctl.rst). `strategy` has its own key, and the
/// per-device ones are under `[uplink.DEV]`.
pub const SYSCTLS: &[(&str, u64, u64)] = &[
    ("route_idle_timeout", 1, 3600),
    ("bw_interval_ms", 100, 60_000),
    ("bw_ewma_log", 0, 8),
    ("flowlet_gap_us", 100, 10_000_000),
    ("flowlet_queue_wait", 0, 1),
    ("ct_flush_on_down", 0, 1),
];

// ---------------------------------------------------------------------
// The file as written.
// ---------------------------------------------------------------------

/// The whole file. Every table rejects keys it does not know.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct File {
    /// `net.mpbal.strategy`.
    pub strategy: Option<Spanned<String>>,
    /// Other `net.mpbal.*` sysctls, by name (see `SYSCTLS`).
    #[serde(default)]
    pub sysctl: BTreeMap<Spanned<String>, Spanned<u64>>,
    /// `[[route]]`: the equalize routes.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteEntry>,
    /// `[uplink.DEV]`: per device.
    #[serde(default, rename = "uplink")]
    pub uplinks: BTreeMap<Spanned<String>, UplinkEntry>,
}

/// `[[route]]`: an equalize route, as `mpbalctl route add equalize` takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table (a [[route]])")]
pub struct RouteEntry {
    /// A prefix or `default`.
    pub to: Spanned<String>,
    /// A name or a number; `main` if left out.
    pub table: Option<Spanned<Word>>,
    pub metric: Option<Spanned<u32>>,
    /// A name or a number; compared with the kernel's route only if set.
    pub proto: Option<Spanned<Word>>,
    pub nexthops: Spanned<Vec<NexthopEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a nexthop table { via, dev, weight }"
)]
pub struct NexthopEntry {
    pub via: Option<Spanned<String>>,
    pub dev: Option<Spanned<String>>,
    pub weight: Option<Spanned<u16>>,
}

/// `[uplink.DEV]`: `net.mpbal.conf.DEV.*`, and the device's probes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table (an [uplink.DEV])")]
pub struct UplinkEntry {
    /// A rate as `link set DEV capacity` takes it, or bit/s.
    pub capacity: Option<Spanned<Word>>,
    pub tier: Option<Spanned<u8>>,
    pub uplink_id: Option<Spanned<u8>>,
    pub probe: Option<Spanned<ProbeEntry>>,
}

/// `[uplink.DEV.probe]`: health probes, with mwan3track's parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table (an [uplink.DEV.probe])")]
pub struct ProbeEntry {
    pub targets: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub method: ProbeMethod,
    pub port: Option<Spanned<u16>>,
    pub interval: Option<Spanned<Word>>,
    pub timeout: Option<Spanned<Word>>,
    pub reliability: Option<Spanned<u32>>,
    pub count: Option<Spanned<u32>>,
    pub down: Option<Spanned<u32>>,
    pub up: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeMethod {
    #[default]
    Icmp,
    Tcp,
    Arp,
}

/// A string or an integer, as a string: tables, protocols, rates and
/// durations may be written either way (`table = 100`, `table = "isp1"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word(pub String);

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Word;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a non-negative integer")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Word, E> {
                Ok(Word(s.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Word, E> {
                Ok(Word(n.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Word, E> {
                u64::try_from(n)
                    .map(|n| Word(n.to_string()))
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------
// The checked configuration.
// ---------------------------------------------------------------------

/// A line and column (from 1) in the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A value and where the file says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub strategy: Option<At<String>>,
    /// Sysctl name (relative to net.mpbal) and value, in name order.
    pub sysctls: Vec<(At<String>, u64)>,
    pub routes: Vec<Route>,
    /// In device name order.
    pub uplinks: Vec<Uplink>,
}

/// An equalize route: `spec.equalize` is always set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub spec: RouteSpec,
    /// The `to` key.
    pub pos: Pos,
    /// Where each nexthop's `dev` is, for "no such device".
    pub dev_pos: Vec<Pos>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// The `[uplink.DEV]` header.
    pub dev: At<String>,
    /// bit/s; 0 clears it.
    pub capacity: Option<u64>,
    pub tier: Option<At<u8>>,
    pub uplink_id: Option<u8>,
    pub probe: Option<Probe>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub targets: Vec<IpAddr>,
    pub method: ProbeMethod,
    /// For `tcp` only.
    pub port: Option<u16>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Targets that must answer for a round to count as up.
    pub reliability: u32,
    /// Probes per target and round.
    pub count: u32,
    /// Failed rounds in a row that make the uplink down.
    pub down: u32,
    /// Good rounds in a row that make it up again.
    pub up: u32,
}

/// Probe defaults, for the documentation and `Probe` alike.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
pub const PROBE_DOWN: u32 = 3;
pub const PROBE_UP: u32 = 3;

/// What is wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub pos: Option<Pos>,
    pub msg: String,
}

impl ConfigError {
    fn at(pos: Pos, msg: impl Into<String>) -> Self {
        ConfigError {
            pos: Some(pos),
            msg: msg.into(),
        }
    }

    /// `FILE:LINE:COL: message`, as compilers say it.
    pub fn render(&self, file: &str) -> String {
        match self.pos {
            Some(p) => format!("{file}:{p}: {}", self.msg),
            None => format!("{file}: {}", self.msg),
        }
    }
}

/// Byte offsets to lines and columns (columns count characters).
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn pos(&self, offset: usize) -> Pos {
        let before = &self.0[..offset.min(self.0.len())];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Pos {
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
        }
    }

    fn of<T>(&self, s: &Spanned<T>) -> Pos {
        self.pos(s.span().start)
    }

    fn at<T: Clone>(&self, s: &Spanned<T>) -> At<T> {
        At {
            value: s.get_ref().clone(),
            pos: self.of(s),
        }
    }

    fn err<T>(&self, s: &Spanned<T>, msg: impl Into<String>) -> ConfigError {
        ConfigError::at(self.of(s), msg)
    }
}

/// Parses and checks `text`; table and protocol names come from `names`.
pub fn parse(text: &str, names: &RtNames) -> Result<Config, ConfigError> {
    let file: File = toml::from_str(text).map_err(|e| ConfigError {
        pos: e.span().map(|s: Range<usize>| Lines(text).pos(s.start)),
        msg: e.message().trim_end().to_string(),
    })?;
    check(&file, text, names)
}

/// The checks serde cannot make: ranges, names, and how values go together.
pub fn check(file: &File, text: &str, names: &RtNames) -> Result<Config, ConfigError> {
    let l = Lines(text);
    let strategy = match &file.strategy {
        Some(s) if !strategies().any(|k| k == s.get_ref()) => {
            return Err(l.err(
                s,
                format!(
                    "unknown strategy '{}' (allowed: {})",
                    s.get_ref(),
                    strategies().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
        s => s.as_ref().map(|s| l.at(s)),
    };

    let mut sysctls = Vec::new();
    for (name, value) in &file.sysctl {
        let Some((_, lo, hi)) = SYSCTLS.iter().find(|(n, _, _)| n == name.get_ref()) else {
            let known: Vec<&str> = SYSCTLS.iter().map(|(n, _, _)| *n).collect();
            let hint = match name.get_ref().as_str() {
                "strategy" => " (the strategy is the top-level key \"strategy\")".to_string(),
                "conf" => " (per device: [uplink.DEV])".to_string(),
                _ => String::new(),
            };
            return Err(l.err(
                name,
                format!(
                    "unknown sysctl net.mpbal.{}{hint} (known: {})",
                    name.get_ref(),
                    known.join(", ")
                ),
            ));
        };
        let v = *value.get_ref();
        if !(*lo..=*hi).contains(&v) {
            return Err(l.err(
                value,
                format!(
                    "net.mpbal.{} = {v} is out of range ({lo}..{hi})",
                    name.get_ref()
                ),
            ));
        }
        sysctls.push((l.at(name), v));
    }

    let mut routes: Vec<Route> = Vec::new();
    for r in &file.routes {
        let route = check_route(&l, r, names)?;
        let key = |x: &Route| (x.spec.dst, x.spec.table, x.spec.metric.unwrap_or(0));
        if let Some(first) = routes.iter().find(|x| key(x) == key(&route)) {
            return Err(ConfigError::at(
                route.pos,
                format!(
                    "duplicate route {} table {} (first at line {}): one route per \
                     prefix, table and metric",
                    route.spec.dst,
                    names.table_name(route.spec.table),
                    first.pos.line
                ),
            ));
        }
        routes.push(route);
    }

    let mut uplinks = Vec::new();
    for (dev, u) in &file.uplinks {
        uplinks.push(check_uplink(&l, dev, u)?);
    }
    Ok(Config {
        strategy,
        sysctls,
        routes,
        uplinks,
    })
}

/// A routeargs error (exit 2 there) as a config error at `pos`.
fn here<T>(l: &Lines, s: &Spanned<T>) -> impl FnOnce(crate::error::Error) -> ConfigError {
    let pos = l.of(s);
    move |e| ConfigError::at(pos, e.message())
}

fn check_route(l: &Lines, r: &RouteEntry, names: &RtNames) -> Result<Route, ConfigError> {
    let dst = parse_prefix(r.to.get_ref()).map_err(here(l, &r.to))?;
    let table = match &r.table {
        Some(t) => parse_table(&t.get_ref().0, names).map_err(here(l, t))?,
        None => RT_TABLE_MAIN,
    };
    let proto = match &r.proto {
        Some(p) => Some(parse_proto(&p.get_ref().0, names).map_err(here(l, p))?),
        None => None,
    };
    let hops = r.nexthops.get_ref();
    if hops.len() < 2 {
        return Err(l.err(
            &r.nexthops,
            format!(
                "route {dst}: an equalize route needs two or more nexthops, this one has {}",
                hops.len()
            ),
        ));
    }
    let mut nexthops = Vec::new();
    let mut dev_pos = Vec::new();
    for nh in hops {
        let via = match &nh.via {
            Some(v) => Some(v.get_ref().parse::<Ipv4Addr>().map_err(|_| {
                l.err(
                    v,
                    format!("invalid gateway \"{}\" (IPv4 only)", v.get_ref()),
                )
            })?),
            None => None,
        };
        let dev = match &nh.dev {
            Some(d) => {
                check_ifname(d.get_ref()).map_err(here(l, d))?;
                dev_pos.push(l.of(d));
                Some(d.get_ref().clone())
            }
            None => {
                dev_pos.push(l.of(&r.nexthops));
                None
            }
        };
        if via.is_none() && dev.is_none() {
            return Err(l.err(
                &r.nexthops,
                format!("route {dst}: a nexthop needs \"via\" and/or \"dev\""),
            ));
        }
        let weight = match &nh.weight {
            Some(w) if !(1..=256).contains(w.get_ref()) => {
                return Err(l.err(w, format!("invalid weight {} (1..256)", w.get_ref())))
            }
            Some(w) => *w.get_ref(),
            None => 1,
        };
        let hop = NextHopSpec { via, dev, weight };
        if nexthops.contains(&hop) {
            return Err(l.err(
                &r.nexthops,
                format!("route {dst}: a nexthop is listed twice"),
            ));
        }
        nexthops.push(hop);
    }
    Ok(Route {
        spec: RouteSpec {
            dst,
            equalize: true,
            nexthops,
            table,
            metric: r.metric.as_ref().map(|m| *m.get_ref()),
            proto,
        },
        pos: l.of(&r.to),
        dev_pos,
    })
}

fn check_uplink(l: &Lines, dev: &Spanned<String>, u: &UplinkEntry) -> Result<Uplink, ConfigError> {
    check_ifname(dev.get_ref()).map_err(here(l, dev))?;
    let capacity = match &u.capacity {
        Some(c) => Some(
            parse_rate(&c.get_ref().0)
                .map_err(|e| l.err(c, format!("invalid capacity \"{}\": {e}", c.get_ref().0)))?,
        ),
        None => None,
    };
    if let Some(t) = &u.tier {
        if !TIERS.contains(t.get_ref()) {
            return Err(l.err(
                t,
                format!(
                    "tier {} is out of range ({}..{}, 1 preferred)",
                    t.get_ref(),
                    TIERS.start(),
                    TIERS.end()
                ),
            ));
        }
    }
    if let Some(id) = &u.uplink_id {
        if *id.get_ref() > 32 {
            return Err(l.err(
                id,
                format!("uplink_id {} is out of range (0..32)", id.get_ref()),
            ));
        }
    }
    let probe = match &u.probe {
        Some(p) => Some(check_probe(l, p)?),
        None => None,
    };
    Ok(Uplink {
        dev: l.at(dev),
        capacity,
        tier: u.tier.as_ref().map(|t| l.at(t)),
        uplink_id: u.uplink_id.as_ref().map(|i| *i.get_ref()),
        probe,
    })
}

fn check_probe(l: &Lines, sp: &Spanned<ProbeEntry>) -> Result<Probe, ConfigError> {
    let p = sp.get_ref();
    let mut targets = Vec::new();
    for t in p.targets.get_ref() {
        let ip: IpAddr = t
            .get_ref()
            .parse()
            .map_err(|_| l.err(t, format!("invalid probe target \"{}\"", t.get_ref())))?;
        if targets.contains(&ip) {
            return Err(l.err(t, format!("probe target {ip} is listed twice")));
        }
        if p.method == ProbeMethod::Arp && !ip.is_ipv4() {
            return Err(l.err(t, format!("arp probes IPv4 targets only, not {ip}")));
        }
        targets.push(ip);
    }
    if targets.is_empty() {
        return Err(l.err(&p.targets, "a probe needs at least one target"));
    }
    let port = match (&p.port, p.method) {
        (Some(port), ProbeMethod::Tcp) if *port.get_ref() == 0 => {
            return Err(l.err(port, "port 0 is out of range (1..65535)"))
        }
        (Some(port), ProbeMethod::Tcp) => Some(*port.get_ref()),
        (None, ProbeMethod::Tcp) => {
            return Err(l.err(sp, "method = \"tcp\" needs a port"));
        }
        (Some(port), _) => return Err(l.err(port, "port is for method = \"tcp\" only")),
        (None, _) => None,
    };
    let duration = |d: &Option<Spanned<Word>>, default| match d {
        Some(d) => parse_duration(&d.get_ref().0)
            .map_err(|e| l.err(d, format!("invalid duration \"{}\": {e}", d.get_ref().0))),
        None => Ok(default),
    };
    let interval = duration(&p.interval, PROBE_INTERVAL)?;
    let timeout = duration(&p.timeout, PROBE_TIMEOUT)?;
    if timeout > interval {
        let at = p.timeout.as_ref().map_or_else(|| l.of(sp), |t| l.of(t));
        return Err(ConfigError::at(
            at,
            format!(
                "timeout ({}) is longer than interval ({})",
                format_duration(timeout),
                format_duration(interval)
            ),
        ));
    }
    let count = |c: &Option<Spanned<u32>>, name: &str, default: u32| match c {
        Some(c) if *c.get_ref() == 0 => Err(l.err(c, format!("{name} must be 1 or more"))),
        Some(c) => Ok(*c.get_ref()),
        None => Ok(default),
    };
    let reliability = count(&p.reliability, "reliability", 1)?;
    if reliability as usize > targets.len() {
        let r = p.reliability.as_ref().expect("the default is 1");
        return Err(l.err(
            r,
            format!(
                "reliability {reliability} is more than the {} target(s)",
                targets.len()
            ),
        ));
    }
    Ok(Probe {
        targets,
        method: p.method,
        port,
        interval,
        timeout,
        reliability,
        count: count(&p.count, "count", 1)?,
        down: count(&p.down, "down", PROBE_DOWN)?,
        up: count(&p.up, "up", PROBE_UP)?,
    })
}

/// `500ms`, `5s`, `2m`, `1h`, or a bare number of seconds; more than 0.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| "not a number".to_string())?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("unknown unit \"{unit}\" (ms, s, m, h)")),
    }
    .ok_or("out of range")?;
    if ms == 0 {
        return Err("must be more than 0".into());
    }
    Ok(Duration::from_millis(ms))
}

pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
strategy = "flowlet"

[sysctl]
flowlet_gap_us = 20000

[[route]]
to = "default"
nexthops = [
  { via = "192.0.2.1", dev = "wan1", weight = 1 },
  { dev = "wan2", via = "198.51.100.1" },
]

[[route]]
to = "20.0.0.0/24"
table = 100
metric = 5
proto = "static"
nexthops = [{ dev = "wan1" }, { dev = "wan2", weight = 3 }]

[uplink.wan1]
capacity = "10mbit"
tier = 1

[uplink.wan1.probe]
targets = ["192.0.2.1", "8.8.8.8"]
method = "icmp"
interval = "5s"
timeout = "1s"
reliability = 1
count = 1
down = 3
up = 3

[uplink.wan2]
capacity = 40000000
tier = 2
uplink_id = 2
"#;

    fn names() -> RtNames {
        RtNames::builtin()
    }

    fn ok(text: &str) -> Config {
        parse(text, &names()).unwrap_or_else(|e| panic!("{}", e.render("f")))
    }

    /// The error for `text`, as `FILE:LINE:COL: message`.
    fn err(text: &str) -> String {
        match parse(text, &names()) {
            Ok(c) => panic!("parsed: {c:?}"),
            Err(e) => e.render("f"),
        }
    }

    #[test]
    fn the_example_parses() {
        let c = ok(GOOD);
        assert_eq!(c.strategy.as_ref().unwrap().value, "flowlet");
        assert_eq!(c.strategy.as_ref().unwrap().pos, Pos { line: 2, col: 12 });
        assert_eq!(c.sysctls.len(), 1);
        assert_eq!(c.sysctls[0].0.value, "flowlet_gap_us");
        assert_eq!(c.sysctls[0].1, 20000);
        assert_eq!(c.routes.len(), 2);
        let r = &c.routes[0].spec;
        assert!(r.equalize);
        assert_eq!(r.dst.to_string(), "default");
        assert_eq!((r.table, r.metric, r.proto), (RT_TABLE_MAIN, None, None));
        assert_eq!(r.nexthops[1].via, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(r.nexthops[1].dev.as_deref(), Some("wan2"));
        assert_eq!(r.nexthops[1].weight, 1);
        assert_eq!(c.routes[0].pos.line, 8);
        assert_eq!(c.routes[0].dev_pos[1].line, 11);
        let r = &c.routes[1].spec;
        assert_eq!((r.table, r.metric, r.proto), (100, Some(5), Some(4)));
        assert_eq!(c.uplinks.len(), 2);
        let w1 = &c.uplinks[0];
        assert_eq!(w1.dev.value, "wan1");
        assert_eq!(w1.dev.pos.line, 21);
        assert_eq!(w1.capacity, Some(10_000_000));
        assert_eq!(w1.tier.as_ref().unwrap().value, 1);
        let p = w1.probe.as_ref().unwrap();
        assert_eq!(p.targets.len(), 2);
        assert_eq!((p.interval, p.timeout), (PROBE_INTERVAL, PROBE_TIMEOUT));
        assert_eq!((p.reliability, p.count, p.down, p.up), (1, 1, 3, 3));
        let w2 = &c.uplinks[1];
        assert_eq!(w2.capacity, Some(40_000_000));
        assert_eq!(w2.tier.as_ref().unwrap().value, 2);
        assert_eq!(w2.uplink_id, Some(2));
        assert!(w2.probe.is_none());
    }

    #[test]
    fn an_empty_file_is_nothing_to_do() {
        assert_eq!(
            ok(""),
            Config {
                strategy: None,
                sysctls: vec![],
                routes: vec![],
                uplinks: vec![]
            }
        );
    }

    #[test]
    fn probe_defaults() {
        let c = ok("[uplink.a.probe]\ntargets = [\"10.0.0.1\"]\n");
        let p = c.uplinks[0].probe.as_ref().unwrap();
        assert_eq!(p.method, ProbeMethod::Icmp);
        assert_eq!((p.interval, p.timeout), (PROBE_INTERVAL, PROBE_TIMEOUT));
        assert_eq!((p.reliability, p.count, p.down, p.up), (1, 1, 3, 3));
        assert_eq!(c.uplinks[0].tier, None);
        assert_eq!(c.uplinks[0].capacity, None);
    }

    /// Each bad file names the line and column of what is wrong.
    #[test]
    fn errors_have_line_and_column() {
        for (text, want) in [
            // Syntax.
            ("strategy = \n", "f:1:12: "),
            ("[uplink.a]\ntier = 2\ntier = 3\n", "f:3:1: duplicate key"),
            // Unknown keys, everywhere.
            ("strateggy = \"route\"\n", "f:1:1: unknown field `strateggy`"),
            ("[uplink.a]\ntierr = 2\n", "f:2:1: unknown field `tierr`"),
            (
                "[[route]]\nto = \"default\"\nnexthops = [{ dev = \"a\", gw = \"1.1.1.1\" }, { dev = \"b\" }]\n",
                "f:3:26: unknown field `gw`",
            ),
            ("[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\nretries = 3\n", "f:3:1: unknown field `retries`"),
            // Types.
            ("[uplink.a]\ntier = \"2\"\n", "f:2:8: invalid type: string \"2\", expected u8"),
            ("[uplink.a]\ntier = -1\n", "f:2:8: "),
            // Values.
            ("strategy = \"fastest\"\n", "f:1:12: unknown strategy 'fastest' (allowed: route, packet, session, bandwidth, headroom, flowlet)"),
            ("[uplink.wan1]\ncapacity = \"10mbit\"\ntier = 0\n", "f:3:8: tier 0 is out of range (1..15, 1 preferred)"),
            ("[uplink.wan1]\ntier = 16\n", "f:2:8: tier 16 is out of range (1..15"),
            ("[uplink.a]\ncapacity = \"fast\"\n", "f:2:12: invalid capacity \"fast\": not a number"),
            ("[uplink.a]\nuplink_id = 33\n", "f:2:13: uplink_id 33 is out of range (0..32)"),
            ("[uplink.\"a/b\"]\ntier = 1\n", "f:1:9: \"a/b\" is not a valid device name"),
            ("[sysctl]\nflowlet_gap_us = 5\n", "f:2:18: net.mpbal.flowlet_gap_us = 5 is out of range (100..10000000)"),
            ("[sysctl]\nbogus = 5\n", "f:2:1: unknown sysctl net.mpbal.bogus (known: route_idle_timeout"),
            ("[sysctl]\nstrategy = 5\n", "f:2:1: unknown sysctl net.mpbal.strategy (the strategy is the top-level key"),
            // Routes.
            (
                "[[route]]\nto = \"default\"\nnexthops = [{ dev = \"a\" }]\n",
                "f:3:12: route default: an equalize route needs two or more nexthops, this one has 1",
            ),
            (
                "[[route]]\nto = \"1.2.3.4/24\"\nnexthops = [{ dev = \"a\" }, { dev = \"b\" }]\n",
                "f:2:6: invalid prefix \"1.2.3.4/24\": host bits set",
            ),
            (
                "[[route]]\nto = \"default\"\ntable = \"isp9\"\nnexthops = [{ dev = \"a\" }, { dev = \"b\" }]\n",
                "f:3:9: invalid table \"isp9\"",
            ),
            (
                "[[route]]\nto = \"default\"\nnexthops = [{ dev = \"a\" }, { dev = \"b\", weight = 257 }]\n",
                "f:3:50: invalid weight 257 (1..256)",
            ),
            (
                "[[route]]\nto = \"default\"\nnexthops = [{ dev = \"a\" }, { via = \"fe80::1\" }]\n",
                "f:3:36: invalid gateway \"fe80::1\" (IPv4 only)",
            ),
            (
                "[[route]]\nto = \"default\"\nnexthops = [{ dev = \"a\" }, { weight = 2 }]\n",
                "f:3:12: route default: a nexthop needs \"via\" and/or \"dev\"",
            ),
            (
                "[[route]]\nto = \"default\"\nnexthops = [{ dev = \"a\" }, { dev = \"a\" }]\n",
                "f:3:12: route default: a nexthop is listed twice",
            ),
            (
                "[[route]]\nto = \"default\"\nnexthops = [{ dev = \"a\" }, { dev = \"b\" }]\n\
                 [[route]]\nto = \"0.0.0.0/0\"\ntable = \"main\"\nnexthops = [{ dev = \"a\" }, { dev = \"c\" }]\n",
                "f:5:6: duplicate route default table main (first at line 2)",
            ),
            // Probes.
            (
                "[uplink.a.probe]\ntargets = [\"1.1.1.1\", \"8.8.8.8\"]\nreliability = 3\n",
                "f:3:15: reliability 3 is more than the 2 target(s)",
            ),
            ("[uplink.a.probe]\ntargets = []\n", "f:2:11: a probe needs at least one target"),
            ("[uplink.a.probe]\ntargets = [\"x\"]\n", "f:2:12: invalid probe target \"x\""),
            (
                "[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\nmethod = \"udp\"\n",
                "f:3:10: unknown variant `udp`, expected one of `icmp`, `tcp`, `arp`",
            ),
            (
                "[uplink.a.probe]\ntargets = [\"::1\"]\nmethod = \"arp\"\n",
                "f:2:12: arp probes IPv4 targets only, not ::1",
            ),
            ("[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\nport = 80\n", "f:3:8: port is for method = \"tcp\" only"),
            ("[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\ninterval = \"5x\"\n", "f:3:12: invalid duration \"5x\": unknown unit \"x\""),
            ("[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\ninterval = \"0s\"\n", "f:3:12: invalid duration \"0s\": must be more than 0"),
            (
                "[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\ninterval = \"1s\"\ntimeout = \"2s\"\n",
                "f:4:11: timeout (2s) is longer than interval (1s)",
            ),
            ("[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\ndown = 0\n", "f:3:8: down must be 1 or more"),
        ] {
            let e = err(text);
            assert!(e.starts_with(want), "{text:?}\n got: {e}\nwant: {want}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    /// Type errors name TOML's words, not the structs'.
    #[test]
    fn type_errors_say_table() {
        let e = err("[uplink.wan1]\nprobe = 3\n");
        assert_eq!(
            e,
            "f:2:9: invalid type: integer `3`, expected a table (an [uplink.DEV.probe])"
        );
        let e = err("[[route]]\nto = \"default\"\nnexthops = [1, 2]\n");
        assert!(
            e.ends_with("expected a nexthop table { via, dev, weight }"),
            "{e}"
        );
    }

    #[test]
    fn tcp_probes_need_a_port() {
        let e = err("[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\nmethod = \"tcp\"\n");
        assert!(e.contains("needs a port"), "{e}");
        let c = ok("[uplink.a.probe]\ntargets = [\"1.1.1.1\"]\nmethod = \"tcp\"\nport = 443\n");
        assert_eq!(c.uplinks[0].probe.as_ref().unwrap().port, Some(443));
    }

    #[test]
    fn words_are_strings_or_numbers() {
        let c = ok("[[route]]\nto = \"1.0.0.0/8\"\ntable = 100\nproto = 4\n\
                    nexthops = [{ dev = \"a\" }, { dev = \"b\" }]\n\
                    [uplink.a]\ncapacity = 1000\n");
        assert_eq!(
            (c.routes[0].spec.table, c.routes[0].spec.proto),
            (100, Some(4))
        );
        assert_eq!(c.uplinks[0].capacity, Some(1000));
        // Capacity "none" (or 0) clears it.
        assert_eq!(
            ok("[uplink.a]\ncapacity = \"none\"\n").uplinks[0].capacity,
            Some(0)
        );
        assert!(err("[uplink.a]\ncapacity = -5\n").starts_with("f:2:12: "));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration(&format!("{}h", u64::MAX)).is_err());
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn columns_count_characters() {
        // A multi-byte character before the value on its line: the column
        // is still right (27, not byte 28).
        let e = err("# ü\nuplink = { \"ü\" = { tier = 0 } }\n");
        assert!(e.starts_with("f:2:27: tier 0"), "{e}");
    }
}
