//! A YCSB `CoreWorkload`-compatible key and operation generator.
//!
//! "Zipf 0.99" in the NAAM paper's MICA numbers means YCSB-B, and YCSB's `zipfian` request
//! distribution is not a plain Zipf(0.99) over the records: it is [`ScrambledZipfian`] — a
//! Zipf(0.99) over a fixed space of 10^10 + 1 ranks with a hard-coded ζ, each rank hashed with
//! YCSB's 64-bit FNV ([`fnvhash64`]) and folded into `records + expected inserts + 1` key
//! numbers, a draw of a not-yet-inserted key being drawn again. This crate reproduces that chain
//! bit for bit (Java `long`/`double` semantics, Java's evaluation order), offers the plain
//! Gray et al. [`Zipfian`], uniform and latest, and YCSB's workloads A–F ([`Workload`]).
//!
//! - [`rng`]: the random source, JDK 17 `ThreadLocalRandom`'s algorithm with a caller's seed, so
//!   each thread's stream is reproducible and — for one thread — identical draw for draw to a YCSB
//!   worker whose `ThreadLocalRandom` state is the same seed;
//! - [`zipfian`]: ζ, the rank-from-uniform step [`zipfian_rank`] (public so tests can check the
//!   formula at fixed inputs), YCSB's Zipfian and scrambled Zipfian generators;
//! - [`hash`]: `fnvhash64` and key names (`"user"` + the decimal FNV hash of the key number);
//! - [`generator`]: one thread's transaction stream in `CoreWorkload.doTransaction`'s draw order;
//! - [`trace`]: the `op,keynum,key` CSV behind `naam workload ycsb`.
//!
//! Every trace records which [`Distribution`] produced it, by a stable name.
//!
//! The tests compare against vectors printed by YCSB's own generator classes
//! (`tests/vectors/README.md` says how they were obtained).

pub mod distribution;
pub mod error;
pub mod generator;
pub mod hash;
pub mod rng;
pub mod trace;
pub mod workload;
pub mod zipfian;

pub use distribution::Distribution;
pub use error::{TraceError, YcsbError};
pub use generator::{Operation, OperationGenerator, RunConfig};
pub use hash::{fnvhash64, key_name, push_key_name};
pub use rng::TlrRng;
pub use trace::{TraceParams, write_operations_csv};
pub use workload::{OpKind, Proportions, ScanLengthDistribution, Workload, WorkloadSpec};
pub use zipfian::{ScrambledZipfian, Zipfian, ZipfianParams, zeta_static, zipfian_rank};
