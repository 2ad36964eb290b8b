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
//!
//! This is the harness's one `.hlog` implementation: the client role and the simulator write
//! with it, the results store and the analysis read with it (through `naam_results::hlog`).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::{Compress, Compression, FlushCompress};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

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
/// Most interval entries a reader accepts (a 100 ms interval, three tags: ~9.7 hours).
pub const INTERVALS_MAX: usize = 1 << 20;

/// One year: Java's `HistogramLogReader` threshold for telling timestamps relative to StartTime
/// from absolute ones when a log has no BaseTime.
const DELTA_HEURISTIC: Duration = Duration::from_secs(365 * 24 * 3600);

/// Writes an interval log.
pub struct HlogWriter<W: Write> {
    out: W,
    tags: TagSet,
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
    /// BaseTime (both `start_unix`, the log's origin since the Unix epoch, to the millisecond),
    /// and the legend. Lines may carry only tags of `tags`.
    pub fn new(
        mut out: W,
        tags: TagSet,
        start_unix: Duration,
        comments: &[&str],
    ) -> Result<Self, HlogError> {
        let start_ms = u64::try_from(start_unix.as_millis()).unwrap_or(u64::MAX);
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
            payload: Vec::new(),
            line: String::new(),
        })
    }

    /// Writes a recorder's interval (its tag id named by the writer's tag set).
    pub fn write_interval(&mut self, interval: &IntervalHistogram) -> Result<(), HlogError> {
        let start = Duration::from_nanos(interval.start_ns);
        let Some(tag) = self.tags.name(interval.tag) else {
            return Err(HlogError::Encode {
                interval_start_ns: interval.start_ns,
                detail: format!("tag id {} is not in the writer's tag set", interval.tag.0),
            });
        };
        let tag = tag.to_owned();
        let length = Duration::from_nanos(interval.length_ns);
        self.write(&tag, start, length, &interval.histogram)
    }

    /// Writes one interval line, `Tag=<tag>,<start s>,<length s>,<max ms>,<histogram>`; `start`
    /// is since the log's origin; `tag` must be in the writer's tag set.
    pub fn write(
        &mut self,
        tag: &str,
        start: Duration,
        length: Duration,
        histogram: &Histogram<u64>,
    ) -> Result<(), HlogError> {
        let encode = |detail: String| HlogError::Encode {
            interval_start_ns: u64::try_from(start.as_nanos()).unwrap_or(u64::MAX),
            detail,
        };
        if self.tags.id(tag).is_none() {
            return Err(encode(format!(
                "tag {tag:?} is not in the writer's tag set"
            )));
        }
        self.payload.clear();
        THREAD_DEFLATE
            .with_borrow_mut(|deflate| deflate.serialize(histogram, &mut self.payload))
            .map_err(encode)?;
        self.line.clear();
        let _ = write!(
            self.line,
            "Tag={tag},{:.3},{:.3},{:.3},",
            start.as_secs_f64(),
            length.as_secs_f64(),
            histogram.max() as f64 / MAX_VALUE_UNIT_RATIO,
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

thread_local! {
    /// The thread's compressor and recent streams, shared by every writer on the thread (one
    /// `serialize` at a time: it calls nothing that writes): a simulated point's 16 clients
    /// each kept their own — 16 × ≈ 340 KiB of state, and each compressed the empty histogram
    /// once — where one compressor serves them all and the empty histogram is compressed once.
    static THREAD_DEFLATE: RefCell<DeflateV2> = RefCell::new(DeflateV2::new());
}

/// `V2DeflateSerializer`'s cookie (hdrhistogram's `V2_COMPRESSED_COOKIE`, private there): V2
/// encoding, DEFLATE-compressed, 8-byte words.
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// The output chunk flate2's `ZlibEncoder` compresses into (its `zio::Writer` buffer): kept the
/// same so that the compressor is driven with the same calls.
const DEFLATE_CHUNK_BYTES: usize = 32 * 1024;

/// hdrhistogram's `V2DeflateSerializer`, byte for byte, with one compressor kept across
/// intervals: that serializer builds a fresh `ZlibEncoder` per histogram — ≈ 300 KiB of
/// compressor state allocated and zeroed, then freed — which cost a simulated point ≈ 5 % of its
/// instructions (16 clients, an interval each per 100 ms). A reset compressor is in the state a
/// new one starts in (miniz_oxide's `reset` zeroes its dictionary, hash chains and buffers and
/// keeps only the level and format), and it is driven with the calls `ZlibEncoder::write_all`
/// then `finish` make, into a chunk of the same size, so the bytes are the same (tested against
/// `V2DeflateSerializer`).
///
/// The chunk is a buffer of [`DEFLATE_CHUNK_BYTES`] initialised once, handed whole to
/// `Compress::compress` (every call finds it empty, as `ZlibEncoder`'s calls find theirs):
/// `compress_vec` zeroes the vector's spare capacity — the whole 32 KiB — before every call
/// (flate2's `initialize_buffer`), three times per histogram.
///
/// A V2 encoding seen recently is not compressed again: a fresh compressor's output depends on
/// its input alone, so the stream kept from last time is the same bytes. Most intervals of a
/// location tag that ran nothing are the same empty histogram (106 of the 279 lines of a
/// simulated NIC point, 168 of 252 with NAAM-adaptive), and each compression resets ≈ 300 KiB.
struct DeflateV2 {
    v2: V2Serializer,
    raw: Vec<u8>,
    compress: Compress,
    chunk: Box<[u8; DEFLATE_CHUNK_BYTES]>,
    recent: RecentStreams,
    /// True once the compressor has compressed since it was made or reset: a new one is in the
    /// reset state already, and a reset zeroes ≈ 300 KiB.
    used: bool,
    /// Streams compressed (not found among the recent ones).
    streams_compressed: u64,
}

/// Encodings kept at most (the least recently used replaced).
const RECENT_STREAMS_MAX: usize = 4;
/// Encodings above this are not kept: repeats are empty or near-empty histograms (tens of bytes),
/// and a kept one costs its bytes twice.
const RECENT_RAW_BYTES_MAX: usize = 1024;

/// Recent V2 encodings and their zlib streams (see [`DeflateV2`]), least recently used first:
/// the empty histogram, used every interval, outlives the one-off encodings between its uses.
#[derive(Default)]
struct RecentStreams {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl RecentStreams {
    /// The stream of `raw`, if kept (then marked most recently used).
    fn find(&mut self, raw: &[u8]) -> Option<&[u8]> {
        let index = self
            .entries
            .iter()
            .position(|(kept, _)| kept.as_slice() == raw)?;
        self.entries[index..].rotate_left(1);
        self.entries.last().map(|(_, stream)| stream.as_slice())
    }

    /// Keeps `raw`'s `stream` (unless `raw` is too long to keep), replacing the least recently
    /// used when full.
    fn keep(&mut self, raw: &[u8], stream: &[u8]) {
        if raw.len() > RECENT_RAW_BYTES_MAX {
            return;
        }
        if self.entries.len() == RECENT_STREAMS_MAX {
            self.entries.remove(0);
        }
        self.entries.push((raw.to_vec(), stream.to_vec()));
    }
}

impl DeflateV2 {
    fn new() -> DeflateV2 {
        DeflateV2 {
            v2: V2Serializer::new(),
            raw: Vec::new(),
            // `ZlibEncoder::new(w, Compression::default())`'s compressor.
            compress: Compress::new(Compression::default(), true),
            chunk: Box::new([0; DEFLATE_CHUNK_BYTES]),
            recent: RecentStreams::default(),
            used: false,
            streams_compressed: 0,
        }
    }

    /// Appends `histogram`'s encoding to `out`: cookie, compressed length, zlib stream.
    fn serialize(&mut self, histogram: &Histogram<u64>, out: &mut Vec<u8>) -> Result<(), String> {
        self.raw.clear();
        self.v2
            .serialize(histogram, &mut self.raw)
            .map_err(|e| format!("{e:?}"))?;
        let start = out.len();
        out.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes()); // the length, filled in below
        if let Some(stream) = self.recent.find(&self.raw) {
            out.extend_from_slice(stream);
        } else {
            if self.used {
                self.compress.reset();
            }
            self.used = true;
            self.streams_compressed += 1;
            self.write_all(out)?;
            self.finish(out)?;
            self.recent.keep(&self.raw, &out[start + 8..]);
        }
        let compressed = u32::try_from(out.len() - start - 8)
            .map_err(|_| "compressed histogram above 4 GiB".to_string())?;
        out[start + 4..start + 8].copy_from_slice(&compressed.to_be_bytes());
        Ok(())
    }

    /// `ZlibEncoder::write_all(raw)`: `write` until every byte is taken, each a no-flush
    /// compression call retried while it takes nothing.
    fn write_all(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let mut taken = 0;
        while taken < self.raw.len() {
            let before_in = self.compress.total_in();
            let status = self.compress_chunk(taken, FlushCompress::None, out)?;
            let written = (self.compress.total_in() - before_in) as usize;
            if written == 0 && status == flate2::Status::StreamEnd {
                return Err("deflate: stream ended before its input".into());
            }
            taken += written;
        }
        Ok(())
    }

    /// `ZlibEncoder::finish`: finishing calls until one produces nothing.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        loop {
            let before_out = self.compress.total_out();
            self.compress_chunk(self.raw.len(), FlushCompress::Finish, out)?;
            if before_out == self.compress.total_out() {
                return Ok(());
            }
        }
    }

    /// One compression call of `raw[from..]` into the empty chunk, whose output is then appended
    /// to `out` (`zio::Writer::dump` into a `Vec`, before its next call).
    fn compress_chunk(
        &mut self,
        from: usize,
        flush: FlushCompress,
        out: &mut Vec<u8>,
    ) -> Result<flate2::Status, String> {
        let before_out = self.compress.total_out();
        let status = self
            .compress
            .compress(&self.raw[from..], &mut self.chunk[..], flush)
            .map_err(|e| format!("deflate: {e}"))?;
        let produced = (self.compress.total_out() - before_out) as usize;
        out.extend_from_slice(&self.chunk[..produced.min(DEFLATE_CHUNK_BYTES)]);
        Ok(status)
    }
}

