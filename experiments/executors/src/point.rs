//! One point on the local testbed: spawn, synchronise, wait, stop, gather.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use naam_results::raw::{self, ServerSummary};
use naam_roles::config::{Role, RoleConfig, Timeline, TimelineSpec};
use naam_roles::host::HostCounters;
use naam_roles::nic::NicCounters;
use naam_types::PerLocation;
use serde::Serialize;

use crate::TestbedError;
use crate::configs::PointConfigs;
use naam_launch::netns::Netns;
use naam_launch::procs::Procs;

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
    /// `loopback`, `netns` or `ssh` (the orchestrator).
    pub network: String,
    /// `kernel` or `user`.
    pub eswitch: String,
    /// PIDs of the roles, by name.
    pub pids: Vec<(String, u32)>,
    /// The common start (CLOCK_REALTIME ns).
    pub start_realtime_ns: u64,
    /// The emulated RNIC's reads.
    pub rnic_reads: u64,
    /// Datagrams the eSwitch steered to each location.
    pub steered: PerLocation<u64>,
    /// Always true so far: the NIC role is the emulated NIC process (on real machines too, it
    /// reaches host memory through the shared-memory path), not BlueField-2 offload code.
    pub nic_emulated: bool,
}

/// Runs the point whose role configurations are `configs`, writing the raw files into `out_dir`.
pub fn run(
    configs: &PointConfigs,
    warmup_ms: u64,
    measure_ms: u64,
    role_binary: &Path,
    placement: &Placement<'_>,
    out_dir: &Path,
) -> Result<TestbedRecord, TestbedError> {
    if configs.timeline_file.exists() {
        std::fs::remove_file(&configs.timeline_file)
            .map_err(|e| TestbedError::io(&configs.timeline_file, "clear", e))?;
    }
    let mut procs = Procs::default();
    let mut pids = Vec::new();
    let host = spawn(
        &mut procs,
        "host",
        &configs.host,
        role_binary,
        placement,
        &mut pids,
    )?;
    procs.wait_for_file(
        host,
        &ready_file(&configs.host, naam_roles::host::READY_FILE),
        HOST_READY_TIMEOUT,
    )?;
    let nic = spawn(
        &mut procs,
        "nic",
        &configs.nic,
        role_binary,
        placement,
        &mut pids,
    )?;
    procs.wait_for_file(
        nic,
        &ready_file(&configs.nic, naam_roles::nic::READY_FILE),
        NIC_READY_TIMEOUT,
    )?;
    let timeline = Timeline {
        start_realtime_ns: naam_roles::os::realtime_ns() + START_DELAY.as_nanos() as u64,
        warmup_ms,
        measure_ms,
    };
    write_json(&configs.timeline_file, &timeline)?;
    let mut waiters = Vec::new();
    for (k, client) in configs.clients.iter().enumerate() {
        let fixed = with_timeline(client, timeline);
        waiters.push(spawn(
            &mut procs,
            &format!("client-{k}"),
            &fixed,
            role_binary,
            placement,
            &mut pids,
        )?);
    }
    if let Some(hog) = &configs.hog {
        waiters.push(spawn(
            &mut procs,
            "hog",
            &with_timeline(hog, timeline),
            role_binary,
            placement,
            &mut pids,
        )?);
    }
    let run_for = Duration::from_millis(warmup_ms + measure_ms) + START_DELAY + CLIENT_SLACK;
    procs.wait_all(&waiters, run_for)?;
    procs.stop_all(&[nic, host], STOP_GRACE)?;
    gather(configs, out_dir, timeline, pids, placement)
}

fn spawn(
    procs: &mut Procs,
    name: &str,
    config: &RoleConfig,
    binary: &Path,
    placement: &Placement<'_>,
    pids: &mut Vec<(String, u32)>,
) -> Result<usize, TestbedError> {
    // A fresh folder: a ready file left by an earlier run must not pass for this run's.
    if config.out_dir.exists() {
        std::fs::remove_dir_all(&config.out_dir)
            .map_err(|e| TestbedError::io(&config.out_dir, "clear", e))?;
    }
    std::fs::create_dir_all(&config.out_dir)
        .map_err(|e| TestbedError::io(&config.out_dir, "create", e))?;
    let config_path = config.out_dir.join("role.json");
    config
        .write(&config_path)
        .map_err(|e| TestbedError::io(&config_path, "write", e))?;
    let mut command = match placement {
        Placement::Loopback => Command::new(binary),
        Placement::Namespaces(ns) => {
            let namespace = if matches!(config.role, Role::Client(_)) {
                &ns.client
            } else {
                &ns.server
            };
            Netns::command(namespace, binary)
        }
    };
    command.arg("--config").arg(&config_path);
    let index = procs.spawn(name, command, &config.out_dir.join("role.log"))?;
    pids.push((name.to_string(), procs.get(index).pid));
    Ok(index)
}

fn with_timeline(config: &RoleConfig, timeline: Timeline) -> RoleConfig {
    RoleConfig {
        timeline: TimelineSpec::Fixed(timeline),
        ..config.clone()
    }
}

