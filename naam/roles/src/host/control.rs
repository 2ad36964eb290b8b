//! The controller thread: a thin driver of the engine's [`ServerControl`] stage. It gathers load
//! samples from the host workers (channel) and the NIC (datagrams on the control port) with the
//! host workers' heartbeats, hands them to the stage, mirrors the stage's rule table into the
//! eSwitch after every change, and publishes the workers' pushback settings. Every change is
//! timestamped (CLOCK_REALTIME, relative to the measured phase's start) so shift times can be
//! measured from the results.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::Receiver;
use naam_engine::control::{Heartbeat, Observed};
use naam_engine::wire::LoadSample;
use naam_engine::{Location, Nanos, RuleChange, RuleKey, ServerControl};
use naam_net::{RecvBatch, Steering, UdpSocket};
use naam_results::raw;

use crate::control_auth::{ControlDrops, SampleGate};
use crate::os::{monotonic_ns, realtime_ns};
use crate::serve::{ControlShared, Liveness};
use crate::timeline::TimelineWatch;

use super::samples::{JsonlLog, LogWritten};

/// Longest wait for NIC samples in one receive call.
const RECV_WAIT_MAX: Duration = Duration::from_millis(1);

/// What the controller thread owns.
pub struct ControlLoop {
    /// The engine's control stage: policy, full rule table (the policy's rule plus fixed rules,
    /// e.g. host-native writes), host-load aggregation.
    pub stage: ServerControl,
    /// The switch.
    pub eswitch: Box<dyn Steering>,
    /// Settings published to the workers.
    pub control: Arc<ControlShared>,
    /// Host workers' samples.
    pub host_samples: Receiver<LoadSample>,
    /// Host workers' heartbeats (CLOCK_REALTIME of their latest loop iteration) and threads.
    pub heartbeats: Vec<Arc<Liveness>>,
    /// Reads them into the stage's heartbeats at each tick.
    pub liveness: LivenessReader,
    /// The control port (NIC samples arrive here).
    pub socket: UdpSocket,
    /// The point's timeline (changes and samples are timed from its measured phase's start).
    pub timeline: TimelineWatch,
    /// The series name recorded with each change.
    pub policy_name: String,
    /// `samples.jsonl`, written as samples arrive.
    pub samples: JsonlLog,
    /// `steering.jsonl`, written as rules change.
    pub steering: JsonlLog,
    /// Print every sample and change to the host's log (`NAAM_TRACE_CONTROL=1`).
    pub trace: bool,
    /// Admits only tagged, fresh, possible samples from the NIC (`control_auth`).
    pub gate: SampleGate,
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
    /// Rule changes of the measured phase written to `steering.jsonl`, and any dropped.
    pub steering: LogWritten,
    /// Load samples of the measured phase written to `samples.jsonl`, and any dropped.
    pub samples: LogWritten,
    /// eSwitch applications that failed (with the last error).
    pub apply_errors: u64,
    /// The last apply error.
    pub last_apply_error: Option<String>,
    /// Datagrams steered per location by the switch.
    pub steered: [u64; 3],
    /// Control datagrams refused, by reason.
    pub drops: ControlDrops,
    /// Ticks at which a silent host worker was seen queued for a CPU (its silence counted as
    /// queueing delay at once).
    pub waiting_for_cpu_ticks: u64,
}

