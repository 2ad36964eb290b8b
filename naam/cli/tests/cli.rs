//! The `naam` binary as users run it: help everywhere, manifests checked, workload commands with
//! the output formats the issues specify, native and eBPF paths printing the same answers.

use std::path::Path;
use std::process::{Command, Output};

fn naam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_naam"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("naam runs")
}

fn stdout(args: &[&str]) -> String {
    let out = naam(args);
    assert!(
        out.status.success(),
        "naam {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["reproduce", "--help"],
        vec!["run", "--help"],
        vec!["check", "--help"],
        vec!["plot", "--help"],
        vec!["status", "--help"],
        vec!["report", "--help"],
        vec!["testbed", "bench", "--help"],
        vec!["testbed", "point", "--help"],
        vec!["workload", "ycsb", "--help"],
        vec!["workload", "mica", "--help"],
        vec!["workload", "btree", "--help"],
        vec!["deploy", "--help"],
        vec!["doctor", "--help"],
        vec!["cloudlab-import", "--help"],
    ] {
        assert!(stdout(&args).contains("Usage"), "{args:?}");
    }
}

#[test]
fn report_writes_a_page_for_a_results_folder_and_names_a_missing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results = dir.path().display().to_string();
    let json = stdout(&["report", &results, "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&json).expect("JSON summary");
    let out = dir.path().join("report.html");
    assert_eq!(summary["out"], out.display().to_string());
    assert_eq!(summary["figures_embedded"], 0);
    let page = std::fs::read_to_string(&out).expect("the page");
    assert!(page.contains("not measured (no run of `mica-ycsb-b`"));
    let missing = dir.path().join("nowhere");
    let failed = naam(&["report", &missing.display().to_string()]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("no results folder at"), "{stderr}");
}

#[test]
fn every_manifest_checks_in_json() {
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&["check", "--json"])).expect("JSON");
    assert_eq!(
        report["manifests"].as_array().map(Vec::len),
        Some(6),
        "{report}"
    );
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
}

#[test]
fn a_broken_manifest_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "schema = 1\nid = \"mica-ycsb-b\"\nseriess = [\"host\"]\n",
    )
    .unwrap();
    let out = naam(&["check", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("seriess"),
        "{err}"
    );
}

#[test]
fn ycsb_writes_op_keynum_key_csv() {
    let out = stdout(&[
        "workload",
        "ycsb",
        "--records",
        "1000",
        "--operations",
        "200",
        "--seed",
        "7",
        "--workload",
        "b",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("op,keynum,key"));
    let ops: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(ops.len(), 200);
    assert!(
        ops.iter().all(|op| *op == "read" || *op == "update"),
        "YCSB-B reads and updates only"
    );
    // Seeded: the same command prints the same trace.
    assert_eq!(
        out,
        stdout(&[
            "workload",
            "ycsb",
            "--records",
            "1000",
            "--operations",
            "200",
            "--seed",
            "7",
            "--workload",
            "b"
        ])
    );
}

#[test]
fn mica_replay_prints_the_same_answers_natively_and_in_the_vm() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    std::fs::write(
        &trace,
        "S 6b31 76616c31\nG 6b31\nG 6b32\nS 6b32 7632\nD 6b31\nG 6b31\nG 6b32\nD 6b33\n",
    )
    .unwrap();
    let t = trace.to_str().unwrap();
    let native = stdout(&["workload", "mica", "--trace", t, "--via", "native"]);
    assert_eq!(
        native,
        "S ok\nG hit 76616c31\nG miss\nS ok\nD ok\nG miss\nG hit 7632\nD miss\n"
    );
    assert_eq!(
        stdout(&["workload", "mica", "--trace", t, "--via", "vm"]),
        native
    );
}

/// Sizes inside MICA's own bounds but beyond this machine (a 1 TiB log; 2^30 buckets of 15
/// slots, 128 GiB) are refused before allocating: exit 1 with the flag named, not an abort.
#[test]
fn mica_sizes_beyond_this_machine_are_errors_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    std::fs::write(&trace, "G 6b31\n").unwrap();
    let t = trace.to_str().unwrap();
    let cases: [&[&str]; 2] = [
        &["--log-bytes", "1099511627776"],
        &["--buckets", "1073741824", "--slots", "15"],
    ];
    for flags in cases {
        let mut args = vec!["workload", "mica", "--trace", t];
        args.extend_from_slice(flags);
        let out = naam(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {stderr}");
        let named = format!("{} {}", flags[0], flags[1]);
        assert!(stderr.contains(&named), "{flags:?}: {stderr}");
        assert!(stderr.contains("available (MemAvailable"), "{stderr}");
        assert_eq!(stderr.matches("needs").count(), 1, "said once: {stderr}");
    }
}

