//! Counters of the measured phase only, as the role files carry them. The engine's server worker
//! snapshots its counters when the measured phase begins and when it ends
//! (`naam_engine::server::ServerWorker::measured_totals`); this module turns them into the files'
//! shape (warm-up excluded, as everywhere in the results).

use naam_engine::server::WorkerTotals;
use naam_results::raw::LocationCounters;
use serde::{Deserialize, Serialize};

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
    /// The file's subset of a worker's totals.
    pub fn of(totals: &WorkerTotals) -> Totals {
        Totals {
            completions: totals.completions,
            ok: totals.ok,
            steps: totals.steps,
            retries: totals.retries,
            traps: totals.traps,
            access_denials: totals.access_denials,
            pushbacks: totals.pushbacks,
            insn: totals.insn,
            busy_ns: totals.busy_ns,
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
