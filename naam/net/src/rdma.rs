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

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use ibverbs_sys as ffi;
use naam_engine::abi::ACCESS_BYTES_MAX;

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

const _: () = assert!(READS_INFLIGHT_MAX <= u16::MAX as usize && COMPLETIONS_PER_POLL_MAX <= CQ_ENTRIES);

/// Why an RDMA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RdmaError {
    /// No RDMA device on this machine (or no kernel RDMA support). `list_errno` is the error
    /// `ibv_get_device_list` set when it returned no list at all (`ENOSYS`: the kernel exposes
    /// no verbs devices).
    #[error("no RDMA device found (ibv_get_device_list returned 0 devices); use the emulated RNIC")]
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
    /// A region that cannot be registered.
    #[error("region of {len} bytes cannot be registered: {reason}")]
    Region {
        /// Its length.
        len: usize,
        /// Why.
        reason: &'static str,
    },
}

/// An open device with its protection domain. Destroyed after every object made from it (they
/// hold an `Arc`).
struct Device {
    ctx: NonNull<ffi::ibv_context>,
    pd: NonNull<ffi::ibv_pd>,
    name: String,
    lid: u16,
    gid: [u8; 16],
    gid_index: u8,
    global_routing: bool,
}

// SAFETY: libibverbs objects may be used from any thread (verbs calls are thread-safe, see
// ibv_open_device(3) and rdma-core's threading notes); the pointers are only passed to verbs.
unsafe impl Send for Device {}
// SAFETY: as above; no method mutates Rust-side state through a shared reference.
unsafe impl Sync for Device {}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: pd and ctx came from ibv_alloc_pd/ibv_open_device and every object made from
        // them holds an Arc<Device>, so none is left. Errors cannot be reported from drop.
        unsafe {
            ffi::ibv_dealloc_pd(self.pd.as_ptr());
            ffi::ibv_close_device(self.ctx.as_ptr());
        }
    }
}

impl Device {
    fn verbs(&self, call: &'static str, source: io::Error) -> RdmaError {
        RdmaError::Verbs { call, device: self.name.clone(), source }
    }

    fn errno(&self, call: &'static str, rc: i32) -> RdmaError {
        // Verbs return the errno itself (positive) or -1 with errno set.
        let source = if rc > 0 { io::Error::from_raw_os_error(rc) } else { io::Error::last_os_error() };
        self.verbs(call, source)
    }
}

/// How to open a device. The default takes the first device and GID index 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RdmaConfig {
    /// Device name (`mlx5_0`, ...); `None` takes the first device.
    pub device: Option<String>,
    /// GID table index (RoCE v2 is usually 1 or 3; InfiniBand uses 0).
    pub gid_index: u8,
}

/// An open RDMA device and protection domain.
#[derive(Clone)]
pub struct RdmaContext {
    dev: Arc<Device>,
}

impl fmt::Debug for RdmaContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RdmaContext").field("device", &self.dev.name).field("lid", &self.dev.lid).finish()
    }
}

/// Names of the RDMA devices present; [`RdmaError::NoDevice`] when there are none.
pub fn device_names() -> Result<Vec<String>, RdmaError> {
    let list = ibverbs::devices().map_err(|e| RdmaError::NoDevice { list_errno: e.raw_os_error() })?;
    let names: Vec<String> =
        list.iter().map(|d| d.name().map_or_else(|| "?".to_string(), |n| n.to_string_lossy().into_owned())).collect();
    if names.is_empty() {
        return Err(RdmaError::NoDevice { list_errno: None });
    }
    Ok(names)
}

