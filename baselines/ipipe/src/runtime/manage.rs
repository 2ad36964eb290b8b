//! The management core (the NIC's core 0) and migration.
//!
//! After each of its own work items (run or forwarded), core 0 looks at the NIC's mean sojourn
//! time (arrival to completion, forwarded requests included) over the last
//! `windows.side_completions` completions: above `Mean_thresh` it migrates an actor to the
//! host; below `(1 − α)·Mean_thresh` it pulls one back. Each decision starts a fresh window, and
//! one migration runs at a time. Which actor moves is not stated in the text available to us;
//! ours (assumptions): to the host goes the NIC actor with the most execution time since the
//! last decision (its departure relieves the NIC most); back comes the host actor with the least
//! expected load (arrivals since the last decision × its mean execution time) that fits in the
//! NIC's free memory.
//!
//! A migration has iPipe's four phases, each a job of core 0:
//!
//! 1. **Lock**: the actor stops running here; its arrivals (and its DRR mailbox) are buffered.
//!    A pull-back asks the host to export the actor ([`Event::Recall`]).
//! 2. **State**: its registration, scheduling state and statistics are captured (to the host:
//!    once no core is running it; back: once the host's image has arrived).
//! 3. **Move objects**: its objects leave one side's memory for the other's (a DMA transfer
//!    whose cost grows with the bytes).
//! 4. **Push buffered requests**: the requests that arrived meanwhile follow the actor (a cost
//!    that grows with the load).

use naam_engine::Nanos;
use serde::{Deserialize, Serialize};

use super::core::PhaseOrExport;
use super::{Event, Job, Runtime, RuntimeError, Task, TaskKind};
use crate::actor::{Actor, ActorImage, ActorState};
use crate::ids::{ActorId, Side};
use crate::memory::ObjectTable;

/// Which way an actor moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// NIC to host (the NIC is overloaded).
    ToHost,
    /// Host back to the NIC (the NIC has room again).
    ToNic,
}

/// The four phases of a migration, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Stop running the actor; buffer its arrivals.
    Lock,
    /// Capture (or restore) its registration, scheduling state and statistics.
    State,
    /// Move its objects.
    MoveObjects,
    /// Push the requests buffered meanwhile to where it now lives.
    PushBuffered,
}

impl Phase {
    fn next(self) -> Option<Phase> {
        match self {
            Phase::Lock => Some(Phase::State),
            Phase::State => Some(Phase::MoveObjects),
            Phase::MoveObjects => Some(Phase::PushBuffered),
            Phase::PushBuffered => None,
        }
    }
}

/// The migration in progress.
#[derive(Debug)]
pub(crate) struct Migration {
    actor: ActorId,
    direction: Direction,
    phase: Phase,
    started: Nanos,
    objects: u32,
    bytes: u64,
    requests: u32,
    /// A pull-back's image, once the host has sent it.
    image: Option<ActorImage>,
}

/// What a finished phase leaves to do.
#[derive(Debug)]
pub(crate) enum PhaseWork {
    Done,
    /// Phase 3 to the host: the image to send.
    Moved(ActorImage),
}

/// An image the runtime could not take, returned to the caller with why.
#[derive(Debug)]
pub struct Rejected {
    /// Why.
    pub error: RuntimeError,
    /// The image, untouched.
    pub image: ActorImage,
}

impl Runtime {
    /// The management decision after one of core 0's items.
    pub(super) fn manage(&mut self, now: Nanos) {
        if self.migration.is_some() || !self.window.is_full() {
            return;
        }
        let mean_ns = self.window.mean_ns();
        self.window.reset();
        let t = self.config.thresholds;
        let choice = if mean_ns > t.mean_ns {
            self.victim().map(|a| (a, Direction::ToHost))
        } else if mean_ns < t.pull_back_ns() {
            self.pull_back_candidate().map(|a| (a, Direction::ToNic))
        } else {
            None
        };
        for actor in self.actors.iter_mut().flatten() {
            actor.load_ns = 0;
            actor.arrivals = 0;
        }
        if let Some((actor, direction)) = choice {
            self.begin_migration(now, actor, direction, mean_ns);
        }
    }

