//! Importer for a CloudLab manifest RSpec: the XML that `geni-get manifest` prints on a node of a
//! running experiment (GENI RSpec v3, `type="manifest"`).
//!
//! From each `<node client_id=…>` it takes the SSH login (`<services><login hostname= port=
//! username=/>`; a node lists one per project member), the experiment-LAN address (the first
//! `<interface><ip address=…/>`), and the hardware type. What a manifest does not say — roles,
//! architecture, cores, which key to use — comes from [`ImportOptions`]; roles default to the
//! node's name (`host*`/`server*` → host, `nic*`/`bf*`/`dpu*` → nic, `client*` → client).
//!
//! A BlueField-2's Arm cores are not a node of their own in a CloudLab manifest: they sit behind
//! their host (rshim/`tmfifo_net0`, the Arm at 192.168.100.2). With
//! [`ImportOptions::bluefield_arm`], every host node of a BlueField-2 hardware type
//! ([`BLUEFIELD2_HARDWARE_TYPES`]) gets its card's Arm side as a node of its own, `<host>-bf2`:
//! the NIC role, aarch64, [`BLUEFIELD2_ARM_CORES`] cores, reached over SSH at a port of its host
//! that forwards to the Arm (`orchestrator/cloudlab/profile.py` sets the forward up), with a LAN
//! address of its own (the host's plus an offset; the Arm side must carry it, see ARTIFACT.md's
//! real-hardware guide).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::inventory::{
    Arch, HostSpec, Inventory, InventoryError, Role, WORKDIR_DEFAULT, line_column,
};

/// Largest manifest accepted (a manifest of a few hundred nodes is well under this).
pub const MANIFEST_BYTES_MAX: usize = 16 << 20;
/// Nesting depth beyond which the XML is rejected (RSpec manifests nest about 6 deep).
pub const XML_DEPTH_MAX: usize = 64;

const _: () = assert!(MANIFEST_BYTES_MAX > 0 && XML_DEPTH_MAX >= 8);

/// Why a manifest could not be imported. `line` is 1-based in the manifest text.
#[derive(Debug, thiserror::Error)]
pub enum CloudLabError {
    /// The text is not well-formed XML.
    #[error("manifest line {line}: malformed XML: {message}")]
    Xml {
        /// Line of the error.
        line: usize,
        /// The XML parser's message.
        message: String,
    },
    /// The text is larger than [`MANIFEST_BYTES_MAX`] or nests deeper than [`XML_DEPTH_MAX`].
    #[error("manifest line {line}: {what} exceeds the limit of {limit}")]
    TooLarge {
        /// Where the limit was hit.
        line: usize,
        /// Which limit.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The root element is not `<rspec type="manifest">` (for example a request RSpec).
    #[error(
        "not a manifest RSpec: root element <{root}> with type={rspec_type:?}; run `geni-get manifest` on a node of the running experiment"
    )]
    NotManifest {
        /// The root element's local name.
        root: String,
        /// Its `type` attribute.
        rspec_type: Option<String>,
    },
    /// A required attribute is absent.
    #[error("manifest line {line}: <{element}> has no `{attribute}` attribute")]
    MissingAttribute {
        /// Line of the element.
        line: usize,
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
    },
    /// An attribute value is malformed.
    #[error("manifest line {line}: <{element} {attribute}={value:?}>: {reason}")]
    BadAttribute {
        /// Line of the element.
        line: usize,
        /// The element.
        element: &'static str,
        /// The attribute.
        attribute: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The manifest lists no nodes.
    #[error("the manifest lists no <node> elements")]
    NoNodes,
    /// A node has no SSH login (for the requested user, when one was given).
    #[error("manifest line {line}: node {node} has no <login>{for_user}")]
    NoLogin {
        /// Line of the node.
        line: usize,
        /// The node's client_id.
        node: String,
        /// `" for user …"` when a user was requested.
        for_user: String,
    },
    /// A node has no interface address (it is not on an experiment LAN).
    #[error(
        "manifest line {line}: node {node} has no <interface> with an <ip address=…>; the experiment LAN address is needed for measured traffic"
    )]
    NoLanAddress {
        /// Line of the node.
        line: usize,
        /// The node's client_id.
        node: String,
    },
    /// A node's role could not be told from its name and no override names it.
    #[error(
        "manifest line {line}: cannot tell the role of node {node} from its name; pass roles for it (e.g. {node}=host)"
    )]
    UnknownRole {
        /// Line of the node.
        line: usize,
        /// The node's client_id.
        node: String,
    },
    /// An override names a node the manifest does not have.
    #[error("an option names node {node}, which is not in the manifest (nodes: {known})")]
    UnknownNode {
        /// The node named by the option.
        node: String,
        /// The manifest's nodes.
        known: String,
    },
    /// The imported hosts did not validate as an inventory.
    #[error("the imported hosts are not a valid inventory: {0}")]
    Inventory(#[from] InventoryError),
}

