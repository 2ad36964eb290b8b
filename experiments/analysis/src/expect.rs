//! Expectations as data: ARTIFACT.md §E's expected results, each measured once and written down
//! with a tolerance and the run it came from (`experiments/expectations.toml`), checked against a
//! results folder by `naam expect` (and at the end of `naam reproduce`), so the appendix cannot
//! drift from what the harness measures.
//!
//! An expectation selects points of one experiment's run (the newest complete run of the stated
//! testbed and variant, else the newest), takes one metric per point, aggregates it, optionally
//! divides it by the same aggregate over other points of the run (`relative_to`: scaling
//! claims such as "p99 at 512 tenants within 3× of one tenant's"), and compares the result with
//! `expected ± tolerance` (relative) or `expected ± tolerance_abs`, or with `min`/`max` bounds.
//!
//! A quick run on a machine faster or slower than the development VM has its local offered
//! loads scaled (`plan.json`'s `load_scale`): an expectation still names loads as the manifest
//! writes them and is read at the points they ran as, and an absolute rate's bounds scale with
//! the loads (ratios, fractions, latencies and counts are compared as written).

use std::path::{Path, PathBuf};

use naam_plan::{ExperimentPlan, LoadScale, PointPlan, Testbed, Variant};
use naam_results::layout::{RunDir, list_runs};
use naam_results::raw::{self, VmCostOutcome, VmCostReport};
use naam_results::shift::shift_times;
use naam_results::state::{RunStatus, inspect_run};
use naam_results::summary::{PointSummary, Validity};
use serde::{Deserialize, Serialize};

/// The committed expectations, relative to the repository.
pub const EXPECTATIONS_FILE: &str = "experiments/expectations.toml";
/// Schema version of the expectations file.
pub const EXPECTATIONS_SCHEMA: u32 = 1;
/// Most expectations in one file.
pub const EXPECTATIONS_MAX: usize = 512;
/// Largest expectations file read.
pub const EXPECTATIONS_BYTES_MAX: u64 = 1 << 20;

/// `experiments/expectations.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectationsFile {
    /// [`EXPECTATIONS_SCHEMA`].
    pub schema: u32,
    /// The variant the expectations were measured with (`quick` or `full`).
    pub variant: Variant,
    /// The expectations, in the order they are printed.
    #[serde(rename = "expect")]
    pub expectations: Vec<Expectation>,
}

/// Which testbed's runs an expectation reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestbedKind {
    /// This machine: loopback or network namespaces.
    #[default]
    Local,
    /// The simulation testbed.
    Sim,
    /// Real machines from an inventory.
    Inventory,
}

impl TestbedKind {
    fn of(testbed: &Testbed) -> TestbedKind {
        match testbed {
            Testbed::Local | Testbed::Netns => TestbedKind::Local,
            Testbed::Sim { .. } => TestbedKind::Sim,
            Testbed::Inventory { .. } => TestbedKind::Inventory,
        }
    }
}

/// What is read from each selected point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Completions per second of the measured phase.
    ThroughputOpsPerS,
    /// The clients' achieved sending rate.
    AchievedOpsPerS,
    /// Throughput over the offered load (1: the load was carried).
    CarriedFraction,
    /// Median latency (µs).
    P50Us,
    /// 99th-percentile latency (µs).
    P99Us,
    /// Answers that failed verification.
    VerifyFailures,
    /// Failed requests of every kind.
    Errors,
    /// Share of completions executed at the NIC (0..=1).
    NicShare,
    /// Share of completions executed at the client (0..=1): pushed-back or client-placed steps.
    ClientShare,
    /// 1 for a valid or saturated point, 0 for an invalid one (aggregate `sum` counts them).
    Valid,
    /// 1 for an invalid point.
    Invalid,
    /// From the hog's start to the rule sending ≥ 90 % of new requests to the NIC (ms; a point
    /// that never shifted has no value and counts as missing).
    ShiftRulesMs,
    /// From the hog's start to the first interval with ≥ 90 % of completions at the NIC (ms).
    ShiftCompletionsMs,
    /// vm-cost: mean ns per call of `function` on the point's backend.
    NsPerOp,
}

/// How the selected points' values become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// Smallest.
    Min,
    /// Largest.
    Max,
    /// Median (the mean of the middle two for an even count).
    Median,
    /// Sum.
    Sum,
}

