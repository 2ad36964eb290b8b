//! Interval logs: the exact Java layout, a Rust round trip, and Python's `hdrh` decoding our
//! files with the same counts and percentiles.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{World, config, locations, simulate};
use naam_loadgen::hlog::{LEGEND, MAX_VALUE_UNIT_RATIO};
use naam_loadgen::{HlogWriter, IntervalHistogram, LoadMode, read_hlog};

const MS: u64 = 1_000_000;
const START: Duration = Duration::from_millis(1_700_000_000_123);

/// A run with a server stall (so percentiles differ between intervals), three tags.
fn intervals() -> Vec<IntervalHistogram> {
    let world = World {
        service_ns: 20_000,
        server_stall: Some((300 * MS, 340 * MS)),
        tags: 3,
        ..World::default()
    };
    let mode = LoadMode::Poisson {
        rate_per_s: 20_000.0,
        seed: 21,
    };
    simulate(
        config(mode, 100 * MS, 500 * MS, 100 * MS),
        locations(),
        &world,
        MS,
    )
    .intervals
}

fn write_log(intervals: &[IntervalHistogram]) -> String {
    let mut writer =
        HlogWriter::new(Vec::new(), locations(), START, &["naam-loadgen test"]).expect("header");
    for interval in intervals {
        writer.write_interval(interval).expect("interval");
    }
    String::from_utf8(writer.finish().expect("flush")).expect("utf-8")
}

#[test]
fn header_and_lines_follow_javas_layout() {
    let all = intervals();
    let text = write_log(&all);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#[naam-loadgen test]");
    assert_eq!(lines[1], "#[Histogram log format version 1.3]");
    assert_eq!(
        lines[2],
        "#[StartTime: 1700000000.123 (seconds since epoch), 2023-11-14T22:13:20.123Z]"
    );
    assert_eq!(
        lines[3],
        "#[BaseTime: 1700000000.123 (seconds since epoch)]"
    );
    assert_eq!(lines[4], LEGEND);
    assert_eq!(lines.len(), 5 + all.len());
    let first = &all[0];
    let fields: Vec<&str> = lines[5].split(',').collect();
    assert_eq!(fields[0], "Tag=host");
    assert_eq!(fields[1], "0.100");
    assert_eq!(fields[2], "0.100");
    assert_eq!(
        fields[3],
        format!("{:.3}", first.histogram.max() as f64 / MAX_VALUE_UNIT_RATIO)
    );
    assert!(
        fields[4].starts_with("HISTF"),
        "V2 + DEFLATE cookie, base64: {}",
        fields[4]
    );
}

#[test]
fn rust_reader_round_trips_every_interval() {
    let all = intervals();
    let log = read_hlog(write_log(&all).as_bytes()).expect("parses");
    assert_eq!(log.start_time, Some(START));
    assert_eq!(log.base_time, Some(START));
    assert_eq!(log.intervals.len(), all.len());
    let tags = locations();
    for (entry, interval) in log.intervals.iter().zip(&all) {
        assert_eq!(entry.tag.as_deref(), tags.name(interval.tag));
        // Times are written with Java's three decimals (ms): the last interval is partial.
        let start_ns = entry.start.as_nanos() as f64;
        assert!(
            (start_ns - interval.start_ns as f64).abs() <= 500_000.0,
            "{entry:?}"
        );
        let length_ns = entry.length.as_nanos() as f64;
        assert!((length_ns - interval.length_ns as f64).abs() <= 500_000.0 + 1.0);
        assert_eq!(entry.histogram, interval.histogram);
    }
}

#[test]
fn malformed_logs_are_typed_errors() {
    let err = read_hlog(b"#[BaseTime: 1.0 (seconds since epoch)]\nnot a line\n").expect_err("bad");
    assert!(
        matches!(err, naam_loadgen::HlogError::Parse { line: 2, .. }),
        "{err}"
    );
    let err = read_hlog(b"Tag=host,0.000,1.000,0.1,HISTFAAAAnotbase64!!\n").expect_err("bad");
    assert!(
        matches!(err, naam_loadgen::HlogError::Decode { entry: 0, .. }),
        "{err}"
    );
}

/// Decodes the file with Python's `hdrh` (scripts/install-test-deps.sh installs it) and prints,
/// per interval: tag, total count, p50, p99, max, then every recorded `value:count` bucket.
const PYTHON_READER: &str = r#"
import sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 60 * 10**9, 3))
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    tag = h.get_tag()
    tag = tag.decode() if isinstance(tag, bytes) else tag
    buckets = ["%d:%d" % (i.value_iterated_to, i.count_at_value_iterated_to)
               for i in h.get_recorded_iterator()]
    print(tag, h.get_total_count(), h.get_value_at_percentile(50.0),
          h.get_value_at_percentile(99.0), h.get_max_value(), *buckets)
"#;

#[test]
fn python_hdrh_decodes_our_logs_with_equal_counts_and_percentiles() {
    let all = intervals();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run.hlog");
    std::fs::write(&path, write_log(&all)).expect("write log");
    let output = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_READER)
        .arg(&path)
        .output()
        .expect("python3 runs (scripts/install-test-deps.sh installs it and hdrh)");
    assert!(
        output.status.success(),
        "python: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        rows.len(),
        all.len(),
        "python read {} intervals",
        rows.len()
    );
    let tags = locations();
    let mut nonempty = 0;
    for (row, interval) in rows.iter().zip(&all) {
        let f: Vec<&str> = row.split_whitespace().collect();
        let h = &interval.histogram;
        let n = |i: usize| f[i].parse::<u64>().expect("integer");
        assert_eq!(Some(f[0]), tags.name(interval.tag), "row {row}");
        assert_eq!(n(1), h.len(), "count, row {row}");
        if h.is_empty() {
            continue;
        }
        nonempty += 1;
        // The decoded distribution is ours, bucket for bucket.
        let ours: Vec<String> = h
            .iter_recorded()
            .map(|v| format!("{}:{}", v.value_iterated_to(), v.count_at_value()))
            .collect();
        assert_eq!(f[5..], ours[..], "buckets, row {row}");
        // Python ranks a percentile as round(p/100 · n) (Java and Rust take the ceiling).
        assert_eq!(n(2), value_at_rounded_rank(h, 50.0), "p50, row {row}");
        assert_eq!(n(3), value_at_rounded_rank(h, 99.0), "p99, row {row}");
        assert_eq!(n(4), h.highest_equivalent(h.max()), "max, row {row}");
    }
    assert!(
        nonempty >= 10,
        "only {nonempty} non-empty intervals were compared"
    );
}

/// The highest value equivalent to the bucket holding the `round(p/100 · n)`-th value (at least
/// the first): Python `hdrh`'s percentile definition, computed on our histogram.
fn value_at_rounded_rank(h: &hdrhistogram::Histogram<u64>, percentile: f64) -> u64 {
    let rank = ((percentile / 100.0 * h.len() as f64 + 0.5) as u64).max(1);
    let mut seen = 0;
    for v in h.iter_recorded() {
        seen += v.count_at_value();
        if seen >= rank {
            return h.highest_equivalent(v.value_iterated_to());
        }
    }
    h.highest_equivalent(h.max())
}
