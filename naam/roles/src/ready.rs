//! Ready files: what a started role publishes for the roles that start after it (written
//! atomically, so a reader never sees half a file).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use naam_engine::{Perms, RegionId, RegionInfo, Rkey, TenantId};
use serde::{Deserialize, Serialize};

use crate::workload::DatasetMeta;

/// Largest ready file read.
pub const READY_BYTES_MAX: u64 = 64 << 20;
/// How often a waiting role looks for a ready file.
pub const READY_POLL: Duration = Duration::from_millis(10);

/// A catalog entry as published (the engine stays free of serde).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionEntry {
    /// Region id.
    pub id: u32,
    /// Owner tenant.
    pub tenant: u32,
    /// Length in bytes.
    pub len: u64,
    /// Readable.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Capability.
    pub rkey: u64,
}

impl From<&RegionInfo> for RegionEntry {
    fn from(r: &RegionInfo) -> Self {
        RegionEntry {
            id: r.id.0,
            tenant: r.tenant.0,
            len: r.len,
            read: r.perms.read,
            write: r.perms.write,
            rkey: r.rkey.0,
        }
    }
}

impl RegionEntry {
    /// Back to the engine's type.
    pub fn info(&self) -> RegionInfo {
        RegionInfo {
            id: RegionId(self.id),
            tenant: TenantId(self.tenant),
            len: self.len,
            perms: Perms {
                read: self.read,
                write: self.write,
            },
            rkey: Rkey(self.rkey),
        }
    }
}

/// A shared-memory file holding one region's bytes (for the emulated NIC's DMA).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShmEntry {
    /// Region id.
    pub id: u32,
    /// The file.
    pub path: PathBuf,
    /// Its length.
    pub len: u64,
}

/// `host.ready.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReady {
    /// Where clients send messages (the eSwitch's port).
    pub ingress: SocketAddr,
    /// The emulated RNIC (one-sided reads).
    pub rnic: SocketAddr,
    /// The controller (NIC load samples): on the host–NIC link's host end when the host has one
    /// (`HostConfig::nic_link`), else on the server's address.
    pub control: SocketAddr,
    /// Where the NIC must send its samples from when it is not its worker 0's ingress socket: the
    /// link's NIC end at the ingress port (the controller drops samples from anywhere else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_source: Option<SocketAddr>,
    /// The eSwitch in use (`kernel` or `user`).
    pub eswitch: String,
    /// With the user-space eSwitch: the addresses NIC workers must bind, one per worker (the
    /// switch forwards to them); empty with the kernel eSwitch (NIC workers join the ingress
    /// port's SO_REUSEPORT group).
    pub nic_listen: Vec<SocketAddr>,
    /// Every region.
    pub catalog: Vec<RegionEntry>,
    /// Their shared-memory files.
    pub shm: Vec<ShmEntry>,
    /// What clients need to address the data (rkeys per tenant, sizes, roots).
    pub dataset: DatasetMeta,
    /// The host's PID.
    pub pid: u32,
    /// Its regions exported for one-sided RDMA READs, when it exports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdma: Option<RdmaExport>,
    /// The iPipe counterpart's link (iPipe series only): the NIC connects here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipipe_link: Option<SocketAddr>,
    /// Whether clients send host-native calls (writes) with the pinned steering key, which the
    /// eSwitch places at the host whatever its rules (NAAM: writes run where the data lives).
    /// `false` under iPipe, which has no host-native calls: its actors own their objects,
    /// writes included, so every request takes its bucket's key and enters the NIC (the rules
    /// send everything there). Absent in older files: `true`.
    #[serde(default = "pinned_by_default")]
    pub host_native_pinned: bool,
}

fn pinned_by_default() -> bool {
    true
}

/// What a reader needs to READ the host's regions over RDMA: the handshake address (queue-pair
/// exchange) and each region's address, length and rkey (naam-net `remote::ExportedRegion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdmaExport {
    /// Where readers connect their queue pairs.
    pub handshake: SocketAddr,
    /// Every exported region.
    pub regions: Vec<RdmaRegion>,
}

/// One exported region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RdmaRegion {
    /// The region's id.
    pub region: u32,
    /// Its address in the host's address space.
    pub addr: u64,
    /// Registered bytes.
    pub len: u64,
    /// The rkey READs present.
    pub rkey: u32,
}

impl RdmaRegion {
    /// naam-net's form.
    pub fn exported(&self) -> naam_net::remote::ExportedRegion {
        naam_net::remote::ExportedRegion {
            region: self.region,
            addr: self.addr,
            len: self.len,
            rkey: self.rkey,
        }
    }
}

/// `nic.ready.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NicReady {
    /// The addresses its workers listen on.
    pub listen: Vec<SocketAddr>,
    /// The NIC's PID.
    pub pid: u32,
}

/// Why a ready file cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// It did not appear in time.
    #[error("{} did not appear within {waited_ms} ms (did the role start? see its log)", path.display())]
    Timeout {
        /// The file.
        path: PathBuf,
        /// How long we waited.
        waited_ms: u64,
    },
    /// It could not be read or parsed.
    #[error("{}: {message}", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// Writes `value` to `path` atomically (temp file + rename).
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Reads a ready file, waiting up to `timeout` for it to appear.
pub fn wait_for<T: for<'de> Deserialize<'de>>(
    path: &Path,
    timeout: Duration,
) -> Result<T, ReadyError> {
    let polls = (timeout.as_millis() / READY_POLL.as_millis()).max(1);
    for _ in 0..polls {
        if path.exists() {
            return read(path);
        }
        std::thread::sleep(READY_POLL);
    }
    Err(ReadyError::Timeout {
        path: path.to_path_buf(),
        waited_ms: timeout.as_millis() as u64,
    })
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ReadyError> {
    let bad = |message: String| ReadyError::Bad {
        path: path.to_path_buf(),
        message,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if len > READY_BYTES_MAX {
        return Err(bad(format!("{len} bytes, more than {READY_BYTES_MAX}")));
    }
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))
}
