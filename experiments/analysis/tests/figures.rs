//! Figures: the data table of a figure (not its pixels) as a snapshot, and PNG + SVG files for
//! every experiment, drawn from the parquet frames alone.

mod common;

use std::path::Path;

use expect_test::expect;
use naam_analysis::figures::read::FrameSet;
use naam_analysis::figures::validation::{
    Metric, ValidationRow, validation_csv, validation_figure, write_validation,
};
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
          nic: 10.00=10.00[10.00,10.00] 25.00=25.00[25.00,25.00] 50.00=29.40[29.40,29.40]
          client: 10.00=10.00[10.00,10.00] 25.00=24.50[24.50,24.50] 50.00=24.50[24.50,24.50]
          naam-adaptive: 10.00=10.00[10.00,10.00] 25.00=25.00[25.00,25.00] 50.00=50.00[50.00,50.00]
        (b) latency p99 (solid), p50 (dashed) | x: offered load (kops/s) | y: latency (µs) (log)
          host p99: 10.00=4.595[4.579,4.611] 25.00=10.30[10.20,10.41] 50.00=57.31[57.02,57.60]
          host p50 (dashed): 10.00=2.741[2.739,2.743] 25.00=3.588[3.567,3.609] 50.00=10.73[10.70,10.75]
          nic p99: 10.00=29.58[29.44,29.71] 25.00=216.4[213.6,219.1] 50.00=2036[2034,2039]
          nic p50 (dashed): 10.00=12.20[12.18,12.21] 25.00=40.19[39.65,40.73] 50.00=315.0[313.9,316.2]
          client p99: 10.00=72.86[72.51,73.22] 25.00=4089[4037,4141] 50.00=4036[3998,4073]
          client p50 (dashed): 10.00=26.52[26.48,26.56] 25.00=629.5[619.5,639.5] 50.00=629.0[625.7,632.3]
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
        (c) ipipe: throughput per location | x: time since measure start (ms) | y: throughput (kops/s)
          marker cpu-hog start at x=1000
          marker cpu-hog stop at x=2000
        (d) p99 per interval | x: time since measure start (ms) | y: latency p99 (µs) (log)
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
    // The shift times, computed from the raw files, reach the figure (the static host placement
    // never shifts; the synthetic model of the adaptive series never reaches 90 % at the NIC).
    let shift_lines: Vec<&String> = figure
        .footnote
        .iter()
        .filter(|l| l.starts_with("  naam-adaptive:") || l.starts_with("  host:"))
        .collect();
    assert_eq!(shift_lines.len(), 2, "{:#?}", figure.footnote);
    println!("{shift_lines:#?}");
    assert_eq!(
        shift_lines[1].as_str(),
        "  host: first rule change never, never; rules never, never; completions at the NIC never, never"
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

/// Marks the first point of `series` (repetition 0) invalid in its `summary.json`, as the runner
/// would have.
fn mark_invalid(run: &Path, series: &str) {
    let dir = naam_results::RunDir::open(run);
    let plan = dir.read_plan().expect("plan");
    let point = plan
        .points
        .iter()
        .find(|p| p.series.as_str() == series && p.repetition == 0)
        .expect("a point of the series");
    let mut summary = dir.read_summary(&point.id).expect("summary");
    summary.validity = naam_results::Validity::Invalid {
        reasons: vec!["send lateness p99 2.0 ms above 1 ms (test)".to_string()],
    };
    let text = serde_json::to_string_pretty(&summary).expect("json");
    std::fs::write(dir.point_dir(&point.id).join("summary.json"), text).expect("rewrite");
}

/// Series with at least one invalid point, from the summaries themselves.
fn invalid_series(run: &Path) -> Vec<String> {
    let dir = naam_results::RunDir::open(run);
    let plan = dir.read_plan().expect("plan");
    let mut out: Vec<String> = Vec::new();
    for p in &plan.points {
        let valid = dir
            .read_summary(&p.id)
            .expect("summary")
            .validity
            .is_valid();
        if !valid && !out.contains(&p.series.as_str().to_string()) {
            out.push(p.series.as_str().to_string());
        }
    }
    out
}

/// Issue 17: time-series figures hard-coded `valid: true`, so an invalid repetition was drawn as
/// a normal line while the footnote promised hollow markers.
#[test]
fn issue_17_time_series_draw_an_invalid_point_hollow() {
    for (id, marked) in [
        (ExperimentId::LoadShift, "host"),
        (ExperimentId::Policies, "naam-adaptive"),
    ] {
        let root = tempfile::tempdir().expect("tempdir");
        let run = common::synthetic_run(&common::plan(id), root.path());
        assert!(
            !invalid_series(&run).iter().any(|s| s == marked),
            "{id}: the synthetic {marked} points start valid"
        );
        mark_invalid(&run, marked);
        let invalid = invalid_series(&run);
        analyze_run(&run).expect("analyze");
        let frames = FrameSet::read(&run.join("frames")).expect("parquet frames");
        let figure = figure_data(&frames).expect("figure data");
        let mut marked_lines = 0;
        for p in &figure.panels {
            // load-shift: one panel per series ("(b) host: …"); policies: one line per series.
            let series_of_panel = invalid
                .iter()
                .find(|s| p.title.contains(&format!(") {s}:")));
            for line in p.lines.iter().filter(|l| !l.points.is_empty()) {
                let series = series_of_panel
                    .or_else(|| invalid.iter().find(|s| line.label.starts_with(s.as_str())));
                let hollow = line.points.iter().all(|pt| !pt.valid);
                let solid = line.points.iter().all(|pt| pt.valid);
                let what = format!("{id}: panel {:?} line {:?}", p.title, line.label);
                // Every repetition is drawn into each time's median, so one invalid repetition
                // makes the whole line hollow; a series with no invalid point stays solid.
                assert!(if series.is_some() { hollow } else { solid }, "{what}");
                assert_eq!(
                    line.label.ends_with("(invalid)"),
                    series.is_some(),
                    "{what}"
                );
                marked_lines += usize::from(series.is_some_and(|s| s == marked));
            }
        }
        assert!(marked_lines >= 2, "{id}: the marked series is drawn");
        assert!(
            figure
                .footnote
                .iter()
                .any(|l| l.starts_with("hollow markers")),
            "{id}: {:?}",
            figure.footnote
        );
    }
}

/// Rows as `naam sim-validate` makes them (synthetic values, shaped like a real table: the
/// simulated load-shift has no shift).
fn validation_rows() -> Vec<ValidationRow> {
    let row = |experiment: &str, series: &str, metric, local, simulated, error| ValidationRow {
        experiment: experiment.into(),
        series: series.into(),
        metric,
        local,
        simulated,
        error_percent: error,
    };
    vec![
        row(
            "mica-ycsb-b",
            "host",
            Metric::Throughput,
            Some(50e3),
            Some(49.8e3),
            Some(-0.4),
        ),
        row(
            "mica-ycsb-b",
            "host",
            Metric::P50Error,
            None,
            None,
            Some(-80.0),
        ),
        row(
            "mica-ycsb-b",
            "host",
            Metric::P99Error,
            None,
            None,
            Some(-95.0),
        ),
        row(
            "mica-ycsb-b",
            "nic",
            Metric::Throughput,
            Some(30e3),
            Some(30.2e3),
            Some(0.7),
        ),
        row(
            "mica-ycsb-b",
            "nic",
            Metric::P50Error,
            None,
            None,
            Some(-72.0),
        ),
        row("mica-ycsb-b", "nic", Metric::P99Error, None, None, None),
        row(
            "load-shift",
            "naam-adaptive",
            Metric::Throughput,
            Some(20e3),
            Some(20e3),
            Some(0.0),
        ),
        row(
            "load-shift",
            "naam-adaptive",
            Metric::ShiftTime,
            Some(90.0),
            None,
            None,
        ),
        row(
            "load-shift",
            "naam-adaptive",
            Metric::P50Error,
            None,
            None,
            Some(-86.0),
        ),
        row(
            "load-shift",
            "naam-adaptive",
            Metric::P99Error,
            None,
            None,
            Some(-100.0),
        ),
    ]
}

#[test]
fn sim_validation_figure_data_table_and_files() {
    let rows = validation_rows();
    let figure = validation_figure(&rows, "this-machine");
    expect![[r#"
        sim-validation: Simulation (simulated (profile this-machine)) against the local testbed
        (a) best valid throughput | x: experiment: series | y: throughput (kops/s)
          local testbed: mica-ycsb-b: host=50.00 mica-ycsb-b: nic=30.00 load-shift: naam-adaptive=20.00
          simulated (profile this-machine): mica-ycsb-b: host=49.80 mica-ycsb-b: nic=30.20 load-shift: naam-adaptive=20.00
        (b) latency: median error, simulated vs local | x: experiment: series | y: (simulated − local) / local (%)
          p50: mica-ycsb-b: host=-80.00 mica-ycsb-b: nic=-72.00 load-shift: naam-adaptive=-86.00
          p99: mica-ycsb-b: host=-95.00 load-shift: naam-adaptive=-100.0
        (c) shift time after the hog | x: experiment: series | y: shift time (ms)
          local testbed: load-shift: naam-adaptive=90.00
          simulated (profile this-machine): 
    "#]]
    .assert_eq(&figure.panels_table());
    let csv = validation_csv(&rows);
    assert!(
        csv.lines()
            .any(|l| l == "load-shift,naam-adaptive,\"shift time (ms)\",90.0,,"),
        "{csv}"
    );
    assert_eq!(
        csv.lines().count(),
        rows.len() + 1,
        "a header and a line per row"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let [csv_path, png, svg] = write_validation(
        &rows,
        "this-machine",
        &dir.path().join("results"),
        &dir.path().join("figures"),
    )
    .expect("write");
    assert_eq!(std::fs::read_to_string(csv_path).expect("csv"), csv);
    let png = std::fs::read(png).expect("png written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let svg = std::fs::read_to_string(svg).expect("svg written");
    assert!(
        svg.starts_with("<svg") && svg.contains("local testbed") && svg.contains("this-machine"),
        "the SVG shows both testbeds' labels"
    );
}
