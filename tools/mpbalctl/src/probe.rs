// SPDX-License-Identifier: GPL-2.0

//! Health probes: one round of `count` probes to each target of an
//! uplink, as OpenWrt's mwan3track does it. The daemon calls `round` once
//! per uplink and interval, from one thread per uplink, and judges the
//! results; this module only sends, waits and counts.
//!
//! mwan3track's parameters, and where they live here (`config::Probe`):
//!
//! - `track_ip` is `targets`: all probed in parallel in one round.
//! - `track_method` (ping, arping, nping-tcp) is `method` (icmp, arp, tcp),
//!   with `port` for tcp.
//! - `count` is `count`: probes per target and round.
//! - `timeout` is `timeout`, but for the whole round: probes are spaced by
//!   `timeout / (count + 1)` (at most 100 ms), and whatever has not
//!   answered when `timeout` is over since the round began did not answer.
//! - `interval`, `reliability`, `down` and `up` are the daemon's: how often
//!   to call `round`, how many targets must answer, and how many bad or
//!   good rounds in a row change the uplink's state.
//!
//! ICMP echoes leave through the uplink (a socket bound to the device and
//! its address) but are received on a socket bound to no device, since
//! with asymmetric routing the reply may come in on another uplink.
//! Replies are matched by source, identifier (`ident`, per uplink),
//! sequence number (process-wide, so a late reply of an earlier round
//! does not count) and a per-round nonce in the payload (so another
//! process's pings with the same identifier do not count either).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

use crate::config::{self, ProbeMethod};
use crate::error::strerror;

/// Where one uplink's probes leave from.
pub struct Uplink<'a> {
    /// Device name, e.g. "wan1".
    pub dev: &'a str,
    pub ifindex: u32,
    /// The device's primary IPv4 address, if any.
    pub src4: Option<Ipv4Addr>,
    /// A global IPv6 address of the device, if any.
    pub src6: Option<Ipv6Addr>,
}

/// One target's result in one round.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetResult {
    pub target: IpAddr,
    pub sent: u32,
    pub answered: u32,
    /// Mean round-trip time of the answers (None if none).
    pub rtt: Option<Duration>,
    /// Why nothing could be sent (e.g. "sendto: Network is unreachable"),
    /// None when sent.
    pub error: Option<String>,
}

/// The longest gap between two probes to the same target.
const MAX_GAP: Duration = Duration::from_millis(100);

/// ICMP echo sequence numbers, increasing across rounds and uplinks.
static SEQ: AtomicU16 = AtomicU16::new(0);
/// Rounds started, for the nonce.
static ROUNDS: AtomicU64 = AtomicU64::new(0);

/// One round: `probe.count` probes to every target of `probe` through `up`,
/// all targets in parallel, waiting at most `probe.timeout` in all. Never
/// panics; a socket error on one target becomes that target's `error`.
pub fn round(up: &Uplink, probe: &config::Probe, ident: u16) -> Vec<TargetResult> {
    let start = Instant::now();
    // (A timeout too large for an Instant waits a day instead.)
    let deadline = start
        .checked_add(probe.timeout)
        .unwrap_or(start + Duration::from_secs(86_400));
    let mut tallies: Vec<Tally> = probe.targets.iter().map(|_| Tally::default()).collect();
    let indexed = || probe.targets.iter().copied().enumerate();

    let mut engines: Vec<Box<dyn Engine>> = Vec::new();
    let mut add = |e: Result<Box<dyn Engine>, String>, members: &[usize]| match e {
        Ok(e) => engines.push(e),
        Err(msg) => members
            .iter()
            .for_each(|&i| tallies[i].error = Some(msg.clone())),
    };
    match probe.method {
        ProbeMethod::Icmp => {
            let nonce = nonce();
            let v4: Vec<_> = indexed().filter(|(_, t)| t.is_ipv4()).collect();
            let v6: Vec<_> = indexed().filter(|(_, t)| t.is_ipv6()).collect();
            for targets in [v4, v6] {
                if let Some(&(_, first)) = targets.first() {
                    let members: Vec<usize> = targets.iter().map(|&(i, _)| i).collect();
                    let e = Icmp::open(up, first.is_ipv6(), targets, ident, nonce);
                    add(e.map(|e| Box::new(e) as Box<dyn Engine>), &members);
                }
            }
        }
        ProbeMethod::Tcp => {
            // One socket per connect, so each target fails on its own. config
            // requires a port for tcp (port 0 would fail to connect).
            let port = probe.port.unwrap_or(0);
            add(Ok(Box::new(Tcp::new(up, port, indexed().collect()))), &[]);
        }
        ProbeMethod::Arp => {
            let targets: Vec<(usize, Ipv4Addr)> = indexed()
                .filter_map(|(i, t)| match t {
                    IpAddr::V4(t) => Some((i, t)),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let members: Vec<usize> = indexed().map(|(i, _)| i).collect();
            let e = Arp::open(up, targets);
            add(e.map(|e| Box::new(e) as Box<dyn Engine>), &members);
            for (i, t) in indexed().filter(|(_, t)| t.is_ipv6()) {
                tallies[i].error = Some(format!("arp cannot probe IPv6 target {t}"));
            }
        }
    }

    // With no sockets (all failed), there is nothing to send or wait for.
    let count = if engines.is_empty() { 0 } else { probe.count };
    let gap = (probe.timeout / count.saturating_add(1)).min(MAX_GAP);
    for k in 0..count {
        wait(&mut engines, &mut tallies, start + gap * k, false);
        // Sending itself takes time: never past the deadline.
        if Instant::now() >= deadline {
            break;
        }
        for e in &mut engines {
            e.send(&mut tallies);
        }
    }
    wait(&mut engines, &mut tallies, deadline, true);

    probe
        .targets
        .iter()
        .zip(tallies)
        .map(|(&target, t)| t.result(target))
        .collect()
}

/// The device's addresses (for Uplink): its primary IPv4 address (the
/// first the kernel lists) and a global IPv6 address, via getifaddrs.
pub fn dev_addrs(dev: &str) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
    let (mut v4, mut v6) = (None, None);
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return (None, None);
    };
    for a in addrs.filter(|a| a.interface_name == dev) {
        let Some(addr) = a.address else { continue };
        if let Some(sin) = addr.as_sockaddr_in() {
            v4 = v4.or(Some(sin.ip()));
        } else if let Some(sin6) = addr.as_sockaddr_in6() {
            let ip = sin6.ip();
            let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
            if !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || link_local) {
                v6 = v6.or(Some(ip));
            }
        }
    }
    (v4, v6)
}

