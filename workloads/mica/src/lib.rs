//! MICA's lossy hash index and circular log, laid out byte for byte in caller-provided regions
//! (later NAAM regions, shared with an emulated NIC), with its NAAM GET function in C
//! (`bpf/mica_get.c`, compiled to eBPF).
//!
//! # Layout (as MICA's `src/table.h` and `src/alloc_pool.c`)
//!
//! Three regions, each a `&mut [u8]` (writer) or `&[u8]` (readers) sized by
//! [`MicaConfig::validate`]:
//!
//! - **index**: `buckets` primary buckets, then `extra_buckets` extra buckets. A bucket is a u32
//!   version, a u32 next-extra-bucket index (1-based; 0 = none), then 7 or 15 u64 entries
//!   `tag << 48 | log offset` (48 bits; 0 = empty). Bucket = `(keyhash >> 16) & (buckets - 1)`,
//!   tag = `keyhash & 0xffff` with 0 mapped to 1.
//! - **log**: a circular log of `log_bytes` (a power of two). An item is a 24-byte header (u64 item
//!   size, u32 `key_len << 24 | value_len`, u32 expiry, u64 key hash), then the key and the value,
//!   each zero-padded to 8 bytes. Items live at `offset & (log_bytes - 1)`; an offset stays valid
//!   while `(tail - offset) mod 2^48 <= log_bytes`. MICA maps the pool's first pages again after
//!   its end so an item crossing the end stays contiguous; a plain buffer cannot, so the region
//!   carries `item_bytes_max` extra bytes after `log_bytes` and the writer stores the crossing
//!   part both there and at the start. Every item is therefore one contiguous read.
//! - **meta** (64 bytes): magic, the log tail (u64, monotonic), the head of the free list of
//!   extra buckets, and an echo of the configuration so another process can open the regions.
//!
//! # Protocol
//!
//! One writer per table (MICA's EREW/CREW). SET and DELETE make the key's primary bucket version
//! odd while they work and even (+2) after; GET reads the version (retry while odd), finds the
//! entry by tag, compares the stored key hash and key bytes, copies the value, then checks the
//! offset against the tail and the version again (retry if it changed). The log tail moves before
//! an item is written, so bytes about to be overwritten are already invalid.
//!
//! # Eviction (what makes the index lossy)
//!
//! - **Same tag.** A SET of a new key first reuses an entry with the same tag in the chain, as
//!   MICA does: a different key sharing bucket and tag is evicted ([`EvictionReason::SameTag`]).
//!   Hence a chain never holds two entries with one tag.
//! - **Bucket overflow.** Otherwise an empty entry; otherwise, if extra buckets are configured
//!   and the chain is shorter than [`layout::CHAIN_HOPS_MAX`], a new extra bucket; otherwise a
//!   victim by [`BucketEviction`]: the oldest item (largest distance from the tail — MICA's paper)
//!   or, as MICA's released code actually does, the newest ([`EvictionReason::BucketFull`]).
//! - **Log wrap.** When the circular log comes round, older items are overwritten and their
//!   entries fail the offset check: GET misses them without any write. MICA's cleanup clears such
//!   entries in the buckets the tail's advance maps to (`cleanup` in `table.rs`), so stale offsets
//!   are gone before the 48-bit offset space wraps.
//!
//! MICA's lossy build never chains extra buckets (`MEHCACHED_NO_EVICTION` off); its lossless build
//! chains and fails SETs when none is free. `extra_buckets = 0` (the default) is the former
//! exactly; with extra buckets we chain first and evict when the free list is empty or the chain
//! is at its bound — a documented hybrid. Not reproduced: move-to-head on GET (MICA's FIFO mode,
//! threshold 1.0, never moves), item expiry (written as 0, never checked — as MICA's GET), and
//! multiple pools per table.
//!
//! # Hash
//!
//! MICA's own: CityHash64 as MICA compiles it (`src/city.c`, CityHash 1.0.3), written from the
//! algorithm in [`hash`] and checked against values MICA's `city.c` printed. Bucket and tag follow
//! from it as in MICA, so every key sits in MICA's bucket under MICA's tag.
//!
//! # The NAAM function
//!
//! [`get`] describes `mica_get`: its argument block ([`GetArgs::encode`]), the initial access
//! ([`GetArgs::initial_access`]; a client takes both from [`GetArgs::encode_with_access`], the
//! key hashed once), the steps, the reply ([`GetReply::decode`]) and its error codes.
//! Region rkeys come from the engine; the GET runs unchanged at the host, the NIC or the client.
//!
//! [`vm::MicaVm`] runs it for real: `bpf/mica_get.o` verified by naam-vm, stepped by
//! naam-engine's executor, over the very bytes the host-native writer ([`MicaTable`]) changes
//! between GETs. `run_trace(.., Via::Vm, ..)` uses it and prints what `Via::Native` prints; the
//! tests run every GET of their random traces on both paths. (`MicaVm` keeps the caller's regions
//! instead of using `naam_engine::local::LocalHost`, which lends one region at a time while the
//! writer needs three at once.)
//!
//! # Access order (an assumption of `mica_get`)
//!
//! The fetch step declares three reads: the item, then the log tail (meta), then the bucket
//! header (version). Its validation is sound only if they are performed in that order: the
//! writer moves the tail before it overwrites log bytes and makes the version odd before it
//! changes a bucket, so a tail and a version read *after* the item and found unchanged mean the
//! item bytes were not being overwritten while they were read. We keep the three reads in one
//! step (one round trip instead of two) and rely on every data path performing a step's accesses
//! in declaration order, and each access in ascending address order:
//!
//! - the engine hands a step's accesses out in declaration order (`Executor::poll_access` is a
//!   FIFO) — `tests/torn_reads.rs` checks the order `mica_get` sees;
//! - the host path (`LocalHost`, [`vm::MicaVm`], the host role) completes them in that order,
//!   each one a plain front-to-back copy;
//! - the emulated NIC's DMA queue is FIFO with a constant per-access delay, so accesses complete
//!   in the order they were issued;
//! - the client sends its one-sided reads in order to the emulated RNIC, which is single-threaded
//!   and serves them in order.
//!
//! A data path that cannot promise this (e.g. separate RDMA READs on real hardware without a
//! fence between them) must fence the tail and version reads behind the item read, or split the
//! step in two at the cost of a round trip. `bpf/mica_get.c` states the same.
//!
//! Torn reads are tested by a scripted writer that changes the regions between the steps of a
//! GET and between the accesses of one step (`vm::RegionMemory::before_access`): odd versions,
//! a SET between probe and fetch, a tail that passed the item, a bucket that never unlocks
//! (`VmError::RetriesExceeded`).

pub mod config;
pub mod error;
pub mod get;
pub mod hash;
pub mod layout;
pub mod reader;
pub mod set;
pub mod table;
pub mod tenant;
pub mod trace;
mod view;
pub mod vm;

pub use config::{BucketEviction, ConfigError, MicaConfig, RegionSizes, Slots};
pub use error::{OpError, OpenError};
pub use get::{
    Access, ArgsError, GetArgs, GetFunctionError, GetReply, GetRequest, MicaRkeys, ParseError,
    ReplyError,
};
pub use reader::{GetOutcome, MicaReader, MicaRegions};
pub use table::{
    Eviction, EvictionReason, MicaRegionsMut, MicaStats, MicaTable, SetKind, SetReport,
};
pub use trace::{TraceError, TraceOp, TraceSummary, Via, run_trace};
pub use vm::{AccessEvent, MicaVm, RegionMemory, RegionName, VmError, VmGet};
