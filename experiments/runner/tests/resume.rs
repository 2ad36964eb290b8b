//! Resume in process: an executor that fails or aborts at chosen points, then a rerun.

mod common;

use std::path::Path;

use common::{options, plan};
use naam_plan::{ExperimentId, ExperimentPlan, PointPlan, manifest_path};
use naam_results::{RunDir, RunStatus, inspect_run};
use naam_runner::synthetic::SyntheticExecutor;
use naam_runner::*;

/// Delegates to the synthetic executor but fails one point and aborts at another.
struct Faulty {
    inner: SyntheticExecutor,
    fail_at: u32,
    abort_at: u32,
    calls: Vec<String>,
    /// The lists `will_run` was given.
    told: Vec<Vec<String>>,
}

impl Faulty {
    fn new(fail_at: u32, abort_at: u32) -> Faulty {
        Faulty {
            inner: SyntheticExecutor::default(),
            fail_at,
            abort_at,
            calls: Vec::new(),
            told: Vec::new(),
        }
    }
}

impl PointExecutor for Faulty {
    fn name(&self) -> String {
        "faulty test executor".to_string()
    }

    fn will_run(&mut self, _: &ExperimentPlan, todo: &[&PointPlan]) {
        self.told.push(todo.iter().map(|p| p.id.clone()).collect());
    }

    fn run_point(
        &mut self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
    ) -> Result<(), ExecError> {
        self.calls.push(point.id.clone());
        if point.index == self.fail_at {
            return Err(ExecError::PointFailed {
                message: "host role exited with status 3".to_string(),
            });
        }
        if point.index == self.abort_at {
            std::fs::write(out_dir.join("client-0.hlog"), b"half a file").expect("write");
            return Err(ExecError::Aborted {
                message: "testbed lost".to_string(),
            });
        }
        self.inner.run_point(plan, point, out_dir)
    }
}

#[test]
fn failed_and_aborted_points_are_recorded_and_rerun() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let root = tempfile::tempdir().expect("tempdir");
    let mut faulty = Faulty::new(2, 5);
    let first = run_plan(&plan, &mut faulty, &options(root.path())).expect("run");
    assert_eq!(first.status, RunStatus::Partial);
    assert_eq!(first.points_measured, 4, "points 0, 1, 3, 4");
    assert_eq!(first.points_failed.len(), 2);
    assert!(
        first.points_failed[0].error.contains("host role exited"),
        "{:?}",
        first.points_failed
    );
    assert!(
        first
            .stopped
            .as_deref()
            .is_some_and(|s| s.contains("testbed lost"))
    );
    assert_eq!(faulty.calls.len(), 6, "nothing after the abort");

    let run = RunDir::open(Path::new(&first.run_dir));
    let report = inspect_run(&run).expect("inspect");
    assert_eq!(report.state.points_complete, 4);
    assert_eq!(
        report.partial_points,
        vec![plan.points[2].id.clone(), plan.points[5].id.clone()]
    );
    assert_eq!(report.state.failed.len(), 2);

    let mut good = Faulty::new(u32::MAX, u32::MAX);
    let second = run_plan(&plan, &mut good, &options(root.path())).expect("resume");
    let complete = [0, 1, 3, 4].map(|i| plan.points[i].id.clone());
    assert_eq!(
        good.told,
        vec![good.calls.clone()],
        "told once, before any point, exactly the points it is then asked for"
    );
    assert!(good.calls.iter().all(|id| !complete.contains(id)));
    assert_eq!(second.run_id, first.run_id, "same plan, same folder");
    assert_eq!(second.points_skipped, 4);
    assert_eq!(second.points_measured as usize, plan.points.len() - 4);
    assert_eq!(second.partial_redone, report.partial_points);
    assert_eq!(second.status, RunStatus::Complete);
    let provenance = run.read_provenance().expect("provenance");
    assert_eq!(provenance.sessions.len(), 2);
    assert_eq!(provenance.sessions[0].executor, "faulty test executor");
    assert_eq!(
        run.read_summary(&plan.points[0].id)
            .expect("summary")
            .session,
        0
    );
    assert_eq!(
        run.read_summary(&plan.points[2].id)
            .expect("summary")
            .session,
        1
    );

    let third = run_plan(&plan, &mut good, &options(root.path())).expect("rerun");
    assert_eq!(third.points_skipped as usize, plan.points.len());
    assert_eq!(third.points_measured, 0);
}

#[test]
fn a_stop_flag_ends_the_run_resumably() {
    let plan = plan(ExperimentId::LoadShift);
    let root = tempfile::tempdir().expect("tempdir");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut opts = options(root.path());
    opts.stop = Some(stop);
    let outcome = run_plan(&plan, &mut SyntheticExecutor::default(), &opts).expect("run");
    assert_eq!(outcome.points_measured, 0);
    assert!(outcome.stopped.is_some());
    let status = status(root.path(), None);
    assert_eq!(status.runs.len(), 1);
    let text = describe_run(&status.runs[0]);
    assert!(
        text.contains(&format!("0/{} points complete", plan.points.len())),
        "{text}"
    );
    assert!(text.contains("missing"), "{text}");
}

