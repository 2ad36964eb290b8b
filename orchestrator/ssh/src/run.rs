//! The run skeleton: deploy → start → warm-up → measure → collect → teardown, on real machines.
//!
//! The input is a list of [`LaunchSpec`]s — the seam with experiment plans
//! ([`crate::experiment`] makes them from a plan's point): which host, which role, which program
//! with which arguments, which files it gets before it starts, how to tell it is ready, how it is
//! expected to end, which files it leaves behind. The run:
//!
//! 1. **deploy** — connects to every host in parallel, measures its clock offset (refusing clocks
//!    beyond [`CLOCK_OFFSET_MS_MAX`] or known less precisely than [`CLOCK_ERROR_MS_MAX`] before
//!    anything starts) and deploys the artifacts (if any);
//! 2. **start** — starts the launches in dependency order (host, NIC, clients), each group only
//!    after the previous one passed its readiness checks; before a launch starts, its inputs are
//!    put in its run directory (bytes, or a file an earlier launch wrote, fetched and uploaded
//!    with checksums); measures every host's clock offset again; then fixes a common start time
//!    and hands it to each process in *that host's* clock (shifted by its offset) as two files:
//!    `start_at` (ns since the epoch, one line) and `timeline.json` (the `naam-role` timeline with
//!    warm-up and measurement) — the barrier every role waits on;
//! 3. **warm-up** and 4. **measure** — wait out the configured durations while polling every
//!    process; CPU time is sampled on every host at the start and end of the measurement;
//! 5. **collect** — waits for the launches that end by themselves, stops the servers by PID,
//!    fetches every declared output and both logs with their SHA-256 verified (see
//!    [`crate::collect`]);
//! 6. **teardown** — stops by PID anything still running; it also runs after a failure or Ctrl-C.
//!
//! A node lost during the run does not stop the others: its launches are marked unmeasured and the
//! run ends [`RunStatus::Partial`] with per-node coverage. Every phase boundary is a timestamped
//! [`PhaseEvent`], recorded in `run.json` and passed to an observer as it happens.
//!
//! Environment of every role process: `NAAM_RUN_ID`, `NAAM_LAUNCH_ID`, `NAAM_ROLE`,
//! `NAAM_START_FILE` (`start_at`, relative to its working directory, the run directory),
//! `NAAM_WARMUP_MS`, `NAAM_MEASURE_MS`, `NAAM_LAN_ADDRESS`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::command::{CommandError, RemoteCommand, ShellLine};
use crate::deploy::{self, ArtifactSet, HostDeployReport};
use crate::inventory::{HostSpec, Inventory, Role};
use crate::limits::{
    CLOCK_ERROR_MS_MAX, CLOCK_OFFSET_MS_MAX, CLOCK_SAMPLES, COMMAND_TIMEOUT_MS, EXIT_WAIT_MS_MAX,
    LAUNCH_INPUTS_MAX, LAUNCH_OUTPUTS_MAX, LAUNCHES_MAX, LIVENESS_POLL_INTERVAL_MS, PHASE_MS_MAX,
    READINESS_POLL_INTERVAL_MS, READINESS_POLLS_MAX, START_LEAD_MS, STOP_GRACE_MS,
    STOP_WAIT_MS_MAX,
};
use crate::process::{
    self, EXIT_STATUS_FILE, PID_FILE, ProcessState, RemoteProcess, STDERR_LOG, STDOUT_LOG,
};
use crate::ssh::{ConnectOptions, Connection, SshError};
use crate::telemetry::{self, ClockOffset, CpuTimes, CpuUsage};
use naam_roles::config::Timeline;

/// File (in each launch's run directory) holding the common start time in that host's clock.
pub const START_AT_FILE: &str = "start_at";
/// File (in each launch's run directory) holding the timeline as `naam-role` reads it: JSON of
/// `naam_roles::config::Timeline`, the start in that host's clock; written with `start_at`.
pub const TIMELINE_FILE: &str = "timeline.json";
/// Folder (in a launch's local results directory) keeping the inputs it was given.
pub const INPUTS_DIR: &str = "inputs";
/// How early (before the measurement's end, by our clock) a client may exit with status 0 and
/// still count as having run through the measurement.
pub const EXIT_TOLERANCE_MS: u64 = 1_000;
/// The run record, in the local results directory.
pub const RUN_RECORD_FILE: &str = "run.json";

/// Why a run could not be attempted (bad input, local IO). Failures *during* a run are not errors:
/// they end up in the [`RunRecord`] with status [`RunStatus::Failed`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A launch specification is not acceptable.
    #[error("launch {launch}: {reason}")]
    InvalidLaunch {
        /// The launch id.
        launch: String,
        /// What is wrong.
        reason: String,
    },
    /// The run configuration is not acceptable.
    #[error("run {run_id}: {reason}")]
    InvalidConfig {
        /// The run id.
        run_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A command could not be built from a launch's data.
    #[error("launch {launch}: {source}")]
    Command {
        /// The launch id.
        launch: String,
        /// Why.
        source: CommandError,
    },
    /// A local file of the results directory could not be read or written.
    #[error("results {path}: {message}")]
    Local {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// How to tell that a started process is ready for the next group to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready as soon as it runs.
    Running,
    /// Ready when this file (relative to its run directory) exists.
    FileExists(String),
    /// Ready when this command, run in its run directory, exits 0.
    Command(RemoteCommand),
}

/// How a launch's process is expected to end; an end that does not fit makes it unmeasured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ends {
    /// Runs until it is stopped (servers): ending by itself before that is a failure.
    WhenStopped,
    /// Exits 0 by itself once the measurement is over (clients).
    AfterMeasurement,
    /// Exits 0 by itself at any time after the start (a CPU hog with its own stop time).
    ByItself,
}

impl Ends {
    /// The usual expectation for a role: servers run until stopped, clients until the end.
    pub fn for_role(role: Role) -> Ends {
        match role {
            Role::Host | Role::Nic => Ends::WhenStopped,
            Role::Client => Ends::AfterMeasurement,
        }
    }
}

/// A file put into a launch's run directory before it starts (SHA-256 verified on arrival).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchInput {
    /// Bytes known before the run, e.g. a role configuration.
    Bytes {
        /// File name in the run directory.
        name: String,
        /// Its content.
        bytes: Vec<u8>,
    },
    /// A file that a launch of an earlier start group wrote in its run directory (e.g. the host's
    /// ready file, which the NIC and the clients read): fetched to this machine and uploaded.
    FromLaunch {
        /// The launch that wrote it.
        launch: String,
        /// File name, in both run directories.
        file: String,
    },
}

