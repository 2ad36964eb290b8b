//! The transport's error type.

use std::io;
use std::net::SocketAddr;

/// Why a transport operation failed. Every variant names the system call or the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A system call failed.
    #[error("{call} failed (address {}): {source}", addr_text(.addr))]
    Syscall {
        /// The call (`socket`, `bind`, `setsockopt(SO_RCVBUF)`, `recvmmsg`, ...).
        call: &'static str,
        /// The address involved: the bound address, or the destination of a send.
        addr: Option<SocketAddr>,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A configuration value outside its bounds.
    #[error("invalid {field} = {value}: {reason}")]
    Config {
        /// The field (`UdpConfig.batch_max`, ...).
        field: &'static str,
        /// The value given.
        value: u64,
        /// What it must be.
        reason: &'static str,
    },
    /// A datagram longer than the largest NAAM frame; receivers would drop it.
    #[error("datagram of {len} bytes to {to} is longer than FRAME_BYTES_MAX ({max})")]
    DatagramTooLong {
        /// Its length.
        len: usize,
        /// `naam_engine::wire::FRAME_BYTES_MAX`.
        max: usize,
        /// Its destination.
        to: SocketAddr,
    },
    /// The socket's send buffer stayed full for the whole bounded wait.
    #[error("{call} from {local}: send buffer still full after {waited_ms} ms")]
    SendBlocked {
        /// `sendto` or `sendmmsg`.
        call: &'static str,
        /// The sending socket's address.
        local: SocketAddr,
        /// How long it waited.
        waited_ms: u64,
    },
    /// A helper thread of this crate (echo server, user-space eSwitch) panicked.
    #[error("thread `{thread}` panicked")]
    ThreadPanicked {
        /// The thread's name.
        thread: &'static str,
    },
}

fn addr_text(addr: &Option<SocketAddr>) -> String {
    addr.map_or_else(|| "none".to_string(), |a| a.to_string())
}

impl NetError {
    /// A failed system call, with the current `errno`.
    pub(crate) fn last_os(call: &'static str, addr: Option<SocketAddr>) -> NetError {
        NetError::Syscall {
            call,
            addr,
            source: io::Error::last_os_error(),
        }
    }
}
