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
//! The steering key is carried in the UDP source port ([`steer_port`]): a hardware eSwitch
//! matches headers, not our payload, so every backend decides on the port's key.
//!
//! On BlueField-2 the NIC's embedded switch steers each packet to the host's or the Arm cores'
//! queues. Our local testbed runs the server's host role and NIC role as two processes on one
//! machine (same effective user), both bound to the server's UDP address in one `SO_REUSEPORT`
//! group — host sockets first, then NIC sockets, so group index `i < H` is host socket `i` and
//! `H + j` is NIC socket `j` — and steers inside that group:
//!
//! - [`KernelEswitch`] (root or `CAP_BPF`): `bpf/eswitch.c`, a `BPF_PROG_TYPE_SOCKET_FILTER`
//!   program compiled by clang (`scripts/build-bpf.sh`, object committed) and attached with
//!   `setsockopt(SO_ATTACH_REUSEPORT_EBPF)` through aya 0.14. The kernel runs it for every
//!   datagram reaching the group, with the skb's data advanced past the UDP header (so offset 0
//!   is the NAAM frame: the tests confirm it, since the program parses the header at offset 0
//!   and steers exactly as expected), and takes its return value as the index of the receiving
//!   socket. It checks the Invoke header, looks up the most specific rule in a hash map (flow,
//!   function, tenant, default — as `RuleTable::lookup`), hashes the request id into one of 1000
//!   buckets (`steer::steer_bucket`) and returns a NIC socket for the NIC range and a host socket
//!   otherwise (the client range too: the host pushes it back), spreading by `request_id % count`;
//!   anything that is not a well-formed Invoke goes to host socket 0. A config array holds the
//!   socket counts and a per-CPU array counts every verdict. Without privileges, attaching fails
//!   with [`EswitchError::NotPermitted`], which says so and points at the user-space switch.
//! - [`UserEswitch`] (unprivileged): a dispatcher thread that receives on its own ingress socket
//!   and forwards each datagram to the host's or NIC's own socket by the same decision
//!   ([`eswitch::decide`], i.e. `RuleTable::route`). **It costs an extra loopback hop per message
//!   and a user-space thread's CPU on the server that a real eSwitch does not**; results record
//!   which switch ran ([`Steering::kind`]).
//!
//! - [`OvsEswitch`]: OpenFlow 1.3 flows on an Open vSwitch bridge (a BlueField-2's own control
//!   path), matching the UDP source port only, over one persistent connection
//!   ([`eswitch::ovs`]).
//!
//! All three implement [`Steering`]: `apply(&RuleTable)` mirrors the controller's table and returns
//! the `CLOCK_MONOTONIC` instant the last write completed ([`Applied::applied_at_ns`], same clock
//! as `std::time::Instant` and [`monotonic_now_ns`]), from which the roles measure shift times;
//! `counts()` reads the per-verdict counters. `tests/eswitch.rs` checks the kernel program
//! against `RuleTable::route` datagram by datagram over real sockets on 127.0.0.1 under several
//! rule tables, the user-space switch against the kernel, malformed datagrams, and that an apply
//! governs the very next datagram.
//!
//! ## 3. RDMA (cargo feature `rdma`, module `rdma`)
//!
//! An ibverbs backend for one-sided reads (client → server RNIC) and NIC → host access: open a
//! device, register memory, connect an RC queue pair given the peer's `QpInfo`, post RDMA READs
//! (`post_read(rkey, remote_addr, len) -> token`), poll completions. On machines without an RDMA
//! device (like the 2-core VM this was written on) opening one fails at once with
//! `RdmaError::NoDevice` ("no RDMA device found (ibv_get_device_list returned 0 devices); use the
//! emulated RNIC"). Only that path has run; nothing past device discovery has run on hardware.
//! Without the feature, one-sided reads are served by the host role's emulated RNIC over UDP
//! (`ReadRequest` frames), which costs host CPU that a real RNIC does not.
//!
//! ## What is emulation here
//!
//! - The eSwitch steers between two processes' sockets on one kernel, not between a host's and a
//!   SmartNIC's queues; its cost (an eBPF program per datagram, or a user-space hop) is not the
//!   hardware switch's (line rate, no CPU).
//! - Loopback UDP stands in for the 100 GbE link; its latency and ceiling
//!   ([`udp_echo_ceiling`]) are this machine's.
//! - The RDMA backend is built and fails cleanly without a device; see above for what ran.

pub mod addr;
mod batch;
mod ceiling;
mod clock;
mod error;
pub mod eswitch;
pub mod openflow;
#[cfg(feature = "rdma")]
pub mod rdma;
pub mod remote;
pub mod roce;
pub mod steer_port;
mod udp;

pub use addr::{reply_addr, socket_addr};
pub use batch::{PushError, Received, RecvBatch, SendBatch};
pub use ceiling::{
    ECHO_DATAGRAM_BYTES, ECHO_DURATION_MAX, ECHO_REPLY_TIMEOUT, ECHO_REQUESTS_MAX, EchoCeiling,
    udp_echo_ceiling,
};
pub use clock::{monotonic_now_ns, realtime_now_ns};
pub use error::NetError;
pub use eswitch::{
    Applied, EswitchError, KernelEswitch, OvsEswitch, OvsEswitchConfig, OvsPorts, OvsRdmaLink,
    OvsTarget, SteerCounts, Steering, UserEswitch, UserEswitchConfig,
};
pub use udp::{
    BATCH_DEFAULT, BATCH_MAX, KERNEL_BUSY_POLL_US, RECV_BUFFER_BYTES_DEFAULT,
    RECV_BUFFER_BYTES_MAX, RECV_BUFFER_BYTES_MIN, SEND_BLOCKED_WAIT_MS_MAX, UdpConfig, UdpSocket,
    UdpStats,
};

// The roles move sockets and batches between threads and share sockets between a receiving
// thread and sending threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<UdpSocket>();
    send_sync::<RecvBatch>();
    send_sync::<SendBatch>();
    send_sync::<KernelEswitch>();
    send_sync::<UserEswitch>();
    send_sync::<OvsEswitch>();
};
