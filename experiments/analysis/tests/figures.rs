//! Figures: the data table of a figure (not its pixels) as a snapshot, and PNG + SVG files for
//! every experiment, drawn from the parquet frames alone.

mod common;

use std::path::Path;

use expect_test::expect;
use naam_analysis::figures::read::FrameSet;
use naam_analysis::{analyze_run, figure_data, plot_all, plot_run};
use naam_plan::ExperimentId;

fn figure_of(id: ExperimentId, root: &Path) -> naam_analysis::FigureData {
    let run = common::synthetic_run(&common::plan(id), root);
    analyze_run(&run).expect("analyze");
    let frames = FrameSet::read(&run.join("frames")).expect("parquet frames");
    figure_data(&frames).expect("figure data")
}

#[test]
fn mica_figure_data_table() {
    let root = tempfile::tempdir().expect("tempdir");
    let figure = figure_of(ExperimentId::MicaYcsbB, root.path());
    expect![[r#"
        mica-ycsb-b: MICA under YCSB-B at each placement
        (a) throughput | x: offered load (kops/s) | y: throughput (kops/s)
          host: 10.00=10.00[10.00,10.00] 25.00=25.00[25.00,25.00] 50.00=50.00[50.00,50.00]
          nic: 10.00=10.00[10.00,10.00] 25.00=25.00[25.00,25.00] 50.00=29.40[29.40,29.40]!
          client: 10.00=10.00[10.00,10.00] 25.00=24.50[24.50,24.50] 50.00=24.50[24.50,24.50]!
          naam-adaptive: 10.00=10.00[10.00,10.00] 25.00=25.00[25.00,25.00] 50.00=50.00[50.00,50.00]
        (b) latency p99 (solid), p50 (dashed) | x: offered load (kops/s) | y: latency (µs) (log)
          host p99: 10.00=4.595[4.579,4.611] 25.00=10.30[10.20,10.41] 50.00=57.31[57.02,57.60]
          host p50 (dashed): 10.00=2.741[2.739,2.743] 25.00=3.588[3.567,3.609] 50.00=10.73[10.70,10.75]
          nic p99: 10.00=29.58[29.44,29.71] 25.00=216.4[213.6,219.1] 50.00=2036[2034,2039]!
          nic p50 (dashed): 10.00=12.20[12.18,12.21] 25.00=40.19[39.65,40.73] 50.00=315.0[313.9,316.2]!
          client p99: 10.00=72.86[72.51,73.22] 25.00=4089[4037,4141] 50.00=4036[3998,4073]!
          client p50 (dashed): 10.00=26.52[26.48,26.56] 25.00=629.5[619.5,639.5] 50.00=629.0[625.7,632.3]!
          naam-adaptive p99: 10.00=4.595[4.579,4.611] 25.00=10.30[10.20,10.41] 50.00=46.02[45.92,46.11]
          naam-adaptive p50 (dashed): 10.00=2.741[2.739,2.743] 25.00=3.588[3.567,3.609] 50.00=9.223[9.207,9.239]
    "#]].assert_eq(&figure.panels_table());
    assert!(
        figure
            .footnote
            .iter()
            .any(|l| l.starts_with("testbed: local (NIC emulated) · machine: ")),
        "{:?}",
        figure.footnote
    );
    assert!(
        figure.footnote.iter().any(|l| l.contains("SYNTHETIC DATA")),
        "{:?}",
        figure.footnote
    );
    assert!(
        figure
            .footnote
            .iter()
            .any(|l| l.starts_with("error bars: ")),
        "{:?}",
        figure.footnote
    );
}

#[test]
fn load_shift_figure_data_table() {
    let root = tempfile::tempdir().expect("tempdir");
    let figure = figure_of(ExperimentId::LoadShift, root.path());
    let table = figure.panels_table();
    // Time series are long; the snapshot holds the panel headers and markers, and the test
    // checks the shift itself: during the hog the adaptive series serves from the NIC.
    let headers: String = table
        .lines()
        .filter(|l| !l.starts_with("  ") || l.starts_with("  marker"))
        .map(|l| format!("{l}\n"))
        .collect();
    expect![[r#"
        load-shift: Reaction to host compute congestion
        (a) naam-adaptive: throughput per location | x: time since measure start (ms) | y: throughput (kops/s)
          marker cpu-hog start at x=1000
          marker cpu-hog stop at x=2000
        (b) host: throughput per location | x: time since measure start (ms) | y: throughput (kops/s)
          marker cpu-hog start at x=1000
          marker cpu-hog stop at x=2000
        (c) p99 per interval | x: time since measure start (ms) | y: latency p99 (µs) (log)
          marker cpu-hog start at x=1000
          marker cpu-hog stop at x=2000
    "#]].assert_eq(&headers);
    let adaptive_nic = &figure.panels[0].lines[1];
    assert_eq!(adaptive_nic.label, "at nic");
    let nic_at = |t: f64| {
        adaptive_nic
            .points
            .iter()
            .find(|p| p.x == t)
            .map_or(0.0, |p| p.y)
    };
    assert!(
        nic_at(1500.0) > nic_at(500.0),
        "adaptive steering moves work to the NIC under the hog"
    );
}

#[test]
fn every_experiment_gets_a_png_and_an_svg() {
    let root = tempfile::tempdir().expect("tempdir");
    let results = root.path().join("results");
    let figures = root.path().join("figures");
    for id in ExperimentId::ALL {
        common::synthetic_run(&common::plan(id), &results);
    }
    let report = plot_all(&results, &figures, &ExperimentId::ALL);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.figures.len(), ExperimentId::ALL.len());
    for id in ExperimentId::ALL {
        let png = std::fs::read(figures.join(format!("{id}.png"))).expect("png written");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{id}: PNG signature");
        let svg = std::fs::read_to_string(figures.join(format!("{id}.svg"))).expect("svg written");
        assert!(
            svg.starts_with("<svg") && svg.contains("SYNTHETIC DATA"),
            "{id}: SVG with footnote"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&figures)
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");
}

#[test]
fn plotting_needs_the_frames_and_says_so() {
    let root = tempfile::tempdir().expect("tempdir");
    let run = common::synthetic_run(&common::plan(ExperimentId::VmCost), root.path());
    let err = plot_run(&run, &root.path().join("figures")).unwrap_err();
    assert!(err.to_string().contains("frames/run.parquet"), "{err}");
}
