//! Errors at the analysis boundary.

use std::path::PathBuf;

use naam_results::ResultsError;
use polars::error::PolarsError;

/// Everything that can go wrong analysing runs or drawing figures.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// Reading the run folder failed.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// polars refused to build, write or read a frame.
    #[error("polars: {what}: {source}")]
    Polars {
        /// What was being done.
        what: String,
        /// polars' error.
        source: PolarsError,
    },
    /// A frame does not match its documented schema.
    #[error("frame `{frame}`, column `{column}`: {problem}")]
    Schema {
        /// Frame name.
        frame: String,
        /// Column name.
        column: String,
        /// What is wrong.
        problem: String,
    },
    /// A stored histogram in a summary does not decode.
    #[error("{point}: stored histogram does not decode: {problem}")]
    Histogram {
        /// Point id.
        point: String,
        /// The decoder's words.
        problem: String,
    },
    /// No run of the experiment exists to analyse or plot.
    #[error("no run of `{experiment}` under {}; run `naam run experiments/{experiment}.toml` first", results_root.display())]
    NoRun {
        /// Experiment id.
        experiment: String,
        /// Where runs were looked for.
        results_root: PathBuf,
    },
    /// The results folder to report on does not exist.
    #[error("no results folder at {}: run `naam reproduce --quick` first, or name the folder", results_root.display())]
    NoResults {
        /// The folder asked for.
        results_root: PathBuf,
    },
    /// A figure could not be drawn or written.
    #[error("{}: cannot draw the figure: {message}", path.display())]
    Plot {
        /// The figure file.
        path: PathBuf,
        /// plotters' words.
        message: String,
    },
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}
