//! `naam testbed soak`: a long point at a fixed share of this machine's capacity, watching every
//! role process's resident memory. It measures the host placement's capacity first (an offered
//! load above what the host serves, like `naam testbed bench`), then runs MICA YCSB-B under
//! NAAM-adaptive at [`LOAD_FRACTION_DEFAULT`] of it for the soak's length, sampling each role's
//! `VmRSS` every [`RSS_SAMPLE_PERIOD`]. It reports, per role, the growth from the resident size
//! once the warm-up and [`RSS_BASELINE_SHARE`] of the soak have passed since the role started, to
//! the end (goal below
//! [`RSS_GROWTH_GOAL_PERCENT`]), and every load sample lost on the way to `samples.jsonl` or
//! refused by the controller (goal zero). Numbers are this machine's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use naam_results::raw::{self, ClientSummary, ServerSummary};
use serde::Serialize;

use super::bench::{WARMUP_MS, manifest, plan_of};
use super::{local_options, print_json};
use crate::cli::SoakArgs;

/// Offered load of the soak, as a share of the measured capacity.
pub const LOAD_FRACTION_DEFAULT: f64 = 0.7;
/// How often each role's resident size is read.
const RSS_SAMPLE_PERIOD: Duration = Duration::from_secs(1);
/// Share of the soak after which the resident size is the baseline (allocator arenas, socket
/// buffers and the interval logs' first buffers are in place by then: an assumption the report's
/// per-second samples let a reader check).
const RSS_BASELINE_SHARE: f64 = 0.1;
/// Most growth of a role's resident size over the soak that counts as no leak.
const RSS_GROWTH_GOAL_PERCENT: f64 = 5.0;
/// Offered load of the capacity run, above what the host placement serves on a small machine.
const CAPACITY_OFFERED_OPS_PER_S: u64 = 200_000;
/// Length of the capacity run.
const CAPACITY_MEASURE_MS: u64 = 2_000;
/// Interval of the soak's interval logs.
const SOAK_INTERVAL_MS: u64 = 1_000;
/// File (in the soak's folder) with every resident-size sample.
const RSS_CSV: &str = "soak-rss.csv";

/// One reading of one role's resident size.
#[derive(Debug, Clone, Serialize)]
struct RssSample {
    t_ms: u64,
    launch: String,
    pid: u32,
    rss_kib: u64,
}

/// A role's resident size over the soak.
#[derive(Debug, Serialize)]
struct RoleRss {
    launch: String,
    rss_kib_baseline: u64,
    rss_kib_end: u64,
    growth_percent: f64,
    /// Growth over the second half of the role's readings alone: a leak grows there too, a
    /// working set that fills up during the first minutes does not.
    second_half_growth_percent: f64,
}

/// `naam testbed soak --json`.
#[derive(Debug, Serialize)]
struct SoakReport {
    machine_note: &'static str,
    capacity_ops_per_s: f64,
    offered_ops_per_s: u64,
    achieved_ops_per_s: f64,
    soak_s: u64,
    roles: Vec<RoleRss>,
    rss_growth_goal_percent: f64,
    load_samples_lost: u64,
    verify_failures: u64,
    dropped_datagrams: u64,
    rss_csv: PathBuf,
}

/// `naam testbed soak`.
pub fn soak(args: SoakArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.load_fraction > 0.0 && args.load_fraction <= 1.0,
        "--load-fraction {}: must be in (0, 1]",
        args.load_fraction
    );
    anyhow::ensure!(args.seconds >= 1, "--seconds must be at least 1");
    let executor = naam_executors::LocalExecutor::new(local_options(&args.testbed)?);
    let capacity = capacity_ops_per_s(&executor, &args.out.join("capacity"))?;
    let offered = ((capacity * args.load_fraction) as u64).max(1);
    let soak_ms = args.seconds * 1000;
    let text = manifest(
        "mica-ycsb-b",
        "naam-adaptive",
        offered,
        soak_ms,
        SOAK_INTERVAL_MS,
        None,
    );
    let plan = plan_of(&text)?;
    let dir = args.out.join("soak");
    std::fs::create_dir_all(&dir)?;
    let done = AtomicBool::new(false);
    let (result, samples) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| sample_rss_until(&done));
        let result = executor.run(&plan, &plan.points[0], &dir);
        done.store(true, Ordering::SeqCst);
        (result, sampler.join())
    });
    result?;
    let samples = samples.map_err(|_| anyhow::anyhow!("the RSS sampler panicked"))?;
    write_csv(&dir.join(RSS_CSV), &samples)?;
    let report = report(&dir, capacity, offered, soak_ms, &samples)?;
    if args.json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Achieved ops/s of the host placement under an offered load it cannot serve.
