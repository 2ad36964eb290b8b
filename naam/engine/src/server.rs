//! The server worker: everything one host or NIC worker does, as a sans-IO state machine.
//!
//! A driver (a worker thread of the host or NIC role, the virtual-clock test world, the
//! simulator) owns the socket, the clock and the data path. It
//!
//! 1. hands every received datagram to [`ServerWorker::handle_datagram`] with its arrival time
//!    and a *source token* naming the sender (the driver maps tokens to addresses);
//! 2. performs the accesses [`ServerWorker::poll_access`] hands out its own way — a copy from host
//!    memory, a DMA that completes after a delay, an RDMA read — and hands the bytes back with
//!    [`ServerWorker::complete_access`]; performs host-native calls ([`ServerWorker::poll_native`])
//!    and ends them with [`ServerWorker::complete_native`];
//! 3. runs steps ([`ServerWorker::step`] one at a time with its [`StepWork`], or
//!    [`ServerWorker::run`] for several) and tells the worker how long it was busy
//!    ([`ServerWorker::record_busy`]: the engine has no clock);
//! 4. sends the reply frames [`ServerWorker::poll_reply`] hands out to their [`ReplyTarget`];
//! 5. calls [`ServerWorker::handle_timeout`] when [`ServerWorker::poll_timeout`] is due, and
//!    forwards the [`LoadSample`] it returns to the controller; settings the controller publishes
//!    come back in through [`ServerWorker::apply`].
//!
//! The worker also keeps the measured phase's totals ([`ServerWorker::set_measured_phase`]):
//! counters snapshot at the phase's boundaries, so warm-up never counts.

use std::sync::Arc;

use crate::control::WorkerSettings;
use crate::exec::{
    AccessFailure, AccessFill, AccessId, AccessRequest, Completion, ConfigError, Executor,
    ExecutorConfig, NativeRequest, StepWork, Work,
};
use crate::function::FunctionTable;
use crate::ids::{Descriptor, Location, Nanos};
use crate::region::RegionTable;
use crate::stats::{ExecutorStats, PhaseWindow};
use crate::wire::{Frame, Invoke, LoadSample, ReplyAddr};

/// Shortest sampling period a worker accepts (ns): 10 µs.
pub const SAMPLE_PERIOD_NS_MIN: u64 = 10_000;
/// Longest sampling period a worker accepts (ns): 10 s.
pub const SAMPLE_PERIOD_NS_MAX: u64 = 10_000_000_000;
/// The source token of a sender the driver could not name (its replies cannot be delivered).
pub const SOURCE_UNKNOWN: u64 = u64::MAX;
/// Trusted forwarders a worker accepts (the user-space eSwitch's ingress, and spare room).
pub const FORWARDERS_MAX: usize = 4;

/// How a server worker is set up.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    /// Its executor (location, bounds).
    pub executor: ExecutorConfig,
    /// Period of its load samples (within [`SAMPLE_PERIOD_NS_MIN`]..=[`SAMPLE_PERIOD_NS_MAX`]).
    pub sample_period_ns: u64,
}

impl WorkerConfig {
    /// A worker at `location` with the executor's default bounds.
    pub fn new(location: Location, sample_period_ns: u64) -> WorkerConfig {
        WorkerConfig {
            executor: ExecutorConfig::new(location),
            sample_period_ns,
        }
    }
}

/// A bad worker configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkerConfigError {
    /// The executor's configuration.
    #[error(transparent)]
    Executor(#[from] ConfigError),
    /// A sampling period outside its range.
    #[error("sample_period_ns {value} outside {SAMPLE_PERIOD_NS_MIN}..={SAMPLE_PERIOD_NS_MAX}")]
    SamplePeriod {
        /// The value given.
        value: u64,
    },
    /// Client-location executors are the client endpoint's, not a server worker's.
    #[error("a server worker serves the host or the NIC, not the client")]
    ClientLocation,
}

/// What the worker made of a received datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// An Invoke, submitted to the executor (it produces exactly one reply, now or later).
    Submitted,
    /// A valid frame of a kind a worker does not serve (counted as unexpected).
    Unexpected,
    /// Not a NAAM frame (counted as malformed).
    Malformed,
}

