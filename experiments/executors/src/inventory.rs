//! From a plan's point to the launches of a run on an inventory's machines.
//!
//! The role configurations and launches are the local testbed's ([`crate::configs`],
//! [`crate::launches`]): they hold on any machine as they are (every path relative to the run
//! directory); the host's listen address is its inventory LAN address. A NIC role on another
//! machine than the host (a BlueField-2's Arm side, [`is_other_machine`]) changes three things
//! (`offbox_nic`): it reads the host's regions with one-sided RDMA READs, the host steers
//! through the card's Open vSwitch bridge, and the NIC's load samples travel over the host–NIC
//! control link (the NIC node's `[host.bluefield]` table, or BlueField's defaults); the READs
//! and their handshake travel over the host–Arm RDMA link across that bridge (the table's
//! `rdma_address`/`host_rdma_address`), which the bridge's flows pass between the host's and the
//! Arm's ports.
//!
//! Machines: the host and the NIC roles go to the first inventory host with that role; client
//! `k` goes to the `k mod n`-th of the `n` client machines; the CPU hog of a load-shift point
//! runs on the host machine (it congests the host's cores), started with the host group, and
//! ends by itself. Launch ids are the local testbed's role folder names (`host`, `nic`,
//! `client-<k>`, `hog`), so collected folders are laid out as the local testbed's.

// The errors here carry naam-ssh's deploy errors (login, paths, the command to run) and travel
// only on the failure path of a point that takes seconds; their size is not worth boxing for.
#![allow(clippy::result_large_err)]

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use naam_launch::LaunchSpec;
use naam_plan::{ExperimentPlan, ManifestError, PointPlan, Timing, Variant};
use naam_ssh::deploy::ArtifactSet;
use naam_ssh::dryrun::{Bundle, render_plan_with};
use naam_ssh::inventory::{Arch, Inventory, InventoryError, Role};
use naam_ssh::run::RunConfig;

use crate::configs::{self, Settings};
use crate::launches::{self, Machines};
use crate::orchestrated::{CLIENT_EXIT_WAIT_MS, SERVER_STOP_GRACE_MS};

/// Longest role run id (`naam_roles` names shared-memory files after it).
pub const ROLE_RUN_ID_BYTES_MAX: usize = 64;
/// Longest orchestrator run id (it names remote directories).
pub const RUN_ID_BYTES_MAX: usize = 128;

/// Why a point cannot be mapped onto the inventory.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The plan is not one that runs on machines (vm-cost runs in process).
    #[error("plan {plan}: {what}")]
    Unsupported {
        /// The experiment id.
        plan: String,
        /// What cannot be done.
        what: String,
    },
    /// The inventory has no machine for a role the plan needs.
    #[error("inventory {inventory}: no host has role {role} (add `roles = [\"{role}\"]` to one)")]
    NoMachine {
        /// The inventory file.
        inventory: String,
        /// The role.
        role: Role,
    },
    /// The host–NIC control link or RDMA link of an off-box NIC cannot work.
    #[error("inventory {inventory}:{line}: host {node}: `bluefield`: {problem}")]
    Link {
        /// The inventory file.
        inventory: String,
        /// Line of the NIC node's `[[host]]` table.
        line: usize,
        /// The NIC node.
        node: String,
        /// What is wrong, and what to write instead.
        problem: String,
    },
    /// The configuration builder refused the point.
    #[error("point {point}: {message}")]
    Config {
        /// The point id.
        point: String,
        /// Why.
        message: String,
    },
}

/// Assigns machines for `clients` client processes (see the module documentation).
pub fn assign_machines(inventory: &Inventory, clients: u32) -> Result<Machines, ExperimentError> {
    let with_role = |role: Role| -> Vec<String> {
        inventory
            .hosts
            .iter()
            .filter(|h| h.has_role(role))
            .map(|h| h.name.clone())
            .collect()
    };
    let missing = |role| ExperimentError::NoMachine {
        inventory: inventory.source.clone(),
        role,
    };
    let host = with_role(Role::Host)
        .into_iter()
        .next()
        .ok_or_else(|| missing(Role::Host))?;
    let nic = with_role(Role::Nic)
        .into_iter()
        .next()
        .ok_or_else(|| missing(Role::Nic))?;
    let client_hosts = with_role(Role::Client);
    if client_hosts.is_empty() {
        return Err(missing(Role::Client));
    }
    let clients = (0..clients as usize)
        .map(|k| client_hosts[k % client_hosts.len()].clone())
        .collect();
    Ok(Machines { host, nic, clients })
}

