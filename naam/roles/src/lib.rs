//! # naam-roles — the NAAM processes
//!
//! One lean binary, `naam-role --config FILE`, runs any role of a NAAM testbed. It is what the
//! local testbed spawns and what the orchestrator ships to real machines; it links no polars or
//! plotters.
//!
//! - [`host`]: the server host — the dataset in shared-memory regions, host workers, the
//!   emulated RNIC for one-sided reads, the controller and the eSwitch;
//! - [`nic`]: the emulated SmartNIC — its own worker pool reaching host memory by "DMA" (a
//!   read-only mapping plus a per-access delay) on cores of configurable speed;
//! - [`client`]: open-loop load, client-side execution with one-sided reads, verification,
//!   interval histograms — a driver of a [`session::ClientSession`] (generator + workload +
//!   the engine's client endpoint, socket- and clock-free);
//! - [`hog`]: CPU-bound threads that congest the host.
//!
//! The roles own sockets, threads, pinning and the clock; all NAAM logic is `naam-engine`'s.
//! Every role writes a ready file when it serves (atomically), and its measurements of the
//! measured phase when it ends, in the schema of `naam_results::raw`.

pub mod client;
pub mod config;
pub mod control_auth;
pub mod counters;
pub mod hog;
pub mod host;
pub mod ipipe;
pub mod nic;
pub mod os;
pub mod rdma;
pub mod ready;
pub mod serve;
pub mod session;
pub mod shm;
pub mod timeline;
pub mod workload;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use config::{Role, RoleConfig};

/// Why a role failed.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// The configuration file.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A workload could not be set up.
    #[error(transparent)]
    Workload(#[from] workload::WorkloadError),
    /// A ready file of another role.
    #[error(transparent)]
    Ready(#[from] ready::ReadyError),
    /// A socket.
    #[error("network: {0}")]
    Net(#[from] naam_net::NetError),
    /// A file.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Anything else while setting up or serving.
    #[error("{0}")]
    Setup(String),
}

impl RoleError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, what: &'static str, source: std::io::Error) -> RoleError {
        RoleError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Runs the role a configuration describes until it ends (clients, hog) or is stopped (host,
/// NIC: SIGTERM/SIGINT).
pub fn run(config: &RoleConfig) -> Result<(), RoleError> {
    let stop: &'static AtomicBool = os::stop_flag();
    std::fs::create_dir_all(&config.out_dir)
        .map_err(|e| RoleError::io(&config.out_dir, "create out dir", e))?;
    match &config.role {
        Role::Host(h) => host::run(config, h, stop),
        Role::Nic(n) => match &n.ipipe {
            Some(policy) => ipipe::nic::run(config, n, policy, stop),
            None => nic::run(config, n, stop),
        },
        Role::Client(c) => client::run(config, c, stop),
        Role::Hog(g) => hog::run(config, g, stop),
    }
}

/// Socket helpers over naam-net with the roles' defaults.
pub mod udp {
    use std::net::SocketAddr;

    use naam_net::{UdpConfig, UdpSocket};

    use crate::RoleError;

    /// Receive buffer of every role socket.
    pub const RECV_BUFFER_BYTES: usize = 4 << 20;
    /// Datagrams per system call: naam-net's largest batch.
    pub use naam_net::BATCH_MAX;

    /// The roles' socket settings: kernel timestamps, a large receive buffer, batched calls.
    pub fn config(addr: SocketAddr, reuse_port: bool) -> UdpConfig {
        UdpConfig {
            bind: addr,
            reuse_port,
            busy_poll: false,
            recv_buffer_bytes: RECV_BUFFER_BYTES,
            batch_max: BATCH_MAX,
            kernel_timestamps: true,
        }
    }

    /// The local address the kernel would send from to reach `to` (a connected probe socket;
    /// nothing is sent): a client binds it so that its reply address is routable from the server,
    /// on loopback and across namespaces alike.
    pub fn local_ip_towards(to: SocketAddr) -> Result<std::net::IpAddr, RoleError> {
        let any: SocketAddr = if to.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let probe = std::net::UdpSocket::bind(any)
            .map_err(|e| RoleError::Setup(format!("route probe: {e}")))?;
        probe
            .connect(to)
            .map_err(|e| RoleError::Setup(format!("no route to {to}: {e}")))?;
        Ok(probe
            .local_addr()
            .map_err(|e| RoleError::Setup(format!("route probe: {e}")))?
            .ip())
    }

    /// Binds a UDP socket with [`config`] (in a SO_REUSEPORT group if `reuse_port`).
    pub fn bind(addr: SocketAddr, reuse_port: bool) -> Result<UdpSocket, RoleError> {
        Ok(UdpSocket::bind(&config(addr, reuse_port))?)
    }
}