/// Where a reply frame goes.
///
/// No reflection: a reply goes back to the datagram's sender. A reply address written inside a
/// message is honoured only when the message came from a trusted forwarder the driver named at
/// start ([`ServerWorker::trust_forwarder`]: the user-space eSwitch, which writes the client's
/// source address there), or when the driver vouches for it ([`Sender::reply_to_vouched`]: the
/// roles vouch for an address on the datagram's own source host, since a client sends each
/// message from the UDP source port that carries its steering key and names the port it
/// receives on); from anyone else it is ignored and counted ([`WorkerTotals::reply_to_refused`]),
/// so a forged request cannot aim replies at a third party's host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyTarget {
    /// The reply address a trusted forwarder wrote into the message.
    Addr(ReplyAddr),
    /// Back to the sender the driver named with this source token.
    Source(u64),
}

/// Who sent an Invoke, as the driver resolves it from the datagram's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sender {
    /// The driver's token for the sender ([`SOURCE_UNKNOWN`] if none); replies go back to it
    /// unless a reply address is honoured.
    pub token: u64,
    /// The driver checked the message's reply address (the argument of the resolving closure of
    /// [`ServerWorker::handle_datagram_from`]) and vouches that replies may go there.
    pub reply_to_vouched: bool,
}

/// A reply frame to send (its bytes were swapped into the caller's buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutReply {
    /// Where it goes.
    pub to: ReplyTarget,
    /// The finished message.
    pub completion: Completion,
}

/// A worker's counters as plain numbers (cheap to snapshot at the phase boundaries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerTotals {
    /// Messages completed (any outcome).
    pub completions: u64,
    /// Messages answered with a reply.
    pub ok: u64,
    /// Steps run.
    pub steps: u64,
    /// `NAAM_RETRY` restarts.
    pub retries: u64,
    /// VM traps.
    pub traps: u64,
    /// Accesses denied by the region check.
    pub access_denials: u64,
    /// Messages pushed back to the client.
    pub pushbacks: u64,
    /// eBPF instructions executed.
    pub insn: u64,
    /// Accesses handed to the data path.
    pub accesses: u64,
    /// Bytes those accesses asked for.
    pub access_bytes: u64,
    /// Busy time the driver reported.
    pub busy_ns: u64,
    /// Datagrams that were not NAAM frames.
    pub malformed: u64,
    /// Frames of a kind a worker does not serve.
    pub unexpected: u64,
    /// Invokes from a sender other than a trusted forwarder that named a reply address (ignored:
    /// the reply went back to the sender).
    pub reply_to_refused: u64,
}

impl WorkerTotals {
    /// `self − earlier`, field by field (saturating: a snapshot is never later than `self`).
    pub fn minus(&self, earlier: &WorkerTotals) -> WorkerTotals {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        WorkerTotals {
            completions: d(self.completions, earlier.completions),
            ok: d(self.ok, earlier.ok),
            steps: d(self.steps, earlier.steps),
            retries: d(self.retries, earlier.retries),
            traps: d(self.traps, earlier.traps),
            access_denials: d(self.access_denials, earlier.access_denials),
            pushbacks: d(self.pushbacks, earlier.pushbacks),
            insn: d(self.insn, earlier.insn),
            accesses: d(self.accesses, earlier.accesses),
            access_bytes: d(self.access_bytes, earlier.access_bytes),
            busy_ns: d(self.busy_ns, earlier.busy_ns),
            malformed: d(self.malformed, earlier.malformed),
            unexpected: d(self.unexpected, earlier.unexpected),
            reply_to_refused: d(self.reply_to_refused, earlier.reply_to_refused),
        }
    }

