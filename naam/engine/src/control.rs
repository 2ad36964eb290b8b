//! The controller: feeds timestamped load samples to a [`Policy`] and turns its decisions into
//! timestamped rule changes (and pushback settings) for the eSwitch and the executors.
//!
//! Server-side policies see host and NIC samples ([`LoadSample`], sent every millisecond or so by
//! the roles); client-side policies (Kayak, Cell) see [`ClientSample`]s from the client's own
//! measurements. The controller keeps the last sample of each kind, asks the policy after every
//! sample, and records every change it makes (bounded history).

use std::collections::VecDeque;
use std::fmt;

use crate::ids::{Location, Nanos};
use crate::steer::{RuleError, RuleKey, RuleTable, Shares};
use crate::wire::LoadSample;

/// Rule changes a controller remembers (older ones are dropped and counted): a recent history
/// for inspection and tests. Every change is also returned to the caller, which records it (the
/// host role streams `steering.jsonl`); a longer history only grew the host's memory (a soak
/// under overload makes ~90 changes a second, 64 bytes each).
pub const CHANGES_KEPT_MAX: usize = 4096;
/// Host-worker samples a [`ServerControl`] holds between two ticks (more are dropped and
/// counted; host workers sample once per period, so this is hundreds of workers' worth).
pub const HOST_SAMPLES_PENDING_MAX: usize = 1024;

/// What a client measured over one period (input of client-side policies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientSample {
    /// End of the period.
    pub at: Nanos,
    /// Length of the period.
    pub period_ns: u64,
    /// Requests answered by the server in the period.
    pub server_completions: u64,
    /// Requests the client ran itself in the period.
    pub local_completions: u64,
    /// Mean latency of server-run requests (ns; 0 if none).
    pub server_latency_ns_mean: u64,
    /// Mean latency of client-run requests (ns; 0 if none).
    pub local_latency_ns_mean: u64,
    /// Mean round trip of one one-sided read (ns; 0 if none).
    pub read_rtt_ns_mean: u64,
    /// Mean one-sided reads per client-run request (×1000, i.e. milli-reads; 0 if none).
    pub reads_per_request_milli: u64,
}

/// The latest samples the policy decides on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadView {
    /// Latest host sample.
    pub host: Option<LoadSample>,
    /// Latest NIC sample.
    pub nic: Option<LoadSample>,
    /// Latest client sample.
    pub client: Option<ClientSample>,
}

/// What a policy wants: shares, and the Splinter-style pushback credit (None = off).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Shares of the controlled rule.
    pub shares: Shares,
    /// Executors push back messages that ran more than this many instructions.
    pub pushback_credit_insn: Option<u64>,
    /// Why (a short stable phrase, recorded in results).
    pub reason: &'static str,
}

impl fmt::Debug for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.shares)?;
        if let Some(credit) = self.pushback_credit_insn {
            write!(f, " pushback>{credit}insn")?;
        }
        write!(f, " ({})", self.reason)
    }
}

/// A steering policy. Implementations are pure functions of the samples they are fed (plus
/// their own state): no clock, no randomness, so every decision can be replayed.
pub trait Policy: Send + fmt::Debug {
    /// Stable name (`naam-adaptive`, `kayak`, ...), recorded in results.
    fn name(&self) -> &'static str;
    /// The decision in force before any sample.
    fn initial(&self) -> Decision;
    /// Called after each sample; returns a new decision if it changes anything.
    fn decide(&mut self, now: Nanos, view: &LoadView, current: &Decision) -> Option<Decision>;
}

/// One change the controller made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleChange {
    /// When (the sample's time).
    pub at: Nanos,
    /// Which rule.
    pub key: RuleKey,
    /// Shares before.
    pub before: Shares,
    /// Shares after.
    pub after: Shares,
    /// Pushback credit after.
    pub pushback_credit_insn: Option<u64>,
    /// The policy's reason.
    pub reason: &'static str,
}

/// Runs a policy over samples.
#[derive(Debug)]
pub struct Controller {
    policy: Box<dyn Policy>,
    key: RuleKey,
    view: LoadView,
    current: Decision,
    changes: VecDeque<RuleChange>,
    changes_dropped: u64,
}

impl Controller {
    /// A controller of the rule `key` (usually [`RuleKey::DEFAULT`]).
    pub fn new(policy: Box<dyn Policy>, key: RuleKey) -> Controller {
        let current = policy.initial();
        Controller {
            policy,
            key,
            view: LoadView::default(),
            current,
            changes: VecDeque::new(),
            changes_dropped: 0,
        }
    }

    /// The policy's name.
    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// The rule it controls.
    pub fn key(&self) -> RuleKey {
        self.key
    }

