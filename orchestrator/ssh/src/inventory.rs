//! The inventory: which machines take part, how to reach them over SSH, and what they are.
//!
//! A hosts file is TOML: an optional `[defaults]` table (user, port, identity_file, known_hosts,
//! workdir) and one `[[host]]` table per machine:
//!
//! ```toml
//! [defaults]
//! user = "alice"
//! identity_file = "~/.ssh/id_ed25519"   # `~/` is the local home; relative paths are relative
//! known_hosts = "known_hosts"           # to the hosts file's directory
//!
//! [[host]]
//! name = "host0"                        # [A-Za-z0-9][A-Za-z0-9._-]*, unique
//! ssh_host = "hp042.utah.cloudlab.us"
//! port = 22
//! roles = ["host"]                      # client | host | nic
//! arch = "x86_64"                       # x86_64 | aarch64 (BlueField-2 Arm cores)
//! lan_address = "10.10.1.1"             # experiment-LAN address: measured traffic goes here
//! cores = 16
//! workdir = "naam"                      # remote directory; relative to the login's home
//!
//! [host.bluefield]                       # optional, on a NIC node that is a BlueField-2's Arm
//! control_address = "192.168.100.2"      # side: this node on the host–NIC link (rshim)
//! host_control_address = "192.168.100.1" # the host on that link
//! openflow_port = 6653                   # the bridge's `ptcp:` OpenFlow listener here
//! uplink_port = 1                        # OpenFlow port numbers (`ofport_request`) of `p0`,
//! host_port = 2                          # `pf0hpf`
//! nic_port = 3                           # and the Arm's own port
//! rdma_address = "192.168.200.2"         # the host–Arm RDMA link across the bridge: the Arm's
//! host_rdma_address = "192.168.200.1"    # end (behind nic_port), the host's (behind host_port)
//! ```
//!
//! Every `[host.bluefield]` field is optional ([`Bluefield::default`]: BlueField's rshim
//! defaults, the guide's bridge and RDMA link); a NIC node on another machine than the host
//! without the table takes the defaults. The RDMA link is IPv4 (the bridge's flows for it match
//! IPv4 and ARP), its two ends distinct and outside the rshim link's /24.
//!
//! Parsing is two steps (raw TOML, then validation into [`Inventory`]); every error names the
//! file, the line and the field. Key files are not read here: [`Inventory::check_local_files`]
//! checks that they exist, and only their paths ever appear in messages.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::limits::{HOST_CORES_MAX, HOST_NAME_BYTES_MAX, HOSTS_MAX};

/// Default SSH port.
pub const SSH_PORT_DEFAULT: u16 = 22;
/// Default remote working directory (relative: under the login's home directory).
pub const WORKDIR_DEFAULT: &str = "naam";
/// Default known_hosts file when neither the host nor `[defaults]` names one.
pub const KNOWN_HOSTS_DEFAULT: &str = "~/.ssh/known_hosts";

