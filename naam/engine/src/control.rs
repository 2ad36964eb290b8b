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
use crate::steer::{RuleKey, Shares};
use crate::wire::LoadSample;

/// Rule changes a controller remembers (older ones are dropped and counted).
pub const CHANGES_KEPT_MAX: usize = 100_000;

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
