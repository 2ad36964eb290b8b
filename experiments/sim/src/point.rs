//! A simulated point: the production code of every role on one virtual clock.
//!
//! **Real** (the code the roles run): each client's [`ClientSession`] (load generator, MICA or
//! B-tree workload with answer verification, the engine's client endpoint and client-side
//! policies), the eSwitch's [`RuleTable`] decision, one host and one NIC [`ServerWorker`] whose
//! executor runs every step in the VM over the real region bytes, host-native writers, the
//! server's [`ServerControl`] stage and its policy, the RNIC's [`answer_read`].
//!
//! **Modelled** (from the [`CostProfile`]): the links (serialisation at the server port's line
//! rate, propagation), the host and NIC cores (a [`CorePool`] each, serving received datagrams
//! and ready steps in FIFO order; a step's CPU time is derived from the instructions it executed,
//! the bytes it ran over and the accesses it declared), the NIC's DMA to host memory (latency per
//! access and size, a rate cap), the RNIC (service time, rate cap), a client's local steps, the
//! eSwitch's rule-update latency, and a CPU hog time-sharing every host core in scheduler slices
//! ([`HogSlices`]: while the hog holds its slice no host work starts, work crossing into it is
//! preempted, and the host worker, off its core, takes no sample).
//!
//! A step runs (and changes the engine's state) when a core takes it; what it produced — accesses,
//! replies — leaves when its CPU time is over. Events due at the same time run in the order they
//! were scheduled ([`EventQueue`]), so a point is a function of its configuration and seed.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use naam_engine::client::{Destination, EndpointConfig};
use naam_engine::control::{Heartbeat, HostLoad, Observed, SilenceRule};
use naam_engine::exec::AccessRequest;
use naam_engine::rnic::answer_read;
use naam_engine::server::{ReplyTarget, WorkerConfig};
use naam_engine::{
    ClientEndpoint, Frame, Location, Nanos, RegionTable, RkeySecret, RuleTable, ServerControl,
    ServerWorker,
};
use naam_loadgen::{HlogWriter, LoadConfig, LoadGenerator, LoadMode, TagSet, Thresholds};
use naam_results::raw::{self, ClientSummary, ScheduleKind, ServerSummary};
use naam_roles::config::Dataset;
use naam_roles::counters::Totals;
use naam_roles::host::memory::{self, HostMemory};
use naam_roles::serve::{AccessPath, DirectPath, Natives};
use naam_roles::session::{ClientSession, SessionReport, SessionTimes};
use naam_roles::workload::{self, ServerWorkload};
use naam_types::{PolicySpec, VmBackend};
use serde::Serialize;

mod eswitch;
mod ipipe;
mod times;

use self::eswitch::Eswitch;
use self::ipipe::{IpipeEvent, IpipeServers};
use self::times::ModelTimes;
use crate::cores::{CorePool, HogSlices};
use crate::des::{EventQueue, prefetch_line};
use crate::profile::{CostProfile, CpuCost, StepCosts, round_ns};
pub use naam_results::raw::{IpipeRecord, MIGRATIONS_LISTED_MAX, MigrationRecord};

/// Most events one point may process (bounds its run time; a 1-second point at 2 M ops/s takes
/// about 30 M).
pub const EVENTS_MAX: u64 = 2_000_000_000;
/// Most clients a simulated point has.
pub const CLIENTS_MAX: u32 = 1024;
/// After the measured phase, how long requests in flight may still complete (the client role's).
pub const DRAIN_GRACE_NS: u64 = naam_roles::client::DRAIN_GRACE.as_nanos() as u64;
/// Datagrams a server worker receives before it runs its ready steps (the roles' batch).
const RX_BATCH: usize = naam_roles::serve::WORKER_BATCH;
/// A host worker's longest wait for work between two looks at its clock (the host role's).
const SERVE_IDLE_WAIT_NS: u64 = naam_roles::serve::IDLE_WAIT.as_nanos() as u64;
/// The rkey secret of simulated points (fixed: runs are reproducible; nothing is exposed).
const SIM_RKEY_SECRET: RkeySecret = RkeySecret([0x51; 16]);
/// Steps a client's local executor runs per scheduling round.
const CLIENT_STEPS_PER_ROUND: usize = 1;
/// Spare frame buffers the point keeps for reuse, at most (datagrams in flight beyond it are
/// allocated and freed as before: the bound only caps the memory kept).
pub const FRAME_POOL_MAX: usize = 16_384;

/// Frame buffers of datagrams that were handled, reused for the next ones: the engine's
/// `poll_transmit`/`poll_reply` swap the frame into the buffer they are given and keep that
/// buffer as their own spare, so handing them buffers with capacity spares both sides an
/// allocation per datagram.
#[derive(Debug, Default)]
struct FramePool {
    spare: Vec<Vec<u8>>,
}

impl FramePool {
    /// An empty buffer, with capacity when one was given back.
    fn take(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// A handled datagram's buffer, for reuse.
    fn give(&mut self, mut frame: Vec<u8>) {
        if self.spare.len() < FRAME_POOL_MAX {
            frame.clear();
            self.spare.push(frame);
        }
    }
}

/// Times of pumps [`SimPoint::schedule_pump`] noted without queueing, in order (the server
/// port's times never decrease), not yet counted. A vector read from a cursor: a note and a
/// count are a few inline instructions, where a `VecDeque`'s push and pop were two calls.
#[derive(Debug, Default)]
struct NotedPumps {
    times_ns: Vec<u64>,
    /// Times before this index are counted.
    counted: usize,
}

/// Counted times [`NotedPumps`] keeps before it drops them (bounds its memory when some noted
/// time is always still ahead).
const NOTED_PUMPS_COUNTED_MAX: usize = 1024;

impl NotedPumps {
    /// Notes a pump at `at_ns`, not before any noted so far.
    #[inline]
    fn note(&mut self, at_ns: u64) {
        debug_assert!(self.times_ns.last().is_none_or(|&t| t <= at_ns), "in order");
        if self.counted == self.times_ns.len() {
            self.times_ns.clear();
            self.counted = 0;
        } else if self.counted >= NOTED_PUMPS_COUNTED_MAX {
            self.times_ns.drain(..self.counted);
            self.counted = 0;
        }
        self.times_ns.push(at_ns);
    }

    /// Counts the noted pumps due by `now_ns` not counted yet, and returns how many.
    #[inline]
    fn count_reached(&mut self, now_ns: u64) -> u64 {
        let from = self.counted;
        while self
            .times_ns
            .get(self.counted)
            .is_some_and(|&t| t <= now_ns)
        {
            self.counted += 1;
        }
        (self.counted - from) as u64
    }
}

/// A CPU hog on the host, from `start_ns` to `stop_ns` (since the run start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HogWindow {
    /// When it starts.
    pub start_ns: u64,
    /// When it stops.
    pub stop_ns: u64,
}

/// One simulated client's load.
#[derive(Debug, Clone, PartialEq)]
pub struct SimClient {
    /// Its seed (workload keys, arrivals).
    pub seed: u64,
    /// Its offered load (Poisson).
    pub offered_ops_per_s: f64,
    /// Rate steps: from `at_ns` (since the run start) the rate is multiplied by `factor`.
    pub load_steps: Vec<(u64, f64)>,
}

impl SimClient {
    /// `count` clients sharing `offered_ops_per_s` evenly, client `k` seeded `seed + k`.
    pub fn even(count: u32, offered_ops_per_s: f64, seed: u64) -> Vec<SimClient> {
        (0..count)
            .map(|k| SimClient {
                seed: seed.wrapping_add(u64::from(k)),
                offered_ops_per_s: offered_ops_per_s / f64::from(count.max(1)),
                load_steps: Vec::new(),
            })
            .collect()
    }
}

/// Everything a simulated point needs.
#[derive(Debug, Clone)]
pub struct SimPointConfig {
    /// The modelled testbed.
    pub profile: CostProfile,
    /// The workload and its dataset.
    pub dataset: Dataset,
    /// The series: a static placement or a policy.
    pub policy: PolicySpec,
    /// The clients.
    pub clients: Vec<SimClient>,
    /// Warm-up (excluded from every result).
    pub warmup_ns: u64,
    /// Measured phase.
    pub measure_ns: u64,
    /// Interval of the `.hlog`.
    pub interval_ns: u64,
    /// The point's seed (recorded; the clients have their own).
    pub seed: u64,
    /// The workers' and the controller's sampling period.
    pub sample_period_ns: u64,
    /// Request timeout at the clients.
    pub timeout_ns: u64,
    /// Requests in flight per client, at most.
    pub inflight_max: u32,
    /// A CPU hog, if any.
    pub hog: Option<HogWindow>,
}

