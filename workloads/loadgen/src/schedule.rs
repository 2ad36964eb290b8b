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

/// Most rate steps one schedule may carry.
pub const RATE_STEPS_MAX: usize = 64;
/// Rate multipliers a step may set.
pub const RATE_FACTOR_MIN: f64 = 1e-3;
/// Largest rate multiplier.
pub const RATE_FACTOR_MAX: f64 = 1e3;

/// From `at_ns` on, the offered rate is `factor` × the mode's rate (a load step).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateStep {
    /// When the step takes effect, ns since the run start.
    pub at_ns: u64,
    /// Multiplier of the mode's rate.
    pub factor: f64,
}

/// Checks a list of steps: increasing times, factors in range, bounded count.
pub fn validate_steps(steps: &[RateStep]) -> Result<(), ConfigError> {
    if steps.len() > RATE_STEPS_MAX {
        return Err(ConfigError::RateStepsInvalid {
            reason: format!("{} steps, at most {RATE_STEPS_MAX}", steps.len()),
        });
    }
    for (i, step) in steps.iter().enumerate() {
        if !(RATE_FACTOR_MIN..=RATE_FACTOR_MAX).contains(&step.factor) {
            return Err(ConfigError::RateStepsInvalid {
                reason: format!(
                    "step {i}: factor {} outside {RATE_FACTOR_MIN}..={RATE_FACTOR_MAX}",
                    step.factor
                ),
            });
        }
        if i > 0 && step.at_ns <= steps[i - 1].at_ns {
            return Err(ConfigError::RateStepsInvalid {
                reason: format!("step {i}: times must increase"),
            });
        }
    }
    Ok(())
}

/// An open-loop schedule: the sequence of intended send times.
///
/// Requests are placed in *operational time* — one unit per mean gap — and mapped to real time
/// through the piecewise-constant rate (the mode's rate times each step's factor). A Poisson
/// process stays a Poisson process across a step (time rescaling), and a fixed-rate schedule
/// computes every time from the request count, so neither drifts over long runs.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: ScheduleKind,
    /// Segments of constant rate: (real start ns, operational start, mean gap ns).
    segments: Vec<(f64, f64, f64)>,
    /// `segments[0]`, kept inline: a schedule without steps reads it per request, and the heap
    /// array was a cache line of its own to miss (a simulated point's 16 clients take turns).
    first_segment: (f64, f64, f64),
    /// Operational time of the next request.
    next_op: f64,
    /// Real time of the next request, ns, as [`Schedule::real_ns`] gives it, truncated once
    /// here: a driver peeks at it several times per request (when to wake, whether a send is
    /// due, whether the run is done), and each float-to-integer cast cost about ten instructions.
    next_ns: u64,
    /// Requests scheduled so far.
    count: u64,
}

#[derive(Debug, Clone)]
enum ScheduleKind {
    Poisson { rng: SplitMix64 },
    Fixed,
}

impl Schedule {
    /// The schedule of an open-loop mode; `None` for the closed loop. Validate the mode first.
    pub fn new(mode: &LoadMode) -> Option<Self> {
        Self::with_steps(mode, &[])
    }

    /// The schedule of an open-loop mode with rate steps (validate both first).
    pub fn with_steps(mode: &LoadMode, steps: &[RateStep]) -> Option<Self> {
        let (kind, rate_per_s) = match *mode {
            LoadMode::Poisson { rate_per_s, seed } => (
                ScheduleKind::Poisson {
                    rng: SplitMix64::new(seed),
                },
                rate_per_s,
            ),
            LoadMode::FixedRate { rate_per_s } => (ScheduleKind::Fixed, rate_per_s),
            LoadMode::ClosedLoop { .. } => return None,
        };
        let base_gap_ns = NS_PER_S / rate_per_s;
        let mut segments = vec![(0.0, 0.0, base_gap_ns)];
        for step in steps {
            let (start, op_start, gap) = *segments.last().unwrap_or(&(0.0, 0.0, base_gap_ns));
            let at = step.at_ns as f64;
            segments.push((at, op_start + (at - start) / gap, base_gap_ns / step.factor));
        }
        let mut schedule = Self {
            kind,
            first_segment: segments[0],
            segments,
            next_op: 0.0,
            next_ns: 0,
            count: 0,
        };
        if let ScheduleKind::Poisson { .. } = schedule.kind {
            schedule.next_op = schedule.unit_gap();
        }
        schedule.next_ns = schedule.real_ns(schedule.next_op) as u64;
        Some(schedule)
    }

    /// The intended time of the next request, without consuming it.
    #[inline]
    pub fn peek_ns(&self) -> u64 {
        self.next_ns
    }

    /// Consumes the next intended time and schedules the one after.
    #[inline]
    pub fn advance(&mut self) -> u64 {
        let intended = self.next_ns;
        self.count += 1;
        self.next_op = match self.kind {
            // From the count, not by accumulation: no drift over long runs.
            ScheduleKind::Fixed => self.count as f64,
            ScheduleKind::Poisson { .. } => self.next_op + self.unit_gap(),
        };
        self.next_ns = self.real_ns(self.next_op) as u64;
        intended
    }

    /// Real time (ns) of operational time `op`.
    #[inline]
    fn real_ns(&self, op: f64) -> f64 {
        let segment = match self.segments.len() {
            1 => &self.first_segment,
            _ => self
                .segments
                .iter()
                .rev()
                .find(|s| s.1 <= op)
                .unwrap_or(&self.first_segment),
        };
        segment.0 + (op - segment.1) * segment.2
    }

    /// One gap in operational time: exponential with mean 1 (`−ln(1 − u)`, u in [0, 1), so the
    /// logarithm is finite) for Poisson, exactly 1 for a fixed rate.
    #[inline]
    fn unit_gap(&mut self) -> f64 {
        match &mut self.kind {
            ScheduleKind::Poisson { rng } => -(1.0 - rng.next_f64()).ln(),
            ScheduleKind::Fixed => 1.0,
        }
    }
}
