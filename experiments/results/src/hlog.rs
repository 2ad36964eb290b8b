//! HdrHistogram interval logs (`.hlog`) as Java's `HistogramLogWriter` writes them, readable
//! by the Java, C, Python (`hdrh`) and Rust implementations.
//!
//! # The contract for `client-<k>.hlog`
//!
//! ```text
//! #[Histogram log format version 1.3]
//! #[StartTime: 1757412000.123 (seconds since epoch), 2025-09-09T10:00:00.123Z]
//! #[BaseTime: 1757412000.123 (seconds since epoch)]
//! #[MaxValueDivisor: 1000000.000]
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

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::error::ResultsError;

/// Significant decimal digits of every latency histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Divisor of the max column: ns → ms, as Java's default writes it.
pub const MAX_VALUE_DIVISOR: f64 = 1e6;
/// Largest `.hlog` read.
pub const HLOG_BYTES_MAX: u64 = 1 << 30;
/// Most intervals read from one log.
pub const HLOG_INTERVALS_MAX: usize = 1_000_000;
/// Java's legend line.
pub const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// A new empty latency histogram (auto-resizing, [`SIGNIFICANT_DIGITS`]).
pub fn new_histogram() -> Histogram<u64> {
    // 3 significant digits is within the crate's 0..=5 range, so this cannot fail.
    let mut h =
        Histogram::<u64>::new(SIGNIFICANT_DIGITS).unwrap_or_else(|_| unreachable!("3 sigfigs"));
    h.auto(true);
    h
}

/// One interval histogram of a log.
#[derive(Debug, Clone)]
pub struct Interval {
    /// The tag (`host`, `nic`, `client`), if the line had one.
    pub tag: Option<String>,
    /// Start, from the log's StartTime (measure start).
    pub start: Duration,
    /// Length of the interval.
    pub length: Duration,
    /// The latencies (ns).
    pub histogram: Histogram<u64>,
}

/// Writes an interval log in Java's format to `out`.
pub struct HlogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    buffer: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for HlogWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlogWriter").finish_non_exhaustive()
    }
}

impl<W: Write> HlogWriter<W> {
    /// Writes the header; `measure_start_unix` is the measure start since the Unix epoch.
    pub fn new(mut out: W, measure_start_unix: Duration) -> io::Result<Self> {
        let seconds = measure_start_unix.as_secs_f64();
        writeln!(out, "#[Histogram log format version 1.3]")?;
        writeln!(
            out,
            "#[StartTime: {seconds:.3} (seconds since epoch), {}]",
            crate::time::rfc3339(measure_start_unix)
        )?;
        writeln!(out, "#[BaseTime: {seconds:.3} (seconds since epoch)]")?;
        writeln!(out, "#[MaxValueDivisor: {MAX_VALUE_DIVISOR:.3}]")?;
        writeln!(out, "{LEGEND}")?;
        Ok(HlogWriter {
            out,
            serializer: V2DeflateSerializer::new(),
            buffer: Vec::new(),
        })
    }

    /// Appends one interval histogram; `start` is since measure start.
    pub fn write(
        &mut self,
        tag: &str,
        start: Duration,
        length: Duration,
        histogram: &Histogram<u64>,
    ) -> io::Result<()> {
        let tag_ok = !tag.is_empty() && !tag.contains([',', ' ', '\n', '\r']);
        if !tag_ok {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad hlog tag {tag:?}"),
            ));
        }
        self.buffer.clear();
        self.serializer
            .serialize(histogram, &mut self.buffer)
            .map_err(|e| io::Error::other(format!("histogram serialization: {e:?}")))?;
        let max_ms = histogram.max() as f64 / MAX_VALUE_DIVISOR;
        let encoded = BASE64.encode(&self.buffer);
        writeln!(
            self.out,
            "Tag={tag},{:.3},{:.3},{max_ms:.3},{encoded}",
            start.as_secs_f64(),
            length.as_secs_f64()
        )
    }

    /// Flushes and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads every interval of the log at `path`, with times relative to its StartTime.
pub fn read_interval_log(path: &Path) -> Result<Vec<Interval>, ResultsError> {
    let bytes = crate::raw::read_bounded_with(path, "client interval log", HLOG_BYTES_MAX)?;
    parse_interval_log(&bytes).map_err(|(location, problem)| ResultsError::Hlog {
        path: path.to_path_buf(),
        location,
        problem,
    })
}

