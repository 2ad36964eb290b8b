//! A transport that runs nothing and writes down what the sequence asks of it, in order, on a
//! virtual clock: `naam deploy --dry-run` prints its recording, and the sequence's phase-order
//! and failure-path tests run on it (a role that dies, a machine that cannot be reached, a
//! launch that never gets ready), in milliseconds and without any daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plan::{LaunchSpec, Readiness, TIMELINE_FILE};
use crate::record::{CollectedFile, CpuTimes, LaunchRecord, Mark, PhaseEvent, RunRecord};
use crate::transport::{ProcessState, Started, StopOutcome, Transport, TransportError};

/// Virtual start of the recording's clock (ns since the Unix epoch): 2025-01-01T00:00:00Z.
pub const VIRTUAL_EPOCH_NS: i64 = 1_735_689_600_000_000_000;
/// First PID the recording hands out.
const FIRST_PID: u32 = 1000;

/// Something that goes wrong in a recorded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The machine cannot be reached at all.
    Unreachable(String),
    /// The machine stops answering `after_ms` after the common start.
    LostAfter {
        /// The machine.
        machine: String,
        /// When, from the start of the warm-up.
        after_ms: u64,
    },
    /// The launch's process exits with `status`, `after_ms` after the common start.
    ExitsAfter {
        /// The launch id.
        launch: String,
        /// When, from the start of the warm-up.
        after_ms: u64,
        /// Its exit status.
        status: i32,
    },
    /// The launch never passes its readiness check.
    NeverReady(String),
}

/// The recording transport.
#[derive(Debug)]
pub struct RecordingTransport {
    lines: Vec<String>,
    now_ns: i64,
    start_at_ns: Option<i64>,
    run_dir: BTreeMap<String, String>,
    deploy_lines: BTreeMap<String, Vec<String>>,
    faults: Vec<Fault>,
    pids: BTreeMap<u32, String>,
    ended: BTreeMap<String, ProcessState>,
    /// Launches that end by themselves at the end of the measurement (clients).
    self_ending: BTreeSet<String>,
    measure_end_ns: Option<i64>,
    lost: BTreeSet<String>,
    /// Local copies written by [`Transport::fetch`] (relayed inputs hold no real bytes).
    fetched: BTreeSet<PathBuf>,
}

impl RecordingTransport {
    /// A recording whose run directories are `run_dir(launch)` and whose deploy phase shows
    /// `deploy_lines[machine]` for each machine (e.g. what SSH would upload).
    pub fn new(
        run_dir: BTreeMap<String, String>,
        deploy_lines: BTreeMap<String, Vec<String>>,
    ) -> RecordingTransport {
        RecordingTransport {
            lines: Vec::new(),
            now_ns: VIRTUAL_EPOCH_NS,
            start_at_ns: None,
            run_dir,
            deploy_lines,
            faults: Vec::new(),
            pids: BTreeMap::new(),
            ended: BTreeMap::new(),
            self_ending: BTreeSet::new(),
            measure_end_ns: None,
            lost: BTreeSet::new(),
            fetched: BTreeSet::new(),
        }
    }

    /// The same, with `fault` happening.
    pub fn with_fault(mut self, fault: Fault) -> RecordingTransport {
        self.faults.push(fault);
        self
    }

