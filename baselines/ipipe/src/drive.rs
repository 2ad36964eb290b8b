//! A discrete-event driver: a NIC runtime and a host runtime on one virtual clock, as a
//! simulator drives them and as the tests do.
//!
//! Events are request arrivals (scheduled by the caller) and job completions. When a core is
//! idle the driver asks its runtime for a job, runs the job's native code for real
//! ([`crate::runtime::Job::execute`]: answers are real), and schedules its completion at
//! `now + exec + overhead`, where `exec` comes from the caller's execution-time model and
//! `overhead` from the [`CostModel`]. Events the runtimes emit are delivered at once: migrated
//! actors and forwarded requests to the host, recalls to the host, exported actors to the NIC.
//! Ties are broken by scheduling order, so a run is a pure function of its inputs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use naam_engine::Nanos;

use crate::cost::CostModel;
use crate::ids::{ActorId, CoreId, Side};
use crate::runtime::{Direction, Event, Job, Runtime, Task};

/// The caller's model of a request job's native execution time (ns) on a side.
pub type ExecModel = Box<dyn FnMut(Side, &Task) -> u64>;

/// A reply as the client would receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyRecord {
    /// When it left the server.
    pub at: Nanos,
    /// The side that answered.
    pub side: Side,
    /// The request's source token.
    pub source: u64,
    /// The reply frame.
    pub frame: Vec<u8>,
}

/// What the runtimes reported, with when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// [`Event::Downgraded`].
    Downgraded(ActorId),
    /// [`Event::Upgraded`].
    Upgraded(ActorId),
    /// [`Event::MigrationStarted`], with the mean that triggered it.
    MigrationStarted(ActorId, Direction, u64),
    /// [`Event::MigrationDone`]: started, objects, bytes, requests pushed.
    MigrationDone(ActorId, Direction, Nanos, u32, u64, u32),
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Arrive {
        side_host: bool,
        source: u64,
        frame: Vec<u8>,
    },
    Finish {
        side_host: bool,
        core: u16,
    },
}

/// A NIC and a host on a virtual clock.
pub struct VirtualPair {
    /// The NIC's runtime.
    pub nic: Runtime,
    /// The host's runtime.
    pub host: Runtime,
    /// Overheads added to every job.
    pub costs: CostModel,
    exec: ExecModel,
    now: Nanos,
    seq: u64,
    queue: BinaryHeap<Reverse<(Nanos, u64, Pending)>>,
    running: [Vec<Option<(Job, u64)>>; 2],
    /// Every reply, in order.
    pub replies: Vec<ReplyRecord>,
    /// Scheduler events, in order.
    pub log: Vec<(Nanos, Logged)>,
    /// Images or forwards a runtime refused (a driver error a test should see).
    pub failures: Vec<String>,
}

impl std::fmt::Debug for VirtualPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualPair")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::Nic => 0,
        Side::Host => 1,
    }
}

