//! The runtime of one side (NIC or host): actors and their objects, the FCFS ingress, the DRR
//! run queue, the cores, and on the NIC the management core's decisions and migrations.
//!
//! Sans-IO, single-threaded and deterministic: every entry point takes `now`, nothing reads a
//! clock, and the work of a core is a [`Job`] the driver executes and times:
//!
//! ```text
//! submit(now, source, datagram)          a request arrives
//! start(core, now) -> Option<Job>        the core's next work (a request, a forward, a phase)
//! job.execute()                          the actor's native code runs (the driver times it)
//! finish(now, job, exec_ns)              the core is done at `now`; replies and events follow
//! poll_transmit(&mut frame) / poll_event()
//! ```
//!
//! A real-clock driver calls `execute` between two clock reads and adds the modelled overheads
//! of [`crate::cost::CostModel`]; a discrete-event driver adds modelled costs to `now` and calls
//! `finish` when that time comes. Between `start` and `finish` the job owns the actor's
//! application and objects (an actor runs one item at a time), so a threaded driver may execute
//! jobs of different actors in parallel outside any lock on the runtime.

mod core;
mod drr;
mod ingress;
mod manage;

use std::collections::{HashMap, VecDeque};

use naam_engine::wire::{ErrorCode, Frame, Reply, ReplyAddr, Status};
use naam_engine::{FunctionId, Nanos, RequestId, TenantId};

use crate::actor::{Actor, ActorSpec, ActorState, FUNCTIONS_PER_ACTOR_MAX};
use crate::app::{App, Op};
use crate::config::{ConfigError, IpipeConfig, Isolation};
use crate::ids::{ActorId, CoreId, ObjectId, Side};
use crate::memory::{Allocator, DmoError, ObjectEntry, ObjectTable};
use crate::queue::{CoreQueues, Ingress};
use crate::window::SideWindow;

pub use self::core::{Job, Task, TaskKind};
pub use self::manage::{Direction, Phase};

/// Actors one side may hold.
pub const ACTORS_MAX: usize = 4096;
/// Replies and events waiting for the driver; beyond, the oldest are dropped and counted.
pub const OUTPUTS_MAX: usize = 1 << 20;

/// Why the runtime refused a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No such actor on this side.
    #[error("no actor {actor:?} on this side")]
    NoSuchActor {
        /// The id given.
        actor: ActorId,
    },
    /// Already [`ACTORS_MAX`] actors.
    #[error("this side already holds {ACTORS_MAX} actors")]
    TooManyActors,
    /// A function is already served by another actor of the tenant, or too many functions.
    #[error("tenant {tenant:?} function {function:?}: {why}")]
    Route {
        /// The tenant.
        tenant: TenantId,
        /// The function.
        function: FunctionId,
        /// What is wrong.
        why: &'static str,
    },
    /// An object operation failed.
    #[error(transparent)]
    Dmo(#[from] DmoError),
    /// The actor is running, remote or migrating: its objects are not here to touch.
    #[error("actor {actor:?} is {state:?}: its objects are not available")]
    Busy {
        /// The actor.
        actor: ActorId,
        /// Its state.
        state: ActorState,
    },
    /// No such core, or a core asked for work while its last job is unfinished.
    #[error("core {core:?}: {why}")]
    Core {
        /// The core.
        core: CoreId,
        /// What is wrong.
        why: &'static str,
    },
    /// A migration message that does not fit the migration in progress.
    #[error("migration of {actor:?}: {why}")]
    Migration {
        /// The actor.
        actor: ActorId,
        /// What is wrong.
        why: &'static str,
    },
}

/// What happened to a submitted datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Queued for an actor.
    Queued,
    /// Answered at once with an error reply (unknown function, overload, continuation).
    Answered,
    /// Not a request frame: dropped (there is no request id to answer).
    Dropped,
}

/// Where a reply goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The driver's token of the request's sender.
    pub source: u64,
    /// The request's reply address, if it named one.
    pub reply_to: Option<ReplyAddr>,
}

