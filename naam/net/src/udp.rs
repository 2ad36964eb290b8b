//! The UDP socket: configuration, socket options, and blocking or busy-poll waits.
//!
//! The file descriptor is always non-blocking. A receive first tries `recvmmsg(MSG_DONTWAIT)`;
//! only when nothing is queued does blocking mode wait in `ppoll` (at most the caller's timeout)
//! and try once more, so a loaded socket costs one system call per batch. Busy-poll mode never
//! waits: the caller spins.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use naam_engine::wire::FRAME_BYTES_MAX;

use crate::addr::{self, RawSockAddr};
use crate::batch::{self, RecvBatch, SendBatch};
use crate::error::NetError;

/// Datagrams one `recvmmsg`/`sendmmsg` call moves at most (and the largest batch capacity).
pub const BATCH_MAX: usize = 64;
/// [`UdpConfig::batch_max`] of [`UdpConfig::new`].
pub const BATCH_DEFAULT: usize = 32;
/// [`UdpConfig::recv_buffer_bytes`] of [`UdpConfig::new`]: 4 MiB, room for thousands of frames.
pub const RECV_BUFFER_BYTES_DEFAULT: usize = 4 << 20;
/// Largest receive buffer a configuration may ask for.
pub const RECV_BUFFER_BYTES_MAX: usize = 1 << 30;
/// Smallest receive buffer a configuration may ask for (one largest frame plus overhead).
pub const RECV_BUFFER_BYTES_MIN: usize = 2 * FRAME_BYTES_MAX;
/// `SO_BUSY_POLL` asked for in busy-poll mode (µs the kernel may spin on the device queue).
pub const KERNEL_BUSY_POLL_US: i32 = 50;
/// How long a send waits for room in a full send buffer before giving up.
pub const SEND_BLOCKED_WAIT_MS_MAX: u64 = 100;
/// Times a system call is restarted after `EINTR` before the error is returned.
const EINTR_RETRIES_MAX: usize = 16;
/// `sendmmsg` rounds of one [`UdpSocket::send_batch`]: one per datagram at worst, plus restarts.
const SEND_ROUNDS_MAX: usize = 2 * BATCH_MAX + EINTR_RETRIES_MAX;

const _: () = assert!(BATCH_DEFAULT <= BATCH_MAX);
const _: () = assert!(RECV_BUFFER_BYTES_MIN <= RECV_BUFFER_BYTES_DEFAULT);

/// How to open a [`UdpSocket`]. Build with [`UdpConfig::new`], which names every default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// Address to bind (port 0: the kernel picks one; see [`UdpSocket::local_addr`]).
    pub bind: SocketAddr,
    /// Join a `SO_REUSEPORT` group (the eSwitch steers inside it).
    pub reuse_port: bool,
    /// True: receives never wait (the caller spins), and `SO_BUSY_POLL` is asked for. False:
    /// receives wait up to their timeout.
    pub busy_poll: bool,
    /// `SO_RCVBUF` asked for (the kernel may grant less; see
    /// [`UdpSocket::recv_buffer_bytes_effective`]).
    pub recv_buffer_bytes: usize,
    /// Datagrams per `recvmmsg` call (1..=[`BATCH_MAX`]).
    pub batch_max: usize,
    /// `SO_TIMESTAMPNS`: report each datagram's kernel arrival time.
    pub kernel_timestamps: bool,
}

impl UdpConfig {
    /// Blocking, no reuseport group, [`RECV_BUFFER_BYTES_DEFAULT`], [`BATCH_DEFAULT`], no
    /// timestamps.
    pub fn new(bind: SocketAddr) -> UdpConfig {
        UdpConfig {
            bind,
            reuse_port: false,
            busy_poll: false,
            recv_buffer_bytes: RECV_BUFFER_BYTES_DEFAULT,
            batch_max: BATCH_DEFAULT,
            kernel_timestamps: false,
        }
    }