/// One interval read back.
#[derive(Debug, Clone)]
pub struct Interval {
    /// The `Tag=` value, if any.
    pub tag: Option<String>,
    /// Start since the log's StartTime (ours: the measured phase's start); see [`read_hlog`].
    pub start: Duration,
    /// Length.
    pub length: Duration,
    /// The `Interval_Max` column as written (ms for our logs; for display only).
    pub max_column: f64,
    /// The decoded histogram (ns for our logs).
    pub histogram: Histogram<u64>,
}

/// An interval log read back.
#[derive(Debug, Clone, Default)]
pub struct Hlog {
    /// `#[StartTime: …]`, since the epoch.
    pub start_time: Option<Duration>,
    /// `#[BaseTime: …]`, since the epoch.
    pub base_time: Option<Duration>,
    /// Intervals in file order.
    pub intervals: Vec<Interval>,
}

/// Parses an interval log (any writer's: Java's, Python's, this crate's), at most
/// [`INTERVALS_MAX`] intervals. Interval starts follow Java's `HistogramLogReader`: timestamps
/// are relative to BaseTime when present, else to StartTime when more than a year smaller than
/// it, else absolute; starts are then given since StartTime (or since the first interval when
/// the log has no StartTime).
pub fn read_hlog(bytes: &[u8]) -> Result<Hlog, HlogError> {
    let mut log = Hlog::default();
    let mut first_absolute: Option<Duration> = None;
    let mut deserializer = Deserializer::new();
    for item in IntervalLogIterator::new(bytes) {
        let entry = item.map_err(|e| HlogError::Parse {
            line: line_of(bytes, &e),
            detail: format!("{e:?}"),
        })?;
        let interval = match entry {
            LogEntry::StartTime(t) => {
                log.start_time = Some(t);
                continue;
            }
            LogEntry::BaseTime(t) => {
                log.base_time = Some(t);
                continue;
            }
            LogEntry::Interval(interval) => interval,
        };
        let index = log.intervals.len();
        if index >= INTERVALS_MAX {
            return Err(HlogError::Parse {
                line: 0,
                detail: format!("more than {INTERVALS_MAX} intervals"),
            });
        }
        let histogram = decode(&mut deserializer, interval.encoded_histogram(), index)?;
        let absolute = absolute_start(interval.start_timestamp(), &log);
        let origin = log
            .start_time
            .unwrap_or(*first_absolute.get_or_insert(absolute));
        log.intervals.push(Interval {
            tag: interval.tag().map(|t| t.as_str().to_owned()),
            start: absolute.saturating_sub(origin),
            length: interval.duration(),
            max_column: interval.max(),
            histogram,
        });
    }
    Ok(log)
}

