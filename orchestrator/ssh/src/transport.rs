//! The launch sequence's transport over SSH: one session per machine (opened in the deploy
//! phase, in parallel), the machine's workdir made absolute, clocks measured and refused beyond
//! the bounds, artifacts deployed, inputs and outputs moved with checksums on both sides,
//! processes started, polled and stopped by PID ([`crate::process`]), the start time written on
//! every machine by one command each, all machines at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use naam_launch::plan::{LaunchSpec, Readiness};
use naam_launch::record::{CollectedFile, CpuTimes, LaunchRecord, RunRecord};
use naam_launch::transport::{
    FetchJobs, FetchResult, ProcessState, Started, StopOutcome, Transport, TransportError,
};

use crate::collect::fetch_verified;
use crate::command::{CommandError, RemoteCommand, ShellLine};
use crate::deploy::{self, ArtifactSet};
use crate::inventory::{HostSpec, Inventory};
use crate::limits::{CLOCK_SAMPLES, COMMAND_TIMEOUT_MS};
use crate::process::{self, RemoteProcess};
use crate::run::{check_clock, remote_run_dir};
use crate::ssh::{ConnectOptions, Connection, SshError};
use crate::telemetry;

/// Mode of an input file in a run directory.
const INPUT_FILE_MODE: i32 = 0o644;

/// Machines of an inventory, reached over SSH.
pub struct SshTransport<'a> {
    inventory: &'a Inventory,
    connect: &'a ConnectOptions,
    artifacts: Option<&'a ArtifactSet>,
    connections: BTreeMap<String, Connection>,
    workdirs: BTreeMap<String, String>,
}

impl std::fmt::Debug for SshTransport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshTransport")
            .field("connected", &self.connections.keys().collect::<Vec<_>>())
            .field("workdirs", &self.workdirs)
            .finish_non_exhaustive()
    }
}

impl<'a> SshTransport<'a> {
    /// The machines of `inventory`, reached with `connect`; `artifacts` are deployed first.
    pub fn new(
        inventory: &'a Inventory,
        connect: &'a ConnectOptions,
        artifacts: Option<&'a ArtifactSet>,
    ) -> SshTransport<'a> {
        SshTransport {
            inventory,
            connect,
            artifacts,
            connections: BTreeMap::new(),
            workdirs: BTreeMap::new(),
        }
    }

    fn connection(&mut self, machine: &str) -> Result<&mut Connection, TransportError> {
        self.connections
            .get_mut(machine)
            .ok_or_else(|| TransportError::lost(format!("host {machine} unreachable")))
    }

    /// Creates every machine's workdir, records its absolute path, and makes the launches' run
    /// directories absolute (processes run inside them, so nothing may be relative to `~`).
    fn resolve_workdirs(&mut self, record: &mut RunRecord) -> Result<(), String> {
        let results = for_each_host(&mut self.connections, |connection| {
            let workdir = connection.host().workdir.clone();
            let line = ShellLine::new()
                .op("mkdir -p")
                .text(&workdir)
                .and_then(|l| Ok(l.op("&& cd").text(&workdir)?.op("&& pwd -P")))
                .map_err(|source| command_error(connection, source))?;
            Ok(connection
                .run_checked(&line, COMMAND_TIMEOUT_MS)?
                .stdout_text()
                .trim()
                .to_string())
        });
        for (host, result) in results {
            let absolute = result.map_err(|e| format!("workdir of {host}: {e}"))?;
            let spec = HostSpec {
                workdir: absolute.clone(),
                ..self.inventory.host(&host).expect("validated").clone()
            };
            let (run_id, attempt) = (record.run_id.clone(), record.attempt);
            for (id, launch) in record.launches.iter_mut().filter(|(_, l)| l.host == host) {
                launch.run_dir = remote_run_dir(&spec, &run_id, attempt, id);
            }
            record.hosts.entry(host.clone()).or_default().workdir = Some(absolute.clone());
            self.workdirs.insert(host, absolute);
        }
        Ok(())
    }

    /// The launch's command with its environment, a workdir-relative program made absolute.
    fn launch_command(
        &self,
        launch: &LaunchSpec,
        env: &[(&str, String)],
    ) -> Result<RemoteCommand, CommandError> {
        let host = self.inventory.host(&launch.host).expect("validated");
        let lan = host.lan_address.to_string();
        let mut vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        vars.push(("NAAM_LAN_ADDRESS", lan.as_str()));
        let program = launch.command.program();
        let command =
            match self.workdirs.get(&launch.host) {
                Some(workdir) if program.contains('/') && !program.starts_with('/') => launch
                    .command
                    .with_program(format!("{workdir}/{program}"))?,
                _ => launch.command.clone(),
            };
        command.with_env(vars)
    }
}

fn command_error(connection: &Connection, source: CommandError) -> SshError {
    SshError::Command {
        login: connection.host().login(),
        source,
    }
}

/// A failure over SSH: a transient one (the network, the session) means the machine is lost.
fn transport_error(context: &str, err: SshError) -> TransportError {
    TransportError {
        machine_lost: err.is_transient(),
        message: format!("{context}{err}"),
    }
}