    /// Starts a migration of `actor` now, whatever the latencies say (how iPipe's own
    /// evaluation measured migration: forced after a warm-up). To the host if it lives on the
    /// NIC, back if it lives on the host.
    pub fn force_migration(&mut self, now: Nanos, actor: ActorId) -> Result<(), RuntimeError> {
        let state = self.actor_state(actor)?;
        if self.config.side != Side::Nic || self.migration.is_some() {
            return Err(RuntimeError::Migration {
                actor,
                why: "only an idle NIC management core migrates",
            });
        }
        let direction = match state {
            ActorState::Fcfs | ActorState::Drr => Direction::ToHost,
            ActorState::Remote => Direction::ToNic,
            ActorState::Locked => {
                return Err(RuntimeError::Migration {
                    actor,
                    why: "it is migrating already",
                });
            }
        };
        self.begin_migration(now, actor, direction, self.window.mean_ns());
        Ok(())
    }

    fn begin_migration(&mut self, now: Nanos, actor: ActorId, direction: Direction, mean_ns: u64) {
        self.migration = Some(Migration {
            actor,
            direction,
            phase: Phase::Lock,
            started: now,
            objects: 0,
            bytes: 0,
            requests: 0,
            image: None,
        });
        self.emit(Event::MigrationStarted {
            actor,
            direction,
            mean_ns,
        });
    }

    fn victim(&self) -> Option<ActorId> {
        let here = |a: &&Actor| matches!(a.state, ActorState::Fcfs | ActorState::Drr);
        let load = |a: &&Actor| (a.load_ns, a.arrivals, std::cmp::Reverse(a.id));
        self.actors
            .iter()
            .flatten()
            .filter(here)
            .max_by_key(load)
            .map(|a| a.id)
    }

    fn pull_back_candidate(&self) -> Option<ActorId> {
        let fits = |a: &&Actor| {
            a.state == ActorState::Remote && self.room_for(a.spec.tenant, &a.remote_sizes)
        };
        let load = |a: &&Actor| (a.arrivals.saturating_mul(a.exec.mean_ns()), a.id);
        self.actors
            .iter()
            .flatten()
            .filter(fits)
            .min_by_key(load)
            .map(|a| a.id)
    }

    /// True if objects of `sizes` (and the tenant's process, if it has none here) fit now.
    fn room_for(&self, tenant: naam_engine::TenantId, sizes: &[u64]) -> bool {
        let resident = self.tenants.get(&tenant).is_some_and(|s| s.actors_here > 0);
        let process = self.process_bytes().filter(|_| !resident);
        let all: Vec<u64> = process.into_iter().chain(sizes.iter().copied()).collect();
        self.allocator.can_fit(&all)
    }

    /// Core 0's next migration phase, if the migration in progress can advance.
    pub(super) fn start_phase(&mut self, now: Nanos) -> Option<Job> {
        let (actor, direction, phase) = {
            let m = self.migration.as_ref()?;
            (m.actor, m.direction, m.phase)
        };
        let (work, objects, bytes, requests) = match (direction, phase) {
            (_, Phase::Lock) => (PhaseWork::Done, 0, 0, self.lock(actor, direction)),
            (Direction::ToHost, Phase::State) if self.actor(actor)?.running => return None,
            (Direction::ToNic, Phase::State) if self.migration.as_ref()?.image.is_none() => {
                return None;
            }
            (_, Phase::State) => (PhaseWork::Done, 0, 0, 0),
            (Direction::ToHost, Phase::MoveObjects) => {
                let image = self.pack(actor)?;
                let (n, b) = (image.objects.len() as u32, image.bytes());
                (PhaseWork::Moved(image), n, b, 0)
            }
            (Direction::ToNic, Phase::MoveObjects) => {
                let (n, b) = self.unpack()?;
                (PhaseWork::Done, n, b, 0)
            }
            (_, Phase::PushBuffered) => (PhaseWork::Done, 0, 0, self.buffered_len(actor)),
        };
        let tenant = self.actor(actor)?.spec.tenant;
        let kind = TaskKind::Migrate {
            direction,
            phase,
            objects,
            bytes,
            requests,
        };
        let task = Task {
            kind,
            actor,
            tenant,
            tenant_switch: false,
            handoff: false,
        };
        if let Some(m) = self.migration.as_mut() {
            m.objects += objects;
            m.bytes += bytes;
        }
        Some(self.job(0, now, task, PhaseOrExport::Phase(work)))
    }

    fn buffered_len(&self, actor: ActorId) -> u32 {
        self.actor(actor).map_or(0, |a| a.buffered.len() as u32)
    }

