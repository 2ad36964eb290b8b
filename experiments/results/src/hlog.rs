//! HdrHistogram interval logs (`.hlog`): the results store's side of the one implementation in
//! `naam_loadgen::hlog` (writer, reader, Java's layout), plus bounded reading from a point
//! folder.
//!
//! # The contract for `client-<k>.hlog`
//!
//! ```text
//! #[naam client 0 (latency ns from the intended send; tag = where it ran)]
//! #[Histogram log format version 1.3]
//! #[StartTime: 1757412000.123 (seconds since epoch), 2025-09-09T10:00:00.123Z]
//! #[BaseTime: 1757412000.123 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=host,0.000,0.100,0.734,HISTFAAAA...
//! ```
//!
//! - Values are latencies in **nanoseconds**, measured from each request's *intended* send
//!   time (coordinated omission), 3 significant digits.
//! - StartTime = BaseTime = the start of the measured phase (warm-up is not in the log), so
//!   interval timestamps are seconds since measure start.
//! - One histogram per interval per tag; the tag is the location that executed the request
//!   (`host`, `nic`, `client`). An interval with no completions at a tag may be omitted.
//! - The max column is in milliseconds (max ns / 10^6), as Java's default "max value unit
//!   ratio" writes it; readers must not use it for anything but display.
//! - Histograms are V2 + DEFLATE (`HISTF...` after base64), the form every reader accepts.

use std::path::Path;

pub use naam_loadgen::hlog::{HlogWriter, INTERVALS_MAX, Interval, LEGEND, read_hlog};
pub use naam_loadgen::recorder::{SIGNIFICANT_DIGITS, new_histogram};
pub use naam_loadgen::{HlogError, TagSet};

use crate::error::ResultsError;

/// Largest `.hlog` read.
pub const HLOG_BYTES_MAX: u64 = 1 << 30;

/// Reads every interval of the log at `path` (at most [`HLOG_BYTES_MAX`] bytes), with starts
/// since its StartTime.
pub fn read_interval_log(path: &Path) -> Result<Vec<Interval>, ResultsError> {
    let bytes = crate::raw::read_bounded_with(path, "client interval log", HLOG_BYTES_MAX)?;
    let log = read_hlog(&bytes).map_err(|error| {
        let location = match &error {
            HlogError::Parse { line, .. } => format!("line {line}"),
            HlogError::Decode { entry, .. } => format!("interval {entry}"),
            HlogError::Write { .. } | HlogError::Encode { .. } => String::new(),
        };
        ResultsError::Hlog {
            path: path.to_path_buf(),
            location,
            problem: error.to_string(),
        }
    })?;
    Ok(log.intervals)
}
