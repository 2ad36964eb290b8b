//! One point on the local testbed: the point's launch plan over the local transport (one
//! process per role on this machine, or in network namespaces), then its raw files gathered.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use naam_launch::local::{LocalTransport, log_tail};
use naam_launch::netns::Netns;
use naam_launch::plan::{STDERR_LOG, validate_launches};
use naam_launch::record::{RunRecord, RunStatus, write_record};
use naam_launch::sequence::{self, SequenceConfig};
use naam_launch::{Cancel, binary::ROLE_BINARY_RELATIVE};
use naam_results::raw::{self, ServerSummary};
use naam_roles::host::HostCounters;
use naam_roles::nic::NicCounters;
use naam_types::PerLocation;
use serde::Serialize;

use crate::TestbedError;
use crate::configs::PointConfigs;
use crate::launches::{self, HOST_LAUNCH, Machines, NIC_LAUNCH};

/// Longest wait for a role to get ready (the host loads its dataset first).
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// Interval between readiness checks.
pub const READY_POLL: Duration = Duration::from_millis(10);
/// Time between publishing the common start and the start, for every client to set up.
pub const START_DELAY: Duration = Duration::from_millis(500);
/// Interval between liveness polls during warm-up and measurement.
pub const LIVENESS_POLL: Duration = Duration::from_millis(100);
/// Slack beyond warm-up + measured phase for clients to drain and write their files.
pub const CLIENT_SLACK: Duration = Duration::from_secs(30);
/// Grace between SIGTERM and SIGKILL for servers.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// The machine of the server roles (host, NIC, hog) on the local testbed.
pub const SERVER_MACHINE: &str = "server";
/// The machine of the clients on the local testbed.
pub const CLIENT_MACHINE: &str = "client";

