// SPDX-License-Identifier: GPL-2.0

//! A minimal synchronous rtnetlink client: one request, read until the ack
//! (or the end of a dump). Messages are built and parsed by
//! netlink-packet-route; nothing here encodes netlink structs by hand.

use std::collections::{BTreeMap, BTreeSet};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK,
    NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{errno_desc, strerror, Error};

/// Extended-ack attribute carrying the kernel's human-readable message.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;

pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

fn sock_err(what: &str, e: &std::io::Error) -> Error {
    Error::op(format!("{what}: {}", strerror(e)))
}

impl Rtnl {
    /// Open a NETLINK_ROUTE socket in the current network namespace.
    pub fn open() -> Result<Self, Error> {
        let mut sock =
            Socket::new(NETLINK_ROUTE).map_err(|e| sock_err("cannot open netlink socket", &e))?;
        sock.bind_auto()
            .map_err(|e| sock_err("cannot bind netlink socket", &e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| sock_err("cannot connect netlink socket", &e))?;
        // Best effort: ask for the kernel's error text, without the echo of
        // our request, so failures can say *why* like `ip` does.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(Rtnl { sock, seq: 0 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, Error> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut buf = vec![0; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|e| sock_err("netlink send failed", &e))?;
        Ok(self.seq)
    }

    /// Every netlink message in the next datagram.
    fn recv(&mut self) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, Error> {
        let (buf, _) = self
            .sock
            .recv_from_full()
            .map_err(|e| sock_err("netlink receive failed", &e))?;
        let decode = |e: netlink_packet_core::DecodeError| {
            Error::op(format!("cannot decode netlink reply: {e}"))
        };
        let mut msgs = Vec::new();
        let mut off = 0;
        while off < buf.len() {
            let len = NetlinkBuffer::new_checked(&buf[off..])
                .map_err(decode)?
                .length() as usize;
            msgs.push(NetlinkMessage::deserialize(&buf[off..off + len]).map_err(decode)?);
            off += len.div_ceil(4) * 4;
        }
        Ok(msgs)
    }

    /// Send a change request with NLM_F_ACK and wait for the kernel's verdict.
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), Error> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        loop {
            for m in self.recv()? {
                if m.header.sequence_number != seq {
                    continue;
                }
                if let NetlinkPayload::Error(e) = &m.payload {
                    return match e.code {
                        None => Ok(()),
                        Some(code) => Err(rtnl_error(code.get(), &e.header, m.header.flags)),
                    };
                }
            }
        }
    }

    /// Run a dump request and collect every reply message.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, Error> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut out = Vec::new();
        loop {
            for m in self.recv()? {
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(code) => {
                            return Err(rtnl_error(code.get(), &e.header, m.header.flags))
                        }
                    },
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
        }
    }

    /// All interfaces of the namespace, for name <-> ifindex translation.
    pub fn links(&mut self) -> Result<Links, Error> {
        let mut links = Links::default();
        for msg in self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))? {
            if let RouteNetlinkMessage::NewLink(link) = msg {
                for attr in &link.attributes {
                    if let LinkAttribute::IfName(name) = attr {
                        links.insert(link.header.index, name.clone());
                    }
                }
                if link.header.flags.contains(LinkFlags::Up) {
                    links.set_up(link.header.index);
                }
            }
        }
        Ok(links)
    }
}

/// "RTNETLINK answers: File exists", plus the kernel's extended-ack text
/// when it sent one.
fn rtnl_error(code: i32, payload: &[u8], flags: u16) -> Error {
    let mut msg = format!("RTNETLINK answers: {}", errno_desc(code.saturating_abs()));
    if let Some(ext) = extack_message(payload, flags) {
        msg.push_str(&format!(" ({ext})"));
    }
    Error::op(msg)
}

/// The NLMSGERR_ATTR_MSG attribute of an NLMSG_ERROR payload (the part
/// after the error code: our echoed request header, possibly capped, then
/// the ack TLVs).
fn extack_message(payload: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || payload.len() < NLMSG_HDRLEN {
        return None;
    }
    let tlv_start = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        (NetlinkBuffer::new(payload).length() as usize).div_ceil(4) * 4
    };
    NlasIterator::new(payload.get(tlv_start..)?)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            String::from_utf8_lossy(nla.value())
                .trim_end_matches('\0')
                .to_string()
        })
}

/// Interface names by ifindex, and which are administratively up.
#[derive(Debug, Default, Clone)]
pub struct Links {
    by_index: BTreeMap<u32, String>,
    up: BTreeSet<u32>,
}

impl Links {
    pub fn insert(&mut self, index: u32, name: String) {
        self.by_index.insert(index, name);
    }

    /// IFF_UP is set on `index`.
    pub fn set_up(&mut self, index: u32) {
        self.up.insert(index);
    }

    /// `name` exists and is administratively up (IFF_UP): the kernel
    /// accepts a nexthop through it.
    pub fn is_up(&self, name: &str) -> bool {
        self.index(name).is_ok_and(|i| self.up.contains(&i))
    }

    /// ifindex of `name`, or ip's "Cannot find device" error.
    pub fn index(&self, name: &str) -> Result<u32, Error> {
        self.by_index
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(i, _)| *i)
            .ok_or_else(|| crate::mpbal::cannot_find_device(name))
    }

    /// Name of `index`, or `if<N>` like ip when it is unknown.
    pub fn name(&self, index: u32) -> String {
        self.by_index
            .get(&index)
            .cloned()
            .unwrap_or_else(|| format!("if{index}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_lookup() {
        let mut l = Links::default();
        l.insert(3, "eth1".into());
        assert_eq!(l.index("eth1"), Ok(3));
        assert_eq!(
            l.index("nope"),
            Err(Error::op("Cannot find device \"nope\""))
        );
        assert_eq!(l.name(3), "eth1");
        assert_eq!(l.name(9), "if9");
    }

    /// An NLMSG_ERROR payload as the kernel sends it with NETLINK_CAP_ACK:
    /// the 16-byte request header, then an NLMSGERR_ATTR_MSG TLV.
    #[test]
    fn extack_text() {
        let mut p = vec![0u8; NLMSG_HDRLEN];
        p[0] = 60; // original length, ignored when capped
        let text = b"Nexthop device is not up\0";
        let nla_len = (4 + text.len()) as u16;
        p.extend_from_slice(&nla_len.to_ne_bytes());
        p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        p.extend_from_slice(text);
        p.resize(p.len().div_ceil(4) * 4, 0);
        let flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
        assert_eq!(
            extack_message(&p, flags).as_deref(),
            Some("Nexthop device is not up")
        );
        assert_eq!(extack_message(&p, NLM_F_CAPPED), None);
        assert_eq!(extack_message(&p[..4], flags), None);
        assert_eq!(
            rtnl_error(-22, &p, flags),
            Error::op("RTNETLINK answers: Invalid argument (Nexthop device is not up)")
        );
        assert_eq!(
            rtnl_error(-17, &[], 0),
            Error::op("RTNETLINK answers: File exists")
        );
        // Not capped: TLVs start after the echoed request of length p[0..4].
        assert_eq!(extack_message(&p, NLM_F_ACK_TLVS), None);
    }
}
