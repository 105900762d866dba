// SPDX-License-Identifier: GPL-2.0

//! The route guard: keeps the file's equalize routes, and its uplinks'
//! sysctls, in the kernel while other programs change things.
//!
//! - A route deleted, or replaced without the flag (`ip route replace`, as
//!   DHCP clients and PPP scripts do), is put back.
//! - An uplink device that goes away takes the whole multipath route with
//!   it (the kernel flushes a route when one of its nexthops' devices
//!   unregisters): the route is re-created over the nexthops whose devices
//!   are still there and up, and the missing one is added back once its
//!   device is back, up, and has its address.
//! - A device that comes back (or the module, reloaded) starts with
//!   default sysctls: its capacity and tier are written again.
//!
//! The guard is a reconciliation, not a replay of events: `reconcile`
//! compares the kernel with the file (apply.rs's `diff`) and makes the
//! difference, so a lost or merged netlink event costs nothing but the
//! wait for the next one, or for the daemon's periodic check.

use std::collections::BTreeMap;
use std::sync::mpsc::Sender;

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::apply::{self, KernelRoute};
use crate::config::{Config, Route};
use crate::error::Error;
use crate::procfs::Proc;
use crate::routeargs::NextHopSpec;
use crate::rtnames::RtNames;
use crate::rtnl::{Links, Rtnl};

/// rtnetlink multicast groups (linux/rtnetlink.h): links, IPv4 addresses
/// (a returning device's address makes its nexthop valid) and routes.
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;

/// A route of the file over the nexthops `keep` accepts (by device; a
/// nexthop without one is always kept). One left with a single nexthop is
/// a plain route: the kernel keeps neither the flag nor the weight of a
/// single path. None when no nexthop is left. Pure.
pub fn route_over(r: &Route, keep: impl Fn(&str) -> bool) -> Option<Route> {
    let mut nexthops: Vec<NextHopSpec> = r
        .spec
        .nexthops
        .iter()
        .filter(|nh| nh.dev.as_deref().is_none_or(&keep))
        .cloned()
        .collect();
    if nexthops.is_empty() {
        return None;
    }
    let mut spec = r.spec.clone();
    if nexthops.len() == 1 {
        spec.equalize = false;
        nexthops[0].weight = 1;
    }
    spec.nexthops = nexthops;
    Some(Route {
        spec,
        pos: r.pos,
        dev_pos: Vec::new(),
    })
}

/// The routes to (re)write: those of `routes` that the kernel does not
/// have in a usable form. Usable is the file's route over the devices that
/// exist (the kernel keeps a nexthop whose device is down, marked dead),
/// or over those that are up. What is written is the latter: the kernel
/// refuses a new nexthop through a device that is down. Pure.
pub fn routes_to_write(routes: &[Route], links: &Links, kernel: &[KernelRoute]) -> Vec<Route> {
    let have = |w: &Route| {
        let metric = w.spec.metric.unwrap_or(0);
        kernel.iter().any(|k| {
            k.dst == w.spec.dst
                && k.table == w.spec.table
                && k.metric == metric
                && k.matches(&w.spec)
        })
    };
    let mut out = Vec::new();
    for r in routes {
        let present = route_over(r, |d| links.index(d).is_ok());
        let up = route_over(r, |d| links.is_up(d));
        if present.iter().chain(up.iter()).any(have) {
            continue;
        }
        out.extend(up);
    }
    out
}

/// The devices of `cfg` (uplinks and route nexthops) that are missing or
/// down, for the log.
pub fn devices_missing(cfg: &Config, links: &Links) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let devs = cfg.uplinks.iter().map(|u| u.dev.value.as_str()).chain(
        cfg.routes
            .iter()
            .flat_map(|r| r.spec.nexthops.iter().filter_map(|n| n.dev.as_deref())),
    );
    for d in devs {
        if !links.is_up(d) && !out.iter().any(|o| o == d) {
            out.push(d.to_string());
        }
    }
    out
}

#[derive(Debug, Default)]
pub struct Guard {
    /// The ifindex each of the file's uplinks had when its sysctls were
    /// last written: a new ifindex is a new device.
    written: BTreeMap<String, u32>,
    /// Changes made since the start (the first reconciliation's included).
    pub changes: u64,
    /// Reconciliations that failed.
    pub failures: u64,
    /// The last failure, logged once until it changes.
    pub last_error: Option<String>,
}

