//! Shift time of a load-shift point, computed from its raw files: how long after the CPU hog
//! started the NIC took over. Two definitions, both reported because they answer different
//! questions:
//!
//! - **rules** (`steering.jsonl`): hog start → the first steering rule that sends at least
//!   [`SHIFTED_SHARE`] of *new* requests to the NIC — how fast the controller reacts;
//! - **completions** (the clients' `.hlog`s, all clients merged): hog start → the end of the
//!   first interval in which at least [`SHIFTED_SHARE`] of the *completed* requests ran at the
//!   NIC — what clients see, including the starved host's backlog draining.
//!
//! Times are ms from the hog's start; the hog's start and the logs' times are both from the
//! measured phase's start. `naam testbed bench`, the frames (`points`: `shift_rules_ms`,
//! `shift_completions_ms`) and the load-shift figure all read these functions.

use std::collections::BTreeMap;
use std::path::Path;

use naam_plan::{Event, ExperimentPlan, Timing};
use naam_types::{Location, PerLocation};

use crate::error::ResultsError;
use crate::raw::{STEERING_FILE, SteeringChange, read_jsonl};
use crate::summary::read_point_intervals;

/// Share of new requests (rules) or completions (intervals) at the NIC that counts as shifted.
pub const SHIFTED_SHARE: f64 = 0.9;

/// A point's shift times (ms from the hog's start; `None`: never shifted in the measured phase).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftTimes {
    /// The hog's start, ms from the measured phase's start.
    pub hog_start_ms: u64,
    /// To the first rule sending ≥ [`SHIFTED_SHARE`] of new requests to the NIC.
    pub rules_ms: Option<f64>,
    /// To the end of the first interval with ≥ [`SHIFTED_SHARE`] of completions at the NIC.
    pub completions_ms: Option<f64>,
    /// To the first rule change of any kind.
    pub first_rule_change_ms: Option<f64>,
}

/// The shift times of the point measured into `dir`, or `None` when the plan starts no CPU hog
/// (or is not a traffic experiment). The first CPU hog of the plan is the one measured.
pub fn shift_times(plan: &ExperimentPlan, dir: &Path) -> Result<Option<ShiftTimes>, ResultsError> {
    let Timing::Traffic { interval_ms, .. } = plan.timing else {
        return Ok(None);
    };
    let Some(hog_start_ms) = first_hog_start_ms(plan) else {
        return Ok(None);
    };
    let steering_path = dir.join(STEERING_FILE);
    let changes: Vec<SteeringChange> = if steering_path.exists() {
        read_jsonl(&steering_path, "steering change")?
    } else {
        Vec::new()
    };
    let by_interval = completions_by_interval(dir, plan.roles.clients, interval_ms)?;
    Ok(Some(ShiftTimes {
        hog_start_ms,
        rules_ms: rules_shift_ms(&changes, hog_start_ms),
        completions_ms: completions_shift_ms(&by_interval, hog_start_ms, interval_ms),
        first_rule_change_ms: first_change_ms(&changes, hog_start_ms),
    }))
}

/// The start of the plan's first CPU hog, ms from the measured phase's start.
pub fn first_hog_start_ms(plan: &ExperimentPlan) -> Option<u64> {
    plan.events.iter().find_map(|event| match *event {
        Event::CpuHog { start_ms, .. } => Some(start_ms),
        Event::LoadStep { .. } => None,
    })
}

/// Completions per interval (keyed by start, ms from the measured phase's start) and location,
/// all `clients` of the point merged.
pub fn completions_by_interval(
    dir: &Path,
    clients: u32,
    interval_ms: u64,
) -> Result<BTreeMap<u64, PerLocation<u64>>, ResultsError> {
    let mut by_start: BTreeMap<u64, PerLocation<u64>> = BTreeMap::new();
    for ((index, location), histogram) in read_point_intervals(dir, clients, interval_ms)? {
        by_start.entry(u64::from(index) * interval_ms).or_default()[location] += histogram.len();
    }
    Ok(by_start)
}

