//! Role processes on this machine: each launch runs in `<root>/<launch id>/` with its output in
//! `stdout.log` and `stderr.log` there, in a process group of its own (its PID), and is stopped
//! by signalling that group (SIGTERM, then SIGKILL after the grace period). With network
//! namespaces (root), each machine of the plan maps to a namespace and its processes start
//! under `ip netns exec`. Artifacts are linked under the root (`bin/naam-role`), so a launch
//! names its program as it does on a remote machine. Whatever is still running when the
//! transport is dropped is killed, and a launcher that dies without dropping it (`kill -9`, a
//! panic that aborts) takes its roles with it: each is started with [`die_with_parent`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::netns::Netns;
use crate::plan::{LaunchSpec, Readiness, START_AT_FILE, STDERR_LOG, STDOUT_LOG, TIMELINE_FILE};
use crate::record::{CollectedFile, CpuTimes, LaunchRecord, RunRecord, parse_cpu_line};
use crate::transport::{ProcessState, Started, StopOutcome, Transport, TransportError};

/// How often a waiting transport looks at its processes.
pub const PROCESS_POLL: Duration = Duration::from_millis(10);
/// Bytes of a log's end quoted in an error.
pub const LOG_TAIL_BYTES: usize = 2000;

/// Local processes, optionally one network namespace per machine.
#[derive(Debug)]
pub struct LocalTransport {
    root: PathBuf,
    artifacts: Vec<(String, PathBuf)>,
    namespaces: BTreeMap<String, String>,
    netns: Option<Netns>,
    children: BTreeMap<u32, Child>,
    exited: BTreeMap<u32, ExitStatus>,
    machines: BTreeSet<String>,
    lost: BTreeSet<String>,
}

impl LocalTransport {
    /// Processes under `root` (run directories `<root>/<launch id>`), on this machine's network.
    /// A relative `root` is made absolute first: programs under it (`bin/naam-role`) start with
    /// their run directory as working directory, where a relative path would not resolve.
    pub fn new(root: PathBuf) -> LocalTransport {
        let root = std::path::absolute(&root).unwrap_or(root);
        LocalTransport {
            root,
            artifacts: Vec::new(),
            namespaces: BTreeMap::new(),
            netns: None,
            children: BTreeMap::new(),
            exited: BTreeMap::new(),
            machines: BTreeSet::new(),
            lost: BTreeSet::new(),
        }
    }

    /// Links `local` under the root as `relative` (e.g. `bin/naam-role`) at deploy.
    pub fn with_artifact(mut self, relative: &str, local: PathBuf) -> LocalTransport {
        self.artifacts.push((relative.to_string(), local));
        self
    }

    /// Runs machine `m`'s processes in namespace `machines[m]` of `netns` (owned from now on:
    /// the namespaces are deleted with the transport).
    pub fn in_namespaces(
        mut self,
        netns: Netns,
        machines: BTreeMap<String, String>,
    ) -> LocalTransport {
        self.netns = Some(netns);
        self.namespaces = machines;
        self
    }

    /// The run directory of a launch.
    pub fn run_dir(&self, launch_id: &str) -> PathBuf {
        self.root.join(launch_id)
    }

    fn program_path(&self, program: &str) -> PathBuf {
        if program.contains('/') && !program.starts_with('/') {
            self.root.join(program)
        } else {
            PathBuf::from(program)
        }
    }

    /// A command for `argv` on `machine`: `ip netns exec <ns>` in front when the machine has a
    /// namespace (exec replaces `ip`, so the PID is the program's).
    fn command_on(&self, machine: &str, argv: &[String]) -> Command {
        let program = self.program_path(&argv[0]);
        let mut command = match self.namespaces.get(machine) {
            Some(ns) => Netns::command(ns, &program),
            None => Command::new(&program),
        };
        command.args(&argv[1..]);
        command
    }

    fn state(&mut self, pid: u32) -> Result<ProcessState, TransportError> {
        if let Some(status) = self.exited.get(&pid) {
            return Ok(state_of(*status));
        }
        let child = self
            .children
            .get_mut(&pid)
            .ok_or_else(|| TransportError::failed(format!("no process {pid} started here")))?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.exited.insert(pid, status);
                Ok(state_of(status))
            }
            Ok(None) => Ok(ProcessState::Running),
            Err(e) => Err(TransportError::failed(format!("wait for {pid}: {e}"))),
        }
    }

    fn wait_for_end(&mut self, pid: u32, wait: Duration) -> Result<bool, TransportError> {
        let deadline = Instant::now() + wait;
        loop {
            if self.state(pid)? != ProcessState::Running {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(PROCESS_POLL);
        }
    }
}

/// `Exited` with the exit code, or `128 + signal` for a process a signal ended (the shell's
/// convention, as the SSH wrapper records it).
fn state_of(status: ExitStatus) -> ProcessState {
    match (status.code(), status.signal()) {
        (Some(code), _) => ProcessState::Exited { status: code },
        (None, Some(signal)) => ProcessState::Exited {
            status: 128 + signal,
        },
        (None, None) => ProcessState::Vanished,
    }
}

