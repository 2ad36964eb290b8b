//! The sans-IO load generator: schedule, in-flight accounting, send lateness, latency recording.
//!
//! The caller owns the clock and the sockets. It asks [`LoadGenerator::next_send_ns`] when the next
//! request is due, sends whatever [`LoadGenerator::poll_send`] hands out (each ticket carries its
//! *intended* send time), and reports each reply to [`LoadGenerator::on_complete`]. Latency is
//! `completion − intended send` — a server that stalls cannot hide its queue by delaying the
//! generator (coordinated omission; Gil Tene, wrk2) — and send lateness (`actual − intended`) is
//! recorded separately: it says whether the generator itself kept up. The part of a send's
//! lateness during which the in-flight window was full is the system under test's (it held the
//! slots), not the generator's ([`crate::window`]): the validity rule judges the rest.

use hdrhistogram::Histogram;

use crate::error::{ConfigError, RecordError};
use crate::recorder::{
    IntervalHistogram, IntervalRecorder, LATENCY_NS_MAX, new_histogram, record_auto, record_auto_n,
};
use crate::report::{RunReport, Thresholds};
use crate::schedule::{LoadMode, RateStep, Schedule, validate_steps};
use crate::tag::{TagId, TagSet};
use crate::window::WindowWaits;

/// Longest run (warm-up + measurement): one hour.
pub const RUN_NS_MAX: u64 = 3_600_000_000_000;
/// Largest bound on requests sent in one run.
pub const REQUESTS_MAX: u64 = 1 << 40;
/// Largest bound on requests in flight.
pub const INFLIGHT_MAX: u32 = 1 << 20;

/// Everything a run needs, every default explicit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoadConfig {
    /// Open loop (Poisson or fixed rate) or the labelled closed loop.
    pub mode: LoadMode,
    /// Warm-up from the run start: its completions are kept apart from the measurement.
    pub warmup_ns: u64,
    /// Measurement after the warm-up; nothing is sent after `warmup_ns + measure_ns`.
    pub measure_ns: u64,
    /// Bound on requests sent.
    pub requests_max: u64,
    /// Bound on requests in flight (open loop); a due request waits for a free slot and is late.
    pub inflight_max: u32,
    /// Histogram interval.
    pub interval_ns: u64,
    /// When a point is invalid.
    pub thresholds: Thresholds,
    /// Load steps: from each step's time on, the offered rate is the mode's rate × its factor
    /// (open loop only; empty for a constant rate).
    pub rate_steps: Vec<RateStep>,
    /// Whether the recorder sums every closed interval into its tag's total
    /// ([`crate::RunReport::totals`]). A caller that takes every interval and reads no totals
    /// (the simulator writes the intervals to its logs) turns this off: the report's totals are
    /// then empty histograms, and the run skips an addition per tag per interval and the sums'
    /// growth — each reallocated, copied and zeroed as a later interval holds larger values,
    /// into freshly faulted pages (≈ 3 % of a simulated point's CPU time).
    pub sum_totals: bool,
}

/// A request handed to the caller to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendTicket {
    /// 0-based sequence number.
    pub seq: u64,
    /// When the schedule meant it to be sent, ns since the run start.
    pub intended_ns: u64,
}

/// The generator (see the module docs).
#[derive(Debug)]
pub struct LoadGenerator {
    config: LoadConfig,
    schedule: Option<Schedule>,
    recorder: IntervalRecorder,
    lateness: Histogram<u64>,
    /// Lateness less the window's wait: the generator's own.
    own_lateness: Histogram<u64>,
    /// Measured sends made on time (lateness 0, so own lateness 0), not yet in the two lateness
    /// histograms: recorded as zeros, `record_n(0, n)`, when the run finishes (the only reader).
    /// A histogram's state does not depend on the order of its records, and on a virtual clock
    /// nearly every send is on time: two records per request saved.
    on_time_unrecorded: u64,
    waits: WindowWaits,
    end_ns: u64,
    sent: u64,
    inflight: u32,
    window: u32,
    intended_measured: u64,
    completed_measured: u64,
    completed_after_phase: u64,
    failed: u64,
}

