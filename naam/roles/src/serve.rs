//! The server-side worker thread, shared by host workers and NIC workers: a thin driver of the
//! engine's sans-IO [`ServerWorker`]. It owns the socket, the clock (CLOCK_REALTIME, the clock of
//! kernel receive timestamps), the data path and the core-speed emulation: receive a batch of
//! datagrams and hand them to the worker, perform the accesses it hands out, run its steps, send
//! its replies, and forward its load samples.
//!
//! Host and NIC differ only in their [`AccessPath`] (a copy from host memory, or a DMA that
//! completes after a delay), whether host-native functions run here, the speed of their cores,
//! and where load samples go.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use naam_engine::server::{ReplyTarget, SOURCE_UNKNOWN, Sender};
use naam_engine::wire::LoadSample;
use naam_engine::{
    AccessFill, AccessRequest, Frame, Nanos, RegionId, ServerWorker, WorkerSettings,
};
use naam_net::remote::{ReadVerbs, RegionMap, RemoteReader};
use naam_net::{RecvBatch, SendBatch, UdpSocket};

use crate::counters::Totals;
use crate::host::memory::HostMemory;
use crate::os::{monotonic_ns, realtime_ns};
use crate::shm::SharedRegion;
use crate::timeline::TimelineWatch;
use crate::workload::ServerWorkload;

/// Steps run per round before the worker looks at its socket again.
pub const STEPS_PER_ROUND: usize = 64;
/// Datagrams per receive/send batch of a server worker (half of naam-net's largest batch, so a
/// worker returns to its steps sooner under load).
pub const WORKER_BATCH: usize = 32;
const _: () = assert!(WORKER_BATCH <= crate::udp::BATCH_MAX);
/// Longest blocking wait for datagrams when idle.
pub const IDLE_WAIT: Duration = Duration::from_millis(1);
/// Distinct senders remembered per worker (their replies go back to them).
pub const PEERS_MAX: usize = 4096;

/// Steering settings the controller publishes to the workers (the engine's [`WorkerSettings`],
/// shared between threads).
#[derive(Debug, Default)]
pub struct ControlShared {
    /// Server-side pushback share (permille), also the hint in replies.
    pub client_permille: AtomicU32,
    /// Splinter-style pushback credit in instructions (0: off).
    pub pushback_credit_insn: AtomicU64,
}

impl ControlShared {
    /// Publishes `settings`.
    pub fn publish(&self, settings: WorkerSettings) {
        self.client_permille
            .store(u32::from(settings.client_permille), Ordering::Relaxed);
        self.pushback_credit_insn.store(
            settings.pushback_credit_insn.unwrap_or(0),
            Ordering::Relaxed,
        );
    }

    /// The settings published last.
    pub fn settings(&self) -> WorkerSettings {
        let credit = self.pushback_credit_insn.load(Ordering::Relaxed);
        WorkerSettings {
            client_permille: self.client_permille.load(Ordering::Relaxed) as u16,
            pushback_credit_insn: (credit > 0).then_some(credit),
        }
    }
}

/// How a location reaches region memory.
pub trait AccessPath: Send {
    /// Starts an access; completes it now or queues it.
    fn start(&mut self, now_ns: u64, access: AccessRequest, worker: &mut ServerWorker);
    /// Completes queued accesses that are due; true if any was.
    fn poll_due(&mut self, now_ns: u64, worker: &mut ServerWorker) -> bool;
    /// True while accesses are queued (the worker then polls instead of blocking).
    fn has_pending(&self) -> bool;
}

/// Reads the bytes of `access` from `region` straight into the message's buffer (one copy:
/// the path keeps no buffer of its own) and completes it, or fails it when the region cannot
/// serve them. `#[inline]`: once per access (≈ 4 per request of the simulator's NIC point).
/// LLVM keeps it a call, but the hint compiles a local copy into the caller's crate, called
/// with fewer moves than the exported function (−34 instructions per request of the NIC point,
/// callgrind, against no hint).
#[inline]
fn complete_from(region: Option<&SharedRegion>, access: &AccessRequest, worker: &mut ServerWorker) {
    let offset = access.descriptor.offset;
    let read = |dst: &mut [u8]| region.is_some_and(|r| r.read_into(offset, dst));
    if worker.complete_access_into(access.id, read) == AccessFill::NotServed {
        worker.fail_access(
            Nanos(realtime_ns()),
            access.id,
            naam_engine::AccessFailure::DataPath,
        );
    }
}

/// The host's path: a copy from its own memory, complete at once.
#[derive(Debug)]
pub struct DirectPath {
    memory: Arc<HostMemory>,
}

