//! # naam-engine — the NAAM runtime as a sans-IO core
//!
//! NAAM (Network-accelerated Active Messages, arXiv 2509.07431) lets a message name a small eBPF
//! function and the remote data it touches, and runs it wherever that makes most sense: host
//! cores, SmartNIC cores, or the requesting client. This crate is that runtime's logic, shared by
//! every location, by tests on a virtual clock, and (later) by a simulator. Everything below the
//! paper's abstract — wire format, function ABI, control law — is our reconstruction; see
//! `ARTIFACT.md`.
//!
//! ## Sans-IO
//!
//! The crate owns no socket, thread, file, async runtime or clock (a test greps the source for
//! them). Callers pass `now` and decoded frames in, and take accesses, completions and load
//! samples out, in the manner of quinn-proto:
//!
//! - [`wire`]: frames (invoke, reply, one-sided read, read reply, load sample), with named maxima;
//!   decoding never panics and never allocates.
//! - [`region`]: registered memory, rkey capabilities, and the one access check every location
//!   uses ([`region::RegionTable::check`]).
//! - [`function`]: per-tenant functions, verified once by naam-vm at registration.
//! - [`exec`]: the [`exec::Executor`] — continuation-style steps over fetched data; returns the
//!   accesses to perform and resumes messages when their completions come back; never blocks.
//! - [`steer`]: the eSwitch rule table and the per-message placement decision.
//! - [`control`] and [`policy`]: the controller and the pluggable steering policies, and the
//!   server's control stage ([`control::ServerControl`]: host-load aggregation, rule table,
//!   settings published to the workers).
//! - [`server`]: the [`server::ServerWorker`] — one host or NIC worker: datagrams in, accesses,
//!   native calls and steps out, reply frames addressed to a source token, load samples.
//! - [`client`]: the [`client::ClientEndpoint`] — a client's request lifecycle: requests in
//!   flight, deadlines, the client's share, pushback continuations run locally with one-sided
//!   reads, client-side policies.
//! - [`rnic`]: answering a one-sided read (the region check, then the bytes).
//! - [`abi`]: the constants of `include/naam.h`, the C ABI functions are written against.
//! - [`local`]: a host in a box (regions as byte vectors) to run functions without processes.
//!
//! ## A message's life
//!
//! A client encodes an [`wire::Invoke`] naming `(tenant, function)`, its arguments and the first
//! step's access descriptors. The steering stage picks a location from the rule table. The
//! executor there checks every descriptor against the region table, hands out the accesses, and
//! when their bytes are back runs one step of the function in the VM over
//! `(args, fetched data, carried state)`. The function replies (`NAAM_DONE`), declares the next
//! accesses (`NAAM_NEXT`: pointer chasing), asks for a restart (`NAAM_RETRY`: torn read), or fails.
//! Steps, retries, in-flight messages and instructions per step are bounded.

pub mod abi;
pub mod client;
pub mod control;
pub mod exec;
pub mod function;
pub mod helpers;
pub mod ids;
mod inflight;
pub mod local;
pub mod policy;
mod ready;
pub mod region;
pub mod rnic;
pub mod server;
pub mod stats;
pub mod steer;
pub mod wire;

pub use client::{ClientEndpoint, EndpointConfig};
pub use control::{
    ClientSample, Controller, Decision, LoadView, Policy, RuleChange, ServerControl, WorkerSettings,
};
pub use exec::{
    AccessFailure, AccessFill, AccessId, AccessMemory, AccessRequest, Completion, Executor,
    ExecutorConfig, NativeRequest, NoMemory, StepWork, Work,
};
pub use function::{Code, FunctionTable};
pub use ids::{
    AccessKind, Descriptor, FunctionId, Location, Nanos, RegionId, RequestId, Rkey, TenantId,
};
/// The VM backend a function table loads for, and the tier a function ended up on.
pub use naam_vm::{Backend, JitCacheStats, Tier};
pub use region::{Perms, RegionInfo, RegionTable, RkeySecret};
pub use server::{ServerWorker, WorkerConfig};
pub use steer::{RuleKey, RuleTable, Shares, SteerKey};
pub use wire::{Frame, Invoke, Reply, Status};
