//! `summary.json`: the runner's account of one point, computed from the raw files alone.
//!
//! Histograms are merged by adding them (never by averaging percentiles): per location across
//! clients and intervals, and overall across locations. The merged histograms are stored in
//! the summary (base64 V2 + DEFLATE) so analysis can compute order-statistic confidence
//! intervals without re-reading the logs.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use naam_plan::{Event, ExperimentPlan, PointPlan, Timing, Workload};
use serde::{Deserialize, Serialize};

use crate::error::ResultsError;
use crate::hlog::{new_histogram, read_interval_log};
use crate::raw::*;
use crate::time;

/// Version of `summary.json`.
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// When a point is invalid: a point is invalid, and says so, when the generator fell behind its
/// schedule or the achieved rate missed the offered rate.
pub mod limits {
    /// Achieved rate below this fraction of the offered rate marks the point invalid: 5 %
    /// leaves room for Poisson sampling error over short phases (at 10^4 requests the
    /// standard deviation is 1 %) but not for a saturated server.
    pub const ACHIEVED_RATE_FRACTION_MIN: f64 = 0.95;
    /// A send lateness p99 above this means the generator fell behind its schedule (1 ms:
    /// far above scheduler noise on an idle core, far below a stalled generator).
    pub const SEND_LATENESS_NS_P99_MAX: u64 = 1_000_000;
    /// Failed requests above this fraction of those sent invalidate the point.
    pub const ERROR_FRACTION_MAX: f64 = 0.01;
    /// Sends held back by a full in-flight window, as a fraction of those sent, from which the
    /// point measured a saturated system (assumption: a tenth). A window fills only when the
    /// system under test holds `inflight_max` requests — at the quick loads, tens of ms of
    /// queue — so the clients' lateness and the requests still unanswered at the end follow from
    /// the system, and the generator's own lateness cannot be told apart within such a point
    /// (a backlog's sends wait for each other).
    pub const WINDOW_DELAYED_FRACTION_SATURATED: f64 = 0.1;
    /// The histograms' count and the clients' completions may differ by this fraction
    /// (completions racing the end of the phase); more means lost or double-counted samples.
    pub const COUNT_MISMATCH_FRACTION_MAX: f64 = 0.01;
    /// Datagrams the server side received and did not serve (malformed, unexpected, denied
    /// reads, unsent replies), as a fraction of the requests the clients sent in the measured
    /// phase, above which a point is invalid: 0.1 % (assumption: a healthy loopback or LAN
    /// testbed drops none; a tenth of the error budget leaves the errors room of their own).
    pub const DROPPED_FRACTION_MAX: f64 = ERROR_FRACTION_MAX / 10.0;
    /// A machine's clock offset known only within more than this fraction of the interval
    /// marks the point invalid: its intervals cannot be lined up with other machines' (a
    /// quarter of an interval: assumption, so an event stays within its interval or the next).
    pub const CLOCK_ERROR_INTERVAL_FRACTION_MAX: f64 = 0.25;
}
use limits::*;

/// Percentiles of one histogram (ns), and the histogram itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Samples.
    pub count: u64,
    /// Smallest (0 when empty).
    pub min_ns: u64,
    /// Mean.
    pub mean_ns: f64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// The histogram, V2 + DEFLATE, base64 (the `.hlog` payload format).
    pub histogram: String,
}

impl LatencyStats {
    /// Statistics of `h` (HdrHistogram's quantile convention: the value at or below which the
    /// quantile of samples lies, reported as the highest equivalent value of its bucket).
    pub fn of(h: &Histogram<u64>) -> LatencyStats {
        let empty = h.is_empty();
        let q = |quantile: f64| {
            if empty {
                0
            } else {
                h.value_at_quantile(quantile)
            }
        };
        LatencyStats {
            count: h.len(),
            min_ns: if empty { 0 } else { h.min() },
            mean_ns: if empty { 0.0 } else { h.mean() },
            p50_ns: q(0.5),
            p90_ns: q(0.9),
            p99_ns: q(0.99),
            p999_ns: q(0.999),
            max_ns: if empty { 0 } else { h.max() },
            histogram: encode_histogram(h),
        }
    }

    /// Decodes the stored histogram.
    pub fn decode(&self) -> Result<Histogram<u64>, String> {
        decode_histogram(&self.histogram)
    }
}