impl RdmaContext {
    /// Opens the configured device (the first one when none is named), checks that its port is
    /// active, and allocates a protection domain. Fails at once with [`RdmaError::NoDevice`] on
    /// machines without RDMA.
    pub fn open(config: &RdmaConfig) -> Result<RdmaContext, RdmaError> {
        let available = device_names()?;
        let mut count = 0i32;
        // SAFETY: `count` is a valid out-pointer; the list is freed below on every path.
        let list = unsafe { ffi::ibv_get_device_list(&raw mut count) };
        if list.is_null() {
            return Err(RdmaError::NoDevice { list_errno: io::Error::last_os_error().raw_os_error() });
        }
        // SAFETY: ibv_get_device_list returned `count` valid device pointers.
        let devices = unsafe { std::slice::from_raw_parts(list, usize::try_from(count).unwrap_or(0)) };
        let chosen = devices.iter().copied().find(|d| match &config.device {
            None => true,
            Some(name) => device_name(*d) == *name,
        });
        let opened = chosen.map(|d| {
            // SAFETY: `d` is a device of the live list; opening it needs no other precondition.
            (device_name(d), unsafe { ffi::ibv_open_device(d) })
        });
        // SAFETY: `list` came from ibv_get_device_list; opened contexts stay valid after freeing.
        unsafe { ffi::ibv_free_device_list(list) };
        let Some((name, ctx)) = opened else {
            let name = config.device.clone().unwrap_or_default();
            return Err(RdmaError::DeviceNotFound { name, available });
        };
        let ctx = NonNull::new(ctx).ok_or_else(|| RdmaError::Verbs {
            call: "ibv_open_device",
            device: name.clone(),
            source: io::Error::last_os_error(),
        })?;
        open_context(ctx, name, config.gid_index).map(|dev| RdmaContext { dev: Arc::new(dev) })
    }

    /// The device's name.
    pub fn device_name(&self) -> &str {
        &self.dev.name
    }

    /// Registers `memory` for remote READs (an exported host region, read by clients and the
    /// NIC). The borrow keeps the memory alive and unchanged from Rust for the registration's
    /// lifetime; see [`RdmaContext::register_raw`] for memory the owner keeps writing.
    pub fn register<'m>(&self, memory: &'m [u8]) -> Result<RemoteRegion<'m>, RdmaError> {
        // SAFETY: the borrow `'m` outlives the returned registration, so the memory stays valid.
        unsafe { self.register_ptr(memory.as_ptr(), memory.len()) }
    }

    /// Registers `len` bytes at `addr` for remote READs, for memory the owner keeps writing
    /// (e.g. a MICA log in a shared mapping); remote readers then see it as a one-sided read
    /// would on hardware, torn reads included.
    ///
    /// # Safety
    ///
    /// `addr..addr + len` must stay mapped until the returned registration is dropped.
    pub unsafe fn register_raw(&self, addr: *const u8, len: usize) -> Result<RemoteRegion<'static>, RdmaError> {
        // SAFETY: forwarded from the caller.
        unsafe { self.register_ptr(addr, len) }
    }

    /// # Safety
    ///
    /// `addr..addr + len` must stay mapped for `'m` and until the registration is dropped.
    unsafe fn register_ptr<'m>(&self, addr: *const u8, len: usize) -> Result<RemoteRegion<'m>, RdmaError> {
        if len == 0 || len > REGION_BYTES_MAX {
            return Err(RdmaError::Region { len, reason: "must be 1..=REGION_BYTES_MAX bytes" });
        }
        let access = ffi::ibv_access_flags::IBV_ACCESS_REMOTE_READ.0 as i32;
        // SAFETY: the caller guarantees the range stays mapped while registered; the PD is live.
        let mr = unsafe { ffi::ibv_reg_mr(self.dev.pd.as_ptr(), addr.cast_mut().cast(), len, access) };
        let mr = NonNull::new(mr).ok_or_else(|| self.dev.verbs("ibv_reg_mr", io::Error::last_os_error()))?;
        Ok(RemoteRegion { mr, dev: Arc::clone(&self.dev), _memory: PhantomData })
    }

    /// Creates an RC queue pair (with its completion queue) in the INIT state; exchange
    /// [`PreparedQp::info`] with the peer and [`PreparedQp::connect`].
    pub fn create_qp(&self) -> Result<PreparedQp, RdmaError> {
        let dev = &self.dev;
        // SAFETY: the context is live; no completion channel, vector 0.
        let cq = unsafe {
            ffi::ibv_create_cq(dev.ctx.as_ptr(), CQ_ENTRIES as i32, std::ptr::null_mut(), std::ptr::null_mut(), 0)
        };
        let cq = NonNull::new(cq).ok_or_else(|| dev.verbs("ibv_create_cq", io::Error::last_os_error()))?;
        let cq = CompletionQueue { cq, _dev: Arc::clone(dev) };
        let mut init = ffi::ibv_qp_init_attr {
            qp_context: std::ptr::null_mut(),
            send_cq: cq.cq.as_ptr(),
            recv_cq: cq.cq.as_ptr(),
            srq: std::ptr::null_mut(),
            cap: ffi::ibv_qp_cap {
                max_send_wr: READS_INFLIGHT_MAX as u32,
                max_recv_wr: 1,
                max_send_sge: 1,
                max_recv_sge: 1,
                max_inline_data: 0,
            },
            qp_type: ffi::ibv_qp_type::IBV_QPT_RC,
            sq_sig_all: 0,
        };
        // SAFETY: `init` is fully initialised and names a live CQ of the same context.
        let qp = unsafe { ffi::ibv_create_qp(dev.pd.as_ptr(), &raw mut init) };
        let qp = NonNull::new(qp).ok_or_else(|| dev.verbs("ibv_create_qp", io::Error::last_os_error()))?;
        let qp = QueuePair { qp, dev: Arc::clone(dev) };
        qp.to_init()?;
        // SAFETY: `qp` is a live QP; qp_num is set by ibv_create_qp and never changes.
        let qp_num = unsafe { (*qp.qp.as_ptr()).qp_num };
        let info = QpInfo { qp_num, lid: dev.lid, gid: dev.gid, psn: initial_psn(qp_num) };
        Ok(PreparedQp { qp, cq, info })
    }
}

