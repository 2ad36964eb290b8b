//! The measurement core of NAAM's client role: open-loop schedules, latency from the intended send
//! time, per-interval HdrHistograms, interval logs, and the validity verdict of a point.
//!
//! Design: load is offered open-loop by default — a Poisson process or a fixed
//! rate, seeded — and every request's latency runs from its *intended* send time, so a server that
//! stalls shows its full queueing delay instead of slowing the generator down (coordinated
//! omission). How late the generator itself sent is recorded apart, and a point whose generator
//! fell behind, or whose completions missed the offered rate, is marked invalid with the reason
//! ([`report`]). Latencies go into one HdrHistogram per tag (e.g. the execution location `host`,
//! `nic`, `client`) per interval; histograms are only ever merged by adding. Intervals are written
//! in the standard interval-log format ([`hlog`]) that Java's, Python's and Rust's HdrHistogram
//! tools read. A closed-loop mode exists for explicit max-throughput probes and is labelled so.
//!
//! The crate is sans-IO: no sockets, no threads, no clock. The caller passes `now_ns` (ns since
//! the run start) into [`LoadGenerator`] and sends what it hands out.

pub mod error;
pub mod generator;
pub mod hlog;
pub mod recorder;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod tag;
pub mod window;

pub use error::{ConfigError, HlogError, RecordError};
pub use generator::{LoadConfig, LoadGenerator, SendTicket};
pub use hlog::{Hlog, HlogWriter, read_hlog};
pub use recorder::{IntervalHistogram, IntervalRecorder};
pub use report::{InvalidReason, RateReport, RunReport, Thresholds, Verdict};
pub use schedule::{LoadMode, RateStep, Schedule};
pub use tag::{TagId, TagSet};
