//! The timeline every role of a point shares.

use serde::{Deserialize, Serialize};

/// Times shared by every role of a point, as CLOCK_REALTIME nanoseconds in the clock of the
/// machine that reads it (the launcher shifts the start by each machine's measured offset). The
/// launcher writes it as JSON (`timeline.json`) once every server is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// When clients start sending (warm-up begins).
    pub start_realtime_ns: u64,
    /// Warm-up length; nothing in it is counted.
    pub warmup_ms: u64,
    /// Measured phase length.
    pub measure_ms: u64,
}

impl Timeline {
    /// When the measured phase starts.
    pub fn measure_start_realtime_ns(&self) -> u64 {
        self.start_realtime_ns + self.warmup_ms * 1_000_000
    }

    /// When the measured phase ends.
    pub fn measure_end_realtime_ns(&self) -> u64 {
        self.measure_start_realtime_ns() + self.measure_ms * 1_000_000
    }
}