fn capacity_ops_per_s(executor: &naam_executors::LocalExecutor, dir: &Path) -> anyhow::Result<f64> {
    let text = manifest(
        "mica-ycsb-b",
        "host",
        CAPACITY_OFFERED_OPS_PER_S,
        CAPACITY_MEASURE_MS,
        100,
        None,
    );
    let plan = plan_of(&text)?;
    std::fs::create_dir_all(dir)?;
    executor.run(&plan, &plan.points[0], dir)?;
    let client: ClientSummary =
        raw::read_json(&dir.join(raw::client_summary_file(0)), "client summary")?;
    Ok(client.achieved_ops_per_s)
}

/// Reads every role process's resident size each [`RSS_SAMPLE_PERIOD`] until `done`.
fn sample_rss_until(done: &AtomicBool) -> Vec<RssSample> {
    let started = Instant::now();
    let mut samples = Vec::new();
    while !done.load(Ordering::SeqCst) {
        let t_ms = started.elapsed().as_millis() as u64;
        for (pid, launch) in role_processes() {
            if let Some(rss_kib) = rss_kib(pid) {
                samples.push(RssSample {
                    t_ms,
                    launch,
                    pid,
                    rss_kib,
                });
            }
        }
        std::thread::sleep(RSS_SAMPLE_PERIOD);
    }
    samples
}

/// This process's `naam-role` children, named by their launch (their working directory's name:
/// `host`, `nic`, `client-0`, ...).
fn role_processes() -> Vec<(u32, String)> {
    let me = std::process::id();
    let role_binary = Path::new(naam_launch::binary::ROLE_BINARY_RELATIVE)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| parent_of(pid) == Some(me))
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == role_binary)
        })
        .filter_map(|pid| {
            let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
            Some((pid, cwd.file_name()?.to_string_lossy().into_owned()))
        })
        .collect()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    fields.split_whitespace().nth(1)?.parse().ok()
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss_kib(&status)
}

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.split_whitespace().next()?.parse().ok()
}