impl LaunchInput {
    /// The file name in the receiving run directory.
    pub fn name(&self) -> &str {
        match self {
            LaunchInput::Bytes { name, .. } => name,
            LaunchInput::FromLaunch { file, .. } => file,
        }
    }
}

/// One role process to run: the seam with experiment plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// Unique id; names its remote run directory and its local results directory.
    pub id: String,
    /// Inventory host it runs on.
    pub host: String,
    /// Its role (decides the start order).
    pub role: Role,
    /// Program and arguments. A relative program path with a `/` (`bin/naam-role`) is relative
    /// to the host's workdir; a bare name is looked up in the remote `PATH`.
    pub command: RemoteCommand,
    /// Readiness check.
    pub readiness: Readiness,
    /// Files it writes in its run directory, to collect (logs are always collected).
    pub outputs: Vec<String>,
    /// Files put into its run directory before it starts.
    pub inputs: Vec<LaunchInput>,
    /// How it is expected to end.
    pub ends: Ends,
}

impl LaunchSpec {
    /// A launch with readiness [`Readiness::Running`], no inputs or outputs, and the role's usual
    /// end ([`Ends::for_role`]).
    pub fn new(id: &str, host: &str, role: Role, command: RemoteCommand) -> LaunchSpec {
        LaunchSpec {
            id: id.to_string(),
            host: host.to_string(),
            role,
            command,
            readiness: Readiness::Running,
            outputs: Vec::new(),
            inputs: Vec::new(),
            ends: Ends::for_role(role),
        }
    }
    /// The same launch, ready when `file` exists in its run directory.
    pub fn ready_when(mut self, file: &str) -> LaunchSpec {
        self.readiness = Readiness::FileExists(file.to_string());
        self
    }

    /// The same launch, with these outputs added.
    pub fn with_outputs<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        outputs: I,
    ) -> LaunchSpec {
        self.outputs.extend(outputs.into_iter().map(Into::into));
        self
    }
}

/// Durations and places of one run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Run id; names the remote run directory (`<workdir>/runs/<run_id>/attempt-<n>/<launch>`).
    pub run_id: String,
    /// Warm-up, excluded from measurement.
    pub warmup_ms: u64,
    /// The measured interval.
    pub measure_ms: u64,
    /// Local directory for the run record and the collected files.
    pub results_dir: PathBuf,
    /// What to deploy first (`None`: nothing; the phase is still recorded).
    pub artifacts: Option<ArtifactSet>,
    /// Connection timeouts, retries, passphrase.
    pub connect: ConnectOptions,
    /// SIGTERM → SIGKILL grace per process.
    pub stop_grace_ms: u64,
    /// How long clients get to exit on their own after the measurement.
    pub exit_wait_ms: u64,
}

impl RunConfig {
    /// A configuration with default timeouts and nothing to deploy.
    pub fn new(run_id: &str, warmup_ms: u64, measure_ms: u64, results_dir: PathBuf) -> Self {
        RunConfig {
            run_id: run_id.to_string(),
            warmup_ms,
            measure_ms,
            results_dir,
            artifacts: None,
            connect: ConnectOptions::default(),
            stop_grace_ms: STOP_GRACE_MS,
            exit_wait_ms: EXIT_WAIT_MS_MAX,
        }
    }
}

/// The phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Connect and deploy artifacts.
    Deploy,
    /// Start role processes in dependency order; fix the common start time.
    Start,
    /// Warm-up (not measured).
    Warmup,
    /// The measured interval.
    Measure,
    /// Stop servers, fetch outputs and logs, verify checksums.
    Collect,
    /// Stop anything left; runs after failures too.
    Teardown,
}

/// Whether an event opens or closes a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// The phase began.
    Begin,
    /// The phase ended.
    End,
    /// Something noteworthy inside the phase (a lost node, a skipped step).
    Note,
}

/// A timestamped phase event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseEvent {
    /// The phase.
    pub phase: Phase,
    /// Begin, end or note.
    pub mark: Mark,
    /// Local wall clock, ns since the Unix epoch.
    pub at_unix_ns: i64,
    /// Free text (host names, errors).
    pub detail: String,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every launch measured, every file collected and verified.
    Complete,
    /// Some node or file is missing; see the coverage.
    Partial,
    /// The run could not proceed (deploy or start failed); it was torn down.
    Failed,
    /// Ctrl-C or SIGTERM; it was torn down.
    Cancelled,
}

/// What is known about one host after a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// CPU utilisation over the measurement.
    pub cpu: Option<CpuUsage>,
    /// Clock offset from the orchestrator.
    pub clock: Option<ClockOffset>,
    /// What the deployment did.
    pub deploy: Option<HostDeployReport>,
    /// Why the host was lost, if it was.
    pub lost: Option<String>,
    /// The workdir as an absolute path on the host (`pwd -P` after creating it).
    pub workdir: Option<String>,
}

/// One collected file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectedFile {
    /// Path relative to the launch's directory.
    pub name: String,
    /// SHA-256 (hex), equal on both sides.
    pub sha256: String,
    /// Size.
    pub bytes: u64,
}

/// What is known about one launch after a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRecord {
    /// Host it ran on.
    pub host: String,
    /// Its role.
    pub role: Role,
    /// Remote run directory.
    pub run_dir: String,
    /// PID of its wrapper (= process group), once started.
    pub pid: Option<u32>,
    /// Start time in ticks, for identity checks.
    pub start_ticks: Option<u64>,
    /// Whether it ran through the whole measurement.
    pub measured: bool,
    /// How it ended (`None` when it could not be observed).
    pub end: Option<EndState>,
    /// Problems seen (lost host, early exit, failed stop), in order.
    pub problems: Vec<String>,
    /// Files collected and verified.
    pub collected: Vec<CollectedFile>,
    /// Files expected (outputs and logs) that are not collected yet.
    pub missing: Vec<String>,
}

/// How a launch's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndState {
    /// Exited by itself with this status.
    Exited {
        /// The exit status.
        status: i32,
    },
    /// Stopped by SIGTERM.
    Terminated,
    /// Stopped by SIGKILL after the grace period.
    Killed,
    /// Disappeared without an exit status.
    Vanished,
}

/// Coverage of one node: how much of what it should have produced is here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCoverage {
    /// The host.
    pub host: String,
    /// Launches on it that ran through the measurement.
    pub launches_measured: usize,
    /// Launches on it.
    pub launches_total: usize,
    /// Files collected and verified.
    pub files_collected: usize,
    /// Files expected.
    pub files_expected: usize,
    /// Why it was lost, if it was.
    pub lost: Option<String>,
}

