//! The results store with real files: raw schemas as bytes, summaries from hand-made raw
//! files, sealing and leftovers of killed runs, the lock, and the Python `hdrh` cross-check.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use expect_test::expect;
use hdrhistogram::Histogram;
use naam_plan::{ExperimentId, Variant, load_manifest, manifest_path};
use naam_results::hlog::{HlogWriter, TagSet, new_histogram};
use naam_results::raw::*;
use naam_results::*;

fn plan(id: ExperimentId) -> naam_plan::ExperimentPlan {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    load_manifest(&manifest_path(&dir, id), Variant::Quick).expect("committed manifest is valid")
}

fn client(k: u32, completed: u64, achieved: f64, offered: f64) -> ClientSummary {
    ClientSummary {
        schema: RAW_SCHEMA_VERSION,
        client: k,
        schedule: ScheduleKind::Poisson,
        offered_ops_per_s: Some(offered),
        sent: completed,
        completed,
        completed_after_phase: 0,
        errors: BTreeMap::from([("timeout".to_string(), 0)]),
        verify_failures: 0,
        misses: 0,
        send_lateness_ns_p50: 2_000,
        send_lateness_ns_p99: 40_000,
        send_lateness_ns_max: 90_000,
        window: None,
        achieved_ops_per_s: achieved,
        warmup_ms: 300,
        measure_ms: 1000,
        stopped_at_ms: None,
        seed: 7,
        distribution: "scrambled-zipfian".to_string(),
        interval_ms: 100,
    }
}

fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut h = new_histogram();
    for v in values {
        h.record(v).expect("auto-resizing");
    }
    h
}

/// Writes one client's raw files: `per_interval` samples at host (1 µs..) and nic (10 µs..)
/// in each of ten 100 ms intervals.
fn write_client(
    dir: &Path,
    k: u32,
    host_per_interval: u64,
    nic_per_interval: u64,
    achieved: f64,
    offered: f64,
) {
    let mut w = HlogWriter::new(
        Vec::new(),
        TagSet::locations(),
        Duration::from_secs(1_757_412_000),
        &[],
    )
    .expect("header");
    for i in 0..10u64 {
        let start = Duration::from_millis(100 * i);
        let len = Duration::from_millis(100);
        w.write(
            "host",
            start,
            len,
            &histogram((0..host_per_interval).map(|j| 1_000 + j)),
        )
        .expect("write");
        w.write(
            "nic",
            start,
            len,
            &histogram((0..nic_per_interval).map(|j| 10_000 + j)),
        )
        .expect("write");
    }
    std::fs::write(dir.join(client_hlog_file(k)), w.finish().expect("flush")).expect("write hlog");
    let completed = 10 * (host_per_interval + nic_per_interval);
    let json = serde_json::to_vec_pretty(&client(k, completed, achieved, offered)).expect("json");
    std::fs::write(dir.join(client_summary_file(k)), json).expect("write json");
}

/// Rewrites client `k`'s summary in `dir` after `edit`; returns the edited summary.
fn edit_client(dir: &Path, k: u32, edit: impl FnOnce(&mut ClientSummary)) -> ClientSummary {
    let path = dir.join(client_summary_file(k));
    let mut summary: ClientSummary = read_json(&path, "client summary").expect("read");
    edit(&mut summary);
    std::fs::write(&path, serde_json::to_vec(&summary).expect("json")).expect("write");
    summary
}

