//! Time-series figures (load-shift, policies): per-interval frames, medians over repetitions.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::DataFrame;

use super::data::{NS_TO_US, OPS_TO_KOPS, panel};
use super::read::{bools, f64s, strs};
use super::{Line, Panel, PlotPoint, XAxis};
use crate::error::AnalysisError;
use crate::stats::median_ci;
use naam_results::shift::shifted_text;

/// One row of the `intervals` frame.
#[derive(Debug, Clone)]
pub(super) struct IntervalRow {
    series: String,
    t_ms: f64,
    location: String,
    ops_per_s: f64,
    p99: Option<f64>,
    /// Whether the point the row belongs to is valid (its `points` row).
    valid: bool,
}

/// The ids of the invalid points of the `points` frame (a point without a verdict counts as
/// invalid: nothing vouches for it).
pub(super) fn invalid_points(points: &DataFrame) -> Result<BTreeSet<String>, AnalysisError> {
    let ids = strs(points, "point_id")?;
    let valid = bools(points, "valid")?;
    Ok(ids
        .into_iter()
        .zip(valid)
        .filter(|(_, v)| *v != Some(true))
        .filter_map(|(id, _)| id)
        .collect())
}

/// Rows of the `intervals` frame, each marked with its point's validity.
pub(super) fn interval_rows(
    df: &DataFrame,
    invalid: &BTreeSet<String>,
) -> Result<Vec<IntervalRow>, AnalysisError> {
    let point_ids = strs(df, "point_id")?;
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
            valid: point_valid(&point_ids[i], invalid),
        })
        .collect())
}

fn point_valid(point_id: &Option<String>, invalid: &BTreeSet<String>) -> bool {
    point_id.as_ref().is_some_and(|id| !invalid.contains(id))
}

