//! Counters of the measured phase only, as the role files carry them. The engine's server worker
//! snapshots its counters when the measured phase begins and when it ends
//! (`naam_engine::server::ServerWorker::measured_totals`); this module turns them into the files'
//! shape (warm-up excluded, as everywhere in the results).

use naam_engine::server::WorkerTotals;
use naam_results::raw::{DroppedDatagrams, LocationCounters};
use serde::{Deserialize, Serialize};

/// The totals that matter, as plain numbers (cheap to snapshot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Messages completed (any outcome).
    pub completions: u64,
    /// Messages answered with a reply.
    pub ok: u64,
    /// Steps run.
    pub steps: u64,
    /// Retries.
    pub retries: u64,
    /// Traps.
    pub traps: u64,
    /// Denied accesses.
    pub access_denials: u64,
    /// Pushbacks.
    pub pushbacks: u64,
    /// eBPF instructions.
    pub insn: u64,
    /// Worker busy time.
    pub busy_ns: u64,
}

impl Totals {
    /// The file's subset of a worker's totals.
    pub fn of(totals: &WorkerTotals) -> Totals {
        Totals {
            completions: totals.completions,
            ok: totals.ok,
            steps: totals.steps,
            retries: totals.retries,
            traps: totals.traps,
            access_denials: totals.access_denials,
            pushbacks: totals.pushbacks,
            insn: totals.insn,
            busy_ns: totals.busy_ns,
        }
    }

    /// Field-by-field sum.
    pub fn plus(&self, other: &Totals) -> Totals {
        Totals {
            completions: self.completions + other.completions,
            ok: self.ok + other.ok,
            steps: self.steps + other.steps,
            retries: self.retries + other.retries,
            traps: self.traps + other.traps,
            access_denials: self.access_denials + other.access_denials,
            pushbacks: self.pushbacks + other.pushbacks,
            insn: self.insn + other.insn,
            busy_ns: self.busy_ns + other.busy_ns,
        }
    }

    /// The results schema's counters, with the busy fraction over `workers × phase_ns`.
    pub fn location_counters(&self, workers: u32, phase_ns: u64) -> LocationCounters {
        let capacity_ns = u64::from(workers.max(1)) * phase_ns.max(1);
        LocationCounters {
            completions: self.completions,
            steps: self.steps,
            retries: self.retries,
            traps: self.traps,
            access_denials: self.access_denials,
            pushbacks: self.pushbacks,
            busy_fraction: (self.busy_ns as f64 / capacity_ns as f64).min(1.0),
        }
    }
}

/// What a location's workers received and did not serve (whole run).
pub fn dropped(reports: &[crate::serve::WorkerReport]) -> DroppedDatagrams {
    reports
        .iter()
        .fold(DroppedDatagrams::default(), |acc, r| DroppedDatagrams {
            malformed: acc.malformed + r.malformed,
            unexpected: acc.unexpected + r.unexpected,
            denied_reads: acc.denied_reads,
            unsent_replies: acc.unsent_replies + r.send_errors,
        })
}

/// What a host-side thread does, for the CPU account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadRole {
    /// A host worker.
    Worker,
    /// The emulated RNIC.
    Rnic,
    /// The controller.
    Controller,
}

/// Host-side threads register here when they start, so their CPU clocks can be read at the
/// measured phase's boundaries.
#[derive(Debug, Default)]
pub struct CpuRegistry {
    threads: std::sync::Mutex<Vec<(ThreadRole, crate::os::ThreadClock)>>,
}

/// Most threads a registry holds (a host has at most a few dozen workers).
pub const REGISTERED_THREADS_MAX: usize = 1024;

impl CpuRegistry {
    /// Registers the calling thread as `role` (ignored past [`REGISTERED_THREADS_MAX`] or when
    /// the kernel has no clock for it; the process clock still counts it as "other").
    pub fn register_current(&self, role: ThreadRole) {
        let Some(clock) = crate::os::ThreadClock::current() else {
            return;
        };
        let mut threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        if threads.len() < REGISTERED_THREADS_MAX {
            threads.push((role, clock));
        }
    }

    fn snapshot(&self, cores: &[u32], stat: &str) -> CpuSnapshot {
        let threads = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_role = [0u64; 3];
        for (role, clock) in threads.iter() {
            by_role[*role as usize] += clock.cpu_ns();
        }
        let (softirq_ticks, irq_ticks) = interrupt_ticks(stat, cores);
        CpuSnapshot {
            by_role,
            process_ns: crate::os::process_cpu_ns(),
            softirq_ticks,
            irq_ticks,
            at_ns: crate::os::monotonic_ns(),
        }
    }
}

/// The clocks at one instant.
#[derive(Debug, Clone, Copy)]
struct CpuSnapshot {
    by_role: [u64; 3],
    process_ns: u64,
    softirq_ticks: u64,
    irq_ticks: u64,
    at_ns: u64,
}