/// Which points of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Selector {
    /// Series (placement, policy or backend); every series when absent.
    pub series: Option<String>,
    /// Offered load; every load when absent.
    pub offered_load_ops_per_s: Option<u64>,
    /// Tenants; every count when absent.
    pub tenants: Option<u32>,
    /// Tree depth; every depth when absent.
    pub tree_depth: Option<u32>,
    /// vm-cost: the function.
    pub function: Option<String>,
}

impl Selector {
    fn matches(&self, p: &PointPlan) -> bool {
        self.series
            .as_ref()
            .is_none_or(|s| *s == p.series.to_string())
            && self
                .offered_load_ops_per_s
                .is_none_or(|o| p.offered_load_ops_per_s == Some(o))
            && self.tenants.is_none_or(|t| p.tenants == t)
            && self.tree_depth.is_none_or(|d| p.tree_depth == Some(d))
    }

    /// This selector for a run whose offered loads were rescaled to the machine: an
    /// expectation names a load as the manifest writes it, the run's plan holds it scaled (by
    /// the same rounding, so the manifest's load maps to exactly one of the plan's).
    fn under_scale(&self, scale: Option<&LoadScale>) -> Selector {
        let scaled = |load: u64| scale.map_or(load, |s| s.apply(&[load])[0]);
        Selector {
            offered_load_ops_per_s: self.offered_load_ops_per_s.map(scaled),
            ..self.clone()
        }
    }

    /// `relative_to` fields override this selector's.
    fn overridden_by(&self, other: &Selector) -> Selector {
        Selector {
            series: other.series.clone().or_else(|| self.series.clone()),
            offered_load_ops_per_s: other.offered_load_ops_per_s.or(self.offered_load_ops_per_s),
            tenants: other.tenants.or(self.tenants),
            tree_depth: other.tree_depth.or(self.tree_depth),
            function: other.function.clone().or_else(|| self.function.clone()),
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.series {
            parts.push(s.clone());
        }
        if let Some(o) = self.offered_load_ops_per_s {
            parts.push(format!("offered={o}"));
        }
        if let Some(t) = self.tenants {
            parts.push(format!("tenants={t}"));
        }
        if let Some(d) = self.tree_depth {
            parts.push(format!("depth={d}"));
        }
        if let Some(f) = &self.function {
            parts.push(f.clone());
        }
        parts.join(" ")
    }
}

/// One expected result.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Experiment id.
    pub experiment: String,
    /// Testbed of the runs to read.
    #[serde(default)]
    pub testbed: TestbedKind,
    /// The points.
    #[serde(flatten)]
    pub select: Selector,
    /// The metric read from each point.
    pub metric: Metric,
    /// How the points' values combine.
    pub aggregate: Aggregate,
    /// Divide by the same aggregate over these points (fields override the selection's).
    pub relative_to: Option<Selector>,
    /// The expected value (with `tolerance` or `tolerance_abs`).
    pub expected: Option<f64>,
    /// Relative tolerance: pass when |measured − expected| ≤ tolerance·|expected|.
    pub tolerance: Option<f64>,
    /// Absolute tolerance: pass when |measured − expected| ≤ tolerance_abs.
    pub tolerance_abs: Option<f64>,
    /// Lower bound (inclusive).
    pub min: Option<f64>,
    /// Upper bound (inclusive).
    pub max: Option<f64>,
    /// The run(s) the expected value was measured from.
    pub source: String,
    /// The sentence of ARTIFACT.md §E this checks.
    pub claim: String,
}

/// Why expectations cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ExpectError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`EXPECTATIONS_BYTES_MAX`].
    #[error("{path} is larger than {EXPECTATIONS_BYTES_MAX} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The TOML does not parse.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An expectation is inconsistent.
    #[error("{path}: expectation {index} ({claim:?}): {problem}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 0-based index in the file.
        index: usize,
        /// Its claim.
        claim: String,
        /// What is wrong.
        problem: String,
    },
}

