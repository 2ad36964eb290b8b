//! End-to-end runs through three real sshd machines (host0, nic0, client0) with *stand-in* role
//! processes: small `/bin/sh -c` scripts playing the host and NIC servers (write a file, touch a
//! readiness file, write another on SIGTERM) and the client (wait for the common start time,
//! run warm-up + measurement with `sleep`, write a result). Phase 2 replaces them with the real
//! `naam-role` binary.

mod support;

use std::fs;
use std::path::Path;
use std::sync::Mutex;

use naam_ssh::cancel::Cancel;
use naam_ssh::collect::ATTEMPTS_DIR;
use naam_ssh::deploy::{ArtifactSet, sha256_file};
use naam_ssh::run::{
    EndState, Ends, LaunchSpec, Mark, Phase, PhaseEvent, Readiness, RunConfig, RunRecord,
    RunStatus, run,
};
use naam_ssh::{Arch, Inventory, RemoteCommand, Role};
use support::Testbed;

const WARMUP_MS: u64 = 300;
const MEASURE_MS: u64 = 700;

const SERVER_SCRIPT: &str = r#"echo "role=$NAAM_ROLE lan=$NAAM_LAN_ADDRESS run=$NAAM_RUN_ID" > server.txt
touch ready
trap 'echo stopped > stopped.txt; exit 0' TERM
i=0; while [ "$i" -lt 3000 ]; do sleep 0.1; i=$((i+1)); done"#;

const CLIENT_SCRIPT: &str = r#"i=0; while [ ! -s "$NAAM_START_FILE" ] && [ "$i" -lt 600 ]; do sleep 0.05; i=$((i+1)); done
[ -s "$NAAM_START_FILE" ] || exit 3
start=$(cat "$NAAM_START_FILE")
i=0; while [ "$(date +%s%N)" -lt "$start" ] && [ "$i" -lt 3000 ]; do sleep 0.01; i=$((i+1)); done
began=$(date +%s%N)
total=$((NAAM_WARMUP_MS + NAAM_MEASURE_MS))
sleep "$((total / 1000)).$(printf %03d $((total % 1000)))"
echo "start_at=$start began=$began" > result.txt"#;

fn sh(script: &str, name: &str) -> RemoteCommand {
    RemoteCommand::from_argv(["/bin/sh", "-c", script, name]).unwrap()
}

/// Stand-in roles: host and NIC servers, one client.
fn stand_in_launches() -> Vec<LaunchSpec> {
    let server = |id: &str, host: &str, role| LaunchSpec {
        id: id.into(),
        host: host.into(),
        role,
        command: sh(SERVER_SCRIPT, "naam-standin-server"),
        readiness: Readiness::FileExists("ready".into()),
        outputs: vec!["server.txt".into(), "stopped.txt".into()],
        inputs: vec![],
        ends: Ends::for_role(role),
    };
    vec![
        // Deliberately listed out of order: the run starts them host, NIC, client.
        LaunchSpec {
            id: "client-0".into(),
            host: "client0".into(),
            role: Role::Client,
            command: sh(CLIENT_SCRIPT, "naam-standin-client"),
            readiness: Readiness::Running,
            outputs: vec!["result.txt".into()],
            inputs: vec![],
            ends: Ends::AfterMeasurement,
        },
        server("nic-0", "nic0", Role::Nic),
        server("host-0", "host0", Role::Host),
    ]
}

fn config(testbed: &Testbed, run_id: &str) -> RunConfig {
    let mut config = RunConfig::new(
        run_id,
        WARMUP_MS,
        MEASURE_MS,
        testbed.dir.path().join("results").join(run_id),
    );
    config.exit_wait_ms = 10_000;
    config
}

fn quiet(_: &PhaseEvent) {}

/// The process group of a launch is gone (checked on this box, where the "machines" live).
fn assert_not_running(record: &RunRecord) {
    for (id, launch) in &record.launches {
        if let Some(pid) = launch.pid {
            assert!(
                !support::session_is_live(pid),
                "{id}: process group {pid} still running after the run"
            );
        }
    }
}

fn begin_order(record: &RunRecord) -> Vec<Phase> {
    record.phase_order()
}

/// Deploys the client stand-in as the "role binary" (a shell script) and launches the client
/// through it, by the workdir-relative path `bin/naam-role`.
fn deploy_client_stand_in(testbed: &Testbed, config: &mut RunConfig, launches: &mut [LaunchSpec]) {
    let script = testbed.dir.path().join("naam-role-standin");
    fs::write(&script, format!("#!/bin/sh\n{CLIENT_SCRIPT}\n")).unwrap();
    let mut artifacts = ArtifactSet::default();
    artifacts
        .role_binaries
        .insert(Arch::local().unwrap(), script);
    config.artifacts = Some(artifacts);
    let client = launches
        .iter_mut()
        .find(|l| l.role == Role::Client)
        .unwrap();
    client.command = RemoteCommand::new("bin/naam-role").unwrap();
}

