//! From a plan's point to the launches of a run on the inventory's machines.
//!
//! The role configurations are the local testbed's ([`naam_executors::configs::build`]), with three
//! changes that make them hold on any machine:
//!
//! * every path is relative to the role's run directory (the process runs inside it): it writes
//!   its files into `.`, reads its timeline from [`TIMELINE_FILE`] there (written by the run at
//!   the common start, shifted by that machine's clock offset), and the NIC and the clients read
//!   the host's ready file from their own run directory, where the run copies it
//!   ([`LaunchInput::FromLaunch`]) once the host is ready;
//! * the host listens on its inventory LAN address;
//! * clients, like the servers, learn the timeline from the file: the run fixes the start only
//!   once every role is up.
//!
//! Machines: the host and the NIC roles go to the first inventory host with that role; client
//! `k` goes to the `k mod n`-th of the `n` client machines; the CPU hog of a load-shift point
//! runs on the host machine (it congests the host's cores), started with the host group, and
//! ends by itself. Launch ids are the local testbed's role folder names (`host`, `nic`,
//! `client-<k>`, `hog`), so collected folders are laid out as the local testbed's.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use naam_executors::configs::{self, Settings};
use naam_plan::{ExperimentPlan, PointPlan, Timing};
use naam_roles::config::{EswitchMode, Polling, Role as RoleKind, RoleConfig, TimelineSpec};

use crate::command::RemoteCommand;
use crate::deploy::ROLE_BINARY_REMOTE;
use crate::inventory::{Inventory, Role};
use crate::run::{Ends, LaunchInput, LaunchSpec, TIMELINE_FILE};

/// Launch id of the server host role.
pub const HOST_LAUNCH: &str = "host";
/// Launch id of the NIC role.
pub const NIC_LAUNCH: &str = "nic";
/// Launch id of the CPU hog.
pub const HOG_LAUNCH: &str = "hog";
/// The role configuration in each run directory (`naam-role --config role.json`).
pub const ROLE_CONFIG_FILE: &str = "role.json";
/// Longest role run id (`naam_roles` names shared-memory files after it).
pub const ROLE_RUN_ID_BYTES_MAX: usize = 64;
/// Longest orchestrator run id (it names remote directories).
pub const RUN_ID_BYTES_MAX: usize = 128;

/// Launch id of client `k`.
pub fn client_launch(k: u32) -> String {
    format!("client-{k}")
}

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
    /// The local testbed's configuration builder refused the point.
    #[error("point {point}: {message}")]
    Config {
        /// The point id.
        point: String,
        /// Why.
        message: String,
    },
}

/// Role settings that are not in the manifest.
#[derive(Debug, Clone)]
pub struct RoleSettings {
    /// The eSwitch the host uses.
    pub eswitch: EswitchMode,
    /// Busy-poll or blocking workers.
    pub polling: Polling,
    /// Clients check every answer.
    pub verify: bool,
    /// Controller sampling period.
    pub sample_period_us: u64,
    /// Folder of the host's shared-memory region files, on the host machine.
    pub shm_dir: PathBuf,
}

impl Default for RoleSettings {
    /// The user-space eSwitch (no privileges, and NIC workers need not share the host's
    /// SO_REUSEPORT group), blocking workers, verification on, the local testbed's sampling
    /// period, `/dev/shm`.
    fn default() -> Self {
        RoleSettings {
            eswitch: EswitchMode::User,
            polling: Polling::Blocking,
            verify: true,
            sample_period_us: naam_executors::executor::SAMPLE_PERIOD_US,
            shm_dir: PathBuf::from("/dev/shm"),
        }
    }
}

/// Which inventory host plays each role of a point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machines {
    /// The server host.
    pub host: String,
    /// The NIC.
    pub nic: String,
    /// Client `k`'s machine at index `k`.
    pub clients: Vec<String>,
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
    /// The launches, in start order.
    pub launches: Vec<LaunchSpec>,
}

