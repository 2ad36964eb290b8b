//! A client role: a thin driver of a [`ClientSession`] — the load generator, the workload and the
//! engine's client endpoint — over one UDP socket and CLOCK_MONOTONIC. It offers open-loop load
//! (Poisson, seeded) from the workload's generator; the endpoint sends each request to the
//! server's ingress or — for its share of client-side execution, or when the server pushes a
//! request back — runs it itself in a client-location executor whose accesses are one-sided reads
//! of the server's memory (emulated RNIC, or RDMA with the `rdma` feature).
//!
//! Latency runs from each request's *intended* send time (no coordinated omission) and is
//! recorded per execution location in interval histograms written as an HdrHistogram interval
//! log (`client-<k>.hlog`); `client-<k>.json` holds the rate accounting, errors and verification
//! failures of the measured phase. With `verify`, every answer is checked against the value it
//! must have. This file owns the socket, the thread's pinning and priority, the clock, batching
//! and the files; everything a request lives through is the session's and the endpoint's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use naam_engine::client::{Carries, Destination, EndpointConfig};
use naam_engine::{ClientEndpoint, Controller, Nanos, RegionTable, RuleKey, policy};
use naam_loadgen::{HlogWriter, LoadConfig, LoadGenerator, LoadMode, RateStep, TagSet, Thresholds};
use naam_net::steer_port::{STEER_PORT_BASE_DEFAULT, STEER_PORTS, SteerSockets};
use naam_net::{RecvBatch, SendBatch, UdpSocket, reply_addr};
use naam_results::raw::{self, ClientSummary, ScheduleKind};

use crate::config::{ClientConfig, RoleConfig, Timeline};
use crate::os::{monotonic_ns, pin_current_thread, realtime_ns, sleep_until_realtime};
use crate::ready::{self, HostReady};
use crate::session::{ClientSession, SessionReport, SessionTimes};
use crate::timeline::{TIMELINE_WAIT_MAX, TimelineWatch};
use crate::{RoleError, udp, workload};

/// How long a client waits for the host's ready file.
pub const HOST_READY_TIMEOUT: Duration = Duration::from_secs(120);
/// After the last send, how long in-flight requests may still complete.
pub const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// Period of client-side policy samples (Kayak, Cell).
pub const CLIENT_SAMPLE_PERIOD_NS: u64 = naam_engine::client::SAMPLE_PERIOD_NS_DEFAULT;
/// How often expired requests and reads are swept.
pub const TIMEOUT_SWEEP_NS: u64 = naam_engine::client::SWEEP_PERIOD_NS_DEFAULT;
/// Longest wait in one receive call.
pub const RECV_WAIT_MAX: Duration = Duration::from_millis(1);
/// Datagrams per receive or send batch: naam-net's largest.
use crate::udp::BATCH_MAX;
/// Steps the local executor runs per round.
const LOCAL_STEPS_PER_ROUND: usize = 64;
/// Descriptors a client needs besides its steering sockets (its socket, files, the runtime's).
const OPEN_FILES_SPARE: u64 = 256;

/// The running client: the session and what drives it.
struct Client {
    socket: UdpSocket,
    /// Send-only sockets, one per steering key: each Invoke leaves from the UDP source port that
    /// carries its key (naam-net `steer_port`), the header an eSwitch matches.
    steer: SteerSockets,
    ingress: SocketAddr,
    rnic: SocketAddr,
    session: ClientSession,
    frame: Vec<u8>,
    outbox: SendBatch,
    outbox_carries: Vec<Carries>,
    warmup_ns: u64,
    run_start_mono: u64,
    /// The thread generates at real-time priority (client-side steps run at the default one).
    realtime: bool,
}