#[test]
fn client_summary_schema_as_bytes() {
    let json = serde_json::to_string_pretty(&client(0, 10, 9.5, 10.0)).expect("json");
    expect![[r#"
        {
          "schema": 1,
          "client": 0,
          "schedule": "poisson",
          "offered_ops_per_s": 10.0,
          "sent": 10,
          "completed": 10,
          "completed_after_phase": 0,
          "errors": {
            "timeout": 0
          },
          "verify_failures": 0,
          "misses": 0,
          "send_lateness_ns_p50": 2000,
          "send_lateness_ns_p99": 40000,
          "send_lateness_ns_max": 90000,
          "achieved_ops_per_s": 9.5,
          "warmup_ms": 300,
          "measure_ms": 1000,
          "seed": 7,
          "distribution": "scrambled-zipfian",
          "interval_ms": 100
        }"#]]
    .assert_eq(&json);
}

#[test]
fn steering_and_vmcost_schemas_as_bytes() {
    let change = SteeringChange {
        t_ns: 1_500_000,
        policy: "naam-adaptive".to_string(),
        scope: "all".to_string(),
        host_permille: 300,
        nic_permille: 700,
        client_permille: 0,
        reason: "host queue delay 340us > 200us".to_string(),
    };
    let report = VmCostReport {
        schema: RAW_SCHEMA_VERSION,
        entries: vec![
            VmCostEntry {
                function: "mica-get".into(),
                backend: "interpreter".into(),
                outcome: VmCostOutcome::Measured {
                    ns_per_op: 412.5,
                    iterations: 100_000,
                },
            },
            VmCostEntry {
                function: "mica-get".into(),
                backend: "kernel-jit".into(),
                outcome: VmCostOutcome::Unavailable {
                    reason: "needs root".into(),
                },
            },
        ],
    };
    let text = format!(
        "{}\n{}",
        serde_json::to_string(&change).expect("json"),
        serde_json::to_string(&report).expect("json")
    );
    expect![[r#"
        {"t_ns":1500000,"policy":"naam-adaptive","scope":"all","host_permille":300,"nic_permille":700,"client_permille":0,"reason":"host queue delay 340us > 200us"}
        {"schema":1,"entries":[{"function":"mica-get","backend":"interpreter","status":"measured","ns_per_op":412.5,"iterations":100000},{"function":"mica-get","backend":"kernel-jit","status":"unavailable","reason":"needs root"}]}"#]]
    .assert_eq(&text);
    let back: VmCostReport =
        serde_json::from_str(&serde_json::to_string(&report).expect("json")).expect("parse");
    assert_eq!(back, report);
}

#[test]
fn summary_merges_clients_by_adding_and_flags_missed_rates() {
    let mut plan = plan(ExperimentId::MicaYcsbB);
    plan.roles.clients = 2;
    let point = plan.points[0].clone();
    let offered = point.offered_load_ops_per_s.expect("traffic point") as f64;
    let dir = tempfile::tempdir().expect("tempdir");
    write_client(dir.path(), 0, 30, 10, offered / 2.0, offered / 2.0);
    write_client(dir.path(), 1, 20, 40, offered / 4.0, offered / 2.0);
    let s = summarize_point(&plan, &point, dir.path(), 0).expect("summary");
    let t = s.traffic.expect("traffic summary");
    assert_eq!(t.latency.count, 10 * (30 + 10 + 20 + 40));
    assert_eq!(t.completed, t.latency.count);
    let host = &t.locations[0];
    assert_eq!(host.location, Location::Host);
    assert_eq!(host.latency.count, 10 * 50);
    assert!((host.share - 0.5).abs() < 1e-12);
    assert_eq!(t.locations[2].latency.count, 0, "no client-side executions");
    assert!(t.latency.p50_ns >= 1_000 && t.latency.p99_ns >= 10_000);
    assert_eq!(t.intervals, 10);
    let decoded = t.latency.decode().expect("stored histogram decodes");
    assert_eq!(decoded.len(), t.latency.count);
    // The generator sent on time (the fixture's lateness is small), so the shortfall measured
    // the system under test: saturated, a valid point.
    match &s.validity {
        Validity::Saturated { reason } => assert!(reason.starts_with("achieved"), "{reason}"),
        other => panic!("75 % of the offered rate, sent on time, is saturation: {other:?}"),
    }
    assert!(s.validity.is_valid());
}

#[test]
fn missing_raw_files_are_named() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let dir = tempfile::tempdir().expect("tempdir");
    let err = summarize_point(&plan, &plan.points[0], dir.path(), 0).unwrap_err();
    assert!(matches!(err, ResultsError::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("client-0.json: missing"), "{err}");
}

#[test]
fn sealed_points_are_complete_and_partial_ones_are_cleaned() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let root = tempfile::tempdir().expect("tempdir");
    let run = RunDir::at(root.path(), plan.id.as_str(), &run_id(&plan, None));
    let provenance = run
        .create_or_resume(&plan, "experiments/mica-ycsb-b.toml", root.path(), "test")
        .expect("create");
    assert_eq!(provenance.sessions.len(), 1);
    assert_eq!(provenance.config_hash, config_hash(&plan));
    let _lock = run.lock().expect("lock");
    assert!(run.lock().is_err(), "a second runner is refused");

    let a = &plan.points[0].id;
    let b = &plan.points[1].id;
    let staging = run.begin_point(a).expect("stage");
    write_client(&staging, 0, 5, 5, 1.0, 1.0);
    let summary = summarize_point(&plan, &plan.points[0], &staging, 0).expect("summary");
    run.seal_point(a, &summary).expect("seal");
    assert!(run.is_complete(a));
    assert!(!run.staging_dir(a).exists());
    assert_eq!(run.read_summary(a).expect("read"), summary);

    run.begin_point(b).expect("stage");
    std::fs::write(run.root().join(".run.json.tmp.1.0"), b"torn").expect("write");
    let state = RunState::scan(&run, &plan, Vec::new(), Some(b.clone()));
    run.write_state(&state).expect("state");
    let report = inspect_run(&run).expect("inspect");
    assert_eq!(report.partial_points, vec![b.clone()]);
    assert_eq!(report.interrupted_point.as_deref(), Some(b.as_str()));
    assert_eq!(report.state.points_complete, 1);
    assert_eq!(report.state.status, RunStatus::Partial);
    assert_eq!(report.state.missing.len(), plan.points.len() - 1);

    assert_eq!(run.clean_leftovers().expect("clean"), vec![b.clone()]);
    assert!(!run.staging_dir(b).exists());
    assert!(!run.root().join(".run.json.tmp.1.0").exists());
    let again = run
        .create_or_resume(&plan, "experiments/mica-ycsb-b.toml", root.path(), "test")
        .expect("resume");
    assert_eq!(again.sessions.len(), 2, "a resume is a second session");
}

#[test]
fn a_run_folder_refuses_another_configuration() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let mut other = plan.clone();
    other.base_seed += 1;
    let root = tempfile::tempdir().expect("tempdir");
    let run = RunDir::at(root.path(), "mica-ycsb-b", "fixed-id");
    run.create_or_resume(&plan, "m.toml", root.path(), "test")
        .expect("create");
    let err = run
        .create_or_resume(&other, "m.toml", root.path(), "test")
        .unwrap_err();
    assert!(matches!(err, ResultsError::ConfigMismatch { .. }), "{err}");
    assert_ne!(run_id(&plan, None), run_id(&other, None));
}

/// The `.hlog` files decode with Python's `hdrh` (installed by scripts/install-test-deps.sh)
/// with the same counts and percentiles per tag.
#[test]
fn python_hdrh_reads_our_interval_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_client(dir.path(), 0, 30, 7, 1.0, 1.0);
    let path = dir.path().join(client_hlog_file(0));
    let script = r#"
import sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600 * 10**9, 3))
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    print(h.get_tag(), h.get_total_count(), h.get_value_at_percentile(99.0), h.get_max_value())
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs (scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "python hdrh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = naam_results::hlog::read_interval_log(&path).expect("read");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), ours.len());
    for (line, interval) in lines.iter().zip(&ours) {
        let h = &interval.histogram;
        let expected = format!(
            "{} {} {} {}",
            interval.tag.as_deref().unwrap_or("None"),
            h.len(),
            h.value_at_quantile(0.99),
            h.max()
        );
        assert_eq!(line, &expected);
    }
}

