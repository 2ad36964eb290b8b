//! `naam report`: one self-contained HTML page for a results folder — the paper's claims beside
//! the values measured here, every experiment's figure (drawn fresh from its run, embedded as a
//! `data:image/png` URL), its validity counts, its provenance and the commands that regenerate
//! it. No network, no external CSS, JavaScript or fonts; every string read from disk is
//! HTML-escaped. A tiny inline script records page errors and whether every image decoded into
//! `#page-check` (the browser test reads it back).
//!
//! Everything comes from the files on disk, as the figures do: the run each experiment shows is
//! [`select_run`]'s (the newest complete run, else the newest), its counts and headline numbers
//! are [`naam_results::digest::digest`]'s, its figure is [`figure_data`] over frames built
//! from the run folder (nothing is written into the results folder).

mod claims;
mod html;
mod section;

use std::path::{Path, PathBuf};

use naam_plan::{ExperimentId, ExperimentPlan};
use naam_results::digest::{RunDigest, digest};
use naam_results::{Provenance, RunDir, RunStatus, inspect_run, list_runs};
use serde::Serialize;

use crate::analyze::build_frames;
use crate::error::AnalysisError;
use crate::figures::read::FrameSet;
use crate::figures::{draw_png_bytes, figure_data, select_run};

pub use claims::{CLAIMS, Claim, Headline, ms_list, offload_text, ops_text};
pub use html::escape_html;

/// The report's file name inside the results folder, when no `--out` is given.
pub const REPORT_FILE: &str = "report.html";

/// One experiment's run as the report shows it.
#[derive(Debug)]
pub struct RunView {
    /// The run folder.
    pub dir: PathBuf,
    /// Its plan.
    pub plan: ExperimentPlan,
    /// Whether every point of the plan is complete.
    pub complete: bool,
    /// Its digest (counts, reasons, headline numbers).
    pub digest: RunDigest,
    /// Its provenance, or why it does not read.
    pub provenance: Result<Provenance, String>,
    /// The figure as PNG bytes, or why there is none.
    pub figure_png: Result<Vec<u8>, String>,
    /// Per series (plan order), the offload counts of its valid points (issue 13's headline).
    pub offloads: Vec<SeriesOffloads>,
    /// Other runs of the experiment in the folder (not shown; `naam status` lists them).
    pub other_runs: usize,
}

/// One experiment: its run, or why there is none to show.
#[derive(Debug)]
pub struct ExperimentView {
    /// The experiment.
    pub experiment: ExperimentId,
    /// The selected run, or the reason there is none (no run, unreadable run).
    pub run: Result<RunView, String>,
}

/// What `naam report` wrote (its `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSummary {
    /// The page.
    pub out: String,
    /// Experiments with a run shown.
    pub experiments_with_run: Vec<String>,
    /// Figures embedded in the page.
    pub figures_embedded: usize,
    /// Experiments without a figure, with the reason.
    pub missing: Vec<(String, String)>,
}

/// Reads every experiment's selected run under `results_root`.
pub fn collect(results_root: &Path) -> Result<Vec<ExperimentView>, AnalysisError> {
    if !results_root.is_dir() {
        return Err(AnalysisError::NoResults {
            results_root: results_root.to_path_buf(),
        });
    }
    Ok(ExperimentId::ALL
        .iter()
        .map(|&experiment| ExperimentView {
            experiment,
            run: view_run(results_root, experiment),
        })
        .collect())
}

fn view_run(results_root: &Path, experiment: ExperimentId) -> Result<RunView, String> {
    let dir = select_run(results_root, experiment).ok_or_else(|| {
        AnalysisError::NoRun {
            experiment: experiment.to_string(),
            results_root: results_root.to_path_buf(),
        }
        .to_string()
    })?;
    let run = RunDir::open(&dir);
    let unreadable = |e: naam_results::ResultsError| format!("{}: {e}", dir.display());
    let plan = run.read_plan().map_err(unreadable)?;
    let state = inspect_run(&run).map_err(unreadable)?.state;
    let figure_png = if state.points_complete == 0 {
        Err("no point of this run is complete yet".to_string())
    } else {
        figure_png(&dir).map_err(|e| e.to_string())
    };
    Ok(RunView {
        digest: digest(&run).map_err(unreadable)?,
        provenance: run.read_provenance().map_err(|e| e.to_string()),
        figure_png,
        offloads: series_offloads(&run, &plan),
        complete: state.status == RunStatus::Complete,
        other_runs: list_runs(results_root, experiment.as_str())
            .len()
            .saturating_sub(1),
        plan,
        dir,
    })
}

/// The run's figure, drawn from frames built in memory from the run folder.
fn figure_png(run_dir: &Path) -> Result<Vec<u8>, AnalysisError> {
    let frames = FrameSet::from_frames(build_frames(run_dir)?.frames);
    draw_png_bytes(&figure_data(&frames)?)
}

/// A tail-impact bound: a series' p99 "stays within" it while it is at most this many times
/// its p99 at one offload (issue 13's comparison; the paper's "small tail impact" is not
/// quantified in the abstract, so the factor is our choice).
pub const TAIL_P99_FACTOR_MAX: u64 = 2;

