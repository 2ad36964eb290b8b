//! Collection: every declared output and both logs of every launch come home with their SHA-256
//! verified, into `<results_dir>/<launch id>/`; the run record says what is there and what is not.
//!
//! Nothing is dropped silently. A file that cannot be fetched stays in the launch's `missing`
//! list, a lost node is named in the record with the reason, and the run is `partial`. A rerun in
//! the same results directory resumes:
//!
//! * a complete run is not touched;
//! * a partial run whose every launch ran through the measurement (only files are missing, e.g.
//!   a node was unreachable at collection) fetches just the missing files, after re-verifying the
//!   ones already collected;
//! * any other run (a node lost mid-measurement, a failure, Ctrl-C) is archived whole under
//!   `attempts/<n>/` — kept, never overwritten — and the run starts again as attempt n + 1, in
//!   fresh remote directories so no output of the old attempt is mistaken for the new one's.

use std::path::{Path, PathBuf};

use naam_launch::sequence;

use crate::cancel::Cancel;
use crate::command::ShellLine;
use crate::deploy::{remote_sha256, sha256_file};
use crate::inventory::Inventory;
use crate::limits::{ATTEMPTS_KEPT_MAX, IDEMPOTENT_ATTEMPTS_MAX};
use crate::retry::RetryPolicy;
use crate::run::{
    CollectedFile, LaunchSpec, Observer, RUN_RECORD_FILE, RunConfig, RunError, RunRecord, RunStatus,
};
use crate::ssh::{Connection, SshError};
use crate::transport::SshTransport;

/// Directory (in the results directory) where earlier attempts are kept.
pub const ATTEMPTS_DIR: &str = "attempts";
/// Suffix of a file being downloaded, before its checksum is verified and it is renamed.
pub const PARTIAL_SUFFIX: &str = ".part";

/// Why a file could not be fetched.
pub(crate) struct FetchFailure {
    /// What went wrong.
    pub(crate) why: String,
    /// Whether the host itself stopped answering.
    pub(crate) host_lost: bool,
}

/// Downloads `remote` to `local` (through `local.part`), retrying a bounded number of times until
/// the local SHA-256 equals the remote one.
pub(crate) fn fetch_verified(
    connection: &mut Connection,
    remote: &str,
    local: &Path,
    name: &str,
) -> Result<CollectedFile, FetchFailure> {
    let policy = RetryPolicy::attempts(IDEMPOTENT_ATTEMPTS_MAX);
    let attempt = |_| -> Result<CollectedFile, FetchError> {
        let expected = remote_sha256(connection, remote)
            .map_err(FetchError::Ssh)?
            .ok_or(FetchError::Absent)?;
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| FetchError::Local(format!("{}: {e}", parent.display())))?;
        }
        let part = PathBuf::from(format!("{}{PARTIAL_SUFFIX}", local.display()));
        let bytes = connection
            .download(remote, &part)
            .map_err(FetchError::Ssh)?;
        let actual = sha256_file(&part).map_err(|e| FetchError::Local(e.to_string()))?;
        if actual != expected {
            let _ = std::fs::remove_file(&part);
            return Err(FetchError::Mismatch { expected, actual });
        }
        std::fs::rename(&part, local)
            .map_err(|e| FetchError::Local(format!("{}: {e}", local.display())))?;
        Ok(CollectedFile {
            name: name.to_string(),
            sha256: actual,
            bytes,
        })
    };
    let retryable = |err: &FetchError| match err {
        FetchError::Ssh(err) => err.is_transient(),
        FetchError::Mismatch { .. } => true,
        FetchError::Absent | FetchError::Local(_) => false,
    };
    policy
        .run(attempt, retryable)
        .map_err(|(err, attempts)| match err {
            FetchError::Ssh(err) => FetchFailure {
                host_lost: err.is_transient(),
                why: format!("{err} ({attempts} attempts)"),
            },
            FetchError::Absent => FetchFailure {
                why: format!("{remote} does not exist on the host"),
                host_lost: false,
            },
            FetchError::Mismatch { expected, actual } => FetchFailure {
                why: format!(
                    "checksum mismatch after {attempts} attempts: remote {expected}, local {actual}"
                ),
                host_lost: false,
            },
            FetchError::Local(why) => FetchFailure {
                why,
                host_lost: false,
            },
        })
}

