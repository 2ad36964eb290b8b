//! The eSwitch: the ingress stage that sends each NAAM message to the host or the NIC by the
//! controller's rule table.
//!
//! On BlueField-2 this is the NIC-embedded switch's flow steering. Here the server's host role and
//! NIC role bind one UDP address in one `SO_REUSEPORT` group — host sockets first, then NIC
//! sockets, so group index `i < H` is host socket `i` and `H + j` is NIC socket `j` — and one of
//! two implementations of [`Steering`] picks the socket per datagram:
//!
//! - [`KernelEswitch`] (root / `CAP_BPF`): the C program `bpf/eswitch.c`, compiled by clang and
//!   attached to the group with `SO_ATTACH_REUSEPORT_EBPF` through aya. Datagrams never leave
//!   the kernel's receive path: no hop, no extra CPU in user space.
//! - [`UserEswitch`] (unprivileged): a dispatcher thread that receives on its own ingress socket
//!   and forwards each datagram to the host's or NIC's socket. It makes the same decision
//!   ([`decide`], i.e. [`RuleTable::route`]) but costs an extra loopback hop and a user-space
//!   core's worth of CPU that a real eSwitch does not.
//!
//! [`decide`] is the decision both make; the kernel program is checked against
//! [`RuleTable::route`] datagram by datagram in `tests/eswitch.rs`.

mod kernel;
pub mod ovs;
mod user;

use std::fmt;
use std::io;

use naam_engine::abi::{ACCESSES_PER_STEP_MAX, ARGS_BYTES_MAX, STATE_BYTES_MAX, STEPS_MAX};
use naam_engine::steer::steer_bucket;
use naam_engine::wire::{
    DESCRIPTOR_BYTES, HEADER_BYTES, InvokeFlags, MAGIC, REPLY_ADDR_BYTES, WIRE_VERSION,
};
use naam_engine::{FunctionId, Location, RequestId, RuleTable, SteerKey, TenantId};

use crate::error::NetError;

pub use kernel::KernelEswitch;
pub use ovs::{OvsEswitch, OvsEswitchConfig, OvsPorts, OvsRdmaLink, OvsTarget};
pub use user::{DISPATCH_POLL_INTERVAL, UserEswitch, UserEswitchConfig};

/// Sockets one reuseport group may hold (host + NIC).
pub const GROUP_SOCKETS_MAX: u32 = 256;
/// Entries of the kernel rule map: every rule a [`RuleTable`] may hold, plus its default.
pub const ESWITCH_RULES_MAX: usize = naam_engine::steer::RULES_MAX + 1;

/// Byte offsets of the fixed part of an Invoke (naam-engine `wire.rs`, version 1); the C
/// program's `struct invoke_wire` has the same layout (a test encodes Invokes with the engine and
/// reads them back through these offsets).
pub mod invoke_layout {
    /// `u16` magic.
    pub const MAGIC: usize = 0;
    /// `u8` wire version.
    pub const VERSION: usize = 2;
    /// `u8` frame kind.
    pub const KIND: usize = 3;
    /// `u32` tenant.
    pub const TENANT: usize = 4;
    /// `u32` function.
    pub const FUNCTION: usize = 8;
    /// `u64` request id.
    pub const REQUEST_ID: usize = 12;
    /// `u32` flow.
    pub const FLOW: usize = 20;
    /// `u16` flags.
    pub const FLAGS: usize = 24;
    /// `u8` step.
    pub const STEP: usize = 26;
    /// `u8` descriptor count.
    pub const DESCRIPTORS: usize = 28;
    /// `u8` origin-descriptor count.
    pub const ORIGIN: usize = 29;
    /// `u16` argument bytes.
    pub const ARGS_LEN: usize = 30;
    /// `u16` state bytes.
    pub const STATE_LEN: usize = 32;
    /// The reply address: `u8` present, `u8` pad, `u16` port, 16 bytes of IPv6 address.
    pub const REPLY_TO: usize = 34;
    /// Bytes of the fixed part, header included.
    pub const FIXED_BYTES: usize = 54;
}