fn device_name(device: *mut ffi::ibv_device) -> String {
    // SAFETY: `device` is an entry of a live device list; the name is a NUL-terminated string
    // owned by the device (or null).
    let name = unsafe { ffi::ibv_get_device_name(device) };
    if name.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, valid while the list lives (we copy it at once).
    unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned()
}

/// Queries the port and GID and allocates the PD of a freshly opened context (closed on error).
fn open_context(ctx: NonNull<ffi::ibv_context>, name: String, gid_index: u8) -> Result<Device, RdmaError> {
    let close = |e: RdmaError| {
        // SAFETY: `ctx` was opened above and nothing else uses it yet.
        unsafe { ffi::ibv_close_device(ctx.as_ptr()) };
        e
    };
    let fail = |call: &'static str, source: io::Error| close(RdmaError::Verbs { call, device: name.clone(), source });
    // SAFETY: all-zero is a valid ibv_port_attr (integers only), as verbs.h's ibv_query_port does.
    let mut port = unsafe { std::mem::zeroed::<ffi::ibv_port_attr>() };
    // SAFETY: the exported ibv_query_port writes a full ibv_port_attr (the compat type is its
    // prefix); `port` is live and writable.
    let rc = unsafe { ffi::ibv_query_port(ctx.as_ptr(), PORT_NUM, (&raw mut port).cast()) };
    if rc != 0 {
        return Err(fail("ibv_query_port", io::Error::from_raw_os_error(rc.abs())));
    }
    if port.state != ffi::ibv_port_state::IBV_PORT_ACTIVE {
        return Err(close(RdmaError::PortNotActive { device: name.clone(), port: PORT_NUM, state: port.state }));
    }
    // SAFETY: ibv_gid is a union of byte arrays; all-zero is valid.
    let mut gid = unsafe { std::mem::zeroed::<ffi::ibv_gid>() };
    // SAFETY: `gid` is live and writable.
    let rc = unsafe { ffi::ibv_query_gid(ctx.as_ptr(), PORT_NUM, i32::from(gid_index), &raw mut gid) };
    if rc != 0 {
        return Err(fail("ibv_query_gid", io::Error::from_raw_os_error(rc.abs())));
    }
    // SAFETY: every bit pattern of the union is a valid [u8; 16].
    let gid = unsafe { gid.raw };
    // SAFETY: the context is live.
    let pd = unsafe { ffi::ibv_alloc_pd(ctx.as_ptr()) };
    let pd = NonNull::new(pd).ok_or_else(|| fail("ibv_alloc_pd", io::Error::last_os_error()))?;
    let global_routing = u32::from(port.link_layer) == ffi::IBV_LINK_LAYER_ETHERNET || port.lid == 0;
    Ok(Device { ctx, pd, name, lid: port.lid, gid, gid_index, global_routing })
}

/// A first packet sequence number derived from the QP number (any 24-bit value works; distinct
/// per QP eases debugging).
fn initial_psn(qp_num: u32) -> u32 {
    qp_num.wrapping_mul(0x9e37_79b9) & 0x00ff_ffff
}