/// Why a simulated point could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration does not fit together.
    #[error("simulated point: {0}")]
    Config(String),
    /// A part of the system under test refused its setup.
    #[error("simulated point setup: {0}")]
    Setup(String),
    /// The run did not end within [`EVENTS_MAX`] events.
    #[error("simulated point did not end within {EVENTS_MAX} events (virtual time {now_ns} ns)")]
    Runaway {
        /// Virtual time reached.
        now_ns: u64,
    },
    /// A results file could not be written.
    #[error("writing {path}: {message}")]
    Output {
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        message: String,
    },
}

/// The function table of every simulated location, loaded for `execute_on`: the backend that
/// *executes* the functions in the simulator. It does not change the modelled time: the JIT counts
/// exactly the instructions the interpreter counts (naam-vm's differential tests), and a step's
/// CPU time is priced from those counts by the profile (`insn_ns`, an interpreter's cost).
fn sim_functions(
    server: &dyn ServerWorkload,
    tenants: u32,
    execute_on: VmBackend,
) -> Result<Arc<naam_engine::function::FunctionTable>, SimError> {
    let table = naam_roles::host::functions(server, tenants, execute_on).map_err(setup)?;
    Ok(Arc::new(table))
}

/// The backend [`SimPoint::new`] executes eBPF functions on when they run often enough (see
/// [`execute_on_for`]): naam-vm's JIT, which falls back to the interpreter when it is not built
/// (naam-vm's `jit` feature).
pub const EXECUTE_ON_DEFAULT: VmBackend = VmBackend::Jit;

/// Requests per registered program below which [`SimPoint::new`] interprets: every tenant
/// registers (and the JIT compiles) its own program, ≈ 8 ms for MICA's GET on the development
/// VM (ARTIFACT §G), and the JIT saves ≈ 0.8 µs per call there (vm-cost: 1 335 → 561 ns), so a
/// program repays its compilation after ≈ 10 000 calls. Measured on that machine; it decides only
/// the simulator's own speed, never a result (the files are the same on either backend).
/// Without it, offload-scaling's 1 024-tenant points spent their time compiling (its full
/// paper-scale set took 425 s instead of 174 s).
pub const JIT_CALLS_PER_PROGRAM_MIN: f64 = 10_000.0;

/// The backend a point's functions execute on: [`EXECUTE_ON_DEFAULT`] when the point offers at
/// least [`JIT_CALLS_PER_PROGRAM_MIN`] requests per tenant's program, else the interpreter.
pub fn execute_on_for(config: &SimPointConfig) -> VmBackend {
    let seconds = (config.warmup_ns + config.measure_ns) as f64 / 1e9;
    let offered_ops_per_s: f64 = config.clients.iter().map(|c| c.offered_ops_per_s).sum();
    let programs = f64::from(config.dataset.tenants.max(1));
    if offered_ops_per_s * seconds / programs >= JIT_CALLS_PER_PROGRAM_MIN {
        EXECUTE_ON_DEFAULT
    } else {
        VmBackend::Interpreter
    }
}

/// What eBPF functions execute on in the simulator when loaded for `execute_on`, in words
/// (`jit`, or `interpreter (jit requested: …)` when the JIT is not built): the provenance's
/// "executed on". The modelled cost is the profile's, whatever executes.
pub fn executed_on(execute_on: VmBackend) -> String {
    // `mov r0, 0; exit`: a program every backend loads.
    const RETURN_ZERO: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    let mut table =
        naam_engine::FunctionTable::new().with_backend(naam_roles::host::vm_backend(execute_on));
    let tenant = naam_engine::TenantId(0);
    let loaded = table.register_ebpf(
        tenant,
        naam_engine::FunctionId(0),
        "probe",
        naam_engine::Code::Raw(&RETURN_ZERO),
    );
    match loaded {
        Ok(()) => table.describe_tiers(),
        Err(e) => format!("unknown ({e})"),
    }
}

fn setup(e: impl std::fmt::Display) -> SimError {
    SimError::Setup(e.to_string())
}

/// What the simulator records about a point (`testbed.json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SimRecord {
    /// `simulated`.
    pub network: String,
    /// `simulated (profile <name>)`.
    pub label: String,
    /// The cost profile's name.
    pub profile: String,
    /// The profile's description.
    pub profile_description: String,
    /// The point's seed.
    pub seed: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end.
    pub end_ns: u64,
    /// Datagrams the eSwitch steered to host, NIC, client (pushed back via the host).
    pub steered: [u64; 3],
    /// One-sided reads the RNIC served.
    pub rnic_reads: u64,
    /// Rule changes the eSwitch applied.
    pub rule_changes: u64,
    /// The iPipe baseline's account, when it was the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipipe: Option<IpipeRecord>,
}

/// A point's results, as written into its folder.
#[derive(Debug)]
pub struct SimOutcome {
    /// The testbed's record.
    pub record: SimRecord,
    /// Per client: the session's report is summarised in `client-<k>.json`.
    pub clients: Vec<ClientSummary>,
    /// `server.json`.
    pub server: ServerSummary,
}

/// `repr(u64)`: the tag fills the first word, so the compiled code moves an event (out of the
/// queue's slab, into the handler) as whole aligned words. With a one-byte tag it moved the 55
/// bytes after the tag as unaligned 16-byte pieces and then read the fields across two of them,
/// which the CPU cannot forward from its store buffer: ≈ 20 % of the run loop's own samples
/// sat on those reads (`perf annotate`, NIC point).
#[derive(Debug)]
#[repr(u64)]
enum Event {
    /// Client `k`'s generator or timers are due.
    ClientWake(u32),
    /// Client `k`'s local step is over.
    ClientLocalDone(u32),
    /// A datagram from client `k` reaches the server's port.
    AtIngress(u32, Vec<u8>),
    /// A one-sided read from client `k` reaches the RNIC.
    AtRnic(u32, Vec<u8>),
    /// A datagram reaches client `k`. The frame first: after the tag it sits where
    /// [`SimPoint::egress`] stores it straight from its argument; with the client first, the
    /// compiler copied the frame through a stack temporary and read it back across its own
    /// narrower stores with an offset (the client's padding), which the CPU cannot forward from
    /// its store buffer (`perf annotate`: ≈ 55 % of `egress`'s samples on that read).
    AtClient(Vec<u8>, u32),
    /// A core of a server location finished receiving a datagram from client `k` that reached
    /// the server's port at the given time (its kernel receive timestamp).
    RxDone(Location, u32, u64, Vec<u8>),
    /// A server location's core is free.
    CoreFree(Location),
    /// A step's CPU time is over: its core is free, then its accesses start and its replies
    /// leave, in this order — what were consecutive events at one time, so nothing ran between
    /// them, now one queue entry ([`StepOutputs::model_events`] of them are counted).
    StepDone(Location, Box<StepOutputs>),
    /// [`Event::StepDone`] of a step whose one output is a reply to client `k` (half the bench's
    /// steps: a GET's last), which so needs no [`StepOutputs`] holder: its core is free, then
    /// the reply leaves.
    StepReplied(Location, u32, Vec<u8>),
    /// A server worker's access is handed to its data path (queued only when other events due
    /// now run first: rare). Boxed, as [`Event::AccessDone`] carries no location: an access
    /// (48 bytes) and a location beside it made every event 64 bytes, an access alone 56.
    AccessStart(Location, Box<AccessRequest>),
    /// The NIC's access has its bytes (the host's accesses are done as they start). Without a
    /// location, an event is 56 bytes: with its link, a slab slot fills one cache line.
    AccessDone(AccessRequest),
    /// A reply leaves a server location for client `k`.
    Egress(u32, Vec<u8>),
    /// A worker's timer (sample, measured-phase boundary).
    WorkerTick(Location),
    /// The control stage's tick.
    ControlTick,
    /// The eSwitch holds the rule table the control stage decided earlier.
    RulesApplied(Box<RuleTable>),
    /// The iPipe baseline's server (series `ipipe`, `ipipe-processes`).
    Ipipe(IpipeEvent),
    /// The hog's slice on the host cores ends: waiting work may start.
    HogSliceEnd,
}

/// What a step hands on when its CPU time is over (see [`Event::StepDone`]).
#[derive(Debug, Default)]
struct StepOutputs {
    accesses: Vec<AccessRequest>,
    /// Replies: (client, frame).
    replies: Vec<(u32, Vec<u8>)>,
}

impl StepOutputs {
    /// The model's events this entry stands for: the core's release, each access start, each
    /// reply's departure (`testbed.json`'s `events` counts these, as when each was queued).
    fn model_events(&self) -> u64 {
        1 + self.len() as u64
    }

    /// The access starts and reply departures held.
    fn len(&self) -> usize {
        self.accesses.len() + self.replies.len()
    }
}

/// What a server worker released now, for [`SimPoint::hand_on_released`] (see
/// [`SimPoint::release_outputs`]).
enum Released {
    /// Nothing, or it was queued.
    Nothing,
    /// One access to start.
    Access(AccessRequest),
    /// Accesses to start, then replies to send.
    Outputs(Box<StepOutputs>),
}