/// Something the driver must act on or may record.
#[derive(Debug)]
pub enum Event {
    /// An actor's tail exceeded the tail threshold: it now runs on DRR cores.
    Downgraded {
        /// The actor.
        actor: ActorId,
        /// Its p99 execution time.
        tail_ns: u64,
    },
    /// A DRR actor's tail fell below `(1 − α)` of the threshold: back to FCFS.
    Upgraded {
        /// The actor.
        actor: ActorId,
        /// Its p99 execution time.
        tail_ns: u64,
    },
    /// The management core decided to move an actor.
    MigrationStarted {
        /// The actor.
        actor: ActorId,
        /// Which way.
        direction: Direction,
        /// The mean sojourn time that triggered it.
        mean_ns: u64,
    },
    /// Phase 3 of a migration to the host: deliver to the host's [`Runtime::import`].
    Migrated(crate::actor::ActorImage),
    /// A request for an actor on the host: deliver to the host's [`Runtime::submit`].
    Forward {
        /// The sender's token.
        source: u64,
        /// The request's reply address, if it named one (the driver must give the host a way
        /// to answer the client directly).
        reply_to: Option<ReplyAddr>,
        /// The request frame.
        frame: Vec<u8>,
    },
    /// Phase 1 of a pull-back: the host must export the actor ([`Runtime::begin_export`]).
    Recall {
        /// The actor.
        actor: ActorId,
    },
    /// The host's answer to a recall: deliver to the NIC's [`Runtime::deliver_image`].
    Exported(crate::actor::ActorImage),
    /// A migration finished.
    MigrationDone {
        /// The actor.
        actor: ActorId,
        /// Which way.
        direction: Direction,
        /// When it was decided.
        started: Nanos,
        /// When its last phase finished.
        finished: Nanos,
        /// Objects moved.
        objects: u32,
        /// Bytes moved.
        bytes: u64,
        /// Requests buffered during the migration and pushed after it.
        requests: u32,
    },
}

/// Counters of one side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Request frames accepted into a queue.
    pub queued: u64,
    /// Datagrams that were not request frames.
    pub dropped: u64,
    /// Requests answered with an error before running (unknown function, overload).
    pub refused: u64,
    /// Requests refused because a queue was full.
    pub overloaded: u64,
    /// Requests run to completion (ok or with the application's error).
    pub completed: u64,
    /// Completed with an error reply.
    pub failed: u64,
    /// Requests forwarded to the other side.
    pub forwarded: u64,
    /// Downgrades to DRR.
    pub downgrades: u64,
    /// Upgrades back to FCFS.
    pub upgrades: u64,
    /// Migrations completed to the host.
    pub migrations_to_host: u64,
    /// Pull-backs completed from the host.
    pub migrations_to_nic: u64,
    /// Address-space switches between tenants (process isolation).
    pub tenant_switches: u64,
    /// Hand-offs of an item to a tenant's process (process isolation).
    pub handoffs: u64,
    /// Core time from start to finish of every job.
    pub busy_ns: u64,
    /// Replies or events dropped because the driver did not poll ([`OUTPUTS_MAX`]).
    pub outputs_dropped: u64,
}

#[derive(Debug, Default)]
struct Core {
    busy: bool,
    /// The tenant whose code this core ran last (process isolation's switches).
    last_tenant: Option<TenantId>,
    /// A DRR core's current turn.
    turn: Option<ActorId>,
}

#[derive(Debug)]
struct TenantSlot {
    home: usize,
    actors_here: u32,
    /// The tenant process's memory on this side (process isolation).
    process: Option<u64>,
}

/// The iPipe runtime of one side.
#[derive(Debug)]
pub struct Runtime {
    config: IpipeConfig,
    allocator: Allocator,
    actors: Vec<Option<Actor>>,
    routes: HashMap<(TenantId, FunctionId), (ActorId, Op)>,
    tenants: HashMap<TenantId, TenantSlot>,
    ingress: Ingress,
    drr_active: VecDeque<ActorId>,
    cores: Vec<Core>,
    window: SideWindow,
    migration: Option<manage::Migration>,
    exports: VecDeque<ActorId>,
    transmits: VecDeque<(Transmit, Vec<u8>)>,
    events: VecDeque<Event>,
    spare: Vec<Vec<u8>>,
    stats: RuntimeStats,
}