/// The device's hardware address, via getifaddrs (not /sys/class/net,
/// which shows the namespace sysfs was mounted in, not the caller's).
fn dev_mac(dev: &str) -> Option<[u8; 6]> {
    nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|a| a.interface_name == dev)
        .find_map(|a| a.address?.as_link_addr()?.addr())
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of the 16-bit big-endian words, an odd last byte padded
/// with zero. A packet with a correct checksum field sums to 0.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A value unique to this round of this process (pid, round, clock), so
/// that echo replies to anyone else's pings are never counted.
fn nonce() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (u64::from(std::process::id()) << 32)
        ^ ROUNDS.fetch_add(1, Ordering::Relaxed).rotate_left(48)
        ^ u64::from(nanos)
}

/// `what: strerror`, as a target's error says it.
fn err(what: &str, e: &io::Error) -> String {
    format!("{what}: {}", strerror(e))
}

// ---------------------------------------------------------------------
// The round's loop: send on schedule, read replies in between.
// ---------------------------------------------------------------------

#[derive(Debug, Default)]
struct Tally {
    sent: u32,
    answered: u32,
    /// Probes known to have failed before the deadline (tcp).
    failed: u32,
    rtt_total: Duration,
    error: Option<String>,
}

impl Tally {
    fn answer(&mut self, rtt: Duration) {
        self.answered += 1;
        self.rtt_total += rtt;
    }

    fn pending(&self) -> bool {
        self.answered + self.failed < self.sent
    }

    fn result(self, target: IpAddr) -> TargetResult {
        TargetResult {
            target,
            sent: self.sent,
            answered: self.answered,
            rtt: (self.answered > 0).then(|| self.rtt_total / self.answered),
            error: if self.sent == 0 { self.error } else { None },
        }
    }
}

/// One method's sockets for some of the round's targets.
trait Engine {
    /// Sends one probe to each of its targets.
    fn send(&mut self, tallies: &mut [Tally]);
    /// Adds the descriptors to wait on.
    fn fds(&self, out: &mut Vec<libc::pollfd>);
    /// Handles what poll reported on the descriptors `fds` added.
    fn ready(&mut self, fds: &[libc::pollfd], tallies: &mut [Tally]);
}

fn pollfd(fd: &impl AsRawFd, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    }
}

/// Handles replies until `until`, or (if `last`) until no probe is pending.
fn wait(engines: &mut [Box<dyn Engine>], tallies: &mut [Tally], until: Instant, last: bool) {
    let mut fds = Vec::new();
    let mut ends = Vec::new();
    loop {
        if last && !tallies.iter().any(Tally::pending) {
            return;
        }
        let now = Instant::now();
        if now >= until {
            return;
        }
        fds.clear();
        ends.clear();
        for e in engines.iter() {
            e.fds(&mut fds);
            ends.push(fds.len());
        }
        // At most an hour at a time, so that any time_t holds it.
        let left = (until - now).min(Duration::from_secs(3600));
        let ts = libc::timespec {
            tv_sec: left.as_secs() as _,
            tv_nsec: left.subsec_nanos() as _,
        };
        // SAFETY: `fds` is an exclusively borrowed, initialised array of
        // `fds.len()` pollfds and `ts` a valid timespec, both live for the
        // call; a null signal mask leaves the thread's mask as it is.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if n < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // ENOMEM or the like: try again soon, without spinning.
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
        if n <= 0 {
            continue;
        }
        let mut from = 0;
        for (e, &end) in engines.iter_mut().zip(&ends) {
            if fds[from..end].iter().any(|f| f.revents != 0) {
                e.ready(&fds[from..end], tallies);
            }
            from = end;
        }
    }
}

/// recvfrom into an initialised buffer.
fn recv_from(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
    // SAFETY: MaybeUninit<u8> has u8's layout, and socket2's recv_from
    // never writes uninitialised bytes (it hands the buffer to recvfrom(2),
    // see Socket::recv), so `buf` stays initialised for its later uses.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    sock.recv_from(uninit)
}

