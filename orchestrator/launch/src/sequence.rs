//! The launch sequence, written once for every transport: deploy → start → warm-up → measure →
//! collect → teardown.
//!
//! 1. **deploy** — the transport reaches every machine, measures the clocks (refusing unusable
//!    ones before anything starts) and puts the artifacts in place;
//! 2. **start** — launches start in dependency order (host group, NIC group, clients), each
//!    group only after the previous one passed its readiness checks; a launch's inputs are put
//!    in its run directory first (bytes, or a file an earlier launch wrote, relayed through the
//!    launcher and kept under `<results_dir>/<launch>/inputs/`); the clocks are measured again;
//!    then a common start time a little in the future is fixed and handed to every launch in
//!    *its machine's* clock as `timeline.json` and `start_at` — the barrier clients and the hog
//!    wait on;
//! 3. **warm-up** and 4. **measure** — wait out the durations, polling every process; CPU time
//!    is sampled at both ends of the measurement;
//! 5. **collect** — wait (bounded) for the launches that end by themselves, stop the others by
//!    PID (clients first, host last), fetch every declared output and both logs, verified;
//! 6. **teardown** — stop anything still running; it also runs after a failure or Ctrl-C.
//!
//! A process that ends before it should, or a machine lost mid-run, does not stop the others:
//! its launches are marked unmeasured and the run ends [`RunStatus::Partial`] with per-node
//! coverage. A failure before the measurement (a role that does not get ready, an unreachable
//! machine) ends it [`RunStatus::Failed`]; Ctrl-C ends it [`RunStatus::Cancelled`] — both after
//! the teardown. Every phase boundary is a timestamped event, recorded and passed to the
//! observer as it happens.
//!
//! Environment of every role process: `NAAM_RUN_ID`, `NAAM_LAUNCH_ID`, `NAAM_ROLE`,
//! `NAAM_START_FILE` (`start_at`, relative to its run directory), `NAAM_WARMUP_MS`,
//! `NAAM_MEASURE_MS`, and whatever its transport adds (over SSH, `NAAM_LAN_ADDRESS`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use naam_types::Timeline;

use crate::cancel::Cancel;
use crate::plan::{Ends, LaunchInput, LaunchSpec, Role, START_AT_FILE};
use crate::record::{
    CpuTimes, CpuUsage, EndState, HostRecord, LaunchRecord, Mark, Phase, PhaseEvent, RunRecord,
    RunStatus,
};
use crate::transport::{FetchJobs, ProcessState, StopOutcome, Transport};

/// Folder (in a launch's local results directory) keeping the inputs it was given.
pub const INPUTS_DIR: &str = "inputs";
/// How early (before the measurement's end, by the launcher's clock) a client may exit with
/// status 0 and still count as having run through the measurement.
pub const EXIT_TOLERANCE_MS: u64 = 1_000;

/// Receives every phase event as it happens (tests use it to act at a given moment).
pub type Observer<'a> = &'a (dyn Fn(&PhaseEvent) + Sync);

/// Durations, waits and the results folder of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceConfig {
    /// Run id (`NAAM_RUN_ID`).
    pub run_id: String,
    /// Warm-up, excluded from measurement.
    pub warmup_ms: u64,
    /// The measured interval.
    pub measure_ms: u64,
    /// Local folder for the record, the inputs kept and the collected files.
    pub results_dir: PathBuf,
    /// Time from publishing the start time to the start, for every role to read it and set up.
    pub start_lead_ms: u64,
    /// Longest wait for a launch to pass its readiness check.
    pub ready_wait_ms: u64,
    /// Interval between readiness checks.
    pub ready_poll_ms: u64,
    /// Interval between liveness polls during warm-up and measurement.
    pub liveness_poll_ms: u64,
    /// How long the launches that end by themselves get after the measurement.
    pub exit_wait_ms: u64,
    /// SIGTERM → SIGKILL grace per process.
    pub stop_grace_ms: u64,
}