fn reasons_of(s: &PointSummary) -> Vec<String> {
    match &s.validity {
        Validity::Invalid { reasons } => reasons.clone(),
        Validity::Valid | Validity::Saturated { .. } => Vec::new(),
    }
}

fn write_server(dir: &Path, dropped: DroppedDatagrams, load_samples_dropped: u64) {
    let counters = LocationCounters {
        completions: 100,
        steps: 100,
        retries: 0,
        traps: 0,
        access_denials: 0,
        pushbacks: 0,
        busy_fraction: 0.5,
    };
    let server = ServerSummary {
        schema: RAW_SCHEMA_VERSION,
        policy: "host".to_string(),
        host: counters.clone(),
        nic: counters,
        dropped,
        load_samples_dropped,
        steering_changes_dropped: 0,
        vm: None,
        host_cpu: None,
        system: None,
        ipipe: None,
    };
    std::fs::write(
        dir.join(SERVER_FILE),
        serde_json::to_vec(&server).expect("json"),
    )
    .expect("write server.json");
}

/// Issue 17: datagrams the server dropped and load samples the host could not keep reach the
/// summary and the validity verdict (they used to stay in the roles' counter files).
#[test]
fn issue_17_server_drops_and_dropped_samples_make_a_point_invalid() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let point = plan.points[0].clone();
    let offered = point.offered_load_ops_per_s.expect("traffic point") as f64;
    let dir = tempfile::tempdir().expect("tempdir");
    write_client(dir.path(), 0, 30, 10, offered, offered);
    let sent = 10 * (30 + 10);
    // One dropped datagram in 400 requests is 0.25 %: above the 0.1 % bound.
    let dropped = DroppedDatagrams {
        malformed: 1,
        ..DroppedDatagrams::default()
    };
    write_server(dir.path(), dropped, 0);
    let s = summarize_point(&plan, &point, dir.path(), 0).expect("summary");
    let server = s.traffic.as_ref().and_then(|t| t.server.clone());
    assert_eq!(server.expect("server.json summarized").dropped, dropped);
    let reasons = reasons_of(&s);
    assert!(
        reasons.iter().any(
            |r| r.contains("the server dropped 1 datagrams (malformed 1")
                && r.contains(&format!("{sent} requests"))
        ),
        "{reasons:?}"
    );

    write_server(dir.path(), DroppedDatagrams::default(), 17);
    let s = summarize_point(&plan, &point, dir.path(), 0).expect("summary");
    let reasons = reasons_of(&s);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("17 load samples dropped")),
        "{reasons:?}"
    );
    assert!(
        !reasons.iter().any(|r| r.contains("the server dropped")),
        "{reasons:?}"
    );
}