/// Median over repetitions per time, for one (series, location); a time's point is valid only
/// when every repetition drawn into it is (so an invalid repetition is drawn hollow, as in the
/// sweeps), and the legend says when every point of the line is invalid.
fn time_line(
    rows: &[IntervalRow],
    series: &str,
    location: &str,
    label: String,
    color_key: &str,
    y: fn(&IntervalRow) -> Option<f64>,
) -> Line {
    let mut by_t: BTreeMap<u64, (Vec<f64>, bool)> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.series == series && r.location == location)
    {
        if let Some(v) = y(r) {
            let slot = by_t.entry(r.t_ms.to_bits()).or_insert((Vec::new(), true));
            slot.0.push(v);
            slot.1 &= r.valid;
        }
    }
    let points: Vec<PlotPoint> = by_t
        .into_iter()
        .filter_map(|(bits, (values, valid))| {
            median_ci(&values).map(|m| PlotPoint {
                x: f64::from_bits(bits),
                y: m.median,
                err: None,
                valid,
            })
        })
        .collect();
    let all_invalid = !points.is_empty() && points.iter().all(|p| !p.valid);
    Line {
        label: if all_invalid {
            format!("{label} (invalid)")
        } else {
            label
        },
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

/// One footnote line per series with its points' reaction times (`points` frame columns
/// `reaction_mechanism`, `reaction_first_ms`, `shift_rules_ms`, `shift_completions_ms`, one value
/// per repetition; null: never; `shift_completions_before_hog`: already there before the hog);
/// none when the run's `events` start no CPU hog.
pub(super) fn shift_notes(
    points: &DataFrame,
    events: &DataFrame,
) -> Result<Vec<String>, AnalysisError> {
    let hog = strs(events, "kind")?
        .iter()
        .any(|kind| kind.as_deref() == Some("cpu-hog"));
    if !hog {
        return Ok(Vec::new());
    }
    let series = strs(points, "series")?;
    let mechanism = strs(points, "reaction_mechanism")?;
    let columns = [
        f64s(points, "reaction_first_ms")?,
        f64s(points, "shift_rules_ms")?,
        f64s(points, "shift_completions_ms")?,
    ];
    let before_hog = bools(points, "shift_completions_before_hog")?;
    let mut by_series: Vec<(String, Option<String>, [Vec<String>; 3])> = Vec::new();
    let ms = |v: Option<f64>| v.map_or("never".to_string(), |v| format!("{v:.0} ms"));
    for i in 0..points.height() {
        let name = series[i].clone().unwrap_or_default();
        let slot = match by_series.iter().position(|(s, ..)| *s == name) {
            Some(slot) => slot,
            None => {
                by_series.push((name, mechanism[i].clone(), Default::default()));
                by_series.len() - 1
            }
        };
        let texts = [
            ms(columns[0][i]),
            ms(columns[1][i]),
            shifted_text(columns[2][i], before_hog[i] == Some(true)),
        ];
        for (values, text) in by_series[slot].2.iter_mut().zip(texts) {
            values.push(text);
        }
    }
    let mut notes = vec![
        "reaction to the CPU hog, from its start: steering (NAAM) = first rule change, then rules \
         sending ≥ 90 % of new requests to the NIC, then an interval with ≥ 90 % of completions \
         there; migration (iPipe) = first migration to the host decided, then ≥ 90 % of \
         completions at the host"
            .to_string(),
    ];
    for (name, mechanism, [first, rules, completions]) in by_series {
        let (first_what, target) = match mechanism.as_deref() {
            Some("migration") => ("first migration", "host"),
            _ => ("first rule change", "NIC"),
        };
        let rules = match mechanism.as_deref() {
            Some("migration") => String::new(),
            _ => format!("; rules {}", rules.join(", ")),
        };
        notes.push(format!(
            "  {name}: {first_what} {}{rules}; completions at the {target} {}",
            first.join(", "),
            completions.join(", ")
        ));
    }
    Ok(notes)
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
    invalid: &BTreeSet<String>,
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
    let util = host_utilisation_rows(samples, invalid)?;
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

/// Host utilisation samples of one series falling into one bin.
struct UtilisationBin {
    sum: f64,
    samples: u32,
    /// Every sample came from a valid point.
    valid: bool,
}

/// Host samples as interval-like rows (utilisation in `ops_per_s`, t in ms), averaged per series
/// over [`UTILISATION_BIN_MS`] bins (all repetitions together) and clamped to [0, 1]; a bin is
/// valid when every sample in it came from a valid point.
fn host_utilisation_rows(
    samples: &DataFrame,
    invalid: &BTreeSet<String>,
) -> Result<Vec<IntervalRow>, AnalysisError> {
    let point_ids = strs(samples, "point_id")?;
    let series = strs(samples, "series")?;
    let t = f64s(samples, "t_ns")?;
    let location = strs(samples, "location")?;
    let util = f64s(samples, "utilisation")?;
    let mut bins: BTreeMap<(String, i64), UtilisationBin> = BTreeMap::new();
    for i in (0..samples.height()).filter(|&i| location[i].as_deref() == Some("host")) {
        let bin = (t[i].unwrap_or(0.0) / 1e6 / UTILISATION_BIN_MS).floor() as i64;
        let entry = bins
            .entry((series[i].clone().unwrap_or_default(), bin))
            .or_insert(UtilisationBin {
                sum: 0.0,
                samples: 0,
                valid: true,
            });
        entry.sum += util[i].unwrap_or(0.0).clamp(0.0, 1.0);
        entry.samples += 1;
        entry.valid &= point_valid(&point_ids[i], invalid);
    }
    Ok(bins
        .into_iter()
        .map(|((series, bin), b)| IntervalRow {
            series,
            t_ms: (bin as f64 + 0.5) * UTILISATION_BIN_MS,
            location: "host".to_string(),
            ops_per_s: b.sum / f64::from(b.samples.max(1)),
            p99: None,
            valid: b.valid,
        })
        .collect())
}
