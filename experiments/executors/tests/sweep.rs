//! The start-of-run sweep removes what dead launchers left — region files in the shared-memory
//! directory and (as root) network namespaces — and nothing else: not a live launcher's, not a
//! name we did not make.

use std::path::Path;
use std::process::Command;

use naam_executors::sweep::{self, process_exists, sweep_dead_runs};
use naam_launch::netns;

/// A sweep removes every dead launcher's leftovers, so the two tests must not sweep at once.
static ONE_SWEEP_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_SWEEP_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The PID of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert!(!process_exists(pid), "PID {pid} was reused at once");
    pid
}

fn touch(dir: &Path, name: &str, bytes: usize) {
    std::fs::write(dir.join(name), vec![7u8; bytes]).unwrap();
}

#[test]
fn region_files_of_dead_launchers_go_and_every_other_file_stays() {
    let _alone = alone();
    let shm = tempfile::tempdir().unwrap();
    let dead = dead_pid();
    let live = std::process::id();
    let dead_files = [
        format!("naam-{dead}-0-0-17-r0"),
        format!("naam-{dead}-0-0-17-r1"),
    ];
    for name in &dead_files {
        touch(shm.path(), name, 100);
    }
    let kept = [
        format!("naam-{}-r0", sweep::run_id(0, 0)),
        format!("naam-{live}-1-0-5-r3"),
        format!("other-{dead}-0-0-17-r0"),
        format!("naam-{dead}-notes.txt"),
    ];
    for name in &kept {
        touch(shm.path(), name, 10);
    }
    let report = sweep_dead_runs(shm.path());
    println!("{}", report.describe());
    let mut removed: Vec<String> = report
        .shm_files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    removed.sort();
    assert_eq!(removed, dead_files.to_vec());
    assert_eq!(report.shm_bytes, 200);
    assert!(report.dead_launcher_pids.contains(&dead));
    for name in &kept {
        assert!(shm.path().join(name).exists(), "{name} was kept");
    }
    assert!(report.failures.is_empty(), "{:?}", report.failures);
}

/// As root (CI runs as root): a namespace named for a dead launcher is deleted, one of this live
/// process stays.
#[test]
fn namespaces_of_dead_launchers_are_deleted_as_root() {
    if !netns::have_root() {
        panic!("this test creates network namespaces: run it as root (CI does)");
    }
    let _alone = alone();
    let dead = dead_pid();
    let live = std::process::id();
    let dead_ns = format!("naam-psweep-{dead}-s");
    let live_ns = format!("naam-psweep-{live}-c");
    for name in [&dead_ns, &live_ns] {
        let status = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add {name}");
    }
    let shm = tempfile::tempdir().unwrap();
    let report = sweep_dead_runs(shm.path());
    let listed = netns::list().unwrap();
    let _ = netns::delete(&live_ns);
    assert!(
        report.namespaces.contains(&dead_ns),
        "{}",
        report.describe()
    );
    assert!(!listed.contains(&dead_ns), "{dead_ns} deleted");
    assert!(listed.contains(&live_ns), "{live_ns} kept");
    assert!(!report.namespaces.contains(&live_ns));
}
