//! The client endpoint: a NAAM client's request lifecycle as a sans-IO state machine.
//!
//! A driver (the client role's thread, the virtual-clock test world, the simulator) owns the
//! socket and the clock. It
//!
//! 1. [`issue`](ClientEndpoint::issue)s each request with `now`, its intended send time and a
//!    cookie of its own; the endpoint runs it here (the client's steering share, or a host-only
//!    function never) or encodes it for the server's ingress;
//! 2. sends whatever [`poll_transmit`](ClientEndpoint::poll_transmit) hands out to the
//!    [`Destination`] named (the server's ingress, or its RNIC for one-sided reads), and reports a
//!    send that failed with [`transmit_failed`](ClientEndpoint::transmit_failed);
//! 3. hands every received datagram to [`handle_datagram`](ClientEndpoint::handle_datagram):
//!    replies end requests (a pushback's continuation runs here instead), read replies complete
//!    the local executor's accesses;
//! 4. runs local steps with [`run_local`](ClientEndpoint::run_local) while
//!    [`local_ready`](ClientEndpoint::local_ready): requests run at the client, whose accesses
//!    become one-sided read frames;
//! 5. calls [`handle_timeout`](ClientEndpoint::handle_timeout) when
//!    [`poll_timeout`](ClientEndpoint::poll_timeout) is due: requests and reads past their
//!    deadline fail, and a client-side policy (Kayak, Cell) takes its periodic sample;
//! 6. drains [`poll_event`](ClientEndpoint::poll_event) (or, in place,
//!    [`drain_events_with`](ClientEndpoint::drain_events_with)): every issued request ends in
//!    exactly one [`Event`] — where it ran, its [`Outcome`], its reply payload, and the
//!    caller's cookie.
//!
//! Generators, histograms and answer verification are the caller's (the roles' client session);
//! the endpoint keeps only what steering needs: the share to run here, and the period's
//! completions, latencies and read round trips for client-side policies.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::abi::ACCESSES_PER_STEP_MAX;
use crate::control::{ClientSample, Controller};
use crate::exec::{
    AccessFailure, AccessId, AccessRequest, ConfigError, Executor, ExecutorConfig, INFLIGHT_LIMIT,
    Work,
};
use crate::function::FunctionTable;
use crate::ids::{FunctionId, IdMap, Location, Nanos, RequestId, TenantId};
use crate::inflight::InflightTable;
use crate::region::RegionTable;
use crate::steer::{SteerKey, steer_bucket};
use crate::wire::{
    ClientFrame, Descriptors, ErrorCode, ErrorKind, Frame, Invoke, InvokeFlags, MessageHead,
    ReadReply, ReadRequest, Reply, ReplyAddr, Status,
};

/// Largest bound on requests in flight at one endpoint.
pub const CLIENT_INFLIGHT_MAX: usize = 1 << 20;
/// One-sided reads in flight at once: every local message's accesses of one step.
pub const READS_INFLIGHT_MAX: usize = INFLIGHT_LIMIT * ACCESSES_PER_STEP_MAX;
/// Largest flow (client index): request ids are `flow << 48 | seq`.
pub const FLOW_MAX: u32 = 0xffff;
/// Largest sequence number in a request id.
pub const SEQ_MAX: u64 = (1 << 48) - 1;
/// Default period of the timeout sweep (ns).
pub const SWEEP_PERIOD_NS_DEFAULT: u64 = 5_000_000;
/// Default period of client-side policy samples (Kayak, Cell) (ns).
pub const SAMPLE_PERIOD_NS_DEFAULT: u64 = 2_000_000;
/// Spare frame buffers kept for reuse (beyond it, buffers are freed).
const SPARE_BUFFERS_MAX: usize = 4096;

/// How an endpoint is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Steering flow of its messages, the client's index (≤ [`FLOW_MAX`]).
    pub flow: u32,
    /// Where the server sends replies (`None`: back to the sender).
    pub reply_to: Option<ReplyAddr>,
    /// A request (or a one-sided read) unanswered this long fails.
    pub timeout_ns: u64,
    /// Requests in flight at once (1..=[`CLIENT_INFLIGHT_MAX`]).
    pub inflight_max: usize,
    /// Period of the timeout sweep.
    pub sweep_period_ns: u64,
    /// Period of client-side policy samples.
    pub sample_period_ns: u64,
    /// Whether server-only calls travel with the pinned steering key, which the eSwitch places
    /// at the host whatever the rules (NAAM: host-native writes run where the data lives).
    /// `false` for a server without host-native calls, whose every request takes its bucket's
    /// key and goes where the rules send it (the iPipe baseline: actors own their objects,
    /// writes included, and every request enters the NIC). Such calls still never run at the
    /// client.
    pub server_only_pinned: bool,
}

