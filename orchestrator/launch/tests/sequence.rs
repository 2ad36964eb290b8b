//! The launch sequence, once, over two transports without any daemon: the recording (virtual
//! clock, injected faults) and real local processes (`/bin/sh` stand-ins for the roles). Phase
//! order, start and stop order, and the failure paths — a role that dies, a machine that cannot
//! be reached or is lost mid-run, a launch that never gets ready, Ctrl-C.

use std::collections::BTreeMap;
use std::path::Path;

use naam_launch::local::LocalTransport;
use naam_launch::plan::{Ends, LaunchSpec, Role, validate_launches};
use naam_launch::record::{EndState, Mark, Phase, PhaseEvent, RunRecord, RunStatus};
use naam_launch::recording::{Fault, RecordingTransport};
use naam_launch::sequence::{self, SequenceConfig};
use naam_launch::{Cancel, RemoteCommand, Transport};

const WARMUP_MS: u64 = 100;
const MEASURE_MS: u64 = 300;

fn sh(script: &str) -> RemoteCommand {
    RemoteCommand::from_argv(["/bin/sh", "-c", script]).unwrap()
}

const SERVER: &str = "echo up > server.txt; touch ready; trap 'echo stopped > stopped.txt; exit 0' TERM; i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done";
const CLIENT: &str = "i=0; while [ ! -s start_at ] && [ $i -lt 400 ]; do sleep 0.01; i=$((i+1)); done; [ -s timeline.json ] || exit 4; sleep 0.5; echo done > result.txt";
const DYING_CLIENT: &str =
    "i=0; while [ ! -s start_at ] && [ $i -lt 400 ]; do sleep 0.01; i=$((i+1)); done; exit 3";

/// Host and NIC servers and one client, listed out of order (the sequence orders them).
fn launches(client_script: &str) -> Vec<LaunchSpec> {
    let server = |id: &str, machine: &str, role| {
        let mut launch = LaunchSpec::new(id, machine, role, sh(SERVER))
            .ready_when("ready")
            .with_outputs(["server.txt", "stopped.txt"]);
        launch.ends = Ends::WhenStopped;
        launch
    };
    vec![
        LaunchSpec::new("client-0", "client0", Role::Client, sh(client_script))
            .with_outputs(["result.txt"]),
        server("nic", "nic0", Role::Nic),
        server("host", "host0", Role::Host),
    ]
}

fn config(results_dir: &Path) -> SequenceConfig {
    SequenceConfig {
        run_id: "test-run".into(),
        warmup_ms: WARMUP_MS,
        measure_ms: MEASURE_MS,
        results_dir: results_dir.to_path_buf(),
        start_lead_ms: 200,
        ready_wait_ms: 5_000,
        ready_poll_ms: 10,
        liveness_poll_ms: 20,
        exit_wait_ms: 5_000,
        stop_grace_ms: 2_000,
    }
}

/// Runs the sequence over `transport`; `observer` sees every event.
fn run<T: Transport>(
    transport: &mut T,
    launches: Vec<LaunchSpec>,
    results_dir: &Path,
    cancel: &Cancel,
    observer: &(dyn Fn(&PhaseEvent) + Sync),
) -> RunRecord {
    let ordered = validate_launches(&launches, |_, _| Ok(())).unwrap();
    let config = config(results_dir);
    let record = sequence::new_record(&ordered, &config, 1, |l| l.id.clone());
    sequence::run(transport, ordered, &config, record, cancel, observer)
}

fn recording(faults: &[Fault]) -> RecordingTransport {
    let run_dirs = ["host", "nic", "client-0"]
        .map(|id| (id.to_string(), format!("runs/{id}")))
        .into();
    let mut transport = RecordingTransport::new(run_dirs, BTreeMap::new());
    for fault in faults {
        transport = transport.with_fault(fault.clone());
    }
    transport
}

fn recorded(faults: &[Fault]) -> (RunRecord, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut transport = recording(faults);
    let record = run(
        &mut transport,
        launches(CLIENT),
        dir.path(),
        &Cancel::new(),
        &|_| {},
    );
    (record, transport.lines().to_vec())
}

/// Index of the first recorded line starting with `prefix`.
fn at(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in\n{}", lines.join("\n")))
}