    /// Field-by-field sum.
    pub fn plus(&self, other: &WorkerTotals) -> WorkerTotals {
        WorkerTotals {
            completions: self.completions + other.completions,
            ok: self.ok + other.ok,
            steps: self.steps + other.steps,
            retries: self.retries + other.retries,
            traps: self.traps + other.traps,
            access_denials: self.access_denials + other.access_denials,
            pushbacks: self.pushbacks + other.pushbacks,
            insn: self.insn + other.insn,
            accesses: self.accesses + other.accesses,
            access_bytes: self.access_bytes + other.access_bytes,
            busy_ns: self.busy_ns + other.busy_ns,
            malformed: self.malformed + other.malformed,
            unexpected: self.unexpected + other.unexpected,
            reply_to_refused: self.reply_to_refused + other.reply_to_refused,
        }
    }
}

/// The datagram-level and time counters a worker keeps besides its executor's.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    accesses: u64,
    access_bytes: u64,
    busy_total_ns: u64,
    busy_period_ns: u64,
    malformed: u64,
    unexpected: u64,
    reply_to_refused: u64,
}

/// One host or NIC worker (see the module docs). Owns no socket, thread or clock.
pub struct ServerWorker {
    exec: Executor,
    sample_period_ns: u64,
    next_sample_at: Nanos,
    counters: Counters,
    phase: PhaseWindow<WorkerTotals>,
    forwarders: [u64; FORWARDERS_MAX],
    forwarders_len: usize,
}

impl std::fmt::Debug for ServerWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerWorker")
            .field("location", &self.exec.location())
            .field("inflight", &self.exec.inflight())
            .field("next_sample_at", &self.next_sample_at)
            .finish_non_exhaustive()
    }
}

impl ServerWorker {
    /// A worker over shared function and region tables, started at `now` (its first sample is
    /// due one period later).
    pub fn new(
        config: WorkerConfig,
        functions: Arc<FunctionTable>,
        regions: Arc<RegionTable>,
        now: Nanos,
    ) -> Result<ServerWorker, WorkerConfigError> {
        if config.executor.location == Location::Client {
            return Err(WorkerConfigError::ClientLocation);
        }
        if !(SAMPLE_PERIOD_NS_MIN..=SAMPLE_PERIOD_NS_MAX).contains(&config.sample_period_ns) {
            return Err(WorkerConfigError::SamplePeriod {
                value: config.sample_period_ns,
            });
        }
        Ok(ServerWorker {
            exec: Executor::new(config.executor, functions, regions)?,
            sample_period_ns: config.sample_period_ns,
            next_sample_at: now.plus_ns(config.sample_period_ns),
            counters: Counters::default(),
            phase: PhaseWindow::default(),
            forwarders: [SOURCE_UNKNOWN; FORWARDERS_MAX],
            forwarders_len: 0,
        })
    }

    /// The location it serves.
    pub fn location(&self) -> Location {
        self.exec.location()
    }

    /// Its executor's counters since creation.
    pub fn stats(&self) -> &ExecutorStats {
        self.exec.stats()
    }

    /// Messages in flight.
    pub fn inflight(&self) -> usize {
        self.exec.inflight()
    }

    /// Messages whose accesses are complete and that wait for a step.
    pub fn ready_len(&self) -> usize {
        self.exec.ready_len()
    }

    /// Trusts the sender with source token `token` as a forwarder: reply addresses in its
    /// messages are honoured (see [`ReplyTarget`]). Fixed at start; false when
    /// [`FORWARDERS_MAX`] are already trusted or `token` is [`SOURCE_UNKNOWN`].
    pub fn trust_forwarder(&mut self, token: u64) -> bool {
        if token == SOURCE_UNKNOWN || self.forwarders_len == FORWARDERS_MAX {
            return false;
        }
        self.forwarders[self.forwarders_len] = token;
        self.forwarders_len += 1;
        true
    }

    fn is_forwarder(&self, token: u64) -> bool {
        self.forwarders[..self.forwarders_len].contains(&token)
    }

    /// Decodes a received datagram and submits it if it is an Invoke. `arrived_at` is when it
    /// arrived (a kernel receive timestamp, or the virtual clock); `source` names its sender with
    /// the driver's token ([`SOURCE_UNKNOWN`] if none), asked only for an Invoke. The reply goes
    /// back to that sender unless it is a trusted forwarder (see [`ReplyTarget`]).
    pub fn handle_datagram(
        &mut self,
        now: Nanos,
        arrived_at: Nanos,
        bytes: &[u8],
        source: impl FnOnce() -> u64,
    ) -> Inbound {
        self.handle_datagram_from(now, arrived_at, bytes, |_| Sender {
            token: source(),
            reply_to_vouched: false,
        })
    }

