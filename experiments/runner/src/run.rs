//! Running a plan: point by point into the results store, with progress, resume and status.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use naam_plan::{ExperimentPlan, PointPlan};
use naam_results::state::PointFailure;
use naam_results::{ResultsError, RunDir, RunState, RunStatus, run_id, summarize_point};
use serde::{Deserialize, Serialize};

use crate::executor::{ExecError, PointExecutor};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// An indicatif bar with ETA on stderr (hidden automatically when stderr is not a terminal).
    Bar,
    /// Nothing (for `--json` and tests).
    Hidden,
}

/// Options of one `naam run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where run folders go (`results/`).
    pub results_root: PathBuf,
    /// The git checkout, for the provenance's code identity.
    pub repo_dir: PathBuf,
    /// The manifest as the user named it (recorded in the provenance).
    pub manifest: String,
    /// A suffix for a fresh run of a configuration that already has a run folder.
    pub fresh_suffix: Option<String>,
    /// Progress display.
    pub progress: Progress,
    /// Set to stop (Ctrl-C); the run stays resumable. A point during which it was set is left
    /// unfinished (never sealed: a signal may have cut its roles short) and is measured again
    /// when the run resumes; no point starts once it is set.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Errors of the runner itself (an executor's point failures are recorded, not returned).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The results store refused (folder, lock, configuration mismatch, I/O).
    #[error(transparent)]
    Results(#[from] ResultsError),
}

/// What a run did: the `--json` output of `naam run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// Experiment id.
    pub experiment: String,
    /// `quick` or `full`.
    pub variant: String,
    /// Run folder name.
    pub run_id: String,
    /// Run folder.
    pub run_dir: String,
    /// Complete or partial after this session.
    pub status: RunStatus,
    /// Points in the plan.
    pub points_total: u32,
    /// Points already complete before this session (skipped).
    pub points_skipped: u32,
    /// Points measured and sealed in this session.
    pub points_measured: u32,
    /// Points of this session whose summary says invalid.
    pub points_invalid: Vec<String>,
    /// Points that failed in this session.
    pub points_failed: Vec<PointFailure>,
    /// Points a killed session left partial, redone in this one.
    pub partial_redone: Vec<String>,
    /// Set when earlier sessions of this run ran other code than this one: the run then mixes
    /// code versions (each point's summary names its session; `provenance.json` each session's
    /// code).
    pub code_changed: Option<String>,
    /// Why the session stopped early, if it did.
    pub stopped: Option<String>,
    /// Wall time of this session.
    pub elapsed_ms: u64,
}

/// Runs (or resumes) `plan` with `executor`: skips complete points, redoes partial ones,
/// seals each point with its summary, and keeps `run.json` current after every point.
pub fn run_plan(
    plan: &ExperimentPlan,
    executor: &mut dyn PointExecutor,
    options: &RunOptions,
) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let id = run_id(plan, options.fresh_suffix.as_deref());
    let run = RunDir::at(&options.results_root, plan.id.as_str(), &id);
    std::fs::create_dir_all(run.root()).map_err(|source| ResultsError::Io {
        path: run.root().to_path_buf(),
        action: "create folder",
        source,
    })?;
    let _lock = run.lock()?;
    let mut provenance = run.create_or_resume(
        plan,
        &options.manifest,
        &options.repo_dir,
        &executor.name_for(plan),
    )?;
    let session = provenance.sessions.len() as u32 - 1;
    let partial_redone = run.clean_leftovers()?;
    let todo: Vec<&PointPlan> = plan
        .points
        .iter()
        .filter(|p| !run.is_complete(&p.id))
        .collect();
    let mut outcome = RunOutcome {
        experiment: plan.id.to_string(),
        variant: plan.variant.to_string(),
        run_id: id,
        run_dir: run.root().display().to_string(),
        status: RunStatus::Partial,
        points_total: plan.points.len() as u32,
        points_skipped: (plan.points.len() - todo.len()) as u32,
        points_measured: 0,
        points_invalid: Vec::new(),
        points_failed: Vec::new(),
        partial_redone,
        code_changed: None,
        stopped: None,
        elapsed_ms: 0,
    };
    if !todo.is_empty() {
        outcome.code_changed = code_change(&provenance.sessions);
    }
    executor.will_run(plan, &todo);
    let bar = progress_bar(options.progress, plan, todo.len());
    let stopped = || stop_requested(options);
    let mut points = PointLoop {
        run: &run,
        plan,
        executor,
        session,
    };
    let interrupted = points.measure(todo, &mut outcome, &bar, &stopped)?;
    bar.finish_and_clear();
    let state = RunState::scan(&run, plan, outcome.points_failed.clone(), interrupted);
    run.write_state(&state)?;
    if let Some(last) = provenance.sessions.last_mut() {
        last.ended_at = Some(naam_results::time::rfc3339(naam_results::time::now_unix()));
    }
    run.write_provenance(&provenance)?;
    outcome.status = state.status;
    outcome.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(outcome)
}

/// Whether the user asked the run to stop (Ctrl-C sets the flag).
fn stop_requested(options: &RunOptions) -> bool {
    options
        .stop
        .as_ref()
        .is_some_and(|s| s.load(Ordering::SeqCst))
}

