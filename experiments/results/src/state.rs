//! `run.json`: what a run has and what it still lacks. Rewritten atomically after every point,
//! so a run killed at any instant says, in a valid file, which points are missing.

use naam_plan::ExperimentPlan;
use serde::{Deserialize, Serialize};

use crate::error::ResultsError;
use crate::layout::RunDir;
use crate::time;

/// Version of `run.json`.
pub const RUN_STATE_SCHEMA_VERSION: u32 = 1;

/// Whether every point is complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Every point of the plan has a summary.
    Complete,
    /// Some points are missing (not run yet, killed, or failed); `naam run` resumes.
    Partial,
}

/// A point whose execution or summary failed in the latest session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointFailure {
    /// Point id.
    pub point: String,
    /// The error.
    pub error: String,
}

/// `run.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// [`RUN_STATE_SCHEMA_VERSION`].
    pub schema: u32,
    /// Experiment id.
    pub experiment: String,
    /// `quick` or `full`.
    pub variant: String,
    /// Run folder name.
    pub run_id: String,
    /// Complete or partial.
    pub status: RunStatus,
    /// Points in the plan.
    pub points_total: u32,
    /// Points with a summary.
    pub points_complete: u32,
    /// Points without a summary, in plan order (includes failed and in-progress points).
    pub missing: Vec<String>,
    /// Points that failed in the latest session, with the error.
    pub failed: Vec<PointFailure>,
    /// The point being measured when this file was written (a killed run names it here).
    pub in_progress: Option<String>,
    /// When this file was written, RFC 3339 UTC.
    pub updated_at: String,
}

impl RunState {
    /// The state of `run` as its folder shows it (complete = sealed point folder).
    pub fn scan(
        run: &RunDir,
        plan: &ExperimentPlan,
        failed: Vec<PointFailure>,
        in_progress: Option<String>,
    ) -> RunState {
        let missing: Vec<String> = plan
            .points
            .iter()
            .filter(|p| !run.is_complete(&p.id))
            .map(|p| p.id.clone())
            .collect();
        let points_total = plan.points.len() as u32;
        RunState {
            schema: RUN_STATE_SCHEMA_VERSION,
            experiment: plan.id.to_string(),
            variant: plan.variant.to_string(),
            run_id: run.run_id(),
            status: if missing.is_empty() {
                RunStatus::Complete
            } else {
                RunStatus::Partial
            },
            points_total,
            points_complete: points_total - missing.len() as u32,
            missing,
            failed,
            in_progress,
            updated_at: time::rfc3339(time::now_unix()),
        }
    }
}

/// What `naam status` reports for one run folder: the folder's truth, plus what its last
/// `run.json` said (a killed runner's last words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    /// The run folder.
    pub path: String,
    /// State recomputed from the folder now.
    pub state: RunState,
    /// Points with a `.partial` folder (killed mid-point; redone on resume).
    pub partial_points: Vec<String>,
    /// The point `run.json` says was in progress, if the runner did not finish.
    pub interrupted_point: Option<String>,
    /// Whether a runner holds the lock now.
    pub locked: bool,
}

/// Recomputes a run folder's state without changing anything.
pub fn inspect_run(run: &RunDir) -> Result<RunReport, ResultsError> {
    let plan = run.read_plan()?;
    let recorded = run.read_state().ok();
    let failed = recorded
        .as_ref()
        .map(|s| s.failed.clone())
        .unwrap_or_default();
    let state = RunState::scan(run, &plan, failed, None);
    Ok(RunReport {
        path: run.root().display().to_string(),
        state,
        partial_points: run.partial_points()?,
        interrupted_point: recorded.and_then(|s| s.in_progress),
        locked: run.root().join(crate::layout::LOCK_FILE).exists(),
    })
}