    /// Phase 1: buffer the actor's arrivals; to the host, its mailbox joins the buffer.
    fn lock(&mut self, id: ActorId, direction: Direction) -> u32 {
        self.drr_active.retain(|&a| a != id);
        let Some(actor) = self.actor_mut(id) else {
            return 0;
        };
        let moved = actor.mailbox.len() as u32;
        if direction == Direction::ToHost {
            let mailbox = std::mem::take(&mut actor.mailbox);
            actor.buffered.extend(mailbox);
            actor.queued = actor.queued.saturating_sub(moved);
        }
        actor.state = ActorState::Locked;
        actor.drr_listed = false;
        moved
    }

    /// Phase 3 to the host: the actor's state and objects leave the NIC.
    fn pack(&mut self, id: ActorId) -> Option<ActorImage> {
        let actor = self.actors.get_mut(id.0 as usize)?.as_mut()?;
        let (app, mut objects) = actor.home.take()?;
        let images = objects.take_all(&mut self.allocator);
        actor.remote_sizes = images.iter().map(|o| o.bytes.len() as u64).collect();
        let image = ActorImage {
            actor: id,
            spec: actor.spec.clone(),
            app,
            exec_ns: actor.exec.samples().collect(),
            objects: images,
        };
        let tenant = actor.spec.tenant;
        self.leave_tenant(tenant);
        Some(image)
    }

    /// Phase 3 back to the NIC: the host's image lands in NIC memory.
    fn unpack(&mut self) -> Option<(u32, u64)> {
        let image = self.migration.as_mut()?.image.take()?;
        let (n, bytes) = (image.objects.len() as u32, image.bytes());
        let id = image.actor;
        self.enter_tenant(image.spec.tenant).ok()?;
        let mut table = ObjectTable::new(id);
        for object in image.objects {
            // Cannot fail: `deliver_image` checked that the objects fit, and only one
            // migration (this one) allocates meanwhile.
            let _ = table.adopt(&mut self.allocator, object.object, object.bytes);
        }
        let actor = self.actor_mut(id)?;
        actor.home = Some((image.app, table));
        actor.remote_sizes.clear();
        actor.exec.clear();
        for ns in image.exec_ns {
            actor.exec.push(ns);
        }
        Some((n, bytes))
    }

    /// A phase is done: its effects, and the next phase (or the end).
    pub(super) fn finish_phase(&mut self, now: Nanos, work: PhaseWork) {
        let Some(m) = self.migration.as_mut() else {
            return;
        };
        let (actor, direction, phase) = (m.actor, m.direction, m.phase);
        match (work, phase) {
            (PhaseWork::Moved(image), _) => self.emit(Event::Migrated(image)),
            (_, Phase::Lock) if direction == Direction::ToNic => self.emit(Event::Recall { actor }),
            (_, Phase::PushBuffered) => return self.land(now),
            _ => {}
        }
        if let (Some(m), Some(next)) = (self.migration.as_mut(), phase.next()) {
            m.phase = next;
        }
    }

