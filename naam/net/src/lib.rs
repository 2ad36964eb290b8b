//! # naam-net — UDP transport, eSwitch and RDMA backend for NAAM
//!
//! The engine (`naam-engine`) is sans-IO: it turns frames into frames. This crate moves those
//! frames between processes, and steers them at the server's ingress. It owns file descriptors
//! and system calls; it knows nothing of executors, policies or workloads. Three parts:
//!
//! ## 1. UDP transport ([`UdpSocket`])
//!
//! One NAAM frame per datagram, in the engine's wire format (`naam_engine::wire`). Receives use
//! `recvmmsg` into a preallocated [`RecvBatch`] (capacity × `FRAME_BYTES_MAX` bytes), sends use
//! `sendmmsg` from a [`SendBatch`]; both move up to [`BATCH_MAX`] datagrams per system call.
//! Datagrams longer than `FRAME_BYTES_MAX` are counted and dropped whole (`MSG_TRUNC`), never
//! passed on truncated. The descriptor is always non-blocking: blocking mode waits in `ppoll` only
//! when nothing is queued (one system call per batch under load); busy-poll mode never waits
//! (and asks for `SO_BUSY_POLL`, which needs `CAP_NET_ADMIN` above the sysctl default). With
//! `kernel_timestamps`, each datagram carries its kernel arrival time (`SO_TIMESTAMPNS`,
//! `CLOCK_REALTIME`). [`udp_echo_ceiling`] measures this machine's raw request/response ceiling
//! through the same sockets, the denominator of the testbed's efficiency figure.
//!
//! ## 2. The eSwitch ([`eswitch`])
//!
//! On BlueField-2 the NIC's embedded switch steers each packet to the host's or the Arm cores'
//! queues. Our local testbed runs the server's host role and NIC role as two processes on one
//! machine, both bound to the server's UDP address in one `SO_REUSEPORT` group — host sockets
//! first, then NIC sockets — and steers inside that group:
//!
//! - [`KernelEswitch`] (root): `bpf/eswitch.c`, a `BPF_PROG_TYPE_SOCKET_FILTER` program compiled
//!   by clang and attached with `setsockopt(SO_ATTACH_REUSEPORT_EBPF)` through aya 0.14. For UDP
//!   the kernel runs it with the skb's data at the UDP payload and uses its return value as the
//!   index of the receiving socket. It parses the NAAM Invoke header, looks up the most specific
//!   rule in a hash map (flow, function, tenant, default — as `RuleTable::lookup`), hashes the
//!   request id into one of 1000 buckets (`steer::steer_bucket`) and returns a NIC socket for the
//!   NIC range, a host socket otherwise (the client range too: the host pushes it back);
//!   anything else goes to host socket 0. Per-CPU counters record every verdict.
//! - [`UserEswitch`] (unprivileged): a dispatcher thread that receives on an ingress socket and
//!   forwards each datagram by the same decision ([`eswitch::decide`]). It costs an extra hop and
//!   user-space CPU that a real eSwitch does not.
//!
//! Both implement [`Steering`]: `apply(&RuleTable)` mirrors the controller's table and returns
//! the `CLOCK_MONOTONIC` instant it took effect ([`Applied::applied_at_ns`]), from which the roles
//! measure shift times. The tests check the kernel program against `RuleTable::route` datagram by
//! datagram over real sockets, and the user-space switch against the kernel.
//!
//! ## 3. RDMA (`rdma` feature, [`rdma`] module)
//!
//! An ibverbs backend for one-sided reads (client → server RNIC) and NIC → host access: open a
//! device, register memory, connect an RC queue pair with the peer's [`rdma::QpInfo`], post RDMA
//! READs, poll completions. Without the feature (and on machines without an RDMA device) one-sided
//! reads are served by the host role's emulated RNIC over UDP (`ReadRequest` frames), which costs
//! host CPU that a real RNIC does not.
//!
//! ## What is emulation here
//!
//! - The eSwitch steers between two processes' sockets on one kernel, not between a host and a
//!   SmartNIC's queues; its cost (an eBPF program per datagram, or a user-space hop) is not the
//!   eSwitch's (line-rate hardware).
//! - Loopback UDP stands in for the 100 GbE link; its latency and ceiling are this machine's.
//! - The RDMA backend builds and fails cleanly without a device; it has not run on hardware (see
//!   the [`rdma`] module).

pub mod addr;
mod batch;
mod ceiling;
mod clock;
mod error;
pub mod eswitch;
#[cfg(feature = "rdma")]
pub mod rdma;
mod udp;

pub use addr::{reply_addr, socket_addr};
pub use batch::{PushError, Received, RecvBatch, SendBatch};
pub use ceiling::{
    ECHO_DATAGRAM_BYTES, ECHO_DURATION_MAX, ECHO_REPLY_TIMEOUT, ECHO_REQUESTS_MAX, EchoCeiling, udp_echo_ceiling,
};
pub use clock::{monotonic_now_ns, realtime_now_ns};
pub use error::NetError;
pub use eswitch::{Applied, EswitchError, KernelEswitch, SteerCounts, Steering, UserEswitch, UserEswitchConfig};
pub use udp::{
    BATCH_DEFAULT, BATCH_MAX, KERNEL_BUSY_POLL_US, RECV_BUFFER_BYTES_DEFAULT, RECV_BUFFER_BYTES_MAX,
    RECV_BUFFER_BYTES_MIN, SEND_BLOCKED_WAIT_MS_MAX, UdpConfig, UdpSocket, UdpStats,
};
