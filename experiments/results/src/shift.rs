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
//! The iPipe baseline (`server.json`'s `system` is an iPipe one) reacts by migrating actors,
//! not by steering: its hog congests the NIC's cores (where its actors start), and its shift goes
//! the other way, to the host. For it, **rules** is hog start → the first migration to the host
//! the management core *decided* (its record in `server.json`; the analogue of a rule change),
//! **completions** is hog start → the end of the first interval with at least
//! [`SHIFTED_SHARE`] of completions at the host, and the first change is the first migration
//! decided in either direction.
//!
//! The two systems' **reaction times**, side by side, come from the same numbers
//! ([`ShiftTimes::reaction`]): for NAAM, hog start → the first rule change (the controller
//! reacting) and → ≥ [`SHIFTED_SHARE`] of completions at the NIC; for iPipe, hog start → the
//! first migration to the host decided (the management core reacting) and → ≥ [`SHIFTED_SHARE`]
//! of completions at the host, where the migrated actors run.
//!
//! Times are ms from the hog's start; the hog's start and the logs' times are both from the
//! measured phase's start. `naam testbed bench`, the frames (`points`: `shift_rules_ms`,
//! `shift_completions_ms`) and the load-shift figure all read these functions.

use std::collections::BTreeMap;
use std::path::Path;

use naam_plan::{Event, ExperimentPlan, Timing};
use naam_types::{Location, PerLocation};

use crate::error::ResultsError;
use crate::raw::{
    IpipeRecord, SERVER_FILE, STEERING_FILE, ServerSummary, SteeringChange, read_json, read_jsonl,
};
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
    /// To the end of the first interval with ≥ [`SHIFTED_SHARE`] of completions at the NIC;
    /// `None` also when they were there before the hog (see `completions_before_hog`).
    pub completions_ms: Option<f64>,
    /// The last interval before the hog already had ≥ [`SHIFTED_SHARE`] of completions at the
    /// target: what follows is no reaction to the hog (on two shared cores, contention before
    /// the hog can move the load first), so no completion shift time is given.
    pub completions_before_hog: bool,
    /// To the first rule change of any kind.
    pub first_rule_change_ms: Option<f64>,
    /// Where the load shifts to: the NIC for NAAM, the host for iPipe.
    pub target: Location,
    /// How the system serving the point reacts: steering (NAAM) or migration (iPipe).
    pub mechanism: Mechanism,
}

/// How a system reacts to congestion, which names its first reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mechanism {
    /// NAAM: the controller changes the eSwitch's rules.
    Steering,
    /// iPipe: the NIC's management core migrates actors to the host.
    Migration,
}

impl Mechanism {
    /// The system's first reaction, in words (`first rule change`, `first migration`).
    pub fn first_reaction(self) -> &'static str {
        match self {
            Mechanism::Steering => "first rule change",
            Mechanism::Migration => "first migration",
        }
    }

    /// The mechanism's name in frames and digests (`steering`, `migration`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Steering => "steering",
            Mechanism::Migration => "migration",
        }
    }
}

/// A system's reaction to the hog (ms from its start; `None`: not in the measured phase).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reaction {
    /// Steering (NAAM) or migration (iPipe).
    pub mechanism: Mechanism,
    /// To its first reaction: NAAM's first rule change of any kind; iPipe's first migration of
    /// an actor to the host decided.
    pub first_ms: Option<f64>,
    /// To the end of the first interval with ≥ [`SHIFTED_SHARE`] of completions where the load
    /// went (the NIC for NAAM; the host, where migrated actors run, for iPipe).
    pub shifted_ms: Option<f64>,
    /// Completions were where the load went already before the hog (`shifted_ms` is `None`).
    pub shifted_before_hog: bool,
    /// Where the load went.
    pub target: Location,
}