impl EndpointConfig {
    /// Flow `flow`, requests failing after `timeout_ns`, default periods, the largest in-flight
    /// bound.
    pub fn new(flow: u32, timeout_ns: u64) -> EndpointConfig {
        EndpointConfig {
            flow,
            reply_to: None,
            timeout_ns,
            inflight_max: CLIENT_INFLIGHT_MAX,
            sweep_period_ns: SWEEP_PERIOD_NS_DEFAULT,
            sample_period_ns: SAMPLE_PERIOD_NS_DEFAULT,
            server_only_pinned: true,
        }
    }
}

/// A bad endpoint configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointConfigError {
    /// The local executor's configuration.
    #[error(transparent)]
    Executor(#[from] ConfigError),
    /// A flow above [`FLOW_MAX`].
    #[error("flow {value} above {FLOW_MAX}")]
    Flow {
        /// The value given.
        value: u32,
    },
    /// `inflight_max` outside 1..=[`CLIENT_INFLIGHT_MAX`].
    #[error("inflight_max {value} outside 1..={CLIENT_INFLIGHT_MAX}")]
    InflightMax {
        /// The value given.
        value: usize,
    },
    /// A zero timeout or period.
    #[error("{field} must be positive")]
    Zero {
        /// The field.
        field: &'static str,
    },
}

/// One request to issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call<'a> {
    /// The tenant it acts for.
    pub tenant: TenantId,
    /// The function.
    pub function: FunctionId,
    /// Its argument block.
    pub args: &'a [u8],
    /// Step 0's accesses.
    pub descriptors: &'a Descriptors,
    /// A host-native function (a write): never run at the client.
    pub server_only: bool,
}

/// Where an issued request went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the server's ingress.
    Server,
    /// Run here, in the client-location executor.
    Local,
}

/// Where a transmit goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// The server's ingress (behind the eSwitch).
    Ingress,
    /// The server's RNIC (one-sided reads).
    Rnic,
}

/// What a transmit carries (to report a failed send).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carries {
    /// A request's Invoke.
    Request(RequestId),
    /// A one-sided read, by read id.
    Read(u64),
}

/// A frame to send (its bytes were swapped into the caller's buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where it goes.
    pub to: Destination,
    /// What it carries.
    pub carries: Carries,
    /// For a request's Invoke, its steering key: the driver carries it in a header the eSwitch
    /// matches (naam-net: the UDP source port). `None` for one-sided reads.
    pub steer: Option<SteerKey>,
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered; the event's payload is the function's reply.
    Ok,
    /// The request failed with a typed error (from the server, or the local executor).
    Error(ErrorCode),
    /// No answer within the timeout.
    Timeout,
    /// A reply said "pushback" where no pushback can be (a continuation pushed back again).
    PushbackLoop,
    /// The request could not be encoded (a part over its wire maximum).
    Encode,
    /// The driver could not send it.
    Send,
}

impl Outcome {
    /// The stable name a failure is counted under in results (`timeout`, `access-denied`, ...);
    /// `None` for [`Outcome::Ok`].
    pub fn error_name(&self) -> Option<&'static str> {
        match self {
            Outcome::Ok => None,
            Outcome::Error(code) => Some(code.kind.name()),
            Outcome::Timeout => Some("timeout"),
            Outcome::PushbackLoop => Some("pushback-loop"),
            Outcome::Encode => Some("encode"),
            Outcome::Send => Some("send"),
        }
    }
}

/// The end of one issued request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event<C> {
    /// The request.
    pub request_id: RequestId,
    /// The caller's cookie from [`ClientEndpoint::issue`].
    pub cookie: C,
    /// Where it ran (the reply's location; the client for local runs); `None` when no location
    /// answered (timeout, send or encode failure).
    pub location: Option<Location>,
    /// How it ended.
    pub outcome: Outcome,
}

