//! SSH orchestrator for real testbeds: client machines, a server host and its BlueField-2
//! SmartNIC, e.g. a CloudLab experiment (issue 7).
//!
//! ## Design
//!
//! Two layers. The **run core** turns an [`inventory::Inventory`] (who takes part, how to reach
//! them) and a list of [`run::LaunchSpec`]s (what to run where) into a run on real machines, over
//! SSH only, and knows nothing of experiments:
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
//! * [`run`] drives the phases deploy → start → warm-up → measure → collect → teardown: launches
//!   start in dependency order (host, NIC, clients) after their input files are placed (a role
//!   configuration; another launch's ready file, relayed through this machine with checksums);
//!   clock offsets are measured, refused beyond named bounds and otherwise shifted for, so each
//!   machine gets the common start in its own clock (`start_at`, `timeline.json`); every phase is
//!   a timestamped event; CPU time (`/proc/stat`) and clock offsets are recorded per host
//!   ([`telemetry`]); Ctrl-C and failures tear down ([`cancel`]); [`collect`] brings every
//!   declared output home with its checksum verified. A node lost mid-run makes the outcome
//!   partial, with per-node coverage; a rerun resumes.
//! * [`dryrun`] renders the whole plan for an inventory without connecting.
//!
//! The **experiment layer** binds the core to the harness:
//!
//! * [`experiment`] maps a plan's point onto the inventory: the local testbed's role
//!   configurations (`naam_executors::configs::build`) made machine-independent (paths relative to
//!   each run directory, the host listening on its LAN address), one `naam-role` launch per role.
//! * [`executor::OrchestratorExecutor`] is the runner's `PointExecutor` for plans with
//!   `testbed = { kind = "inventory" }`: it runs each point through the core and writes the
//!   point's raw files with the local testbed's own gathering code, so results have the same
//!   schema and make the same figures; the run record goes beside them (`orchestrator.json`).
//! * [`dryrun::dry_run`] shows what a plan's first point would deploy and launch.
//!
//! ## Known limitation: the NIC role on a real BlueField-2
//!
//! The NIC role is the emulated-NIC process of the local testbed: it maps the host's regions from
//! the host's `/dev/shm` files. That works when the NIC machine *is* the host machine (as in this
//! crate's tests, where three sshd instances on one box play the three machines); on a real
//! BlueField-2 the Arm cores cannot map the host's `/dev/shm`, and the NIC role needs the `rdma`
//! backend of naam-net (feature `rdma`) to reach host memory — not wired here yet. Likewise, the
//! NIC workers bind the ports the host's user-space eSwitch forwards to, on the host's LAN
//! address, which only the host machine has; on a BlueField-2 that forwarding is the card's own
//! eSwitch. So today a run on real machines measures the NIC role correctly only when the
//! inventory puts it on the host machine (`roles = ["host", "nic"]`).
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
pub mod executor;
pub mod experiment;
pub mod inventory;
pub mod limits;
pub mod process;
pub mod retry;
pub mod run;
pub mod ssh;
pub mod telemetry;

pub use command::{CommandError, RemoteCommand, ShellLine, ShellWord, shell_quote};
pub use dryrun::dry_run;
pub use executor::{OrchestratorExecutor, OrchestratorOptions};
pub use inventory::{Arch, HostSpec, Inventory, InventoryError, Role};
pub use ssh::{ConnectOptions, Connection, SshError};
