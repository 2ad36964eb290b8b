//! Plan points mapped onto an inventory, and the dry run of a plan: no connection involved.

use std::path::{Path, PathBuf};

use expect_test::{Expect, expect};
use naam_executors::configs::Settings;
use naam_executors::dry_run;
use naam_executors::inventory::{ExperimentError, point_run};
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, Variant};
use naam_roles::config::{Role as RoleKind, RoleConfig, TimelineSpec};
use naam_ssh::run::{LaunchInput, LaunchSpec, Readiness, check_clock, validate_launches};
use naam_ssh::telemetry::ClockOffset;
use naam_ssh::{Inventory, RemoteCommand, Role};

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

/// MICA YCSB-B on the inventory (or load-shift, with a CPU hog), NAAM-adaptive, `clients`
/// clients at 3000 ops/s in total, 100 ms warm-up, 1 s measured.
fn manifest(clients: u32, hog: bool) -> ManifestBuilder {
    let id = if hog {
        ExperimentId::LoadShift
    } else {
        ExperimentId::MicaYcsbB
    };
    let manifest = ManifestBuilder::new(id)
        .seed(5)
        .series(&["naam-adaptive"])
        .inventory("hosts.toml")
        .role("clients", clients)
        .role("host_workers", 2)
        .workload("records", 1000)
        .workload("value_bytes", 8)
        .workload_name("distribution", "uniform")
        .timing(100, 1000, 100)
        .offered(&[3000]);
    if hog {
        manifest.cpu_hog(200, 600, 2)
    } else {
        manifest
    }
}

/// Writes the hosts file and a manifest into `dir`; returns the manifest's path.
fn write_files(dir: &Path, hosts: &str, manifest: &ManifestBuilder) -> PathBuf {
    std::fs::write(dir.join("hosts.toml"), hosts).unwrap();
    manifest.write(dir).unwrap()
}

