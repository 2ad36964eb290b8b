//! Counters an executor keeps: per function (by dense slot), per tenant, and per sampling period.

use std::collections::HashMap;

use crate::ids::Location;
use crate::ids::{Nanos, TenantId};
use crate::wire::{ErrorKind, LoadSample};

/// Counters of one function at one executor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FunctionCounters {
    /// Messages that named the function.
    pub invocations: u64,
    /// Steps run.
    pub steps: u64,
    /// `NAAM_RETRY` restarts.
    pub retries: u64,
    /// VM traps.
    pub traps: u64,
    /// Accesses denied by the region check.
    pub denials: u64,
    /// Messages that ended with an error of any kind.
    pub errors: u64,
    /// Messages that ended with a reply.
    pub ok: u64,
    /// Messages pushed back to the client.
    pub pushbacks: u64,
    /// eBPF instructions executed.
    pub insn: u64,
}

/// Number of [`ErrorKind`] values (size of per-kind arrays).
pub const ERROR_KINDS: usize = 10;

/// Everything an executor counted since it was created.
#[derive(Clone, Debug, Default)]
pub struct ExecutorStats {
    /// Messages submitted.
    pub submitted: u64,
    /// Messages that ended with a reply.
    pub ok: u64,
    /// Messages pushed back.
    pub pushbacks: u64,
    /// Messages that ended in an error, by [`ErrorKind::code`] − 1.
    pub errors: [u64; ERROR_KINDS],
    /// Steps run.
    pub steps: u64,
    /// Retries.
    pub retries: u64,
    /// VM traps.
    pub traps: u64,
    /// Denied accesses.
    pub denials: u64,
    /// eBPF instructions executed.
    pub insn: u64,
    /// Per function, indexed by [`crate::function::FunctionEntry::slot`].
    pub functions: Vec<FunctionCounters>,
    /// Denied accesses per requesting tenant.
    pub denials_by_tenant: HashMap<TenantId, u64>,
}

impl ExecutorStats {
    /// Messages that ended in an error of `kind`.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors[usize::from(kind.code()) - 1]
    }

    /// Messages that ended, whatever the outcome.
    pub fn completed(&self) -> u64 {
        self.ok + self.pushbacks + self.errors.iter().sum::<u64>()
    }

    /// The counters of the function in dense slot `slot`, the table grown to hold it.
    ///
    /// The common case returns at once: with the grow call on the same path as the index, the
    /// index's bounds were tested twice (the length is read again after the call).
    #[inline]
    pub(crate) fn function(&mut self, slot: u32) -> &mut FunctionCounters {
        let index = slot as usize;
        if index < self.functions.len() {
            return &mut self.functions[index];
        }
        self.grow_functions(index)
    }

    /// Out of line and cold: a function's first message grows the table once, and the inlined
    /// resize made every step's path carry its registers and frame.
    #[cold]
    #[inline(never)]
    fn grow_functions(&mut self, index: usize) -> &mut FunctionCounters {
        self.functions
            .resize(index + 1, FunctionCounters::default());
        &mut self.functions[index]
    }

    pub(crate) fn count_error(&mut self, kind: ErrorKind) {
        self.errors[usize::from(kind.code()) - 1] += 1;
    }
}

/// Load accumulated over one sampling period, turned into a [`LoadSample`] by
/// [`PeriodLoad::take`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PeriodLoad {
    started_at: Nanos,
    queue_delay_ns_sum: u64,
    queue_delay_count: u64,
    completions: u64,
}

impl PeriodLoad {
    pub(crate) fn record_queue_delay(&mut self, delay_ns: u64) {
        self.queue_delay_ns_sum = self.queue_delay_ns_sum.saturating_add(delay_ns);
        self.queue_delay_count += 1;
    }

    pub(crate) fn record_completion(&mut self) {
        self.completions += 1;
    }

    /// Ends the period at `now`; `busy_ns` is the workers' busy time in it (the role measures
    /// it: the engine has no clock), `queue_len` the messages waiting now and
    /// `oldest_waiting_ns` the age of the oldest of them. The sample's queueing delay is the mean
    /// delay of messages started in the period, or the oldest waiter's age if larger: under
    /// overload few messages start, and those that wait must still count.
    pub(crate) fn take(
        &mut self,
        now: Nanos,
        location: Location,
        busy_ns: u64,
        queue_len: u32,
        oldest_waiting_ns: u64,
    ) -> LoadSample {
        let period_ns = now.since(self.started_at).max(1);
        let mean_ns = self
            .queue_delay_ns_sum
            .checked_div(self.queue_delay_count)
            .unwrap_or(0);
        let queue_delay_ns = mean_ns.max(oldest_waiting_ns);
        let utilisation_permille = (busy_ns.saturating_mul(1000) / period_ns).min(1000) as u16;
        let sample = LoadSample {
            at: now,
            location: Some(location),
            queue_delay_ns,
            utilisation_permille,
            queue_len,
            completions: self.completions,
            period_ns,
        };
        *self = PeriodLoad {
            started_at: now,
            ..PeriodLoad::default()
        };
        sample
    }
}

/// Counters snapshot at the boundaries of a measured phase `[start, end)`, so that what happened
/// in warm-up (or after the end) never counts. Generic over the snapshot (`T` = plain counters).
#[derive(Clone, Copy, Debug)]
pub struct PhaseWindow<T> {
    bounds: Option<(Nanos, Nanos)>,
    at_start: Option<T>,
    at_end: Option<T>,
}

impl<T> Default for PhaseWindow<T> {
    fn default() -> Self {
        PhaseWindow {
            bounds: None,
            at_start: None,
            at_end: None,
        }
    }
}

impl<T: Copy> PhaseWindow<T> {
    /// Sets the phase (it may become known after the counters started, e.g. when a launcher
    /// writes a point's timeline once the servers are ready).
    pub fn set(&mut self, start: Nanos, end: Nanos) {
        self.bounds = Some((start, end.max(start)));
    }

    /// The first boundary not yet snapshot, if the phase is known.
    pub fn next_boundary(&self) -> Option<Nanos> {
        let (start, end) = self.bounds?;
        if self.at_start.is_none() {
            Some(start)
        } else if self.at_end.is_none() {
            Some(end)
        } else {
            None
        }
    }

    /// True when `now` has reached a boundary not yet snapshot.
    pub fn is_due(&self, now: Nanos) -> bool {
        self.next_boundary().is_some_and(|b| now >= b)
    }

    /// Snapshots `counters` for every boundary `now` has reached.
    pub fn observe(&mut self, now: Nanos, counters: T) {
        let Some((start, end)) = self.bounds else {
            return;
        };
        if self.at_start.is_none() && now >= start {
            self.at_start = Some(counters);
        }
        if self.at_end.is_none() && now >= end {
            self.at_end = Some(counters);
        }
    }

    /// The phase's counters, `end − start` by `minus`; a boundary not reached (a phase not yet
    /// begun, or cut short) is taken at `last`.
    pub fn measured(&self, last: T, minus: impl Fn(&T, &T) -> T) -> T {
        let start = self.at_start.unwrap_or(last);
        minus(&self.at_end.unwrap_or(last), &start)
    }
}