/// Everything recorded about a run: written to `run.json` in the results directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id.
    pub run_id: String,
    /// Attempt number (1 for the first; a rerun after a partial measurement makes a new one).
    pub attempt: u32,
    /// How it ended.
    pub status: RunStatus,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Common start time in the orchestrator's clock.
    pub start_at_unix_ns: Option<i64>,
    /// Warm-up duration.
    pub warmup_ms: u64,
    /// Measured duration.
    pub measure_ms: u64,
    /// Phase events in the order they happened.
    pub events: Vec<PhaseEvent>,
    /// Per host.
    pub hosts: BTreeMap<String, HostRecord>,
    /// Per launch.
    pub launches: BTreeMap<String, LaunchRecord>,
}

impl RunRecord {
    /// Per-node coverage, in host-name order.
    pub fn coverage(&self) -> Vec<NodeCoverage> {
        self.hosts
            .iter()
            .map(|(host, record)| {
                let launches: Vec<&LaunchRecord> =
                    self.launches.values().filter(|l| &l.host == host).collect();
                NodeCoverage {
                    host: host.clone(),
                    launches_measured: launches.iter().filter(|l| l.measured).count(),
                    launches_total: launches.len(),
                    files_collected: launches.iter().map(|l| l.collected.len()).sum(),
                    files_expected: launches
                        .iter()
                        .map(|l| l.collected.len() + l.missing.len())
                        .sum(),
                    lost: record.lost.clone(),
                }
            })
            .collect()
    }

    /// The phases in the order they began.
    pub fn phase_order(&self) -> Vec<Phase> {
        self.events
            .iter()
            .filter(|e| e.mark == Mark::Begin)
            .map(|e| e.phase)
            .collect()
    }
}

/// Receives every phase event as it happens (tests use it to act at a given moment).
pub type Observer<'a> = &'a (dyn Fn(&PhaseEvent) + Sync);

/// Checks launches against the inventory and the limits; returns them in start order
/// (host, NIC, client; stable within a role).
pub fn validate_launches(
    inventory: &Inventory,
    launches: &[LaunchSpec],
) -> Result<Vec<LaunchSpec>, RunError> {
    if launches.is_empty() || launches.len() > LAUNCHES_MAX {
        return Err(RunError::InvalidLaunch {
            launch: "*".into(),
            reason: format!("{} launches; expected 1..={LAUNCHES_MAX}", launches.len()),
        });
    }
    let mut ids = BTreeSet::new();
    for launch in launches {
        let invalid = |reason: String| RunError::InvalidLaunch {
            launch: launch.id.clone(),
            reason,
        };
        if !is_clean_name(&launch.id) {
            return Err(invalid("id must be [A-Za-z0-9][A-Za-z0-9._-]*".into()));
        }
        if !ids.insert(launch.id.as_str()) {
            return Err(invalid("id used twice".into()));
        }
        let host = inventory
            .host(&launch.host)
            .ok_or_else(|| invalid(format!("host {} is not in the inventory", launch.host)))?;
        if !host.has_role(launch.role) {
            return Err(invalid(format!(
                "host {} does not have role {} in the inventory",
                host.name, launch.role
            )));
        }
        if launch.outputs.len() > LAUNCH_OUTPUTS_MAX {
            return Err(invalid(format!(
                "{} outputs; at most {LAUNCH_OUTPUTS_MAX}",
                launch.outputs.len()
            )));
        }
        for output in &launch.outputs {
            check_output_name(output)
                .map_err(|reason| invalid(format!("output {output:?}: {reason}")))?;
        }
        check_inputs(launch, launches).map_err(invalid)?;
    }
    let mut ordered = launches.to_vec();
    ordered.sort_by_key(|launch| launch.role);
    Ok(ordered)
}