/// What the endpoint made of a received datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A reply to a request in flight.
    Reply,
    /// The answer to a one-sided read in flight.
    ReadReply,
    /// A valid reply or read reply for nothing in flight (late, after a timeout).
    Stale,
    /// Not a frame a client accepts.
    Malformed,
}

/// Why a request could not be issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// [`EndpointConfig::inflight_max`] requests are in flight.
    #[error("{max} requests in flight already")]
    InflightFull {
        /// The bound.
        max: usize,
    },
    /// A sequence number above [`SEQ_MAX`].
    #[error("sequence number {seq} above {SEQ_MAX}")]
    SeqOutOfRange {
        /// The value given.
        seq: u64,
    },
    /// The request id is in flight already.
    #[error("request {0:?} is in flight already")]
    Duplicate(RequestId),
}

/// Counters since the endpoint started (diagnostics; results count through the caller).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Requests issued.
    pub issued: u64,
    /// Of which run here from the start.
    pub issued_local: u64,
    /// Replies from the server for requests in flight.
    pub replies: u64,
    /// Requests the server pushed back (their continuation ran here).
    pub pushed_back: u64,
    /// Replies or read replies for nothing in flight.
    pub stale: u64,
    /// Datagrams that were not replies or read replies.
    pub malformed: u64,
    /// One-sided reads sent.
    pub reads_sent: u64,
    /// Read replies received in time.
    pub read_replies: u64,
    /// Reads that failed (not sent, or unanswered within the timeout).
    pub reads_failed: u64,
    /// Requests that timed out.
    pub timeouts: u64,
}

/// One request in flight.
#[derive(Clone, Copy, Debug)]
struct Pending<C> {
    cookie: C,
    intended: Nanos,
    deadline: Nanos,
}

/// The current client-sample period's measurements (inputs of client-side policies).
#[derive(Clone, Copy, Debug, Default)]
struct PeriodTally {
    server_done: u64,
    local_done: u64,
    server_latency_ns_sum: u64,
    local_latency_ns_sum: u64,
    reads: u64,
    read_rtt_ns_sum: u64,
    reads_of_local: u64,
}

impl PeriodTally {
    /// The period's sample, and a fresh period.
    fn take(&mut self, now: Nanos, period_ns: u64) -> ClientSample {
        let mean = |sum: u64, n: u64| sum.checked_div(n).unwrap_or(0);
        let t = std::mem::take(self);
        ClientSample {
            at: now,
            period_ns,
            server_completions: t.server_done,
            local_completions: t.local_done,
            server_latency_ns_mean: mean(t.server_latency_ns_sum, t.server_done),
            local_latency_ns_mean: mean(t.local_latency_ns_sum, t.local_done),
            read_rtt_ns_mean: mean(t.read_rtt_ns_sum, t.reads),
            reads_per_request_milli: (t.reads_of_local * 1000)
                .checked_div(t.local_done)
                .unwrap_or(0),
        }
    }
}

/// Frame buffers queued for the driver, with a pool of spares (steady state allocates nothing).
#[derive(Debug)]
struct Queue<T> {
    items: VecDeque<(T, Vec<u8>)>,
    max: usize,
}

impl<T> Queue<T> {
    fn new(max: usize) -> Queue<T> {
        Queue {
            items: VecDeque::new(),
            max,
        }
    }