    fn validate(&self) -> Result<(), NetError> {
        if self.batch_max == 0 || self.batch_max > BATCH_MAX {
            return Err(NetError::Config {
                field: "UdpConfig.batch_max",
                value: self.batch_max as u64,
                reason: "must be 1..=BATCH_MAX (64)",
            });
        }
        if !(RECV_BUFFER_BYTES_MIN..=RECV_BUFFER_BYTES_MAX).contains(&self.recv_buffer_bytes) {
            return Err(NetError::Config {
                field: "UdpConfig.recv_buffer_bytes",
                value: self.recv_buffer_bytes as u64,
                reason: "must be RECV_BUFFER_BYTES_MIN..=RECV_BUFFER_BYTES_MAX (8232 B ..= 1 GiB)",
            });
        }
        Ok(())
    }
}

/// Counters of one socket since it was bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams handed to callers.
    pub datagrams_received: u64,
    /// Datagrams longer than `FRAME_BYTES_MAX`, dropped whole (never passed on truncated).
    pub truncated_dropped: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams a send failed on and dropped (see [`UdpSocket::send_batch`]).
    pub send_failed_dropped: u64,
    /// `recvmmsg` calls that returned datagrams (received / this = mean batch).
    pub recv_calls_nonempty: u64,
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    truncated: AtomicU64,
    sent: AtomicU64,
    send_failed: AtomicU64,
    recv_calls: AtomicU64,
}

/// A bound UDP socket carrying NAAM frames. Owns its file descriptor (closed on drop); `Send`
/// and `Sync` (a receiving thread and sending threads may share it).
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
    local: SocketAddr,
    config: UdpConfig,
    recv_buffer_bytes_effective: usize,
    kernel_busy_poll: bool,
    counters: Counters,
}

impl UdpSocket {
    /// Opens, configures and binds a socket.
    pub fn bind(config: &UdpConfig) -> Result<UdpSocket, NetError> {
        config.validate()?;
        let at = Some(config.bind);
        let domain = if config.bind.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        // SAFETY: socket() takes no pointers; it returns a new descriptor or -1.
        let raw = unsafe {
            libc::socket(
                domain,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if raw < 0 {
            return Err(NetError::last_os("socket", at));
        }
        // SAFETY: `raw` was just returned by socket(); nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if config.reuse_port {
            set_int(
                fd.as_fd(),
                libc::SOL_SOCKET,
                libc::SO_REUSEPORT,
                1,
                "setsockopt(SO_REUSEPORT)",
                at,
            )?;
        }
        let recv_buffer_bytes_effective =
            set_recv_buffer(fd.as_fd(), config.recv_buffer_bytes, at)?;
        if config.kernel_timestamps {
            set_int(
                fd.as_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                1,
                "setsockopt(SO_TIMESTAMPNS)",
                at,
            )?;
        }
        // SO_BUSY_POLL above the sysctl default needs CAP_NET_ADMIN; without it the socket still
        // busy-polls in user space, which is what busy-poll mode promises.
        let kernel_busy_poll = config.busy_poll
            && set_int(
                fd.as_fd(),
                libc::SOL_SOCKET,
                libc::SO_BUSY_POLL,
                KERNEL_BUSY_POLL_US,
                "setsockopt(SO_BUSY_POLL)",
                at,
            )
            .is_ok();
        let raw_addr = addr::to_raw(config.bind);
        // SAFETY: `raw_addr` holds a sockaddr of `raw_addr.len` valid bytes for the call's duration.
        if unsafe { libc::bind(fd.as_raw_fd(), raw_addr.as_ptr(), raw_addr.len) } != 0 {
            return Err(NetError::last_os("bind", at));
        }
        let local = local_addr_of(fd.as_fd(), config.bind)?;
        Ok(UdpSocket {
            fd,
            local,
            config: config.clone(),
            recv_buffer_bytes_effective,
            kernel_busy_poll,
            counters: Counters::default(),
        })
    }

    /// The bound address (with the port the kernel chose when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The configuration the socket was bound with.
    pub fn config(&self) -> &UdpConfig {
        &self.config
    }

    /// The receive buffer the kernel granted (bytes of payload, i.e. half of `SO_RCVBUF`'s
    /// doubled bookkeeping value).
    pub fn recv_buffer_bytes_effective(&self) -> usize {
        self.recv_buffer_bytes_effective
    }

    /// True when busy-poll mode also got the kernel's `SO_BUSY_POLL`.
    pub fn kernel_busy_poll(&self) -> bool {
        self.kernel_busy_poll
    }

    /// Counters since the socket was bound.
    pub fn stats(&self) -> UdpStats {
        let c = &self.counters;
        UdpStats {
            datagrams_received: c.received.load(Ordering::Relaxed),
            truncated_dropped: c.truncated.load(Ordering::Relaxed),
            datagrams_sent: c.sent.load(Ordering::Relaxed),
            send_failed_dropped: c.send_failed.load(Ordering::Relaxed),
            recv_calls_nonempty: c.recv_calls.load(Ordering::Relaxed),
        }
    }

    /// Receives up to `min(batch capacity, batch_max)` datagrams with one `recvmmsg`. Blocking
    /// mode waits at most `timeout` for the first one; busy-poll mode (or a zero timeout) returns
    /// 0 at once when nothing is there. Returns how many datagrams [`RecvBatch::get`] now holds:
    /// datagrams longer than `FRAME_BYTES_MAX` are counted ([`UdpStats::truncated_dropped`]) and
    /// dropped, so 0 may also mean that only such datagrams arrived.
    pub fn recv_batch(&self, batch: &mut RecvBatch, timeout: Duration) -> Result<usize, NetError> {
        let want = batch.capacity().min(self.config.batch_max);
        if let Some(n) = self.recv_now(batch, want)? {
            return Ok(n);
        }
        if self.config.busy_poll || timeout.is_zero() || !self.wait(libc::POLLIN, timeout)? {
            return Ok(0);
        }
        Ok(self.recv_now(batch, want)?.unwrap_or(0))
    }

    /// One `recvmmsg(MSG_DONTWAIT)`; `None` when nothing was queued.
    fn recv_now(&self, batch: &mut RecvBatch, want: usize) -> Result<Option<usize>, NetError> {
        for _ in 0..EINTR_RETRIES_MAX {
            match batch::recvmmsg(self.fd.as_fd(), batch, want, self.config.kernel_timestamps) {
                Ok(outcome) => {
                    let c = &self.counters;
                    c.received
                        .fetch_add(outcome.accepted as u64, Ordering::Relaxed);
                    c.truncated
                        .fetch_add(outcome.truncated as u64, Ordering::Relaxed);
                    c.recv_calls.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(outcome.accepted));
                }
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(None),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(source) => {
                    return Err(NetError::Syscall {
                        call: "recvmmsg",
                        addr: Some(self.local),
                        source,
                    });
                }
            }
        }
        Ok(None)
    }