/// base64(V2 + DEFLATE) of a histogram.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    match V2DeflateSerializer::new().serialize(h, &mut bytes) {
        Ok(_) => BASE64.encode(bytes),
        Err(_) => String::new(),
    }
}

/// Inverse of [`encode_histogram`].
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = BASE64.decode(text).map_err(|e| format!("base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram: {e:?}"))
}

/// Latency and share of one execution location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationShare {
    /// The location.
    pub location: Location,
    /// Fraction of all completed requests executed here, in `0..=1`.
    pub share: f64,
    /// Latency of the requests executed here.
    pub latency: LatencyStats,
}

/// Requests the clients completed within the measured phase, per second of it (the replies they
/// drained after its end are not the phase's throughput).
fn phase_throughput(summaries: &[ClientSummary], measure_ms: u64) -> f64 {
    let in_phase: u64 = summaries
        .iter()
        .map(|s| s.completed.saturating_sub(s.completed_after_phase))
        .sum();
    in_phase as f64 * 1000.0 / measure_ms as f64
}

/// The traffic part of a point summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficSummary {
    /// Client processes.
    pub clients: u32,
    /// Schedule of the clients.
    pub schedule: ScheduleKind,
    /// Offered load of the plan, time-averaged over load-step events (`None` closed loop).
    pub offered_mean_ops_per_s: Option<f64>,
    /// Requests completed within the measured phase, per second of it (sum over clients; the
    /// replies drained after the phase's end, `completed_after_phase`, are not in it).
    pub throughput_ops_per_s: f64,
    /// Sum of the clients' own achieved rates.
    pub achieved_ops_per_s: f64,
    /// Requests sent.
    pub sent: u64,
    /// Requests completed.
    pub completed: u64,
    /// Failed requests (all kinds).
    pub errors: u64,
    /// Replies that did not verify.
    pub verify_failures: u64,
    /// Verified misses of a lossy store (not failures).
    #[serde(default)]
    pub misses: u64,
    /// Worst client's send-lateness p99.
    pub send_lateness_ns_p99_max: u64,
    /// Largest send lateness of any client.
    pub send_lateness_ns_max: u64,
    /// The in-flight windows' share of that lateness, when a window held sends back: the worst
    /// client's own lateness p99, the longest full time, the delayed sends of all clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowHold>,
    /// Key distribution that ran.
    pub distribution: String,
    /// All requests (every location merged).
    pub latency: LatencyStats,
    /// Per location, in host, nic, client order.
    pub locations: Vec<LocationShare>,
    /// Distinct intervals in the logs.
    pub intervals: u32,
    /// The server's counters, when the point had a server.
    pub server: Option<ServerSummary>,
    /// Lines of `steering.jsonl`.
    pub steering_changes: u32,
    /// Lines of `samples.jsonl` (0 when absent).
    pub load_samples: u32,
}

/// Whether a point's numbers can be trusted, and what they measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "verdict")]
pub enum Validity {
    /// Every check passed.
    Valid,
    /// Every check passed except that the system under test carried less than the offered load
    /// while the generator sent on time: a valid measurement of a saturated system (a
    /// saturation throughput), not a failure of the harness.
    Saturated {
        /// The shortfall in words.
        reason: String,
    },
    /// Some check failed; the figures mark the point.
    Invalid {
        /// Each failed check in words.
        reasons: Vec<String>,
    },
}

impl Validity {
    /// The verdict from the failed checks and the saturation shortfall, if any: a shortfall
    /// alone is saturation; beside any failed check it is one more reason the point is invalid
    /// (the generator or the harness may have caused it).
    fn of(mut reasons: Vec<String>, saturation: Option<String>) -> Validity {
        match (reasons.is_empty(), saturation) {
            (true, None) => Validity::Valid,
            (true, Some(reason)) => Validity::Saturated { reason },
            (false, saturation) => {
                reasons.extend(saturation);
                Validity::Invalid { reasons }
            }
        }
    }

    /// Whether the point measured the system under test (valid or saturated).
    pub fn is_valid(&self) -> bool {
        !matches!(self, Validity::Invalid { .. })
    }

    /// Whether the point measured a saturated system.
    pub fn is_saturated(&self) -> bool {
        matches!(self, Validity::Saturated { .. })
    }