    fn push(&mut self, item: T, bytes: Vec<u8>) {
        assert!(
            self.items.len() < self.max,
            "queue above its bound {}",
            self.max
        );
        self.items.push_back((item, bytes));
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    // Inline: called twice per request (its transmit, its event), and the item is moved out.
    #[inline]
    fn pop_into(&mut self, out: &mut Vec<u8>, spare: &mut Vec<Vec<u8>>) -> Option<T> {
        let (item, mut bytes) = self.items.pop_front()?;
        std::mem::swap(out, &mut bytes);
        recycle(bytes, spare);
        Some(item)
    }

    /// Hands every item to `visit` in place, oldest first, then keeps its buffer: no item is
    /// moved out through an `Option` (the events' drain, once per request, copied each three
    /// times that way).
    #[inline]
    fn drain_with(&mut self, spare: &mut Vec<Vec<u8>>, mut visit: impl FnMut(&T, &[u8])) {
        while let Some((item, bytes)) = self.items.front() {
            visit(item, bytes);
            if let Some((_, bytes)) = self.items.pop_front() {
                recycle(bytes, spare);
            }
        }
    }
}

/// Keeps a drained buffer for reuse, up to [`SPARE_BUFFERS_MAX`].
#[inline]
fn recycle(mut bytes: Vec<u8>, spare: &mut Vec<Vec<u8>>) {
    bytes.clear();
    if spare.len() < SPARE_BUFFERS_MAX {
        spare.push(bytes);
    }
}

/// A NAAM client's request lifecycle (see the module docs). Owns no socket, thread or clock.
/// `C` is the caller's per-request cookie, handed back in the request's [`Event`].
pub struct ClientEndpoint<C> {
    config: EndpointConfig,
    local: Executor,
    /// Requests in flight by request id: a slot per sequence number in a small window, a map for
    /// ids outside it (see [`crate::inflight`]); its iteration order never matters
    /// ([`Self::sweep`] sorts).
    inflight: InflightTable<Pending<C>>,
    /// One-sided reads in flight by read id (the local executor's access ids), sent at.
    reads: IdMap<u64, Nanos>,
    client_permille: u16,
    controller: Option<Controller>,
    transmits: Queue<Transmit>,
    events: Queue<Event<C>>,
    spare: Vec<Vec<u8>>,
    frame: Vec<u8>,
    expired: Vec<u64>,
    tally: PeriodTally,
    stats: EndpointStats,
    next_sweep_at: Nanos,
    next_sample_at: Nanos,
}

impl<C> std::fmt::Debug for ClientEndpoint<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientEndpoint")
            .field("config", &self.config)
            .field("inflight", &self.inflight.len())
            .field("reads", &self.reads.len())
            .field("client_permille", &self.client_permille)
            .finish_non_exhaustive()
    }
}

impl<C: Copy> ClientEndpoint<C> {
    /// An endpoint started at `now`, whose local executor runs `functions` over `regions` (the
    /// client's view of the server's catalog). With a `controller`, a client-side policy decides
    /// the share run here; without one, the server's hint in every reply does.
    pub fn new(
        config: EndpointConfig,
        functions: Arc<FunctionTable>,
        regions: Arc<RegionTable>,
        controller: Option<Controller>,
        now: Nanos,
    ) -> Result<ClientEndpoint<C>, EndpointConfigError> {
        validate(&config)?;
        let mut exec_config = ExecutorConfig::new(Location::Client);
        exec_config.inflight_max = INFLIGHT_LIMIT;
        let local = Executor::new(exec_config, functions, regions)?;
        let client_permille = controller
            .as_ref()
            .map_or(0, |c| c.current().shares.of(Location::Client));
        Ok(ClientEndpoint {
            local,
            inflight: InflightTable::new(config.inflight_max),
            reads: IdMap::default(),
            client_permille,
            controller,
            transmits: Queue::new(config.inflight_max + READS_INFLIGHT_MAX),
            events: Queue::new(config.inflight_max + 1),
            spare: Vec::new(),
            frame: Vec::new(),
            expired: Vec::new(),
            tally: PeriodTally::default(),
            stats: EndpointStats::default(),
            next_sweep_at: now,
            next_sample_at: now.plus_ns(config.sample_period_ns),
            config,
        })
    }

    /// The id of the request with sequence number `seq`.
    pub fn request_id(&self, seq: u64) -> RequestId {
        RequestId(u64::from(self.config.flow) << 48 | (seq & SEQ_MAX))
    }

    /// The share (permille of steering buckets) of new requests run here.
    pub fn client_permille(&self) -> u16 {
        self.client_permille
    }

    /// Sets the share run here, e.g. a static placement the client knows before any reply.
    /// Later replies' hints (or the client-side policy) replace it.
    pub fn set_client_permille(&mut self, permille: u16) {
        self.client_permille = permille.min(crate::steer::BUCKETS);
    }

    /// The client-side controller, if a client-side policy runs.
    pub fn controller(&self) -> Option<&Controller> {
        self.controller.as_ref()
    }

    /// Requests in flight.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// True while local steps are ready to run ([`ClientEndpoint::run_local`]).
    pub fn local_ready(&self) -> bool {
        self.local.ready_len() > 0
    }

    /// One-sided reads in flight: client-side steps wait for their replies.
    pub fn reads_in_flight(&self) -> usize {
        self.reads.len()
    }