    /// Phase 4 is done: the buffered requests follow the actor, which now lives there.
    fn land(&mut self, now: Nanos) {
        let Some(m) = self.migration.take() else {
            return;
        };
        let Some(actor) = self.actor_mut(m.actor) else {
            return;
        };
        let buffered = std::mem::take(&mut actor.buffered);
        let requests = buffered.len() as u32;
        let tenant = actor.spec.tenant;
        actor.state = match m.direction {
            Direction::ToHost => ActorState::Remote,
            Direction::ToNic => ActorState::Fcfs,
        };
        actor.queued += if m.direction == Direction::ToNic {
            requests
        } else {
            0
        };
        match m.direction {
            Direction::ToHost => {
                for item in buffered {
                    self.stats.forwarded += 1;
                    let crate::actor::WorkItem {
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
                }
                self.stats.migrations_to_host += 1;
            }
            Direction::ToNic => {
                let home = self.tenants.get(&tenant).map_or(0, |s| s.home);
                for item in buffered.into_iter().rev() {
                    self.ingress.push(home, item, true);
                }
                self.stats.migrations_to_nic += 1;
            }
        }
        self.window.reset();
        let (objects, bytes, requests) = (m.objects, m.bytes, m.requests + requests);
        let (actor, direction, started) = (m.actor, m.direction, m.started);
        self.emit(Event::MigrationDone {
            actor,
            direction,
            started,
            finished: now,
            objects,
            bytes,
            requests,
        });
    }

    /// The host's image for the pull-back in progress ([`Event::Exported`] delivered to the NIC).
    pub fn deliver_image(&mut self, image: ActorImage) -> Result<(), Box<Rejected>> {
        let reject = |image, why| {
            let error = RuntimeError::Migration {
                actor: image_actor(&image),
                why,
            };
            Err(Box::new(Rejected { error, image }))
        };
        let expected = self.migration.as_ref().filter(|m| {
            m.direction == Direction::ToNic && m.phase == Phase::State && m.image.is_none()
        });
        if expected.is_none_or(|m| m.actor != image.actor) {
            return reject(image, "no pull-back of this actor is waiting for its image");
        }
        if !self.room_for(image.spec.tenant, &image.object_sizes()) {
            return reject(image, "its objects no longer fit in the NIC's memory");
        }
        if let Some(m) = self.migration.as_mut() {
            m.image = Some(image);
        }
        Ok(())
    }

    /// Host side: a recalled actor leaves once its queued items have run
    /// ([`Event::Recall`] delivered to the host).
    pub fn begin_export(&mut self, actor: ActorId) -> Result<(), RuntimeError> {
        if self.actor(actor).is_none() {
            return Err(RuntimeError::NoSuchActor { actor });
        }
        if !self.exports.contains(&actor) {
            self.exports.push_back(actor);
        }
        Ok(())
    }

    /// A host core's export job, once the first recalled actor is idle.
    pub(super) fn start_export(&mut self, c: usize, now: Nanos) -> Option<Job> {
        let id = *self.exports.front()?;
        let idle = self.actor(id).is_none_or(|a| a.queued == 0 && !a.running);
        if !idle {
            return None;
        }
        self.exports.pop_front();
        let image = self.pack(id)?;
        let tenant = image.spec.tenant;
        self.routes.retain(|_, (a, _)| *a != id);
        self.actors[id.0 as usize] = None;
        let kind = TaskKind::Export {
            objects: image.objects.len() as u32,
            bytes: image.bytes(),
        };
        let task = Task {
            kind,
            actor: id,
            tenant,
            tenant_switch: false,
            handoff: false,
        };
        Some(self.job(c, now, task, PhaseOrExport::Export(image)))
    }

    /// Host side: an actor migrated from the NIC ([`Event::Migrated`]) starts living here.
    pub fn import(&mut self, image: ActorImage) -> Result<(), Box<Rejected>> {
        let reject = |image, error| Err(Box::new(Rejected { error, image }));
        let slot = image.actor.0 as usize;
        if slot >= super::ACTORS_MAX || self.actors.get(slot).is_some_and(Option::is_some) {
            let error = RuntimeError::Migration {
                actor: image.actor,
                why: "the id is taken or out of range",
            };
            return reject(image, error);
        }
        if let Err(error) = self.check_routes(&image.spec) {
            return reject(image, error);
        }
        if !self.room_for(image.spec.tenant, &image.object_sizes()) {
            let error = RuntimeError::Migration {
                actor: image.actor,
                why: "its objects do not fit",
            };
            return reject(image, error);
        }
        if let Err(error) = self.enter_tenant(image.spec.tenant) {
            return reject(image, error);
        }
        self.place(image);
        Ok(())
    }

    fn place(&mut self, image: ActorImage) {
        let id = image.actor;
        self.add_routes(id, &image.spec);
        let mut actor = self.new_actor(id, image.spec);
        let mut table = ObjectTable::new(id);
        for object in image.objects {
            // Cannot fail: `room_for` checked that the objects fit.
            let _ = table.adopt(&mut self.allocator, object.object, object.bytes);
        }
        actor.home = Some((image.app, table));
        for ns in image.exec_ns {
            actor.exec.push(ns);
        }
        let slot = id.0 as usize;
        if self.actors.len() <= slot {
            self.actors.resize_with(slot + 1, || None);
        }
        self.actors[slot] = Some(actor);
    }

    /// This side's management core is core 0 of the NIC.
    pub fn has_management(&self) -> bool {
        self.config.side == Side::Nic
    }
}

fn image_actor(image: &ActorImage) -> ActorId {
    image.actor
}
