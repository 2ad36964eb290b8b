//! What the runner's test crates share: the committed manifests and in-process run options.

use std::path::{Path, PathBuf};

use naam_plan::{ExperimentId, ExperimentPlan, Variant, load_manifest, manifest_path};
use naam_runner::{Progress, RunOptions};

/// The committed manifest of `id`, quick variant.
pub fn plan(id: ExperimentId) -> ExperimentPlan {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    load_manifest(&manifest_path(&dir, id), Variant::Quick).expect("committed manifest is valid")
}

/// Options for a run under `root`, without a progress bar or a stop flag.
pub fn options(root: &Path) -> RunOptions {
    RunOptions {
        results_root: root.to_path_buf(),
        repo_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        manifest: "experiments/test.toml".to_string(),
        fresh_suffix: None,
        progress: Progress::Hidden,
        stop: None,
    }
}