    /// Counters since the start.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Issues request `seq` at `now` (meant for `intended`, from which its latency runs): runs
    /// it here if it falls in the client's share (never a server-only call), else queues its
    /// Invoke for the ingress. It ends in exactly one [`Event`] carrying `cookie`.
    pub fn issue(
        &mut self,
        now: Nanos,
        intended: Nanos,
        seq: u64,
        call: &Call<'_>,
        cookie: C,
    ) -> Result<Route, IssueError> {
        if seq > SEQ_MAX {
            return Err(IssueError::SeqOutOfRange { seq });
        }
        if self.inflight.len() >= self.config.inflight_max {
            return Err(IssueError::InflightFull {
                max: self.config.inflight_max,
            });
        }
        let request_id = self.request_id(seq);
        if self.inflight.contains_key(request_id.0) {
            return Err(IssueError::Duplicate(request_id));
        }
        // The bucket once: it decides both where the request runs and its steering key.
        let bucket = steer_bucket(request_id);
        let local = !call.server_only && bucket < self.client_permille;
        let head = MessageHead {
            tenant: call.tenant,
            function: call.function,
            request_id,
            flow: self.config.flow,
            flags: InvokeFlags(InvokeFlags::ALLOW_PUSHBACK),
            reply_to: self.config.reply_to,
        };
        self.stats.issued += 1;
        let route = if local { Route::Local } else { Route::Server };
        if !local {
            let mut bytes = self.spare.pop().unwrap_or_default();
            if head
                .encode_invoke(call.args, call.descriptors, &mut bytes)
                .is_err()
            {
                self.push_event(request_id, cookie, None, Outcome::Encode, &[]);
                return Ok(route);
            }
            let carries = Carries::Request(request_id);
            self.transmits.push(
                Transmit {
                    to: Destination::Ingress,
                    carries,
                    steer: Some(SteerKey::of_bucket(
                        bucket,
                        call.server_only && self.config.server_only_pinned,
                    )),
                },
                bytes,
            );
        }
        let deadline = now.plus_ns(self.config.timeout_ns);
        let pending = Pending {
            cookie,
            intended,
            deadline,
        };
        self.inflight.insert_new(request_id.0, pending);
        if local {
            self.stats.issued_local += 1;
            self.submit_local(now, &head, call);
        }
        Ok(route)
    }

    /// Runs a new message here: `head` with `call`'s argument block and accesses.
    fn submit_local(&mut self, now: Nanos, head: &MessageHead, call: &Call<'_>) {
        let invoke = Invoke {
            flow: head.flow,
            flags: head.flags,
            reply_to: head.reply_to,
            ..Invoke::new_message(
                head.tenant,
                head.function,
                head.request_id,
                call.args,
                *call.descriptors,
            )
        };
        self.local.submit(now, now, 0, &invoke);
        self.pump_local(now);
    }

    /// True when [`ClientEndpoint::poll_transmit`] would return a transmit: a driver can skip
    /// handing it a buffer when not.
    #[inline]
    pub fn has_transmit(&self) -> bool {
        !self.transmits.is_empty()
    }