impl VirtualPair {
    /// Two runtimes (NIC first, host second) at time zero.
    pub fn new(nic: Runtime, host: Runtime, costs: CostModel, exec: ExecModel) -> VirtualPair {
        let running = [
            (0..nic.config().cores).map(|_| None).collect(),
            (0..host.config().cores).map(|_| None).collect(),
        ];
        VirtualPair {
            nic,
            host,
            costs,
            exec,
            now: Nanos(0),
            seq: 0,
            queue: BinaryHeap::new(),
            running,
            replies: Vec::new(),
            log: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The virtual time.
    pub fn now(&self) -> Nanos {
        self.now
    }

    fn runtime(&mut self, side: Side) -> &mut Runtime {
        match side {
            Side::Nic => &mut self.nic,
            Side::Host => &mut self.host,
        }
    }

    fn schedule(&mut self, at: Nanos, pending: Pending) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, pending)));
    }

    /// A request datagram from `source` reaches the NIC at `at` (not before the current time).
    pub fn arrive(&mut self, at: Nanos, source: u64, frame: Vec<u8>) {
        let at = at.max(self.now);
        self.schedule(
            at,
            Pending::Arrive {
                side_host: false,
                source,
                frame,
            },
        );
    }

    /// Forces a migration of `actor` now (see [`Runtime::force_migration`]) and lets the
    /// management core start on it.
    pub fn force_migration(&mut self, actor: ActorId) -> Result<(), crate::RuntimeError> {
        let now = self.now;
        self.nic.force_migration(now, actor)?;
        self.drain_outputs();
        self.start_idle(Side::Nic);
        Ok(())
    }

    /// Processes events up to time `until` (at most `events_max` of them); returns how many ran.
    pub fn run_until(&mut self, until: Nanos, events_max: u64) -> u64 {
        let mut done = 0;
        while done < events_max {
            let due = self
                .queue
                .peek()
                .is_some_and(|Reverse((at, _, _))| *at <= until);
            if !due {
                break;
            }
            let Some(Reverse((at, _, pending))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            self.handle(pending);
            self.drain_outputs();
            self.start_idle(Side::Nic);
            self.start_idle(Side::Host);
            done += 1;
        }
        if done < events_max {
            self.now = self.now.max(until);
        }
        done
    }

    fn handle(&mut self, pending: Pending) {
        let now = self.now;
        match pending {
            Pending::Arrive {
                side_host,
                source,
                frame,
            } => {
                let side = if side_host { Side::Host } else { Side::Nic };
                self.runtime(side).submit(now, source, &frame);
            }
            Pending::Finish { side_host, core } => {
                let side = if side_host { Side::Host } else { Side::Nic };
                let slot = self.running[index(side)][usize::from(core)].take();
                if let Some((job, exec_ns)) = slot {
                    self.runtime(side).finish(now, job, exec_ns);
                }
            }
        }
    }

    fn start_idle(&mut self, side: Side) {
        let now = self.now;
        for core in 0..self.running[index(side)].len() {
            if self.running[index(side)][core].is_some() {
                continue;
            }
            let Ok(Some(mut job)) = self.runtime(side).start(CoreId(core as u16), now) else {
                continue;
            };
            job.execute();
            let task = *job.task();
            let exec_ns = match task.kind {
                crate::runtime::TaskKind::Run { .. } => (self.exec)(side, &task),
                _ => 0,
            };
            let done = now.plus_ns(exec_ns + self.costs.overhead_ns(&task));
            self.running[index(side)][core] = Some((job, exec_ns));
            let side_host = side == Side::Host;
            self.schedule(
                done,
                Pending::Finish {
                    side_host,
                    core: core as u16,
                },
            );
        }
    }

    fn drain_outputs(&mut self) {
        for side in [Side::Nic, Side::Host] {
            let mut frame = Vec::new();
            while let Some(t) = self.runtime(side).poll_transmit(&mut frame) {
                let at = self.now;
                self.replies.push(ReplyRecord {
                    at,
                    side,
                    source: t.source,
                    frame: frame.clone(),
                });
            }
            while let Some(event) = self.runtime(side).poll_event() {
                self.route(event);
            }
        }
    }

    fn route(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Downgraded { actor, .. } => self.log.push((now, Logged::Downgraded(actor))),
            Event::Upgraded { actor, .. } => self.log.push((now, Logged::Upgraded(actor))),
            Event::MigrationStarted {
                actor,
                direction,
                mean_ns,
            } => {
                self.log
                    .push((now, Logged::MigrationStarted(actor, direction, mean_ns)));
            }
            Event::MigrationDone {
                actor,
                direction,
                started,
                objects,
                bytes,
                requests,
                ..
            } => {
                let done =
                    Logged::MigrationDone(actor, direction, started, objects, bytes, requests);
                self.log.push((now, done));
            }
            Event::Migrated(image) => {
                if let Err(r) = self.host.import(image) {
                    self.failures
                        .push(format!("host refused an import: {}", r.error));
                }
            }
            Event::Forward { source, frame, .. } => {
                self.schedule(
                    now,
                    Pending::Arrive {
                        side_host: true,
                        source,
                        frame,
                    },
                );
            }
            Event::Recall { actor } => {
                if let Err(e) = self.host.begin_export(actor) {
                    self.failures.push(format!("host refused a recall: {e}"));
                }
            }
            Event::Exported(image) => {
                if let Err(r) = self.nic.deliver_image(image) {
                    self.failures
                        .push(format!("NIC refused an image: {}", r.error));
                }
            }
        }
    }
}
