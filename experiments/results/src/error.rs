//! Errors at the results-store boundary.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading or writing results.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file or folder could not be read, written, synced or renamed.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done (`write`, `rename`, `read`, ...).
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// A JSON file does not match its schema (see experiments/SCHEMA.md).
    #[error("{}: not a valid {what}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Which schema it should follow (`client summary`, `run state`, ...).
        what: &'static str,
        /// serde_json's description, with line and column.
        source: serde_json::Error,
    },
    /// A JSON-lines file has a bad line.
    #[error("{}:{line}: not a valid {what}: {source}", path.display())]
    JsonLine {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The record type.
        what: &'static str,
        /// serde_json's description.
        source: serde_json::Error,
    },
    /// An interval log (`.hlog`) could not be parsed or a histogram in it decoded.
    #[error("{}: bad interval log at {location}: {problem}", path.display())]
    Hlog {
        /// The file.
        path: PathBuf,
        /// Byte offset or interval number.
        location: String,
        /// What is wrong.
        problem: String,
    },
    /// A file the schema requires is absent.
    #[error("{}: missing: {why}", path.display())]
    MissingFile {
        /// The file that should exist.
        path: PathBuf,
        /// Who should have written it.
        why: String,
    },
    /// A run folder exists but was made for another configuration.
    #[error("{}: holds a run of configuration {recorded}, not {current}; use a fresh run id", path.display())]
    ConfigMismatch {
        /// The run folder.
        path: PathBuf,
        /// Hash in its plan.json.
        recorded: String,
        /// Hash of the plan being run.
        current: String,
    },
    /// A file is larger than its bound.
    #[error("{}: {bytes} bytes, more than the {limit_bytes} bytes a {what} may have", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The bound.
        limit_bytes: u64,
        /// The file's role.
        what: &'static str,
    },
}

impl ResultsError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
    ) -> impl FnOnce(io::Error) -> ResultsError {
        let path = path.into();
        move |source| ResultsError::Io {
            path,
            action,
            source,
        }
    }
}