/// A registered region peers may READ: send them [`RemoteRegion::addr`], `len` and `rkey`.
/// Deregistered on drop.
pub struct RemoteRegion<'m> {
    mr: NonNull<ffi::ibv_mr>,
    dev: Arc<Device>,
    _memory: PhantomData<&'m [u8]>,
}

// SAFETY: the MR is only read (its keys) and deregistered once, on drop; verbs are thread-safe.
unsafe impl Send for RemoteRegion<'_> {}
// SAFETY: as above.
unsafe impl Sync for RemoteRegion<'_> {}

impl RemoteRegion<'_> {
    fn mr(&self) -> &ffi::ibv_mr {
        // SAFETY: the MR stays registered until drop.
        unsafe { self.mr.as_ref() }
    }

    /// The region's address in the owner's address space (RDMA READs name it).
    pub fn addr(&self) -> u64 {
        self.mr().addr as u64
    }

    /// Registered length.
    pub fn len(&self) -> usize {
        self.mr().length
    }

    /// True for an empty region (never: registration refuses them).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The remote key peers present.
    pub fn rkey(&self) -> u32 {
        self.mr().rkey
    }
}

impl fmt::Debug for RemoteRegion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RemoteRegion({} bytes at {:#x}, rkey {:#x}, {})",
            self.len(),
            self.addr(),
            self.rkey(),
            self.dev.name
        )
    }
}

impl Drop for RemoteRegion<'_> {
    fn drop(&mut self) {
        // SAFETY: registered in register_raw and deregistered only here.
        unsafe { ffi::ibv_dereg_mr(self.mr.as_ptr()) };
    }
}

struct CompletionQueue {
    cq: NonNull<ffi::ibv_cq>,
    /// Keeps the context alive until the CQ is destroyed.
    _dev: Arc<Device>,
}

impl Drop for CompletionQueue {
    fn drop(&mut self) {
        // SAFETY: the QP using this CQ is dropped first (field order of its owners).
        unsafe { ffi::ibv_destroy_cq(self.cq.as_ptr()) };
    }
}

struct QueuePair {
    qp: NonNull<ffi::ibv_qp>,
    dev: Arc<Device>,
}

impl Drop for QueuePair {
    fn drop(&mut self) {
        // SAFETY: created in create_qp and destroyed only here.
        unsafe { ffi::ibv_destroy_qp(self.qp.as_ptr()) };
    }
}

impl QueuePair {
    fn modify(
        &self,
        call: &'static str,
        attr: &mut ffi::ibv_qp_attr,
        mask: ffi::ibv_qp_attr_mask,
    ) -> Result<(), RdmaError> {
        // SAFETY: `attr` is a live, initialised attribute struct; the QP is live.
        let rc = unsafe { ffi::ibv_modify_qp(self.qp.as_ptr(), attr, mask.0 as i32) };
        if rc != 0 {
            return Err(self.dev.errno(call, rc));
        }
        Ok(())
    }

    fn to_init(&self) -> Result<(), RdmaError> {
        use ffi::ibv_qp_attr_mask as m;
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_INIT,
            pkey_index: 0,
            port_num: PORT_NUM,
            qp_access_flags: ffi::ibv_access_flags::IBV_ACCESS_REMOTE_READ.0,
            ..Default::default()
        };
        self.modify(
            "ibv_modify_qp(INIT)",
            &mut attr,
            m::IBV_QP_STATE | m::IBV_QP_PKEY_INDEX | m::IBV_QP_PORT | m::IBV_QP_ACCESS_FLAGS,
        )
    }

    fn to_rtr(&self, remote: &QpInfo) -> Result<(), RdmaError> {
        use ffi::ibv_qp_attr_mask as m;
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_RTR,
            path_mtu: ffi::IBV_MTU_1024,
            dest_qp_num: remote.qp_num,
            rq_psn: remote.psn,
            max_dest_rd_atomic: RD_ATOMIC_MAX,
            min_rnr_timer: RC_MIN_RNR_TIMER,
            ..Default::default()
        };
        attr.ah_attr.dlid = remote.lid;
        attr.ah_attr.port_num = PORT_NUM;
        if self.dev.global_routing {
            attr.ah_attr.is_global = 1;
            attr.ah_attr.grh.dgid = ffi::ibv_gid { raw: remote.gid };
            attr.ah_attr.grh.sgid_index = self.dev.gid_index;
            attr.ah_attr.grh.hop_limit = 0xff;
        }
        let mask = m::IBV_QP_STATE
            | m::IBV_QP_AV
            | m::IBV_QP_PATH_MTU
            | m::IBV_QP_DEST_QPN
            | m::IBV_QP_RQ_PSN
            | m::IBV_QP_MAX_DEST_RD_ATOMIC
            | m::IBV_QP_MIN_RNR_TIMER;
        self.modify("ibv_modify_qp(RTR)", &mut attr, mask)
    }

    fn to_rts(&self, local_psn: u32) -> Result<(), RdmaError> {
        use ffi::ibv_qp_attr_mask as m;
        let mut attr = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_RTS,
            sq_psn: local_psn,
            timeout: RC_TIMEOUT_EXPONENT,
            retry_cnt: RC_RETRY_COUNT,
            rnr_retry: RC_RNR_RETRY,
            max_rd_atomic: RD_ATOMIC_MAX,
            ..Default::default()
        };
        let mask = m::IBV_QP_STATE
            | m::IBV_QP_SQ_PSN
            | m::IBV_QP_TIMEOUT
            | m::IBV_QP_RETRY_CNT
            | m::IBV_QP_RNR_RETRY
            | m::IBV_QP_MAX_QP_RD_ATOMIC;
        self.modify("ibv_modify_qp(RTS)", &mut attr, mask)
    }
}