/// Why an inventory could not be read or is not valid. `file` is the hosts file's path (or
/// `<string>`), `line` is 1-based.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The hosts file could not be read.
    #[error("{file}: cannot read the hosts file: {source}")]
    Read {
        /// The hosts file.
        file: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The text is not TOML, a value has the wrong type, or a field is unknown.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The hosts file.
        file: String,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
        /// The TOML parser's message.
        message: String,
    },
    /// A required field is absent from a `[[host]]` table (and from `[defaults]`).
    #[error("{file}:{line}: host {host}: missing field `{field}`")]
    Missing {
        /// The hosts file.
        file: String,
        /// Line of the `[[host]]` table.
        line: usize,
        /// The host's name, or its position when the name itself is missing.
        host: String,
        /// The missing field.
        field: &'static str,
    },
    /// A field's value is not acceptable.
    #[error("{file}:{line}: field `{field}` = {value:?}: {reason}")]
    Invalid {
        /// The hosts file.
        file: String,
        /// Line of the value.
        line: usize,
        /// The field.
        field: &'static str,
        /// The value as written.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value that must be unique across hosts appears twice.
    #[error("{file}:{line}: field `{field}` = {value:?} is already used at line {first_line}")]
    Duplicate {
        /// The hosts file.
        file: String,
        /// Line of the second occurrence.
        line: usize,
        /// The field.
        field: &'static str,
        /// The repeated value.
        value: String,
        /// Line of the first occurrence.
        first_line: usize,
    },
    /// The inventory lists no hosts.
    #[error("{file}: no [[host]] tables: an inventory needs at least one host")]
    Empty {
        /// The hosts file.
        file: String,
    },
    /// More hosts than [`HOSTS_MAX`].
    #[error("{file}: {count} hosts, more than the limit of {max}")]
    TooManyHosts {
        /// The hosts file.
        file: String,
        /// Hosts listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A local file named by a host (identity key, known_hosts) does not exist.
    #[error("{file}:{line}: host {host}: `{field}` names {path}, which does not exist")]
    MissingFile {
        /// The hosts file.
        file: String,
        /// Line of the `[[host]]` table.
        line: usize,
        /// The host.
        host: String,
        /// The field.
        field: &'static str,
        /// The resolved local path.
        path: PathBuf,
    },
    /// The inventory could not be written as TOML.
    #[error("cannot write the inventory as TOML: {message}")]
    Write {
        /// The serializer's message.
        message: String,
    },
}

/// What a machine does in an experiment (naam-launch's: it orders the launch sequence).
pub use naam_launch::plan::Role;

/// A machine architecture, as `uname -m` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// 64-bit x86 (client and host machines).
    #[serde(rename = "x86_64")]
    X86_64,
    /// 64-bit Arm (BlueField-2 Cortex-A72 cores).
    Aarch64,
}

impl Arch {
    /// The architecture this orchestrator was built for, if it is one we deploy to.
    pub fn local() -> Option<Arch> {
        Arch::from_uname(std::env::consts::ARCH)
    }

