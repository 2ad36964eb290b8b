//! The operation trace behind `naam workload ycsb`: CSV `op,keynum,key`, one line per operation.

use std::io::Write;

use crate::distribution::Distribution;
use crate::error::{TraceError, YcsbError};
use crate::generator::{OperationGenerator, RunConfig};
use crate::hash::push_key_name;
use crate::workload::Workload;

/// The header line of a trace.
pub const TRACE_HEADER: &str = "op,keynum,key";

/// What `naam workload ycsb` generates. Single-threaded: the trace is thread 0's stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TraceParams {
    /// `--records`.
    pub records: u64,
    /// `--operations`.
    pub operations: u64,
    /// `--seed`.
    pub seed: u64,
    /// `--workload` (YCSB core workload letter).
    pub workload: Workload,
    /// `--distribution`; `None` keeps the workload's own (scrambled Zipfian for A, B, C, E, F;
    /// latest for D).
    pub distribution: Option<Distribution>,
}

impl TraceParams {
    /// The run configuration these parameters describe, every default explicit.
    pub fn run_config(&self) -> RunConfig {
        let mut spec = self.workload.spec();
        if let Some(distribution) = self.distribution {
            spec.request_distribution = distribution;
        }
        RunConfig {
            records: self.records,
            operations: self.operations,
            spec,
        }
    }

    /// The distribution the trace will use.
    pub fn effective_distribution(&self) -> Distribution {
        self.distribution
            .unwrap_or(self.workload.spec().request_distribution)
    }

    /// A generator for thread 0 of this trace (validates the parameters).
    pub fn generator(&self) -> Result<OperationGenerator, YcsbError> {
        OperationGenerator::new(&self.run_config(), self.seed, 0, 1)
    }
}

/// Writes the header and one `op,keynum,key` line per operation (op is `read`, `update`,
/// `insert`, `scan` or `rmw`; key is YCSB's hashed key name). Buffers internally; flushes `out`.
pub fn write_operations_csv(out: &mut impl Write, params: &TraceParams) -> Result<(), TraceError> {
    let mut generator = params.generator()?;
    let mut buffer = String::with_capacity(64 * 1024);
    let mut lines: u64 = 0;
    buffer.push_str(TRACE_HEADER);
    buffer.push('\n');
    for _ in 0..params.operations {
        let op = generator.next_operation();
        push_line(&mut buffer, &op);
        if buffer.len() >= 60 * 1024 {
            lines += flush(out, &mut buffer, lines)?;
        }
    }
    lines += flush(out, &mut buffer, lines)?;
    out.flush()
        .map_err(|source| TraceError::Write { lines, source })
}

fn push_line(buffer: &mut String, op: &crate::Operation) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(buffer, "{},{},", op.kind.name(), op.keynum);
    push_key_name(buffer, op.keynum as i64, 1, false);
    buffer.push('\n');
}

fn flush(out: &mut impl Write, buffer: &mut String, lines: u64) -> Result<u64, TraceError> {
    let count = buffer.bytes().filter(|&b| b == b'\n').count() as u64;
    out.write_all(buffer.as_bytes())
        .map_err(|source| TraceError::Write { lines, source })?;
    buffer.clear();
    Ok(count)
}