    /// `valid`, `saturated` or `invalid`.
    pub fn verdict(&self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Saturated { .. } => "saturated",
            Validity::Invalid { .. } => "invalid",
        }
    }
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointSummary {
    /// [`SUMMARY_SCHEMA_VERSION`].
    pub schema: u32,
    /// The point's coordinates and seed.
    pub point: PointPlan,
    /// Index of the provenance session that measured it.
    pub session: u32,
    /// When it was summarized, RFC 3339 UTC.
    pub summarized_at: String,
    /// Traffic points.
    pub traffic: Option<TrafficSummary>,
    /// vm-cost points.
    pub vm_cost: Option<VmCostReport>,
    /// Verdict.
    pub validity: Validity,
}

/// Reads the raw files of a measured point in `dir` and summarizes them.
pub fn summarize_point(
    plan: &ExperimentPlan,
    point: &PointPlan,
    dir: &Path,
    session: u32,
) -> Result<PointSummary, ResultsError> {
    let (traffic, vm_cost, reasons) = match (&plan.workload, &plan.timing) {
        (Workload::VmCost(w), _) => {
            let report: VmCostReport = read_json(&dir.join(VMCOST_FILE), "vm-cost report")?;
            let reasons = check_vm_cost(&report, point, &w.functions);
            (None, Some(report), reasons)
        }
        (
            _,
            Timing::Traffic {
                measure_ms,
                interval_ms,
                ..
            },
        ) => {
            let (t, reasons) = summarize_traffic(plan, point, dir, *measure_ms, *interval_ms)?;
            (Some(t), None, reasons)
        }
        (_, Timing::Iterations { .. }) => (
            None,
            None,
            vec!["a traffic workload with iteration timing".to_string()],
        ),
    };
    let saturation = traffic.as_ref().and_then(saturation);
    Ok(PointSummary {
        schema: SUMMARY_SCHEMA_VERSION,
        point: point.clone(),
        session,
        summarized_at: time::rfc3339(time::now_unix()),
        traffic,
        vm_cost,
        validity: Validity::of(reasons, saturation),
    })
}

fn check_vm_cost(report: &VmCostReport, point: &PointPlan, functions: &[String]) -> Vec<String> {
    let mut reasons = Vec::new();
    let backend = point.series.as_str();
    for f in functions {
        if !report
            .entries
            .iter()
            .any(|e| &e.function == f && e.backend == backend)
        {
            reasons.push(format!("no entry for function {f} on backend {backend}"));
        }
    }
    for e in &report.entries {
        if let VmCostOutcome::Measured {
            ns_per_op,
            iterations,
        } = e.outcome
            && (!ns_per_op.is_finite() || ns_per_op <= 0.0 || iterations == 0)
        {
            reasons.push(format!(
                "{}/{}: {ns_per_op} ns/op over {iterations} iterations",
                e.function, e.backend
            ));
        }
    }
    reasons
}

/// Per-interval, per-location histograms of a point, merged across clients by adding.
/// Keys are (interval index from measure start, location).
pub fn read_point_intervals(
    dir: &Path,
    clients: u32,
    interval_ms: u64,
) -> Result<BTreeMap<(u32, Location), Histogram<u64>>, ResultsError> {
    let mut merged: BTreeMap<(u32, Location), Histogram<u64>> = BTreeMap::new();
    for k in 0..clients {
        let path = dir.join(client_hlog_file(k));
        for (i, interval) in read_interval_log(&path)?.into_iter().enumerate() {
            let tag = interval.tag.as_deref().unwrap_or("");
            let location = Location::from_name(tag).ok_or_else(|| ResultsError::Hlog {
                path: path.clone(),
                location: format!("interval {i}"),
                problem: format!("tag {tag:?} is not a location (host, nic, client)"),
            })?;
            let index = (interval.start.as_secs_f64() * 1000.0 / interval_ms as f64).round() as u32;
            let slot = merged
                .entry((index, location))
                .or_insert_with(new_histogram);
            slot.add(&interval.histogram)
                .map_err(|e| ResultsError::Hlog {
                    path: path.clone(),
                    location: format!("interval {i}"),
                    problem: format!("cannot add histogram: {e:?}"),
                })?;
        }
    }
    Ok(merged)
}

