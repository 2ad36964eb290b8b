//! Load shift over real processes: a CPU hog starts on the host's core mid-run and the adaptive
//! controller moves traffic to the (emulated) NIC; the measured shift time is printed. The static
//! host placement, under the same hog, keeps everything at the host.

use naam_executors::{LocalExecutor, LocalOptions};
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, Variant};
use naam_results::raw;
use naam_results::shift;

const WARMUP_MS: u64 = 200;
const HOG_START_MS: u64 = 1000;
const INTERVAL_MS: u64 = 10;
/// Before the hog the adaptive controller keeps (nearly) all traffic at the host.
const HOST_SHARE_BEFORE_HOG_MIN: f64 = 0.9;

/// Both tests pin their host to core 0: run concurrently, each would be the other's hog.
static ONE_TESTBED_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One client pinned beside the NIC, the host on core 0, 3000 ops/s for 2.5 s, a three-thread
/// hog on the host's core from [`HOG_START_MS`].
fn plan(series: &str) -> ExperimentPlan {
    ManifestBuilder::new(ExperimentId::LoadShift)
        .seed(11)
        .series(&[series])
        .pinning(&[0], &[1], &[1])
        .workload("value_bytes", 8)
        .workload("buckets", 2048)
        .timing(WARMUP_MS, 2500, INTERVAL_MS)
        .offered(&[3000])
        .cpu_hog(HOG_START_MS, 2500, 3)
        .plan(Variant::Quick)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn run(series: &str) -> (ExperimentPlan, tempfile::TempDir) {
    let _testbed = ONE_TESTBED_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let plan = plan(series);
    let options = LocalOptions::with_role_binary(
        naam_launch::build_role_binary(
            env!("CARGO").as_ref(),
            env!("CARGO_MANIFEST_DIR").as_ref(),
            false,
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let out = tempfile::tempdir().unwrap();
    LocalExecutor::new(options)
        .run(&plan, &plan.points[0], out.path())
        .unwrap_or_else(|e| panic!("{series}: {e}"));
    (plan, out)
}

#[test]
fn the_adaptive_controller_moves_traffic_to_the_nic_when_a_hog_starts() {
    let (plan, out) = run("naam-adaptive");
    let by_interval = shift::completions_by_interval(out.path(), 1, INTERVAL_MS).unwrap();
    // Interval logs start at the measured phase (warm-up is not in them).
    let before = shift::shares(&by_interval, 0, HOG_START_MS);
    assert!(
        before.host > HOST_SHARE_BEFORE_HOG_MIN,
        "before the hog the host serves everything: {before:?}"
    );
    let times = shift::shift_times(&plan, out.path())
        .unwrap()
        .expect("a hog");
    println!("measured shift times (this machine, debug build): {times:?}");
    assert!(
        times.completions_ms.is_some(),
        "90 % of traffic reached the NIC after the hog started"
    );
    let changes: Vec<raw::SteeringChange> =
        raw::read_jsonl(&out.path().join(raw::STEERING_FILE), "steering").unwrap();
    let hog_ns = HOG_START_MS * 1_000_000;
    assert!(
        changes
            .iter()
            .any(|c| c.t_ns >= hog_ns && c.nic_permille > 0),
        "the controller moved load to the NIC: {changes:?}"
    );
    let summary: raw::ClientSummary =
        raw::read_json(&out.path().join(raw::client_summary_file(0)), "client").unwrap();
    assert_eq!(summary.verify_failures, 0);
}

#[test]
fn the_static_host_placement_keeps_traffic_at_the_host_under_the_hog() {
    let (_, out) = run("host");
    let by_interval = shift::completions_by_interval(out.path(), 1, INTERVAL_MS).unwrap();
    let after = shift::shares(&by_interval, HOG_START_MS, 2500);
    assert!(after.host > 0.99, "static placement: {after:?}");
    let changes: Vec<raw::SteeringChange> =
        raw::read_jsonl(&out.path().join(raw::STEERING_FILE), "steering").unwrap();
    assert!(
        changes.is_empty(),
        "a static policy changes nothing: {changes:?}"
    );
}