/// Runs the client role; returns when its run is over.
pub fn run(
    config: &RoleConfig,
    client: &ClientConfig,
    stop: &'static AtomicBool,
) -> Result<(), RoleError> {
    let _ = pin_current_thread(&client.cpus);
    // Real-time only when the client is not pinned: a manifest pins it onto a CPU it shares with
    // a server role on purpose (load-shift, policies: the NIC's), where a real-time generator
    // would preempt that role's work and inflate its latency unseen; there, a generator the
    // server holds off its core is seen instead (send lateness, an invalid point). Unpinned, the
    // scheduler moves a preempted thread to the other core.
    let punctuality = crate::os::make_current_thread_punctual(client.cpus.is_empty());
    for what in &punctuality.not_applied {
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
    c.realtime = punctuality.realtime;
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
    let measure_start = Duration::from_nanos(timeline.measure_start_realtime_ns());
    let hlog = HlogWriter::new(
        std::io::BufWriter::new(file),
        TagSet::locations(),
        measure_start,
        &[&comment],
    )
    .map_err(|e| RoleError::Setup(e.to_string()))?;
    let writer = IntervalWriter::spawn(hlog, c.warmup_ns)?;
    sleep_until_realtime(start_realtime, stop);
    c.run_start_mono = monotonic_ns() - realtime_ns().saturating_sub(start_realtime);
    let ran = c.run_loop(stop, &writer);
    let hlog = writer.join()?;
    ran?;
    let end = RunEnd::at(&timeline, c.now_rel(), stop.load(Ordering::SeqCst));
    let report = c.session.finish(end.end_ns).map_err(setup)?;
    finish(config, &timeline, client, report, hlog, end)
}

/// The client's interval log, written by a thread of its own: encoding and writing a histogram
/// (compression, file I/O that can block behind the page cache's writeback) never delays the
/// generator's sends.
struct IntervalWriter {
    intervals: std::sync::mpsc::Sender<naam_loadgen::IntervalHistogram>,
    thread: std::thread::JoinHandle<Result<ClientHlog, RoleError>>,
}

type ClientHlog = HlogWriter<std::io::BufWriter<std::fs::File>>;

impl IntervalWriter {
    fn spawn(mut hlog: ClientHlog, warmup_ns: u64) -> Result<IntervalWriter, RoleError> {
        let (intervals, received) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("client-hlog".into())
            .spawn(move || {
                crate::os::make_current_thread_ordinary();
                for interval in received {
                    write_interval(&mut hlog, interval, warmup_ns)?;
                }
                Ok(hlog)
            })
            .map_err(|e| RoleError::Setup(format!("interval writer thread: {e}")))?;
        Ok(IntervalWriter { intervals, thread })
    }

    /// Queues `interval`; fails only when the writer thread has stopped on an error.
    fn write(&self, interval: naam_loadgen::IntervalHistogram) -> Result<(), RoleError> {
        self.intervals
            .send(interval)
            .map_err(|_| RoleError::Setup("the interval writer stopped".into()))
    }

    /// Waits for every queued interval to be written; returns the log (or the writer's error).
    fn join(self) -> Result<ClientHlog, RoleError> {
        drop(self.intervals);
        self.thread
            .join()
            .map_err(|_| RoleError::Setup("the interval writer panicked".into()))?
    }
}

/// Where a client's run ended: at the measured phase's end (or later while replies drained), or
/// earlier when a signal stopped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunEnd {
    /// The run's end, ns since the run's start.
    pub end_ns: u64,
    /// Set when the client was stopped before its measured phase ended: ms of the measured
    /// phase that ran (0 when stopped in warm-up).
    pub stopped_at_ms: Option<u64>,
}

impl RunEnd {
    /// The end of a run that stopped at `now_ns` (since the run's start), `stopped` when the
    /// stop flag ended it.
    pub fn at(timeline: &Timeline, now_ns: u64, stopped: bool) -> RunEnd {
        let planned_end_ns = (timeline.warmup_ms + timeline.measure_ms) * 1_000_000;
        if stopped && now_ns < planned_end_ns {
            let warmup_ns = timeline.warmup_ms * 1_000_000;
            return RunEnd {
                end_ns: now_ns.max(warmup_ns),
                stopped_at_ms: Some(now_ns.saturating_sub(warmup_ns) / 1_000_000),
            };
        }
        RunEnd {
            end_ns: planned_end_ns.max(now_ns),
            stopped_at_ms: None,
        }
    }
}