enum FetchError {
    Ssh(SshError),
    Absent,
    Mismatch { expected: String, actual: String },
    Local(String),
}

/// Complete when every launch ran through the measurement and every file is here; else partial.
pub fn status_of(record: &RunRecord) -> RunStatus {
    record.measured_status()
}

/// Whether a rerun only needs to fetch files: partial, and every launch measured.
pub fn collect_only_resumable(record: &RunRecord) -> bool {
    record.status == RunStatus::Partial && record.launches.values().all(|l| l.measured)
}

/// Resumes collection of a partial run whose measurements are all complete: processes the
/// first pass could not stop are stopped now (by the PID and start time it recorded), then the
/// missing files are fetched.
pub(crate) fn resume_collect(
    inventory: &Inventory,
    launches: &[LaunchSpec],
    config: &RunConfig,
    mut record: RunRecord,
    cancel: &Cancel,
    observer: Observer<'_>,
) -> Result<RunRecord, RunError> {
    reverify_collected(&config.results_dir, &mut record);
    for host in record.hosts.values_mut() {
        host.lost = None;
    }
    // No session yet: the sequence connects to the machines it needs (those with processes to
    // stop or files to fetch).
    let mut transport = SshTransport::new(inventory, &config.connect, None);
    let record = sequence::collect_again(
        &mut transport,
        launches.to_vec(),
        &config.sequence(),
        record,
        cancel,
        observer,
    );
    write_record(&config.results_dir, &record)?;
    Ok(record)
}

/// Moves files whose local copy no longer matches its recorded checksum back to `missing`.
fn reverify_collected(results_dir: &Path, record: &mut RunRecord) {
    for (id, launch) in record.launches.iter_mut() {
        let (kept, stale): (Vec<CollectedFile>, Vec<CollectedFile>) =
            launch.collected.drain(..).partition(|file| {
                sha256_file(&results_dir.join(id).join(&file.name))
                    .is_ok_and(|sha| sha == file.sha256)
            });
        launch.collected = kept;
        for file in stale {
            launch.problems.push(format!(
                "{}: local copy changed or vanished; fetching again",
                file.name
            ));
            launch.missing.push(file.name);
        }
    }
}

/// Reads `run.json` from a results directory, if there is one.
pub fn read_record(results_dir: &Path) -> Result<Option<RunRecord>, RunError> {
    naam_launch::record::read_record(results_dir).map_err(local_error)
}

/// Writes `run.json` atomically (temporary file, then rename).
pub fn write_record(results_dir: &Path, record: &RunRecord) -> Result<(), RunError> {
    naam_launch::record::write_record(results_dir, record).map_err(local_error)
}

fn local_error(e: naam_launch::record::RecordError) -> RunError {
    RunError::Local {
        path: e.path,
        message: e.message,
    }
}

/// Moves a previous attempt's record and files to `attempts/<n>/`; returns `n`.
pub(crate) fn archive_attempt(results_dir: &Path, previous: &RunRecord) -> Result<u32, RunError> {
    if previous.attempt >= ATTEMPTS_KEPT_MAX {
        return Err(RunError::Local {
            path: results_dir.to_path_buf(),
            message: format!(
                "{} attempts already; refusing to start another",
                previous.attempt
            ),
        });
    }
    let archive = results_dir
        .join(ATTEMPTS_DIR)
        .join(previous.attempt.to_string());
    let local = |path: &Path, e: std::io::Error| RunError::Local {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(&archive).map_err(|e| local(&archive, e))?;
    let mut names: Vec<String> = previous.launches.keys().cloned().collect();
    names.push(RUN_RECORD_FILE.to_string());
    for name in names {
        let from = results_dir.join(&name);
        if from.exists() {
            std::fs::rename(&from, archive.join(&name)).map_err(|e| local(&from, e))?;
        }
    }
    Ok(previous.attempt)
}

/// Lists a remote directory's files (used by tests and diagnostics): `find <dir> -type f`.
pub fn remote_files(connection: &mut Connection, dir: &str) -> Result<Vec<String>, SshError> {
    let line = ShellLine::new()
        .op("cd")
        .text(dir)
        .map_err(|source| SshError::Command {
            login: connection.host().login(),
            source,
        })?
        .op("&& find . -type f | sort");
    let output = connection.run_checked(&line, crate::limits::COMMAND_TIMEOUT_MS)?;
    Ok(output
        .stdout_text()
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect())
}