/// setsockopt with an array of u32 (the ICMP filters).
fn set_u32s(sock: &Socket, level: libc::c_int, name: libc::c_int, data: &[u32]) -> io::Result<()> {
    // SAFETY: `data` points to `size_of_val(data)` initialised bytes that
    // live for the call, and setsockopt only reads them.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            data.as_ptr().cast(),
            std::mem::size_of_val(data) as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A socket bound to the uplink's device and, if known, its address.
fn bound_socket(
    dev: &str,
    domain: Domain,
    ty: Type,
    proto: Protocol,
    src: Option<IpAddr>,
) -> Result<Socket, String> {
    let sock = Socket::new(domain, ty, Some(proto)).map_err(|e| err("socket", &e))?;
    sock.bind_device(Some(dev.as_bytes()))
        .map_err(|e| err("SO_BINDTODEVICE", &e))?;
    if let Some(src) = src {
        sock.bind(&SocketAddr::new(src, 0).into())
            .map_err(|e| err(&format!("bind {src}"), &e))?;
    }
    Ok(sock)
}

/// The uplink's source address of the target's family.
fn source(up: &Uplink, target: IpAddr) -> Option<IpAddr> {
    match target {
        IpAddr::V4(_) => up.src4.map(IpAddr::V4),
        IpAddr::V6(_) => up.src6.map(IpAddr::V6),
    }
}

/// The target's socket address; link-local IPv6 needs the device's scope.
fn target_addr(up: &Uplink, target: IpAddr, port: u16) -> SockAddr {
    match target {
        IpAddr::V6(t) if t.segments()[0] & 0xffc0 == 0xfe80 => {
            SocketAddrV6::new(t, port, 0, up.ifindex).into()
        }
        _ => SocketAddr::new(target, port).into(),
    }
}

// ---------------------------------------------------------------------
// ICMP echo.
// ---------------------------------------------------------------------

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO: u8 = 8;
const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;
/// linux/icmp.h and linux/icmpv6.h: a bitmap of ICMP types the raw socket
/// does not queue.
const ICMP_FILTER: libc::c_int = 1;
const ICMPV6_FILTER: libc::c_int = 1;
/// Bytes of payload after the nonce, so the echo is not tiny.
const PAD: &[u8] = b"mpbal-pr";

/// An echo request: type, code, checksum, identifier, sequence, then the
/// nonce and padding. ICMPv6's checksum is left to the kernel.
fn echo_request(v6: bool, ident: u16, seq: u16, nonce: u64) -> Vec<u8> {
    let mut p = vec![if v6 { ICMP6_ECHO_REQUEST } else { ICMP_ECHO }, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&nonce.to_be_bytes());
    p.extend_from_slice(PAD);
    if !v6 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// An echo reply's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Echo {
    src: IpAddr,
    ident: u16,
    seq: u16,
    nonce: Option<u64>,
}

fn echo_fields(src: IpAddr, icmp: &[u8]) -> Option<Echo> {
    Some(Echo {
        src,
        ident: u16::from_be_bytes([*icmp.get(4)?, *icmp.get(5)?]),
        seq: u16::from_be_bytes([*icmp.get(6)?, *icmp.get(7)?]),
        nonce: icmp
            .get(8..16)
            .map(|n| u64::from_be_bytes(n.try_into().expect("8 bytes"))),
    })
}

/// An ICMPv4 echo reply as a raw socket delivers it: with its IP header.
fn parse_reply_v4(pkt: &[u8]) -> Option<Echo> {
    let ihl = usize::from(*pkt.first()? & 0x0f) * 4;
    if pkt[0] >> 4 != 4 || ihl < 20 || pkt.get(9) != Some(&(libc::IPPROTO_ICMP as u8)) {
        return None;
    }
    let icmp = pkt.get(ihl..)?;
    if icmp.len() < 8 || icmp[0] != ICMP_ECHO_REPLY || icmp[1] != 0 || checksum(icmp) != 0 {
        return None;
    }
    let src: [u8; 4] = pkt[12..16].try_into().ok()?;
    echo_fields(IpAddr::from(src), icmp)
}

/// An ICMPv6 echo reply as a raw socket delivers it: without the IPv6
/// header (and with the checksum checked by the kernel).
fn parse_reply_v6(src: Ipv6Addr, icmp: &[u8]) -> Option<Echo> {
    if icmp.len() < 8 || icmp[0] != ICMP6_ECHO_REPLY || icmp[1] != 0 {
        return None;
    }
    echo_fields(IpAddr::V6(src), icmp)
}

/// The round's outstanding echoes, and which replies answer them.
struct Echoes {
    ident: u16,
    nonce: u64,
    /// Sequence number: (target index, target, sent at).
    waiting: HashMap<u16, (usize, IpAddr, Instant)>,
}

impl Echoes {
    /// The target index and round-trip time that `reply` answers, if it
    /// is one of ours; each echo is answered at most once.
    fn answer(&mut self, reply: &Echo, now: Instant) -> Option<(usize, Duration)> {
        if reply.ident != self.ident || reply.nonce != Some(self.nonce) {
            return None;
        }
        match self.waiting.get(&reply.seq) {
            Some(&(i, target, at)) if target == reply.src => {
                self.waiting.remove(&reply.seq);
                Some((i, now.saturating_duration_since(at)))
            }
            _ => None,
        }
    }
}

struct Icmp {
    v6: bool,
    send: Socket,
    recv: Socket,
    /// Target index, address, socket address.
    targets: Vec<(usize, IpAddr, SockAddr)>,
    echoes: Echoes,
}

impl Icmp {
    /// `targets` are all of one family (`v6`).
    fn open(
        up: &Uplink,
        v6: bool,
        targets: Vec<(usize, IpAddr)>,
        ident: u16,
        nonce: u64,
    ) -> Result<Icmp, String> {
        let (domain, proto, level, filter) = if v6 {
            (
                Domain::IPV6,
                Protocol::ICMPV6,
                libc::IPPROTO_ICMPV6,
                ICMPV6_FILTER,
            )
        } else {
            (Domain::IPV4, Protocol::ICMPV4, libc::SOL_RAW, ICMP_FILTER)
        };
        // Received first, so that no reply comes before it exists.
        let recv = Socket::new(domain, Type::RAW, Some(proto)).map_err(|e| err("socket", &e))?;
        recv.set_nonblocking(true)
            .map_err(|e| err("O_NONBLOCK", &e))?;
        let src = if v6 {
            up.src6.map(IpAddr::V6)
        } else {
            up.src4.map(IpAddr::V4)
        };
        let send = bound_socket(up.dev, domain, Type::RAW, proto, src)?;
        // Every raw ICMP socket gets a copy of every ICMP packet: keep only
        // echo replies on `recv`, and nothing on `send`. Best effort: the
        // parsers check the type anyway.
        let pass = if v6 {
            ICMP6_ECHO_REPLY
        } else {
            ICMP_ECHO_REPLY
        };
        let mut mask = [u32::MAX; 8];
        let _ = set_u32s(&send, level, filter, if v6 { &mask } else { &mask[..1] });
        mask[usize::from(pass / 32)] &= !(1 << (pass % 32));
        let _ = set_u32s(&recv, level, filter, if v6 { &mask } else { &mask[..1] });
        Ok(Icmp {
            v6,
            send,
            recv,
            targets: targets
                .into_iter()
                .map(|(i, t)| (i, t, target_addr(up, t, 0)))
                .collect(),
            echoes: Echoes {
                ident,
                nonce,
                waiting: HashMap::new(),
            },
        })
    }
}

impl Engine for Icmp {
    fn send(&mut self, tallies: &mut [Tally]) {
        for (i, target, addr) in &self.targets {
            let seq = SEQ.fetch_add(1, Ordering::Relaxed);
            let pkt = echo_request(self.v6, self.echoes.ident, seq, self.echoes.nonce);
            let at = Instant::now();
            match self.send.send_to(&pkt, addr) {
                Ok(_) => {
                    tallies[*i].sent += 1;
                    self.echoes.waiting.insert(seq, (*i, *target, at));
                }
                Err(e) => tallies[*i].error = Some(err("sendto", &e)),
            }
        }
    }

    fn fds(&self, out: &mut Vec<libc::pollfd>) {
        out.push(pollfd(&self.recv, libc::POLLIN));
    }

    fn ready(&mut self, _: &[libc::pollfd], tallies: &mut [Tally]) {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = recv_from(&self.recv, &mut buf) {
            let now = Instant::now();
            let reply = match from.as_socket() {
                Some(SocketAddr::V6(from)) if self.v6 => parse_reply_v6(*from.ip(), &buf[..n]),
                _ if !self.v6 => parse_reply_v4(&buf[..n]),
                _ => None,
            };
            if let Some((i, rtt)) = reply.and_then(|r| self.echoes.answer(&r, now)) {
                tallies[i].answer(rtt);
            }
        }
    }
}

// ---------------------------------------------------------------------
// TCP connect.
// ---------------------------------------------------------------------

struct Tcp {
    dev: String,
    /// Target index, socket address, source address.
    targets: Vec<(usize, SockAddr, Option<IpAddr>)>,
    /// Connects in progress: target index, socket, started at.
    conns: Vec<(usize, Socket, Instant)>,
}

impl Tcp {
    fn new(up: &Uplink, port: u16, targets: Vec<(usize, IpAddr)>) -> Self {
        Tcp {
            dev: up.dev.to_string(),
            targets: targets
                .into_iter()
                .map(|(i, t)| (i, target_addr(up, t, port), source(up, t)))
                .collect(),
            conns: Vec::new(),
        }
    }

    /// Starts a non-blocking connect; Ok(None) if it already finished
    /// (refused or connected: both mean the host answered).
    fn connect(&self, target: &SockAddr, src: Option<IpAddr>) -> Result<Option<Socket>, String> {
        let sock = bound_socket(&self.dev, target.domain(), Type::STREAM, Protocol::TCP, src)?;
        sock.set_nonblocking(true)
            .map_err(|e| err("O_NONBLOCK", &e))?;
        // Close with a reset, leaving no TIME_WAIT behind each probe.
        sock.set_linger(Some(Duration::ZERO))
            .map_err(|e| err("SO_LINGER", &e))?;
        match sock.connect(target) {
            Ok(()) => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Some(sock)),
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(None),
            Err(e) => Err(err("connect", &e)),
        }
    }
}