    /// The next frame to send: its bytes are swapped into `out` (the endpoint keeps the old
    /// buffer for reuse).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> Option<Transmit> {
        self.transmits.pop_into(out, &mut self.spare)
    }

    /// The driver could not send `carries`: a request fails with [`Outcome::Send`], a read
    /// fails its message's access.
    pub fn transmit_failed(&mut self, now: Nanos, carries: Carries) {
        match carries {
            Carries::Request(id) => {
                if let Some(p) = self.inflight.remove(id.0) {
                    self.push_event(id, p.cookie, None, Outcome::Send, &[]);
                }
            }
            Carries::Read(read_id) => {
                if self.reads.remove(&read_id).is_some() {
                    self.stats.reads_failed += 1;
                    let id = AccessId::from_u64(read_id);
                    self.local.fail_access(now, id, AccessFailure::DataPath);
                    self.pump_local(now);
                }
            }
        }
    }

    /// True when [`ClientEndpoint::poll_event`] would return an event.
    #[inline]
    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next ended request; its payload (the reply, for [`Outcome::Ok`]) is swapped into
    /// `payload`.
    pub fn poll_event(&mut self, payload: &mut Vec<u8>) -> Option<Event<C>> {
        self.events.pop_into(payload, &mut self.spare)
    }

    /// Hands every ended request to `on_event` with its payload (the reply, for
    /// [`Outcome::Ok`]), oldest first: the events [`ClientEndpoint::poll_event`] returns in a
    /// loop, without copying each out.
    pub fn drain_events_with(&mut self, on_event: impl FnMut(&Event<C>, &[u8])) {
        self.events.drain_with(&mut self.spare, on_event);
    }

    /// Handles a datagram received at `now`.
    pub fn handle_datagram(&mut self, now: Nanos, bytes: &[u8]) -> Inbound {
        match ClientFrame::decode(bytes) {
            Ok(ClientFrame::Reply(reply)) => self.on_reply(now, &reply),
            Ok(ClientFrame::ReadReply(read)) => self.on_read_reply(now, &read),
            Err(_) => self.on_malformed(),
        }
    }

    /// [`ClientEndpoint::handle_datagram`], then [`ClientEndpoint::drain_events_with`]: every
    /// request ended so far goes to `on_event`, oldest first. A reply that ends a request while
    /// no event is queued goes to `on_event` at once, its payload read in place from `bytes`
    /// (not copied into a queued buffer, then drained: once per request for a client whose
    /// requests run at the server).
    pub fn handle_datagram_with(
        &mut self,
        now: Nanos,
        bytes: &[u8],
        mut on_event: impl FnMut(&Event<C>, &[u8]),
    ) -> Inbound {
        let inbound = match ClientFrame::decode(bytes) {
            Ok(ClientFrame::Reply(reply)) if self.events.is_empty() => {
                // The event is handed over where it was returned (moving it out of the
                // `Result` copied its 80 bytes to another stack slot, once per request).
                let ended = self.end_by_reply(now, &reply);
                match &ended {
                    Ok(event) => {
                        on_event(event, reply.payload);
                        return Inbound::Reply;
                    }
                    Err(inbound) => *inbound,
                }
            }
            Ok(ClientFrame::Reply(reply)) => self.on_reply(now, &reply),
            Ok(ClientFrame::ReadReply(read)) => self.on_read_reply(now, &read),
            Err(_) => self.on_malformed(),
        };
        self.drain_events_with(on_event);
        inbound
    }

    /// Runs up to `steps_max` local steps at `now`; their accesses become read transmits and the
    /// requests they finish become events.
    pub fn run_local(&mut self, now: Nanos, steps_max: usize) -> Work {
        let work = self.local.run_work(now, steps_max);
        self.pump_local(now);
        work
    }

    /// When [`ClientEndpoint::handle_timeout`] is next due.
    #[inline]
    pub fn poll_timeout(&self) -> Nanos {
        if self.controller.is_some() {
            self.next_sweep_at.min(self.next_sample_at)
        } else {
            self.next_sweep_at
        }
    }

    /// Fails requests and reads past their deadline (every sweep period), and lets a client-side
    /// policy decide on the period's sample (every sample period).
    pub fn handle_timeout(&mut self, now: Nanos) {
        if now >= self.next_sweep_at {
            self.sweep(now);
            self.next_sweep_at = now.plus_ns(self.config.sweep_period_ns);
        }
        if self.controller.is_some() && now >= self.next_sample_at {
            self.policy_tick(now);
            self.next_sample_at = now.plus_ns(self.config.sample_period_ns);
        }
    }
}

// ---- internals ---------------------------------------------------------------------------------

impl<C: Copy> ClientEndpoint<C> {
    fn on_reply(&mut self, now: Nanos, reply: &Reply<'_>) -> Inbound {
        match self.end_by_reply(now, reply) {
            Ok(event) => {
                let bytes = self.spare_copy(reply.payload);
                self.events.push(event, bytes);
                Inbound::Reply
            }
            Err(inbound) => inbound,
        }
    }

    /// The event of the request `reply` ends (counted, out of the in-flight table, not queued);
    /// `Err` with what the reply was when it ends none (a pushback, handled here, or stale).
    #[inline]
    fn end_by_reply(&mut self, now: Nanos, reply: &Reply<'_>) -> Result<Event<C>, Inbound> {
        let outcome = match reply.status {
            Status::Ok => Outcome::Ok,
            Status::Error(code) => Outcome::Error(code),
            Status::Pushback => return Err(self.on_pushback(now, reply)),
        };
        let id = reply.request_id;
        let Some(pending) = self.inflight.remove(id.0) else {
            return Err(self.on_stale());
        };
        self.note_reply(reply);
        let location = Some(reply.location);
        Ok(self.end_event(now, id, pending, location, outcome))
    }