fn has(lines: &[String], prefix: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix))
}

#[test]
fn the_recorded_sequence_runs_every_phase_and_role_in_order() {
    let (record, lines) = recorded(&[]);
    assert_eq!(record.status, RunStatus::Complete, "{lines:#?}");
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
    // Each group starts only after the previous one is ready; the common start comes after
    // every launch runs, and before the measurement.
    assert!(at(&lines, "start host host") < at(&lines, "host ready"));
    assert!(at(&lines, "host ready") < at(&lines, "start nic nic"));
    assert!(at(&lines, "nic ready") < at(&lines, "start client client-0"));
    assert!(at(&lines, "start client client-0") < at(&lines, "publish the common start"));
    assert!(at(&lines, "publish the common start") < at(&lines, "== warmup"));
    // Clients end by themselves; servers are stopped, NIC before host; then files, teardown.
    assert!(at(&lines, "== collect") < at(&lines, "wait for client-0"));
    assert!(at(&lines, "wait for client-0") < at(&lines, "stop nic"));
    assert!(at(&lines, "stop nic") < at(&lines, "stop host"));
    assert!(at(&lines, "stop host") < at(&lines, "fetch host0:runs/host/server.txt"));
    assert!(at(&lines, "fetch") < at(&lines, "== teardown"));
    assert!(
        !has(&lines, "stop client-0"),
        "a client that ended is not stopped"
    );
    assert!(
        record
            .launches
            .values()
            .all(|l| l.measured && l.missing.is_empty())
    );
}

#[test]
fn a_role_that_dies_mid_run_leaves_a_partial_run_with_the_others_stopped() {
    let fault = Fault::ExitsAfter {
        launch: "client-0".into(),
        after_ms: WARMUP_MS + MEASURE_MS / 2,
        status: 3,
    };
    let (record, lines) = recorded(&[fault]);
    assert_eq!(record.status, RunStatus::Partial, "{lines:#?}");
    let client = &record.launches["client-0"];
    assert!(!client.measured);
    assert_eq!(client.end, Some(EndState::Exited { status: 3 }));
    assert!(
        client
            .problems
            .iter()
            .any(|p| p.starts_with("ended during Measure")),
        "{:?}",
        client.problems
    );
    assert!(
        record.launches["host"].measured,
        "the others keep their measurement"
    );
    assert!(has(&lines, "stop nic") && has(&lines, "stop host"));
    assert!(at(&lines, "stop host") < at(&lines, "== teardown"));
}

#[test]
fn an_unreachable_machine_fails_the_run_before_anything_starts() {
    let (record, lines) = recorded(&[Fault::Unreachable("nic0".into())]);
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(record.error.as_deref(), Some("nic0 does not answer"));
    assert!(!has(&lines, "start "), "nothing started: {lines:#?}");
    assert!(has(&lines, "== teardown"));
    assert!(record.launches.values().all(|l| !l.measured));
}

#[test]
fn a_launch_that_never_gets_ready_fails_the_run_and_is_stopped() {
    let (record, lines) = recorded(&[Fault::NeverReady("host".into())]);
    assert_eq!(record.status, RunStatus::Failed);
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("host not ready after")),
        "{:?}",
        record.error
    );
    assert!(!has(&lines, "start nic"), "the next group does not start");
    assert!(at(&lines, "== teardown") < at(&lines, "stop host"));
}

#[test]
fn a_machine_lost_mid_run_is_recorded_and_the_run_is_partial() {
    let fault = Fault::LostAfter {
        machine: "client0".into(),
        after_ms: WARMUP_MS + 50,
    };
    let (record, lines) = recorded(&[fault]);
    assert_eq!(record.status, RunStatus::Partial, "{lines:#?}");
    let lost = record.hosts["client0"].lost.as_deref().unwrap_or("");
    assert!(lost.starts_with("Measure:"), "{lost}");
    assert!(!record.launches["client-0"].measured);
    let client0 = record
        .coverage()
        .into_iter()
        .find(|c| c.host == "client0")
        .unwrap();
    assert_eq!((client0.launches_measured, client0.files_collected), (0, 0));
    assert!(
        has(&lines, "reach client0 again"),
        "one more try to collect"
    );
}

