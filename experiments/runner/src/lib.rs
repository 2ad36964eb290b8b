//! Runs experiment plans point by point into the results store.
//!
//! # Design
//!
//! [`run_plan`] takes a validated plan and a [`PointExecutor`] (the seam: the local testbed,
//! the orchestrator, an in-process vm-cost executor, or the [`synthetic`] stand-in for tests).
//! For each point that is not complete it stages a folder, lets the executor write the raw
//! files, summarizes them (naam-results: merged histograms, percentiles, throughput, shares,
//! validity) and seals the folder atomically; `run.json` is rewritten after every point.
//! Re-running the same plan finds the same folder (the run id is the configuration hash),
//! skips complete points and redoes partial ones; a run killed at any instant leaves only
//! whole files. Progress is an indicatif bar whose length is the planned measuring time, so
//! its ETA tracks the real pace of the testbed.
//!
//! It knows nothing of how a point is executed (processes, sockets, SSH) and nothing of
//! polars or figures.

mod executor;
mod report;
mod run;
pub mod synthetic;

pub use executor::{ExecError, PointExecutor};
pub use report::{
    CheckFailure, CheckReport, StatusReport, VariantCheck, check, describe_run, status,
};
pub use run::{Progress, RunError, RunOptions, RunOutcome, run_dir_for, run_plan};
