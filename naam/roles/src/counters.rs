//! Counters of the measured phase only: executors count from their start, so a worker snapshots
//! its counters when the measured phase begins and when it ends, and reports the difference
//! (warm-up excluded, as everywhere in the results).

use naam_engine::stats::ExecutorStats;
use naam_results::raw::LocationCounters;
use serde::{Deserialize, Serialize};

use crate::timeline::TimelineWatch;

/// The totals that matter, as plain numbers (cheap to snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Messages completed (any outcome).
    pub completions: u64,
    /// Messages answered with a reply.
    pub ok: u64,
    /// Steps run.
    pub steps: u64,
    /// Retries.
    pub retries: u64,
    /// Traps.
    pub traps: u64,
    /// Denied accesses.
    pub access_denials: u64,
    /// Pushbacks.
    pub pushbacks: u64,
    /// eBPF instructions.
    pub insn: u64,
    /// Worker busy time.
    pub busy_ns: u64,
}

impl Totals {
    /// The totals of `stats` plus a busy time.
    pub fn of(stats: &ExecutorStats, busy_ns: u64) -> Totals {
        Totals {
            completions: stats.completed(),
            ok: stats.ok,
            steps: stats.steps,
            retries: stats.retries,
            traps: stats.traps,
            access_denials: stats.denials,
            pushbacks: stats.pushbacks,
            insn: stats.insn,
            busy_ns,
        }
    }

    /// `self − earlier`, field by field.
    pub fn minus(&self, earlier: &Totals) -> Totals {
        Totals {
            completions: self.completions - earlier.completions,
            ok: self.ok - earlier.ok,
            steps: self.steps - earlier.steps,
            retries: self.retries - earlier.retries,
            traps: self.traps - earlier.traps,
            access_denials: self.access_denials - earlier.access_denials,
            pushbacks: self.pushbacks - earlier.pushbacks,
            insn: self.insn - earlier.insn,
            busy_ns: self.busy_ns - earlier.busy_ns,
        }
    }

    /// Field-by-field sum.
    pub fn plus(&self, other: &Totals) -> Totals {
        Totals {
            completions: self.completions + other.completions,
            ok: self.ok + other.ok,
            steps: self.steps + other.steps,
            retries: self.retries + other.retries,
            traps: self.traps + other.traps,
            access_denials: self.access_denials + other.access_denials,
            pushbacks: self.pushbacks + other.pushbacks,
            insn: self.insn + other.insn,
            busy_ns: self.busy_ns + other.busy_ns,
        }
    }

    /// The results schema's counters, with the busy fraction over `workers × phase_ns`.
    pub fn location_counters(&self, workers: u32, phase_ns: u64) -> LocationCounters {
        let capacity_ns = u64::from(workers.max(1)) * phase_ns.max(1);
        LocationCounters {
            completions: self.completions,
            steps: self.steps,
            retries: self.retries,
            traps: self.traps,
            access_denials: self.access_denials,
            pushbacks: self.pushbacks,
            busy_fraction: (self.busy_ns as f64 / capacity_ns as f64).min(1.0),
        }
    }
}

/// Snapshots taken at the phase boundaries (CLOCK_REALTIME), once the timeline is known.
#[derive(Debug, Clone)]
pub struct PhaseWindow {
    timeline: TimelineWatch,
    at_start: Option<Totals>,
    at_end: Option<Totals>,
}

impl PhaseWindow {
    /// The measured phase of `timeline` (which may become known later).
    pub fn new(timeline: TimelineWatch) -> PhaseWindow {
        PhaseWindow {
            timeline,
            at_start: None,
            at_end: None,
        }
    }

    /// Records the totals as they are at `now` (CLOCK_REALTIME ns) if a boundary has passed.
    pub fn observe(&mut self, now: u64, totals: impl FnOnce() -> Totals) {
        let Some(t) = self.timeline.get() else { return };
        let due_start = self.at_start.is_none() && now >= t.measure_start_realtime_ns();
        let due_end = self.at_end.is_none() && now >= t.measure_end_realtime_ns();
        if due_start || due_end {
            let t = totals();
            if due_start {
                self.at_start = Some(t);
            }
            if due_end {
                self.at_end = Some(t);
            }
        }
    }

    /// The measured phase's totals; a phase cut short (stopped early) ends at `last`.
    pub fn measured(&self, last: Totals) -> Totals {
        let start = self.at_start.unwrap_or(last);
        self.at_end.unwrap_or(last).minus(&start)
    }
}
