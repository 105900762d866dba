// SPDX-License-Identifier: GPL-2.0

//! The `route` object: RTM_NEWROUTE/RTM_DELROUTE with RTA_MULTIPATH and the
//! RTM_F_EQUALIZE flag, and a dump that lists the multipath routes.

use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteNextHop, RouteNextHopFlags,
    RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Error;
use crate::output::Printer;
use crate::routeargs::{Prefix, RouteSpec, TableSel, Verb};
use crate::rtnames::{RtNames, RTPROT_BOOT, RT_TABLE_MAIN};
use crate::rtnl::{Links, Rtnl};

/// Build the request for `verb`. Device names are resolved through `links`.
/// Nexthops always go in RTA_MULTIPATH, even a single one, so the kernel
/// sees the same shape mpbal balances.
pub fn build(verb: Verb, spec: &RouteSpec, links: &Links) -> Result<RouteMessage, Error> {
    let mut msg = RouteMessage::default();
    let h = &mut msg.header;
    h.address_family = AddressFamily::Inet;
    h.destination_prefix_length = spec.dst.len;
    // rtm_table is a u8: like ip, larger ids leave it unspecified (0) and
    // rely on RTA_TABLE, which is always sent.
    h.table = u8::try_from(spec.table).unwrap_or(0);
    if verb == Verb::Del {
        // Like ip: wildcard scope/type/protocol unless the user named one.
        h.scope = RouteScope::NoWhere;
        h.protocol = RouteProtocol::from(spec.proto.unwrap_or(0));
    } else {
        h.scope = RouteScope::Universe;
        h.kind = RouteType::Unicast;
        h.protocol = RouteProtocol::from(spec.proto.unwrap_or(RTPROT_BOOT));
    }
    if spec.equalize {
        h.flags |= RouteFlags::Equalize;
    }

    let attrs = &mut msg.attributes;
    attrs.push(RouteAttribute::Table(spec.table));
    if spec.dst.len > 0 {
        attrs.push(RouteAttribute::Destination(RouteAddress::Inet(
            spec.dst.addr,
        )));
    }
    if let Some(m) = spec.metric {
        attrs.push(RouteAttribute::Priority(m));
    }
    if !spec.nexthops.is_empty() {
        let mut hops = Vec::new();
        for nh in &spec.nexthops {
            let mut hop = RouteNextHop::default();
            // rtnh_hops carries weight - 1 (weight is 1..=256).
            hop.hops = u8::try_from(nh.weight.saturating_sub(1)).unwrap_or(u8::MAX);
            if let Some(dev) = &nh.dev {
                hop.interface_index = links.index(dev)?;
            }
            if let Some(gw) = nh.via {
                hop.attributes
                    .push(RouteAttribute::Gateway(RouteAddress::Inet(gw)));
            }
            hops.push(hop);
        }
        attrs.push(RouteAttribute::MultiPath(hops));
    }
    Ok(msg)
}

/// Add, replace or delete a route.
pub fn change(rtnl: &mut Rtnl, verb: Verb, spec: &RouteSpec) -> Result<(), Error> {
    let links = rtnl.links()?;
    let msg = build(verb, spec, &links)?;
    let (msg, flags) = match verb {
        Verb::Add => (
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        ),
        Verb::Replace => (
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        ),
        Verb::Del => (RouteNetlinkMessage::DelRoute(msg), 0),
    };
    rtnl.request(msg, flags)
}

/// A dumped route, reduced to what `route show` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: Prefix,
    pub table: u32,
    pub equalize: bool,
    pub protocol: u8,
    pub metric: u32,
    pub nexthops: Vec<NextHop>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub gateway: Option<Ipv4Addr>,
    pub ifindex: u32,
    pub weight: u16,
    pub flags: Vec<&'static str>,
}

fn nh_flag_names(f: RouteNextHopFlags) -> Vec<&'static str> {
    [
        (RouteNextHopFlags::Dead, "dead"),
        (RouteNextHopFlags::Onlink, "onlink"),
        (RouteNextHopFlags::Pervasive, "pervasive"),
        (RouteNextHopFlags::Offload, "offload"),
        (RouteNextHopFlags::Trap, "trap"),
        (RouteNextHopFlags::Linkdown, "linkdown"),
        (RouteNextHopFlags::Unresolved, "unresolved"),
    ]
    .into_iter()
    .filter(|(flag, _)| f.contains(*flag))
    .map(|(_, name)| name)
    .collect()
}