/// Reads and checks an expectations file.
pub fn load_expectations(path: &Path) -> Result<ExpectationsFile, ExpectError> {
    let read = |source| ExpectError::Read {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::metadata(path).map_err(read)?.len();
    if bytes > EXPECTATIONS_BYTES_MAX {
        return Err(ExpectError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let parse = |message: String| ExpectError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let file: ExpectationsFile = toml::from_str(&text).map_err(|e| parse(e.to_string()))?;
    if file.schema != EXPECTATIONS_SCHEMA {
        return Err(parse(format!(
            "schema {} (expected {EXPECTATIONS_SCHEMA})",
            file.schema
        )));
    }
    if file.expectations.len() > EXPECTATIONS_MAX {
        return Err(parse(format!("more than {EXPECTATIONS_MAX} expectations")));
    }
    for (index, e) in file.expectations.iter().enumerate() {
        if let Some(problem) = e.problem() {
            return Err(ExpectError::Invalid {
                path: path.to_path_buf(),
                index,
                claim: e.claim.clone(),
                problem,
            });
        }
    }
    Ok(file)
}

impl Expectation {
    /// What is inconsistent in this expectation, if anything.
    fn problem(&self) -> Option<String> {
        if naam_plan::ExperimentId::parse(&self.experiment).is_none() {
            return Some(format!("unknown experiment {:?}", self.experiment));
        }
        let tolerances = [self.tolerance, self.tolerance_abs]
            .iter()
            .flatten()
            .count();
        let bounded = self.min.is_some() || self.max.is_some();
        match (self.expected.is_some(), tolerances, bounded) {
            (true, 1, false) | (false, 0, true) => {}
            _ => {
                return Some(
                    "give `expected` with one of `tolerance`/`tolerance_abs`, or `min`/`max`"
                        .into(),
                );
            }
        }
        if [self.tolerance, self.tolerance_abs]
            .iter()
            .flatten()
            .any(|t| t.is_nan() || *t < 0.0)
        {
            return Some("a tolerance must be ≥ 0".into());
        }
        if (self.metric == Metric::NsPerOp) != self.select.function.is_some() {
            return Some("`function` goes with metric ns_per_op, and only with it".into());
        }
        None
    }

    /// The accepted interval.
    pub fn bounds(&self) -> (f64, f64) {
        match (self.expected, self.tolerance, self.tolerance_abs) {
            (Some(e), Some(rel), _) => (e - rel * e.abs(), e + rel * e.abs()),
            (Some(e), None, Some(abs)) => (e - abs, e + abs),
            _ => (
                self.min.unwrap_or(f64::NEG_INFINITY),
                self.max.unwrap_or(f64::INFINITY),
            ),
        }
    }

    /// The accepted interval for a run whose offered loads were scaled by `scale`: an absolute
    /// rate (throughput, achieved rate) was measured at the manifest's loads and scales with
    /// them; ratios, fractions, latencies and counts do not.
    pub fn bounds_under(&self, scale: Option<&LoadScale>) -> (f64, f64) {
        let (lo, hi) = self.bounds();
        match scale {
            Some(s) if self.scales_with_load() => (lo * s.factor(), hi * s.factor()),
            _ => (lo, hi),
        }
    }

    /// True for an absolute rate in ops/s (not one divided by another point's).
    fn scales_with_load(&self) -> bool {
        self.relative_to.is_none()
            && matches!(
                self.metric,
                Metric::ThroughputOpsPerS | Metric::AchievedOpsPerS
            )
    }

    /// The expectation in words: `expected 20000 ± 20 %`, `in 0..=3`.
    pub fn describe_expected(&self) -> String {
        match (self.expected, self.tolerance, self.tolerance_abs) {
            (Some(e), Some(rel), _) => format!("expected {} ± {:.0} %", num(e), rel * 100.0),
            (Some(e), None, Some(abs)) => format!("expected {} ± {}", num(e), num(abs)),
            _ => {
                let (lo, hi) = self.bounds();
                format!("expected {}", interval_words(lo, hi))
            }
        }
    }
}

/// `1..=2`, `≥ 1`, `≤ 2`.
fn interval_words(lo: f64, hi: f64) -> String {
    match (lo.is_finite(), hi.is_finite()) {
        (true, true) => format!("{}..={}", num(lo), num(hi)),
        (true, false) => format!("≥ {}", num(lo)),
        _ => format!("≤ {}", num(hi)),
    }
}

fn num(x: f64) -> String {
    if (x.fract() == 0.0 && x.abs() < 1e15) || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
    }
}

/// A checked expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The expectation.
    pub expectation: Expectation,
    /// `pass`, `fail` or `missing` (no run, no matching point, or no value).
    pub verdict: Verdict,
    /// The measured value, when there was one.
    pub measured: Option<f64>,
    /// Points the value was computed from.
    pub points: usize,
    /// The run read (or why none).
    pub run: String,
    /// How that run's offered loads were scaled to its machine (the selection's loads and an
    /// absolute rate's bounds followed them).
    pub load_scale: Option<LoadScale>,
}

/// An expectation's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Within the tolerance.
    Pass,
    /// Outside it.
    Fail,
    /// Nothing to compare.
    Missing,
}