    /// [`ServerWorker::handle_datagram`] with a resolver that sees the Invoke's reply address and
    /// may vouch for it ([`Sender`]).
    pub fn handle_datagram_from(
        &mut self,
        now: Nanos,
        arrived_at: Nanos,
        bytes: &[u8],
        source: impl FnOnce(Option<ReplyAddr>) -> Sender,
    ) -> Inbound {
        // Decoded in place into this local: through `Frame::decode`'s result the Invoke (≈ 300
        // bytes with its inline descriptors) was moved three times more.
        let mut invoke = Invoke::empty();
        match Frame::decode_invoke_in_place(bytes, &mut invoke) {
            Ok(true) => {
                let Sender {
                    token,
                    reply_to_vouched,
                } = source(invoke.reply_to);
                let honoured = reply_to_vouched || self.is_forwarder(token);
                if invoke.reply_to.is_some() && !honoured {
                    invoke.reply_to = None;
                    self.counters.reply_to_refused += 1;
                }
                self.exec.submit(now, arrived_at.min(now), token, &invoke);
                Inbound::Submitted
            }
            Ok(false) => {
                self.counters.unexpected += 1;
                Inbound::Unexpected
            }
            Err(_) => {
                self.counters.malformed += 1;
                Inbound::Malformed
            }
        }
    }

    /// True when [`ServerWorker::poll_access`] or [`ServerWorker::poll_reply`] would return
    /// something (a cheap check for drivers that poll after every event).
    #[inline]
    pub fn has_output(&self) -> bool {
        self.exec.has_output()
    }

    /// The next access for the driver's data path, if any (already checked against the region
    /// table).
    ///
    /// Inlined, with the executor's: out of line, the request was moved out of the queue and
    /// then out of each call's return value.
    #[inline]
    pub fn poll_access(&mut self) -> Option<AccessRequest> {
        let access = self.exec.poll_access()?;
        self.counters.accesses += 1;
        self.counters.access_bytes += u64::from(access.descriptor.len);
        Some(access)
    }

    /// True when [`ServerWorker::poll_access`] would return an access.
    #[inline]
    pub fn has_access(&self) -> bool {
        self.exec.has_access()
    }

    /// Appends every access [`ServerWorker::poll_access`] would hand out, in its order, to
    /// `out` (counted as it counts them): the driver reads them in place in its own buffer.
    #[inline]
    pub fn take_accesses_into(&mut self, out: &mut Vec<AccessRequest>) {
        let first = out.len();
        let taken = self.exec.take_accesses_into(out);
        self.counters.accesses += taken as u64;
        for access in &out[first..] {
            self.counters.access_bytes += u64::from(access.descriptor.len);
        }
    }

    /// Hands back an access's bytes (stale, duplicate or mis-sized completions are ignored and
    /// return `false`).
    pub fn complete_access(&mut self, id: AccessId, data: &[u8]) -> bool {
        self.exec.complete_access(id, data)
    }