/// Hardware types whose nodes carry a BlueField-2 (CloudLab Clemson's `r7525`; check the
/// cluster's hardware page).
pub const BLUEFIELD2_HARDWARE_TYPES: &[&str] = &["r7525"];
/// Arm cores of a BlueField-2 (8 Cortex-A72, NVIDIA's BlueField-2 DPU datasheet).
pub const BLUEFIELD2_ARM_CORES: u32 = 8;
/// Port of the host that forwards SSH to its card's Arm side (assumption: what the profile's
/// startup script sets up).
pub const BLUEFIELD_ARM_SSH_PORT_DEFAULT: u16 = 2222;
/// Added to the last octet of the host's LAN address to make the Arm side's (assumption).
pub const BLUEFIELD_ARM_LAN_OFFSET_DEFAULT: u8 = 100;

/// How a host's BlueField-2 Arm side is reached and addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlueFieldArm {
    /// The host's port that forwards SSH to the Arm side.
    pub ssh_port: u16,
    /// Added to the last octet of the host's IPv4 LAN address.
    pub lan_offset: u8,
}

impl Default for BlueFieldArm {
    fn default() -> Self {
        BlueFieldArm {
            ssh_port: BLUEFIELD_ARM_SSH_PORT_DEFAULT,
            lan_offset: BLUEFIELD_ARM_LAN_OFFSET_DEFAULT,
        }
    }
}

/// What the importer cannot read from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The login to use when a node lists several (`None`: the first listed).
    pub user: Option<String>,
    /// Private key for every node.
    pub identity_file: PathBuf,
    /// known_hosts file for every node.
    pub known_hosts: PathBuf,
    /// Remote working directory for every node.
    pub workdir: String,
    /// Roles per node client_id, overriding the name rule.
    pub roles: BTreeMap<String, Vec<Role>>,
    /// Architecture per node client_id (default x86_64).
    pub arch: BTreeMap<String, Arch>,
    /// Cores per node client_id (default `cores_default`).
    pub cores: BTreeMap<String, u32>,
    /// Cores for nodes not in `cores`.
    pub cores_default: u32,
    /// Add each BlueField-2 host's Arm side as a node of its own (`None`: nodes only).
    pub bluefield_arm: Option<BlueFieldArm>,
}

impl ImportOptions {
    /// Options with every per-node map empty.
    pub fn new(identity_file: PathBuf, known_hosts: PathBuf, cores_default: u32) -> Self {
        ImportOptions {
            user: None,
            identity_file,
            known_hosts,
            workdir: WORKDIR_DEFAULT.to_string(),
            roles: BTreeMap::new(),
            arch: BTreeMap::new(),
            cores: BTreeMap::new(),
            cores_default,
            bluefield_arm: None,
        }
    }
}

/// One node as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestNode {
    /// The node's name in the experiment (`client_id`).
    pub client_id: String,
    /// Line of its `<node>` element.
    pub line: usize,
    /// `<hardware_type name=…>` (e.g. `r7525`), when present.
    pub hardware_type: Option<String>,
    /// Its SSH logins, in manifest order.
    pub logins: Vec<Login>,
    /// Interface addresses, in manifest order.
    pub addresses: Vec<IpAddr>,
}

/// One `<login>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// SSH host name.
    pub hostname: String,
    /// SSH port.
    pub port: u16,
    /// User name.
    pub username: String,
}

/// Parses a manifest RSpec into its nodes.
pub fn parse_manifest(xml: &str) -> Result<Vec<ManifestNode>, CloudLabError> {
    if xml.len() > MANIFEST_BYTES_MAX {
        return Err(CloudLabError::TooLarge {
            line: 1,
            what: "manifest size in bytes",
            limit: MANIFEST_BYTES_MAX,
        });
    }
    let mut parser = ManifestParser {
        xml,
        reader: Reader::from_str(xml),
        nodes: Vec::new(),
        depth: 0,
        root_seen: false,
        inside_node: false,
    };
    parser.run()?;
    if parser.nodes.is_empty() {
        return Err(CloudLabError::NoNodes);
    }
    Ok(parser.nodes)
}

/// Parses a manifest and builds a validated inventory from it.
pub fn import_manifest(xml: &str, options: &ImportOptions) -> Result<Inventory, CloudLabError> {
    let nodes = parse_manifest(xml)?;
    check_overrides_name_nodes(&nodes, options)?;
    let mut hosts = Vec::new();
    for node in &nodes {
        let host = host_from_node(node, options)?;
        let arm = options
            .bluefield_arm
            .filter(|_| carries_bluefield(node) && host.has_role(Role::Host))
            .map(|arm| arm_side(node, &host, arm))
            .transpose()?;
        hosts.push(host);
        hosts.extend(arm);
    }
    Ok(Inventory::from_hosts("<cloudlab manifest>", hosts)?)
}

