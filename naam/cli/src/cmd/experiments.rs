//! `naam reproduce`, `run`, `check`, `plot`, `status`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use naam_plan::{ExperimentId, ExperimentPlan, Variant};
use naam_results::RunDir;
use naam_runner::{Progress, RunOptions, RunOutcome};
use serde::Serialize;

use super::{local_options, print_json};
use crate::cli::{
    CheckArgs, Dirs, ExpectArgs, PlotArgs, ReportArgs, ReproduceArgs, RunArgs, StatusArgs,
    TestbedArgs,
};

/// One experiment's result in `naam reproduce --json`.
#[derive(Debug, Serialize)]
pub(super) struct Reproduced {
    pub(super) outcome: RunOutcome,
    figures: Option<naam_analysis::FigureReport>,
    figure_error: Option<String>,
}

fn ids(names: &[String]) -> anyhow::Result<Vec<ExperimentId>> {
    if names.is_empty() {
        return Ok(ExperimentId::ALL.to_vec());
    }
    names
        .iter()
        .map(|n| {
            ExperimentId::parse(n).with_context(|| {
                format!("unknown experiment {n:?}; known: {}", ExperimentId::names())
            })
        })
        .collect()
}

fn variant(quick: bool) -> Variant {
    if quick { Variant::Quick } else { Variant::Full }
}

fn run_options(
    dirs: &Dirs,
    manifest: &Path,
    fresh: bool,
    json: bool,
    stop: &Arc<AtomicBool>,
) -> RunOptions {
    RunOptions {
        results_root: dirs.results.clone(),
        repo_dir: PathBuf::from("."),
        manifest: manifest.display().to_string(),
        fresh_suffix: fresh.then(fresh_suffix),
        progress: if json {
            Progress::Hidden
        } else {
            Progress::Bar
        },
        stop: Some(Arc::clone(stop)),
    }
}

fn fresh_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    )
}

/// The local testbed, the simulation testbed for a `kind = "sim"` plan, or the orchestrator for
/// a plan whose testbed is an inventory of real machines.
fn executor_for(
    plan: &ExperimentPlan,
    testbed: &TestbedArgs,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Box<dyn naam_runner::PointExecutor>> {
    if let naam_plan::Testbed::Sim { .. } = plan.testbed {
        return Ok(Box::new(naam_executors::SimExecutor::per_core()?));
    }
    let local = local_options(testbed)?;
    // Ctrl-C tears the point down, local or remote (the runner leaves it unfinished; it is
    // redone when the run resumes).
    let cancel = cancel_on(stop);
    if let naam_plan::Testbed::Inventory { .. } = plan.testbed {
        let options = naam_executors::OrchestratorOptions::new(local.role_binary.clone());
        return Ok(Box::new(naam_executors::OrchestratorExecutor::new(
            options, cancel,
        )));
    }
    sweep_dead_runs(&local.shm_dir);
    Ok(Box::new(
        naam_executors::LocalExecutor::new(local).with_cancel(cancel),
    ))
}

/// Removes region files and namespaces that killed runs left behind, and says so.
fn sweep_dead_runs(shm_dir: &std::path::Path) {
    let swept = naam_executors::sweep::sweep_dead_runs(shm_dir);
    if !swept.is_empty() {
        eprintln!("naam: {}", swept.describe());
    }
}

/// Period at which a stop flag is forwarded to the launch sequence's cancellation.
const STOP_FORWARD_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// A cancellation that is set once `stop` is.
fn cancel_on(stop: &Arc<AtomicBool>) -> naam_launch::Cancel {
    let cancel = naam_launch::Cancel::new();
    let (watched, on_stop) = (Arc::clone(stop), cancel.clone());
    std::thread::spawn(move || {
        while !watched.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(STOP_FORWARD_POLL);
        }
        on_stop.cancel();
    });
    cancel
}

/// Runs one plan on its testbed; analyses and plots it when asked.
/// How `naam run` / `naam reproduce` were asked to run one plan.
#[derive(Clone, Copy)]
pub(super) struct RunFlags {
    pub(super) fresh: bool,
    pub(super) json: bool,
    pub(super) plot: bool,
}