const _: () = assert!(invoke_layout::REPLY_TO + REPLY_ADDR_BYTES == invoke_layout::FIXED_BYTES);
const _: () = assert!(invoke_layout::TENANT == HEADER_BYTES);
const KIND_INVOKE: u8 = 1;

/// The fields the eSwitch steers on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SteerHeader {
    /// Tenant.
    pub tenant: TenantId,
    /// Function.
    pub function: FunctionId,
    /// Request id (hashed into the bucket).
    pub request_id: RequestId,
    /// Flow.
    pub flow: u32,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The steering fields of a well-formed Invoke, `None` for anything else. "Well-formed" means
/// exactly the header checks the kernel program makes: magic, version, kind, known flags,
/// descriptor counts, argument and state lengths within their maxima, `step ≤ STEPS_MAX` with
/// origin descriptors exactly when `step > 0`, and a total length that matches. The engine
/// decodes (and may still reject) the rest at the location.
pub fn parse_invoke_header(datagram: &[u8]) -> Option<SteerHeader> {
    use invoke_layout as at;
    let b = datagram;
    if b.len() < at::FIXED_BYTES || u16_at(b, at::MAGIC) != MAGIC || b[at::VERSION] != WIRE_VERSION
    {
        return None;
    }
    let (descriptors, origin, step) = (
        usize::from(b[at::DESCRIPTORS]),
        usize::from(b[at::ORIGIN]),
        b[at::STEP],
    );
    let (args, state) = (
        usize::from(u16_at(b, at::ARGS_LEN)),
        usize::from(u16_at(b, at::STATE_LEN)),
    );
    let well_formed = b[at::KIND] == KIND_INVOKE
        && u16_at(b, at::FLAGS) & !InvokeFlags::KNOWN == 0
        && descriptors <= ACCESSES_PER_STEP_MAX
        && origin <= ACCESSES_PER_STEP_MAX
        && args <= ARGS_BYTES_MAX
        && state <= STATE_BYTES_MAX
        && usize::from(step) <= STEPS_MAX
        && (step == 0) == (origin == 0)
        && b.len() == at::FIXED_BYTES + args + state + DESCRIPTOR_BYTES * (descriptors + origin);
    well_formed.then(|| SteerHeader {
        tenant: TenantId(u32_at(b, at::TENANT)),
        function: FunctionId(u32_at(b, at::FUNCTION)),
        request_id: RequestId(u64::from_le_bytes(
            b[at::REQUEST_ID..at::REQUEST_ID + 8]
                .try_into()
                .unwrap_or([0; 8]),
        )),
        flow: u32_at(b, at::FLOW),
    })
}

/// What the eSwitch decided for one datagram; also the index of its counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Host range: a host socket.
    Host,
    /// NIC range: a NIC socket.
    Nic,
    /// Client range: a host socket (the server pushes these back to the client).
    Client,
    /// Not a well-formed Invoke: host socket 0.
    Malformed,
}

impl Verdict {
    /// Every verdict, in counter order.
    pub const ALL: [Verdict; 4] = [
        Verdict::Host,
        Verdict::Nic,
        Verdict::Client,
        Verdict::Malformed,
    ];

    /// Index of its counter (the kernel program's `COUNTER_*`).
    pub fn index(self) -> usize {
        match self {
            Verdict::Host => 0,
            Verdict::Nic => 1,
            Verdict::Client => 2,
            Verdict::Malformed => 3,
        }
    }

    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Host => "host",
            Verdict::Nic => "nic",
            Verdict::Client => "client",
            Verdict::Malformed => "malformed",
        }
    }
}

/// How many host and NIC sockets a reuseport group holds (host sockets first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupShape {
    /// Host sockets (group indices `0..host_sockets`); at least 1.
    pub host_sockets: u32,
    /// NIC sockets (group indices `host_sockets..host_sockets + nic_sockets`); 0 sends the NIC
    /// range to the host.
    pub nic_sockets: u32,
}