fn write_csv(path: &Path, samples: &[RssSample]) -> anyhow::Result<()> {
    let mut text = String::from("t_ms,launch,pid,rss_kib\n");
    for s in samples {
        text.push_str(&format!(
            "{},{},{},{}\n",
            s.t_ms, s.launch, s.pid, s.rss_kib
        ));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Per role: its first reading at least `baseline_after_ms` after the role's own first reading
/// (roles start one after another, and each loads or generates before it measures), and its last.
fn role_growth(samples: &[RssSample], baseline_after_ms: u64) -> Vec<RoleRss> {
    let mut by_launch: BTreeMap<&str, Vec<&RssSample>> = BTreeMap::new();
    for s in samples {
        by_launch.entry(&s.launch).or_default().push(s);
    }
    by_launch
        .into_iter()
        .filter_map(|(launch, readings)| {
            let started_ms = readings.first()?.t_ms;
            let first = readings
                .iter()
                .find(|s| s.t_ms >= started_ms + baseline_after_ms)?;
            let last = readings.last()?;
            let middle = readings[readings.len() / 2];
            let growth =
                |from: &RssSample| (last.rss_kib as f64 / from.rss_kib.max(1) as f64 - 1.0) * 100.0;
            Some(RoleRss {
                launch: launch.to_string(),
                rss_kib_baseline: first.rss_kib,
                rss_kib_end: last.rss_kib,
                growth_percent: growth(first),
                second_half_growth_percent: growth(middle),
            })
        })
        .collect()
}

fn report(
    dir: &Path,
    capacity: f64,
    offered: u64,
    soak_ms: u64,
    samples: &[RssSample],
) -> anyhow::Result<SoakReport> {
    let client: ClientSummary =
        raw::read_json(&dir.join(raw::client_summary_file(0)), "client summary")?;
    let server: ServerSummary = raw::read_json(&dir.join(raw::SERVER_FILE), "server summary")?;
    let host: naam_roles::host::HostCounters = raw::read_json(
        &dir.join(naam_executors::point::ROLES_DIR)
            .join(naam_executors::launches::HOST_LAUNCH)
            .join(naam_roles::host::COUNTERS_FILE),
        "host counters",
    )?;
    let control = &host.control_drops;
    let refused = control.unknown_peer
        + control.bad_tag
        + control.undecodable
        + control.stale
        + control.out_of_range;
    let baseline_after_ms = WARMUP_MS + (soak_ms as f64 * RSS_BASELINE_SHARE) as u64;
    Ok(SoakReport {
        machine_note: "measured on this machine by `naam testbed soak`; not a hardware testbed result",
        capacity_ops_per_s: capacity,
        offered_ops_per_s: offered,
        achieved_ops_per_s: client.achieved_ops_per_s,
        soak_s: soak_ms / 1000,
        roles: role_growth(samples, baseline_after_ms),
        rss_growth_goal_percent: RSS_GROWTH_GOAL_PERCENT,
        load_samples_lost: server.load_samples_dropped + refused,
        verify_failures: client.verify_failures,
        dropped_datagrams: server.dropped.total(),
        rss_csv: dir.join(RSS_CSV),
    })
}

fn print_report(report: &SoakReport) {
    println!("{}", report.machine_note);
    println!(
        "capacity (host placement): {:.0} ops/s; soak: {} s at {} ops/s offered, {:.0} achieved",
        report.capacity_ops_per_s,
        report.soak_s,
        report.offered_ops_per_s,
        report.achieved_ops_per_s
    );
    for role in &report.roles {
        let verdict = if role.growth_percent < report.rss_growth_goal_percent {
            "ok"
        } else {
            "ABOVE GOAL"
        };
        println!(
            "  {:<10} RSS {} KiB → {} KiB: {:+.1} % (goal < {} %) {verdict}; second half {:+.1} %",
            role.launch,
            role.rss_kib_baseline,
            role.rss_kib_end,
            role.growth_percent,
            report.rss_growth_goal_percent,
            role.second_half_growth_percent
        );
    }
    println!(
        "load samples lost: {} (goal 0); verify failures: {}; dropped datagrams: {}",
        report.load_samples_lost, report.verify_failures, report.dropped_datagrams
    );
    println!("every RSS reading: {}", report.rss_csv.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: u64, launch: &str, rss_kib: u64) -> RssSample {
        RssSample {
            t_ms,
            launch: launch.to_string(),
            pid: 1,
            rss_kib,
        }
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tnaam-role\nVmPeak:\t 9000 kB\nVmRSS:\t    4242 kB\n";
        assert_eq!(parse_vm_rss_kib(status), Some(4242));
        assert_eq!(parse_vm_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn growth_runs_from_the_first_reading_after_the_baseline_to_the_last() {
        let samples = [
            sample(0, "host", 10),
            sample(1000, "host", 100),
            sample(2000, "host", 110),
            sample(1500, "nic", 50),
        ];
        let roles = role_growth(&samples, 500);
        assert_eq!(roles.len(), 1, "the NIC has no reading after its baseline");
        assert_eq!(roles[0].rss_kib_baseline, 100);
        assert_eq!(roles[0].rss_kib_end, 110);
        assert!((roles[0].growth_percent - 10.0).abs() < 1e-9);
    }
}