/// A fresh record of attempt `attempt`: every machine and launch of `launches`, with run
/// directories from `run_dir` (the transport may refine them in its deploy phase).
pub fn new_record(
    launches: &[LaunchSpec],
    config: &SequenceConfig,
    attempt: u32,
    run_dir: impl Fn(&LaunchSpec) -> String,
) -> RunRecord {
    let mut hosts = BTreeMap::new();
    let mut records = BTreeMap::new();
    for launch in launches {
        hosts
            .entry(launch.host.clone())
            .or_insert_with(HostRecord::default);
        records.insert(
            launch.id.clone(),
            LaunchRecord {
                host: launch.host.clone(),
                role: launch.role,
                run_dir: run_dir(launch),
                pid: None,
                start_ticks: None,
                measured: false,
                end: None,
                problems: Vec::new(),
                collected: Vec::new(),
                missing: launch.expected_files(),
            },
        );
    }
    RunRecord {
        run_id: config.run_id.clone(),
        attempt,
        status: RunStatus::Complete,
        error: None,
        start_at_unix_ns: None,
        warmup_ms: config.warmup_ms,
        measure_ms: config.measure_ms,
        events: Vec::new(),
        hosts,
        launches: records,
    }
}

/// Runs one attempt of `launches` (validated, in start order) over `transport`: see the module
/// documentation. Returns the record with its final status; failures on the machines are in the
/// record, not errors.
pub fn run<T: Transport>(
    transport: &mut T,
    launches: Vec<LaunchSpec>,
    config: &SequenceConfig,
    record: RunRecord,
    cancel: &Cancel,
    observer: Observer<'_>,
) -> RunRecord {
    let mut run = Sequence::new(transport, config, launches, record, cancel, observer);
    let outcome = run
        .deploy_phase()
        .and_then(|()| run.start_phase())
        .and_then(|()| run.timed_phases());
    match outcome {
        Ok(()) => run.collect_phase(),
        Err(abort) => run.abandon(abort),
    }
    run.event(Phase::Teardown, Mark::Begin, "");
    run.stop_all(Phase::Teardown);
    if matches!(run.record.status, RunStatus::Failed | RunStatus::Cancelled) {
        run.fetch_missing();
    }
    run.transport.teardown();
    run.event(Phase::Teardown, Mark::End, "");
    if matches!(run.record.status, RunStatus::Complete | RunStatus::Partial) {
        run.record.status = run.record.measured_status();
    }
    run.record
}

/// Resumes collection of a partial run whose measurements are all complete: stops processes
/// the first pass could not stop (by the PID and start time it recorded), then fetches the
/// missing files.
pub fn collect_again<T: Transport>(
    transport: &mut T,
    launches: Vec<LaunchSpec>,
    config: &SequenceConfig,
    record: RunRecord,
    cancel: &Cancel,
    observer: Observer<'_>,
) -> RunRecord {
    let mut run = Sequence::new(transport, config, launches, record, cancel, observer);
    run.event(
        Phase::Collect,
        Mark::Begin,
        "resume: fetching missing files only",
    );
    run.reconnect_hosts(|l| l.end.is_none() && l.pid.is_some());
    run.stop_all(Phase::Collect);
    run.fetch_missing();
    run.event(Phase::Collect, Mark::End, "");
    run.transport.teardown();
    run.record.status = run.record.measured_status();
    run.record
}

/// Why an attempt stopped early.
enum Abort {
    Failed(String),
    Cancelled,
}

/// State shared by the phases of one attempt.
struct Sequence<'a, T: Transport> {
    transport: &'a mut T,
    config: &'a SequenceConfig,
    launches: Vec<LaunchSpec>,
    record: RunRecord,
    started: BTreeSet<String>,
    measure_end_ns: Option<i64>,
    /// Launches seen ending before they should have.
    ended_early: BTreeSet<String>,
    cancel: &'a Cancel,
    observer: Observer<'a>,
}

