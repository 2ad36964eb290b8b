//! Shared fixture: a run of a committed manifest's quick plan by the synthetic executor
//! (seeded model latencies written as genuine raw files; it stands in for the testbed).

use std::path::{Path, PathBuf};

use naam_plan::{ExperimentId, ExperimentPlan, Variant, load_manifest, manifest_path};
use naam_runner::synthetic::SyntheticExecutor;
use naam_runner::{Progress, RunOptions, run_plan};

pub fn plan(id: ExperimentId) -> ExperimentPlan {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    load_manifest(&manifest_path(&dir, id), Variant::Quick).expect("committed manifest is valid")
}

/// Runs `plan` synthetically under `results_root` and returns the run folder.
pub fn synthetic_run(plan: &ExperimentPlan, results_root: &Path) -> PathBuf {
    let options = RunOptions {
        results_root: results_root.to_path_buf(),
        repo_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        manifest: format!("experiments/{}.toml", plan.id),
        fresh_suffix: None,
        progress: Progress::Hidden,
        stop: None,
    };
    let outcome =
        run_plan(plan, &mut SyntheticExecutor::default(), &options).expect("synthetic run");
    PathBuf::from(outcome.run_dir)
}
