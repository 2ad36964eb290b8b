//! Cores: what a core does next ([`Runtime::start`]), the job it does ([`Job`]), and what
//! follows when it is done ([`Runtime::finish`]).
//!
//! An FCFS core follows iPipe's Algorithm 1 for each work item it takes: look up the item's
//! actor; if the actor is downgraded, push the item to the actor's mailbox and take the next;
//! otherwise run it, update the actor's execution statistics, and downgrade the actor if its
//! tail exceeds the threshold. Core 0 of the NIC then takes its management decision. Items of
//! an actor that is migrating are buffered; items of an actor living on the host are forwarded.

use naam_engine::wire::{ErrorCode, ErrorKind, Frame, Status};
use naam_engine::{Nanos, TenantId};

use super::manage::PhaseWork;
use super::{Event, Runtime, RuntimeError, Transmit, encode_reply};
use crate::actor::{ACTOR_QUEUE_ITEMS_MAX, ActorImage, ActorState, WorkItem};
use crate::app::{App, Op, Request};
use crate::config::Isolation;
use crate::ids::{ActorId, CoreId, Side};
use crate::memory::ObjectTable;

/// What a job is, as a driver needs to cost it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task {
    /// The kind of work.
    pub kind: TaskKind,
    /// The actor it is for.
    pub actor: ActorId,
    /// The actor's tenant.
    pub tenant: TenantId,
    /// Process isolation: this core last ran another tenant's process, so it switches address
    /// space before running this item.
    pub tenant_switch: bool,
    /// Process isolation: the item is handed from the runtime to the tenant's process.
    pub handoff: bool,
}

/// The kinds of work a core does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Run a request in its actor (native code: time it).
    Run {
        /// The operation.
        op: Op,
    },
    /// Forward a request to the actor's side (a DMA write of `bytes`).
    Forward {
        /// Bytes of the request.
        bytes: usize,
    },
    /// One phase of a migration (management core).
    Migrate {
        /// Which way.
        direction: super::Direction,
        /// Which phase.
        phase: super::Phase,
        /// Objects moved in this phase.
        objects: u32,
        /// Bytes moved in this phase (a DMA transfer).
        bytes: u64,
        /// Requests pushed to the destination in this phase.
        requests: u32,
    },
    /// Hand an actor's objects to the NIC after a recall (host side; a DMA transfer).
    Export {
        /// Objects.
        objects: u32,
        /// Bytes.
        bytes: u64,
    },
}

/// A core's unit of work, between [`Runtime::start`] and [`Runtime::finish`]. A request job
/// holds its actor's application and objects; [`Job::execute`] runs the native code.
#[derive(Debug)]
pub struct Job {
    core: CoreId,
    started: Nanos,
    task: Task,
    work: Work,
}

#[derive(Debug)]
enum Work {
    Run(Box<RunJob>),
    Forward(WorkItem),
    Phase(PhaseWork),
    Export(ActorImage),
}

#[derive(Debug)]
struct RunJob {
    side: Side,
    item: WorkItem,
    app: App,
    objects: ObjectTable,
    payload: Vec<u8>,
    frame: Vec<u8>,
    executed: bool,
    ok: bool,
}

impl Job {
    /// The core doing it.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// What it is.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Runs the actor's native code over its objects and encodes the reply (request jobs; other
    /// jobs did their bookkeeping in `start`). Time this call for the job's execution time.
    pub fn execute(&mut self) {
        if let Work::Run(run) = &mut self.work {
            run.execute();
        }
    }
}

impl RunJob {
    fn execute(&mut self) {
        if self.executed {
            return;
        }
        self.executed = true;
        let status = match Frame::decode(&self.item.frame) {
            Ok(Frame::Invoke(invoke)) => {
                let request = Request {
                    op: self.item.op,
                    args: invoke.args,
                    descriptors: &invoke.descriptors,
                };
                match self
                    .app
                    .handle(&request, &mut self.objects, &mut self.payload)
                {
                    Ok(()) => Status::Ok,
                    Err(e) => {
                        let (kind, detail) = e.to_error();
                        Status::Error(ErrorCode { kind, detail })
                    }
                }
            }
            // Decoded once at submit: cannot happen.
            _ => Status::Error(ErrorCode {
                kind: ErrorKind::Malformed,
                detail: 0,
            }),
        };
        self.ok = status == Status::Ok;
        let payload: &[u8] = if self.ok { &self.payload } else { &[] };
        encode_reply(
            self.side,
            self.item.request_id,
            status,
            payload,
            &mut self.frame,
        );
    }
}

impl Runtime {
    fn is_process_isolated(&self) -> bool {
        matches!(self.config.isolation, Isolation::ProcessPerTenant { .. })
    }

    fn slice_ns(&self) -> u64 {
        match self.config.isolation {
            Isolation::Trusted => u64::MAX,
            Isolation::ProcessPerTenant { slice_ns, .. } => slice_ns,
        }
    }

