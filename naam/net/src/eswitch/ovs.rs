//! The Open vSwitch eSwitch: OpenFlow 1.3 flows on an OVS bridge between the uplink and the
//! host's and NIC's ports, steering on the UDP source port that carries each message's key
//! ([`crate::steer_port`]). On a BlueField-2 this is the card's own control path (OVS offloads
//! the flows to the embedded switch); here it runs against OVS's userspace datapath.
//!
//! One persistent OpenFlow connection (the bridge's `<bridge>.mgmt` unix socket, or a `ptcp:`
//! listener) carries every update: spawning `ovs-ofctl` per update costs tens of milliseconds.
//! The flows, all in table 0:
//!
//! | priority | match | action |
//! |---|---|---|
//! | [`PRIORITY_RDMA_LINK`] | `in_port=host, ip, nw_src=h, nw_dst=n` and `in_port=host, arp, arp_spa=h, arp_tpa=n` | NIC port |
//! | [`PRIORITY_RDMA_LINK`] | `in_port=nic, ip, nw_src=n, nw_dst=h` and `in_port=nic, arp, arp_spa=n, arp_tpa=h` | host port |
//! | [`PRIORITY_KEY`] | `in_port=uplink, ip, udp, udp_src=base+k` (k = 0..=1000) | the key's location's port |
//! | [`PRIORITY_DEFAULT`] | `in_port=uplink` (no key: ARP, unkeyed senders) | host port |
//! | [`PRIORITY_DEFAULT`] | `in_port=host` and `in_port=nic` | uplink |
//!
//! The first two rows exist with an RDMA link ([`OvsEswitchConfig::rdma_link`]: `h` its host
//! end, `n` its NIC end): an off-box NIC reads the host's regions with one-sided RDMA READs
//! (RoCEv2, UDP port 4791) and their handshake (TCP) between those two addresses, and that
//! traffic — with the ARP that resolves the two ends — goes between the host's and the NIC's
//! ports directly, never to the uplink. They match only the ingress port, the EtherType and the
//! two addresses, fields the card's switch matches in hardware; they leave clients' traffic
//! (entering at the uplink) to the steering flows.
//!
//! A key's location is [`SteerKey::location`] under the table's default shares: bucket keys where
//! the shares put them (the client range to the host, which pushes it back, as the other
//! switches do), the pinned key to the host. Headers cannot carry tenant or function, so a rule
//! table with a non-default rule other than "all at the host" is refused
//! ([`EswitchError::Unmatchable`]); all-host rules are what the roles' fixed rules for host-native
//! functions are, and clients pin those functions' messages. An apply rewrites only the keys
//! whose port changed (`MODIFY_STRICT`, counters kept), then waits for a BARRIER reply: the flow
//! table holds the new rules when [`Applied::applied_at_ns`] is taken (the datapath's flow cache
//! is revalidated after that; `tests/ovs.rs` measures when traffic follows).
//!
//! Counts come from the switch's port statistics (packets transmitted to the host and NIC ports
//! since the switch was connected): the client range is counted with the host, and a datagram
//! that is not an Invoke is not told apart (OVS does not parse our payload).

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use naam_engine::steer::BUCKETS;
use naam_engine::{Location, RuleTable, Shares, SteerKey};

use super::{Applied, EswitchError, SteerCounts, Steering};
use crate::clock::monotonic_now_ns;
use crate::openflow::{
    self as of, Between, FlowCommand, FlowMatch, FlowMod, HEADER_BYTES, OFP_VERSION, msg_type,
};
use crate::steer_port::{self, STEER_PORTS};

/// Priority of the RDMA link's flows (above every steering flow).
pub const PRIORITY_RDMA_LINK: u16 = 200;
/// Priority of the per-key flows.
pub const PRIORITY_KEY: u16 = 100;
/// Priority of the default flows (unkeyed traffic, the way back to the uplink).
pub const PRIORITY_DEFAULT: u16 = 10;
/// Longest wait for one reply from the switch.
pub const OPENFLOW_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Unrelated messages (echo requests, stray replies) read while waiting for one reply.
pub const MESSAGES_WHILE_WAITING_MAX: usize = 1024;
/// The cookie of the default flows.
const COOKIE_DEFAULT: u64 = u64::MAX;
/// The cookie of the RDMA link's flows.
const COOKIE_RDMA_LINK: u64 = u64::MAX - 1;

