//! The client session: one client's load generator, workload and NAAM endpoint glued together,
//! without sockets or a clock. The client role drives it with a UDP socket and CLOCK_MONOTONIC;
//! a virtual-clock driver (tests, the simulator) drives the very same code.
//!
//! The generator ([`naam_loadgen`]) says when requests are due and records their latency from the
//! intended send time; the workload ([`ClientWorkload`]) builds each request and verifies each
//! answer; the engine's [`ClientEndpoint`] owns the request's life (where it runs, replies,
//! pushbacks, one-sided reads, timeouts, client-side policies). The session adds the accounting
//! of the client's results file: errors by kind, verification failures and misses, **counted in
//! the measured phase only** (`experiments/SCHEMA.md`: an outcome counts when it is observed at
//! or after the warm-up's end, the rule the generator's `completed` follows).
//!
//! Times are ns since the run start (the generator's convention); the endpoint sees the same
//! numbers as [`Nanos`].

use std::collections::BTreeMap;

use naam_engine::client::{Call, Carries, ClientEndpoint, Event, IssueError, Outcome, Transmit};
use naam_engine::{Nanos, Work};
use naam_loadgen::{IntervalHistogram, LoadGenerator, RunReport, SendTicket, TagId, TagSet};

use crate::workload::{ClientWorkload, Expect, Request, Verified, tenant_id};

/// What the session keeps per request in flight (the endpoint's cookie).
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    ticket: SendTicket,
    expect: Expect,
    op: &'static str,
}

/// Why a session cannot be built or run.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The parts do not fit together.
    #[error("client session: {0}")]
    Config(String),
    /// The generator refused a time (a clock that went backwards, a run too long).
    #[error("load generator: {0}")]
    Record(#[from] naam_loadgen::RecordError),
}

/// The phases of a session's run, ns since the run start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimes {
    /// End of the warm-up (start of the measured phase).
    pub warmup_ns: u64,
    /// End of the measured phase (nothing is sent after it).
    pub end_ns: u64,
    /// After the last send, how long requests in flight may still complete.
    pub drain_grace_ns: u64,
}

/// Counts of the measured phase (and what warm-up saw, for the log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Failed requests by kind.
    pub errors: BTreeMap<&'static str, u64>,
    /// Answers that failed verification.
    pub verify_failures: u64,
    /// Verified misses of a lossy store (correct answers).
    pub misses: u64,
    /// Datagrams that were not replies or read replies.
    pub malformed_replies: u64,
    /// The first verification failure (measured phase), described.
    pub first_verify_failure: Option<String>,
}

/// A finished session: the generator's report and the measured phase's counts.
#[derive(Debug)]
pub struct SessionReport {
    /// Rate accounting, verdict, the last intervals.
    pub run: RunReport,
    /// Errors by kind (including `malformed-reply` and `unanswered-at-end`).
    pub errors: BTreeMap<String, u64>,
    /// Measured phase counts.
    pub measured: Counts,
    /// Warm-up counts (never in results; printed in the client's log).
    pub warmup: Counts,
    /// The key distribution that ran.
    pub distribution: &'static str,
}

/// The window's share of a run's send lateness, for `client-<k>.json`; `None` when the window
/// never held a measured send back (the file then reads as before).
pub fn window_hold(rate: &naam_loadgen::RateReport) -> Option<naam_results::raw::WindowHold> {
    (rate.window_delayed_sends > 0).then_some(naam_results::raw::WindowHold {
        send_lateness_own_ns_p99: rate.send_lateness_own_ns_p99,
        full_ns: rate.window_full_ns,
        delayed_sends: rate.window_delayed_sends,
    })
}

