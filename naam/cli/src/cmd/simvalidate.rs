//! `naam sim-validate`: the simulator held against the machine it claims to model. Each chosen
//! quick manifest runs twice — on the local testbed, and in the simulation testbed with a cost
//! profile of this machine (`this-machine`, written by `naam calibrate`) — and the two runs are
//! compared per series: the best valid throughput (the saturation throughput where a series
//! saturates within the manifest's loads, else its top load), median and 99th-percentile
//! latency (median over the points both runs measured of the relative error), and the shift time
//! after a hog. The table goes to the terminal and to `sim-validation.csv` in the results root,
//! the figure (naam-analysis' `figures::validation`: local against simulated side by side, and
//! the latency errors) to `sim-validation.png`/`.svg` in the figures folder; each run also gets
//! its own figures. Errors are reported, never tuned away: the profile's values come from
//! measurements, not from this comparison.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use naam_analysis::figures::validation::{self, Metric, ValidationRow as Row};
use naam_plan::{ExperimentPlan, Variant};
use naam_results::digest::{self, RunDigest};
use naam_results::layout::RunDir;

use super::experiments::{RunFlags, run_one};
use super::print_json;
use crate::cli::{Dirs, SimValidateArgs, TestbedArgs};

/// The manifest line the simulated copy replaces.
const LOCAL_TESTBED: &str = "[testbed]\nkind = \"local\"";

/// `naam sim-validate`.
pub fn sim_validate(args: SimValidateArgs) -> anyhow::Result<ExitCode> {
    let stop = crate::stop::install();
    let dirs = Dirs {
        results: args.results.clone(),
        figures: args.figures.clone(),
        experiments: args.experiments.clone(),
    };
    let testbed = TestbedArgs {
        eswitch: None,
        no_verify: false,
        busy_poll: false,
    };
    let flags = RunFlags {
        fresh: args.fresh,
        json: args.json,
        plot: true,
    };
    let mut rows = Vec::new();
    for id in &args.ids {
        let manifest = args.experiments.join(format!("{id}.toml"));
        let (local, simulated) = plans(&manifest, &args.profile)?;
        let run = |plan: &ExperimentPlan| -> anyhow::Result<RunDigest> {
            let done = run_one(plan, &manifest, &dirs, &testbed, flags, &stop)?;
            Ok(digest::digest(&RunDir::open(Path::new(
                &done.outcome.run_dir,
            )))?)
        };
        let (local_digest, sim_digest) = (run(&local)?, run(&simulated)?);
        rows.extend(compare(id, &local_digest, &sim_digest)?);
    }
    let [csv, png, _svg] =
        validation::write_validation(&rows, &args.profile, &args.results, &args.figures)?;
    if args.json {
        print_json(&rows)?;
    } else {
        print_table(&rows, &args.profile, &csv);
        println!("figure: {}", png.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifest's quick plan on the local testbed and its copy on the simulation testbed.
fn plans(manifest: &Path, profile: &str) -> anyhow::Result<(ExperimentPlan, ExperimentPlan)> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    anyhow::ensure!(
        text.contains(LOCAL_TESTBED),
        "{}: sim-validate compares manifests of the local testbed (`{LOCAL_TESTBED}`)",
        manifest.display()
    );
    let sim_text = text.replacen(
        LOCAL_TESTBED,
        &format!("[testbed]\nkind = \"sim\"\nprofile = \"{profile}\""),
        1,
    );
    let local = naam_plan::parse_manifest(&text, manifest, Variant::Quick)?;
    let simulated = naam_plan::parse_manifest(&sim_text, manifest, Variant::Quick)
        .with_context(|| format!("{} on the simulation testbed", manifest.display()))?;
    Ok((local, simulated))
}

/// Per series: best valid throughput, p50 and p99 errors over common points, shift time.
fn compare(id: &str, local: &RunDigest, simulated: &RunDigest) -> anyhow::Result<Vec<Row>> {
    let local_run = RunDir::open(Path::new(&local.run_dir));
    let sim_run = RunDir::open(Path::new(&simulated.run_dir));
    let plan = local_run.read_plan()?;
    let mut rows = Vec::new();
    for series in &local.series {
        let sim_series = simulated.series.iter().find(|s| s.series == series.series);
        let row = |metric, l: Option<f64>, s: Option<f64>| Row {
            experiment: id.to_string(),
            series: series.series.clone(),
            metric,
            local: l,
            simulated: s,
            error_percent: l
                .zip(s)
                .filter(|(l, _)| *l != 0.0)
                .map(|(l, s)| (s - l) / l * 100.0),
        };
        rows.push(row(
            Metric::Throughput,
            series.throughput_ops_per_s_max,
            sim_series.and_then(|s| s.throughput_ops_per_s_max),
        ));
        let shift = |d: Option<&digest::SeriesDigest>| {
            d.and_then(|d| d.shift_completions_ms.first().copied().flatten())
        };
        if !series.shift_completions_ms.is_empty() {
            rows.push(row(
                Metric::ShiftTime,
                shift(Some(series)),
                shift(sim_series),
            ));
        }
        let points: Vec<&str> = plan
            .points
            .iter()
            .filter(|p| p.series.to_string() == series.series)
            .map(|p| p.id.as_str())
            .collect();
        for (metric, pick) in [
            (
                Metric::P50Error,
                p50 as fn(&naam_results::summary::LatencyStats) -> u64,
            ),
            (Metric::P99Error, p99),
        ] {
            let error = median_relative_error(&local_run, &sim_run, &points, pick)?;
            rows.push(Row {
                experiment: id.to_string(),
                series: series.series.clone(),
                metric,
                local: None,
                simulated: None,
                error_percent: error,
            });
        }
    }
    Ok(rows)
}

fn p50(l: &naam_results::summary::LatencyStats) -> u64 {
    l.p50_ns
}

fn p99(l: &naam_results::summary::LatencyStats) -> u64 {
    l.p99_ns
}

/// The median over `points` measured validly in both runs of `(sim - local) / local` (percent).
fn median_relative_error(
    local: &RunDir,
    simulated: &RunDir,
    points: &[&str],
    pick: fn(&naam_results::summary::LatencyStats) -> u64,
) -> anyhow::Result<Option<f64>> {
    let mut errors = Vec::new();
    for &id in points {
        if !local.is_complete(id) || !simulated.is_complete(id) {
            continue;
        }
        let (l, s) = (local.read_summary(id)?, simulated.read_summary(id)?);
        let valid = l.validity.is_valid() && s.validity.is_valid();
        if let (true, Some(lt), Some(st)) = (valid, &l.traffic, &s.traffic) {
            let (lv, sv) = (pick(&lt.latency) as f64, pick(&st.latency) as f64);
            if lv > 0.0 {
                errors.push((sv - lv) / lv * 100.0);
            }
        }
    }
    Ok((!errors.is_empty()).then(|| super::quantile(&mut errors, 0.5)))
}

fn print_table(rows: &[Row], profile: &str, csv: &Path) {
    println!(
        "simulation (profile {profile}) against the local testbed, quick variants, this machine:"
    );
    println!("| experiment | series | metric | local | simulated | error |");
    println!("|---|---|---|---|---|---|");
    let cell = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1}"));
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.experiment,
            r.series,
            r.metric.label(),
            cell(r.local),
            cell(r.simulated),
            r.error_percent.map_or("—".into(), |e| format!("{e:+.0} %"))
        );
    }
    println!("table: {}", csv.display());
}