impl GroupShape {
    /// Validates the counts: at least one host socket, at most [`GROUP_SOCKETS_MAX`] in all.
    pub fn new(host_sockets: u32, nic_sockets: u32) -> Result<GroupShape, EswitchError> {
        let reason = if host_sockets == 0 {
            "needs at least one host socket (malformed datagrams go to host socket 0)"
        } else if host_sockets.saturating_add(nic_sockets) > GROUP_SOCKETS_MAX {
            "more than GROUP_SOCKETS_MAX (256) sockets"
        } else {
            return Ok(GroupShape {
                host_sockets,
                nic_sockets,
            });
        };
        Err(EswitchError::GroupShape {
            host_sockets,
            nic_sockets,
            reason,
        })
    }

    /// Sockets in the group.
    pub fn total(self) -> u32 {
        self.host_sockets + self.nic_sockets
    }
}

/// The eSwitch's decision for one datagram: its verdict and the group index of its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SteerDecision {
    /// Which counter it counts under.
    pub verdict: Verdict,
    /// Index into the reuseport group (host sockets first, then NIC sockets).
    pub socket_index: u32,
}

/// The decision both eSwitches make, from the datagram's steering key (`key`: carried in its
/// UDP source port, [`crate::steer_port::key_of_port`]) and the most specific rule for its
/// header ([`RuleTable::lookup`]): a pinned key goes to the host, a bucket where the rule's
/// shares put it ([`SteerKey::location`]); a datagram without a key (sent from a port outside
/// the steering range) uses its request id's bucket, which is what a client would have put in
/// the port ([`RuleTable::route`]). The chosen location's sockets are picked by
/// `request_id % count`; anything that is not a well-formed Invoke goes to host socket 0.
pub fn decide(
    rules: &RuleTable,
    key: Option<SteerKey>,
    datagram: &[u8],
    group: GroupShape,
) -> SteerDecision {
    let Some(h) = parse_invoke_header(datagram) else {
        return SteerDecision {
            verdict: Verdict::Malformed,
            socket_index: 0,
        };
    };
    let id = h.request_id.0;
    let host_index = (id % u64::from(group.host_sockets.max(1))) as u32;
    let key = key.unwrap_or(SteerKey::Bucket(steer_bucket(h.request_id)));
    match key.location(rules.lookup(h.tenant, h.function, h.flow)) {
        Location::Nic if group.nic_sockets > 0 => SteerDecision {
            verdict: Verdict::Nic,
            socket_index: group.host_sockets + (id % u64::from(group.nic_sockets)) as u32,
        },
        Location::Client => SteerDecision {
            verdict: Verdict::Client,
            socket_index: host_index,
        },
        _ => SteerDecision {
            verdict: Verdict::Host,
            socket_index: host_index,
        },
    }
}

/// Datagrams per verdict since the eSwitch started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerCounts {
    /// Host range, delivered to a host socket.
    pub host: u64,
    /// NIC range, delivered to a NIC socket.
    pub nic: u64,
    /// Client range, delivered to a host socket for pushback.
    pub client: u64,
    /// Not well-formed Invokes, delivered to host socket 0.
    pub malformed: u64,
}

impl SteerCounts {
    /// Well-formed Invokes per location decided, indexed by `Location::index()` (host, NIC,
    /// client).
    pub fn by_location(&self) -> [u64; 3] {
        [self.host, self.nic, self.client]
    }

    /// The count of one verdict.
    pub fn of(&self, verdict: Verdict) -> u64 {
        match verdict {
            Verdict::Host => self.host,
            Verdict::Nic => self.nic,
            Verdict::Client => self.client,
            Verdict::Malformed => self.malformed,
        }
    }

    /// Every datagram counted.
    pub fn total(&self) -> u64 {
        self.host + self.nic + self.client + self.malformed
    }

    /// Counts since `earlier` (saturating).
    pub fn since(&self, earlier: &SteerCounts) -> SteerCounts {
        SteerCounts {
            host: self.host.saturating_sub(earlier.host),
            nic: self.nic.saturating_sub(earlier.nic),
            client: self.client.saturating_sub(earlier.client),
            malformed: self.malformed.saturating_sub(earlier.malformed),
        }
    }

    pub(crate) fn from_array(counts: [u64; 4]) -> SteerCounts {
        SteerCounts {
            host: counts[0],
            nic: counts[1],
            client: counts[2],
            malformed: counts[3],
        }
    }
}

