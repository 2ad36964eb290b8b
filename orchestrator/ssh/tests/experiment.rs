//! Plan points mapped onto an inventory, and the dry run of a plan: no connection involved.

use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};
use naam_plan::{ExperimentPlan, Variant};
use naam_roles::config::{Role as RoleKind, RoleConfig, TimelineSpec};
use naam_ssh::experiment::{ExperimentError, RoleSettings, point_run};
use naam_ssh::run::{LaunchInput, LaunchSpec, Readiness, check_clock, validate_launches};
use naam_ssh::telemetry::ClockOffset;
use naam_ssh::{Inventory, RemoteCommand, Role, dry_run};

const HOSTS: &str = r#"
[defaults]
user = "alice"
identity_file = "/keys/id_ed25519"
known_hosts = "/keys/known_hosts"

[[host]]
name = "host0"
ssh_host = "node-0.example"
roles = ["host"]
arch = "x86_64"
lan_address = "10.10.1.1"
cores = 16

[[host]]
name = "bf2"
ssh_host = "node-0-bf2.example"
roles = ["nic"]
arch = "aarch64"
lan_address = "10.10.1.11"
cores = 8

[[host]]
name = "client0"
ssh_host = "node-1.example"
roles = ["client"]
arch = "x86_64"
lan_address = "10.10.1.2"
cores = 8

[[host]]
name = "client1"
ssh_host = "node-2.example"
roles = ["client"]
arch = "x86_64"
lan_address = "10.10.1.3"
cores = 8
"#;

fn manifest(clients: u32, events: &str) -> String {
    let id = if events.is_empty() {
        "mica-ycsb-b"
    } else {
        "load-shift"
    };
    format!(
        r#"
schema = 1
id = "{id}"
title = "mapping"
seed = 5
series = ["naam-adaptive"]
[testbed]
kind = "inventory"
inventory = "hosts.toml"
[roles]
clients = {clients}
client_threads = 1
host_workers = 2
nic_workers = 1
nic_access_delay_ns = 1500
nic_core_speed_factor = 0.5
[workload]
kind = "mica"
records = 1000
key_bytes = 8
value_bytes = 8
ycsb_workload = "b"
distribution = "uniform"
buckets = 1024
slots = 7
log_bytes = 1048576
[quick]
warmup_ms = 100
measure_ms = 1000
interval_ms = 100
repetitions = 1
offered_load_ops_per_s = [3000]
{events}
[full]
warmup_ms = 100
measure_ms = 1000
interval_ms = 100
repetitions = 1
offered_load_ops_per_s = [3000]
"#
    )
}

