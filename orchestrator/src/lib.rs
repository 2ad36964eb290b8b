//! SSH orchestrator for real testbeds: client machines, a server host and its BlueField-2
//! SmartNIC, e.g. a CloudLab experiment (issue 7, phase 1).
//!
//! ## Design
//!
//! The orchestrator turns an [`inventory::Inventory`] (who takes part, how to reach them) and a
//! list of [`run::LaunchSpec`]s (what to run where) into a run on real machines, over SSH only:
//!
//! * [`inventory`] parses and validates the TOML hosts file; [`cloudlab`] imports one from the
//!   manifest RSpec of a running CloudLab experiment.
//! * [`ssh`] holds one authenticated session per host (libssh2), with host keys checked against
//!   the inventory's known_hosts file (unknown or changed keys are refused), timeouts on every
//!   blocking call and bounded retries with backoff ([`retry`]) for network failures.
//! * [`command`] is the only way a remote shell line is built: every argument is quoted, and the
//!   only unquoted text is operator text written in this crate.
//! * [`process`] starts role processes in the background, tracks them by PID (and start time),
//!   and stops them by PID: SIGTERM, a bounded wait, SIGKILL.
//! * [`deploy`] uploads artifacts over SFTP, idempotently: SHA-256 on both sides, skip when equal,
//!   upload to a temporary name, verify, rename atomically. A target whose architecture has no
//!   local build gets a source bundle (`git archive`) and builds it with cargo.
//! * [`run`] drives the phases deploy → start → warm-up → measure → collect → teardown, records
//!   every phase as a timestamped event, samples each host's CPU time (`/proc/stat`) and clock
//!   offset ([`telemetry`]), tears down on failure or Ctrl-C ([`cancel`]), and [`collect`]s every
//!   declared output with its checksum verified. A node lost mid-run makes the outcome partial,
//!   with per-node coverage; a rerun resumes.
//! * [`dryrun`] renders the whole plan for an inventory without connecting.
//!
//! Phase 1 deliberately knows nothing of experiment plans, the role binary or the results schema:
//! the seam is [`run::LaunchSpec`] (host, role, program and arguments, readiness check, output
//! files). Phase 2 maps plans onto it and writes results as the local runner does.
//!
//! Every bound is a named constant in [`limits`].

// Errors here carry the context a person needs (login, paths, the exact command to run) and only
// travel on the failure path of network operations that take milliseconds; their size is not a
// cost worth boxing for.
#![allow(clippy::result_large_err)]

pub mod cancel;
pub mod cloudlab;
pub mod collect;
pub mod command;
pub mod deploy;
pub mod dryrun;
pub mod inventory;
pub mod limits;
pub mod process;
pub mod retry;
pub mod run;
pub mod ssh;
pub mod telemetry;

pub use command::{CommandError, RemoteCommand, ShellLine, ShellWord, shell_quote};
pub use inventory::{Arch, HostSpec, Inventory, InventoryError, Role};
pub use ssh::{ConnectOptions, Connection, SshError};
