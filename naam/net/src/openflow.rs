//! The few OpenFlow 1.3 messages the Open vSwitch eSwitch needs, encoded and decoded by hand
//! (OpenFlow Switch Specification 1.3.5, §7): HELLO, ERROR, ECHO, FLOW_MOD with an OXM match
//! and an apply-actions output, BARRIER, and the port-stats multipart request. Pure: bytes in,
//! bytes out; the connection lives in `eswitch::ovs`.
//!
//! Matches use only fields a BlueField-2's embedded switch matches in hardware (OVS offloads them
//! as tc flower keys): the ingress port, the EtherType, IPv4 source and destination (ARP's sender
//! and target protocol addresses for ARP) and the UDP source port.

use std::net::Ipv4Addr;

/// OpenFlow 1.3's wire version.
pub const OFP_VERSION: u8 = 0x04;
/// Bytes of the common header (version, type, length, xid).
pub const HEADER_BYTES: usize = 8;
/// Largest message this code accepts from a switch (OpenFlow lengths are u16).
pub const MESSAGE_BYTES_MAX: usize = u16::MAX as usize;

/// Message types used here (spec §7.1, `enum ofp_type`).
pub mod msg_type {
    /// Version negotiation.
    pub const HELLO: u8 = 0;
    /// The switch refused a request.
    pub const ERROR: u8 = 1;
    /// Liveness probe (answer with [`ECHO_REPLY`]).
    pub const ECHO_REQUEST: u8 = 2;
    /// Answer to [`ECHO_REQUEST`].
    pub const ECHO_REPLY: u8 = 3;
    /// Add, modify or delete flows.
    pub const FLOW_MOD: u8 = 14;
    /// Statistics request.
    pub const MULTIPART_REQUEST: u8 = 18;
    /// Statistics reply.
    pub const MULTIPART_REPLY: u8 = 19;
    /// Everything before it has been processed.
    pub const BARRIER_REQUEST: u8 = 20;
    /// Answer to [`BARRIER_REQUEST`].
    pub const BARRIER_REPLY: u8 = 21;
}

/// `OFPFC_*` flow-mod commands (spec §7.3.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowCommand {
    /// New flow (replaces one with the same match and priority).
    Add = 0,
    /// Change the actions of the flow with exactly this match and priority (counters kept).
    ModifyStrict = 2,
    /// Delete every flow matching (wildcards included).
    Delete = 3,
}

/// The table every flow of ours lives in.
pub const TABLE_ID: u8 = 0;
/// `OFPTT_ALL`: every table (for deletes).
pub const TABLE_ALL: u8 = 0xff;
/// `OFPP_ANY` / `OFPG_ANY`: no restriction by output port or group.
pub const ANY: u32 = 0xffff_ffff;
/// `OFP_NO_BUFFER`.
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// `OFPMP_PORT_STATS`.
pub const MULTIPART_PORT_STATS: u16 = 4;
/// Bytes of one `ofp_port_stats` entry.
pub const PORT_STATS_BYTES: usize = 112;
const ETH_TYPE_IPV4: u16 = 0x0800;
const ETH_TYPE_ARP: u16 = 0x0806;
const IP_PROTO_UDP: u8 = 17;
const OXM_CLASS_BASIC: u16 = 0x8000;
const OXM_IN_PORT: u8 = 0;
const OXM_ETH_TYPE: u8 = 5;
const OXM_IP_PROTO: u8 = 10;
const OXM_IPV4_SRC: u8 = 11;
const OXM_IPV4_DST: u8 = 12;
const OXM_UDP_SRC: u8 = 15;
const OXM_ARP_SPA: u8 = 22;
const OXM_ARP_TPA: u8 = 23;
const OFPMT_OXM: u16 = 1;
const OFPIT_APPLY_ACTIONS: u16 = 4;
const OFPAT_OUTPUT: u16 = 0;
const OFPCML_NO_BUFFER: u16 = 0xffff;