    fn on_malformed(&mut self) -> Inbound {
        self.stats.malformed += 1;
        Inbound::Malformed
    }

    fn on_stale(&mut self) -> Inbound {
        self.stats.stale += 1;
        Inbound::Stale
    }

    /// Counts a reply to a request in flight and takes the server's share hint (without a
    /// client-side policy).
    fn note_reply(&mut self, reply: &Reply<'_>) {
        self.stats.replies += 1;
        if self.controller.is_none() {
            self.client_permille = reply.client_permille;
        }
    }

    /// The server pushed the request back: its continuation runs here (the request stays in
    /// flight).
    fn on_pushback(&mut self, now: Nanos, reply: &Reply<'_>) -> Inbound {
        if !self.inflight.contains_key(reply.request_id.0) {
            return self.on_stale();
        }
        self.note_reply(reply);
        self.stats.pushed_back += 1;
        let Ok(Frame::Invoke(continuation)) = Frame::decode(reply.payload) else {
            let malformed = ErrorCode {
                kind: ErrorKind::Malformed,
                detail: 0,
            };
            let location = Some(reply.location);
            self.end(
                now,
                reply.request_id,
                location,
                Outcome::Error(malformed),
                &[],
            );
            return Inbound::Reply;
        };
        self.local.submit(now, now, 0, &continuation);
        self.pump_local(now);
        Inbound::Reply
    }

    fn on_read_reply(&mut self, now: Nanos, read: &ReadReply<'_>) -> Inbound {
        let Some(sent_at) = self.reads.remove(&read.read_id) else {
            self.stats.stale += 1;
            return Inbound::Stale;
        };
        self.stats.read_replies += 1;
        self.tally.reads += 1;
        self.tally.read_rtt_ns_sum += now.since(sent_at);
        let id = AccessId::from_u64(read.read_id);
        if read.denial == 0 {
            self.local.complete_access(id, read.data);
        } else {
            let failure = AccessFailure::Denied(read.denial);
            self.local.fail_access(now, id, failure);
        }
        self.pump_local(now);
        Inbound::ReadReply
    }

    /// Turns the local executor's accesses into read transmits and its completions into events.
    fn pump_local(&mut self, now: Nanos) {
        while let Some(access) = self.local.poll_access() {
            self.send_read(now, &access);
        }
        let mut frame = std::mem::take(&mut self.frame);
        while let Some(done) = self.local.poll_completion(&mut frame) {
            let payload = match ClientFrame::decode(&frame) {
                Ok(ClientFrame::Reply(reply)) => reply.payload,
                _ => &[],
            };
            let outcome = match done.status {
                Status::Ok => Outcome::Ok,
                Status::Error(code) => Outcome::Error(code),
                Status::Pushback => Outcome::PushbackLoop,
            };
            self.end(
                now,
                done.request_id,
                Some(Location::Client),
                outcome,
                payload,
            );
        }
        self.frame = frame;
    }

    fn send_read(&mut self, now: Nanos, access: &AccessRequest) {
        let read_id = access.id.to_u64();
        let read = ReadRequest {
            tenant: access.tenant,
            read_id,
            rkey: access.descriptor.rkey,
            offset: access.descriptor.offset,
            len: access.descriptor.len,
        };
        let mut bytes = self.spare.pop().unwrap_or_default();
        if self.reads.len() >= READS_INFLIGHT_MAX || Frame::Read(read).encode(&mut bytes).is_err() {
            self.stats.reads_failed += 1;
            self.local
                .fail_access(now, access.id, AccessFailure::DataPath);
            return;
        }
        self.reads.insert(read_id, now);
        self.stats.reads_sent += 1;
        self.tally.reads_of_local += 1;
        let transmit = Transmit {
            to: Destination::Rnic,
            carries: Carries::Read(read_id),
            steer: None,
        };
        self.transmits.push(transmit, bytes);
    }

    /// Ends request `id` (if still in flight) with `outcome`: counts it for client-side policies
    /// and queues its event.
    fn end(
        &mut self,
        now: Nanos,
        id: RequestId,
        location: Option<Location>,
        outcome: Outcome,
        payload: &[u8],
    ) {
        let Some(pending) = self.inflight.remove(id.0) else {
            return;
        };
        self.end_pending(now, id, pending, location, outcome, payload);
    }