fn decode(
    deserializer: &mut Deserializer,
    encoded: &str,
    entry: usize,
) -> Result<Histogram<u64>, HlogError> {
    let error = |detail: String| HlogError::Decode { entry, detail };
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|e| error(format!("base64: {e}")))?;
    deserializer
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| error(format!("{e:?}")))
}

/// An interval's start since the epoch (see [`read_hlog`]).
fn absolute_start(timestamp: Duration, log: &Hlog) -> Duration {
    let base = match (log.base_time, log.start_time) {
        (Some(base), _) => base,
        (None, Some(start)) if timestamp + DELTA_HEURISTIC < start => start,
        _ => Duration::ZERO,
    };
    base + timestamp
}

/// The 1-based line of a parse error's byte offset.
fn line_of(
    bytes: &[u8],
    error: &hdrhistogram::serialization::interval_log::LogIteratorError,
) -> usize {
    let hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } = error;
    let offset = (*offset).min(bytes.len());
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
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
    use crate::recorder::new_histogram;
    use hdrhistogram::serialization::V2DeflateSerializer;

    fn histogram(values: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for &v in values {
            h.record(v)
                .expect("auto-resizing histogram records any u64");
        }
        h
    }

    #[test]
    fn tags_outside_the_writers_set_are_refused() {
        let mut w =
            HlogWriter::new(Vec::new(), TagSet::locations(), Duration::ZERO, &[]).expect("header");
        for tag in ["a,b", "", "gpu"] {
            let err = w
                .write(tag, Duration::ZERO, Duration::ZERO, &histogram(&[1]))
                .expect_err("refused");
            assert!(matches!(err, HlogError::Encode { .. }), "{tag:?}: {err}");
        }
        w.write("nic", Duration::ZERO, Duration::ZERO, &histogram(&[1]))
            .expect("a location tag");
    }

    #[test]
    fn without_base_time_starts_are_relative_to_the_first_interval() {
        let mut payload = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&histogram(&[5]), &mut payload)
            .expect("serialize");
        let b64 = STANDARD.encode(&payload);
        let text = format!("1757412000.500,0.100,0.000,{b64}\n1757412000.600,0.100,0.000,{b64}\n");
        let log = read_hlog(text.as_bytes()).expect("parse");
        assert_eq!(log.intervals[0].start, Duration::ZERO);
        assert_eq!(log.intervals[1].start.as_millis(), 100);
        assert_eq!(log.intervals[1].histogram.len(), 1);
    }

    #[test]
    fn with_only_a_start_time_small_timestamps_are_relative_to_it() {
        let mut payload = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&histogram(&[5]), &mut payload)
            .expect("serialize");
        let b64 = STANDARD.encode(&payload);
        let text = format!(
            "#[StartTime: 1757412000.000 (seconds since epoch), x]\n0.250,0.100,0.000,{b64}\n"
        );
        let log = read_hlog(text.as_bytes()).expect("parse");
        assert_eq!(log.intervals[0].start.as_millis(), 250);
    }

    #[test]
    fn one_reused_compressor_writes_the_bytes_of_a_fresh_one_per_histogram() {
        // Empty, one value, a latency-like spread, and one whose V2 encoding is far above the
        // 32 KiB chunk (every bucket distinct, so it barely compresses).
        let mut spread: Vec<u64> = (1..5_000u64).map(|i| 1_000 + i * i % 97_003).collect();
        spread.push(3_000_000_000);
        let mut wide = new_histogram();
        for shift in 0..40u64 {
            for j in 0..1024u64 {
                let count = 1 + (shift * 1024 + j) * 7_919 % 100_003;
                wide.record_n((1024 + j) << shift, count)
                    .expect("auto-resizing histogram records any u64");
            }
        }
        let cases = [
            histogram(&[]),
            histogram(&[5]),
            histogram(&spread),
            wide,
            histogram(&[7, 7, 7]),
        ];
        let mut reused = DeflateV2::new();
        for round in 0..2 {
            for (i, h) in cases.iter().enumerate() {
                let mut fresh = Vec::new();
                V2DeflateSerializer::new()
                    .serialize(h, &mut fresh)
                    .expect("serialize");
                let mut ours = vec![0xaa]; // appended after what the buffer held
                reused.serialize(h, &mut ours).expect("serialize");
                assert_eq!(ours[1..], fresh[..], "round {round}, case {i}");
                if i == 3 {
                    assert!(reused.raw.len() > 2 * DEFLATE_CHUNK_BYTES, "several chunks");
                    assert!(fresh.len() > 2 * DEFLATE_CHUNK_BYTES, "several chunks out");
                }
            }
        }
    }

    #[test]
    fn a_repeated_encoding_reuses_its_stream_and_writes_a_fresh_ones_bytes() {
        // Repeats back to back, after others, after more than the kept number of others, and
        // one too long to keep; every output against a fresh serializer's.
        let long: Vec<u64> = (1..3_000u64).map(|i| i * 7_919).collect();
        let shapes = [
            histogram(&[]),
            histogram(&[]),
            histogram(&[5]),
            histogram(&[]),
            histogram(&long),
            histogram(&long),
            histogram(&[6]),
            histogram(&[7]),
            histogram(&[8]),
            histogram(&[9]),
            histogram(&[5]),
            histogram(&[]),
        ];
        let mut reused = DeflateV2::new();
        for (i, h) in shapes.iter().enumerate() {
            let mut fresh = Vec::new();
            V2DeflateSerializer::new()
                .serialize(h, &mut fresh)
                .expect("serialize");
            let mut ours = vec![0xaa];
            reused.serialize(h, &mut ours).expect("serialize");
            assert_eq!(ours[1..], fresh[..], "shape {i}");
            assert!(reused.recent.entries.len() <= RECENT_STREAMS_MAX);
            let kept = reused.recent.find(&reused.raw).is_some();
            assert_eq!(kept, reused.raw.len() <= RECENT_RAW_BYTES_MAX, "shape {i}");
        }
        assert!(
            reused.raw.len() <= RECENT_RAW_BYTES_MAX,
            "the empty histogram is kept"
        );
        let long_raw = {
            let mut v2 = Vec::new();
            V2Serializer::new()
                .serialize(&histogram(&long), &mut v2)
                .expect("serialize");
            v2
        };
        assert!(long_raw.len() > RECENT_RAW_BYTES_MAX, "the long one is not");
    }

    #[test]
    fn an_encoding_used_every_third_time_outlives_one_off_encodings() {
        let mut reused = DeflateV2::new();
        let empty = histogram(&[]);
        for i in 1..=20u64 {
            let mut out = Vec::new();
            reused.serialize(&empty, &mut out).expect("serialize");
            for j in 0..2 {
                reused
                    .serialize(&histogram(&[i * 10 + j]), &mut out)
                    .expect("serialize");
            }
            let mut v2 = Vec::new();
            V2Serializer::new()
                .serialize(&empty, &mut v2)
                .expect("serialize");
            assert!(reused.recent.find(&v2).is_some(), "round {i}");
        }
    }

    #[test]
    fn writers_on_one_thread_share_one_compressor_and_its_recent_streams() {
        let empty = histogram(&[]);
        let mut fresh = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&empty, &mut fresh)
            .expect("serialize");
        let line = format!("Tag=nic,0.000,0.100,0.000,{}\n", STANDARD.encode(&fresh));
        let before = THREAD_DEFLATE.with_borrow(|deflate| deflate.streams_compressed);
        for _ in 0..3 {
            let mut w = HlogWriter::new(Vec::new(), TagSet::locations(), Duration::ZERO, &[])
                .expect("header");
            w.write("nic", Duration::ZERO, Duration::from_millis(100), &empty)
                .expect("write");
            let text = String::from_utf8(w.finish().expect("finish")).expect("utf-8");
            assert!(text.ends_with(&line), "{text}");
        }
        let compressed = THREAD_DEFLATE.with_borrow(|deflate| deflate.streams_compressed);
        assert_eq!(
            compressed - before,
            1,
            "the empty histogram compressed once"
        );
    }

    #[test]
    fn a_new_compressor_is_not_reset_before_its_first_stream() {
        let mut deflate = DeflateV2::new();
        assert!(!deflate.used);
        let mut out = Vec::new();
        deflate
            .serialize(&histogram(&[5]), &mut out)
            .expect("serialize");
        assert!(deflate.used, "later streams reset it first");
        assert_eq!(deflate.streams_compressed, 1);
    }

    #[test]
    fn dates_format_as_utc() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(iso8601_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_seconds(1_700_000_000_123), "1700000000.123");
    }
}
