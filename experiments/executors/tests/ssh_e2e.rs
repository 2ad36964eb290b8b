//! Plans run end to end through three real sshd machines (host0, nic0, client0) with the real
//! `naam-role`: the runner drives the orchestrator as its point executor, the points are
//! deployed, run and collected over SSH, and the runner summarizes and seals them exactly as it
//! does local runs.
//!
//! All three "machines" are this one (separate sshd instances, separate working directories,
//! LAN addresses 127.0.0.1-3), so the NIC role's shared-memory path to the host's regions works
//! here; on a real BlueField-2 it does not (see the crate documentation).

#[path = "../../../orchestrator/ssh/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use naam_executors::orchestrated::{ORCHESTRATOR_RECORD_FILE, STATE_DIR_NAME};
use naam_executors::{OrchestratorExecutor, OrchestratorOptions};
use naam_launch::Cancel;
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, Variant};
use naam_results::RunDir;
use naam_results::raw::{self, ClientSummary, ServerSummary};
use naam_runner::{Progress, RunOptions, RunOutcome, run_plan};
use naam_ssh::run::{Mark, Phase, RunRecord, RunStatus};
use support::Testbed;

/// Writes the hosts file and a quick MICA YCSB-B manifest beside it (one client, 2000 records,
/// 100 ms warm-up, 400 ms measured, on the inventory); loads the quick plan.
fn plan(testbed: &Testbed, series: &[&str]) -> (ExperimentPlan, PathBuf) {
    testbed.inventory();
    let manifest = ManifestBuilder::new(ExperimentId::MicaYcsbB)
        .seed(11)
        .series(series)
        .inventory("hosts.toml");
    let path = manifest.write(testbed.dir.path()).unwrap();
    let plan = naam_plan::load_manifest(&path, Variant::Quick).unwrap_or_else(|e| panic!("{e}"));
    (plan, path)
}

fn run_options(testbed: &Testbed, manifest: &Path) -> RunOptions {
    RunOptions {
        results_root: testbed.dir.path().join("results"),
        repo_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        manifest: manifest.display().to_string(),
        fresh_suffix: None,
        progress: Progress::Hidden,
        stop: None,
    }
}

/// One end-to-end run at a time: each runs three sshd machines and the role processes, and the
/// runs are timed (a second one on the same two cores only makes both slower).
static E2E: Mutex<()> = Mutex::new(());

fn executor() -> OrchestratorExecutor {
    OrchestratorExecutor::new(
        OrchestratorOptions::new(support::role_binary()),
        Cancel::new(),
    )
}

/// The raw files every traffic point has, locally or through the orchestrator.
fn raw_files() -> BTreeSet<String> {
    [
        raw::client_hlog_file(0),
        raw::client_summary_file(0),
        raw::SERVER_FILE.into(),
        raw::STEERING_FILE.into(),
        raw::SAMPLES_FILE.into(),
    ]
    .into_iter()
    .chain(["testbed.json".to_string()])
    .collect()
}

/// Checks a sealed point: its summary, its raw files in the results schema, the orchestrator's
/// record (phases in order, CPU and clock of every host, every file collected).
fn check_point(run: &RunDir, point_id: &str, series: &str) -> RunRecord {
    let summary = run
        .read_summary(point_id)
        .unwrap_or_else(|e| panic!("point {point_id}: {e}"));
    assert!(
        summary.traffic.is_some(),
        "point {point_id} summarized as traffic"
    );
    let dir = run.point_dir(point_id);
    for file in raw_files() {
        assert!(
            dir.join(&file).is_file(),
            "{point_id}: raw file {file} is missing"
        );
    }
    let client: ClientSummary =
        raw::read_json(&dir.join(raw::client_summary_file(0)), "client summary").unwrap();
    assert!(
        client.completed > 100,
        "{point_id}: completed {}",
        client.completed
    );
    assert_eq!(
        client.verify_failures, 0,
        "{point_id}: every answer verified"
    );
    let server: ServerSummary = raw::read_json(&dir.join(raw::SERVER_FILE), "server").unwrap();
    assert_eq!(server.policy, series);
    match series {
        "host" => assert!(
            server.host.completions > 0 && server.nic.completions == 0,
            "{server:?}"
        ),
        "nic" => assert!(server.nic.completions > 0, "{server:?}"),
        other => panic!("unexpected series {other}"),
    }
    let hlog = std::fs::read_to_string(dir.join(raw::client_hlog_file(0))).unwrap();
    assert!(
        hlog.contains("Tag=host,") && hlog.contains("Tag=nic,"),
        "tagged intervals"
    );
    let record: RunRecord =
        serde_json::from_slice(&std::fs::read(dir.join(ORCHESTRATOR_RECORD_FILE)).unwrap())
            .unwrap();
    assert_eq!(record.status, RunStatus::Complete);
    assert_eq!(
        record.phase_order(),
        [
            Phase::Deploy,
            Phase::Start,
            Phase::Warmup,
            Phase::Measure,
            Phase::Collect,
            Phase::Teardown
        ]
    );
    assert_eq!(
        record.hosts.keys().map(String::as_str).collect::<Vec<_>>(),
        ["client0", "host0", "nic0"]
    );
    for (name, host) in &record.hosts {
        assert!(
            host.cpu.is_some() && host.clock.is_some(),
            "{name}: CPU and clock recorded"
        );
    }
    for (id, launch) in &record.launches {
        assert!(
            launch.measured && launch.missing.is_empty(),
            "{id}: {launch:?}"
        );
    }
    record
}