#[test]
fn btree_replay_prints_key_found_value_csv_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let load = dir.path().join("load.csv");
    let lookups = dir.path().join("keys.txt");
    std::fs::write(
        &load,
        (1..=500u64)
            .map(|k| format!("{},{}\n", k * 3, k * 7))
            .collect::<String>(),
    )
    .unwrap();
    std::fs::write(&lookups, "3\n4\n1500\n0\n").unwrap();
    let (l, k) = (load.to_str().unwrap(), lookups.to_str().unwrap());
    let native = stdout(&[
        "workload",
        "btree",
        "--load",
        l,
        "--lookups",
        k,
        "--via",
        "native",
    ]);
    assert_eq!(
        native,
        "key,found,value\n3,true,7\n4,false,\n1500,true,3500\n0,false,\n"
    );
    assert_eq!(
        stdout(&[
            "workload",
            "btree",
            "--load",
            l,
            "--lookups",
            k,
            "--via",
            "vm"
        ]),
        native
    );
}

#[test]
fn deploy_dry_run_renders_a_plan_without_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let known = dir.path().join("known_hosts");
    std::fs::write(&key, "not a real key").unwrap();
    std::fs::write(&known, "").unwrap();
    let inventory = dir.path().join("hosts.toml");
    let host = |name: &str, roles: &str, port: u16, lan: &str| {
        format!(
            "[[host]]\nname = \"{name}\"\nssh_host = \"127.0.0.1\"\nport = {port}\nuser = \"root\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nroles = [{roles}]\narch = \"x86_64\"\nlan_address = \"{lan}\"\ncores = 2\n",
            key.display(),
            known.display()
        )
    };
    let text = [
        host("server", "\"host\", \"nic\"", 2201, "10.0.0.1"),
        host("client0", "\"client\"", 2202, "10.0.0.2"),
    ]
    .join("\n");
    std::fs::write(&inventory, text).unwrap();
    let out = naam(&[
        "deploy",
        "--dry-run",
        "--inventory",
        inventory.to_str().unwrap(),
        "--manifest",
        "experiments/mica-ycsb-b.toml",
        "--quick",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("dry run") && text.contains("server") && text.contains("client0"),
        "{text}"
    );
}

/// `naam doctor --dry-run` over a BlueField-2 inventory (an x86 host, the card's Arm side as
/// its own SSH target with the NIC role, a client) lists every remote command per node and
/// connects to nothing (issue 14).
#[test]
fn issue_14_doctor_dry_run_lists_every_remote_command_of_a_bluefield_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let known = dir.path().join("known_hosts");
    std::fs::write(&key, "not a real key").unwrap();
    std::fs::write(&known, "").unwrap();
    let inventory = dir.path().join("hosts.toml");
    let host = |name: &str, roles: &str, port: u16, lan: &str, arch: &str| {
        format!(
            "[[host]]\nname = \"{name}\"\nssh_host = \"127.0.0.1\"\nport = {port}\nuser = \"root\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nroles = [{roles}]\narch = \"{arch}\"\nlan_address = \"{lan}\"\ncores = 8\n",
            key.display(),
            known.display()
        )
    };
    let text = [
        host("server", "\"host\"", 2201, "10.0.0.1", "x86_64"),
        host("server-bf2", "\"nic\"", 2202, "10.0.0.3", "aarch64"),
        host("client0", "\"client\"", 2203, "10.0.0.2", "x86_64"),
    ]
    .join("\n");
    std::fs::write(&inventory, text).unwrap();
    let out = naam(&[
        "doctor",
        "--dry-run",
        "--inventory",
        inventory.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (node, command) in [
        ("server-bf2", "devlink"),
        ("server-bf2", "ovs-vsctl"),
        ("server-bf2", "rdma"),
        ("server", "tmfifo"),
        // The host–Arm RDMA link's two ends (the defaults: no [host.bluefield] table).
        ("server-bf2", "ip -br addr show to '192.168.200.2/32'"),
        ("server", "ip -br addr show to '192.168.200.1/32'"),
        ("client0", "uname -m"),
        ("client0", "date +%s%N"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{node}: ")) && l.contains(command)),
            "no `{command}` on {node}:\n{text}"
        );
    }
}

/// `naam deploy --dry-run` over a BlueField-2 inventory shows how the server is wired (issue 14):
/// the Open vSwitch eSwitch with the bridge's OpenFlow listener (over the host–NIC link) and port
/// numbers, the NIC's samples over that link (from the node's `[host.bluefield]` table), and the
/// RDMA data path.
#[test]
fn issue_14_deploy_dry_run_shows_the_ovs_eswitch_of_a_bluefield_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id");
    let known = dir.path().join("known_hosts");
    std::fs::write(&key, "not a real key").unwrap();
    std::fs::write(&known, "").unwrap();
    let host = |name: &str, roles: &str, ssh: &str, lan: &str, arch: &str| {
        format!(
            "[[host]]\nname = \"{name}\"\nssh_host = \"{ssh}\"\nuser = \"root\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nroles = [{roles}]\narch = \"{arch}\"\nlan_address = \"{lan}\"\ncores = 8\n",
            key.display(),
            known.display()
        )
    };
    let text = [
        host("server", "\"host\"", "node-0.example", "10.0.0.1", "x86_64"),
        // The Arm side at its host's address (CloudLab forwards a port): another machine by
        // its architecture.
        host(
            "server-bf2",
            "\"nic\"",
            "node-0.example",
            "10.0.0.3",
            "aarch64",
        ) + "[host.bluefield]\nopenflow_port = 6654\n",
        host(
            "client0",
            "\"client\"",
            "node-1.example",
            "10.0.0.2",
            "x86_64",
        ),
    ]
    .join("\n");
    let inventory = dir.path().join("hosts.toml");
    std::fs::write(&inventory, text).unwrap();
    let out = naam(&[
        "deploy",
        "--dry-run",
        "--inventory",
        inventory.to_str().unwrap(),
        "--manifest",
        "experiments/mica-ycsb-b.toml",
        "--quick",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = text
        .lines()
        .find(|l| l.starts_with("# server: "))
        .unwrap_or_else(|| panic!("no server line:\n{text}"));
    for part in [
        "eswitch ovs (OpenFlow at 192.168.100.2:6654; ports uplink 1, host 2, nic 3)",
        "NIC samples over the host–NIC link, 192.168.100.2 (nic) -> 192.168.100.1 (host)",
        "NIC data path rdma",
        "over the host–Arm RDMA link, 192.168.200.2 (nic) -> 192.168.200.1 (host)",
    ] {
        assert!(server.contains(part), "{part} missing: {server}");
    }
}

/// `naam cloudlab-import --bluefield-arm-port 2222` turns the importer's fixture manifest into an
/// inventory with the r7525 host's Arm side as its own NIC node (issue 14).
#[test]
fn issue_14_cloudlab_import_adds_the_bluefield_arm_side() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../orchestrator/ssh/tests/fixtures/cloudlab-manifest.xml"
    );
    let toml = stdout(&[
        "cloudlab-import",
        manifest,
        "--identity-file",
        "/keys/id",
        "--known-hosts",
        "/keys/known_hosts",
        "--bluefield-arm-port",
        "2222",
    ]);
    let arm = toml
        .split("[[host]]")
        .find(|h| h.contains("name = \"host-bf2\""))
        .unwrap_or_else(|| panic!("no host-bf2 node:\n{toml}"));
    for line in [
        "port = 2222",
        "roles = [\"nic\"]",
        "arch = \"aarch64\"",
        "cores = 8",
    ] {
        assert!(arm.contains(line), "{line} missing:\n{arm}");
    }
}

