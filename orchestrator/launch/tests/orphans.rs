//! Issue 18: a role never outlives its launcher. The test runs itself as a launcher (re-executed
//! with an environment variable) that starts two `sleep`s — one through `die_with_parent`, as
//! the local transport starts roles, and one without, as a control — then `kill -9`s it: the
//! first must end, the second shows that it is the mechanism and not the kill that ended it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use naam_launch::local::die_with_parent;

const LAUNCHER_ENV: &str = "NAAM_TEST_ORPHAN_LAUNCHER";
const TEST_NAME: &str = "a_role_dies_with_its_launcher_even_after_kill_9";
/// How long the children would live on their own (a bound: the test ends them sooner).
const CHILD_LIFETIME_S: &str = "30";
/// Longest wait for the launcher's children to appear, and for the guarded one to end.
const WAIT_MAX: Duration = Duration::from_secs(10);

/// Whether `pid` is a live process (a zombie or a missing entry is not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

// The launcher never waits for its children: it is killed while they run, which is the point.
#[allow(clippy::zombie_processes)]
fn act_as_launcher(pid_file: &Path) {
    let mut guarded = Command::new("sleep");
    guarded.arg(CHILD_LIFETIME_S);
    die_with_parent(&mut guarded);
    let guarded = guarded.spawn().expect("spawn guarded sleep");
    let unguarded = Command::new("sleep")
        .arg(CHILD_LIFETIME_S)
        .spawn()
        .expect("spawn unguarded sleep");
    let pids = format!("{} {}", guarded.id(), unguarded.id());
    std::fs::write(pid_file.with_extension("part"), pids).expect("write pids");
    std::fs::rename(pid_file.with_extension("part"), pid_file).expect("publish pids");
    std::thread::sleep(Duration::from_secs(30));
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT_MAX;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {WAIT_MAX:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_role_dies_with_its_launcher_even_after_kill_9() {
    if let Some(pid_file) = std::env::var_os(LAUNCHER_ENV) {
        act_as_launcher(Path::new(&pid_file));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pids");
    let mut launcher = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
        .env(LAUNCHER_ENV, &pid_file)
        .spawn()
        .expect("start the launcher");
    let pids: Vec<u32> = wait_for("the launcher starts its children", || {
        let text = std::fs::read_to_string(&pid_file).ok()?;
        Some(text.split(' ').map(|p| p.parse().expect("pid")).collect())
    });
    let (guarded, unguarded) = (pids[0], pids[1]);
    assert!(alive(guarded) && alive(unguarded), "both children run");
    launcher.kill().expect("kill -9 the launcher");
    launcher.wait().expect("reap the launcher");
    wait_for("the guarded child ends with its launcher", || {
        (!alive(guarded)).then_some(())
    });
    let control_survived = alive(unguarded);
    // SAFETY: kill(2) of the control child this test started (through its launcher).
    unsafe { libc::kill(unguarded as libc::pid_t, libc::SIGKILL) };
    assert!(
        control_survived,
        "the unguarded child outlives the launcher: the guard, not the kill, ended the other"
    );
}