/// Has the kernel send SIGTERM to the process `command` starts when the thread that started it
/// dies (`PR_SET_PDEATHSIG`; a role stops gracefully on SIGTERM and removes what it created). If
/// the parent is already gone when the child runs, the child exits at once instead of
/// becoming an orphan. Survives `ip netns exec` (not a set-user-ID program).
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: getpid/getppid/prctl/_exit are async-signal-safe; nothing allocates between fork
    // and exec.
    let parent = unsafe { libc::getpid() };
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

fn signal_group(pid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) on the process group we created for a child we still own (not reaped:
    // the caller saw it running).
    unsafe {
        libc::kill(-pgid, signal);
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> TransportError {
    TransportError::failed(format!("{what} {}: {e}", path.display()))
}

/// Copies `from` to `to` through `to.part`, so a reader never sees half a file.
fn copy_atomic(from: &Path, to: &Path) -> Result<(), TransportError> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
    }
    let part = PathBuf::from(format!("{}.part", to.display()));
    std::fs::copy(from, &part).map_err(|e| io_error("copy from", from, e))?;
    std::fs::rename(&part, to).map_err(|e| io_error("rename", to, e))
}

/// Writes `bytes` to `path` through a temporary name.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// SHA-256 (hex) and length of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        len += n as u64;
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, len))
}

/// The last [`LOG_TAIL_BYTES`] of a log file.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = text.len().saturating_sub(LOG_TAIL_BYTES);
    String::from_utf8_lossy(&text[from..]).into_owned()
}