impl Engine for Tcp {
    fn send(&mut self, tallies: &mut [Tally]) {
        for (i, target, src) in &self.targets {
            let (i, at) = (*i, Instant::now());
            match self.connect(target, *src) {
                Ok(Some(sock)) => {
                    tallies[i].sent += 1;
                    self.conns.push((i, sock, at));
                }
                Ok(None) => {
                    tallies[i].sent += 1;
                    tallies[i].answer(at.elapsed());
                }
                Err(e) => tallies[i].error = Some(e),
            }
        }
    }

    fn fds(&self, out: &mut Vec<libc::pollfd>) {
        out.extend(self.conns.iter().map(|(_, s, _)| pollfd(s, libc::POLLOUT)));
    }

    fn ready(&mut self, fds: &[libc::pollfd], tallies: &mut [Tally]) {
        let now = Instant::now();
        let mut fds = fds.iter();
        self.conns.retain(|(i, sock, at)| {
            if fds.next().is_none_or(|f| f.revents == 0) {
                return true;
            }
            match sock.take_error() {
                Ok(None) => tallies[*i].answer(now - *at),
                Ok(Some(e)) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    tallies[*i].answer(now - *at)
                }
                // Unreachable and the like: the path is not working.
                _ => tallies[*i].failed += 1,
            }
            false
        });
    }
}

