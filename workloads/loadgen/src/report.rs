//! Rate accounting and the validity verdict of one measured point.
//!
//! A point is **invalid** when the numbers do not describe the load that was meant:
//! - the generator fell behind its schedule: its own send lateness p99 (lateness less the time
//!   the in-flight window was full, which is the system under test's: [`crate::window`]) above
//!   [`Thresholds::send_lateness_ns_p99_max`] (default [`SEND_LATENESS_NS_P99_MAX_DEFAULT`] =
//!   1 ms: an order of magnitude above the µs-scale latencies we measure on loopback and the
//!   timer slack of a sleeping client thread, so only a generator that truly could not keep up
//!   trips it);
//! - the achieved rate (completions in the measurement window per second) missed the offered rate
//!   by more than [`Thresholds::rate_shortfall_max`] (default [`RATE_SHORTFALL_MAX_DEFAULT`] =
//!   5 %, wrk2's customary tolerance). The offered rate compared is the *realised* schedule
//!   (requests whose intended time fell in the window, per second), so a short Poisson run is not
//!   judged by its sampling noise; the nominal rate is reported beside it;
//! - closed intervals were dropped because the caller did not drain them.
//!
//! A closed-loop run has no offered rate and no lateness; it is labelled `closed-loop`, and only
//! the dropped-interval rule applies.

use hdrhistogram::Histogram;

use crate::error::ConfigError;
use crate::generator::LoadConfig;
use crate::recorder::{IntervalHistogram, IntervalRecorder, new_histogram};

/// Default bound on send-lateness p99: 1 ms.
pub const SEND_LATENESS_NS_P99_MAX_DEFAULT: u64 = 1_000_000;
/// Default bound on the achieved rate's shortfall from the offered rate: 5 %.
pub const RATE_SHORTFALL_MAX_DEFAULT: f64 = 0.05;

/// When a point is invalid (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// Largest acceptable send-lateness p99, ns.
    pub send_lateness_ns_p99_max: u64,
    /// Largest acceptable `1 − achieved / offered`.
    pub rate_shortfall_max: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            send_lateness_ns_p99_max: SEND_LATENESS_NS_P99_MAX_DEFAULT,
            rate_shortfall_max: RATE_SHORTFALL_MAX_DEFAULT,
        }
    }
}

impl Thresholds {
    /// Checks the shortfall is a finite fraction.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let value = self.rate_shortfall_max;
        if !value.is_finite() || !(0.0..=1.0).contains(&value) {
            return Err(ConfigError::ThresholdInvalid {
                name: "rate_shortfall_max",
                value,
            });
        }
        Ok(())
    }
}

/// Why a point is invalid.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum InvalidReason {
    /// The generator sent late.
    SendLateness {
        /// Measured p99 lateness.
        p99_ns: u64,
        /// The threshold.
        max_ns: u64,
    },
    /// Completions fell short of the offered rate.
    RateShortfall {
        /// Completions per second in the window.
        achieved_per_s: f64,
        /// Intended sends per second in the window.
        offered_per_s: f64,
        /// The threshold on `1 − achieved / offered`.
        shortfall_max: f64,
    },
    /// Closed intervals were dropped (the caller did not drain them).
    IntervalsDropped {
        /// How many.
        count: u64,
    },
}

/// Whether a point can be reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum Verdict {
    /// The point measured the load that was meant.
    Valid,
    /// It did not, for these reasons (never empty).
    Invalid {
        /// Every rule that failed.
        reasons: Vec<InvalidReason>,
    },
}

/// Offered vs achieved rate and send lateness of the measurement window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateReport {
    /// `open-poisson`, `open-fixed-rate` or `closed-loop`.
    pub mode: String,
    /// The configured rate (open loop).
    pub offered_rate_per_s_nominal: Option<f64>,
    /// Requests whose intended send fell in the window, per second.
    pub offered_rate_per_s: f64,
    /// Completions in the window, per second.
    pub achieved_rate_per_s: f64,
    /// Length of the measurement window.
    pub measured_ns: u64,
    /// Requests intended in the window.
    pub intended: u64,
    /// Completions in the window (including the drain after the measured phase's end).
    pub completed: u64,
    /// Of `completed`, those that arrived after the measured phase's end, while the client
    /// drained its window: the backlog the system under test still held when sends stopped.
    #[serde(default)]
    pub completed_after_phase: u64,
    /// Requests still in flight at the end.
    pub inflight_at_end: u64,
    /// Send lateness percentiles (open loop; 0 for the closed loop).
    pub send_lateness_ns_p50: u64,
    /// 99th percentile.
    pub send_lateness_ns_p99: u64,
    /// Maximum.
    pub send_lateness_ns_max: u64,
    /// Latencies that exceeded the histogram range.
    pub latencies_saturated: u64,
    /// The generator's own send lateness p99: lateness less the window's wait
    /// ([`crate::window`]); the validity rule's measure.
    #[serde(default)]
    pub send_lateness_own_ns_p99: u64,
    /// Time the in-flight window was full in the measurement window.
    #[serde(default)]
    pub window_full_ns: u64,
    /// Measured sends the full window held back.
    #[serde(default)]
    pub window_delayed_sends: u64,
}