/// Issue 17: a client a signal stopped early makes its point invalid, with the reason.
#[test]
fn issue_17_a_client_stopped_early_makes_its_point_invalid() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let point = plan.points[0].clone();
    let offered = point.offered_load_ops_per_s.expect("traffic point") as f64;
    let dir = tempfile::tempdir().expect("tempdir");
    write_client(dir.path(), 0, 30, 10, offered, offered);
    edit_client(dir.path(), 0, |summary| {
        summary.stopped_at_ms = Some(970);
        summary.measure_ms = 970;
    });
    let s = summarize_point(&plan, &point, dir.path(), 0).expect("summary");
    let reasons = reasons_of(&s);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("client 0 was stopped 970 ms into")),
        "{reasons:?}"
    );
}

/// Issue 18: a machine whose clock offset is known only within more than a quarter of the
/// interval makes the point invalid (its intervals cannot be lined up with the others');
/// one known well enough changes nothing.
#[test]
fn an_uncertain_clock_offset_makes_its_point_invalid() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let point = plan.points[0].clone();
    let offered = point.offered_load_ops_per_s.expect("traffic point") as f64;
    let naam_plan::Timing::Traffic { interval_ms, .. } = plan.timing else {
        panic!("a traffic plan");
    };
    let dir = tempfile::tempdir().expect("tempdir");
    write_client(dir.path(), 0, 30, 10, offered, offered);
    let quarter_ns = interval_ms * 1_000_000 / 4;
    let write_clock = |error_bound_ns: u64| {
        let clock = ClockSummary {
            schema: RAW_SCHEMA_VERSION,
            machines: vec![MachineClock {
                host: "node1".into(),
                offset_ns: -3_000_000,
                error_bound_ns,
            }],
        };
        std::fs::write(
            dir.path().join(CLOCK_FILE),
            serde_json::to_vec(&clock).expect("json"),
        )
        .expect("write clock.json");
    };
    write_clock(quarter_ns + 1);
    let reasons = reasons_of(&summarize_point(&plan, &point, dir.path(), 0).expect("summary"));
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("clock offset of node1 known only within")),
        "{reasons:?}"
    );
    write_clock(quarter_ns);
    let reasons = reasons_of(&summarize_point(&plan, &point, dir.path(), 0).expect("summary"));
    assert!(
        !reasons.iter().any(|r| r.contains("clock offset")),
        "{reasons:?}"
    );
}

