//! The paper's claims (ARTIFACT.md §B, rows C1–C4) and the values this results folder measured
//! for each, derived from the run digests.

use naam_plan::ExperimentId;

use super::{ExperimentView, RunView};

/// Which headline number of a run answers a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headline {
    /// The highest throughput of a valid (or saturated) point, per series.
    ThroughputMax,
    /// The reaction times of the points with a CPU hog, per series (`shift::Reaction`).
    ShiftTimes,
    /// The most offloads (tenants) with a valid point, per series.
    OffloadsValidMax,
}

/// One claim of the paper and how this harness tests it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// `C1` … `C4`.
    pub id: &'static str,
    /// The claim as the paper's abstract states it (ARTIFACT.md §B's words).
    pub claim: &'static str,
    /// The experiment that tests it.
    pub experiment: ExperimentId,
    /// What the harness measures for it.
    pub measured_what: &'static str,
    /// The paper's number, on the paper's hardware.
    pub paper_value: &'static str,
    /// Which headline number answers it.
    pub headline: Headline,
}

/// ARTIFACT.md §B's claims (a test holds the two texts equal).
pub const CLAIMS: [Claim; 4] = [
    Claim {
        id: "C1",
        claim: "up to 1.8 M MICA ops/s (YCSB-B) offloaded from server CPUs",
        experiment: ExperimentId::MicaYcsbB,
        measured_what: "highest throughput of a valid or saturated point, per placement (nic = offloaded)",
        paper_value: "1.8 M MICA ops/s (YCSB-B), BlueField-2",
        headline: Headline::ThroughputMax,
    },
    Claim {
        id: "C2",
        claim: "750 K Cell B-tree lookups/s offloaded",
        experiment: ExperimentId::CellLookups,
        measured_what: "highest throughput of a valid or saturated point, per placement (nic = offloaded)",
        paper_value: "750 K Cell B-tree lookups/s, BlueField-2",
        headline: Headline::ThroughputMax,
    },
    Claim {
        id: "C3",
        claim: "load shifts within tens of ms of server compute congestion (eSwitch steering)",
        experiment: ExperimentId::LoadShift,
        measured_what: "per series, time from the CPU hog's start to the system's first reaction (NAAM: first rule change; iPipe: first migration to the host decided) and until ≥ 90 % of completions ran where the load went (NAAM: the NIC; iPipe: the host)",
        paper_value: "within tens of ms",
        headline: Headline::ShiftTimes,
    },
    Claim {
        id: "C4",
        claim: "iPipe scales to 8 offloads on BF-2; NAAM to hundreds with small tail impact",
        experiment: ExperimentId::OffloadScaling,
        measured_what: "per series, the most offloads (tenants) at which a point was valid, and the most whose p99 stays within 2× the single-offload p99",
        paper_value: "iPipe 8 offloads; NAAM hundreds",
        headline: Headline::OffloadsValidMax,
    },
];

/// The measured value of `claim` from `view`, in words; "not measured" (with why) when the
/// experiment has no complete run.
pub fn measured_value(claim: &Claim, view: &ExperimentView) -> String {
    let run = match &view.run {
        Ok(run) => run,
        Err(why) => return format!("not measured ({why})"),
    };
    if !run.complete {
        let d = &run.digest;
        let complete = d.points_valid + d.points_saturated + d.points_invalid;
        return format!(
            "not measured: no complete run (the newest has {complete} of {} points)",
            complete + d.points_missing
        );
    }
    let values = match claim.headline {
        Headline::ThroughputMax => throughput_values(run),
        Headline::ShiftTimes => shift_values(run),
        Headline::OffloadsValidMax => offload_values(run),
    };
    if values.is_empty() {
        let d = &run.digest;
        format!(
            "no valid point measured it ({} valid, {} saturated, {} invalid)",
            d.points_valid, d.points_saturated, d.points_invalid
        )
    } else {
        values.join("; ")
    }
}

fn throughput_values(run: &RunView) -> Vec<String> {
    run.digest
        .series
        .iter()
        .map(|s| match s.throughput_ops_per_s_max {
            Some(ops) => format!("{}: {}", s.series, ops_text(ops)),
            None => format!("{}: no valid point", s.series),
        })
        .collect()
}

fn shift_values(run: &RunView) -> Vec<String> {
    run.digest
        .series
        .iter()
        .filter_map(|s| {
            let reaction = naam_results::digest::reaction_text(s)?;
            Some(format!("{} ({reaction})", s.series))
        })
        .collect()
}

fn offload_values(run: &RunView) -> Vec<String> {
    run.offloads
        .iter()
        .filter(|o| o.tenants_valid_max.is_some())
        .map(offload_text)
        .collect()
}

/// One series' offload headline: `ipipe: valid up to 8 offloads; p99 within 2× of 1 offload: up
/// to 4 of 64 offloads` ("all", "none" said plainly).
pub fn offload_text(o: &super::SeriesOffloads) -> String {
    let valid = match o.tenants_valid_max {
        Some(n) => format!("valid up to {n} offloads"),
        None => "no valid point".to_string(),
    };
    let planned = o.tenants_planned_max;
    let tail = match o.tenants_tail_within_max {
        None => "none (no valid single-offload point)".to_string(),
        Some(n) if n == planned => format!("all {planned} offloads"),
        Some(n) => format!("up to {n} of {planned} offloads"),
    };
    let factor = super::TAIL_P99_FACTOR_MAX;
    format!(
        "{}: {valid}; p99 within {factor}× of 1 offload: {tail}",
        o.series
    )
}

/// Operations per second with a unit prefix: `29.4 K ops/s`, `1.80 M ops/s`.
pub fn ops_text(ops_per_s: f64) -> String {
    if ops_per_s >= 1e6 {
        format!("{:.2} M ops/s", ops_per_s / 1e6)
    } else if ops_per_s >= 1e3 {
        format!("{:.1} K ops/s", ops_per_s / 1e3)
    } else {
        format!("{ops_per_s:.0} ops/s")
    }
}

/// Shift times: `45 ms, never`.
pub fn ms_list(values: &[Option<f64>]) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| v.map_or("never".to_string(), |ms| format!("{ms:.0} ms")))
        .collect();
    shown.join(", ")
}
