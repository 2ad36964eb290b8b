//! # naam-executors — the point executors: a plan point run on a testbed
//!
//! The local testbed ([`LocalExecutor`]) runs a point of an experiment plan with real role
//! processes (`naam-role`, from naam-roles) on one machine: the server host, the emulated NIC, the clients and, for load-shift
//! points, a CPU hog. By default everything talks over loopback; with network namespaces (root)
//! the server machine and the clients each get a namespace joined by veth, optionally with netem
//! delay. Every process is tracked by PID, its output kept in a log, and stopped by PID.
//!
//! A point is its launch plan ([`launches`]: one `naam-role` launch per role configuration from
//! [`configs`]) run by naam-launch's sequence over its local transport: host (loads its dataset,
//! writes its ready file) → NIC (maps the host's regions) → clients, each group ready before the
//! next → a common start time a little in the future, published to every role → warm-up and
//! measured phase → clients exit, the hog ends → host and NIC are stopped (SIGTERM) and write
//! their counters → the raw files are gathered into the point's folder in the schema of
//! `naam_results::raw` ([`point::gather_raw`], shared with the orchestrator).
//!
//! Emulation, stated plainly: no BlueField-2 and no RNIC are involved; the NIC is a process with
//! a DMA delay and a core-speed factor, one-sided reads are served by a host thread.
//!
//! The vm-cost experiment has no traffic: [`vmcost`] times the functions in process.
//!
//! The simulation testbed ([`SimExecutor`], [`sim`]) runs the same points with naam-sim: the
//! production engine on a virtual clock, time modelled by a cost profile, points in parallel.

pub mod configs;
pub mod executor;
pub mod inventory;
pub mod launches;
pub mod orchestrated;
pub mod point;
pub mod sim;
mod sim_pool;
pub mod sweep;
pub mod vmcost;

use std::path::{Path, PathBuf};

pub use executor::{LocalExecutor, LocalOptions};
pub use inventory::dry_run;
pub use naam_launch::role_binary;
pub use orchestrated::{OrchestratorExecutor, OrchestratorOptions};
pub use sim::SimExecutor;

/// Why a point could not run on the local or the simulation testbed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// The plan asks for something this testbed does not do.
    #[error("not supported on this testbed: {0}")]
    Unsupported(String),
    /// Starting, waiting for or stopping a role process.
    #[error(transparent)]
    Launch(#[from] naam_launch::LaunchError),
    /// The point's launch sequence did not complete: what went wrong, and the roles' logs.
    #[error("{message}")]
    Run {
        /// The run's status, error, problems per launch and the ends of their logs.
        message: String,
    },
    /// A role's output is missing or unreadable.
    #[error("raw file {}: {message}", path.display())]
    Output {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file operation.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl TestbedError {
    /// The runner's view: what this testbed cannot do, what stops the whole run (a network
    /// namespace that cannot be set up will not work for the next point either), and what only
    /// fails this point.
    pub fn into_exec_error(self, executor: String) -> naam_runner::ExecError {
        use naam_runner::ExecError;
        match self {
            TestbedError::Unsupported(what) => ExecError::Unsupported { executor, what },
            TestbedError::Launch(naam_launch::LaunchError::Netns(message)) => {
                ExecError::Aborted { message }
            }
            other => ExecError::PointFailed {
                message: other.to_string(),
            },
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, what: &'static str, source: std::io::Error) -> TestbedError {
        TestbedError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