    /// What the sequence asked for, one line per step, in order.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The recording as text.
    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }

    fn say(&mut self, line: String) {
        self.lines.push(line);
    }

    fn since_start_ms(&self) -> Option<u64> {
        let start = self.start_at_ns?;
        u64::try_from((self.now_ns - start) / 1_000_000).ok()
    }

    fn lost_now(&self, machine: &str) -> bool {
        self.lost.contains(machine)
            || self.faults.iter().any(|f| match f {
                Fault::Unreachable(m) => m == machine,
                Fault::LostAfter {
                    machine: m,
                    after_ms,
                } => m == machine && self.since_start_ms().is_some_and(|t| t >= *after_ms),
                _ => false,
            })
    }

    fn exit_fault(&self, launch: &str) -> Option<ProcessState> {
        self.faults.iter().find_map(|f| match f {
            Fault::ExitsAfter {
                launch: l,
                after_ms,
                status,
            } if l == launch && self.since_start_ms().is_some_and(|t| t >= *after_ms) => {
                Some(ProcessState::Exited { status: *status })
            }
            _ => None,
        })
    }

    fn check(&self, machine: &str) -> Result<(), TransportError> {
        if self.lost_now(machine) {
            Err(TransportError::lost(format!("{machine} does not answer")))
        } else {
            Ok(())
        }
    }

    fn launch_of(&self, record: &LaunchRecord) -> String {
        record
            .pid
            .and_then(|pid| self.pids.get(&pid).cloned())
            .unwrap_or_default()
    }

    fn state_of(&self, launch: &str) -> ProcessState {
        if let Some(state) = self.ended.get(launch) {
            return *state;
        }
        if let Some(state) = self.exit_fault(launch) {
            return state;
        }
        let done = self.self_ending.contains(launch)
            && self.measure_end_ns.is_some_and(|end| self.now_ns >= end);
        if done {
            ProcessState::Exited { status: 0 }
        } else {
            ProcessState::Running
        }
    }
}