impl DirectPath {
    /// Over the host's memory.
    pub fn new(memory: Arc<HostMemory>) -> DirectPath {
        DirectPath { memory }
    }
}

impl AccessPath for DirectPath {
    #[inline]
    fn start(&mut self, _now_ns: u64, access: AccessRequest, worker: &mut ServerWorker) {
        complete_from(self.memory.region(access.region), &access, worker);
    }

    fn poll_due(&mut self, _now_ns: u64, _worker: &mut ServerWorker) -> bool {
        false
    }

    fn has_pending(&self) -> bool {
        false
    }
}

/// The emulated NIC's path: a DMA of host memory that completes `delay_ns` after it starts (the
/// PCIe round trip), while the worker serves other messages.
#[derive(Debug)]
pub struct DmaPath {
    regions: Arc<Vec<Option<SharedRegion>>>,
    delay_ns: u64,
    queue: VecDeque<(u64, AccessRequest)>,
}

impl DmaPath {
    /// Over the NIC's read-only mapping of host memory.
    pub fn new(regions: Arc<Vec<Option<SharedRegion>>>, delay_ns: u64) -> DmaPath {
        DmaPath {
            regions,
            delay_ns,
            queue: VecDeque::new(),
        }
    }

    fn region(&self, id: RegionId) -> Option<&SharedRegion> {
        self.regions.get(id.0 as usize)?.as_ref()
    }
}

impl AccessPath for DmaPath {
    fn start(&mut self, now_ns: u64, access: AccessRequest, worker: &mut ServerWorker) {
        if self.delay_ns == 0 {
            let region = self
                .regions
                .get(access.region.0 as usize)
                .and_then(Option::as_ref);
            return complete_from(region, &access, worker);
        }
        // The delay is constant, so the queue stays in due order.
        self.queue.push_back((now_ns + self.delay_ns, access));
    }

    fn poll_due(&mut self, now_ns: u64, worker: &mut ServerWorker) -> bool {
        let mut any = false;
        while let Some(&(due, access)) = self.queue.front() {
            if due > now_ns {
                break;
            }
            self.queue.pop_front();
            complete_from(self.region(access.region), &access, worker);
            any = true;
        }
        any
    }

    fn has_pending(&self) -> bool {
        !self.queue.is_empty()
    }
}

/// Any path, boxed (the NIC role picks its path at start).
impl AccessPath for Box<dyn AccessPath> {
    fn start(&mut self, now_ns: u64, access: AccessRequest, worker: &mut ServerWorker) {
        (**self).start(now_ns, access, worker);
    }

    fn poll_due(&mut self, now_ns: u64, worker: &mut ServerWorker) -> bool {
        (**self).poll_due(now_ns, worker)
    }

    fn has_pending(&self) -> bool {
        (**self).has_pending()
    }
}

/// An off-box NIC's path: one-sided READs of the host's exported regions through naam-net's
/// [`RemoteReader`] (ibverbs with the `rdma` feature; any [`ReadVerbs`]). The per-access cost is
/// the READ's real round trip, not a configured delay. A READ the reader refuses (unknown
/// region, out of bounds, queue full) or the device fails is failed back to the worker as a
/// data-path failure.
pub struct RemotePath<V> {
    reader: RemoteReader<V, AccessRequest>,
    /// Reads refused or failed.
    pub failed: u64,
}

impl<V> std::fmt::Debug for RemotePath<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePath")
            .field("reader", &self.reader)
            .field("failed", &self.failed)
            .finish()
    }
}

impl<V: ReadVerbs> RemotePath<V> {
    /// Reads through `verbs` the regions `map` names.
    pub fn new(verbs: V, map: RegionMap) -> RemotePath<V> {
        RemotePath {
            reader: RemoteReader::new(verbs, map),
            failed: 0,
        }
    }

    fn fail(&mut self, access: &AccessRequest, worker: &mut ServerWorker) {
        self.failed += 1;
        let failure = naam_engine::AccessFailure::DataPath;
        worker.fail_access(Nanos(realtime_ns()), access.id, failure);
    }
}

impl<V: ReadVerbs + Send> AccessPath for RemotePath<V> {
    fn start(&mut self, now_ns: u64, access: AccessRequest, worker: &mut ServerWorker) {
        let d = access.descriptor;
        if self
            .reader
            .start(now_ns, access, access.region.0, d.offset, d.len)
            .is_err()
        {
            self.fail(&access, worker);
        }
    }