/// Where the switch's OpenFlow endpoint is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OvsTarget {
    /// A unix socket: the bridge's `/var/run/openvswitch/<bridge>.mgmt`, or a `punix:` one.
    Unix(PathBuf),
    /// A `ptcp:` listener (the way to a BlueField-2's Arm side from the host).
    Tcp(SocketAddr),
}

/// The OpenFlow port numbers of the bridge's three ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OvsPorts {
    /// Where clients' traffic enters (the physical port, or a veth standing for it).
    pub uplink: u32,
    /// Toward the host's cores (a BlueField-2's `pf0hpf` representor).
    pub host: u32,
    /// Toward the NIC's own cores (the Arm side).
    pub nic: u32,
}

/// How to reach and program the switch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OvsEswitchConfig {
    /// The OpenFlow endpoint.
    pub target: OvsTarget,
    /// The bridge's ports.
    pub ports: OvsPorts,
    /// First port of the clients' steering range ([`crate::steer_port`]).
    pub steer_port_base: u16,
    /// The host–NIC RDMA link's two addresses, whose traffic the bridge passes between the
    /// host's and the NIC's ports (absent: no such flows).
    pub rdma_link: Option<OvsRdmaLink>,
}

/// The two ends of the RDMA link between the host and the NIC across the bridge (IPv4: RoCEv2
/// and ARP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OvsRdmaLink {
    /// The host's end (on the host's side of its port, e.g. the host's PF netdev).
    pub host_ip: Ipv4Addr,
    /// The NIC's end (behind the NIC's port).
    pub nic_ip: Ipv4Addr,
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn connect(target: &OvsTarget) -> io::Result<Stream> {
        let stream = match target {
            OvsTarget::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
            OvsTarget::Tcp(addr) => {
                let tcp = TcpStream::connect_timeout(addr, OPENFLOW_REPLY_TIMEOUT)?;
                tcp.set_nodelay(true)?;
                Stream::Tcp(tcp)
            }
        };
        match &stream {
            Stream::Unix(s) => s.set_read_timeout(Some(OPENFLOW_REPLY_TIMEOUT))?,
            Stream::Tcp(s) => s.set_read_timeout(Some(OPENFLOW_REPLY_TIMEOUT))?,
        }
        Ok(stream)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.read_exact(buf),
            Stream::Tcp(s) => s.read_exact(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.write_all(buf),
            Stream::Tcp(s) => s.write_all(buf),
        }
    }
}

/// One OpenFlow connection: requests out, replies matched by transaction id.
struct Conn {
    stream: Stream,
    target: OvsTarget,
    xid: u32,
    out: Vec<u8>,
}

impl Conn {
    /// Connects and negotiates OpenFlow 1.3 (HELLO both ways).
    fn open(target: &OvsTarget) -> Result<Conn, EswitchError> {
        let stream = Stream::connect(target).map_err(|source| EswitchError::OvsConnect {
            target: format!("{target:?}"),
            source,
        })?;
        let mut conn = Conn {
            stream,
            target: target.clone(),
            xid: 0,
            out: Vec::new(),
        };
        let xid = conn.next_xid();
        of::push_empty(&mut conn.out, msg_type::HELLO, xid);
        conn.flush()?;
        let (header, _) = conn.wait_for_kind(msg_type::HELLO)?;
        if header.version < OFP_VERSION {
            return Err(conn.protocol(format!(
                "the switch speaks OpenFlow wire version {} only; 1.3 (4) is needed \
                 (ovs-vsctl set bridge <br> protocols=OpenFlow13)",
                header.version
            )));
        }
        Ok(conn)
    }

    fn next_xid(&mut self) -> u32 {
        self.xid = self.xid.wrapping_add(1);
        self.xid
    }

    fn protocol(&self, detail: String) -> EswitchError {
        EswitchError::OpenFlow {
            target: format!("{:?}", self.target),
            detail,
        }
    }

