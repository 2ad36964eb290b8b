//! One point on the local testbed: spawn, synchronise, wait, stop, gather.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use naam_results::raw::{self, ServerSummary};
use naam_roles::config::{Role, RoleConfig, Timeline, TimelineSpec};
use naam_roles::host::HostCounters;
use naam_roles::nic::NicCounters;
use serde::Serialize;

use crate::TestbedError;
use crate::configs::PointConfigs;
use crate::netns::Netns;
use crate::procs::Procs;

/// Longest wait for the host to load its dataset and serve.
pub const HOST_READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for the NIC to map the host's memory and serve.
pub const NIC_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Time between the servers being ready and the clients' start, for every client to be up.
pub const START_DELAY: Duration = Duration::from_millis(500);
/// Slack beyond warm-up + measured phase for clients to drain and write their files.
pub const CLIENT_SLACK: Duration = Duration::from_secs(30);
/// Grace between SIGTERM and SIGKILL for servers.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Where the processes run.
#[derive(Debug)]
pub enum Placement<'a> {
    /// All on this machine's network stack.
    Loopback,
    /// Servers and clients in their own namespaces.
    Namespaces(&'a Netns),
}

/// What the testbed records about how the point ran (`testbed.json` in the point's folder).
#[derive(Debug, Clone, Serialize)]
pub struct TestbedRecord {
    /// `loopback` or `netns`.
    pub network: String,
    /// `kernel` or `user`.
    pub eswitch: String,
    /// PIDs of the roles, by name.
    pub pids: Vec<(String, u32)>,
    /// The common start (CLOCK_REALTIME ns).
    pub start_realtime_ns: u64,
    /// The emulated RNIC's reads.
    pub rnic_reads: u64,
    /// Datagrams the eSwitch steered to host, NIC, client.
    pub steered: [u64; 3],
    /// Always true here: the NIC is a process, not a BlueField-2.
    pub nic_emulated: bool,
}

/// Runs the point whose role configurations are `configs`, writing the raw files into `out_dir`.
pub fn run(configs: &PointConfigs, warmup_ms: u64, measure_ms: u64, role_binary: &Path, placement: &Placement<'_>, out_dir: &Path) -> Result<TestbedRecord, TestbedError> {
    let mut procs = Procs::default();
    let mut pids = Vec::new();
    let host = spawn(&mut procs, "host", &configs.host, role_binary, placement, &mut pids)?;
    procs.wait_for_file(host, &ready_file(&configs.host, naam_roles::host::READY_FILE), HOST_READY_TIMEOUT)?;
    let nic = spawn(&mut procs, "nic", &configs.nic, role_binary, placement, &mut pids)?;
    procs.wait_for_file(nic, &ready_file(&configs.nic, naam_roles::nic::READY_FILE), NIC_READY_TIMEOUT)?;
    let timeline = Timeline {
        start_realtime_ns: naam_roles::os::realtime_ns() + START_DELAY.as_nanos() as u64,
        warmup_ms,
        measure_ms,
    };
    write_json(&configs.timeline_file, &timeline)?;
    let mut waiters = Vec::new();
    for (k, client) in configs.clients.iter().enumerate() {
        let fixed = with_timeline(client, timeline);
        waiters.push(spawn(&mut procs, &format!("client-{k}"), &fixed, role_binary, placement, &mut pids)?);
    }
    if let Some(hog) = &configs.hog {
        waiters.push(spawn(&mut procs, "hog", &with_timeline(hog, timeline), role_binary, placement, &mut pids)?);
    }
    let run_for = Duration::from_millis(warmup_ms + measure_ms) + START_DELAY + CLIENT_SLACK;
    procs.wait_all(&waiters, run_for)?;
    procs.stop_all(&[nic, host], STOP_GRACE)?;
    gather(configs, out_dir, timeline, pids, placement)
}

fn spawn(procs: &mut Procs, name: &str, config: &RoleConfig, binary: &Path, placement: &Placement<'_>, pids: &mut Vec<(String, u32)>) -> Result<usize, TestbedError> {
    std::fs::create_dir_all(&config.out_dir).map_err(|e| TestbedError::io(&config.out_dir, "create", e))?;
    let config_path = config.out_dir.join("role.json");
    config.write(&config_path).map_err(|e| TestbedError::io(&config_path, "write", e))?;
    let mut command = match placement {
        Placement::Loopback => Command::new(binary),
        Placement::Namespaces(ns) => {
            let namespace = if matches!(config.role, Role::Client(_)) { &ns.client } else { &ns.server };
            Netns::command(namespace, binary)
        }
    };
    command.arg("--config").arg(&config_path);
    let index = procs.spawn(name, command, &config.out_dir.join("role.log"))?;
    pids.push((name.to_string(), procs.get(index).pid));
    Ok(index)
}

fn with_timeline(config: &RoleConfig, timeline: Timeline) -> RoleConfig {
    RoleConfig { timeline: TimelineSpec::Fixed(timeline), ..config.clone() }
}

fn ready_file(config: &RoleConfig, name: &str) -> PathBuf {
    config.out_dir.join(name)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TestbedError> {
    naam_roles::ready::write_atomic(path, value).map_err(|e| TestbedError::io(path, "write", e))
}

fn read_json<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> Result<T, TestbedError> {
    let bytes = std::fs::read(path).map_err(|e| TestbedError::io(path, "read", e))?;
    serde_json::from_slice(&bytes).map_err(|e| TestbedError::Output { path: path.to_path_buf(), message: e.to_string() })
}

/// Copies the clients' files, composes `server.json`, and keeps the steering records.
fn gather(configs: &PointConfigs, out_dir: &Path, timeline: Timeline, pids: Vec<(String, u32)>, placement: &Placement<'_>) -> Result<TestbedRecord, TestbedError> {
    for (k, client) in configs.clients.iter().enumerate() {
        for name in [raw::client_hlog_file(k as u32), raw::client_summary_file(k as u32)] {
            copy(&client.out_dir.join(&name), &out_dir.join(&name))?;
        }
    }
    for name in [raw::STEERING_FILE, raw::SAMPLES_FILE] {
        copy(&configs.host.out_dir.join(name), &out_dir.join(name))?;
    }
    let host: HostCounters = read_json(&configs.host.out_dir.join(naam_roles::host::COUNTERS_FILE))?;
    let nic: NicCounters = read_json(&configs.nic.out_dir.join(naam_roles::nic::COUNTERS_FILE))?;
    let policy = match &configs.host.role {
        Role::Host(h) => h.policy.clone(),
        _ => String::new(),
    };
    let server = ServerSummary { schema: raw::RAW_SCHEMA_VERSION, policy, host: host.host.clone(), nic: nic.nic.clone() };
    write_json(&out_dir.join(raw::SERVER_FILE), &server)?;
    let record = TestbedRecord {
        network: match placement {
            Placement::Loopback => "loopback".into(),
            Placement::Namespaces(_) => "netns".into(),
        },
        eswitch: host.eswitch.clone(),
        pids,
        start_realtime_ns: timeline.start_realtime_ns,
        rnic_reads: host.rnic.reads,
        steered: host.steered,
        nic_emulated: true,
    };
    write_json(&out_dir.join("testbed.json"), &record)?;
    Ok(record)
}

fn copy(from: &Path, to: &Path) -> Result<(), TestbedError> {
    std::fs::copy(from, to).map(drop).map_err(|e| TestbedError::Output { path: from.to_path_buf(), message: format!("a role did not write it: {e}") })
}