/// Inputs: at most [`LAUNCH_INPUTS_MAX`], clean distinct names, sources started in an earlier
/// group (so they are ready before this launch starts).
fn check_inputs(launch: &LaunchSpec, launches: &[LaunchSpec]) -> Result<(), String> {
    if launch.inputs.len() > LAUNCH_INPUTS_MAX {
        return Err(format!(
            "{} inputs; at most {LAUNCH_INPUTS_MAX}",
            launch.inputs.len()
        ));
    }
    let mut names = BTreeSet::new();
    for input in &launch.inputs {
        let name = input.name();
        check_output_name(name).map_err(|reason| format!("input {name:?}: {reason}"))?;
        if !names.insert(name) || launch.outputs.iter().any(|o| o == name) {
            return Err(format!(
                "input {name:?}: named twice (inputs and outputs share the run directory)"
            ));
        }
        if let LaunchInput::FromLaunch { launch: source, .. } = input {
            let source_role = launches.iter().find(|l| &l.id == source).map(|l| l.role);
            match source_role {
                None => return Err(format!("input {name:?}: launch {source} does not exist")),
                Some(role) if role >= launch.role => {
                    return Err(format!(
                        "input {name:?}: launch {source} ({role}) does not start before a {} launch",
                        launch.role
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

fn is_clean_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.len() <= 128
}

fn check_output_name(name: &str) -> Result<(), &'static str> {
    let reserved = [
        STDOUT_LOG,
        STDERR_LOG,
        PID_FILE,
        EXIT_STATUS_FILE,
        START_AT_FILE,
        TIMELINE_FILE,
    ];
    if reserved.contains(&name) {
        return Err("reserved name (the orchestrator's own files)");
    }
    if name.is_empty()
        || name.starts_with('/')
        || name
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err("must be a clean relative path");
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err("must not contain control characters or backslashes");
    }
    Ok(())
}

/// Every file collected for a launch: its outputs, then its two logs.
pub fn expected_files(launch: &LaunchSpec) -> Vec<String> {
    let mut files = launch.outputs.clone();
    files.push(STDOUT_LOG.into());
    files.push(STDERR_LOG.into());
    files
}

fn check_config(config: &RunConfig) -> Result<(), RunError> {
    let invalid = |reason: String| RunError::InvalidConfig {
        run_id: config.run_id.clone(),
        reason,
    };
    if !is_clean_name(&config.run_id) {
        return Err(invalid("run id must be [A-Za-z0-9][A-Za-z0-9._-]*".into()));
    }
    for (name, value) in [
        ("warmup_ms", config.warmup_ms),
        ("measure_ms", config.measure_ms),
    ] {
        if value > PHASE_MS_MAX {
            return Err(invalid(format!("{name} = {value} exceeds {PHASE_MS_MAX}")));
        }
    }
    if config.exit_wait_ms > STOP_WAIT_MS_MAX || config.stop_grace_ms > STOP_WAIT_MS_MAX {
        return Err(invalid(format!(
            "exit_wait_ms and stop_grace_ms must be at most {STOP_WAIT_MS_MAX}"
        )));
    }
    Ok(())
}

/// The remote run directory of a launch in a given attempt.
pub fn remote_run_dir(host: &HostSpec, run_id: &str, attempt: u32, launch_id: &str) -> String {
    format!(
        "{}/runs/{run_id}/attempt-{attempt}/{launch_id}",
        host.workdir
    )
}

/// State shared by the phases of one attempt.
pub(crate) struct Attempt<'a> {
    pub(crate) inventory: &'a Inventory,
    pub(crate) config: &'a RunConfig,
    pub(crate) launches: Vec<LaunchSpec>,
    pub(crate) record: RunRecord,
    pub(crate) connections: BTreeMap<String, Connection>,
    pub(crate) processes: BTreeMap<String, RemoteProcess>,
    measure_end_ns: Option<i64>,
    /// Launches seen ending before they should have.
    ended_early: BTreeSet<String>,
    observer: Observer<'a>,
    cancel: &'a Cancel,
}

/// Mode of an input file in a run directory.
const INPUT_FILE_MODE: i32 = 0o644;

/// Why an attempt stopped early.
enum Abort {
    Failed(String),
    Cancelled,
}

impl<'a> Attempt<'a> {
    pub(crate) fn new(
        inventory: &'a Inventory,
        config: &'a RunConfig,
        launches: Vec<LaunchSpec>,
        record: RunRecord,
        cancel: &'a Cancel,
        observer: Observer<'a>,
    ) -> Self {
        Attempt {
            inventory,
            config,
            launches,
            record,
            connections: BTreeMap::new(),
            processes: BTreeMap::new(),
            measure_end_ns: None,
            ended_early: BTreeSet::new(),
            observer,
            cancel,
        }
    }

    pub(crate) fn event(&mut self, phase: Phase, mark: Mark, detail: impl Into<String>) {
        let event = PhaseEvent {
            phase,
            mark,
            at_unix_ns: telemetry::unix_now_ns(),
            detail: detail.into(),
        };
        (self.observer)(&event);
        self.record.events.push(event);
    }

    /// Marks a host lost, and every launch on it unmeasured; drops its connection.
    pub(crate) fn lose_host(&mut self, phase: Phase, host: &str, why: &str) {
        self.connections.remove(host);
        let host_record = self.record.hosts.entry(host.to_string()).or_default();
        if host_record.lost.is_none() {
            host_record.lost = Some(format!("{phase:?}: {why}"));
        }
        for launch in self.record.launches.values_mut().filter(|l| l.host == host) {
            // Lost after the measurement ended, a launch keeps its measurement: only its files
            // are missing, and a rerun fetches them.
            if phase <= Phase::Measure {
                launch.measured = false;
            }
            launch
                .problems
                .push(format!("host lost during {phase:?}: {why}"));
        }
        self.event(phase, Mark::Note, format!("host {host} lost: {why}"));
    }

    fn check_cancel(&self) -> Result<(), Abort> {
        if self.cancel.is_cancelled() {
            Err(Abort::Cancelled)
        } else {
            Ok(())
        }
    }

    fn deploy_phase(&mut self) -> Result<(), Abort> {
        self.event(Phase::Deploy, Mark::Begin, "");
        let hosts: Vec<HostSpec> = self.used_hosts();
        for (host, result) in hosts
            .iter()
            .zip(crate::ssh::connect_all(&hosts, &self.config.connect))
        {
            match result {
                Ok(connection) => {
                    self.connections.insert(host.name.clone(), connection);
                }
                Err(err) => return Err(Abort::Failed(err.to_string())),
            }
        }
        self.resolve_workdirs()?;
        // Refuse unusable clocks before anything starts; measured again just before the start.
        self.measure_clocks()?;
        self.check_cancel()?;
        if let Some(artifacts) = &self.config.artifacts {
            let mut connections: Vec<Connection> = std::mem::take(&mut self.connections)
                .into_values()
                .collect();
            let results = deploy::deploy_all(&mut connections, artifacts);
            self.connections = connections
                .into_iter()
                .map(|c| (c.host().name.clone(), c))
                .collect();
            for result in results {
                match result {
                    Ok(report) => {
                        let detail = format!(
                            "{}: {} uploaded, {} unchanged",
                            report.host,
                            report.uploaded_count(),
                            report.files.len() - report.uploaded_count()
                        );
                        let host = report.host.clone();
                        self.record.hosts.entry(host).or_default().deploy = Some(report);
                        self.event(Phase::Deploy, Mark::Note, detail);
                    }
                    Err(err) => return Err(Abort::Failed(err.to_string())),
                }
            }
        }
        self.event(Phase::Deploy, Mark::End, "");
        Ok(())
    }

    /// Creates every host's workdir, records its absolute path, and makes the launches' run
    /// directories absolute (processes run inside them, so nothing may be relative to `~`).
    fn resolve_workdirs(&mut self) -> Result<(), Abort> {
        let results = for_each_host(&mut self.connections, |connection| {
            let workdir = connection.host().workdir.clone();
            let line = ShellLine::new()
                .op("mkdir -p")
                .text(&workdir)
                .and_then(|l| Ok(l.op("&& cd").text(&workdir)?.op("&& pwd -P")))
                .map_err(|source| SshError::Command {
                    login: connection.host().login(),
                    source,
                })?;
            Ok(connection
                .run_checked(&line, COMMAND_TIMEOUT_MS)?
                .stdout_text()
                .trim()
                .to_string())
        });
        for (host, result) in results {
            let absolute = result.map_err(|e| Abort::Failed(format!("workdir of {host}: {e}")))?;
            let spec = HostSpec {
                workdir: absolute.clone(),
                ..self.inventory.host(&host).expect("validated").clone()
            };
            let attempt = self.record.attempt;
            for (id, launch) in self
                .record
                .launches
                .iter_mut()
                .filter(|(_, l)| l.host == host)
            {
                launch.run_dir = remote_run_dir(&spec, &self.config.run_id, attempt, id);
            }
            self.record.hosts.entry(host).or_default().workdir = Some(absolute);
        }
        Ok(())
    }

    fn used_hosts(&self) -> Vec<HostSpec> {
        let names: BTreeSet<&str> = self.launches.iter().map(|l| l.host.as_str()).collect();
        self.inventory
            .hosts
            .iter()
            .filter(|h| names.contains(h.name.as_str()))
            .cloned()
            .collect()
    }

    fn start_phase(&mut self) -> Result<(), Abort> {
        self.event(Phase::Start, Mark::Begin, "");
        for role in Role::ALL {
            let group: Vec<LaunchSpec> = self
                .launches
                .iter()
                .filter(|l| l.role == role)
                .cloned()
                .collect();
            for launch in &group {
                self.check_cancel()?;
                self.place_inputs(launch)?;
                self.start_launch(launch)?;
            }
            for launch in &group {
                self.wait_ready(launch)?;
            }
        }
        self.measure_clocks()?;
        let budget_ns = self.publication_budget_ns()?;
        let start_at = telemetry::unix_now_ns() + ms_to_ns(START_LEAD_MS) + budget_ns;
        self.record.start_at_unix_ns = Some(start_at);
        // Known from now on: processes that end are judged against the planned end, by the
        // clock, however far the polling lags behind.
        self.measure_end_ns =
            Some(start_at + ms_to_ns(self.config.warmup_ms) + ms_to_ns(self.config.measure_ms));
        self.publish_start_time(start_at)?;
        let published_at = telemetry::unix_now_ns();
        if published_at > start_at {
            let late_ms = (published_at - start_at) / 1_000_000;
            // Late within the warm-up: the warm-up absorbs it. Later than that, some role learnt
            // the timeline only after the measured phase had begun: its window is cut short.
            if published_at > start_at + ms_to_ns(self.config.warmup_ms) {
                return Err(Abort::Failed(format!(
                    "start time published {late_ms} ms late, after the {} ms warm-up: measured windows would be cut short",
                    self.config.warmup_ms
                )));
            }
            self.event(
                Phase::Start,
                Mark::Note,
                format!("start time published {late_ms} ms late, within the warm-up"),
            );
        }
        self.event(
            Phase::Start,
            Mark::End,
            format!("start_at_unix_ns={start_at}"),
        );
        Ok(())
    }

    /// Puts a launch's inputs into its run directory, keeping a copy of each under
    /// `<results_dir>/<launch>/inputs/`.
    fn place_inputs(&mut self, launch: &LaunchSpec) -> Result<(), Abort> {
        if launch.inputs.is_empty() {
            return Ok(());
        }
        let local_dir = self.config.results_dir.join(&launch.id).join(INPUTS_DIR);
        std::fs::create_dir_all(&local_dir)
            .map_err(|e| Abort::Failed(format!("{}: {e}", local_dir.display())))?;
        let run_dir = self.record.launches[&launch.id].run_dir.clone();
        for input in &launch.inputs {
            let local = local_dir.join(input.name());
            match input {
                LaunchInput::Bytes { bytes, .. } => {
                    std::fs::write(&local, bytes)
                        .map_err(|e| Abort::Failed(format!("{}: {e}", local.display())))?;
                }
                LaunchInput::FromLaunch {
                    launch: source,
                    file,
                } => {
                    let source_record = &self.record.launches[source];
                    let (source_host, remote) = (
                        source_record.host.clone(),
                        format!("{}/{file}", source_record.run_dir),
                    );
                    let connection = self
                        .connections
                        .get_mut(&source_host)
                        .expect("connected in deploy");
                    crate::collect::fetch_verified(connection, &remote, &local, file).map_err(
                        |failure| {
                            Abort::Failed(format!(
                                "{}: input {file} from {source}: {}",
                                launch.id, failure.why
                            ))
                        },
                    )?;
                }
            }
            let connection = self
                .connections
                .get_mut(&launch.host)
                .expect("connected in deploy");
            let target = format!("{run_dir}/{}", input.name());
            deploy::upload_verified(connection, &local, &target, INPUT_FILE_MODE).map_err(|e| {
                Abort::Failed(format!("{}: input {}: {e}", launch.id, input.name()))
            })?;
            self.event(
                Phase::Start,
                Mark::Note,
                format!("{}: input {} placed", launch.id, input.name()),
            );
        }
        Ok(())
    }

    fn start_launch(&mut self, launch: &LaunchSpec) -> Result<(), Abort> {
        let host = self
            .inventory
            .host(&launch.host)
            .expect("validated")
            .clone();
        let run_dir = self.record.launches[&launch.id].run_dir.clone();
        let command = self
            .launch_command(launch, &host)
            .map_err(|e| Abort::Failed(e.to_string()))?;
        let connection = self
            .connections
            .get_mut(&launch.host)
            .expect("connected in deploy");
        let started = process::start(connection, &run_dir, &command)
            .map_err(|e| Abort::Failed(format!("start {}: {e}", launch.id)))?;
        let record = self.record.launches.get_mut(&launch.id).expect("created");
        record.pid = Some(started.pid);
        record.start_ticks = started.start_ticks;
        self.processes.insert(launch.id.clone(), started);
        self.event(
            Phase::Start,
            Mark::Note,
            format!("{} started on {}", launch.id, launch.host),
        );
        Ok(())
    }

    fn launch_command(
        &self,
        launch: &LaunchSpec,
        host: &HostSpec,
    ) -> Result<RemoteCommand, RunError> {
        let warmup = self.config.warmup_ms.to_string();
        let measure = self.config.measure_ms.to_string();
        let lan = host.lan_address.to_string();
        let env = [
            ("NAAM_RUN_ID", self.config.run_id.as_str()),
            ("NAAM_LAUNCH_ID", launch.id.as_str()),
            ("NAAM_ROLE", launch.role.as_str()),
            ("NAAM_START_FILE", START_AT_FILE),
            ("NAAM_WARMUP_MS", warmup.as_str()),
            ("NAAM_MEASURE_MS", measure.as_str()),
            ("NAAM_LAN_ADDRESS", lan.as_str()),
        ];
        let command_err = |source| RunError::Command {
            launch: launch.id.clone(),
            source,
        };
        let program = launch.command.program();
        let command = match &self
            .record
            .hosts
            .get(&host.name)
            .and_then(|h| h.workdir.clone())
        {
            Some(workdir) if program.contains('/') && !program.starts_with('/') => launch
                .command
                .with_program(format!("{workdir}/{program}"))
                .map_err(command_err)?,
            _ => launch.command.clone(),
        };
        command.with_env(env).map_err(command_err)
    }

    fn wait_ready(&mut self, launch: &LaunchSpec) -> Result<(), Abort> {
        let run_dir = self.record.launches[&launch.id].run_dir.clone();
        let check = readiness_line(&launch.readiness, &run_dir)
            .map_err(|e| Abort::Failed(format!("{}: {e}", launch.id)))?;
        let process = self.processes[&launch.id].clone();
        for _ in 0..READINESS_POLLS_MAX {
            self.check_cancel()?;
            let connection = self.connections.get_mut(&launch.host).expect("connected");
            let state =
                process::poll(connection, &process).map_err(|e| Abort::Failed(e.to_string()))?;
            if state != ProcessState::Running {
                return Err(Abort::Failed(format!(
                    "{} ended before it was ready: {state:?}",
                    launch.id
                )));
            }
            let ready = match &check {
                None => true,
                Some(line) => {
                    connection
                        .run(line, COMMAND_TIMEOUT_MS)
                        .map_err(|e| Abort::Failed(e.to_string()))?
                        .status
                        == 0
                }
            };
            if ready {
                self.event(Phase::Start, Mark::Note, format!("{} ready", launch.id));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(READINESS_POLL_INTERVAL_MS));
        }
        Err(Abort::Failed(format!(
            "{} not ready after {READINESS_POLLS_MAX} checks",
            launch.id
        )))
    }

    /// Measures every host's clock offset and refuses offsets beyond [`CLOCK_OFFSET_MS_MAX`] or
    /// known less precisely than [`CLOCK_ERROR_MS_MAX`]; within the bounds, each host's start
    /// time is shifted by its offset.
    fn measure_clocks(&mut self) -> Result<(), Abort> {
        let results = for_each_host(&mut self.connections, |connection| {
            telemetry::measure_clock_offset(connection, CLOCK_SAMPLES)
        });
        for (host, result) in results {
            let clock =
                result.map_err(|e| Abort::Failed(format!("clock offset of {host}: {e}")))?;
            self.record.hosts.entry(host.clone()).or_default().clock = Some(clock);
            check_clock(&host, &clock).map_err(Abort::Failed)?;
        }
        Ok(())
    }

    /// Time to allow for writing the start files: twice the slowest host's round trip of a
    /// remote command (measured now, in parallel), since every host gets one command.
    fn publication_budget_ns(&mut self) -> Result<i64, Abort> {
        let line = ShellLine::new().op("true");
        let results = for_each_host(&mut self.connections, |connection| {
            let started = Instant::now();
            connection.run_checked(&line, COMMAND_TIMEOUT_MS)?;
            Ok(started.elapsed())
        });
        let mut slowest = Duration::ZERO;
        for (host, result) in results {
            slowest = slowest
                .max(result.map_err(|e| Abort::Failed(format!("round trip to {host}: {e}")))?);
        }
        Ok(i64::try_from(slowest.as_nanos().saturating_mul(2)).unwrap_or(i64::MAX))
    }

    /// Writes every launch's start files, one command per host, all hosts at once; each host's
    /// start is `start_at` shifted by its clock offset.
    fn publish_start_time(&mut self, start_at: i64) -> Result<(), Abort> {
        let mut per_host: BTreeMap<String, Vec<(String, i64, String)>> = BTreeMap::new();
        for launch in &self.launches {
            let offset = self
                .record
                .hosts
                .get(&launch.host)
                .and_then(|h| h.clock)
                .map_or(0, |c| c.offset_ns);
            let remote_start = start_at + offset;
            let timeline = Timeline {
                start_realtime_ns: u64::try_from(remote_start).map_err(|_| {
                    Abort::Failed(format!("start time {remote_start} ns on {}", launch.host))
                })?,
                warmup_ms: self.config.warmup_ms,
                measure_ms: self.config.measure_ms,
            };
            let timeline_json =
                serde_json::to_string(&timeline).map_err(|e| Abort::Failed(e.to_string()))?;
            let run_dir = self.record.launches[&launch.id].run_dir.clone();
            per_host.entry(launch.host.clone()).or_default().push((
                run_dir,
                remote_start,
                timeline_json,
            ));
        }
        let results = for_each_host(&mut self.connections, |connection| {
            let Some(entries) = per_host.get(&connection.host().name) else {
                return Ok(());
            };
            let line = write_start_files_line(entries).map_err(|source| SshError::Command {
                login: connection.host().login(),
                source,
            })?;
            connection.run_checked(&line, COMMAND_TIMEOUT_MS).map(drop)
        });
        for (host, result) in results {
            result.map_err(|e| Abort::Failed(format!("start time on {host}: {e}")))?;
        }
        Ok(())
    }

    fn timed_phases(&mut self) -> Result<(), Abort> {
        let start_at = self.record.start_at_unix_ns.expect("set in start");
        self.sleep_until(start_at, None)?;
        self.event(Phase::Warmup, Mark::Begin, "");
        let measure_at = start_at + ms_to_ns(self.config.warmup_ms);
        self.sleep_until(measure_at, Some(Phase::Warmup))?;
        self.event(Phase::Warmup, Mark::End, "");
        self.event(Phase::Measure, Mark::Begin, "");
        let before = self.sample_cpu(Phase::Measure);
        let lost: BTreeSet<String> = self
            .record
            .hosts
            .iter()
            .filter(|(_, h)| h.lost.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for (id, launch) in self.record.launches.iter_mut() {
            // A process that already ended as expected (a client done by the clock while the
            // polling lagged) keeps its measurement; one that ended early does not.
            launch.measured = !self.ended_early.contains(id) && !lost.contains(&launch.host);
        }
        let end_at = measure_at + ms_to_ns(self.config.measure_ms);
        self.sleep_until(end_at, Some(Phase::Measure))?;
        let after = self.sample_cpu(Phase::Measure);
        for (host, before) in before {
            if let Some(after) = after.get(&host) {
                self.record.hosts.entry(host).or_default().cpu =
                    Some(CpuUsage::between(before, *after));
            }
        }
        self.event(Phase::Measure, Mark::End, "");
        Ok(())
    }

    /// Sleeps until `until_ns` (local clock), polling every process meanwhile when `watch` names
    /// the phase being watched.
    fn sleep_until(&mut self, until_ns: i64, watch: Option<Phase>) -> Result<(), Abort> {
        loop {
            self.check_cancel()?;
            let now = telemetry::unix_now_ns();
            if now >= until_ns {
                return Ok(());
            }
            let poll_started = Instant::now();
            if let Some(phase) = watch {
                self.poll_all(phase);
            }
            let left_ms =
                u64::try_from((until_ns - telemetry::unix_now_ns()) / 1_000_000).unwrap_or(0);
            let interval = Duration::from_millis(LIVENESS_POLL_INTERVAL_MS)
                .saturating_sub(poll_started.elapsed());
            std::thread::sleep(interval.min(Duration::from_millis(left_ms.max(1))));
        }
    }

    /// Polls every process of every reachable host; marks early exits and lost hosts.
    fn poll_all(&mut self, phase: Phase) {
        let hosts: Vec<String> = self.connections.keys().cloned().collect();
        for host in hosts {
            let ids: Vec<String> = self
                .launches
                .iter()
                .filter(|l| l.host == host)
                .map(|l| l.id.clone())
                .collect();
            for id in ids {
                let Some(process) = self.processes.get(&id).cloned() else {
                    continue;
                };
                if self.record.launches[&id].end.is_some() {
                    continue;
                }
                let Some(connection) = self.connections.get_mut(&host) else {
                    break;
                };
                match poll_with_reconnect(connection, &process) {
                    Ok(ProcessState::Running) => {}
                    Ok(state) => {
                        let on_time = self.ended_on_time(&id, state);
                        let record = self.record.launches.get_mut(&id).expect("created");
                        record.end = Some(end_state(state));
                        if on_time {
                            continue;
                        }
                        record.measured = false;
                        record
                            .problems
                            .push(format!("ended during {phase:?}: {state:?}"));
                        self.ended_early.insert(id.clone());
                        self.event(phase, Mark::Note, format!("{id} ended early: {state:?}"));
                    }
                    Err(err) => {
                        self.lose_host(phase, &host, &err.to_string());
                        break;
                    }
                }
            }
        }
    }

    /// Whether a process that ended was a client finishing its own measurement: exit status 0,
    /// seen no earlier than [`EXIT_TOLERANCE_MS`] before the measurement's end (its timer runs on
    /// its host's clock, which differs from ours by the measured offset's error).
    fn ended_on_time(&self, id: &str, state: ProcessState) -> bool {
        let ends = self
            .launches
            .iter()
            .find(|l| l.id == id)
            .map_or(Ends::WhenStopped, |l| l.ends);
        let end_at = self.measure_end_ns.unwrap_or(i64::MAX);
        let near_end =
            telemetry::unix_now_ns() >= end_at.saturating_sub(ms_to_ns(EXIT_TOLERANCE_MS));
        let exited_ok = state == (ProcessState::Exited { status: 0 });
        match ends {
            Ends::WhenStopped => false,
            Ends::AfterMeasurement => exited_ok && near_end,
            Ends::ByItself => exited_ok,
        }
    }

    fn sample_cpu(&mut self, phase: Phase) -> BTreeMap<String, CpuTimes> {
        let mut samples = BTreeMap::new();
        for (host, result) in for_each_host(&mut self.connections, telemetry::sample_cpu) {
            match result {
                Ok(times) => {
                    samples.insert(host, times);
                }
                Err(err) => self.lose_host(phase, &host, &err.to_string()),
            }
        }
        samples
    }

    /// Stops every process not known to have ended, clients first, then NIC, then host.
    pub(crate) fn stop_all(&mut self, phase: Phase) {
        let mut order = self.launches.clone();
        order.reverse();
        for launch in order {
            let Some(process) = self.processes.get(&launch.id).cloned() else {
                continue;
            };
            if self.record.launches[&launch.id].end.is_some() {
                continue;
            }
            let Some(connection) = self.connections.get_mut(&launch.host) else {
                let record = self.record.launches.get_mut(&launch.id).expect("created");
                record.problems.push(format!(
                    "not stopped during {phase:?}: host {} unreachable",
                    launch.host
                ));
                continue;
            };
            match process::stop(connection, &process, self.config.stop_grace_ms) {
                Ok(outcome) => {
                    let end = match outcome {
                        process::StopOutcome::AlreadyEnded(state) => end_state(state),
                        process::StopOutcome::Terminated => EndState::Terminated,
                        process::StopOutcome::Killed => EndState::Killed,
                    };
                    self.record
                        .launches
                        .get_mut(&launch.id)
                        .expect("created")
                        .end = Some(end);
                    self.event(phase, Mark::Note, format!("{} stopped: {end:?}", launch.id));
                }
                Err(err) => {
                    let record = self.record.launches.get_mut(&launch.id).expect("created");
                    record
                        .problems
                        .push(format!("stop failed during {phase:?}: {err}"));
                    if err.is_transient() {
                        self.lose_host(phase, &launch.host, &err.to_string());
                    }
                }
            }
        }
    }

    /// Waits (bounded) for every launch that ends by itself (clients, a hog) to exit.
    pub(crate) fn wait_for_clients(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(self.config.exit_wait_ms);
        let clients: Vec<LaunchSpec> = self
            .launches
            .iter()
            .filter(|l| l.ends != Ends::WhenStopped)
            .cloned()
            .collect();
        for launch in clients {
            let Some(process) = self.processes.get(&launch.id).cloned() else {
                continue;
            };
            if self.record.launches[&launch.id].end.is_some() {
                continue;
            }
            let Some(connection) = self.connections.get_mut(&launch.host) else {
                continue;
            };
            let left_ms = u64::try_from(
                deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis(),
            )
            .unwrap_or(0);
            match process::wait_until_ended(connection, &process, left_ms) {
                Ok(true) => {
                    if let Ok(state) = process::poll(connection, &process) {
                        let record = self.record.launches.get_mut(&launch.id).expect("created");
                        record.end = Some(end_state(state));
                        if state != (ProcessState::Exited { status: 0 }) {
                            record.measured = false;
                            record.problems.push(format!("client ended with {state:?}"));
                        }
                    }
                }
                Ok(false) => {}
                Err(err) => self.lose_host(Phase::Collect, &launch.host, &err.to_string()),
            }
        }
    }
}

/// Refuses a clock too far off ours, or whose offset is known too imprecisely to shift by.
pub fn check_clock(host: &str, clock: &ClockOffset) -> Result<(), String> {
    let offset_ms = clock.offset_ns.unsigned_abs() / 1_000_000;
    if offset_ms > CLOCK_OFFSET_MS_MAX {
        return Err(format!(
            "clock of {host} is {offset_ms} ms off this machine's (at most {CLOCK_OFFSET_MS_MAX} ms is shifted for): \
             synchronise the clocks (chrony or NTP) and run again"
        ));
    }
    let error_ms = clock.error_bound_ns() / 1_000_000;
    if error_ms > CLOCK_ERROR_MS_MAX {
        return Err(format!(
            "clock offset of {host} is known only within ±{error_ms} ms (at most {CLOCK_ERROR_MS_MAX} ms): the SSH round \
             trip is too long; run the orchestrator closer to the machines (e.g. on a node of the experiment)"
        ));
    }
    Ok(())
}

fn end_state(state: ProcessState) -> EndState {
    match state {
        ProcessState::Running => EndState::Vanished,
        ProcessState::Exited { status } => EndState::Exited { status },
        ProcessState::Vanished => EndState::Vanished,
    }
}

fn ms_to_ns(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}

/// Polls once; on a transport failure reconnects (with the connection's bounded retries) and
/// polls again.
fn poll_with_reconnect(
    connection: &mut Connection,
    process: &RemoteProcess,
) -> Result<ProcessState, SshError> {
    match process::poll(connection, process) {
        Err(err) if err.is_transient() => {
            connection.reconnect()?;
            process::poll(connection, process)
        }
        other => other,
    }
}

/// Runs `op` on every connection at once (one thread per host); results by host name.
pub(crate) fn for_each_host<T: Send>(
    connections: &mut BTreeMap<String, Connection>,
    op: impl Fn(&mut Connection) -> Result<T, SshError> + Sync,
) -> Vec<(String, Result<T, SshError>)> {
    let op = &op;
    std::thread::scope(|scope| {
        let handles: Vec<_> = connections
            .iter_mut()
            .map(|(name, connection)| (name.clone(), scope.spawn(move || op(connection))))
            .collect();
        handles
            .into_iter()
            .map(|(name, handle)| {
                let result = handle.join().unwrap_or_else(|_| {
                    Err(SshError::Protocol {
                        login: name.clone(),
                        operation: "host thread",
                        message: "panicked".into(),
                    })
                });
                (name, result)
            })
            .collect()
    })
}

fn readiness_line(readiness: &Readiness, run_dir: &str) -> Result<Option<ShellLine>, CommandError> {
    Ok(match readiness {
        Readiness::Running => None,
        Readiness::FileExists(file) => Some(
            ShellLine::new()
                .op("cd")
                .text(run_dir)?
                .op("&& test -e")
                .text(file)?,
        ),
        Readiness::Command(command) => Some(
            ShellLine::new()
                .op("cd")
                .text(run_dir)?
                .op("&&")
                .command(command),
        ),
    })
}

/// Writes `start_at` and `timeline.json` in each run directory `(run_dir, start_at, timeline)`,
/// each atomically (temporary name, then rename), `timeline.json` first so a role that sees
/// `start_at` also finds its timeline.
fn write_start_files_line(entries: &[(String, i64, String)]) -> Result<ShellLine, CommandError> {
    let mut line = ShellLine::new().op("true");
    for (run_dir, start_at, timeline_json) in entries {
        line = line.op("&& cd").text(run_dir)?;
        for (file, value) in [
            (TIMELINE_FILE, timeline_json.clone()),
            (START_AT_FILE, start_at.to_string()),
        ] {
            let tmp = format!("{file}.tmp");
            line = line
                .op("&& printf '%s\\n'")
                .text(&value)?
                .op(">")
                .text(&tmp)?
                .op("&& mv -f")
                .text(&tmp)?
                .text(file)?;
        }
    }
    Ok(line)
}

/// Runs (or resumes) a run: see the module documentation. Returns the record also written to
/// `<results_dir>/run.json`. `Err` only for bad input or local IO; failures on the machines are
/// in the record.
pub fn run(
    inventory: &Inventory,
    launches: &[LaunchSpec],
    config: &RunConfig,
    cancel: &Cancel,
    observer: Observer<'_>,
) -> Result<RunRecord, RunError> {
    check_config(config)?;
    let launches = validate_launches(inventory, launches)?;
    let previous = crate::collect::read_record(&config.results_dir)?;
    if let Some(previous) = &previous {
        let ids_before: BTreeSet<&String> = previous.launches.keys().collect();
        let ids_now: BTreeSet<&String> = launches.iter().map(|l| &l.id).collect();
        if previous.run_id != config.run_id || ids_before != ids_now {
            return Err(RunError::InvalidConfig {
                run_id: config.run_id.clone(),
                reason: format!(
                    "{} holds run {} with other launches; use another results directory",
                    config.results_dir.display(),
                    previous.run_id
                ),
            });
        }
    }
    let attempt = match &previous {
        Some(previous) if previous.status == RunStatus::Complete => {
            let event = PhaseEvent {
                phase: Phase::Collect,
                mark: Mark::Note,
                at_unix_ns: telemetry::unix_now_ns(),
                detail: "already complete: nothing to do".into(),
            };
            observer(&event);
            return Ok(previous.clone());
        }
        Some(previous) if crate::collect::collect_only_resumable(previous) => {
            return crate::collect::resume_collect(
                inventory,
                &launches,
                config,
                previous.clone(),
                cancel,
                observer,
            );
        }
        Some(previous) => crate::collect::archive_attempt(&config.results_dir, previous)? + 1,
        None => 1,
    };
    let record = new_record(inventory, &launches, config, attempt);
    let mut run = Attempt::new(inventory, config, launches, record, cancel, observer);
    let outcome = run
        .deploy_phase()
        .and_then(|()| run.start_phase())
        .and_then(|()| run.timed_phases());
    match outcome {
        Ok(()) => crate::collect::collect_phase(&mut run),
        Err(abort) => {
            run.record.error = Some(match &abort {
                Abort::Failed(why) => why.clone(),
                Abort::Cancelled => "cancelled (Ctrl-C or SIGTERM)".into(),
            });
            run.record.status = match abort {
                Abort::Failed(_) => RunStatus::Failed,
                Abort::Cancelled => RunStatus::Cancelled,
            };
            for launch in run.record.launches.values_mut() {
                launch.measured = false;
            }
        }
    }
    run.event(Phase::Teardown, Mark::Begin, "");
    run.stop_all(Phase::Teardown);
    if matches!(run.record.status, RunStatus::Failed | RunStatus::Cancelled) {
        crate::collect::fetch_all(&mut run);
    }
    run.event(Phase::Teardown, Mark::End, "");
    if run.record.status == RunStatus::Complete || run.record.status == RunStatus::Partial {
        run.record.status = crate::collect::status_of(&run.record);
    }
    crate::collect::write_record(&config.results_dir, &run.record)?;
    Ok(run.record)
}

fn new_record(
    inventory: &Inventory,
    launches: &[LaunchSpec],
    config: &RunConfig,
    attempt: u32,
) -> RunRecord {
    let mut hosts = BTreeMap::new();
    let mut records = BTreeMap::new();
    for launch in launches {
        let host = inventory.host(&launch.host).expect("validated");
        hosts
            .entry(host.name.clone())
            .or_insert_with(HostRecord::default);
        records.insert(
            launch.id.clone(),
            LaunchRecord {
                host: host.name.clone(),
                role: launch.role,
                run_dir: remote_run_dir(host, &config.run_id, attempt, &launch.id),
                pid: None,
                start_ticks: None,
                measured: false,
                end: None,
                problems: Vec::new(),
                collected: Vec::new(),
                missing: expected_files(launch),
            },
        );
    }
    RunRecord {
        run_id: config.run_id.clone(),
        attempt,
        status: RunStatus::Complete,
        error: None,
        start_at_unix_ns: None,
        warmup_ms: config.warmup_ms,
        measure_ms: config.measure_ms,
        events: Vec::new(),
        hosts,
        launches: records,
    }
}