    fn io(&self, what: &str, e: io::Error) -> EswitchError {
        self.protocol(format!("{what}: {e}"))
    }

    fn flush(&mut self) -> Result<(), EswitchError> {
        let out = std::mem::take(&mut self.out);
        let sent = self.stream.write_all(&out);
        self.out = out;
        self.out.clear();
        sent.map_err(|e| self.io("write", e))
    }

    fn read_message(&mut self) -> Result<(of::Header, Vec<u8>), EswitchError> {
        let mut head = [0u8; HEADER_BYTES];
        self.stream
            .read_exact(&mut head)
            .map_err(|e| self.io("read", e))?;
        let header = of::parse_header(&head)
            .ok_or_else(|| self.protocol(format!("malformed header {head:02x?}")))?;
        let mut body = vec![0u8; header.length - HEADER_BYTES];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| self.io("read", e))?;
        Ok((header, body))
    }

    /// Reads until a message of `kind` (for `xid`, if given) arrives, answering echo requests;
    /// an ERROR for any request of ours fails.
    fn wait_for(
        &mut self,
        kind: u8,
        xid: Option<u32>,
    ) -> Result<(of::Header, Vec<u8>), EswitchError> {
        for _ in 0..MESSAGES_WHILE_WAITING_MAX {
            let (header, body) = self.read_message()?;
            match header.kind {
                k if k == kind && xid.is_none_or(|x| x == header.xid) => return Ok((header, body)),
                msg_type::ECHO_REQUEST => {
                    of::push_echo_reply(&mut self.out, header.xid, &body);
                    self.flush()?;
                }
                msg_type::ERROR => {
                    let (error_type, error_code) = of::parse_error(&body);
                    return Err(EswitchError::OpenFlowRefused {
                        xid: header.xid,
                        error_type,
                        error_code,
                    });
                }
                _ => {}
            }
        }
        Err(self.protocol(format!(
            "no message of type {kind} among {MESSAGES_WHILE_WAITING_MAX} received"
        )))
    }

    fn wait_for_kind(&mut self, kind: u8) -> Result<(of::Header, Vec<u8>), EswitchError> {
        self.wait_for(kind, None)
    }

    /// Sends what is queued plus a BARRIER_REQUEST and waits for its reply.
    fn barrier(&mut self) -> Result<(), EswitchError> {
        let xid = self.next_xid();
        of::push_empty(&mut self.out, msg_type::BARRIER_REQUEST, xid);
        self.flush()?;
        self.wait_for(msg_type::BARRIER_REPLY, Some(xid))
            .map(|_| ())
    }

    fn flow(&mut self, flow: &FlowMod) {
        let xid = self.next_xid();
        of::push_flow_mod(&mut self.out, xid, flow);
    }

    /// Packets transmitted per port.
    fn port_tx(&mut self) -> Result<Vec<(u32, u64)>, EswitchError> {
        let xid = self.next_xid();
        of::push_port_stats_request(&mut self.out, xid);
        self.flush()?;
        let (_, body) = self.wait_for(msg_type::MULTIPART_REPLY, Some(xid))?;
        Ok(of::parse_port_stats(&body))
    }
}

struct State {
    conn: Conn,
    /// The output port each key's flow has now (index: key offset).
    installed: Vec<u32>,
    /// Transmitted packets on the host and NIC ports when connected.
    baseline: [u64; 2],
}

/// The Open vSwitch eSwitch: one OpenFlow connection to a bridge.
pub struct OvsEswitch {
    config: OvsEswitchConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for OvsEswitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OvsEswitch")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OvsEswitch {
    /// Connects, deletes every flow of the bridge and installs ours for `rules`.
    pub fn connect(
        config: OvsEswitchConfig,
        rules: &RuleTable,
    ) -> Result<OvsEswitch, EswitchError> {
        steer_port::check_base(config.steer_port_base).map_err(|e| EswitchError::Object {
            detail: e.to_string(),
        })?;
        let shares = expressible_shares(rules)?;
        let mut conn = Conn::open(&config.target)?;
        let installed = install_all(&mut conn, &config, shares)?;
        let tx = conn.port_tx()?;
        let baseline = [tx_of(&tx, config.ports.host), tx_of(&tx, config.ports.nic)];
        Ok(OvsEswitch {
            config,
            state: Mutex::new(State {
                conn,
                installed,
                baseline,
            }),
        })
    }

