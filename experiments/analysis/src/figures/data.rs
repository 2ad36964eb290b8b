//! Frames → [`FigureData`]: which panels each experiment has, and how repetitions become
//! points with error bars.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::DataFrame;

use super::read::{FrameSet, bools, f64s, first_bool, first_f64, first_str, strs};
use super::timeseries::{
    event_markers, interval_rows, invalid_points, load_shift_figure, policies_figure, shift_notes,
};
use super::{FigureData, Line, Panel, PlotPoint, XAxis};
use crate::error::AnalysisError;
use crate::stats::{CONFIDENCE, median_ci};

/// One row of the `points` frame, as the figures need it.
#[derive(Debug, Clone)]
struct PointRow {
    series: String,
    offered: Option<f64>,
    depth: Option<f64>,
    tenants: Option<f64>,
    valid: bool,
    throughput: Option<f64>,
    p50: Option<f64>,
    p99: Option<f64>,
    p50_ci: Option<(f64, f64)>,
    p99_ci: Option<(f64, f64)>,
}

fn point_rows(df: &DataFrame) -> Result<Vec<PointRow>, AnalysisError> {
    let series = strs(df, "series")?;
    let offered = f64s(df, "offered_load_ops_per_s")?;
    let depth = f64s(df, "tree_depth")?;
    let tenants = f64s(df, "tenants")?;
    let valid = bools(df, "valid")?;
    let throughput = f64s(df, "throughput_ops_per_s")?;
    let p50 = f64s(df, "latency_ns_p50")?;
    let p99 = f64s(df, "latency_ns_p99")?;
    let (p50_lo, p50_hi) = (
        f64s(df, "latency_ns_p50_ci_lo")?,
        f64s(df, "latency_ns_p50_ci_hi")?,
    );
    let (p99_lo, p99_hi) = (
        f64s(df, "latency_ns_p99_ci_lo")?,
        f64s(df, "latency_ns_p99_ci_hi")?,
    );
    let pair = |a: Option<f64>, b: Option<f64>| a.zip(b);
    Ok((0..df.height())
        .map(|i| PointRow {
            series: series[i].clone().unwrap_or_default(),
            offered: offered[i],
            depth: depth[i],
            tenants: tenants[i],
            valid: valid[i].unwrap_or(false),
            throughput: throughput[i],
            p50: p50[i],
            p99: p99[i],
            p50_ci: pair(p50_lo[i], p50_hi[i]),
            p99_ci: pair(p99_lo[i], p99_hi[i]),
        })
        .collect())
}

/// Which kind of error bar a figure used, for its footnote.
#[derive(Debug, Default)]
struct ErrorBars {
    kinds: BTreeSet<String>,
}

impl ErrorBars {
    fn note(&self) -> Option<String> {
        (!self.kinds.is_empty()).then(|| {
            format!(
                "error bars: {}",
                self.kinds.iter().cloned().collect::<Vec<_>>().join("; ")
            )
        })
    }
}

/// Series names in plan order (first appearance in the frame).
fn series_order(rows: &[PointRow]) -> Vec<String> {
    let mut seen = Vec::new();
    for r in rows {
        if !seen.contains(&r.series) {
            seen.push(r.series.clone());
        }
    }
    seen
}

/// The series in first-seen order, each with its colour key (`draw::color_key`).
fn series_with_colour_keys(rows: &[PointRow]) -> Vec<(String, String)> {
    let order = series_order(rows);
    let keys = order.iter().map(|s| super::draw::color_key(s, &order));
    order.iter().cloned().zip(keys).collect()
}

type Getter = fn(&PointRow) -> Option<f64>;
type CiGetter = fn(&PointRow) -> Option<(f64, f64)>;

/// What a line shows: the value, its within-point CI, and the unit conversion (ns → µs).
#[derive(Clone, Copy)]
struct Metric {
    y: Getter,
    ci: Option<CiGetter>,
    scale: f64,
}

