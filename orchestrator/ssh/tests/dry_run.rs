//! The dry run renders the whole plan for an inventory without connecting (the inventory's
//! hosts do not exist).

use std::path::{Path, PathBuf};

use expect_test::expect;
use naam_ssh::deploy::{Artifact, ArtifactKind, ArtifactSet};
use naam_ssh::dryrun::render_plan;
use naam_ssh::run::{Ends, LaunchSpec, Readiness, RunConfig};
use naam_ssh::{Arch, Inventory, RemoteCommand, Role};

const HOSTS: &str = r#"
[defaults]
user = "alice"
identity_file = "/keys/id_ed25519"
known_hosts = "/keys/known_hosts"

[[host]]
name = "host"
ssh_host = "clnode241.clemson.cloudlab.us"
roles = ["host"]
arch = "x86_64"
lan_address = "10.10.1.1"
cores = 64

[[host]]
name = "bf2"
ssh_host = "clnode241-bf2.example"
port = 2222
user = "ubuntu"
roles = ["nic"]
arch = "aarch64"
lan_address = "10.10.1.11"
cores = 8

[[host]]
name = "client0"
ssh_host = "clnode107.clemson.cloudlab.us"
roles = ["client"]
arch = "x86_64"
lan_address = "10.10.1.2"
cores = 16
"#;

fn launch(
    id: &str,
    host: &str,
    role: Role,
    args: &[&str],
    readiness: Readiness,
    outputs: &[&str],
) -> LaunchSpec {
    LaunchSpec {
        id: id.into(),
        host: host.into(),
        role,
        command: RemoteCommand::new("bin/naam-role")
            .unwrap()
            .args(args.iter().copied())
            .unwrap(),
        readiness,
        outputs: outputs.iter().map(|s| s.to_string()).collect(),
        inputs: Vec::new(),
        ends: Ends::for_role(role),
    }
}

