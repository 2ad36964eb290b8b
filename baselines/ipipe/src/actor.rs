//! An actor's record on one side: its application and objects (while it lives here), its
//! scheduling class, its mailbox and DRR deficit, and its execution statistics.

use std::collections::VecDeque;

use naam_engine::wire::ReplyAddr;
use naam_engine::{FunctionId, Nanos, RequestId, TenantId};
use serde::{Deserialize, Serialize};

use crate::app::{App, Op};
use crate::ids::{ActorId, ObjectId};
use crate::memory::{ObjectImage, ObjectTable};
use crate::window::ExecWindow;

/// Work items one actor's mailbox (DRR), deferral queue or migration buffer may hold.
pub const ACTOR_QUEUE_ITEMS_MAX: usize = 16_384;
/// Functions one actor may serve.
pub const FUNCTIONS_PER_ACTOR_MAX: usize = 16;

/// Where an actor is in iPipe's scheduler, on this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActorState {
    /// Run by FCFS cores as its work items come.
    Fcfs,
    /// Downgraded: its items wait in its mailbox for a DRR core.
    Drr,
    /// Being migrated (either way): its arrivals are buffered until it lands.
    Locked,
    /// Lives on the other side: the NIC forwards its items to the host.
    Remote,
}

/// A request waiting to run: the datagram and what the runtime learned when it arrived.
#[derive(Debug)]
pub struct WorkItem {
    /// The encoded Invoke frame.
    pub frame: Vec<u8>,
    /// The driver's token for the sender.
    pub source: u64,
    /// When it arrived on this side.
    pub arrived: Nanos,
    /// The actor it is for.
    pub actor: ActorId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its function.
    pub function: FunctionId,
    /// What the function stands for at this actor.
    pub op: Op,
    /// The client's request id.
    pub request_id: RequestId,
    /// Where the reply goes (`None`: to `source`).
    pub reply_to: Option<ReplyAddr>,
}

/// What an actor is and owns, detached from any side (registration, and phase 2 of a
/// migration: the state that travels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorSpec {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// The functions it serves, and what each stands for.
    pub functions: Vec<(FunctionId, Op)>,
    /// Its DRR quantum (`None`: the side's default).
    pub quantum_ns: Option<u64>,
}

/// An actor on its way to the other side: its registration, application, statistics and
/// objects. It lands as an FCFS actor; since its execution window travels with it, a tail still
/// above the threshold downgrades it again after its first item there.
#[derive(Debug)]
pub struct ActorImage {
    /// The actor's id (the same on both sides).
    pub actor: ActorId,
    /// Its registration.
    pub spec: ActorSpec,
    /// Its application.
    pub app: App,
    /// Its execution window, oldest first.
    pub exec_ns: Vec<u64>,
    /// Its objects, with their ids.
    pub objects: Vec<ObjectImage>,
}

impl ActorImage {
    /// Bytes of the actor's objects.
    pub fn bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.bytes.len() as u64).sum()
    }

    /// Sizes of the actor's objects, in table order.
    pub fn object_sizes(&self) -> Vec<u64> {
        self.objects.iter().map(|o| o.bytes.len() as u64).collect()
    }

    /// The ids of its objects.
    pub fn object_ids(&self) -> Vec<ObjectId> {
        self.objects.iter().map(|o| o.object).collect()
    }
}

/// One actor's record on a side.
#[derive(Debug)]
pub(crate) struct Actor {
    pub id: ActorId,
    pub spec: ActorSpec,
    pub state: ActorState,
    /// Application and objects; `None` while checked out by a running job or while remote.
    pub home: Option<(App, ObjectTable)>,
    /// A job holds its application and objects (an actor runs one item at a time).
    pub running: bool,
    /// Sizes of its objects while it lives on the other side (for a pull-back's room check).
    pub remote_sizes: Vec<u64>,
    pub mailbox: VecDeque<WorkItem>,
    /// Items that found the actor running on another core (an actor runs one item at a time).
    pub deferred: VecDeque<WorkItem>,
    /// Arrivals buffered while it is locked for migration.
    pub buffered: VecDeque<WorkItem>,
    /// Items of this actor anywhere in this side's queues.
    pub queued: u32,
    pub quantum_ns: u64,
    pub deficit_ns: i64,
    /// In the DRR active list, or in a DRR core's turn.
    pub drr_listed: bool,
    pub upgrade_pending: bool,
    pub exec: ExecWindow,
    /// Execution time and arrivals since the last management decision.
    pub load_ns: u64,
    pub arrivals: u64,
}

impl Actor {
    pub fn new(id: ActorId, spec: ActorSpec, quantum_ns: u64, window: usize) -> Actor {
        Actor {
            id,
            home: Some((App::Unset, ObjectTable::new(id))),
            quantum_ns: spec.quantum_ns.unwrap_or(quantum_ns),
            spec,
            state: ActorState::Fcfs,
            running: false,
            remote_sizes: Vec::new(),
            mailbox: VecDeque::new(),
            deferred: VecDeque::new(),
            buffered: VecDeque::new(),
            queued: 0,
            deficit_ns: 0,
            drr_listed: false,
            upgrade_pending: false,
            exec: ExecWindow::new(window),
            load_ns: 0,
            arrivals: 0,
        }
    }

    /// The expected execution time of its next item (its window's mean; 0 before any).
    pub fn cost_estimate_ns(&self) -> i64 {
        self.exec.mean_ns() as i64
    }
}
