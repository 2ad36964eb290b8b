//! A client role: offers open-loop load (Poisson, seeded) from the workload's generator, sends
//! each request to the server's ingress or — for its share of client-side execution, or when the
//! server pushes a request back — runs it itself in a client-location executor whose accesses are
//! one-sided reads of the server's memory (emulated RNIC, or RDMA with the `rdma` feature).
//!
//! Latency runs from each request's *intended* send time (no coordinated omission) and is
//! recorded per execution location in interval histograms written as an HdrHistogram interval
//! log (`client-<k>.hlog`); `client-<k>.json` holds the rate accounting, errors and verification
//! failures. With `verify`, every answer is checked against the value it must have.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use naam_engine::steer::steer_bucket;
use naam_engine::wire::{ErrorKind, InvokeFlags, ReadRequest, Reply, ReplyAddr};
use naam_engine::{
    AccessFailure, AccessId, ClientSample, Controller, Executor, ExecutorConfig, FunctionId,
    Invoke, Location, Nanos, RegionTable, RequestId, RuleKey, Status, policy,
};
use naam_loadgen::{
    HlogWriter, LoadConfig, LoadGenerator, LoadMode, RateStep, SendTicket, TagId, TagSet,
    Thresholds,
};
use naam_net::{RecvBatch, SendBatch, UdpSocket};
use naam_results::raw::{self, ClientSummary, ScheduleKind};

use crate::config::{ClientConfig, RoleConfig, Timeline};
use crate::os::{monotonic_ns, pin_current_thread, realtime_ns, sleep_until_realtime};
use crate::ready::{self, HostReady};
use crate::timeline::{TIMELINE_WAIT_MAX, TimelineWatch};
use crate::workload::{self, ClientWorkload, Expect, Request, Verified, tenant_id};
use crate::{RoleError, udp};

/// How long a client waits for the host's ready file.
pub const HOST_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// After the last send, how long in-flight requests may still complete.
pub const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// Period of client-side policy samples (Kayak, Cell).
pub const CLIENT_SAMPLE_PERIOD_NS: u64 = 2_000_000;
/// How often expired requests and reads are swept.
pub const TIMEOUT_SWEEP_NS: u64 = 5_000_000;
/// Longest wait in one receive call.
pub const RECV_WAIT_MAX: Duration = Duration::from_millis(1);
/// Datagrams per receive batch.
pub const BATCH_MAX: usize = 64;
/// Steps the local executor runs per round.
const LOCAL_STEPS_PER_ROUND: usize = 64;

/// One request in flight.
#[derive(Debug, Clone, Copy)]
struct Pending {
    ticket: SendTicket,
    expect: Expect,
    op: &'static str,
    deadline_ns: u64,
    local: bool,
}

/// Counters kept by the client besides the generator's.
#[derive(Debug, Default)]
struct Tally {
    errors: BTreeMap<String, u64>,
    verify_failures: u64,
    first_verify_failure: Option<String>,
    misses: u64,
    pushed_back: u64,
    late_replies: u64,
    server_done: u64,
    local_done: u64,
    server_latency_ns_sum: u64,
    local_latency_ns_sum: u64,
    reads: u64,
    read_rtt_ns_sum: u64,
    reads_of_local: u64,
}

/// The running client.
struct Client {
    index: u32,
    socket: UdpSocket,
    ingress: SocketAddr,
    rnic: SocketAddr,
    reply_to: ReplyAddr,
    workload: Box<dyn ClientWorkload>,
    generator: LoadGenerator,
    tags: [TagId; 3],
    local: Executor,
    inflight: HashMap<u64, Pending>,
    reads: HashMap<u64, u64>,
    client_permille: u16,
    controller: Option<Controller>,
    request: Request,
    frame: Vec<u8>,
    outbox: SendBatch,
    tally: Tally,
    timeout_ns: u64,
    warmup_ns: u64,
    end_ns: u64,
    run_start_mono: u64,
}