// ---------------------------------------------------------------------
// ARP request.
// ---------------------------------------------------------------------

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const ARPHRD_ETHER: u16 = 1;
const ARPOP_REQUEST: u16 = 1;
const ARPOP_REPLY: u16 = 2;
const BROADCAST: [u8; 6] = [0xff; 6];

/// An Ethernet/IPv4 ARP packet (RFC 826), without the Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ArpPacket {
    op: u16,
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
}

impl ArpPacket {
    fn encode(&self) -> [u8; 28] {
        let mut p = [0u8; 28];
        p[0..2].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
        p[2..4].copy_from_slice(&ETH_P_IP.to_be_bytes());
        p[4] = 6;
        p[5] = 4;
        p[6..8].copy_from_slice(&self.op.to_be_bytes());
        p[8..14].copy_from_slice(&self.sha);
        p[14..18].copy_from_slice(&self.spa.octets());
        p[18..24].copy_from_slice(&self.tha);
        p[24..28].copy_from_slice(&self.tpa.octets());
        p
    }

    fn decode(p: &[u8]) -> Option<ArpPacket> {
        let p: &[u8; 28] = p.get(..28)?.try_into().ok()?;
        let be = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
        if be(0) != ARPHRD_ETHER || be(2) != ETH_P_IP || p[4] != 6 || p[5] != 4 {
            return None;
        }
        let ip = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
        let mac = |i: usize| -> [u8; 6] { p[i..i + 6].try_into().expect("6 bytes") };
        Some(ArpPacket {
            op: be(6),
            sha: mac(8),
            spa: ip(14),
            tha: mac(18),
            tpa: ip(24),
        })
    }
}

/// A link-layer address for ARP on `ifindex`.
fn ll_addr(ifindex: u32, mac: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of the platform's sockaddr types, and
    // view_as checks that it fits in the storage.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    ll.sll_protocol = ETH_P_ARP.to_be();
    ll.sll_ifindex = ifindex as libc::c_int;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&mac);
    // SAFETY: the storage was zeroed and then filled in as a sockaddr_ll
    // of family AF_PACKET, and the length is that of a sockaddr_ll.
    unsafe { SockAddr::new(storage, size_of::<libc::sockaddr_ll>() as libc::socklen_t) }
}

struct Arp {
    sock: Socket,
    mac: [u8; 6],
    src: Ipv4Addr,
    broadcast: SockAddr,
    /// Target index, address, the send times of its unanswered requests.
    targets: Vec<(usize, Ipv4Addr, VecDeque<Instant>)>,
}

impl Arp {
    fn open(up: &Uplink, targets: Vec<(usize, Ipv4Addr)>) -> Result<Arp, String> {
        let mac = dev_mac(up.dev).ok_or_else(|| format!("no hardware address for {}", up.dev))?;
        let proto = Protocol::from(i32::from(ETH_P_ARP.to_be()));
        let sock =
            Socket::new(Domain::PACKET, Type::DGRAM, Some(proto)).map_err(|e| err("socket", &e))?;
        sock.bind(&ll_addr(up.ifindex, [0; 6]))
            .map_err(|e| err("bind", &e))?;
        sock.set_nonblocking(true)
            .map_err(|e| err("O_NONBLOCK", &e))?;
        Ok(Arp {
            sock,
            mac,
            src: up.src4.unwrap_or(Ipv4Addr::UNSPECIFIED),
            broadcast: ll_addr(up.ifindex, BROADCAST),
            targets: targets
                .into_iter()
                .map(|(i, t)| (i, t, VecDeque::new()))
                .collect(),
        })
    }
}

impl Engine for Arp {
    fn send(&mut self, tallies: &mut [Tally]) {
        for (i, target, waiting) in &mut self.targets {
            let req = ArpPacket {
                op: ARPOP_REQUEST,
                sha: self.mac,
                spa: self.src,
                tha: [0; 6],
                tpa: *target,
            };
            let at = Instant::now();
            match self.sock.send_to(&req.encode(), &self.broadcast) {
                Ok(_) => {
                    tallies[*i].sent += 1;
                    waiting.push_back(at);
                }
                Err(e) => tallies[*i].error = Some(err("sendto", &e)),
            }
        }
    }

    fn fds(&self, out: &mut Vec<libc::pollfd>) {
        out.push(pollfd(&self.sock, libc::POLLIN));
    }

