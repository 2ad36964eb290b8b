//! Library entry points for `naam check` and `naam status`, with their `--json` structs.

use std::path::Path;

use naam_plan::{ExperimentPlan, ManifestError, check_manifest};
use naam_results::{RunReport, config_hash, inspect_run, list_runs, run_id};
use serde::{Deserialize, Serialize};

/// One variant of a checked manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantCheck {
    /// `quick` or `full`.
    pub variant: String,
    /// Points in the plan.
    pub points: u32,
    /// Planned measuring time (warm-up + measure of every point).
    pub planned_ms: u64,
    /// SHA-256 of the canonical plan JSON.
    pub config_hash: String,
    /// The run folder name a run would use.
    pub run_id: String,
}

/// `naam check <manifest> --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The manifest as named.
    pub manifest: String,
    /// Experiment id.
    pub experiment: String,
    /// The testbed's label.
    pub testbed: String,
    /// Planned times are virtual time (the simulation testbed): wall-clock time depends on the
    /// machine that simulates.
    pub virtual_time: bool,
    /// Both variants.
    pub variants: Vec<VariantCheck>,
}

/// `naam check --json` when the manifest is invalid: the error class and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFailure {
    /// The manifest as named.
    pub manifest: String,
    /// Stable error class (`syntax`, `unknown-field`, `missing-field`, `wrong-type`,
    /// `invalid-value`, `not-applicable`, `not-implemented`, `read`).
    pub class: String,
    /// The full message: file, line, field and what to write instead.
    pub message: String,
}

impl CheckFailure {
    /// The JSON form of a manifest error.
    pub fn new(manifest: &Path, error: &ManifestError) -> CheckFailure {
        CheckFailure {
            manifest: manifest.display().to_string(),
            class: error.class().to_string(),
            message: error.to_string(),
        }
    }
}

/// Validates both variants of a manifest.
pub fn check(manifest: &Path) -> Result<CheckReport, ManifestError> {
    let plans = check_manifest(manifest)?;
    Ok(CheckReport {
        manifest: manifest.display().to_string(),
        experiment: plans[0].id.to_string(),
        testbed: plans[0].testbed.label(),
        virtual_time: matches!(plans[0].testbed, naam_plan::Testbed::Sim { .. }),
        variants: plans.iter().map(variant_check).collect(),
    })
}

fn variant_check(plan: &ExperimentPlan) -> VariantCheck {
    VariantCheck {
        variant: plan.variant.to_string(),
        points: plan.points.len() as u32,
        planned_ms: plan.planned_ms(),
        config_hash: config_hash(plan),
        run_id: run_id(plan, None),
    }
}

/// `naam status --json`: every run folder under the results root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Runs, by experiment, newest first.
    pub runs: Vec<RunReport>,
    /// Folders that look like runs but could not be read, with the error.
    pub unreadable: Vec<String>,
}

/// Inspects every run folder under `results_root` (or only `experiment`'s) without changing
/// anything.
pub fn status(results_root: &Path, experiment: Option<&str>) -> StatusReport {
    let mut experiments: Vec<String> = std::fs::read_dir(results_root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    experiments.sort();
    let mut report = StatusReport {
        runs: Vec::new(),
        unreadable: Vec::new(),
    };
    for name in experiments
        .iter()
        .filter(|n| experiment.is_none_or(|e| e == n.as_str()))
    {
        for run in list_runs(results_root, name) {
            match inspect_run(&run) {
                Ok(r) => report.runs.push(r),
                Err(e) => report.unreadable.push(e.to_string()),
            }
        }
    }
    report
}

/// Human lines for one run: status, counts, and what is missing.
pub fn describe_run(r: &RunReport) -> String {
    let s = &r.state;
    let mut text = format!(
        "{} [{}]: {}/{} points complete",
        r.path,
        serde_plain(&s.status),
        s.points_complete,
        s.points_total
    );
    if r.locked {
        text.push_str(" (a runner is working on it)");
    }
    if let Some(p) = &r.interrupted_point {
        text.push_str(&format!("\n  interrupted while measuring {p}"));
    }
    if !r.partial_points.is_empty() {
        text.push_str(&format!(
            "\n  partial (redone on resume): {}",
            r.partial_points.join(", ")
        ));
    }
    for f in &s.failed {
        text.push_str(&format!("\n  failed {}: {}", f.point, f.error));
    }
    if !s.missing.is_empty() {
        text.push_str(&format!(
            "\n  missing ({}): {}",
            s.missing.len(),
            abbreviate(&s.missing, MISSING_LISTED_MAX)
        ));
    }
    text
}

/// Missing points named in full in `describe_run`; the rest are counted.
const MISSING_LISTED_MAX: usize = 8;

fn abbreviate(ids: &[String], max: usize) -> String {
    if ids.len() <= max {
        return ids.join(", ");
    }
    format!(
        "{}, ... and {} more",
        ids[..max].join(", "),
        ids.len() - max
    )
}

fn serde_plain<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}