/// One line: rows grouped by x; y is the median over repetitions with its CI, or the single
/// repetition's within-point CI. `scale` converts units (ns → µs).
fn sweep_line(
    rows: &[&PointRow],
    label: String,
    color_key: &str,
    x: Getter,
    metric: Metric,
    bars: &mut ErrorBars,
) -> Line {
    let mut groups: BTreeMap<u64, Vec<&PointRow>> = BTreeMap::new();
    for r in rows {
        if let (Some(xv), Some(_)) = (x(r), (metric.y)(r)) {
            groups.entry(xv.to_bits()).or_default().push(r);
        }
    }
    let points = groups
        .into_iter()
        .map(|(bits, group)| {
            let values: Vec<f64> = group
                .iter()
                .filter_map(|r| (metric.y)(r))
                .map(|v| v * metric.scale)
                .collect();
            let valid = group.iter().all(|r| r.valid);
            let (y_value, err) = if values.len() >= 2 {
                let m = median_ci(&values).map(|m| (m.median, Some((m.lo, m.hi)), m.level));
                let (median, err, level) = m.unwrap_or((values[0], None, 0.0));
                bars.kinds.insert(repetition_note(values.len(), level));
                (median, err)
            } else {
                let err = metric
                    .ci
                    .and_then(|c| c(group[0]))
                    .map(|(lo, hi)| (lo * metric.scale, hi * metric.scale));
                if err.is_some() {
                    bars.kinds.insert(format!(
                        "{:.0} % order-statistic CI of the percentile (1 repetition)",
                        CONFIDENCE * 100.0
                    ));
                }
                (values[0], err)
            };
            PlotPoint {
                x: f64::from_bits(bits),
                y: y_value,
                err,
                valid,
            }
        })
        .collect();
    Line {
        label,
        color_key: color_key.to_string(),
        dashed: false,
        points,
    }
}

fn repetition_note(n: usize, level: f64) -> String {
    if level + 1e-9 >= CONFIDENCE {
        format!(
            "{:.0} % CI of the median over {n} repetitions",
            CONFIDENCE * 100.0
        )
    } else {
        format!(
            "min-max over {n} repetitions (confidence {:.0} % as a CI of the median)",
            level * 100.0
        )
    }
}

pub(super) const NS_TO_US: f64 = 1e-3;
pub(super) const OPS_TO_KOPS: f64 = 1e-3;

pub(super) fn panel(
    title: &str,
    x_label: &str,
    y_label: &str,
    x_axis: XAxis,
    y_log: bool,
    lines: Vec<Line>,
) -> Panel {
    Panel {
        title: title.to_string(),
        x_label: x_label.to_string(),
        y_label: y_label.to_string(),
        x_axis,
        y_log,
        categories: Vec::new(),
        bars: false,
        markers: Vec::new(),
        point_dots: true,
        lines,
    }
}

/// Throughput in kops/s.
const THROUGHPUT_KOPS: Metric = Metric {
    y: |r| r.throughput,
    ci: None,
    scale: OPS_TO_KOPS,
};
/// p99 latency in µs, with its confidence interval.
const P99_US: Metric = Metric {
    y: |r| r.p99,
    ci: Some(|r| r.p99_ci),
    scale: NS_TO_US,
};
/// p50 latency in µs, with its confidence interval.
const P50_US: Metric = Metric {
    y: |r| r.p50,
    ci: Some(|r| r.p50_ci),
    scale: NS_TO_US,
};

/// Throughput and latency (p99 solid, p50 dashed) panels against a swept x.
fn sweep_panels(
    rows: &[PointRow],
    x: Getter,
    x_label: &str,
    x_axis: XAxis,
    bars: &mut ErrorBars,
) -> Vec<Panel> {
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    for (s, key) in series_with_colour_keys(rows) {
        let mine: Vec<&PointRow> = rows.iter().filter(|r| r.series == s).collect();
        throughput.push(sweep_line(&mine, s.clone(), &key, x, THROUGHPUT_KOPS, bars));
        latency.push(sweep_line(&mine, format!("{s} p99"), &key, x, P99_US, bars));
        // A threshold-sweep line shows its p99 only (C4's measure), so ten series keep a legend.
        if !s.starts_with(naam_plan::IPIPE_SWEEP_PREFIX) {
            let mut p50 = sweep_line(&mine, format!("{s} p50"), &key, x, P50_US, bars);
            p50.dashed = true;
            latency.push(p50);
        }
    }
    vec![
        panel(
            "(a) throughput",
            x_label,
            "throughput (kops/s)",
            x_axis,
            false,
            throughput,
        ),
        panel(
            "(b) latency p99 (solid), p50 (dashed)",
            x_label,
            "latency (µs)",
            x_axis,
            true,
            latency,
        ),
    ]
}

fn offered_kops(r: &PointRow) -> Option<f64> {
    r.offered.map(|o| o * OPS_TO_KOPS)
}