/// Where the processes run.
#[derive(Debug)]
pub enum Placement {
    /// All on this machine's network stack.
    Loopback,
    /// The server machine and the clients in their own namespaces (deleted after the point).
    Namespaces(Netns),
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

/// Runs the point whose role configurations are `configs` with the role binary `role_binary`,
/// its roles' run directories under `<out_dir>/roles/`, and writes the raw files into `out_dir`.
pub fn run(
    configs: &PointConfigs,
    timing: (u64, u64),
    role_binary: &Path,
    placement: Placement,
    cancel: &Cancel,
    out_dir: &Path,
) -> Result<TestbedRecord, TestbedError> {
    let machines = Machines {
        host: SERVER_MACHINE.into(),
        nic: SERVER_MACHINE.into(),
        clients: vec![CLIENT_MACHINE.into(); configs.clients.len()],
    };
    let launches = launches::launches(configs, &machines).map_err(TestbedError::Unsupported)?;
    let launches = validate_launches(&launches, |_, _| Ok(()))
        .map_err(|e| TestbedError::Unsupported(e.to_string()))?;
    let root = out_dir.join(ROLES_DIR);
    let network = match placement {
        Placement::Loopback => "loopback",
        Placement::Namespaces(_) => "netns",
    };
    let mut transport = transport(&root, role_binary, placement);
    let config = sequence_config(&configs.host.run_id, timing, &root);
    let record = sequence::new_record(&launches, &config, 1, |l| {
        root.join(&l.id).display().to_string()
    });
    let record = sequence::run(&mut transport, launches, &config, record, cancel, &|_| {});
    write_record(&root, &record).map_err(|e| TestbedError::Output {
        path: root.join(naam_launch::record::RUN_RECORD_FILE),
        message: e.to_string(),
    })?;
    check_complete(&record)?;
    gather(configs, &record, network, &root, out_dir)
}

/// Folder of a point's role run directories (and the launch record `run.json`).
pub const ROLES_DIR: &str = "roles";

fn transport(root: &Path, role_binary: &Path, placement: Placement) -> LocalTransport {
    let local = LocalTransport::new(root.to_path_buf())
        .with_artifact(ROLE_BINARY_RELATIVE, role_binary.to_path_buf());
    match placement {
        Placement::Loopback => local,
        Placement::Namespaces(ns) => {
            let machines = BTreeMap::from([
                (SERVER_MACHINE.to_string(), ns.server.clone()),
                (CLIENT_MACHINE.to_string(), ns.client.clone()),
            ]);
            local.in_namespaces(ns, machines)
        }
    }
}

fn sequence_config(
    run_id: &str,
    (warmup_ms, measure_ms): (u64, u64),
    root: &Path,
) -> SequenceConfig {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    SequenceConfig {
        run_id: run_id.to_string(),
        warmup_ms,
        measure_ms,
        results_dir: root.to_path_buf(),
        start_lead_ms: ms(START_DELAY),
        ready_wait_ms: ms(READY_TIMEOUT),
        ready_poll_ms: ms(READY_POLL),
        liveness_poll_ms: ms(LIVENESS_POLL),
        exit_wait_ms: ms(CLIENT_SLACK),
        stop_grace_ms: ms(STOP_GRACE),
    }
}

/// A point whose run did not complete fails with what went wrong and the end of the logs of
/// the roles that had problems.
fn check_complete(record: &RunRecord) -> Result<(), TestbedError> {
    if record.status == RunStatus::Complete {
        return Ok(());
    }
    let mut message = format!("the point's run ended {:?}", record.status);
    if let Some(error) = &record.error {
        message.push_str(&format!(": {error}"));
    }
    for (id, launch) in &record.launches {
        if launch.problems.is_empty() && record.error.is_none() {
            continue;
        }
        for problem in &launch.problems {
            message.push_str(&format!("\n{id}: {problem}"));
        }
        let tail = log_tail(&PathBuf::from(&launch.run_dir).join(STDERR_LOG));
        if !tail.trim().is_empty() {
            message.push_str(&format!("\n{id}'s log ends with:\n{tail}"));
        }
    }
    Err(TestbedError::Run { message })
}

/// Gathers the raw files from the role folders and writes `testbed.json`.
fn gather(
    configs: &PointConfigs,
    record: &RunRecord,
    network: &str,
    root: &Path,
    out_dir: &Path,
) -> Result<TestbedRecord, TestbedError> {
    let dirs = RoleDirs {
        host: root.join(HOST_LAUNCH),
        nic: root.join(NIC_LAUNCH),
        clients: (0..configs.clients.len() as u32)
            .map(|k| root.join(launches::client_launch(k)))
            .collect(),
    };
    let policy = match &configs.host.role {
        naam_roles::Role::Host(h) => h.policy.name().to_string(),
        _ => String::new(),
    };
    let gathered = gather_raw(&dirs, &policy, out_dir)?;
    let pids = record
        .launches
        .iter()
        .filter_map(|(id, l)| l.pid.map(|pid| (id.clone(), pid)))
        .collect();
    let start_ns = record
        .start_at_unix_ns
        .and_then(|ns| u64::try_from(ns).ok())
        .unwrap_or(0);
    let testbed = TestbedRecord::new(network, pids, start_ns, &gathered);
    testbed.write(out_dir)?;
    Ok(testbed)
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
        refuse_stopped_client(k, &out_dir.join(raw::client_summary_file(k)))?;
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
        dropped: host.dropped.plus(&nic.dropped),
        load_samples_dropped: host.samples.dropped,
        steering_changes_dropped: host.steering.dropped,
        vm: Some(raw::PerLocationVm {
            host: host.vm.clone(),
            nic: nic.vm.clone(),
        }),
        host_cpu: host.cpu.clone(),
        system: Some(system_of(&nic).into()),
        ipipe: match (&nic.ipipe, &host.ipipe) {
            (Some(n), Some(h)) => Some(naam_roles::ipipe::merge(n, h)),
            (n, h) => n.clone().or_else(|| h.clone()),
        },
    };
    write_json(&out_dir.join(raw::SERVER_FILE), &server)?;
    Ok(Gathered { host, nic })
}

/// A client that a signal stopped before its measured phase ended (Ctrl-C reaching the roles)
/// fails the point, so the runner never seals it and a resume measures it again.
/// Which system served: the NIC says whether it ran iPipe, and with which isolation.
fn system_of(nic: &NicCounters) -> &'static str {
    match nic.ipipe.as_ref().map(|r| r.isolation.as_str()) {
        None => raw::SYSTEM_NAAM,
        Some("trusted") => raw::SYSTEM_IPIPE_TRUSTED,
        Some(_) => raw::SYSTEM_IPIPE_PROCESSES,
    }
}

fn refuse_stopped_client(k: u32, summary_path: &Path) -> Result<(), TestbedError> {
    let summary: raw::ClientSummary = read_json(summary_path)?;
    match summary.stopped_at_ms {
        None => Ok(()),
        Some(ms) => Err(TestbedError::Run {
            message: format!(
                "client {k} was stopped {ms} ms into its measured phase (a signal reached it); the point is measured again when the run resumes"
            ),
        }),
    }
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

fn copy(from: &Path, to: &Path) -> Result<(), TestbedError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| TestbedError::Output {
            path: from.to_path_buf(),
            message: format!("a role did not write it: {e}"),
        })
}