impl<'a, T: Transport> Sequence<'a, T> {
    fn new(
        transport: &'a mut T,
        config: &'a SequenceConfig,
        launches: Vec<LaunchSpec>,
        record: RunRecord,
        cancel: &'a Cancel,
        observer: Observer<'a>,
    ) -> Self {
        let started = record
            .launches
            .iter()
            .filter(|(_, l)| l.pid.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        Sequence {
            transport,
            config,
            launches,
            record,
            started,
            measure_end_ns: None,
            ended_early: BTreeSet::new(),
            cancel,
            observer,
        }
    }

    fn event(&mut self, phase: Phase, mark: Mark, detail: impl Into<String>) {
        let event = PhaseEvent {
            phase,
            mark,
            at_unix_ns: self.transport.now_ns(),
            detail: detail.into(),
        };
        self.transport.on_event(&event);
        (self.observer)(&event);
        self.record.events.push(event);
    }

    /// Marks a machine lost, and every launch on it unmeasured (if the measurement was not
    /// over); the transport forgets it.
    fn lose_host(&mut self, phase: Phase, host: &str, why: &str) {
        self.transport.lose(host);
        let host_record = self.record.hosts.entry(host.to_string()).or_default();
        if host_record.lost.is_none() {
            host_record.lost = Some(format!("{phase:?}: {why}"));
        }
        for launch in self.record.launches.values_mut().filter(|l| l.host == host) {
            // Lost after the measurement ended, a launch keeps its measurement: only its files
            // are missing, and a rerun fetches them.
            if phase <= Phase::Measure {
                launch.measured = false;
            }
            launch
                .problems
                .push(format!("host lost during {phase:?}: {why}"));
        }
        self.event(phase, Mark::Note, format!("host {host} lost: {why}"));
    }

    fn check_cancel(&self) -> Result<(), Abort> {
        if self.cancel.is_cancelled() {
            Err(Abort::Cancelled)
        } else {
            Ok(())
        }
    }

    /// A failed or cancelled attempt: nothing counts as measured.
    fn abandon(&mut self, abort: Abort) {
        let (status, error) = match abort {
            Abort::Failed(why) => (RunStatus::Failed, why),
            Abort::Cancelled => (RunStatus::Cancelled, "cancelled (Ctrl-C or SIGTERM)".into()),
        };
        self.record.status = status;
        self.record.error = Some(error);
        for launch in self.record.launches.values_mut() {
            launch.measured = false;
        }
    }

    fn deploy_phase(&mut self) -> Result<(), Abort> {
        self.event(Phase::Deploy, Mark::Begin, "");
        self.transport
            .reach(&mut self.record)
            .map_err(Abort::Failed)?;
        // Refuse unusable clocks before anything starts; measured again just before the start.
        self.transport
            .measure_clocks(&mut self.record)
            .map_err(Abort::Failed)?;
        self.check_cancel()?;
        let mut notes = Vec::new();
        let deployed = self
            .transport
            .deploy(&mut self.record, &mut |note| notes.push(note));
        for note in notes {
            self.event(Phase::Deploy, Mark::Note, note);
        }
        deployed.map_err(Abort::Failed)?;
        self.event(Phase::Deploy, Mark::End, "");
        Ok(())
    }

    fn start_phase(&mut self) -> Result<(), Abort> {
        self.event(Phase::Start, Mark::Begin, "");
        for role in Role::ALL {
            let group: Vec<LaunchSpec> = self
                .launches
                .iter()
                .filter(|l| l.role == role)
                .cloned()
                .collect();
            for launch in &group {
                self.check_cancel()?;
                self.place_inputs(launch)?;
                self.start_launch(launch)?;
            }
            for launch in &group {
                self.wait_ready(launch)?;
            }
        }
        self.transport
            .measure_clocks(&mut self.record)
            .map_err(Abort::Failed)?;
        self.fix_start()
    }

    /// Fixes the common start a lead time (plus the publication budget) in the future and
    /// publishes it to every launch.
    fn fix_start(&mut self) -> Result<(), Abort> {
        let budget_ns = self
            .transport
            .publication_budget_ns()
            .map_err(Abort::Failed)?;
        let start_at = self.transport.now_ns() + ms_to_ns(self.config.start_lead_ms) + budget_ns;
        self.record.start_at_unix_ns = Some(start_at);
        // Known from now on: processes that end are judged against the planned end, by the
        // clock, however far the polling lags behind.
        self.measure_end_ns =
            Some(start_at + ms_to_ns(self.config.warmup_ms) + ms_to_ns(self.config.measure_ms));
        let entries = self.start_entries(start_at)?;
        self.transport.publish(&entries).map_err(Abort::Failed)?;
        let published_at = self.transport.now_ns();
        if published_at > start_at {
            let late_ms = (published_at - start_at) / 1_000_000;
            // Late within the warm-up: the warm-up absorbs it. Later than that, some role learnt
            // the timeline only after the measured phase had begun: its window is cut short.
            if published_at > start_at + ms_to_ns(self.config.warmup_ms) {
                return Err(Abort::Failed(format!(
                    "start time published {late_ms} ms late, after the {} ms warm-up: measured windows would be cut short",
                    self.config.warmup_ms
                )));
            }
            self.event(
                Phase::Start,
                Mark::Note,
                format!("start time published {late_ms} ms late, within the warm-up"),
            );
        }
        self.event(
            Phase::Start,
            Mark::End,
            format!("start_at_unix_ns={start_at}"),
        );
        Ok(())
    }

    /// Every launch's start in its machine's clock, and its timeline as JSON.
    fn start_entries(&self, start_at: i64) -> Result<Vec<(LaunchRecord, i64, String)>, Abort> {
        let mut entries = Vec::new();
        for launch in &self.launches {
            let offset = self
                .record
                .hosts
                .get(&launch.host)
                .and_then(|h| h.clock)
                .map_or(0, |c| c.offset_ns);
            let remote_start = start_at + offset;
            let timeline = Timeline {
                start_realtime_ns: u64::try_from(remote_start).map_err(|_| {
                    Abort::Failed(format!("start time {remote_start} ns on {}", launch.host))
                })?,
                warmup_ms: self.config.warmup_ms,
                measure_ms: self.config.measure_ms,
            };
            let json =
                serde_json::to_string(&timeline).map_err(|e| Abort::Failed(e.to_string()))?;
            let record = self.record.launches[&launch.id].clone();
            entries.push((record, remote_start, json));
        }
        Ok(entries)
    }

    /// Puts a launch's inputs into its run directory, keeping a copy of each under
    /// `<results_dir>/<launch>/inputs/`.
    fn place_inputs(&mut self, launch: &LaunchSpec) -> Result<(), Abort> {
        if launch.inputs.is_empty() {
            return Ok(());
        }
        let local_dir = self.config.results_dir.join(&launch.id).join(INPUTS_DIR);
        std::fs::create_dir_all(&local_dir)
            .map_err(|e| Abort::Failed(format!("{}: {e}", local_dir.display())))?;
        let target = self.record.launches[&launch.id].clone();
        for input in &launch.inputs {
            let local = local_dir.join(input.name());
            match input {
                LaunchInput::Bytes { bytes, .. } => std::fs::write(&local, bytes)
                    .map_err(|e| Abort::Failed(format!("{}: {e}", local.display())))?,
                LaunchInput::FromLaunch {
                    launch: source,
                    file,
                } => {
                    let from = self.record.launches[source].clone();
                    self.transport
                        .fetch(&from.host, &from.run_dir, file, &local)
                        .map_err(|e| {
                            Abort::Failed(format!("{}: input {file} from {source}: {e}", launch.id))
                        })?;
                }
            }
            self.transport
                .upload(&target.host, &target.run_dir, &local, input.name())
                .map_err(|e| {
                    Abort::Failed(format!("{}: input {}: {e}", launch.id, input.name()))
                })?;
            self.event(
                Phase::Start,
                Mark::Note,
                format!("{}: input {} placed", launch.id, input.name()),
            );
        }
        Ok(())
    }

    fn start_launch(&mut self, launch: &LaunchSpec) -> Result<(), Abort> {
        let env = [
            ("NAAM_RUN_ID", self.config.run_id.clone()),
            ("NAAM_LAUNCH_ID", launch.id.clone()),
            ("NAAM_ROLE", launch.role.as_str().to_string()),
            ("NAAM_START_FILE", START_AT_FILE.to_string()),
            ("NAAM_WARMUP_MS", self.config.warmup_ms.to_string()),
            ("NAAM_MEASURE_MS", self.config.measure_ms.to_string()),
        ];
        let record = self.record.launches[&launch.id].clone();
        let started = self
            .transport
            .start(launch, &record, &env)
            .map_err(|e| Abort::Failed(format!("start {}: {e}", launch.id)))?;
        let record = self.record.launches.get_mut(&launch.id).expect("created");
        record.pid = Some(started.pid);
        record.start_ticks = started.start_ticks;
        self.started.insert(launch.id.clone());
        self.event(
            Phase::Start,
            Mark::Note,
            format!("{} started on {}", launch.id, launch.host),
        );
        Ok(())
    }

    fn wait_ready(&mut self, launch: &LaunchSpec) -> Result<(), Abort> {
        let record = self.record.launches[&launch.id].clone();
        let polls = (self.config.ready_wait_ms / self.config.ready_poll_ms.max(1)).max(1);
        for _ in 0..polls {
            self.check_cancel()?;
            let state = self
                .transport
                .poll(&record)
                .map_err(|e| Abort::Failed(e.to_string()))?;
            if state != ProcessState::Running {
                return Err(Abort::Failed(format!(
                    "{} ended before it was ready: {state:?}",
                    launch.id
                )));
            }
            let ready = self
                .transport
                .is_ready(&record, &launch.readiness)
                .map_err(|e| Abort::Failed(e.to_string()))?;
            if ready {
                self.event(Phase::Start, Mark::Note, format!("{} ready", launch.id));
                return Ok(());
            }
            self.transport
                .sleep(Duration::from_millis(self.config.ready_poll_ms));
        }
        Err(Abort::Failed(format!(
            "{} not ready after {polls} checks ({} ms)",
            launch.id, self.config.ready_wait_ms
        )))
    }

    fn timed_phases(&mut self) -> Result<(), Abort> {
        let start_at = self.record.start_at_unix_ns.expect("set in start");
        self.sleep_until(start_at, None)?;
        let warmup = format!("{} ms", self.config.warmup_ms);
        self.event(Phase::Warmup, Mark::Begin, warmup);
        let measure_at = start_at + ms_to_ns(self.config.warmup_ms);
        self.sleep_until(measure_at, Some(Phase::Warmup))?;
        self.event(Phase::Warmup, Mark::End, "");
        let measure = format!("{} ms", self.config.measure_ms);
        self.event(Phase::Measure, Mark::Begin, measure);
        let before = self.sample_cpu(Phase::Measure);
        let lost: BTreeSet<String> = self
            .record
            .hosts
            .iter()
            .filter(|(_, h)| h.lost.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for (id, launch) in self.record.launches.iter_mut() {
            // A process that already ended as expected (a client done by the clock while the
            // polling lagged) keeps its measurement; one that ended early does not.
            launch.measured = !self.ended_early.contains(id) && !lost.contains(&launch.host);
        }
        let end_at = measure_at + ms_to_ns(self.config.measure_ms);
        self.sleep_until(end_at, Some(Phase::Measure))?;
        let after = self.sample_cpu(Phase::Measure);
        for (host, before) in before {
            if let Some(after) = after.get(&host) {
                self.record.hosts.entry(host).or_default().cpu =
                    Some(CpuUsage::between(before, *after));
            }
        }
        self.event(Phase::Measure, Mark::End, "");
        Ok(())
    }

    /// Sleeps until `until_ns` (launcher clock), polling every process meanwhile when `watch`
    /// names the phase being watched.
    fn sleep_until(&mut self, until_ns: i64, watch: Option<Phase>) -> Result<(), Abort> {
        loop {
            self.check_cancel()?;
            let now = self.transport.now_ns();
            if now >= until_ns {
                return Ok(());
            }
            if let Some(phase) = watch {
                self.poll_all(phase);
            }
            let left_ms = u64::try_from((until_ns - self.transport.now_ns()) / 1_000_000)
                .unwrap_or(0)
                .max(1);
            let interval = self.config.liveness_poll_ms.min(left_ms);
            self.transport.sleep(Duration::from_millis(interval));
        }
    }

    /// Polls every started process of every reachable machine; marks early ends and lost
    /// machines.
    fn poll_all(&mut self, phase: Phase) {
        let ids: Vec<String> = self
            .launches
            .iter()
            .map(|l| l.id.clone())
            .filter(|id| self.started.contains(id) && self.record.launches[id].end.is_none())
            .collect();
        for id in ids {
            let record = self.record.launches[&id].clone();
            if !self.transport.reachable(&record.host) {
                continue;
            }
            match self.transport.poll(&record) {
                Ok(ProcessState::Running) => {}
                Ok(state) => self.ended(phase, &id, state),
                // The transport already tried to reach it again: it is lost.
                Err(err) => self.lose_host(phase, &record.host, &err.message),
            }
        }
    }

    /// A process ended during `phase`: on time (a client done, a hog) or early.
    fn ended(&mut self, phase: Phase, id: &str, state: ProcessState) {
        let on_time = self.ended_on_time(id, state);
        let record = self.record.launches.get_mut(id).expect("created");
        record.end = Some(end_state(state));
        if on_time {
            return;
        }
        record.measured = false;
        record
            .problems
            .push(format!("ended during {phase:?}: {state:?}"));
        self.ended_early.insert(id.to_string());
        self.event(phase, Mark::Note, format!("{id} ended early: {state:?}"));
    }

    fn problem(&mut self, id: &str, problem: String) {
        let record = self.record.launches.get_mut(id).expect("created");
        record.problems.push(problem);
    }

    /// Whether a process that ended was a client finishing its own measurement: exit status 0,
    /// seen no earlier than [`EXIT_TOLERANCE_MS`] before the measurement's end (its timer runs on
    /// its machine's clock, which differs from ours by the measured offset's error).
    fn ended_on_time(&self, id: &str, state: ProcessState) -> bool {
        let ends = self
            .launches
            .iter()
            .find(|l| l.id == id)
            .map_or(Ends::WhenStopped, |l| l.ends);
        let end_at = self.measure_end_ns.unwrap_or(i64::MAX);
        let near_end =
            self.transport.now_ns() >= end_at.saturating_sub(ms_to_ns(EXIT_TOLERANCE_MS));
        let exited_ok = state == (ProcessState::Exited { status: 0 });
        match ends {
            Ends::WhenStopped => false,
            Ends::AfterMeasurement => exited_ok && near_end,
            Ends::ByItself => exited_ok,
        }
    }

    fn sample_cpu(&mut self, phase: Phase) -> BTreeMap<String, CpuTimes> {
        let mut samples = BTreeMap::new();
        for (host, result) in self.transport.sample_cpu() {
            match result {
                Ok(times) => {
                    samples.insert(host, times);
                }
                Err(err) if err.machine_lost => self.lose_host(phase, &host, &err.message),
                Err(_) => {}
            }
        }
        samples
    }

    /// The collection phase of a run that measured: launches that end by themselves finish,
    /// the others are stopped, files come home.
    fn collect_phase(&mut self) {
        self.event(Phase::Collect, Mark::Begin, "");
        self.wait_for_self_ending();
        self.stop_all(Phase::Collect);
        self.fetch_missing();
        self.event(Phase::Collect, Mark::End, "");
    }

    /// Waits (bounded) for every launch that ends by itself (clients, a hog) to exit.
    fn wait_for_self_ending(&mut self) {
        let deadline_ns = self.transport.now_ns() + ms_to_ns(self.config.exit_wait_ms);
        let ids: Vec<String> = self
            .launches
            .iter()
            .filter(|l| l.ends != Ends::WhenStopped && self.started.contains(&l.id))
            .map(|l| l.id.clone())
            .collect();
        for id in ids {
            let record = self.record.launches[&id].clone();
            if record.end.is_some() || !self.transport.reachable(&record.host) {
                continue;
            }
            let left_ms = u64::try_from((deadline_ns - self.transport.now_ns()).max(0) / 1_000_000)
                .unwrap_or(0);
            match self.transport.wait_ended(&record, left_ms) {
                Ok(true) => {
                    if let Ok(state) = self.transport.poll(&record) {
                        let record = self.record.launches.get_mut(&id).expect("created");
                        record.end = Some(end_state(state));
                        if state != (ProcessState::Exited { status: 0 }) {
                            record.measured = false;
                            record.problems.push(format!("client ended with {state:?}"));
                        }
                    }
                }
                Ok(false) => {}
                Err(err) => self.lose_host(Phase::Collect, &record.host, &err.message),
            }
        }
    }

    /// Stops every started process not known to have ended, in reverse start order (clients,
    /// then NIC, then host).
    fn stop_all(&mut self, phase: Phase) {
        let ids: Vec<String> = self.launches.iter().rev().map(|l| l.id.clone()).collect();
        for id in ids {
            let record = self.record.launches[&id].clone();
            if !self.started.contains(&id) || record.end.is_some() {
                continue;
            }
            if !self.transport.reachable(&record.host) {
                self.problem(
                    &id,
                    format!(
                        "not stopped during {phase:?}: host {} unreachable",
                        record.host
                    ),
                );
                continue;
            }
            match self.transport.stop(&record, self.config.stop_grace_ms) {
                Ok(outcome) => {
                    let end = match outcome {
                        StopOutcome::AlreadyEnded(state) => end_state(state),
                        StopOutcome::Terminated => EndState::Terminated,
                        StopOutcome::TerminatedWithError { status } => {
                            let launch = self.record.launches.get_mut(&id).expect("created");
                            launch.measured = false;
                            launch
                                .problems
                                .push(format!("exited with status {status} when stopped"));
                            EndState::Exited { status }
                        }
                        StopOutcome::Killed => EndState::Killed,
                    };
                    self.record.launches.get_mut(&id).expect("created").end = Some(end);
                    self.event(phase, Mark::Note, format!("{id} stopped: {end:?}"));
                }
                Err(err) => {
                    self.problem(&id, format!("stop failed during {phase:?}: {err}"));
                    if err.machine_lost {
                        self.lose_host(phase, &record.host, &err.message);
                    }
                }
            }
        }
    }

    /// Tries once more to reach the lost machines of launches that `need` one.
    fn reconnect_hosts(&mut self, need: impl Fn(&LaunchRecord) -> bool) {
        let hosts: BTreeSet<String> = self
            .record
            .launches
            .values()
            .filter(|l| need(l) && !self.transport.reachable(&l.host))
            .map(|l| l.host.clone())
            .collect();
        for host in hosts {
            match self.transport.reconnect(&host) {
                Ok(()) => {
                    self.event(
                        Phase::Collect,
                        Mark::Note,
                        format!("host {host} reachable again"),
                    );
                }
                Err(err) => self.lose_host(Phase::Collect, &host, &err.message),
            }
        }
    }

    /// Fetches every missing file of every started launch into
    /// `<results_dir>/<launch id>/`.
    fn fetch_missing(&mut self) {
        self.reconnect_hosts(|l| !l.missing.is_empty());
        let mut jobs: FetchJobs = BTreeMap::new();
        for (id, launch) in &self.record.launches {
            // A launch that never started left nothing to fetch (its files stay missing).
            if !launch.missing.is_empty()
                && launch.pid.is_some()
                && self.transport.reachable(&launch.host)
            {
                jobs.entry(launch.host.clone()).or_default().push((
                    id.clone(),
                    launch.run_dir.clone(),
                    launch.missing.clone(),
                ));
            }
        }
        let results = self.transport.fetch_all(&jobs, &self.config.results_dir);
        for (host, fetched) in results {
            for (launch_id, name, outcome) in fetched {
                let record = self.record.launches.get_mut(&launch_id).expect("created");
                match outcome {
                    Ok(file) => {
                        record.missing.retain(|m| m != &name);
                        record.collected.push(file);
                    }
                    Err(err) => {
                        record.problems.push(format!("{name} not collected: {err}"));
                        if err.machine_lost {
                            self.lose_host(Phase::Collect, &host, &err.message);
                        }
                    }
                }
            }
        }
        for launch in self.record.launches.values_mut() {
            launch.collected.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
}

fn end_state(state: ProcessState) -> EndState {
    match state {
        ProcessState::Running => EndState::Vanished,
        ProcessState::Exited { status } => EndState::Exited { status },
        ProcessState::Vanished => EndState::Vanished,
    }
}

/// Milliseconds as nanoseconds (saturating).
pub fn ms_to_ns(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}