#[test]
fn the_plan_is_rendered_without_connecting() {
    let inventory = Inventory::parse(HOSTS, "hosts.toml", Path::new("/etc/naam")).unwrap();
    let mut artifacts = ArtifactSet::default();
    artifacts
        .role_binaries
        .insert(Arch::X86_64, PathBuf::from("/build/release/naam-role"));
    artifacts.source_bundle = Some(PathBuf::from("/nonexistent/naam-src.tar.gz"));
    artifacts.files.push(Artifact {
        local_path: PathBuf::from("/build/bpf/mica_get.o"),
        remote_path: "functions/mica_get.o".into(),
        mode: 0o644,
        kind: ArtifactKind::FunctionObject,
    });
    let launches = vec![
        launch(
            "client0-load",
            "client0",
            Role::Client,
            &["client", "--rate", "100000"],
            Readiness::Running,
            &["client.hlog"],
        ),
        launch(
            "nic",
            "bf2",
            Role::Nic,
            &["nic", "--workers", "8"],
            Readiness::FileExists("ready".into()),
            &["nic.hlog"],
        ),
        launch(
            "host",
            "host",
            Role::Host,
            &["host", "--listen", "10.10.1.1:7000"],
            Readiness::FileExists("ready".into()),
            &[],
        ),
    ];
    let config = RunConfig::new(
        "mica-ycsb-b-quick",
        2_000,
        10_000,
        PathBuf::from("results/mica-ycsb-b/quick"),
    );
    // The bundle does not exist: the plan for the aarch64 card needs its checksum, so the dry
    // run says so instead of connecting anywhere.
    let err = render_plan(&inventory, &artifacts, &launches, &config).unwrap_err();
    expect![["artifact /nonexistent/naam-src.tar.gz: No such file or directory (os error 2)"]]
        .assert_eq(&err.to_string());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("naam-src.tar.gz");
    std::fs::write(&bundle, b"bundle bytes").unwrap();
    artifacts.source_bundle = Some(bundle.clone());
    let plan = render_plan(&inventory, &artifacts, &launches, &config).unwrap();
    let plan = plan.replace(&bundle.display().to_string(), "<bundle>");
    expect![[r#"
        # dry run: nothing is connected to; run mica-ycsb-b-quick (attempt 1)
        inventory hosts.toml: 3 hosts

        == hosts (one SSH session per host, in parallel)
        host host [host] alice@clnode241.clemson.cloudlab.us:22 arch=x86_64 lan=10.10.1.1 cores=64 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
        host bf2 [nic] ubuntu@clnode241-bf2.example:2222 arch=aarch64 lan=10.10.1.11 cores=8 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519
        host client0 [client] alice@clnode107.clemson.cloudlab.us:22 arch=x86_64 lan=10.10.1.2 cores=16 workdir=naam
          host key checked against /keys/known_hosts
          key /keys/id_ed25519

        == recording (the launch sequence, step by step)
        == deploy
        reach bf2
        reach client0
        reach host
        measure clock offsets (refused beyond the bounds, else shifted per machine)
        deploy bf2: check `uname -m` = aarch64
        deploy bf2: upload SourceBundle <bundle> -> naam/bundles/naam-src.tar.gz (mode 644; skipped when SHA-256 matches)
        deploy bf2: build on target (skipped when the stamp matches the bundle):
        deploy bf2:   'rm' '-rf' 'src/naam'
        deploy bf2:   'mkdir' '-p' 'src/naam'
        deploy bf2:   'tar' '-xzf' 'bundles/naam-src.tar.gz' '-C' 'src/naam'
        deploy bf2:   'cargo' 'build' '--release' '--locked' '--manifest-path' 'src/naam/Cargo.toml' '-p' 'naam-roles' '--bin' 'naam-role'
        deploy bf2:   'install' '-D' '-m' '755' 'src/naam/target/release/naam-role' 'bin/naam-role'
        deploy bf2: upload FunctionObject /build/bpf/mica_get.o -> naam/functions/mica_get.o (mode 644; skipped when SHA-256 matches)
        deploy client0: check `uname -m` = x86_64
        deploy client0: upload RoleBinary /build/release/naam-role -> naam/bin/naam-role (mode 755; skipped when SHA-256 matches)
        deploy client0: upload FunctionObject /build/bpf/mica_get.o -> naam/functions/mica_get.o (mode 644; skipped when SHA-256 matches)
        deploy host: check `uname -m` = x86_64
        deploy host: upload RoleBinary /build/release/naam-role -> naam/bin/naam-role (mode 755; skipped when SHA-256 matches)
        deploy host: upload FunctionObject /build/bpf/mica_get.o -> naam/functions/mica_get.o (mode 644; skipped when SHA-256 matches)
        == start
        start host host on host in naam/runs/mica-ycsb-b-quick/attempt-1/host: 'bin/naam-role' 'host' '--listen' '10.10.1.1:7000'
        host ready: file ready exists
        start nic nic on bf2 in naam/runs/mica-ycsb-b-quick/attempt-1/nic: 'bin/naam-role' 'nic' '--workers' '8'
        nic ready: file ready exists
        start client client0-load on client0 in naam/runs/mica-ycsb-b-quick/attempt-1/client0-load: 'bin/naam-role' 'client' '--rate' '100000'
        client0-load ready: running
        measure clock offsets (refused beyond the bounds, else shifted per machine)
        publish the common start (in 500 ms, shifted per machine by its clock offset) as timeline.json and start_at to host, nic, client0-load
        == warmup (2000 ms)
        == measure (10000 ms)
        sample CPU times (/proc/stat) of every machine
        sample CPU times (/proc/stat) of every machine
        == collect
        wait for client0-load to exit (at most 10000 ms)
        stop nic: TERM to its process group, KILL after 3000 ms
        stop host: TERM to its process group, KILL after 3000 ms
        fetch bf2:naam/runs/mica-ycsb-b-quick/attempt-1/nic/nic.hlog
        fetch bf2:naam/runs/mica-ycsb-b-quick/attempt-1/nic/stdout.log
        fetch bf2:naam/runs/mica-ycsb-b-quick/attempt-1/nic/stderr.log
        fetch client0:naam/runs/mica-ycsb-b-quick/attempt-1/client0-load/client.hlog
        fetch client0:naam/runs/mica-ycsb-b-quick/attempt-1/client0-load/stdout.log
        fetch client0:naam/runs/mica-ycsb-b-quick/attempt-1/client0-load/stderr.log
        fetch host:naam/runs/mica-ycsb-b-quick/attempt-1/host/stdout.log
        fetch host:naam/runs/mica-ycsb-b-quick/attempt-1/host/stderr.log
        == teardown
        teardown: release connections and namespaces
        files collected into results/mica-ycsb-b/quick
    "#]]
    .assert_eq(&plan);
}

#[test]
fn launches_that_do_not_fit_the_inventory_are_refused() {
    let inventory = Inventory::parse(HOSTS, "hosts.toml", Path::new("/etc/naam")).unwrap();
    let config = RunConfig::new("r", 0, 1, PathBuf::from("out"));
    let artifacts = ArtifactSet::default();
    let wrong_role = vec![launch(
        "x",
        "client0",
        Role::Host,
        &[],
        Readiness::Running,
        &[],
    )];
    expect![["launch x: host client0 does not have role host in the inventory"]].assert_eq(
        &render_plan(&inventory, &artifacts, &wrong_role, &config)
            .unwrap_err()
            .to_string(),
    );
    let unknown = vec![launch(
        "x",
        "host9",
        Role::Host,
        &[],
        Readiness::Running,
        &[],
    )];
    expect![["launch x: host host9 is not in the inventory"]].assert_eq(
        &render_plan(&inventory, &artifacts, &unknown, &config)
            .unwrap_err()
            .to_string(),
    );
    let reserved = vec![launch(
        "x",
        "host",
        Role::Host,
        &[],
        Readiness::Running,
        &["pid"],
    )];
    expect![[r#"launch x: output "pid": reserved name (the orchestrator's own files)"#]].assert_eq(
        &render_plan(&inventory, &artifacts, &reserved, &config)
            .unwrap_err()
            .to_string(),
    );
    let escape = vec![launch(
        "x",
        "host",
        Role::Host,
        &[],
        Readiness::Running,
        &["../../etc/passwd"],
    )];
    expect![[r#"launch x: output "../../etc/passwd": must be a clean relative path"#]].assert_eq(
        &render_plan(&inventory, &artifacts, &escape, &config)
            .unwrap_err()
            .to_string(),
    );
    let twice = vec![
        launch("x", "host", Role::Host, &[], Readiness::Running, &[]),
        launch("x", "client0", Role::Client, &[], Readiness::Running, &[]),
    ];
    expect![["launch x: id used twice"]].assert_eq(
        &render_plan(&inventory, &artifacts, &twice, &config)
            .unwrap_err()
            .to_string(),
    );
}
