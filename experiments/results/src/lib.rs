//! The results store: run folders, the schema of every file in them, provenance, atomic
//! writes and resume state.
//!
//! # Design
//!
//! A run of a plan lives in `results/<experiment>/<run-id>/` ([`layout`]); the run id is the
//! variant and the configuration hash, so running the same plan again resumes the same folder.
//! Every file has a Rust type here and a section in `experiments/SCHEMA.md`:
//!
//! - [`raw`]: the files role processes write for a point (the contract with the testbed),
//!   and [`hlog`]: their HdrHistogram interval logs in Java's format;
//! - [`summary`]: the runner's `summary.json` per point (merged histograms, percentiles,
//!   throughput, per-location shares, validity);
//! - [`provenance`]: code, toolchain, machine, configuration hash, sessions;
//! - [`state`]: `run.json`, rewritten after every point, so a killed run says what is missing.
//!
//! Writes are atomic and durable ([`atomic`]); a point folder is sealed by renaming it into
//! place only when complete. This crate stays lean (serde, serde_json, hdrhistogram, sha2):
//! role processes link it to write their files. It knows nothing of polars, plotting, the
//! testbed or how points are executed.

pub mod atomic;
pub mod digest;
pub mod error;
pub mod hlog;
pub mod layout;
pub mod provenance;
pub mod raw;
pub mod shift;
pub mod state;
pub mod summary;
pub mod time;

pub use error::ResultsError;
pub use layout::{RunDir, list_runs, run_id};
pub use provenance::{Provenance, Session, config_hash};
pub use state::{PointFailure, RunReport, RunState, RunStatus, inspect_run};
pub use summary::{PointSummary, Validity, summarize_point};

/// The results folder, relative to the workspace root.
pub const RESULTS_DIR: &str = "results";
