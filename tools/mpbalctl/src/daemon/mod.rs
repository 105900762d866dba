// SPDX-License-Identifier: GPL-2.0

//! `mpbalctl daemon` (installed as mpbald too): applies the configuration
//! file, probes each uplink that has `[uplink.DEV.probe]` and sets it down
//! or up in the module (track.rs), keeps the file's routes in the kernel
//! (guard.rs), and publishes its status (status.rs).
//!
//! One thread per probed uplink runs the rounds (probe.rs) and only sends
//! their results; one thread waits for signals and one for rtnetlink
//! events. Every change to the kernel is made on the main thread, one at a
//! time, so that a SIGTERM is acted on between two changes and leaves the
//! kernel consistent.

mod guard;
mod status;
mod track;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{SigSet, Signal};

use crate::apply;
use crate::config::{Config, Probe};
use crate::error::Error;
use crate::mpbal::Uplink;
use crate::probe::{self, TargetResult};
use crate::procfs::{self, Proc};
use crate::rtnames::RtNames;

use self::guard::Guard;
use self::status::{DaemonInfo, GuardStatus, ProbeStatus, Status, TargetStatus, UplinkStatus};
use self::track::{round_good, Health, Tracker};

/// The guard's check when no event comes: a missed event costs at most this.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// rtnetlink events come in bursts (a device and its routes): one check
/// for the burst, this long after its first event.
const SETTLE: Duration = Duration::from_millis(20);

pub struct Options {
    pub file: PathBuf,
    /// Where status.json and mpbal.prom go; None: nowhere.
    pub state_dir: Option<PathBuf>,
}

enum Event {
    Round {
        uplink: usize,
        /// The results, or why no round could run (no such device).
        results: Result<Vec<TargetResult>, String>,
    },
    Netlink,
    Signal(Signal),
}

fn log(msg: &str) {
    eprintln!("mpbald: {msg}");
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One probed uplink, as the main thread keeps it.
struct Tracked {
    dev: String,
    probe: Probe,
    tracker: Tracker,
    since: u64,
    reason: String,
    transitions: u64,
    rounds: u64,
    rounds_failed: u64,
    sent: u64,
    answered: u64,
    last: Vec<TargetResult>,
    /// Why rounds cannot run now (logged once).
    paused: Option<String>,
}

impl Tracked {
    fn status(&self) -> ProbeStatus {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let rtts: Vec<f64> = self.last.iter().filter_map(|t| t.rtt.map(ms)).collect();
        ProbeStatus {
            health: self.tracker.state().name(),
            since: self.since,
            reason: self.reason.clone(),
            transitions: self.transitions,
            rounds: self.rounds,
            rounds_failed: self.rounds_failed,
            probes_sent: self.sent,
            probes_answered: self.answered,
            rtt_ms: (!rtts.is_empty()).then(|| rtts.iter().sum::<f64>() / rtts.len() as f64),
            targets: self
                .last
                .iter()
                .map(|t| TargetStatus {
                    target: t.target.to_string(),
                    sent: t.sent,
                    answered: t.answered,
                    rtt_ms: t.rtt.map(ms),
                    error: t.error.clone(),
                })
                .collect(),
        }
    }
}

/// What a round's targets said, for the log: "2 of 3 targets answered,
/// 2 needed (192.0.2.1: no answer to 2 probes)".
fn round_text(results: &[TargetResult], reliability: u32) -> String {
    let answered = results.iter().filter(|t| t.answered > 0).count();
    let mut s = format!(
        "{answered} of {} targets answered, {reliability} needed",
        results.len()
    );
    let silent: Vec<String> = results
        .iter()
        .filter(|t| t.answered == 0)
        .map(|t| match &t.error {
            Some(e) => format!("{}: {e}", t.target),
            None => format!("{}: no answer to {} probes", t.target, t.sent),
        })
        .collect();
    if !silent.is_empty() {
        s.push_str(&format!(" ({})", silent.join("; ")));
    }
    s
}

/// net.mpbal.conf.DEV.down as the tracker says it should be.
fn write_down(proc: &Proc, dev: &str, h: Health) -> Result<(), Error> {
    let v = if h == Health::Down { "1" } else { "0" };
    procfs::write(
        &proc.dev_conf(dev).join("down"),
        v,
        &format!("state {h} for {dev}"),
    )
}

fn read_down(proc: &Proc, dev: &str) -> Option<bool> {
    let t = procfs::read(&proc.dev_conf(dev).join("down")).ok()?;
    Some(t.trim() == "1")
}

/// A probe thread: a round every `interval`, its results sent to the main
/// thread, until `stop` is dropped.
fn spawn_prober(
    uplink: usize,
    dev: String,
    probe: Probe,
    ident: u16,
    tx: Sender<Event>,
    stop: Receiver<()>,
) -> Result<(), Error> {
    let what = format!("cannot start the probe thread of {dev}");
    std::thread::Builder::new()
        .name(format!("mpbald-{dev}"))
        .spawn(move || loop {
            let start = Instant::now();
            let results = match nix::net::if_::if_nametoindex(dev.as_str()) {
                Err(_) => Err(format!("{dev} does not exist")),
                Ok(ifindex) => {
                    let (src4, src6) = probe::dev_addrs(&dev);
                    let up = probe::Uplink {
                        dev: &dev,
                        ifindex,
                        src4,
                        src6,
                    };
                    Ok(probe::round(&up, &probe, ident))
                }
            };
            if tx.send(Event::Round { uplink, results }).is_err() {
                return;
            }
            let wait = probe.interval.saturating_sub(start.elapsed());
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => {}
                _ => return,
            }
        })
        .map_err(|e| Error::op(format!("{what}: {e}")))?;
    Ok(())
}