fn gateway(attrs: &[RouteAttribute]) -> Option<Ipv4Addr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(gw)) => Some(*gw),
        _ => None,
    })
}

/// Keep IPv4 unicast multipath routes. A single-path route is never an
/// mpbal route, and the kernel dumps it without the equalize flag anyway
/// (rtm_flags then carries only the nexthop's flags).
pub fn from_message(msg: &RouteMessage) -> Option<Route> {
    match decode(msg)? {
        (r, RouteType::Unicast, true) => Some(r),
        _ => None,
    }
}

/// Any IPv4 route, with its type: a single-path route has its one nexthop
/// from RTA_GATEWAY and RTA_OIF (what `apply` may have to replace).
pub fn any_from_message(msg: &RouteMessage) -> Option<(Route, RouteType)> {
    decode(msg).map(|(r, kind, _)| (r, kind))
}

/// An IPv4 route, its type, and whether it came with RTA_MULTIPATH.
fn decode(msg: &RouteMessage) -> Option<(Route, RouteType, bool)> {
    let h = &msg.header;
    if h.address_family != AddressFamily::Inet {
        return None;
    }
    let mut table = u32::from(h.table);
    let mut dst = Ipv4Addr::UNSPECIFIED;
    let mut metric = 0;
    let mut multipath = None;
    let mut oif = 0;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(a)) => dst = *a,
            RouteAttribute::Priority(m) => metric = *m,
            RouteAttribute::MultiPath(hops) => multipath = Some(hops),
            RouteAttribute::Oif(i) => oif = *i,
            _ => {}
        }
    }
    let nexthops = match multipath {
        Some(hops) => hops
            .iter()
            .map(|hop| NextHop {
                gateway: gateway(&hop.attributes),
                ifindex: hop.interface_index,
                weight: u16::from(hop.hops) + 1,
                flags: nh_flag_names(hop.flags),
            })
            .collect(),
        None if oif != 0 => vec![NextHop {
            gateway: gateway(&msg.attributes),
            ifindex: oif,
            weight: 1,
            flags: Vec::new(),
        }],
        None => Vec::new(),
    };
    let route = Route {
        dst: Prefix {
            addr: dst,
            len: h.destination_prefix_length,
        },
        table,
        equalize: h.flags.contains(RouteFlags::Equalize),
        protocol: h.protocol.into(),
        metric,
        nexthops,
    };
    Some((route, h.kind, multipath.is_some()))
}

/// Every IPv4 route of every table.
pub fn dump(rtnl: &mut Rtnl) -> Result<Vec<RouteMessage>, Error> {
    let mut req = RouteMessage::default();
    req.header.address_family = AddressFamily::Inet;
    Ok(rtnl
        .dump(RouteNetlinkMessage::GetRoute(req))?
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => Some(r),
            _ => None,
        })
        .collect())
}

/// Dump IPv4 routes and print the multipath ones of the selected tables.
pub fn show(rtnl: &mut Rtnl, sel: TableSel, names: &RtNames, p: &mut Printer) -> Result<(), Error> {
    let links = rtnl.links()?;
    let routes: Vec<Route> = dump(rtnl)?
        .iter()
        .filter_map(from_message)
        .filter(|r| sel == TableSel::All || sel == TableSel::One(r.table))
        .collect();
    print_routes(&routes, &links, names, p);
    Ok(())
}