    /// Sends one datagram (at most `FRAME_BYTES_MAX` bytes). A full send buffer is waited on for
    /// at most [`SEND_BLOCKED_WAIT_MS_MAX`].
    pub fn send_to(&self, bytes: &[u8], to: SocketAddr) -> Result<(), NetError> {
        if bytes.len() > FRAME_BYTES_MAX {
            return Err(NetError::DatagramTooLong {
                len: bytes.len(),
                max: FRAME_BYTES_MAX,
                to,
            });
        }
        let raw = addr::to_raw(addr::for_socket_family(to, self.local.is_ipv6()));
        for _ in 0..EINTR_RETRIES_MAX {
            // SAFETY: `bytes` and `raw` are valid for reads of their lengths during the call.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    0,
                    raw.as_ptr(),
                    raw.len,
                )
            };
            if rc >= 0 {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let error = std::io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => self.wait_writable("sendto")?,
                _ => {
                    return Err(NetError::Syscall {
                        call: "sendto",
                        addr: Some(to),
                        source: error,
                    });
                }
            }
        }
        Err(NetError::SendBlocked {
            call: "sendto",
            local: self.local,
            waited_ms: SEND_BLOCKED_WAIT_MS_MAX,
        })
    }

    /// Sends every datagram of `batch` with `sendmmsg` (as few calls as the kernel allows) and
    /// removes what was sent; returns how many were sent. When the kernel refuses a datagram
    /// (e.g. an unreachable destination) that datagram is dropped from the batch, counted
    /// ([`UdpStats::send_failed_dropped`]) and the error returned; the ones after it stay queued.
    pub fn send_batch(&self, batch: &mut SendBatch) -> Result<usize, NetError> {
        let mut sent_total = 0;
        // Each round sends at least one datagram, waits (bounded) for room, or is interrupted.
        for _ in 0..SEND_ROUNDS_MAX {
            if batch.is_empty() {
                return Ok(sent_total);
            }
            match batch::sendmmsg(self.fd.as_fd(), batch, self.local.is_ipv6()) {
                Ok(0) => self.wait_writable("sendmmsg")?,
                Ok(sent) => {
                    batch.drain_front(sent);
                    sent_total += sent;
                    self.counters.sent.fetch_add(sent as u64, Ordering::Relaxed);
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    self.wait_writable("sendmmsg")?
                }
                Err(source) => {
                    let addr = batch.front_destination();
                    batch.drain_front(1);
                    self.counters.send_failed.fetch_add(1, Ordering::Relaxed);
                    return Err(NetError::Syscall {
                        call: "sendmmsg",
                        addr,
                        source,
                    });
                }
            }
        }
        if batch.is_empty() {
            return Ok(sent_total);
        }
        Err(NetError::SendBlocked {
            call: "sendmmsg",
            local: self.local,
            waited_ms: SEND_BLOCKED_WAIT_MS_MAX,
        })
    }

    /// The file descriptor (still owned by this socket).
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn wait_writable(&self, call: &'static str) -> Result<(), NetError> {
        if self.wait(
            libc::POLLOUT,
            Duration::from_millis(SEND_BLOCKED_WAIT_MS_MAX),
        )? {
            return Ok(());
        }
        Err(NetError::SendBlocked {
            call,
            local: self.local,
            waited_ms: SEND_BLOCKED_WAIT_MS_MAX,
        })
    }

    /// Waits up to `timeout` for `events`; false on timeout or interruption.
    fn wait(&self, events: libc::c_short, timeout: Duration) -> Result<bool, NetError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: one valid pollfd and a valid timespec, both live for the call; no signal mask.
        let rc = unsafe { libc::ppoll(&raw mut pfd, 1, &raw const ts, std::ptr::null()) };
        if rc < 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINTR) {
                return Ok(false);
            }
            return Err(NetError::Syscall {
                call: "ppoll",
                addr: Some(self.local),
                source: error,
            });
        }
        Ok(rc > 0)
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `setsockopt` of an `int` option.
pub(crate) fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
    call: &'static str,
    addr: Option<SocketAddr>,
) -> Result<(), NetError> {
    // SAFETY: the option value is a live c_int and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(NetError::last_os(call, addr));
    }
    Ok(())
}