    /// Parses `uname -m` output (`x86_64`, `aarch64`, and the aliases `amd64`, `arm64`).
    pub fn from_uname(machine: &str) -> Option<Arch> {
        match machine.trim() {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The Rust target triple built for this architecture on Linux.
    pub fn target_triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Aarch64 => "aarch64-unknown-linux-gnu",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The host's address on a BlueField-2's rshim link (`tmfifo_net0`; BlueField's default).
pub const RSHIM_HOST_ADDRESS: [u8; 4] = [192, 168, 100, 1];
/// The Arm side's address on that link (BlueField's default).
pub const RSHIM_ARM_ADDRESS: [u8; 4] = [192, 168, 100, 2];
/// The TCP port of the bridge's OpenFlow listener (`ovs-vsctl set-controller br ptcp:6653`,
/// OpenFlow's IANA port).
pub const OPENFLOW_PORT_DEFAULT: u16 = 6653;
/// OpenFlow port numbers the step-by-step guide pins with `ofport_request`: the uplink `p0`.
pub const OFPORT_UPLINK_DEFAULT: u32 = 1;
/// The host representor `pf0hpf`.
pub const OFPORT_HOST_DEFAULT: u32 = 2;
/// The Arm side's own (internal) port.
pub const OFPORT_NIC_DEFAULT: u32 = 3;
/// Largest OpenFlow port number of a physical or internal port (OpenFlow 1.3 `OFPP_MAX`).
pub const OFPORT_NUMBER_MAX: u32 = 0xffff_ff00;
/// The host's end of the host–Arm RDMA link across the card's bridge (this harness's choice: a
/// private RFC 1918 /24 apart from rshim's 192.168.100.0/24 and CloudLab's experiment LANs,
/// 10.x; configured on the host's PF netdev, whose traffic enters the bridge at `pf0hpf`).
pub const RDMA_LINK_HOST_ADDRESS: [u8; 4] = [192, 168, 200, 1];
/// The Arm side's end of that link (on the netdev behind the bridge's NIC port).
pub const RDMA_LINK_ARM_ADDRESS: [u8; 4] = [192, 168, 200, 2];
/// The prefix length the guide configures both links with (`ip addr add <a>/24`): addresses of
/// two links in one such prefix would route ambiguously.
pub const LINK_PREFIX_BITS: u32 = 24;

/// Whether `a` and `b` are in one [`LINK_PREFIX_BITS`] IPv4 prefix (IPv6 addresses: equal).
pub fn same_link_prefix(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX << (32 - LINK_PREFIX_BITS);
            u32::from(a) & mask == u32::from(b) & mask
        }
        _ => a == b,
    }
}

/// A NIC node that is a BlueField-2's Arm side: the host–NIC control link and the card's Open
/// vSwitch bridge (`[host.bluefield]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bluefield {
    /// This node's address on the host–NIC control link (rshim's `tmfifo_net0`, Arm end).
    pub control_address: IpAddr,
    /// The host's address on that link: the host's controller listens there for the NIC's load
    /// samples.
    pub host_control_address: IpAddr,
    /// TCP port of the bridge's OpenFlow listener on this node.
    pub openflow_port: u16,
    /// OpenFlow port number of the uplink (`p0`).
    pub uplink_port: u32,
    /// OpenFlow port number of the host representor (`pf0hpf`).
    pub host_port: u32,
    /// OpenFlow port number of this node's own port.
    pub nic_port: u32,
    /// This node's end of the host–Arm RDMA link across the bridge (on the netdev behind
    /// `nic_port`): its RDMA device's RoCEv2 GID for this address reads the host's regions.
    pub rdma_address: Ipv4Addr,
    /// The host's end of that link (behind `host_port`): the host exports its regions and its
    /// RDMA handshake here.
    pub host_rdma_address: Ipv4Addr,
}

impl Default for Bluefield {
    fn default() -> Self {
        Bluefield {
            control_address: IpAddr::from(RSHIM_ARM_ADDRESS),
            host_control_address: IpAddr::from(RSHIM_HOST_ADDRESS),
            openflow_port: OPENFLOW_PORT_DEFAULT,
            uplink_port: OFPORT_UPLINK_DEFAULT,
            host_port: OFPORT_HOST_DEFAULT,
            nic_port: OFPORT_NIC_DEFAULT,
            rdma_address: Ipv4Addr::from(RDMA_LINK_ARM_ADDRESS),
            host_rdma_address: Ipv4Addr::from(RDMA_LINK_HOST_ADDRESS),
        }
    }
}

/// One validated machine of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Unique name, also the name of its local results directory.
    pub name: String,
    /// Address or DNS name of its sshd.
    pub ssh_host: String,
    /// Port of its sshd.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key for public-key authentication (its contents are never logged).
    pub identity_file: PathBuf,
    /// known_hosts file its host key is checked against.
    pub known_hosts: PathBuf,
    /// Roles, sorted in start order, without duplicates.
    pub roles: Vec<Role>,
    /// Architecture (checked against `uname -m` at deploy).
    pub arch: Arch,
    /// Experiment-LAN address (measured traffic).
    pub lan_address: IpAddr,
    /// Cores the roles on this machine may use.
    pub cores: u32,
    /// Remote working directory (relative paths are under the login's home).
    pub workdir: String,
    /// Its `[host.bluefield]` table, when written.
    pub bluefield: Option<Bluefield>,
    /// Line of its `[[host]]` table in the hosts file (0 when built in code or imported).
    pub line: usize,
}

impl HostSpec {
    /// `user@host:port`, for messages.
    pub fn login(&self) -> String {
        format!("{}@{}:{}", self.user, self.ssh_host, self.port)
    }

    /// Whether this machine plays `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// A validated inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Where it was read from (`<string>` or the importer's name otherwise).
    pub source: String,
    /// The machines, in file order.
    pub hosts: Vec<HostSpec>,
}