pub(super) fn run_one(
    plan: &ExperimentPlan,
    manifest: &Path,
    dirs: &Dirs,
    testbed: &TestbedArgs,
    flags: RunFlags,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Reproduced> {
    let RunFlags { fresh, json, plot } = flags;
    let mut executor = executor_for(plan, testbed, stop)?;
    let options = run_options(dirs, manifest, fresh, json, stop);
    let outcome = naam_runner::run_plan(plan, executor.as_mut(), &options)
        .with_context(|| format!("running {}", manifest.display()))?;
    let (mut figures, mut figure_error) = (None, None);
    if plot {
        let run_dir = Path::new(&outcome.run_dir);
        match naam_analysis::analyze_run(run_dir)
            .and_then(|_| naam_analysis::plot_run(run_dir, &dirs.figures))
        {
            Ok(f) => figures = Some(f),
            Err(e) => figure_error = Some(e.to_string()),
        }
    }
    Ok(Reproduced {
        outcome,
        figures,
        figure_error,
    })
}

fn describe(r: &Reproduced) -> String {
    let o = &r.outcome;
    let mut text = format!(
        "{} ({}): {}/{} points measured, {} skipped as already complete, {:.1} s → {}",
        o.experiment,
        o.variant,
        o.points_measured,
        o.points_total,
        o.points_skipped,
        o.elapsed_ms as f64 / 1000.0,
        o.run_dir
    );
    if let Some(change) = &o.code_changed {
        text += &format!("\n  note: {change}");
    }
    for p in &o.points_invalid {
        text += &format!("\n  invalid point {p} (see its summary.json)");
    }
    for f in &o.points_failed {
        text += &format!("\n  FAILED point {}: {}", f.point, f.error);
    }
    if let Some(s) = &o.stopped {
        text += &format!("\n  stopped: {s}");
    }
    match (&r.figures, &r.figure_error) {
        (Some(f), _) => text += &format!("\n  figure: {} and {}", f.png, f.svg),
        (None, Some(e)) => text += &format!("\n  no figure: {e}"),
        _ => {}
    }
    text
}

/// `naam reproduce`.
pub fn reproduce(args: ReproduceArgs) -> anyhow::Result<ExitCode> {
    let stop = crate::stop::install();
    let scale = machine_scale(&args)?;
    let mut done = Vec::new();
    'experiments: for id in ids(&args.ids)? {
        let local = naam_plan::manifest_path(&args.dirs.experiments, id);
        let simulated = args
            .dirs
            .experiments
            .join(format!("{id}{SIM_MANIFEST_SUFFIX}.toml"));
        let simulated_dirs = Dirs {
            figures: args.dirs.figures.join(SIM_FIGURES_DIR),
            ..args.dirs.clone()
        };
        let runs = [(local, &args.dirs), (simulated, &simulated_dirs)];
        for (manifest, dirs) in runs.iter().filter(|(m, _)| m.exists()) {
            done.push(reproduce_manifest(manifest, dirs, &args, scale, &stop)?);
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break 'experiments;
            }
        }
    }
    if args.json {
        print_json(&done)?;
    } else {
        print_summary(&done);
    }
    write_reproduce_report(&args.dirs.results, args.json);
    if !args.json && args.quick {
        print_expectations(&args.dirs, &done);
    }
    let failed = done
        .iter()
        .any(|r| !r.outcome.points_failed.is_empty() || r.figures.is_none());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// How long each in-flight count of the sizing ceiling is measured.
const SIZING_CEILING_DURATION: std::time::Duration = std::time::Duration::from_secs(1);