/// Hog start → the end of the first interval starting at or after it in which at least
/// [`SHIFTED_SHARE`] of completions ran at the NIC.
pub fn completions_shift_ms(
    by_interval: &BTreeMap<u64, PerLocation<u64>>,
    hog_start_ms: u64,
    interval_ms: u64,
) -> Option<f64> {
    by_interval
        .range(hog_start_ms..)
        .find_map(|(&start_ms, counts)| {
            let total = counts.total();
            let shifted = total > 0 && counts.nic as f64 >= SHIFTED_SHARE * total as f64;
            shifted.then(|| (start_ms + interval_ms - hog_start_ms) as f64)
        })
}

/// Hog start → the first rule giving the NIC at least [`SHIFTED_SHARE`] of new requests.
pub fn rules_shift_ms(changes: &[SteeringChange], hog_start_ms: u64) -> Option<f64> {
    let threshold_permille = (SHIFTED_SHARE * 1000.0).round() as u16;
    since_hog_ms(changes, hog_start_ms, |c| {
        c.nic_permille >= threshold_permille
    })
}

/// Hog start → the first rule change of any kind.
pub fn first_change_ms(changes: &[SteeringChange], hog_start_ms: u64) -> Option<f64> {
    since_hog_ms(changes, hog_start_ms, |_| true)
}

fn since_hog_ms(
    changes: &[SteeringChange],
    hog_start_ms: u64,
    matches: impl Fn(&SteeringChange) -> bool,
) -> Option<f64> {
    let hog_ns = hog_start_ms.saturating_mul(1_000_000);
    changes
        .iter()
        .find(|c| c.t_ns >= hog_ns && matches(c))
        .map(|c| (c.t_ns - hog_ns) as f64 / 1e6)
}

/// Share of completions at each location over intervals starting in `[from_ms, to_ms)`.
pub fn shares(
    by_interval: &BTreeMap<u64, PerLocation<u64>>,
    from_ms: u64,
    to_ms: u64,
) -> PerLocation<f64> {
    let mut sum = PerLocation::<u64>::default();
    for counts in by_interval.range(from_ms..to_ms).map(|(_, c)| c) {
        for location in Location::ALL {
            sum[location] += counts[location];
        }
    }
    let total = sum.total().max(1) as f64;
    sum.map(|count| count as f64 / total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(host: u64, nic: u64) -> PerLocation<u64> {
        PerLocation {
            host,
            nic,
            client: 0,
        }
    }

    fn rule(t_ms: u64, nic_permille: u16) -> SteeringChange {
        SteeringChange {
            t_ns: t_ms * 1_000_000,
            policy: "naam-adaptive".into(),
            scope: "all".into(),
            host_permille: 1000 - nic_permille,
            nic_permille,
            client_permille: 0,
            reason: "test".into(),
        }
    }

    #[test]
    fn completions_shift_ends_at_the_first_interval_mostly_at_the_nic() {
        let by_interval = BTreeMap::from([
            (0, counts(100, 0)),
            (100, counts(100, 0)),
            (200, counts(50, 50)),
            (300, counts(5, 95)),
            (400, counts(0, 100)),
        ]);
        assert_eq!(completions_shift_ms(&by_interval, 150, 100), Some(250.0));
        assert_eq!(completions_shift_ms(&by_interval, 500, 100), None);
        let before = shares(&by_interval, 0, 200);
        assert_eq!(before.host, 1.0);
    }

    #[test]
    fn rules_shift_counts_only_rules_after_the_hog_reaching_the_share() {
        let changes = [rule(10, 950), rule(120, 500), rule(160, 900)];
        assert_eq!(rules_shift_ms(&changes, 100), Some(60.0));
        assert_eq!(first_change_ms(&changes, 100), Some(20.0));
        assert_eq!(rules_shift_ms(&changes, 200), None);
    }
}