/// What a peer needs to connect to a queue pair (exchange it out of band).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QpInfo {
    /// Queue pair number.
    pub qp_num: u32,
    /// Port LID (InfiniBand; 0 on RoCE).
    pub lid: u16,
    /// Port GID at the configured index (RoCE and routed InfiniBand).
    pub gid: [u8; 16],
    /// First packet sequence number this side sends.
    pub psn: u32,
}

/// Bytes of an encoded [`QpInfo`].
pub const QP_INFO_BYTES: usize = 4 + 2 + 16 + 4;

impl QpInfo {
    /// Little-endian encoding, for a UDP frame or a file.
    pub fn to_bytes(&self) -> [u8; QP_INFO_BYTES] {
        let mut out = [0u8; QP_INFO_BYTES];
        out[0..4].copy_from_slice(&self.qp_num.to_le_bytes());
        out[4..6].copy_from_slice(&self.lid.to_le_bytes());
        out[6..22].copy_from_slice(&self.gid);
        out[22..26].copy_from_slice(&self.psn.to_le_bytes());
        out
    }

    /// Decodes [`QpInfo::to_bytes`]; `None` unless exactly [`QP_INFO_BYTES`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<QpInfo> {
        let b: &[u8; QP_INFO_BYTES] = bytes.try_into().ok()?;
        let mut gid = [0u8; 16];
        gid.copy_from_slice(&b[6..22]);
        Some(QpInfo {
            qp_num: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            lid: u16::from_le_bytes([b[4], b[5]]),
            gid,
            psn: u32::from_le_bytes([b[22], b[23], b[24], b[25]]),
        })
    }
}

/// A queue pair in INIT, waiting for its peer's [`QpInfo`].
pub struct PreparedQp {
    qp: QueuePair,
    cq: CompletionQueue,
    info: QpInfo,
}

impl fmt::Debug for PreparedQp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedQp").field("info", &self.info).finish()
    }
}

impl PreparedQp {
    /// What the peer needs to connect to this queue pair.
    pub fn info(&self) -> QpInfo {
        self.info
    }

    /// Moves the queue pair to RTR (towards `remote`) and RTS.
    pub fn connect(self, remote: &QpInfo) -> Result<Connection, RdmaError> {
        self.qp.to_rtr(remote)?;
        self.qp.to_rts(self.info.psn)?;
        Ok(Connection { qp: self.qp, cq: self.cq, remote: *remote })
    }
}

/// A connected RC queue pair. The serving side just keeps it (its RNIC answers READs of its
/// registered regions); the reading side turns it into a [`OneSidedReader`].
pub struct Connection {
    // Field order = drop order: the QP before its CQ.
    qp: QueuePair,
    cq: CompletionQueue,
    remote: QpInfo,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").field("device", &self.qp.dev.name).field("remote", &self.remote).finish()
    }
}