/// What one [`Steering::apply`] did, and when it took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// [`RuleTable::version`] of the table applied.
    pub version: u64,
    /// `CLOCK_MONOTONIC` (ns, [`crate::monotonic_now_ns`]) when the last write completed:
    /// every datagram the eSwitch steers after this instant uses the new rules.
    pub applied_at_ns: u64,
    /// Rules written (new or changed, the default included).
    pub entries_written: usize,
    /// Rules removed.
    pub entries_removed: usize,
}

/// An eSwitch: the ingress steering stage, kernel or user space.
pub trait Steering: Send + fmt::Debug {
    /// Mirrors `rules` into the switch; datagrams steered after the returned
    /// [`Applied::applied_at_ns`] follow them. Rules are written one by one: a datagram that
    /// races an apply may see a mix of old and new rules, never anything else.
    fn apply(&mut self, rules: &RuleTable) -> Result<Applied, EswitchError>;
    /// Datagrams per verdict since the switch started.
    fn counts(&self) -> Result<SteerCounts, EswitchError>;
    /// `kernel-ebpf` or `user-space`, recorded in results.
    fn kind(&self) -> &'static str;
}

/// Why an eSwitch could not be set up or updated.
#[derive(Debug, thiserror::Error)]
pub enum EswitchError {
    /// The kernel refused for lack of privilege: loading BPF programs and maps needs root or
    /// `CAP_BPF` (+ `CAP_NET_ADMIN`); unprivileged runs use [`UserEswitch`].
    #[error(
        "{operation}: not permitted (euid {euid}, CAP_BPF {cap_bpf}, CAP_SYS_ADMIN {cap_sys_admin}); \
         the kernel eSwitch needs root or CAP_BPF, use the user-space eSwitch otherwise: {source}"
    )]
    NotPermitted {
        /// What was refused (`create map eswitch_rules`, `load program`, ...).
        operation: String,
        /// The effective user id.
        euid: u32,
        /// Whether the process holds `CAP_BPF`.
        cap_bpf: bool,
        /// Whether the process holds `CAP_SYS_ADMIN`.
        cap_sys_admin: bool,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The kernel lacks something the program needs (BPF syscall, map or program type,
    /// `SO_ATTACH_REUSEPORT_EBPF`: Linux ≥ 4.5).
    #[error("{operation}: kernel {kernel_release} does not support it: {source}")]
    KernelUnsupported {
        /// What failed.
        operation: String,
        /// `uname -r`.
        kernel_release: String,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The verifier rejected the program.
    #[error(
        "the kernel verifier rejected the eSwitch program ({source}); log excerpt:\n{log_excerpt}"
    )]
    VerifierRejected {
        /// The last lines of the verifier log.
        log_excerpt: String,
        /// The `BPF_PROG_LOAD` error.
        #[source]
        source: io::Error,
    },
    /// The embedded object or one of its maps is not what this code expects.
    #[error("eSwitch object: {detail}")]
    Object {
        /// What was wrong (from aya).
        detail: String,
    },
    /// A map read or write failed.
    #[error("eSwitch map `{map}`: {detail}")]
    Map {
        /// The map.
        map: &'static str,
        /// What failed (from aya).
        detail: String,
    },
    /// The socket given to attach to cannot carry a reuseport selector.
    #[error("socket fd {fd} cannot carry the eSwitch: {reason}")]
    NotReusePortSocket {
        /// The descriptor.
        fd: i32,
        /// Why (not UDP, no `SO_REUSEPORT`, not bound).
        reason: &'static str,
    },
    /// Bad socket counts.
    #[error("reuseport group of {host_sockets} host + {nic_sockets} NIC sockets: {reason}")]
    GroupShape {
        /// Host sockets given.
        host_sockets: u32,
        /// NIC sockets given.
        nic_sockets: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// `setsockopt(SO_ATTACH_REUSEPORT_EBPF)` failed for another reason.
    #[error("attaching the eSwitch to socket fd {fd}: {source}")]
    Attach {
        /// The descriptor.
        fd: i32,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A socket operation of the user-space eSwitch failed.
    #[error("user-space eSwitch: {0}")]
    Net(#[from] NetError),
    /// The Open vSwitch eSwitch could not reach the switch's OpenFlow endpoint.
    #[error(
        "connecting to Open vSwitch at {target}: {source} (is ovs-vswitchd running, and the \
         bridge's .mgmt socket or a ptcp: listener there? `naam doctor` checks it)"
    )]
    OvsConnect {
        /// The endpoint.
        target: String,
        /// The connect error.
        #[source]
        source: io::Error,
    },
    /// The OpenFlow conversation went wrong (I/O, a malformed or unexpected message).
    #[error("OpenFlow with {target}: {detail}")]
    OpenFlow {
        /// The endpoint.
        target: String,
        /// What went wrong.
        detail: String,
    },
    /// The switch answered a request with an OpenFlow ERROR.
    #[error(
        "the switch refused OpenFlow request xid {xid}: error type {error_type}, code \
         {error_code} (OpenFlow 1.3 spec, section 7.4.4)"
    )]
    OpenFlowRefused {
        /// The refused request's transaction id.
        xid: u32,
        /// `ofp_error_type`.
        error_type: u16,
        /// Its code.
        error_code: u16,
    },
    /// A rule a header-matching switch cannot express (it would need the payload's tenant,
    /// function or flow).
    #[error(
        "rule {key} = {shares} needs the NAAM header, which a header-matching eSwitch cannot \
         read; only the default rule and all-host rules (pinned by clients) can be applied"
    )]
    Unmatchable {
        /// The rule's key.
        key: String,
        /// Its shares.
        shares: String,
    },
}