/// The generator's configuration for this client and timeline.
pub fn load_config(timeline: &Timeline, cc: &ClientConfig) -> LoadConfig {
    LoadConfig {
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
        sum_totals: true,
    }
}

/// The client-side controller of `cc`'s policy, if it has one (Kayak, Cell).
pub fn client_controller(cc: &ClientConfig) -> Option<Controller> {
    cc.client_policy
        .as_ref()
        .map(|spec| Controller::new(policy::build(spec), RuleKey::DEFAULT))
}

/// The session's phases for `timeline`.
pub fn session_times(timeline: &Timeline) -> SessionTimes {
    SessionTimes {
        warmup_ns: timeline.warmup_ms * 1_000_000,
        end_ns: (timeline.warmup_ms + timeline.measure_ms) * 1_000_000,
        drain_grace_ns: DRAIN_GRACE.as_nanos() as u64,
    }
}

impl Client {
    fn new(timeline: &Timeline, cc: &ClientConfig, host: &HostReady) -> Result<Client, RoleError> {
        let workload = workload::client(&cc.dataset, &host.dataset, cc.index, cc.seed, cc.verify)?;
        let socket = udp::bind(
            SocketAddr::new(udp::local_ip_towards(host.ingress)?, 0),
            false,
        )?;
        let catalog: Vec<_> = host.catalog.iter().map(|e| e.info()).collect();
        let table = RegionTable::from_catalog(&catalog).map_err(setup)?;
        let server = workload::server(&cc.dataset)?;
        // Clients run pushed-back steps on the interpreter (manifests choose host and NIC only).
        let functions = crate::host::functions(
            &*server,
            cc.dataset.tenants,
            crate::config::VmBackend::Interpreter,
        )?;
        let mut endpoint_config = EndpointConfig::new(cc.index, cc.timeout_ms * 1_000_000);
        // Invokes leave from steering ports, so each names this socket as its reply address: the
        // server honours an address on the datagram's own source host (naam-net `steer_port`).
        endpoint_config.reply_to = Some(reply_addr(socket.local_addr()));
        endpoint_config.inflight_max = cc.inflight_max as usize;
        endpoint_config.server_only_pinned = host.host_native_pinned;
        let endpoint = ClientEndpoint::new(
            endpoint_config,
            Arc::new(functions),
            Arc::new(table),
            client_controller(cc),
            Nanos(0),
        )
        .map_err(setup)?;
        let generator =
            LoadGenerator::new(load_config(timeline, cc), TagSet::locations()).map_err(setup)?;
        let session = ClientSession::new(generator, workload, endpoint, session_times(timeline))
            .map_err(setup)?;
        crate::os::raise_open_files_limit(u64::from(STEER_PORTS) + OPEN_FILES_SPARE);
        let mut steer =
            SteerSockets::new(socket.local_addr().ip(), STEER_PORT_BASE_DEFAULT).map_err(setup)?;
        // Before the run: binding lazily stalled the generator ~10 ms per descriptor-table
        // growth (naam-net `SteerSockets::bind_all`).
        steer.bind_all().map_err(setup)?;
        Ok(Client {
            socket,
            steer,
            ingress: host.ingress,
            rnic: host.rnic,
            session,
            frame: Vec::new(),
            outbox: SendBatch::new(BATCH_MAX),
            outbox_carries: Vec::with_capacity(BATCH_MAX),
            warmup_ns: timeline.warmup_ms * 1_000_000,
            run_start_mono: 0,
            realtime: false,
        })
    }