/// Issue 16: a point where full in-flight windows held back a tenth or more of the sends — the
/// system under test held every slot — measured saturation, not a late generator, and its queue
/// at the end is not a failure; where the window held back only a few, the generator's own
/// lateness is judged as before.
#[test]
fn issue_16_lateness_from_a_full_window_is_saturation_and_a_late_generator_is_not() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let point = plan.points[0].clone();
    let offered = point.offered_load_ops_per_s.expect("traffic point") as f64;
    let verdict_with = |delayed_sends: u64, own_ns_p99: u64| {
        let dir = tempfile::tempdir().expect("tempdir");
        write_client(dir.path(), 0, 30, 10, offered, offered);
        edit_client(dir.path(), 0, |summary| {
            summary.send_lateness_ns_p99 = 40_000_000;
            summary.errors.insert(UNANSWERED_AT_END.to_string(), 64);
            summary.window = Some(WindowHold {
                send_lateness_own_ns_p99: own_ns_p99,
                full_ns: 900_000_000,
                delayed_sends,
            });
        });
        summarize_point(&plan, &point, dir.path(), 0)
            .expect("summary")
            .validity
    };
    // 400 requests sent; 350 waited for a slot.
    match verdict_with(350, 3_000_000) {
        Validity::Saturated { reason } => {
            assert!(
                reason.contains("in-flight window was full for 900 ms")
                    && reason.contains("350 of 400"),
                "{reason}"
            );
        }
        other => panic!("a full window is the system under test's: {other:?}"),
    }
    // 10 waited: the window explains little; the generator's own 3 ms is its own, and the 64
    // unanswered at the end are failures.
    match verdict_with(10, 3_000_000) {
        Validity::Invalid { reasons } => {
            assert!(
                reasons[0].starts_with("generator fell behind: send lateness p99 3000 us"),
                "{reasons:?}"
            );
            assert!(
                reasons
                    .iter()
                    .any(|r| r.starts_with("64 of 400 requests failed")),
                "{reasons:?}"
            );
        }
        other => panic!("the generator's own 3 ms is its own: {other:?}"),
    }
}

#[test]
fn replies_drained_after_the_phase_are_not_the_phases_throughput() {
    let plan = plan(ExperimentId::MicaYcsbB);
    let point = plan.points[0].clone();
    let offered = point.offered_load_ops_per_s.expect("traffic point") as f64;
    let dir = tempfile::tempdir().expect("tempdir");
    write_client(dir.path(), 0, 30, 10, offered, offered);
    let throughput = |dir: &Path| {
        let s = summarize_point(&plan, &point, dir, 0).expect("summary");
        s.traffic.expect("traffic summary").throughput_ops_per_s
    };
    let all_in_phase = throughput(dir.path());
    let summary = edit_client(dir.path(), 0, |s| s.completed_after_phase = 100);
    let per_s = 1000.0 / summary.measure_ms as f64;
    assert_eq!(all_in_phase, summary.completed as f64 * per_s);
    assert_eq!(
        throughput(dir.path()),
        (summary.completed - 100) as f64 * per_s
    );
}