/// `(softirq, irq)` ticks summed over `cores` in a `/proc/stat` text (the `cpuN` lines: user
/// nice system idle iowait irq softirq …).
pub fn interrupt_ticks(stat: &str, cores: &[u32]) -> (u64, u64) {
    let mut softirq = 0;
    let mut irq = 0;
    for line in stat.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(core) = fields
            .next()
            .and_then(|name| name.strip_prefix("cpu"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if !cores.contains(&core) {
            continue;
        }
        let ticks: Vec<u64> = fields.take(7).filter_map(|f| f.parse().ok()).collect();
        if let [.., i, s] = ticks[..] {
            irq += i;
            softirq += s;
        }
    }
    (softirq, irq)
}

/// The machine's cores as `/proc/stat` lists them.
pub fn all_cores(stat: &str) -> Vec<u32> {
    stat.lines()
        .filter_map(|l| l.split_ascii_whitespace().next())
        .filter_map(|name| name.strip_prefix("cpu")?.parse().ok())
        .collect()
}

/// `/proc/stat` now (empty when unreadable: then no interrupt time is counted).
pub fn read_proc_stat() -> String {
    std::fs::read_to_string("/proc/stat").unwrap_or_default()
}

/// Nanoseconds per `/proc/stat` tick (USER_HZ).
fn tick_ns() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000_000 / u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100)
}

/// The CPU account of a phase: a snapshot at its start, one at its end.
#[derive(Debug)]
pub struct CpuAccount {
    cores: Vec<u32>,
    start: CpuSnapshot,
}

impl CpuAccount {
    /// Starts the account now over `registry`'s threads and `cores`' interrupt time (all cores
    /// when `cores` is empty).
    pub fn start(registry: &CpuRegistry, cores: &[u32]) -> CpuAccount {
        let stat = read_proc_stat();
        let cores = if cores.is_empty() {
            all_cores(&stat)
        } else {
            cores.to_vec()
        };
        let start = registry.snapshot(&cores, &stat);
        CpuAccount { cores, start }
    }

    /// Ends the account now.
    pub fn finish(self, registry: &CpuRegistry) -> naam_results::raw::HostCpu {
        let end = registry.snapshot(&self.cores, &read_proc_stat());
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let role = |r: ThreadRole| d(end.by_role[r as usize], self.start.by_role[r as usize]);
        let (workers_ns, rnic_thread_ns, controller_ns) = (
            role(ThreadRole::Worker),
            role(ThreadRole::Rnic),
            role(ThreadRole::Controller),
        );
        let process_ns = d(end.process_ns, self.start.process_ns);
        naam_results::raw::HostCpu {
            phase_ns: d(end.at_ns, self.start.at_ns),
            workers_ns,
            rnic_thread_ns,
            controller_ns,
            other_threads_ns: process_ns
                .saturating_sub(workers_ns + rnic_thread_ns + controller_ns),
            softirq_ns: d(end.softirq_ticks, self.start.softirq_ticks) * tick_ns(),
            irq_ns: d(end.irq_ticks, self.start.irq_ticks) * tick_ns(),
            cores: self.cores,
        }
    }
}

/// Accounts the CPU of `registry`'s threads over the measured phase of `timeline` (waits for
/// it); `None` when `stop` comes first.
pub fn account_measured_phase(
    registry: &CpuRegistry,
    cores: &[u32],
    timeline: &crate::timeline::TimelineWatch,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<naam_results::raw::HostCpu> {
    let t = timeline.wait(crate::timeline::TIMELINE_WAIT_MAX, stop)?;
    let start_ns = t.measure_start_realtime_ns();
    crate::os::sleep_until_realtime(start_ns, stop);
    if stop.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    let account = CpuAccount::start(registry, cores);
    crate::os::sleep_until_realtime(start_ns + t.measure_ms * 1_000_000, stop);
    Some(account.finish(registry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_ticks_of_chosen_cores() {
        let stat = "cpu  10 0 10 100 0 7 9 0 0 0\n\
                    cpu0 5 0 5 50 0 3 4 0 0 0\n\
                    cpu1 5 0 5 50 0 4 5 0 0 0\n\
                    intr 123\n";
        assert_eq!(interrupt_ticks(stat, &[1]), (5, 4));
        assert_eq!(interrupt_ticks(stat, &[0, 1]), (9, 7));
        assert_eq!(all_cores(stat), vec![0, 1]);
    }

    #[test]
    fn a_registered_thread_s_cpu_is_its_own() {
        let registry = std::sync::Arc::new(CpuRegistry::default());
        let account = CpuAccount::start(&registry, &[]);
        let spinner = std::sync::Arc::clone(&registry);
        std::thread::spawn(move || {
            spinner.register_current(ThreadRole::Rnic);
            let until = crate::os::monotonic_ns() + SPIN_NS;
            let mut x = 0u64;
            while crate::os::monotonic_ns() < until {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            // Read while the thread lives (a clock of an exited thread reads nothing).
            let cpu = account.finish(&spinner);
            assert!(cpu.rnic_thread_ns > 0, "{cpu:?}");
            assert_eq!(cpu.workers_ns, 0);
        })
        .join()
        .unwrap();
    }

    /// How long the test's thread spins.
    const SPIN_NS: u64 = 20_000_000;
}