/// A short soak: every role's resident size is read and reported, the readings are kept in a
/// CSV, and the point's answers verify. (The soak's goals — growth under 5 %, no lost load
/// sample — are measurements of a 10-minute soak reported in ARTIFACT.md, not assertions here.)
#[test]
fn a_short_soak_reports_every_roles_resident_memory() {
    let out = tempfile::tempdir().unwrap();
    let report = stdout(&[
        "testbed",
        "soak",
        "--seconds",
        "3",
        "--json",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let roles: Vec<&str> = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["launch"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["client-0", "host", "nic"], "{report}");
    for role in report["roles"].as_array().unwrap() {
        assert!(role["rss_kib_end"].as_u64().unwrap() > 0, "{role}");
    }
    assert_eq!(report["verify_failures"], 0, "{report}");
    let csv = std::fs::read_to_string(out.path().join("soak/soak-rss.csv")).unwrap();
    assert!(
        csv.starts_with("t_ms,launch,pid,rss_kib\n") && csv.lines().count() > 3,
        "{csv}"
    );
}

/// `naam calibrate` rewrites the measured values of a profile (here a copy of this-machine's),
/// each with a source saying it was measured, and leaves the rest with their own sources.
#[test]
fn calibrate_writes_measured_values_with_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let original =
        std::fs::read_to_string(repo.join("experiments/profiles/this-machine.toml")).unwrap();
    std::fs::write(dir.path().join("this-machine.toml"), &original).unwrap();
    let report = stdout(&[
        "calibrate",
        "--profiles",
        dir.path().to_str().unwrap(),
        "--iterations",
        "5000",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    for key in ["step_ns", "insn_ns", "tx_ns", "rx_ns"] {
        assert!(report[key].as_f64().unwrap() > 0.0, "{key}: {report}");
    }
    let written = std::fs::read_to_string(dir.path().join("this-machine.toml")).unwrap();
    let measured = written
        .lines()
        .filter(|l| l.contains("source = \"measured by naam calibrate on "))
        .count();
    assert_eq!(
        measured, 12,
        "host, nic and client: step, insn, tx, rx\n{written}"
    );
    let dma_line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("read_ns"))
            .map(str::to_string)
    };
    assert_eq!(
        dma_line(&written),
        dma_line(&original),
        "unmeasured values are kept"
    );
}
