//! The orchestrator as the runner's [`PointExecutor`]: plans whose testbed is
//! `{ kind = "inventory", path = ... }` run point by point on the inventory's machines.
//!
//! Per point: map it onto the inventory ([`crate::inventory::point_run`]), run it
//! ([`naam_ssh::run::run`]: deploy `naam-role`, start host → NIC → clients with the host's ready file
//! relayed, a common start shifted per machine by its clock offset, measure, collect with
//! checksums, tear down), then write the point's raw files with the local testbed's own code
//! ([`crate::point::gather_raw`]): the same schema, the same files, plus `testbed.json`
//! and `orchestrator.json` (the run record: per-host CPU utilisation, clock offsets, deploy
//! report, phase events, coverage).
//!
//! The orchestrator's own state of a point — `run.json` and the collected files — lives outside
//! the runner's staging folder (which the runner empties before each try), in
//! `<state_dir>/<point id>/`; by default `<run folder>/orchestrator/<point id>/`. A point whose
//! run ends partial (a node lost, a role killed) fails with its per-node coverage in the message
//! and keeps its record; the runner's next session tries it again and the run resumes from the
//! record: only missing files are fetched when every measurement finished, otherwise the attempt
//! is archived and measured again.

// The errors here carry naam-ssh's deploy errors (login, paths, the command to run) and travel
// only on the failure path of a point that takes seconds; their size is not worth boxing for.
#![allow(clippy::result_large_err)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use naam_launch::Cancel;
use naam_plan::{ExperimentPlan, PointPlan, Testbed};
use naam_results::raw;
use naam_runner::{ExecError, PointExecutor};
use naam_ssh::deploy::{self, ArtifactSet, DeployError};
use naam_ssh::inventory::{Arch, HostSpec, Inventory, InventoryError};
use naam_ssh::run::{self, PhaseEvent, RunConfig, RunError, RunRecord, RunStatus};
use naam_ssh::ssh::ConnectOptions;

use crate::configs::Settings;
use crate::inventory::{self, ExperimentError, PointRun};
use crate::launches::{HOST_LAUNCH, NIC_LAUNCH, client_launch};
use crate::point::{RoleDirs, TestbedRecord};

/// The orchestrator's record of a point, in the point's folder beside the raw files.
pub const ORCHESTRATOR_RECORD_FILE: &str = "orchestrator.json";
/// Folder of the run folder holding the orchestrator's per-point state by default.
pub const STATE_DIR_NAME: &str = "orchestrator";
/// Name of the source bundle made for architectures without a local binary.
pub const SOURCE_BUNDLE_FILE: &str = "naam-src.tar.gz";
/// `network` in `testbed.json` for points run by the orchestrator.
pub const NETWORK_KIND: &str = "ssh";
/// Grace between SIGTERM and SIGKILL for the servers (they write their counters on SIGTERM).
pub const SERVER_STOP_GRACE_MS: u64 = 10_000;
/// How long clients get after the measurement to drain and write their files.
pub const CLIENT_EXIT_WAIT_MS: u64 = 30_000;