fn ready_file(config: &RoleConfig, name: &str) -> PathBuf {
    config.out_dir.join(name)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TestbedError> {
    naam_roles::ready::write_atomic(path, value).map_err(|e| TestbedError::io(path, "write", e))
}

fn read_json<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> Result<T, TestbedError> {
    let bytes = std::fs::read(path).map_err(|e| TestbedError::io(path, "read", e))?;
    serde_json::from_slice(&bytes).map_err(|e| TestbedError::Output {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Where the files of each role of a point are, on this machine: the role folders of the local
/// testbed, or the folders the orchestrator collected them into.
#[derive(Debug, Clone)]
pub struct RoleDirs {
    /// The host's folder (`host.counters.json`, `steering.jsonl`, `samples.jsonl`).
    pub host: PathBuf,
    /// The NIC's folder (`nic.counters.json`).
    pub nic: PathBuf,
    /// Client `k`'s folder at index `k` (`client-<k>.hlog`, `client-<k>.json`).
    pub clients: Vec<PathBuf>,
}

/// The servers' counters read while gathering, for the testbed's own record.
#[derive(Debug, Clone)]
pub struct Gathered {
    /// `host.counters.json`.
    pub host: HostCounters,
    /// `nic.counters.json`.
    pub nic: NicCounters,
}

/// Gathers a point's raw files into `out_dir` in the schema of `naam_results::raw`: copies the
/// clients' interval logs and summaries and the host's steering records and samples, and
/// composes `server.json` from the host's and the NIC's counters under `policy`. Shared by the
/// local testbed and the orchestrator, so both write the same files.
pub fn gather_raw(dirs: &RoleDirs, policy: &str, out_dir: &Path) -> Result<Gathered, TestbedError> {
    for (k, client_dir) in dirs.clients.iter().enumerate() {
        let k =
            u32::try_from(k).map_err(|_| TestbedError::Unsupported(format!("client index {k}")))?;
        for name in [raw::client_hlog_file(k), raw::client_summary_file(k)] {
            copy(&client_dir.join(&name), &out_dir.join(&name))?;
        }
    }
    for name in [raw::STEERING_FILE, raw::SAMPLES_FILE] {
        copy(&dirs.host.join(name), &out_dir.join(name))?;
    }
    let host: HostCounters = read_json(&dirs.host.join(naam_roles::host::COUNTERS_FILE))?;
    let nic: NicCounters = read_json(&dirs.nic.join(naam_roles::nic::COUNTERS_FILE))?;
    let server = ServerSummary {
        schema: raw::RAW_SCHEMA_VERSION,
        policy: policy.to_string(),
        host: host.host.clone(),
        nic: nic.nic.clone(),
    };
    write_json(&out_dir.join(raw::SERVER_FILE), &server)?;
    Ok(Gathered { host, nic })
}

impl TestbedRecord {
    /// The record of a point whose servers reported `gathered`; `network` names how the
    /// machines were joined (`loopback`, `netns`, `ssh`).
    pub fn new(
        network: &str,
        pids: Vec<(String, u32)>,
        start_realtime_ns: u64,
        gathered: &Gathered,
    ) -> TestbedRecord {
        TestbedRecord {
            network: network.to_string(),
            eswitch: gathered.host.eswitch.clone(),
            pids,
            start_realtime_ns,
            rnic_reads: gathered.host.rnic.reads,
            steered: gathered.host.steered.into(),
            nic_emulated: true,
        }
    }

    /// Writes it as `testbed.json` into a point's folder.
    pub fn write(&self, out_dir: &Path) -> Result<(), TestbedError> {
        write_json(&out_dir.join(TESTBED_FILE), self)
    }
}

/// The testbed's record in a point's folder.
pub const TESTBED_FILE: &str = "testbed.json";

/// Copies the clients' files, composes `server.json`, and keeps the steering records.
fn gather(
    configs: &PointConfigs,
    out_dir: &Path,
    timeline: Timeline,
    pids: Vec<(String, u32)>,
    placement: &Placement<'_>,
) -> Result<TestbedRecord, TestbedError> {
    let dirs = RoleDirs {
        host: configs.host.out_dir.clone(),
        nic: configs.nic.out_dir.clone(),
        clients: configs.clients.iter().map(|c| c.out_dir.clone()).collect(),
    };
    let policy = match &configs.host.role {
        Role::Host(h) => h.policy.name().to_string(),
        _ => String::new(),
    };
    let gathered = gather_raw(&dirs, &policy, out_dir)?;
    let network = match placement {
        Placement::Loopback => "loopback",
        Placement::Namespaces(_) => "netns",
    };
    let record = TestbedRecord::new(network, pids, timeline.start_realtime_ns, &gathered);
    record.write(out_dir)?;
    Ok(record)
}

fn copy(from: &Path, to: &Path) -> Result<(), TestbedError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| TestbedError::Output {
            path: from.to_path_buf(),
            message: format!("a role did not write it: {e}"),
        })
}
