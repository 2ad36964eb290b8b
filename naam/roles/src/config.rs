//! What a role process is told to do: one JSON file per process (`naam-role --config FILE`),
//! written by the local testbed or the orchestrator. Every field is explicit; nothing defaults
//! inside a role.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::control_auth::ControlKey;

/// Version of the role configuration schema.
pub const CONFIG_SCHEMA_VERSION: u32 = 1;
/// Largest configuration file read.
pub const CONFIG_BYTES_MAX: u64 = 1 << 20;

/// One role process's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// [`CONFIG_SCHEMA_VERSION`].
    pub schema: u32,
    /// Names the run (shared-memory names, logs).
    pub run_id: String,
    /// Where the role writes its files (ready file, counters, client measurements, log).
    pub out_dir: PathBuf,
    /// The timeline every role of a point shares, or the file it will appear in (servers start
    /// before the launcher knows when clients will).
    pub timeline: TimelineSpec,
    /// The role itself.
    pub role: Role,
}

/// Where a role learns its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum TimelineSpec {
    /// Known when the role starts.
    Fixed(Timeline),
    /// Written later (atomically, JSON of [`Timeline`]) by the launcher.
    File {
        /// The file.
        path: PathBuf,
    },
}

/// Steering policies with their parameters (naam-types).
pub use naam_types::PolicySpec;
/// Times shared by every role of a point (naam-types: the launcher writes it).
pub use naam_types::Timeline;
/// The eBPF backend a location loads its functions for.
pub use naam_types::{TenantPrograms, VmBackend};
/// Key distributions and YCSB core workloads (naam-ycsb: the generator's own types).
pub use naam_ycsb::{Distribution, Workload as YcsbWorkload};

/// Which role, with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Role {
    /// The server host: dataset, host workers, emulated RNIC, controller, eSwitch.
    Host(HostConfig),
    /// The (emulated) SmartNIC.
    Nic(NicConfig),
    /// A load-generating client.
    Client(ClientConfig),
    /// CPU-bound threads that congest the host.
    Hog(HogConfig),
}

impl Role {
    /// The role's stable name.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Host(_) => "host",
            Role::Nic(_) => "nic",
            Role::Client(_) => "client",
            Role::Hog(_) => "hog",
        }
    }
}

/// How messages are steered to the host or the NIC at the server's ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EswitchMode {
    /// Kernel eBPF program on the ingress port's SO_REUSEPORT group (needs root).
    Kernel,
    /// A user-space dispatcher thread (costs a hop and host CPU that a real eSwitch does not).
    User,
    /// OpenFlow flows on an Open vSwitch bridge ([`HostConfig::ovs`] says where): a BlueField-2's
    /// own switch, steering on the UDP source port between the uplink, the host and the Arm side.
    Ovs,
}

/// Where the Open vSwitch eSwitch is and which bridge ports lead where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OvsSwitch {
    /// The bridge's OpenFlow listener (`ptcp:` on a BlueField-2's Arm side).
    pub openflow: SocketAddr,
    /// OpenFlow port number of the uplink (`p0` on a BlueField-2).
    pub uplink_port: u32,
    /// OpenFlow port number toward the host (`pf0hpf`).
    pub host_port: u32,
    /// OpenFlow port number toward the NIC role (the Arm side's own port).
    pub nic_port: u32,
}

/// The host–NIC RDMA link across a BlueField-2's switch: an address pair of its own, on the
/// host's port and the Arm side's port of the card's bridge, between which the switch passes
/// traffic directly (`naam_net::OvsRdmaLink`). The Arm side holds the server's address (clients'
/// traffic reaches it there), so host and Arm cannot be RDMA peers on that address; and rshim's
/// control link carries no RDMA. IPv4: RoCEv2 and ARP are what the bridge's flows match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdmaLink {
    /// The host's end: its RDMA handshake listens here and its RDMA device's RoCEv2 GID for this
    /// address is the one its queue pairs use.
    pub host_ip: Ipv4Addr,
    /// The NIC's end: the NIC's RDMA device's RoCEv2 GID for this address is its queue pairs'.
    pub nic_ip: Ipv4Addr,
}

impl RdmaLink {
    fn check(&self) -> Result<(), String> {
        let (h, n) = (self.host_ip, self.nic_ip);
        if h.is_unspecified() || n.is_unspecified() || h == n {
            return Err(format!(
                "host_ip {h} and nic_ip {n} must be two distinct, specific addresses"
            ));
        }
        Ok(())
    }
}

