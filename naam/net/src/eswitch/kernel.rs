//! The kernel eSwitch: `bpf/eswitch.c` attached to a reuseport group with aya 0.14.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use aya::maps::{Array, HashMap as BpfHashMap, MapData, MapError, PerCpuArray};
use aya::programs::{ProgramError, ReusePortSocketFilter, SocketFilterError};
use aya::{Ebpf, EbpfError, EbpfLoader, Pod};
use naam_engine::{Location, RuleKey, RuleTable, Shares};

use super::{Applied, EswitchError, GroupShape, SteerCounts, Steering, Verdict, classify};
use crate::clock::monotonic_now_ns;
use crate::steer_port::{STEER_PORT_BASE_DEFAULT, STEER_PORTS};
use crate::udp::get_int;

/// The compiled program, committed beside its source (`scripts/build-bpf.sh` rebuilds it and the
/// tests check that it matches).
static ESWITCH_OBJECT: &[u8] = aya::include_bytes_aligned!("../../bpf/eswitch.o");
const PROGRAM: &str = "naam_eswitch";
const MAP_RULES: &str = "eswitch_rules";
const MAP_CONFIG: &str = "eswitch_config";
const MAP_COUNTERS: &str = "eswitch_counters";
/// Lines of the verifier log kept in [`EswitchError::VerifierRejected`].
const VERIFIER_LOG_LINES_MAX: usize = 20;

const RULE_KIND_DEFAULT: u32 = 0;
const RULE_KIND_FLOW: u32 = 1;
const RULE_KIND_FUNCTION: u32 = 2;
const RULE_KIND_TENANT: u32 = 3;

/// `struct rule_key` of eswitch.c.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct RuleKeyC {
    tenant: u32,
    function: u32,
    flow: u32,
    kind: u32,
}

/// `struct shares` of eswitch.c.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SharesC {
    host: u16,
    nic: u16,
    client: u16,
    pad: u16,
}

/// `struct config` of eswitch.c.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ConfigC {
    host_sockets: u32,
    nic_sockets: u32,
    steer_port_base: u32,
    steer_ports: u32,
}

// SAFETY: repr(C) structs of u32/u16 fields without padding (sizes 16, 8, 16 = sum of fields):
// every bit pattern is a valid value and there are no uninitialised bytes to leak to the kernel.
unsafe impl Pod for RuleKeyC {}
// SAFETY: as above.
unsafe impl Pod for SharesC {}
// SAFETY: as above.
unsafe impl Pod for ConfigC {}
const _: () =
    assert!(size_of::<RuleKeyC>() == 16 && size_of::<SharesC>() == 8 && size_of::<ConfigC>() == 16);

fn key_c(key: &RuleKey) -> RuleKeyC {
    let kind = match (key.tenant, key.function, key.flow) {
        (None, _, _) => RULE_KIND_DEFAULT,
        (Some(_), Some(_), Some(_)) => RULE_KIND_FLOW,
        (Some(_), Some(_), None) => RULE_KIND_FUNCTION,
        (Some(_), None, _) => RULE_KIND_TENANT,
    };
    RuleKeyC {
        tenant: key.tenant.map_or(0, |t| t.0),
        function: if kind == RULE_KIND_FLOW || kind == RULE_KIND_FUNCTION {
            key.function.map_or(0, |f| f.0)
        } else {
            0
        },
        flow: if kind == RULE_KIND_FLOW {
            key.flow.unwrap_or(0)
        } else {
            0
        },
        kind,
    }
}

fn shares_c(shares: Shares) -> SharesC {
    SharesC {
        host: shares.of(Location::Host),
        nic: shares.of(Location::Nic),
        client: shares.of(Location::Client),
        pad: 0,
    }
}

/// The kernel eSwitch, attached to one reuseport group. Holds the loaded program and its maps;
/// the program stays attached to the group until [`KernelEswitch::detach`] or until every socket
/// of the group is closed (dropping this handle does not detach it, but rule updates and counter
/// reads then stop being possible).
pub struct KernelEswitch {
    _ebpf: Ebpf,
    rules: BpfHashMap<MapData, RuleKeyC, SharesC>,
    counters: PerCpuArray<MapData, u64>,
    /// What the kernel map holds now, so an apply writes only the differences.
    mirror: HashMap<RuleKeyC, SharesC>,
    group: GroupShape,
}

impl fmt::Debug for KernelEswitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelEswitch")
            .field("group", &self.group)
            .field("rules", &self.mirror.len())
            .finish()
    }
}

