//! Issue 18's fault campaign, `kill -9` of each role mid-run on the local testbed: the point fails
//! with an error naming the role, and nothing is left behind — no role process, no region file in
//! the shared-memory directory (a killed host cannot remove its own; the launcher does).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use naam_executors::LocalExecutor;
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, Variant};

/// How long the killer waits for the role to appear.
const ROLE_WAIT: Duration = Duration::from_secs(60);
/// How long after the role appears it is killed (inside the measured phase: warm-up is 200 ms,
/// the host loads a small dataset first).
const KILL_AFTER: Duration = Duration::from_millis(1500);

/// One point at a time: each starts a full set of roles.
static ONE_POINT_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn plan() -> ExperimentPlan {
    ManifestBuilder::new(ExperimentId::MicaYcsbB)
        .seed(9)
        .series(&["naam-adaptive"])
        .workload("value_bytes", 8)
        .workload("buckets", 2048)
        .timing(200, 4000, 100)
        .offered(&[2000])
        .plan(Variant::Quick)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The processes whose working directory is `dir` (each role runs in its own).
fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// Waits for launch `launch` to run, then kills it with SIGKILL; returns its PID.
fn kill_when_running(roles: &Path, launch: &str) -> u32 {
    let dir: PathBuf = roles.join(launch);
    let deadline = Instant::now() + ROLE_WAIT;
    loop {
        if let Some(&pid) = processes_in(&dir).first() {
            std::thread::sleep(KILL_AFTER);
            // SAFETY: kill has no memory preconditions; the PID is a child of this test's
            // launcher, found by its working directory.
            assert_eq!(
                unsafe { libc::kill(pid as i32, libc::SIGKILL) },
                0,
                "kill {pid}"
            );
            return pid;
        }
        assert!(Instant::now() < deadline, "{launch} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_mid_run(launch: &str) {
    let _alone = ONE_POINT_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let plan = plan();
    let shm = tempfile::tempdir().unwrap();
    let mut options = common::local_options();
    options.shm_dir = shm.path().to_path_buf();
    let out = tempfile::tempdir().unwrap();
    let roles = out.path().join("roles");
    let (result, killed) = std::thread::scope(|scope| {
        let killer = scope.spawn(|| kill_when_running(&roles, launch));
        let result = LocalExecutor::new(options).run(&plan, &plan.points[0], out.path());
        (result, killer.join().unwrap())
    });
    let err = match result {
        Ok(_) => panic!("the point survived kill -9 of {launch} (PID {killed})"),
        Err(e) => e.to_string(),
    };
    println!("kill -9 {launch} (PID {killed}): {err}");
    assert!(err.contains(launch), "the error names {launch}: {err}");
    let left: Vec<_> = std::fs::read_dir(shm.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "region files left: {left:?}");
    let running = processes_in(&roles);
    assert!(running.is_empty(), "role processes left: {running:?}");
}

#[test]
fn kill_9_of_the_host_leaves_nothing_behind() {
    kill_mid_run("host");
}

#[test]
fn kill_9_of_the_nic_leaves_nothing_behind() {
    kill_mid_run("nic");
}

#[test]
fn kill_9_of_a_client_leaves_nothing_behind() {
    kill_mid_run("client-0");
}