    fn now_rel(&self) -> u64 {
        monotonic_ns().saturating_sub(self.run_start_mono)
    }

    fn run_loop(&mut self, stop: &AtomicBool, writer: &IntervalWriter) -> Result<(), RoleError> {
        let mut recv = RecvBatch::new(BATCH_MAX);
        while !stop.load(Ordering::Relaxed) {
            let now = self.now_rel();
            self.session.poll_send(now).map_err(setup)?;
            self.flush_outbox();
            self.receive(&mut recv, self.wait_for(now));
            self.run_local()?;
            let now = self.now_rel();
            while let Some(interval) = self.session.poll_interval(now).map_err(setup)? {
                writer.write(interval)?;
            }
            self.session.handle_timeout(now);
            self.flush_outbox();
            if self.session.is_finished(now) {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Waits up to `wait`, then handles every datagram that has arrived. Replies to requests do
    /// not wake the generator: each wake-up costs ~10 µs of CPU in a VM (measured with perf:
    /// 70 % of a client's CPU at 25 kops/s was the scheduler), CPU a co-located NIC or host
    /// needs. They wait in the socket for the next send or timer and are timed by their kernel
    /// receive timestamps, so latency is measured to their arrival. Read replies for client-side
    /// steps do wake it: those steps continue at once; so do replies while the in-flight window
    /// is full, since only a completion lets the next due request go.
    fn receive(&mut self, recv: &mut RecvBatch, wait: Duration) {
        let wake_on_reply = self.session.awaits_reads() || self.session.waits_for_slot();
        let wait = if wake_on_reply || wait.is_zero() {
            wait
        } else {
            std::thread::sleep(wait);
            Duration::ZERO
        };
        let mut wait = wait;
        loop {
            let n = self.socket.recv_batch(recv, wait).unwrap_or(0);
            let now = self.now_rel();
            let age_base = realtime_ns();
            for i in 0..n {
                let datagram = recv.get(i);
                let age_ns = datagram
                    .kernel_rx_realtime_ns
                    .map_or(0, |t| age_base.saturating_sub(t));
                let arrived = now.saturating_sub(age_ns);
                self.session
                    .handle_datagram_arrived(now, arrived, datagram.bytes);
            }
            // A full batch may mean more waiting, but a due send goes first: after a backlog
            // (a saturated server answering thousands at once) reading it all before sending
            // would make the generator late by the time the reading takes.
            if n < BATCH_MAX || self.session.send_due(self.now_rel()) {
                return;
            }
            wait = Duration::ZERO;
        }
    }

    /// How long to block: until the session next needs the driver, at most [`RECV_WAIT_MAX`];
    /// not at all while local steps are ready.
    fn wait_for(&self, now: u64) -> Duration {
        if self.session.local_ready() {
            return Duration::ZERO;
        }
        let until_next = self
            .session
            .next_wakeup_ns()
            .map_or(u64::MAX, |t| t.saturating_sub(now));
        Duration::from_nanos(until_next).min(RECV_WAIT_MAX)
    }

    /// Runs local steps until none is ready, sending the reads they ask for; the generator's
    /// due requests go out between rounds, so a backlog of client-side work never delays them.
    fn run_local(&mut self) -> Result<(), RoleError> {
        while self.session.local_ready() {
            let now = self.now_rel();
            crate::os::with_ordinary_priority(self.realtime, || {
                self.session.run_local(now, LOCAL_STEPS_PER_ROUND)
            });
            self.session.poll_send(self.now_rel()).map_err(setup)?;
            self.flush_outbox();
        }
        Ok(())
    }

    /// Sends everything the session has queued, in `sendmmsg` batches.
    fn flush_outbox(&mut self) {
        while let Some(transmit) = self.session.poll_transmit(&mut self.frame) {
            let to = match transmit.to {
                Destination::Ingress => self.ingress,
                Destination::Rnic => self.rnic,
            };
            if let Some(key) = transmit.steer {
                if self.steer.send_to(key, &self.frame, to).is_err() {
                    let now = self.now_rel();
                    self.session.transmit_failed(now, transmit.carries);
                }
                continue;
            }
            if !self.outbox.push(&self.frame, to) {
                self.send_batch();
                self.outbox.push(&self.frame, to);
            }
            self.outbox_carries.push(transmit.carries);
        }
        self.send_batch();
    }

    fn send_batch(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        if self.socket.send_batch(&mut self.outbox).is_err() {
            let now = self.now_rel();
            self.outbox.clear();
            for carries in std::mem::take(&mut self.outbox_carries) {
                self.session.transmit_failed(now, carries);
            }
        }
        self.outbox_carries.clear();
    }
}

fn finish<W: std::io::Write>(
    config: &RoleConfig,
    timeline: &Timeline,
    cc: &ClientConfig,
    report: SessionReport,
    mut hlog: HlogWriter<W>,
    end: RunEnd,
) -> Result<(), RoleError> {
    let warmup_ns = timeline.warmup_ms * 1_000_000;
    let SessionReport {
        run,
        errors,
        measured,
        warmup,
        distribution,
    } = report;
    for interval in run.intervals {
        write_interval(&mut hlog, interval, warmup_ns)?;
    }
    hlog.finish().map_err(setup)?;
    let summary = ClientSummary {
        schema: raw::RAW_SCHEMA_VERSION,
        client: cc.index,
        schedule: ScheduleKind::Poisson,
        offered_ops_per_s: Some(cc.offered_ops_per_s),
        sent: run.rate.intended,
        completed: run.rate.completed,
        completed_after_phase: run.rate.completed_after_phase,
        errors,
        verify_failures: measured.verify_failures,
        misses: measured.misses,
        send_lateness_ns_p50: run.rate.send_lateness_ns_p50,
        send_lateness_ns_p99: run.rate.send_lateness_ns_p99,
        send_lateness_ns_max: run.rate.send_lateness_ns_max,
        window: crate::session::window_hold(&run.rate),
        achieved_ops_per_s: run.rate.achieved_rate_per_s,
        warmup_ms: timeline.warmup_ms,
        // The measured phase that ran: short of the plan's when a signal stopped the client.
        measure_ms: end.stopped_at_ms.unwrap_or(timeline.measure_ms),
        stopped_at_ms: end.stopped_at_ms,
        seed: cc.seed,
        distribution: distribution.to_string(),
        interval_ms: cc.interval_ms,
    };
    if let Some(ms) = end.stopped_at_ms {
        eprintln!(
            "client {}: stopped by a signal {ms} ms into the {} ms measured phase; the point is invalid",
            cc.index, timeline.measure_ms
        );
    }
    if let Some(first) = &measured.first_verify_failure {
        eprintln!(
            "client {}: {} verification failures in the measured phase; first: {first}",
            cc.index, measured.verify_failures
        );
    }
    if let Some(first) = &warmup.first_verify_failure {
        eprintln!(
            "client {}: {} verification failures in warm-up (not in results); first: {first}",
            cc.index, warmup.verify_failures
        );
    }
    let path = config.out_dir.join(raw::client_summary_file(cc.index));
    ready::write_atomic(&path, &summary).map_err(|e| RoleError::io(&path, "write summary", e))
}

/// Writes an interval with its start moved from the run's start to the measured phase's start
/// (the recorder keeps warm-up out of the intervals it hands out).
fn write_interval<W: std::io::Write>(
    hlog: &mut HlogWriter<W>,
    mut interval: naam_loadgen::IntervalHistogram,
    warmup_ns: u64,
) -> Result<(), RoleError> {
    interval.start_ns = interval.start_ns.saturating_sub(warmup_ns);
    hlog.write_interval(&interval).map_err(setup)
}

fn setup(e: impl std::fmt::Display) -> RoleError {
    RoleError::Setup(e.to_string())
}
