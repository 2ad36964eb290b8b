//! # naam-testbed — the local testbed
//!
//! Runs a point of an experiment plan with real role processes (`naam-role`, this crate's
//! binary) on one machine: the server host, the emulated NIC, the clients and, for load-shift
//! points, a CPU hog. By default everything talks over loopback; with network namespaces (root)
//! the server machine and the clients each get a namespace joined by veth, optionally with netem
//! delay. Every process is tracked by PID, its output kept in a log, and stopped by PID.
//!
//! A point runs in this order: host (loads its dataset, writes its ready file) → NIC (maps the
//! host's regions) → a common start time a little in the future, written to the servers'
//! timeline file and given to clients and the hog → clients run warm-up and measured phase and
//! exit → the hog ends → host and NIC are stopped (SIGTERM) and write their counters → the raw
//! files are gathered into the point's folder in the schema of `naam_results::raw`.
//!
//! Emulation, stated plainly: no BlueField-2 and no RNIC are involved; the NIC is a process with
//! a DMA delay and a core-speed factor, one-sided reads are served by a host thread.

pub mod configs;
pub mod executor;
pub mod netns;
pub mod point;
pub mod procs;
pub mod shift;
pub mod vmcost;

use std::path::{Path, PathBuf};

pub use executor::{LocalExecutor, LocalOptions};

/// Why a point could not run on the local testbed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// The plan asks for something this testbed does not do.
    #[error("not supported on the local testbed: {0}")]
    Unsupported(String),
    /// A role process could not be started.
    #[error("cannot start {role}: {message}")]
    Spawn {
        /// The role.
        role: String,
        /// Why.
        message: String,
    },
    /// A role exited with an error.
    #[error("{role} exited with {status}; its log ends with:\n{log_tail}")]
    RoleFailed {
        /// The role.
        role: String,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// A role did not get ready (or finish) in time.
    #[error("{role} not ready after {waited_ms} ms; its log ends with:\n{log_tail}")]
    NotReady {
        /// The role.
        role: String,
        /// How long we waited.
        waited_ms: u64,
        /// The end of its log.
        log_tail: String,
    },
    /// Network namespaces.
    #[error("network namespaces: {0}")]
    Netns(String),
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
    /// An I/O error on `path`.
    pub fn io(path: &Path, what: &'static str, source: std::io::Error) -> TestbedError {
        TestbedError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The `naam-role` binary next to the running executable (both are built into the same target
/// folder), or the one `NAAM_ROLE_BIN` names.
pub fn role_binary() -> Result<PathBuf, TestbedError> {
    if let Some(path) = std::env::var_os("NAAM_ROLE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| TestbedError::Spawn {
        role: "naam-role".into(),
        message: e.to_string(),
    })?;
    let dir = exe.parent().ok_or_else(|| TestbedError::Spawn {
        role: "naam-role".into(),
        message: "no executable folder".into(),
    })?;
    // Test executables live one level down, in deps/.
    for candidate in [dir.join("naam-role"), dir.join("../naam-role")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(TestbedError::Spawn {
        role: "naam-role".into(),
        message: format!(
            "no naam-role binary beside {} (build it: cargo build -p naam-testbed --bin naam-role, or set NAAM_ROLE_BIN)",
            exe.display()
        ),
    })
}