/// One server location: its worker, its cores and what waits for them.
struct Server {
    worker: ServerWorker,
    cores: CorePool,
    /// The cores' step costs, with the answers for recent steps' shapes kept.
    step_costs: StepCosts,
    /// `cost.rx_ns` and `cost.tx_ns` rounded, once (read on every datagram and step).
    rx_busy_ns: u64,
    tx_busy_ns: u64,
    /// Received datagrams waiting for a core: (client, arrival at the port, frame).
    rx: VecDeque<(u32, u64, Vec<u8>)>,
    /// Datagrams received since the worker last ran out of ready steps.
    received_in_batch: usize,
    tick_at_ns: u64,
}

/// One simulated client.
struct Client {
    session: Option<ClientSession>,
    hlog: HlogWriter<Vec<u8>>,
    busy_until_ns: u64,
    wake_at_ns: u64,
    report: Option<(SessionReport, u64)>,
}

/// A point being simulated.
pub struct SimPoint {
    config: SimPointConfig,
    events: EventQueue<Event>,
    /// The profile's times by length, computed once.
    times: ModelTimes,
    clients: Vec<Client>,
    servers: [Server; 2],
    control: ServerControl,
    eswitch: Eswitch,
    path: DirectPath,
    natives: Natives,
    table: Arc<RegionTable>,
    memory: Arc<HostMemory>,
    ingress_free_ns: u64,
    egress_free_ns: u64,
    dma_free_ns: u64,
    rnic_free_ns: u64,
    rnic_reads: u64,
    frames: FramePool,
    /// Spare [`StepOutputs`] holders, reused (at most [`FRAME_POOL_MAX`] kept). Boxed: a holder
    /// moves (out of the spares, through its event, back) as a pointer, not as its two vectors
    /// (−12 instructions per request of the NIC point): the boxing is the point here.
    #[allow(clippy::vec_box)]
    spare_outputs: Vec<Box<StepOutputs>>,
    /// Model events beyond one per queue entry (those a [`Event::StepDone`] folds in, and the
    /// released outputs [`SimPoint::release_outputs`] hands on without queueing them).
    folded_events: u64,
    /// Folded access starts and reply departures still to run in [`SimPoint::hand_on`]: they
    /// stand for queue entries due now, ahead of any event scheduled for now meanwhile.
    folds_pending: usize,
    /// The pumps [`SimPoint::schedule_pump`] noted without queueing and not yet counted.
    pumps_noted: NotedPumps,
    steered: [u64; 3],
    changes: Vec<raw::SteeringChange>,
    samples: Vec<raw::LoadSample>,
    clients_running: u32,
    /// The run loop goes on while [`SimPoint::events_counted`] is below it: [`EVENTS_MAX`] while
    /// clients run, 0 once none does.
    events_stop_at: u64,
    /// The iPipe baseline, serving instead of NAAM's eSwitch and workers when the series is one.
    ipipe: Option<IpipeServers>,
    /// The hog's slices on the host cores, if a hog runs.
    hog: Option<HogSlices>,
    /// The host worker's last sample: its heartbeat, as the control stage reads it.
    host_beat_ns: u64,
}

impl std::fmt::Debug for SimPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPoint")
            .field("now_ns", &self.events.now_ns())
            .field("profile", &self.config.profile.name)
            .finish_non_exhaustive()
    }
}

impl SimPoint {
    /// Builds the point: the dataset in (temporary, shared-memory) regions, the functions (on
    /// the backend [`execute_on_for`] picks), the workers, the control stage and the clients,
    /// all at virtual time 0.
    pub fn new(config: SimPointConfig) -> Result<SimPoint, SimError> {
        let execute_on = execute_on_for(&config);
        SimPoint::executing_on(config, execute_on)
    }

    /// [`SimPoint::new`] with its eBPF functions executed on `execute_on` (the raw files are the
    /// same on either: only the simulator's own speed differs).
    pub fn executing_on(
        config: SimPointConfig,
        execute_on: VmBackend,
    ) -> Result<SimPoint, SimError> {
        check(&config)?;
        let server: Arc<dyn ServerWorkload> =
            Arc::from(workload::server(&config.dataset).map_err(setup)?);
        let tenants = config.dataset.tenants;
        // Private memory: the simulated NIC reads the regions in this process, and its random
        // reads of a large region then hit huge pages instead of missing the TLB.
        let (table, memory, meta) =
            memory::build_private(&*server, tenants, SIM_RKEY_SECRET).map_err(setup)?;
        let (table, memory) = (Arc::new(table), Arc::new(memory));
        let functions = sim_functions(&*server, tenants, execute_on)?;
        let hog = hog_slices(&config);
        let servers = servers(&config, hog, &functions, &table)?;
        let control = control_stage(&config, &*server)?;
        let catalog: Vec<_> = table.iter().copied().collect();
        let client_table = Arc::new(RegionTable::from_catalog(&catalog).map_err(setup)?);
        let clients = (0..config.clients.len() as u32)
            .map(|k| {
                Ok(Client {
                    session: Some(client_session(
                        &config,
                        k,
                        &meta,
                        &functions,
                        &client_table,
                    )?),
                    hlog: hlog_writer(&config, k)?,
                    busy_until_ns: 0,
                    wake_at_ns: u64::MAX,
                    report: None,
                })
            })
            .collect::<Result<Vec<_>, SimError>>()?;
        let mut point = SimPoint {
            ipipe: IpipeServers::for_point(&config, &*server, &memory, &meta)?,
            hog,
            host_beat_ns: 0,
            eswitch: Eswitch::new(control.rules().clone()),
            control,
            events: EventQueue::new(),
            times: ModelTimes::new(&config.profile),
            clients,
            servers,
            path: DirectPath::new(Arc::clone(&memory)),
            natives: Natives::new(server, Arc::clone(&memory)),
            table,
            memory,
            ingress_free_ns: 0,
            egress_free_ns: 0,
            dma_free_ns: 0,
            rnic_free_ns: 0,
            rnic_reads: 0,
            frames: FramePool::default(),
            spare_outputs: Vec::new(),
            folded_events: 0,
            folds_pending: 0,
            pumps_noted: NotedPumps::default(),
            steered: [0; 3],
            changes: Vec::new(),
            samples: Vec::new(),
            clients_running: config.clients.len() as u32,
            events_stop_at: EVENTS_MAX,
            config,
        };
        point.start();
        Ok(point)
    }

    fn start(&mut self) {
        let (start, end) = (
            self.config.warmup_ns,
            self.config.warmup_ns + self.config.measure_ns,
        );
        for k in 0..self.config.clients.len() as u32 {
            self.schedule_client_wake(k);
        }
        if let Some((_, end)) = self.hog.and_then(|h| h.slice_at_or_after(0)) {
            self.events.schedule_at(end, Event::HogSliceEnd);
        }
        if self.ipipe.is_some() {
            // iPipe has no eSwitch rules, controller or NAAM workers: only its runtimes serve.
            for (at, end) in [(start, false), (end, true)] {
                self.events
                    .schedule_at(at, Event::Ipipe(IpipeEvent::Phase(end)));
            }
            return;
        }
        let settings = self.control.settings();
        for s in &mut self.servers {
            s.worker.apply(settings);
            s.worker.set_measured_phase(Nanos(start), Nanos(end));
            s.tick_at_ns = s.worker.poll_timeout().0;
        }
        for loc in [Location::Host, Location::Nic] {
            let at = self.server(loc).tick_at_ns;
            self.events.schedule_at(at, Event::WorkerTick(loc));
        }
        self.events
            .schedule_at(self.control.poll_timeout().0, Event::ControlTick);
    }

    /// Runs the point to its end and writes its raw files into `out_dir`.
    ///
    /// It runs while clients run and fewer than [`EVENTS_MAX`] events were processed: one test
    /// per event answers both ([`SimPoint::events_stop_at`]).
    pub fn run(mut self, out_dir: &Path) -> Result<SimOutcome, SimError> {
        while self.events_counted() < self.events_stop_at {
            let Some(event) = self.events.pop_event() else {
                break;
            };
            self.handle(event)?;
        }
        if self.clients_running > 0 && self.events_counted() >= EVENTS_MAX {
            return Err(SimError::Runaway {
                now_ns: self.events.now_ns(),
            });
        }
        self.finish(out_dir)
    }

    /// Events processed so far: popped, and folded into others.
    fn events_counted(&self) -> u64 {
        self.events.popped() + self.folded_events
    }

