//! Figures from the parquet frames alone: [`FigureData`] per experiment (the data table that
//! tests snapshot), then PNG and SVG drawn by plotters with an embedded font.

mod data;
mod draw;
pub mod read;
mod timeseries;
pub mod validation;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use naam_plan::ExperimentId;
use naam_results::{RunStatus, inspect_run, list_runs};
use serde::{Deserialize, Serialize};

use crate::analyze::analyze_run;
use crate::error::AnalysisError;
pub use data::figure_data;
pub use draw::{FIGURE_HEIGHT_PX, PANEL_WIDTH_PX, draw_figure, draw_png_bytes};
use read::FrameSet;

/// How a panel's x axis is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// Linear numbers.
    Linear,
    /// Logarithmic (offload counts 1 … 1024).
    Log,
    /// Named categories at 0, 1, 2, … (vm-cost functions).
    Categories,
}

/// One point of a line.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotPoint {
    /// x in the axis' unit.
    pub x: f64,
    /// y in the axis' unit.
    pub y: f64,
    /// Error bar (low, high) in the axis' unit.
    pub err: Option<(f64, f64)>,
    /// False when any repetition of the point is invalid (drawn hollow).
    pub valid: bool,
}

/// One line (or bar group) of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Colour key (series or location name).
    pub color_key: String,
    /// Dashed (p50 next to a solid p99).
    pub dashed: bool,
    /// Points in x order.
    pub points: Vec<PlotPoint>,
}

/// One panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Caption, e.g. `(a) throughput`.
    pub title: String,
    /// x label with unit.
    pub x_label: String,
    /// y label with unit.
    pub y_label: String,
    /// x axis kind.
    pub x_axis: XAxis,
    /// Logarithmic y axis.
    pub y_log: bool,
    /// Category names for [`XAxis::Categories`].
    pub categories: Vec<String>,
    /// Draw bars instead of lines.
    pub bars: bool,
    /// Vertical markers (x, label): events such as a CPU hog.
    pub markers: Vec<(f64, String)>,
    /// Draw a dot at every point (sweeps); time series with hundreds of points draw lines only.
    pub point_dots: bool,
    /// Lines.
    pub lines: Vec<Line>,
}

/// Everything one figure shows.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureData {
    /// Experiment id (the file name stem).
    pub experiment: String,
    /// Title.
    pub title: String,
    /// Panels, left to right.
    pub panels: Vec<Panel>,
    /// Footnote lines: testbed, machine, run, executor, error bars, caveats.
    pub footnote: Vec<String>,
}

/// Significant digits in data tables.
const TABLE_DIGITS: usize = 4;

fn fmt_num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (TABLE_DIGITS as i32 - 1 - magnitude).max(0) as usize;
    format!("{v:.decimals$}")
}

impl FigureData {
    /// The panels as a text table (what tests snapshot instead of pixels).
    pub fn panels_table(&self) -> String {
        let mut out = format!("{}: {}\n", self.experiment, self.title);
        for p in &self.panels {
            let _ = writeln!(
                out,
                "{} | x: {} | y: {}{}",
                p.title,
                p.x_label,
                p.y_label,
                if p.y_log { " (log)" } else { "" }
            );
            for (x, label) in &p.markers {
                let _ = writeln!(out, "  marker {} at x={}", label, fmt_num(*x));
            }
            for line in &p.lines {
                let points: Vec<String> = line.points.iter().map(|pt| point_text(p, pt)).collect();
                let _ = writeln!(
                    out,
                    "  {}{}: {}",
                    line.label,
                    if line.dashed { " (dashed)" } else { "" },
                    points.join(" ")
                );
            }
        }
        out
    }
}

fn point_text(panel: &Panel, pt: &PlotPoint) -> String {
    let x = match panel.x_axis {
        XAxis::Categories => panel
            .categories
            .get(pt.x as usize)
            .cloned()
            .unwrap_or_default(),
        _ => fmt_num(pt.x),
    };
    let err = pt
        .err
        .map(|(lo, hi)| format!("[{},{}]", fmt_num(lo), fmt_num(hi)))
        .unwrap_or_default();
    format!(
        "{x}={}{err}{}",
        fmt_num(pt.y),
        if pt.valid { "" } else { "!" }
    )
}

/// One figure written by [`plot_all`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureReport {
    /// Experiment id.
    pub experiment: String,
    /// The run it came from.
    pub run_dir: String,
    /// PNG file.
    pub png: String,
    /// SVG file.
    pub svg: String,
    /// Whether the run was partial.
    pub partial: bool,
    /// Whether the data is synthetic (tests), not measured.
    pub synthetic: bool,
}

/// `naam plot --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlotReport {
    /// Figures written.
    pub figures: Vec<FigureReport>,
    /// Experiments without a figure, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// Draws the figure of the run at `run_dir` from its `frames/*.parquet` alone, into
/// `figures_dir/<experiment>.png` and `.svg`.
pub fn plot_run(run_dir: &Path, figures_dir: &Path) -> Result<FigureReport, AnalysisError> {
    let frames = FrameSet::read(&run_dir.join(naam_results::layout::FRAMES_DIR))?;
    let figure = figure_data(&frames)?;
    std::fs::create_dir_all(figures_dir).map_err(|source| AnalysisError::Io {
        path: figures_dir.to_path_buf(),
        source,
    })?;
    let png = figures_dir.join(format!("{}.png", figure.experiment));
    let svg = figures_dir.join(format!("{}.svg", figure.experiment));
    draw_figure(&figure, &png)?;
    draw_figure(&figure, &svg)?;
    let run = read::first_str(frames.frame("run")?, "status")?;
    Ok(FigureReport {
        experiment: figure.experiment.clone(),
        run_dir: run_dir.display().to_string(),
        png: png.display().to_string(),
        svg: svg.display().to_string(),
        partial: run != "complete",
        synthetic: read::first_bool(frames.frame("run")?, "synthetic")?,
    })
}

/// The run a figure of `experiment` is drawn from: the newest complete run, else the newest.
pub fn select_run(results_root: &Path, experiment: ExperimentId) -> Option<PathBuf> {
    let runs = list_runs(results_root, experiment.as_str());
    let complete = runs
        .iter()
        .find(|r| inspect_run(r).is_ok_and(|s| s.state.status == RunStatus::Complete));
    complete.or(runs.first()).map(|r| r.root().to_path_buf())
}

/// Analyses the selected run of each experiment (refreshing its frames) and draws its figure.
pub fn plot_all(
    results_root: &Path,
    figures_dir: &Path,
    experiments: &[ExperimentId],
) -> PlotReport {
    let mut report = PlotReport {
        figures: Vec::new(),
        skipped: Vec::new(),
    };
    for &id in experiments {
        let Some(run_dir) = select_run(results_root, id) else {
            let e = AnalysisError::NoRun {
                experiment: id.to_string(),
                results_root: results_root.to_path_buf(),
            };
            report.skipped.push((id.to_string(), e.to_string()));
            continue;
        };
        match analyze_run(&run_dir).and_then(|_| plot_run(&run_dir, figures_dir)) {
            Ok(f) => report.figures.push(f),
            Err(e) => report.skipped.push((id.to_string(), e.to_string())),
        }
    }
    report
}