/// One series' offload counts: how far it scales while its points stay valid, and while its
/// p99 stays within [`TAIL_P99_FACTOR_MAX`]× its single-offload p99.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesOffloads {
    /// The series.
    pub series: String,
    /// The most offloads the plan has for this series.
    pub tenants_planned_max: u32,
    /// The most offloads at which a complete point was valid; `None`: no valid point.
    pub tenants_valid_max: Option<u32>,
    /// The most offloads at which every valid point's p99 is within the bound of the p99 at
    /// one offload; `None`: no valid single-offload point to compare with.
    pub tenants_tail_within_max: Option<u32>,
}

/// Per series (in plan order), [`SeriesOffloads`] from the run's valid traffic points.
fn series_offloads(run: &RunDir, plan: &ExperimentPlan) -> Vec<SeriesOffloads> {
    let mut valid_p99: Vec<(String, u32, u64)> = Vec::new();
    for point in plan.points.iter().filter(|p| run.is_complete(&p.id)) {
        let Ok(summary) = run.read_summary(&point.id) else {
            continue;
        };
        if let (true, Some(traffic)) = (summary.validity.is_valid(), &summary.traffic) {
            let p99_ns = traffic.latency.p99_ns;
            valid_p99.push((point.series.to_string(), point.tenants, p99_ns));
        }
    }
    plan.series
        .iter()
        .map(|series| {
            let name = series.to_string();
            let planned = plan.points.iter().filter(|p| p.series == *series);
            let points: Vec<(u32, u64)> = valid_p99
                .iter()
                .filter(|(s, _, _)| *s == name)
                .map(|&(_, tenants, p99_ns)| (tenants, p99_ns))
                .collect();
            SeriesOffloads {
                tenants_planned_max: planned.map(|p| p.tenants).max().unwrap_or(0),
                tenants_valid_max: points.iter().map(|&(t, _)| t).max(),
                tenants_tail_within_max: tail_within_max(&points),
                series: name,
            }
        })
        .collect()
}

/// The most offloads `n` such that every valid point at 1 ..= `n` offloads has a p99 of at most
/// [`TAIL_P99_FACTOR_MAX`]× the (worst) p99 at one offload — the p99 *stays* within the bound up
/// to `n`; `None` without a valid one-offload point.
pub fn tail_within_max(points: &[(u32, u64)]) -> Option<u32> {
    let single_p99_ns = points
        .iter()
        .filter(|&&(t, _)| t == 1)
        .map(|&(_, p)| p)
        .max()?;
    let bound_ns = single_p99_ns.saturating_mul(TAIL_P99_FACTOR_MAX);
    let mut sorted = points.to_vec();
    sorted.sort_unstable();
    let first_above = sorted.iter().find(|&&(_, p)| p > bound_ns).map(|&(t, _)| t);
    sorted
        .iter()
        .map(|&(t, _)| t)
        .filter(|&t| first_above.is_none_or(|above| t < above))
        .max()
}

/// The page for the experiments in `views`, `results_root` named as the folder it describes.
pub fn render(results_root: &Path, views: &[ExperimentView]) -> String {
    html::page(results_root, views)
}

/// Builds the page for `results_root` and writes it (atomically) to `out`.
pub fn write_report(results_root: &Path, out: &Path) -> Result<ReportSummary, AnalysisError> {
    let views = collect(results_root)?;
    let page = render(results_root, &views);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| AnalysisError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    naam_results::atomic::write_atomic(out, page.as_bytes())?;
    Ok(summarize(out, &views))
}

fn summarize(out: &Path, views: &[ExperimentView]) -> ReportSummary {
    let mut summary = ReportSummary {
        out: out.display().to_string(),
        experiments_with_run: Vec::new(),
        figures_embedded: 0,
        missing: Vec::new(),
    };
    for view in views {
        let id = view.experiment.to_string();
        match &view.run {
            Ok(run) => {
                summary.experiments_with_run.push(id.clone());
                match &run.figure_png {
                    Ok(_) => summary.figures_embedded += 1,
                    Err(why) => summary.missing.push((id, why.clone())),
                }
            }
            Err(why) => summary.missing.push((id, why.clone())),
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::tail_within_max;

    #[test]
    fn tail_bound_is_twice_the_single_offload_p99() {
        let points = [(1, 100), (2, 150), (4, 200), (8, 201), (16, 120)];
        assert_eq!(
            tail_within_max(&points),
            Some(4),
            "a later point back within does not count"
        );
        let points = [(1, 100), (2, 150), (4, 200), (8, 201)];
        assert_eq!(tail_within_max(&points), Some(4));
        assert_eq!(
            tail_within_max(&[(2, 10), (4, 10)]),
            None,
            "no single-offload point"
        );
        let mixed = [(1, 100), (4, 150), (4, 250)];
        assert_eq!(
            tail_within_max(&mixed),
            Some(1),
            "every point at a count must be within"
        );
    }
}