    fn poll_due(&mut self, now_ns: u64, worker: &mut ServerWorker) -> bool {
        let mut failed = Vec::new();
        let polled = self.reader.poll(now_ns, |access, result| match result {
            Ok(bytes) => {
                worker.complete_access(access.id, bytes);
            }
            Err(_) => failed.push(access),
        });
        for access in &failed {
            self.fail(access, worker);
        }
        polled.is_ok_and(|n| n > 0) || !failed.is_empty()
    }

    fn has_pending(&self) -> bool {
        self.reader.pending() > 0
    }
}

/// Runs host-native functions (host workers only).
pub struct Natives {
    /// The workload's native code.
    pub workload: Arc<dyn ServerWorkload>,
    /// The memory it writes, with per-tenant write locks.
    pub memory: Arc<HostMemory>,
    args: Vec<u8>,
}

impl std::fmt::Debug for Natives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Natives").finish_non_exhaustive()
    }
}

impl Natives {
    /// Over `memory`.
    pub fn new(workload: Arc<dyn ServerWorkload>, memory: Arc<HostMemory>) -> Natives {
        Natives {
            workload,
            memory,
            args: Vec::new(),
        }
    }

    /// Runs every host-native call the worker handed out; true if there was any.
    pub fn run_pending(&mut self, now_ns: u64, worker: &mut ServerWorker) -> bool {
        let mut any = false;
        while let Some(request) = worker.poll_native() {
            any = true;
            let Some((args, _writes)) = worker.native_call(request.id) else {
                continue;
            };
            self.args.clear();
            self.args.extend_from_slice(args);
            let tenant = request.tenant.0.saturating_sub(1) as usize;
            let result = {
                let _guard = self.memory.write_lock(tenant);
                self.workload.native(
                    request.function,
                    &self.args,
                    &self.memory.tenant_regions(tenant),
                )
            };
            worker.complete_native(
                Nanos(now_ns),
                request.id,
                result.as_deref().map_err(|&code| code),
            );
        }
        any
    }
}

/// Where load samples go.
#[derive(Debug)]
pub enum SampleSink {
    /// To the host's controller thread.
    Channel(crossbeam_channel::Sender<LoadSample>),
    /// To the host's control port (from the NIC process), each sample tagged with the run's key.
    Udp {
        /// The controller's address.
        to: SocketAddr,
        /// The run's control key.
        key: crate::control_auth::ControlKey,
        /// The socket samples leave from, when not the worker's own (the host–NIC link's NIC
        /// end: `HostReady::control_source`).
        from: Option<naam_net::UdpSocket>,
    },
    /// Nowhere (no controller).
    Discard,
}

/// Everything one server worker thread owns.
pub struct WorkerThread<P: AccessPath> {
    /// The engine's worker (executor, counters, sampling).
    pub worker: ServerWorker,
    /// The worker's socket.
    pub socket: UdpSocket,
    /// Its data path.
    pub path: P,
    /// Host-native functions (host only).
    pub natives: Option<Natives>,
    /// Controller settings.
    pub control: Arc<ControlShared>,
    /// Where samples go.
    pub samples: SampleSink,
    /// Beats (CLOCK_REALTIME) at every loop iteration: a worker starved of CPU stops beating, and
    /// the controller sees it and asks why (see `host::control`).
    pub heartbeat: Arc<Liveness>,
    /// Core speed relative to a host core (1.0 = same; 0.5 = steps take twice as long).
    pub core_speed_factor: f64,
    /// The point's timeline (its measured phase bounds the counters).
    pub timeline: TimelineWatch,
    /// Spin instead of blocking when idle.
    pub busy_poll: bool,
    /// Senders trusted to name a reply address inside a message (the user-space eSwitch's
    /// ingress, fixed at start; empty with the kernel eSwitch). Everyone else is answered at
    /// their source address (no reflection: `naam_engine::server::ReplyTarget`).
    pub forwarders: Vec<SocketAddr>,
}

impl<P: AccessPath> std::fmt::Debug for WorkerThread<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerThread")
            .field("location", &self.worker.location())
            .field("socket", &self.socket.local_addr())
            .finish_non_exhaustive()
    }
}

/// What a host's controller reads of one worker: its latest heartbeat (CLOCK_REALTIME of its
/// latest loop iteration) and, once the worker runs, a probe of its thread (its CPU clock and
/// scheduler state) to tell a worker queued behind another task from one the VM stalled.
#[derive(Debug)]
pub struct Liveness {
    beat_ns: AtomicU64,
    thread: std::sync::OnceLock<crate::os::ThreadProbe>,
    /// The worker's receive socket (-1 until it runs): requests waiting there have waited at
    /// least as long as the worker has been silent.
    socket_fd: std::sync::atomic::AtomicI32,
}