#[test]
fn ctrl_c_mid_run_cancels_and_stops_every_role() {
    let dir = tempfile::tempdir().unwrap();
    let mut transport = recording(&[]);
    let cancel = Cancel::new();
    let on_measure = cancel.clone();
    let record = run(
        &mut transport,
        launches(CLIENT),
        dir.path(),
        &cancel,
        &move |e: &PhaseEvent| {
            if e.phase == Phase::Measure && e.mark == Mark::Begin {
                on_measure.cancel();
            }
        },
    );
    let lines = transport.lines();
    assert_eq!(record.status, RunStatus::Cancelled);
    for id in ["client-0", "nic", "host"] {
        assert!(
            has(lines, &format!("stop {id}")),
            "{id} stopped: {lines:#?}"
        );
    }
    assert!(at(lines, "== teardown") < at(lines, "stop client-0"));
    assert!(!has(lines, "== collect"));
}

/// Whether any live (not zombie) process is still in process group `pgid`, from `/proc`.
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // Fields after the command (which may hold spaces): state, ppid, pgrp, ...
        let Some(tail) = stat.rsplit_once(')').map(|(_, t)| t) else {
            return false;
        };
        let fields: Vec<&str> = tail.split_whitespace().collect();
        fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string()
    })
}

fn local_run(client: &str, cancel: &Cancel) -> (RunRecord, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("roles");
    let mut transport = LocalTransport::new(root.clone());
    let on_measure = cancel.clone();
    let cancel_at_measure = client == "cancel";
    let script = if cancel_at_measure { CLIENT } else { client };
    let record = run(
        &mut transport,
        launches(script),
        &root,
        cancel,
        &move |e: &PhaseEvent| {
            if cancel_at_measure && e.phase == Phase::Measure && e.mark == Mark::Begin {
                on_measure.cancel();
            }
        },
    );
    drop(transport);
    (record, dir)
}

#[test]
fn local_processes_run_the_same_sequence_and_leave_their_files() {
    let (record, dir) = local_run(CLIENT, &Cancel::new());
    assert_eq!(record.status, RunStatus::Complete, "{record:#?}");
    assert_eq!(record.phase_order().len(), 6);
    let roles = dir.path().join("roles");
    assert_eq!(
        std::fs::read_to_string(roles.join("host/stopped.txt")).unwrap(),
        "stopped\n",
        "servers get SIGTERM and shut down cleanly"
    );
    let timeline: naam_types::Timeline =
        serde_json::from_slice(&std::fs::read(roles.join("client-0/timeline.json")).unwrap())
            .unwrap();
    assert_eq!(
        (timeline.warmup_ms, timeline.measure_ms),
        (WARMUP_MS, MEASURE_MS)
    );
    assert_eq!(
        record.start_at_unix_ns.map(|ns| ns as u64),
        Some(timeline.start_realtime_ns),
        "one machine: no clock offset"
    );
    let client = &record.launches["client-0"];
    assert!(client.collected.iter().any(|f| f.name == "result.txt"));
    assert_eq!(client.end, Some(EndState::Exited { status: 0 }));
    assert!(
        record
            .launches
            .values()
            .all(|l| !group_alive(l.pid.unwrap()))
    );
}

#[test]
fn a_local_role_that_dies_is_recorded_and_the_servers_are_stopped() {
    let (record, _dir) = local_run(DYING_CLIENT, &Cancel::new());
    assert_eq!(record.status, RunStatus::Partial);
    let client = &record.launches["client-0"];
    assert_eq!(client.end, Some(EndState::Exited { status: 3 }));
    assert!(!client.measured);
    assert_eq!(record.launches["host"].end, Some(EndState::Terminated));
    assert!(
        record
            .launches
            .values()
            .all(|l| !group_alive(l.pid.unwrap()))
    );
}

#[test]
fn ctrl_c_stops_every_local_process() {
    let (record, _dir) = local_run("cancel", &Cancel::new());
    assert_eq!(record.status, RunStatus::Cancelled);
    assert!(record.launches.values().all(|l| l.end.is_some()));
    for (id, l) in &record.launches {
        assert!(!group_alive(l.pid.unwrap()), "{id} still runs: {l:?}");
    }
}