    fn ready(&mut self, _: &[libc::pollfd], tallies: &mut [Tally]) {
        let mut buf = [0u8; 128];
        while let Ok((n, _)) = recv_from(&self.sock, &mut buf) {
            let now = Instant::now();
            let Some(reply) = ArpPacket::decode(&buf[..n]) else {
                continue;
            };
            if reply.op != ARPOP_REPLY || reply.tha != self.mac {
                continue;
            }
            // A reply answers the target's oldest unanswered request.
            for (i, target, waiting) in &mut self.targets {
                if reply.spa == *target {
                    if let Some(at) = waiting.pop_front() {
                        tallies[*i].answer(now - at);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::net::TcpListener;
    use std::process::Command;
    use std::thread;

    use nix::sched::{setns, CloneFlags};

    fn probe(targets: &[&str], method: ProbeMethod, count: u32, timeout_ms: u64) -> config::Probe {
        config::Probe {
            targets: targets.iter().map(|t| t.parse().unwrap()).collect(),
            method,
            port: None,
            interval: Duration::from_secs(5),
            timeout: Duration::from_millis(timeout_ms),
            reliability: 1,
            count,
            down: 3,
            up: 3,
        }
    }

    const LO4: Uplink = Uplink {
        dev: "lo",
        ifindex: 1,
        src4: Some(Ipv4Addr::LOCALHOST),
        src6: Some(Ipv6Addr::LOCALHOST),
    };

    /// Asserts `r` answered all `count` probes without error.
    fn assert_all(r: &TargetResult, count: u32) {
        assert_eq!(
            (r.sent, r.answered, &r.error),
            (count, count, &None),
            "{r:?}"
        );
        assert!(
            r.rtt.is_some_and(|t| t < Duration::from_millis(500)),
            "{r:?}"
        );
    }

    #[test]
    fn checksum_rfc1071() {
        // RFC 1071 section 3's example: the sum is ddf2, the checksum its complement.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        // An odd length pads with a zero byte.
        assert_eq!(checksum(&[0x12, 0x34, 0x56]), !(0x1234u16 + 0x5600));
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn checksum_of_a_known_echo_request() {
        // The echo request Windows' ping sends (identifier 1, sequence 5),
        // whose checksum as captured is 4d56.
        let mut pkt = vec![0x08, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x05];
        pkt.extend_from_slice(b"abcdefghijklmnopqrstuvwabcdefghi");
        assert_eq!(checksum(&pkt), 0x4d56);
        pkt[2..4].copy_from_slice(&0x4d56u16.to_be_bytes());
        assert_eq!(checksum(&pkt), 0);
    }

    #[test]
    fn echo_request_layout() {
        let p = echo_request(false, 0xabcd, 0x0102, 0x1122_3344_5566_7788);
        assert_eq!(&p[..2], &[ICMP_ECHO, 0]);
        assert_eq!(&p[4..8], &[0xab, 0xcd, 0x01, 0x02]);
        assert_eq!(&p[8..16], &0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(checksum(&p), 0);
        // ICMPv6: the kernel fills the checksum in.
        let p = echo_request(true, 0xabcd, 0x0102, 7);
        assert_eq!(&p[..4], &[ICMP6_ECHO_REQUEST, 0, 0, 0]);
    }

    /// An IPv4 packet from `src` carrying `icmp`, with `opts` bytes of IP options.
    fn ipv4(src: [u8; 4], icmp: &[u8], opts: usize) -> Vec<u8> {
        let mut p = vec![0u8; 20 + opts];
        p[0] = 0x40 | ((20 + opts) / 4) as u8;
        p[9] = 1;
        p[12..16].copy_from_slice(&src);
        p.extend_from_slice(icmp);
        p
    }

    fn echo_reply(ident: u16, seq: u16, nonce: u64) -> Vec<u8> {
        let mut p = echo_request(false, ident, seq, nonce);
        p[0] = ICMP_ECHO_REPLY;
        p[2..4].fill(0);
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
        p
    }

    #[test]
    fn parse_v4_replies() {
        let reply = echo_reply(7, 9, 42);
        let want = Echo {
            src: "192.0.2.5".parse().unwrap(),
            ident: 7,
            seq: 9,
            nonce: Some(42),
        };
        assert_eq!(parse_reply_v4(&ipv4([192, 0, 2, 5], &reply, 0)), Some(want));
        // The IHL says where ICMP starts, after any IP options.
        assert_eq!(parse_reply_v4(&ipv4([192, 0, 2, 5], &reply, 8)), Some(want));
        let mut bad = reply.clone();
        bad[9] ^= 1;
        assert_eq!(
            parse_reply_v4(&ipv4([192, 0, 2, 5], &bad, 0)),
            None,
            "bad checksum"
        );
        let req = echo_request(false, 7, 9, 42);
        assert_eq!(
            parse_reply_v4(&ipv4([192, 0, 2, 5], &req, 0)),
            None,
            "a request"
        );
        assert_eq!(
            parse_reply_v4(&ipv4([192, 0, 2, 5], &reply[..6], 0)),
            None,
            "short"
        );
        assert_eq!(parse_reply_v4(&[0x45]), None);
        // ICMPv6 comes without its IP header.
        let mut r6 = echo_request(true, 7, 9, 42);
        r6[0] = ICMP6_ECHO_REPLY;
        let e = parse_reply_v6(Ipv6Addr::LOCALHOST, &r6).unwrap();
        assert_eq!((e.ident, e.seq, e.nonce), (7, 9, Some(42)));
        assert_eq!(
            parse_reply_v6(Ipv6Addr::LOCALHOST, &echo_request(true, 7, 9, 42)),
            None
        );
    }

    #[test]
    fn replies_match_ident_nonce_source_and_sequence() {
        let t0 = Instant::now();
        let target: IpAddr = "192.0.2.5".parse().unwrap();
        let mut echoes = Echoes {
            ident: 7,
            nonce: 42,
            waiting: HashMap::from([(9, (3, target, t0)), (10, (3, target, t0))]),
        };
        let reply = Echo {
            src: target,
            ident: 7,
            seq: 9,
            nonce: Some(42),
        };
        let now = t0 + Duration::from_millis(5);
        for other in [
            Echo { ident: 8, ..reply },
            Echo {
                nonce: Some(43),
                ..reply
            },
            Echo {
                nonce: None,
                ..reply
            },
            Echo {
                src: "192.0.2.6".parse().unwrap(),
                ..reply
            },
            Echo { seq: 11, ..reply },
        ] {
            assert_eq!(echoes.answer(&other, now), None, "{other:?}");
        }
        assert_eq!(
            echoes.answer(&reply, now),
            Some((3, Duration::from_millis(5)))
        );
        assert_eq!(echoes.answer(&reply, now), None, "a duplicate");
        assert_eq!(
            echoes.answer(&Echo { seq: 10, ..reply }, now).map(|a| a.0),
            Some(3)
        );
    }

    #[test]
    fn arp_packets() {
        let req = ArpPacket {
            op: ARPOP_REQUEST,
            sha: [2, 0, 0, 0, 0, 1],
            spa: Ipv4Addr::new(192, 0, 2, 1),
            tha: [0; 6],
            tpa: Ipv4Addr::new(192, 0, 2, 254),
        };
        let bytes = req.encode();
        #[rustfmt::skip]
        let want = [
            0, 1, 8, 0, 6, 4, 0, 1,
            2, 0, 0, 0, 0, 1, 192, 0, 2, 1,
            0, 0, 0, 0, 0, 0, 192, 0, 2, 254,
        ];
        assert_eq!(bytes, want);
        assert_eq!(ArpPacket::decode(&bytes), Some(req));
        // Ethernet pads frames: what follows the 28 bytes is ignored.
        let mut padded = bytes.to_vec();
        padded.extend_from_slice(&[0; 18]);
        assert_eq!(ArpPacket::decode(&padded), Some(req));
        assert_eq!(ArpPacket::decode(&bytes[..27]), None);
        let mut ipx = bytes;
        ipx[2] = 0x81;
        assert_eq!(ArpPacket::decode(&ipx), None);
    }

    #[test]
    fn icmp4_loopback_answers() {
        let r = round(
            &LO4,
            &probe(&["127.0.0.1"], ProbeMethod::Icmp, 2, 1000),
            0x4d01,
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].target, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_all(&r[0], 2);
    }

    #[test]
    fn icmp_unanswered_ends_at_timeout() {
        // TEST-NET-1 out of lo: sent, or refused, but never answered.
        let p = probe(&["192.0.2.1", "127.0.0.1"], ProbeMethod::Icmp, 3, 300);
        let t0 = Instant::now();
        let r = round(&LO4, &p, 0x4d02);
        let took = t0.elapsed();
        assert_eq!((r[0].answered, r[0].rtt), (0, None), "{r:?}");
        assert_all(&r[1], 3);
        assert!(
            took >= Duration::from_millis(300) || r[0].sent == 0,
            "{took:?}"
        );
        assert!(took < Duration::from_millis(350), "{took:?}");
    }

    #[test]
    fn icmp_without_the_device_says_why() {
        let up = Uplink {
            dev: "mpbal-nodev0",
            ifindex: 999,
            src4: None,
            src6: None,
        };
        let t0 = Instant::now();
        let r = round(
            &up,
            &probe(&["127.0.0.1", "::1"], ProbeMethod::Icmp, 2, 1000),
            0x4d03,
        );
        assert!(
            t0.elapsed() < Duration::from_millis(100),
            "nothing to wait for"
        );
        for r in &r {
            assert_eq!((r.sent, r.answered), (0, 0));
            assert_eq!(r.error.as_deref(), Some("SO_BINDTODEVICE: No such device"));
        }
    }

    #[test]
    fn icmp6_loopback_answers() {
        let inet6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap();
        assert!(
            inet6
                .lines()
                .any(|l| l.starts_with("00000000000000000000000000000001 ")),
            "this test needs ::1 on lo"
        );
        // IPv4 and IPv6 targets in one round.
        let r = round(
            &LO4,
            &probe(&["::1", "127.0.0.1"], ProbeMethod::Icmp, 2, 1000),
            0x4d04,
        );
        assert_eq!(r[0].target, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_all(&r[0], 2);
        assert_all(&r[1], 2);
    }

    #[test]
    fn concurrent_rounds_count_their_own_replies() {
        let p = probe(&["127.0.0.1"], ProbeMethod::Icmp, 3, 1000);
        let results = thread::scope(|s| {
            let a = s.spawn(|| round(&LO4, &p, 0x4d05));
            let b = s.spawn(|| round(&LO4, &p, 0x4d06));
            [a.join().unwrap(), b.join().unwrap()]
        });
        for r in &results {
            assert_all(&r[0], 3);
        }
    }

    #[test]
    fn tcp_listener_and_closed_port_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut p = probe(&["127.0.0.1"], ProbeMethod::Tcp, 2, 1000);
        p.port = Some(listener.local_addr().unwrap().port());
        assert_all(&round(&LO4, &p, 0)[0], 2);
        // A closed port: the host answers with a reset.
        drop(listener);
        assert_all(&round(&LO4, &p, 0)[0], 2);
    }

    #[test]
    fn tcp_without_the_device_says_why() {
        let up = Uplink {
            dev: "mpbal-nodev0",
            ..LO4
        };
        let mut p = probe(&["127.0.0.1"], ProbeMethod::Tcp, 2, 1000);
        p.port = Some(9);
        let r = round(&up, &p, 0);
        assert_eq!((r[0].sent, r[0].answered), (0, 0));
        assert_eq!(
            r[0].error.as_deref(),
            Some("SO_BINDTODEVICE: No such device")
        );
    }

    // -----------------------------------------------------------------
    // Two network namespaces joined by two veth pairs:
    //
    //   A: va1 10.231.1.1/24, fd31::1/64  <->  B: vb1 10.231.1.2/24
    //   A: va2 10.231.2.1/24              <->  B: vb2 10.231.2.2/24
    //   B: lo 10.231.9.9/32
    //
    // A reaches 10.231.9.9 through either; B answers 10.231.1.1 through
    // vb2, so echoes sent out of va1 come back in on va2.
    // -----------------------------------------------------------------

    struct Pair {
        a: String,
        b: String,
    }

    fn ip(args: &str) {
        let st = Command::new("ip")
            .args(args.split_whitespace())
            .status()
            .unwrap();
        assert!(st.success(), "ip {args}");
    }

    impl Pair {
        fn new(tag: &str) -> Pair {
            let pid = std::process::id();
            let pair = Pair {
                a: format!("mpbal-probe-{pid}-{tag}-a"),
                b: format!("mpbal-probe-{pid}-{tag}-b"),
            };
            let (a, b) = (pair.a.as_str(), pair.b.as_str());
            // New namespaces copy the host's IPv4 settings: set those that matter.
            let sysctls = "for c in all default; do \
                echo 0 > /proc/sys/net/ipv4/conf/$c/rp_filter; \
                echo 0 > /proc/sys/net/ipv4/conf/$c/arp_ignore; done";
            for ns in [a, b] {
                ip(&format!("netns add {ns}"));
                let st = Command::new("ip")
                    .args(["netns", "exec", ns, "sh", "-c", sysctls])
                    .status()
                    .unwrap();
                assert!(st.success(), "sysctls in {ns}");
                ip(&format!("-n {ns} link set lo up"));
            }
            for n in [1, 2] {
                ip(&format!(
                    "-n {a} link add va{n} type veth peer name vb{n} netns {b}"
                ));
                ip(&format!("-n {a} addr add 10.231.{n}.1/24 dev va{n}"));
                ip(&format!("-n {b} addr add 10.231.{n}.2/24 dev vb{n}"));
                ip(&format!("-n {a} link set va{n} up"));
                ip(&format!("-n {b} link set vb{n} up"));
            }
            ip(&format!("-n {a} addr add fd31::1/64 dev va1 nodad"));
            ip(&format!("-n {b} addr add 10.231.9.9/32 dev lo"));
            ip(&format!(
                "-n {a} route add 10.231.9.9 via 10.231.1.2 dev va1"
            ));
            ip(&format!(
                "-n {a} route add 10.231.9.9 via 10.231.2.2 dev va2 metric 10"
            ));
            ip(&format!(
                "-n {b} route add 10.231.1.1 via 10.231.2.1 dev vb2"
            ));
            pair
        }

        /// Runs `f` on a thread in namespace A.
        fn in_a<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
            thread::scope(|s| {
                s.spawn(|| {
                    let ns = File::open(format!("/run/netns/{}", self.a)).unwrap();
                    setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
                    f()
                })
                .join()
                .unwrap()
            })
        }

        /// The uplink through `dev` in A.
        fn uplink(dev: &str) -> Uplink<'_> {
            let (src4, src6) = dev_addrs(dev);
            Uplink {
                dev,
                ifindex: nix::net::if_::if_nametoindex(dev).unwrap(),
                src4,
                src6,
            }
        }
    }

    impl Drop for Pair {
        fn drop(&mut self) {
            for ns in [&self.a, &self.b] {
                let _ = Command::new("ip").args(["netns", "del", ns]).status();
            }
        }
    }

    #[test]
    fn dev_addrs_primary_v4_and_global_v6() {
        let pair = Pair::new("addrs");
        // A secondary address, which is not the one to pick.
        ip(&format!("-n {} addr add 10.231.1.100/24 dev va1", pair.a));
        pair.in_a(|| {
            let fd31: Ipv6Addr = "fd31::1".parse().unwrap();
            assert_eq!(
                dev_addrs("va1"),
                (Some(Ipv4Addr::new(10, 231, 1, 1)), Some(fd31))
            );
            // va2 has only a link-local IPv6 address.
            assert_eq!(dev_addrs("va2"), (Some(Ipv4Addr::new(10, 231, 2, 1)), None));
            assert_eq!(dev_addrs("lo"), (Some(Ipv4Addr::LOCALHOST), None));
            assert_eq!(dev_addrs("mpbal-nodev0"), (None, None));
        });
    }

    #[test]
    fn icmp_replies_on_another_device_count() {
        let pair = Pair::new("asym");
        let route = Command::new("ip")
            .args(["-n", &pair.b, "route", "get", "10.231.1.1"])
            .output()
            .unwrap();
        let route = String::from_utf8_lossy(&route.stdout);
        assert!(
            route.contains(" dev vb2 "),
            "B answers va1 via vb2: {route}"
        );
        let r = pair.in_a(|| {
            let p = probe(&["10.231.9.9"], ProbeMethod::Icmp, 2, 1000);
            [
                round(&Pair::uplink("va1"), &p, 0x4d07),
                round(&Pair::uplink("va2"), &p, 0x4d08),
            ]
        });
        // Through va1 the replies come back in on va2; through va2 on va2.
        assert_all(&r[0][0], 2);
        assert_all(&r[1][0], 2);
    }

    #[test]
    fn arp_gateway_answers() {
        let pair = Pair::new("arp");
        let (with_src, without_src) = pair.in_a(|| {
            let p = probe(&["10.231.1.2", "10.231.1.77"], ProbeMethod::Arp, 2, 500);
            let up = Pair::uplink("va1");
            let t0 = Instant::now();
            let with_src = round(&up, &p, 0);
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(500), "{took:?}");
            assert!(took < Duration::from_millis(550), "{took:?}");
            // Without an address, an ARP probe (sender 0.0.0.0, RFC 5227).
            let up = Uplink { src4: None, ..up };
            (
                with_src,
                round(&up, &probe(&["10.231.1.2"], ProbeMethod::Arp, 2, 500), 0),
            )
        });
        assert_all(&with_src[0], 2);
        assert_eq!(
            (with_src[1].sent, with_src[1].answered),
            (2, 0),
            "{with_src:?}"
        );
        assert_all(&without_src[0], 2);
    }
}