/// Runs the client role; returns when its run is over.
pub fn run(
    config: &RoleConfig,
    client: &ClientConfig,
    stop: &'static AtomicBool,
) -> Result<(), RoleError> {
    let _ = pin_current_thread(&client.cpus);
    for what in crate::os::make_current_thread_punctual() {
        eprintln!(
            "client {}: kept the default scheduling ({what}); sends may run late on a busy machine",
            client.index
        );
    }
    if client.one_sided == crate::config::OneSided::Rdma {
        crate::rdma::open_one_sided()?;
    }
    let host: HostReady = ready::wait_for(&client.host_ready, HOST_READY_TIMEOUT)?;
    let timeline = TimelineWatch::start(&config.timeline, stop)
        .wait(TIMELINE_WAIT_MAX, stop)
        .ok_or_else(|| RoleError::Setup("the point's timeline never arrived".into()))?;
    let mut c = Client::new(&timeline, client, &host)?;
    let hlog_path = config.out_dir.join(raw::client_hlog_file(client.index));
    let file =
        std::fs::File::create(&hlog_path).map_err(|e| RoleError::io(&hlog_path, "create", e))?;
    let start_realtime = timeline.start_realtime_ns;
    let comment = format!(
        "naam client {} (latency ns from the intended send; tag = where it ran)",
        client.index
    );
    // The log's StartTime = BaseTime = the measured phase's start (experiments/SCHEMA.md §3);
    // warm-up never enters it.
    let measure_start_ms = timeline.measure_start_realtime_ns() / 1_000_000;
    let mut hlog = HlogWriter::new(
        std::io::BufWriter::new(file),
        TagSet::locations(),
        measure_start_ms,
        &[&comment],
    )
    .map_err(|e| RoleError::Setup(e.to_string()))?;
    sleep_until_realtime(start_realtime, stop);
    c.run_start_mono = monotonic_ns() - realtime_ns().saturating_sub(start_realtime);
    c.run_loop(stop, &mut hlog)?;
    // The run ends at the measured phase's end, or later if replies were still drained.
    let end_ns = ((timeline.warmup_ms + timeline.measure_ms) * 1_000_000).max(c.now_rel());
    c.finish(config, &timeline, client, end_ns, hlog)
}

impl Client {
    fn new(timeline: &Timeline, cc: &ClientConfig, host: &HostReady) -> Result<Client, RoleError> {
        let workload = workload::client(&cc.dataset, &host.dataset, cc.index, cc.seed, cc.verify)?;
        let socket = udp::bind(
            SocketAddr::new(udp::local_ip_towards(host.ingress)?, 0),
            false,
        )?;
        let reply_to = naam_net::reply_addr(socket.local_addr());
        let catalog: Vec<_> = host.catalog.iter().map(|e| e.info()).collect();
        let table =
            RegionTable::from_catalog(&catalog).map_err(|e| RoleError::Setup(e.to_string()))?;
        let server = workload::server(&cc.dataset)?;
        let functions = crate::host::functions(&*server, cc.dataset.tenants)?;
        let mut exec_config = ExecutorConfig::new(Location::Client);
        exec_config.inflight_max = naam_engine::exec::INFLIGHT_LIMIT;
        let local = Executor::new(exec_config, Arc::new(functions), Arc::new(table))
            .map_err(|e| RoleError::Setup(e.to_string()))?;
        let tags_set = TagSet::locations();
        let tag = |l: Location| {
            tags_set
                .id(l.name())
                .ok_or_else(|| RoleError::Setup(format!("no tag {l}")))
        };
        let tags = [
            tag(Location::Host)?,
            tag(Location::Nic)?,
            tag(Location::Client)?,
        ];
        let load = LoadConfig {
            mode: LoadMode::Poisson {
                rate_per_s: cc.offered_ops_per_s,
                seed: cc.seed ^ 0x5c4e_d01e,
            },
            warmup_ns: timeline.warmup_ms * 1_000_000,
            measure_ns: timeline.measure_ms * 1_000_000,
            requests_max: naam_loadgen::generator::REQUESTS_MAX,
            inflight_max: cc.inflight_max,
            interval_ns: cc.interval_ms * 1_000_000,
            thresholds: Thresholds::default(),
            rate_steps: cc
                .load_steps
                .iter()
                .map(|&(at_ms, factor)| RateStep {
                    at_ns: (timeline.warmup_ms + at_ms) * 1_000_000,
                    factor,
                })
                .collect(),
        };
        let generator =
            LoadGenerator::new(load, tags_set).map_err(|e| RoleError::Setup(e.to_string()))?;
        let controller = cc
            .client_policy
            .as_ref()
            .map(|spec| Controller::new(policy::build(spec), RuleKey::DEFAULT));
        let client_permille = controller
            .as_ref()
            .map_or(0, |c| c.current().shares.of(Location::Client));
        Ok(Client {
            index: cc.index,
            socket,
            ingress: host.ingress,
            rnic: host.rnic,
            reply_to,
            workload,
            generator,
            tags,
            local,
            inflight: HashMap::new(),
            reads: HashMap::new(),
            client_permille,
            controller,
            request: Request::default(),
            frame: Vec::new(),
            outbox: SendBatch::new(BATCH_MAX),
            tally: Tally::default(),
            timeout_ns: cc.timeout_ms * 1_000_000,
            warmup_ns: timeline.warmup_ms * 1_000_000,
            end_ns: (timeline.warmup_ms + timeline.measure_ms) * 1_000_000,
            run_start_mono: 0,
        })
    }

