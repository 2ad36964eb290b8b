//! The orchestrator over SSH: the transport of naam-launch's launch sequence for real machines —
//! client machines, a server host and its BlueField-2 SmartNIC, e.g. a CloudLab experiment.
//!
//! It turns an [`inventory::Inventory`] (who takes part, how to reach them) and a list of
//! [`run::LaunchSpec`]s (what to run where; naam-executors makes them from a plan's point) into
//! a run on real machines, over SSH only, and knows nothing of experiments, the engine or the VM:
//!
//! * [`inventory`] parses and validates the TOML hosts file; [`cloudlab`] imports one from the
//!   manifest RSpec of a running CloudLab experiment.
//! * [`ssh`] holds one authenticated session per host (libssh2), with host keys checked against
//!   the inventory's known_hosts file (unknown or changed keys are refused), timeouts on every
//!   blocking call and bounded retries with backoff ([`retry`]) for network failures.
//! * [`command`] (naam-launch's) is the only way a remote shell line is built: every argument
//!   is quoted, and the only unquoted text is operator text written in the source.
//! * [`process`] starts role processes in the background, tracks them by PID (and start time),
//!   and stops them by PID: SIGTERM, a bounded wait, SIGKILL.
//! * [`deploy`] uploads artifacts over SFTP, idempotently: SHA-256 on both sides, skip when equal,
//!   upload to a temporary name, verify, rename atomically. A target whose architecture has no
//!   local build gets a source bundle (`git archive`) and builds it with cargo.
//! * [`transport`] is the launch sequence's SSH transport: clock offsets measured, refused
//!   beyond named bounds and otherwise shifted for, so each machine gets the common start in its
//!   own clock; inputs relayed and outputs collected with checksums ([`collect`]); CPU time
//!   (`/proc/stat`) and clock offsets recorded per host ([`telemetry`]).
//! * [`run`] runs the sequence over it — deploy → start → warm-up → measure → collect →
//!   teardown, Ctrl-C and failures tearing down ([`cancel`]) — and resumes a partial run from
//!   its record.
//! * [`dryrun`] renders what a run would do without connecting: the sequence's recording.
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

pub mod cloudlab;
pub mod collect;
pub mod deploy;
pub mod dryrun;
pub mod inventory;
pub mod limits;
pub mod process;
pub mod retry;
pub mod run;
pub mod ssh;
pub mod telemetry;
pub mod transport;

/// Cancellation by Ctrl-C or SIGTERM (naam-launch's).
pub use naam_launch::cancel;
/// Remote commands as quoted words (naam-launch's).
pub use naam_launch::command;

pub use command::{CommandError, RemoteCommand, ShellLine, ShellWord, shell_quote};
pub use inventory::{Arch, Bluefield, HostSpec, Inventory, InventoryError, Role};
pub use ssh::{ConnectOptions, Connection, SshError};
