//! The parquet frames load in Python polars and pandas with the same values as ours, and the
//! `.hlog` files decode with Python's `hdrh` with the same counts. The Python packages are
//! installed by scripts/install-test-deps.sh.

mod common;

use std::path::Path;
use std::process::Command;

use naam_analysis::figures::read::{f64s, strs};
use naam_analysis::{analyze_run, build_frames};
use naam_plan::ExperimentId;

fn python(script: &str, args: &[&Path]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed JSON")
}

const FRAMES_SCRIPT: &str = r#"
import json, sys
import pandas as pd
import polars as pl
path = sys.argv[1]
a = pl.read_parquet(path)
b = pd.read_parquet(path)
print(json.dumps({
    "columns_polars": a.columns,
    "columns_pandas": list(b.columns),
    "rows": [a.height, len(b)],
    "point_id": a["point_id"].to_list(),
    "throughput_polars": a["throughput_ops_per_s"].to_list(),
    "throughput_pandas": b["throughput_ops_per_s"].tolist(),
    "p99_polars": a["latency_ns_p99"].to_list(),
    "p99_pandas": [int(v) for v in b["latency_ns_p99"].tolist()],
    "count": a["latency_count"].to_list(),
    "valid": b["valid"].tolist(),
}))
"#;

const HLOG_SCRIPT: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
counts = []
for path in sys.argv[1:]:
    reader = HistogramLogReader(path, HdrHistogram(1, 3600 * 10**9, 3))
    total = 0
    while True:
        h = reader.get_next_interval_histogram()
        if h is None:
            break
        total += h.get_total_count()
    counts.append(total)
print(json.dumps(counts))
"#;

#[test]
fn polars_and_pandas_read_our_parquet_and_hdrh_our_logs() {
    let root = tempfile::tempdir().expect("tempdir");
    let run = common::synthetic_run(&common::plan(ExperimentId::OffloadScaling), root.path());
    analyze_run(&run).expect("analyze");
    let frames = build_frames(&run).expect("frames");
    let points = frames.get("points").expect("points frame");

    let py = python(FRAMES_SCRIPT, &[&run.join("frames/points.parquet")]);
    let ours_columns: Vec<String> = points
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(py["columns_polars"], serde_json::json!(ours_columns));
    assert_eq!(py["columns_pandas"], serde_json::json!(ours_columns));
    assert_eq!(
        py["rows"],
        serde_json::json!([points.height(), points.height()])
    );
    assert_eq!(
        py["point_id"],
        serde_json::json!(strs(points, "point_id").expect("ids"))
    );
    let throughput = f64s(points, "throughput_ops_per_s").expect("throughput");
    assert_eq!(py["throughput_polars"], serde_json::json!(throughput));
    assert_eq!(py["throughput_pandas"], serde_json::json!(throughput));
    let p99: Vec<Option<u64>> = f64s(points, "latency_ns_p99")
        .expect("p99")
        .into_iter()
        .map(|v| v.map(|x| x as u64))
        .collect();
    assert_eq!(py["p99_polars"], serde_json::json!(p99));
    assert_eq!(py["p99_pandas"], serde_json::json!(p99));

    let ids = strs(points, "point_id").expect("ids");
    let logs: Vec<std::path::PathBuf> = ids
        .iter()
        .map(|id| {
            run.join("points")
                .join(id.as_deref().unwrap_or_default())
                .join("client-0.hlog")
        })
        .collect();
    let log_refs: Vec<&Path> = logs.iter().map(|p| p.as_path()).collect();
    let counts = python(HLOG_SCRIPT, &log_refs);
    assert_eq!(
        counts, py["count"],
        "hdrh counts per point equal our merged counts"
    );
}