/// One client's load, requests and their accounting (see the module docs).
pub struct ClientSession {
    generator: LoadGenerator,
    workload: Box<dyn ClientWorkload>,
    endpoint: ClientEndpoint<Pending>,
    tags: [TagId; 3],
    times: SessionTimes,
    request: Request,
    counts: PhaseCounts,
    drain_deadline_ns: Option<u64>,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("endpoint", &self.endpoint)
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A session over its parts. The generator records under [`TagSet::locations`] tags; the
    /// endpoint must admit at least as many requests in flight as the generator sends.
    pub fn new(
        generator: LoadGenerator,
        workload: Box<dyn ClientWorkload>,
        endpoint: ClientEndpoint<Pending>,
        times: SessionTimes,
    ) -> Result<ClientSession, SessionError> {
        let tags = TagSet::locations();
        let tag = |name: &str| {
            tags.id(name)
                .ok_or_else(|| SessionError::Config(format!("no tag {name}")))
        };
        let tags = [tag("host")?, tag("nic")?, tag("client")?];
        if times.warmup_ns > times.end_ns {
            return Err(SessionError::Config(format!(
                "warm-up ends at {} ns, after the run's end at {} ns",
                times.warmup_ns, times.end_ns
            )));
        }
        Ok(ClientSession {
            generator,
            workload,
            endpoint,
            tags,
            times,
            request: Request::default(),
            counts: PhaseCounts {
                warmup_ns: times.warmup_ns,
                measured: Counts::default(),
                warmup: Counts::default(),
            },
            drain_deadline_ns: None,
        })
    }

    /// The endpoint (its share, counters, requests in flight).
    pub fn endpoint(&self) -> &ClientEndpoint<Pending> {
        &self.endpoint
    }

    /// The endpoint, for settings the driver knows (e.g. a static client placement).
    pub fn endpoint_mut(&mut self) -> &mut ClientEndpoint<Pending> {
        &mut self.endpoint
    }

    /// The measured phase's counts so far.
    pub fn measured(&self) -> &Counts {
        &self.counts.measured
    }

    /// Issues every request due at `now_ns`; returns how many.
    pub fn poll_send(&mut self, now_ns: u64) -> Result<usize, SessionError> {
        let mut issued = 0;
        while let Some(ticket) = self.generator.poll_send(now_ns)? {
            self.issue(ticket, now_ns);
            issued += 1;
        }
        self.drain_events(now_ns);
        Ok(issued)
    }

    /// True when [`ClientSession::poll_transmit`] would return a transmit.
    #[inline]
    pub fn has_transmit(&self) -> bool {
        self.endpoint.has_transmit()
    }

    /// The next frame to send (bytes swapped into `out`). Inline: a driver calls it per datagram
    /// sent, and it forwards to the endpoint.
    #[inline]
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<Transmit> {
        self.endpoint.poll_transmit(out)
    }

    /// The driver could not send a transmit.
    pub fn transmit_failed(&mut self, now_ns: u64, carries: Carries) {
        self.endpoint.transmit_failed(Nanos(now_ns), carries);
        self.drain_events(now_ns);
    }

    /// A datagram received at `now_ns`. Inline: a forward, once per reply.
    #[inline]
    pub fn handle_datagram(&mut self, now_ns: u64, bytes: &[u8]) {
        self.handle_datagram_arrived(now_ns, now_ns, bytes);
    }

    /// A datagram that arrived at `arrived_ns` (e.g. its kernel receive timestamp, at or before
    /// `now_ns`) and is handled at `now_ns`: a reply it completes measures its latency to the
    /// arrival (a driver that reads in batches adds nothing), and counts at `now_ns`.
    pub fn handle_datagram_arrived(&mut self, now_ns: u64, arrived_ns: u64, bytes: &[u8]) {
        let arrived_ns = arrived_ns.min(now_ns);
        let mut books = Books {
            generator: &mut self.generator,
            workload: &*self.workload,
            tags: self.tags,
            counts: &mut self.counts,
        };
        // Every request the datagram ends (and any ended before) is booked here, a reply's
        // payload read in place.
        let inbound = self
            .endpoint
            .handle_datagram_with(Nanos(now_ns), bytes, |event, payload| {
                books.on_event(now_ns, arrived_ns, event, payload);
            });
        if inbound == naam_engine::client::Inbound::Malformed {
            self.counts.at(now_ns).malformed_replies += 1;
        }
    }

    /// True when a request is due at `now_ns` and a slot is free to send it.
    pub fn send_due(&self, now_ns: u64) -> bool {
        self.generator.next_send_ns().is_some_and(|t| t <= now_ns)
    }

    /// True while the generator's in-flight window is full: only a completion lets it send.
    pub fn waits_for_slot(&self) -> bool {
        self.generator.window_full()
    }