/// The run an expectation reads: the newest complete run of `experiment` on `testbed` with
/// `variant`, else the newest such run.
pub fn select_run(
    results_root: &Path,
    experiment: &str,
    testbed: TestbedKind,
    variant: Variant,
) -> Option<(RunDir, ExperimentPlan)> {
    let runs: Vec<(RunDir, ExperimentPlan)> = list_runs(results_root, experiment)
        .into_iter()
        .filter_map(|run| run.read_plan().ok().map(|plan| (run, plan)))
        .filter(|(_, plan)| TestbedKind::of(&plan.testbed) == testbed && plan.variant == variant)
        .collect();
    let complete = runs
        .iter()
        .position(|(run, _)| inspect_run(run).is_ok_and(|r| r.state.status == RunStatus::Complete));
    runs.into_iter().nth(complete.unwrap_or(0))
}

/// Checks every expectation of `file` against the runs under `results_root`.
pub fn check(results_root: &Path, file: &ExpectationsFile) -> Vec<Outcome> {
    file.expectations
        .iter()
        .map(|e| check_one(results_root, file.variant, e))
        .collect()
}

fn check_one(results_root: &Path, variant: Variant, e: &Expectation) -> Outcome {
    let mut outcome = Outcome {
        expectation: e.clone(),
        verdict: Verdict::Missing,
        measured: None,
        points: 0,
        run: format!("no {variant} run on the {} testbed", name_of(&e.testbed)),
        load_scale: None,
    };
    let Some((run, plan)) = select_run(results_root, &e.experiment, e.testbed, variant) else {
        return outcome;
    };
    outcome.run = run.root().display().to_string();
    let scale = plan.load_scale.as_ref();
    outcome.load_scale = plan.load_scale;
    let (value, points) = aggregate_over(&run, &plan, e, &e.select.under_scale(scale));
    outcome.points = points;
    let value = match (&e.relative_to, value) {
        (Some(base), Some(v)) => {
            let base = e.select.overridden_by(base).under_scale(scale);
            let (b, _) = aggregate_over(&run, &plan, e, &base);
            b.filter(|b| *b != 0.0).map(|b| v / b)
        }
        (None, v) => v,
        (Some(_), None) => None,
    };
    if let Some(v) = value {
        let (lo, hi) = e.bounds_under(scale);
        outcome.measured = Some(v);
        outcome.verdict = if lo <= v && v <= hi {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
    }
    outcome
}

/// The aggregate of `e.metric` over the complete points `select` matches, and their count.
fn aggregate_over(
    run: &RunDir,
    plan: &ExperimentPlan,
    e: &Expectation,
    select: &Selector,
) -> (Option<f64>, usize) {
    let mut values = Vec::new();
    let mut points = 0;
    for point in plan.points.iter().filter(|p| select.matches(p)) {
        if !run.is_complete(&point.id) {
            continue;
        }
        points += 1;
        let Ok(summary) = run.read_summary(&point.id) else {
            continue;
        };
        if let Some(v) = metric_of(run, plan, point, &summary, e.metric, select) {
            values.push(v);
        }
    }
    (combine(&mut values, e.aggregate), points)
}

fn combine(values: &mut [f64], aggregate: Aggregate) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(match aggregate {
        Aggregate::Min => values[0],
        Aggregate::Max => values[n - 1],
        Aggregate::Sum => values.iter().sum(),
        Aggregate::Median if n % 2 == 1 => values[n / 2],
        Aggregate::Median => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    })
}