    /// The decision in force.
    pub fn current(&self) -> Decision {
        self.current
    }

    /// The latest samples.
    pub fn view(&self) -> &LoadView {
        &self.view
    }

    /// Feeds a host or NIC sample (samples without a server location are ignored).
    pub fn on_sample(&mut self, sample: LoadSample) -> Option<RuleChange> {
        match sample.location {
            Some(Location::Host) => self.view.host = Some(sample),
            Some(Location::Nic) => self.view.nic = Some(sample),
            _ => return None,
        }
        self.decide(sample.at)
    }

    /// Feeds a client sample.
    pub fn on_client_sample(&mut self, sample: ClientSample) -> Option<RuleChange> {
        self.view.client = Some(sample);
        self.decide(sample.at)
    }

    /// Every change so far (oldest first; at most [`CHANGES_KEPT_MAX`]).
    pub fn changes(&self) -> &VecDeque<RuleChange> {
        &self.changes
    }

    /// Changes dropped from the front of the history.
    pub fn changes_dropped(&self) -> u64 {
        self.changes_dropped
    }

    fn decide(&mut self, now: Nanos) -> Option<RuleChange> {
        let next = self.policy.decide(now, &self.view, &self.current)?;
        if next.shares == self.current.shares
            && next.pushback_credit_insn == self.current.pushback_credit_insn
        {
            return None;
        }
        let change = RuleChange {
            at: now,
            key: self.key,
            before: self.current.shares,
            after: next.shares,
            pushback_credit_insn: next.pushback_credit_insn,
            reason: next.reason,
        };
        self.current = next;
        if self.changes.len() >= CHANGES_KEPT_MAX {
            self.changes.pop_front();
            self.changes_dropped += 1;
        }
        self.changes.push_back(change);
        Some(change)
    }
}

/// What the controller publishes to the server workers: the server-side pushback share (also the
/// hint every reply carries) and the Splinter-style pushback credit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Messages whose steering bucket is below this (permille) are pushed back to the client.
    pub client_permille: u16,
    /// Messages that ran more than this many instructions are pushed back at their next step.
    pub pushback_credit_insn: Option<u64>,
}

impl WorkerSettings {
    /// The settings a decision implies.
    pub fn of(decision: &Decision) -> WorkerSettings {
        WorkerSettings {
            client_permille: decision.shares.of(Location::Client),
            pushback_credit_insn: decision.pushback_credit_insn,
        }
    }
}

/// Window over which the stall-tolerant rule measures a worker's starvation (ns).
pub const STARVATION_WINDOW_NS: u64 = 100_000_000;
/// Share of [`STARVATION_WINDOW_NS`] (permille) a worker must have been silent beyond its
/// allowance before its silence counts as queueing delay under the stall-tolerant rule.
///
/// Measured on the 2-core development VM (assumption about similar VMs): a thread spinning on a
/// pinned, otherwise idle vCPU loses its core for more than 4 ms once or twice a second, at most
/// ~11.5 ms (hypervisor steal) — at most ~10 % of a 100 ms window. A CPU hog sharing the host
/// worker's core takes it for 5–10 ms every ~30 ms: 15–30 % of the window.
pub const STARVED_PERMILLE_MIN: u16 = 150;
/// Ticks of starvation history kept (bounds memory whatever the period).
pub const STARVATION_TICKS_MAX: usize = 4096;

/// How a host worker's silence is read. A worker starved of CPU sends no sample and stops
/// beating; whatever waits in its queue has waited at least as long as it has been silent. But a
/// virtual machine also takes a core away for milliseconds now and then with no load at all, and
/// reading every such stall as congestion makes a policy shed load from an idle host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceRule {
    /// Silence up to this long is normal (the roles allow one period plus a worker's longest
    /// idle wait).
    pub allowance_ns: u64,
    /// Window over which starvation is measured (0: every silence beyond the allowance counts).
    pub window_ns: u64,
    /// Silence counts only while the workers were silent beyond the allowance for at least this
    /// share (permille) of the window.
    pub starved_permille_min: u16,
}

impl SilenceRule {
    /// Every silence beyond `allowance_ns` counts as queueing delay at once.
    pub fn immediate(allowance_ns: u64) -> SilenceRule {
        SilenceRule {
            allowance_ns,
            window_ns: 0,
            starved_permille_min: 0,
        }
    }

    /// Silence beyond `allowance_ns` counts only when it is persistent starvation (at least
    /// [`STARVED_PERMILLE_MIN`] of the last [`STARVATION_WINDOW_NS`]), not an isolated stall.
    pub fn stall_tolerant(allowance_ns: u64) -> SilenceRule {
        SilenceRule {
            allowance_ns,
            window_ns: STARVATION_WINDOW_NS,
            starved_permille_min: STARVED_PERMILLE_MIN,
        }
    }
}

