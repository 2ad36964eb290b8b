//! The `sim-validation` figure and table: the simulation testbed (with a cost profile of this
//! machine) held against the local testbed, per experiment and series — the best valid
//! throughput and the shift time side by side, and the median relative error of p50 and p99
//! latency. `naam sim-validate` computes the rows from the two runs' summaries; this module
//! writes them (`sim-validation.csv`) and draws them with the figures' plotters code.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::data::panel;
use super::{FigureData, Line, Panel, PlotPoint, XAxis, draw_figure};
use crate::error::AnalysisError;

/// The file stem of the figure and of the table.
pub const VALIDATION_STEM: &str = "sim-validation";
/// Legend of the local testbed's values.
pub const LOCAL_LABEL: &str = "local testbed";

/// What a row compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Metric {
    /// The best valid throughput: the saturation throughput where the series saturates within
    /// the manifest's loads, else its top load.
    #[serde(rename = "best valid throughput (ops/s)")]
    Throughput,
    /// The shift time after the hog starts (load-shift).
    #[serde(rename = "shift time (ms)")]
    ShiftTime,
    /// p50 latency: the median over the points valid in both runs of the relative error.
    #[serde(rename = "p50 latency, median relative error")]
    P50Error,
    /// p99 latency, as p50.
    #[serde(rename = "p99 latency, median relative error")]
    P99Error,
}

impl Metric {
    /// The metric's name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Throughput => "best valid throughput (ops/s)",
            Metric::ShiftTime => "shift time (ms)",
            Metric::P50Error => "p50 latency, median relative error",
            Metric::P99Error => "p99 latency, median relative error",
        }
    }
}

/// One compared quantity of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationRow {
    /// The experiment (manifest id).
    pub experiment: String,
    /// The series.
    pub series: String,
    /// What is compared.
    pub metric: Metric,
    /// The local testbed's value (none for the latency errors, which are medians of per-point
    /// errors).
    pub local: Option<f64>,
    /// The simulation's value.
    pub simulated: Option<f64>,
    /// `(simulated - local) / local`, in percent.
    pub error_percent: Option<f64>,
}

/// The rows as CSV (`experiment,series,metric,local,simulated,error_percent`; an empty cell: not
/// measured).
pub fn validation_csv(rows: &[ValidationRow]) -> String {
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
    let mut text = String::from("experiment,series,metric,local,simulated,error_percent\n");
    for r in rows {
        let _ = writeln!(
            text,
            "{},{},\"{}\",{},{},{}",
            r.experiment,
            r.series,
            r.metric.label(),
            cell(r.local),
            cell(r.simulated),
            cell(r.error_percent)
        );
    }
    text
}

/// `experiment: series` of every row, in first-seen order.
fn categories(rows: &[ValidationRow], metric: Metric) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.metric == metric) {
        let name = format!("{}: {}", r.experiment, r.series);
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// One bar per category of `metric`'s rows, valued by `pick` (a missing value: no bar).
fn bars(
    rows: &[ValidationRow],
    metric: Metric,
    label: &str,
    color_key: &str,
    pick: impl Fn(&ValidationRow) -> Option<f64>,
) -> Line {
    let points = rows
        .iter()
        .filter(|r| r.metric == metric)
        .enumerate()
        .filter_map(|(x, r)| {
            pick(r).map(|y| PlotPoint {
                x: x as f64,
                y,
                err: None,
                valid: true,
            })
        })
        .collect();
    Line {
        label: label.to_string(),
        color_key: color_key.to_string(),
        dashed: false,
        points,
    }
}

fn bar_panel(title: &str, y_label: &str, categories: Vec<String>, lines: Vec<Line>) -> Panel {
    let mut p = panel(
        title,
        "experiment: series",
        y_label,
        XAxis::Categories,
        false,
        lines,
    );
    p.categories = categories;
    p.bars = true;
    p
}

/// The figure of `rows`, the simulation run with cost profile `profile`.
pub fn validation_figure(rows: &[ValidationRow], profile: &str) -> FigureData {
    let simulated = format!("simulated (profile {profile})");
    let side_by_side = |metric, title: &str, y_label: &str, scale: f64| {
        bar_panel(
            title,
            y_label,
            categories(rows, metric),
            vec![
                bars(rows, metric, LOCAL_LABEL, "local", |r| {
                    r.local.map(|v| v * scale)
                }),
                bars(rows, metric, &simulated, "simulated", |r| {
                    r.simulated.map(|v| v * scale)
                }),
            ],
        )
    };
    let mut panels = vec![
        side_by_side(
            Metric::Throughput,
            "(a) best valid throughput",
            "throughput (kops/s)",
            1e-3,
        ),
        bar_panel(
            "(b) latency: median error, simulated vs local",
            "(simulated − local) / local (%)",
            categories(rows, Metric::P50Error),
            vec![
                bars(rows, Metric::P50Error, "p50", "p50", |r| r.error_percent),
                bars(rows, Metric::P99Error, "p99", "p99", |r| r.error_percent),
            ],
        ),
    ];
    if rows.iter().any(|r| r.metric == Metric::ShiftTime) {
        panels.push(side_by_side(
            Metric::ShiftTime,
            "(c) shift time after the hog",
            "shift time (ms)",
            1.0,
        ));
    }
    FigureData {
        experiment: VALIDATION_STEM.to_string(),
        title: format!("Simulation ({simulated}) against the local testbed"),
        panels,
        footnote: vec![
            format!(
                "{simulated} vs {LOCAL_LABEL}: the same quick manifests, this machine \
                 (naam sim-validate)"
            ),
            "(b): per point valid in both runs (simulated − local) / local, the median over \
             the series' points"
                .to_string(),
            "no bar: not measured (no valid point, or no shift in that run)".to_string(),
        ],
    }
}

/// Writes the table (`sim-validation.csv` in `results_dir`) and draws the figure
/// (`sim-validation.png` and `.svg` in `figures_dir`); returns the three paths.
pub fn write_validation(
    rows: &[ValidationRow],
    profile: &str,
    results_dir: &Path,
    figures_dir: &Path,
) -> Result<[PathBuf; 3], AnalysisError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AnalysisError::Io { path, source }
    };
    let csv = results_dir.join(format!("{VALIDATION_STEM}.csv"));
    std::fs::create_dir_all(results_dir).map_err(io(results_dir))?;
    std::fs::write(&csv, validation_csv(rows)).map_err(io(&csv))?;
    std::fs::create_dir_all(figures_dir).map_err(io(figures_dir))?;
    let figure = validation_figure(rows, profile);
    let png = figures_dir.join(format!("{VALIDATION_STEM}.png"));
    let svg = figures_dir.join(format!("{VALIDATION_STEM}.svg"));
    draw_figure(&figure, &png)?;
    draw_figure(&figure, &svg)?;
    Ok([csv, png, svg])
}