fn metric_of(
    run: &RunDir,
    plan: &ExperimentPlan,
    point: &PointPlan,
    summary: &PointSummary,
    metric: Metric,
    select: &Selector,
) -> Option<f64> {
    let valid = summary.validity.is_valid();
    match metric {
        Metric::Valid => return Some(if valid { 1.0 } else { 0.0 }),
        Metric::Invalid => {
            let invalid = matches!(summary.validity, Validity::Invalid { .. });
            return Some(if invalid { 1.0 } else { 0.0 });
        }
        Metric::NsPerOp => return ns_per_op(run, point, select.function.as_deref()?),
        Metric::ShiftRulesMs | Metric::ShiftCompletionsMs => {
            let times = shift_times(plan, &run.point_dir(&point.id)).ok()??;
            return if metric == Metric::ShiftRulesMs {
                times.rules_ms
            } else {
                times.completions_ms
            };
        }
        _ => {}
    }
    let t = summary.traffic.as_ref()?;
    Some(match metric {
        Metric::ThroughputOpsPerS => t.throughput_ops_per_s,
        Metric::AchievedOpsPerS => t.achieved_ops_per_s,
        Metric::CarriedFraction => t.throughput_ops_per_s / t.offered_mean_ops_per_s?,
        Metric::P50Us => t.latency.p50_ns as f64 / 1e3,
        Metric::P99Us => t.latency.p99_ns as f64 / 1e3,
        Metric::VerifyFailures => t.verify_failures as f64,
        Metric::Errors => t.errors as f64,
        Metric::NicShare => share_at(t, "nic")?,
        Metric::ClientShare => share_at(t, "client")?,
        _ => return None,
    })
}

/// The share of `t`'s completions at the location named `location`.
fn share_at(t: &naam_results::summary::TrafficSummary, location: &str) -> Option<f64> {
    let at = t.locations.iter().find(|l| l.location.name() == location)?;
    Some(at.share)
}

fn ns_per_op(run: &RunDir, point: &PointPlan, function: &str) -> Option<f64> {
    let path = run.point_dir(&point.id).join(raw::VMCOST_FILE);
    let report: VmCostReport = raw::read_json(&path, "vm-cost report").ok()?;
    report
        .entries
        .iter()
        .find(|entry| entry.function == function && entry.backend == point.series.to_string())
        .and_then(|entry| match entry.outcome {
            VmCostOutcome::Measured { ns_per_op, .. } => Some(ns_per_op),
            VmCostOutcome::Unavailable { .. } => None,
        })
}

/// One line per outcome and a total line.
pub fn describe(outcomes: &[Outcome]) -> String {
    let mut text = String::new();
    for o in outcomes {
        let e = &o.expectation;
        let verdict = match o.verdict {
            Verdict::Pass => "PASS   ",
            Verdict::Fail => "FAIL   ",
            Verdict::Missing => "MISSING",
        };
        let run = if o.verdict == Verdict::Missing {
            format!(" ({})", o.run)
        } else {
            String::new()
        };
        let relative = if e.relative_to.is_some() {
            " (relative)"
        } else {
            ""
        };
        let measured = o.measured.map_or("no value".to_string(), num);
        text += &format!(
            "{verdict} {} {} [{}] {} {}{relative}: measured {measured} over {} points, {}{} — {}\n",
            e.experiment,
            name_of(&e.testbed),
            e.select.describe(),
            name_of(&e.metric),
            name_of(&e.aggregate),
            o.points,
            e.describe_expected(),
            scale_note(o),
            e.claim,
        );
        text.insert_str(text.len() - 1, &run);
    }
    let count = |v: Verdict| outcomes.iter().filter(|o| o.verdict == v).count();
    text += &format!(
        "expectations: {} pass, {} fail, {} missing (of {})\n",
        count(Verdict::Pass),
        count(Verdict::Fail),
        count(Verdict::Missing),
        outcomes.len()
    );
    text
}

/// How a scaled run changed what an expectation compared, or nothing when it did not.
fn scale_note(o: &Outcome) -> String {
    let e = &o.expectation;
    let Some(scale) = o.load_scale.as_ref() else {
        return String::new();
    };
    let mut changes = Vec::new();
    if let Some(load) = e.select.offered_load_ops_per_s {
        changes.push(format!("offered={load} ran as {}", scale.apply(&[load])[0]));
    }
    if e.scales_with_load() {
        let (lo, hi) = e.bounds_under(Some(scale));
        changes.push(format!("accepted {}", interval_words(lo, hi)));
    }
    if changes.is_empty() {
        return String::new();
    }
    format!(
        " (the run's loads were scaled x{:.3} to this machine: {})",
        scale.factor(),
        changes.join(", ")
    )
}