impl Transport for LocalTransport {
    fn kind(&self) -> &'static str {
        if self.namespaces.is_empty() {
            "local"
        } else {
            "netns"
        }
    }

    /// Fresh run directories: a ready file left by an earlier run must not pass for this one's.
    fn reach(&mut self, record: &mut RunRecord) -> Result<(), String> {
        for (id, launch) in record.launches.iter_mut() {
            let dir = self.run_dir(id);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            launch.run_dir = dir.display().to_string();
        }
        for (name, host) in record.hosts.iter_mut() {
            host.workdir = Some(self.root.display().to_string());
            self.machines.insert(name.clone());
        }
        Ok(())
    }

    fn deploy(
        &mut self,
        _record: &mut RunRecord,
        note: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        for (relative, local) in &self.artifacts {
            let target = self.root.join(relative);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(local, &target)
                .map_err(|e| format!("link {} -> {}: {e}", target.display(), local.display()))?;
            note(format!("{relative} -> {} (linked)", local.display()));
        }
        Ok(())
    }

    /// One machine's clock: no offset to measure.
    fn measure_clocks(&mut self, _record: &mut RunRecord) -> Result<(), String> {
        Ok(())
    }

    fn publication_budget_ns(&mut self) -> Result<i64, String> {
        Ok(0)
    }

    fn upload(
        &mut self,
        _machine: &str,
        run_dir: &str,
        local: &Path,
        name: &str,
    ) -> Result<(), TransportError> {
        let target = Path::new(run_dir).join(name);
        if target == local {
            return Ok(());
        }
        copy_atomic(local, &target)
    }

    fn fetch(
        &mut self,
        _machine: &str,
        run_dir: &str,
        name: &str,
        local: &Path,
    ) -> Result<CollectedFile, TransportError> {
        let source = Path::new(run_dir).join(name);
        if !source.is_file() {
            return Err(TransportError::failed(format!(
                "{} does not exist",
                source.display()
            )));
        }
        if source != local {
            copy_atomic(&source, local)?;
        }
        let (sha256, bytes) = sha256_file(local).map_err(|e| io_error("read", local, e))?;
        Ok(CollectedFile {
            name: name.to_string(),
            sha256,
            bytes,
        })
    }

    fn start(
        &mut self,
        launch: &LaunchSpec,
        record: &LaunchRecord,
        env: &[(&str, String)],
    ) -> Result<Started, TransportError> {
        let run_dir = Path::new(&record.run_dir);
        let argv: Vec<String> = launch
            .command
            .words()
            .iter()
            .map(|w| w.as_str().to_string())
            .collect();
        let log = |name: &str| {
            let path = run_dir.join(name);
            File::create(&path).map_err(|e| io_error("create log", &path, e))
        };
        let mut command = self.command_on(&launch.host, &argv);
        command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .current_dir(run_dir)
            .stdin(Stdio::null())
            .stdout(log(STDOUT_LOG)?)
            .stderr(log(STDERR_LOG)?)
            .process_group(0);
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|e| {
            TransportError::failed(format!("{}: cannot start {:?}: {e}", launch.id, argv[0]))
        })?;
        let pid = child.id();
        self.children.insert(pid, child);
        Ok(Started {
            pid,
            start_ticks: None,
        })
    }

    fn poll(&mut self, record: &LaunchRecord) -> Result<ProcessState, TransportError> {
        let pid = record
            .pid
            .ok_or_else(|| TransportError::failed("not started"))?;
        self.state(pid)
    }

    fn is_ready(
        &mut self,
        record: &LaunchRecord,
        readiness: &Readiness,
    ) -> Result<bool, TransportError> {
        let run_dir = Path::new(&record.run_dir);
        match readiness {
            Readiness::Running => Ok(true),
            Readiness::FileExists(file) => Ok(run_dir.join(file).exists()),
            Readiness::Command(check) => {
                let argv: Vec<String> = check
                    .words()
                    .iter()
                    .map(|w| w.as_str().to_string())
                    .collect();
                let status = self
                    .command_on(&record.host, &argv)
                    .current_dir(run_dir)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map_err(|e| TransportError::failed(format!("readiness {check}: {e}")))?;
                Ok(status.success())
            }
        }
    }

    fn publish(&mut self, entries: &[(LaunchRecord, i64, String)]) -> Result<(), String> {
        for (record, start_at, timeline) in entries {
            let dir = Path::new(&record.run_dir);
            write_atomic(&dir.join(TIMELINE_FILE), timeline.as_bytes())?;
            write_atomic(&dir.join(START_AT_FILE), format!("{start_at}\n").as_bytes())?;
        }
        Ok(())
    }

    /// This machine's `/proc/stat`, for every machine of the plan (they share its cores).
    fn sample_cpu(&mut self) -> Vec<(String, Result<CpuTimes, TransportError>)> {
        let times = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| parse_cpu_line(&text));
        let Some(times) = times else {
            return Vec::new();
        };
        self.machines
            .iter()
            .filter(|m| !self.lost.contains(*m))
            .map(|m| (m.clone(), Ok(times)))
            .collect()
    }

    fn wait_ended(&mut self, record: &LaunchRecord, wait_ms: u64) -> Result<bool, TransportError> {
        let pid = record
            .pid
            .ok_or_else(|| TransportError::failed("not started"))?;
        self.wait_for_end(pid, Duration::from_millis(wait_ms))
    }

    fn stop(
        &mut self,
        record: &LaunchRecord,
        grace_ms: u64,
    ) -> Result<StopOutcome, TransportError> {
        let pid = record
            .pid
            .ok_or_else(|| TransportError::failed("not started"))?;
        let state = self.state(pid)?;
        if state != ProcessState::Running {
            return Ok(StopOutcome::AlreadyEnded(state));
        }
        signal_group(pid, libc::SIGTERM);
        if self.wait_for_end(pid, Duration::from_millis(grace_ms))? {
            // Ended by the signal itself, or exited cleanly on it: terminated. Exited with an
            // error code of its own: it failed while shutting down.
            let code = self.exited.get(&pid).and_then(|s| s.code());
            return Ok(match code {
                Some(status) if status != 0 => StopOutcome::TerminatedWithError { status },
                _ => StopOutcome::Terminated,
            });
        }
        signal_group(pid, libc::SIGKILL);
        if self.wait_for_end(pid, Duration::from_millis(grace_ms))? {
            return Ok(StopOutcome::Killed);
        }
        Err(TransportError::failed(format!(
            "{pid} did not end after SIGKILL"
        )))
    }

    fn reachable(&self, machine: &str) -> bool {
        !self.lost.contains(machine)
    }

    fn lose(&mut self, machine: &str) {
        self.lost.insert(machine.to_string());
    }

    fn reconnect(&mut self, machine: &str) -> Result<(), TransportError> {
        self.lost.remove(machine);
        Ok(())
    }

    fn teardown(&mut self) {
        self.kill_all();
    }
}

impl LocalTransport {
    /// SIGKILLs every process group still running and reaps it.
    fn kill_all(&mut self) {
        for (pid, child) in self.children.iter_mut() {
            if self.exited.contains_key(pid) {
                continue;
            }
            if let Ok(None) = child.try_wait() {
                signal_group(*pid, libc::SIGKILL);
            }
            if let Ok(status) = child.wait() {
                self.exited.insert(*pid, status);
            }
        }
    }
}

impl Drop for LocalTransport {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `naam reproduce` with its default `--results results` gives a relative root; the role
    /// binary linked under it must still be found from the role's own run directory.
    #[test]
    fn a_relative_root_gives_absolute_program_paths() {
        let transport = LocalTransport::new(PathBuf::from("results/x/roles"));
        let program = transport.program_path("bin/naam-role");
        assert!(program.is_absolute(), "{}", program.display());
        assert!(program.ends_with("results/x/roles/bin/naam-role"));
        assert!(transport.run_dir("host").is_absolute());
        assert_eq!(transport.program_path("sleep"), PathBuf::from("sleep"));
    }
}