impl ShiftTimes {
    /// The system's reaction times: the one definition the frames, the digest (`naam report`,
    /// `naam status`, reproduce's end summary) and the figure's footnote read.
    pub fn reaction(&self) -> Reaction {
        let first_ms = match self.mechanism {
            Mechanism::Steering => self.first_rule_change_ms,
            Mechanism::Migration => self.rules_ms,
        };
        Reaction {
            mechanism: self.mechanism,
            first_ms,
            shifted_ms: self.completions_ms,
            shifted_before_hog: self.completions_before_hog,
            target: self.target,
        }
    }
}

/// A completion shift time in words: `40 ms`, `never`, or `before the hog`.
pub fn shifted_text(shifted_ms: Option<f64>, before_hog: bool) -> String {
    match shifted_ms {
        _ if before_hog => "before the hog".to_string(),
        Some(ms) => format!("{ms:.0} ms"),
        None => "never".to_string(),
    }
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
    let by_interval = completions_by_interval(dir, plan.roles.clients, interval_ms)?;
    if let Some(record) = ipipe_record(dir)? {
        let shifted = |to_host: bool| migration_ms(&record, hog_start_ms, to_host);
        let before = at_target_before(&by_interval, hog_start_ms, interval_ms, Location::Host);
        return Ok(Some(ShiftTimes {
            hog_start_ms,
            rules_ms: shifted(true),
            completions_ms: completions_shift_to_ms(
                &by_interval,
                hog_start_ms,
                interval_ms,
                Location::Host,
            )
            .filter(|_| !before),
            completions_before_hog: before,
            first_rule_change_ms: [shifted(true), shifted(false)]
                .into_iter()
                .flatten()
                .reduce(f64::min),
            target: Location::Host,
            mechanism: Mechanism::Migration,
        }));
    }
    let steering_path = dir.join(STEERING_FILE);
    let changes: Vec<SteeringChange> = if steering_path.exists() {
        read_jsonl(&steering_path, "steering change")?
    } else {
        Vec::new()
    };
    let before = at_target_before(&by_interval, hog_start_ms, interval_ms, Location::Nic);
    Ok(Some(ShiftTimes {
        hog_start_ms,
        rules_ms: rules_shift_ms(&changes, hog_start_ms),
        completions_ms: completions_shift_ms(&by_interval, hog_start_ms, interval_ms)
            .filter(|_| !before),
        completions_before_hog: before,
        first_rule_change_ms: first_change_ms(&changes, hog_start_ms),
        target: Location::Nic,
        mechanism: Mechanism::Steering,
    }))
}