/// The process's effective capabilities relevant to BPF (`/proc/self/status`, `CapEff`).
pub(crate) fn bpf_capabilities() -> (bool, bool) {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    let eff = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string()))
        })
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .unwrap_or(0);
    (eff & (1 << CAP_BPF) != 0, eff & (1 << CAP_SYS_ADMIN) != 0)
}

/// The effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// `uname -r`.
pub(crate) fn kernel_release() -> String {
    // SAFETY: utsname is plain C arrays; all-zero is a valid value.
    let mut uts = unsafe { std::mem::zeroed::<libc::utsname>() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&raw mut uts) } != 0 {
        return "unknown".into();
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Sorts a failed kernel operation into the typed errors above.
pub(crate) fn classify(operation: String, source: io::Error) -> EswitchError {
    match source.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            let (cap_bpf, cap_sys_admin) = bpf_capabilities();
            EswitchError::NotPermitted {
                operation,
                euid: euid(),
                cap_bpf,
                cap_sys_admin,
                source,
            }
        }
        Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) | Some(libc::ENOPROTOOPT) => {
            EswitchError::KernelUnsupported {
                operation,
                kernel_release: kernel_release(),
                source,
            }
        }
        Some(libc::EINVAL) => EswitchError::KernelUnsupported {
            operation,
            kernel_release: kernel_release(),
            source,
        },
        _ => EswitchError::Object {
            detail: format!("{operation}: {source}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_shapes_are_bounded() {
        assert!(GroupShape::new(1, 0).is_ok());
        assert!(matches!(
            GroupShape::new(0, 4),
            Err(EswitchError::GroupShape {
                host_sockets: 0,
                ..
            })
        ));
        assert!(matches!(
            GroupShape::new(200, 57),
            Err(EswitchError::GroupShape {
                nic_sockets: 57,
                ..
            })
        ));
        assert_eq!(
            GroupShape::new(200, 56).map(GroupShape::total).ok(),
            Some(256)
        );
    }

    #[test]
    fn short_and_foreign_datagrams_are_malformed() {
        let table = RuleTable::new(naam_engine::Shares::NIC);
        let group = GroupShape {
            host_sockets: 2,
            nic_sockets: 2,
        };
        for bytes in [
            &[][..],
            &[0x41, 0x4e, 1, 1],
            &[0u8; 54][..],
            &[0xffu8; 200][..],
        ] {
            assert_eq!(
                decide(&table, None, bytes, group),
                SteerDecision {
                    verdict: Verdict::Malformed,
                    socket_index: 0
                }
            );
        }
    }
}
