//! `naam testbed bench` and `naam testbed point`.
//!
//! The benchmark measures, on this machine and in one run:
//! 1. the raw UDP request/response ceiling on loopback (naam-net's echo: the best of 1, 8 and 32
//!    requests in flight);
//! 2. the ops/s of MICA GET/SET (YCSB-B) at the host placement under an offered load above what
//!    the host can serve (so the achieved rate is its capacity);
//! 3. the shift time: NAAM-adaptive steering, a CPU hog starting on the host's core mid-run, and
//!    the time from the hog's start to the eSwitch rule that sends 90 % of new requests to the
//!    NIC (steering log); and, for comparison, to the end of the first 5 ms interval in which
//!    90 % of completions ran at the NIC (interval log), which also includes the starved host
//!    draining the requests it had already accepted.
//!
//! It reports ratio = (2) / (1) and the shift time. Numbers are this machine's, not a testbed's.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use naam_plan::{ExperimentPlan, Variant};
use naam_results::raw::{self, ClientSummary};
use naam_results::shift::ShiftTimes;
use serde::Serialize;

use super::{local_options, print_json};
use crate::cli::{BenchArgs, PointArgs};

/// In-flight counts tried for the UDP ceiling.
const CEILING_BATCHES: [usize; 3] = [1, 8, 32];
/// Warm-up of every point the testbed commands run.
pub(super) const WARMUP_MS: u64 = 300;
/// Interval of the shift measurement's histograms.
const SHIFT_INTERVAL_MS: u64 = 5;

/// `naam testbed bench --json`.
#[derive(Debug, Serialize)]
struct BenchReport {
    machine_note: &'static str,
    udp_ceiling_req_per_s: f64,
    udp_ceiling_batch: usize,
    host_placement_ops_per_s: f64,
    host_placement_offered_ops_per_s: f64,
    ratio: f64,
    /// Hog start → the eSwitch sends ≥ 90 % of new requests to the NIC (steering.jsonl).
    shift_ms: Option<f64>,
    /// Hog start → ≥ 90 % of an interval's completions ran at the NIC (interval log; includes
    /// the starved host draining the requests it had already accepted).
    shift_completions_ms: Option<f64>,
    /// Completions were at the NIC before the hog (contention moved them): no shift time.
    shift_completions_before_hog: bool,
    hog_start_ms: u64,
    first_rule_change_ms: Option<f64>,
    eswitch: String,
}

pub(super) fn manifest(
    id: &str,
    series: &str,
    offered: u64,
    measure_ms: u64,
    interval_ms: u64,
    hog: Option<u64>,
) -> String {
    let events = hog.map_or(String::new(), |start| {
        format!("events = [{{ kind = \"cpu-hog\", start_ms = {start}, stop_ms = {measure_ms}, threads = 2 }}]")
    });
    format!(
        r#"schema = 1
id = "{id}"
title = "testbed benchmark"
seed = 1
series = ["{series}"]
[testbed]
kind = "local"
[roles]
clients = 1
client_threads = 1
host_workers = 1
nic_workers = 1
nic_access_delay_ns = 1500
nic_core_speed_factor = 0.5
[roles.pinning]
host = [0]
nic = [1]
client = [1]
[workload]
kind = "mica"
records = 20000
key_bytes = 8
value_bytes = 8
ycsb_workload = "b"
distribution = "scrambled-zipfian"
buckets = 16384
slots = 7
log_bytes = 4194304
[quick]
warmup_ms = {WARMUP_MS}
measure_ms = {measure_ms}
interval_ms = {interval_ms}
repetitions = 1
offered_load_ops_per_s = [{offered}]
{events}
[full]
warmup_ms = {WARMUP_MS}
measure_ms = {measure_ms}
interval_ms = {interval_ms}
repetitions = 1
offered_load_ops_per_s = [{offered}]
{events}
"#
    )
}

pub(super) fn plan_of(text: &str) -> anyhow::Result<ExperimentPlan> {
    Ok(naam_plan::parse_manifest(
        text,
        Path::new("<testbed bench>"),
        Variant::Quick,
    )?)
}

/// The loopback UDP request/response ceiling: the best of [`CEILING_BATCHES`] in flight, each
/// measured for `duration`.
pub(super) fn best_udp_ceiling(duration: Duration) -> anyhow::Result<naam_net::EchoCeiling> {
    CEILING_BATCHES
        .iter()
        .map(|&b| naam_net::udp_echo_ceiling(duration, b))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .max_by(|a, b| a.requests_per_s.total_cmp(&b.requests_per_s))
        .context("no ceiling measured")
}