impl Liveness {
    /// A worker that beat last at `now_ns` and has no thread yet.
    pub fn new(now_ns: u64) -> Liveness {
        Liveness {
            beat_ns: AtomicU64::new(now_ns),
            thread: std::sync::OnceLock::new(),
            socket_fd: std::sync::atomic::AtomicI32::new(-1),
        }
    }

    /// The worker is alive at `now_ns`.
    pub fn beat(&self, now_ns: u64) {
        self.beat_ns.store(now_ns, Ordering::Relaxed);
    }

    /// Its latest heartbeat (CLOCK_REALTIME ns).
    pub fn beat_ns(&self) -> u64 {
        self.beat_ns.load(Ordering::Relaxed)
    }

    /// Called by the worker's thread when it starts, with the socket it receives on: from now
    /// on the controller can probe both.
    pub fn attach_current_thread(&self, socket_fd: std::os::fd::RawFd) {
        if let Some(probe) = crate::os::ThreadProbe::current() {
            let _ = self.thread.set(probe);
        }
        self.socket_fd.store(socket_fd, Ordering::Relaxed);
    }

    /// Whether a datagram waits in the worker's receive socket (`false` before it runs).
    pub fn has_requests_waiting(&self) -> bool {
        let fd = self.socket_fd.load(Ordering::Relaxed);
        fd >= 0 && crate::os::datagram_waiting(fd)
    }

    /// The worker's thread, once it runs.
    pub fn thread(&self) -> Option<&crate::os::ThreadProbe> {
        self.thread.get()
    }
}

/// What a worker reports when it stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerReport {
    /// Totals of the measured phase.
    pub measured: Totals,
    /// Datagrams that were not NAAM frames (whole run).
    pub malformed: u64,
    /// Frames of a kind this worker does not serve (whole run).
    pub unexpected: u64,
    /// Replies that could not be sent.
    pub send_errors: u64,
    /// Messages whose reply address was ignored: not from a trusted forwarder (whole run).
    pub reply_to_refused: u64,
    /// Replies dropped because their sender could not be remembered (beyond [`PEERS_MAX`]).
    pub unanswerable: u64,
}

struct LoopState {
    recv: RecvBatch,
    send: SendBatch,
    frame: Vec<u8>,
    peers: Vec<SocketAddr>,
    peer_index: HashMap<SocketAddr, u64>,
    phase_known: bool,
    send_errors: u64,
    unanswerable: u64,
}

impl<P: AccessPath> WorkerThread<P> {
    /// Serves until `stop` is set; returns the measured phase's totals.
    pub fn run(mut self, stop: &AtomicBool) -> WorkerReport {
        let mut st = LoopState {
            recv: RecvBatch::new(WORKER_BATCH),
            send: SendBatch::new(WORKER_BATCH),
            frame: Vec::new(),
            peers: Vec::new(),
            peer_index: HashMap::new(),
            phase_known: false,
            send_errors: 0,
            unanswerable: 0,
        };
        self.heartbeat
            .attach_current_thread(self.socket.as_raw_fd());
        for &forwarder in &self.forwarders {
            let token = peer_token(&mut st.peers, &mut st.peer_index, forwarder);
            self.worker.trust_forwarder(token);
        }
        while !stop.load(Ordering::Relaxed) {
            self.heartbeat.beat(realtime_ns());
            let wait = if self.busy_poll || self.path.has_pending() {
                Duration::ZERO
            } else {
                IDLE_WAIT
            };
            let received = self.socket.recv_batch(&mut st.recv, wait).unwrap_or(0);
            let started = monotonic_ns();
            let now = realtime_ns();
            for i in 0..received {
                self.accept(&mut st, now, i);
            }
            let worked = self.drive(now) || received > 0;
            self.flush(&mut st);
            if worked {
                self.worker.record_busy(monotonic_ns() - started);
            }
            self.tick(&mut st, realtime_ns());
        }
        let totals = self.worker.totals();
        WorkerReport {
            measured: Totals::of(&self.worker.measured_totals()),
            malformed: totals.malformed,
            unexpected: totals.unexpected,
            send_errors: st.send_errors,
            reply_to_refused: totals.reply_to_refused,
            unanswerable: st.unanswerable,
        }
    }

    fn accept(&mut self, st: &mut LoopState, now: u64, i: usize) {
        let datagram = st.recv.get(i);
        let arrived = datagram.kernel_rx_realtime_ns.unwrap_or(now).min(now);
        let (peers, index, from) = (&mut st.peers, &mut st.peer_index, datagram.from);
        self.worker
            .handle_datagram_from(Nanos(now), Nanos(arrived), datagram.bytes, |named| {
                sender_of(peers, index, from, named)
            });
    }

