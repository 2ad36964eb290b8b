//! The offload-scaling experiment with NAAM's NIC series and both iPipe series on the
//! simulation testbed (profile bf2-r7525), through the runner, the frames and the figure: every
//! answer verified (each tenant its own GET program, whose salt every reply carries: NAAM's
//! patched eBPF and iPipe's native actors alike), every point labelled simulated, the figure
//! drawn with all three series.

use std::path::{Path, PathBuf};

use naam_executors::SimExecutor;
use naam_plan::{ExperimentId, ManifestBuilder, Variant};
use naam_results::raw::{self, ClientSummary};
use naam_runner::{Progress, RunOptions, run_plan};

fn experiments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

#[test]
fn offload_scaling_with_both_ipipe_series_runs_to_a_figure() {
    let text = ManifestBuilder::new(ExperimentId::OffloadScaling)
        .series(&["nic", "ipipe", "ipipe-processes"])
        .sim("bf2-r7525")
        .workload_name("tenant_programs", "distinct")
        .timing(20, 40, 20)
        .variant_value("repetitions", 1)
        .offered(&[40_000])
        .tenants(&[1, 16])
        .text();
    let plan =
        naam_plan::parse_manifest(&text, &experiments_dir().join("built.toml"), Variant::Quick)
            .unwrap_or_else(|e| panic!("{e}"));
    let results = tempfile::tempdir().unwrap();
    let options = RunOptions {
        results_root: results.path().to_path_buf(),
        repo_dir: experiments_dir().join(".."),
        manifest: "built.toml".into(),
        fresh_suffix: None,
        progress: Progress::Hidden,
        stop: None,
    };
    let mut executor = SimExecutor::new(2).unwrap();
    let outcome = run_plan(&plan, &mut executor, &options).unwrap();
    assert!(
        outcome.points_failed.is_empty(),
        "{:?}",
        outcome.points_failed
    );
    assert_eq!(outcome.points_measured, 6);
    let run_dir = PathBuf::from(&outcome.run_dir);
    for point in &plan.points {
        let dir = run_dir.join("points").join(&point.id);
        let summary: ClientSummary =
            raw::read_json(&dir.join(raw::client_summary_file(0)), "client").unwrap();
        assert!(summary.completed > 0, "{}", point.id);
        assert_eq!(summary.verify_failures, 0, "{}", point.id);
        assert!(
            summary.errors.is_empty(),
            "{}: {:?}",
            point.id,
            summary.errors
        );
        let server = std::fs::read_to_string(dir.join(raw::SERVER_FILE)).unwrap();
        assert!(
            server.contains(&format!("\"policy\": \"{}\"", point.series)),
            "{server}"
        );
    }
    naam_analysis::analyze_run(&run_dir).unwrap();
    let points = std::fs::read_to_string(run_dir.join("frames/points.csv")).unwrap();
    for series in ["nic", "ipipe", "ipipe-processes"] {
        assert!(
            points.contains(&format!(",{series},")),
            "{series} missing: {points}"
        );
    }
    let figures = tempfile::tempdir().unwrap();
    let figure = naam_analysis::plot_run(&run_dir, figures.path()).unwrap();
    assert!(!figure.synthetic && !figure.partial, "{figure:?}");
    let svg = std::fs::read_to_string(&figure.svg).unwrap();
    assert!(
        svg.contains("ipipe-processes"),
        "the legend names the iPipe series"
    );
}
