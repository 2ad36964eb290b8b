//! The controller thread: gathers load samples from the host workers (channel) and the NIC
//! (datagrams on the control port), runs the steering policy, and applies its decisions to the
//! eSwitch and to the workers' pushback settings. Every change is timestamped (CLOCK_REALTIME,
//! relative to the measured phase's start) so shift times can be measured from the results.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::Receiver;
use naam_engine::wire::LoadSample;
use naam_engine::{Controller, Frame, Location, RuleChange, RuleKey, RuleTable};
use naam_net::{RecvBatch, Steering, UdpSocket};
use naam_results::raw;

use crate::os::{monotonic_ns, realtime_ns};
use crate::serve::ControlShared;
use crate::timeline::TimelineWatch;

/// Samples kept for `samples.jsonl`.
pub const SAMPLES_KEPT_MAX: usize = 500_000;

/// What the controller thread owns.
pub struct ControlLoop {
    /// The policy and its history.
    pub controller: Controller,
    /// The full rule table (the policy's rule plus fixed rules, e.g. host-native writes).
    pub rules: RuleTable,
    /// The switch.
    pub eswitch: Box<dyn Steering>,
    /// Settings published to the workers.
    pub control: Arc<ControlShared>,
    /// Host workers' samples.
    pub host_samples: Receiver<LoadSample>,
    /// Host workers' heartbeats (CLOCK_REALTIME of their latest loop iteration).
    pub heartbeats: Vec<Arc<AtomicU64>>,
    /// The control port (NIC samples arrive here).
    pub socket: UdpSocket,
    /// Sampling period.
    pub period_ns: u64,
    /// The point's timeline (changes and samples are timed from its measured phase's start).
    pub timeline: TimelineWatch,
    /// The series name recorded with each change.
    pub policy_name: String,
    /// Print every sample and change to the host's log (`NAAM_TRACE_CONTROL=1`).
    pub trace: bool,
}

impl std::fmt::Debug for ControlLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlLoop")
            .field("policy", &self.policy_name)
            .finish_non_exhaustive()
    }
}

/// What the controller recorded.
#[derive(Debug, Default)]
pub struct ControlReport {
    /// Rule changes in the measured phase (`steering.jsonl`).
    pub changes: Vec<raw::SteeringChange>,
    /// Load samples in the measured phase (`samples.jsonl`).
    pub samples: Vec<raw::LoadSample>,
    /// eSwitch applications that failed (with the last error).
    pub apply_errors: u64,
    /// The last apply error.
    pub last_apply_error: Option<String>,
    /// Datagrams steered per location by the switch.
    pub steered: [u64; 3],
}

impl ControlLoop {
    /// Applies the policy's initial decision before traffic starts.
    pub fn apply_initial(&mut self) -> Result<(), String> {
        let decision = self.controller.current();
        self.rules
            .set(self.controller.key(), decision.shares)
            .map_err(|e| e.to_string())?;
        self.publish(
            decision.shares.of(Location::Client),
            decision.pushback_credit_insn,
        );
        self.eswitch
            .apply(&self.rules)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Runs until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) -> ControlReport {
        let mut report = ControlReport::default();
        let mut batch = RecvBatch::new(16);
        let period = Duration::from_nanos(self.period_ns);
        let mut next_tick = realtime_ns() + self.period_ns;
        while !stop.load(Ordering::Relaxed) {
            let n = self
                .socket
                .recv_batch(&mut batch, period.min(Duration::from_millis(1)))
                .unwrap_or(0);
            for i in 0..n {
                if let Ok(Frame::Sample(sample)) = Frame::decode(batch.get(i).bytes) {
                    self.observe(sample, &mut report);
                }
            }
            let now = realtime_ns();
            if now >= next_tick {
                next_tick = now + self.period_ns;
                if let Some(sample) = self.host_sample(now) {
                    self.observe(sample, &mut report);
                }
            }
        }
        report.steered = self
            .eswitch
            .counts()
            .map(|c| c.by_location())
            .unwrap_or_default();
        report
    }

    /// Aggregates the host workers' samples since the last tick (max delay, summed queue and
    /// completions, mean utilisation). A worker starved of CPU sends no sample and stops its
    /// heartbeat; its silence is itself the signal: whatever waits in its socket has waited at
    /// least as long as it has been silent, so that silence is taken as the queueing delay.
    fn host_sample(&self, now: u64) -> Option<LoadSample> {
        let drained: Vec<LoadSample> = self.host_samples.try_iter().collect();
        let silent_ns = self.longest_silence_ns(now);
        if drained.is_empty() && silent_ns == 0 {
            return None;
        }
        let n = drained.len().max(1) as u64;
        Some(LoadSample {
            at: naam_engine::Nanos(now),
            location: Some(Location::Host),
            queue_delay_ns: drained
                .iter()
                .map(|s| s.queue_delay_ns)
                .max()
                .unwrap_or(0)
                .max(silent_ns),
            utilisation_permille: (drained
                .iter()
                .map(|s| u64::from(s.utilisation_permille))
                .sum::<u64>()
                / n) as u16,
            queue_len: drained.iter().map(|s| s.queue_len).sum(),
            completions: drained.iter().map(|s| s.completions).sum(),
            period_ns: self.period_ns,
        })
    }

