//! Per-host measurements taken around a run: CPU utilisation from `/proc/stat` and the offset of
//! the host's clock from the orchestrator's.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::command::ShellLine;
use crate::limits::COMMAND_TIMEOUT_MS;
use crate::ssh::{Connection, SshError};

/// Aggregate CPU time of a machine (the `cpu` line of `/proc/stat`), in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTimes {
    /// Ticks spent neither idle nor waiting for IO.
    pub busy_ticks: u64,
    /// All ticks (user, nice, system, idle, iowait, irq, softirq, steal).
    pub total_ticks: u64,
}

/// CPU utilisation of a machine over an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuUsage {
    /// Sample at the start.
    pub before: CpuTimes,
    /// Sample at the end.
    pub after: CpuTimes,
}

impl CpuUsage {
    /// Usage between two samples (integer ticks only, so records round-trip exactly).
    pub fn between(before: CpuTimes, after: CpuTimes) -> CpuUsage {
        CpuUsage { before, after }
    }

    /// Busy fraction of all cores over the interval, 0..=1 (`None` when no tick passed).
    pub fn busy_fraction(&self) -> Option<f64> {
        let total = self
            .after
            .total_ticks
            .saturating_sub(self.before.total_ticks);
        let busy = self.after.busy_ticks.saturating_sub(self.before.busy_ticks);
        (total > 0).then(|| (busy as f64 / total as f64).clamp(0.0, 1.0))
    }
}

/// Parses the aggregate `cpu` line of `/proc/stat` (`cpu user nice system idle iowait irq softirq
/// steal guest guest_nice`; guest time is already inside user time, so it is not added).
pub fn parse_cpu_line(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if ticks.len() < 4 {
        return None;
    }
    let idle = ticks[3] + ticks.get(4).copied().unwrap_or(0);
    let total: u64 = ticks.iter().sum();
    Some(CpuTimes {
        busy_ticks: total - idle,
        total_ticks: total,
    })
}

/// Reads a host's aggregate CPU times.
pub fn sample_cpu(connection: &mut Connection) -> Result<CpuTimes, SshError> {
    let output = connection.run_checked(
        &ShellLine::new().op("head -n 1 /proc/stat"),
        COMMAND_TIMEOUT_MS,
    )?;
    let text = output.stdout_text();
    parse_cpu_line(&text).ok_or_else(|| SshError::Protocol {
        login: connection.host().login(),
        operation: "parse /proc/stat",
        message: format!("unexpected first line {:?}", text.trim()),
    })
}

/// A host's clock relative to the orchestrator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// Remote clock minus local clock, at the midpoint of the best sample.
    pub offset_ns: i64,
    /// Round trip of the best sample (exec of `date` included); the offset is within ±rtt/2.
    pub rtt_ns: u64,
    /// Samples taken (the one with the smallest round trip is kept).
    pub samples: u32,
}

impl ClockOffset {
    /// Bound on the offset's error: half the round trip.
    pub fn error_bound_ns(&self) -> u64 {
        self.rtt_ns / 2
    }
}

/// Nanoseconds since the Unix epoch on this machine.
pub fn unix_now_ns() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX)
}

/// Measures a host's clock offset with `samples` exchanges (at least one) with a remote loop that
/// answers each newline with `date +%s%N`, all over one channel, so that a sample's round trip is
/// one channel exchange and a `date` — not a channel set-up and a shell start. The sample with
/// the smallest round trip is kept; the offset is within ±rtt/2 of the truth.
pub fn measure_clock_offset(
    connection: &mut Connection,
    samples: u32,
) -> Result<ClockOffset, SshError> {
    let samples = samples.max(1);
    let line = ShellLine::new().op("while IFS= read -r _; do date +%s%N; done");
    let replies = connection.dialogue(&line, samples, COMMAND_TIMEOUT_MS, unix_now_ns)?;
    let mut best: Option<(i64, u64)> = None;
    for (sent_ns, text, received_ns) in replies {
        let remote_ns = text.trim().parse::<i64>().map_err(|_| SshError::Protocol {
            login: connection.host().login(),
            operation: "parse remote clock",
            message: format!("`date +%s%N` printed {:?}", text.trim()),
        })?;
        let rtt_ns = u64::try_from(received_ns - sent_ns).unwrap_or(0);
        let offset_ns = remote_ns - (sent_ns + (received_ns - sent_ns) / 2);
        if best.is_none_or(|(_, best_rtt)| rtt_ns < best_rtt) {
            best = Some((offset_ns, rtt_ns));
        }
    }
    let (offset_ns, rtt_ns) = best.unwrap_or((0, 0));
    Ok(ClockOffset {
        offset_ns,
        rtt_ns,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_line_counts_iowait_as_idle() {
        let text = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 1 2 3 4\n";
        let times = parse_cpu_line(text).unwrap();
        assert_eq!(
            times,
            CpuTimes {
                busy_ticks: 160,
                total_ticks: 1000
            }
        );
        let later = CpuTimes {
            busy_ticks: 260,
            total_ticks: 1400,
        };
        assert_eq!(CpuUsage::between(times, later).busy_fraction(), Some(0.25));
        assert_eq!(CpuUsage::between(times, times).busy_fraction(), None);
        assert_eq!(parse_cpu_line("intr 1 2 3"), None);
    }
}