fn carries_bluefield(node: &ManifestNode) -> bool {
    node.hardware_type
        .as_deref()
        .is_some_and(|t| BLUEFIELD2_HARDWARE_TYPES.contains(&t))
}

/// The Arm side of `host`'s BlueField-2 as a node: the NIC role, aarch64, its own LAN address.
fn arm_side(
    node: &ManifestNode,
    host: &HostSpec,
    arm: BlueFieldArm,
) -> Result<HostSpec, CloudLabError> {
    let IpAddr::V4(v4) = host.lan_address else {
        return Err(CloudLabError::NoLanAddress {
            line: node.line,
            node: format!("{}-bf2 (needs the host's IPv4 LAN address)", node.client_id),
        });
    };
    let [a, b, c, d] = v4.octets();
    let last = d
        .checked_add(arm.lan_offset)
        .ok_or(CloudLabError::NoLanAddress {
            line: node.line,
            node: format!(
                "{}-bf2 (LAN offset {} overflows)",
                node.client_id, arm.lan_offset
            ),
        })?;
    Ok(HostSpec {
        name: format!("{}-bf2", node.client_id),
        port: arm.ssh_port,
        roles: vec![Role::Nic],
        arch: Arch::Aarch64,
        lan_address: IpAddr::from([a, b, c, last]),
        cores: BLUEFIELD2_ARM_CORES,
        // Written out with its defaults, so the hosts file shows what to edit.
        bluefield: Some(crate::inventory::Bluefield::default()),
        ..host.clone()
    })
}

fn check_overrides_name_nodes(
    nodes: &[ManifestNode],
    options: &ImportOptions,
) -> Result<(), CloudLabError> {
    let named = options
        .roles
        .keys()
        .chain(options.arch.keys())
        .chain(options.cores.keys());
    for node in named {
        if !nodes.iter().any(|n| &n.client_id == node) {
            let known = nodes
                .iter()
                .map(|n| n.client_id.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(CloudLabError::UnknownNode {
                node: node.clone(),
                known,
            });
        }
    }
    Ok(())
}

fn host_from_node(node: &ManifestNode, options: &ImportOptions) -> Result<HostSpec, CloudLabError> {
    let login = match &options.user {
        Some(user) => node.logins.iter().find(|login| &login.username == user),
        None => node.logins.first(),
    }
    .ok_or_else(|| CloudLabError::NoLogin {
        line: node.line,
        node: node.client_id.clone(),
        for_user: options
            .user
            .as_ref()
            .map(|u| format!(" for user {u}"))
            .unwrap_or_default(),
    })?;
    let lan_address = *node
        .addresses
        .first()
        .ok_or_else(|| CloudLabError::NoLanAddress {
            line: node.line,
            node: node.client_id.clone(),
        })?;
    let roles = match options.roles.get(&node.client_id) {
        Some(roles) => roles.clone(),
        None => role_from_name(&node.client_id)
            .map(|role| vec![role])
            .ok_or_else(|| CloudLabError::UnknownRole {
                line: node.line,
                node: node.client_id.clone(),
            })?,
    };
    Ok(HostSpec {
        name: node.client_id.clone(),
        ssh_host: login.hostname.clone(),
        port: login.port,
        user: login.username.clone(),
        identity_file: options.identity_file.clone(),
        known_hosts: options.known_hosts.clone(),
        roles,
        arch: options
            .arch
            .get(&node.client_id)
            .copied()
            .unwrap_or(Arch::X86_64),
        lan_address,
        cores: options
            .cores
            .get(&node.client_id)
            .copied()
            .unwrap_or(options.cores_default),
        workdir: options.workdir.clone(),
        bluefield: None,
        line: 0,
    })
}

/// The role a node's name implies, if any.
pub fn role_from_name(client_id: &str) -> Option<Role> {
    let name = client_id.to_ascii_lowercase();
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| name.starts_with(p));
    if starts(&["client"]) {
        Some(Role::Client)
    } else if starts(&["nic", "bf", "dpu"]) {
        Some(Role::Nic)
    } else if starts(&["host", "server"]) {
        Some(Role::Host)
    } else {
        None
    }
}

struct ManifestParser<'x> {
    xml: &'x str,
    reader: Reader<&'x [u8]>,
    nodes: Vec<ManifestNode>,
    depth: usize,
    root_seen: bool,
    inside_node: bool,
}