    fn handle(&mut self, event: Event) -> Result<(), SimError> {
        match event {
            Event::ClientWake(k) => self.client_wake(k)?,
            Event::ClientLocalDone(k) => self.pump_client(k)?,
            Event::AtIngress(k, frame) => self.ingress(k, frame),
            Event::AtRnic(k, frame) => {
                self.rnic(k, &frame);
                self.frames.give(frame);
            }
            Event::AtClient(frame, k) => {
                self.at_client(k, &frame)?;
                self.frames.give(frame);
            }
            Event::RxDone(loc, k, arrived_ns, frame) => {
                self.rx_done(loc, k, arrived_ns, &frame);
                self.frames.give(frame);
            }
            Event::CoreFree(loc) => self.pump_server(loc),
            Event::StepDone(loc, outputs) => self.step_done(loc, outputs),
            Event::StepReplied(loc, k, frame) => self.step_replied(loc, k, frame),
            Event::AccessStart(loc, access) => self.access_start(loc, *access),
            Event::AccessDone(access) => self.access_done(Location::Nic, access),
            Event::Egress(k, frame) => self.egress(k, frame),
            Event::WorkerTick(loc) => self.worker_tick(loc),
            Event::ControlTick => self.control_tick(),
            Event::RulesApplied(rules) => self.eswitch.set(*rules),
            Event::Ipipe(event) => self.ipipe_event(event),
            Event::HogSliceEnd => self.hog_slice_end(),
        }
        Ok(())
    }

    fn now(&self) -> u64 {
        self.events.now_ns()
    }

    fn server(&mut self, loc: Location) -> &mut Server {
        &mut self.servers[usize::from(loc == Location::Nic)]
    }

    // ---- clients ------------------------------------------------------------------------------

    fn schedule_client_wake(&mut self, k: u32) {
        let c = &mut self.clients[k as usize];
        let Some(next) = c.session.as_ref().and_then(ClientSession::next_wakeup_ns) else {
            return;
        };
        let now = self.events.now_ns();
        let next = next.max(now);
        if next < c.wake_at_ns || c.wake_at_ns < now {
            c.wake_at_ns = next;
            self.events.schedule_at(next, Event::ClientWake(k));
        }
    }

    fn client_wake(&mut self, k: u32) -> Result<(), SimError> {
        let now = self.now();
        let c = &mut self.clients[k as usize];
        if c.wake_at_ns != now {
            return Ok(()); // superseded by an earlier wake
        }
        c.wake_at_ns = u64::MAX;
        let Some(session) = c.session.as_mut() else {
            return Ok(());
        };
        session.handle_timeout(now);
        session.poll_send(now).map_err(setup)?;
        self.pump_client(k)
    }

    fn at_client(&mut self, k: u32, frame: &[u8]) -> Result<(), SimError> {
        let now = self.now();
        if let Some(session) = self.clients[k as usize].session.as_mut() {
            session.handle_datagram(now, frame);
        }
        self.pump_client(k)
    }

    /// Sends what client `k` queued, runs a local step if its core is free, writes finished
    /// intervals, ends it when its run is over, and schedules its next wake-up.
    ///
    /// The local step's test and the round's end look at the client once: a local step (none in
    /// the bench's points) is [`SimPoint::pump_client_local`], out of line.
    fn pump_client(&mut self, k: u32) -> Result<(), SimError> {
        let now = self.now();
        self.flush_client(k, now);
        let c = &mut self.clients[k as usize];
        let local_due =
            c.busy_until_ns <= now && c.session.as_ref().is_some_and(ClientSession::local_ready);
        if local_due {
            return self.pump_client_local(k, now);
        }
        self.client_after_round(k, now)
    }

    /// [`SimPoint::pump_client`]'s rest when client `k`'s local step is due at `now`.
    #[cold]
    #[inline(never)]
    fn pump_client_local(&mut self, k: u32, now: u64) -> Result<(), SimError> {
        self.run_client_local(k, now);
        self.client_after_round(k, now)
    }

    /// Client `k`'s local step at `now` (its core is free, a step is ready), and what it sends
    /// when the step is over.
    #[inline(never)]
    fn run_client_local(&mut self, k: u32, now: u64) {
        let c = &mut self.clients[k as usize];
        let Some(session) = c.session.as_mut() else {
            return;
        };
        let work = session.run_local(now, CLIENT_STEPS_PER_ROUND);
        let cost = &self.config.profile.client;
        let busy = cost.step_cost_ns(work.insn, work.data_bytes, work.accesses_out as u32);
        c.busy_until_ns = now + busy;
        self.events
            .schedule_at(now + busy, Event::ClientLocalDone(k));
        self.flush_client(k, now + busy);
    }

    /// The end of client `k`'s round at `now`: its finished intervals are written, its run ends
    /// when it is over, else its next wake-up is scheduled ([`SimPoint::schedule_client_wake`]).
    /// One look at the client for the three, which had each indexed the clients and checked the
    /// session (twice per request).
    #[inline(always)]
    fn client_after_round(&mut self, k: u32, now: u64) -> Result<(), SimError> {
        let warmup_ns = self.config.warmup_ns;
        let c = &mut self.clients[k as usize];
        let Some(session) = c.session.as_mut() else {
            return Ok(());
        };
        // Most events fall between interval boundaries: skip the poll (and its moves of an
        // empty `Option<IntervalHistogram>`) then. Time never goes backwards here, so the
        // skipped poll would only have returned `None`.
        if session.interval_due(now) {
            write_intervals(session, &mut c.hlog, warmup_ns, now)?;
        }
        if session.is_finished(now) {
            // With its session gone, no wake-up is scheduled.
            return self.finish_client(k, now);
        }
        let Some(next) = session.next_wakeup_ns() else {
            return Ok(());
        };
        let next = next.max(now);
        if next < c.wake_at_ns || c.wake_at_ns < now {
            c.wake_at_ns = next;
            self.events.schedule_at(next, Event::ClientWake(k));
        }
        Ok(())
    }

    /// Sends what client `k` queued, leaving at `depart_ns`.
    ///
    /// Inline: one of a request's two calls (the reply's) finds nothing queued, answered
    /// without the loop's call and frame.
    #[inline]
    fn flush_client(&mut self, k: u32, depart_ns: u64) {
        let queued = self.clients[k as usize]
            .session
            .as_ref()
            .is_some_and(ClientSession::has_transmit);
        if queued {
            self.send_queued(k, depart_ns);
        }
    }

    /// [`SimPoint::flush_client`]'s loop: client `k`'s queued datagrams leave at `depart_ns`.
    ///
    /// The client is looked up once: its session, the frame pool, the times and the queue are
    /// distinct fields, borrowed apart (a lookup per datagram cost a bound and a session check).
    #[inline(never)]
    fn send_queued(&mut self, k: u32, depart_ns: u64) {
        let tx_ns = self.times.client_tx_ns;
        let Some(session) = self.clients[k as usize].session.as_mut() else {
            return;
        };
        // Most calls find nothing queued: skip the buffer's round trip through the pool.
        while session.has_transmit() {
            let mut bytes = self.frames.take();
            let Some(t) = session.poll_transmit(&mut bytes) else {
                return self.frames.give(bytes);
            };
            // The client's port is its own: serialisation at line rate, then propagation.
            let at = depart_ns
                + tx_ns
                + self.times.serialisation_ns(bytes.len())
                + self.config.profile.link.propagation_ns;
            let event = match t.to {
                Destination::Ingress => Event::AtIngress(k, bytes),
                Destination::Rnic => Event::AtRnic(k, bytes),
            };
            self.events.schedule_inline(at, event);
        }
    }

    /// Ends client `k`'s run at `now` (once per client): its report and last intervals.
    ///
    /// Out of line and cold: the report it moves (≈ 3 KiB) gave every [`SimPoint::pump_client`]
    /// (two per request) a frame beyond a page, probed on each call.
    #[cold]
    #[inline(never)]
    fn finish_client(&mut self, k: u32, now: u64) -> Result<(), SimError> {
        let c = &mut self.clients[k as usize];
        let Some(session) = c.session.take() else {
            return Ok(());
        };
        let end_ns = (self.config.warmup_ns + self.config.measure_ns).max(now);
        let mut report = session.finish(end_ns).map_err(setup)?;
        // The intervals the generator still held at the end (as the client role writes them).
        for mut interval in std::mem::take(&mut report.run.intervals) {
            interval.start_ns = interval.start_ns.saturating_sub(self.config.warmup_ns);
            c.hlog.write_interval(&interval).map_err(setup)?;
        }
        c.report = Some((report, end_ns));
        self.clients_running -= 1;
        if self.clients_running == 0 {
            self.events_stop_at = 0;
        }
        Ok(())
    }

    // ---- the server's port, eSwitch and RNIC -------------------------------------------------

    /// Serialisation at the server's port (one FIFO link per direction): when the frame's last
    /// bit is through.
    fn through_port(free_ns: &mut u64, now: u64, serialisation_ns: u64) -> u64 {
        let start = (*free_ns).max(now);
        *free_ns = start + serialisation_ns;
        *free_ns
    }

