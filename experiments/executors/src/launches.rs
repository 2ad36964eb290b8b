//! A point's launch plan: one `naam-role` launch per role configuration — on which machine, with
//! which input files (its `role.json`, and the host's ready file relayed once the host is
//! ready), when it is ready, how it ends and what it leaves behind. The same plan runs on this
//! machine, in network namespaces and over SSH; only the machines differ.
//!
//! Launch ids name the run directories: `host`, `nic`, `client-<k>`, `hog`. The CPU hog of a
//! load-shift point runs on the host's machine (it congests the host's cores), starts with the
//! host group and ends by itself; it waits for the common timeline like the clients.

use naam_launch::binary::ROLE_BINARY_RELATIVE;
use naam_launch::{Ends, LaunchInput, LaunchSpec, RemoteCommand, Role};
use naam_results::raw;
use naam_roles::RoleConfig;

use crate::configs::PointConfigs;

/// Launch id of the server host role.
pub const HOST_LAUNCH: &str = "host";
/// Launch id of the NIC role.
pub const NIC_LAUNCH: &str = "nic";
/// Launch id of the CPU hog.
pub const HOG_LAUNCH: &str = "hog";
/// The role configuration in each run directory (`naam-role --config role.json`).
pub const ROLE_CONFIG_FILE: &str = "role.json";

/// Launch id of client `k`.
pub fn client_launch(k: u32) -> String {
    format!("client-{k}")
}

/// Which machine plays each role of a point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machines {
    /// The server host (and the hog).
    pub host: String,
    /// The NIC.
    pub nic: String,
    /// Client `k`'s machine at index `k`.
    pub clients: Vec<String>,
}

/// The launches of a point's role configurations on `machines`, host group first.
pub fn launches(configs: &PointConfigs, machines: &Machines) -> Result<Vec<LaunchSpec>, String> {
    let ready_from_host = LaunchInput::FromLaunch {
        launch: HOST_LAUNCH.into(),
        file: naam_roles::host::READY_FILE.into(),
    };
    let mut launches = vec![
        role_launch(
            HOST_LAUNCH,
            &machines.host,
            Role::Host,
            &configs.host,
            vec![],
        )?
        .ready_when(naam_roles::host::READY_FILE)
        .with_outputs([
            raw::STEERING_FILE,
            raw::SAMPLES_FILE,
            naam_roles::host::COUNTERS_FILE,
            naam_roles::host::READY_FILE,
        ]),
    ];
    if let Some(hog) = &configs.hog {
        let mut launch = role_launch(HOG_LAUNCH, &machines.host, Role::Host, hog, vec![])?;
        launch.ends = Ends::ByItself;
        launches.push(launch);
    }
    launches.push(
        role_launch(
            NIC_LAUNCH,
            &machines.nic,
            Role::Nic,
            &configs.nic,
            vec![ready_from_host.clone()],
        )?
        .ready_when(naam_roles::nic::READY_FILE)
        .with_outputs([naam_roles::nic::COUNTERS_FILE, naam_roles::nic::READY_FILE]),
    );
    for (k, (client, machine)) in configs.clients.iter().zip(&machines.clients).enumerate() {
        let k = u32::try_from(k).map_err(|_| format!("client index {k}"))?;
        let outputs = [raw::client_hlog_file(k), raw::client_summary_file(k)];
        let inputs = vec![ready_from_host.clone()];
        let launch = role_launch(&client_launch(k), machine, Role::Client, client, inputs)?;
        launches.push(launch.with_outputs(outputs));
    }
    Ok(launches)
}

/// `bin/naam-role --config role.json` as `id` on `machine`, its configuration the first input.
fn role_launch(
    id: &str,
    machine: &str,
    role: Role,
    config: &RoleConfig,
    mut inputs: Vec<LaunchInput>,
) -> Result<LaunchSpec, String> {
    let bytes =
        serde_json::to_vec_pretty(config).map_err(|e| format!("{id}: role configuration: {e}"))?;
    inputs.insert(
        0,
        LaunchInput::Bytes {
            name: ROLE_CONFIG_FILE.into(),
            bytes,
        },
    );
    let command = RemoteCommand::from_argv([ROLE_BINARY_RELATIVE, "--config", ROLE_CONFIG_FILE])
        .map_err(|e| e.to_string())?;
    let mut launch = LaunchSpec::new(id, machine, role, command);
    launch.inputs = inputs;
    Ok(launch)
}
