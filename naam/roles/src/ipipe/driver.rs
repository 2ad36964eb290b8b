//! The real-clock, threaded driver of one side's iPipe runtime (shared by the NIC and the host
//! roles). The runtime sits behind one mutex; threads take turns with it exactly as
//! [`naam_ipipe::runtime`] prescribes for a threaded driver:
//!
//! - a **receiver** thread per socket submits datagrams (`Runtime::submit`) and wakes the cores;
//! - a **core** thread per runtime core asks for its next job (`Runtime::start`), runs it outside
//!   the lock (`Job::execute`, between two clock reads), spins for what the emulation adds
//!   (a slower NIC core; the cost model's isolation and DMA overheads), and hands it back
//!   (`Runtime::finish`) with the execution time the actor is charged;
//! - the **link** threads deliver the other side's messages ([`SideDriver::apply`]) and send
//!   this side's, in the order the runtime emitted them.
//!
//! Replies go straight to the client from the socket of the core that finished the request.
//! Time is CLOCK_REALTIME (the clock of kernel receive timestamps and of the point's timeline).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use naam_engine::{Frame, Nanos};
use naam_ipipe::{CoreId, CostModel, Direction, Event, Job, Runtime, RuntimeStats, TaskKind};
use naam_net::{RecvBatch, UdpSocket};
use naam_results::raw::{self, IpipeRecord, MIGRATIONS_LISTED_MAX, MigrationRecord};

use super::link::{LINK_QUEUE_MAX, LinkMsg};
use crate::os::{monotonic_ns, realtime_ns, sleep_until_realtime};
use crate::serve::{IDLE_WAIT, PEERS_MAX, WORKER_BATCH};
use crate::timeline::{TIMELINE_WAIT_MAX, TimelineWatch};

/// Failures a record lists (the rest are counted in the last entry).
pub const FAILURES_LISTED_MAX: usize = 64;

/// One side's runtime and what its threads share.
#[derive(Debug)]
pub struct SideDriver {
    state: Mutex<SideState>,
    wake: Condvar,
    costs: CostModel,
    /// Speed of this side's cores relative to a host core (1.0 on the host).
    core_speed_factor: f64,
    /// Where this side's messages to the other side go (the link's sender thread).
    link: crossbeam_channel::Sender<LinkMsg>,
}

#[derive(Debug)]
struct SideState {
    runtime: Runtime,
    peers: Peers,
    /// Tokens of senders trusted to name a reply address (the user-space eSwitch's ingress).
    trusted: Vec<u64>,
    /// The measured phase's start and end (realtime ns), once the timeline is known.
    phase_bounds_ns: Option<[u64; 2]>,
    /// Counters at the measured phase's start and end.
    stats_at: [Option<RuntimeStats>; 2],
    /// Migrations done, with realtime instants (made relative to the phase at report time).
    migrations: Vec<(bool, u32, u64, u64, u64, u32)>,
    failures: Vec<String>,
    send_errors: u64,
}

/// Senders by token (bounded: beyond [`PEERS_MAX`], new senders cannot be answered).
#[derive(Debug, Default)]
struct Peers {
    addrs: Vec<SocketAddr>,
    index: HashMap<SocketAddr, u64>,
}

impl Peers {
    fn token(&mut self, from: SocketAddr) -> u64 {
        if let Some(&token) = self.index.get(&from) {
            return token;
        }
        if self.addrs.len() >= PEERS_MAX {
            return naam_engine::server::SOURCE_UNKNOWN;
        }
        let token = self.addrs.len() as u64;
        self.addrs.push(from);
        self.index.insert(from, token);
        token
    }

    /// The token of a datagram's sender. A request naming a reply address on its own source
    /// host is vouched for (clients send from a UDP source port per steering key and name the
    /// socket they receive on; naam-net `steer_port`): its token stands for the host (port 0),
    /// so the table holds one entry per client host, not per port.
    fn sender(&mut self, from: SocketAddr, datagram: &[u8]) -> u64 {
        let named = match Frame::decode(datagram) {
            Ok(Frame::Invoke(invoke)) => invoke.reply_to,
            _ => None,
        };
        match named {
            Some(addr) if naam_net::socket_addr(&addr).ip() == from.ip() => {
                self.token(SocketAddr::new(from.ip(), 0))
            }
            _ => self.token(from),
        }
    }

