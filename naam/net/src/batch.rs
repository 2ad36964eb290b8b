//! Preallocated batches for `recvmmsg` and `sendmmsg`, and the two calls themselves.
//!
//! A batch owns plain buffers only (bytes, `sockaddr_storage`, control space), so it is `Send`;
//! the kernel's `mmsghdr`/`iovec` arrays, which hold raw pointers into those buffers, are built on
//! the stack for the duration of one call.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use naam_engine::wire::FRAME_BYTES_MAX;

use crate::addr::{self, RawSockAddr};
use crate::clock::timespec_ns;
use crate::udp::BATCH_MAX;

/// Control-message space per datagram, in 8-byte words: one `SCM_TIMESTAMPNS` (a 16-byte
/// `cmsghdr` plus a 16-byte `timespec`) with room to spare.
const CONTROL_WORDS: usize = 8;
const _: () = assert!(CONTROL_WORDS * 8 >= 2 * 16);

/// One received datagram, borrowed from its [`RecvBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// The datagram (at most `FRAME_BYTES_MAX` bytes; longer ones never get here).
    pub bytes: &'a [u8],
    /// The sender.
    pub from: SocketAddr,
    /// Kernel arrival time on `CLOCK_REALTIME` (ns since the epoch), when the socket has
    /// `kernel_timestamps` and the kernel supplied one.
    pub kernel_rx_realtime_ns: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    index: usize,
    len: usize,
    from: SocketAddr,
    kernel_rx_realtime_ns: Option<u64>,
}

/// Preallocated receive space: `capacity` × `FRAME_BYTES_MAX` bytes plus addresses and
/// control-message space. Reused across calls; allocation happens only in [`RecvBatch::new`].
pub struct RecvBatch {
    buffers: Vec<u8>,
    names: Vec<libc::sockaddr_storage>,
    control: Vec<[u64; CONTROL_WORDS]>,
    slots: Vec<Slot>,
    capacity: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity)
            .field("len", &self.slots.len())
            .finish()
    }
}

impl RecvBatch {
    /// Room for `capacity` datagrams, clamped to `1..=BATCH_MAX`.
    pub fn new(capacity: usize) -> RecvBatch {
        let capacity = capacity.clamp(1, BATCH_MAX);
        RecvBatch {
            buffers: vec![0; capacity * FRAME_BYTES_MAX],
            names: vec![RawSockAddr::zeroed().storage; capacity],
            control: vec![[0; CONTROL_WORDS]; capacity],
            slots: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Datagrams one receive can fill.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Datagrams held from the last receive.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when the last receive brought nothing.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Datagram `i` of the last receive, `None` when `i >= len()`.
    pub fn try_get(&self, i: usize) -> Option<Received<'_>> {
        let slot = self.slots.get(i)?;
        let start = slot.index * FRAME_BYTES_MAX;
        Some(Received {
            bytes: &self.buffers[start..start + slot.len],
            from: slot.from,
            kernel_rx_realtime_ns: slot.kernel_rx_realtime_ns,
        })
    }

    /// Datagram `i` of the last receive.
    ///
    /// # Panics
    ///
    /// When `i >= len()` (the count the receive returned), like slice indexing; use
    /// [`RecvBatch::try_get`] or [`RecvBatch::iter`] to avoid it.
    pub fn get(&self, i: usize) -> Received<'_> {
        match self.try_get(i) {
            Some(received) => received,
            None => panic!(
                "RecvBatch::get({i}) but the batch holds {} datagrams",
                self.len()
            ),
        }
    }

    /// Every datagram of the last receive, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = Received<'_>> + '_ {
        (0..self.len()).filter_map(|i| self.try_get(i))
    }
}

/// What one `recvmmsg` brought.
pub(crate) struct RecvOutcome {
    pub(crate) accepted: usize,
    pub(crate) truncated: usize,
}