    /// The configuration it was connected with.
    pub fn config(&self) -> &OvsEswitchConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The shares a header-matching switch can apply: the default rule's, when every other rule
/// sends all to the host (clients pin those functions' messages).
pub fn expressible_shares(rules: &RuleTable) -> Result<Shares, EswitchError> {
    if let Some((key, shares)) = rules.rules().find(|(_, s)| **s != Shares::HOST) {
        return Err(EswitchError::Unmatchable {
            key: format!("{key:?}"),
            shares: format!("{shares:?}"),
        });
    }
    Ok(rules.default_shares())
}

fn tx_of(stats: &[(u32, u64)], port: u32) -> u64 {
    stats
        .iter()
        .find(|(p, _)| *p == port)
        .map_or(0, |(_, tx)| *tx)
}

fn key_at(offset: u16) -> SteerKey {
    if offset < BUCKETS {
        SteerKey::Bucket(offset)
    } else {
        SteerKey::Pinned
    }
}

/// The output port of every key under `shares`.
fn outputs(ports: OvsPorts, shares: Shares) -> Vec<u32> {
    (0..STEER_PORTS)
        .map(|offset| match key_at(offset).location(shares) {
            Location::Nic => ports.nic,
            Location::Host | Location::Client => ports.host,
        })
        .collect()
}

fn key_flow(config: &OvsEswitchConfig, command: FlowCommand, offset: u16, port: u32) -> FlowMod {
    FlowMod {
        command,
        matching: Some(FlowMatch {
            udp_src: Some(config.steer_port_base + offset),
            ..FlowMatch::port(config.ports.uplink)
        }),
        priority: PRIORITY_KEY,
        cookie: u64::from(offset),
        output: Some(port),
    }
}

fn install_all(
    conn: &mut Conn,
    config: &OvsEswitchConfig,
    shares: Shares,
) -> Result<Vec<u32>, EswitchError> {
    let ports = config.ports;
    conn.flow(&FlowMod {
        command: FlowCommand::Delete,
        matching: None,
        priority: 0,
        cookie: 0,
        output: None,
    });
    let default = |in_port, out| FlowMod {
        command: FlowCommand::Add,
        matching: Some(FlowMatch::port(in_port)),
        priority: PRIORITY_DEFAULT,
        cookie: COOKIE_DEFAULT,
        output: Some(out),
    };
    conn.flow(&default(ports.uplink, ports.host));
    conn.flow(&default(ports.host, ports.uplink));
    conn.flow(&default(ports.nic, ports.uplink));
    for flow in config
        .rdma_link
        .map(|l| link_flows(ports, l))
        .iter()
        .flatten()
    {
        conn.flow(flow);
    }
    let installed = outputs(ports, shares);
    for (offset, &port) in (0..STEER_PORTS).zip(&installed) {
        conn.flow(&key_flow(config, FlowCommand::Add, offset, port));
    }
    conn.barrier()?;
    Ok(installed)
}

/// The RDMA link's four flows: IPv4 and ARP from the host's end to the NIC's, entering at the
/// host's port, out the NIC's; and back.
fn link_flows(ports: OvsPorts, link: OvsRdmaLink) -> [FlowMod; 4] {
    let (h, n) = (link.host_ip, link.nic_ip);
    let flow = |in_port, between, out| FlowMod {
        command: FlowCommand::Add,
        matching: Some(FlowMatch {
            between: Some(between),
            ..FlowMatch::port(in_port)
        }),
        priority: PRIORITY_RDMA_LINK,
        cookie: COOKIE_RDMA_LINK,
        output: Some(out),
    };
    [
        flow(ports.host, Between::Ipv4 { src: h, dst: n }, ports.nic),
        flow(ports.host, Between::Arp { src: h, dst: n }, ports.nic),
        flow(ports.nic, Between::Ipv4 { src: n, dst: h }, ports.host),
        flow(ports.nic, Between::Arp { src: n, dst: h }, ports.host),
    ]
}

impl Steering for OvsEswitch {
    fn apply(&mut self, rules: &RuleTable) -> Result<Applied, EswitchError> {
        let shares = expressible_shares(rules)?;
        let wanted = outputs(self.config.ports, shares);
        let config = self.config.clone();
        let state = &mut *self.lock();
        let mut written = 0;
        for (offset, (&want, have)) in (0..STEER_PORTS).zip(wanted.iter().zip(&state.installed)) {
            if want != *have {
                state
                    .conn
                    .flow(&key_flow(&config, FlowCommand::ModifyStrict, offset, want));
                written += 1;
            }
        }
        state.conn.barrier()?;
        state.installed = wanted;
        Ok(Applied {
            version: rules.version(),
            applied_at_ns: monotonic_now_ns(),
            entries_written: written,
            entries_removed: 0,
        })
    }