/// What one reconciliation did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Uplinks whose sysctls were written anew (new devices, or all of
    /// them after the module was loaded again).
    pub fresh: Vec<String>,
    /// The changes made, as `apply` prints them.
    pub made: Vec<String>,
}

impl Guard {
    /// Makes the kernel what `cfg` says, as far as the devices allow.
    /// `all` also applies the global sysctls (the daemon's start).
    pub fn reconcile(
        &mut self,
        cfg: &Config,
        file: &str,
        all: bool,
        proc: &Proc,
        names: &RtNames,
    ) -> Result<Outcome, Error> {
        let r = self.try_reconcile(cfg, file, all, proc, names);
        match &r {
            Ok(_) => self.last_error = None,
            Err(e) => {
                self.failures += 1;
                self.last_error = Some(e.to_string());
            }
        }
        r
    }

    fn try_reconcile(
        &mut self,
        cfg: &Config,
        file: &str,
        all: bool,
        proc: &Proc,
        names: &RtNames,
    ) -> Result<Outcome, Error> {
        if !proc.is_loaded() {
            // Reloaded, its per-device sysctls start from the defaults.
            self.written.clear();
            proc.ensure_loaded()?;
        }
        let mut rtnl = Rtnl::open()?;
        let links = rtnl.links()?;
        let fresh: Vec<_> = cfg
            .uplinks
            .iter()
            .filter(|u| {
                let dev = &u.dev.value;
                let index = links.index(dev).ok();
                index.is_some()
                    && index != self.written.get(dev).copied()
                    && proc.dev_conf(dev).is_dir()
            })
            .cloned()
            .collect();
        let sub = Config {
            strategy: cfg.strategy.clone().filter(|_| all),
            sysctls: if all { cfg.sysctls.clone() } else { Vec::new() },
            routes: Vec::new(),
            uplinks: fresh.clone(),
        };
        let state = apply::read_state(&sub, proc, &mut rtnl, &links)?;
        let sub = Config {
            routes: routes_to_write(&cfg.routes, &links, &state.routes),
            ..sub
        };
        let changes = apply::diff(&sub, &state, names, file)?;
        let mut made = Vec::new();
        apply::execute(&changes, proc, &mut rtnl, names, &mut |text| {
            made.push(text.to_string())
        })?;
        self.changes += changes.len() as u64;
        // Only once written: a failure above retries them next time.
        self.written.retain(|dev, _| links.index(dev).is_ok());
        for u in &fresh {
            if let Ok(i) = links.index(&u.dev.value) {
                self.written.insert(u.dev.value.clone(), i);
            }
        }
        Ok(Outcome {
            fresh: fresh.into_iter().map(|u| u.dev.value).collect(),
            made,
        })
    }
}

/// Listens to rtnetlink's link, address and route groups on its own
/// thread and sends `ev()` for every datagram (and for an overflow, after
/// which only a full comparison is safe anyway). It only reads: the
/// daemon need not stop it to exit.
pub fn monitor<E: Send + 'static>(tx: Sender<E>, ev: fn() -> E) -> Result<(), Error> {
    let sock_err = |what: &str, e: std::io::Error| Error::op(format!("route guard: {what}: {e}"));
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| sock_err("netlink socket", e))?;
    sock.bind(&SocketAddr::new(
        0,
        RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE,
    ))
    .map_err(|e| sock_err("cannot join rtnetlink groups", e))?;
    std::thread::Builder::new()
        .name("mpbald-rtnl".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                // ENOBUFS (overflow) included: a full check follows anyway.
                let r = sock.recv(&mut &mut buf[..], 0);
                if let Err(e) = &r {
                    if e.raw_os_error() != Some(libc_enobufs()) {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                }
                if tx.send(ev()).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| sock_err("cannot start its thread", e))?;
    Ok(())
}

