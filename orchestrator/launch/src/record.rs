//! What a launch sequence records: timestamped phase events, per machine (lost, clock, CPU,
//! what was placed on it), per launch (where it ran, how it ended, what was collected). Written
//! as `run.json` in the results directory whatever the transport, so a local run, a run in
//! namespaces and a run over SSH are read the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::Role;

/// The run record, in the local results directory.
pub const RUN_RECORD_FILE: &str = "run.json";

/// The phases, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reach the machines and put the artifacts on them.
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
    /// The launcher's wall clock, ns since the Unix epoch.
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

/// Aggregate CPU time of a machine (the `cpu` line of `/proc/stat`), in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTimes {
    /// Ticks spent neither idle nor waiting for IO.
    pub busy_ticks: u64,
    /// All ticks (user, nice, system, idle, iowait, irq, softirq, steal).
    pub total_ticks: u64,
}

/// CPU utilisation of a machine over an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Sample at the start.
    pub before: CpuTimes,
    /// Sample at the end.
    pub after: CpuTimes,
}

impl CpuUsage {
    /// Usage between two samples (integer ticks only, so records round-trip exactly).
    pub fn between(before: CpuTimes, after: CpuTimes) -> CpuUsage {
        CpuUsage { before, after }
    }

    /// Busy fraction of all cores over the interval, 0..=1 (`None` when no tick passed).
    pub fn busy_fraction(&self) -> Option<f64> {
        let total = self
            .after
            .total_ticks
            .saturating_sub(self.before.total_ticks);
        let busy = self.after.busy_ticks.saturating_sub(self.before.busy_ticks);
        (total > 0).then(|| (busy as f64 / total as f64).clamp(0.0, 1.0))
    }
}

/// Parses the aggregate `cpu` line of `/proc/stat` (`cpu user nice system idle iowait irq softirq
/// steal guest guest_nice`; guest time is already inside user time, so it is not added).
pub fn parse_cpu_line(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if ticks.len() < 4 {
        return None;
    }
    let idle = ticks[3] + ticks.get(4).copied().unwrap_or(0);
    let total: u64 = ticks.iter().sum();
    Some(CpuTimes {
        busy_ticks: total - idle,
        total_ticks: total,
    })
}

/// A machine's clock relative to the launcher's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// Remote clock minus local clock, at the midpoint of the best sample.
    pub offset_ns: i64,
    /// Round trip of the best sample (exec of `date` included); the offset is within ±rtt/2.
    pub rtt_ns: u64,
    /// Samples taken (the one with the smallest round trip is kept).
    pub samples: u32,
}

impl ClockOffset {
    /// Bound on the offset's error: half the round trip.
    pub fn error_bound_ns(&self) -> u64 {
        self.rtt_ns / 2
    }
}

/// What happened to one deployed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReport {
    /// Remote path under the workdir.
    pub remote_path: String,
    /// SHA-256 (hex) of the deployed content.
    pub sha256: String,
    /// Bytes uploaded (0 when skipped).
    pub uploaded_bytes: u64,
    /// Whether the remote copy already matched.
    pub skipped: bool,
}

/// What a machine's deployment did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostDeployReport {
    /// The machine.
    pub host: String,
    /// One entry per uploaded-or-skipped file.
    pub files: Vec<FileReport>,
    /// Whether the role binary was built on the target (false when prebuilt or stamp matched).
    pub built: bool,
}

impl HostDeployReport {
    /// Files actually uploaded.
    pub fn uploaded_count(&self) -> usize {
        self.files.iter().filter(|file| !file.skipped).count()
    }
}

/// What is known about one machine after a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    /// CPU utilisation over the measurement.
    pub cpu: Option<CpuUsage>,
    /// Clock offset from the launcher.
    pub clock: Option<ClockOffset>,
    /// What the deployment did.
    pub deploy: Option<HostDeployReport>,
    /// Why the machine was lost, if it was.
    pub lost: Option<String>,
    /// The workdir as an absolute path on the machine.
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

/// What is known about one launch after a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchRecord {
    /// Machine it ran on.
    pub host: String,
    /// Its role.
    pub role: Role,
    /// Its run directory on that machine.
    pub run_dir: String,
    /// PID of its process (= process group), once started.
    pub pid: Option<u32>,
    /// Start time in ticks, for identity checks.
    pub start_ticks: Option<u64>,
    /// Whether it ran through the whole measurement.
    pub measured: bool,
    /// How it ended (`None` when it could not be observed).
    pub end: Option<EndState>,
    /// Problems seen (lost machine, early exit, failed stop), in order.
    pub problems: Vec<String>,
    /// Files collected and verified.
    pub collected: Vec<CollectedFile>,
    /// Files expected (outputs and logs) that are not collected yet.
    pub missing: Vec<String>,
}

/// Coverage of one node: how much of what it should have produced is here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCoverage {
    /// The machine.
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
    /// Common start time in the launcher's clock.
    pub start_at_unix_ns: Option<i64>,
    /// Warm-up duration.
    pub warmup_ms: u64,
    /// Measured duration.
    pub measure_ms: u64,
    /// Phase events in the order they happened.
    pub events: Vec<PhaseEvent>,
    /// Per machine.
    pub hosts: BTreeMap<String, HostRecord>,
    /// Per launch.
    pub launches: BTreeMap<String, LaunchRecord>,
}

impl RunRecord {
    /// Per-node coverage, in machine-name order.
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

    /// Complete when every launch ran through the measurement and every file is here; else
    /// partial.
    pub fn measured_status(&self) -> RunStatus {
        let complete = self
            .launches
            .values()
            .all(|l| l.measured && l.missing.is_empty())
            && self.hosts.values().all(|h| h.lost.is_none());
        if complete {
            RunStatus::Complete
        } else {
            RunStatus::Partial
        }
    }
}

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("run record {}: {message}", path.display())]
pub struct RecordError {
    /// The file or folder.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Reads `run.json` from a results directory, if there is one.
pub fn read_record(results_dir: &Path) -> Result<Option<RunRecord>, RecordError> {
    let path = results_dir.join(RUN_RECORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RecordError {
                path,
                message: e.to_string(),
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(RecordError {
            path,
            message: err.to_string(),
        }),
    }
}

/// Writes `run.json` atomically (temporary file, then rename).
pub fn write_record(results_dir: &Path, record: &RunRecord) -> Result<(), RecordError> {
    let local = |path: &Path, e: &dyn std::fmt::Display| RecordError {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(results_dir).map_err(|e| local(results_dir, &e))?;
    let path = results_dir.join(RUN_RECORD_FILE);
    let tmp = results_dir.join(format!("{RUN_RECORD_FILE}.tmp"));
    let text = serde_json::to_string_pretty(record).map_err(|e| local(&path, &e))?;
    std::fs::write(&tmp, text).map_err(|e| local(&tmp, &e))?;
    std::fs::rename(&tmp, &path).map_err(|e| local(&path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_counts_iowait_as_idle() {
        let text = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 1 2 3 4\n";
        let times = parse_cpu_line(text).unwrap();
        assert_eq!(
            times,
            CpuTimes {
                busy_ticks: 160,
                total_ticks: 1000
            }
        );
        let later = CpuTimes {
            busy_ticks: 260,
            total_ticks: 1400,
        };
        assert_eq!(CpuUsage::between(times, later).busy_fraction(), Some(0.25));
        assert_eq!(CpuUsage::between(times, times).busy_fraction(), None);
        assert_eq!(parse_cpu_line("intr 1 2 3"), None);
    }
}