fn sweep_figure(rows: &[PointRow], bars: &mut ErrorBars) -> Vec<Panel> {
    sweep_panels(
        rows,
        offered_kops,
        "offered load (kops/s)",
        XAxis::Linear,
        bars,
    )
}

fn cell_figure(rows: &[PointRow], bars: &mut ErrorBars) -> Vec<Panel> {
    let depth_min = rows
        .iter()
        .filter_map(|r| r.depth)
        .fold(f64::INFINITY, f64::min);
    let at_min: Vec<PointRow> = rows
        .iter()
        .filter(|r| r.depth == Some(depth_min))
        .cloned()
        .collect();
    let mut panels = sweep_panels(
        &at_min,
        offered_kops,
        &format!("offered load (kops/s), depth {depth_min}"),
        XAxis::Linear,
        bars,
    );
    let load_max = rows.iter().filter_map(|r| r.offered).fold(0.0, f64::max);
    let mut lines = Vec::new();
    for s in series_order(rows) {
        let mine: Vec<&PointRow> = rows
            .iter()
            .filter(|r| r.series == s && r.offered == Some(load_max))
            .collect();
        lines.push(sweep_line(
            &mine,
            format!("{s} p99"),
            &s,
            |r| r.depth,
            Metric {
                y: |r| r.p99,
                ci: Some(|r| r.p99_ci),
                scale: NS_TO_US,
            },
            bars,
        ));
    }
    let title = format!("(c) p99 at {} kops/s offered", load_max * OPS_TO_KOPS);
    panels.push(panel(
        &title,
        "tree depth (levels)",
        "latency p99 (µs)",
        XAxis::Linear,
        true,
        lines,
    ));
    panels
}

fn offload_figure(rows: &[PointRow], bars: &mut ErrorBars) -> Vec<Panel> {
    sweep_panels(
        rows,
        |r| r.tenants,
        "offloaded applications (tenants)",
        XAxis::Log,
        bars,
    )
}

