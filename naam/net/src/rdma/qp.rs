//! Reliable-connected queue pairs: creation, the INIT → RTR → RTS handshake, and the
//! connection descriptor peers exchange.

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::Arc;

use ibverbs_sys as ffi;

use super::device::Device;
use super::reader::OneSidedReader;
use super::{
    CQ_ENTRIES, PORT_NUM, RC_MIN_RNR_TIMER, RC_RETRY_COUNT, RC_RNR_RETRY, RC_TIMEOUT_EXPONENT,
    RD_ATOMIC_MAX, READS_INFLIGHT_MAX, RdmaError,
};

/// A first packet sequence number derived from the QP number (any 24-bit value works; distinct
/// per QP eases debugging).
fn initial_psn(qp_num: u32) -> u32 {
    qp_num.wrapping_mul(0x9e37_79b9) & 0x00ff_ffff
}

pub(super) struct CompletionQueue {
    pub(super) cq: NonNull<ffi::ibv_cq>,
    /// Keeps the context alive until the CQ is destroyed.
    _dev: Arc<Device>,
}

impl Drop for CompletionQueue {
    fn drop(&mut self) {
        // SAFETY: the QP using this CQ is dropped first (field order of its owners).
        unsafe { ffi::ibv_destroy_cq(self.cq.as_ptr()) };
    }
}

pub(super) struct QueuePair {
    pub(super) qp: NonNull<ffi::ibv_qp>,
    pub(super) dev: Arc<Device>,
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

/// Creates an RC queue pair (with its completion queue) on `dev` and moves it to INIT.
pub(super) fn create(dev: &Arc<Device>) -> Result<PreparedQp, RdmaError> {
    // SAFETY: the context is live; no completion channel, vector 0.
    let cq = unsafe {
        ffi::ibv_create_cq(
            dev.ctx.as_ptr(),
            CQ_ENTRIES as i32,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    let cq =
        NonNull::new(cq).ok_or_else(|| dev.verbs("ibv_create_cq", io::Error::last_os_error()))?;
    let cq = CompletionQueue {
        cq,
        _dev: Arc::clone(dev),
    };
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
    let qp =
        NonNull::new(qp).ok_or_else(|| dev.verbs("ibv_create_qp", io::Error::last_os_error()))?;
    let qp = QueuePair {
        qp,
        dev: Arc::clone(dev),
    };
    qp.to_init()?;
    // SAFETY: `qp` is a live QP; qp_num is set by ibv_create_qp and never changes.
    let qp_num = unsafe { (*qp.qp.as_ptr()).qp_num };
    let info = QpInfo {
        qp_num,
        lid: dev.lid,
        gid: dev.gid,
        psn: initial_psn(qp_num),
    };
    Ok(PreparedQp { qp, cq, info })
}

pub use crate::remote::{QP_INFO_BYTES, QpInfo};

/// A queue pair in INIT, waiting for its peer's [`QpInfo`].
pub struct PreparedQp {
    qp: QueuePair,
    cq: CompletionQueue,
    info: QpInfo,
}

impl fmt::Debug for PreparedQp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedQp")
            .field("info", &self.info)
            .finish()
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
        Ok(Connection {
            qp: self.qp,
            cq: self.cq,
            remote: *remote,
        })
    }
}

/// A connected RC queue pair. The serving side just keeps it (its RNIC answers READs of its
/// registered regions); the reading side turns it into a [`OneSidedReader`].
pub struct Connection {
    // Field order = drop order: the QP before its CQ.
    pub(super) qp: QueuePair,
    pub(super) cq: CompletionQueue,
    remote: QpInfo,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("device", &self.qp.dev.name)
            .field("remote", &self.remote)
            .finish()
    }
}

impl Connection {
    /// Registers [`READS_INFLIGHT_MAX`](super::READS_INFLIGHT_MAX) local buffer slots of
    /// [`READ_BYTES_MAX`](super::READ_BYTES_MAX) bytes for READ responses.
    pub fn into_reader(self) -> Result<OneSidedReader, RdmaError> {
        OneSidedReader::new(self)
    }
}