impl Connection {
    /// Registers [`READS_INFLIGHT_MAX`] local buffer slots of [`READ_BYTES_MAX`] bytes for
    /// READ responses.
    pub fn into_reader(self) -> Result<OneSidedReader, RdmaError> {
        let buffer = ReadBuffer::new(&self.qp.dev)?;
        Ok(OneSidedReader { buffer, conn: self, inflight: [None; READS_INFLIGHT_MAX], sequence: 0 })
    }
}

/// Local memory the RNIC writes READ responses into. Held as a raw allocation: the device writes
/// it behind Rust's back, so slices are formed only over slots whose READ has completed.
struct ReadBuffer {
    base: NonNull<u8>,
    mr: NonNull<ffi::ibv_mr>,
    /// Keeps the protection domain alive until the MR is deregistered.
    _dev: Arc<Device>,
}

const READ_BUFFER_BYTES: usize = READS_INFLIGHT_MAX * READ_BYTES_MAX;

impl ReadBuffer {
    fn new(dev: &Arc<Device>) -> Result<ReadBuffer, RdmaError> {
        let base = NonNull::from(Box::leak(vec![0u8; READ_BUFFER_BYTES].into_boxed_slice())).cast::<u8>();
        let access = ffi::ibv_access_flags::IBV_ACCESS_LOCAL_WRITE.0 as i32;
        // SAFETY: `base` points at READ_BUFFER_BYTES bytes we own until drop (after dereg).
        let mr = unsafe { ffi::ibv_reg_mr(dev.pd.as_ptr(), base.as_ptr().cast(), READ_BUFFER_BYTES, access) };
        match NonNull::new(mr) {
            Some(mr) => Ok(ReadBuffer { base, mr, _dev: Arc::clone(dev) }),
            None => {
                let error = dev.verbs("ibv_reg_mr", io::Error::last_os_error());
                // SAFETY: leaked from a boxed slice of exactly this length just above, never
                // registered.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(base.as_ptr(), READ_BUFFER_BYTES)) });
                Err(error)
            }
        }
    }

    fn lkey(&self) -> u32 {
        // SAFETY: the MR stays registered until drop.
        unsafe { self.mr.as_ref() }.lkey
    }

    fn slot_addr(&self, slot: usize) -> *mut u8 {
        // SAFETY: slot < READS_INFLIGHT_MAX, so the offset stays inside the allocation.
        unsafe { self.base.as_ptr().add(slot * READ_BYTES_MAX) }
    }
}

impl Drop for ReadBuffer {
    fn drop(&mut self) {
        // SAFETY: the MR is deregistered before the memory is freed; the memory was leaked from
        // a boxed slice of READ_BUFFER_BYTES in `new`. The QP posting into it is dropped before
        // (field order of OneSidedReader), so the device no longer writes it.
        unsafe {
            ffi::ibv_dereg_mr(self.mr.as_ptr());
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.base.as_ptr(), READ_BUFFER_BYTES)));
        }
    }
}

/// Identifies a posted READ in its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReadToken(pub u64);

#[derive(Clone, Copy, Debug)]
struct Inflight {
    token: ReadToken,
    len: u32,
}

/// A READ that did not complete successfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadFailure {
    /// `ibv_wc_status`.
    pub status: u32,
    /// Vendor error syndrome.
    pub vendor_err: u32,
}

/// One finished READ, its bytes borrowed from the reader's buffer for the callback's duration.
#[derive(Debug)]
pub struct ReadCompletion<'a> {
    /// The token [`OneSidedReader::post_read`] returned.
    pub token: ReadToken,
    /// The bytes read, or why the READ failed.
    pub result: Result<&'a [u8], ReadFailure>,
}

/// Posts one-sided READs on a connected queue pair and polls their completions.
pub struct OneSidedReader {
    // Field order = drop order: the connection (QP, CQ) before the buffer it writes into.
    conn: Connection,
    buffer: ReadBuffer,
    inflight: [Option<Inflight>; READS_INFLIGHT_MAX],
    sequence: u64,
}

impl fmt::Debug for OneSidedReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inflight = self.inflight.iter().flatten().count();
        f.debug_struct("OneSidedReader").field("connection", &self.conn).field("inflight", &inflight).finish()
    }
}