impl ManifestParser<'_> {
    fn run(&mut self) -> Result<(), CloudLabError> {
        loop {
            let position = self.reader.buffer_position() as usize;
            let event = self
                .reader
                .read_event()
                .map_err(|err| self.xml_error(err.to_string()))?;
            match event {
                Event::Start(element) => {
                    self.depth += 1;
                    if self.depth > XML_DEPTH_MAX {
                        let line = self.line(position);
                        return Err(CloudLabError::TooLarge {
                            line,
                            what: "XML nesting depth",
                            limit: XML_DEPTH_MAX,
                        });
                    }
                    self.element(&element, position, false)?;
                }
                Event::Empty(element) => self.element(&element, position, true)?,
                Event::End(element) => {
                    self.depth = self.depth.saturating_sub(1);
                    if element.local_name().as_ref() == "node" {
                        self.close_node();
                    }
                }
                Event::Eof => return Ok(()),
                _ => {}
            }
        }
    }

    fn line(&self, position: usize) -> usize {
        line_column(self.xml, position).0
    }

    fn xml_error(&self, message: String) -> CloudLabError {
        let line = self.line(self.reader.error_position() as usize);
        CloudLabError::Xml { line, message }
    }

    fn element(
        &mut self,
        element: &BytesStart<'_>,
        position: usize,
        empty: bool,
    ) -> Result<(), CloudLabError> {
        let line = self.line(position);
        let name = element.local_name().as_ref().to_string();
        if !self.root_seen {
            self.root_seen = true;
            let rspec_type = self.attribute(element, "type")?;
            if name != "rspec" || rspec_type.as_deref() != Some("manifest") {
                return Err(CloudLabError::NotManifest {
                    root: name,
                    rspec_type,
                });
            }
            return Ok(());
        }
        match name.as_str() {
            "node" => {
                let client_id = self.required(element, "client_id", "node", "client_id", line)?;
                self.nodes.push(ManifestNode {
                    client_id,
                    line,
                    hardware_type: None,
                    logins: Vec::new(),
                    addresses: Vec::new(),
                });
                self.inside_node = true;
                if empty {
                    self.close_node();
                }
            }
            "login" => self.login(element, line)?,
            "ip" => self.ip(element, line)?,
            "hardware_type" => {
                let hardware = self.attribute(element, "name")?;
                if let Some(node) = self.open_node() {
                    node.hardware_type = hardware;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The node being read, if the parser is inside a `<node>` element (elements of links and
    /// other top-level parts never attach to a node).
    fn open_node(&mut self) -> Option<&mut ManifestNode> {
        if self.inside_node {
            self.nodes.last_mut()
        } else {
            None
        }
    }

    fn close_node(&mut self) {
        self.inside_node = false;
    }

    fn login(&mut self, element: &BytesStart<'_>, line: usize) -> Result<(), CloudLabError> {
        let hostname = self.required(element, "hostname", "login", "hostname", line)?;
        let username = self.required(element, "username", "login", "username", line)?;
        let port =
            match self.attribute(element, "port")? {
                None => crate::inventory::SSH_PORT_DEFAULT,
                Some(text) => text.parse::<u16>().ok().filter(|&p| p != 0).ok_or(
                    CloudLabError::BadAttribute {
                        line,
                        element: "login",
                        attribute: "port",
                        value: text.clone(),
                        reason: "expected a port number 1..=65535",
                    },
                )?,
            };
        if let Some(node) = self.open_node() {
            node.logins.push(Login {
                hostname,
                port,
                username,
            });
        }
        Ok(())
    }

    fn ip(&mut self, element: &BytesStart<'_>, line: usize) -> Result<(), CloudLabError> {
        let text = self.required(element, "address", "ip", "address", line)?;
        let address = text
            .parse::<IpAddr>()
            .map_err(|_| CloudLabError::BadAttribute {
                line,
                element: "ip",
                attribute: "address",
                value: text.clone(),
                reason: "not an IP address",
            })?;
        if let Some(node) = self.open_node() {
            node.addresses.push(address);
        }
        Ok(())
    }

    fn attribute(
        &self,
        element: &BytesStart<'_>,
        name: &str,
    ) -> Result<Option<String>, CloudLabError> {
        for attribute in element.attributes() {
            let attribute = attribute.map_err(|err| self.xml_error(err.to_string()))?;
            if attribute.key.local_name().as_ref() == name {
                let value = attribute
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .map_err(|err| self.xml_error(err.to_string()))?;
                return Ok(Some(value.into_owned()));
            }
        }
        Ok(None)
    }

    fn required(
        &self,
        element: &BytesStart<'_>,
        name: &str,
        element_name: &'static str,
        attribute: &'static str,
        line: usize,
    ) -> Result<String, CloudLabError> {
        self.attribute(element, name)?
            .filter(|value| !value.is_empty())
            .ok_or(CloudLabError::MissingAttribute {
                line,
                element: element_name,
                attribute,
            })
    }
}
