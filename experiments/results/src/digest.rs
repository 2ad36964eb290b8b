//! A run's digest, computed from the summaries on disk: how many points are valid, saturated
//! and invalid, the invalid points' reasons counted by kind, and per series the headline numbers
//! (the highest throughput a valid point measured, the shift times of load-shift points).
//! `naam reproduce` prints it at the end and `naam status` beside each run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::ResultsError;
use crate::layout::RunDir;
use naam_types::Location;

use crate::shift::{Mechanism, SHIFTED_SHARE, ShiftTimes, shift_times};
use crate::summary::Validity;

/// One series' headline numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeriesDigest {
    /// Placement, policy or backend.
    pub series: String,
    /// Complete points of the series.
    pub points: u32,
    /// The highest throughput of a valid (or saturated) point: the saturation throughput when
    /// the sweep reached saturation.
    pub throughput_ops_per_s_max: Option<f64>,
    /// Shift times of its points with a CPU hog (ms; `None`: never shifted), see `shift`.
    pub shift_rules_ms: Vec<Option<f64>>,
    /// The completion-based shift times of the same points.
    pub shift_completions_ms: Vec<Option<f64>>,
    /// Per point: completions were at the target already before the hog (no shift time).
    pub shift_completions_before_hog: Vec<bool>,
    /// How the series' system reacts to the hog (steering or migration; `None`: no hog).
    pub mechanism: Option<Mechanism>,
    /// Where its load shifts to (the NIC for NAAM, the host for iPipe; `None`: no hog).
    pub shift_target: Option<Location>,
    /// Hog start → its first reaction, per point (see `shift::Reaction`).
    pub reaction_first_ms: Vec<Option<f64>>,
}

/// A run's digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunDigest {
    /// Experiment id.
    pub experiment: String,
    /// The run folder.
    pub run_dir: String,
    /// Complete points with verdict `valid`.
    pub points_valid: u32,
    /// Complete points with verdict `saturated`.
    pub points_saturated: u32,
    /// Complete points with verdict `invalid`.
    pub points_invalid: u32,
    /// Points of the plan without a summary.
    pub points_missing: u32,
    /// Invalid points per reason kind (the reason with its numbers replaced by `N`).
    pub reasons: BTreeMap<String, u32>,
    /// Per series, in plan order.
    pub series: Vec<SeriesDigest>,
}

/// The digest of the run at `run`, from its plan and its points' summaries and raw files.
pub fn digest(run: &RunDir) -> Result<RunDigest, ResultsError> {
    let plan = run.read_plan()?;
    let mut d = RunDigest {
        experiment: plan.id.to_string(),
        run_dir: run.root().display().to_string(),
        ..RunDigest::default()
    };
    for point in &plan.points {
        if !run.is_complete(&point.id) {
            d.points_missing += 1;
            continue;
        }
        let summary = run.read_summary(&point.id)?;
        let name = point.series.to_string();
        let slot = match d.series.iter().position(|s| s.series == name) {
            Some(slot) => slot,
            None => {
                d.series.push(SeriesDigest {
                    series: name,
                    ..SeriesDigest::default()
                });
                d.series.len() - 1
            }
        };
        let series = &mut d.series[slot];
        series.points += 1;
        match &summary.validity {
            Validity::Valid => d.points_valid += 1,
            Validity::Saturated { .. } => d.points_saturated += 1,
            Validity::Invalid { reasons } => {
                d.points_invalid += 1;
                for reason in reasons {
                    *d.reasons.entry(reason_kind(reason)).or_default() += 1;
                }
            }
        }
        if let Some(t) = summary
            .traffic
            .as_ref()
            .filter(|_| summary.validity.is_valid())
        {
            let best = series.throughput_ops_per_s_max.get_or_insert(0.0);
            *best = best.max(t.throughput_ops_per_s);
        }
        if let Some(times) = shift_times(&plan, &run.point_dir(&point.id))? {
            series.add_shift(&times);
        }
    }
    Ok(d)
}