/// One host worker's liveness as its driver saw it at a tick.
///
/// `waiting_for_cpu` tells a core taken by another task from a virtual machine's stall: the
/// driver saw requests waiting for the worker while it was runnable and its CPU clock stood
/// still since the last tick (queued behind another task on its core — a CPU hog, the server
/// compute congestion NAAM sheds from). In a VM's stall the worker either sleeps (not runnable)
/// or is running on a vCPU the hypervisor took (its CPU clock advances); an idle worker that a
/// busy machine wakes late has nothing waiting. A driver that cannot tell sets it `false` and
/// gets the [`SilenceRule`] alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// The worker's latest heartbeat.
    pub at: Nanos,
    /// The worker was runnable but not running over the last tick.
    pub waiting_for_cpu: bool,
}

impl Heartbeat {
    /// A heartbeat at `at` with no evidence of contention.
    pub fn at(at: Nanos) -> Heartbeat {
        Heartbeat {
            at,
            waiting_for_cpu: false,
        }
    }
}

/// The workers' recent starvation: per tick, how long they were silent beyond the allowance.
#[derive(Debug, Clone, Default)]
struct Starvation {
    ticks: VecDeque<(Nanos, u64)>,
    starved_ns: u64,
    last_tick_at: Option<Nanos>,
}

impl Starvation {
    /// Records the tick at `now` with the workers silent `silent_ns` beyond the allowance;
    /// returns whether they were starved for at least the rule's share of its window.
    fn tick(&mut self, now: Nanos, silent_ns: u64, rule: &SilenceRule) -> bool {
        let since_last_ns = self.last_tick_at.map_or(0, |at| now.since(at));
        self.last_tick_at = Some(now);
        let starved_now_ns = silent_ns.min(since_last_ns);
        if self.ticks.len() == STARVATION_TICKS_MAX {
            self.forget_oldest();
        }
        self.ticks.push_back((now, starved_now_ns));
        self.starved_ns += starved_now_ns;
        while self
            .ticks
            .front()
            .is_some_and(|&(at, _)| now.since(at) > rule.window_ns)
        {
            self.forget_oldest();
        }
        self.starved_ns * 1000 >= u64::from(rule.starved_permille_min) * rule.window_ns
    }

    fn forget_oldest(&mut self) {
        if let Some((_, ns)) = self.ticks.pop_front() {
            self.starved_ns -= ns;
        }
    }
}

/// The host's load as the policy sees it: the host workers' samples since the last tick,
/// aggregated, with their heartbeats read by a [`SilenceRule`].
#[derive(Debug, Clone)]
pub struct HostLoad {
    pending: Vec<LoadSample>,
    dropped: u64,
    period_ns: u64,
    silence: SilenceRule,
    starvation: Starvation,
}

impl HostLoad {
    /// Aggregates over `period_ns`; a worker silent longer than `silence_allowance_ns` counts as
    /// congested at once ([`SilenceRule::immediate`]).
    pub fn new(period_ns: u64, silence_allowance_ns: u64) -> HostLoad {
        HostLoad::with_silence_rule(period_ns, SilenceRule::immediate(silence_allowance_ns))
    }

    /// Aggregates over `period_ns`, reading silence by `silence`.
    pub fn with_silence_rule(period_ns: u64, silence: SilenceRule) -> HostLoad {
        HostLoad {
            pending: Vec::with_capacity(HOST_SAMPLES_PENDING_MAX),
            dropped: 0,
            period_ns,
            silence,
            starvation: Starvation::default(),
        }
    }

    /// Keeps one host worker's sample until the next tick; `false` (and counted) if
    /// [`HOST_SAMPLES_PENDING_MAX`] are already waiting.
    pub fn push(&mut self, sample: LoadSample) -> bool {
        if self.pending.len() >= HOST_SAMPLES_PENDING_MAX {
            self.dropped += 1;
            return false;
        }
        self.pending.push(sample);
        true
    }

    /// Samples dropped because too many waited.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The host's sample at `now`: the largest queueing delay (or the longest silence, if larger
    /// and the silence rule counts it), summed queue lengths and completions, mean utilisation.
    /// `beats` holds each worker's latest heartbeat. `None` when no worker sampled and no
    /// silence counts.
    pub fn take(&mut self, now: Nanos, beats: &[Heartbeat]) -> Option<LoadSample> {
        let silent_ns = self.counted_silence_ns(now, beats);
        if self.pending.is_empty() && silent_ns == 0 {
            return None;
        }
        let drained = &self.pending;
        let n = drained.len().max(1) as u64;
        let sample = LoadSample {
            at: now,
            location: Some(Location::Host),
            queue_delay_ns: drained
                .iter()
                .map(|s| s.queue_delay_ns)
                .max()
                .unwrap_or(0)
                .max(silent_ns),
            utilisation_permille: (drained
                .iter()
                .map(|s| u64::from(s.utilisation_permille))
                .sum::<u64>()
                / n) as u16,
            queue_len: drained.iter().map(|s| s.queue_len).sum(),
            completions: drained.iter().map(|s| s.completions).sum(),
            period_ns: self.period_ns,
        };
        self.pending.clear();
        Some(sample)
    }

