//! The seam between the launch sequence and the machines: every effect the sequence has goes
//! through a [`Transport`]. Local processes ([`crate::local`]), network namespaces (the same,
//! with a namespace per machine), SSH (naam-ssh) and a recording ([`crate::recording`])
//! implement it; the sequence ([`crate::sequence`]) is written once, over it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::plan::{LaunchSpec, Readiness};
use crate::record::{CollectedFile, CpuTimes, LaunchRecord, PhaseEvent, RunRecord};

/// What a poll saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Still running (same PID and start time).
    Running,
    /// Exited and recorded its exit status.
    Exited {
        /// The command's exit status.
        status: i32,
    },
    /// Gone without an exit status: killed by a signal, or the machine rebooted.
    Vanished,
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// It had already ended before the stop.
    AlreadyEnded(ProcessState),
    /// It ended after SIGTERM.
    Terminated,
    /// It ended after SIGTERM, but with a non-zero exit status (it failed while shutting down,
    /// e.g. could not write its counters).
    TerminatedWithError {
        /// Its exit status.
        status: i32,
    },
    /// It ended only after SIGKILL.
    Killed,
}

/// A started process: its PID (= its process group) and, where known, its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    /// PID of the process, which leads its own process group.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22), for identity checks.
    pub start_ticks: Option<u64>,
}

/// A transport operation that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    /// What went wrong, with the machine, file or command it concerns.
    pub message: String,
    /// The machine stopped answering (a network failure, not a refusal): the run goes on
    /// without it and records it as lost.
    pub machine_lost: bool,
}

impl TransportError {
    /// A failure of one operation; the machine still answers.
    pub fn failed(message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            machine_lost: false,
        }
    }

    /// The machine stopped answering.
    pub fn lost(message: impl Into<String>) -> TransportError {
        TransportError {
            message: message.into(),
            machine_lost: true,
        }
    }
}

/// One file fetch: `(launch id, file name, outcome)`.
pub type FetchResult = (String, String, Result<CollectedFile, TransportError>);

/// Files to fetch, per machine: `(launch id, run directory, file names)`.
pub type FetchJobs = BTreeMap<String, Vec<(String, String, Vec<String>)>>;

/// Where and how role processes run. Operations on a machine the sequence lost
/// ([`Transport::lose`]) are not asked for until [`Transport::reconnect`] succeeds.
pub trait Transport {
    /// `local`, `netns`, `ssh` or `recording`.
    fn kind(&self) -> &'static str;

    /// Reaches every machine in `record.hosts` and settles each launch's run directory in
    /// `record.launches` (and the machines' workdirs).
    fn reach(&mut self, record: &mut RunRecord) -> Result<(), String>;

    /// Puts the artifacts (the role binary) on every machine, noting what was done.
    fn deploy(
        &mut self,
        record: &mut RunRecord,
        note: &mut dyn FnMut(String),
    ) -> Result<(), String>;

    /// Measures every reachable machine's clock offset into `record.hosts`, refusing one the run
    /// cannot shift for.
    fn measure_clocks(&mut self, record: &mut RunRecord) -> Result<(), String>;

    /// Time to allow for publishing the start time to every machine (ns).
    fn publication_budget_ns(&mut self) -> Result<i64, String>;

    /// Copies the local file `local` into `run_dir` on `machine` as `name`, verified.
    fn upload(
        &mut self,
        machine: &str,
        run_dir: &str,
        local: &Path,
        name: &str,
    ) -> Result<(), TransportError>;

    /// Copies `name` from `run_dir` on `machine` to the local file `local`, verified.
    fn fetch(
        &mut self,
        machine: &str,
        run_dir: &str,
        name: &str,
        local: &Path,
    ) -> Result<CollectedFile, TransportError>;

    /// Starts a launch's command in its run directory, with `env` added to its environment, in
    /// a process group of its own.
    fn start(
        &mut self,
        launch: &LaunchSpec,
        record: &LaunchRecord,
        env: &[(&str, String)],
    ) -> Result<Started, TransportError>;

    /// Looks at a started process.
    fn poll(&mut self, record: &LaunchRecord) -> Result<ProcessState, TransportError>;

    /// Whether a started (running) process passes its readiness check.
    fn is_ready(
        &mut self,
        record: &LaunchRecord,
        readiness: &Readiness,
    ) -> Result<bool, TransportError>;

    /// Writes each launch's start files — `(launch, start in its machine's clock (ns), timeline
    /// JSON)` — as `timeline.json` and `start_at`, each atomically, the timeline first.
    fn publish(&mut self, entries: &[(LaunchRecord, i64, String)]) -> Result<(), String>;

    /// Aggregate CPU times of every reachable machine (none where the transport does not
    /// sample them).
    fn sample_cpu(&mut self) -> Vec<(String, Result<CpuTimes, TransportError>)>;

    /// Waits up to `wait_ms` for a process to end; true when it did.
    fn wait_ended(&mut self, record: &LaunchRecord, wait_ms: u64) -> Result<bool, TransportError>;

    /// Stops a process: SIGTERM to its process group, up to `grace_ms`, then SIGKILL.
    fn stop(&mut self, record: &LaunchRecord, grace_ms: u64)
    -> Result<StopOutcome, TransportError>;

    /// Whether a machine is reachable.
    fn reachable(&self, machine: &str) -> bool;

    /// Forgets a machine the sequence gave up on.
    fn lose(&mut self, machine: &str);

    /// Tries once more to reach a lost machine.
    fn reconnect(&mut self, machine: &str) -> Result<(), TransportError>;

    /// Fetches the files of many launches into `<results_dir>/<launch id>/<name>`; a transport
    /// may fetch machine by machine in parallel. A machine that stops answering fails the rest
    /// of its files.
    fn fetch_all(
        &mut self,
        jobs: &FetchJobs,
        results_dir: &Path,
    ) -> Vec<(String, Vec<FetchResult>)> {
        let mut out = Vec::new();
        for (machine, launches) in jobs {
            let mut results = Vec::new();
            let mut lost: Option<String> = None;
            for (launch_id, run_dir, names) in launches {
                for name in names {
                    let outcome = match &lost {
                        Some(why) => Err(TransportError::failed(why.clone())),
                        None => {
                            let local = results_dir.join(launch_id).join(name);
                            self.fetch(machine, run_dir, name, &local)
                        }
                    };
                    if let Err(e) = &outcome
                        && e.machine_lost
                    {
                        lost = Some(e.message.clone());
                    }
                    results.push((launch_id.clone(), name.clone(), outcome));
                }
            }
            out.push((machine.clone(), results));
        }
        out
    }

    /// Sees every phase event as the sequence records it (the recording writes the phases
    /// down; the others need not).
    fn on_event(&mut self, _event: &PhaseEvent) {}

    /// The launcher's wall clock, ns since the Unix epoch (the recording's is virtual).
    fn now_ns(&self) -> i64 {
        unix_now_ns()
    }

    /// Waits `duration` (the recording advances its virtual clock instead).
    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }

    /// Releases what the transport holds (connections, namespaces, child handles) once the
    /// sequence has stopped every process it started.
    fn teardown(&mut self) {}
}

/// Nanoseconds since the Unix epoch on this machine.
pub fn unix_now_ns() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
}
