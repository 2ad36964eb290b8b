//! The run skeleton on real machines: the launch sequence of naam-launch over the SSH transport
//! ([`crate::transport::SshTransport`]), with what a run on real machines adds — validation of
//! the launches against the inventory, a record in the results directory, and resume.
//!
//! The input is a list of [`LaunchSpec`]s — the seam with experiment plans (naam-executors makes
//! them from a plan's point): which host, which role, which program with which arguments, which
//! files it gets before it starts, how to tell it is ready, how it is expected to end, which
//! files it leaves behind. The phases are the sequence's (see [`naam_launch::sequence`]):
//! deploy (connect in parallel, clocks measured and refused beyond [`CLOCK_OFFSET_MS_MAX`] or
//! known less precisely than [`CLOCK_ERROR_MS_MAX`], artifacts deployed) → start (host, NIC,
//! clients in dependency order, inputs relayed with checksums, the common start written to
//! each machine in its own clock as `start_at` and `timeline.json`) → warm-up → measure (CPU
//! sampled on every host) → collect (outputs and both logs fetched with their SHA-256
//! verified, see [`crate::collect`]) → teardown (anything left stopped by PID; also after a
//! failure or Ctrl-C).
//!
//! A node lost during the run does not stop the others: its launches are marked unmeasured and
//! the run ends [`RunStatus::Partial`] with per-node coverage. Every phase boundary is a
//! timestamped [`PhaseEvent`], recorded in `run.json` and passed to an observer as it happens.
//! A rerun in the same results directory resumes (see [`crate::collect`]).

use std::collections::BTreeSet;
use std::path::PathBuf;

pub use naam_launch::plan::{
    Ends, LaunchInput, LaunchSpec, Readiness, START_AT_FILE, TIMELINE_FILE,
};
pub use naam_launch::record::{
    CollectedFile, EndState, HostRecord, LaunchRecord, Mark, NodeCoverage, Phase, PhaseEvent,
    RUN_RECORD_FILE, RunRecord, RunStatus,
};
use naam_launch::sequence::{self, SequenceConfig};
pub use naam_launch::sequence::{EXIT_TOLERANCE_MS, INPUTS_DIR, Observer};

use crate::cancel::Cancel;
use crate::command::CommandError;
use crate::deploy::ArtifactSet;
use crate::inventory::{HostSpec, Inventory};
use crate::limits::{
    CLOCK_ERROR_MS_MAX, CLOCK_OFFSET_MS_MAX, EXIT_WAIT_MS_MAX, LIVENESS_POLL_INTERVAL_MS,
    PHASE_MS_MAX, READINESS_POLL_INTERVAL_MS, READINESS_POLLS_MAX, START_LEAD_MS, STOP_GRACE_MS,
    STOP_WAIT_MS_MAX,
};
use crate::ssh::ConnectOptions;
use crate::telemetry::{self, ClockOffset};
use crate::transport::SshTransport;

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

impl RunConfig {
    /// The launch sequence's settings for this run.
    pub fn sequence(&self) -> SequenceConfig {
        SequenceConfig {
            run_id: self.run_id.clone(),
            warmup_ms: self.warmup_ms,
            measure_ms: self.measure_ms,
            results_dir: self.results_dir.clone(),
            start_lead_ms: START_LEAD_MS,
            ready_wait_ms: u64::from(READINESS_POLLS_MAX) * READINESS_POLL_INTERVAL_MS,
            ready_poll_ms: READINESS_POLL_INTERVAL_MS,
            liveness_poll_ms: LIVENESS_POLL_INTERVAL_MS,
            exit_wait_ms: self.exit_wait_ms,
            stop_grace_ms: self.stop_grace_ms,
        }
    }
}

/// Checks launches against the inventory and the limits; returns them in start order
/// (host, NIC, client; stable within a role).
pub fn validate_launches(
    inventory: &Inventory,
    launches: &[LaunchSpec],
) -> Result<Vec<LaunchSpec>, RunError> {
    naam_launch::plan::validate_launches(launches, |machine, role| {
        let host = inventory
            .host(machine)
            .ok_or_else(|| format!("host {machine} is not in the inventory"))?;
        if host.has_role(role) {
            Ok(())
        } else {
            Err(format!(
                "host {} does not have role {role} in the inventory",
                host.name
            ))
        }
    })
    .map_err(|e| RunError::InvalidLaunch {
        launch: e.launch,
        reason: e.reason,
    })
}

/// Every file collected for a launch: its outputs, then its two logs.
pub fn expected_files(launch: &LaunchSpec) -> Vec<String> {
    launch.expected_files()
}

fn check_config(config: &RunConfig) -> Result<(), RunError> {
    let invalid = |reason: String| RunError::InvalidConfig {
        run_id: config.run_id.clone(),
        reason,
    };
    if !naam_launch::plan::is_clean_name(&config.run_id) {
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
    // The server roles are not polled while the clients are waited for: their leases must
    // outlast the wait.
    let lease_half_ms = crate::process::LEASE_S * 1000 / 2;
    if config.exit_wait_ms >= lease_half_ms {
        return Err(invalid(format!(
            "exit_wait_ms = {} must be below {lease_half_ms} (half the remote processes' lease)",
            config.exit_wait_ms
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
            observer(&PhaseEvent {
                phase: Phase::Collect,
                mark: Mark::Note,
                at_unix_ns: telemetry::unix_now_ns(),
                detail: "already complete: nothing to do".into(),
            });
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
    let sequence_config = config.sequence();
    let record = sequence::new_record(&launches, &sequence_config, attempt, |launch| {
        let host = inventory.host(&launch.host).expect("validated");
        remote_run_dir(host, &config.run_id, attempt, &launch.id)
    });
    let mut transport = SshTransport::new(inventory, &config.connect, config.artifacts.as_ref());
    let record = sequence::run(
        &mut transport,
        launches,
        &sequence_config,
        record,
        cancel,
        observer,
    );
    crate::collect::write_record(&config.results_dir, &record)?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_exit_wait_stays_below_half_the_remote_lease() {
        let mut config = RunConfig::new("r", 100, 1000, PathBuf::from("/tmp/x"));
        assert!(check_config(&config).is_ok(), "the defaults are valid");
        config.exit_wait_ms = crate::process::LEASE_S * 1000 / 2;
        let err = check_config(&config).unwrap_err().to_string();
        assert!(err.contains("half the remote processes' lease"), "{err}");
    }
}