/// One non-blocking `recvmmsg` into `batch` (cleared first); `Err` carries the raw OS error
/// (`EAGAIN` when nothing was queued).
pub(crate) fn recvmmsg(
    fd: BorrowedFd<'_>,
    batch: &mut RecvBatch,
    want: usize,
    timestamps: bool,
) -> io::Result<RecvOutcome> {
    batch.slots.clear();
    let want = want.clamp(1, batch.capacity);
    // SAFETY: iovec and mmsghdr are plain C structs of integers and pointers; all-zero (null
    // pointers, zero lengths) is a valid value of each.
    let mut iov: [libc::iovec; BATCH_MAX] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; BATCH_MAX] = unsafe { std::mem::zeroed() };
    let buffers = batch.buffers.as_mut_ptr();
    for i in 0..want {
        // SAFETY: i < want ≤ capacity, and `buffers` holds capacity × FRAME_BYTES_MAX bytes, so
        // the slot's start is in bounds.
        iov[i].iov_base = unsafe { buffers.add(i * FRAME_BYTES_MAX) }.cast();
        iov[i].iov_len = FRAME_BYTES_MAX;
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&raw mut batch.names[i]).cast();
        h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = &raw mut iov[i];
        h.msg_iovlen = 1;
        if timestamps {
            h.msg_control = batch.control[i].as_mut_ptr().cast();
            h.msg_controllen = CONTROL_WORDS * 8;
        }
    }
    // SAFETY: `hdrs[..want]` describe buffers, addresses and control space owned by `batch`,
    // which is mutably borrowed (so neither moved nor aliased) for the whole call; each length
    // given is the exact size of its buffer. No timeout pointer.
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            want as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut outcome = RecvOutcome {
        accepted: 0,
        truncated: 0,
    };
    for (i, hdr) in hdrs.iter().enumerate().take(rc as usize) {
        let h = &hdr.msg_hdr;
        let from = addr::from_raw(&batch.names[i], h.msg_namelen);
        match from {
            Some(from) if h.msg_flags & libc::MSG_TRUNC == 0 => {
                let kernel_rx_realtime_ns = if timestamps {
                    kernel_timestamp(h)
                } else {
                    None
                };
                let len = (hdr.msg_len as usize).min(FRAME_BYTES_MAX);
                batch.slots.push(Slot {
                    index: i,
                    len,
                    from,
                    kernel_rx_realtime_ns,
                });
                outcome.accepted += 1;
            }
            // Longer than any NAAM frame (or, never for UDP/IP, no sender): dropped whole.
            _ => outcome.truncated += 1,
        }
    }
    Ok(outcome)
}

/// The `SCM_TIMESTAMPNS` control message of a received datagram, if any.
fn kernel_timestamp(h: &libc::msghdr) -> Option<u64> {
    if h.msg_flags & libc::MSG_CTRUNC != 0 {
        return None;
    }
    // SAFETY: `h` is the msghdr recvmmsg just filled: msg_control points at the batch's control
    // space and msg_controllen is the length the kernel wrote there. CMSG_FIRSTHDR/NXTHDR only
    // walk headers inside [msg_control, msg_control + msg_controllen) and return null at the end.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(h) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/NXTHDR returned a non-null header inside the control buffer.
        let c = unsafe { &*cmsg };
        let data_len = c.cmsg_len as usize;
        // SAFETY: CMSG_LEN is a pure size computation.
        let want_len = unsafe { libc::CMSG_LEN(size_of::<libc::timespec>() as u32) } as usize;
        if c.cmsg_level == libc::SOL_SOCKET
            && c.cmsg_type == libc::SCM_TIMESTAMPNS
            && data_len >= want_len
        {
            // SAFETY: the header says its data holds a timespec (length checked above); the
            // data may be unaligned for timespec, hence read_unaligned.
            let ts =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>()) };
            return Some(timespec_ns(&ts));
        }
        // SAFETY: as for CMSG_FIRSTHDR; `cmsg` is a header of this message.
        cmsg = unsafe { libc::CMSG_NXTHDR(h, cmsg) };
    }
    None
}

/// Why [`SendBatch::try_push`] refused a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The batch holds `capacity` datagrams already: send it first.
    #[error("send batch full ({capacity} datagrams)")]
    Full {
        /// The batch's capacity.
        capacity: usize,
    },
    /// Longer than the largest NAAM frame.
    #[error("datagram of {len} bytes is longer than FRAME_BYTES_MAX ({max})")]
    TooLong {
        /// Its length.
        len: usize,
        /// `FRAME_BYTES_MAX`.
        max: usize,
    },
}

#[derive(Clone, Copy, Debug)]
struct Outgoing {
    len: usize,
    to: SocketAddr,
    raw: RawSockAddr,
}