    /// Ends request `id`, already taken out of the in-flight table as `pending`.
    fn end_pending(
        &mut self,
        now: Nanos,
        id: RequestId,
        pending: Pending<C>,
        location: Option<Location>,
        outcome: Outcome,
        payload: &[u8],
    ) {
        let event = self.end_event(now, id, pending, location, outcome);
        let bytes = self.spare_copy(payload);
        self.events.push(event, bytes);
    }

    /// The event ending request `id` (taken out of the in-flight table as `pending`), counted
    /// for client-side policies; the caller queues or hands it over.
    #[inline]
    fn end_event(
        &mut self,
        now: Nanos,
        id: RequestId,
        pending: Pending<C>,
        location: Option<Location>,
        outcome: Outcome,
    ) -> Event<C> {
        if outcome == Outcome::Ok {
            let latency_ns = now.since(pending.intended);
            if location == Some(Location::Client) {
                self.tally.local_done += 1;
                self.tally.local_latency_ns_sum += latency_ns;
            } else {
                self.tally.server_done += 1;
                self.tally.server_latency_ns_sum += latency_ns;
            }
        }
        Event {
            request_id: id,
            cookie: pending.cookie,
            location,
            outcome,
        }
    }

    fn push_event(
        &mut self,
        request_id: RequestId,
        cookie: C,
        location: Option<Location>,
        outcome: Outcome,
        payload: &[u8],
    ) {
        let bytes = self.spare_copy(payload);
        let event = Event {
            request_id,
            cookie,
            location,
            outcome,
        };
        self.events.push(event, bytes);
    }

    /// A copy of `bytes` in a spare buffer (or a new one).
    fn spare_copy(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut copy = self.spare.pop().unwrap_or_default();
        copy.clear();
        copy.extend_from_slice(bytes);
        copy
    }

    /// Fails expired requests and stale reads, in id order (deterministic whatever the maps'
    /// iteration order).
    fn sweep(&mut self, now: Nanos) {
        let mut expired = std::mem::take(&mut self.expired);
        expired.clear();
        self.inflight.ids_where(|p| p.deadline <= now, &mut expired);
        expired.sort_unstable();
        for &id in &expired {
            if let Some(p) = self.inflight.remove(id) {
                self.stats.timeouts += 1;
                self.push_event(RequestId(id), p.cookie, None, Outcome::Timeout, &[]);
            }
        }
        expired.clear();
        let timeout_ns = self.config.timeout_ns;
        expired.extend(
            self.reads
                .iter()
                .filter(|&(_, &sent_at)| now.since(sent_at) > timeout_ns)
                .map(|(&id, _)| id),
        );
        expired.sort_unstable();
        for &read_id in &expired {
            self.reads.remove(&read_id);
            self.stats.reads_failed += 1;
            let id = AccessId::from_u64(read_id);
            self.local.fail_access(now, id, AccessFailure::DataPath);
        }
        self.expired = expired;
        self.pump_local(now);
    }

    /// A client-side policy (Kayak, Cell) decides the share run here from the period's sample.
    fn policy_tick(&mut self, now: Nanos) {
        let sample = self.tally.take(now, self.config.sample_period_ns);
        let Some(controller) = self.controller.as_mut() else {
            return;
        };
        if let Some(change) = controller.on_client_sample(sample) {
            self.client_permille = change.after.of(Location::Client);
        }
    }
}

fn validate(config: &EndpointConfig) -> Result<(), EndpointConfigError> {
    if config.flow > FLOW_MAX {
        return Err(EndpointConfigError::Flow { value: config.flow });
    }
    if config.inflight_max == 0 || config.inflight_max > CLIENT_INFLIGHT_MAX {
        return Err(EndpointConfigError::InflightMax {
            value: config.inflight_max,
        });
    }
    let zero = [
        ("timeout_ns", config.timeout_ns),
        ("sweep_period_ns", config.sweep_period_ns),
        ("sample_period_ns", config.sample_period_ns),
    ];
    match zero.iter().find(|(_, v)| *v == 0) {
        Some(&(field, _)) => Err(EndpointConfigError::Zero { field }),
        None => Ok(()),
    }
}
