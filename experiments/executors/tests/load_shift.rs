//! Load shift over real processes: a CPU hog starts on the host's core mid-run and the adaptive
//! controller moves traffic to the (emulated) NIC; the measured shift time is printed. The static
//! host placement, under the same hog, keeps everything at the host. For the iPipe baseline the
//! hog congests the NIC's core instead, and its shift is read as a migration to the host.

mod common;

use naam_executors::LocalExecutor;
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, Variant};
use naam_results::raw;
use naam_results::shift;

const WARMUP_MS: u64 = 200;
const HOG_START_MS: u64 = 1000;
const INTERVAL_MS: u64 = 10;
/// Before the hog, unless a congested host made it move, the adaptive controller keeps (nearly)
/// all traffic at the host.
const HOST_SHARE_BEFORE_HOG_MIN: f64 = 0.9;

/// The adaptive policy's congestion rule for this test: a 2-core VM's cross-core wake-ups alone
/// delay a blocking socket by up to a few milliseconds, and a CI machine shares its cores, so the
/// default rule (500 µs for 3 samples) can fire before any hog runs and the "before" share would
/// measure the machine, not the policy. The hog (three busy threads on the host's core) delays the
/// host by several CFS time slices, well above these.
const CONGESTED_DELAY_NS: u64 = 1_000_000;
const CONGESTED_SAMPLES: u64 = 5;
const SEVERE_DELAY_NS: u64 = 4_000_000;
/// iPipe's mean threshold for this test, for the same reason: above the wake-up delays of a
/// shared 2-core VM, below the CFS time slices the hog's three threads cost the NIC's core.
const IPIPE_MEAN_THRESH_NS: u64 = 500_000;
/// NIC completions per management decision: ≈ 40 ms at this test's load.
const IPIPE_SIDE_WINDOW: u64 = 128;

/// Both tests pin their host to core 0: run concurrently, each would be the other's hog.
static ONE_TESTBED_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One client pinned beside the NIC, the host on core 0, 3000 ops/s for 2.5 s, a three-thread
/// hog on the host's core from [`HOG_START_MS`].
fn plan(series: &str) -> ExperimentPlan {
    let mut manifest = ManifestBuilder::new(ExperimentId::LoadShift);
    if series == "ipipe" {
        manifest = manifest.policy(
            series,
            &[
                ("mean_thresh_ns", IPIPE_MEAN_THRESH_NS),
                ("side_window", IPIPE_SIDE_WINDOW),
            ],
        );
    }
    if series == "naam-adaptive" {
        manifest = manifest.policy(
            series,
            &[
                ("congested_delay_ns", CONGESTED_DELAY_NS),
                ("congested_samples", CONGESTED_SAMPLES),
                ("severe_delay_ns", SEVERE_DELAY_NS),
            ],
        );
    }
    manifest
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
    let options = common::local_options();
    let out = tempfile::tempdir().unwrap();
    LocalExecutor::new(options)
        .run(&plan, &plan.points[0], out.path())
        .unwrap_or_else(|e| panic!("{series}: {e}"));
    (plan, out)
}