/// Parses a log; errors are `(location, problem)`.
pub fn parse_interval_log(bytes: &[u8]) -> Result<Vec<Interval>, (String, String)> {
    let mut start_time: Option<Duration> = None;
    let mut base_time: Option<Duration> = None;
    let mut out = Vec::new();
    let mut first_absolute: Option<Duration> = None;
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry =
            entry.map_err(|e| (format!("{e:?}"), "not an interval-log line".to_string()))?;
        match entry {
            LogEntry::StartTime(t) => start_time = Some(t),
            LogEntry::BaseTime(t) => base_time = Some(t),
            LogEntry::Interval(ilh) => {
                if out.len() >= HLOG_INTERVALS_MAX {
                    return Err((
                        format!("interval {}", out.len()),
                        format!("more than {HLOG_INTERVALS_MAX} intervals"),
                    ));
                }
                let location = format!("interval {}", out.len());
                let decoded = BASE64
                    .decode(ilh.encoded_histogram())
                    .map_err(|e| (location.clone(), format!("base64: {e}")))?;
                let histogram: Histogram<u64> =
                    deserializer
                        .deserialize(&mut decoded.as_slice())
                        .map_err(|e| (location.clone(), format!("histogram: {e:?}")))?;
                let absolute = absolute_start(ilh.start_timestamp(), start_time, base_time);
                let origin = *first_absolute.get_or_insert(absolute);
                let start = absolute.saturating_sub(start_time.unwrap_or(origin));
                out.push(Interval {
                    tag: ilh.tag().map(|t| t.as_str().to_string()),
                    start,
                    length: ilh.duration(),
                    histogram,
                });
            }
        }
    }
    Ok(out)
}

/// One year: Java's threshold for telling delta timestamps from absolute ones.
const DELTA_HEURISTIC: Duration = Duration::from_secs(365 * 24 * 3600);

/// The interval's start since the epoch, following Java's `HistogramLogReader`: timestamps are
/// deltas from BaseTime when present, else deltas from StartTime when they are more than a
/// year smaller than it, else absolute.
fn absolute_start(ts: Duration, start: Option<Duration>, base: Option<Duration>) -> Duration {
    let base = match (base, start) {
        (Some(b), _) => b,
        (None, Some(s)) if ts + DELTA_HEURISTIC < s => s,
        _ => Duration::ZERO,
    };
    base + ts
}

/// Writes a whole log to `path` (not atomic: the runner seals the point folder afterwards).
pub fn write_interval_log(
    path: &Path,
    measure_start_unix: Duration,
    intervals: &[Interval],
) -> Result<(), ResultsError> {
    let mut writer = HlogWriter::new(Vec::new(), measure_start_unix)
        .map_err(ResultsError::io(path, "encode"))?;
    for i in intervals {
        let tag = i.tag.as_deref().unwrap_or("untagged");
        writer
            .write(tag, i.start, i.length, &i.histogram)
            .map_err(ResultsError::io(path, "encode"))?;
    }
    let bytes = writer.finish().map_err(ResultsError::io(path, "encode"))?;
    fs::write(path, bytes).map_err(ResultsError::io(path, "write"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for &v in values {
            h.record(v)
                .expect("auto-resizing histogram records any u64");
        }
        h
    }

    #[test]
    fn written_logs_read_back_with_tags_times_and_counts() {
        let start = Duration::from_millis(1_757_412_000_123);
        let mut w = HlogWriter::new(Vec::new(), start).expect("header");
        w.write(
            "host",
            Duration::ZERO,
            Duration::from_millis(100),
            &histogram(&[1_000, 2_000, 3_000]),
        )
        .expect("write");
        w.write(
            "nic",
            Duration::from_millis(100),
            Duration::from_millis(100),
            &histogram(&[50_000]),
        )
        .expect("write");
        let bytes = w.finish().expect("flush");
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert!(
            text.contains(
                "#[StartTime: 1757412000.123 (seconds since epoch), 2025-09-09T10:00:00.123Z]"
            ),
            "{text}"
        );
        assert!(
            text.lines()
                .nth(5)
                .expect("first interval")
                .starts_with("Tag=host,0.000,0.100,0.003,HISTF"),
            "{text}"
        );
        let intervals = parse_interval_log(&bytes).expect("parse");
        assert_eq!(intervals.len(), 2);
        assert_eq!(intervals[0].tag.as_deref(), Some("host"));
        assert_eq!(intervals[0].histogram.len(), 3);
        assert_eq!(intervals[1].start, Duration::from_millis(100));
        assert_eq!(
            intervals[1].histogram.max(),
            intervals[1].histogram.highest_equivalent(50_000)
        );
    }

    #[test]
    fn bad_tags_and_garbage_are_errors() {
        let mut w = HlogWriter::new(Vec::new(), Duration::ZERO).expect("header");
        assert!(
            w.write("a,b", Duration::ZERO, Duration::ZERO, &new_histogram())
                .is_err()
        );
        assert!(parse_interval_log(b"Tag=host,0.000,0.100,1.0,notbase64!\n").is_err());
        assert!(parse_interval_log(b"\x00\x01garbage").is_err());
    }

    #[test]
    fn timestamps_without_base_time_are_relative_to_the_first_interval() {
        let mut h = new_histogram();
        h.record(5).expect("record");
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&h, &mut buf)
            .expect("serialize");
        let b64 = BASE64.encode(&buf);
        let text = format!("1757412000.500,0.100,0.000,{b64}\n1757412000.600,0.100,0.000,{b64}\n");
        let intervals = parse_interval_log(text.as_bytes()).expect("parse");
        assert_eq!(intervals[0].start, Duration::ZERO);
        assert_eq!(intervals[1].start.as_millis(), 100);
    }
}