    fn ingress(&mut self, k: u32, frame: Vec<u8>) {
        let now = self.now();
        let ser = self.times.serialisation_ns(frame.len());
        let at = Self::through_port(&mut self.ingress_free_ns, now, ser);
        if self.ipipe.is_some() {
            // iPipe: every request enters the NIC's runtime.
            self.steered[Location::Nic.index()] += 1;
            let arrive = IpipeEvent::Arrive(naam_ipipe::Side::Nic, k, frame);
            return self.events.schedule_at(at, Event::Ipipe(arrive));
        }
        // The eSwitch steers on the Invoke's header fields, as naam-net's eSwitches (and their
        // kernel program) do; the location decodes the whole frame.
        let Some(h) = naam_net::eswitch::parse_invoke_header(&frame) else {
            return self.frames.give(frame); // clients send only invokes to the ingress
        };
        let mut loc = self
            .eswitch
            .route(h.tenant, h.function, h.flow, h.request_id);
        self.steered[loc.index()] += 1;
        // The client's share goes to the host, which pushes it back (as on the local testbed).
        if loc == Location::Client {
            loc = Location::Host;
        }
        self.server(loc).rx.push_back((k, at, frame));
        if at > now {
            self.schedule_pump(loc, at);
        } else {
            self.pump_server(loc);
        }
    }

    /// Schedules [`Event::CoreFree`] at `at_ns` (later than now), the last thing its caller
    /// does — or spares the queue entry where that is exact:
    ///
    /// - its pump would start nothing and it would be the first event popped then: it is only
    ///   noted. Every core of `loc` busy beyond `at_ns` stays so (work starts only on a free
    ///   core), so the pump would find none free and return; with no event queued for `at_ns`
    ///   yet, it would be popped — and counted in `testbed.json`'s `events` — exactly if the run
    ///   reaches `at_ns`: counted once the clock has passed it, or by [`SimPoint::finish`];
    /// - nothing is due by `at_ns`: it would be the next event popped, so the clock moves there
    ///   and the pump runs now.
    fn schedule_pump(&mut self, loc: Location, at_ns: u64) {
        if self.server(loc).cores.busy_beyond(at_ns) && self.events.first_at(at_ns) {
            self.count_pumps_reached(self.now());
            return self.pumps_noted.note(at_ns);
        }
        if self.events.advance_if_next(at_ns) {
            self.folded_events += 1;
            return self.pump_server(loc);
        }
        self.events.schedule_at(at_ns, Event::CoreFree(loc));
    }

    /// Counts the noted pumps due by `now_ns` (the port's times never decrease: they are in
    /// order).
    fn count_pumps_reached(&mut self, now_ns: u64) {
        self.folded_events += self.pumps_noted.count_reached(now_ns);
    }

    fn rnic(&mut self, k: u32, frame: &[u8]) {
        let now = self.now();
        let rdma = self.config.profile.rdma;
        let gap_ns = self.times.rnic_gap_ns;
        let start = self.rnic_free_ns.max(now);
        self.rnic_free_ns = start + gap_ns;
        let Ok(Frame::Read(read)) = Frame::decode(frame) else {
            return;
        };
        let memory = &self.memory;
        // `answer_read` replies with the bytes it copied (`read.len` of them), never with what a
        // previous read left in the buffer.
        let mut data = self.frames.take();
        data.resize(naam_engine::abi::ACCESS_BYTES_MAX, 0);
        let reply = answer_read(&read, &self.table, &mut data, |region, offset, out| {
            memory
                .region(region)
                .is_some_and(|r| r.read_into(offset, out))
        });
        let mut out = self.frames.take();
        let encoded = Frame::ReadReply(reply).encode(&mut out);
        self.frames.give(data);
        if encoded.is_err() {
            return self.frames.give(out);
        }
        self.rnic_reads += 1;
        self.events
            .schedule_at(start + rdma.read_service_ns, Event::Egress(k, out));
    }

    fn egress(&mut self, k: u32, frame: Vec<u8>) {
        let now = self.now();
        let ser = self.times.serialisation_ns(frame.len());
        let out = Self::through_port(&mut self.egress_free_ns, now, ser);
        let at = out + self.config.profile.link.propagation_ns;
        self.events.schedule_inline(at, Event::AtClient(frame, k));
    }

    // ---- server workers -----------------------------------------------------------------------

    /// The end of the hog's slice holding the host cores now, if one does.
    fn hog_held_until(&self) -> Option<u64> {
        self.hog.and_then(|h| h.held_until(self.now()))
    }

    /// The hog's slice is over: the host's waiting work starts; the next slice's end is due.
    fn hog_slice_end(&mut self) {
        let now = self.now();
        if let Some((_, end)) = self.hog.and_then(|h| h.slice_at_or_after(now)) {
            self.events.schedule_at(end, Event::HogSliceEnd);
        }
        if self.ipipe.is_some() {
            self.ipipe_start(naam_ipipe::Side::Host);
        } else {
            self.pump_server(Location::Host);
        }
    }

    /// Starts work on every free core of `loc`, as the roles' worker loop does: a batch of up to
    /// [`RX_BATCH`] received datagrams, then ready steps until none is left, then the next batch.
    ///
    /// Inline, so that a call that finds every core busy (about a third of the NIC point's
    /// calls) or nothing to run (no datagram waits, no step is ready: most of the
    /// NAAM-adaptive point's calls) returns before the loop's call frame: the loop would find
    /// no free core, or a free one and then nothing to start (`step` returns `None` on an empty
    /// ready queue and changes nothing), and return.
    #[inline]
    fn pump_server(&mut self, loc: Location) {
        let now = self.now();
        let s = self.server(loc);
        if s.cores.busy_beyond(now) || (s.rx.is_empty() && s.worker.ready_len() == 0) {
            return;
        }
        self.pump_free_cores(loc, now);
    }

    /// [`SimPoint::pump_server`]'s loop, from the first look for a free core at `now`.
    ///
    /// Never inlined: LLVM otherwise folds it into `pump_server`, whose checks then run after
    /// this loop's six-register prologue.
    #[inline(never)]
    fn pump_free_cores(&mut self, loc: Location, now: u64) {
        loop {
            let s = self.server(loc);
            if !s.cores.has_free_core(now) {
                return;
            }
            if s.received_in_batch < RX_BATCH
                && let Some((k, arrived_ns, frame)) = s.rx.pop_front()
            {
                s.received_in_batch += 1;
                let busy = s.rx_busy_ns;
                let end = s.cores.occupy(now, busy);
                s.worker.record_busy(busy);
                self.events
                    .schedule_inline(end, Event::RxDone(loc, k, arrived_ns, frame));
                continue;
            }
            // No ready step: `step` would return `None` and change nothing, so it is not called
            // (a pump's last round mostly ends here: a core is still free, nothing is ready).
            let stepped = match s.worker.ready_len() {
                0 => None,
                _ => s.worker.step(Nanos(now)),
            };
            let Some(step) = stepped else {
                if s.received_in_batch == 0 || s.rx.is_empty() {
                    return;
                }
                // No step is ready: the worker receives its next batch.
                s.received_in_batch = 0;
                continue;
            };
            let mut busy = s
                .step_costs
                .step_cost_ns(step.insn, step.data_bytes, step.accesses_out);
            if step.finished {
                busy += s.tx_busy_ns;
            }
            let end = s.cores.occupy(now, busy);
            s.worker.record_busy(busy);
            self.schedule_step_done(loc, end);
        }
    }

    /// A step of `loc` ends at `end_ns`: its core is free then, and its accesses and replies leave.
    fn schedule_step_done(&mut self, loc: Location, end_ns: u64) {
        let event = self.step_done_event(loc);
        self.events.schedule_inline(end_ns, event);
    }

    /// What ends a step of `loc` that has just run: [`Event::StepReplied`] when its one output
    /// is a reply to a client, else [`Event::StepDone`] with the worker's outputs as
    /// [`SimPoint::take_outputs`] polls them (the same order either way).
    fn step_done_event(&mut self, loc: Location) -> Event {
        let worker = &mut self.server(loc).worker;
        if worker.has_access() {
            return Event::StepDone(loc, self.take_outputs(loc));
        }
        if worker.has_output() {
            // With no access, the output is a reply.
            let mut frame = self.frames.take();
            match self
                .server(loc)
                .worker
                .poll_reply(&mut frame)
                .map(|out| out.to)
            {
                Some(ReplyTarget::Source(k)) => {
                    if !self.server(loc).worker.has_output() {
                        return Event::StepReplied(loc, k as u32, frame);
                    }
                    let mut outputs = self.spare_outputs.pop().unwrap_or_default();
                    outputs.replies.push((k as u32, frame));
                    self.take_outputs_into(loc, &mut outputs);
                    return Event::StepDone(loc, outputs);
                }
                // Simulated clients give no reply address.
                Some(ReplyTarget::Addr(_)) | None => self.frames.give(frame),
            }
        }
        Event::StepDone(loc, self.take_outputs(loc))
    }

    /// The worker's accesses, then its replies, as polled.
    #[inline]
    fn take_outputs(&mut self, loc: Location) -> Box<StepOutputs> {
        let mut outputs = self.spare_outputs.pop().unwrap_or_default();
        self.take_outputs_into(loc, &mut outputs);
        outputs
    }

