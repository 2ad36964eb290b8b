//! Posting RDMA READs and polling their completions.

use std::fmt;
use std::io;
use std::ptr::NonNull;
use std::sync::Arc;

use ibverbs_sys as ffi;

use super::device::Device;
use super::qp::Connection;
use super::{COMPLETIONS_PER_POLL_MAX, READ_BYTES_MAX, READS_INFLIGHT_MAX, RdmaError};

/// Local memory the RNIC writes READ responses into. Held as a raw allocation: the device writes
/// it behind Rust's back, so slices are formed only over slots whose READ has completed.
pub(super) struct ReadBuffer {
    base: NonNull<u8>,
    mr: NonNull<ffi::ibv_mr>,
    /// Keeps the protection domain alive until the MR is deregistered.
    _dev: Arc<Device>,
}

const READ_BUFFER_BYTES: usize = READS_INFLIGHT_MAX * READ_BYTES_MAX;

impl ReadBuffer {
    fn new(dev: &Arc<Device>) -> Result<ReadBuffer, RdmaError> {
        let base =
            NonNull::from(Box::leak(vec![0u8; READ_BUFFER_BYTES].into_boxed_slice())).cast::<u8>();
        let access = ffi::ibv_access_flags::IBV_ACCESS_LOCAL_WRITE.0 as i32;
        // SAFETY: `base` points at READ_BUFFER_BYTES bytes we own until drop (after dereg).
        let mr = unsafe {
            ffi::ibv_reg_mr(
                dev.pd.as_ptr(),
                base.as_ptr().cast(),
                READ_BUFFER_BYTES,
                access,
            )
        };
        match NonNull::new(mr) {
            Some(mr) => Ok(ReadBuffer {
                base,
                mr,
                _dev: Arc::clone(dev),
            }),
            None => {
                let error = dev.verbs("ibv_reg_mr", io::Error::last_os_error());
                // SAFETY: leaked from a boxed slice of exactly this length just above, never
                // registered.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                        base.as_ptr(),
                        READ_BUFFER_BYTES,
                    ))
                });
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
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.base.as_ptr(),
                READ_BUFFER_BYTES,
            )));
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

// SAFETY: the reader owns its queue pair, completion queue and buffer registration exclusively
// (no other handle to them exists), so moving it to another thread moves sole use with it; the
// pointers are only passed to verbs, which are thread-safe (as for `Device`). Not `Sync`.
unsafe impl Send for OneSidedReader {}

impl fmt::Debug for OneSidedReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inflight = self.inflight.iter().flatten().count();
        f.debug_struct("OneSidedReader")
            .field("connection", &self.conn)
            .field("inflight", &inflight)
            .finish()
    }
}

impl OneSidedReader {
    pub(super) fn new(conn: Connection) -> Result<OneSidedReader, RdmaError> {
        let buffer = ReadBuffer::new(&conn.qp.dev)?;
        Ok(OneSidedReader {
            buffer,
            conn,
            inflight: [None; READS_INFLIGHT_MAX],
            sequence: 0,
        })
    }

    /// Posts an RDMA READ of `len` bytes at `remote_addr` of the region `rkey`; returns its token.
    pub fn post_read(
        &mut self,
        rkey: u32,
        remote_addr: u64,
        len: u32,
    ) -> Result<ReadToken, RdmaError> {
        if len == 0 || len as usize > READ_BYTES_MAX {
            return Err(RdmaError::ReadLength {
                len,
                max: READ_BYTES_MAX,
            });
        }
        let slot =
            self.inflight
                .iter()
                .position(Option::is_none)
                .ok_or(RdmaError::InflightFull {
                    max: READS_INFLIGHT_MAX,
                })?;
        self.sequence += 1;
        let token = ReadToken((self.sequence << 16) | slot as u64);
        let mut sge = ffi::ibv_sge {
            addr: self.buffer.slot_addr(slot) as u64,
            length: len,
            lkey: self.buffer.lkey(),
        };
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
    pub fn poll(
        &mut self,
        mut on_completion: impl FnMut(ReadCompletion<'_>),
    ) -> Result<usize, RdmaError> {
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
            let Some(Some(read)) = self.inflight.get(slot).copied() else {
                continue;
            };
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
                    Ok(unsafe {
                        std::slice::from_raw_parts(self.buffer.slot_addr(slot), read.len as usize)
                    })
                }
                Some((status, vendor_err)) => Err(ReadFailure { status, vendor_err }),
            };
            on_completion(ReadCompletion {
                token: read.token,
                result,
            });
        }
        Ok(completed)
    }
}