impl SeriesDigest {
    /// Adds one point's shift and reaction times.
    fn add_shift(&mut self, times: &ShiftTimes) {
        let reaction = times.reaction();
        self.shift_rules_ms.push(times.rules_ms);
        self.shift_completions_ms.push(reaction.shifted_ms);
        self.shift_completions_before_hog
            .push(reaction.shifted_before_hog);
        self.reaction_first_ms.push(reaction.first_ms);
        self.mechanism = Some(reaction.mechanism);
        self.shift_target = Some(reaction.target);
    }
}

/// A reason with every run of digits (and decimal point) replaced by `N`, so reasons that differ
/// only in their numbers count together.
pub fn reason_kind(reason: &str) -> String {
    let mut kind = String::with_capacity(reason.len());
    let mut in_number = false;
    for c in reason.chars() {
        let digit = c.is_ascii_digit() || (in_number && c == '.');
        if digit && !in_number {
            kind.push('N');
        } else if !digit {
            kind.push(c);
        }
        in_number = digit;
    }
    kind
}

/// The digest in a few lines.
pub fn describe_digest(d: &RunDigest) -> String {
    let mut text = format!(
        "{}: {} valid, {} saturated, {} invalid, {} missing ({})",
        d.experiment,
        d.points_valid,
        d.points_saturated,
        d.points_invalid,
        d.points_missing,
        d.run_dir
    );
    for (kind, count) in &d.reasons {
        text += &format!("\n  invalid ×{count}: {kind}");
    }
    for s in &d.series {
        text += &format!("\n  {}: {} points", s.series, s.points);
        if let Some(best) = s.throughput_ops_per_s_max {
            text += &format!(", best valid throughput {best:.0} ops/s");
        }
        if let Some(reaction) = reaction_text(s) {
            text += &format!(", reaction: {reaction}");
        }
    }
    text
}

/// A series' reaction times to the CPU hog, one value per point: `steering: first rule change
/// 12 ms, 15 ms; ≥ 90 % of completions at the NIC 40 ms, never` (`migration: first migration …
/// at the host …` for iPipe); `None` when it had no point with a hog.
pub fn reaction_text(s: &SeriesDigest) -> Option<String> {
    let (mechanism, target) = (s.mechanism?, s.shift_target?);
    Some(format!(
        "{}: {} {}; ≥ {:.0} % of completions at the {} {}",
        mechanism.as_str(),
        mechanism.first_reaction(),
        list_ms(&s.reaction_first_ms),
        SHIFTED_SHARE * 100.0,
        target_name(target),
        shifted_list(s)
    ))
}

fn target_name(target: Location) -> &'static str {
    match target {
        Location::Host => "host",
        Location::Nic => "NIC",
        Location::Client => "client",
    }
}

/// A series' completion shift times: `45 ms, never, before the hog`.
pub fn shifted_list(s: &SeriesDigest) -> String {
    let before_hog = &s.shift_completions_before_hog;
    let shown: Vec<String> = (s.shift_completions_ms.iter().zip(before_hog))
        .map(|(&ms, &before)| crate::shift::shifted_text(ms, before))
        .collect();
    shown.join(", ")
}

/// Times in ms, `never` for a point that did not get there: `45 ms, never`.
pub fn list_ms(values: &[Option<f64>]) -> String {
    let shown: Vec<String> = values
        .iter()
        .map(|v| v.map_or("never".to_string(), |ms| format!("{ms:.0} ms")))
        .collect();
    shown.join(", ")
}

#[cfg(test)]
mod tests {
    use super::reason_kind;

    #[test]
    fn reasons_differing_in_numbers_share_a_kind() {
        assert_eq!(
            reason_kind("achieved 9123 ops/s, below 95 % of the offered 20000.5 ops/s"),
            "achieved N ops/s, below N % of the offered N ops/s"
        );
        assert_eq!(
            reason_kind("client 1 was stopped 250 ms into the 2000 ms measured phase"),
            reason_kind("client 0 was stopped 7 ms into the 500 ms measured phase")
        );
    }
}