/// The scale of a quick reproduction's local loads on this machine (issue 16): its loopback UDP
/// ceiling against the development VM's, on which the quick manifests were sized. `None` for a
/// full reproduction, with `--loads-as-written`, or on a machine like the development VM.
fn machine_scale(args: &ReproduceArgs) -> anyhow::Result<Option<naam_plan::LoadScale>> {
    if !args.quick || args.loads_as_written {
        return Ok(None);
    }
    let ceiling = super::bench::best_udp_ceiling(SIZING_CEILING_DURATION)?;
    let measured = ceiling.requests_per_s.round() as u64;
    let scale = naam_plan::LoadScale::for_ceiling(measured);
    if !args.json {
        let verdict = scale.map_or("loads kept as written".to_string(), |s| {
            format!("local quick loads × {:.2}", s.factor())
        });
        eprintln!(
            "== sizing the quick variants: loopback UDP ceiling {} k req/s ({} in flight; the \
             development VM's: {} k) → {verdict}",
            measured / 1000,
            ceiling.batch,
            naam_plan::REFERENCE_CEILING_REQ_PER_S / 1000
        );
    }
    Ok(scale)
}

/// An experiment's manifest on the simulation testbed sits beside its local one, named
/// `<id>-sim.toml`; `naam reproduce` runs both.
const SIM_MANIFEST_SUFFIX: &str = "-sim";
/// Where the simulated runs' figures go, inside the figures folder (their names are the
/// experiments', like the local figures').
const SIM_FIGURES_DIR: &str = "simulated";

