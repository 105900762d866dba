// SPDX-License-Identifier: GPL-2.0

//! `ip route`-style grammar for the route object, hand-parsed because clap
//! cannot express repeated `nexthop via .. dev .. weight ..` groups.
//!
//! Top-level keywords (equalize, table, metric, proto) may appear anywhere;
//! a nexthop group runs from `nexthop` to the first word that is not one of
//! its own keywords (via, dev, weight), so the two never clash.

use std::net::Ipv4Addr;
use std::slice::Iter;

use crate::error::Error;
use crate::rtnames::{RtNames, ETC_DIR, RT_TABLE_MAIN};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.len, self.addr.is_unspecified()) {
            (0, true) => f.write_str("default"),
            (32, _) => write!(f, "{}", self.addr),
            _ => write!(f, "{}/{}", self.addr, self.len),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHopSpec {
    pub via: Option<Ipv4Addr>,
    pub dev: Option<String>,
    /// 1..=256; sent as rtnh_hops = weight - 1.
    pub weight: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Add,
    Replace,
    Del,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub dst: Prefix,
    pub equalize: bool,
    pub nexthops: Vec<NextHopSpec>,
    pub table: u32,
    pub metric: Option<u32>,
    pub proto: Option<u8>,
}

/// Which tables `route show` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableSel {
    One(u32),
    All,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::usage(msg)
}

/// `A.B.C.D/LEN`, `A.B.C.D` (a /32) or `default`. Host bits must be clear,
/// as the kernel requires ("Invalid prefix for given prefix length").
pub fn parse_prefix(s: &str) -> Result<Prefix, Error> {
    if s == "default" {
        return Ok(Prefix {
            addr: Ipv4Addr::UNSPECIFIED,
            len: 0,
        });
    }
    let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| bad(format!("invalid prefix \"{s}\"")))?;
    let len: u8 = match len.parse() {
        Ok(l) if l <= 32 && len.bytes().all(|b| b.is_ascii_digit()) => l,
        _ => return Err(bad(format!("invalid prefix length in \"{s}\""))),
    };
    let host_mask = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
    if u32::from(addr) & host_mask != 0 {
        return Err(bad(format!(
            "invalid prefix \"{s}\": host bits set (did you mean {}/{len}?)",
            Ipv4Addr::from(u32::from(addr) & !host_mask)
        )));
    }
    Ok(Prefix { addr, len })
}

/// A table name (see rtnames) or number. Table 0 is refused: the kernel
/// would take it as main for add and del, and ip as "all" for show.
pub fn parse_table(s: &str, names: &RtNames) -> Result<u32, Error> {
    match names.table_id(s) {
        Some(0) => Err(bad(format!(
            "invalid table \"{s}\": table 0 (unspec) is no table; say main"
        ))),
        Some(t) => Ok(t),
        None => Err(bad(format!(
            "invalid table \"{s}\": not a number, nor a name in {ETC_DIR}/rt_tables"
        ))),
    }
}

/// A protocol name (see rtnames) or number 0..255.
pub fn parse_proto(s: &str, names: &RtNames) -> Result<u8, Error> {
    names.proto_id(s).ok_or_else(|| {
        bad(format!(
            "invalid protocol \"{s}\": not a number 0..255, nor a name in {ETC_DIR}/rt_protos"
        ))
    })
}

fn value<'a>(it: &mut Iter<'a, String>, key: &str) -> Result<&'a str, Error> {
    it.next()
        .map(String::as_str)
        .ok_or_else(|| bad(format!("\"{key}\" needs an argument")))
}

fn set_once<T>(slot: &mut Option<T>, v: T, key: &str) -> Result<(), Error> {
    if slot.replace(v).is_some() {
        return Err(bad(format!("duplicate \"{key}\"")));
    }
    Ok(())
}