fn load(dir: &Path, hosts: &str, manifest: &ManifestBuilder) -> (Inventory, ExperimentPlan) {
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

fn check_mapping(clients: u32, hog: bool, expected: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, plan) = load(dir.path(), HOSTS, &manifest(clients, hog));
    let run = point_run(
        &inventory,
        &plan,
        &plan.points[0],
        &Settings::for_machines(),
    )
    .unwrap();
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
        false,
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
    check_mapping(
        1,
        true,
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
    let (inventory, plan) = load(dir.path(), HOSTS, &manifest(1, false));
    let run = point_run(
        &inventory,
        &plan,
        &plan.points[0],
        &Settings::for_machines(),
    )
    .unwrap();
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
    let (inventory, plan) = load(dir.path(), &no_nic, &manifest(1, false));
    let err = point_run(
        &inventory,
        &plan,
        &plan.points[0],
        &Settings::for_machines(),
    )
    .unwrap_err();
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
    let manifest_path = write_files(dir.path(), HOSTS, &manifest(2, false));
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
        # server: eswitch ovs (OpenFlow at 192.168.100.2:6653; ports uplink 1, host 2, nic 3); NIC samples over the host–NIC link, 192.168.100.2 (nic) -> 192.168.100.1 (host); NIC data path rdma (one-sided READs of the host's regions over the host–Arm RDMA link, 192.168.200.2 (nic) -> 192.168.200.1 (host), which the bridge passes between its host and nic ports)
        # dry run: nothing is connected to; run mica-ycsb-b-0000-naam-adaptive-3000ops-r0 (attempt 1)
        inventory <dir>/hosts.toml: 4 hosts

        == hosts (one SSH session per host, in parallel)
        host host0 [host] alice@node-0.example:22 arch=x86_64 lan=10.10.1.1 cores=16 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
        host bf2 [nic] alice@node-0-bf2.example:22 arch=aarch64 lan=10.10.1.11 cores=8 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
        host client0 [client] alice@node-1.example:22 arch=x86_64 lan=10.10.1.2 cores=8 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
        host client1 [client] alice@node-2.example:22 arch=x86_64 lan=10.10.1.3 cores=8 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519

        == recording (the launch sequence, step by step)
        == deploy
        reach bf2
        reach client0
        reach client1
        reach host0
        measure clock offsets (refused beyond the bounds, else shifted per machine)
        deploy bf2: check `uname -m` = aarch64
        deploy bf2: upload SourceBundle (git archive of this checkout, made when the run starts) -> naam/bundles/naam-src.tar.gz (skipped when SHA-256 matches)
        deploy bf2: build on target (skipped when the stamp matches the bundle):
        deploy bf2:   'rm' '-rf' 'src/naam'
        deploy bf2:   'mkdir' '-p' 'src/naam'
        deploy bf2:   'tar' '-xzf' 'bundles/naam-src.tar.gz' '-C' 'src/naam'
        deploy bf2:   'cargo' 'build' '--release' '--locked' '--manifest-path' 'src/naam/Cargo.toml' '-p' 'naam-roles' '--bin' 'naam-role'
        deploy bf2:   'install' '-D' '-m' '755' 'src/naam/target/release/naam-role' 'bin/naam-role'
        deploy client0: check `uname -m` = x86_64
        deploy client0: upload RoleBinary <naam-role> -> naam/bin/naam-role (mode 755; skipped when SHA-256 matches)
        deploy client1: check `uname -m` = x86_64
        deploy client1: upload RoleBinary <naam-role> -> naam/bin/naam-role (mode 755; skipped when SHA-256 matches)
        deploy host0: check `uname -m` = x86_64
        deploy host0: upload RoleBinary <naam-role> -> naam/bin/naam-role (mode 755; skipped when SHA-256 matches)
        == start
        put role.json (1740 bytes) into host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host
        start host host on host0 in naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host: 'bin/naam-role' '--config' 'role.json'
        host ready: file host.ready.json exists
        put role.json (888 bytes) into bf2:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/nic
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/host.ready.json
        put host.ready.json (as fetched) into bf2:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/nic
        start nic nic on bf2 in naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/nic: 'bin/naam-role' '--config' 'role.json'
        nic ready: file nic.ready.json exists
        put role.json (845 bytes) into client0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-0
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/host.ready.json
        put host.ready.json (as fetched) into client0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-0
        start client client-0 on client0 in naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-0: 'bin/naam-role' '--config' 'role.json'
        put role.json (844 bytes) into client1:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-1
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/host.ready.json
        put host.ready.json (as fetched) into client1:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-1
        start client client-1 on client1 in naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-1: 'bin/naam-role' '--config' 'role.json'
        client-0 ready: running
        client-1 ready: running
        measure clock offsets (refused beyond the bounds, else shifted per machine)
        publish the common start (in 500 ms, shifted per machine by its clock offset) as timeline.json and start_at to host, nic, client-0, client-1
        == warmup (100 ms)
        == measure (1000 ms)
        sample CPU times (/proc/stat) of every machine
        sample CPU times (/proc/stat) of every machine
        == collect
        wait for client-0 to exit (at most 30000 ms)
        wait for client-1 to exit (at most 30000 ms)
        stop nic: TERM to its process group, KILL after 10000 ms
        stop host: TERM to its process group, KILL after 10000 ms
        fetch bf2:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/nic/nic.counters.json
        fetch bf2:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/nic/nic.ready.json
        fetch bf2:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/nic/stdout.log
        fetch bf2:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/nic/stderr.log
        fetch client0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-0/client-0.hlog
        fetch client0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-0/client-0.json
        fetch client0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-0/stdout.log
        fetch client0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-0/stderr.log
        fetch client1:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-1/client-1.hlog
        fetch client1:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-1/client-1.json
        fetch client1:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-1/stdout.log
        fetch client1:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/client-1/stderr.log
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/steering.jsonl
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/samples.jsonl
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/host.counters.json
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/host.ready.json
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/stdout.log
        fetch host0:naam/runs/mica-ycsb-b-0000-naam-adaptive-3000ops-r0/attempt-1/host/stderr.log
        == teardown
        teardown: release connections and namespaces
        files collected into <run folder>/orchestrator/0000-naam-adaptive-3000ops-r0
    "#]].assert_eq(&text);
}

/// The host's and the NIC's configurations of the first point of `manifest(1, false)` on `hosts`.
fn server_configs(
    hosts: &str,
) -> (
    naam_roles::config::HostConfig,
    naam_roles::config::NicConfig,
) {
    let dir = tempfile::tempdir().unwrap();
    let (inventory, plan) = load(dir.path(), hosts, &manifest(1, false));
    let run = point_run(
        &inventory,
        &plan,
        &plan.points[0],
        &Settings::for_machines(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let config = |id: &str| role_config(run.launches.iter().find(|l| l.id == id).unwrap()).role;
    match (config("host"), config("nic")) {
        (RoleKind::Host(h), RoleKind::Nic(n)) => (h, n),
        other => panic!("{other:?}"),
    }
}

/// A BlueField-2's Arm side as the NIC node (issue 14): the host steers through the card's Open
/// vSwitch bridge, reached over the host–NIC link, and takes the NIC's samples on that link.
#[test]
fn issue_14_a_bluefield_nic_gets_the_ovs_eswitch_and_the_control_link() {
    let (host, nic) = server_configs(HOSTS);
    expect![[r#"
        eswitch Ovs, ovs Some(OvsSwitch { openflow: 192.168.100.2:6653, uplink_port: 1, host_port: 2, nic_port: 3 })
        nic_link Some(NicLink { host_ip: 192.168.100.1, nic_ip: 192.168.100.2 })
        rdma_export true, NIC data path Rdma
        rdma_link host Some(RdmaLink { host_ip: 192.168.200.1, nic_ip: 192.168.200.2 }), nic Some(RdmaLink { host_ip: 192.168.200.1, nic_ip: 192.168.200.2 })
    "#]]
    .assert_eq(&format!(
        "eswitch {:?}, ovs {:?}\nnic_link {:?}\nrdma_export {}, NIC data path {:?}\nrdma_link host {:?}, nic {:?}\n",
        host.eswitch, host.ovs, host.nic_link, host.rdma_export, nic.data_path, host.rdma_link, nic.rdma_link
    ));
    // The node's [host.bluefield] table overrides the defaults.
    let table = "cores = 8\n[host.bluefield]\ncontrol_address = \"192.168.150.2\"\nhost_control_address = \"192.168.150.1\"\nopenflow_port = 6654\nnic_port = 7\nrdma_address = \"192.168.210.2\"\nhost_rdma_address = \"192.168.210.1\"\n";
    let hosts = HOSTS.replacen("cores = 8\n", table, 1);
    assert!(
        hosts
            .split("[[host]]")
            .any(|h| h.contains("name = \"bf2\"") && h.contains("[host.bluefield]")),
        "the table belongs to the NIC node"
    );
    let (host, nic) = server_configs(&hosts);
    let ovs = host.ovs.unwrap();
    assert_eq!(
        (ovs.openflow.to_string(), ovs.nic_port),
        ("192.168.150.2:6654".to_string(), 7)
    );
    let link = host.nic_link.unwrap();
    assert_eq!(
        (link.host_ip.to_string(), link.nic_ip.to_string()),
        ("192.168.150.1".to_string(), "192.168.150.2".to_string())
    );
    let rdma = host.rdma_link.unwrap();
    assert_eq!(
        (rdma.host_ip.to_string(), rdma.nic_ip.to_string()),
        ("192.168.210.1".to_string(), "192.168.210.2".to_string())
    );
    assert_eq!(nic.rdma_link, Some(rdma), "both ends know the same link");
}

/// A NIC on the host's machine keeps the configured switch, the server's address for its
/// samples and the shared-memory data path.
#[test]
fn issue_14_a_nic_on_the_hosts_machine_keeps_the_local_wiring() {
    let one_machine = HOSTS
        .replace("node-0-bf2.example", "node-0.example")
        .replace("arch = \"aarch64\"", "arch = \"x86_64\"");
    let (host, nic) = server_configs(&one_machine);
    assert_eq!(
        (host.eswitch, host.ovs, host.nic_link, nic.data_path),
        (
            naam_roles::config::EswitchMode::User,
            None,
            None,
            naam_roles::config::NicDataPath::SharedMemory
        )
    );
}

/// The plan-time error of the first point when the host's `cores = 8` line is replaced by
/// `table` (a `[host.bluefield]` table after it), with the temporary folder's path removed.
fn plan_error_with(table: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let hosts = HOSTS.replacen("cores = 8\n", table, 1);
    let (inventory, plan) = load(dir.path(), &hosts, &manifest(1, false));
    let err = point_run(
        &inventory,
        &plan,
        &plan.points[0],
        &Settings::for_machines(),
    )
    .unwrap_err();
    err.to_string()
        .replace(&format!("{}/", dir.path().display()), "")
}

/// The RDMA link in the LAN's /24 is refused at plan time, naming the node and its line; a NIC
/// on the host's machine gets no RDMA link (issue 14).
#[test]
fn issue_14_an_rdma_link_in_the_lans_prefix_is_refused() {
    expect!["inventory hosts.toml:15: host bf2: `bluefield`: RDMA link address 10.10.1.200 shares a /24 with 10.10.1.1 (a LAN address): the host–Arm RDMA link needs a prefix of its own (set `rdma_address` and `host_rdma_address`; defaults 192.168.200.2 on the Arm, 192.168.200.1 on the host)"].assert_eq(&plan_error_with("cores = 8\n[host.bluefield]\nhost_rdma_address = \"10.10.1.200\"\n"));
    let one_machine = HOSTS
        .replace("node-0-bf2.example", "node-0.example")
        .replace("arch = \"aarch64\"", "arch = \"x86_64\"");
    let (host, nic) = server_configs(&one_machine);
    assert_eq!((host.rdma_link, nic.rdma_link), (None, None));
}

#[test]
fn issue_14_a_control_link_on_a_lan_address_is_refused() {
    expect!["inventory hosts.toml:15: host bf2: `bluefield`: 10.10.1.1 is a LAN address: the host–NIC control link needs addresses of its own (rshim's tmfifo_net0: 192.168.100.1 on the host, 192.168.100.2 on the Arm)"].assert_eq(&plan_error_with("cores = 8\n[host.bluefield]\nhost_control_address = \"10.10.1.1\"\n"));
}