/// One manifest of `naam reproduce`: plan, run, figure, and a line on the terminal.
fn reproduce_manifest(
    manifest: &Path,
    dirs: &Dirs,
    args: &ReproduceArgs,
    scale: Option<naam_plan::LoadScale>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Reproduced> {
    let plan = naam_plan::load_manifest_sized(manifest, variant(args.quick), scale)?;
    if !args.json {
        let clock = match plan.testbed {
            naam_plan::Testbed::Sim { .. } => " of virtual time",
            _ => "",
        };
        eprintln!(
            "== {} ({}): {} points, ~{:.0} s{clock} planned",
            plan.id,
            plan.testbed.label(),
            plan.points.len(),
            plan.planned_ms() as f64 / 1000.0
        );
    }
    let flags = RunFlags {
        fresh: args.fresh,
        json: args.json,
        plot: true,
    };
    let r = run_one(&plan, manifest, dirs, &args.testbed, flags, stop)?;
    if !args.json {
        println!("{}", describe(&r));
    }
    Ok(r)
}

/// The end of `naam reproduce`: each run's digest, computed from the summaries on disk, and
/// where its figure is.
fn print_summary(done: &[Reproduced]) {
    println!("== summary (from the points' summaries on disk)");
    for r in done {
        match naam_results::digest::digest(&RunDir::open(Path::new(&r.outcome.run_dir))) {
            Ok(d) => println!("{}", naam_results::digest::describe_digest(&d)),
            Err(e) => println!("{}: no digest: {e}", r.outcome.experiment),
        }
        if let Some(f) = &r.figures {
            println!("  figure: {}", f.png);
        }
    }
}

/// The end of a quick `naam reproduce`: the expectations of the experiments it ran, checked
/// against the results folder (printed, not fatal: the runs are what `reproduce` is for).
fn print_expectations(dirs: &Dirs, done: &[Reproduced]) {
    let path = dirs.experiments.join("expectations.toml");
    if !path.exists() {
        return;
    }
    match naam_analysis::expect::load_expectations(&path) {
        Ok(mut file) => {
            file.expectations
                .retain(|e| done.iter().any(|r| r.outcome.experiment == e.experiment));
            let outcomes = naam_analysis::expect::check(&dirs.results, &file);
            println!("== expectations ({})", path.display());
            print!("{}", naam_analysis::expect::describe(&outcomes));
        }
        Err(e) => eprintln!("no expectations check: {e}"),
    }
}

/// `naam expect`.
pub fn expect(args: ExpectArgs) -> anyhow::Result<ExitCode> {
    let mut file = naam_analysis::expect::load_expectations(&args.expectations)?;
    if let Some(unknown) = args
        .experiments
        .iter()
        .find(|id| naam_plan::ExperimentId::parse(id).is_none())
    {
        anyhow::bail!(
            "unknown experiment {unknown:?}: one of {}",
            naam_plan::ExperimentId::names()
        );
    }
    if !args.experiments.is_empty() {
        file.expectations
            .retain(|e| args.experiments.contains(&e.experiment));
    }
    let outcomes = naam_analysis::expect::check(&args.results, &file);
    if args.json {
        print_json(&outcomes)?;
    } else {
        print!("{}", naam_analysis::expect::describe(&outcomes));
    }
    Ok(if naam_analysis::expect::all_pass(&outcomes) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The report page of the results folder after `naam reproduce` (a page that cannot be written
/// is said, not fatal: the runs and figures are what `reproduce` is for).
fn write_reproduce_report(results: &Path, json: bool) {
    let out = results.join(naam_analysis::report::REPORT_FILE);
    match naam_analysis::report::write_report(results, &out) {
        Ok(summary) if !json => println!("  report: {}", summary.out),
        Ok(_) => {}
        Err(e) => eprintln!("no report page: {e}"),
    }
}

/// `naam run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let stop = crate::stop::install();
    let plan = naam_plan::load_manifest(&args.manifest, variant(args.quick))?;
    let r = run_one(
        &plan,
        &args.manifest,
        &args.dirs,
        &args.testbed,
        RunFlags {
            fresh: args.fresh,
            json: args.json,
            plot: args.plot,
        },
        &stop,
    )?;
    if args.json {
        print_json(&r)?
    } else {
        println!("{}", describe(&r))
    }
    Ok(if r.outcome.points_failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `naam check`.
pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let manifests: Vec<PathBuf> = if args.manifests.is_empty() {
        ExperimentId::ALL
            .iter()
            .map(|&id| naam_plan::manifest_path(&args.experiments, id))
            .collect()
    } else {
        args.manifests.clone()
    };
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for m in &manifests {
        match naam_runner::check(m) {
            Ok(r) => reports.push(r),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if args.json {
        print_json(&serde_json::json!({ "manifests": reports, "errors": errors }))?;
    } else {
        for r in &reports {
            let unit = if r.virtual_time {
                "s of virtual time"
            } else {
                "s"
            };
            let variants: Vec<String> = r
                .variants
                .iter()
                .map(|v| {
                    format!(
                        "{}: {} points, ~{} {unit}",
                        v.variant,
                        v.points,
                        v.planned_ms / 1000
                    )
                })
                .collect();
            println!(
                "ok {} ({}): {}",
                r.manifest,
                r.experiment,
                variants.join("; ")
            );
        }
        for e in &errors {
            eprintln!("{e}");
        }
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `naam plot`.
pub fn plot(args: PlotArgs) -> anyhow::Result<ExitCode> {
    let report = naam_analysis::plot_all(&args.dirs.results, &args.dirs.figures, &ids(&args.ids)?);
    if args.json {
        print_json(&report)?;
    } else {
        for f in &report.figures {
            println!(
                "{}: {} and {}{}",
                f.experiment,
                f.png,
                f.svg,
                if f.partial {
                    " (from a partial run)"
                } else {
                    ""
                }
            );
        }
        for (id, why) in &report.skipped {
            eprintln!("{id}: no figure: {why}");
        }
    }
    Ok(if report.figures.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `naam status`.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let report = naam_runner::status(&args.results, args.experiment.as_deref());
    if args.json {
        print_json(&report)?;
    } else {
        if report.runs.is_empty() {
            println!("no runs under {}", args.results.display());
        }
        for r in &report.runs {
            println!("{}", naam_runner::describe_run(r));
            match naam_results::digest::digest(&RunDir::open(Path::new(&r.path))) {
                Ok(d) => println!("  {}", naam_results::digest::describe_digest(&d)),
                Err(e) => println!("  no digest: {e}"),
            }
        }
        for u in &report.unreadable {
            eprintln!("unreadable: {u}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `naam report`.
pub fn report(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.results.join(naam_analysis::report::REPORT_FILE));
    let summary = naam_analysis::report::write_report(&args.results, &out)
        .with_context(|| format!("writing the report of {}", args.results.display()))?;
    if args.json {
        print_json(&summary)?;
    } else {
        println!(
            "{}: {} experiments with a run, {} figures embedded",
            summary.out,
            summary.experiments_with_run.len(),
            summary.figures_embedded
        );
        for (id, why) in &summary.missing {
            eprintln!("{id}: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
