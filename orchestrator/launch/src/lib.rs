//! # naam-launch — starting NAAM role processes
//!
//! What every launcher of `naam-role` processes shares, whatever the role computes: local
//! processes tracked by PID with their output in a log and stopped by PID ([`procs`]), network
//! namespaces joined by veth for the server machine and the clients ([`netns`], root), and where
//! the `naam-role` binary is, or how to build it ([`binary`]).
//!
//! This crate knows nothing of the engine, the VM or experiment plans: a role is a program with
//! arguments, a folder and a log.

pub mod binary;
pub mod netns;
pub mod procs;

pub use binary::{build_role_binary, role_binary};

use std::path::{Path, PathBuf};

/// Why a role process could not be launched, waited for or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
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

impl LaunchError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, what: &'static str, source: std::io::Error) -> LaunchError {
        LaunchError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