/// A point mapped onto the inventory: everything a run needs.
#[derive(Debug, Clone)]
pub struct PointRun {
    /// The orchestrator's run id: `<experiment>-<point id>`.
    pub run_id: String,
    /// Warm-up.
    pub warmup_ms: u64,
    /// Measured phase.
    pub measure_ms: u64,
    /// Who plays what.
    pub machines: Machines,
    /// The steering policy (the point's series), recorded in `server.json`.
    pub policy: String,
    /// How the server is wired ([`describe_server`]), shown by the dry run.
    pub server: String,
    /// The launches, in start order.
    pub launches: Vec<LaunchSpec>,
}

/// Maps `point` of `plan` onto `inventory` (no connection).
pub fn point_run(
    inventory: &Inventory,
    plan: &ExperimentPlan,
    point: &PointPlan,
    settings: &Settings,
) -> Result<PointRun, ExperimentError> {
    let unsupported = |what: &str| ExperimentError::Unsupported {
        plan: plan.id.to_string(),
        what: what.to_string(),
    };
    let Timing::Traffic {
        warmup_ms,
        measure_ms,
        ..
    } = plan.timing
    else {
        return Err(unsupported(
            "vm-cost is timed in process, not on machines: run it with the local testbed",
        ));
    };
    let machines = assign_machines(inventory, plan.roles.clients)?;
    let run_id = format!("{}-{}", plan.id, point.id);
    if run_id.len() > RUN_ID_BYTES_MAX {
        return Err(unsupported(&format!(
            "run id {run_id} is longer than {RUN_ID_BYTES_MAX} bytes"
        )));
    }
    let config_err = |message: String| ExperimentError::Config {
        point: point.id.clone(),
        message,
    };
    let host = inventory
        .host(&machines.host)
        .expect("assigned from the inventory");
    let listen_ip: IpAddr = host.lan_address;
    let role_run_id: String = point.id.chars().take(ROLE_RUN_ID_BYTES_MAX).collect();
    let mut built = configs::build(plan, point, settings, listen_ip, &role_run_id)
        .map_err(|e| config_err(e.to_string()))?;
    let nic_host = inventory
        .host(&machines.nic)
        .expect("assigned from the inventory");
    if is_other_machine(host, nic_host) {
        offbox_nic(&mut built, inventory, host, nic_host)?;
    }
    let policy = match &built.host.role {
        naam_roles::Role::Host(h) => h.policy.name().to_string(),
        _ => String::new(),
    };
    let launches = launches::launches(&built, &machines).map_err(config_err)?;
    Ok(PointRun {
        run_id,
        warmup_ms,
        measure_ms,
        machines,
        policy,
        server: describe_server(&built),
        launches,
    })
}