    /// True while local steps are ready.
    pub fn local_ready(&self) -> bool {
        self.endpoint.local_ready()
    }

    /// True while client-side steps wait for one-sided read replies (the driver should then wake
    /// for every datagram; otherwise replies can wait for its next send).
    pub fn awaits_reads(&self) -> bool {
        self.endpoint.reads_in_flight() > 0
    }

    /// Runs up to `steps_max` local steps at `now_ns`.
    pub fn run_local(&mut self, now_ns: u64, steps_max: usize) -> Work {
        let work = self.endpoint.run_local(Nanos(now_ns), steps_max);
        self.drain_events(now_ns);
        work
    }

    /// Timeouts and client-side policy ticks due at `now_ns`. Inline: a driver calls it at every
    /// wake-up, and few are due (a sweep every few ms).
    #[inline]
    pub fn handle_timeout(&mut self, now_ns: u64) {
        if now_ns >= self.endpoint.poll_timeout().0 {
            self.handle_timeout_due(now_ns);
        }
    }

    /// [`ClientSession::handle_timeout`]'s work, when something is due.
    #[inline(never)]
    fn handle_timeout_due(&mut self, now_ns: u64) {
        self.endpoint.handle_timeout(Nanos(now_ns));
        self.drain_events(now_ns);
    }

    /// When the session next needs the driver: the next send or timer, ns since the run start
    /// (`None`: only datagrams can wake it). Inline: the simulator asks after every client
    /// round (twice per request), a few compares.
    #[inline]
    pub fn next_wakeup_ns(&self) -> Option<u64> {
        let timer = self.endpoint.poll_timeout().0;
        Some(
            self.generator
                .next_send_ns()
                .map_or(timer, |t| t.min(timer)),
        )
    }

    /// True when [`ClientSession::poll_interval`] at `now_ns` would return an interval.
    #[inline]
    pub fn interval_due(&self, now_ns: u64) -> bool {
        self.generator.interval_due(now_ns)
    }

    /// Closes the generator's intervals up to `now_ns` and returns the oldest not yet taken.
    pub fn poll_interval(
        &mut self,
        now_ns: u64,
    ) -> Result<Option<IntervalHistogram>, SessionError> {
        Ok(self.generator.poll_interval(now_ns)?)
    }

    /// True once the run is over: nothing more will be sent and every request has ended (or the
    /// drain grace after the last send has passed), or the measured phase's end plus the grace
    /// has passed however far behind the generator is. Inline: the simulator asks after every
    /// client round (twice per request), and the first compare mostly answers.
    #[inline]
    pub fn is_finished(&mut self, now_ns: u64) -> bool {
        let grace = self.times.drain_grace_ns;
        if now_ns >= self.times.end_ns.saturating_add(grace) {
            return true;
        }
        if !self.generator.is_done(now_ns) {
            return false;
        }
        let deadline = *self
            .drain_deadline_ns
            .get_or_insert(now_ns.saturating_add(grace));
        self.endpoint.inflight() == 0 || now_ns >= deadline
    }

    /// Ends the run at `end_ns`: the generator's report and the measured phase's counts.
    pub fn finish(self, end_ns: u64) -> Result<SessionReport, SessionError> {
        let run = self.generator.finish(end_ns)?;
        let mut errors: BTreeMap<String, u64> = self
            .counts
            .measured
            .errors
            .iter()
            .map(|(k, v)| ((*k).to_string(), *v))
            .collect();
        if self.counts.measured.malformed_replies > 0 {
            errors.insert(
                "malformed-reply".into(),
                self.counts.measured.malformed_replies,
            );
        }
        if run.rate.inflight_at_end > 0 {
            *errors
                .entry(naam_results::raw::UNANSWERED_AT_END.into())
                .or_default() += run.rate.inflight_at_end;
        }
        Ok(SessionReport {
            run,
            errors,
            measured: self.counts.measured,
            warmup: self.counts.warmup,
            distribution: self.workload.distribution_name(),
        })
    }

