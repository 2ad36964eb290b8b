//! The netns testbed (root; CI runs as root): the server machine and the client in their own
//! network namespaces joined by veth, serving verified requests. (netem delay is optional and
//! needs the kernel's sch_netem module, which this test does not assume.)

use naam_executors::{LocalExecutor, LocalOptions};
use naam_plan::Variant;
use naam_results::raw;

const MANIFEST: &str = r#"schema = 1
id = "mica-ycsb-b"
title = "e2e netns"
seed = 5
series = ["host", "nic"]
[testbed]
kind = "netns"
[roles]
clients = 1
client_threads = 1
host_workers = 1
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
measure_ms = 400
interval_ms = 100
repetitions = 1
offered_load_ops_per_s = [1000]
[full]
warmup_ms = 100
measure_ms = 400
interval_ms = 100
repetitions = 1
offered_load_ops_per_s = [1000]
"#;

#[test]
fn roles_in_network_namespaces_serve_verified_requests_over_veth() {
    assert!(
        naam_launch::netns::have_root(),
        "the netns test needs root (scripts/test.sh runs as root in CI)"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, MANIFEST).unwrap();
    let plan = naam_plan::load_manifest(&path, Variant::Quick).unwrap();
    let options = LocalOptions::with_role_binary(
        naam_launch::build_role_binary(
            env!("CARGO").as_ref(),
            env!("CARGO_MANIFEST_DIR").as_ref(),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let executor = LocalExecutor::new(options);
    for point in &plan.points {
        let out = tempfile::tempdir().unwrap();
        let record = executor
            .run(&plan, point, out.path())
            .unwrap_or_else(|e| panic!("{}: {e}", point.id))
            .expect("traffic");
        assert_eq!(record.network, "netns");
        let summary: raw::ClientSummary =
            raw::read_json(&out.path().join(raw::client_summary_file(0)), "client").unwrap();
        assert!(summary.completed > 100, "{summary:?}");
        assert_eq!(summary.verify_failures, 0);
        assert!(summary.errors.is_empty(), "{:?}", summary.errors);
        let server: raw::ServerSummary =
            raw::read_json(&out.path().join(raw::SERVER_FILE), "server").unwrap();
        let served = if point.series.as_str() == "nic" {
            server.nic.completions
        } else {
            server.host.completions
        };
        assert!(served > 100, "{}: {server:?}", point.id);
    }
}