#[test]
fn the_adaptive_controller_moves_traffic_to_the_nic_when_a_hog_starts() {
    let (plan, out) = run("naam-adaptive");
    let changes: Vec<raw::SteeringChange> =
        raw::read_jsonl(&out.path().join(raw::STEERING_FILE), "steering").unwrap();
    let samples: Vec<raw::LoadSample> =
        raw::read_jsonl(&out.path().join(raw::SAMPLES_FILE), "samples").unwrap();
    let hog_ns = HOG_START_MS * 1_000_000;
    // Before the hog a move to the NIC is right only when the host was congested; a busy
    // machine can congest it without our hog, so the test judges each move by its input.
    let before_hog: Vec<_> = changes.iter().filter(|c| c.t_ns < hog_ns).collect();
    for change in towards_the_nic(&before_hog) {
        assert_host_was_congested(change, &samples);
    }
    let by_interval = shift::completions_by_interval(out.path(), 1, INTERVAL_MS).unwrap();
    // Interval logs start at the measured phase (warm-up is not in them).
    let before = shift::shares(&by_interval, 0, HOG_START_MS);
    println!(
        "shares before the hog: {before:?}; moves before it: {}",
        before_hog.len()
    );
    if before_hog.is_empty() {
        assert!(
            before.host > HOST_SHARE_BEFORE_HOG_MIN,
            "no rule moved load before the hog, yet the host served only {before:?}"
        );
    }
    let times = shift::shift_times(&plan, out.path())
        .unwrap()
        .expect("a hog");
    println!("measured shift times (this machine, debug build): {times:?}");
    assert!(
        times.completions_ms.is_some() || times.completions_before_hog,
        "90 % of traffic reached the NIC after the hog started (or contention had moved it there)"
    );
    assert!(
        changes
            .iter()
            .any(|c| c.t_ns >= hog_ns && c.nic_permille > 0),
        "the controller sent load to the NIC after the hog started: {changes:?}"
    );
    let summary: raw::ClientSummary =
        raw::read_json(&out.path().join(raw::client_summary_file(0)), "client").unwrap();
    assert_eq!(summary.verify_failures, 0);
}

/// Changes that raised the NIC's share over the change before them. The first change has no
/// known predecessor: steering.jsonl starts at the measured phase, and the controller may have
/// moved load during the warm-up (a CI run moved it there, then returned it step by step).
fn towards_the_nic<'a>(changes: &[&'a raw::SteeringChange]) -> Vec<&'a raw::SteeringChange> {
    changes
        .windows(2)
        .filter(|pair| pair[1].nic_permille > pair[0].nic_permille)
        .map(|pair| pair[1])
        .collect()
}

/// The [`CONGESTED_SAMPLES`] host samples up to `change` all queued longer than
/// [`CONGESTED_DELAY_NS`], or the change came too early for its samples to be recorded (samples
/// of the warm-up are not written).
fn assert_host_was_congested(change: &raw::SteeringChange, samples: &[raw::LoadSample]) {
    let host_samples: Vec<_> = samples
        .iter()
        .filter(|s| s.location == raw::Location::Host && s.t_ns <= change.t_ns)
        .collect();
    let window = CONGESTED_SAMPLES as usize;
    if host_samples.len() < window {
        return;
    }
    let last = &host_samples[host_samples.len() - window..];
    assert!(
        last.iter().all(|s| s.queue_delay_ns > CONGESTED_DELAY_NS),
        "{change:?} moved load to the NIC after host samples {last:?}"
    );
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

#[test]
fn ipipe_under_a_hog_on_the_nic_reports_its_shift_as_a_migration_to_the_host() {
    let (plan, out) = run("ipipe");
    let server: raw::ServerSummary =
        raw::read_json(&out.path().join(raw::SERVER_FILE), "server").unwrap();
    let record = server.ipipe.expect("the iPipe record");
    assert!(record.failures.is_empty(), "{:?}", record.failures);
    let times = shift::shift_times(&plan, out.path())
        .unwrap()
        .expect("a hog");
    println!("iPipe shift times (this machine, debug build): {times:?}; {record:?}");
    assert_eq!(times.target, naam_types::Location::Host);
    let hog_ns = (HOG_START_MS * 1_000_000) as i64;
    let migrated_after_hog = record
        .migrations
        .iter()
        .any(|m| m.to_host && m.started_ns >= hog_ns);
    assert_eq!(times.rules_ms.is_some(), migrated_after_hog, "{record:?}");
    let summary: raw::ClientSummary =
        raw::read_json(&out.path().join(raw::client_summary_file(0)), "client").unwrap();
    assert!(summary.completed > 1000, "{summary:?}");
    assert_eq!(summary.verify_failures, 0);
}