impl Inventory {
    /// Reads and validates a hosts file; relative paths in it are resolved against its directory.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            file: file.clone(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &file, base_dir)
    }

    /// Parses and validates hosts-file text; `file` names it in errors, `base_dir` resolves
    /// relative paths.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Inventory, InventoryError> {
        let raw: RawInventory = toml::from_str(text).map_err(|err| {
            let (line, column) = err
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            InventoryError::Syntax {
                file: file.to_string(),
                line,
                column,
                message: err.message().to_string(),
            }
        })?;
        Validator {
            text,
            file,
            base_dir,
        }
        .validate(raw)
    }

    /// A validated inventory from hosts built in code (the CloudLab importer, tests).
    pub fn from_hosts(source: &str, hosts: Vec<HostSpec>) -> Result<Inventory, InventoryError> {
        let inventory = Inventory {
            source: source.to_string(),
            hosts,
        };
        let text = inventory.to_toml()?;
        let reparsed = Inventory::parse(&text, source, Path::new("/"))?;
        let hosts = reparsed
            .hosts
            .into_iter()
            .map(|host| HostSpec { line: 0, ..host })
            .collect();
        Ok(Inventory {
            source: source.to_string(),
            hosts,
        })
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|host| host.name == name)
    }

    /// Hosts that play `role`, in file order.
    pub fn hosts_with_role(&self, role: Role) -> impl Iterator<Item = &HostSpec> {
        self.hosts.iter().filter(move |host| host.has_role(role))
    }

    /// Checks that every identity file and known_hosts file exists locally.
    pub fn check_local_files(&self) -> Result<(), InventoryError> {
        for host in &self.hosts {
            for (field, path) in [
                ("identity_file", &host.identity_file),
                ("known_hosts", &host.known_hosts),
            ] {
                if !path.is_file() {
                    return Err(InventoryError::MissingFile {
                        file: self.source.clone(),
                        line: host.line,
                        host: host.name.clone(),
                        field,
                        path: path.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The inventory as a hosts file (absolute paths, every field explicit).
    pub fn to_toml(&self) -> Result<String, InventoryError> {
        let out = OutInventory {
            host: self.hosts.iter().map(OutHost::from).collect(),
        };
        toml::to_string(&out).map_err(|err| InventoryError::Write {
            message: err.to_string(),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    user: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    identity_file: Option<Spanned<String>>,
    known_hosts: Option<Spanned<String>>,
    workdir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Option<Spanned<String>>,
    ssh_host: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
    identity_file: Option<Spanned<String>>,
    known_hosts: Option<Spanned<String>>,
    roles: Option<Spanned<Vec<Spanned<String>>>>,
    arch: Option<Spanned<String>>,
    lan_address: Option<Spanned<String>>,
    cores: Option<Spanned<i64>>,
    workdir: Option<Spanned<String>>,
    bluefield: Option<Spanned<RawBluefield>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBluefield {
    control_address: Option<Spanned<String>>,
    host_control_address: Option<Spanned<String>>,
    openflow_port: Option<Spanned<i64>>,
    uplink_port: Option<Spanned<i64>>,
    host_port: Option<Spanned<i64>>,
    nic_port: Option<Spanned<i64>>,
    rdma_address: Option<Spanned<String>>,
    host_rdma_address: Option<Spanned<String>>,
}

#[derive(Debug, Serialize)]
struct OutInventory {
    host: Vec<OutHost>,
}

#[derive(Debug, Serialize)]
struct OutHost {
    name: String,
    ssh_host: String,
    port: u16,
    user: String,
    identity_file: String,
    known_hosts: String,
    roles: Vec<Role>,
    arch: Arch,
    lan_address: String,
    cores: u32,
    workdir: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bluefield: Option<OutBluefield>,
}

#[derive(Debug, Serialize)]
struct OutBluefield {
    control_address: String,
    host_control_address: String,
    openflow_port: u16,
    uplink_port: u32,
    host_port: u32,
    nic_port: u32,
    rdma_address: String,
    host_rdma_address: String,
}

impl From<&Bluefield> for OutBluefield {
    fn from(b: &Bluefield) -> Self {
        OutBluefield {
            control_address: b.control_address.to_string(),
            host_control_address: b.host_control_address.to_string(),
            openflow_port: b.openflow_port,
            uplink_port: b.uplink_port,
            host_port: b.host_port,
            nic_port: b.nic_port,
            rdma_address: b.rdma_address.to_string(),
            host_rdma_address: b.host_rdma_address.to_string(),
        }
    }
}

impl From<&HostSpec> for OutHost {
    fn from(host: &HostSpec) -> Self {
        OutHost {
            name: host.name.clone(),
            ssh_host: host.ssh_host.clone(),
            port: host.port,
            user: host.user.clone(),
            identity_file: host.identity_file.display().to_string(),
            known_hosts: host.known_hosts.display().to_string(),
            roles: host.roles.clone(),
            arch: host.arch,
            lan_address: host.lan_address.to_string(),
            cores: host.cores,
            workdir: host.workdir.clone(),
            bluefield: host.bluefield.as_ref().map(OutBluefield::from),
        }
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |tail| tail.chars().count())
        + 1;
    (line, column)
}

struct Validator<'a> {
    text: &'a str,
    file: &'a str,
    base_dir: &'a Path,
}

impl Validator<'_> {
    fn validate(&self, raw: RawInventory) -> Result<Inventory, InventoryError> {
        if raw.host.is_empty() {
            return Err(InventoryError::Empty {
                file: self.file.to_string(),
            });
        }
        if raw.host.len() > HOSTS_MAX {
            return Err(InventoryError::TooManyHosts {
                file: self.file.to_string(),
                count: raw.host.len(),
                max: HOSTS_MAX,
            });
        }
        let mut hosts = Vec::with_capacity(raw.host.len());
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut lan_addresses: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (index, raw_host) in raw.host.iter().enumerate() {
            let host = self.host(index, raw_host, &raw.defaults)?;
            self.unique(
                &mut names,
                host.name.clone(),
                raw_host.get_ref().name.as_ref(),
                "name",
            )?;
            self.unique(
                &mut lan_addresses,
                host.lan_address,
                raw_host.get_ref().lan_address.as_ref(),
                "lan_address",
            )?;
            hosts.push(host);
        }
        Ok(Inventory {
            source: self.file.to_string(),
            hosts,
        })
    }

    fn unique<K: Ord + fmt::Display>(
        &self,
        seen: &mut BTreeMap<K, usize>,
        key: K,
        spanned: Option<&Spanned<String>>,
        field: &'static str,
    ) -> Result<(), InventoryError> {
        let line = spanned.map_or(0, |s| self.line(s.span().start));
        if let Some(&first_line) = seen.get(&key) {
            return Err(InventoryError::Duplicate {
                file: self.file.to_string(),
                line,
                field,
                value: key.to_string(),
                first_line,
            });
        }
        seen.insert(key, line);
        Ok(())
    }

    fn host(
        &self,
        index: usize,
        spanned: &Spanned<RawHost>,
        defaults: &RawDefaults,
    ) -> Result<HostSpec, InventoryError> {
        let table_line = self.line(spanned.span().start);
        let raw = spanned.get_ref();
        let label = format!("#{}", index + 1);
        let name_raw = self.required(raw.name.as_ref(), table_line, &label, "name")?;
        let name = self.name(name_raw)?;
        let ssh_host =
            self.ssh_host(self.required(raw.ssh_host.as_ref(), table_line, &name, "ssh_host")?)?;
        let port = self.port(raw.port.as_ref().or(defaults.port.as_ref()))?;
        let user = self.user(self.required(
            raw.user.as_ref().or(defaults.user.as_ref()),
            table_line,
            &name,
            "user",
        )?)?;
        let identity_file = self.path(
            self.required(
                raw.identity_file
                    .as_ref()
                    .or(defaults.identity_file.as_ref()),
                table_line,
                &name,
                "identity_file",
            )?,
            "identity_file",
        )?;
        let known_hosts = match raw.known_hosts.as_ref().or(defaults.known_hosts.as_ref()) {
            Some(value) => self.path(value, "known_hosts")?,
            None => expand_path(KNOWN_HOSTS_DEFAULT, self.base_dir)
                .unwrap_or_else(|| PathBuf::from(KNOWN_HOSTS_DEFAULT)),
        };
        let roles_raw = raw
            .roles
            .as_ref()
            .ok_or_else(|| self.missing(table_line, &name, "roles"))?;
        let roles = self.roles(roles_raw)?;
        let arch = self.arch(self.required(raw.arch.as_ref(), table_line, &name, "arch")?)?;
        let lan_raw = self.required(raw.lan_address.as_ref(), table_line, &name, "lan_address")?;
        let lan_address = self.ip(lan_raw, "lan_address")?;
        let cores_raw = raw
            .cores
            .as_ref()
            .ok_or_else(|| self.missing(table_line, &name, "cores"))?;
        let cores = self.cores(cores_raw)?;
        let workdir = self.workdir(raw.workdir.as_ref().or(defaults.workdir.as_ref()))?;
        Ok(HostSpec {
            name,
            ssh_host,
            port,
            user,
            identity_file,
            known_hosts,
            roles,
            arch,
            lan_address,
            cores,
            workdir,
            bluefield: raw
                .bluefield
                .as_ref()
                .map(|b| self.bluefield(b))
                .transpose()?,
            line: table_line,
        })
    }

    fn arch(&self, value: &Spanned<String>) -> Result<Arch, InventoryError> {
        Arch::from_uname(value.get_ref())
            .filter(|_| !value.get_ref().trim().is_empty())
            .ok_or_else(|| self.invalid(value, "arch", "expected x86_64 or aarch64".into()))
    }

    fn ip(&self, value: &Spanned<String>, field: &'static str) -> Result<IpAddr, InventoryError> {
        value
            .get_ref()
            .parse::<IpAddr>()
            .map_err(|err| self.invalid(value, field, format!("not an IP address ({err})")))
    }

    /// `[host.bluefield]`: every field optional, the link's two ends distinct and of one family,
    /// the three bridge ports distinct.
    fn bluefield(&self, spanned: &Spanned<RawBluefield>) -> Result<Bluefield, InventoryError> {
        let raw = spanned.get_ref();
        let d = Bluefield::default();
        let ip = |v: Option<&Spanned<String>>, field, default| {
            v.map_or(Ok(default), |v| self.ip(v, field))
        };
        let ofport = |v: Option<&Spanned<i64>>, field, default| {
            v.map_or(Ok(default), |v| {
                u32::try_from(*v.get_ref())
                    .ok()
                    .filter(|p| (1..=OFPORT_NUMBER_MAX).contains(p))
                    .ok_or_else(|| {
                        self.invalid(v, field, format!("expected 1..={OFPORT_NUMBER_MAX}"))
                    })
            })
        };
        let b = Bluefield {
            control_address: ip(
                raw.control_address.as_ref(),
                "bluefield.control_address",
                d.control_address,
            )?,
            host_control_address: ip(
                raw.host_control_address.as_ref(),
                "bluefield.host_control_address",
                d.host_control_address,
            )?,
            openflow_port: match raw.openflow_port.as_ref() {
                None => d.openflow_port,
                Some(v) => u16::try_from(*v.get_ref())
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| {
                        self.invalid(v, "bluefield.openflow_port", "expected 1..=65535".into())
                    })?,
            },
            uplink_port: ofport(
                raw.uplink_port.as_ref(),
                "bluefield.uplink_port",
                d.uplink_port,
            )?,
            host_port: ofport(raw.host_port.as_ref(), "bluefield.host_port", d.host_port)?,
            nic_port: ofport(raw.nic_port.as_ref(), "bluefield.nic_port", d.nic_port)?,
            rdma_address: self.ipv4(
                raw.rdma_address.as_ref(),
                "bluefield.rdma_address",
                d.rdma_address,
            )?,
            host_rdma_address: self.ipv4(
                raw.host_rdma_address.as_ref(),
                "bluefield.host_rdma_address",
                d.host_rdma_address,
            )?,
        };
        self.bluefield_consistent(spanned, b)
    }

    /// An optional IPv4 address field of `[host.bluefield]`.
    fn ipv4(
        &self,
        value: Option<&Spanned<String>>,
        field: &'static str,
        default: Ipv4Addr,
    ) -> Result<Ipv4Addr, InventoryError> {
        let Some(value) = value else {
            return Ok(default);
        };
        match self.ip(value, field)? {
            IpAddr::V4(v4) => Ok(v4),
            IpAddr::V6(_) => Err(self.invalid(
                value,
                field,
                "the RDMA link is IPv4 (RoCEv2 over IPv4: the bridge's flows match IPv4 and ARP)"
                    .into(),
            )),
        }
    }

    /// The link's two ends distinct, specific and of one family; the three bridge ports distinct.
    fn bluefield_consistent(
        &self,
        spanned: &Spanned<RawBluefield>,
        b: Bluefield,
    ) -> Result<Bluefield, InventoryError> {
        let link_ok = b.control_address != b.host_control_address
            && b.control_address.is_ipv4() == b.host_control_address.is_ipv4()
            && !b.control_address.is_unspecified()
            && !b.host_control_address.is_unspecified();
        let ports_ok = b.uplink_port != b.host_port
            && b.uplink_port != b.nic_port
            && b.host_port != b.nic_port;
        let table = |field, value: String, reason: &str| InventoryError::Invalid {
            file: self.file.to_string(),
            line: self.line(spanned.span().start),
            field,
            value,
            reason: reason.to_string(),
        };
        if !link_ok {
            return Err(table(
                "bluefield.control_address/host_control_address",
                format!("{} / {}", b.control_address, b.host_control_address),
                "the link's two ends must be distinct, specific addresses of one family",
            ));
        }
        if !ports_ok {
            return Err(table(
                "bluefield.uplink_port/host_port/nic_port",
                format!("{} / {} / {}", b.uplink_port, b.host_port, b.nic_port),
                "the bridge's three ports must be distinct",
            ));
        }
        if let Some(reason) = rdma_link_problem(&b) {
            return Err(table(
                "bluefield.rdma_address/host_rdma_address",
                format!("{} / {}", b.rdma_address, b.host_rdma_address),
                &reason,
            ));
        }
        Ok(b)
    }

    fn line(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    fn missing(&self, line: usize, host: &str, field: &'static str) -> InventoryError {
        InventoryError::Missing {
            file: self.file.to_string(),
            line,
            host: host.to_string(),
            field,
        }
    }

    fn invalid<T: fmt::Debug>(
        &self,
        value: &Spanned<T>,
        field: &'static str,
        reason: String,
    ) -> InventoryError {
        let shown = format!("{:?}", value.get_ref());
        InventoryError::Invalid {
            file: self.file.to_string(),
            line: self.line(value.span().start),
            field,
            value: shown.trim_matches('"').to_string(),
            reason,
        }
    }

    fn required<'v>(
        &self,
        value: Option<&'v Spanned<String>>,
        line: usize,
        host: &str,
        field: &'static str,
    ) -> Result<&'v Spanned<String>, InventoryError> {
        value.ok_or_else(|| self.missing(line, host, field))
    }

    fn name(&self, value: &Spanned<String>) -> Result<String, InventoryError> {
        let name = value.get_ref();
        let mut chars = name.chars();
        let well_formed = matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !well_formed || name.len() > HOST_NAME_BYTES_MAX {
            return Err(self.invalid(
                value,
                "name",
                format!("expected [A-Za-z0-9][A-Za-z0-9._-]*, at most {HOST_NAME_BYTES_MAX} bytes"),
            ));
        }
        Ok(name.clone())
    }

    fn ssh_host(&self, value: &Spanned<String>) -> Result<String, InventoryError> {
        let host = value.get_ref();
        if host.is_empty()
            || host.starts_with('-')
            || host.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(self.invalid(
                value,
                "ssh_host",
                "expected a DNS name or IP address".into(),
            ));
        }
        Ok(host.clone())
    }

    fn port(&self, value: Option<&Spanned<i64>>) -> Result<u16, InventoryError> {
        let Some(value) = value else {
            return Ok(SSH_PORT_DEFAULT);
        };
        u16::try_from(*value.get_ref())
            .ok()
            .filter(|&port| port != 0)
            .ok_or_else(|| self.invalid(value, "port", "expected 1..=65535".into()))
    }

    fn user(&self, value: &Spanned<String>) -> Result<String, InventoryError> {
        let user = value.get_ref();
        let well_formed = !user.is_empty()
            && !user.starts_with('-')
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !well_formed {
            return Err(self.invalid(
                value,
                "user",
                "expected a login name ([A-Za-z0-9._-]+)".into(),
            ));
        }
        Ok(user.clone())
    }

    fn path(
        &self,
        value: &Spanned<String>,
        field: &'static str,
    ) -> Result<PathBuf, InventoryError> {
        expand_path(value.get_ref(), self.base_dir).ok_or_else(|| {
            self.invalid(
                value,
                field,
                "expected a path (and HOME set for `~/`)".into(),
            )
        })
    }

    fn roles(&self, value: &Spanned<Vec<Spanned<String>>>) -> Result<Vec<Role>, InventoryError> {
        if value.get_ref().is_empty() {
            return Err(self.invalid(value, "roles", "a host needs at least one role".into()));
        }
        let mut roles = Vec::new();
        for role in value.get_ref() {
            let parsed = role
                .get_ref()
                .parse::<Role>()
                .map_err(|reason| self.invalid(role, "roles", reason))?;
            if roles.contains(&parsed) {
                return Err(self.invalid(role, "roles", "listed twice".into()));
            }
            roles.push(parsed);
        }
        roles.sort();
        Ok(roles)
    }

    fn cores(&self, value: &Spanned<i64>) -> Result<u32, InventoryError> {
        u32::try_from(*value.get_ref())
            .ok()
            .filter(|&cores| (1..=HOST_CORES_MAX).contains(&cores))
            .ok_or_else(|| self.invalid(value, "cores", format!("expected 1..={HOST_CORES_MAX}")))
    }

    fn workdir(&self, value: Option<&Spanned<String>>) -> Result<String, InventoryError> {
        let Some(value) = value else {
            return Ok(WORKDIR_DEFAULT.to_string());
        };
        let dir = value.get_ref();
        if dir.is_empty() || dir.contains('\0') || dir.split('/').any(|part| part == "..") {
            return Err(self.invalid(
                value,
                "workdir",
                "expected a non-empty path without `..`".into(),
            ));
        }
        Ok(dir.trim_end_matches('/').to_string())
    }
}

/// What is wrong with the RDMA link's addresses on their own and beside the control link's.
fn rdma_link_problem(b: &Bluefield) -> Option<String> {
    let (arm, host) = (b.rdma_address, b.host_rdma_address);
    if arm == host || arm.is_unspecified() || host.is_unspecified() {
        return Some("the RDMA link's two ends must be distinct, specific addresses".into());
    }
    let control = [b.control_address, b.host_control_address];
    let clash = [arm, host].into_iter().find(|ip| {
        control
            .iter()
            .any(|c| same_link_prefix(IpAddr::V4(*ip), *c))
    })?;
    Some(format!(
        "{clash} is in the host–NIC control link's /{LINK_PREFIX_BITS} ({} / {}): the RDMA \
         link needs a prefix of its own (rshim's link carries no RDMA)",
        b.control_address, b.host_control_address
    ))
}

/// Expands `~/` to `$HOME` and makes relative paths relative to `base_dir`.
fn expand_path(text: &str, base_dir: &Path) -> Option<PathBuf> {
    if text.is_empty() || text.contains('\0') {
        return None;
    }
    if let Some(rest) = text.strip_prefix("~/") {
        let home = std::env::var_os("HOME")?;
        return Some(PathBuf::from(home).join(rest));
    }
    let path = Path::new(text);
    Some(if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    })
}