/// What a flow matches: an ingress port and, optionally, an IPv4 UDP source port or the packets
/// between two IPv4 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowMatch {
    /// `OXM_OF_IN_PORT`.
    pub in_port: u32,
    /// `OXM_OF_UDP_SRC` (with its prerequisites: IPv4, UDP).
    pub udp_src: Option<u16>,
    /// Packets from one IPv4 address to another (IPv4 or ARP).
    pub between: Option<Between>,
}

impl FlowMatch {
    /// Every packet entering at `in_port`.
    pub fn port(in_port: u32) -> FlowMatch {
        FlowMatch {
            in_port,
            udp_src: None,
            between: None,
        }
    }
}

/// Which packets between two IPv4 addresses a flow matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Between {
    /// IPv4 packets from `src` to `dst` (`OXM_OF_IPV4_SRC`, `OXM_OF_IPV4_DST`).
    Ipv4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
    },
    /// ARP packets whose sender is `src` and whose target is `dst` (`OXM_OF_ARP_SPA`,
    /// `OXM_OF_ARP_TPA`): requests from `src` for `dst`, and `src`'s replies to `dst`.
    Arp {
        /// Sender protocol address.
        src: Ipv4Addr,
        /// Target protocol address.
        dst: Ipv4Addr,
    },
}

/// One flow-mod: command, match, priority, cookie and (for add/modify) the output port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowMod {
    /// What to do.
    pub command: FlowCommand,
    /// Which packets.
    pub matching: Option<FlowMatch>,
    /// Higher wins.
    pub priority: u16,
    /// Opaque tag kept with the flow.
    pub cookie: u64,
    /// Where matching packets go (`None`: no actions, for deletes).
    pub output: Option<u32>,
}

fn header(out: &mut Vec<u8>, kind: u8, xid: u32) -> usize {
    let start = out.len();
    out.extend_from_slice(&[OFP_VERSION, kind, 0, 0]);
    out.extend_from_slice(&xid.to_be_bytes());
    start
}

