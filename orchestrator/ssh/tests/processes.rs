//! Remote processes on a real sshd machine: background start with PID, poll, exit status,
//! stop by PID with TERM → KILL escalation, logs kept in the run directory. The processes are
//! stand-ins (`/bin/sh -c` scripts), not role binaries.

mod support;

use std::fs;

use naam_ssh::RemoteCommand;
use naam_ssh::process::{self, ProcessState, StopOutcome};
use naam_ssh::ssh::{ConnectOptions, Connection};
use support::Testbed;

fn connect(testbed: &Testbed) -> Connection {
    Connection::open(
        testbed.inventory().host("host0").unwrap(),
        &ConnectOptions::default(),
    )
    .unwrap()
}

fn sh(script: &str) -> RemoteCommand {
    RemoteCommand::from_argv(["/bin/sh", "-c", script, "naam-standin"]).unwrap()
}

#[test]
fn a_finished_process_reports_its_exit_status_and_keeps_its_logs() {
    let testbed = Testbed::start();
    let mut connection = connect(&testbed);
    let run_dir = testbed.workdir("host0").join("p1").display().to_string();
    let started = process::start(
        &mut connection,
        &run_dir,
        &sh("echo out; echo err >&2; exit 4"),
    )
    .unwrap();
    assert!(process::wait_until_ended(&mut connection, &started, 10_000).unwrap());
    assert_eq!(
        process::poll(&mut connection, &started).unwrap(),
        ProcessState::Exited { status: 4 }
    );
    assert_eq!(
        fs::read_to_string(format!("{run_dir}/stdout.log")).unwrap(),
        "out\n"
    );
    assert_eq!(
        fs::read_to_string(format!("{run_dir}/stderr.log")).unwrap(),
        "err\n"
    );
    assert_eq!(
        fs::read_to_string(format!("{run_dir}/pid")).unwrap().trim(),
        started.pid.to_string()
    );
    assert_eq!(
        process::stop(&mut connection, &started, 1_000).unwrap(),
        StopOutcome::AlreadyEnded(ProcessState::Exited { status: 4 })
    );
}

#[test]
fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let testbed = Testbed::start();
    let mut connection = connect(&testbed);
    let run_dir = testbed.workdir("host0").join("p2").display().to_string();
    let stubborn =
        sh("trap '' TERM; i=0; while [ \"$i\" -lt 3000 ]; do sleep 0.1; i=$((i+1)); done");
    let started = process::start(&mut connection, &run_dir, &stubborn).unwrap();
    assert!(started.start_ticks.is_some(), "identity recorded at start");
    assert_eq!(
        process::poll(&mut connection, &started).unwrap(),
        ProcessState::Running
    );
    assert_eq!(
        process::stop(&mut connection, &started, 500).unwrap(),
        StopOutcome::Killed
    );
    assert!(
        !support::session_is_live(started.pid),
        "the whole group is gone"
    );
}

#[test]
fn children_of_a_stopped_process_are_stopped_with_it() {
    let testbed = Testbed::start();
    let mut connection = connect(&testbed);
    let run_dir = testbed.workdir("host0").join("p3").display().to_string();
    let forking = sh("sleep 300 & echo $! > child; wait");
    let started = process::start(&mut connection, &run_dir, &forking).unwrap();
    let child_file = format!("{run_dir}/child");
    let mut child = None;
    for _ in 0..100 {
        child = fs::read_to_string(&child_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        if child.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let child = child.expect("the stand-in wrote its child's PID");
    assert_eq!(
        process::stop(&mut connection, &started, 2_000).unwrap(),
        StopOutcome::Terminated
    );
    assert!(
        !support::is_live(child),
        "the child in the same process group was stopped too"
    );
}

/// Seconds of the short lease these tests start processes under.
const SHORT_LEASE_S: u64 = 2;
/// Upper bound on waiting for an expired lease to stop a process (lease, one watchdog tick, the
/// TERM, slack for a loaded machine).
const LEASE_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

#[test]
fn a_process_nobody_polls_is_stopped_when_its_lease_expires() {
    let testbed = Testbed::start();
    let mut connection = connect(&testbed);
    let run_dir = testbed.workdir("host0").join("p4").display().to_string();
    let orphan = sh("sleep 300 & wait");
    let started =
        process::start_with_lease(&mut connection, &run_dir, &orphan, SHORT_LEASE_S).unwrap();
    drop(connection);
    let deadline = std::time::Instant::now() + LEASE_STOP_WAIT;
    while support::session_is_live(started.pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        !support::session_is_live(started.pid),
        "the lease expired and the whole group was stopped"
    );
    let stderr = fs::read_to_string(format!("{run_dir}/stderr.log")).unwrap();
    assert!(stderr.contains("lease expired"), "{stderr}");
}

#[test]
fn polling_renews_the_lease() {
    let testbed = Testbed::start();
    let mut connection = connect(&testbed);
    let run_dir = testbed.workdir("host0").join("p5").display().to_string();
    let started =
        process::start_with_lease(&mut connection, &run_dir, &sh("sleep 300"), SHORT_LEASE_S)
            .unwrap();
    // Three lease times, polled every 300 ms: never expired.
    for _ in 0..(SHORT_LEASE_S * 10) {
        assert_eq!(
            process::poll(&mut connection, &started).unwrap(),
            ProcessState::Running
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_eq!(
        process::stop(&mut connection, &started, 2_000).unwrap(),
        StopOutcome::Terminated
    );
}
