//! A Cell-style B-tree (Mitchell et al., USENIX ATC'16): fixed-size nodes in one caller-provided
//! `nodes` region that clients can traverse with one-sided reads, and its NAAM lookup function in
//! C (`bpf/btree_lookup.c`, compiled to eBPF) that takes one step per level.
//!
//! # Layout
//!
//! Nodes of `node_bytes` (default 1 KB, a multiple of 64 in 128..=4096) at offsets
//! `i × node_bytes`; node 0 is a superblock (magic, node size, root offset, height, nodes used,
//! entries). u64 keys and values. See [`layout`] for the bytes. Every node has a version at its
//! start and a copy at its end, and its key range as fence keys `[low, high]`.
//!
//! # Torn and stale reads
//!
//! Cell's clients read nodes with RDMA while the server writes them. A writer makes both
//! versions odd, writes the body, then the trailer version, then the header version (both
//! `+2`). A reader that reads a node front to back accepts it only if the two versions are equal
//! and even; otherwise it retries. A node can also be consistent but no longer the right one —
//! a concurrent insert split it after the reader left the parent — which the fences reveal: a key
//! outside `[low, high]` sends the reader back to the root. The root splits in place, so its
//! offset (the client's first access) never changes. The assumption, stated: one access reads a
//! node in ascending address order (true of host copies, and in practice of DMA and RDMA reads).
//!
//! # Writes
//!
//! Bulk load from sorted pairs with a fill factor, and inserts with splits, run at the server
//! (as Cell's writes do). There is no delete. One writer per region.
//!
//! # The NAAM function
//!
//! [`lookup`] describes `btree_lookup`: arguments ([`LookupArgs::encode`]), the initial access
//! (the root, [`LookupArgs::initial_access`]), the reply ([`LookupReply::decode`]) and errors.
//!
//! [`vm::BTreeVm`] runs it for real: `bpf/btree_lookup.o` verified by naam-vm and run one step
//! per level by naam-engine, in a `naam_engine::local::LocalHost` that owns the `nodes` region;
//! host-native inserts change the same bytes between lookups ([`BTreeVm::tree_mut`]).
//! `run_replay` with [`Via::Vm`] uses it and prints what [`Via::Native`] prints. The tests run
//! every lookup of random trees (several node sizes and depths, bulk load then inserts) on both
//! paths against `BTreeMap`, and drive the engine's executor step by step with a scripted writer
//! to check retries: a node whose two versions differ, one that never settles
//! (`RetriesExceeded`), and a split between reading the parent and the leaf (fences → retry).

pub mod config;
pub mod error;
pub mod layout;
pub mod lookup;
mod node;
pub mod reader;
pub mod trace;
pub mod tree;
pub mod vm;

pub use config::{BTreeConfig, ConfigError};
pub use error::{BuildError, InsertError, LookupError, OpenError};
pub use lookup::{
    Access, ArgsError, LookupArgs, LookupFunctionError, LookupReply, LookupRequest, ParseError,
    ReplyError,
};
pub use reader::{BTreeReader, Superblock};
pub use trace::{ReplayError, ReplayOptions, ReplaySummary, Via, run_replay};
pub use tree::{BTree, InsertOutcome};
pub use vm::{BTreeVm, VmError, VmLookup};
