// SPDX-License-Identifier: GPL-2.0

//! What the daemon publishes: its status as JSON (typed: these serde
//! structs are the schema, and an uplink's module part is `link show -j`'s
//! own `UplinkJson`), and the same numbers in Prometheus's text exposition
//! format, for node_exporter's textfile collector. Both are written to
//! files, whole and atomically (a rename), after every round.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;

use crate::mpbal::UplinkJson;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub daemon: DaemonInfo,
    pub uplinks: Vec<UplinkStatus>,
    pub guard: GuardStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonInfo {
    pub pid: u32,
    /// The configuration file.
    pub config: String,
    /// Unix time of the start and of this status.
    pub started: u64,
    pub updated: u64,
    /// False in the status written as it stops.
    pub running: bool,
}

/// A device of the file's `[uplink.DEV]` tables.
#[derive(Debug, Clone, Serialize)]
pub struct UplinkStatus {
    pub dev: String,
    /// None: the file gives it no probes.
    pub probe: Option<ProbeStatus>,
    /// The module's view (`mpbalctl -j link show`); None while the device
    /// is not an uplink of an equalize route.
    pub module: Option<UplinkJson>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeStatus {
    /// "up" or "down": the probes' verdict, written to
    /// net.mpbal.conf.DEV.down.
    pub health: &'static str,
    /// Unix time of the last transition (or of the start).
    pub since: u64,
    /// Why it is in this state.
    pub reason: String,
    pub transitions: u64,
    pub rounds: u64,
    pub rounds_failed: u64,
    pub probes_sent: u64,
    pub probes_answered: u64,
    /// Mean round-trip time of the last round's answers, in ms.
    pub rtt_ms: Option<f64>,
    /// The last round, per target.
    pub targets: Vec<TargetStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    pub target: String,
    pub sent: u32,
    pub answered: u32,
    pub rtt_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GuardStatus {
    /// Changes the guard made (the start's apply included).
    pub changes: u64,
    pub failures: u64,
    pub last_error: Option<String>,
    /// Devices the file names that are missing or down.
    pub missing: Vec<String>,
}

/// One metric family: HELP, TYPE, then a sample per labelled value.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, dev: Option<&str>, v: f64) {
        match dev {
            Some(d) => {
                let _ = writeln!(self.out, "{name}{{dev=\"{}\"}} {v}", escape(d));
            }
            None => {
                let _ = writeln!(self.out, "{name} {v}");
            }
        }
    }
}

/// A label value, escaped as the exposition format says.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Per-uplink values: the metric, its type, help, and how to read it.
type Getter = fn(&UplinkStatus) -> Option<f64>;

const UPLINK_METRICS: &[(&str, &str, &str, Getter)] = &[
    (
        "mpbal_uplink_probe_up",
        "gauge",
        "Probe health: 1 up, 0 down.",
        |u| {
            u.probe
                .as_ref()
                .map(|p| f64::from(u8::from(p.health == "up")))
        },
    ),
    (
        "mpbal_uplink_probe_transitions_total",
        "counter",
        "Health transitions.",
        |u| u.probe.as_ref().map(|p| p.transitions as f64),
    ),
    (
        "mpbal_uplink_probe_rounds_total",
        "counter",
        "Probe rounds.",
        |u| u.probe.as_ref().map(|p| p.rounds as f64),
    ),
    (
        "mpbal_uplink_probe_rounds_failed_total",
        "counter",
        "Probe rounds that failed.",
        |u| u.probe.as_ref().map(|p| p.rounds_failed as f64),
    ),
    (
        "mpbal_uplink_probes_sent_total",
        "counter",
        "Probes sent.",
        |u| u.probe.as_ref().map(|p| p.probes_sent as f64),
    ),
    (
        "mpbal_uplink_probes_answered_total",
        "counter",
        "Probes answered.",
        |u| u.probe.as_ref().map(|p| p.probes_answered as f64),
    ),
    (
        "mpbal_uplink_probe_rtt_seconds",
        "gauge",
        "Mean round-trip time of the last round.",
        |u| u.probe.as_ref()?.rtt_ms.map(|ms| ms / 1000.0),
    ),
    (
        "mpbal_uplink_carrier_up",
        "gauge",
        "The module sees the nexthop alive: 1, or 0.",
        |u| u.module.as_ref()?.up.map(|b| f64::from(u8::from(b))),
    ),
    (
        "mpbal_uplink_admin_down",
        "gauge",
        "net.mpbal.conf.DEV.down.",
        |u| {
            u.module
                .as_ref()?
                .admin
                .map(|a| f64::from(u8::from(a == "down")))
        },
    ),
    (
        "mpbal_uplink_tier",
        "gauge",
        "net.mpbal.conf.DEV.tier (1 preferred).",
        |u| u.module.as_ref()?.tier.map(|t| t as f64),
    ),
    (
        "mpbal_uplink_capacity_bps",
        "gauge",
        "Capacity in bit/s (0 unknown).",
        |u| u.module.as_ref()?.capacity_bps.map(|v| v as f64),
    ),
    (
        "mpbal_uplink_rate_bps",
        "gauge",
        "Estimated transmit rate in bit/s.",
        |u| u.module.as_ref()?.rate_bps.map(|v| v as f64),
    ),
    (
        "mpbal_uplink_packets_total",
        "counter",
        "Packets the module sent this way.",
        |u| u.module.as_ref()?.packets.map(|v| v as f64),
    ),
    (
        "mpbal_uplink_bytes_total",
        "counter",
        "Bytes the module sent this way.",
        |u| u.module.as_ref()?.bytes.map(|v| v as f64),
    ),
    (
        "mpbal_uplink_sessions",
        "gauge",
        "Sessions stored on the uplink.",
        |u| u.module.as_ref()?.sessions.map(|v| v as f64),
    ),
];