    fn counts(&self) -> Result<SteerCounts, EswitchError> {
        let ports = self.config.ports;
        let state = &mut *self.lock();
        let tx = state.conn.port_tx()?;
        Ok(SteerCounts {
            host: tx_of(&tx, ports.host).saturating_sub(state.baseline[0]),
            nic: tx_of(&tx, ports.nic).saturating_sub(state.baseline[1]),
            client: 0,
            malformed: 0,
        })
    }

    fn kind(&self) -> &'static str {
        "open-vswitch"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use naam_engine::{FunctionId, RuleKey, TenantId};

    const PORTS: OvsPorts = OvsPorts {
        uplink: 1,
        host: 2,
        nic: 3,
    };

    #[test]
    fn every_key_goes_where_its_location_is() {
        let shares = Shares::new(300, 500, 200).unwrap();
        let out = outputs(PORTS, shares);
        assert_eq!(out.len(), usize::from(STEER_PORTS));
        for (offset, port) in (0..STEER_PORTS).zip(&out) {
            let at_nic = key_at(offset).location(shares) == Location::Nic;
            assert_eq!(*port == PORTS.nic, at_nic, "key offset {offset}");
        }
        assert_eq!(out.iter().filter(|p| **p == PORTS.nic).count(), 500);
        assert_eq!(out[usize::from(BUCKETS)], PORTS.host, "pinned");
    }

    #[test]
    fn the_rdma_link_goes_between_the_host_and_nic_ports_only() {
        let link = OvsRdmaLink {
            host_ip: Ipv4Addr::new(192, 168, 200, 1),
            nic_ip: Ipv4Addr::new(192, 168, 200, 2),
        };
        let flows = link_flows(PORTS, link);
        for f in &flows {
            let m = f.matching.expect("a match");
            let (src, dst) = match m.between.expect("between two addresses") {
                Between::Ipv4 { src, dst } | Between::Arp { src, dst } => (src, dst),
            };
            let (from, to) = if src == link.host_ip {
                (PORTS.host, PORTS.nic)
            } else {
                (PORTS.nic, PORTS.host)
            };
            assert_eq!((m.in_port, f.output, dst == src), (from, Some(to), false));
            assert!(f.priority > PRIORITY_KEY, "above every steering flow");
            assert_ne!(f.output, Some(PORTS.uplink));
        }
        let arp = |f: &FlowMod| matches!(f.matching.unwrap().between, Some(Between::Arp { .. }));
        assert_eq!(flows.iter().filter(|f| arp(f)).count(), 2);
    }

    #[test]
    fn only_all_host_rules_besides_the_default_are_expressible() {
        let mut rules = RuleTable::new(Shares::NIC);
        let key = RuleKey::function(TenantId(1), FunctionId(2));
        rules.set(key, Shares::HOST).unwrap();
        assert_eq!(expressible_shares(&rules).unwrap(), Shares::NIC);
        rules.set(key, Shares::NIC).unwrap();
        assert!(matches!(
            expressible_shares(&rules),
            Err(EswitchError::Unmatchable { .. })
        ));
    }
}