    /// [`SimPoint::take_outputs`] after what `outputs` holds already (taken from the worker in
    /// the order it is polled here).
    ///
    /// Inline: a step's accesses (the NIC point's usual outputs: three a step) are copied as a
    /// slice into `outputs` in the caller's frame (no `Option` moved per access, which stalled
    /// store forwarding); replies, if any, in [`SimPoint::take_replies_into`].
    #[inline(always)]
    fn take_outputs_into(&mut self, loc: Location, outputs: &mut StepOutputs) {
        let worker = &mut self.server(loc).worker;
        worker.take_accesses_into(&mut outputs.accesses);
        if worker.has_output() {
            self.take_replies_into(loc, outputs);
        }
    }

    /// The worker's replies (its accesses taken), after what `outputs` holds.
    #[inline(never)]
    fn take_replies_into(&mut self, loc: Location, outputs: &mut StepOutputs) {
        // With the accesses taken, any output left is a reply: no buffer is taken for none.
        while self.server(loc).worker.has_output() {
            let mut frame = self.frames.take();
            let Some(out) = self.server(loc).worker.poll_reply(&mut frame) else {
                self.frames.give(frame);
                break;
            };
            match out.to {
                ReplyTarget::Source(k) => outputs.replies.push((k as u32, frame)),
                // Simulated clients give no reply address.
                ReplyTarget::Addr(_) => self.frames.give(frame),
            }
        }
    }

    /// The step's core is free, its accesses start, its replies leave (as [`Event::CoreFree`],
    /// [`Event::AccessStart`] and [`Event::Egress`] queued one after another would).
    fn step_done(&mut self, loc: Location, outputs: Box<StepOutputs>) {
        self.folded_events += outputs.model_events() - 1;
        self.pump_server(loc);
        self.hand_on(loc, outputs);
    }

    /// [`SimPoint::step_done`] of a step whose one output is a reply to client `k`.
    fn step_replied(&mut self, loc: Location, k: u32, frame: Vec<u8>) {
        // The reply's departure is folded in, as one of `StepDone`'s outputs.
        self.folded_events += 1;
        self.pump_server(loc);
        // As `hand_on` sends a last output: nothing folded is left to run after it.
        self.folds_pending = 0;
        self.egress(k, frame);
    }

    /// Starts the accesses, then sends the replies, each as its own queue entry's handler would
    /// have, in the order they would have been popped: while some are still to run, an event
    /// scheduled for now would wait behind them (see [`SimPoint::release_outputs`]).
    #[inline]
    fn hand_on(&mut self, loc: Location, mut outputs: Box<StepOutputs>) {
        let mut left = outputs.len();
        // Read in place in the holder (no move of each access out of it first).
        for access in &outputs.accesses {
            left -= 1;
            self.folds_pending = left;
            self.start_access(loc, access);
        }
        outputs.accesses.clear();
        for (k, frame) in outputs.replies.drain(..) {
            left -= 1;
            self.folds_pending = left;
            self.egress(k, frame);
        }
        self.recycle_outputs(outputs);
    }

    /// Keeps an emptied holder for reuse (at most [`FRAME_POOL_MAX`]).
    #[inline]
    fn recycle_outputs(&mut self, outputs: Box<StepOutputs>) {
        if self.spare_outputs.len() < FRAME_POOL_MAX {
            self.spare_outputs.push(outputs);
        }
    }

    /// The accesses and replies the worker has now, for the caller to hand on after its pump
    /// ([`SimPoint::hand_on_released`]), if any. Queued for now, each would run after the caller's
    /// handler and after every event already due now: when none is (nor a folded one still to
    /// run), they are the next entries popped, so running them right after the handler is the
    /// same — in their order, and before anything the handler or they schedule for now.
    /// Otherwise they are queued (see [`Event::AccessStart`], [`Event::Egress`]).
    ///
    /// Called when the worker has outputs (see [`SimPoint::pump_and_release`]).
    #[inline]
    fn release_outputs(&mut self, loc: Location) -> Released {
        if self.events.any_due_now() || self.folds_pending > 0 {
            self.queue_outputs(loc);
            return Released::Nothing;
        }
        // Most releases are one access (a datagram's first): no holder for it.
        let worker = &mut self.server(loc).worker;
        if let Some(access) = worker.poll_access() {
            if !worker.has_output() {
                self.folded_events += 1;
                return Released::Access(access);
            }
            let mut outputs = self.spare_outputs.pop().unwrap_or_default();
            outputs.accesses.push(access);
            self.take_outputs_into(loc, &mut outputs);
            self.folded_events += outputs.len() as u64;
            return Released::Outputs(outputs);
        }
        let outputs = self.take_outputs(loc);
        self.folded_events += outputs.len() as u64;
        Released::Outputs(outputs)
    }

    /// Hands on what [`SimPoint::release_outputs`] released.
    fn hand_on_released(&mut self, loc: Location, released: Released) {
        match released {
            Released::Nothing => {}
            Released::Access(access) => {
                self.folds_pending = 0;
                self.start_access(loc, &access);
            }
            Released::Outputs(outputs) => self.hand_on(loc, outputs),
        }
    }

    /// The accesses and replies the worker has, queued for now.
    fn queue_outputs(&mut self, loc: Location) {
        let at_ns = self.now();
        let mut outputs = self.take_outputs(loc);
        for access in outputs.accesses.drain(..) {
            self.events
                .schedule_at(at_ns, Event::AccessStart(loc, Box::new(access)));
        }
        for (k, frame) in outputs.replies.drain(..) {
            self.events.schedule_at(at_ns, Event::Egress(k, frame));
        }
        self.recycle_outputs(outputs);
    }

    /// The datagram is received: the worker takes it with its arrival at the port as its
    /// receive timestamp (as the roles pass the kernel's), so its queueing delay counts the wait
    /// for a core — behind other datagrams, or for the end of a hog's slice.
    fn rx_done(&mut self, loc: Location, k: u32, arrived_ns: u64, frame: &[u8]) {
        let now = self.now();
        self.server(loc).worker.handle_datagram(
            Nanos(now),
            Nanos(arrived_ns.min(now)),
            frame,
            || u64::from(k),
        );
        if loc == Location::Host {
            self.run_natives(now);
        }
        self.pump_and_release(loc);
    }

    /// Host-native calls (writes) run on the core that received them; their CPU time is a step's
    /// fixed cost and a send (an assumption: a native SET is a few loads and a copy of a small
    /// value, like one step).
    fn run_natives(&mut self, now: u64) {
        let s = &mut self.servers[0];
        if !self.natives.run_pending(now, &mut s.worker) {
            return;
        }
        let busy = s.step_costs.step_cost_ns(0, 0, 0) + s.tx_busy_ns;
        let end = if s.cores.has_free_core(now) {
            s.cores.occupy(now, busy)
        } else {
            s.cores.finish_ns(now, busy)
        };
        s.worker.record_busy(busy);
        self.schedule_step_done(Location::Host, end);
    }

    /// An access of `loc` starts: the NIC's goes to its DMA queue, the host's is done now.
    ///
    /// Out of line (the run loop's [`Event::AccessStart`], a released access):
    /// [`SimPoint::start_access`] inline in the run loop made it spill. [`SimPoint::hand_on`]'s
    /// loop, ≈ 3 per request of the NIC point, inlines it.
    #[inline(never)]
    fn access_start(&mut self, loc: Location, access: AccessRequest) {
        self.start_access(loc, &access);
    }

    /// [`SimPoint::access_start`], inline: the DMA's few operations cost less than the call and
    /// the access's copy into its argument.
    #[inline(always)]
    fn start_access(&mut self, loc: Location, access: &AccessRequest) {
        let now = self.now();
        if loc == Location::Host {
            return self.host_access(*access);
        }
        // Server work runs at the host or the NIC (the eSwitch's client share goes to the host).
        debug_assert_eq!(loc, Location::Nic, "a server location");
        let start = self.dma_free_ns.max(now);
        self.dma_free_ns = start + self.times.dma_gap_ns;
        let latency = self
            .times
            .dma_latency_ns(&self.config.profile, access.descriptor.len);
        self.prefetch(access);
        self.events
            .schedule_inline(start + latency, Event::AccessDone(*access));
    }

    /// The host reads its own memory: the access's cost is in the step's CPU time, so it is
    /// done now. Out of line: the NIC's accesses, inline, need none of it.
    #[inline(never)]
    fn host_access(&mut self, access: AccessRequest) {
        self.access_done(Location::Host, access);
    }

    /// Asks the CPU to bring the access's bytes into its cache now, so that reading them when
    /// the modelled DMA is over ([`Event::AccessDone`], dozens of events later) does not stall on
    /// a cache miss: the simulator's own speed only (a prefetch reads nothing the model sees).
    ///
    /// The addresses are not checked against the region: a prefetch never faults and changes
    /// nothing, whatever the address (an access out of bounds fails when it completes, the
    /// region's `read_into` checks its bounds; an empty one names the line before its offset).
    /// The check and the empty access's clamp were ≈ 7 instructions on each of ≈ 3.8 accesses
    /// per request of the NIC point.
    fn prefetch(&self, access: &AccessRequest) {
        let Some(region) = self.memory.region(access.region) else {
            return;
        };
        let first = access.descriptor.offset as usize;
        let last = first
            .wrapping_add(access.descriptor.len as usize)
            .wrapping_sub(1);
        let base = region.as_ptr();
        prefetch_line(base.wrapping_add(first));
        if first / CACHE_LINE_BYTES != last / CACHE_LINE_BYTES {
            prefetch_line(base.wrapping_add(last));
        }
    }