/// Parse everything after `route add|replace|del`.
pub fn parse_route(verb: Verb, args: &[String], names: &RtNames) -> Result<RouteSpec, Error> {
    let mut dst = None;
    let mut equalize = false;
    let mut nexthops = Vec::new();
    let mut table = None;
    let mut metric = None;
    let mut proto = None;

    let mut it = args.iter();
    while let Some(tok) = it.next() {
        match tok.as_str() {
            "equalize" => equalize = true,
            "table" => set_once(&mut table, parse_table(value(&mut it, tok)?, names)?, tok)?,
            "metric" | "priority" | "preference" => {
                let v = value(&mut it, tok)?;
                let m = v
                    .parse()
                    .map_err(|_| bad(format!("invalid metric \"{v}\"")))?;
                set_once(&mut metric, m, "metric")?;
            }
            "proto" | "protocol" => set_once(
                &mut proto,
                parse_proto(value(&mut it, tok)?, names)?,
                "proto",
            )?,
            "nexthop" => {
                let (nh, rest) = parse_nexthop(it.as_slice())?;
                nexthops.push(nh);
                it = rest.iter();
            }
            "to" => set_once(&mut dst, parse_prefix(value(&mut it, tok)?)?, "to")?,
            "via" | "dev" | "weight" => {
                return Err(bad(format!(
                    "\"{tok}\" must follow \"nexthop\" (NH := nexthop via GW dev DEV [weight N])"
                )))
            }
            other if dst.is_none() => dst = Some(parse_prefix(other)?),
            other => {
                return Err(bad(format!(
                    "either \"to\" is duplicate, or \"{other}\" is garbage"
                )))
            }
        }
    }

    let dst = dst.ok_or_else(|| bad("missing PREFIX"))?;
    if verb != Verb::Del && nexthops.is_empty() {
        return Err(bad(
            "missing nexthop (NH := nexthop via GW dev DEV [weight N])",
        ));
    }
    // The kernel keeps a one-nexthop route as a single-path route: mpbal
    // never balances it and its dump drops the equalize flag (fib_dump_info()
    // sets rtm_flags from the nexthop alone), so route show would not list it.
    if verb != Verb::Del && equalize && nexthops.len() < 2 {
        return Err(bad(
            "\"equalize\" needs two or more nexthops: the kernel keeps a one-nexthop \
             route as a single-path route, which mpbal does not balance and which \
             route show cannot list; add a nexthop or drop \"equalize\"",
        ));
    }
    Ok(RouteSpec {
        dst,
        equalize,
        nexthops,
        table: table.unwrap_or(RT_TABLE_MAIN),
        metric,
        proto,
    })
}

/// One `nexthop` group; returns it and the words after it.
fn parse_nexthop(args: &[String]) -> Result<(NextHopSpec, &[String]), Error> {
    let mut via = None;
    let mut dev = None;
    let mut weight = None;
    let mut it = args.iter();
    loop {
        let rest = it.as_slice();
        let Some(tok) = it.next() else {
            break;
        };
        match tok.as_str() {
            "via" => {
                let v = value(&mut it, tok)?;
                let gw: Ipv4Addr = v
                    .parse()
                    .map_err(|_| bad(format!("invalid gateway \"{v}\" (IPv4 only)")))?;
                set_once(&mut via, gw, tok)?;
            }
            "dev" => {
                let d = value(&mut it, tok)?;
                crate::mpbal::check_ifname(d)?;
                set_once(&mut dev, d.to_string(), tok)?;
            }
            "weight" => {
                let v = value(&mut it, tok)?;
                let w = match v.parse::<u16>() {
                    Ok(w) if (1..=256).contains(&w) => w,
                    _ => return Err(bad(format!("invalid weight \"{v}\" (1..256)"))),
                };
                set_once(&mut weight, w, tok)?;
            }
            _ => {
                it = rest.iter();
                break;
            }
        }
    }
    if via.is_none() && dev.is_none() {
        return Err(bad("nexthop needs \"via GW\" and/or \"dev DEV\""));
    }
    let nh = NextHopSpec {
        via,
        dev,
        weight: weight.unwrap_or(1),
    };
    Ok((nh, it.as_slice()))
}

