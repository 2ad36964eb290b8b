//! A run folder → its frames (`frames/<name>.parquet` and `.csv`).

use std::collections::BTreeSet;
use std::path::Path;

use hdrhistogram::Histogram;
use naam_plan::{Event, ExperimentPlan, PointPlan, Timing};
use naam_results::hlog::new_histogram;
use naam_results::raw::*;
use naam_results::shift::ShiftTimes;
use naam_results::summary::{PointSummary, read_point_intervals};
use naam_results::{Provenance, RunDir, RunState};
use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use crate::error::AnalysisError;
use crate::export::{CsvExporter, Exporter, ParquetExporter};
use crate::frame::{FrameBuilder, Row};
use crate::schema;
use crate::stats::quantile_ci;

/// Every frame of one run, in [`schema::FRAMES`] order.
#[derive(Debug)]
pub struct Frames {
    /// (name, frame) pairs.
    pub frames: Vec<(&'static str, DataFrame)>,
}

impl Frames {
    /// The frame called `name`.
    pub fn get(&self, name: &str) -> Option<&DataFrame> {
        self.frames.iter().find(|(n, _)| *n == name).map(|(_, f)| f)
    }
}

/// `naam analyze --json`: what was written for one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzeReport {
    /// Run folder.
    pub run_dir: String,
    /// Files written (parquet and CSV per frame).
    pub files: Vec<String>,
    /// Rows per frame.
    pub rows: Vec<(String, u64)>,
    /// Complete points that are invalid.
    pub invalid_points: Vec<String>,
    /// Points of the plan without a summary.
    pub missing_points: u32,
}

/// Builds the frames of the run at `run_dir` from its files (plan, provenance, summaries,
/// raw point files).
pub fn build_frames(run_dir: &Path) -> Result<Frames, AnalysisError> {
    let run = RunDir::open(run_dir);
    let plan = run.read_plan()?;
    let provenance = run.read_provenance()?;
    let state = RunState::scan(&run, &plan, Vec::new(), None);
    let mut b = Builders::new();
    push_run_row(&mut b.run, &plan, &provenance, &state)?;
    push_events(&mut b.events, &plan, &run.run_id())?;
    for point in plan.points.iter().filter(|p| run.is_complete(&p.id)) {
        let summary = run.read_summary(&point.id)?;
        let ctx = PointCtx {
            plan: &plan,
            point,
            run_id: run.run_id(),
        };
        let dir = run.point_dir(&point.id);
        let shift = match summary.traffic {
            Some(_) => naam_results::shift::shift_times(&plan, &dir)?,
            None => None,
        };
        push_point(&mut b.points, &ctx, &summary, shift)?;
        if let Some(report) = &summary.vm_cost {
            push_vmcost(&mut b.vmcost, &ctx, report)?;
        }
        if let (Some(_), Timing::Traffic { interval_ms, .. }) = (&summary.traffic, &plan.timing) {
            push_intervals(&mut b.intervals, &ctx, &dir, *interval_ms)?;
            push_jsonl_frames(&mut b, &ctx, &dir)?;
        }
    }
    b.finish()
}

/// Builds the frames of a run and writes them as parquet and CSV into its `frames/` folder
/// (atomically, file by file).
pub fn analyze_run(run_dir: &Path) -> Result<AnalyzeReport, AnalysisError> {
    let mut frames = build_frames(run_dir)?;
    let run = RunDir::open(run_dir);
    let out = run.frames_dir();
    std::fs::create_dir_all(&out).map_err(|source| AnalysisError::Io {
        path: out.clone(),
        source,
    })?;
    let exporters: [&dyn Exporter; 2] = [&ParquetExporter, &CsvExporter];
    let mut files = Vec::new();
    let mut rows = Vec::new();
    for (name, frame) in &mut frames.frames {
        rows.push((name.to_string(), frame.height() as u64));
        for exporter in exporters {
            let bytes = exporter.export(frame)?;
            let path = out.join(format!("{name}.{}", exporter.extension()));
            naam_results::atomic::write_atomic(&path, &bytes)?;
            files.push(path.display().to_string());
        }
    }
    let plan = run.read_plan()?;
    let state = RunState::scan(&run, &plan, Vec::new(), None);
    let invalid_points = plan
        .points
        .iter()
        .filter(|p| run.is_complete(&p.id))
        .filter(|p| {
            run.read_summary(&p.id)
                .is_ok_and(|s| !s.validity.is_valid())
        })
        .map(|p| p.id.clone())
        .collect();
    Ok(AnalyzeReport {
        run_dir: run_dir.display().to_string(),
        files,
        rows,
        invalid_points,
        missing_points: state.missing.len() as u32,
    })
}