#[test]
fn stand_in_roles_run_through_every_phase_in_order() {
    let testbed = Testbed::start();
    let inventory = testbed.inventory();
    let mut config = config(&testbed, "phases");
    let mut launches = stand_in_launches();
    deploy_client_stand_in(&testbed, &mut config, &mut launches);
    let record = run(&inventory, &launches, &config, &Cancel::new(), &quiet).unwrap();
    assert_eq!(
        record.status,
        RunStatus::Complete,
        "error {:?}; launches {:#?}",
        record.error,
        record.launches
    );
    assert_eq!(
        begin_order(&record),
        vec![
            Phase::Deploy,
            Phase::Start,
            Phase::Warmup,
            Phase::Measure,
            Phase::Collect,
            Phase::Teardown
        ]
    );
    // Every phase ends before the next begins, and time never runs backwards.
    let marks: Vec<(Phase, Mark)> = record
        .events
        .iter()
        .filter(|e| e.mark != Mark::Note)
        .map(|e| (e.phase, e.mark))
        .collect();
    for pair in marks.chunks(2) {
        assert_eq!(pair[0].0, pair[1].0, "{marks:?}");
        assert_eq!(
            (pair[0].1, pair[1].1),
            (Mark::Begin, Mark::End),
            "{marks:?}"
        );
    }
    assert!(
        record
            .events
            .windows(2)
            .all(|w| w[0].at_unix_ns <= w[1].at_unix_ns)
    );
    // Dependency order: host, then NIC, then client.
    let started: Vec<&str> = record
        .events
        .iter()
        .filter_map(|e| {
            e.detail
                .strip_suffix(" started on host0")
                .or(e.detail.strip_suffix(" started on nic0"))
                .or(e.detail.strip_suffix(" started on client0"))
        })
        .collect();
    assert_eq!(started, vec!["host-0", "nic-0", "client-0"]);
    check_collected_files(&config.results_dir, &record);
    // The client began at the common start time, not before.
    let result = fs::read_to_string(config.results_dir.join("client-0/result.txt")).unwrap();
    let field = |name: &str| -> i64 {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        field("start_at="),
        record.start_at_unix_ns.unwrap() + record.hosts["client0"].clock.unwrap().offset_ns
    );
    assert!(field("began=") >= field("start_at="));
    // Servers saw their environment and were stopped by SIGTERM before collection.
    let server = fs::read_to_string(config.results_dir.join("nic-0/server.txt")).unwrap();
    assert_eq!(server.trim(), "role=nic lan=127.0.0.2 run=phases");
    assert_eq!(
        fs::read_to_string(config.results_dir.join("host-0/stopped.txt")).unwrap(),
        "stopped\n"
    );
    assert_eq!(record.launches["host-0"].end, Some(EndState::Terminated));
    assert_eq!(
        record.launches["client-0"].end,
        Some(EndState::Exited { status: 0 })
    );
    for (name, host) in &record.hosts {
        let cpu = host.cpu.unwrap_or_else(|| panic!("{name}: no CPU sample"));
        let busy = cpu
            .busy_fraction()
            .expect("ticks passed during the measurement");
        assert!((0.0..=1.0).contains(&busy), "{name}: {busy}");
        // All three machines share this box's clock: the true offset is 0, so the estimate
        // must lie within its own error bound.
        let clock = host.clock.unwrap();
        assert!(
            clock.offset_ns.unsigned_abs() <= clock.error_bound_ns(),
            "{name}: {clock:?}"
        );
    }
    for (name, host) in &record.hosts {
        assert_eq!(
            host.deploy.as_ref().map(|d| d.uploaded_count()),
            Some(1),
            "{name}: the stand-in binary"
        );
        assert_eq!(
            host.workdir.as_deref(),
            Some(testbed.workdir(name).to_str().unwrap())
        );
    }
    assert_not_running(&record);
    let run_json = fs::read_to_string(config.results_dir.join("run.json")).unwrap();
    let private_key = fs::read_to_string(&testbed.client_key).unwrap();
    assert!(
        !run_json.contains(private_key.lines().nth(1).unwrap()),
        "no key material in the record"
    );
    let on_disk: RunRecord =
        serde_json::from_str(&fs::read_to_string(config.results_dir.join("run.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk, record);
}

fn check_collected_files(results_dir: &Path, record: &RunRecord) {
    for (id, launch) in &record.launches {
        assert!(
            launch.missing.is_empty(),
            "{id}: missing {:?}; problems {:?}",
            launch.missing,
            launch.problems
        );
        let names: Vec<&str> = launch.collected.iter().map(|f| f.name.as_str()).collect();
        assert!(
            names.contains(&"stdout.log") && names.contains(&"stderr.log"),
            "{id}: {names:?}"
        );
        for file in &launch.collected {
            let local = results_dir.join(id).join(&file.name);
            assert_eq!(
                sha256_file(&local).unwrap(),
                file.sha256,
                "{}",
                local.display()
            );
            assert_eq!(fs::metadata(&local).unwrap().len(), file.bytes);
        }
    }
}

/// Kills a machine: its sshd (listener and sessions) and every role process on it.
fn crash(testbed: &Mutex<Testbed>, name: &str) {
    let mut testbed = testbed.lock().unwrap();
    testbed.node(name).kill();
    assert!(
        testbed.kill_role_processes(name) >= 1,
        "no role process to kill on {name}"
    );
}

#[test]
fn node_killed_mid_measurement_gives_partial_coverage_then_a_rerun_completes() {
    let testbed = Mutex::new(Testbed::start());
    let inventory: Inventory = testbed.lock().unwrap().inventory();
    let config = config(&testbed.lock().unwrap(), "crash");
    let observer = |event: &PhaseEvent| {
        if event.phase == Phase::Measure && event.mark == Mark::Begin {
            crash(&testbed, "nic0");
        }
    };
    let first = run(
        &inventory,
        &stand_in_launches(),
        &config,
        &Cancel::new(),
        &observer,
    )
    .unwrap();
    assert_eq!(first.status, RunStatus::Partial, "{:?}", first.error);
    let coverage = first.coverage();
    let nic = coverage.iter().find(|c| c.host == "nic0").unwrap();
    assert_eq!((nic.launches_measured, nic.launches_total), (0, 1));
    assert!(nic.lost.is_some(), "{nic:?}");
    assert!(nic.files_collected < nic.files_expected, "{nic:?}");
    for other in coverage.iter().filter(|c| c.host != "nic0") {
        assert_eq!(other.launches_measured, other.launches_total, "{other:?}");
        assert_eq!(other.files_collected, other.files_expected, "{other:?}");
    }
    assert!(
        !first.launches["nic-0"].problems.is_empty(),
        "the lost launch says why"
    );
    assert!(
        first
            .events
            .iter()
            .any(|e| e.detail.starts_with("host nic0 lost")),
        "{:#?}",
        first.events
    );
    assert_eq!(first.phase_order().last(), Some(&Phase::Teardown));

    // The machine comes back; the rerun archives the partial attempt and measures again.
    testbed.lock().unwrap().node("nic0").restart();
    let second = run(
        &inventory,
        &stand_in_launches(),
        &config,
        &Cancel::new(),
        &quiet,
    )
    .unwrap();
    assert_eq!(
        second.status,
        RunStatus::Complete,
        "{:?} {:#?}",
        second.error,
        second.launches
    );
    assert_eq!(second.attempt, 2);
    assert!(
        second.launches["nic-0"]
            .run_dir
            .ends_with("/runs/crash/attempt-2/nic-0")
    );
    check_collected_files(&config.results_dir, &second);
    let archived = fs::read_to_string(
        config
            .results_dir
            .join(ATTEMPTS_DIR)
            .join("1")
            .join("run.json"),
    )
    .unwrap();
    let archived: RunRecord = serde_json::from_str(&archived).unwrap();
    assert_eq!(archived, first, "the partial attempt is kept as it was");
    assert_not_running(&second);
}

#[test]
fn node_unreachable_at_collection_resumes_by_fetching_only_what_is_missing() {
    let testbed = Mutex::new(Testbed::start());
    let inventory: Inventory = testbed.lock().unwrap().inventory();
    let config = config(&testbed.lock().unwrap(), "drop");
    let observer = |event: &PhaseEvent| {
        if event.phase == Phase::Collect && event.mark == Mark::Begin {
            // The network drops: sshd and its sessions die, the role processes keep running.
            testbed.lock().unwrap().node("nic0").kill();
        }
    };
    let first = run(
        &inventory,
        &stand_in_launches(),
        &config,
        &Cancel::new(),
        &observer,
    )
    .unwrap();
    assert_eq!(first.status, RunStatus::Partial, "{:?}", first.error);
    assert!(
        first.launches.values().all(|l| l.measured),
        "the measurement itself finished everywhere"
    );
    assert_eq!(first.launches["nic-0"].collected, vec![]);
    assert!(
        first.launches["nic-0"]
            .problems
            .iter()
            .any(|p| p.contains("not stopped")),
        "{:?}",
        first.launches["nic-0"].problems
    );
    let host_files_before = first.launches["host-0"].collected.clone();

    testbed.lock().unwrap().node("nic0").restart();
    let events = Mutex::new(Vec::new());
    let recorder = |event: &PhaseEvent| events.lock().unwrap().push(event.clone());
    let second = run(
        &inventory,
        &stand_in_launches(),
        &config,
        &Cancel::new(),
        &recorder,
    )
    .unwrap();
    assert_eq!(second.status, RunStatus::Complete, "{:#?}", second.launches);
    assert_eq!(second.attempt, 1, "same attempt: nothing is measured again");
    let phases: Vec<Phase> = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.mark == Mark::Begin)
        .map(|e| e.phase)
        .collect();
    assert_eq!(phases, vec![Phase::Collect], "a collect-only resume");
    assert_eq!(
        second.launches["host-0"].collected, host_files_before,
        "verified files are not fetched again"
    );
    assert_eq!(
        second.launches["nic-0"].end,
        Some(EndState::Terminated),
        "the leftover server is stopped by PID"
    );
    assert_eq!(
        fs::read_to_string(config.results_dir.join("nic-0/stopped.txt")).unwrap(),
        "stopped\n"
    );
    check_collected_files(&config.results_dir, &second);
    assert_not_running(&second);

    // A third run finds it complete and does nothing.
    let third = run(
        &inventory,
        &stand_in_launches(),
        &config,
        &Cancel::new(),
        &quiet,
    )
    .unwrap();
    assert_eq!(third, second);
}

#[test]
fn start_failure_tears_down_what_was_started() {
    let testbed = Testbed::start();
    let inventory = testbed.inventory();
    let mut launches = stand_in_launches();
    let nic = launches.iter_mut().find(|l| l.id == "nic-0").unwrap();
    nic.command = sh("echo 'nic cannot start' >&2; exit 5", "naam-standin-broken");
    let config = config(&testbed, "broken");
    let record = run(&inventory, &launches, &config, &Cancel::new(), &quiet).unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    let error = record.error.clone().unwrap();
    assert!(error.contains("nic-0 ended before it was ready"), "{error}");
    assert_eq!(
        begin_order(&record),
        vec![Phase::Deploy, Phase::Start, Phase::Teardown]
    );
    assert_eq!(
        record.launches["host-0"].end,
        Some(EndState::Terminated),
        "the started host server is stopped"
    );
    assert_eq!(
        record.launches["client-0"].pid, None,
        "clients are never started"
    );
    let stderr = fs::read_to_string(config.results_dir.join("nic-0/stderr.log")).unwrap();
    assert_eq!(
        stderr, "nic cannot start\n",
        "logs of a failed run are kept"
    );
    assert_not_running(&record);
}

#[test]
fn cancel_during_measurement_tears_down() {
    let testbed = Testbed::start();
    let inventory = testbed.inventory();
    let cancel = Cancel::new();
    let observer = |event: &PhaseEvent| {
        if event.phase == Phase::Measure && event.mark == Mark::Begin {
            cancel.cancel();
        }
    };
    let mut config = config(&testbed, "cancelled");
    // Long enough that no stand-in can finish by itself before the teardown reaches it.
    config.measure_ms = 60_000;
    let record = run(
        &inventory,
        &stand_in_launches(),
        &config,
        &cancel,
        &observer,
    )
    .unwrap();
    assert_eq!(record.status, RunStatus::Cancelled);
    assert_eq!(
        begin_order(&record),
        vec![
            Phase::Deploy,
            Phase::Start,
            Phase::Warmup,
            Phase::Measure,
            Phase::Teardown
        ]
    );
    assert!(record.launches.values().all(|l| !l.measured));
    for id in ["host-0", "nic-0", "client-0"] {
        assert!(
            matches!(
                record.launches[id].end,
                Some(EndState::Terminated | EndState::Killed)
            ),
            "{id}: {:?}",
            record.launches[id].end
        );
    }
    assert_not_running(&record);
}

#[test]
fn unreachable_host_fails_the_run_before_anything_starts() {
    let mut testbed = Testbed::start();
    let inventory = testbed.inventory();
    testbed.node("client0").kill();
    let config = config(&testbed, "unreachable");
    let record = run(
        &inventory,
        &stand_in_launches(),
        &config,
        &Cancel::new(),
        &quiet,
    )
    .unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert!(
        record
            .error
            .as_deref()
            .unwrap()
            .contains("unreachable after 3 attempts"),
        "{:?}",
        record.error
    );
    assert_eq!(begin_order(&record), vec![Phase::Deploy, Phase::Teardown]);
    assert!(record.launches.values().all(|l| l.pid.is_none()));
}
