//! # naam-launch — one launch sequence over transports
//!
//! Starting the role processes of a point is written once, as data and one sequence:
//!
//! - [`plan`]: the launch plan — what to start where ([`plan::LaunchSpec`]: machine, role,
//!   command, input files, readiness check, how it ends, outputs), validated and put in start
//!   order;
//! - [`sequence`]: the choreography every run follows — deploy → start (host group, NIC group,
//!   clients; readiness before the next group; a common start time published as each machine's
//!   `timeline.json`) → warm-up → measure → collect → teardown — with lost machines, early exits
//!   and Ctrl-C ([`cancel`]) handled the same way everywhere, and a [`record::RunRecord`] of it;
//! - [`transport`]: the seam it runs over; [`local`] runs processes on this machine (in network
//!   namespaces, [`netns`], when asked), [`recording`] writes down what the sequence asks for
//!   (the dry run, and the sequence's tests), naam-ssh implements it over SSH;
//! - [`command`]: commands as quoted words (the only way a shell line is built), and where the
//!   `naam-role` binary is ([`binary`]).
//!
//! This crate knows nothing of the engine, the VM or experiment plans: a role is a program, its
//! input files, a folder and its outputs. Role processes run in process groups of their own and
//! are stopped by signalling the group (SIGTERM, then SIGKILL after a grace period).

pub mod binary;
pub mod cancel;
pub mod command;
pub mod local;
pub mod netns;
pub mod plan;
pub mod record;
pub mod recording;
pub mod sequence;
pub mod transport;

pub use binary::{build_role_binary, role_binary};
pub use cancel::Cancel;
pub use command::{CommandError, RemoteCommand, ShellLine, ShellWord, shell_quote};
pub use plan::{Ends, LaunchInput, LaunchSpec, Readiness, Role};
pub use record::{RunRecord, RunStatus};
pub use transport::Transport;

use std::path::{Path, PathBuf};

/// Why the role binary could not be found or built, or network namespaces could not be set up.
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
