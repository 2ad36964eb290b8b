//! A real runner process killed by PID (SIGKILL) at several moments, then resumed: no file is
//! ever torn, `run.json` and `naam status` say what is missing, and the resumed run skips
//! every point sealed before the kill.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use naam_plan::{ExperimentId, Variant, load_manifest, manifest_path};
use naam_results::atomic::is_temp_name;
use naam_results::hlog::read_interval_log;
use naam_results::layout::{PARTIAL_SUFFIX, RUN_FILE};
use naam_results::{RunDir, RunState, RunStatus, inspect_run};

/// Pause per point, so kills land between and inside points.
const PAUSE_PER_POINT_MS: u64 = 120;
/// Longest wait for the runner to seal the points a kill waits for.
const WAIT_MAX: Duration = Duration::from_secs(120);
/// Poll period while waiting.
const POLL: Duration = Duration::from_millis(10);

fn manifest() -> PathBuf {
    manifest_path(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        ExperimentId::MicaYcsbB,
    )
}

fn spawn(results: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_naam-runner-synthetic"))
        .arg(manifest())
        .arg(results)
        .arg(PAUSE_PER_POINT_MS.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn the runner")
}

fn sealed_points(run_root: &Path) -> usize {
    std::fs::read_dir(run_root.join("points"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().ends_with(PARTIAL_SUFFIX))
                .count()
        })
        .unwrap_or(0)
}

/// Every non-temp file in the run folder is whole: JSON parses, logs decode.
fn assert_no_torn_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("list") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let inside_partial = path
            .ancestors()
            .any(|a| a.to_string_lossy().ends_with(PARTIAL_SUFFIX));
        if path.is_dir() {
            assert_no_torn_files(&path);
        } else if is_temp_name(&name) || inside_partial {
            continue;
        } else if name.ends_with(".json") {
            let bytes = std::fs::read(&path).expect("read");
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .unwrap_or_else(|e| panic!("{}: torn JSON: {e}", path.display()));
        } else if name.ends_with(".hlog") {
            read_interval_log(&path).unwrap_or_else(|e| panic!("torn log: {e}"));
        }
    }
}

#[test]
fn killed_runs_leave_whole_files_and_resume_where_they_stopped() {
    let plan = load_manifest(&manifest(), Variant::Quick).expect("valid");
    let results = tempfile::tempdir().expect("tempdir");
    let run = RunDir::at(
        results.path(),
        plan.id.as_str(),
        &naam_results::run_id(&plan, None),
    );
    // Kill after the 2nd sealed point, then 5 ms into the next point, then after 2 more.
    let kills: [(usize, Duration); 3] = [
        (2, Duration::ZERO),
        (0, Duration::from_millis(5)),
        (2, Duration::from_millis(60)),
    ];
    let mut sealed_before = 0;
    for (round, (more_points, extra_delay)) in kills.into_iter().enumerate() {
        let mut child = spawn(results.path());
        let target = sealed_before + more_points;
        let started = Instant::now();
        // This round's session has started once the provenance lists it.
        let started_session = || {
            run.read_provenance()
                .is_ok_and(|p| p.sessions.len() > round)
        };
        while sealed_points(run.root()) < target || !started_session() {
            assert!(
                started.elapsed() < WAIT_MAX,
                "round {round}: runner made no progress"
            );
            assert!(
                child.try_wait().expect("poll child").is_none(),
                "round {round}: runner exited early"
            );
            std::thread::sleep(POLL);
        }
        std::thread::sleep(extra_delay);
        child.kill().expect("SIGKILL by PID");
        child.wait().expect("reap");

        assert_no_torn_files(run.root());
        let recorded: RunState =
            serde_json::from_slice(&std::fs::read(run.root().join(RUN_FILE)).expect("read"))
                .expect("run.json whole");
        assert_eq!(recorded.status, RunStatus::Partial);
        let report = inspect_run(&run).expect("inspect");
        assert_eq!(report.state.status, RunStatus::Partial);
        assert_eq!(
            report.state.points_complete as usize,
            sealed_points(run.root())
        );
        assert_eq!(
            report.state.missing.len(),
            plan.points.len() - sealed_points(run.root())
        );
        assert!(
            report.locked,
            "a killed runner leaves its lock, taken over on resume"
        );
        sealed_before = sealed_points(run.root());
    }

    let outcome = Command::new(env!("CARGO_BIN_EXE_naam-runner-synthetic"))
        .arg(manifest())
        .arg(results.path())
        .arg("0")
        .output()
        .expect("run to completion");
    assert!(
        outcome.status.success(),
        "{}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&outcome.stdout).expect("outcome JSON");
    assert_eq!(
        summary["points_skipped"].as_u64(),
        Some(sealed_before as u64),
        "sealed points are not measured again"
    );
    assert_eq!(summary["status"], "complete");
    let report = inspect_run(&run).expect("inspect");
    assert_eq!(report.state.points_complete as usize, plan.points.len());
    assert!(report.partial_points.is_empty() && !report.locked);
    assert_eq!(run.read_provenance().expect("provenance").sessions.len(), 4);
    assert_no_torn_files(run.root());
}