/// Datagrams queued for one `sendmmsg`: `capacity` slots of `FRAME_BYTES_MAX` bytes, copied in by
/// [`SendBatch::push`].
pub struct SendBatch {
    data: Vec<u8>,
    queued: Vec<Outgoing>,
    capacity: usize,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch")
            .field("capacity", &self.capacity)
            .field("len", &self.queued.len())
            .finish()
    }
}

impl SendBatch {
    /// Room for `capacity` datagrams, clamped to `1..=BATCH_MAX`.
    pub fn new(capacity: usize) -> SendBatch {
        let capacity = capacity.clamp(1, BATCH_MAX);
        SendBatch {
            data: vec![0; capacity * FRAME_BYTES_MAX],
            queued: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// Queues a copy of `bytes` for `to`; false when the batch is full or `bytes` is longer than
    /// `FRAME_BYTES_MAX` ([`SendBatch::try_push`] says which).
    pub fn push(&mut self, bytes: &[u8], to: SocketAddr) -> bool {
        self.try_push(bytes, to).is_ok()
    }

    /// Queues a copy of `bytes` for `to`.
    pub fn try_push(&mut self, bytes: &[u8], to: SocketAddr) -> Result<(), PushError> {
        if bytes.len() > FRAME_BYTES_MAX {
            return Err(PushError::TooLong {
                len: bytes.len(),
                max: FRAME_BYTES_MAX,
            });
        }
        let i = self.queued.len();
        if i >= self.capacity {
            return Err(PushError::Full {
                capacity: self.capacity,
            });
        }
        self.data[i * FRAME_BYTES_MAX..i * FRAME_BYTES_MAX + bytes.len()].copy_from_slice(bytes);
        self.queued.push(Outgoing {
            len: bytes.len(),
            to,
            raw: addr::to_raw(to),
        });
        Ok(())
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Datagrams the batch can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Drops everything queued.
    pub fn clear(&mut self) {
        self.queued.clear();
    }

    pub(crate) fn front_destination(&self) -> Option<SocketAddr> {
        self.queued.first().map(|o| o.to)
    }

    /// Removes the first `n` datagrams, moving the rest to the front.
    pub(crate) fn drain_front(&mut self, n: usize) {
        let n = n.min(self.queued.len());
        for (to, from) in (n..self.queued.len()).enumerate() {
            let len = self.queued[from].len;
            self.data.copy_within(
                from * FRAME_BYTES_MAX..from * FRAME_BYTES_MAX + len,
                to * FRAME_BYTES_MAX,
            );
        }
        self.queued.drain(..n);
    }
}

/// One `sendmmsg` of everything queued (the fd is non-blocking); returns how many the kernel
/// took (at least one), or the raw OS error.
pub(crate) fn sendmmsg(
    fd: BorrowedFd<'_>,
    batch: &mut SendBatch,
    ipv6_socket: bool,
) -> io::Result<usize> {
    let n = batch.queued.len().min(BATCH_MAX);
    let family = if ipv6_socket {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    for out in batch.queued.iter_mut().take(n) {
        if i32::from(out.raw.storage.ss_family) != family {
            out.raw = addr::to_raw(addr::for_socket_family(out.to, ipv6_socket));
        }
    }
    // SAFETY: plain C structs; all-zero is valid (see recvmmsg).
    let mut iov: [libc::iovec; BATCH_MAX] = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut hdrs: [libc::mmsghdr; BATCH_MAX] = unsafe { std::mem::zeroed() };
    let data = batch.data.as_mut_ptr();
    for (i, out) in batch.queued.iter_mut().enumerate().take(n) {
        // SAFETY: i < len ≤ capacity, so slot i lies inside `data` (capacity × FRAME_BYTES_MAX).
        iov[i].iov_base = unsafe { data.add(i * FRAME_BYTES_MAX) }.cast();
        iov[i].iov_len = out.len;
        let h = &mut hdrs[i].msg_hdr;
        h.msg_name = (&raw mut out.raw.storage).cast();
        h.msg_namelen = out.raw.len;
        h.msg_iov = &raw mut iov[i];
        h.msg_iovlen = 1;
    }
    // SAFETY: `hdrs[..n]` point at bytes and addresses owned by `batch`, mutably borrowed for the
    // call; every length is that of its buffer. The kernel only reads them (and writes msg_len).
    let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), n as libc::c_uint, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(rc as usize)
}
