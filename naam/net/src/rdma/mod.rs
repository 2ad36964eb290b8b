//! RDMA backend (cargo feature `rdma`): one-sided RDMA READs over an RC queue pair, for
//! client → server RNIC reads and NIC → host access on real RDMA hardware.
//!
//! Shape: [`RdmaContext::open`] a device; the memory owner [`RdmaContext::register`]s regions
//! and hands peers their [`RemoteRegion`] (address, length, rkey); both ends
//! [`RdmaContext::create_qp`], exchange [`QpInfo`] out of band (e.g. in a UDP frame) and
//! [`PreparedQp::connect`]; the reading end turns its [`Connection`] into a [`OneSidedReader`]
//! and calls [`OneSidedReader::post_read`]`(rkey, remote_addr, len) -> token` and
//! [`OneSidedReader::poll`]. A READ is served by the remote RNIC without the remote CPU — the
//! point of one-sided access, which the local testbed's emulated RNIC (a UDP `ReadRequest`
//! served by a host thread) does not have.
//!
//! Device discovery goes through the `ibverbs` crate; everything else goes through its `-sys`
//! layer (`ibverbs-sys`, the same bindings), because `ibverbs` 0.9.2 posts only SENDs, registers
//! only memory it allocates itself, and keeps its raw handles private — RDMA READ and
//! registration of existing host regions need the raw verbs.
//!
//! **What was exercised:** this module builds in CI (`cargo build -p naam-net --features rdma`)
//! and, on machines without an RDMA device (this project's 2-core VM), [`RdmaContext::open`]
//! fails with [`RdmaError::NoDevice`] — a test checks exactly that. **What was not:** nothing
//! past device discovery has run on RDMA hardware or Soft-RoCE; queue-pair setup, registration,
//! READ posting and completion handling follow the verbs specification and rdma-core's
//! documentation but are untested. Treat the first hardware run as their first test.

mod device;
mod qp;
mod reader;
mod session;

use std::io;

use naam_engine::abi::ACCESS_BYTES_MAX;

pub use device::{RdmaConfig, RdmaContext, RemoteRegion, device_names};
pub use qp::{Connection, PreparedQp, QP_INFO_BYTES, QpInfo};
pub use reader::{OneSidedReader, ReadCompletion, ReadFailure, ReadToken};
pub use session::{
    EXPORT_CONNECTIONS_MAX, Exporter, HANDSHAKE_TIMEOUT, RegionToExport, connect_reader,
};

/// The device port used (the first, as on a BlueField-2 or ConnectX port 1).
pub const PORT_NUM: u8 = 1;
/// READs one [`OneSidedReader`] keeps in flight at most (its local buffer slots).
pub const READS_INFLIGHT_MAX: usize = 64;
/// Bytes of one READ at most: one NAAM access.
pub const READ_BYTES_MAX: usize = ACCESS_BYTES_MAX;
/// Completion-queue entries per queue pair.
pub const CQ_ENTRIES: usize = 2 * READS_INFLIGHT_MAX;
/// Completions taken from the CQ per [`OneSidedReader::poll`] call at most.
pub const COMPLETIONS_PER_POLL_MAX: usize = 32;
/// Outstanding RDMA READs/atomics per QP as initiator and as target (`max_rd_atomic`); 16 is
/// what ConnectX/BlueField devices report (`max_qp_rd_atom`).
pub const RD_ATOMIC_MAX: u8 = 16;
/// RC ACK timeout exponent: 4.096 µs × 2^14 ≈ 67 ms.
pub const RC_TIMEOUT_EXPONENT: u8 = 14;
/// RC transport retries (7: the verbs maximum).
pub const RC_RETRY_COUNT: u8 = 7;
/// Receiver-not-ready retries (7: retry forever).
pub const RC_RNR_RETRY: u8 = 7;
/// Minimum RNR NAK timer code (12: 0.64 ms).
pub const RC_MIN_RNR_TIMER: u8 = 12;
/// Largest region [`RdmaContext::register`] accepts (1 TiB; device limits are usually lower).
pub const REGION_BYTES_MAX: usize = 1 << 40;

const _: () =
    assert!(READS_INFLIGHT_MAX <= u16::MAX as usize && COMPLETIONS_PER_POLL_MAX <= CQ_ENTRIES);

/// Why an RDMA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RdmaError {
    /// No RDMA device on this machine (or no kernel RDMA support). `list_errno` is the error
    /// `ibv_get_device_list` set when it returned no list at all (`ENOSYS`: the kernel exposes
    /// no verbs devices).
    #[error(
        "no RDMA device found (ibv_get_device_list returned 0 devices); check `ibv_devices` and \
         `rdma link show`, that the RDMA drivers are loaded (`lsmod | grep ib_uverbs`; mlx5_ib for \
         ConnectX and BlueField), and that /dev/infiniband/uverbs* exists; without RDMA hardware \
         use the emulated RNIC"
    )]
    NoDevice {
        /// `errno` of a failed `ibv_get_device_list`, if it failed rather than listing none.
        list_errno: Option<i32>,
    },
    /// The named device is not among those present.
    #[error("RDMA device `{name}` not found (present: {})", available.join(", "))]
    DeviceNotFound {
        /// The name asked for.
        name: String,
        /// The devices present.
        available: Vec<String>,
    },
    /// No device has a RoCE v2 GID for the configured address ([`RdmaConfig::gid_address`]).
    #[error(transparent)]
    Gid(#[from] crate::roce::GidError),
    /// A verbs call failed.
    #[error("{call} failed on RDMA device `{device}`: {source}")]
    Verbs {
        /// The call (`ibv_open_device`, `ibv_reg_mr`, `ibv_modify_qp(RTR)`, ...).
        call: &'static str,
        /// The device.
        device: String,
        /// The error it reported.
        #[source]
        source: io::Error,
    },
    /// The port is not active (cable, subnet manager, or link down).
    #[error("port {port} of RDMA device `{device}` is not active (state {state})")]
    PortNotActive {
        /// The device.
        device: String,
        /// The port.
        port: u8,
        /// `ibv_port_state` found.
        state: u32,
    },
    /// A READ length outside `1..=READ_BYTES_MAX`.
    #[error("READ of {len} bytes: must be 1..={max}")]
    ReadLength {
        /// Length asked for.
        len: u32,
        /// [`READ_BYTES_MAX`].
        max: usize,
    },
    /// Every buffer slot holds a READ in flight.
    #[error("{max} READs already in flight")]
    InflightFull {
        /// [`READS_INFLIGHT_MAX`].
        max: usize,
    },
    /// A socket operation of the queue-pair handshake failed.
    #[error("RDMA handshake: {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The handshake's protocol failed.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// A region that cannot be registered.
    #[error("region of {len} bytes cannot be registered: {reason}")]
    Region {
        /// Its length.
        len: usize,
        /// Why.
        reason: &'static str,
    },
}