fn summarize_traffic(
    plan: &ExperimentPlan,
    point: &PointPlan,
    dir: &Path,
    measure_ms: u64,
    interval_ms: u64,
) -> Result<(TrafficSummary, Vec<String>), ResultsError> {
    let clients = plan.roles.clients;
    let mut summaries = Vec::new();
    for k in 0..clients {
        summaries.push(read_json::<ClientSummary>(
            &dir.join(client_summary_file(k)),
            "client summary",
        )?);
    }
    let intervals = read_point_intervals(dir, clients, interval_ms)?;
    let mut by_location: BTreeMap<Location, Histogram<u64>> = Location::ALL
        .iter()
        .map(|&l| (l, new_histogram()))
        .collect();
    for ((_, location), h) in &intervals {
        if let Some(slot) = by_location.get_mut(location) {
            let _ = slot.add(h);
        }
    }
    let mut all = new_histogram();
    for h in by_location.values() {
        let _ = all.add(h);
    }
    let server_path = dir.join(SERVER_FILE);
    let server = server_path
        .exists()
        .then(|| read_json::<ServerSummary>(&server_path, "server summary"))
        .transpose()?;
    let steering_changes =
        jsonl_len::<SteeringChange>(&dir.join(STEERING_FILE), "steering change")?;
    let load_samples = jsonl_len::<LoadSample>(&dir.join(SAMPLES_FILE), "load sample")?;
    let completed: u64 = summaries.iter().map(|s| s.completed).sum();
    let total = all.len();
    let share = |h: &Histogram<u64>| {
        if total == 0 {
            0.0
        } else {
            h.len() as f64 / total as f64
        }
    };
    let schedule = summaries
        .first()
        .map_or(ScheduleKind::Poisson, |s| s.schedule);
    let offered_mean_ops_per_s = (schedule != ScheduleKind::ClosedLoop)
        .then(|| offered_mean(plan, point, measure_ms))
        .flatten();
    let distinct_intervals: std::collections::BTreeSet<u32> =
        intervals.keys().map(|(i, _)| *i).collect();
    let summary = TrafficSummary {
        clients,
        schedule,
        offered_mean_ops_per_s,
        throughput_ops_per_s: phase_throughput(&summaries, measure_ms),
        achieved_ops_per_s: summaries.iter().map(|s| s.achieved_ops_per_s).sum(),
        sent: summaries.iter().map(|s| s.sent).sum(),
        completed,
        errors: summaries.iter().flat_map(|s| s.errors.values()).sum(),
        verify_failures: summaries.iter().map(|s| s.verify_failures).sum(),
        misses: summaries.iter().map(|s| s.misses).sum(),
        send_lateness_ns_p99_max: summaries
            .iter()
            .map(|s| s.send_lateness_ns_p99)
            .max()
            .unwrap_or(0),
        send_lateness_ns_max: summaries
            .iter()
            .map(|s| s.send_lateness_ns_max)
            .max()
            .unwrap_or(0),
        window: window_hold(&summaries),
        distribution: summaries
            .first()
            .map(|s| s.distribution.clone())
            .unwrap_or_default(),
        latency: LatencyStats::of(&all),
        locations: by_location
            .iter()
            .map(|(&location, h)| LocationShare {
                location,
                share: share(h),
                latency: LatencyStats::of(h),
            })
            .collect(),
        intervals: distinct_intervals.len() as u32,
        server,
        steering_changes: steering_changes as u32,
        load_samples: load_samples as u32,
    };
    let mut reasons = traffic_reasons(&summary, &summaries, measure_ms, interval_ms);
    reasons.extend(clock_reasons(dir, interval_ms)?);
    Ok((summary, reasons))
}

/// Lines of the JSONL file at `path` read as `T`s; 0 when the file is absent.
fn jsonl_len<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<usize, ResultsError> {
    if !path.exists() {
        return Ok(0);
    }
    Ok(read_jsonl::<T>(path, what)?.len())
}