    fn addr(&self, token: u64) -> Option<SocketAddr> {
        self.addrs.get(usize::try_from(token).ok()?).copied()
    }
}

/// Replies ready to leave: (client, frame).
pub type Outbox = Vec<(SocketAddr, Vec<u8>)>;

impl SideDriver {
    /// A driver of `runtime` whose messages to the other side go to `link`; `forwarders` may
    /// name a reply address inside a request (the user-space eSwitch's ingress).
    pub fn new(
        runtime: Runtime,
        costs: CostModel,
        core_speed_factor: f64,
        forwarders: &[SocketAddr],
        link: crossbeam_channel::Sender<LinkMsg>,
    ) -> SideDriver {
        let mut peers = Peers::default();
        let trusted = forwarders.iter().map(|&f| peers.token(f)).collect();
        SideDriver {
            state: Mutex::new(SideState {
                runtime,
                peers,
                trusted,
                phase_bounds_ns: None,
                stats_at: [None; 2],
                migrations: Vec::new(),
                failures: Vec::new(),
                send_errors: 0,
            }),
            wake: Condvar::new(),
            costs,
            core_speed_factor,
            link,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SideState> {
        // A panicked thread left the runtime as it was between two calls: still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The runtime's cores.
    pub fn cores(&self) -> u16 {
        self.lock().runtime.config().cores
    }

    /// Receives on `socket` until `stop`, submitting every datagram.
    pub fn serve_socket(&self, socket: &UdpSocket, stop: &AtomicBool) {
        let mut batch = RecvBatch::new(WORKER_BATCH);
        let mut out = Outbox::new();
        while !stop.load(Ordering::Relaxed) {
            let received = socket.recv_batch(&mut batch, IDLE_WAIT).unwrap_or(0);
            if received == 0 {
                continue;
            }
            let now = realtime_ns();
            {
                let mut st = self.lock();
                for i in 0..received {
                    let d = batch.get(i);
                    let arrived = d.kernel_rx_realtime_ns.unwrap_or(now).min(now);
                    let token = st.peers.sender(d.from, d.bytes);
                    st.runtime.submit(Nanos(arrived), token, d.bytes);
                }
                self.drain(&mut st, &mut out);
            }
            self.wake.notify_all();
            self.send(socket, &mut out);
        }
        self.wake.notify_all();
    }

    /// Runs core `core` until `stop`, answering from `socket`.
    pub fn serve_core(&self, core: CoreId, socket: &UdpSocket, stop: &AtomicBool) {
        let mut out = Outbox::new();
        while let Some(mut job) = self.next_job(core, stop) {
            let exec_ns = self.execute(&mut job);
            {
                let mut st = self.lock();
                let now_ns = realtime_ns();
                st.mark_phase(now_ns);
                st.runtime.finish(Nanos(now_ns), job, exec_ns);
                self.drain(&mut st, &mut out);
            }
            self.wake.notify_all();
            self.send(socket, &mut out);
        }
    }

    fn next_job(&self, core: CoreId, stop: &AtomicBool) -> Option<Job> {
        let mut st = self.lock();
        while !stop.load(Ordering::Relaxed) {
            match st.runtime.start(core, Nanos(realtime_ns())) {
                Ok(Some(job)) => return Some(job),
                Ok(None) => {}
                Err(e) => {
                    record_failure(&mut st, format!("core {}: {e}", core.0));
                    return None;
                }
            }
            st = match self.wake.wait_timeout(st, IDLE_WAIT) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
        None
    }

    /// Runs the job's native code (timed), then spins for what the emulation adds; returns the
    /// execution time the actor is charged (the handler's time on this side's cores).
    fn execute(&self, job: &mut Job) -> u64 {
        let started = monotonic_ns();
        job.execute();
        let measured_ns = monotonic_ns() - started;
        let exec_ns = match job.task().kind {
            TaskKind::Run { .. } => (measured_ns as f64 / self.core_speed_factor) as u64,
            _ => measured_ns,
        };
        let extra_ns = exec_ns - measured_ns.min(exec_ns) + self.costs.overhead_ns(job.task());
        spin_ns(extra_ns);
        exec_ns
    }

    /// Delivers a message of the other side; refusals it causes are answered from `socket`.
    pub fn apply(&self, msg: LinkMsg, socket: &UdpSocket) {
        let now = Nanos(realtime_ns());
        let mut out = Outbox::new();
        {
            let mut st = self.lock();
            let failure = match msg {
                LinkMsg::Image(image) => st.runtime.import(image).err().map(|r| r.error),
                LinkMsg::Exported(image) => st.runtime.deliver_image(image).err().map(|r| r.error),
                LinkMsg::Recall(actor) => st.runtime.begin_export(actor).err(),
                LinkMsg::Forward { client, frame } => {
                    let token = st.peers.token(client);
                    st.runtime.submit(now, token, &frame);
                    None
                }
                LinkMsg::Hello(_) => None,
            };
            if let Some(e) = failure {
                record_failure(&mut st, e.to_string());
            }
            self.drain(&mut st, &mut out);
        }
        self.wake.notify_all();
        self.send(socket, &mut out);
    }

    /// Takes the runtime's replies (resolved to client addresses) and routes its events.
    fn drain(&self, st: &mut SideState, out: &mut Outbox) {
        let mut frame = Vec::new();
        while let Some(t) = st.runtime.poll_transmit(&mut frame) {
            match st.reply_addr(t.source, t.reply_to) {
                Some(to) => out.push((to, std::mem::take(&mut frame))),
                None => st.send_errors += 1,
            }
        }
        while let Some(event) = st.runtime.poll_event() {
            self.route(st, event);
        }
    }

    fn route(&self, st: &mut SideState, event: Event) {
        let msg = match event {
            Event::Migrated(image) => LinkMsg::Image(image),
            Event::Exported(image) => LinkMsg::Exported(image),
            Event::Recall { actor } => LinkMsg::Recall(actor),
            Event::Forward {
                source,
                reply_to,
                frame,
            } => match st.reply_addr(source, reply_to) {
                Some(client) => LinkMsg::Forward { client, frame },
                None => return record_failure(st, "a forward with no client to answer".into()),
            },
            Event::MigrationDone {
                actor,
                direction,
                started,
                finished,
                bytes,
                requests,
                ..
            } => {
                if st.migrations.len() < MIGRATIONS_LISTED_MAX {
                    let to_host = direction == Direction::ToHost;
                    let m = (to_host, actor.0, started.0, finished.0, bytes, requests);
                    st.migrations.push(m);
                }
                return;
            }
            Event::Downgraded { .. } | Event::Upgraded { .. } | Event::MigrationStarted { .. } => {
                return;
            }
        };
        if self.link.try_send(msg).is_err() {
            record_failure(
                st,
                format!("the link's queue ({LINK_QUEUE_MAX}) was full or closed"),
            );
        }
    }

    fn send(&self, socket: &UdpSocket, out: &mut Outbox) {
        let failed = out
            .drain(..)
            .filter(|(to, frame)| socket.send_to(frame, *to).is_err())
            .count();
        if failed > 0 {
            self.lock().send_errors += failed as u64;
        }
    }

    /// Snapshots the counters at the measured phase's start and end. The snapshot is exact
    /// however late this thread wakes: every completion first snapshots the bounds it passed
    /// ([`SideState::mark_phase`], under the lock that orders completions), so waking here only
    /// covers a phase bound with no completion after it.
    pub fn watch_phase(&self, timeline: &TimelineWatch, stop: &AtomicBool) {
        let Some(t) = timeline.wait(TIMELINE_WAIT_MAX, stop) else {
            return;
        };
        let bounds_ns = [t.measure_start_realtime_ns(), t.measure_end_realtime_ns()];
        self.lock().phase_bounds_ns = Some(bounds_ns);
        for at in bounds_ns {
            sleep_until_realtime(at, stop);
            if stop.load(Ordering::Relaxed) {
                return;
            }
            self.lock().mark_phase(realtime_ns());
        }
    }

    /// This side's counters over the measured phase of `phase_ns` (a phase cut short by a stop
    /// ends at the stop).
    pub fn counters(&self, phase_ns: u64) -> raw::LocationCounters {
        let st = self.lock();
        let now = *st.runtime.stats();
        let start = st.stats_at[0].unwrap_or(now);
        let end = st.stats_at[1].unwrap_or(now);
        let cores = u64::from(st.runtime.config().cores);
        super::phase_counters(&start, &end, cores.saturating_mul(phase_ns))
    }

    /// This side's record of the run; migration times relative to `measure_start_ns`.
    pub fn record(&self, measure_start_ns: u64, actors: u32) -> IpipeRecord {
        let st = self.lock();
        let s = st.runtime.stats();
        let config = st.runtime.config();
        let since = |t: u64| t as i64 - measure_start_ns as i64;
        let migrations = st
            .migrations
            .iter()
            .map(
                |&(to_host, actor, started, finished, bytes, requests)| MigrationRecord {
                    actor,
                    to_host,
                    started_ns: since(started),
                    finished_ns: since(finished),
                    bytes,
                    requests,
                },
            )
            .collect();
        let mut failures = st.failures.clone();
        if st.send_errors > 0 {
            failures.push(format!("{} replies could not be sent", st.send_errors));
        }
        let cores = match config.side {
            naam_ipipe::Side::Nic => [config.cores, 0],
            naam_ipipe::Side::Host => [0, config.cores],
        };
        IpipeRecord {
            isolation: super::isolation_name(config.isolation).into(),
            actors,
            cores,
            downgrades: s.downgrades,
            migrations_to_host: s.migrations_to_host,
            migrations_to_nic: s.migrations_to_nic,
            forwarded: s.forwarded,
            tenant_switches: s.tenant_switches,
            refused: s.refused,
            migrations,
            failures,
        }
    }

    /// Records a failure of a thread driving this side (the link's).
    pub fn fail(&self, failure: String) {
        record_failure(&mut self.lock(), failure);
    }

    /// Datagrams that were not requests (whole run).
    pub fn malformed(&self) -> u64 {
        self.lock().runtime.stats().dropped
    }
}

impl SideState {
    fn reply_addr(
        &self,
        source: u64,
        reply_to: Option<naam_engine::wire::ReplyAddr>,
    ) -> Option<SocketAddr> {
        let sender = self.peers.addr(source);
        match reply_to.map(|a| naam_net::socket_addr(&a)) {
            // The user-space eSwitch forwards for clients; anyone else names its own host only.
            Some(addr) if self.trusted.contains(&source) => Some(addr),
            Some(addr) if sender.is_some_and(|s| s.ip() == addr.ip()) => Some(addr),
            _ => sender.filter(|s| s.port() != 0),
        }
    }
}

impl SideState {
    /// Takes the counters at each phase bound `now_ns` has reached and none was taken at yet.
    fn mark_phase(&mut self, now_ns: u64) {
        let Some(bounds_ns) = self.phase_bounds_ns else {
            return;
        };
        for (at, bound_ns) in self.stats_at.iter_mut().zip(bounds_ns) {
            if at.is_none() && now_ns >= bound_ns {
                *at = Some(*self.runtime.stats());
            }
        }
    }
}

fn record_failure(st: &mut SideState, failure: String) {
    if st.failures.len() < FAILURES_LISTED_MAX {
        st.failures.push(failure);
    }
}

/// Spins for `ns` (an emulated cost: the core stays busy, as the modelled one would).
fn spin_ns(ns: u64) {
    if ns == 0 {
        return;
    }
    let until = monotonic_ns() + ns;
    while monotonic_ns() < until {
        std::hint::spin_loop();
    }
}
