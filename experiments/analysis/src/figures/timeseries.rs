//! Time-series figures (load-shift, policies): per-interval frames, medians over repetitions.

use std::collections::BTreeMap;

use polars::prelude::DataFrame;

use super::data::{NS_TO_US, OPS_TO_KOPS, panel};
use super::read::{f64s, strs};
use super::{Line, Panel, PlotPoint, XAxis};
use crate::error::AnalysisError;
use crate::stats::median_ci;

/// One row of the `intervals` frame.
#[derive(Debug, Clone)]
pub(super) struct IntervalRow {
    series: String,
    t_ms: f64,
    location: String,
    ops_per_s: f64,
    p99: Option<f64>,
}

pub(super) fn interval_rows(df: &DataFrame) -> Result<Vec<IntervalRow>, AnalysisError> {
    let series = strs(df, "series")?;
    let t = f64s(df, "t_ms")?;
    let location = strs(df, "location")?;
    let ops = f64s(df, "ops_per_s")?;
    let p99 = f64s(df, "latency_ns_p99")?;
    Ok((0..df.height())
        .map(|i| IntervalRow {
            series: series[i].clone().unwrap_or_default(),
            t_ms: t[i].unwrap_or(0.0),
            location: location[i].clone().unwrap_or_default(),
            ops_per_s: ops[i].unwrap_or(0.0),
            p99: p99[i],
        })
        .collect())
}

/// Median over repetitions per time, for one (series, location).
fn time_line(
    rows: &[IntervalRow],
    series: &str,
    location: &str,
    label: String,
    color_key: &str,
    y: fn(&IntervalRow) -> Option<f64>,
) -> Line {
    let mut by_t: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.series == series && r.location == location)
    {
        if let Some(v) = y(r) {
            by_t.entry(r.t_ms.to_bits()).or_default().push(v);
        }
    }
    let points = by_t
        .into_iter()
        .filter_map(|(bits, values)| {
            median_ci(&values).map(|m| PlotPoint {
                x: f64::from_bits(bits),
                y: m.median,
                err: None,
                valid: true,
            })
        })
        .collect();
    Line {
        label,
        color_key: color_key.to_string(),
        dashed: false,
        points,
    }
}

pub(super) fn event_markers(events: &DataFrame) -> Result<Vec<(f64, String)>, AnalysisError> {
    let kinds = strs(events, "kind")?;
    let starts = f64s(events, "start_ms")?;
    let stops = f64s(events, "stop_ms")?;
    let mut markers = Vec::new();
    for i in 0..events.height() {
        let kind = kinds[i].clone().unwrap_or_default();
        if let Some(s) = starts[i] {
            markers.push((s, format!("{kind} start")));
        }
        if let Some(s) = stops[i] {
            markers.push((s, format!("{kind} stop")));
        }
    }
    Ok(markers)
}

fn series_of(rows: &[IntervalRow]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for r in rows {
        if !seen.contains(&r.series) {
            seen.push(r.series.clone());
        }
    }
    seen
}

const LETTERS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

pub(super) fn load_shift_figure(
    intervals: &[IntervalRow],
    markers: &[(f64, String)],
) -> Vec<Panel> {
    let mut panels = Vec::new();
    let series = series_of(intervals);
    for (i, s) in series.iter().enumerate() {
        let lines = ["host", "nic", "client"]
            .iter()
            .map(|loc| {
                time_line(intervals, s, loc, format!("at {loc}"), loc, |r| {
                    Some(r.ops_per_s * OPS_TO_KOPS)
                })
            })
            .collect();
        let mut p = panel(
            &format!("({}) {s}: throughput per location", LETTERS[i % 6]),
            "time since measure start (ms)",
            "throughput (kops/s)",
            XAxis::Linear,
            false,
            lines,
        );
        p.markers = markers.to_vec();
        p.point_dots = false;
        panels.push(p);
    }
    let lines = series
        .iter()
        .map(|s| {
            time_line(intervals, s, "all", format!("{s} p99"), s, |r| {
                r.p99.map(|v| v * NS_TO_US)
            })
        })
        .collect();
    let mut p = panel(
        &format!("({}) p99 per interval", LETTERS[series.len() % 6]),
        "time since measure start (ms)",
        "latency p99 (µs)",
        XAxis::Linear,
        true,
        lines,
    );
    p.markers = markers.to_vec();
    p.point_dots = false;
    panels.push(p);
    panels
}

pub(super) fn policies_figure(
    intervals: &[IntervalRow],
    samples: &DataFrame,
    markers: &[(f64, String)],
) -> Result<Vec<Panel>, AnalysisError> {
    let series = series_of(intervals);
    let throughput = series
        .iter()
        .map(|s| {
            time_line(intervals, s, "all", s.clone(), s, |r| {
                Some(r.ops_per_s * OPS_TO_KOPS)
            })
        })
        .collect();
    let p99 = series
        .iter()
        .map(|s| {
            time_line(intervals, s, "all", format!("{s} p99"), s, |r| {
                r.p99.map(|v| v * NS_TO_US)
            })
        })
        .collect();
    let mut panels = vec![
        panel(
            "(a) throughput",
            "time since measure start (ms)",
            "throughput (kops/s)",
            XAxis::Linear,
            false,
            throughput,
        ),
        panel(
            "(b) p99 per interval",
            "time since measure start (ms)",
            "latency p99 (µs)",
            XAxis::Linear,
            true,
            p99,
        ),
    ];
    let util = host_utilisation_rows(samples)?;
    if !util.is_empty() {
        let lines = series
            .iter()
            .map(|s| {
                time_line(&util, s, "host", s.clone(), s, |r| {
                    Some(r.ops_per_s * 100.0)
                })
            })
            .collect();
        panels.push(panel(
            "(c) server host CPU",
            "time since measure start (ms)",
            "host utilisation (%)",
            XAxis::Linear,
            false,
            lines,
        ));
    }
    for p in &mut panels {
        p.markers = markers.to_vec();
        p.point_dots = false;
    }
    Ok(panels)
}

/// Width of the bins host-utilisation samples (about one per millisecond, very noisy) are
/// averaged over before they are drawn.
pub(super) const UTILISATION_BIN_MS: f64 = 50.0;

/// Host samples as interval-like rows (utilisation in `ops_per_s`, t in ms), averaged per series
/// over [`UTILISATION_BIN_MS`] bins (all repetitions together) and clamped to [0, 1].
fn host_utilisation_rows(samples: &DataFrame) -> Result<Vec<IntervalRow>, AnalysisError> {
    let series = strs(samples, "series")?;
    let t = f64s(samples, "t_ns")?;
    let location = strs(samples, "location")?;
    let util = f64s(samples, "utilisation")?;
    let mut bins: std::collections::BTreeMap<(String, i64), (f64, u32)> =
        std::collections::BTreeMap::new();
    for i in (0..samples.height()).filter(|&i| location[i].as_deref() == Some("host")) {
        let bin = (t[i].unwrap_or(0.0) / 1e6 / UTILISATION_BIN_MS).floor() as i64;
        let entry = bins
            .entry((series[i].clone().unwrap_or_default(), bin))
            .or_insert((0.0, 0));
        entry.0 += util[i].unwrap_or(0.0).clamp(0.0, 1.0);
        entry.1 += 1;
    }
    Ok(bins
        .into_iter()
        .map(|((series, bin), (sum, n))| IntervalRow {
            series,
            t_ms: (bin as f64 + 0.5) * UTILISATION_BIN_MS,
            location: "host".to_string(),
            ops_per_s: sum / f64::from(n.max(1)),
            p99: None,
        })
        .collect())
}