/// A host–NIC control link apart from the server's address. Behind a BlueField-2's switch the
/// Arm side holds the server's address too (the switch hands it the server's traffic), so a load
/// sample the NIC role sent to that address would stay on the Arm: the controller listens on the
/// host's end of a link of their own (rshim's `tmfifo_net0`), and the NIC sends from its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicLink {
    /// The host's address on the link: its control socket (the NIC's load samples) and its RDMA
    /// handshake bind here, and the ready file publishes them there.
    pub host_ip: IpAddr,
    /// The NIC's address on the link: its samples must come from here, at the ingress port.
    pub nic_ip: IpAddr,
}

impl NicLink {
    /// Where the NIC's samples must come from, for a server whose ingress port is `ingress_port`.
    pub fn sample_source(&self, ingress_port: u16) -> SocketAddr {
        SocketAddr::new(self.nic_ip, ingress_port)
    }

    fn check(&self) -> Result<(), String> {
        let (h, n) = (self.host_ip, self.nic_ip);
        if h.is_unspecified() || n.is_unspecified() {
            return Err("needs specific addresses (the link's two ends), not a wildcard".into());
        }
        if h == n || h.is_ipv4() != n.is_ipv4() {
            return Err(format!(
                "host_ip {h} and nic_ip {n} must be two distinct addresses of one family"
            ));
        }
        Ok(())
    }
}

/// How a worker waits for datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Polling {
    /// Spin on non-blocking receives (lowest latency, burns the core).
    BusyPoll,
    /// Block in the kernel with a short timeout.
    Blocking,
}

/// The dataset and functions of the point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum WorkloadSpec {
    /// MICA under YCSB.
    Mica(MicaSpec),
    /// Cell-style B-tree lookups.
    Btree(BtreeSpec),
}

/// MICA dataset and YCSB mix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MicaSpec {
    /// Records loaded before the run (per tenant).
    pub records: u64,
    /// Key size (bytes).
    pub key_bytes: u32,
    /// Value size (bytes).
    pub value_bytes: u32,
    /// YCSB core workload (operation mix).
    pub ycsb_workload: YcsbWorkload,
    /// Key choice.
    pub distribution: Distribution,
    /// Index buckets (power of two).
    pub buckets: u64,
    /// Entries per bucket (7 or 15).
    pub slots: u32,
    /// Circular log size (bytes).
    pub log_bytes: u64,
    /// One GET program for every tenant or each its own (left out when shared, so existing
    /// role configurations stay byte-identical).
    #[serde(default, skip_serializing_if = "TenantPrograms::is_shared")]
    pub tenant_programs: TenantPrograms,
}

/// B-tree dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BtreeSpec {
    /// Keys bulk-loaded (per tenant).
    pub keys: u64,
    /// Node size (bytes).
    pub node_bytes: u32,
    /// Tree depth to build (levels), if the point sweeps it; else the natural depth.
    pub depth: Option<u32>,
    /// Key choice for lookups.
    pub distribution: Distribution,
}

/// The workload and how many tenants each run their own copy of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The workload.
    pub workload: WorkloadSpec,
    /// Tenants (offloaded applications); each has its own regions and functions.
    pub tenants: u32,
    /// Seed of the dataset's contents.
    pub seed: u64,
}