/// A NIC role on another machine (a BlueField-2's Arm side, `nic_host`) with `host`: it cannot
/// map the host's files, so it reads the host's regions with one-sided RDMA READs; it sits behind
/// the card's switch, so the host steers through the card's Open vSwitch bridge (OpenFlow over
/// the host–NIC link) and takes the NIC's load samples over that link, not at the server's
/// address, which the Arm side holds too (the node's `[host.bluefield]`, or its defaults).
fn offbox_nic(
    built: &mut configs::PointConfigs,
    inventory: &Inventory,
    host: &naam_ssh::HostSpec,
    nic_host: &naam_ssh::HostSpec,
) -> Result<(), ExperimentError> {
    let card = nic_host.bluefield.unwrap_or_default();
    let link_error = |problem: String| ExperimentError::Link {
        inventory: inventory.source.clone(),
        line: nic_host.line,
        node: nic_host.name.clone(),
        problem,
    };
    let on_lan = [card.control_address, card.host_control_address]
        .into_iter()
        .find(|ip| *ip == host.lan_address || *ip == nic_host.lan_address);
    if let Some(ip) = on_lan {
        return Err(link_error(format!(
            "{ip} is a LAN address: the host–NIC control link needs addresses of its own \
             (rshim's tmfifo_net0: 192.168.100.1 on the host, 192.168.100.2 on the Arm)"
        )));
    }
    if let Some(problem) = rdma_link_clash(&card, host, nic_host) {
        return Err(link_error(problem));
    }
    let rdma_link = naam_roles::config::RdmaLink {
        host_ip: card.host_rdma_address,
        nic_ip: card.rdma_address,
    };
    if let naam_roles::Role::Nic(nic) = &mut built.nic.role {
        nic.data_path = naam_roles::config::NicDataPath::Rdma;
        nic.rdma_link = Some(rdma_link);
    }
    if let naam_roles::Role::Host(h) = &mut built.host.role {
        h.rdma_export = true;
        h.eswitch = naam_roles::config::EswitchMode::Ovs;
        h.ovs = Some(naam_roles::config::OvsSwitch {
            openflow: std::net::SocketAddr::new(card.control_address, card.openflow_port),
            uplink_port: card.uplink_port,
            host_port: card.host_port,
            nic_port: card.nic_port,
        });
        h.nic_link = Some(naam_roles::config::NicLink {
            host_ip: card.host_control_address,
            nic_ip: card.control_address,
        });
        h.rdma_link = Some(rdma_link);
    }
    Ok(())
}

/// Why the card's RDMA link cannot work beside the LAN and the control link: one of its
/// addresses in the /24 of the host's or the NIC node's LAN address, or of the control link
/// (`naam_ssh::inventory::same_link_prefix`) — the host would route it out the wrong interface.
fn rdma_link_clash(
    card: &naam_ssh::Bluefield,
    host: &naam_ssh::HostSpec,
    nic_host: &naam_ssh::HostSpec,
) -> Option<String> {
    let others = [
        (host.lan_address, "a LAN address"),
        (nic_host.lan_address, "a LAN address"),
        (card.host_control_address, "the host–NIC control link"),
        (card.control_address, "the host–NIC control link"),
    ];
    [card.host_rdma_address, card.rdma_address]
        .into_iter()
        .find_map(|ip| {
            let (other, what) = others
                .iter()
                .find(|(o, _)| naam_ssh::inventory::same_link_prefix(IpAddr::V4(ip), *o))?;
            Some(format!(
                "RDMA link address {ip} shares a /{} with {other} ({what}): the host–Arm RDMA \
                 link needs a prefix of its own (set `rdma_address` and `host_rdma_address`; \
                 defaults 192.168.200.2 on the Arm, 192.168.200.1 on the host)",
                naam_ssh::inventory::LINK_PREFIX_BITS
            ))
        })
}

/// One line on how the server is wired: its eSwitch (with the Open vSwitch bridge's listener and
/// ports), where the NIC's samples go, and the NIC's data path.
pub fn describe_server(built: &configs::PointConfigs) -> String {
    let (naam_roles::Role::Host(h), naam_roles::Role::Nic(n)) = (&built.host.role, &built.nic.role)
    else {
        return String::new();
    };
    let switch = match &h.ovs {
        Some(ovs) if h.eswitch == naam_roles::config::EswitchMode::Ovs => format!(
            "ovs (OpenFlow at {}; ports uplink {}, host {}, nic {})",
            ovs.openflow, ovs.uplink_port, ovs.host_port, ovs.nic_port
        ),
        _ => format!("{:?}", h.eswitch).to_lowercase(),
    };
    let samples = match &h.nic_link {
        Some(link) => format!(
            "over the host–NIC link, {} (nic) -> {} (host)",
            link.nic_ip, link.host_ip
        ),
        None => format!("to {} (the server's address)", h.listen_ip),
    };
    let data_path = match (n.data_path, &h.rdma_link) {
        (naam_roles::config::NicDataPath::Rdma, Some(link)) => format!(
            "rdma (one-sided READs of the host's regions over the host–Arm RDMA link, {} (nic) \
             -> {} (host), which the bridge passes between its host and nic ports)",
            link.nic_ip, link.host_ip
        ),
        (naam_roles::config::NicDataPath::Rdma, None) => {
            "rdma (one-sided READs of the host's regions)".to_string()
        }
        (naam_roles::config::NicDataPath::SharedMemory, _) => {
            "shared memory (the host's files)".to_string()
        }
    };
    format!("eswitch {switch}; NIC samples {samples}; NIC data path {data_path}")
}

