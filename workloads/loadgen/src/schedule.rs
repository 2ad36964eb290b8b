//! When requests are meant to be sent: open-loop schedules (Poisson, fixed rate) and the labelled
//! closed-loop mode. Times are ns since the run's start (the first intended send is at 0 for a
//! fixed rate, one exponential gap after 0 for Poisson).

use crate::error::ConfigError;
use crate::rng::SplitMix64;

/// Lowest offered rate (requests per second).
pub const RATE_PER_S_MIN: f64 = 1.0;
/// Highest offered rate (requests per second): one request per ns.
pub const RATE_PER_S_MAX: f64 = 1e9;
/// Largest closed-loop window (requests outstanding).
pub const WINDOW_MAX: u32 = 1 << 16;

const NS_PER_S: f64 = 1e9;

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum LoadMode {
    /// Open loop, exponential inter-arrival times (a Poisson process) at `rate_per_s`, seeded.
    Poisson {
        /// Offered rate.
        rate_per_s: f64,
        /// Seed of the inter-arrival draws.
        seed: u64,
    },
    /// Open loop, one request every `1 / rate_per_s` seconds.
    FixedRate {
        /// Offered rate.
        rate_per_s: f64,
    },
    /// Closed loop: `window` requests outstanding, each sent when a slot frees. For explicit
    /// max-throughput probes only: latency is then measured from the actual send, so a slow
    /// server slows the generator (coordinated omission) and results say `closed-loop`.
    ClosedLoop {
        /// Requests outstanding.
        window: u32,
    },
}

impl LoadMode {
    /// The label results carry: `open-poisson`, `open-fixed-rate` or `closed-loop`.
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Poisson { .. } => "open-poisson",
            Self::FixedRate { .. } => "open-fixed-rate",
            Self::ClosedLoop { .. } => "closed-loop",
        }
    }

    /// The offered rate, for open-loop modes.
    pub const fn offered_rate_per_s(&self) -> Option<f64> {
        match *self {
            Self::Poisson { rate_per_s, .. } | Self::FixedRate { rate_per_s } => Some(rate_per_s),
            Self::ClosedLoop { .. } => None,
        }
    }

    /// Checks the rate or window bounds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            Self::Poisson { rate_per_s, .. } | Self::FixedRate { rate_per_s } => {
                if !(RATE_PER_S_MIN..=RATE_PER_S_MAX).contains(&rate_per_s) {
                    return Err(ConfigError::RateOutOfRange {
                        rate_per_s,
                        min: RATE_PER_S_MIN,
                        max: RATE_PER_S_MAX,
                    });
                }
            }
            Self::ClosedLoop { window } => {
                if window == 0 || window > WINDOW_MAX {
                    return Err(ConfigError::WindowOutOfRange {
                        window,
                        max: WINDOW_MAX,
                    });
                }
            }
        }
        Ok(())
    }
}

/// An open-loop schedule: the sequence of intended send times.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: ScheduleKind,
    /// Intended time of the next request, ns (fractional for Poisson accumulation).
    next_ns: f64,
    /// Requests scheduled so far.
    count: u64,
}

#[derive(Debug, Clone)]
enum ScheduleKind {
    Poisson { mean_gap_ns: f64, rng: SplitMix64 },
    Fixed { gap_ns: f64 },
}

impl Schedule {
    /// The schedule of an open-loop mode; `None` for the closed loop. Validate the mode first.
    pub fn new(mode: &LoadMode) -> Option<Self> {
        let kind = match *mode {
            LoadMode::Poisson { rate_per_s, seed } => ScheduleKind::Poisson {
                mean_gap_ns: NS_PER_S / rate_per_s,
                rng: SplitMix64::new(seed),
            },
            LoadMode::FixedRate { rate_per_s } => ScheduleKind::Fixed {
                gap_ns: NS_PER_S / rate_per_s,
            },
            LoadMode::ClosedLoop { .. } => return None,
        };
        let mut schedule = Self {
            kind,
            next_ns: 0.0,
            count: 0,
        };
        if let ScheduleKind::Poisson { .. } = schedule.kind {
            schedule.next_ns = schedule.poisson_gap();
        }
        Some(schedule)
    }

    /// The intended time of the next request, without consuming it.
    #[inline]
    pub fn peek_ns(&self) -> u64 {
        self.next_ns as u64
    }

    /// Consumes the next intended time and schedules the one after.
    #[inline]
    pub fn advance(&mut self) -> u64 {
        let intended = self.next_ns as u64;
        self.count += 1;
        self.next_ns = match self.kind {
            // From the count, not by accumulation: no drift over long runs.
            ScheduleKind::Fixed { gap_ns } => self.count as f64 * gap_ns,
            ScheduleKind::Poisson { .. } => self.next_ns + self.poisson_gap(),
        };
        intended
    }

    /// One exponential gap: `−ln(1 − u) · mean` with `u` in [0, 1), so the logarithm is finite.
    #[inline]
    fn poisson_gap(&mut self) -> f64 {
        match &mut self.kind {
            ScheduleKind::Poisson { mean_gap_ns, rng } => {
                -(1.0 - rng.next_f64()).ln() * *mean_gap_ns
            }
            ScheduleKind::Fixed { gap_ns } => *gap_ns,
        }
    }
}