/// The plan's offered load averaged over the measured phase, with load steps applied.
fn offered_mean(plan: &ExperimentPlan, point: &PointPlan, measure_ms: u64) -> Option<f64> {
    let base = point.offered_load_ops_per_s? as f64;
    let mut steps: Vec<(u64, f64)> = plan
        .events
        .iter()
        .filter_map(|e| match e {
            Event::LoadStep { at_ms, factor } => Some((*at_ms, *factor)),
            Event::CpuHog { .. } => None,
        })
        .collect();
    steps.sort_by_key(|s| s.0);
    let (mut weighted, mut t, mut factor) = (0.0, 0u64, 1.0);
    for (at_ms, f) in steps {
        weighted += factor * (at_ms.saturating_sub(t)) as f64;
        t = at_ms;
        factor = f;
    }
    weighted += factor * measure_ms.saturating_sub(t) as f64;
    Some(base * weighted / measure_ms as f64)
}

fn traffic_reasons(
    t: &TrafficSummary,
    clients: &[ClientSummary],
    measure_ms: u64,
    interval_ms: u64,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if t.completed == 0 {
        reasons.push("no request completed".to_string());
    }
    let held = window_saturated(t);
    let own_ns_p99 = own_lateness_ns_p99(t);
    if !held && own_ns_p99 > SEND_LATENESS_NS_P99_MAX {
        reasons.push(format!(
            "generator fell behind: send lateness p99 {} us > {} us",
            own_ns_p99 / 1000,
            SEND_LATENESS_NS_P99_MAX / 1000
        ));
    }
    if t.verify_failures > 0 {
        reasons.push(format!("{} replies failed verification", t.verify_failures));
    }
    // A saturated system's queue at the end is not a failure (the saturation reason says so).
    let queued_at_end: u64 = clients
        .iter()
        .filter(|_| held)
        .filter_map(|c| c.errors.get(UNANSWERED_AT_END))
        .sum();
    let failed = t.errors - queued_at_end;
    if failed as f64 > t.sent as f64 * ERROR_FRACTION_MAX {
        reasons.push(format!(
            "{} of {} requests failed (> {} %)",
            failed,
            t.sent,
            ERROR_FRACTION_MAX * 100.0
        ));
    }
    let logged = t.latency.count;
    if logged.abs_diff(t.completed) as f64 > t.completed as f64 * COUNT_MISMATCH_FRACTION_MAX {
        reasons.push(format!(
            "the interval logs hold {logged} samples but clients completed {}",
            t.completed
        ));
    }
    if let Some(server) = &t.server {
        reasons.extend(server_reasons(server, t.sent));
    }
    for c in clients {
        if let Some(ms) = c.stopped_at_ms {
            reasons.push(format!(
                "client {} was stopped {ms} ms into the {measure_ms} ms measured phase",
                c.client
            ));
        }
        if c.measure_ms != measure_ms || c.interval_ms != interval_ms {
            reasons.push(format!(
                "client {} measured {} ms in {} ms intervals; the plan says {measure_ms} ms in {interval_ms} ms",
                c.client, c.measure_ms, c.interval_ms
            ));
        }
    }
    reasons
}