    /// The longest silence beyond the allowance at `now` if it counts, else 0. A silent worker
    /// seen waiting for a CPU counts at once (its core is taken: congestion); other silence
    /// counts when the rule says so.
    fn counted_silence_ns(&mut self, now: Nanos, beats: &[Heartbeat]) -> u64 {
        let allowance_ns = self.silence.allowance_ns;
        let (mut silent_ns, mut contended_ns) = (0, 0);
        for beat in beats {
            let quiet_ns = now.since(beat.at);
            if quiet_ns > allowance_ns {
                silent_ns = silent_ns.max(quiet_ns);
                if beat.waiting_for_cpu {
                    contended_ns = contended_ns.max(quiet_ns);
                }
            }
        }
        let beyond_ns = silent_ns.saturating_sub(allowance_ns);
        let starved = self.starvation.tick(now, beyond_ns, &self.silence);
        if starved { silent_ns } else { contended_ns }
    }
}

/// What the server's control stage did with one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The sample the policy saw (host samples aggregated over the host's workers).
    pub sample: LoadSample,
    /// The rule change it made, if any (already in the stage's rule table unless `rule_error`).
    pub change: Option<RuleChange>,
    /// Why the change could not be written into the rule table, if it could not.
    pub rule_error: Option<RuleError>,
}

/// The server's control stage: the controller and its policy, the full rule table the eSwitch
/// holds (the policy's rule plus fixed rules, e.g. host-native writes always at the host), and
/// the host's load aggregation, ticking every sampling period. Drivers feed it samples and
/// heartbeats, mirror [`ServerControl::rules`] into their eSwitch after every change, and publish
/// [`ServerControl::settings`] to their workers.
#[derive(Debug)]
pub struct ServerControl {
    controller: Controller,
    rules: RuleTable,
    host: HostLoad,
    period_ns: u64,
    next_tick_at: Nanos,
}

impl ServerControl {
    /// A stage started at `now` over `rules`, into which the policy's initial decision is
    /// written.
    pub fn new(
        controller: Controller,
        mut rules: RuleTable,
        host: HostLoad,
        now: Nanos,
    ) -> Result<ServerControl, RuleError> {
        rules.set(controller.key(), controller.current().shares)?;
        let period_ns = host.period_ns.max(1);
        Ok(ServerControl {
            controller,
            rules,
            host,
            period_ns,
            next_tick_at: now.plus_ns(period_ns),
        })
    }

    /// The controller (policy name, decision in force, history of changes).
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// The full rule table to mirror into the eSwitch.
    pub fn rules(&self) -> &RuleTable {
        &self.rules
    }

    /// What the workers must apply now.
    pub fn settings(&self) -> WorkerSettings {
        WorkerSettings::of(&self.controller.current())
    }

    /// Host samples dropped because too many waited between ticks.
    pub fn host_samples_dropped(&self) -> u64 {
        self.host.dropped()
    }

    /// A host worker's sample, kept for the next tick (`false` if dropped).
    pub fn on_host_sample(&mut self, sample: LoadSample) -> bool {
        self.host.push(sample)
    }

    /// A NIC sample: the policy sees it at once.
    pub fn on_nic_sample(&mut self, sample: LoadSample) -> Observed {
        self.observe(sample)
    }

    /// When [`ServerControl::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Nanos {
        self.next_tick_at
    }

    /// The period's tick: aggregates the host's samples and heartbeats (`beats`, each host
    /// worker's latest) and lets the policy decide. `None` before the tick is due, or when there
    /// was nothing to see.
    pub fn handle_timeout(&mut self, now: Nanos, beats: &[Heartbeat]) -> Option<Observed> {
        if now < self.next_tick_at {
            return None;
        }
        self.next_tick_at = now.plus_ns(self.period_ns);
        let sample = self.host.take(now, beats)?;
        Some(self.observe(sample))
    }

    fn observe(&mut self, sample: LoadSample) -> Observed {
        let change = self.controller.on_sample(sample);
        let rule_error = change.and_then(|c| self.rules.set(c.key, c.after).err());
        Observed {
            sample,
            change,
            rule_error,
        }
    }
}