    /// The next job of `core` at `now`, or `None` when it has nothing to do (call again after
    /// the next submit, finish or delivered image).
    pub fn start(&mut self, core: CoreId, now: Nanos) -> Result<Option<Job>, RuntimeError> {
        let c = usize::from(core.0);
        let state = self.cores.get(c).map(|k| k.busy);
        match state {
            None => {
                return Err(RuntimeError::Core {
                    core,
                    why: "no such core",
                });
            }
            Some(true) => {
                return Err(RuntimeError::Core {
                    core,
                    why: "its last job is not finished",
                });
            }
            Some(false) => {}
        }
        let job = if c < usize::from(self.config.fcfs_cores()) {
            self.start_fcfs(c, now)
        } else {
            self.start_drr(c, now)
        };
        if job.is_some() {
            self.cores[c].busy = true;
        }
        Ok(job)
    }

    fn start_fcfs(&mut self, c: usize, now: Nanos) -> Option<Job> {
        if c == 0
            && self.config.side == Side::Nic
            && let Some(job) = self.start_phase(now)
        {
            return Some(job);
        }
        if self.config.side == Side::Host
            && let Some(job) = self.start_export(c, now)
        {
            return Some(job);
        }
        // Bounded: every pass removes an item from the ingress.
        while let Some(item) = self.ingress.pop(c, self.slice_ns()) {
            if let Some(job) = self.dispatch(c, now, item) {
                return Some(job);
            }
        }
        None
    }

    /// Algorithm 1's look-up: run, forward, or park the item with its actor.
    fn dispatch(&mut self, c: usize, now: Nanos, item: WorkItem) -> Option<Job> {
        let id = item.actor;
        let Some(actor) = self.actor_mut(id) else {
            self.unknown(item);
            return None;
        };
        let state = actor.state;
        match state {
            ActorState::Fcfs if !actor.running => return Some(self.begin_run(c, now, item)),
            ActorState::Remote => return Some(self.begin_forward(c, now, item)),
            _ => {}
        }
        let mut newly_listed = false;
        let parked = match state {
            ActorState::Drr => {
                newly_listed = !std::mem::replace(&mut actor.drr_listed, true);
                push_bounded(&mut actor.mailbox, item)
            }
            ActorState::Locked => push_bounded(&mut actor.buffered, item),
            // A running FCFS actor: the item waits for it (an actor runs one item at a time).
            ActorState::Fcfs | ActorState::Remote => push_bounded(&mut actor.deferred, item),
        };
        if newly_listed {
            self.drr_active.push_back(id);
        }
        match parked {
            Err(item) => {
                self.leave_queue(id);
                self.overloaded(item);
            }
            // Buffered items are no longer queued here: they run where the actor lands.
            Ok(()) if state == ActorState::Locked => self.leave_queue(id),
            Ok(()) => {}
        }
        None
    }

    fn unknown(&mut self, item: WorkItem) {
        let error = ErrorCode {
            kind: ErrorKind::UnknownFunction,
            detail: 0,
        };
        self.refuse(item.source, item.reply_to, item.request_id, error);
        self.recycle(item.frame);
    }

    pub(super) fn leave_queue(&mut self, id: ActorId) {
        if let Some(actor) = self.actor_mut(id) {
            actor.queued = actor.queued.saturating_sub(1);
        }
    }

    pub(super) fn begin_run(&mut self, c: usize, now: Nanos, item: WorkItem) -> Job {
        let process = self.is_process_isolated();
        let switch = process && self.cores[c].last_tenant.is_some_and(|t| t != item.tenant);
        self.cores[c].last_tenant = Some(item.tenant);
        self.stats.tenant_switches += u64::from(switch);
        self.stats.handoffs += u64::from(process);
        let side = self.config.side;
        let (payload, frame) = (self.buffer(), self.buffer());
        self.leave_queue(item.actor);
        let actor = self.actor_mut(item.actor);
        let (app, objects) = actor
            .and_then(|a| {
                a.running = true;
                a.home.take()
            })
            .unwrap_or_else(|| (App::Unset, ObjectTable::new(item.actor)));
        let task = Task {
            kind: TaskKind::Run { op: item.op },
            actor: item.actor,
            tenant: item.tenant,
            tenant_switch: switch,
            handoff: process,
        };
        let run = RunJob {
            side,
            item,
            app,
            objects,
            payload,
            frame,
            executed: false,
            ok: false,
        };
        Job {
            core: CoreId(c as u16),
            started: now,
            task,
            work: Work::Run(Box::new(run)),
        }
    }

    fn begin_forward(&mut self, c: usize, now: Nanos, item: WorkItem) -> Job {
        self.leave_queue(item.actor);
        let task = Task {
            kind: TaskKind::Forward {
                bytes: item.frame.len(),
            },
            actor: item.actor,
            tenant: item.tenant,
            tenant_switch: false,
            handoff: false,
        };
        Job {
            core: CoreId(c as u16),
            started: now,
            task,
            work: Work::Forward(item),
        }
    }