/// The status in the Prometheus text exposition format (version 0.0.4).
pub fn prometheus(s: &Status) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    f.start(
        "mpbal_daemon_running",
        "gauge",
        "1 while mpbald runs, 0 once it stopped.",
    );
    f.sample(
        "mpbal_daemon_running",
        None,
        f64::from(u8::from(s.daemon.running)),
    );
    f.start(
        "mpbal_daemon_updated_seconds",
        "gauge",
        "Unix time of this status.",
    );
    f.sample(
        "mpbal_daemon_updated_seconds",
        None,
        s.daemon.updated as f64,
    );
    for (name, kind, help, get) in UPLINK_METRICS {
        let values: Vec<(&str, f64)> = s
            .uplinks
            .iter()
            .filter_map(|u| Some((u.dev.as_str(), get(u)?)))
            .collect();
        if values.is_empty() {
            continue;
        }
        f.start(name, kind, help);
        for (dev, v) in values {
            f.sample(name, Some(dev), v);
        }
    }
    f.start(
        "mpbal_guard_changes_total",
        "counter",
        "Changes the route guard made.",
    );
    f.sample("mpbal_guard_changes_total", None, s.guard.changes as f64);
    f.start(
        "mpbal_guard_failures_total",
        "counter",
        "Route guard checks that failed.",
    );
    f.sample("mpbal_guard_failures_total", None, s.guard.failures as f64);
    out
}

/// Writes `text` to `dir/name` through a temporary file and a rename, so a
/// reader sees the old file or the new one, never half of one.
pub fn write_atomic(dir: &Path, name: &str, text: &str) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        Status {
            daemon: DaemonInfo {
                pid: 7,
                config: "/etc/mpbal/mpbal.toml".into(),
                started: 100,
                updated: 160,
                running: true,
            },
            uplinks: vec![
                UplinkStatus {
                    dev: "wan1".into(),
                    probe: Some(ProbeStatus {
                        health: "down",
                        since: 150,
                        reason: "3 rounds failed".into(),
                        transitions: 1,
                        rounds: 12,
                        rounds_failed: 3,
                        probes_sent: 24,
                        probes_answered: 18,
                        rtt_ms: None,
                        targets: vec![TargetStatus {
                            target: "192.0.2.1".into(),
                            sent: 2,
                            answered: 0,
                            rtt_ms: None,
                            error: None,
                        }],
                    }),
                    module: Some(UplinkJson {
                        dev: "wan1".into(),
                        id: Some(1),
                        gw: Some(Some("192.0.2.1".into())),
                        ifindex: Some(3),
                        up: Some(true),
                        admin: Some("down"),
                        tier: Some(1),
                        capacity_bps: Some(10_000_000),
                        capacity_src: Some("config".into()),
                        rate_bps: Some(0),
                        headroom_bps: Some(10_000_000),
                        packets: Some(5),
                        bytes: Some(700),
                        sessions: Some(0),
                    }),
                },
                UplinkStatus {
                    dev: "we\"ird".into(),
                    probe: None,
                    module: None,
                },
            ],
            guard: GuardStatus::default(),
        }
    }

    #[test]
    fn json_schema() {
        let v = serde_json::to_value(status()).unwrap();
        assert_eq!(v["daemon"]["running"], true);
        assert_eq!(v["uplinks"][0]["probe"]["health"], "down");
        assert_eq!(v["uplinks"][0]["module"]["admin"], "down");
        assert_eq!(v["uplinks"][0]["module"]["up"], true);
        assert_eq!(v["uplinks"][1]["probe"], serde_json::Value::Null);
        assert_eq!(v["guard"]["missing"], serde_json::json!([]));
    }

    #[test]
    fn prometheus_text() {
        let t = prometheus(&status());
        assert!(
            t.contains(
                "# TYPE mpbal_uplink_probe_up gauge\nmpbal_uplink_probe_up{dev=\"wan1\"} 0\n"
            ),
            "{t}"
        );
        assert!(
            t.contains("mpbal_uplink_admin_down{dev=\"wan1\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("mpbal_uplink_probes_answered_total{dev=\"wan1\"} 18\n"),
            "{t}"
        );
        assert!(t.contains("mpbal_daemon_running 1\n"), "{t}");
        // No value, no sample; and a family without samples has no HELP.
        assert!(!t.contains("rtt_seconds"), "{t}");
        assert!(!t.contains("dev=\"we"), "{t}");
        // Every sample line belongs to the family declared above it.
        let mut family = String::new();
        for line in t.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap().to_string();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(&family), "{line} outside {family}");
            }
        }
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }

    #[test]
    fn atomic_write() {
        let d = tempfile::tempdir().unwrap();
        write_atomic(d.path(), "x.prom", "a 1\n").unwrap();
        write_atomic(d.path(), "x.prom", "a 2\n").unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("x.prom")).unwrap(),
            "a 2\n"
        );
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
