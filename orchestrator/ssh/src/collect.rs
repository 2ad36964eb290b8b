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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cancel::Cancel;
use crate::command::ShellLine;
use crate::deploy::{remote_sha256, sha256_file};
use crate::inventory::Inventory;
use crate::limits::{ATTEMPTS_KEPT_MAX, IDEMPOTENT_ATTEMPTS_MAX};
use crate::retry::RetryPolicy;
use crate::run::{
    Attempt, CollectedFile, LaunchSpec, Mark, Observer, Phase, RUN_RECORD_FILE, RunConfig,
    RunError, RunRecord, RunStatus,
};
use crate::ssh::{Connection, SshError};

/// Directory (in the results directory) where earlier attempts are kept.
pub const ATTEMPTS_DIR: &str = "attempts";
/// Suffix of a file being downloaded, before its checksum is verified and it is renamed.
pub const PARTIAL_SUFFIX: &str = ".part";

/// The collection phase of a run that measured: clients finish, servers stop, files come home.
pub(crate) fn collect_phase(run: &mut Attempt<'_>) {
    run.event(Phase::Collect, Mark::Begin, "");
    run.wait_for_clients();
    run.stop_all(Phase::Collect);
    fetch_all(run);
    run.event(Phase::Collect, Mark::End, "");
}

/// Fetches every missing file of every launch, one thread per reachable host; hosts without a
/// connection get one more connection attempt first.
pub(crate) fn fetch_all(run: &mut Attempt<'_>) {
    reconnect_missing_hosts(run);
    let results_dir = run.config.results_dir.clone();
    let mut work: BTreeMap<String, Vec<(String, String, Vec<String>)>> = BTreeMap::new();
    for (id, launch) in &run.record.launches {
        // A launch that never started left nothing to fetch (its files stay missing).
        if !launch.missing.is_empty()
            && launch.pid.is_some()
            && run.connections.contains_key(&launch.host)
        {
            work.entry(launch.host.clone()).or_default().push((
                id.clone(),
                launch.run_dir.clone(),
                launch.missing.clone(),
            ));
        }
    }
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = run
            .connections
            .iter_mut()
            .filter_map(|(host, connection)| {
                work.get(host).map(|jobs| (host.clone(), connection, jobs))
            })
            .map(|(host, connection, jobs)| {
                let results_dir = &results_dir;
                (
                    host,
                    scope.spawn(move || fetch_host(connection, jobs, results_dir)),
                )
            })
            .collect();
        handles
            .into_iter()
            .map(|(host, handle)| (host, handle.join().unwrap_or_default()))
            .collect::<Vec<_>>()
    });
    for (host, fetched) in results {
        for (launch_id, name, outcome) in fetched {
            let record = run
                .record
                .launches
                .get_mut(&launch_id)
                .expect("launch in record");
            match outcome {
                Ok(file) => {
                    record.missing.retain(|m| m != &name);
                    record.collected.push(file);
                }
                Err(FetchFailure { why, host_lost }) => {
                    record.problems.push(format!("{name} not collected: {why}"));
                    if host_lost {
                        run.lose_host(Phase::Collect, &host, &why);
                    }
                }
            }
        }
    }
    for launch in run.record.launches.values_mut() {
        launch.collected.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

fn reconnect_missing_hosts(run: &mut Attempt<'_>) {
    let needed: Vec<String> = run
        .record
        .launches
        .values()
        .filter(|l| !l.missing.is_empty() && !run.connections.contains_key(&l.host))
        .map(|l| l.host.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for host in needed {
        let Some(spec) = run.inventory.host(&host) else {
            continue;
        };
        match Connection::open(spec, &run.config.connect) {
            Ok(connection) => {
                run.connections.insert(host.clone(), connection);
                run.event(
                    Phase::Collect,
                    Mark::Note,
                    format!("host {host} reachable again"),
                );
            }
            Err(err) => run.lose_host(Phase::Collect, &host, &err.to_string()),
        }
    }
}

/// Why a file could not be fetched.
pub(crate) struct FetchFailure {
    /// What went wrong.
    pub(crate) why: String,
    /// Whether the host itself stopped answering.
    pub(crate) host_lost: bool,
}

type FetchResult = (String, String, Result<CollectedFile, FetchFailure>);

fn fetch_host(
    connection: &mut Connection,
    jobs: &[(String, String, Vec<String>)],
    results_dir: &Path,
) -> Vec<FetchResult> {
    let mut results = Vec::new();
    let mut host_lost: Option<String> = None;
    for (launch_id, run_dir, names) in jobs {
        for name in names {
            if let Some(why) = &host_lost {
                results.push((
                    launch_id.clone(),
                    name.clone(),
                    Err(FetchFailure {
                        why: why.clone(),
                        host_lost: false,
                    }),
                ));
                continue;
            }
            let local = results_dir.join(launch_id).join(name);
            let remote = format!("{run_dir}/{name}");
            let outcome = fetch_verified(connection, &remote, &local, name);
            if let Err(failure) = &outcome
                && failure.host_lost
            {
                host_lost = Some(failure.why.clone());
            }
            results.push((launch_id.clone(), name.clone(), outcome));
        }
    }
    results
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
    let complete = record
        .launches
        .values()
        .all(|l| l.measured && l.missing.is_empty())
        && record.hosts.values().all(|h| h.lost.is_none());
    if complete {
        RunStatus::Complete
    } else {
        RunStatus::Partial
    }
}

/// Whether a rerun only needs to fetch files: partial, and every launch measured.
pub fn collect_only_resumable(record: &RunRecord) -> bool {
    record.status == RunStatus::Partial && record.launches.values().all(|l| l.measured)
}

/// Resumes collection of a partial run whose measurements are all complete.
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
    let mut run = Attempt::new(
        inventory,
        config,
        launches.to_vec(),
        record,
        cancel,
        observer,
    );
    run.event(
        Phase::Collect,
        Mark::Begin,
        "resume: fetching missing files only",
    );
    // Processes the first pass could not stop (their host was unreachable) are stopped now, by
    // the PID and start time it recorded, before their files are fetched.
    let leftovers: Vec<(String, String, crate::process::RemoteProcess)> = run
        .record
        .launches
        .iter()
        .filter(|(_, l)| l.end.is_none())
        .filter_map(|(id, l)| {
            let pid = l.pid?;
            Some((
                id.clone(),
                l.host.clone(),
                crate::process::RemoteProcess {
                    run_dir: l.run_dir.clone(),
                    pid,
                    start_ticks: l.start_ticks,
                },
            ))
        })
        .collect();
    for (id, host, process) in leftovers {
        run.processes.insert(id, process);
        if !run.connections.contains_key(&host)
            && let Some(spec) = inventory.host(&host)
        {
            match Connection::open(spec, &config.connect) {
                Ok(connection) => {
                    run.connections.insert(host.clone(), connection);
                }
                Err(err) => run.lose_host(Phase::Collect, &host, &err.to_string()),
            }
        }
    }
    run.stop_all(Phase::Collect);
    fetch_all(&mut run);
    run.event(Phase::Collect, Mark::End, "");
    let mut record = run.record;
    record.status = status_of(&record);
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
    let path = results_dir.join(RUN_RECORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RunError::Local {
                path,
                message: e.to_string(),
            }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(RunError::Local {
            path,
            message: err.to_string(),
        }),
    }
}

/// Writes `run.json` atomically (temporary file, then rename).
pub fn write_record(results_dir: &Path, record: &RunRecord) -> Result<(), RunError> {
    let local = |path: &Path, e: &dyn std::fmt::Display| RunError::Local {
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