    /// Performs accesses, native calls and steps until nothing moves; true if anything did.
    fn drive(&mut self, now: u64) -> bool {
        let mut any = false;
        loop {
            let mut progress = false;
            while let Some(access) = self.worker.poll_access() {
                self.path.start(now, access, &mut self.worker);
                progress = true;
            }
            progress |= self.path.poll_due(realtime_ns(), &mut self.worker);
            if let Some(natives) = self.natives.as_mut() {
                progress |= natives.run_pending(now, &mut self.worker);
            }
            let started = monotonic_ns();
            let work = self.worker.run(Nanos(realtime_ns()), STEPS_PER_ROUND);
            if work.steps > 0 {
                self.emulate_core_speed(monotonic_ns() - started);
                progress = true;
            }
            if !progress {
                return any;
            }
            any = true;
        }
    }

    /// A slower core takes longer for the same step: spin for the difference.
    fn emulate_core_speed(&self, step_ns: u64) {
        if self.core_speed_factor >= 1.0 {
            return;
        }
        let extra = (step_ns as f64 * (1.0 / self.core_speed_factor - 1.0)) as u64;
        let until = monotonic_ns() + extra;
        while monotonic_ns() < until {
            std::hint::spin_loop();
        }
    }

    fn flush(&mut self, st: &mut LoopState) {
        while let Some(out) = self.worker.poll_reply(&mut st.frame) {
            let to = match out.to {
                ReplyTarget::Addr(addr) => Some(naam_net::socket_addr(&addr)),
                ReplyTarget::Source(token) => st.peers.get(token as usize).copied(),
            };
            let Some(to) = to else {
                st.unanswerable += 1;
                continue;
            };
            if !st.send.push(&st.frame, to) {
                self.send_all(st);
                st.send.push(&st.frame, to);
            }
        }
        self.send_all(st);
    }

    fn send_all(&self, st: &mut LoopState) {
        let pending = st.send.len();
        if pending > 0 && self.socket.send_batch(&mut st.send).is_err() {
            st.send_errors += pending as u64;
        }
    }

    fn tick(&mut self, st: &mut LoopState, now: u64) {
        if !st.phase_known
            && let Some(t) = self.timeline.get()
        {
            let (start, end) = (t.measure_start_realtime_ns(), t.measure_end_realtime_ns());
            self.worker.set_measured_phase(Nanos(start), Nanos(end));
            st.phase_known = true;
        }
        let Some(sample) = self.worker.handle_timeout(Nanos(now)) else {
            return;
        };
        match &self.samples {
            SampleSink::Channel(tx) => {
                let _ = tx.try_send(sample);
            }
            SampleSink::Udp { to, key, from } => {
                if Frame::Sample(sample).encode(&mut st.frame).is_ok() {
                    key.seal(&mut st.frame);
                    let _ = from
                        .as_ref()
                        .unwrap_or(&self.socket)
                        .send_to(&st.frame, *to);
                }
            }
            SampleSink::Discard => {}
        }
        self.worker.apply(self.control.settings());
    }
}

/// Who sent an Invoke: a reply address on the datagram's own source host is vouched for (a
/// client sends from the UDP source port of each message's steering key and names the port it
/// receives on; naam-net `steer_port`), so its sender needs no token; anyone else gets one.
fn sender_of(
    peers: &mut Vec<SocketAddr>,
    index: &mut HashMap<SocketAddr, u64>,
    from: SocketAddr,
    named: Option<naam_engine::wire::ReplyAddr>,
) -> Sender {
    if named.is_some_and(|addr| naam_net::socket_addr(&addr).ip() == from.ip()) {
        return Sender {
            token: SOURCE_UNKNOWN,
            reply_to_vouched: true,
        };
    }
    Sender {
        token: peer_token(peers, index, from),
        reply_to_vouched: false,
    }
}

/// A token for a sender (bounded; beyond [`PEERS_MAX`] senders, new senders' replies are dropped
/// and counted as unanswerable).
fn peer_token(
    peers: &mut Vec<SocketAddr>,
    index: &mut HashMap<SocketAddr, u64>,
    from: SocketAddr,
) -> u64 {
    if let Some(&token) = index.get(&from) {
        return token;
    }
    if peers.len() >= PEERS_MAX {
        return SOURCE_UNKNOWN;
    }
    let token = peers.len() as u64;
    peers.push(from);
    index.insert(from, token);
    token
}