/// The name a value has in the expectations file.
fn name_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// True when every outcome passed.
pub fn all_pass(outcomes: &[Outcome]) -> bool {
    outcomes.iter().all(|o| o.verdict == Verdict::Pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick run of 2026-12-06 20:56 UTC: a loopback ceiling of 301 k req/s against the
    /// development VM's 200 k, local quick loads × 1.505 (the sizing's upward band was 1.3×
    /// then).
    fn scale() -> LoadScale {
        LoadScale {
            factor_permille: 1505,
            measured_ceiling_req_per_s: 301_000,
            reference_ceiling_req_per_s: naam_plan::REFERENCE_CEILING_REQ_PER_S,
        }
    }

    fn expectation(fields: &str) -> Expectation {
        let text = format!(
            "experiment = \"mica-ycsb-b\"\naggregate = \"median\"\nsource = \"s\"\nclaim = \"c\"\n{fields}"
        );
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_manifest_load_selects_the_point_the_scaled_run_ran_it_as() {
        let e = expectation("offered_load_ops_per_s = 25000\nmetric = \"p50_us\"\nmin = 1.5");
        let scaled = e.select.under_scale(Some(&scale()));
        assert_eq!(scaled.offered_load_ops_per_s, Some(38_000));
        assert_eq!(
            scale().apply(&[10_000, 25_000, 50_000]),
            [15_000, 38_000, 75_000]
        );
        assert_eq!(
            e.select.under_scale(None),
            e.select,
            "an unscaled run: as written"
        );
        let every_load = expectation("metric = \"p50_us\"\nmin = 1.5");
        assert_eq!(
            every_load.select.under_scale(Some(&scale())),
            every_load.select
        );
    }

    #[test]
    fn only_absolute_rates_have_their_bounds_scaled() {
        let rate =
            expectation("metric = \"throughput_ops_per_s\"\nexpected = 75000\ntolerance = 0.1");
        let (lo, hi) = rate.bounds_under(Some(&scale()));
        let factor = scale().factor();
        assert!((lo - 67_500.0 * factor).abs() < 1e-6 && (hi - 82_500.0 * factor).abs() < 1e-6);
        assert_eq!(rate.bounds_under(None), rate.bounds());
        let ceiling = expectation("metric = \"achieved_ops_per_s\"\nmax = 47500");
        assert_eq!(ceiling.bounds_under(Some(&scale())).1, 47_500.0 * factor);
        assert_eq!(ceiling.bounds_under(Some(&scale())).0, f64::NEG_INFINITY);
        for unscaled in [
            "metric = \"carried_fraction\"\nexpected = 1.0\ntolerance = 0.05",
            "metric = \"p99_us\"\nexpected = 8.1\ntolerance = 0.05",
            "metric = \"throughput_ops_per_s\"\nrelative_to = { tenants = 1 }\nexpected = 1.0\ntolerance = 0.1",
        ] {
            let e = expectation(unscaled);
            assert_eq!(e.bounds_under(Some(&scale())), e.bounds(), "{unscaled}");
        }
    }

    #[test]
    fn the_description_says_what_a_scaled_run_changed() {
        let e = expectation(
            "offered_load_ops_per_s = 50000\nmetric = \"achieved_ops_per_s\"\nmax = 47500",
        );
        let outcome = Outcome {
            expectation: e.clone(),
            verdict: Verdict::Pass,
            measured: Some(40_000.0),
            points: 1,
            run: "r".into(),
            load_scale: Some(scale()),
        };
        let text = describe(std::slice::from_ref(&outcome));
        assert!(text.contains("scaled x1.505"), "{text}");
        assert!(text.contains("offered=50000 ran as 75000"), "{text}");
        assert!(text.contains("accepted ≤ 71488"), "{text}");
        let unscaled = describe(&[Outcome {
            load_scale: None,
            ..outcome
        }]);
        assert!(!unscaled.contains("scaled"), "{unscaled}");
    }
}