/// Whether `nic` is another machine than `host`: another architecture (a BlueField-2's Arm
/// side, whatever address it is reached at — e.g. a port forwarded on its host), or another SSH
/// address (nodes of one inventory on one address are one machine, as in the tests' sshd
/// testbed).
pub fn is_other_machine(host: &naam_ssh::HostSpec, nic: &naam_ssh::HostSpec) -> bool {
    host.arch != nic.arch || host.ssh_host != nic.ssh_host
}

/// Why a plan's dry run could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The launches do not fit the inventory, or a host cannot be deployed to.
    #[error(transparent)]
    Render(#[from] naam_ssh::dryrun::DryRunError),
    /// The hosts file.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The plan's first point does not map onto the inventory.
    #[error(transparent)]
    Experiment(#[from] ExperimentError),
    /// The plan has no point.
    #[error("manifest {manifest}: the plan has no point")]
    NoPoint {
        /// The manifest.
        manifest: PathBuf,
    },
}

/// What a run of the first point of `manifest` (in `variant`) on the hosts of `inventory_path`
/// would do, without connecting: the launch sequence's recording over the SSH deploy plan — the
/// role binary built for this machine's architecture (or where `cargo build` puts it), a source
/// bundle built on hosts of other architectures, every launch with its inputs in start order, the
/// common start, the files collected, the teardown.
pub fn dry_run(
    inventory_path: &Path,
    manifest: &Path,
    variant: Variant,
) -> Result<String, DryRunError> {
    let inventory = Inventory::load(inventory_path)?;
    let plan = naam_plan::load_manifest(manifest, variant)?;
    let point = plan.points.first().ok_or_else(|| DryRunError::NoPoint {
        manifest: manifest.to_path_buf(),
    })?;
    let point_run = point_run(&inventory, &plan, point, &Settings::for_machines())?;
    let mut artifacts = ArtifactSet::default();
    let binary = naam_launch::role_binary().unwrap_or_else(|_| {
        PathBuf::from(format!(
            "target/release/naam-role (not built yet: {} --release)",
            naam_launch::binary::ROLE_BINARY_BUILD
        ))
    });
    if let Some(arch) = Arch::local() {
        artifacts.role_binaries.insert(arch, binary);
    }
    let mut config = RunConfig::new(
        &point_run.run_id,
        point_run.warmup_ms,
        point_run.measure_ms,
        PathBuf::from("<run folder>/orchestrator").join(&point.id),
    );
    config.stop_grace_ms = SERVER_STOP_GRACE_MS;
    config.exit_wait_ms = CLIENT_EXIT_WAIT_MS;
    let mut out = format!(
        "# plan {} ({}), point 1 of {}: {}\n",
        plan.id,
        plan.variant,
        plan.points.len(),
        point.id
    );
    let machines = &point_run.machines;
    let _ = writeln!(
        out,
        "# machines: host {}, nic {}, clients [{}]",
        machines.host,
        machines.nic,
        machines.clients.join(", ")
    );
    let _ = writeln!(out, "# server: {}", point_run.server);
    out.push_str(&render_plan_with(
        &inventory,
        &artifacts,
        &point_run.launches,
        &config,
        Bundle::MadeAtRunTime,
    )?);
    Ok(out)
}