/// Stands in for a Ctrl-C that arrives while a point runs: the executor completes the point
/// (its roles wrote every file, as a role cut short by the signal does) and the stop flag is
/// set meanwhile.
struct CtrlCDuring {
    inner: SyntheticExecutor,
    at: u32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    calls: Vec<u32>,
}

impl PointExecutor for CtrlCDuring {
    fn name(&self) -> String {
        "synthetic, Ctrl-C during a point".to_string()
    }

    fn run_point(
        &mut self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
    ) -> Result<(), ExecError> {
        self.calls.push(point.index);
        let result = self.inner.run_point(plan, point, out_dir);
        if point.index == self.at {
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        result
    }
}

#[test]
fn issue_17_a_point_interrupted_by_ctrl_c_is_never_sealed_and_resume_remeasures_it() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let root = tempfile::tempdir().expect("tempdir");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut opts = options(root.path());
    opts.stop = Some(std::sync::Arc::clone(&stop));
    let mut interrupted = CtrlCDuring {
        inner: SyntheticExecutor::default(),
        at: 1,
        stop,
        calls: Vec::new(),
    };
    let first = run_plan(&plan, &mut interrupted, &opts).expect("run");
    assert_eq!(
        interrupted.calls,
        vec![0, 1],
        "no point starts after Ctrl-C"
    );
    assert_eq!(
        first.points_measured, 1,
        "only the point before Ctrl-C is sealed"
    );
    let cut = &plan.points[1].id;
    assert!(
        first.stopped.as_deref().is_some_and(|s| s.contains(cut)),
        "{:?}",
        first.stopped
    );
    let run = RunDir::open(Path::new(&first.run_dir));
    assert!(!run.is_complete(cut), "the interrupted point was sealed");
    let report = inspect_run(&run).expect("inspect");
    assert_eq!(report.partial_points, vec![cut.clone()]);
    assert_eq!(report.interrupted_point.as_ref(), Some(cut));

    let second = run_plan(
        &plan,
        &mut SyntheticExecutor::default(),
        &options(root.path()),
    )
    .expect("resume");
    assert_eq!(second.partial_redone, vec![cut.clone()]);
    assert_eq!(second.points_skipped, 1);
    assert_eq!(second.status, RunStatus::Complete);
    assert_eq!(
        run.read_summary(cut).expect("summary").session,
        1,
        "remeasured"
    );
}

#[test]
fn vm_cost_points_summarize_their_report() {
    let plan = plan(ExperimentId::VmCost);
    let root = tempfile::tempdir().expect("tempdir");
    let outcome = run_plan(
        &plan,
        &mut SyntheticExecutor::default(),
        &options(root.path()),
    )
    .expect("run");
    assert_eq!(outcome.status, RunStatus::Complete);
    let run = RunDir::open(Path::new(&outcome.run_dir));
    let summary = run.read_summary(&plan.points[0].id).expect("summary");
    let report = summary.vm_cost.expect("vm-cost report");
    assert_eq!(report.entries.len(), 2);
    assert!(summary.validity.is_valid());
}

#[test]
fn check_reports_both_variants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let report = check(&manifest_path(&dir, ExperimentId::OffloadScaling)).expect("valid");
    assert_eq!(report.experiment, "offload-scaling");
    assert_eq!(report.variants.len(), 2);
    assert!(report.variants[0].run_id.starts_with("quick-"));
    assert_eq!(report.variants[0].config_hash.len(), 64);
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn a_resume_under_other_code_says_the_run_mixes_code_versions() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let root = tempfile::tempdir().expect("tempdir");
    let repo = tempfile::tempdir().expect("tempdir");
    git(repo.path(), &["init", "-q"]);
    std::fs::write(repo.path().join("code.rs"), "// version 1\n").unwrap();
    git(repo.path(), &["add", "code.rs"]);
    git(repo.path(), &["commit", "-q", "-m", "v1"]);
    let mut opts = options(root.path());
    opts.repo_dir = repo.path().to_path_buf();
    let mut faulty = Faulty::new(u32::MAX, 3);
    let first = run_plan(&plan, &mut faulty, &opts).expect("first session");
    assert_eq!(first.code_changed, None, "one session, one code version");

    std::fs::write(repo.path().join("code.rs"), "// version 2\n").unwrap();
    git(repo.path(), &["commit", "-q", "-am", "v2"]);
    let second = run_plan(&plan, &mut SyntheticExecutor::default(), &opts).expect("resume");
    assert_eq!(second.status, RunStatus::Complete);
    let note = second.code_changed.expect("the resume under v2 is flagged");
    assert!(
        note.contains("earlier sessions") && note.contains("--fresh"),
        "{note}"
    );

    // Nothing left to measure: a third session under the same code adds no note.
    let third = run_plan(&plan, &mut SyntheticExecutor::default(), &opts).expect("rerun");
    assert_eq!((third.points_measured, third.code_changed), (0, None));
}