struct Builders {
    run: FrameBuilder,
    points: FrameBuilder,
    intervals: FrameBuilder,
    steering: FrameBuilder,
    samples: FrameBuilder,
    vmcost: FrameBuilder,
    events: FrameBuilder,
}

impl Builders {
    fn new() -> Builders {
        Builders {
            run: FrameBuilder::new("run", schema::RUN),
            points: FrameBuilder::new("points", schema::POINTS),
            intervals: FrameBuilder::new("intervals", schema::INTERVALS),
            steering: FrameBuilder::new("steering", schema::STEERING),
            samples: FrameBuilder::new("samples", schema::SAMPLES),
            vmcost: FrameBuilder::new("vmcost", schema::VMCOST),
            events: FrameBuilder::new("events", schema::EVENTS),
        }
    }

    fn finish(self) -> Result<Frames, AnalysisError> {
        Ok(Frames {
            frames: vec![
                ("run", self.run.finish()?),
                ("points", self.points.finish()?),
                ("intervals", self.intervals.finish()?),
                ("steering", self.steering.finish()?),
                ("samples", self.samples.finish()?),
                ("vmcost", self.vmcost.finish()?),
                ("events", self.events.finish()?),
            ],
        })
    }
}

struct PointCtx<'a> {
    plan: &'a ExperimentPlan,
    point: &'a PointPlan,
    run_id: String,
}

impl PointCtx<'_> {
    fn keys(&self, r: &mut Row<'_>) {
        r.set("experiment", self.plan.id.as_str())
            .set("run_id", self.run_id.as_str())
            .set("point_id", self.point.id.as_str())
            .set("series", self.point.series.as_str())
            .set("repetition", self.point.repetition)
            .set_opt("offered_load_ops_per_s", self.point.offered_load_ops_per_s)
            .set_opt("tree_depth", self.point.tree_depth)
            .set("tenants", self.point.tenants);
    }
}

fn push_run_row(
    b: &mut FrameBuilder,
    plan: &ExperimentPlan,
    p: &Provenance,
    state: &RunState,
) -> Result<(), AnalysisError> {
    let executors: BTreeSet<&str> = p.sessions.iter().map(|s| s.executor.as_str()).collect();
    let executor = executors.iter().copied().collect::<Vec<_>>().join("; ");
    let synthetic = executors.iter().any(|e| e.starts_with("synthetic"));
    let latest = p.sessions.last();
    let (measure_ms, interval_ms) = match plan.timing {
        Timing::Traffic {
            measure_ms,
            interval_ms,
            ..
        } => (Some(measure_ms), Some(interval_ms)),
        Timing::Iterations { .. } => (None, None),
    };
    b.push(|r| {
        r.set("frames_schema", schema::FRAMES_SCHEMA_VERSION)
            .set("experiment", plan.id.as_str())
            .set("title", plan.title.as_str())
            .set("run_id", p.run_id.as_str())
            .set("variant", plan.variant.as_str())
            .set(
                "status",
                if state.missing.is_empty() {
                    "complete"
                } else {
                    "partial"
                },
            )
            .set("points_total", state.points_total)
            .set("points_complete", state.points_complete)
            .set("config_hash", p.config_hash.as_str())
            .set("testbed", p.testbed.as_str())
            .set("nic_emulated", p.nic_emulated)
            .set("executor", executor.clone())
            .set("synthetic", synthetic)
            .set("code_dirty", p.sessions.iter().any(|s| s.code.dirty))
            .set("sessions", p.sessions.len() as u32)
            .set_opt("measure_ms", measure_ms)
            .set_opt("interval_ms", interval_ms)
            .set("repetitions", plan.repetitions);
        if let Some(s) = latest {
            r.set("hostname", s.host.hostname.as_str())
                .set("cpu_model", s.host.cpu_model.as_str())
                .set("cores", s.host.cores)
                .set("kernel", s.host.kernel.as_str())
                .set_opt("code_commit", s.code.commit.clone())
                .set("toolchain", s.toolchain.as_str());
        }
    })
}

