//! Role processes started by the testbed: each tracked by its PID, its output in a log file, and
//! stopped by PID (SIGTERM, then SIGKILL after a grace period). A [`Procs`] set kills whatever is
//! still running when it is dropped, so a failed point leaves no process behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::LaunchError;

/// How often a waiting launcher checks its processes.
pub const POLL: Duration = Duration::from_millis(10);
/// Bytes of a log's end quoted in an error.
pub const LOG_TAIL_BYTES: usize = 2000;

/// One spawned role process.
#[derive(Debug)]
pub struct Proc {
    /// Role name for messages (`host`, `nic`, `client-0`, `hog`).
    pub name: String,
    /// Its PID.
    pub pid: u32,
    /// Its stdout and stderr.
    pub log: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Whether it has exited (and with what status).
    pub fn poll(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// The end of its log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Sends SIGTERM, waits up to `grace`, then SIGKILL; returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.poll() {
            return Some(status);
        }
        signal(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.poll() {
                return Some(status);
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        self.exited = self.child.wait().ok();
        self.exited
    }
}

/// Every process of a point.
#[derive(Debug, Default)]
pub struct Procs {
    procs: Vec<Proc>,
}

impl Procs {
    /// Spawns `command` as `name`, its output to `log`.
    pub fn spawn(
        &mut self,
        name: &str,
        mut command: Command,
        log: &Path,
    ) -> Result<usize, LaunchError> {
        let out = std::fs::File::create(log).map_err(|e| LaunchError::io(log, "create log", e))?;
        let err = out
            .try_clone()
            .map_err(|e| LaunchError::io(log, "create log", e))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| LaunchError::Spawn {
                role: name.to_string(),
                message: e.to_string(),
            })?;
        let pid = child.id();
        self.procs.push(Proc {
            name: name.to_string(),
            pid,
            log: log.to_path_buf(),
            child,
            exited: None,
        });
        Ok(self.procs.len() - 1)
    }

    /// The process at `index`.
    pub fn get(&mut self, index: usize) -> &mut Proc {
        &mut self.procs[index]
    }

    /// Waits until `path` exists, failing if process `index` exits first or `timeout` passes.
    pub fn wait_for_file(
        &mut self,
        index: usize,
        path: &Path,
        timeout: Duration,
    ) -> Result<(), LaunchError> {
        let deadline = Instant::now() + timeout;
        loop {
            if path.exists() {
                return Ok(());
            }
            let p = &mut self.procs[index];
            if let Some(status) = p.poll() {
                return Err(LaunchError::RoleFailed {
                    role: p.name.clone(),
                    status: status.to_string(),
                    log_tail: p.log_tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(LaunchError::NotReady {
                    role: p.name.clone(),
                    waited_ms: timeout.as_millis() as u64,
                    log_tail: p.log_tail(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for processes `indices` to exit on their own within `timeout`; every one must
    /// succeed.
    pub fn wait_all(&mut self, indices: &[usize], timeout: Duration) -> Result<(), LaunchError> {
        let deadline = Instant::now() + timeout;
        for &i in indices {
            loop {
                let p = &mut self.procs[i];
                if let Some(status) = p.poll() {
                    if !status.success() {
                        return Err(LaunchError::RoleFailed {
                            role: p.name.clone(),
                            status: status.to_string(),
                            log_tail: p.log_tail(),
                        });
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(LaunchError::NotReady {
                        role: p.name.clone(),
                        waited_ms: timeout.as_millis() as u64,
                        log_tail: p.log_tail(),
                    });
                }
                std::thread::sleep(POLL);
            }
        }
        Ok(())
    }

    /// Stops processes `indices` by PID (SIGTERM, then SIGKILL after `grace`); every one must
    /// exit cleanly.
    pub fn stop_all(&mut self, indices: &[usize], grace: Duration) -> Result<(), LaunchError> {
        let mut failure = None;
        for &i in indices {
            let p = &mut self.procs[i];
            match p.stop(grace) {
                Some(status) if status.success() => {}
                status => {
                    let status = status.map_or("killed after the grace period".to_string(), |s| {
                        s.to_string()
                    });
                    failure.get_or_insert(LaunchError::RoleFailed {
                        role: p.name.clone(),
                        status,
                        log_tail: p.log_tail(),
                    });
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// PIDs of processes still running.
    pub fn running(&mut self) -> Vec<u32> {
        self.procs
            .iter_mut()
            .filter_map(|p| p.poll().is_none().then_some(p.pid))
            .collect()
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.procs {
            if p.poll().is_none() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a PID we spawned and still own (not yet reaped: `poll` said running).
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// The last [`LOG_TAIL_BYTES`] of a log file.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = text.len().saturating_sub(LOG_TAIL_BYTES);
    String::from_utf8_lossy(&text[from..]).into_owned()
}