    /// How long the most silent worker has gone without a loop iteration, beyond its idle wait
    /// and one sampling period (0 when every worker is beating).
    fn longest_silence_ns(&self, now: u64) -> u64 {
        let allowance = self.period_ns + crate::serve::IDLE_WAIT.as_nanos() as u64;
        self.heartbeats
            .iter()
            .map(|h| now.saturating_sub(h.load(Ordering::Relaxed)))
            .filter(|&silent| silent > allowance)
            .max()
            .unwrap_or(0)
    }

    fn observe(&mut self, sample: LoadSample, report: &mut ControlReport) {
        self.record_sample(&sample, report);
        if self.trace {
            eprintln!(
                "control: sample {:?} at {} queue_delay {} us util {} completions {}",
                sample.location,
                sample.at.0,
                sample.queue_delay_ns / 1000,
                sample.utilisation_permille,
                sample.completions
            );
        }
        if let Some(change) = self.controller.on_sample(sample) {
            if self.trace {
                eprintln!(
                    "control: change at {}: {:?} -> {:?} ({})",
                    change.at.0, change.before, change.after, change.reason
                );
            }
            self.apply(change, report);
        }
    }

    fn record_sample(&self, s: &LoadSample, report: &mut ControlReport) {
        let (Some(location), Some(t_ns)) = (s.location, self.since_measure_start(s.at.0)) else {
            return;
        };
        if report.samples.len() >= SAMPLES_KEPT_MAX {
            return;
        }
        report.samples.push(raw::LoadSample {
            t_ns,
            location: results_location(location),
            queue_delay_ns: s.queue_delay_ns,
            utilisation: f64::from(s.utilisation_permille) / 1000.0,
            completions: s.completions,
        });
    }

    fn apply(&mut self, change: RuleChange, report: &mut ControlReport) {
        if let Err(e) = self.rules.set(change.key, change.after) {
            report.apply_errors += 1;
            report.last_apply_error = Some(e.to_string());
            return;
        }
        self.publish(
            change.after.of(Location::Client),
            change.pushback_credit_insn,
        );
        let applied_at = match self.eswitch.apply(&self.rules) {
            // Timestamp when the switch holds the new rule (not when the policy decided).
            Ok(applied) => {
                realtime_ns().saturating_sub(monotonic_ns().saturating_sub(applied.applied_at_ns))
            }
            Err(e) => {
                report.apply_errors += 1;
                report.last_apply_error = Some(e.to_string());
                realtime_ns()
            }
        };
        let Some(t_ns) = self.since_measure_start(applied_at) else {
            return;
        };
        report.changes.push(raw::SteeringChange {
            t_ns,
            policy: self.policy_name.clone(),
            scope: scope_name(change.key),
            host_permille: change.after.of(Location::Host),
            nic_permille: change.after.of(Location::Nic),
            client_permille: change.after.of(Location::Client),
            reason: change.reason.to_string(),
        });
    }

    /// Time since the measured phase started, if it has (warm-up records are not written).
    fn since_measure_start(&self, realtime_ns: u64) -> Option<u64> {
        realtime_ns.checked_sub(self.timeline.get()?.measure_start_realtime_ns())
    }

    fn publish(&self, client_permille: u16, credit: Option<u64>) {
        self.control
            .client_permille
            .store(u32::from(client_permille), Ordering::Relaxed);
        self.control
            .pushback_credit_insn
            .store(credit.unwrap_or(0), Ordering::Relaxed);
    }
}

/// The results schema's location.
pub fn results_location(l: Location) -> raw::Location {
    match l {
        Location::Host => raw::Location::Host,
        Location::Nic => raw::Location::Nic,
        Location::Client => raw::Location::Client,
    }
}

/// `all`, `tenant:3`, `function:3/1`, `flow:3/1/7`.
pub fn scope_name(key: RuleKey) -> String {
    match (key.tenant, key.function, key.flow) {
        (None, _, _) => "all".to_string(),
        (Some(t), None, _) => format!("tenant:{}", t.0),
        (Some(t), Some(f), None) => format!("function:{}/{}", t.0, f.0),
        (Some(t), Some(f), Some(flow)) => format!("flow:{}/{}/{flow}", t.0, f.0),
    }
}