impl Transport for RecordingTransport {
    fn kind(&self) -> &'static str {
        "recording"
    }

    fn reach(&mut self, record: &mut RunRecord) -> Result<(), String> {
        for (id, launch) in record.launches.iter_mut() {
            if let Some(dir) = self.run_dir.get(id) {
                launch.run_dir = dir.clone();
            }
        }
        let machines: Vec<String> = record.hosts.keys().cloned().collect();
        for machine in machines {
            self.say(format!("reach {machine}"));
            if self.lost_now(&machine) {
                return Err(format!("{machine} does not answer"));
            }
        }
        Ok(())
    }

    fn deploy(
        &mut self,
        record: &mut RunRecord,
        _note: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        let machines: Vec<String> = record.hosts.keys().cloned().collect();
        for machine in machines {
            let lines = self.deploy_lines.get(&machine).cloned().unwrap_or_default();
            for line in lines {
                self.say(format!("deploy {machine}: {line}"));
            }
        }
        Ok(())
    }

    fn measure_clocks(&mut self, _record: &mut RunRecord) -> Result<(), String> {
        self.say(
            "measure clock offsets (refused beyond the bounds, else shifted per machine)".into(),
        );
        Ok(())
    }

    fn publication_budget_ns(&mut self) -> Result<i64, String> {
        Ok(0)
    }

    fn upload(
        &mut self,
        machine: &str,
        run_dir: &str,
        local: &Path,
        name: &str,
    ) -> Result<(), TransportError> {
        self.check(machine)?;
        let size = if self.fetched.contains(local) {
            "as fetched".to_string()
        } else {
            let bytes = std::fs::metadata(local).map(|m| m.len()).unwrap_or(0);
            format!("{bytes} bytes")
        };
        self.say(format!("put {name} ({size}) into {machine}:{run_dir}"));
        Ok(())
    }

    fn fetch(
        &mut self,
        machine: &str,
        run_dir: &str,
        name: &str,
        local: &Path,
    ) -> Result<CollectedFile, TransportError> {
        self.check(machine)?;
        self.say(format!("fetch {machine}:{run_dir}/{name}"));
        if let Some(parent) = local.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| TransportError::failed(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(local, b"")
            .map_err(|e| TransportError::failed(format!("{}: {e}", local.display())))?;
        self.fetched.insert(local.to_path_buf());
        Ok(CollectedFile {
            name: name.to_string(),
            sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            bytes: 0,
        })
    }

    fn start(
        &mut self,
        launch: &LaunchSpec,
        record: &LaunchRecord,
        _env: &[(&str, String)],
    ) -> Result<Started, TransportError> {
        self.check(&launch.host)?;
        let pid = FIRST_PID + self.pids.len() as u32;
        self.pids.insert(pid, launch.id.clone());
        if launch.ends != crate::plan::Ends::WhenStopped {
            self.self_ending.insert(launch.id.clone());
        }
        self.say(format!(
            "start {} {} on {} in {}: {}",
            launch.role, launch.id, launch.host, record.run_dir, launch.command
        ));
        Ok(Started {
            pid,
            start_ticks: None,
        })
    }

    fn poll(&mut self, record: &LaunchRecord) -> Result<ProcessState, TransportError> {
        self.check(&record.host)?;
        Ok(self.state_of(&self.launch_of(record)))
    }

    fn is_ready(
        &mut self,
        record: &LaunchRecord,
        readiness: &Readiness,
    ) -> Result<bool, TransportError> {
        let launch = self.launch_of(record);
        if self.faults.contains(&Fault::NeverReady(launch.clone())) {
            return Ok(false);
        }
        self.say(format!("{launch} ready: {readiness}"));
        Ok(true)
    }

    fn publish(&mut self, entries: &[(LaunchRecord, i64, String)]) -> Result<(), String> {
        let start = entries.first().map_or(self.now_ns, |(_, at, _)| *at);
        let timeline: Option<naam_types::Timeline> = entries
            .first()
            .and_then(|(_, _, json)| serde_json::from_str(json).ok());
        self.start_at_ns = Some(start);
        if let Some(t) = timeline {
            self.measure_end_ns = Some(start + ((t.warmup_ms + t.measure_ms) * 1_000_000) as i64);
        }
        let launches: Vec<String> = entries
            .iter()
            .map(|(record, _, _)| self.launch_of(record))
            .collect();
        let lead_ms = (start - self.now_ns) / 1_000_000;
        self.say(format!(
            "publish the common start (in {lead_ms} ms, shifted per machine by its clock offset) as {TIMELINE_FILE} and start_at to {}",
            launches.join(", ")
        ));
        Ok(())
    }

    fn sample_cpu(&mut self) -> Vec<(String, Result<CpuTimes, TransportError>)> {
        self.say("sample CPU times (/proc/stat) of every machine".into());
        Vec::new()
    }

    fn wait_ended(&mut self, record: &LaunchRecord, wait_ms: u64) -> Result<bool, TransportError> {
        self.check(&record.host)?;
        let launch = self.launch_of(record);
        self.say(format!("wait for {launch} to exit (at most {wait_ms} ms)"));
        Ok(self.state_of(&launch) != ProcessState::Running)
    }

    fn stop(
        &mut self,
        record: &LaunchRecord,
        grace_ms: u64,
    ) -> Result<StopOutcome, TransportError> {
        self.check(&record.host)?;
        let launch = self.launch_of(record);
        let state = self.state_of(&launch);
        if state != ProcessState::Running {
            return Ok(StopOutcome::AlreadyEnded(state));
        }
        self.say(format!(
            "stop {launch}: TERM to its process group, KILL after {grace_ms} ms"
        ));
        self.ended.insert(launch, ProcessState::Vanished);
        Ok(StopOutcome::Terminated)
    }

    /// Until the sequence gives a machine up, it is asked for; a faulty one then fails.
    fn reachable(&self, machine: &str) -> bool {
        !self.lost.contains(machine)
    }

    fn lose(&mut self, machine: &str) {
        self.lost.insert(machine.to_string());
    }

    fn reconnect(&mut self, machine: &str) -> Result<(), TransportError> {
        self.say(format!("reach {machine} again"));
        Err(TransportError::lost(format!("{machine} does not answer")))
    }

    fn on_event(&mut self, event: &PhaseEvent) {
        if event.mark == Mark::Begin {
            let phase = format!("{:?}", event.phase).to_lowercase();
            match event.detail.as_str() {
                "" => self.say(format!("== {phase}")),
                detail => self.say(format!("== {phase} ({detail})")),
            }
        }
    }

    fn now_ns(&self) -> i64 {
        self.now_ns
    }

    fn sleep(&mut self, duration: Duration) {
        self.now_ns += i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
    }

    fn teardown(&mut self) {
        self.say("teardown: release connections and namespaces".into());
    }
}
