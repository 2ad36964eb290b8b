//! Measures, on this machine, the inputs of the iPipe isolation model
//! (`naam_ipipe::cost::IsolationCosts` and `Isolation::ProcessPerTenant`):
//!
//! - a context switch between two threads, and between two processes, on one CPU (one-way time
//!   of a pipe ping-pong: a switch plus a one-byte pipe transfer);
//! - a hand-off through shared memory to a process polling on another CPU, and through a pipe
//!   to a blocked process on another CPU (one-way);
//! - the memory one more process costs: the private resident memory and page tables of an idle
//!   process running this binary (which links the iPipe runtime and both native actors), plus
//!   its kernel stack.
//!
//! ```sh
//! cargo run --release -p naam-ipipe --example isolation_costs [-- --json]
//! ```
//!
//! Each figure is half the median (and the 10th percentile) of `ROUND_TRIPS` single round-trip
//! times: on a busy machine, the round trips another process's time slice interrupted fall in
//! the upper tail instead of inflating a mean. The load average is printed with the figures.

#[path = "../benches/isolation/probes.rs"]
mod probes;

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};

use probes::{Peer, ProbeError, cpus, one_way_quantile_ns, pipe_ping_pong, shm_handoff};

/// Round trips per figure.
const ROUND_TRIPS: u64 = 20_000;
/// Kernel stack of a task on x86-64 and arm64 Linux (`THREAD_SIZE`, 16 KiB).
const KERNEL_STACK_BYTES: u64 = 16 * 1024;
/// The argument that turns this binary into an idle process to be measured.
const IDLE_ARG: &str = "--idle-process";

/// (median, 10th percentile) of the one-way time of a probe's round trips.
fn one_way(
    run: impl FnOnce(&mut Vec<u64>) -> Result<std::time::Duration, ProbeError>,
) -> Result<(f64, f64), ProbeError> {
    let mut samples = Vec::with_capacity(ROUND_TRIPS as usize);
    run(&mut samples)?;
    Ok((
        one_way_quantile_ns(&mut samples, 500),
        one_way_quantile_ns(&mut samples, 100),
    ))
}

/// Private memory (kB fields of smaps_rollup) and page tables (VmPTE) of process `pid`.
fn process_bytes(pid: u32) -> Result<(u64, u64), ProbeError> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|e| ProbeError(format!("/proc/{pid}/{file}: {e}")))
    };
    let field_kb = |text: &str, name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let rollup = read("smaps_rollup")?;
    let private_kb = field_kb(&rollup, "Private_Clean:") + field_kb(&rollup, "Private_Dirty:");
    let pte_kb = field_kb(&read("status")?, "VmPTE:");
    Ok((private_kb * 1024, pte_kb * 1024))
}

/// Starts this binary as an idle process, measures it, and stops it.
fn idle_process_bytes() -> Result<(u64, u64), ProbeError> {
    let exe = std::env::current_exe().map_err(|e| ProbeError(format!("current_exe: {e}")))?;
    let mut child = Command::new(exe)
        .arg(IDLE_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| ProbeError(format!("spawn the idle process: {e}")))?;
    let mut ready = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut ready);
    }
    let measured = process_bytes(child.id());
    drop(child.stdin.take());
    let _ = child.wait();
    measured
}

/// The 1-minute load average (others' work on the machine skews every figure).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn idle_process() {
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

fn main() -> Result<(), ProbeError> {
    if std::env::args().any(|a| a == IDLE_ARG) {
        idle_process();
        return Ok(());
    }
    let json = std::env::args().any(|a| a == "--json");
    let load_before = load_average();
    let thread = one_way(|s| pipe_ping_pong(Peer::Thread, 0, 0, ROUND_TRIPS, Some(s)))?;
    let process = one_way(|s| pipe_ping_pong(Peer::Process, 0, 0, ROUND_TRIPS, Some(s)))?;
    let (shm, pipe) = if cpus() >= 2 {
        (
            Some(one_way(|s| shm_handoff(0, 1, ROUND_TRIPS, Some(s)))?),
            Some(one_way(|s| {
                pipe_ping_pong(Peer::Process, 0, 1, ROUND_TRIPS, Some(s))
            })?),
        )
    } else {
        (None, None)
    };
    let (private, pte) = idle_process_bytes()?;
    let process_bytes = private + pte + KERNEL_STACK_BYTES;
    if json {
        let v = |o: Option<(f64, f64)>| o.map_or("null".into(), |(m, _)| format!("{m:.0}"));
        println!(
            "{{\"cpus\":{},\"load_average\":\"{load_before}\",\"thread_switch_ns\":{:.0},\"process_switch_ns\":{:.0},\"shm_handoff_ns\":{},\"pipe_handoff_ns\":{},\"process_private_bytes\":{private},\"process_page_table_bytes\":{pte},\"process_bytes\":{process_bytes}}}",
            cpus(),
            thread.0,
            process.0,
            v(shm),
            v(pipe),
        );
        return Ok(());
    }
    println!(
        "isolation costs on this machine ({} CPUs): one-way ns, median (p10) of {ROUND_TRIPS} round trips",
        cpus()
    );
    println!(
        "  load average before / after: {load_before} / {}",
        load_average()
    );
    let show = |v: Option<(f64, f64)>| {
        v.map_or("n/a (one CPU)".into(), |(m, p)| {
            format!("{m:>8.0} ({p:.0})")
        })
    };
    println!(
        "  thread switch, same CPU (pipe):       {}",
        show(Some(thread))
    );
    println!(
        "  process switch, same CPU (pipe):      {}",
        show(Some(process))
    );
    println!("  hand-off to a polling process (shm):  {}", show(shm));
    println!("  hand-off to a blocked process (pipe): {}", show(pipe));
    println!(
        "  one more process: {} KiB private + {} KiB page tables + {} KiB kernel stack = {} KiB",
        private / 1024,
        pte / 1024,
        KERNEL_STACK_BYTES / 1024,
        process_bytes / 1024
    );
    Ok(())
}
