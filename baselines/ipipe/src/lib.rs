//! # naam-ipipe — iPipe as a second system under test
//!
//! iPipe (Liu et al., "Offloading Distributed Applications onto SmartNICs using iPipe",
//! SIGCOMM'19) is the SmartNIC offload framework NAAM compares itself with: NAAM's abstract says
//! iPipe "only scales to 8 application offloads on BlueField-2". This crate rebuilds iPipe's
//! runtime from the paper's description, as a running system that serves the same wire requests
//! as NAAM, so that the same clients, answer verification and analysis measure both.
//!
//! ## The model (from the paper)
//!
//! - **Actors own distributed memory objects.** An application is a set of actors; an actor's
//!   state lives in objects it allocates through the runtime and names by id
//!   ([`memory`]: an object table per actor of object id, actor id, start address, size).
//! - **A hybrid scheduler.** FCFS cores take work items first come first served; per item they
//!   look up its actor, park the item in the actor's mailbox if the actor was downgraded, or run
//!   it and update the actor's execution statistics, downgrading it to DRR when its tail
//!   latency exceeds `Tail_thresh`. DRR cores serve downgraded actors by deficit round robin
//!   (quantum and deficit counter per actor). ([`runtime`])
//! - **A management core** (the NIC's core 0) migrates an actor to the host when the mean
//!   latency exceeds `Mean_thresh` and pulls one back when it falls below
//!   `(1 − α)·Mean_thresh`, in four phases: lock, state, move the objects, push the buffered
//!   requests — so a migration costs more the more bytes the actor owns and the higher the load.
//! - **Native actors** ([`app`]): MICA GET/SET and B-tree lookups in native Rust over the same
//!   datasets as NAAM's eBPF functions (naam-mica's and naam-btree's own readers and writer),
//!   answering NAAM's `Invoke` requests with NAAM's reply bytes.
//!
//! ## What is ours
//!
//! The paper publishes no threshold values; [`config`] states our defaults and why. Which actor
//! migrates, that an actor runs one item at a time, that a DRR actor returns to FCFS below
//! `(1 − α)·Tail_thresh`, and how DRR estimates an item's cost are our assumptions, documented
//! where they are implemented. The **isolation model** ([`config::Isolation`]) is explicit: iPipe
//! trusts its actors (one address space); native code from distrusting tenants needs a process
//! per tenant, whose switches, hand-offs and memory ([`cost`]) were measured on this machine.
//!
//! ## Sans-IO
//!
//! Like naam-engine, no socket, thread, file or clock: callers pass `now` in and take jobs,
//! replies and events out ([`runtime::Runtime`]), so the same runtime runs in a role process on
//! the real clock and under a discrete-event simulator. [`drive::VirtualPair`] is a small such
//! driver (a NIC and a host on a virtual clock) used by the tests.

pub mod actor;
pub mod app;
pub mod config;
pub mod cost;
pub mod drive;
pub mod ids;
pub mod image;
pub mod memory;
mod queue;
pub mod runtime;
pub mod window;

pub use actor::{ActorImage, ActorSpec, ActorState};
pub use app::{App, BtreeApp, MicaApp, Op};
pub use config::{IpipeConfig, Isolation, Thresholds, Windows};
pub use cost::{CostModel, DmaCosts, IsolationCosts};
pub use ids::{ActorId, CoreId, ObjectId, Side};
pub use queue::INGRESS_ITEMS_MAX;
pub use runtime::{
    Admission, Direction, Event, Job, Phase, Runtime, RuntimeError, RuntimeStats, Task, TaskKind,
    Transmit,
};