/// The server host role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Address the server listens on (ingress, RNIC and control ports).
    pub listen_ip: IpAddr,
    /// The ingress port clients send to (0: pick one; published in the ready file).
    pub ingress_port: u16,
    /// Host worker threads.
    pub workers: u32,
    /// CPUs the workers are pinned to (empty: not pinned).
    pub cpus: Vec<u32>,
    /// CPUs of the emulated RNIC thread (a real RNIC uses no host CPU; pin it with the NIC).
    pub rnic_cpus: Vec<u32>,
    /// NIC worker threads that will join (the eSwitch needs the layout of the group).
    pub nic_workers: u32,
    /// The dataset.
    pub dataset: Dataset,
    /// The point's steering policy with its parameters; a client-side one (Kayak, Cell) leaves
    /// the server's controller at the host.
    pub policy: PolicySpec,
    /// Kernel or user-space eSwitch.
    pub eswitch: EswitchMode,
    /// Controller sampling period.
    pub sample_period_us: u64,
    /// Busy-poll or blocking receive.
    pub polling: Polling,
    /// Folder for the shared-memory region files (e.g. /dev/shm).
    pub shm_dir: PathBuf,
    /// The run's control-channel key: NIC samples must carry its tag (`control_auth`).
    pub control_key: ControlKey,
    /// The eBPF backend its functions are loaded for (absent: the interpreter).
    #[serde(default, skip_serializing_if = "VmBackend::is_interpreter")]
    pub vm_backend: VmBackend,
    /// Register every region for one-sided RDMA READs and publish them in the ready file (an
    /// off-box NIC reads them; absent: not exported).
    #[serde(default, skip_serializing_if = "is_false")]
    pub rdma_export: bool,
    /// The Open vSwitch eSwitch (with `eswitch = "ovs"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ovs: Option<OvsSwitch>,
    /// The host–NIC control link, for a NIC role on another machine behind the server's switch
    /// (absent: the NIC reaches the controller at `listen_ip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic_link: Option<NicLink>,
    /// The host–NIC RDMA link across the card's switch (with `rdma_export`: the handshake and
    /// the regions' GID are on its host end; with `eswitch = "ovs"`: the bridge passes it
    /// between the host's and the NIC's ports). Absent: the handshake is on the control address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma_link: Option<RdmaLink>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The emulated NIC role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicConfig {
    /// The host's ready file (addresses, catalog, shared-memory files).
    pub host_ready: PathBuf,
    /// The dataset (the NIC registers the same functions as the host).
    pub dataset: Dataset,
    /// NIC worker threads.
    pub workers: u32,
    /// CPUs they are pinned to.
    pub cpus: Vec<u32>,
    /// Added delay per access to host memory (stands in for a PCIe DMA round trip).
    pub access_delay_ns: u64,
    /// Speed of a NIC core relative to a host core (0 < f ≤ 1; 0.5 = half as fast).
    pub core_speed_factor: f64,
    /// Busy-poll or blocking receive.
    pub polling: Polling,
    /// Sampling period of the load samples sent to the host's controller.
    pub sample_period_us: u64,
    /// The run's control-channel key (the host's): every sample is tagged with it.
    pub control_key: ControlKey,
    /// The eBPF backend its functions are loaded for (absent: the interpreter).
    #[serde(default, skip_serializing_if = "VmBackend::is_interpreter")]
    pub vm_backend: VmBackend,
    /// How it reaches the host's regions (absent: the host's shared-memory files).
    #[serde(default, skip_serializing_if = "NicDataPath::is_shared_memory")]
    pub data_path: NicDataPath,
    /// The iPipe series (`ipipe`, `ipipe-processes`) with its parameters: the NIC runs the
    /// iPipe baseline's runtime instead of NAAM's workers (absent: NAAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipipe: Option<PolicySpec>,
    /// With `data_path = "rdma"`: the host–NIC RDMA link whose NIC end's RoCEv2 GID its queue
    /// pairs use (absent: the device's GID index 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma_link: Option<RdmaLink>,
}

/// How the NIC role reaches the host's regions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NicDataPath {
    /// A read-only mapping of the host's shared-memory files plus the configured per-access
    /// delay: the emulated NIC, on the host's machine.
    #[default]
    SharedMemory,
    /// One-sided RDMA READs of the regions the host exports (the NIC role on another machine,
    /// e.g. a BlueField-2's Arm cores): needs the `rdma` feature and an RDMA device.
    Rdma,
}

impl NicDataPath {
    /// The default (serde skips it).
    pub fn is_shared_memory(&self) -> bool {
        *self == NicDataPath::SharedMemory
    }
}

/// A client role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Client index `k` (file names, seeds, flows).
    pub index: u32,
    /// The host's ready file.
    pub host_ready: PathBuf,
    /// The dataset (the client derives keys and expected values from it).
    pub dataset: Dataset,
    /// This client's offered rate (requests per second; open loop, Poisson).
    pub offered_ops_per_s: f64,
    /// Changes of the offered rate: (ms from measure start, factor).
    pub load_steps: Vec<(u64, f64)>,
    /// HdrHistogram interval.
    pub interval_ms: u64,
    /// This client's seed.
    pub seed: u64,
    /// Check every answer against the expected value.
    pub verify: bool,
    /// Client-side steering policy (Kayak, Cell) with its parameters, or None to follow the
    /// server's hints.
    pub client_policy: Option<PolicySpec>,
    /// CPUs the client is pinned to.
    pub cpus: Vec<u32>,
    /// Requests in flight at most.
    pub inflight_max: u32,
    /// A request without a reply after this long is counted as a timeout.
    pub timeout_ms: u64,
    /// How client-side execution reads server memory.
    pub one_sided: OneSided,
}

/// The one-sided read path of client-side execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OneSided {
    /// Read frames to the host's emulated RNIC thread over UDP.
    EmulatedRnic,
    /// RDMA READs over a real RNIC (feature `rdma`; see `naam_roles::rdma`).
    Rdma,
}

