//! Analysis and figures: from a run folder to parquet/CSV frames to PNG/SVG figures.
//!
//! # Design
//!
//! - [`analyze`]: reads a run folder (plan, provenance, per-point summaries and raw files) and
//!   builds polars DataFrames with a documented, stable schema ([`schema`],
//!   experiments/SCHEMA.md): `run`, `points`, `intervals`, `steering`, `samples`, `vmcost`,
//!   `events`. Histograms are merged by adding; percentiles carry order-statistic confidence
//!   intervals ([`stats`]).
//! - [`export`]: one exporter per file format (parquet, CSV) behind one trait returning bytes.
//! - [`figures`]: reads the parquet files back — figures come from them alone —, aggregates
//!   repetitions (median with a distribution-free CI), and draws PNG and SVG with plotters and
//!   an embedded DejaVu Sans font. Every figure's footnote names the testbed, the machine, the
//!   run, whether the NIC was emulated and whether the data is synthetic.
//! - [`report`]: one self-contained HTML page for a results folder (claims beside the measured
//!   values, every figure embedded, validity, provenance, the commands that regenerate them).
//!
//! polars lives only here (minimal features: parquet, csv; no `lazy`), so the role processes,
//! runner and orchestrator stay lean. This crate knows nothing of how points are executed.

pub mod analyze;
pub mod error;
pub mod expect;
pub mod export;
pub mod figures;
pub mod frame;
pub mod report;
pub mod schema;
pub mod stats;

pub use analyze::{AnalyzeReport, analyze_run, build_frames};
pub use error::AnalysisError;
pub use figures::{
    FigureData, FigureReport, PlotReport, figure_data, plot_all, plot_run, select_run,
};

/// The figures folder, relative to the workspace root.
pub const FIGURES_DIR: &str = "figures";