/// `naam testbed bench`.
pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let duration = Duration::from_secs(args.seconds.max(1));
    let ceiling = best_udp_ceiling(duration)?;
    let executor = naam_executors::LocalExecutor::new(local_options(&args.testbed)?);
    let measure_ms = args.seconds * 1000;
    let host_plan = plan_of(&manifest(
        "mica-ycsb-b",
        "host",
        args.offered,
        measure_ms,
        100,
        None,
    ))?;
    let host_dir = args.out.join("host");
    std::fs::create_dir_all(&host_dir)?;
    let record = executor.run(&host_plan, &host_plan.points[0], &host_dir)?;
    let host: ClientSummary = raw::read_json(
        &host_dir.join(raw::client_summary_file(0)),
        "client summary",
    )?;
    let hog_start_ms = measure_ms / 2;
    let shift_plan = plan_of(&manifest(
        "load-shift",
        "naam-adaptive",
        20_000,
        measure_ms,
        SHIFT_INTERVAL_MS,
        Some(hog_start_ms),
    ))?;
    let shift_dir = args.out.join("shift");
    std::fs::create_dir_all(&shift_dir)?;
    executor.run(&shift_plan, &shift_plan.points[0], &shift_dir)?;
    let shift = shift_times(&shift_plan, &shift_dir)?;
    let report = BenchReport {
        machine_note: "measured on this machine by `naam testbed bench`; not a hardware testbed result",
        udp_ceiling_req_per_s: ceiling.requests_per_s,
        udp_ceiling_batch: ceiling.batch,
        host_placement_ops_per_s: host.achieved_ops_per_s,
        host_placement_offered_ops_per_s: args.offered as f64,
        ratio: host.achieved_ops_per_s / ceiling.requests_per_s,
        shift_ms: shift.rules_ms,
        shift_completions_ms: shift.completions_ms,
        shift_completions_before_hog: shift.completions_before_hog,
        hog_start_ms: shift.hog_start_ms,
        first_rule_change_ms: shift.first_rule_change_ms,
        eswitch: record.map_or_else(|| "none".into(), |r| r.eswitch),
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &BenchReport) {
    println!("{}", report.machine_note);
    println!(
        "raw UDP request/response ceiling: {:.0} req/s ({} in flight)",
        report.udp_ceiling_req_per_s, report.udp_ceiling_batch
    );
    println!(
        "host placement (MICA YCSB-B, {} eSwitch): {:.0} ops/s at {:.0} offered",
        report.eswitch, report.host_placement_ops_per_s, report.host_placement_offered_ops_per_s
    );
    println!("ratio: {:.2} (goal ≥ 0.8)", report.ratio);
    match report.shift_ms {
        Some(ms) => println!(
            "shift time, hog start → eSwitch sends 90 % of new requests to the NIC: {ms:.1} ms (goal ≤ 10 ms)"
        ),
        None => println!("shift time: the eSwitch never sent 90 % to the NIC"),
    }
    match report.shift_completions_ms {
        Some(ms) => println!(
            "  … and 90 % of completions in a {SHIFT_INTERVAL_MS} ms interval at the NIC: {ms:.1} ms (includes draining the starved host's backlog)"
        ),
        None if report.shift_completions_before_hog => println!(
            "  … completions were ≥ 90 % at the NIC already before the hog (contention moved them): no shift time"
        ),
        None => println!("  … completions never reached 90 % at the NIC in one interval"),
    }
    if let Some(ms) = report.first_rule_change_ms {
        println!("first rule change after the hog started: {ms:.1} ms");
    }
}

fn shift_times(plan: &ExperimentPlan, dir: &Path) -> anyhow::Result<ShiftTimes> {
    naam_results::shift::shift_times(plan, dir)?
        .context("the load-shift plan of the bench starts a CPU hog")
}

/// `naam testbed point`.
pub fn point(args: PointArgs) -> anyhow::Result<ExitCode> {
    let variant = if args.quick {
        Variant::Quick
    } else {
        Variant::Full
    };
    let plan = naam_plan::load_manifest(&args.manifest, variant)?;
    let point = match &args.point {
        Some(id) => plan
            .point(id)
            .with_context(|| format!("no point {id} in {}", args.manifest.display()))?,
        None => plan.points.first().context("the plan has no points")?,
    };
    std::fs::create_dir_all(&args.out)?;
    let executor = naam_executors::LocalExecutor::new(local_options(&args.testbed)?);
    executor.run(&plan, point, &args.out)?;
    println!(
        "point {} done: raw files in {}",
        point.id,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