fn assert_complete(outcome: &RunOutcome, points: u32) {
    assert!(
        outcome.points_failed.is_empty(),
        "failed: {:?}",
        outcome.points_failed
    );
    assert_eq!(outcome.points_measured, points, "{outcome:?}");
    assert_eq!(
        outcome.status,
        naam_results::RunStatus::Complete,
        "{outcome:?}"
    );
}

#[test]
fn a_quick_mica_plan_runs_end_to_end_through_ssh_with_results_like_a_local_run() {
    let _one_at_a_time = E2E.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let testbed = Testbed::start();
    let (plan, manifest) = plan(&testbed, &["host", "nic"]);
    let options = run_options(&testbed, &manifest);
    let mut executor = executor();
    let outcome = run_plan(&plan, &mut executor, &options).expect("the runner runs the plan");
    assert_complete(&outcome, 2);
    let run = RunDir::open(Path::new(&outcome.run_dir));
    for point in &plan.points {
        let record = check_point(&run, &point.id, point.series.as_str());
        assert_eq!(record.attempt, 1);
        let collected: BTreeSet<&str> = record.launches["host"]
            .collected
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert!(
            collected.contains("steering.jsonl") && collected.contains("stderr.log"),
            "{collected:?}"
        );
    }
    // The role binary went to every machine once: the second point found it in place.
    let first = &plan.points[0].id;
    let state = run.root().join(STATE_DIR_NAME);
    let second: RunRecord = serde_json::from_slice(
        &std::fs::read(state.join(&plan.points[1].id).join("run.json")).unwrap(),
    )
    .unwrap();
    for (name, host) in &second.hosts {
        let deploy = host.deploy.as_ref().expect("deployed");
        assert_eq!(
            deploy.uploaded_count(),
            0,
            "{name}: nothing uploaded again after {first}"
        );
    }
    // A rerun finds every point complete and leaves them alone.
    let again = run_plan(&plan, &mut executor, &options).unwrap();
    assert_eq!((again.points_skipped, again.points_measured), (2, 0));
}

#[test]
fn a_role_killed_mid_run_fails_the_point_with_coverage_and_a_rerun_completes_it() {
    let _one_at_a_time = E2E.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let testbed = Testbed::start();
    let (plan, manifest) = plan(&testbed, &["host"]);
    let options = run_options(&testbed, &manifest);
    let client_workdir = testbed.workdir("client0");
    let kills = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&kills);
    let mut executor = executor().with_events(Box::new(move |_point, event| {
        // Only on the first attempt: the client's process group is killed by its PID as the
        // warm-up begins (the run's first timed phase; its start is the common start time).
        if event.phase == Phase::Warmup
            && event.mark == Mark::Begin
            && seen.load(Ordering::SeqCst) == 0
        {
            seen.fetch_add(
                support::kill_role_processes_under(&client_workdir),
                Ordering::SeqCst,
            );
        }
    }));
    let first = run_plan(&plan, &mut executor, &options).expect("the runner records the failure");
    assert_eq!(
        kills.load(Ordering::SeqCst),
        1,
        "the client was killed once"
    );
    assert_eq!(first.points_measured, 0);
    assert_eq!(first.status, naam_results::RunStatus::Partial);
    let [failure] = first.points_failed.as_slice() else {
        panic!("one failure: {first:?}")
    };
    assert!(failure.error.contains("ended Partial"), "{}", failure.error);
    assert!(
        failure.error.contains("client0 0/1 launches measured"),
        "{}",
        failure.error
    );
    assert!(
        failure.error.contains("host0 1/1 launches measured"),
        "{}",
        failure.error
    );
    let run = RunDir::open(Path::new(&first.run_dir));
    let point = &plan.points[0];
    let state = run.root().join(STATE_DIR_NAME).join(&point.id);
    let partial: RunRecord =
        serde_json::from_slice(&std::fs::read(state.join("run.json")).unwrap()).unwrap();
    assert_eq!(partial.status, RunStatus::Partial);
    assert!(!partial.launches["client-0"].measured);
    assert!(!run.is_complete(&point.id));

    let second = run_plan(&plan, &mut executor, &options).expect("the rerun");
    assert_complete(&second, 1);
    let record = check_point(&run, &point.id, "host");
    assert_eq!(
        record.attempt, 2,
        "the interrupted attempt was measured again"
    );
    assert!(
        state.join("attempts").join("1").join("run.json").is_file(),
        "the first attempt is kept"
    );
}