/// A run's request counts.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    /// Requests intended in the measured phase.
    pub intended: u64,
    /// Completions from the measured phase's start on.
    pub completed: u64,
    /// Of `completed`, those after the measured phase's end.
    pub completed_after_phase: u64,
    /// Requests still in flight at the end.
    pub inflight_at_end: u64,
}

/// A run's send lateness: in all, the generator's own, and the window's waits.
#[derive(Debug, Clone, Copy)]
pub struct Lateness<'a> {
    /// Actual − intended, per measured send.
    pub total: &'a Histogram<u64>,
    /// The same less each send's window wait.
    pub own: &'a Histogram<u64>,
    /// The window's full spans.
    pub waits: &'a crate::window::WindowWaits,
}

/// Everything a finished run produced.
#[derive(Debug)]
pub struct RunReport {
    /// Rate accounting.
    pub rate: RateReport,
    /// The verdict.
    pub verdict: Verdict,
    /// Closed intervals the caller had not taken yet (including the last, partial one).
    pub intervals: Vec<IntervalHistogram>,
    /// Per-tag sums over the measurement window (sum of all intervals), by tag id.
    pub totals: Vec<Histogram<u64>>,
    /// Per-tag warm-up histograms, by tag id.
    pub warmup: Vec<Histogram<u64>>,
    /// The send-lateness histogram of the measurement window.
    pub lateness: Histogram<u64>,
}

impl RunReport {
    pub(crate) fn new(
        config: &LoadConfig,
        measured_ns: u64,
        counts: Counts,
        lateness: Lateness<'_>,
        recorder: &mut IntervalRecorder,
        intervals: Vec<IntervalHistogram>,
    ) -> Self {
        let seconds = measured_ns.max(1) as f64 / 1e9;
        let rate = RateReport {
            mode: config.mode.label().to_owned(),
            offered_rate_per_s_nominal: config.mode.offered_rate_per_s(),
            offered_rate_per_s: counts.intended as f64 / seconds,
            achieved_rate_per_s: counts.completed as f64 / seconds,
            measured_ns,
            intended: counts.intended,
            completed: counts.completed,
            completed_after_phase: counts.completed_after_phase,
            inflight_at_end: counts.inflight_at_end,
            send_lateness_ns_p50: lateness.total.value_at_quantile(0.5),
            send_lateness_ns_p99: lateness.total.value_at_quantile(0.99),
            send_lateness_ns_max: lateness.total.max(),
            latencies_saturated: recorder.saturated(),
            send_lateness_own_ns_p99: lateness.own.value_at_quantile(0.99),
            window_full_ns: lateness.waits.full_ns_measured(),
            window_delayed_sends: lateness.waits.delayed_sends_measured(),
        };
        let verdict = verdict(&rate, &config.thresholds, recorder.dropped());
        let mut lateness_copy = new_histogram();
        // Equal precision, auto-resizing: addition cannot fail.
        let _ = lateness_copy.add(lateness.total);
        // The recorder's run ends here: its sums move into the report (tens of KiB each, and a
        // simulated point finishes 16 clients' runs in the time it measures).
        let (totals, warmup) = recorder.take_sums();
        Self {
            rate,
            verdict,
            intervals,
            totals,
            warmup,
            lateness: lateness_copy,
        }
    }
}

/// Applies the rules of the module docs.
pub fn verdict(rate: &RateReport, thresholds: &Thresholds, dropped: u64) -> Verdict {
    let mut reasons = Vec::new();
    if rate.offered_rate_per_s_nominal.is_some() {
        if rate.send_lateness_own_ns_p99 > thresholds.send_lateness_ns_p99_max {
            reasons.push(InvalidReason::SendLateness {
                p99_ns: rate.send_lateness_own_ns_p99,
                max_ns: thresholds.send_lateness_ns_p99_max,
            });
        }
        let floor = rate.offered_rate_per_s * (1.0 - thresholds.rate_shortfall_max);
        if rate.achieved_rate_per_s < floor {
            reasons.push(InvalidReason::RateShortfall {
                achieved_per_s: rate.achieved_rate_per_s,
                offered_per_s: rate.offered_rate_per_s,
                shortfall_max: thresholds.rate_shortfall_max,
            });
        }
    }
    if dropped > 0 {
        reasons.push(InvalidReason::IntervalsDropped { count: dropped });
    }
    if reasons.is_empty() {
        Verdict::Valid
    } else {
        Verdict::Invalid { reasons }
    }
}
