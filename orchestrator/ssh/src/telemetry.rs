//! Per-host measurements taken around a run: CPU utilisation from `/proc/stat` and the offset of
//! the host's clock from the orchestrator's.

use crate::command::ShellLine;
use crate::limits::COMMAND_TIMEOUT_MS;
use crate::ssh::{Connection, SshError};

pub use naam_launch::record::{ClockOffset, CpuTimes, CpuUsage, parse_cpu_line};
pub use naam_launch::transport::unix_now_ns;

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