fn libc_enobufs() -> i32 {
    nix::errno::Errno::ENOBUFS as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const FILE: &str = r#"
[[route]]
to = "10.0.0.0/16"
nexthops = [
    { via = "172.20.1.2", dev = "up1", weight = 2 },
    { via = "172.20.2.2", dev = "up2" },
    { via = "172.20.3.2", dev = "up3" },
]
[[route]]
to = "10.9.0.0/16"
nexthops = [{ via = "172.20.1.2", dev = "up1" }, { via = "172.20.2.2" }]
"#;

    fn links(up: &[(&str, u32)], down: &[(&str, u32)]) -> Links {
        let mut l = Links::default();
        for (n, i) in up {
            l.insert(*i, n.to_string());
            l.set_up(*i);
        }
        for (n, i) in down {
            l.insert(*i, n.to_string());
        }
        l
    }

    fn devs(r: &Route) -> Vec<Option<&str>> {
        r.spec.nexthops.iter().map(|n| n.dev.as_deref()).collect()
    }

    /// The kernel's form of a route the guard wrote.
    fn kernel(r: &Route, links: &Links) -> KernelRoute {
        KernelRoute {
            dst: r.spec.dst,
            table: r.spec.table,
            metric: r.spec.metric.unwrap_or(0),
            protocol: 3,
            unicast: true,
            equalize: r.spec.equalize,
            nexthops: r
                .spec
                .nexthops
                .iter()
                .map(|n| NextHopSpec {
                    dev: n.dev.clone().or_else(|| Some(links.name(6))),
                    ..n.clone()
                })
                .collect(),
        }
    }

    #[test]
    fn nothing_to_write_when_the_kernel_has_the_file() {
        let cfg = parse(FILE, &RtNames::builtin()).unwrap();
        let l = links(&[("up1", 5), ("up2", 6), ("up3", 7)], &[]);
        let k: Vec<_> = cfg.routes.iter().map(|r| kernel(r, &l)).collect();
        assert!(routes_to_write(&cfg.routes, &l, &k).is_empty());
        // Deleted: written as the file says.
        let w = routes_to_write(&cfg.routes, &l, &k[1..]);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].spec, cfg.routes[0].spec);
        // Replaced without the flag: written again.
        let mut plain = k.clone();
        plain[0].equalize = false;
        let w = routes_to_write(&cfg.routes, &l, &plain);
        assert_eq!(w.len(), 1);
        assert!(w[0].spec.equalize);
    }

    #[test]
    fn missing_or_down_devices_are_left_out() {
        let cfg = parse(FILE, &RtNames::builtin()).unwrap();
        // up1 gone (its route flushed), up3 down: the first route is
        // written over up2 only, as a plain route; the second over its
        // gateway-only nexthop.
        let l = links(&[("up2", 6)], &[("up3", 7)]);
        let w = routes_to_write(&cfg.routes, &l, &[]);
        assert_eq!(w.len(), 2);
        assert_eq!(devs(&w[0]), vec![Some("up2")]);
        assert!(!w[0].spec.equalize);
        assert_eq!(w[0].spec.nexthops[0].weight, 1);
        assert_eq!(devs(&w[1]), vec![None]);
        // The kernel has that: nothing to do, though up3 exists.
        let k: Vec<_> = w.iter().map(|r| kernel(r, &l)).collect();
        assert!(routes_to_write(&cfg.routes, &l, &k).is_empty());
        // up3 up again: written over up2 and up3, equalize, weights kept.
        let l2 = links(&[("up2", 6), ("up3", 7)], &[]);
        let w = routes_to_write(&cfg.routes, &l2, &k);
        assert_eq!(w.len(), 1);
        assert_eq!(devs(&w[0]), vec![Some("up2"), Some("up3")]);
        assert!(w[0].spec.equalize);
        // A route the kernel keeps with a nexthop whose device went down
        // (marked dead) is left alone.
        let l3 = links(&[("up1", 5), ("up2", 6)], &[("up3", 7)]);
        let full: Vec<_> = cfg.routes.iter().map(|r| kernel(r, &l3)).collect();
        assert!(routes_to_write(&cfg.routes, &l3, &full).is_empty());
        // No device left: nothing to write.
        assert!(routes_to_write(&cfg.routes[..1], &links(&[], &[]), &[]).is_empty());
        assert_eq!(devices_missing(&cfg, &l), vec!["up1", "up3"]);
    }
}