    #[inline]
    fn access_done(&mut self, loc: Location, access: AccessRequest) {
        let now = self.now();
        let i = usize::from(loc == Location::Nic);
        self.path.start(now, access, &mut self.servers[i].worker);
        self.pump_and_release(loc);
    }

    /// After the worker of `loc` took an input (a datagram, an access's bytes): its free cores
    /// start work, and what it released goes on, as [`SimPoint::release_outputs`] says.
    ///
    /// Inline: most calls find no output (every access completion of the bench's points: a
    /// completion readies a step, it does not run one), answered with the pump alone, without
    /// a [`Released`] built, moved and matched; the rest is [`SimPoint::pump_and_hand_on`].
    #[inline]
    fn pump_and_release(&mut self, loc: Location) {
        if !self.server(loc).worker.has_output() {
            return self.pump_server(loc);
        }
        self.pump_and_hand_on(loc);
    }

    /// [`SimPoint::pump_and_release`] when the worker has outputs: they are released before the
    /// pump (which may run steps adding outputs of their own) and handed on after it.
    #[inline(never)]
    fn pump_and_hand_on(&mut self, loc: Location) {
        let released = self.release_outputs(loc);
        self.pump_server(loc);
        self.hand_on_released(loc, released);
    }

    // ---- sampling and control -----------------------------------------------------------------

    fn worker_tick(&mut self, loc: Location) {
        let now = self.now();
        let held_until = self.hog_held_until().filter(|_| loc == Location::Host);
        let s = self.server(loc);
        if s.tick_at_ns != now {
            return;
        }
        if let Some(end) = held_until {
            // Off its core, the worker samples when the hog's slice is over.
            s.tick_at_ns = end;
            return self.events.schedule_at(end, Event::WorkerTick(loc));
        }
        let sample = s.worker.handle_timeout(Nanos(now));
        if loc == Location::Host {
            self.host_beat_ns = now;
        }
        let s = self.server(loc);
        s.tick_at_ns = s.worker.poll_timeout().0.max(now + 1);
        let next = s.tick_at_ns;
        self.events.schedule_at(next, Event::WorkerTick(loc));
        let Some(sample) = sample else {
            return;
        };
        if loc == Location::Host {
            self.control.on_host_sample(sample);
        } else {
            let observed = self.control.on_nic_sample(sample);
            self.observe(observed);
        }
    }

    /// The control stage's tick, with the host worker's heartbeat as the host role's liveness
    /// reader gives it: queued for its core when a hog's slice holds it while datagrams wait.
    fn control_tick(&mut self) {
        let now = self.now();
        let beat = Heartbeat {
            at: Nanos(self.host_beat_ns),
            waiting_for_cpu: self.hog_held_until().is_some() && !self.servers[0].rx.is_empty(),
        };
        if let Some(observed) = self.control.handle_timeout(Nanos(now), &[beat]) {
            self.observe(observed);
        }
        let next = self.control.poll_timeout().0.max(now + 1);
        self.events.schedule_at(next, Event::ControlTick);
    }

    /// Records a sample; publishes a change's settings to the workers now and hands its rules to
    /// the eSwitch, which holds them `rule_update_ns` later.
    fn observe(&mut self, observed: Observed) {
        let now = self.now();
        let warmup = self.config.warmup_ns;
        let s = observed.sample;
        if let (Some(location), Some(t_ns)) = (s.location, now.checked_sub(warmup)) {
            self.samples.push(raw::LoadSample {
                t_ns,
                location: naam_roles::host::control::results_location(location),
                queue_delay_ns: s.queue_delay_ns,
                utilisation: f64::from(s.utilisation_permille) / 1000.0,
                completions: s.completions,
            });
        }
        let (Some(change), None) = (observed.change, observed.rule_error) else {
            return;
        };
        let settings = self.control.settings();
        for s in &mut self.servers {
            s.worker.apply(settings);
        }
        let applied_at = now + self.config.profile.rule_update_ns;
        self.events.schedule_at(
            applied_at,
            Event::RulesApplied(Box::new(self.control.rules().clone())),
        );
        let Some(t_ns) = applied_at.checked_sub(warmup) else {
            return;
        };
        self.changes.push(raw::SteeringChange {
            t_ns,
            policy: self.config.policy.name().to_string(),
            scope: naam_roles::host::control::scope_name(change.key),
            host_permille: change.after.of(Location::Host),
            nic_permille: change.after.of(Location::Nic),
            client_permille: change.after.of(Location::Client),
            reason: change.reason.to_string(),
        });
    }

    // ---- results ------------------------------------------------------------------------------

    fn finish(mut self, out_dir: &Path) -> Result<SimOutcome, SimError> {
        if let Some(ipipe) = &mut self.ipipe {
            ipipe.end_phase();
        }
        // Noted pumps beyond the run's last time would not have been popped.
        self.count_pumps_reached(self.events.now_ns());
        let config = &self.config;
        let record = SimRecord {
            network: "simulated".into(),
            label: config.profile.label(),
            profile: config.profile.name.clone(),
            profile_description: config.profile.description.clone(),
            seed: config.seed,
            events: self.events_counted(),
            end_ns: self.events.now_ns(),
            steered: self.steered,
            rnic_reads: self.rnic_reads,
            rule_changes: self.changes.len() as u64,
            ipipe: self.ipipe.as_ref().map(IpipeServers::record),
        };
        let server = ServerSummary {
            schema: raw::RAW_SCHEMA_VERSION,
            policy: config.policy.name().to_string(),
            host: self.counters(0),
            nic: self.counters(1),
            // Simulated clients send only well-formed frames over lossless links, and every
            // sample is kept in memory; host CPU is not modelled beyond the cores' busy time.
            dropped: raw::DroppedDatagrams::default(),
            load_samples_dropped: 0,
            steering_changes_dropped: 0,
            vm: Some(raw::PerLocationVm {
                host: "interpreter".into(),
                nic: "interpreter".into(),
            }),
            host_cpu: None,
            system: Some(naam_roles::ipipe::system_name(&config.policy).into()),
            ipipe: self.ipipe.as_ref().map(IpipeServers::record),
        };
        let mut clients = Vec::new();
        for (k, c) in self.clients.into_iter().enumerate() {
            let k = k as u32;
            let Some((report, _end)) = c.report else {
                return Err(SimError::Setup(format!("client {k} did not finish")));
            };
            let hlog = c.hlog.finish().map_err(setup)?;
            write(out_dir, &raw::client_hlog_file(k), &hlog)?;
            let summary = client_summary(config, k, report);
            write_json(out_dir, &raw::client_summary_file(k), &summary)?;
            clients.push(summary);
        }
        write_json(out_dir, raw::SERVER_FILE, &server)?;
        let path = out_dir.join(raw::STEERING_FILE);
        raw::write_jsonl(&path, &self.changes).map_err(|e| output(&path, e))?;
        let path = out_dir.join(raw::SAMPLES_FILE);
        raw::write_jsonl(&path, &self.samples).map_err(|e| output(&path, e))?;
        write_json(out_dir, TESTBED_FILE, &record)?;
        Ok(SimOutcome {
            record,
            clients,
            server,
        })
    }

    fn counters(&self, i: usize) -> raw::LocationCounters {
        if let Some(ipipe) = &self.ipipe {
            let location = [Location::Host, Location::Nic][i];
            return ipipe.counters(location, self.config.measure_ns);
        }
        let s = &self.servers[i];
        let totals = Totals::of(&s.worker.measured_totals());
        totals.location_counters(s.cores.count() as u32, self.config.measure_ns)
    }
}

/// Writes the intervals `session` closed by `now` into `hlog`, their starts since the measured
/// phase's (`warmup_ns` after the run's start). Out of line: a few per client and run.
#[inline(never)]
fn write_intervals(
    session: &mut ClientSession,
    hlog: &mut HlogWriter<Vec<u8>>,
    warmup_ns: u64,
    now: u64,
) -> Result<(), SimError> {
    while let Some(mut interval) = session.poll_interval(now).map_err(setup)? {
        interval.start_ns = interval.start_ns.saturating_sub(warmup_ns);
        hlog.write_interval(&interval).map_err(setup)?;
    }
    Ok(())
}

/// A cache line on the machines the simulator runs on (x86-64, Arm64: 64 bytes).
const CACHE_LINE_BYTES: usize = 64;

/// The testbed's record in a point's folder (as the local testbed's).
pub const TESTBED_FILE: &str = "testbed.json";