/// The iPipe record of the point in `dir`, if iPipe served it.
fn ipipe_record(dir: &Path) -> Result<Option<IpipeRecord>, ResultsError> {
    let path = dir.join(SERVER_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let server: ServerSummary = read_json(&path, "server")?;
    Ok(server.ipipe)
}

/// Hog start → the first migration (to the host if `to_host`, else back) decided at or after it.
pub fn migration_ms(record: &IpipeRecord, hog_start_ms: u64, to_host: bool) -> Option<f64> {
    let hog_ns = i64::try_from(hog_start_ms.saturating_mul(1_000_000)).ok()?;
    record
        .migrations
        .iter()
        .find(|m| m.to_host == to_host && m.started_ns >= hog_ns)
        .map(|m| (m.started_ns - hog_ns) as f64 / 1e6)
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
    completions_shift_to_ms(by_interval, hog_start_ms, interval_ms, Location::Nic)
}

/// Hog start → the end of the first interval starting at or after it in which at least
/// [`SHIFTED_SHARE`] of completions ran at `target`.
pub fn completions_shift_to_ms(
    by_interval: &BTreeMap<u64, PerLocation<u64>>,
    hog_start_ms: u64,
    interval_ms: u64,
    target: Location,
) -> Option<f64> {
    by_interval
        .range(hog_start_ms..)
        .find_map(|(&start_ms, counts)| {
            let total = counts.total();
            let shifted = total > 0 && counts[target] as f64 >= SHIFTED_SHARE * total as f64;
            shifted.then(|| (start_ms + interval_ms - hog_start_ms) as f64)
        })
}

/// Whether the last interval that ends by the hog's start (and completed anything) had
/// ≥ [`SHIFTED_SHARE`] of its completions at `target`.
pub fn at_target_before(
    by_interval: &BTreeMap<u64, PerLocation<u64>>,
    hog_start_ms: u64,
    interval_ms: u64,
    target: Location,
) -> bool {
    let Some(last_start_ms) = hog_start_ms.checked_sub(interval_ms) else {
        return false;
    };
    by_interval
        .range(..=last_start_ms)
        .rev()
        .find(|(_, c)| c.total() > 0)
        .is_some_and(|(_, c)| c[target] as f64 >= SHIFTED_SHARE * c.total() as f64)
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

    /// Seen on the two-core VM: contention before the hog had moved the load to the NIC, and
    /// the first interval after the hog was counted as the NIC taking over "20 ms" after it.
    #[test]
    fn completions_already_at_the_target_before_the_hog_are_no_shift() {
        let hog_start_ms = 100;
        let before = BTreeMap::from([
            (0, counts(100, 0)),
            (60, counts(5, 95)),
            (80, counts(0, 0)),
            (100, counts(2, 98)),
        ]);
        assert!(at_target_before(&before, hog_start_ms, 20, Location::Nic));
        assert!(!at_target_before(&before, hog_start_ms, 20, Location::Host));
        let mut host_first = before.clone();
        host_first.insert(60, counts(60, 40));
        assert!(!at_target_before(
            &host_first,
            hog_start_ms,
            20,
            Location::Nic
        ));
        assert_eq!(
            completions_shift_ms(&host_first, hog_start_ms, 20),
            Some(20.0)
        );
        assert!(
            !at_target_before(&before, 10, 20, Location::Nic),
            "no interval ends before a hog at 10 ms"
        );
        assert_eq!(shifted_text(Some(20.0), true), "before the hog");
        assert_eq!(shifted_text(Some(20.0), false), "20 ms");
        assert_eq!(shifted_text(None, false), "never");
    }

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

    #[test]
    fn an_ipipe_shift_is_a_migration_to_the_host_and_completions_there() {
        let migration = |started_ms: i64, to_host| crate::raw::MigrationRecord {
            actor: 0,
            to_host,
            started_ns: started_ms * 1_000_000,
            finished_ns: started_ms * 1_000_000 + 500_000,
            bytes: 1 << 20,
            requests: 3,
        };
        let record = IpipeRecord {
            migrations: vec![
                migration(-50, true),
                migration(20, false),
                migration(130, true),
            ],
            ..IpipeRecord::default()
        };
        assert_eq!(migration_ms(&record, 100, true), Some(30.0));
        assert_eq!(migration_ms(&record, 10, false), Some(10.0));
        assert_eq!(migration_ms(&record, 200, true), None);
        let by_interval = BTreeMap::from([(100, counts(50, 50)), (200, counts(95, 5))]);
        let to_host = completions_shift_to_ms(&by_interval, 100, 100, Location::Host);
        assert_eq!(to_host, Some(200.0));
    }

    #[test]
    fn reactions_name_each_system_first_move_and_its_shift() {
        let naam = ShiftTimes {
            hog_start_ms: 100,
            rules_ms: Some(60.0),
            completions_ms: Some(90.0),
            completions_before_hog: false,
            first_rule_change_ms: Some(20.0),
            target: Location::Nic,
            mechanism: Mechanism::Steering,
        };
        let reaction = naam.reaction();
        assert_eq!(reaction.first_ms, Some(20.0), "NAAM: the first rule change");
        assert_eq!(reaction.shifted_ms, Some(90.0));
        let ipipe = ShiftTimes {
            first_rule_change_ms: Some(5.0),
            rules_ms: Some(30.0),
            target: Location::Host,
            mechanism: Mechanism::Migration,
            ..naam
        };
        let reaction = ipipe.reaction();
        assert_eq!(
            reaction.first_ms,
            Some(30.0),
            "iPipe: the first migration to the host"
        );
        assert_eq!(reaction.mechanism.first_reaction(), "first migration");
        assert_eq!(reaction.target, Location::Host);
    }
}