fn remote_process(record: &LaunchRecord) -> Result<RemoteProcess, TransportError> {
    Ok(RemoteProcess {
        run_dir: record.run_dir.clone(),
        pid: record
            .pid
            .ok_or_else(|| TransportError::failed("not started"))?,
        start_ticks: record.start_ticks,
    })
}

impl Transport for SshTransport<'_> {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    fn reach(&mut self, record: &mut RunRecord) -> Result<(), String> {
        let hosts: Vec<HostSpec> = self
            .inventory
            .hosts
            .iter()
            .filter(|h| record.hosts.contains_key(&h.name))
            .cloned()
            .collect();
        for (host, result) in hosts
            .iter()
            .zip(crate::ssh::connect_all(&hosts, self.connect))
        {
            let connection = result.map_err(|e| e.to_string())?;
            self.connections.insert(host.name.clone(), connection);
        }
        self.resolve_workdirs(record)
    }

    fn deploy(
        &mut self,
        record: &mut RunRecord,
        note: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        let Some(artifacts) = self.artifacts else {
            return Ok(());
        };
        let mut connections: Vec<Connection> = std::mem::take(&mut self.connections)
            .into_values()
            .collect();
        let results = deploy::deploy_all(&mut connections, artifacts);
        self.connections = connections
            .into_iter()
            .map(|c| (c.host().name.clone(), c))
            .collect();
        for result in results {
            let report = result.map_err(|e| e.to_string())?;
            note(format!(
                "{}: {} uploaded, {} unchanged",
                report.host,
                report.uploaded_count(),
                report.files.len() - report.uploaded_count()
            ));
            let host = report.host.clone();
            record.hosts.entry(host).or_default().deploy = Some(report);
        }
        Ok(())
    }

    /// Measures every machine's clock offset and refuses offsets beyond
    /// [`crate::limits::CLOCK_OFFSET_MS_MAX`] or known less precisely than
    /// [`crate::limits::CLOCK_ERROR_MS_MAX`]; within the bounds, each machine's start is shifted
    /// by its offset.
    fn measure_clocks(&mut self, record: &mut RunRecord) -> Result<(), String> {
        let results = for_each_host(&mut self.connections, |connection| {
            telemetry::measure_clock_offset(connection, CLOCK_SAMPLES)
        });
        for (host, result) in results {
            let clock = result.map_err(|e| format!("clock offset of {host}: {e}"))?;
            record.hosts.entry(host.clone()).or_default().clock = Some(clock);
            check_clock(&host, &clock)?;
        }
        Ok(())
    }

    /// Twice the slowest machine's round trip of a remote command (measured now, in parallel),
    /// since every machine gets one command.
    fn publication_budget_ns(&mut self) -> Result<i64, String> {
        let line = ShellLine::new().op("true");
        let results = for_each_host(&mut self.connections, |connection| {
            let started = Instant::now();
            connection.run_checked(&line, COMMAND_TIMEOUT_MS)?;
            Ok(started.elapsed())
        });
        let mut slowest = Duration::ZERO;
        for (host, result) in results {
            slowest = slowest.max(result.map_err(|e| format!("round trip to {host}: {e}"))?);
        }
        Ok(i64::try_from(slowest.as_nanos().saturating_mul(2)).unwrap_or(i64::MAX))
    }

    fn upload(
        &mut self,
        machine: &str,
        run_dir: &str,
        local: &Path,
        name: &str,
    ) -> Result<(), TransportError> {
        let target = format!("{run_dir}/{name}");
        let connection = self.connection(machine)?;
        deploy::upload_verified(connection, local, &target, INPUT_FILE_MODE)
            .map(drop)
            .map_err(|e| TransportError::failed(e.to_string()))
    }

    fn fetch(
        &mut self,
        machine: &str,
        run_dir: &str,
        name: &str,
        local: &Path,
    ) -> Result<CollectedFile, TransportError> {
        let remote = format!("{run_dir}/{name}");
        let connection = self.connection(machine)?;
        fetch_verified(connection, &remote, local, name).map_err(|f| TransportError {
            message: f.why,
            machine_lost: f.host_lost,
        })
    }

    fn start(
        &mut self,
        launch: &LaunchSpec,
        record: &LaunchRecord,
        env: &[(&str, String)],
    ) -> Result<Started, TransportError> {
        let command = self
            .launch_command(launch, env)
            .map_err(|e| TransportError::failed(e.to_string()))?;
        let connection = self.connection(&launch.host)?;
        let started = process::start(connection, &record.run_dir, &command)
            .map_err(|e| transport_error("", e))?;
        Ok(Started {
            pid: started.pid,
            start_ticks: started.start_ticks,
        })
    }

    /// Polls once; on a transport failure reconnects (with the connection's bounded retries)
    /// and polls again.
    fn poll(&mut self, record: &LaunchRecord) -> Result<ProcessState, TransportError> {
        let process = remote_process(record)?;
        let connection = self.connection(&record.host)?;
        let state = match process::poll(connection, &process) {
            Err(err) if err.is_transient() => {
                connection.reconnect().map_err(|e| transport_error("", e))?;
                process::poll(connection, &process)
            }
            other => other,
        };
        state.map_err(|e| transport_error("", e))
    }

    fn is_ready(
        &mut self,
        record: &LaunchRecord,
        readiness: &Readiness,
    ) -> Result<bool, TransportError> {
        let check = readiness_line(readiness, &record.run_dir)
            .map_err(|e| TransportError::failed(e.to_string()))?;
        let Some(line) = check else {
            return Ok(true);
        };
        let connection = self.connection(&record.host)?;
        let output = connection
            .run(&line, COMMAND_TIMEOUT_MS)
            .map_err(|e| transport_error("", e))?;
        Ok(output.status == 0)
    }

    /// One command per machine, all machines at once.
    fn publish(&mut self, entries: &[(LaunchRecord, i64, String)]) -> Result<(), String> {
        let mut per_host: BTreeMap<String, Vec<(String, i64, String)>> = BTreeMap::new();
        for (record, start_at, timeline) in entries {
            per_host.entry(record.host.clone()).or_default().push((
                record.run_dir.clone(),
                *start_at,
                timeline.clone(),
            ));
        }
        let results = for_each_host(&mut self.connections, |connection| {
            let Some(entries) = per_host.get(&connection.host().name) else {
                return Ok(());
            };
            let line = write_start_files_line(entries)
                .map_err(|source| command_error(connection, source))?;
            connection.run_checked(&line, COMMAND_TIMEOUT_MS).map(drop)
        });
        for (host, result) in results {
            result.map_err(|e| format!("start time on {host}: {e}"))?;
        }
        Ok(())
    }

    fn sample_cpu(&mut self) -> Vec<(String, Result<CpuTimes, TransportError>)> {
        for_each_host(&mut self.connections, telemetry::sample_cpu)
            .into_iter()
            .map(|(host, result)| {
                (
                    host,
                    result.map_err(|e| TransportError::lost(e.to_string())),
                )
            })
            .collect()
    }

    fn wait_ended(&mut self, record: &LaunchRecord, wait_ms: u64) -> Result<bool, TransportError> {
        let process = remote_process(record)?;
        let connection = self.connection(&record.host)?;
        process::wait_until_ended(connection, &process, wait_ms)
            .map_err(|e| TransportError::lost(e.to_string()))
    }

    fn stop(
        &mut self,
        record: &LaunchRecord,
        grace_ms: u64,
    ) -> Result<StopOutcome, TransportError> {
        let process = remote_process(record)?;
        let connection = self.connection(&record.host)?;
        process::stop(connection, &process, grace_ms).map_err(|e| transport_error("", e))
    }

    fn reachable(&self, machine: &str) -> bool {
        self.connections.contains_key(machine)
    }

    fn lose(&mut self, machine: &str) {
        self.connections.remove(machine);
    }

    fn reconnect(&mut self, machine: &str) -> Result<(), TransportError> {
        let spec = self
            .inventory
            .host(machine)
            .ok_or_else(|| TransportError::failed(format!("{machine} is not in the inventory")))?;
        let connection = Connection::open(spec, self.connect)
            .map_err(|e| TransportError::lost(e.to_string()))?;
        self.connections.insert(machine.to_string(), connection);
        Ok(())
    }

    /// One thread per reachable machine.
    fn fetch_all(
        &mut self,
        jobs: &FetchJobs,
        results_dir: &Path,
    ) -> Vec<(String, Vec<FetchResult>)> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .connections
                .iter_mut()
                .filter_map(|(host, connection)| {
                    jobs.get(host).map(|jobs| (host.clone(), connection, jobs))
                })
                .map(|(host, connection, jobs)| {
                    (
                        host,
                        scope.spawn(move || fetch_host(connection, jobs, results_dir)),
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|(host, handle)| (host, handle.join().unwrap_or_default()))
                .collect()
        })
    }

    fn teardown(&mut self) {
        self.connections.clear();
    }
}

/// One machine's files, in order; once the machine stops answering, the rest fail with why.
fn fetch_host(
    connection: &mut Connection,
    jobs: &[(String, String, Vec<String>)],
    results_dir: &Path,
) -> Vec<FetchResult> {
    let mut results = Vec::new();
    let mut host_lost: Option<String> = None;
    for (launch_id, run_dir, names) in jobs {
        for name in names {
            let outcome = match &host_lost {
                Some(why) => Err(TransportError::failed(why.clone())),
                None => {
                    let local = results_dir.join(launch_id).join(name);
                    let remote = format!("{run_dir}/{name}");
                    fetch_verified(connection, &remote, &local, name).map_err(|f| TransportError {
                        message: f.why,
                        machine_lost: f.host_lost,
                    })
                }
            };
            if let Err(err) = &outcome
                && err.machine_lost
            {
                host_lost = Some(err.message.clone());
            }
            results.push((launch_id.clone(), name.clone(), outcome));
        }
    }
    results
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
    use naam_launch::plan::{START_AT_FILE, TIMELINE_FILE};
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
