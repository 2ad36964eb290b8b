//! The netns testbed (root; CI runs as root): the server machine and the client in their own
//! network namespaces joined by veth, serving verified requests. (netem delay is optional and
//! needs the kernel's sch_netem module, which this test does not assume.)

mod common;

use naam_executors::LocalExecutor;
use naam_plan::{ExperimentId, ManifestBuilder, Variant};
use naam_results::raw;

#[test]
fn roles_in_network_namespaces_serve_verified_requests_over_veth() {
    assert!(
        naam_launch::netns::have_root(),
        "the netns test needs root (scripts/test.sh runs as root in CI)"
    );
    let plan = ManifestBuilder::new(ExperimentId::MicaYcsbB)
        .seed(5)
        .series(&["host", "nic"])
        .netns()
        .workload("records", 1000)
        .workload("value_bytes", 8)
        .workload_name("distribution", "uniform")
        .offered(&[1000])
        .plan(Variant::Quick)
        .unwrap_or_else(|e| panic!("{e}"));
    let options = common::local_options();
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
