//! The server's ingress: the host workers' sockets and the eSwitch in front of them
//! (naam-net's [`KernelEswitch`] or [`UserEswitch`]).
//!
//! - **Kernel eSwitch** (root): host workers bind the ingress port in one SO_REUSEPORT group and
//!   NIC workers join it later (host sockets first, then NIC sockets); the eBPF program attached
//!   to the group picks the socket of each datagram from the rule map.
//! - **User-space eSwitch**: a dispatcher thread owns the ingress port and forwards each datagram
//!   to a host worker's or a NIC worker's own port by the same decision. It costs a hop and host
//!   CPU that a real eSwitch does not; results record which switch ran.
//! - **Open vSwitch** (a BlueField-2's own switch): host workers bind the ingress port as with
//!   the kernel eSwitch; the controller programs the bridge's flows over one OpenFlow connection
//!   (naam-net's [`OvsEswitch`]), which sends each message to the host's or the Arm side's port by
//!   its UDP source port; the NIC role binds the same address on its own machine. With the
//!   host's `rdma_link` the bridge also passes the RDMA link's traffic (RoCEv2, the handshake,
//!   ARP) between the host's and the Arm side's ports, never to the uplink.

use std::net::SocketAddr;

use naam_engine::{RuleTable, Shares};
use naam_net::{
    KernelEswitch, OvsEswitch, OvsEswitchConfig, OvsPorts, OvsTarget, Steering, UdpSocket,
    UserEswitch, UserEswitchConfig,
};

use crate::config::reachable;
use crate::config::{EswitchMode, HostConfig};
use crate::{RoleError, udp};

/// The bound ingress.
pub struct Bound {
    /// Where clients send.
    pub ingress: SocketAddr,
    /// One socket per host worker.
    pub worker_sockets: Vec<UdpSocket>,
    /// The switch the controller drives.
    pub eswitch: Box<dyn Steering>,
    /// Addresses NIC workers must bind (user-space switch), or empty (kernel switch).
    pub nic_listen: Vec<SocketAddr>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("ingress", &self.ingress)
            .field("eswitch", &self.eswitch.kind())
            .finish_non_exhaustive()
    }
}

/// Binds the ingress as `host.eswitch` says.
pub fn bind(host: &HostConfig) -> Result<Bound, RoleError> {
    match host.eswitch {
        EswitchMode::Kernel => bind_kernel(host),
        EswitchMode::User => bind_user(host),
        EswitchMode::Ovs => bind_ovs(host),
    }
}

fn bind_ovs(host: &HostConfig) -> Result<Bound, RoleError> {
    let ovs = host.ovs.as_ref().ok_or_else(|| {
        RoleError::Setup(
            "eswitch = \"ovs\" needs the host's `ovs` section (where the bridge's \
             OpenFlow listener is, and its ports)"
                .into(),
        )
    })?;
    let first = udp::bind(SocketAddr::new(host.listen_ip, host.ingress_port), true)?;
    let ingress = first.local_addr();
    let mut sockets = vec![first];
    for _ in 1..host.workers {
        sockets.push(udp::bind(ingress, true)?);
    }
    let config = OvsEswitchConfig {
        target: OvsTarget::Tcp(ovs.openflow),
        ports: OvsPorts {
            uplink: ovs.uplink_port,
            host: ovs.host_port,
            nic: ovs.nic_port,
        },
        steer_port_base: naam_net::steer_port::STEER_PORT_BASE_DEFAULT,
        rdma_link: host.rdma_link.map(|l| naam_net::OvsRdmaLink {
            host_ip: l.host_ip,
            nic_ip: l.nic_ip,
        }),
    };
    let switch = OvsEswitch::connect(config, &RuleTable::new(Shares::HOST))
        .map_err(|e| RoleError::Setup(format!("Open vSwitch eSwitch: {e}")))?;
    Ok(Bound {
        ingress,
        worker_sockets: sockets,
        eswitch: Box::new(switch),
        nic_listen: Vec::new(),
    })
}

fn bind_kernel(host: &HostConfig) -> Result<Bound, RoleError> {
    let first = udp::bind(SocketAddr::new(host.listen_ip, host.ingress_port), true)?;
    let ingress = first.local_addr();
    let mut sockets = vec![first];
    for _ in 1..host.workers {
        sockets.push(udp::bind(ingress, true)?);
    }
    let kernel = KernelEswitch::attach(&sockets[0], host.workers, host.nic_workers)
        .map_err(|e| RoleError::Setup(format!("kernel eSwitch: {e}")))?;
    Ok(Bound {
        ingress,
        worker_sockets: sockets,
        eswitch: Box::new(kernel),
        nic_listen: Vec::new(),
    })
}

fn bind_user(host: &HostConfig) -> Result<Bound, RoleError> {
    let any = SocketAddr::new(host.listen_ip, 0);
    let sockets = (0..host.workers)
        .map(|_| udp::bind(any, false))
        .collect::<Result<Vec<_>, _>>()?;
    let nic_listen = reserve_ports(any, host.nic_workers)?;
    let config = UserEswitchConfig {
        ingress: udp::config(SocketAddr::new(host.listen_ip, host.ingress_port), false),
        host: sockets.iter().map(|s| reachable(s.local_addr())).collect(),
        nic: nic_listen.iter().map(|&a| reachable(a)).collect(),
    };
    let switch = UserEswitch::start(config, &RuleTable::new(Shares::HOST))
        .map_err(|e| RoleError::Setup(format!("user-space eSwitch: {e}")))?;
    Ok(Bound {
        ingress: switch.ingress_addr(),
        worker_sockets: sockets,
        eswitch: Box::new(switch),
        nic_listen,
    })
}

/// Ports for the NIC workers: bound and released, so the NIC can bind them (the window in which
/// another program could take one is the NIC's start-up; a clash fails the NIC loudly).
fn reserve_ports(any: SocketAddr, count: u32) -> Result<Vec<SocketAddr>, RoleError> {
    let held = (0..count)
        .map(|_| udp::bind(any, false))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(held.iter().map(UdpSocket::local_addr).collect())
}