fn push_events(
    b: &mut FrameBuilder,
    plan: &ExperimentPlan,
    run_id: &str,
) -> Result<(), AnalysisError> {
    for e in &plan.events {
        b.push(|r| {
            r.set("experiment", plan.id.as_str()).set("run_id", run_id);
            match *e {
                Event::CpuHog {
                    start_ms,
                    stop_ms,
                    threads,
                } => {
                    r.set("kind", "cpu-hog")
                        .set("start_ms", start_ms)
                        .set("stop_ms", stop_ms)
                        .set("threads", threads);
                }
                Event::LoadStep { at_ms, factor } => {
                    r.set("kind", "load-step")
                        .set("start_ms", at_ms)
                        .set("factor", factor);
                }
            }
        })?;
    }
    Ok(())
}

fn push_point(
    b: &mut FrameBuilder,
    ctx: &PointCtx<'_>,
    s: &PointSummary,
    shift: Option<ShiftTimes>,
) -> Result<(), AnalysisError> {
    let reasons = match &s.validity {
        naam_results::Validity::Valid | naam_results::Validity::Saturated { .. } => String::new(),
        naam_results::Validity::Invalid { reasons } => reasons.join("; "),
    };
    let saturation = s
        .traffic
        .as_ref()
        .and_then(naam_results::summary::saturation);
    let merged = match &s.traffic {
        Some(t) => Some(
            t.latency
                .decode()
                .map_err(|problem| AnalysisError::Histogram {
                    point: ctx.point.id.clone(),
                    problem,
                })?,
        ),
        None => None,
    };
    b.push(|r| {
        ctx.keys(r);
        r.set("point_index", ctx.point.index)
            .set("seed", ctx.point.seed)
            .set("session", s.session)
            .set("valid", s.validity.is_valid())
            .set("verdict", s.validity.verdict())
            .set_opt("saturation", saturation.clone())
            .set("invalid_reasons", reasons.clone());
        if let (Some(t), Some(h)) = (&s.traffic, &merged) {
            traffic_columns(r, t, h);
        }
        if let Some(shift) = shift {
            let reaction = shift.reaction();
            r.set_opt("shift_rules_ms", shift.rules_ms)
                .set_opt("shift_completions_ms", reaction.shifted_ms)
                .set("shift_completions_before_hog", reaction.shifted_before_hog)
                .set("reaction_mechanism", reaction.mechanism.as_str())
                .set_opt("reaction_first_ms", reaction.first_ms);
        }
    })
}

fn traffic_columns(r: &mut Row<'_>, t: &naam_results::summary::TrafficSummary, h: &Histogram<u64>) {
    let ci50 = quantile_ci(h, 0.5);
    let ci99 = quantile_ci(h, 0.99);
    r.set("throughput_ops_per_s", t.throughput_ops_per_s)
        .set("achieved_ops_per_s", t.achieved_ops_per_s)
        .set_opt("offered_mean_ops_per_s", t.offered_mean_ops_per_s)
        .set("sent", t.sent)
        .set("completed", t.completed)
        .set("errors", t.errors)
        .set("verify_failures", t.verify_failures)
        .set("latency_count", t.latency.count)
        .set("latency_ns_mean", t.latency.mean_ns)
        .set("latency_ns_p50", t.latency.p50_ns)
        .set_opt("latency_ns_p50_ci_lo", ci50.map(|c| c.0))
        .set_opt("latency_ns_p50_ci_hi", ci50.map(|c| c.1))
        .set("latency_ns_p90", t.latency.p90_ns)
        .set("latency_ns_p99", t.latency.p99_ns)
        .set_opt("latency_ns_p99_ci_lo", ci99.map(|c| c.0))
        .set_opt("latency_ns_p99_ci_hi", ci99.map(|c| c.1))
        .set("latency_ns_p999", t.latency.p999_ns)
        .set("latency_ns_max", t.latency.max_ns)
        .set("send_lateness_ns_p99_max", t.send_lateness_ns_p99_max)
        .set("steering_changes", t.steering_changes)
        .set("intervals", t.intervals);
    for share in &t.locations {
        let (share_col, p99_col) = match share.location {
            Location::Host => ("share_host", "latency_ns_p99_host"),
            Location::Nic => ("share_nic", "latency_ns_p99_nic"),
            Location::Client => ("share_client", "latency_ns_p99_client"),
        };
        r.set(share_col, share.share).set_opt(
            p99_col,
            (share.latency.count > 0).then_some(share.latency.p99_ns),
        );
    }
    if let Some(server) = &t.server {
        let d = &server.dropped;
        r.set("host_busy_fraction", server.host.busy_fraction)
            .set("nic_busy_fraction", server.nic.busy_fraction)
            .set("server_malformed", d.malformed)
            .set("server_unexpected", d.unexpected)
            .set("server_denied_reads", d.denied_reads)
            .set("server_unsent_replies", d.unsent_replies)
            .set("load_samples_dropped", server.load_samples_dropped)
            .set("steering_changes_dropped", server.steering_changes_dropped);
        if let Some(cpu) = &server.host_cpu {
            r.set("host_cpu_ns", cpu.total_ns())
                .set("host_cpu_ns_outside_workers", cpu.outside_workers_ns());
        }
    }
}