/// `getsockopt` of an `int` option.
pub(crate) fn get_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    call: &'static str,
) -> Result<libc::c_int, NetError> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and writable; `len` holds the buffer's exact size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(NetError::last_os(call, None));
    }
    Ok(value)
}

/// Asks for `bytes` of receive buffer (with `SO_RCVBUFFORCE` when the plain option is capped by
/// `net.core.rmem_max` and the process is privileged) and returns what was granted.
fn set_recv_buffer(
    fd: BorrowedFd<'_>,
    bytes: usize,
    at: Option<SocketAddr>,
) -> Result<usize, NetError> {
    let asked = bytes as libc::c_int; // ≤ RECV_BUFFER_BYTES_MAX < i32::MAX (validated)
    set_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        asked,
        "setsockopt(SO_RCVBUF)",
        at,
    )?;
    let mut granted = get_int(
        fd,
        libc::SOL_SOCKET,
        libc::SO_RCVBUF,
        "getsockopt(SO_RCVBUF)",
    )? / 2;
    if granted < asked {
        // Privileged processes may exceed rmem_max; unprivileged ones keep what they got.
        if set_int(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            asked,
            "setsockopt(SO_RCVBUFFORCE)",
            at,
        )
        .is_ok()
        {
            granted = get_int(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                "getsockopt(SO_RCVBUF)",
            )? / 2;
        }
    }
    Ok(usize::try_from(granted).unwrap_or(0))
}

fn local_addr_of(fd: BorrowedFd<'_>, bound: SocketAddr) -> Result<SocketAddr, NetError> {
    let mut raw = RawSockAddr::zeroed();
    raw.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `raw.storage` is writable for `raw.len` bytes; the kernel writes at most that.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&raw mut raw.storage).cast(),
            &raw mut raw.len,
        )
    };
    if rc != 0 {
        return Err(NetError::last_os("getsockname", Some(bound)));
    }
    Ok(addr::from_raw(&raw.storage, raw.len).unwrap_or(bound))
}
