//! Exporters tested as bytes (CSV) and by round trip (parquet).

use expect_test::expect;
use naam_analysis::export::{CsvExporter, Exporter, ParquetExporter, parquet_from_bytes};
use naam_analysis::frame::FrameBuilder;
use naam_analysis::schema;

fn events_frame() -> polars::prelude::DataFrame {
    let mut b = FrameBuilder::new("events", schema::EVENTS);
    b.push(|r| {
        r.set("experiment", "policies")
            .set("run_id", "quick-0123456789ab")
            .set("kind", "load-step")
            .set("start_ms", 1000u64)
            .set("factor", 2.0);
    })
    .expect("row");
    b.push(|r| {
        r.set("experiment", "policies")
            .set("run_id", "quick-0123456789ab")
            .set("kind", "cpu-hog")
            .set("start_ms", 2000u64)
            .set("stop_ms", 3000u64)
            .set("threads", 2u32);
    })
    .expect("row");
    b.finish().expect("frame")
}

#[test]
fn csv_bytes_have_header_and_empty_nulls() {
    let bytes = CsvExporter.export(&mut events_frame()).expect("csv");
    expect![[r#"
        experiment,run_id,kind,start_ms,stop_ms,threads,factor
        policies,quick-0123456789ab,load-step,1000,,,2.0
        policies,quick-0123456789ab,cpu-hog,2000,3000,2,
    "#]]
    .assert_eq(&String::from_utf8(bytes).expect("utf8"));
}

#[test]
fn parquet_round_trips_values_types_and_nulls() {
    let mut frame = events_frame();
    let bytes = ParquetExporter.export(&mut frame).expect("parquet");
    assert_eq!(&bytes[..4], b"PAR1", "parquet magic");
    let back = parquet_from_bytes(bytes).expect("read back");
    assert!(
        back.equals_missing(&frame),
        "parquet round trip changed the frame"
    );
    assert_eq!(back.schema(), frame.schema());
}

#[test]
fn rows_with_undocumented_columns_or_types_are_refused() {
    let mut b = FrameBuilder::new("events", schema::EVENTS);
    let err = b.push(|r| {
        r.set("kind", "cpu-hog").set("start_ms", 5u32);
    });
    assert_eq!(
        err.unwrap_err().to_string(),
        "frame `events`, column `start_ms`: U32 value for a u64 column"
    );
    let err = b.push(|r| {
        r.set("colour", "blue");
    });
    assert_eq!(
        err.unwrap_err().to_string(),
        "frame `events`, column `colour`: not a documented column"
    );
    assert!(b.is_empty());
}