/// Why a point could not be run on the machines.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The plan's testbed is not an inventory, and no inventory was given.
    #[error(
        "testbed {kind}: the orchestrator runs plans whose testbed is kind = \"inventory\" (or pass an inventory)"
    )]
    NotInventory {
        /// The plan's testbed kind.
        kind: &'static str,
    },
    /// The hosts file.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The point does not map onto the inventory.
    #[error(transparent)]
    Experiment(#[from] ExperimentError),
    /// The artifacts cannot be deployed to a host (no binary for its architecture, no bundle).
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The run could not be attempted (bad launch, local IO of the record).
    #[error(transparent)]
    Run(#[from] RunError),
    /// The run ended without every measurement and file: what is there, node by node.
    #[error("{summary}")]
    Incomplete {
        /// How it ended.
        status: RunStatus,
        /// Status, error, per-node coverage, problems, and where the record is.
        summary: String,
    },
    /// Ctrl-C or SIGTERM; the machines were torn down.
    #[error("cancelled; the machines were torn down (record: {record})")]
    Cancelled {
        /// The run record.
        record: PathBuf,
    },
    /// The collected files do not make the raw files of a point.
    #[error("raw files from {}: {message}", dir.display())]
    Gather {
        /// The collected files.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A local file or folder.
    #[error("{}: {message}", path.display())]
    Local {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl ExecutorError {
    /// The runner's view: what stops the whole run (nothing else can work either) and what only
    /// fails this point.
    pub fn into_exec_error(self, executor: String) -> ExecError {
        match self {
            ExecutorError::Experiment(ExperimentError::Unsupported { what, .. }) => {
                ExecError::Unsupported { executor, what }
            }
            ExecutorError::NotInventory { .. } => ExecError::Unsupported {
                executor,
                what: self.to_string(),
            },
            ExecutorError::Inventory(_)
            | ExecutorError::Experiment(_)
            | ExecutorError::Deploy(_)
            | ExecutorError::Cancelled { .. } => ExecError::Aborted {
                message: self.to_string(),
            },
            ExecutorError::Run(_)
            | ExecutorError::Incomplete { .. }
            | ExecutorError::Gather { .. }
            | ExecutorError::Local { .. } => ExecError::PointFailed {
                message: self.to_string(),
            },
        }
    }
}

/// How the orchestrator runs points.
#[derive(Debug, Clone)]
pub struct OrchestratorOptions {
    /// The hosts file; `None`: the plan's `testbed.path`.
    pub inventory: Option<PathBuf>,
    /// `naam-role` binaries by architecture (at least the local build).
    pub role_binaries: BTreeMap<Arch, PathBuf>,
    /// A checkout to bundle (`git archive`) for hosts of an architecture without a binary (a
    /// BlueField-2's aarch64 cores); `None`: such hosts are refused before anything connects.
    pub source_repo: Option<PathBuf>,
    /// Role settings not in the manifest.
    pub roles: Settings,
    /// SSH timeouts, retries, key passphrase.
    pub connect: ConnectOptions,
    /// Where per-point records and collected files go; `None`: `<run folder>/orchestrator/`.
    pub state_dir: Option<PathBuf>,
    /// SIGTERM → SIGKILL grace of the servers.
    pub stop_grace_ms: u64,
    /// How long clients get to exit after the measurement.
    pub exit_wait_ms: u64,
}

impl OrchestratorOptions {
    /// Options deploying `role_binary` to hosts of this machine's architecture, with default
    /// role settings, timeouts and state folder, the plan's inventory, and no source bundle.
    pub fn new(role_binary: PathBuf) -> OrchestratorOptions {
        let mut role_binaries = BTreeMap::new();
        if let Some(arch) = Arch::local() {
            role_binaries.insert(arch, role_binary);
        }
        OrchestratorOptions {
            inventory: None,
            role_binaries,
            source_repo: None,
            roles: Settings::for_machines(),
            connect: ConnectOptions::default(),
            state_dir: None,
            stop_grace_ms: SERVER_STOP_GRACE_MS,
            exit_wait_ms: CLIENT_EXIT_WAIT_MS,
        }
    }
}

/// Receives every phase event of every point (progress output, tests acting at a moment).
pub type EventSink = Box<dyn Fn(&str, &PhaseEvent) + Sync>;

/// Runs plan points on the inventory's machines over SSH.
pub struct OrchestratorExecutor {
    options: OrchestratorOptions,
    cancel: Cancel,
    events: Option<EventSink>,
    bundle: Option<PathBuf>,
}

impl fmt::Debug for OrchestratorExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OrchestratorExecutor")
            .field("options", &self.options)
            .field("cancel", &self.cancel)
            .field("events", &self.events.as_ref().map(|_| "sink"))
            .field("bundle", &self.bundle)
            .finish()
    }
}

impl OrchestratorExecutor {
    /// An executor with `options`; cancelled by `cancel` (and by signals once
    /// [`naam_launch::cancel::install_signal_handlers`] ran).
    pub fn new(options: OrchestratorOptions, cancel: Cancel) -> OrchestratorExecutor {
        OrchestratorExecutor {
            options,
            cancel,
            events: None,
            bundle: None,
        }
    }

    /// Sends every phase event to `sink` with the point's id.
    pub fn with_events(mut self, sink: EventSink) -> OrchestratorExecutor {
        self.events = Some(sink);
        self
    }

    /// The inventory file a plan runs on.
    pub fn inventory_path(&self, plan: &ExperimentPlan) -> Result<PathBuf, ExecutorError> {
        if let Some(path) = &self.options.inventory {
            return Ok(path.clone());
        }
        match &plan.testbed {
            Testbed::Inventory { path } => Ok(path.clone()),
            other => Err(ExecutorError::NotInventory {
                kind: other.kind_name(),
            }),
        }
    }

    /// Runs `point` and writes its raw files into `out_dir`; the orchestrator's state goes to
    /// `state_root/<point id>/` (see [`state_root_for`]). Returns the run record.
    pub fn run(
        &mut self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
        state_root: &Path,
    ) -> Result<RunRecord, ExecutorError> {
        let inventory = Inventory::load(&self.inventory_path(plan)?)?;
        let point_run = inventory::point_run(&inventory, plan, point, &self.options.roles)?;
        let artifacts = self.artifacts(&inventory, &point_run, state_root)?;
        let mut config = RunConfig::new(
            &point_run.run_id,
            point_run.warmup_ms,
            point_run.measure_ms,
            state_root.join(&point.id),
        );
        config.artifacts = Some(artifacts);
        config.connect = self.options.connect.clone();
        config.stop_grace_ms = self.options.stop_grace_ms;
        config.exit_wait_ms = self.options.exit_wait_ms;
        let events = &self.events;
        let observer = |event: &PhaseEvent| {
            if let Some(sink) = events {
                sink(&point.id, event);
            }
        };
        let record = run::run(
            &inventory,
            &point_run.launches,
            &config,
            &self.cancel,
            &observer,
        )?;
        match record.status {
            RunStatus::Complete => {}
            RunStatus::Cancelled => {
                return Err(ExecutorError::Cancelled {
                    record: config.results_dir.join(run::RUN_RECORD_FILE),
                });
            }
            status => {
                return Err(ExecutorError::Incomplete {
                    status,
                    summary: describe_incomplete(&record, &config.results_dir),
                });
            }
        }
        write_raw(&point_run, &record, &config.results_dir, out_dir)?;
        Ok(record)
    }

    /// The artifacts for the hosts a point uses: the role binaries, and a source bundle (made
    /// once per executor) when some host's architecture has no binary. Every used host is
    /// checked here, before anything connects.
    fn artifacts(
        &mut self,
        inventory: &Inventory,
        point_run: &PointRun,
        state_root: &Path,
    ) -> Result<ArtifactSet, ExecutorError> {
        let mut artifacts = ArtifactSet {
            role_binaries: self.options.role_binaries.clone(),
            ..ArtifactSet::default()
        };
        let used: Vec<&HostSpec> = inventory
            .hosts
            .iter()
            .filter(|h| point_run.launches.iter().any(|l| l.host == h.name))
            .collect();
        let needs_bundle = used
            .iter()
            .any(|h| !artifacts.role_binaries.contains_key(&h.arch));
        if needs_bundle && let Some(repo) = &self.options.source_repo {
            if self.bundle.is_none() {
                std::fs::create_dir_all(state_root).map_err(|e| ExecutorError::Local {
                    path: state_root.to_path_buf(),
                    message: e.to_string(),
                })?;
                let bundle =
                    deploy::make_source_bundle(repo, &state_root.join(SOURCE_BUNDLE_FILE))?;
                self.bundle = Some(bundle.path);
            }
            artifacts.source_bundle = self.bundle.clone();
        }
        for host in used {
            deploy::plan_host(host, host.arch, &artifacts)?;
        }
        Ok(artifacts)
    }
}

/// The default state folder for a point measured into `out_dir` (the runner's staging folder
/// `<run folder>/points/<id>.partial`): `<run folder>/orchestrator/`.
pub fn state_root_for(out_dir: &Path) -> Result<PathBuf, ExecutorError> {
    out_dir
        .parent()
        .and_then(Path::parent)
        .map(|run_folder| run_folder.join(STATE_DIR_NAME))
        .ok_or_else(|| ExecutorError::Local {
            path: out_dir.to_path_buf(),
            message: "no run folder above the point's folder".into(),
        })
}

impl PointExecutor for OrchestratorExecutor {
    fn name(&self) -> String {
        let inventory = self
            .options
            .inventory
            .as_ref()
            .map_or("the plan's inventory".to_string(), |p| {
                p.display().to_string()
            });
        format!(
            "orchestrator (real machines over SSH, {inventory}; NIC role = emulated-NIC process)"
        )
    }

    fn run_point(
        &mut self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
    ) -> Result<(), ExecError> {
        let state_root = match &self.options.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => state_root_for(out_dir),
        };
        state_root
            .and_then(|root| self.run(plan, point, out_dir, &root))
            .map(drop)
            .map_err(|e| e.into_exec_error(self.name()))
    }
}

/// Writes the raw point files from the collected ones, as the local testbed does, plus
/// `testbed.json` and `orchestrator.json`.
fn write_raw(
    point_run: &PointRun,
    record: &RunRecord,
    collected: &Path,
    out_dir: &Path,
) -> Result<(), ExecutorError> {
    let clients = point_run.machines.clients.len() as u32;
    let dirs = RoleDirs {
        host: collected.join(HOST_LAUNCH),
        nic: collected.join(NIC_LAUNCH),
        clients: (0..clients)
            .map(|k| collected.join(client_launch(k)))
            .collect(),
    };
    let gather = |e: crate::TestbedError| ExecutorError::Gather {
        dir: collected.to_path_buf(),
        message: e.to_string(),
    };
    let gathered = crate::point::gather_raw(&dirs, &point_run.policy, out_dir).map_err(gather)?;
    let pids: Vec<(String, u32)> = record
        .launches
        .iter()
        .filter_map(|(id, l)| l.pid.map(|pid| (id.clone(), pid)))
        .collect();
    let start_ns = record
        .start_at_unix_ns
        .and_then(|ns| u64::try_from(ns).ok())
        .unwrap_or(0);
    TestbedRecord::new(NETWORK_KIND, pids, start_ns, &gathered)
        .write(out_dir)
        .map_err(gather)?;
    write_json(&out_dir.join(raw::CLOCK_FILE), &clock_summary(record))?;
    write_json(&out_dir.join(ORCHESTRATOR_RECORD_FILE), record)
}

/// Each machine's measured clock, for the point's validity (see `naam_results::summary`).
fn clock_summary(record: &RunRecord) -> raw::ClockSummary {
    raw::ClockSummary {
        schema: raw::RAW_SCHEMA_VERSION,
        machines: record
            .hosts
            .iter()
            .filter_map(|(host, h)| {
                let clock = h.clock.as_ref()?;
                Some(raw::MachineClock {
                    host: host.clone(),
                    offset_ns: clock.offset_ns,
                    error_bound_ns: clock.error_bound_ns(),
                })
            })
            .collect(),
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ExecutorError> {
    let local = |message: String| ExecutorError::Local {
        path: path.to_path_buf(),
        message,
    };
    let text = serde_json::to_string_pretty(value).map_err(|e| local(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| local(e.to_string()))
}

/// Longest list of problems quoted in a failure message (the record has them all).
const PROBLEMS_QUOTED_MAX: usize = 8;

/// One paragraph: how the run ended, each node's coverage, the first problems, the record.
pub fn describe_incomplete(record: &RunRecord, results_dir: &Path) -> String {
    let mut text = format!(
        "run {} attempt {} ended {:?}",
        record.run_id, record.attempt, record.status
    );
    if let Some(error) = &record.error {
        text.push_str(&format!(": {error}"));
    }
    text.push_str("; coverage:");
    for node in record.coverage() {
        text.push_str(&format!(
            " {} {}/{} launches measured, {}/{} files{};",
            node.host,
            node.launches_measured,
            node.launches_total,
            node.files_collected,
            node.files_expected,
            node.lost
                .as_ref()
                .map_or(String::new(), |why| format!(" (lost: {why})"))
        ));
    }
    let problems: Vec<String> = record
        .launches
        .iter()
        .flat_map(|(id, l)| l.problems.iter().map(move |p| format!("{id}: {p}")))
        .collect();
    if !problems.is_empty() {
        let shown = problems
            .iter()
            .take(PROBLEMS_QUOTED_MAX)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        text.push_str(&format!(" problems: {shown}"));
        if problems.len() > PROBLEMS_QUOTED_MAX {
            text.push_str(&format!(
                " (+{} more)",
                problems.len() - PROBLEMS_QUOTED_MAX
            ));
        }
        text.push(';');
    }
    text.push_str(&format!(
        " record {}; run again to resume",
        results_dir.join(run::RUN_RECORD_FILE).display()
    ));
    text
}