impl OneSidedReader {
    /// Posts an RDMA READ of `len` bytes at `remote_addr` of the region `rkey`; returns its token.
    pub fn post_read(&mut self, rkey: u32, remote_addr: u64, len: u32) -> Result<ReadToken, RdmaError> {
        if len == 0 || len as usize > READ_BYTES_MAX {
            return Err(RdmaError::ReadLength { len, max: READ_BYTES_MAX });
        }
        let slot = self
            .inflight
            .iter()
            .position(Option::is_none)
            .ok_or(RdmaError::InflightFull { max: READS_INFLIGHT_MAX })?;
        self.sequence += 1;
        let token = ReadToken((self.sequence << 16) | slot as u64);
        let mut sge = ffi::ibv_sge { addr: self.buffer.slot_addr(slot) as u64, length: len, lkey: self.buffer.lkey() };
        let mut wr = ffi::ibv_send_wr {
            wr_id: token.0,
            next: std::ptr::null_mut(),
            sg_list: &raw mut sge,
            num_sge: 1,
            opcode: ffi::ibv_wr_opcode::IBV_WR_RDMA_READ,
            send_flags: ffi::ibv_send_flags::IBV_SEND_SIGNALED.0,
            ..Default::default()
        };
        wr.wr.rdma = ffi::ibv_send_wr__bindgen_ty_2__bindgen_ty_1 { remote_addr, rkey };
        let mut bad: *mut ffi::ibv_send_wr = std::ptr::null_mut();
        let qp = self.conn.qp.qp.as_ptr();
        // SAFETY: `qp` is live; its context's ops table is filled by the provider; `wr` and
        // `sge` live for the call (the provider copies them into the send queue) and name a
        // registered slot that no other READ uses until this one completes.
        let rc = unsafe {
            let ctx = (*qp).context;
            match (*ctx).ops.post_send {
                Some(post_send) => post_send(qp, &raw mut wr, &raw mut bad),
                None => libc::EOPNOTSUPP,
            }
        };
        if rc != 0 {
            return Err(self.conn.qp.dev.errno("ibv_post_send(RDMA_READ)", rc));
        }
        self.inflight[slot] = Some(Inflight { token, len });
        Ok(token)
    }

    /// READs posted and not yet completed.
    pub fn inflight(&self) -> usize {
        self.inflight.iter().flatten().count()
    }

    /// Takes up to [`COMPLETIONS_PER_POLL_MAX`] completions and hands each to `on_completion`
    /// with its bytes; never blocks. Returns how many completed.
    pub fn poll(&mut self, mut on_completion: impl FnMut(ReadCompletion<'_>)) -> Result<usize, RdmaError> {
        let mut wcs = [ffi::ibv_wc::default(); COMPLETIONS_PER_POLL_MAX];
        let cq = self.conn.cq.cq.as_ptr();
        // SAFETY: `cq` is live; `wcs` has room for the number of entries asked for.
        let n = unsafe {
            let ctx = (*cq).context;
            match (*ctx).ops.poll_cq {
                Some(poll_cq) => poll_cq(cq, COMPLETIONS_PER_POLL_MAX as i32, wcs.as_mut_ptr()),
                None => -libc::EOPNOTSUPP,
            }
        };
        if n < 0 {
            return Err(self.conn.qp.dev.errno("ibv_poll_cq", -n));
        }
        let mut completed = 0;
        for wc in wcs.iter().take(n as usize) {
            let slot = (wc.wr_id() & 0xffff) as usize;
            let Some(Some(read)) = self.inflight.get(slot).copied() else { continue };
            if read.token.0 != wc.wr_id() {
                continue;
            }
            self.inflight[slot] = None;
            completed += 1;
            let result = match wc.error() {
                None => {
                    // SAFETY: the READ into this slot completed (its completion was polled), so
                    // the device wrote its `len` bytes and writes nothing there until the slot
                    // is posted again, which needs `&mut self`.
                    Ok(unsafe { std::slice::from_raw_parts(self.buffer.slot_addr(slot), read.len as usize) })
                }
                Some((status, vendor_err)) => Err(ReadFailure { status, vendor_err }),
            };
            on_completion(ReadCompletion { token: read.token, result });
        }
        Ok(completed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_info_round_trips() {
        let info = QpInfo { qp_num: 0x12_3456, lid: 7, gid: [9; 16], psn: 0xab_cdef };
        assert_eq!(QpInfo::from_bytes(&info.to_bytes()), Some(info));
        assert_eq!(QpInfo::from_bytes(&[0; QP_INFO_BYTES - 1]), None);
    }
}