impl ControlLoop {
    /// Applies the policy's initial decision before traffic starts.
    pub fn apply_initial(&mut self) -> Result<(), String> {
        self.control.publish(self.stage.settings());
        self.eswitch
            .apply(self.stage.rules())
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Runs until `stop` is set.
    pub fn run(mut self, stop: &AtomicBool) -> ControlReport {
        let mut report = ControlReport::default();
        let mut batch = RecvBatch::new(16);
        let mut beats: Vec<Heartbeat> = Vec::with_capacity(self.heartbeats.len());
        while !stop.load(Ordering::Relaxed) {
            let until_tick = self.stage.poll_timeout().since(Nanos(realtime_ns()));
            let wait = Duration::from_nanos(until_tick).min(RECV_WAIT_MAX);
            let n = self.socket.recv_batch(&mut batch, wait).unwrap_or(0);
            for i in 0..n {
                let datagram = batch.get(i);
                let now = Nanos(realtime_ns());
                if let Some(sample) = self.gate.admit(datagram.from, datagram.bytes, now) {
                    let observed = self.stage.on_nic_sample(sample);
                    self.handle(observed, &mut report);
                }
            }
            let now = Nanos(realtime_ns());
            if now >= self.stage.poll_timeout() {
                for sample in self.host_samples.try_iter() {
                    self.stage.on_host_sample(sample);
                }
                self.liveness.read(&self.heartbeats, now, &mut beats);
                if let Some(observed) = self.stage.handle_timeout(now, &beats) {
                    self.handle(observed, &mut report);
                }
            }
        }
        report.steered = self
            .eswitch
            .counts()
            .map(|c| c.by_location())
            .unwrap_or_default();
        report.drops = self.gate.drops;
        report.waiting_for_cpu_ticks = self.liveness.waiting_ticks;
        report.samples = self.samples.finish();
        report.steering = self.steering.finish();
        report
    }

    fn handle(&mut self, observed: Observed, report: &mut ControlReport) {
        let sample = observed.sample;
        self.record_sample(&sample);
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
        let Some(change) = observed.change else {
            return;
        };
        if self.trace {
            eprintln!(
                "control: change at {}: {:?} -> {:?} ({})",
                change.at.0, change.before, change.after, change.reason
            );
        }
        if let Some(e) = observed.rule_error {
            report.apply_errors += 1;
            report.last_apply_error = Some(e.to_string());
            return;
        }
        self.apply(change, report);
    }

    fn record_sample(&mut self, s: &LoadSample) {
        let (Some(location), Some(t_ns)) = (s.location, self.since_measure_start(s.at.0)) else {
            return;
        };
        self.samples.push(
            t_ns,
            &raw::LoadSample {
                t_ns,
                location: results_location(location),
                queue_delay_ns: s.queue_delay_ns,
                utilisation: f64::from(s.utilisation_permille) / 1000.0,
                completions: s.completions,
            },
        );
    }

    fn apply(&mut self, change: RuleChange, report: &mut ControlReport) {
        self.control.publish(self.stage.settings());
        let applied_at = match self.eswitch.apply(self.stage.rules()) {
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
        self.steering.push(
            t_ns,
            &raw::SteeringChange {
                t_ns,
                policy: self.policy_name.clone(),
                scope: scope_name(change.key),
                host_permille: change.after.of(Location::Host),
                nic_permille: change.after.of(Location::Nic),
                client_permille: change.after.of(Location::Client),
                reason: change.reason.to_string(),
            },
        );
    }

    /// Time since the measured phase started, if it has (warm-up records are not written).
    fn since_measure_start(&self, realtime_ns: u64) -> Option<u64> {
        realtime_ns.checked_sub(self.timeline.get()?.measure_start_realtime_ns())
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

/// Reads the host workers' liveness into the engine's heartbeats at each tick. A worker silent
/// beyond the allowance is probed: requests waiting in its socket while it is runnable (`R`) and
/// its CPU clock advanced by less than half the time since the last tick means work queues
/// behind another task on its core — a hog — and its silence counts at once. A VM's stall leaves
/// it sleeping or running (clock advancing); an idle worker delayed by a busy machine has no
/// request waiting, so nothing waited.
#[derive(Debug)]
pub struct LivenessReader {
    allowance_ns: u64,
    cpu_ns: Vec<u64>,
    last_tick: Option<Nanos>,
    /// Ticks at which some worker was seen waiting for a CPU.
    pub waiting_ticks: u64,
}

impl LivenessReader {
    /// A reader for `workers` workers whose silence up to `allowance_ns` is normal.
    pub fn new(workers: usize, allowance_ns: u64) -> LivenessReader {
        LivenessReader {
            allowance_ns,
            cpu_ns: vec![0; workers],
            last_tick: None,
            waiting_ticks: 0,
        }
    }

    /// The workers' heartbeats at `now` into `beats`.
    pub fn read(&mut self, workers: &[Arc<Liveness>], now: Nanos, beats: &mut Vec<Heartbeat>) {
        let since_tick_ns = self.last_tick.map_or(0, |at| now.since(at));
        self.last_tick = Some(now);
        self.cpu_ns.resize(workers.len(), 0);
        beats.clear();
        for (worker, cpu_ns) in workers.iter().zip(self.cpu_ns.iter_mut()) {
            let at = Nanos(worker.beat_ns());
            let Some(thread) = worker.thread() else {
                beats.push(Heartbeat::at(at));
                continue;
            };
            let total_ns = thread.cpu_ns();
            let used_ns = total_ns.saturating_sub(std::mem::replace(cpu_ns, total_ns));
            let silent = now.since(at) > self.allowance_ns;
            let stood_still = used_ns.saturating_mul(2) < since_tick_ns;
            let waiting_for_cpu =
                silent && stood_still && worker.has_requests_waiting() && thread.is_runnable();
            beats.push(Heartbeat {
                at,
                waiting_for_cpu,
            });
        }
        if beats.iter().any(|b| b.waiting_for_cpu) {
            self.waiting_ticks += 1;
        }
    }
}