/// SIGTERM, SIGINT and SIGHUP, blocked in every thread (they inherit the
/// mask of the main thread, which sets it before starting any) and taken
/// by one thread with sigwait, which passes them on as events.
fn spawn_signals(tx: Sender<Event>) -> Result<(), Error> {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(s);
    }
    set.thread_block()
        .map_err(|e| Error::op(format!("cannot block signals: {e}")))?;
    std::thread::Builder::new()
        .name("mpbald-signals".into())
        .spawn(move || loop {
            if let Ok(sig) = set.wait() {
                if tx.send(Event::Signal(sig)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| Error::op(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

struct Daemon<'a> {
    cfg: Config,
    file: String,
    proc: &'a Proc,
    names: &'a RtNames,
    guard: Guard,
    tracked: Vec<Tracked>,
    /// The devices missing or down at the last check, to log changes.
    missing: Vec<String>,
    started: u64,
    state_dir: Option<PathBuf>,
    publish_error: Option<String>,
}

impl Daemon<'_> {
    /// A guard check; `all` at the start. Logs what it changed.
    fn check(&mut self, all: bool) {
        let links = crate::rtnl::Rtnl::open().and_then(|mut r| r.links());
        if let Ok(links) = &links {
            let missing = guard::devices_missing(&self.cfg, links);
            for d in missing.iter().filter(|d| !self.missing.contains(d)) {
                log(&format!(
                    "{d}: missing or down; routes go over the other uplinks"
                ));
            }
            for d in self.missing.iter().filter(|d| !missing.contains(d)) {
                log(&format!("{d}: back"));
            }
            self.missing = missing;
        }
        let what = if all { "applied" } else { "route guard" };
        let before = self.guard.last_error.clone();
        match self
            .guard
            .reconcile(&self.cfg, &self.file, all, self.proc, self.names)
        {
            Ok(out) => {
                for m in &out.made {
                    log(&format!("{what}: {m}"));
                }
                // A new device, or a reloaded module, has down = 0.
                for t in &self.tracked {
                    if out.fresh.contains(&t.dev)
                        || read_down(self.proc, &t.dev)
                            .is_some_and(|d| d != (t.tracker.state() == Health::Down))
                    {
                        self.assert_down(t);
                    }
                }
            }
            Err(e) => {
                if before.as_deref() != Some(&e.to_string()) {
                    log(&format!("{what}: {e} (retrying)"));
                }
            }
        }
    }

    fn assert_down(&self, t: &Tracked) {
        if !self.proc.dev_conf(&t.dev).is_dir() {
            return;
        }
        match write_down(self.proc, &t.dev, t.tracker.state()) {
            Ok(()) => {}
            Err(e) => log(&format!("{}: {e}", t.dev)),
        }
    }

    fn round(&mut self, i: usize, results: Result<Vec<TargetResult>, String>) {
        let t = &mut self.tracked[i];
        let results = match results {
            Ok(r) => {
                if t.paused.take().is_some() {
                    log(&format!("{}: probing again", t.dev));
                }
                r
            }
            Err(why) => {
                if t.paused.as_deref() != Some(&why) {
                    log(&format!("{}: probes paused: {why}", t.dev));
                    t.paused = Some(why);
                }
                return;
            }
        };
        let answered = results.iter().filter(|r| r.answered > 0).count() as u32;
        let good = round_good(answered, t.probe.reliability);
        t.rounds += 1;
        t.rounds_failed += u64::from(!good);
        t.sent += results.iter().map(|r| u64::from(r.sent)).sum::<u64>();
        t.answered += results.iter().map(|r| u64::from(r.answered)).sum::<u64>();
        let text = round_text(&results, t.probe.reliability);
        t.last = results;
        if let Some(h) = t.tracker.feed(good) {
            let n = if h == Health::Down {
                t.probe.down
            } else {
                t.probe.up
            };
            let kind = if h == Health::Down { "failed" } else { "good" };
            t.reason = format!("{n} {kind} rounds in a row: {text}");
            t.since = unix_now();
            t.transitions += 1;
            log(&format!("{}: {h}: {}", t.dev, t.reason));
            let t = &self.tracked[i];
            self.assert_down(t);
        }
    }

    fn status(&self, running: bool) -> Status {
        let uplinks_table = procfs::read(&self.proc.uplinks())
            .map(|t| procfs::parse_table(&t))
            .ok();
        let module = |dev: &str| {
            let t = uplinks_table.as_ref()?;
            let row = t.rows.iter().find(|r| t.get(r, "dev") == Some(dev))?;
            let mut u = Uplink::from_row(t, row);
            u.read_conf(self.proc);
            Some(u.json())
        };
        Status {
            daemon: DaemonInfo {
                pid: std::process::id(),
                config: self.file.clone(),
                started: self.started,
                updated: unix_now(),
                running,
            },
            uplinks: self
                .cfg
                .uplinks
                .iter()
                .map(|u| UplinkStatus {
                    dev: u.dev.value.clone(),
                    probe: self
                        .tracked
                        .iter()
                        .find(|t| t.dev == u.dev.value)
                        .map(Tracked::status),
                    module: module(&u.dev.value),
                })
                .collect(),
            guard: GuardStatus {
                changes: self.guard.changes,
                failures: self.guard.failures,
                last_error: self.guard.last_error.clone(),
                missing: self.missing.clone(),
            },
        }
    }

    /// Writes the status files; a failure is logged once until it
    /// changes (a full disk must not fill the journal too).
    fn publish(&mut self, running: bool) {
        let Some(dir) = &self.state_dir else { return };
        let s = self.status(running);
        let json = serde_json::to_string_pretty(&s).unwrap_or_default() + "\n";
        let mut err = None;
        for (name, text) in [
            ("status.json", json),
            ("mpbal.prom", status::prometheus(&s)),
        ] {
            if let Err(e) = status::write_atomic(dir, name, &text) {
                err.get_or_insert(format!("cannot write {}: {e}", dir.join(name).display()));
            }
        }
        if err.is_some() && err != self.publish_error {
            log(err.as_deref().unwrap_or_default());
        }
        self.publish_error = err;
    }

    /// What the daemon leaves behind, for the log as it stops.
    fn left(&self) -> String {
        let mut parts: Vec<String> = self
            .tracked
            .iter()
            .map(|t| format!("{} {}", t.dev, t.tracker.state()))
            .collect();
        if parts.is_empty() {
            parts.push("no probed uplinks".into());
        }
        let routes = match self.guard.last_error.as_deref() {
            None => "the file's routes in place".to_string(),
            Some(e) => format!("the routes as the last check left them ({e})"),
        };
        format!("{}; {routes}", parts.join(", "))
    }
}

pub fn run(proc: &Proc, opts: &Options) -> Result<(), Error> {
    let names = RtNames::system();
    let cfg = apply::load(&opts.file, names)?;
    proc.ensure_loaded()?;
    if let Some(dir) = &opts.state_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::op(format!("cannot create {}: {e}", dir.display())))?;
    }
    let (tx, rx) = mpsc::channel();
    // Before any other thread exists, so that all inherit the mask.
    spawn_signals(tx.clone())?;
    guard::monitor(tx.clone(), || Event::Netlink)?;

    let file = opts.file.display().to_string();
    let mut d = Daemon {
        tracked: Vec::new(),
        file,
        proc,
        names,
        guard: Guard::default(),
        missing: Vec::new(),
        started: unix_now(),
        state_dir: opts.state_dir.clone(),
        publish_error: None,
        cfg,
    };
    log(&format!(
        "starting with {}: {} routes, {} uplinks, {} probed",
        d.file,
        d.cfg.routes.len(),
        d.cfg.uplinks.len(),
        d.cfg.uplinks.iter().filter(|u| u.probe.is_some()).count()
    ));
    d.check(true);

    // The stop senders: dropping them ends the probe threads' waits.
    let mut stops = Vec::new();
    let probed: Vec<(String, Probe)> = d
        .cfg
        .uplinks
        .iter()
        .filter_map(|u| Some((u.dev.value.clone(), u.probe.clone()?)))
        .collect();
    for (i, (dev, probe)) in probed.into_iter().enumerate() {
        // Start from the module's state: a restart keeps a down uplink
        // down until it has its good rounds.
        let state = if read_down(proc, &dev) == Some(true) {
            Health::Down
        } else {
            Health::Up
        };
        log(&format!(
            "{dev}: {state} at start; probing {} every {:?}",
            probe
                .targets
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            probe.interval
        ));
        d.tracked.push(Tracked {
            dev: dev.clone(),
            tracker: Tracker::new(state, probe.down, probe.up),
            since: unix_now(),
            reason: "state at start".into(),
            transitions: 0,
            rounds: 0,
            rounds_failed: 0,
            sent: 0,
            answered: 0,
            last: Vec::new(),
            paused: None,
            probe: probe.clone(),
        });
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        stops.push(stop_tx);
        // Echo identifiers: this process's, told apart per uplink.
        let ident = (std::process::id() as u16).wrapping_add((i as u16) << 8);
        spawn_prober(i, dev, probe, ident, tx.clone(), stop_rx)?;
    }
    drop(tx);
    d.publish(true);

    let mut pending: Option<Instant> = None;
    let mut next_check = Instant::now() + CHECK_EVERY;
    let sig = loop {
        let due = pending.map_or(next_check, |p| p.min(next_check));
        match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
            Ok(Event::Round { uplink, results }) => {
                d.round(uplink, results);
                d.publish(true);
            }
            Ok(Event::Netlink) => {
                pending.get_or_insert_with(|| Instant::now() + SETTLE);
            }
            Ok(Event::Signal(Signal::SIGHUP)) => {
                log("SIGHUP: the file is read at start only; restart mpbald to apply changes");
            }
            Ok(Event::Signal(s)) => break format!("{s}"),
            Err(RecvTimeoutError::Timeout) => {
                pending = None;
                next_check = Instant::now() + CHECK_EVERY;
                d.check(false);
                d.publish(true);
            }
            Err(RecvTimeoutError::Disconnected) => break "the end of its threads".to_string(),
        }
    };
    drop(stops);
    d.publish(false);
    log(&format!("stopping on {sig}: left {}", d.left()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(ip: &str, sent: u32, answered: u32, error: Option<&str>) -> TargetResult {
        TargetResult {
            target: ip.parse().unwrap(),
            sent,
            answered,
            rtt: (answered > 0).then(|| Duration::from_millis(2)),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn round_text_names_the_silent_targets() {
        let r = [
            target("192.0.2.1", 2, 0, None),
            target("9.9.9.9", 0, 0, Some("sendto: Network is unreachable")),
            target("1.1.1.1", 2, 1, None),
        ];
        assert_eq!(
            round_text(&r, 2),
            "1 of 3 targets answered, 2 needed (192.0.2.1: no answer to 2 probes; \
             9.9.9.9: sendto: Network is unreachable)"
        );
        assert_eq!(round_text(&r[2..], 1), "1 of 1 targets answered, 1 needed");
    }
}