/// Writes the hosts file and a manifest into `dir`; returns the manifest's path.
fn write_files(dir: &Path, hosts: &str, manifest: &str) -> PathBuf {
    std::fs::write(dir.join("hosts.toml"), hosts).unwrap();
    let path = dir.join("plan.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

fn load(dir: &Path, hosts: &str, manifest: &str) -> (Inventory, ExperimentPlan) {
    let path = write_files(dir, hosts, manifest);
    let plan = naam_plan::load_manifest(&path, Variant::Quick).unwrap_or_else(|e| panic!("{e}"));
    (Inventory::load(&dir.join("hosts.toml")).unwrap(), plan)
}

fn role_config(launch: &LaunchSpec) -> RoleConfig {
    let bytes = launch.inputs.iter().find_map(|i| match i {
        LaunchInput::Bytes { name, bytes } if name == "role.json" => Some(bytes),
        _ => None,
    });
    serde_json::from_slice(bytes.expect("every launch gets its role.json")).unwrap()
}

/// One line per launch: where, how it ends, when it is ready, what it gets and leaves.
fn render(launches: &[LaunchSpec]) -> String {
    launches
        .iter()
        .map(|l| {
            let ready = match &l.readiness {
                Readiness::Running => "running".to_string(),
                Readiness::FileExists(f) => f.clone(),
                Readiness::Command(c) => c.to_string(),
            };
            let inputs: Vec<String> = l
                .inputs
                .iter()
                .map(|i| match i {
                    LaunchInput::Bytes { name, .. } => name.clone(),
                    LaunchInput::FromLaunch { launch, file } => format!("{launch}:{file}"),
                })
                .collect();
            format!(
                "{} on {} as {} ({:?}): {} | ready {ready} | in [{}] | out [{}]\n",
                l.id,
                l.host,
                l.role,
                l.ends,
                l.command,
                inputs.join(" "),
                l.outputs.join(" ")
            )
        })
        .collect()
}

fn check_mapping(clients: u32, events: &str, expected: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, plan) = load(dir.path(), HOSTS, &manifest(clients, events));
    let run = point_run(&inventory, &plan, &plan.points[0], &RoleSettings::default()).unwrap();
    let header = format!(
        "run {} | clients on [{}]\n",
        run.run_id,
        run.machines.clients.join(" ")
    );
    expected.assert_eq(&(header + &render(&run.launches)));
}

#[test]
fn launches_follow_the_inventory_in_start_order() {
    check_mapping(
        3,
        "",
        expect![[r#"
        run mica-ycsb-b-0000-naam-adaptive-3000ops-r0 | clients on [client0 client1 client0]
        host on host0 as host (WhenStopped): 'bin/naam-role' '--config' 'role.json' | ready host.ready.json | in [role.json] | out [steering.jsonl samples.jsonl host.counters.json host.ready.json]
        nic on bf2 as nic (WhenStopped): 'bin/naam-role' '--config' 'role.json' | ready nic.ready.json | in [role.json host:host.ready.json] | out [nic.counters.json nic.ready.json]
        client-0 on client0 as client (AfterMeasurement): 'bin/naam-role' '--config' 'role.json' | ready running | in [role.json host:host.ready.json] | out [client-0.hlog client-0.json]
        client-1 on client1 as client (AfterMeasurement): 'bin/naam-role' '--config' 'role.json' | ready running | in [role.json host:host.ready.json] | out [client-1.hlog client-1.json]
        client-2 on client0 as client (AfterMeasurement): 'bin/naam-role' '--config' 'role.json' | ready running | in [role.json host:host.ready.json] | out [client-2.hlog client-2.json]
    "#]],
    );
}

#[test]
fn the_cpu_hog_runs_on_the_host_machine_and_ends_by_itself() {
    let events = r#"events = [{ kind = "cpu-hog", start_ms = 200, stop_ms = 600, threads = 2 }]"#;
    check_mapping(
        1,
        events,
        expect![[r#"
        run load-shift-0000-naam-adaptive-3000ops-r0 | clients on [client0]
        host on host0 as host (WhenStopped): 'bin/naam-role' '--config' 'role.json' | ready host.ready.json | in [role.json] | out [steering.jsonl samples.jsonl host.counters.json host.ready.json]
        hog on host0 as host (ByItself): 'bin/naam-role' '--config' 'role.json' | ready running | in [role.json] | out []
        nic on bf2 as nic (WhenStopped): 'bin/naam-role' '--config' 'role.json' | ready nic.ready.json | in [role.json host:host.ready.json] | out [nic.counters.json nic.ready.json]
        client-0 on client0 as client (AfterMeasurement): 'bin/naam-role' '--config' 'role.json' | ready running | in [role.json host:host.ready.json] | out [client-0.hlog client-0.json]
    "#]],
    );
}

#[test]
fn role_configurations_hold_on_any_machine() {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, plan) = load(dir.path(), HOSTS, &manifest(1, ""));
    let run = point_run(&inventory, &plan, &plan.points[0], &RoleSettings::default()).unwrap();
    for launch in &run.launches {
        let config = role_config(launch);
        assert_eq!(
            config.out_dir,
            Path::new("."),
            "{}: writes into its run directory",
            launch.id
        );
        assert_eq!(
            config.timeline,
            TimelineSpec::File {
                path: "timeline.json".into()
            },
            "{}",
            launch.id
        );
        match &config.role {
            RoleKind::Host(h) => {
                assert_eq!(
                    h.listen_ip.to_string(),
                    "10.10.1.1",
                    "the host listens on its LAN address"
                );
                assert_eq!(h.policy.name(), "naam-adaptive");
            }
            RoleKind::Nic(n) => assert_eq!(n.host_ready, Path::new("host.ready.json")),
            RoleKind::Client(c) => {
                assert_eq!(c.host_ready, Path::new("host.ready.json"));
                assert_eq!(
                    c.seed,
                    plan.points[0].client_seed(c.index),
                    "the local testbed's seeds"
                );
            }
            RoleKind::Hog(_) => panic!("no hog in this plan"),
        }
    }
}

#[test]
fn plans_that_cannot_run_on_machines_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let no_nic = HOSTS.replace("roles = [\"nic\"]", "roles = [\"client\"]");
    let (inventory, plan) = load(dir.path(), &no_nic, &manifest(1, ""));
    let err = point_run(&inventory, &plan, &plan.points[0], &RoleSettings::default()).unwrap_err();
    assert!(
        matches!(
            err,
            ExperimentError::NoMachine {
                role: Role::Nic,
                ..
            }
        ),
        "{err:?}"
    );
    expect![[r#"inventory hosts.toml: no host has role nic (add `roles = ["nic"]` to one)"#]]
        .assert_eq(
            &err.to_string()
                .replace(&format!("{}/", dir.path().display()), ""),
        );
}

fn launch(id: &str, host: &str, role: Role) -> LaunchSpec {
    LaunchSpec::new(id, host, role, RemoteCommand::new("bin/naam-role").unwrap())
}

#[test]
fn inputs_must_come_from_launches_that_start_earlier() {
    let inventory = Inventory::parse(HOSTS, "hosts.toml", Path::new("/etc/naam")).unwrap();
    let check = |launches: Vec<LaunchSpec>, expected: Expect| {
        expected.assert_eq(
            &validate_launches(&inventory, &launches)
                .map(|l| l.len().to_string())
                .unwrap_or_else(|e| e.to_string()),
        );
    };
    let from = |launch: &str, file: &str| LaunchInput::FromLaunch {
        launch: launch.into(),
        file: file.into(),
    };
    let mut host = launch("host", "host0", Role::Host);
    host.inputs.push(from("client-0", "x.json"));
    check(
        vec![host, launch("client-0", "client0", Role::Client)],
        expect![[
            r#"launch host: input "x.json": launch client-0 (client) does not start before a host launch"#
        ]],
    );
    let mut nic = launch("nic", "bf2", Role::Nic);
    nic.inputs.push(from("host9", "ready"));
    check(
        vec![nic.clone()],
        expect![[r#"launch nic: input "ready": launch host9 does not exist"#]],
    );
    nic.inputs = vec![LaunchInput::Bytes {
        name: "timeline.json".into(),
        bytes: vec![],
    }];
    check(
        vec![nic.clone()],
        expect![[
            r#"launch nic: input "timeline.json": reserved name (the orchestrator's own files)"#
        ]],
    );
    nic.inputs = vec![from("host", "ready")];
    nic.outputs = vec!["ready".into()];
    check(
        vec![launch("host", "host0", Role::Host), nic.clone()],
        expect![[
            r#"launch nic: input "ready": named twice (inputs and outputs share the run directory)"#
        ]],
    );
    nic.outputs.clear();
    check(
        vec![nic, launch("host", "host0", Role::Host)],
        expect![["2"]],
    );
}

#[test]
fn clocks_too_far_off_or_too_uncertain_are_refused() {
    let check = |offset_ns: i64, rtt_ns: u64, expected: Expect| {
        let clock = ClockOffset {
            offset_ns,
            rtt_ns,
            samples: 5,
        };
        expected.assert_eq(
            &check_clock("bf2", &clock)
                .err()
                .unwrap_or_else(|| "shifted".into()),
        );
    };
    check(-250_000_000, 2_000_000, expect![["shifted"]]);
    check(
        1_500_000_000,
        2_000_000,
        expect![[
            "clock of bf2 is 1500 ms off this machine's (at most 1000 ms is shifted for): synchronise the clocks (chrony or NTP) and run again"
        ]],
    );
    check(
        3_000_000,
        600_000_000,
        expect![[
            "clock offset of bf2 is known only within ±300 ms (at most 200 ms): the SSH round trip is too long; run the orchestrator closer to the machines (e.g. on a node of the experiment)"
        ]],
    );
}

#[test]
fn the_dry_run_renders_the_first_point_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = write_files(dir.path(), HOSTS, &manifest(2, ""));
    let text = dry_run(
        &dir.path().join("hosts.toml"),
        &manifest_path,
        Variant::Quick,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The local binary's path depends on the build; everything else is fixed.
    let text: String = text
        .lines()
        .map(
            |line| match (line.find("upload RoleBinary "), line.find(" -> ")) {
                (Some(start), Some(arrow)) => format!(
                    "{}<naam-role>{}\n",
                    &line[..start + "upload RoleBinary ".len()],
                    &line[arrow..]
                ),
                _ => format!("{line}\n"),
            },
        )
        .collect();
    let text = text.replace(&dir.path().display().to_string(), "<dir>");
    expect![[r#"
        # plan mica-ycsb-b (quick), point 1 of 1: 0000-naam-adaptive-3000ops-r0
        # machines: host host0, nic bf2, clients [client0, client1]
        # dry run: nothing is connected to; run mica-ycsb-b-0000-naam-adaptive-3000ops-r0 (attempt 1)
        inventory <dir>/hosts.toml: 4 hosts

        == deploy (one SSH session per host, in parallel)
        host host0 [host] alice@node-0.example:22 arch=x86_64 lan=10.10.1.1 cores=16 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
          check `uname -m` = x86_64
          upload RoleBinary <naam-role> -> naam/bin/naam-role (mode 755; skipped when SHA-256 matches)
        host bf2 [nic] alice@node-0-bf2.example:22 arch=aarch64 lan=10.10.1.11 cores=8 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
          check `uname -m` = aarch64
          upload SourceBundle (git archive of this checkout, made when the run starts) -> naam/bundles/naam-src.tar.gz (skipped when SHA-256 matches)
          build on target (skipped when the stamp matches the bundle):
            'rm' '-rf' 'src/naam'
            'mkdir' '-p' 'src/naam'
            'tar' '-xzf' 'bundles/naam-src.tar.gz' '-C' 'src/naam'
            'cargo' 'build' '--release' '--locked' '--manifest-path' 'src/naam/Cargo.toml' '-p' 'naam-roles' '--bin' 'naam-role'
            'install' '-D' '-m' '755' 'src/naam/target/release/naam-role' 'bin/naam-role'
        host client0 [client] alice@node-1.example:22 arch=x86_64 lan=10.10.1.2 cores=8 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
          check `uname -m` = x86_64
          upload RoleBinary <naam-role> -> naam/bin/naam-role (mode 755; skipped when SHA-256 matches)
        host client1 [client] alice@node-2.example:22 arch=x86_64 lan=10.10.1.3 cores=8 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
          check `uname -m` = x86_64
          upload RoleBinary <naam-role> -> naam/bin/naam-role (mode 755; skipped when SHA-256 matches)

        == start (dependency order: host, nic, client; readiness before the next group)
        host host on host0: 'bin/naam-role' '--config' 'role.json'
          in naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host; ready when file host.ready.json exists
          inputs: role.json (1352 bytes)
        nic nic on bf2: 'bin/naam-role' '--config' 'role.json'
          in naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/nic; ready when file nic.ready.json exists
          inputs: role.json (716 bytes), host.ready.json (copied from host once it is ready)
        client client-0 on client0: 'bin/naam-role' '--config' 'role.json'
          in naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-0; ready when running
          inputs: role.json (845 bytes), host.ready.json (copied from host once it is ready)
        client client-1 on client1: 'bin/naam-role' '--config' 'role.json'
          in naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-1; ready when running
          inputs: role.json (844 bytes), host.ready.json (copied from host once it is ready)
        then: clock offsets (refused beyond the bounds, else shifted per host); common start time written to each run dir's start_at and timeline.json

        == warm-up 100 ms, measure 1000 ms (CPU sampled from /proc/stat at both ends)

        == collect (clients exit, servers stopped by PID; files verified by SHA-256)
        host: steering.jsonl, samples.jsonl, host.counters.json, host.ready.json, stdout.log, stderr.log
        nic: nic.counters.json, nic.ready.json, stdout.log, stderr.log
        client-0: client-0.hlog, client-0.json, stdout.log, stderr.log
        client-1: client-1.hlog, client-1.json, stdout.log, stderr.log
        into <run folder>/orchestrator/0000-naam-adaptive-3000ops-r0

        == teardown (anything still running stopped by PID: TERM, then KILL after 10000 ms)
    "#]].assert_eq(&text);
}
