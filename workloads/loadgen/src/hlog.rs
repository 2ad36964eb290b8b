//! The HdrHistogram interval log (`.hlog`), written as Java's `HistogramLogWriter` writes it:
//!
//! ```text
//! #[<comment>]                                  (optional, any number)
//! #[Histogram log format version 1.3]
//! #[StartTime: 1700000000.000 (seconds since epoch), 2023-11-14T22:13:20.000Z]
//! #[BaseTime: 1700000000.000 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=host,0.000,1.000,0.123,HISTFAAAA…          (one line per tag per interval)
//! ```
//!
//! Interval start timestamps are seconds since `BaseTime` (the run start); the histogram is
//! HdrHistogram's V2 encoding, DEFLATE-compressed, base64 — the only form Python's `hdrh` reads.
//! **Units:** recorded values are nanoseconds; the `Interval_Max` column is the interval's maximum
//! divided by [`MAX_VALUE_UNIT_RATIO`] = 10^6, i.e. milliseconds, exactly as Java's writer does
//! with its default ratio for nanosecond histograms. Readers that decode the payload (Java's
//! `HistogramLogReader`, Python's `hdrh`, the Rust crate) see nanoseconds.

use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::error::HlogError;
use crate::recorder::IntervalHistogram;
use crate::tag::TagSet;

/// The divisor of the `Interval_Max` column: ns → ms (Java's default `maxValueUnitRatio`).
pub const MAX_VALUE_UNIT_RATIO: f64 = 1e6;
/// The format version line Java's writer emits.
pub const LOG_FORMAT_VERSION: &str = "1.3";
/// The legend line.
pub const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";
/// Most interval entries a reader accepts.
pub const ENTRIES_MAX: usize = 1 << 24;

const NS_PER_S: f64 = 1e9;

/// Writes an interval log.
pub struct HlogWriter<W: Write> {
    out: W,
    tags: TagSet,
    serializer: V2DeflateSerializer,
    payload: Vec<u8>,
    line: String,
}

impl<W: Write> std::fmt::Debug for HlogWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlogWriter")
            .field("tags", &self.tags)
            .finish_non_exhaustive()
    }
}

impl<W: Write> HlogWriter<W> {
    /// Writes the header: `comments` (one `#[…]` line each), the format version, StartTime and
    /// BaseTime (both the run start, `start_ms` since the Unix epoch), and the legend.
    pub fn new(
        mut out: W,
        tags: TagSet,
        start_ms: u64,
        comments: &[&str],
    ) -> Result<Self, HlogError> {
        let mut header = String::new();
        for comment in comments {
            for line in comment.lines() {
                let _ = writeln!(header, "#[{line}]");
            }
        }
        let seconds = format_seconds(start_ms);
        let _ = writeln!(
            header,
            "#[Histogram log format version {LOG_FORMAT_VERSION}]"
        );
        let _ = writeln!(
            header,
            "#[StartTime: {seconds} (seconds since epoch), {}]",
            iso8601_utc(start_ms)
        );
        let _ = writeln!(header, "#[BaseTime: {seconds} (seconds since epoch)]");
        let _ = writeln!(header, "{LEGEND}");
        out.write_all(header.as_bytes())
            .map_err(|source| HlogError::Write { source })?;
        Ok(Self {
            out,
            tags,
            serializer: V2DeflateSerializer::new(),
            payload: Vec::new(),
            line: String::new(),
        })
    }

    /// Writes one interval line, `Tag=<name>,<start s>,<length s>,<max ms>,<histogram>`.
    pub fn write_interval(&mut self, interval: &IntervalHistogram) -> Result<(), HlogError> {
        let tag = self
            .tags
            .name(interval.tag)
            .ok_or_else(|| HlogError::Encode {
                interval_start_ns: interval.start_ns,
                detail: format!("tag id {} is not in the writer's tag set", interval.tag.0),
            })?;
        self.payload.clear();
        self.serializer
            .serialize(&interval.histogram, &mut self.payload)
            .map_err(|e| HlogError::Encode {
                interval_start_ns: interval.start_ns,
                detail: format!("{e:?}"),
            })?;
        self.line.clear();
        let _ = write!(
            self.line,
            "Tag={tag},{:.3},{:.3},{:.3},",
            interval.start_ns as f64 / NS_PER_S,
            interval.length_ns as f64 / NS_PER_S,
            interval.histogram.max() as f64 / MAX_VALUE_UNIT_RATIO,
        );
        STANDARD.encode_string(&self.payload, &mut self.line);
        self.line.push('\n');
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|source| HlogError::Write { source })
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> Result<W, HlogError> {
        self.out
            .flush()
            .map_err(|source| HlogError::Write { source })?;
        Ok(self.out)
    }
}

/// One interval read back.
#[derive(Debug, Clone)]
pub struct HlogEntry {
    /// The `Tag=` value, if any.
    pub tag: Option<String>,
    /// Start, seconds since BaseTime.
    pub start_s: f64,
    /// Length, seconds.
    pub length_s: f64,
    /// The `Interval_Max` column as written (ms for our logs).
    pub max_column: f64,
    /// The decoded histogram (ns for our logs).
    pub histogram: Histogram<u64>,
}

/// An interval log read back.
#[derive(Debug, Clone, Default)]
pub struct Hlog {
    /// `#[StartTime: …]`, seconds since the epoch.
    pub start_time_s: Option<f64>,
    /// `#[BaseTime: …]`, seconds since the epoch.
    pub base_time_s: Option<f64>,
    /// Interval entries in file order.
    pub entries: Vec<HlogEntry>,
}

/// Parses an interval log (any writer's: Java's, Python's, this crate's).
pub fn read_hlog(text: &str) -> Result<Hlog, HlogError> {
    let mut log = Hlog::default();
    let mut deserializer = Deserializer::new();
    for item in IntervalLogIterator::new(text.as_bytes()) {
        let entry = item.map_err(|e| HlogError::Parse {
            line: line_of(text, &e),
            detail: format!("{e:?}"),
        })?;
        match entry {
            LogEntry::StartTime(d) => log.start_time_s = Some(d.as_secs_f64()),
            LogEntry::BaseTime(d) => log.base_time_s = Some(d.as_secs_f64()),
            LogEntry::Interval(interval) => {
                let index = log.entries.len();
                if index >= ENTRIES_MAX {
                    return Err(HlogError::Parse {
                        line: 0,
                        detail: format!("more than {ENTRIES_MAX} intervals"),
                    });
                }
                let decode = |detail: String| HlogError::Decode {
                    entry: index,
                    detail,
                };
                let bytes = STANDARD
                    .decode(interval.encoded_histogram())
                    .map_err(|e| decode(format!("base64: {e}")))?;
                let histogram: Histogram<u64> = deserializer
                    .deserialize(&mut bytes.as_slice())
                    .map_err(|e| decode(format!("{e:?}")))?;
                log.entries.push(HlogEntry {
                    tag: interval.tag().map(|t| t.as_str().to_owned()),
                    start_s: seconds(interval.start_timestamp()),
                    length_s: seconds(interval.duration()),
                    max_column: interval.max(),
                    histogram,
                });
            }
        }
    }
    Ok(log)
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The 1-based line of a parse error's byte offset.
fn line_of(
    text: &str,
    error: &hdrhistogram::serialization::interval_log::LogIteratorError,
) -> usize {
    let hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } = error;
    let offset = (*offset).min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `ms` as seconds with three decimals, e.g. `1700000000.123`.
fn format_seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `ms` since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
fn iso8601_utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_utc() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_seconds(1_700_000_000_123), "1700000000.123");
    }
}