    /// Completes an access by letting `fill` write its bytes into the message's own buffer
    /// ([`Executor::complete_access_into`]: one copy, not two).
    #[inline]
    pub fn complete_access_into(
        &mut self,
        id: AccessId,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> AccessFill {
        self.exec.complete_access_into(id, fill)
    }

    /// Reports that the data path could not serve an access; its message ends with an error.
    pub fn fail_access(&mut self, now: Nanos, id: AccessId, failure: AccessFailure) -> bool {
        self.exec.fail_access(now, id, failure)
    }

    /// The next host-native call to perform (host workers only), if any.
    pub fn poll_native(&mut self) -> Option<NativeRequest> {
        self.exec.poll_native()
    }

    /// The arguments and checked descriptors of a pending host-native call.
    pub fn native_call(&self, id: AccessId) -> Option<(&[u8], &[Descriptor])> {
        self.exec.native_call(id)
    }

    /// Ends a host-native call with its reply bytes or a function error code.
    pub fn complete_native(
        &mut self,
        now: Nanos,
        id: AccessId,
        result: Result<&[u8], u32>,
    ) -> bool {
        self.exec.complete_native(now, id, result)
    }

    /// Runs the oldest ready step, if any, and says what it did.
    pub fn step(&mut self, now: Nanos) -> Option<StepWork> {
        self.exec.step(now)
    }

    /// Runs up to `steps_max` ready steps.
    pub fn run(&mut self, now: Nanos, steps_max: usize) -> Work {
        self.exec.run_work(now, steps_max)
    }

    /// Adds `busy_ns` of the driver's measured (or modelled) busy time: it enters the next load
    /// sample's utilisation and the busy totals.
    pub fn record_busy(&mut self, busy_ns: u64) {
        self.counters.busy_total_ns += busy_ns;
        self.counters.busy_period_ns += busy_ns;
    }

    /// The next reply to send: its frame is swapped into `frame` (the worker keeps the old
    /// buffer for reuse, so steady state allocates nothing).
    ///
    /// Inlined, with the executor's: out of line, the whole completion was copied out of the
    /// queue and then out of the return value, where most drivers read only where it goes.
    #[inline]
    pub fn poll_reply(&mut self, frame: &mut Vec<u8>) -> Option<OutReply> {
        let completion = self.exec.poll_completion(frame)?;
        let to = match completion.reply_to {
            Some(addr) => ReplyTarget::Addr(addr),
            None => ReplyTarget::Source(completion.source),
        };
        Some(OutReply { to, completion })
    }

    /// When [`ServerWorker::handle_timeout`] must next be called: the next load sample, or an
    /// earlier measured-phase boundary.
    pub fn poll_timeout(&self) -> Nanos {
        self.phase
            .next_boundary()
            .map_or(self.next_sample_at, |b| b.min(self.next_sample_at))
    }

    /// Takes the measured-phase snapshots that are due and, once the sampling period has passed,
    /// ends it: the [`LoadSample`] for the controller (queueing delay, utilisation from the busy
    /// time recorded, queue length, completions).
    pub fn handle_timeout(&mut self, now: Nanos) -> Option<LoadSample> {
        if self.phase.is_due(now) {
            let totals = self.totals();
            self.phase.observe(now, totals);
        }
        if now < self.next_sample_at {
            return None;
        }
        let busy = std::mem::take(&mut self.counters.busy_period_ns);
        self.next_sample_at = now.plus_ns(self.sample_period_ns);
        Some(self.exec.take_sample(now, busy))
    }

    /// Applies the settings the controller published (pushback share, pushback credit).
    pub fn apply(&mut self, settings: WorkerSettings) {
        self.exec.set_client_permille(settings.client_permille);
        self.exec.set_pushback_credit(settings.pushback_credit_insn);
    }

    /// Sets the measured phase `[start, end)`; counters are snapshot at its boundaries (at the
    /// first [`ServerWorker::handle_timeout`] at or after each).
    pub fn set_measured_phase(&mut self, start: Nanos, end: Nanos) {
        self.phase.set(start, end);
    }

    /// Every counter since creation.
    pub fn totals(&self) -> WorkerTotals {
        let s = self.exec.stats();
        WorkerTotals {
            completions: s.completed(),
            ok: s.ok,
            steps: s.steps,
            retries: s.retries,
            traps: s.traps,
            access_denials: s.denials,
            pushbacks: s.pushbacks,
            insn: s.insn,
            accesses: self.counters.accesses,
            access_bytes: self.counters.access_bytes,
            busy_ns: self.counters.busy_total_ns,
            malformed: self.counters.malformed,
            unexpected: self.counters.unexpected,
            reply_to_refused: self.counters.reply_to_refused,
        }
    }

    /// The measured phase's counters; a phase not yet started or cut short (the worker stopped
    /// early) ends at the counters as they are now.
    pub fn measured_totals(&self) -> WorkerTotals {
        self.phase.measured(self.totals(), WorkerTotals::minus)
    }
}