impl KernelEswitch {
    /// Loads `bpf/eswitch.o`, writes the group shape and an all-host default rule, and attaches
    /// the program to the reuseport group of `first_socket` (a bound UDP socket with
    /// `SO_REUSEPORT`; any socket of the group will do, the program applies to the whole
    /// group). The group must hold the `host_sockets` host sockets first (in bind order), then
    /// the `nic_sockets` NIC sockets; until all are bound, datagrams the program sends to a
    /// missing index fall back to the kernel's hash selection. Closing a socket of the group
    /// moves the last socket into its index, so the group must stay whole while steering.
    ///
    /// Needs root or `CAP_BPF`; fails with [`EswitchError::NotPermitted`] otherwise.
    pub fn attach(
        first_socket: impl AsFd,
        host_sockets: u32,
        nic_sockets: u32,
    ) -> Result<KernelEswitch, EswitchError> {
        let group = GroupShape::new(host_sockets, nic_sockets)?;
        let socket = first_socket.as_fd();
        check_reuseport_socket(socket)?;
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .load(ESWITCH_OBJECT)
            .map_err(load_error)?;
        let mut config: Array<MapData, ConfigC> = take_map(&mut ebpf, MAP_CONFIG)?;
        let config_value = ConfigC {
            host_sockets: group.host_sockets,
            nic_sockets: group.nic_sockets,
            steer_port_base: u32::from(STEER_PORT_BASE_DEFAULT),
            steer_ports: u32::from(STEER_PORTS),
        };
        config
            .set(0, config_value, 0)
            .map_err(|e| map_error(MAP_CONFIG, e))?;
        let rules = take_map(&mut ebpf, MAP_RULES)?;
        let counters = take_map(&mut ebpf, MAP_COUNTERS)?;
        let mut eswitch = KernelEswitch {
            _ebpf: ebpf,
            rules,
            counters,
            mirror: HashMap::new(),
            group,
        };
        eswitch.apply(&RuleTable::new(Shares::HOST))?;
        eswitch.attach_program(socket)?;
        Ok(eswitch)
    }

    fn attach_program(&mut self, socket: BorrowedFd<'_>) -> Result<(), EswitchError> {
        let program: &mut ReusePortSocketFilter = self
            ._ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| EswitchError::Object {
                detail: format!("no program `{PROGRAM}` in eswitch.o"),
            })?
            .try_into()
            .map_err(|e: ProgramError| EswitchError::Object {
                detail: format!("program `{PROGRAM}`: {e}"),
            })?;
        program
            .load()
            .map_err(|e| program_error("load program naam_eswitch", e))?;
        program.attach(socket).map_err(|e| attach_error(socket, e))
    }

    /// Removes the program from the group of `socket` (any socket of the group); the kernel
    /// then spreads datagrams by its own hash again.
    pub fn detach(self, socket: impl AsFd) -> Result<(), EswitchError> {
        let fd = socket.as_fd();
        ReusePortSocketFilter::detach(fd).map_err(|e| attach_error(fd, e))
    }

    /// The group shape the program was configured with.
    pub fn group(&self) -> GroupShape {
        self.group
    }
}

impl Steering for KernelEswitch {
    fn apply(&mut self, rules: &RuleTable) -> Result<Applied, EswitchError> {
        let mut wanted: HashMap<RuleKeyC, SharesC> = rules
            .rules()
            .map(|(k, s)| (key_c(k), shares_c(*s)))
            .collect();
        wanted.insert(key_c(&RuleKey::DEFAULT), shares_c(rules.default_shares()));
        let mut written = 0;
        for (key, shares) in &wanted {
            if self.mirror.get(key) != Some(shares) {
                self.rules
                    .insert(key, shares, 0)
                    .map_err(|e| map_error(MAP_RULES, e))?;
                self.mirror.insert(*key, *shares);
                written += 1;
            }
        }
        let stale: Vec<RuleKeyC> = self
            .mirror
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .copied()
            .collect();
        for key in &stale {
            self.rules
                .remove(key)
                .map_err(|e| map_error(MAP_RULES, e))?;
            self.mirror.remove(key);
        }
        Ok(Applied {
            version: rules.version(),
            applied_at_ns: monotonic_now_ns(),
            entries_written: written,
            entries_removed: stale.len(),
        })
    }

    fn counts(&self) -> Result<SteerCounts, EswitchError> {
        let mut out = [0u64; 4];
        for verdict in Verdict::ALL {
            let per_cpu = self
                .counters
                .get(&(verdict.index() as u32), 0)
                .map_err(|e| map_error(MAP_COUNTERS, e))?;
            out[verdict.index()] = per_cpu.iter().sum();
        }
        Ok(SteerCounts::from_array(out))
    }

    fn kind(&self) -> &'static str {
        "kernel-ebpf"
    }
}

