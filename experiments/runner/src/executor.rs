//! The seam between the runner and whatever executes a point.

use std::path::{Path, PathBuf};

use naam_plan::{ExperimentPlan, PointPlan};

/// Executes one point of a plan, writing its raw files (naam_results::raw) into `out_dir`.
///
/// The local testbed and the in-process vm-cost executor (naam-executors) and the orchestrator
/// (naam-ssh: real machines) implement it; [`crate::synthetic::SyntheticExecutor`] stands in
/// for them in tests. The runner owns everything else: folders, summaries, sealing, resume, progress.
pub trait PointExecutor {
    /// What executes the points, recorded in the provenance and in every figure's footnote
    /// (`local testbed (emulated NIC)`, `synthetic: stands in for the testbed`).
    fn name(&self) -> String;

    /// What executes `plan`'s points, when that depends on the plan (the local testbed times
    /// vm-cost in process, with no testbed): recorded in the provenance. Defaults to
    /// [`PointExecutor::name`].
    fn name_for(&self, plan: &ExperimentPlan) -> String {
        let _ = plan;
        self.name()
    }

    /// The points this session will ask for, in the order it will ask, said once before the
    /// first [`PointExecutor::run_point`]: an executor that works ahead (the simulator's
    /// workers) works on these and no others (a resumed run's complete points are not redone).
    /// Defaults to nothing.
    fn will_run(&mut self, plan: &ExperimentPlan, todo: &[&PointPlan]) {
        let _ = (plan, todo);
    }

    /// Runs `point` of `plan`; `out_dir` is an empty folder for its raw files.
    fn run_point(
        &mut self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
    ) -> Result<(), ExecError>;
}

/// Why a point did not produce its raw files.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// This point failed; the runner records it and goes on with the next point.
    #[error("point failed: {message}")]
    PointFailed {
        /// What went wrong, with the role and its log if there is one.
        message: String,
    },
    /// The executor cannot run this plan at all (e.g. vm-cost needs the VM executor); the
    /// runner stops.
    #[error("{executor} cannot run this plan: {what}")]
    Unsupported {
        /// The executor's name.
        executor: String,
        /// What it cannot do.
        what: String,
    },
    /// The testbed is unusable or the user interrupted; the runner stops after recording.
    #[error("run aborted: {message}")]
    Aborted {
        /// Why.
        message: String,
    },
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl ExecError {
    /// Whether the runner should stop instead of going on with the next point.
    pub fn stops_run(&self) -> bool {
        matches!(
            self,
            ExecError::Unsupported { .. } | ExecError::Aborted { .. }
        )
    }
}
