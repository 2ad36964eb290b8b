//! The simulation testbed through the runner: a `kind = "sim"` plan's points run in parallel on
//! naam-sim into the same raw files, summaries and provenance as the local testbed's, labelled
//! "simulated (profile …)"; every answer verified; a parallel run writes exactly the files a
//! sequential one does.

use std::path::{Path, PathBuf};

use naam_executors::SimExecutor;
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, Variant};
use naam_results::raw::{self, ClientSummary};
use naam_runner::{Progress, RunOptions, run_plan};

fn experiments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The built manifest of `id` on the simulation testbed, as if it sat in `experiments/` (where
/// `profiles/` is).
fn sim_plan(builder: ManifestBuilder) -> ExperimentPlan {
    let text = builder.sim("bf2-r7525").text();
    naam_plan::parse_manifest(&text, &experiments_dir().join("built.toml"), Variant::Quick)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn mica_plan() -> ExperimentPlan {
    sim_plan(
        ManifestBuilder::new(ExperimentId::MicaYcsbB)
            .series(&["host", "nic", "client", "naam-adaptive"])
            .role("clients", 2)
            .variant_value("offered_load_ops_per_s", "[10000, 60000]"),
    )
}

fn options(results: &Path) -> RunOptions {
    RunOptions {
        results_root: results.to_path_buf(),
        repo_dir: experiments_dir().join(".."),
        manifest: "built.toml".into(),
        fresh_suffix: None,
        progress: Progress::Hidden,
        stop: None,
    }
}

/// Every point folder's raw files (not the runner's summary, which carries a time stamp).
fn raw_files(run_dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let points = run_dir.join("points");
    for point in std::fs::read_dir(&points).unwrap() {
        let point = point.unwrap().path();
        for file in std::fs::read_dir(&point).unwrap() {
            let file = file.unwrap().path();
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            if name != "summary.json" {
                let key = format!("{}/{name}", point.file_name().unwrap().to_string_lossy());
                out.push((key, std::fs::read(&file).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_sim_plan_runs_through_the_runner_labelled_and_verified() {
    let plan = mica_plan();
    let results = tempfile::tempdir().unwrap();
    let mut executor = SimExecutor::new(4).unwrap();
    let outcome = run_plan(&plan, &mut executor, &options(results.path())).unwrap();
    assert!(
        outcome.points_failed.is_empty(),
        "{:?}",
        outcome.points_failed
    );
    assert_eq!(outcome.points_measured, 8);
    let run_dir = PathBuf::from(&outcome.run_dir);
    let provenance = std::fs::read_to_string(run_dir.join("provenance.json")).unwrap();
    assert!(
        provenance.contains("\"testbed\": \"simulated (profile bf2-r7525)\""),
        "{provenance}"
    );
    for point in &plan.points {
        let dir = run_dir.join("points").join(&point.id);
        for k in 0..2 {
            let summary: ClientSummary =
                raw::read_json(&dir.join(raw::client_summary_file(k)), "client").unwrap();
            assert!(summary.completed > 0, "{}", point.id);
            assert_eq!(summary.verify_failures, 0, "{}", point.id);
            assert!(
                summary.errors.is_empty(),
                "{}: {:?}",
                point.id,
                summary.errors
            );
        }
        let testbed = std::fs::read_to_string(dir.join("testbed.json")).unwrap();
        assert!(
            testbed.contains("simulated (profile bf2-r7525)"),
            "{testbed}"
        );
    }
    assert!(
        outcome.points_invalid.is_empty(),
        "simulated clients are never late: {:?}",
        outcome.points_invalid
    );
}

#[test]
fn parallel_points_write_what_sequential_points_write() {
    let plan = sim_plan(
        ManifestBuilder::new(ExperimentId::LoadShift)
            .series(&["host", "naam-adaptive"])
            .variant_value("offered_load_ops_per_s", "[20000]"),
    );
    let (one, four) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut sequential = SimExecutor::new(1).unwrap();
    let a = run_plan(&plan, &mut sequential, &options(one.path())).unwrap();
    let mut parallel = SimExecutor::new(4).unwrap();
    let b = run_plan(&plan, &mut parallel, &options(four.path())).unwrap();
    assert!(a.points_failed.is_empty() && b.points_failed.is_empty());
    let (a, b) = (
        raw_files(Path::new(&a.run_dir)),
        raw_files(Path::new(&b.run_dir)),
    );
    assert!(!a.is_empty());
    assert_eq!(a, b);
}