fn check_reuseport_socket(socket: BorrowedFd<'_>) -> Result<(), EswitchError> {
    let fd = socket.as_raw_fd();
    let not = |reason| EswitchError::NotReusePortSocket { fd, reason };
    let kind = get_int(
        socket,
        libc::SOL_SOCKET,
        libc::SO_TYPE,
        "getsockopt(SO_TYPE)",
    )
    .map_err(|_| not("not a socket"))?;
    if kind != libc::SOCK_DGRAM {
        return Err(not("not a UDP (datagram) socket"));
    }
    let reuse = get_int(
        socket,
        libc::SOL_SOCKET,
        libc::SO_REUSEPORT,
        "getsockopt(SO_REUSEPORT)",
    )
    .map_err(|_| not("getsockopt(SO_REUSEPORT) failed"))?;
    if reuse == 0 {
        return Err(not(
            "SO_REUSEPORT is not set (bind it with UdpConfig.reuse_port)",
        ));
    }
    let mut storage = crate::addr::RawSockAddr::zeroed();
    storage.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is writable for `storage.len` bytes; the kernel writes at most that.
    let rc =
        unsafe { libc::getsockname(fd, (&raw mut storage.storage).cast(), &raw mut storage.len) };
    match crate::addr::from_raw(&storage.storage, storage.len) {
        Some(addr) if rc == 0 && addr.port() != 0 => Ok(()),
        _ => Err(not("not bound to a port (bind before attaching)")),
    }
}

fn take_map<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, EswitchError>
where
    M: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or_else(|| EswitchError::Object {
        detail: format!("no map `{name}` in eswitch.o"),
    })?;
    M::try_from(map).map_err(|e| EswitchError::Object {
        detail: format!("map `{name}` has an unexpected type: {e}"),
    })
}

fn map_error(map: &'static str, error: MapError) -> EswitchError {
    EswitchError::Map {
        map,
        detail: error.to_string(),
    }
}

fn load_error(error: EbpfError) -> EswitchError {
    match error {
        EbpfError::MapError(MapError::CreateError { name, io_error }) => {
            classify(format!("create map {name}"), io_error)
        }
        EbpfError::ProgramError(e) => program_error("load eswitch.o", e),
        other => EswitchError::Object {
            detail: other.to_string(),
        },
    }
}

fn program_error(operation: &str, error: ProgramError) -> EswitchError {
    match error {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            if matches!(io_error.raw_os_error(), Some(libc::EPERM)) {
                return classify(operation.to_string(), io_error);
            }
            let lines: Vec<&str> = log.lines().collect();
            let excerpt = lines[lines.len().saturating_sub(VERIFIER_LOG_LINES_MAX)..].join("\n");
            EswitchError::VerifierRejected {
                log_excerpt: excerpt,
                source: io_error,
            }
        }
        ProgramError::SyscallError(e) => classify(format!("{operation}: {}", e.call), e.io_error),
        other => EswitchError::Object {
            detail: format!("{operation}: {other}"),
        },
    }
}

fn attach_error(socket: BorrowedFd<'_>, error: ProgramError) -> EswitchError {
    let fd = socket.as_raw_fd();
    match error {
        ProgramError::SocketFilterError(SocketFilterError::SetsockoptError {
            option,
            io_error,
        }) => {
            if matches!(io_error.raw_os_error(), Some(libc::EPERM)) {
                classify(format!("setsockopt({option})"), io_error)
            } else {
                EswitchError::Attach {
                    fd,
                    source: io_error,
                }
            }
        }
        other => EswitchError::Object {
            detail: format!("attaching to socket fd {fd}: {other}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use naam_engine::{FunctionId, TenantId};

    #[test]
    fn rule_keys_map_to_the_c_kinds() {
        let t = Some(TenantId(7));
        let f = Some(FunctionId(9));
        let cases = [
            (
                RuleKey::DEFAULT,
                RuleKeyC {
                    tenant: 0,
                    function: 0,
                    flow: 0,
                    kind: RULE_KIND_DEFAULT,
                },
            ),
            (
                RuleKey {
                    tenant: t,
                    function: None,
                    flow: None,
                },
                RuleKeyC {
                    tenant: 7,
                    function: 0,
                    flow: 0,
                    kind: RULE_KIND_TENANT,
                },
            ),
            (
                RuleKey {
                    tenant: t,
                    function: f,
                    flow: None,
                },
                RuleKeyC {
                    tenant: 7,
                    function: 9,
                    flow: 0,
                    kind: RULE_KIND_FUNCTION,
                },
            ),
            (
                RuleKey {
                    tenant: t,
                    function: f,
                    flow: Some(0),
                },
                RuleKeyC {
                    tenant: 7,
                    function: 9,
                    flow: 0,
                    kind: RULE_KIND_FLOW,
                },
            ),
        ];
        for (key, want) in cases {
            assert_eq!(key_c(&key), want, "{key:?}");
        }
    }
}