fn check(config: &SimPointConfig) -> Result<(), SimError> {
    let bad = |m: String| Err(SimError::Config(m));
    let clients = config.clients.len();
    if !(1..=CLIENTS_MAX as usize).contains(&clients) {
        return bad(format!("{clients} clients: 1..={CLIENTS_MAX}"));
    }
    if let Some(c) = config
        .clients
        .iter()
        .find(|c| c.offered_ops_per_s.is_nan() || c.offered_ops_per_s <= 0.0)
    {
        return bad(format!("offered load {} ops/s", c.offered_ops_per_s));
    }
    if config.interval_ns == 0 || !config.measure_ns.is_multiple_of(config.interval_ns) {
        return bad(format!(
            "interval {} ns must divide the measured phase {} ns",
            config.interval_ns, config.measure_ns
        ));
    }
    if let Some(h) = config.hog
        && h.start_ns > h.stop_ns
    {
        return bad(format!("hog starts at {} after it stops", h.start_ns));
    }
    Ok(())
}

/// The server's control stage, as the host role builds it.
fn control_stage(
    config: &SimPointConfig,
    server: &dyn ServerWorkload,
) -> Result<ServerControl, SimError> {
    ServerControl::new(
        naam_roles::host::server_controller(&config.policy).map_err(setup)?,
        naam_roles::host::fixed_rules(server, config.dataset.tenants).map_err(setup)?,
        // The host role's silence rule: a host worker silent beyond a sampling period and its
        // idle wait counts when it is queued for its core (a hog) or starved.
        HostLoad::with_silence_rule(
            config.sample_period_ns,
            SilenceRule::stall_tolerant(config.sample_period_ns + SERVE_IDLE_WAIT_NS),
        ),
        Nanos(0),
    )
    .map_err(setup)
}

/// The hog's slices on the host cores, from the point's hog window and the profile.
fn hog_slices(config: &SimPointConfig) -> Option<HogSlices> {
    let profile = &config.profile;
    config.hog.map(|h| {
        HogSlices::from_share(
            h.start_ns,
            h.stop_ns,
            profile.hog_slice_ns,
            profile.hog_core_share,
        )
    })
}

/// The host and NIC workers with their cores (the host's shared with the hog, if any).
fn servers(
    config: &SimPointConfig,
    hog: Option<HogSlices>,
    functions: &Arc<naam_engine::FunctionTable>,
    table: &Arc<RegionTable>,
) -> Result<[Server; 2], SimError> {
    let worker = |loc| {
        ServerWorker::new(
            WorkerConfig::new(loc, config.sample_period_ns),
            Arc::clone(functions),
            Arc::clone(table),
            Nanos(0),
        )
        .map_err(setup)
    };
    let mut servers = [
        server_of(worker(Location::Host)?, config.profile.host, config)?,
        server_of(worker(Location::Nic)?, config.profile.nic, config)?,
    ];
    if let Some(h) = hog {
        servers[0].cores.set_hog(h);
    }
    Ok(servers)
}

fn server_of(
    worker: ServerWorker,
    cost: CpuCost,
    _config: &SimPointConfig,
) -> Result<Server, SimError> {
    Ok(Server {
        worker,
        cores: CorePool::new(cost.cores).map_err(setup)?,
        step_costs: StepCosts::new(cost),
        rx_busy_ns: round_ns(cost.rx_ns),
        tx_busy_ns: round_ns(cost.tx_ns),
        rx: VecDeque::new(),
        received_in_batch: 0,
        tick_at_ns: 0,
    })
}

fn client_session(
    config: &SimPointConfig,
    k: u32,
    meta: &naam_roles::workload::DatasetMeta,
    functions: &Arc<naam_engine::FunctionTable>,
    table: &Arc<RegionTable>,
) -> Result<ClientSession, SimError> {
    let client = &config.clients[k as usize];
    let seed = client.seed;
    let rate = client.offered_ops_per_s;
    let mut endpoint_config = EndpointConfig::new(k, config.timeout_ns);
    endpoint_config.inflight_max = config.inflight_max as usize;
    // As the host role announces it: iPipe has no host-native calls (every request enters the
    // NIC, where the actor that owns the table applies writes too).
    endpoint_config.server_only_pinned = naam_roles::ipipe::params_of(&config.policy).is_none();
    let client_policy = config.policy.runs_at_client().then(|| {
        naam_engine::Controller::new(
            naam_engine::policy::build(&config.policy),
            naam_engine::RuleKey::DEFAULT,
        )
    });
    let endpoint = ClientEndpoint::new(
        endpoint_config,
        Arc::clone(functions),
        Arc::clone(table),
        client_policy,
        Nanos(0),
    )
    .map_err(setup)?;
    let load = LoadConfig {
        mode: LoadMode::Poisson {
            rate_per_s: rate,
            seed: seed ^ 0x5c4e_d01e,
        },
        warmup_ns: config.warmup_ns,
        measure_ns: config.measure_ns,
        requests_max: naam_loadgen::generator::REQUESTS_MAX,
        inflight_max: config.inflight_max,
        interval_ns: config.interval_ns,
        thresholds: Thresholds::default(),
        rate_steps: client
            .load_steps
            .iter()
            .map(|&(at_ns, factor)| naam_loadgen::RateStep { at_ns, factor })
            .collect(),
        // The intervals go to the client's hlog; no raw file holds a run's totals.
        sum_totals: false,
    };
    let generator = LoadGenerator::new(load, TagSet::locations()).map_err(setup)?;
    let workload = workload::client(&config.dataset, meta, k, seed, true).map_err(setup)?;
    let times = SessionTimes {
        warmup_ns: config.warmup_ns,
        end_ns: config.warmup_ns + config.measure_ns,
        drain_grace_ns: DRAIN_GRACE_NS,
    };
    ClientSession::new(generator, workload, endpoint, times).map_err(setup)
}

fn hlog_writer(config: &SimPointConfig, k: u32) -> Result<HlogWriter<Vec<u8>>, SimError> {
    let comment = format!(
        "naam client {k}, {} (latency ns from the intended send; tag = where it ran; times are \
         virtual: StartTime is the measured phase's start since the run's start)",
        config.profile.label()
    );
    HlogWriter::new(
        Vec::new(),
        TagSet::locations(),
        Duration::from_nanos(config.warmup_ns),
        &[&comment],
    )
    .map_err(setup)
}

fn client_summary(config: &SimPointConfig, k: u32, report: SessionReport) -> ClientSummary {
    let run = report.run;
    ClientSummary {
        schema: raw::RAW_SCHEMA_VERSION,
        client: k,
        schedule: ScheduleKind::Poisson,
        offered_ops_per_s: Some(config.clients[k as usize].offered_ops_per_s),
        sent: run.rate.intended,
        completed: run.rate.completed,
        completed_after_phase: run.rate.completed_after_phase,
        errors: report.errors,
        verify_failures: report.measured.verify_failures,
        misses: report.measured.misses,
        send_lateness_ns_p50: run.rate.send_lateness_ns_p50,
        send_lateness_ns_p99: run.rate.send_lateness_ns_p99,
        send_lateness_ns_max: run.rate.send_lateness_ns_max,
        window: naam_roles::session::window_hold(&run.rate),
        achieved_ops_per_s: run.rate.achieved_rate_per_s,
        warmup_ms: config.warmup_ns / 1_000_000,
        measure_ms: config.measure_ns / 1_000_000,
        seed: config.clients[k as usize].seed,
        distribution: report.distribution.to_string(),
        interval_ms: config.interval_ns / 1_000_000,
        stopped_at_ms: None,
    }
}

fn output(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Output {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), SimError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| output(&path, e))
}

fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), SimError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| output(&dir.join(name), e))?;
    bytes.push(b'\n');
    write(dir, name, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`NotedPumps`] counts what the deque it replaced counted: times in order, each counted
    /// once when the clock reaches it, however many are still ahead (its memory bound included).
    #[test]
    fn noted_pumps_count_as_a_deque_would() {
        let mut noted = NotedPumps::default();
        let mut deque = VecDeque::new();
        let (mut now_ns, mut at_ns, mut state) = (0u64, 0u64, 0x9e37_79b9_u64);
        let (mut counted, mut counted_by_deque) = (0, 0);
        for round in 0..20_000u64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            // Long stretches where the clock lags far behind the notes exercise the bound.
            let lag = if (round / 3000) % 2 == 0 { 5 } else { 5000 };
            now_ns += (state >> 33) % 7;
            at_ns = at_ns.max(now_ns + 1) + (state >> 40) % lag;
            counted += noted.count_reached(now_ns);
            while deque.front().is_some_and(|&t| t <= now_ns) {
                deque.pop_front();
                counted_by_deque += 1;
            }
            assert_eq!(counted, counted_by_deque, "round {round}");
            noted.note(at_ns);
            deque.push_back(at_ns);
            assert!(noted.counted <= NOTED_PUMPS_COUNTED_MAX);
        }
        assert_eq!(
            noted.count_reached(u64::MAX),
            deque.len() as u64,
            "the rest, at the end"
        );
    }
}