/// Like `ip route`: text leaves out "table main"; JSON always has the
/// table, as a string like `ip -j` (a name, else the number).
pub fn print_routes(routes: &[Route], links: &Links, names: &RtNames, p: &mut Printer) {
    p.open_array(None);
    for r in routes {
        p.open_object(None);
        p.string("dst", "{}", &r.dst.to_string());
        let table = names.table_name(r.table);
        if r.table == RT_TABLE_MAIN {
            p.field("table", table, "");
        } else {
            p.string("table", " table {}", &table);
        }
        p.field(
            "equalize",
            r.equalize,
            if r.equalize { " equalize" } else { "" },
        );
        p.string("protocol", " proto {}", &names.proto_name(r.protocol));
        p.u64("metric", " metric {}", u64::from(r.metric));
        p.text("\n");
        p.open_array(Some("nexthops"));
        for nh in &r.nexthops {
            p.open_object(None);
            p.text("\tnexthop");
            if let Some(gw) = nh.gateway {
                p.string("gateway", " via {}", &gw.to_string());
            }
            p.string("dev", " dev {}", &links.name(nh.ifindex));
            p.u64("weight", " weight {}", u64::from(nh.weight));
            p.open_array(Some("flags"));
            for f in &nh.flags {
                p.string("flag", " {}", f);
            }
            p.close();
            p.text("\n");
            p.close();
        }
        p.close();
        p.close();
    }
    p.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routeargs::{parse_route, Verb};
    use netlink_packet_core::{Emitable, Parseable};
    use serde_json::{json, Value};

    fn links() -> Links {
        let mut l = Links::default();
        l.insert(3, "veth1".into());
        l.insert(4, "veth2".into());
        l
    }

    fn spec(verb: Verb, s: &str) -> RouteSpec {
        let args: Vec<String> = s.split_whitespace().map(str::to_string).collect();
        parse_route(verb, &args, &RtNames::builtin()).unwrap()
    }

    /// Emit with the crate, then check the raw rtmsg bytes: rtm_flags is the
    /// u32 at offset 8 of the payload.
    fn wire(msg: &RouteMessage) -> Vec<u8> {
        let mut buf = vec![0; msg.buffer_len()];
        msg.emit(&mut buf);
        buf
    }

    #[test]
    fn equalize_sets_rtm_flag_0x400() {
        let s = spec(
            Verb::Add,
            "equalize 20.0.0.0/24 nexthop via 10.0.1.2 dev veth1 nexthop via 10.0.2.2 dev veth2 weight 2",
        );
        let msg = build(Verb::Add, &s, &links()).unwrap();
        let buf = wire(&msg);
        assert_eq!(u32::from_ne_bytes(buf[8..12].try_into().unwrap()), 0x400);
        assert_eq!(buf[0], 2); // AF_INET
        assert_eq!(buf[1], 24);
        assert_eq!(buf[4], 254); // main

        let plain = build(
            Verb::Add,
            &spec(Verb::Add, "20.0.0.0/24 nexthop dev veth1"),
            &links(),
        )
        .unwrap();
        assert_eq!(
            u32::from_ne_bytes(wire(&plain)[8..12].try_into().unwrap()),
            0
        );
    }

    #[test]
    fn multipath_encoding_roundtrips() {
        let s = spec(
            Verb::Add,
            "equalize 20.0.0.0/24 nexthop via 10.0.1.2 dev veth1 nexthop via 10.0.2.2 dev veth2 weight 256 table 1000 metric 7",
        );
        let msg = build(Verb::Add, &s, &links()).unwrap();
        let buf = wire(&msg);
        assert_eq!(buf[4], 0);
        let parsed = RouteMessage::parse(buf.as_slice()).unwrap();
        let hops = parsed
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::MultiPath(h) => Some(h.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(hops.len(), 2);
        assert_eq!((hops[0].hops, hops[0].interface_index), (0, 3));
        assert_eq!((hops[1].hops, hops[1].interface_index), (255, 4));

        // The kernel dumps it back in this shape; check the decoder.
        let mut dumped = parsed.clone();
        dumped.header.kind = RouteType::Unicast;
        let r = from_message(&dumped).unwrap();
        assert!(r.equalize);
        assert_eq!((r.table, r.metric, r.protocol), (1000, 7, RTPROT_BOOT));
        assert_eq!(r.nexthops[1].weight, 256);
        assert_eq!(r.nexthops[0].gateway, Some(Ipv4Addr::new(10, 0, 1, 2)));
    }

    #[test]
    fn single_nexthop_still_multipath() {
        let msg = build(
            Verb::Add,
            &spec(Verb::Add, "1.0.0.0/8 nexthop via 10.0.1.2"),
            &links(),
        )
        .unwrap();
        assert!(msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::MultiPath(h) if h.len() == 1 && h[0].interface_index == 0)));
    }

    #[test]
    fn unknown_device_fails() {
        let e = build(
            Verb::Add,
            &spec(Verb::Add, "1.0.0.0/8 nexthop dev nope"),
            &links(),
        )
        .unwrap_err();
        assert_eq!(e, Error::op("Cannot find device \"nope\""));
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn delete_is_wildcard() {
        let msg = build(Verb::Del, &spec(Verb::Del, "default"), &links()).unwrap();
        assert_eq!(msg.header.scope, RouteScope::NoWhere);
        assert_eq!(msg.header.kind, RouteType::Unspec);
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
    }

    #[test]
    fn non_multipath_routes_are_skipped() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.kind = RouteType::Unicast;
        m.attributes.push(RouteAttribute::Oif(3));
        assert_eq!(from_message(&m), None);
        // Even flagged: only multipath routes are mpbal's.
        m.header.flags = RouteFlags::Equalize | RouteFlags::Linkdown;
        assert_eq!(from_message(&m), None);
        let mut hop = RouteNextHop::default();
        hop.interface_index = 3;
        hop.flags = RouteNextHopFlags::Linkdown;
        m.attributes.push(RouteAttribute::MultiPath(vec![hop]));
        let r = from_message(&m).unwrap();
        assert!(r.equalize);
        assert_eq!(r.nexthops[0].ifindex, 3);
        assert_eq!(r.nexthops[0].flags, ["linkdown"]);
        assert_eq!(r.dst.to_string(), "default");
    }

    fn sample() -> Vec<Route> {
        vec![
            Route {
                dst: crate::routeargs::parse_prefix("20.0.0.0/24").unwrap(),
                table: RT_TABLE_MAIN,
                equalize: true,
                protocol: 4,
                metric: 0,
                nexthops: vec![
                    NextHop {
                        gateway: Some(Ipv4Addr::new(10, 0, 1, 2)),
                        ifindex: 3,
                        weight: 1,
                        flags: vec![],
                    },
                    NextHop {
                        gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
                        ifindex: 4,
                        weight: 2,
                        flags: vec!["dead", "linkdown"],
                    },
                ],
            },
            Route {
                dst: crate::routeargs::parse_prefix("30.0.0.0/24").unwrap(),
                table: 100,
                equalize: false,
                protocol: 3,
                metric: 5,
                nexthops: vec![NextHop {
                    gateway: None,
                    ifindex: 7,
                    weight: 1,
                    flags: vec![],
                }],
            },
        ]
    }

    #[test]
    fn show_text() {
        let mut p = Printer::new(false, false);
        print_routes(&sample(), &links(), &RtNames::builtin(), &mut p);
        assert_eq!(
            p.finish(),
            "20.0.0.0/24 equalize proto static metric 0\n\
             \tnexthop via 10.0.1.2 dev veth1 weight 1\n\
             \tnexthop via 10.0.2.2 dev veth2 weight 2 dead linkdown\n\
             30.0.0.0/24 table 100 proto boot metric 5\n\
             \tnexthop dev if7 weight 1\n"
        );
    }

    #[test]
    fn show_json() {
        let mut p = Printer::new(true, false);
        print_routes(&sample(), &links(), &RtNames::builtin(), &mut p);
        let v: Value = serde_json::from_str(&p.finish()).unwrap();
        assert_eq!(
            v[0],
            json!({"dst":"20.0.0.0/24","table":"main","equalize":true,"protocol":"static","metric":0,
                   "nexthops":[{"gateway":"10.0.1.2","dev":"veth1","weight":1,"flags":[]},
                               {"gateway":"10.0.2.2","dev":"veth2","weight":2,"flags":["dead","linkdown"]}]})
        );
        assert_eq!(v[1]["table"], json!("100"));
        assert_eq!(v[1]["equalize"], json!(false));
        assert_eq!(v[1]["nexthops"][0].get("gateway"), None);
    }

    #[test]
    fn show_uses_table_and_protocol_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rt_tables"), "100 isp1\n").unwrap();
        std::fs::write(dir.path().join("rt_protos"), "4 fixed\n").unwrap();
        let names = RtNames::load(dir.path(), &dir.path().join("none"));
        let mut p = Printer::new(false, false);
        print_routes(&sample(), &links(), &names, &mut p);
        let text = p.finish();
        assert!(
            text.starts_with("20.0.0.0/24 equalize proto fixed metric 0\n"),
            "{text}"
        );
        assert!(
            text.contains("\n30.0.0.0/24 table isp1 proto boot metric 5\n"),
            "{text}"
        );
        let mut p = Printer::new(true, false);
        print_routes(&sample(), &links(), &names, &mut p);
        let v: Value = serde_json::from_str(&p.finish()).unwrap();
        assert_eq!(
            (&v[0]["table"], &v[0]["protocol"]),
            (&json!("main"), &json!("fixed"))
        );
        assert_eq!(v[1]["table"], json!("isp1"));
    }

    #[test]
    fn empty_show_json_is_array() {
        let mut p = Printer::new(true, false);
        print_routes(&[], &links(), &RtNames::builtin(), &mut p);
        assert_eq!(p.finish(), "[]\n");
    }
}