    pub(super) fn job(&self, c: usize, now: Nanos, task: Task, work: PhaseOrExport) -> Job {
        let work = match work {
            PhaseOrExport::Phase(p) => Work::Phase(p),
            PhaseOrExport::Export(image) => Work::Export(image),
        };
        Job {
            core: CoreId(c as u16),
            started: now,
            task,
            work,
        }
    }

    /// `job` is done at `now`; `exec_ns` is the time its native code took (for a request job:
    /// the actor's execution statistics and DRR charge; ignored for other jobs).
    pub fn finish(&mut self, now: Nanos, job: Job, exec_ns: u64) {
        let c = usize::from(job.core.0);
        if let Some(core) = self.cores.get_mut(c) {
            core.busy = false;
        }
        self.stats.busy_ns += now.since(job.started);
        match job.work {
            Work::Run(run) => self.finish_run(c, now, *run, exec_ns),
            Work::Forward(item) => self.finish_forward(c, now, item),
            Work::Phase(work) => self.finish_phase(now, work),
            Work::Export(image) => self.emit(Event::Exported(image)),
        }
    }

    /// A forwarded request counts towards the NIC's mean like a local one: it waited and was
    /// handled here (and if every actor lives on the host, only forwards keep the management
    /// core's window moving).
    fn finish_forward(&mut self, c: usize, now: Nanos, item: WorkItem) {
        self.stats.forwarded += 1;
        self.window.push(now.since(item.arrived));
        let WorkItem {
            source,
            reply_to,
            frame,
            ..
        } = item;
        self.emit(Event::Forward {
            source,
            reply_to,
            frame,
        });
        if c == 0 && self.config.side == Side::Nic {
            self.manage(now);
        }
    }

    fn finish_run(&mut self, c: usize, now: Nanos, mut run: RunJob, exec_ns: u64) {
        run.execute();
        let RunJob {
            item,
            app,
            objects,
            frame,
            payload,
            ok,
            ..
        } = run;
        self.recycle(payload);
        self.stats.completed += 1;
        self.stats.failed += u64::from(!ok);
        self.window.push(now.since(item.arrived));
        let on_drr_core = c >= usize::from(self.config.fcfs_cores());
        if !on_drr_core {
            self.ingress.charge(c, exec_ns);
        }
        if let Some(actor) = self.actor_mut(item.actor) {
            actor.home = Some((app, objects));
            actor.running = false;
            actor.exec.push(exec_ns);
            actor.load_ns = actor.load_ns.saturating_add(exec_ns);
            if on_drr_core {
                actor.deficit_ns -= exec_ns as i64;
            }
        }
        self.transmit(
            Transmit {
                source: item.source,
                reply_to: item.reply_to,
            },
            frame,
        );
        self.recycle(item.frame);
        self.release_deferred(item.actor);
        self.reschedule(item.actor);
        if c == 0 && self.config.side == Side::Nic {
            self.manage(now);
        }
    }

    /// Items that found the actor busy go back to the head of the ingress, in order.
    fn release_deferred(&mut self, id: ActorId) {
        let Some(actor) = self.actor_mut(id).filter(|a| !a.deferred.is_empty()) else {
            return;
        };
        let deferred = std::mem::take(&mut actor.deferred);
        let home = self
            .tenants
            .get(&deferred.front().map_or(TenantId(0), |i| i.tenant));
        let home = home.map_or(0, |s| s.home);
        for item in deferred.into_iter().rev() {
            self.ingress.push(home, item, true);
        }
    }

    /// The downgrade rule (and our upgrade rule) after an execution of `id`.
    fn reschedule(&mut self, id: ActorId) {
        let thresholds = self.config.thresholds;
        let has_drr = self.config.drr_cores > 0;
        let Some(actor) = self.actor_mut(id) else {
            return;
        };
        if !actor.exec.is_full() {
            return;
        }
        let tail_ns = actor.exec.p99_ns();
        let event = match actor.state {
            ActorState::Fcfs if has_drr && tail_ns > thresholds.tail_ns => {
                actor.state = ActorState::Drr;
                actor.exec.clear();
                actor.deficit_ns = 0;
                Event::Downgraded { actor: id, tail_ns }
            }
            ActorState::Drr if !actor.upgrade_pending && tail_ns < thresholds.upgrade_ns() => {
                // Takes effect when its mailbox is empty, so its items stay in order.
                actor.upgrade_pending = true;
                return;
            }
            _ => return,
        };
        self.stats.downgrades += 1;
        self.emit(event);
    }
}

/// The non-request work a phase or an export leaves for `finish`.
#[derive(Debug)]
pub(super) enum PhaseOrExport {
    Phase(PhaseWork),
    Export(ActorImage),
}

/// Appends to an actor's bounded queue; gives the item back when full.
fn push_bounded(
    queue: &mut std::collections::VecDeque<WorkItem>,
    item: WorkItem,
) -> Result<(), WorkItem> {
    if queue.len() >= ACTOR_QUEUE_ITEMS_MAX {
        return Err(item);
    }
    queue.push_back(item);
    Ok(())
}