impl LoadGenerator {
    /// Validates `config` and builds a generator recording under `tags`.
    pub fn new(config: LoadConfig, tags: TagSet) -> Result<Self, ConfigError> {
        validate(&config)?;
        let recorder = IntervalRecorder::new(tags, config.interval_ns, config.warmup_ns)?
            .summing_totals(config.sum_totals);
        let window = match config.mode {
            LoadMode::ClosedLoop { window } => window,
            _ => config.inflight_max,
        };
        Ok(Self {
            schedule: Schedule::with_steps(&config.mode, &config.rate_steps),
            end_ns: config.warmup_ns + config.measure_ns,
            recorder,
            lateness: new_histogram(),
            own_lateness: new_histogram(),
            on_time_unrecorded: 0,
            waits: WindowWaits::new(config.warmup_ns, config.warmup_ns + config.measure_ns),
            sent: 0,
            inflight: 0,
            window,
            intended_measured: 0,
            completed_measured: 0,
            completed_after_phase: 0,
            failed: 0,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LoadConfig {
        &self.config
    }

    /// When the next request is due (ns since run start; the closed loop answers 0: as soon as a
    /// slot is free); `None` when the run has sent all it will, or while every slot is taken
    /// (closed loop, or open loop at the in-flight bound) until a completion frees one.
    #[inline]
    pub fn next_send_ns(&self) -> Option<u64> {
        if self.sent >= self.config.requests_max || self.inflight >= self.window {
            return None;
        }
        match &self.schedule {
            Some(s) => Some(s.peek_ns()).filter(|&t| t < self.end_ns),
            None => Some(0),
        }
    }

    /// True when no further request will be sent at or after `now_ns`.
    #[inline]
    pub fn is_done(&self, now_ns: u64) -> bool {
        self.sent >= self.config.requests_max
            || match &self.schedule {
                Some(s) => s.peek_ns() >= self.end_ns,
                None => now_ns >= self.end_ns,
            }
    }

    /// Requests sent and not yet completed.
    pub fn inflight(&self) -> u32 {
        self.inflight
    }

    /// True while every in-flight slot is taken: the next send waits for a completion.
    pub fn window_full(&self) -> bool {
        self.inflight >= self.window
    }

    /// A request to send at `now_ns` if one is due; records its send lateness. Call until `None`.
    #[inline]
    pub fn poll_send(&mut self, now_ns: u64) -> Result<Option<SendTicket>, RecordError> {
        self.recorder.advance(now_ns)?;
        if self.sent >= self.config.requests_max || self.inflight >= self.window {
            return Ok(None);
        }
        let intended_ns = match &mut self.schedule {
            Some(schedule) => {
                let due = schedule.peek_ns();
                if due > now_ns || due >= self.end_ns {
                    return Ok(None);
                }
                schedule.advance()
            }
            None if now_ns < self.end_ns => now_ns,
            None => return Ok(None),
        };
        let window_wait_ns = self.waits.wait_ns(intended_ns, now_ns);
        if intended_ns >= self.config.warmup_ns {
            self.intended_measured += 1;
            let lateness_ns = (now_ns - intended_ns).min(LATENCY_NS_MAX);
            if lateness_ns == 0 {
                self.on_time_unrecorded += 1;
            } else {
                record_auto(&mut self.lateness, lateness_ns);
                record_auto(
                    &mut self.own_lateness,
                    lateness_ns.saturating_sub(window_wait_ns),
                );
            }
        }
        let ticket = SendTicket {
            seq: self.sent,
            intended_ns,
        };
        self.sent += 1;
        self.inflight += 1;
        if self.inflight >= self.window && self.schedule.is_some() {
            self.waits.fill(now_ns);
        }
        Ok(Some(ticket))
    }

    /// Records the completion of `ticket` at `done_ns` under `tag`; returns the latency (ns,
    /// from the intended send).
    #[inline]
    pub fn on_complete(
        &mut self,
        ticket: &SendTicket,
        tag: TagId,
        done_ns: u64,
    ) -> Result<u64, RecordError> {
        self.on_complete_arrived(ticket, tag, done_ns, done_ns)
    }

    /// Records the completion of `ticket`, whose reply arrived at `arrived_ns` (e.g. the kernel's
    /// receive timestamp) and is handled at `now_ns` (≥ every time already seen): the latency is
    /// measured to the arrival, the completion counts in the interval of `now_ns`. A driver that
    /// reads replies in batches thus measures no more than the system under test did.
    #[inline]
    pub fn on_complete_arrived(
        &mut self,
        ticket: &SendTicket,
        tag: TagId,
        now_ns: u64,
        arrived_ns: u64,
    ) -> Result<u64, RecordError> {
        if self.inflight == 0 {
            return Err(RecordError::NothingInFlight { seq: ticket.seq });
        }
        let latency_ns = arrived_ns.checked_sub(ticket.intended_ns).ok_or(
            RecordError::CompletedBeforeIntended {
                seq: ticket.seq,
                intended_ns: ticket.intended_ns,
                done_ns: arrived_ns,
            },
        )?;
        self.recorder.record(tag, now_ns, latency_ns)?;
        self.inflight -= 1;
        self.waits.free(now_ns);
        if now_ns >= self.config.warmup_ns {
            self.completed_measured += 1;
        }
        if now_ns >= self.end_ns {
            self.completed_after_phase += 1;
        }
        Ok(latency_ns)
    }

    /// Ends `ticket` at `now_ns` without a latency: the request failed (an error reply, a
    /// timeout). It frees its in-flight slot and is not counted as completed, so failures lower the achieved rate.
    pub fn on_fail(&mut self, ticket: &SendTicket, now_ns: u64) {
        debug_assert!(
            self.inflight > 0,
            "failing request {} with nothing in flight",
            ticket.seq
        );
        self.inflight = self.inflight.saturating_sub(1);
        self.waits.free(now_ns);
        self.failed += 1;
    }

    /// Requests ended by [`LoadGenerator::on_fail`].
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// True when [`LoadGenerator::poll_interval`] at `now_ns` would return an interval (time
    /// never going backwards); false between interval boundaries, the common case per request.
    #[inline]
    pub fn interval_due(&self, now_ns: u64) -> bool {
        self.recorder.interval_due(now_ns)
    }

    /// Closes intervals up to `now_ns` and returns the oldest closed one not yet taken.
    pub fn poll_interval(&mut self, now_ns: u64) -> Result<Option<IntervalHistogram>, RecordError> {
        self.recorder.advance(now_ns)?;
        Ok(self.recorder.poll_interval())
    }

    /// Ends the run at `end_ns`: closes the last interval and computes the rate accounting and
    /// the validity verdict. Requests still in flight are counted as not completed.
    pub fn finish(mut self, end_ns: u64) -> Result<RunReport, RecordError> {
        let intervals = self.recorder.finish(end_ns)?;
        self.record_on_time_sends();
        let measured_ns = end_ns.saturating_sub(self.config.warmup_ns);
        Ok(RunReport::new(
            &self.config,
            measured_ns,
            crate::report::Counts {
                intended: self.intended_measured,
                completed: self.completed_measured,
                completed_after_phase: self.completed_after_phase,
                inflight_at_end: u64::from(self.inflight),
            },
            crate::report::Lateness {
                total: &self.lateness,
                own: &self.own_lateness,
                waits: &self.waits,
            },
            &mut self.recorder,
            intervals,
        ))
    }

    /// Records the on-time sends counted in `on_time_unrecorded` as zero lateness.
    fn record_on_time_sends(&mut self) {
        let on_time = std::mem::take(&mut self.on_time_unrecorded);
        if on_time > 0 {
            record_auto_n(&mut self.lateness, 0, on_time);
            record_auto_n(&mut self.own_lateness, 0, on_time);
        }
    }
}

fn validate(config: &LoadConfig) -> Result<(), ConfigError> {
    config.mode.validate()?;
    validate_steps(&config.rate_steps)?;
    config.thresholds.validate()?;
    let total = config.warmup_ns.checked_add(config.measure_ns);
    if config.measure_ns == 0 || total.is_none_or(|t| t > RUN_NS_MAX) {
        return Err(ConfigError::DurationOutOfRange {
            warmup_ns: config.warmup_ns,
            measure_ns: config.measure_ns,
            max: RUN_NS_MAX,
        });
    }
    if config.requests_max == 0 || config.requests_max > REQUESTS_MAX {
        return Err(ConfigError::RequestsOutOfRange {
            requests: config.requests_max,
            max: REQUESTS_MAX,
        });
    }
    if config.inflight_max == 0 || config.inflight_max > INFLIGHT_MAX {
        return Err(ConfigError::InflightOutOfRange {
            inflight: config.inflight_max,
            max: INFLIGHT_MAX,
        });
    }
    Ok(())
}
