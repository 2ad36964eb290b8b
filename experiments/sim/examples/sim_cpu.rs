//! The bench's point (`benches/sim_mica.rs`) timed in CPU-seconds of the simulating thread, the
//! measure that means something on a busy machine, and the raw files of a set of points, to show
//! that a speed change leaves results byte-identical.
//!
//! - `cargo run --release -p naam-sim --example sim_cpu -- cpu <series> <runs>`: per run, simulated
//!   requests per CPU-second (`/proc/thread-self/schedstat`'s time on CPU) of the run alone (the
//!   steady state: set-up excluded) and of the whole point (the set-up — dataset, regions,
//!   functions, JIT compilation — included).
//! - `cargo run --release -p naam-sim --example sim_cpu -- files <dir>`: the raw files of the
//!   point under `host`, `nic`, `client`, `naam-adaptive`, `naam-adaptive` with a hog, `ipipe`
//!   and `ipipe-processes`, one folder each.

use std::path::Path;

use naam_sim::point::{HogWindow, SimPoint};
use naam_types::PolicyKind;

#[path = "../benches/common/mod.rs"]
mod common;

use common::{MS, config};

/// Most runs of one `cpu` invocation.
const RUNS_MAX: u32 = 100;
/// The series whose files `files` writes.
const FILE_SERIES: [&str; 6] = [
    "host",
    "nic",
    "client",
    "naam-adaptive",
    "ipipe",
    "ipipe-processes",
];

/// The calling thread's time on a CPU so far (ns), from the kernel's scheduler statistics.
fn thread_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    let first = text.split_whitespace().next().expect("a schedstat field");
    first.parse().expect("ns on CPU")
}

fn cpu(series: &str, runs: u32) {
    let kind = PolicyKind::from_name(series).expect("a series name");
    for run in 0..runs.min(RUNS_MAX) {
        let out = tempfile::tempdir().expect("tempdir");
        let setup_from_ns = thread_cpu_ns();
        let point = SimPoint::new(config(kind)).expect("setup");
        let run_from_ns = thread_cpu_ns();
        let outcome = point.run(out.path()).expect("run");
        let end_ns = thread_cpu_ns();
        let (setup_s, run_s) = (
            (run_from_ns - setup_from_ns) as f64 / 1e9,
            (end_ns - run_from_ns) as f64 / 1e9,
        );
        let requests: u64 = outcome.clients.iter().map(|c| c.sent).sum();
        println!(
            "{series} run {run}: {requests} requests, {} events, {run_s:.3} CPU-s, {:.0} requests \
             per CPU-second (run); set-up {setup_s:.3} CPU-s, {:.0} requests per CPU-second with \
             it (whole point)",
            outcome.record.events,
            requests as f64 / run_s,
            requests as f64 / (setup_s + run_s)
        );
    }
}

fn files(dir: &Path) {
    for series in FILE_SERIES {
        let kind = PolicyKind::from_name(series).expect("a series name");
        let out = dir.join(series);
        std::fs::create_dir_all(&out).expect("folder");
        SimPoint::new(config(kind))
            .expect("setup")
            .run(&out)
            .expect("run");
    }
    let mut hogged = config(PolicyKind::NaamAdaptive);
    hogged.hog = Some(HogWindow {
        start_ns: 10 * MS,
        stop_ns: 30 * MS,
    });
    let out = dir.join("naam-adaptive-hog");
    std::fs::create_dir_all(&out).expect("folder");
    SimPoint::new(hogged)
        .expect("setup")
        .run(&out)
        .expect("run");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("cpu") => {
            let series = args.get(1).map_or("nic", String::as_str);
            let runs = args.get(2).map_or(3, |s| s.parse().expect("runs"));
            cpu(series, runs);
        }
        Some("files") => files(Path::new(args.get(1).expect("an output folder"))),
        _ => eprintln!("usage: sim_cpu cpu <series> <runs> | sim_cpu files <dir>"),
    }
}