/// Machines whose clock offset is too uncertain for the point's intervals (`clock.json`, written
/// for points on real machines).
fn clock_reasons(dir: &Path, interval_ms: u64) -> Result<Vec<String>, ResultsError> {
    let path = dir.join(CLOCK_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let clock: ClockSummary = read_json(&path, "clock offsets")?;
    let bound_ns = (interval_ms as f64 * 1e6 * CLOCK_ERROR_INTERVAL_FRACTION_MAX) as u64;
    Ok(clock
        .machines
        .iter()
        .filter(|m| m.error_bound_ns > bound_ns)
        .map(|m| {
            format!(
                "clock offset of {} known only within ±{:.1} ms, more than {} % of the {interval_ms} ms interval",
                m.host,
                m.error_bound_ns as f64 / 1e6,
                CLOCK_ERROR_INTERVAL_FRACTION_MAX * 100.0
            )
        })
        .collect())
}

/// The shortfall of an open-loop point that carried less than [`ACHIEVED_RATE_FRACTION_MIN`] of
/// its offered load, in words; the send-lateness check (a reason of its own) tells whether the
/// generator or the system under test fell short.
pub fn saturation(t: &TrafficSummary) -> Option<String> {
    let offered = t.offered_mean_ops_per_s?;
    let shortfall = (t.achieved_ops_per_s < offered * ACHIEVED_RATE_FRACTION_MIN).then(|| {
        format!(
            "achieved {:.0} ops/s, below {:.0} % of the offered {offered:.0} ops/s",
            t.achieved_ops_per_s,
            ACHIEVED_RATE_FRACTION_MIN * 100.0
        )
    });
    let held = t.window.filter(|_| window_saturated(t)).map(|w| {
        format!(
            "the in-flight window was full for {} ms of the measured phase and {} of {} sends \
             waited for a slot (send lateness p99 {} us, at most {} us of it the generator's \
             own): the system under test held every slot",
            w.full_ns / 1_000_000,
            w.delayed_sends,
            t.sent,
            t.send_lateness_ns_p99_max / 1000,
            w.send_lateness_own_ns_p99 / 1000
        )
    });
    match (shortfall, held) {
        (None, None) => None,
        (a, b) => Some(a.into_iter().chain(b).collect::<Vec<_>>().join("; ")),
    }
}

/// Whether full in-flight windows held back enough sends that the point measured a saturated
/// system ([`limits::WINDOW_DELAYED_FRACTION_SATURATED`]).
fn window_saturated(t: &TrafficSummary) -> bool {
    t.window.is_some_and(|w| {
        w.delayed_sends as f64 >= t.sent as f64 * WINDOW_DELAYED_FRACTION_SATURATED
    })
}

/// The worst client's own send-lateness p99: lateness less the in-flight window's wait, or all of
/// it where no window held sends back.
fn own_lateness_ns_p99(t: &TrafficSummary) -> u64 {
    t.window
        .map_or(t.send_lateness_ns_p99_max, |w| w.send_lateness_own_ns_p99)
}

/// The clients' windows together (see [`TrafficSummary::window`]); a client without a window
/// record counts with all its lateness as its own.
fn window_hold(summaries: &[ClientSummary]) -> Option<WindowHold> {
    summaries
        .iter()
        .any(|s| s.window.is_some())
        .then(|| WindowHold {
            send_lateness_own_ns_p99: summaries
                .iter()
                .map(|s| {
                    s.window
                        .map_or(s.send_lateness_ns_p99, |w| w.send_lateness_own_ns_p99)
                })
                .max()
                .unwrap_or(0),
            full_ns: summaries
                .iter()
                .filter_map(|s| s.window.map(|w| w.full_ns))
                .max()
                .unwrap_or(0),
            delayed_sends: summaries
                .iter()
                .filter_map(|s| s.window.map(|w| w.delayed_sends))
                .sum(),
        })
}

fn server_reasons(server: &ServerSummary, sent: u64) -> Vec<String> {
    let mut reasons = Vec::new();
    let d = &server.dropped;
    if d.total() as f64 > sent as f64 * DROPPED_FRACTION_MAX {
        reasons.push(format!(
            "the server dropped {} datagrams (malformed {}, unexpected {}, denied reads {}, unsent replies {}) for {sent} requests sent (> {} %)",
            d.total(),
            d.malformed,
            d.unexpected,
            d.denied_reads,
            d.unsent_replies,
            DROPPED_FRACTION_MAX * 100.0
        ));
    }
    if server.steering_changes_dropped > 0 {
        reasons.push(format!(
            "steering.jsonl is incomplete: {} rule changes dropped",
            server.steering_changes_dropped
        ));
    }
    if server.load_samples_dropped > 0 {
        reasons.push(format!(
            "samples.jsonl is incomplete: {} load samples dropped",
            server.load_samples_dropped
        ));
    }
    reasons
}

#[cfg(test)]
mod verdict_tests {
    use super::Validity;

    #[test]
    fn a_shortfall_alone_is_saturation_and_beside_a_failed_check_one_more_reason() {
        let shortfall =
            || Some("achieved 10 ops/s, below 95 % of the offered 20 ops/s".to_string());
        assert_eq!(Validity::of(Vec::new(), None), Validity::Valid);
        let saturated = Validity::of(Vec::new(), shortfall());
        assert!(saturated.is_valid() && saturated.is_saturated());
        assert_eq!(saturated.verdict(), "saturated");
        let late = vec!["generator fell behind: send lateness p99 2000 us > 1000 us".to_string()];
        match Validity::of(late, shortfall()) {
            Validity::Invalid { reasons } => {
                assert_eq!(reasons.len(), 2);
                assert!(reasons[0].starts_with("generator fell behind"));
                assert!(reasons[1].starts_with("achieved"));
            }
            other => panic!("a late generator's shortfall is not saturation: {other:?}"),
        }
    }
}