/// Maps `point` of `plan` onto `inventory` (no connection).
pub fn point_run(
    inventory: &Inventory,
    plan: &ExperimentPlan,
    point: &PointPlan,
    settings: &RoleSettings,
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
    let host_spec = inventory
        .host(&machines.host)
        .expect("assigned from the inventory");
    let testbed_settings = Settings {
        eswitch: settings.eswitch,
        polling: settings.polling,
        verify: settings.verify,
        sample_period_us: settings.sample_period_us,
        shm_dir: settings.shm_dir.clone(),
    };
    let role_run_id: String = point.id.chars().take(ROLE_RUN_ID_BYTES_MAX).collect();
    let listen_ip: IpAddr = host_spec.lan_address;
    let built = configs::build(
        plan,
        point,
        &testbed_settings,
        Path::new(""),
        listen_ip,
        &role_run_id,
    )
    .map_err(|e| ExperimentError::Config {
        point: point.id.clone(),
        message: e.to_string(),
    })?;
    let policy = match &built.host.role {
        RoleKind::Host(h) => h.policy.name().to_string(),
        _ => String::new(),
    };
    let config_err = |e: String| ExperimentError::Config {
        point: point.id.clone(),
        message: e,
    };
    let ready_from_host = LaunchInput::FromLaunch {
        launch: HOST_LAUNCH.into(),
        file: naam_roles::host::READY_FILE.into(),
    };
    let mut launches = vec![
        role_launch(HOST_LAUNCH, &machines.host, Role::Host, &built.host, vec![])
            .map_err(config_err)?
            .ready_when(naam_roles::host::READY_FILE)
            .with_outputs([
                naam_results::raw::STEERING_FILE,
                naam_results::raw::SAMPLES_FILE,
                naam_roles::host::COUNTERS_FILE,
                naam_roles::host::READY_FILE,
            ]),
    ];
    if let Some(hog) = &built.hog {
        let mut launch =
            role_launch(HOG_LAUNCH, &machines.host, Role::Host, hog, vec![]).map_err(config_err)?;
        launch.ends = Ends::ByItself;
        launches.push(launch);
    }
    launches.push(
        role_launch(
            NIC_LAUNCH,
            &machines.nic,
            Role::Nic,
            &built.nic,
            vec![ready_from_host.clone()],
        )
        .map_err(config_err)?
        .ready_when(naam_roles::nic::READY_FILE)
        .with_outputs([naam_roles::nic::COUNTERS_FILE, naam_roles::nic::READY_FILE]),
    );
    for (k, (client, machine)) in built.clients.iter().zip(&machines.clients).enumerate() {
        let k = u32::try_from(k).map_err(|_| config_err(format!("client index {k}")))?;
        let outputs = [
            naam_results::raw::client_hlog_file(k),
            naam_results::raw::client_summary_file(k),
        ];
        launches.push(
            role_launch(
                &client_launch(k),
                machine,
                Role::Client,
                client,
                vec![ready_from_host.clone()],
            )
            .map_err(config_err)?
            .with_outputs(outputs),
        );
    }
    Ok(PointRun {
        run_id,
        warmup_ms,
        measure_ms,
        machines,
        policy,
        launches,
    })
}

/// The configuration a role reads on its machine: paths relative to its run directory.
pub fn remote_config(config: &RoleConfig) -> RoleConfig {
    let host_ready = PathBuf::from(naam_roles::host::READY_FILE);
    let role = match &config.role {
        RoleKind::Nic(nic) => RoleKind::Nic(naam_roles::config::NicConfig {
            host_ready,
            ..nic.clone()
        }),
        RoleKind::Client(client) => RoleKind::Client(naam_roles::config::ClientConfig {
            host_ready,
            ..client.clone()
        }),
        other => other.clone(),
    };
    RoleConfig {
        out_dir: PathBuf::from("."),
        timeline: TimelineSpec::File {
            path: PathBuf::from(TIMELINE_FILE),
        },
        role,
        ..config.clone()
    }
}

fn role_launch(
    id: &str,
    machine: &str,
    role: Role,
    config: &RoleConfig,
    mut inputs: Vec<LaunchInput>,
) -> Result<LaunchSpec, String> {
    let bytes = serde_json::to_vec_pretty(&remote_config(config))
        .map_err(|e| format!("{id}: role configuration: {e}"))?;
    inputs.insert(
        0,
        LaunchInput::Bytes {
            name: ROLE_CONFIG_FILE.into(),
            bytes,
        },
    );
    let command = RemoteCommand::from_argv([ROLE_BINARY_REMOTE, "--config", ROLE_CONFIG_FILE])
        .map_err(|e| e.to_string())?;
    let mut launch = LaunchSpec::new(id, machine, role, command);
    launch.inputs = inputs;
    Ok(launch)
}