fn push_intervals(
    b: &mut FrameBuilder,
    ctx: &PointCtx<'_>,
    dir: &Path,
    interval_ms: u64,
) -> Result<(), AnalysisError> {
    let merged = read_point_intervals(dir, ctx.plan.roles.clients, interval_ms)?;
    let indices: BTreeSet<u32> = merged.keys().map(|(i, _)| *i).collect();
    for index in indices {
        let mut all = new_histogram();
        for location in Location::ALL {
            let empty = new_histogram();
            let h = merged.get(&(index, location)).unwrap_or(&empty);
            let _ = all.add(h);
            push_interval_row(b, ctx, index, interval_ms, location.name(), h)?;
        }
        push_interval_row(b, ctx, index, interval_ms, "all", &all)?;
    }
    Ok(())
}

fn push_interval_row(
    b: &mut FrameBuilder,
    ctx: &PointCtx<'_>,
    index: u32,
    interval_ms: u64,
    location: &str,
    h: &Histogram<u64>,
) -> Result<(), AnalysisError> {
    b.push(|r| {
        ctx.keys(r);
        r.set("interval_index", index)
            .set("t_ms", u64::from(index) * interval_ms)
            .set("interval_ms", interval_ms)
            .set("location", location)
            .set("count", h.len())
            .set("ops_per_s", h.len() as f64 * 1000.0 / interval_ms as f64);
        if !h.is_empty() {
            r.set("latency_ns_p50", h.value_at_quantile(0.5))
                .set("latency_ns_p99", h.value_at_quantile(0.99))
                .set("latency_ns_max", h.max());
        }
    })
}

fn push_jsonl_frames(
    b: &mut Builders,
    ctx: &PointCtx<'_>,
    dir: &Path,
) -> Result<(), AnalysisError> {
    let steering_path = dir.join(STEERING_FILE);
    if steering_path.exists() {
        for c in read_jsonl::<SteeringChange>(&steering_path, "steering change")? {
            b.steering.push(|r| {
                ctx.keys(r);
                r.set("t_ns", c.t_ns)
                    .set("policy", c.policy.as_str())
                    .set("scope", c.scope.as_str())
                    .set("host_permille", u32::from(c.host_permille))
                    .set("nic_permille", u32::from(c.nic_permille))
                    .set("client_permille", u32::from(c.client_permille))
                    .set("reason", c.reason.as_str());
            })?;
        }
    }
    let samples_path = dir.join(SAMPLES_FILE);
    if samples_path.exists() {
        for s in read_jsonl::<LoadSample>(&samples_path, "load sample")? {
            b.samples.push(|r| {
                ctx.keys(r);
                r.set("t_ns", s.t_ns)
                    .set("location", s.location.name())
                    .set("queue_delay_ns", s.queue_delay_ns)
                    .set("utilisation", s.utilisation)
                    .set("completions", s.completions);
            })?;
        }
    }
    Ok(())
}

fn push_vmcost(
    b: &mut FrameBuilder,
    ctx: &PointCtx<'_>,
    report: &VmCostReport,
) -> Result<(), AnalysisError> {
    for e in &report.entries {
        b.push(|r| {
            ctx.keys(r);
            r.set("function", e.function.as_str())
                .set("backend", e.backend.as_str());
            match &e.outcome {
                VmCostOutcome::Measured {
                    ns_per_op,
                    iterations,
                } => {
                    r.set("status", "measured")
                        .set("ns_per_op", *ns_per_op)
                        .set("iterations", *iterations);
                }
                VmCostOutcome::Unavailable { reason } => {
                    r.set("status", "unavailable")
                        .set("reason", reason.as_str());
                }
            }
        })?;
    }
    Ok(())
}