/// `route show [table T|all]`; like ip, a table named "all" wins over all.
pub fn parse_show(args: &[String], names: &RtNames) -> Result<TableSel, Error> {
    let mut sel = None;
    let mut it = args.iter();
    while let Some(tok) = it.next() {
        match tok.as_str() {
            "table" => {
                let v = value(&mut it, tok)?;
                let t = if v == "all" && names.table_id(v).is_none() {
                    TableSel::All
                } else {
                    TableSel::One(parse_table(v, names)?)
                };
                set_once(&mut sel, t, tok)?;
            }
            other => {
                return Err(bad(format!(
                    "unexpected \"{other}\" (route show [table T|all])"
                )))
            }
        }
    }
    Ok(sel.unwrap_or(TableSel::One(RT_TABLE_MAIN)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn route(verb: Verb, s: &str) -> Result<RouteSpec, Error> {
        parse_route(verb, &args(s), &RtNames::builtin())
    }

    fn nh(via: &str, dev: &str, weight: u16) -> NextHopSpec {
        NextHopSpec {
            via: (!via.is_empty()).then(|| via.parse().unwrap()),
            dev: (!dev.is_empty()).then(|| dev.to_string()),
            weight,
        }
    }

    #[test]
    fn prefixes() {
        assert_eq!(
            parse_prefix("20.0.0.0/24").unwrap(),
            Prefix {
                addr: Ipv4Addr::new(20, 0, 0, 0),
                len: 24
            }
        );
        assert_eq!(parse_prefix("1.2.3.4").unwrap().len, 32);
        assert_eq!(parse_prefix("default").unwrap().len, 0);
        assert_eq!(parse_prefix("0.0.0.0/0").unwrap().to_string(), "default");
        assert_eq!(parse_prefix("1.2.3.4/32").unwrap().to_string(), "1.2.3.4");
        assert_eq!(
            parse_prefix("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        for bad in [
            "",
            "/",
            "1.2.3/24",
            "1.2.3.4/33",
            "1.2.3.0/-1",
            "1.2.3.0/+24",
            "1.2.3.0/",
            "256.0.0.0/8",
            "20.0.0.1/24",
            "::1/128",
            "x",
            "1.2.3.4/24/1",
            "Default",
        ] {
            assert_eq!(parse_prefix(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
        assert!(parse_prefix("20.0.0.1/24")
            .unwrap_err()
            .message()
            .contains("20.0.0.0/24"));
    }

    #[test]
    fn full_add() {
        let r = route(
            Verb::Add,
            "equalize 20.0.0.0/24 nexthop via 10.0.1.2 dev veth1 weight 1 \
             nexthop via 10.0.2.2 dev veth2 weight 2 table 100 metric 5 proto static",
        )
        .unwrap();
        assert!(r.equalize);
        assert_eq!(r.dst.to_string(), "20.0.0.0/24");
        assert_eq!(
            r.nexthops,
            vec![nh("10.0.1.2", "veth1", 1), nh("10.0.2.2", "veth2", 2)]
        );
        assert_eq!((r.table, r.metric, r.proto), (100, Some(5), Some(4)));
    }

    #[test]
    fn defaults_and_flexible_order() {
        let r = route(
            Verb::Replace,
            "to default table main nexthop dev eth0 nexthop weight 3 dev eth1 via 1.1.1.1",
        )
        .unwrap();
        assert!(!r.equalize);
        assert_eq!(r.dst.len, 0);
        assert_eq!(r.table, RT_TABLE_MAIN);
        assert_eq!(r.metric, None);
        assert_eq!(
            r.nexthops,
            vec![nh("", "eth0", 1), nh("1.1.1.1", "eth1", 3)]
        );
        let r = route(
            Verb::Add,
            "1.0.0.0/8 nexthop via 2.2.2.2 equalize nexthop dev a",
        )
        .unwrap();
        assert!(r.equalize);
        assert_eq!(r.nexthops, vec![nh("2.2.2.2", "", 1), nh("", "a", 1)]);
    }

    #[test]
    fn equalize_needs_two_nexthops() {
        for s in [
            "equalize 1.0.0.0/8 nexthop via 2.2.2.2",
            "1.0.0.0/8 nexthop dev a weight 3 equalize",
        ] {
            for verb in [Verb::Add, Verb::Replace] {
                let e = route(verb, s).unwrap_err();
                assert_eq!(e.exit_code(), 2, "{s}");
                assert!(e.message().contains("two or more nexthops"), "{e}");
            }
        }
        // A plain single-path route is fine, and so is deleting anything.
        assert_eq!(
            route(Verb::Add, "1.0.0.0/8 nexthop dev a")
                .unwrap()
                .nexthops
                .len(),
            1
        );
        assert!(route(Verb::Del, "equalize 1.0.0.0/8 nexthop dev a").is_ok());
    }

    #[test]
    fn del_without_nexthops() {
        let r = route(Verb::Del, "20.0.0.0/24 table 7 metric 3").unwrap();
        assert!(r.nexthops.is_empty());
        assert_eq!((r.table, r.metric), (7, Some(3)));
    }

    #[test]
    fn bad_routes() {
        for (verb, s) in [
            (Verb::Add, ""),
            (Verb::Add, "20.0.0.0/24"),
            (Verb::Add, "nexthop via 1.1.1.1 dev a"),
            (Verb::Del, "table 5"),
            (Verb::Add, "20.0.0.0/24 30.0.0.0/24 nexthop dev a"),
            (Verb::Add, "20.0.0.0/24 via 1.1.1.1 dev a"),
            (Verb::Add, "20.0.0.0/24 nexthop"),
            (Verb::Add, "20.0.0.0/24 nexthop weight 2"),
            (Verb::Add, "20.0.0.0/24 nexthop via"),
            (Verb::Add, "20.0.0.0/24 nexthop via x dev a"),
            (Verb::Add, "20.0.0.0/24 nexthop via fe80::1 dev a"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a weight 0"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a weight 257"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a weight -1"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a weight x"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a dev b"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a/b"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a table"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a table x"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a table 0"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a table unspec"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a table 4294967296"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a table 08"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a table 1 table 2"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a metric -1"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a metric 4294967296"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a proto nosuch"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a proto 256"),
            (Verb::Add, "20.0.0.0/24 nexthop dev a garbage"),
        ] {
            let e = route(verb, s).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{s}");
        }
    }

    #[test]
    fn weight_bounds() {
        let r = route(Verb::Add, "1.0.0.0/8 nexthop dev a weight 256").unwrap();
        assert_eq!(r.nexthops[0].weight, 256);
    }

    /// Names from a temporary rt_tables and rt_protos.
    fn names_from_files() -> (tempfile::TempDir, RtNames) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rt_tables"), "254 main\n100 isp1\n7 all\n").unwrap();
        std::fs::write(dir.path().join("rt_protos"), "200 mine\n").unwrap();
        let names = RtNames::load(dir.path(), &dir.path().join("none"));
        (dir, names)
    }

    #[test]
    fn tables_and_protos() {
        let n = RtNames::builtin();
        assert_eq!(parse_table("local", &n).unwrap(), 255);
        assert_eq!(parse_table("main", &n).unwrap(), 254);
        assert_eq!(parse_table("1000", &n).unwrap(), 1000);
        assert_eq!(parse_table("0x10", &n).unwrap(), 16);
        assert_eq!(parse_proto("boot", &n).unwrap(), 3);
        assert_eq!(parse_proto("200", &n).unwrap(), 200);
        let e = parse_table("isp1", &n).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.message(),
            "invalid table \"isp1\": not a number, nor a name in /etc/iproute2/rt_tables"
        );
        assert!(parse_table("unspec", &n)
            .unwrap_err()
            .message()
            .contains("table 0"));
        assert!(parse_proto("mine", &n).is_err());

        let (_d, n) = names_from_files();
        assert_eq!(parse_table("isp1", &n).unwrap(), 100);
        assert_eq!(parse_proto("mine", &n).unwrap(), 200);
        let r = parse_route(
            Verb::Add,
            &args("equalize 1.0.0.0/8 nexthop dev a nexthop dev b table isp1 proto mine"),
            &n,
        )
        .unwrap();
        assert_eq!((r.table, r.proto), (100, Some(200)));
    }

    #[test]
    fn show_args() {
        let n = RtNames::builtin();
        let show = |s: &str| parse_show(&args(s), &n);
        assert_eq!(show("").unwrap(), TableSel::One(RT_TABLE_MAIN));
        assert_eq!(show("table all").unwrap(), TableSel::All);
        assert_eq!(show("table 100").unwrap(), TableSel::One(100));
        assert_eq!(show("table local").unwrap(), TableSel::One(255));
        assert!(show("table").is_err());
        assert!(show("foo").is_err());
        assert!(show("table 1 table 2").is_err());
        assert!(show("table isp1").is_err());
        assert!(show("table 0").is_err());
        // Names first, as ip: a table called "all" is that table.
        let (_d, n) = names_from_files();
        assert_eq!(
            parse_show(&args("table isp1"), &n).unwrap(),
            TableSel::One(100)
        );
        assert_eq!(
            parse_show(&args("table all"), &n).unwrap(),
            TableSel::One(7)
        );
    }
}