    fn now_rel(&self) -> u64 {
        monotonic_ns().saturating_sub(self.run_start_mono)
    }

    fn run_loop<W: std::io::Write>(
        &mut self,
        stop: &AtomicBool,
        hlog: &mut HlogWriter<W>,
    ) -> Result<(), RoleError> {
        let mut recv = RecvBatch::new(BATCH_MAX);
        let mut next_sweep = 0u64;
        let mut next_sample = CLIENT_SAMPLE_PERIOD_NS;
        let mut drain_deadline: Option<u64> = None;
        // However far behind the generator is (every in-flight slot taken by an unanswered
        // request), the run ends at the measured phase's end plus the drain grace.
        let hard_end = self.end_ns + DRAIN_GRACE.as_nanos() as u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let now = self.now_rel();
            if now >= hard_end {
                return Ok(());
            }
            while let Some(ticket) = self
                .generator
                .poll_send(now)
                .map_err(|e| RoleError::Setup(e.to_string()))?
            {
                self.issue(ticket, now);
            }
            self.flush_outbox();
            let wait = self.wait_for(now);
            let n = self.socket.recv_batch(&mut recv, wait).unwrap_or(0);
            for i in 0..n {
                self.on_datagram(recv.get(i).bytes);
            }
            self.run_local();
            let now = self.now_rel();
            while let Some(interval) = self
                .generator
                .poll_interval(now)
                .map_err(|e| RoleError::Setup(e.to_string()))?
            {
                write_interval(hlog, interval, self.warmup_ns)?;
            }
            if now >= next_sweep {
                self.sweep_timeouts(now);
                next_sweep = now + TIMEOUT_SWEEP_NS;
            }
            if now >= next_sample {
                self.policy_tick(now);
                next_sample = now + CLIENT_SAMPLE_PERIOD_NS;
            }
            if self.generator.is_done(now) {
                let deadline = *drain_deadline.get_or_insert(now + DRAIN_GRACE.as_nanos() as u64);
                if self.inflight.is_empty() || now >= deadline {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// How long to block: until the next send is due, at most [`RECV_WAIT_MAX`]; not at all while
    /// the local executor has work.
    fn wait_for(&self, now: u64) -> Duration {
        if self.local.ready_len() > 0 {
            return Duration::ZERO;
        }
        let until_next = self
            .generator
            .next_send_ns()
            .map_or(u64::MAX, |t| t.saturating_sub(now));
        Duration::from_nanos(until_next).min(RECV_WAIT_MAX)
    }

    fn issue(&mut self, ticket: SendTicket, now: u64) {
        self.workload.next(&mut self.request);
        let request_id = u64::from(self.index) << 48 | ticket.seq;
        let local =
            !self.request.host_only && steer_bucket(RequestId(request_id)) < self.client_permille;
        let invoke = Invoke {
            flow: self.index,
            flags: InvokeFlags(InvokeFlags::ALLOW_PUSHBACK),
            reply_to: Some(self.reply_to),
            ..Invoke::new_message(
                tenant_id(self.request.tenant),
                FunctionId(self.request.function),
                RequestId(request_id),
                &self.request.args,
                self.request.descriptors,
            )
        };
        let pending = Pending {
            ticket,
            expect: self.request.expect,
            op: self.request.op,
            deadline_ns: now + self.timeout_ns,
            local,
        };
        if local {
            self.local.submit(Nanos(now), Nanos(now), 0, &invoke);
        } else if invoke.encode(&mut self.frame).is_ok() {
            if !self.outbox.push(&self.frame, self.ingress) {
                self.flush_outbox();
                self.outbox.push(&self.frame, self.ingress);
            }
        } else {
            *self.tally.errors.entry("encode".into()).or_default() += 1;
        }
        self.inflight.insert(request_id, pending);
    }

    /// Sends the requests queued by [`Client::issue`] in one `sendmmsg`.
    fn flush_outbox(&mut self) {
        let queued = self.outbox.len();
        if queued > 0 && self.socket.send_batch(&mut self.outbox).is_err() {
            *self.tally.errors.entry("send".into()).or_default() += queued as u64;
            self.outbox.clear();
        }
    }

    fn on_datagram(&mut self, bytes: &[u8]) {
        match naam_engine::Frame::decode(bytes) {
            Ok(naam_engine::Frame::Reply(reply)) => self.on_reply(&reply),
            Ok(naam_engine::Frame::ReadReply(read)) => {
                self.on_read_reply(read.read_id, read.denial, read.data)
            }
            _ => {
                *self
                    .tally
                    .errors
                    .entry("malformed-reply".into())
                    .or_default() += 1
            }
        }
    }

    fn on_reply(&mut self, reply: &Reply<'_>) {
        let Some(&pending) = self.inflight.get(&reply.request_id.0) else {
            self.tally.late_replies += 1;
            return;
        };
        if self.controller.is_none() {
            self.client_permille = reply.client_permille;
        }
        match reply.status {
            Status::Pushback => self.run_continuation(reply, pending),
            status => self.complete(reply.request_id.0, status, reply.location, reply.payload),
        }
    }

    /// The server pushed the request back: run its continuation here.
    fn run_continuation(&mut self, reply: &Reply<'_>, mut pending: Pending) {
        self.tally.pushed_back += 1;
        let Ok(naam_engine::Frame::Invoke(continuation)) =
            naam_engine::Frame::decode(reply.payload)
        else {
            return self.complete(
                reply.request_id.0,
                Status::Error(malformed()),
                reply.location,
                &[],
            );
        };
        pending.local = true;
        self.inflight.insert(reply.request_id.0, pending);
        let now = self.now_rel();
        self.local.submit(Nanos(now), Nanos(now), 0, &continuation);
    }

    fn on_read_reply(&mut self, read_id: u64, denial: u32, data: &[u8]) {
        let Some(sent) = self.reads.remove(&read_id) else {
            return;
        };
        self.tally.reads += 1;
        self.tally.read_rtt_ns_sum += self.now_rel().saturating_sub(sent);
        let id = AccessId::from_u64(read_id);
        if denial == 0 {
            self.local.complete_access(id, data);
        } else {
            self.local
                .fail_access(Nanos(self.now_rel()), id, AccessFailure::Denied(denial));
        }
    }

    /// Sends the local executor's accesses as one-sided reads, runs its steps, and completes what
    /// finished.
    fn run_local(&mut self) {
        loop {
            let now = self.now_rel();
            while let Some(access) = self.local.poll_access() {
                self.send_read(access, now);
            }
            let ran = self.local.run(Nanos(now), LOCAL_STEPS_PER_ROUND);
            let mut frame = std::mem::take(&mut self.frame);
            while let Some(done) = self.local.poll_completion(&mut frame) {
                let Ok(naam_engine::Frame::Reply(reply)) = naam_engine::Frame::decode(&frame)
                else {
                    continue;
                };
                let payload = reply.payload.to_vec();
                self.complete(done.request_id.0, done.status, Location::Client, &payload);
            }
            self.frame = frame;
            if ran == 0 {
                return;
            }
        }
    }

    fn send_read(&mut self, access: naam_engine::AccessRequest, now: u64) {
        let read_id = access.id.to_u64();
        let read = ReadRequest {
            tenant: access.tenant,
            read_id,
            rkey: access.descriptor.rkey,
            offset: access.descriptor.offset,
            len: access.descriptor.len,
        };
        let sent = naam_engine::Frame::Read(read)
            .encode(&mut self.frame)
            .is_ok()
            && self.socket.send_to(&self.frame, self.rnic).is_ok();
        if sent {
            self.reads.insert(read_id, now);
            self.tally.reads_of_local += 1;
        } else {
            self.local
                .fail_access(Nanos(now), access.id, AccessFailure::DataPath);
        }
    }

    /// Ends a request: verifies, records its latency under the location that ran it, counts.
    fn complete(&mut self, request_id: u64, status: Status, location: Location, payload: &[u8]) {
        let Some(pending) = self.inflight.remove(&request_id) else {
            return;
        };
        let now = self.now_rel();
        match status {
            Status::Ok => {
                match self.workload.verify(pending.expect, payload) {
                    Verified::Correct => {}
                    Verified::Miss => self.tally.misses += 1,
                    Verified::Wrong(why) => {
                        self.tally.verify_failures += 1;
                        self.tally.first_verify_failure.get_or_insert_with(|| {
                            format!("{} request {request_id:#x}: {why}", pending.op)
                        });
                    }
                }
                let tag = self.tags[location.index()];
                if let Ok(latency) = self.generator.on_complete(&pending.ticket, tag, now) {
                    self.count_done(location, latency);
                }
            }
            Status::Error(code) => {
                *self
                    .tally
                    .errors
                    .entry(code.kind.name().to_string())
                    .or_default() += 1;
                self.generator.on_fail(&pending.ticket);
            }
            Status::Pushback => {
                *self.tally.errors.entry("pushback-loop".into()).or_default() += 1;
                self.generator.on_fail(&pending.ticket);
            }
        }
    }

    fn count_done(&mut self, location: Location, latency: u64) {
        if location == Location::Client {
            self.tally.local_done += 1;
            self.tally.local_latency_ns_sum += latency;
        } else {
            self.tally.server_done += 1;
            self.tally.server_latency_ns_sum += latency;
        }
    }

    fn sweep_timeouts(&mut self, now: u64) {
        let expired: Vec<u64> = self
            .inflight
            .iter()
            .filter(|(_, p)| p.deadline_ns <= now)
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            if let Some(p) = self.inflight.remove(&id) {
                *self.tally.errors.entry("timeout".into()).or_default() += 1;
                self.generator.on_fail(&p.ticket);
            }
        }
        let stale: Vec<u64> = self
            .reads
            .iter()
            .filter(|&(_, &sent)| now.saturating_sub(sent) > self.timeout_ns)
            .map(|(&id, _)| id)
            .collect();
        for id in stale {
            self.reads.remove(&id);
            self.local
                .fail_access(Nanos(now), AccessId::from_u64(id), AccessFailure::DataPath);
        }
    }

    /// Client-side policies (Kayak, Cell) decide the share of requests run here.
    fn policy_tick(&mut self, now: u64) {
        let t = self.tally_period();
        let Some(controller) = self.controller.as_mut() else {
            return;
        };
        let sample = ClientSample {
            at: Nanos(now),
            period_ns: CLIENT_SAMPLE_PERIOD_NS,
            server_completions: t.0,
            local_completions: t.1,
            server_latency_ns_mean: t.2,
            local_latency_ns_mean: t.3,
            read_rtt_ns_mean: t.4,
            reads_per_request_milli: t.5,
        };
        if let Some(change) = controller.on_client_sample(sample) {
            self.client_permille = change.after.of(Location::Client);
        }
    }

    /// The period's (server done, local done, server mean, local mean, read rtt mean, reads per
    /// local request ×1000), resetting the period counters.
    fn tally_period(&mut self) -> (u64, u64, u64, u64, u64, u64) {
        let t = &mut self.tally;
        let mean = |sum: u64, n: u64| sum.checked_div(n).unwrap_or(0);
        let out = (
            t.server_done,
            t.local_done,
            mean(t.server_latency_ns_sum, t.server_done),
            mean(t.local_latency_ns_sum, t.local_done),
            mean(t.read_rtt_ns_sum, t.reads),
            (t.reads_of_local * 1000)
                .checked_div(t.local_done)
                .unwrap_or(0),
        );
        (
            t.server_done,
            t.local_done,
            t.server_latency_ns_sum,
            t.local_latency_ns_sum,
        ) = (0, 0, 0, 0);
        (t.reads, t.read_rtt_ns_sum, t.reads_of_local) = (0, 0, 0);
        out
    }

    fn finish<W: std::io::Write>(
        self,
        config: &RoleConfig,
        timeline: &Timeline,
        cc: &ClientConfig,
        end_ns: u64,
        mut hlog: HlogWriter<W>,
    ) -> Result<(), RoleError> {
        let distribution = self.workload.distribution_name().to_string();
        let mut errors = self.tally.errors;
        let report = self
            .generator
            .finish(end_ns)
            .map_err(|e| RoleError::Setup(e.to_string()))?;
        let warmup_ns = timeline.warmup_ms * 1_000_000;
        for interval in report.intervals {
            write_interval(&mut hlog, interval, warmup_ns)?;
        }
        hlog.finish().map_err(|e| RoleError::Setup(e.to_string()))?;
        if report.rate.inflight_at_end > 0 {
            *errors.entry("unanswered-at-end".into()).or_default() += report.rate.inflight_at_end;
        }
        let summary = ClientSummary {
            schema: raw::RAW_SCHEMA_VERSION,
            client: cc.index,
            schedule: ScheduleKind::Poisson,
            offered_ops_per_s: Some(cc.offered_ops_per_s),
            sent: report.rate.intended,
            completed: report.rate.completed,
            errors,
            verify_failures: self.tally.verify_failures,
            misses: self.tally.misses,
            send_lateness_ns_p50: report.rate.send_lateness_ns_p50,
            send_lateness_ns_p99: report.rate.send_lateness_ns_p99,
            send_lateness_ns_max: report.rate.send_lateness_ns_max,
            achieved_ops_per_s: report.rate.achieved_rate_per_s,
            warmup_ms: timeline.warmup_ms,
            measure_ms: timeline.measure_ms,
            seed: cc.seed,
            distribution,
            interval_ms: cc.interval_ms,
        };
        if let Some(first) = &self.tally.first_verify_failure {
            eprintln!(
                "client {}: {} verification failures; first: {first}",
                cc.index, self.tally.verify_failures
            );
        }
        let path = config.out_dir.join(raw::client_summary_file(cc.index));
        ready::write_atomic(&path, &summary).map_err(|e| RoleError::io(&path, "write summary", e))
    }
}

/// Writes an interval with its start moved from the run's start to the measured phase's start
/// (the recorder keeps warm-up out of the intervals it hands out).
fn write_interval<W: std::io::Write>(
    hlog: &mut HlogWriter<W>,
    mut interval: naam_loadgen::IntervalHistogram,
    warmup_ns: u64,
) -> Result<(), RoleError> {
    interval.start_ns = interval.start_ns.saturating_sub(warmup_ns);
    hlog.write_interval(&interval)
        .map_err(|e| RoleError::Setup(e.to_string()))
}

fn malformed() -> naam_engine::wire::ErrorCode {
    naam_engine::wire::ErrorCode {
        kind: ErrorKind::Malformed,
        detail: 0,
    }
}