    // Not inline: inlined, its loop-invariant field addresses were hoisted into `poll_send`'s
    // entry and spilled (~25 instructions per call), and a call sends about one request.
    #[inline(never)]
    fn issue(&mut self, ticket: SendTicket, now_ns: u64) {
        self.workload.next(&mut self.request);
        let call = Call {
            tenant: tenant_id(self.request.tenant),
            function: naam_engine::FunctionId(self.request.function),
            args: &self.request.args,
            descriptors: &self.request.descriptors,
            server_only: self.request.host_only,
        };
        let pending = Pending {
            ticket,
            expect: self.request.expect,
            op: self.request.op,
        };
        let issued = self.endpoint.issue(
            Nanos(now_ns),
            Nanos(ticket.intended_ns),
            ticket.seq,
            &call,
            pending,
        );
        if let Err(e) = issued {
            // The endpoint admits what the generator sends; refusals are counted, never lost.
            let kind = match e {
                IssueError::InflightFull { .. } => "client-inflight-full",
                IssueError::SeqOutOfRange { .. } | IssueError::Duplicate(_) => "client-request-id",
            };
            *self.counts.at(now_ns).errors.entry(kind).or_default() += 1;
            self.generator.on_fail(&ticket, now_ns);
        }
    }

    /// Ends every request the endpoint finished: verify, record latency under the location
    /// that ran it, count. Inline: called after every send, most often with nothing ended.
    #[inline]
    fn drain_events(&mut self, now_ns: u64) {
        self.drain_events_arrived(now_ns, now_ns);
    }

    // Inline: called after every send and datagram, most often with nothing ended (the call
    // alone cost a frame's set-up and tear-down).
    #[inline]
    fn drain_events_arrived(&mut self, now_ns: u64, arrived_ns: u64) {
        if self.endpoint.has_event() {
            self.end_requests(now_ns, arrived_ns);
        }
    }

    /// Ends the endpoint's finished requests in place (each event handed over by reference).
    fn end_requests(&mut self, now_ns: u64, arrived_ns: u64) {
        let mut books = Books {
            generator: &mut self.generator,
            workload: &*self.workload,
            tags: self.tags,
            counts: &mut self.counts,
        };
        self.endpoint.drain_events_with(|event, payload| {
            books.on_event(now_ns, arrived_ns, event, payload);
        });
    }
}

/// The measured phase's counts and the warm-up's, split at the warm-up's end.
#[derive(Debug)]
struct PhaseCounts {
    warmup_ns: u64,
    measured: Counts,
    warmup: Counts,
}

impl PhaseCounts {
    /// The counts an outcome observed at `now_ns` belongs to.
    fn at(&mut self, now_ns: u64) -> &mut Counts {
        if now_ns >= self.warmup_ns {
            &mut self.measured
        } else {
            &mut self.warmup
        }
    }
}

/// What an ended request updates, borrowed beside the endpoint that hands the events over.
struct Books<'a> {
    generator: &'a mut LoadGenerator,
    workload: &'a dyn ClientWorkload,
    tags: [TagId; 3],
    counts: &'a mut PhaseCounts,
}

impl Books<'_> {
    // Inline: once per ended request, from the datagram handler and the events' drain.
    #[inline]
    fn on_event(&mut self, now_ns: u64, arrived_ns: u64, event: &Event<Pending>, payload: &[u8]) {
        let pending = &event.cookie;
        if let Some(kind) = event.outcome.error_name() {
            *self.counts.at(now_ns).errors.entry(kind).or_default() += 1;
            self.generator.on_fail(&pending.ticket, now_ns);
            return;
        }
        debug_assert_eq!(event.outcome, Outcome::Ok);
        let verdict = self.workload.verify(pending.expect, payload);
        let counts = self.counts.at(now_ns);
        match verdict {
            Verified::Correct => {}
            Verified::Miss => counts.misses += 1,
            Verified::Wrong(why) => {
                counts.verify_failures += 1;
                counts.first_verify_failure.get_or_insert_with(|| {
                    format!("{} request {:#x}: {why}", pending.op, event.request_id.0)
                });
            }
        }
        let location = event.location.unwrap_or(naam_engine::Location::Host);
        let tag = self.tags[location.index()];
        // A completion the generator refuses (it cannot: the ticket is in flight) records
        // nothing; the run's accounting stays consistent.
        let _ = self
            .generator
            .on_complete_arrived(&pending.ticket, tag, now_ns, arrived_ns);
    }
}