/// The CPU hog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HogConfig {
    /// Busy threads.
    pub threads: u32,
    /// CPUs they are pinned to (the host's).
    pub cpus: Vec<u32>,
    /// Start, ms from measure start.
    pub start_ms: u64,
    /// Stop, ms from measure start.
    pub stop_ms: u64,
}

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read role config {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Larger than [`CONFIG_BYTES_MAX`].
    #[error("role config {} is {len} bytes, more than {CONFIG_BYTES_MAX}", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// Not valid JSON of the schema.
    #[error("role config {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde said (with line and column).
        source: serde_json::Error,
    },
    /// A value outside its domain.
    #[error("role config {}: `{field}` {problem}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What is wrong, and what to write instead.
        problem: String,
    },
}

impl RoleConfig {
    /// Reads and validates a configuration file.
    pub fn read(path: &Path) -> Result<RoleConfig, ConfigError> {
        let read_err = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(read_err)?.len();
        if len > CONFIG_BYTES_MAX {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
                len,
            });
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        let config: RoleConfig =
            serde_json::from_slice(&bytes).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        config
            .validate()
            .map_err(|(field, problem)| ConfigError::Invalid {
                path: path.to_path_buf(),
                field,
                problem,
            })?;
        Ok(config)
    }

    /// Writes the configuration as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.schema != CONFIG_SCHEMA_VERSION {
            return Err((
                "schema",
                format!(
                    "is {}; this build reads {CONFIG_SCHEMA_VERSION}",
                    self.schema
                ),
            ));
        }
        check(
            !self.run_id.is_empty() && self.run_id.len() <= 64,
            "run_id",
            "must be 1..=64 characters",
        )?;
        if let TimelineSpec::Fixed(t) = &self.timeline {
            check(t.measure_ms > 0, "timeline.measure_ms", "must be positive")?;
        }
        match &self.role {
            Role::Host(h) => h.check(),
            Role::Nic(n) => {
                check(n.workers >= 1, "workers", "must be at least 1")?;
                let speed_ok = n.core_speed_factor > 0.0 && n.core_speed_factor <= 1.0;
                check(
                    speed_ok,
                    "core_speed_factor",
                    "must be in (0, 1]: 1 = host speed, 0.5 = half",
                )?;
                match &n.rdma_link {
                    Some(link) => link.check().map_err(|problem| ("rdma_link", problem)),
                    None => Ok(()),
                }
            }
            Role::Client(c) => {
                check(
                    c.offered_ops_per_s >= 1.0,
                    "offered_ops_per_s",
                    "must be at least 1",
                )?;
                check(c.interval_ms >= 1, "interval_ms", "must be at least 1")?;
                check(c.inflight_max >= 1, "inflight_max", "must be at least 1")?;
                match &c.client_policy {
                    Some(p) => {
                        check(p.runs_at_client(), "client_policy", "must be kayak or cell")?;
                        policy_ok(p, "client_policy")
                    }
                    None => Ok(()),
                }
            }
            Role::Hog(g) => {
                check(g.threads >= 1, "threads", "must be at least 1")?;
                check(g.stop_ms > g.start_ms, "stop_ms", "must be after start_ms")
            }
        }
    }
}

impl HostConfig {
    fn check(&self) -> Result<(), (&'static str, String)> {
        check(self.workers >= 1, "workers", "must be at least 1")?;
        check(
            self.sample_period_us >= 100,
            "sample_period_us",
            "must be at least 100",
        )?;
        check(
            self.dataset.tenants >= 1,
            "dataset.tenants",
            "must be at least 1",
        )?;
        if let Some(link) = &self.nic_link {
            link.check().map_err(|problem| ("nic_link", problem))?;
        }
        if let Some(link) = &self.rdma_link {
            link.check().map_err(|problem| ("rdma_link", problem))?;
        }
        check(
            self.eswitch != EswitchMode::Ovs || self.ovs.is_some(),
            "ovs",
            "must be set with eswitch = \"ovs\" (the bridge's OpenFlow listener and ports)",
        )?;
        policy_ok(&self.policy, "policy")
    }
}

/// The policy's parameters in their ranges (naam-types' tables, as the manifest was checked).
fn policy_ok(policy: &PolicySpec, field: &'static str) -> Result<(), (&'static str, String)> {
    policy.check().map_err(|e| (field, e.to_string()))
}

fn check(ok: bool, field: &'static str, problem: &str) -> Result<(), (&'static str, String)> {
    if ok {
        Ok(())
    } else {
        Err((field, problem.to_string()))
    }
}

/// The address a wildcard listen IP is reached at from this machine.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port())
    } else {
        addr
    }
}