impl Runtime {
    /// A side with no actors.
    pub fn new(config: IpipeConfig) -> Result<Runtime, RuntimeError> {
        config.validate()?;
        let ingress = match config.isolation {
            Isolation::Trusted => Ingress::Shared(VecDeque::new()),
            Isolation::ProcessPerTenant { .. } => Ingress::Processes(
                (0..config.fcfs_cores())
                    .map(|_| CoreQueues::default())
                    .collect(),
            ),
        };
        Ok(Runtime {
            allocator: Allocator::new(config.memory_bytes),
            actors: Vec::new(),
            routes: HashMap::new(),
            tenants: HashMap::new(),
            ingress,
            drr_active: VecDeque::new(),
            cores: (0..config.cores).map(|_| Core::default()).collect(),
            window: SideWindow::new(config.windows.side_completions.into()),
            migration: None,
            exports: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            spare: Vec::new(),
            stats: RuntimeStats::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &IpipeConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &RuntimeStats {
        &self.stats
    }

    /// Bytes of this side's memory in use (objects and tenant processes).
    pub fn memory_used_bytes(&self) -> u64 {
        self.allocator.used_bytes()
    }

    /// Items waiting in the FCFS ingress.
    pub fn ingress_len(&self) -> usize {
        self.ingress.len()
    }

    /// Registers an actor (its application comes with [`Runtime::set_app`] once its objects
    /// exist). Actor ids are this side's order of registration.
    pub fn add_actor(&mut self, spec: ActorSpec) -> Result<ActorId, RuntimeError> {
        if self.actors.len() >= ACTORS_MAX {
            return Err(RuntimeError::TooManyActors);
        }
        let id = ActorId(self.actors.len() as u32);
        self.check_routes(&spec)?;
        self.enter_tenant(spec.tenant)?;
        self.add_routes(id, &spec);
        let actor = self.new_actor(id, spec);
        self.actors.push(Some(actor));
        Ok(id)
    }

    fn new_actor(&self, id: ActorId, spec: ActorSpec) -> Actor {
        let window = self.config.windows.actor_executions as usize;
        Actor::new(id, spec, self.config.thresholds.drr_quantum_ns, window)
    }

    fn check_routes(&self, spec: &ActorSpec) -> Result<(), RuntimeError> {
        let route_err = |function, why| RuntimeError::Route {
            tenant: spec.tenant,
            function,
            why,
        };
        if spec.functions.len() > FUNCTIONS_PER_ACTOR_MAX {
            return Err(route_err(
                FunctionId(0),
                "more functions than an actor may serve",
            ));
        }
        match spec
            .functions
            .iter()
            .find(|(f, _)| self.routes.contains_key(&(spec.tenant, *f)))
        {
            Some((f, _)) => Err(route_err(*f, "already served by another actor")),
            None => Ok(()),
        }
    }

    fn add_routes(&mut self, id: ActorId, spec: &ActorSpec) {
        for &(function, op) in &spec.functions {
            self.routes.insert((spec.tenant, function), (id, op));
        }
    }

    /// A tenant gains an actor on this side: under process isolation its first actor brings the
    /// tenant's process (memory) and a home core.
    fn enter_tenant(&mut self, tenant: TenantId) -> Result<(), RuntimeError> {
        if let Some(here) = self.tenants.get(&tenant).map(|s| s.actors_here) {
            let process = if here == 0 {
                self.reserve_process()?
            } else {
                None
            };
            if let Some(slot) = self.tenants.get_mut(&tenant) {
                slot.process = slot.process.or(process);
                slot.actors_here += 1;
            }
            return Ok(());
        }
        let home = self.tenants.len() % usize::from(self.config.fcfs_cores());
        let process = self.reserve_process()?;
        self.tenants.insert(
            tenant,
            TenantSlot {
                home,
                actors_here: 1,
                process,
            },
        );
        Ok(())
    }

    fn process_bytes(&self) -> Option<u64> {
        match self.config.isolation {
            Isolation::Trusted => None,
            Isolation::ProcessPerTenant { process_bytes, .. } => {
                Some(process_bytes).filter(|&b| b > 0)
            }
        }
    }

    fn reserve_process(&mut self) -> Result<Option<u64>, RuntimeError> {
        match self.process_bytes() {
            Some(bytes) => Ok(Some(self.allocator.alloc(bytes)?)),
            None => Ok(None),
        }
    }

    /// A tenant loses an actor on this side; its process goes with its last one.
    fn leave_tenant(&mut self, tenant: TenantId) {
        let bytes = self.process_bytes();
        let Some(slot) = self.tenants.get_mut(&tenant) else {
            return;
        };
        slot.actors_here = slot.actors_here.saturating_sub(1);
        if slot.actors_here == 0
            && let (Some(start), Some(bytes)) = (slot.process.take(), bytes)
        {
            self.allocator.free(start, bytes);
        }
    }

    fn actor(&self, id: ActorId) -> Option<&Actor> {
        self.actors.get(id.0 as usize)?.as_ref()
    }

    fn actor_mut(&mut self, id: ActorId) -> Option<&mut Actor> {
        self.actors.get_mut(id.0 as usize)?.as_mut()
    }

    fn home_of(&mut self, id: ActorId) -> Result<&mut (App, ObjectTable), RuntimeError> {
        let actor = self
            .actor_mut(id)
            .ok_or(RuntimeError::NoSuchActor { actor: id })?;
        let state = actor.state;
        actor
            .home
            .as_mut()
            .ok_or(RuntimeError::Busy { actor: id, state })
    }

    /// Sets an actor's application (after its objects are allocated).
    pub fn set_app(&mut self, actor: ActorId, app: App) -> Result<(), RuntimeError> {
        self.home_of(actor)?.0 = app;
        Ok(())
    }

    /// Runs `f` with the actor's object table and this side's allocator: installation and
    /// loading (`MicaApp::install`, `BtreeApp::install`) go through here.
    pub fn with_objects<T>(
        &mut self,
        actor: ActorId,
        f: impl FnOnce(&mut ObjectTable, &mut Allocator) -> T,
    ) -> Result<T, RuntimeError> {
        let id = actor;
        let actor = self.actors.get_mut(id.0 as usize).and_then(Option::as_mut);
        let actor = actor.ok_or(RuntimeError::NoSuchActor { actor: id })?;
        let state = actor.state;
        let (_, objects) = actor
            .home
            .as_mut()
            .ok_or(RuntimeError::Busy { actor: id, state })?;
        Ok(f(objects, &mut self.allocator))
    }

    /// `dmo_malloc`: a zeroed object of `size` bytes for `actor`.
    pub fn dmo_malloc(&mut self, actor: ActorId, size: u64) -> Result<ObjectId, RuntimeError> {
        Ok(self.with_objects(actor, |t, a| t.malloc(a, size))??)
    }

    /// `dmo_free`.
    pub fn dmo_free(&mut self, actor: ActorId, object: ObjectId) -> Result<(), RuntimeError> {
        Ok(self.with_objects(actor, |t, a| t.free(a, object))??)
    }

    /// `dmo_memset`.
    pub fn dmo_memset(
        &mut self,
        actor: ActorId,
        object: ObjectId,
        offset: u64,
        byte: u8,
        len: u64,
    ) -> Result<(), RuntimeError> {
        Ok(self.home_of(actor)?.1.memset(object, offset, byte, len)?)
    }

    /// `dmo_memcpy` and `dmo_memmove` (overlap-safe).
    pub fn dmo_memmove(
        &mut self,
        actor: ActorId,
        dst: (ObjectId, u64),
        src: (ObjectId, u64),
        len: u64,
    ) -> Result<(), RuntimeError> {
        Ok(self
            .home_of(actor)?
            .1
            .memmove(dst.0, dst.1, src.0, src.1, len)?)
    }

    /// The actor's object table on this side (empty while it is remote or running).
    pub fn object_table(&self, actor: ActorId) -> Result<Vec<ObjectEntry>, RuntimeError> {
        let a = self
            .actor(actor)
            .ok_or(RuntimeError::NoSuchActor { actor })?;
        Ok(a.home
            .as_ref()
            .map_or_else(Vec::new, |(_, t)| t.entries().copied().collect()))
    }

    /// The actor's scheduling state on this side.
    pub fn actor_state(&self, actor: ActorId) -> Result<ActorState, RuntimeError> {
        Ok(self
            .actor(actor)
            .ok_or(RuntimeError::NoSuchActor { actor })?
            .state)
    }

    /// The actor's execution tail (p99) and mean over its current window.
    pub fn actor_exec_ns(&self, actor: ActorId) -> Result<(u64, u64), RuntimeError> {
        let a = self
            .actor(actor)
            .ok_or(RuntimeError::NoSuchActor { actor })?;
        Ok((a.exec.p99_ns(), a.exec.mean_ns()))
    }

    /// The next reply: its frame replaces `frame`'s contents.
    pub fn poll_transmit(&mut self, frame: &mut Vec<u8>) -> Option<Transmit> {
        let (transmit, mut bytes) = self.transmits.pop_front()?;
        std::mem::swap(frame, &mut bytes);
        self.recycle(bytes);
        Some(transmit)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn emit(&mut self, event: Event) {
        if self.events.len() >= OUTPUTS_MAX {
            self.events.pop_front();
            self.stats.outputs_dropped += 1;
        }
        self.events.push_back(event);
    }

    fn transmit(&mut self, transmit: Transmit, frame: Vec<u8>) {
        if self.transmits.len() >= OUTPUTS_MAX {
            self.transmits.pop_front();
            self.stats.outputs_dropped += 1;
        }
        self.transmits.push_back((transmit, frame));
    }

    fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    fn recycle(&mut self, mut bytes: Vec<u8>) {
        if self.spare.len() < crate::queue::INGRESS_ITEMS_MAX {
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// Queues an error reply to a request that will not run.
    fn refuse(
        &mut self,
        source: u64,
        reply_to: Option<ReplyAddr>,
        request_id: RequestId,
        error: ErrorCode,
    ) {
        let mut frame = self.buffer();
        encode_reply(
            self.config.side,
            request_id,
            Status::Error(error),
            &[],
            &mut frame,
        );
        self.stats.refused += 1;
        self.transmit(Transmit { source, reply_to }, frame);
    }
}

/// Encodes a reply frame from `side` into `out`.
pub(crate) fn encode_reply(
    side: Side,
    request_id: RequestId,
    status: Status,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let reply = Reply {
        request_id,
        status,
        location: side.location(),
        steps: 1,
        attempts: 0,
        client_permille: 0,
        payload,
    };
    // Cannot fail: payloads are bounded by the applications' reply sizes (≤ REPLY_BYTES_MAX).
    let _ = Frame::Reply(reply).encode(out);
}