/// One session's measuring of a run's points.
struct PointLoop<'a> {
    run: &'a RunDir,
    plan: &'a ExperimentPlan,
    executor: &'a mut dyn PointExecutor,
    session: u32,
}

impl PointLoop<'_> {
    /// Measures `todo` in order, recording each point's outcome, until done, stopped or a point
    /// fails in a way that stops the run; returns the point interrupted mid-measurement, if any.
    fn measure(
        &mut self,
        todo: Vec<&PointPlan>,
        outcome: &mut RunOutcome,
        bar: &ProgressBar,
        stopped: &dyn Fn() -> bool,
    ) -> Result<Option<String>, RunError> {
        let (run, plan, session) = (self.run, self.plan, self.session);
        let mut interrupted = None;
        for point in todo {
            if stopped() {
                outcome.stopped = Some("interrupted; run again to resume".to_string());
                break;
            }
            bar.set_message(point.id.clone());
            run.write_state(&RunState::scan(
                run,
                plan,
                outcome.points_failed.clone(),
                Some(point.id.clone()),
            ))?;
            match run_one(run, plan, point, &mut *self.executor, session, stopped)? {
                PointResult::Interrupted => {
                    interrupted = Some(point.id.clone());
                    outcome.stopped = Some(format!(
                        "interrupted while measuring {}: left unfinished, measured again when the run resumes",
                        point.id
                    ));
                    break;
                }
                PointResult::Sealed { valid } => {
                    outcome.points_measured += 1;
                    if !valid {
                        outcome.points_invalid.push(point.id.clone());
                    }
                }
                PointResult::Failed(error) => {
                    let stops = error.stops_run();
                    outcome.points_failed.push(PointFailure {
                        point: point.id.clone(),
                        error: error.to_string(),
                    });
                    if stops {
                        outcome.stopped = Some(error.to_string());
                        break;
                    }
                }
            }
            bar.inc(plan.point_planned_ms());
        }
        Ok(interrupted)
    }
}

/// Describes how this (last) session's code differs from the earlier sessions', if it does.
fn code_change(sessions: &[naam_results::Session]) -> Option<String> {
    let (this, earlier) = sessions.split_last()?;
    let name = |s: &naam_results::Session| {
        let commit = s
            .code
            .commit
            .as_deref()
            .map_or("no commit", |c| &c[..c.len().min(12)]);
        let dirty = s
            .code
            .dirty_diff_sha256
            .as_deref()
            .map_or(String::new(), |h| {
                format!("+dirty {}", &h[..h.len().min(12)])
            });
        format!("{commit}{dirty}")
    };
    let mut others: Vec<String> = earlier
        .iter()
        .filter(|s| s.code != this.code)
        .map(name)
        .collect();
    others.dedup();
    (!others.is_empty()).then(|| {
        format!(
            "earlier sessions of this run ran code {}; this one runs {}; points keep their session (see provenance.json), --fresh starts a run of one code version",
            others.join(", "),
            name(this)
        )
    })
}

enum PointResult {
    Sealed {
        valid: bool,
    },
    /// The stop flag was set while the point ran: its `.partial` folder stays for resume.
    Interrupted,
    Failed(ExecError),
}

fn run_one(
    run: &RunDir,
    plan: &ExperimentPlan,
    point: &PointPlan,
    executor: &mut dyn PointExecutor,
    session: u32,
    stopped: &dyn Fn() -> bool,
) -> Result<PointResult, RunError> {
    let staging = run.begin_point(&point.id)?;
    let executed = executor.run_point(plan, point, &staging);
    // Checked after the executor returns: a Ctrl-C during the point may have reached its roles
    // (they stop early and write short files), so the point is never sealed, valid or not.
    if stopped() {
        return Ok(PointResult::Interrupted);
    }
    if let Err(e) = executed {
        return Ok(PointResult::Failed(e));
    }
    match summarize_point(plan, point, &staging, session) {
        Ok(summary) => {
            let valid = summary.validity.is_valid();
            run.seal_point(&point.id, &summary)?;
            Ok(PointResult::Sealed { valid })
        }
        Err(e) => Ok(PointResult::Failed(ExecError::PointFailed {
            message: format!("raw files do not summarize: {e}"),
        })),
    }
}

fn progress_bar(progress: Progress, plan: &ExperimentPlan, points: usize) -> ProgressBar {
    let target = match progress {
        Progress::Bar => ProgressDrawTarget::stderr(),
        Progress::Hidden => ProgressDrawTarget::hidden(),
    };
    let total_ms = plan.point_planned_ms() * points as u64;
    let bar = ProgressBar::with_draw_target(Some(total_ms), target);
    let template = "{prefix} [{bar:30}] {percent:>3}% elapsed {elapsed} ETA {eta} {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("{} ({}, {points} points)", plan.id, plan.variant));
    bar.enable_steady_tick(Duration::from_millis(PROGRESS_TICK_MS));
    bar
}

/// Redraw period of the progress bar.
const PROGRESS_TICK_MS: u64 = 250;

/// The run folder a plan maps to (without creating it).
pub fn run_dir_for(
    results_root: &Path,
    plan: &ExperimentPlan,
    fresh_suffix: Option<&str>,
) -> RunDir {
    RunDir::at(results_root, plan.id.as_str(), &run_id(plan, fresh_suffix))
}