fn vm_cost_figure(
    vmcost: &DataFrame,
    notes: &mut Vec<String>,
    bars: &mut ErrorBars,
) -> Result<Vec<Panel>, AnalysisError> {
    let functions = strs(vmcost, "function")?;
    let backends = strs(vmcost, "backend")?;
    let status = strs(vmcost, "status")?;
    let ns = f64s(vmcost, "ns_per_op")?;
    let reasons = strs(vmcost, "reason")?;
    let mut categories: Vec<String> = Vec::new();
    let mut backend_order: Vec<String> = Vec::new();
    let mut values: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    let mut unavailable: BTreeSet<String> = BTreeSet::new();
    for i in 0..vmcost.height() {
        let f = functions[i].clone().unwrap_or_default();
        let b = backends[i].clone().unwrap_or_default();
        if !categories.contains(&f) {
            categories.push(f.clone());
        }
        if !backend_order.contains(&b) {
            backend_order.push(b.clone());
        }
        match (status[i].as_deref(), ns[i]) {
            (Some("measured"), Some(v)) => values.entry((b, f)).or_default().push(v),
            _ => {
                unavailable.insert(format!("{b}: {}", reasons[i].clone().unwrap_or_default()));
            }
        }
    }
    let lines = backend_order
        .iter()
        .map(|b| {
            let points = categories
                .iter()
                .enumerate()
                .filter_map(|(ci, f)| {
                    let v = values.get(&(b.clone(), f.clone()))?;
                    let m = median_ci(v)?;
                    let err = (v.len() >= 2).then_some((m.lo, m.hi));
                    if v.len() >= 2 {
                        bars.kinds.insert(repetition_note(v.len(), m.level));
                    }
                    Some(PlotPoint {
                        x: ci as f64,
                        y: m.median,
                        err,
                        valid: true,
                    })
                })
                .collect();
            Line {
                label: b.clone(),
                color_key: b.clone(),
                dashed: false,
                points,
            }
        })
        .collect();
    if !unavailable.is_empty() {
        notes.push(format!(
            "not available: {}",
            unavailable.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
    let mut p = panel(
        "(a) execution cost per call",
        "NAAM function",
        "time per call (ns)",
        XAxis::Categories,
        true,
        lines,
    );
    p.categories = categories;
    p.bars = true;
    Ok(vec![p])
}

/// The figure of the run whose frames are `frames`.
pub fn figure_data(frames: &FrameSet) -> Result<FigureData, AnalysisError> {
    let run = frames.frame("run")?;
    let experiment = first_str(run, "experiment")?;
    let mut title = first_str(run, "title")?;
    let testbed = first_str(run, "testbed")?;
    if testbed.starts_with("simulated") {
        title = format!("{title} — {testbed}");
    }
    let mut bars = ErrorBars::default();
    let mut notes = Vec::new();
    let rows = point_rows(frames.frame("points")?)?;
    let invalid = invalid_points(frames.frame("points")?)?;
    let intervals = interval_rows(frames.frame("intervals")?, &invalid)?;
    let markers = event_markers(frames.frame("events")?)?;
    let panels = match experiment.as_str() {
        "cell-lookups" => cell_figure(&rows, &mut bars),
        "offload-scaling" => offload_figure(&rows, &mut bars),
        "load-shift" => {
            notes.extend(shift_notes(
                frames.frame("points")?,
                frames.frame("events")?,
            )?);
            load_shift_figure(&intervals, &markers)
        }
        "policies" => policies_figure(&intervals, frames.frame("samples")?, &invalid, &markers)?,
        "vm-cost" => vm_cost_figure(frames.frame("vmcost")?, &mut notes, &mut bars)?,
        _ => sweep_figure(&rows, &mut bars),
    };
    let mut footnote = provenance_lines(run)?;
    if rows.iter().any(|r| !r.valid) {
        notes.push(
            "hollow markers: invalid points (each point's reasons: invalid_reasons in frames/points)"
                .to_string(),
        );
    }
    notes.extend(saturated_note(frames.frame("points")?)?);
    footnote.extend(bars.note());
    footnote.extend(notes);
    Ok(FigureData {
        experiment,
        title,
        panels,
        footnote,
    })
}

/// A footnote naming how many points per series measured a saturated system (valid
/// measurements, drawn like the others: the system carried less than the offered load while the
/// generator kept pace).
fn saturated_note(points: &DataFrame) -> Result<Option<String>, AnalysisError> {
    let series = strs(points, "series")?;
    let verdicts = strs(points, "verdict")?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (name, verdict) in series.iter().zip(&verdicts) {
        if verdict.as_deref() == Some("saturated") {
            *counts.entry(name.clone().unwrap_or_default()).or_default() += 1;
        }
    }
    Ok((!counts.is_empty()).then(|| {
        let listed: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        format!(
            "saturated points (valid: the system carried < 95 % of the offered load while the generator kept pace): {}",
            listed.join(", ")
        )
    }))
}

fn provenance_lines(run: &DataFrame) -> Result<Vec<String>, AnalysisError> {
    let testbed = first_str(run, "testbed")?;
    let simulated = testbed.starts_with("simulated");
    let emulated = if simulated {
        "NIC, cores and links simulated"
    } else if first_bool(run, "nic_emulated")? {
        "NIC emulated"
    } else {
        "real NIC"
    };
    let cores = first_f64(run, "cores")?.unwrap_or(0.0);
    let machine = format!(
        "{} ({}, {cores} cores, Linux {})",
        first_str(run, "hostname")?,
        first_str(run, "cpu_model")?,
        first_str(run, "kernel")?
    );
    let complete = first_f64(run, "points_complete")?.unwrap_or(0.0);
    let total = first_f64(run, "points_total")?.unwrap_or(0.0);
    let status = first_str(run, "status")?;
    let commit = first_str(run, "code_commit")?;
    let dirty = if first_bool(run, "code_dirty")? {
        "+dirty"
    } else {
        ""
    };
    let mut lines = vec![
        format!("testbed: {testbed} ({emulated}) · machine: {machine}"),
        format!(
            "run {} ({}, {status}: {complete}/{total} points) · code {}{dirty}",
            first_str(run, "run_id")?,
            first_str(run, "variant")?,
            commit.get(..10).unwrap_or(&commit)
        ),
    ];
    if first_bool(run, "synthetic")? {
        lines.push("SYNTHETIC DATA from the test executor, not a measurement".to_string());
    } else {
        lines.push(format!("executor: {}", first_str(run, "executor")?));
    }
    if simulated {
        lines.push("SIMULATED: the production engine on a virtual clock; times come from the cost profile, not from hardware".to_string());
    } else if testbed != "inventory" {
        lines.push("one machine shows shapes and mechanisms, not hardware numbers; NAAM reconstructed from the paper's abstract".to_string());
    }
    Ok(lines)
}