fn finish(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a message with no body (HELLO, BARRIER_REQUEST, ECHO_REPLY without data).
pub fn push_empty(out: &mut Vec<u8>, kind: u8, xid: u32) {
    let start = header(out, kind, xid);
    finish(out, start);
}

/// Appends an ECHO_REPLY carrying `data` back.
pub fn push_echo_reply(out: &mut Vec<u8>, xid: u32, data: &[u8]) {
    let start = header(out, msg_type::ECHO_REPLY, xid);
    out.extend_from_slice(data);
    finish(out, start);
}

fn oxm(out: &mut Vec<u8>, field: u8, value: &[u8]) {
    out.extend_from_slice(&OXM_CLASS_BASIC.to_be_bytes());
    out.push(field << 1);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

fn push_match(out: &mut Vec<u8>, matching: Option<FlowMatch>) {
    let start = out.len();
    out.extend_from_slice(&OFPMT_OXM.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    if let Some(m) = matching {
        push_fields(out, m);
    }
    // The length excludes the padding to 8 bytes (spec §7.2.2.1).
    let len = (out.len() - start) as u16;
    out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    out.resize(start + usize::from(len).div_ceil(8) * 8, 0);
}

/// The match's OXM fields, each after its prerequisites (spec §7.2.3.6; OVS refuses a field
/// that precedes them): port, EtherType, addresses, IP protocol, UDP port.
fn push_fields(out: &mut Vec<u8>, m: FlowMatch) {
    oxm(out, OXM_IN_PORT, &m.in_port.to_be_bytes());
    let eth_type = match m.between {
        Some(Between::Arp { .. }) => Some(ETH_TYPE_ARP),
        Some(Between::Ipv4 { .. }) => Some(ETH_TYPE_IPV4),
        None => m.udp_src.map(|_| ETH_TYPE_IPV4),
    };
    if let Some(eth_type) = eth_type {
        oxm(out, OXM_ETH_TYPE, &eth_type.to_be_bytes());
    }
    match m.between {
        Some(Between::Ipv4 { src, dst }) => {
            oxm(out, OXM_IPV4_SRC, &src.octets());
            oxm(out, OXM_IPV4_DST, &dst.octets());
        }
        Some(Between::Arp { src, dst }) => {
            oxm(out, OXM_ARP_SPA, &src.octets());
            oxm(out, OXM_ARP_TPA, &dst.octets());
        }
        None => {}
    }
    // UDP needs IPv4: an ARP match carries no UDP port.
    if let (Some(port), false) = (m.udp_src, matches!(m.between, Some(Between::Arp { .. }))) {
        oxm(out, OXM_IP_PROTO, &[IP_PROTO_UDP]);
        oxm(out, OXM_UDP_SRC, &port.to_be_bytes());
    }
}

fn push_output(out: &mut Vec<u8>, port: u32) {
    out.extend_from_slice(&OFPIT_APPLY_ACTIONS.to_be_bytes());
    out.extend_from_slice(&24u16.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&OFPAT_OUTPUT.to_be_bytes());
    out.extend_from_slice(&16u16.to_be_bytes());
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&OFPCML_NO_BUFFER.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
}

/// Appends a FLOW_MOD.
pub fn push_flow_mod(out: &mut Vec<u8>, xid: u32, flow: &FlowMod) {
    let start = header(out, msg_type::FLOW_MOD, xid);
    out.extend_from_slice(&flow.cookie.to_be_bytes());
    let cookie_mask: u64 = 0;
    out.extend_from_slice(&cookie_mask.to_be_bytes());
    let table = if flow.command == FlowCommand::Delete {
        TABLE_ALL
    } else {
        TABLE_ID
    };
    out.extend_from_slice(&[table, flow.command as u8]);
    out.extend_from_slice(&[0, 0, 0, 0]); // idle and hard timeouts: none
    out.extend_from_slice(&flow.priority.to_be_bytes());
    out.extend_from_slice(&NO_BUFFER.to_be_bytes());
    out.extend_from_slice(&ANY.to_be_bytes());
    out.extend_from_slice(&ANY.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // flags, pad
    push_match(out, flow.matching);
    if let Some(port) = flow.output {
        push_output(out, port);
    }
    finish(out, start);
}

/// Appends a port-stats MULTIPART_REQUEST for every port.
pub fn push_port_stats_request(out: &mut Vec<u8>, xid: u32) {
    let start = header(out, msg_type::MULTIPART_REQUEST, xid);
    out.extend_from_slice(&MULTIPART_PORT_STATS.to_be_bytes());
    out.extend_from_slice(&[0; 6]); // flags, pad
    out.extend_from_slice(&ANY.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    finish(out, start);
}

/// A received message's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Wire version.
    pub version: u8,
    /// Message type.
    pub kind: u8,
    /// Length, header included.
    pub length: usize,
    /// Transaction id.
    pub xid: u32,
}

/// Decodes a message header; `None` when fewer than [`HEADER_BYTES`] are given or the length
/// is shorter than a header.
pub fn parse_header(bytes: &[u8]) -> Option<Header> {
    let b = bytes.get(..HEADER_BYTES)?;
    let length = usize::from(u16::from_be_bytes([b[2], b[3]]));
    (length >= HEADER_BYTES).then(|| Header {
        version: b[0],
        kind: b[1],
        length,
        xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
    })
}

/// An ERROR message's type and code (spec §7.4.4), from the message's body.
pub fn parse_error(body: &[u8]) -> (u16, u16) {
    let at = |i: usize| {
        body.get(i..i + 2)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    };
    (at(0), at(2))
}

/// Transmitted packets per port from a port-stats MULTIPART_REPLY body.
pub fn parse_port_stats(body: &[u8]) -> Vec<(u32, u64)> {
    let Some(entries) = body.get(8..) else {
        return Vec::new();
    };
    entries
        .chunks_exact(PORT_STATS_BYTES)
        .map(|e| {
            let port = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            let tx = u64::from_be_bytes(e[16..24].try_into().unwrap_or([0; 8]));
            (port, tx)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes checked against the layout of spec §7.3.4.1 (and `ovs-ofctl`'s encoding of
    /// `priority=100,udp,in_port=1,tp_src=20005,actions=output:3` in OF1.3).
    #[test]
    fn a_flow_mod_is_laid_out_as_the_spec_says() {
        let mut out = Vec::new();
        let flow = FlowMod {
            command: FlowCommand::Add,
            matching: Some(FlowMatch {
                in_port: 1,
                udp_src: Some(20_005),
                between: None,
            }),
            priority: 100,
            cookie: 5,
            output: Some(3),
        };
        push_flow_mod(&mut out, 7, &flow);
        let h = parse_header(&out).unwrap();
        assert_eq!((h.version, h.kind, h.length, h.xid), (4, 14, out.len(), 7));
        // 8 header + 40 fixed + match (4 + 8 + 6 + 5 + 6 = 29, padded to 32) + 24 instruction.
        assert_eq!(out.len(), 8 + 40 + 32 + 24);
        assert_eq!(&out[48..52], &[0, 1, 0, 29], "OXM match of 29 bytes");
        assert_eq!(&out[52..56], &[0x80, 0x00, 0x00, 4], "in_port, 4 bytes");
        assert_eq!(&out[71..75], &[0x80, 0x00, 15 << 1, 2], "udp_src, 2 bytes");
        assert_eq!(&out[75..77], &20_005u16.to_be_bytes());
        assert_eq!(&out[80..84], &[0, 4, 0, 24], "apply-actions of 24 bytes");
        assert_eq!(&out[92..96], &3u32.to_be_bytes(), "output port 3");
    }

    #[test]
    fn headers_shorter_than_a_header_are_refused() {
        assert_eq!(parse_header(&[4, 0, 0, 7, 0, 0, 0, 1]), None);
        assert_eq!(parse_header(&[4, 0, 0]), None);
        let mut hello = Vec::new();
        push_empty(&mut hello, msg_type::HELLO, 9);
        assert_eq!(
            parse_header(&hello),
            Some(Header {
                version: 4,
                kind: 0,
                length: 8,
                xid: 9
            })
        );
    }

    /// `priority=200,ip,in_port=2,nw_src=192.168.200.1,nw_dst=192.168.200.2` and its ARP
    /// counterpart: port, EtherType, then the two addresses (spec §7.2.3.7: IPV4_SRC 11, IPV4_DST
    /// 12, ARP_SPA 22, ARP_TPA 23; 4 bytes each).
    #[test]
    fn address_matches_follow_their_ether_type() {
        let (h, n) = (
            Ipv4Addr::new(192, 168, 200, 1),
            Ipv4Addr::new(192, 168, 200, 2),
        );
        for (between, eth_type, fields) in [
            (Between::Ipv4 { src: h, dst: n }, [0x08, 0x00], [11u8, 12]),
            (Between::Arp { src: h, dst: n }, [0x08, 0x06], [22, 23]),
        ] {
            let mut out = Vec::new();
            let matching = FlowMatch {
                between: Some(between),
                ..FlowMatch::port(2)
            };
            push_match(&mut out, Some(matching));
            // 4 header + in_port (8) + eth_type (6) + two addresses (8 each) = 34, padded to 40.
            assert_eq!(&out[..4], &[0, 1, 0, 34]);
            assert_eq!(out.len(), 40);
            assert_eq!(
                &out[12..18],
                &[0x80, 0, 5 << 1, 2, eth_type[0], eth_type[1]]
            );
            assert_eq!(&out[18..22], &[0x80, 0, fields[0] << 1, 4]);
            assert_eq!(&out[22..26], &h.octets());
            assert_eq!(&out[26..30], &[0x80, 0, fields[1] << 1, 4]);
            assert_eq!(&out[30..34], &n.octets());
        }
    }
}
