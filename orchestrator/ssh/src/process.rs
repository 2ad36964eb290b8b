//! Role processes on remote machines: started in the background, tracked by PID, stopped by PID.
//!
//! A process runs in its own directory (`run_dir`) under a small fixed wrapper:
//! `setsid /bin/sh -c 'echo $$ > pid; "$@"; echo $? > exit_status' naam-launch <command…>`, with
//! stdout and stderr in `stdout.log`/`stderr.log` there. `setsid` makes the wrapper the leader of a
//! new process group whose id is its PID, so stopping "by PID" signals exactly that group (the
//! command and any children it forked) and nothing else. The process's start time (field 22 of
//! `/proc/PID/stat`) is recorded at launch and checked before every signal, so a PID reused by an
//! unrelated process after ours exited is never signalled.
//!
//! A remote process must not outlive its launcher (a `kill -9` of `naam`, a laptop closed
//! mid-run): the wrapper keeps a **lease** — the file `lease` in the run directory, touched by
//! every [`poll`]. A watchdog beside the command checks the lease's age each second; once it is
//! older than the lease time (default [`LEASE_S`]), the watchdog sends SIGTERM to the process group
//! (roles stop gracefully and remove what they created), then SIGKILL after
//! [`LEASE_KILL_GRACE_S`]. The watchdog ends with the command, and exits if the wrapper dies.

use std::time::{Duration, Instant};

use crate::command::{RemoteCommand, ShellLine};
use crate::limits::{
    COMMAND_TIMEOUT_MS, PID_FILE_POLL_INTERVAL_MS, PID_FILE_POLLS_MAX, PROCESS_POLL_INTERVAL_MS,
};
use crate::ssh::{Connection, SshError};

/// File (in the run directory) holding the wrapper's PID.
pub const PID_FILE: &str = "pid";
/// File holding the command's exit status once it has exited.
pub const EXIT_STATUS_FILE: &str = "exit_status";
/// The command's standard output.
pub const STDOUT_LOG: &str = "stdout.log";
/// The command's standard error.
pub const STDERR_LOG: &str = "stderr.log";

/// File whose modification time is the launcher's last sign of life (see the module docs).
pub const LEASE_FILE: &str = "lease";

/// Seconds without a poll after which a remote process is stopped: an assumption, far above the
/// launcher's longest silence toward a running process — its poll interval during a run, its
/// reconnect budget (three connect attempts of at most 5 s with backoff) and the collect
/// phase's wait for the clients to exit, which a run configuration keeps below half of it
/// (`run::check_config`) — so only a launcher that is gone lets a lease expire.
pub const LEASE_S: u64 = 300;
/// Seconds between the lease watchdog's SIGTERM and its SIGKILL (written into [`WRAPPER_SCRIPT`]).
pub const LEASE_KILL_GRACE_S: u64 = 5;

/// The fixed wrapper run under `setsid` with the lease time as its first argument: records its
/// PID, starts the lease watchdog, runs the command, stops the watchdog, records the status.
/// The PID is recorded before the watchdog starts, in the foreground: when the `&&` list that
/// writes it was part of the watchdog's background job, a command that ended at once killed the
/// job before it wrote `pid`, and the launcher saw a process that never started (an occasional
/// CI failure of `a_finished_process_reports_its_exit_status_and_keeps_its_logs`).
/// The watchdog dies with the group when the launcher stops it, and ignores SIGTERM only once
/// it sends one to the group itself.
/// Only file names that are constants of this module appear in it.
const WRAPPER_SCRIPT: &str = "'l=$1; shift; echo $$ > pid.tmp && mv pid.tmp pid && touch lease || exit 125; \
( while kill -0 $$ 2>/dev/null && [ $(( $(date +%s) - $(stat -c %Y lease 2>/dev/null || echo 0) )) -lt \"$l\" ]; do sleep 1; done; \
  if kill -0 $$ 2>/dev/null; then echo \"naam-launch: lease expired ($l s without the launcher): stopping\" >&2; \
  trap \"\" TERM; kill -TERM -$$; sleep 5; kill -KILL -$$; fi ) & w=$!; \
\"$@\"; s=$?; kill -KILL $w 2>/dev/null; echo $s > exit_status.tmp && mv exit_status.tmp exit_status'";

/// A process started on a remote machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteProcess {
    /// Its remote run directory (holds the pid file, logs and outputs).
    pub run_dir: String,
    /// PID of the wrapper, which is also the process group id.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22), when it was still running
    /// at the first look.
    pub start_ticks: Option<u64>,
}

pub use naam_launch::transport::{ProcessState, StopOutcome};

/// Starts `command` in the background in `run_dir` (created if missing) under a lease of
/// [`LEASE_S`] and returns its PID.
pub fn start(
    connection: &mut Connection,
    run_dir: &str,
    command: &RemoteCommand,
) -> Result<RemoteProcess, SshError> {
    start_with_lease(connection, run_dir, command, LEASE_S)
}

/// [`start`] with a lease of `lease_s` seconds.
pub fn start_with_lease(
    connection: &mut Connection,
    run_dir: &str,
    command: &RemoteCommand,
    lease_s: u64,
) -> Result<RemoteProcess, SshError> {
    let line = ShellLine::new()
        .op("mkdir -p")
        .text(run_dir)
        .and_then(|l| l.op("&& cd").text(run_dir))
        .map_err(|source| SshError::Command { login: connection.host().login(), source })?
        .op("&& rm -f pid pid.tmp exit_status exit_status.tmp && ( setsid /bin/sh -c")
        .op(WRAPPER_SCRIPT)
        .op("naam-launch")
        .num(lease_s)
        .command(command)
        .op("> stdout.log 2> stderr.log < /dev/null & ) && i=0 && while [ ! -s pid ] && [ \"$i\" -lt")
        .num(u64::from(PID_FILE_POLLS_MAX))
        .op("]; do sleep")
        .seconds(PID_FILE_POLL_INTERVAL_MS)
        .op("; i=$((i+1)); done; if [ -s pid ]; then cat pid && cat /proc/\"$(cat pid)\"/stat 2>/dev/null;")
        .op("else echo 'no pid file; the run directory:' >&2; ls -la >&2; cat stderr.log >&2; fi; true");
    let output = connection.run_checked(&line, COMMAND_TIMEOUT_MS)?;
    let text = output.stdout_text();
    let mut lines = text.lines();
    let pid = lines
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
        .filter(|&pid| pid > 1)
        .ok_or_else(|| SshError::ProcessDidNotStart {
            login: connection.host().login(),
            run_dir: run_dir.to_string(),
            polls: PID_FILE_POLLS_MAX,
            detail: format!(
                "stdout {:?}, stderr {:?}",
                text,
                String::from_utf8_lossy(&output.stderr)
            ),
        })?;
    let start_ticks = lines
        .next()
        .and_then(|stat| parse_proc_stat(stat, pid))
        .map(|s| s.start_ticks);
    Ok(RemoteProcess {
        run_dir: run_dir.to_string(),
        pid,
        start_ticks,
    })
}

/// Looks at a process: running, exited with a status, or vanished; renews its lease.
pub fn poll(
    connection: &mut Connection,
    process: &RemoteProcess,
) -> Result<ProcessState, SshError> {
    let exit_status_path = format!("{}/{EXIT_STATUS_FILE}", process.run_dir);
    let lease_path = format!("{}/{LEASE_FILE}", process.run_dir);
    let stat_path = format!("/proc/{}/stat", process.pid);
    let line = ShellLine::new()
        .op("touch")
        .text(&lease_path)
        .map(|l| l.op("2>/dev/null; cat"))
        .and_then(|l| l.text(&stat_path))
        .and_then(|l| {
            Ok(l.op("2>/dev/null; echo; echo ---; cat")
                .text(&exit_status_path)?
                .op("2>/dev/null; echo ---; ps -o stat= -s"))
        })
        .map_err(|source| SshError::Command {
            login: connection.host().login(),
            source,
        })?
        .num(u64::from(process.pid))
        .op("2>/dev/null | grep -qv '^Z' && echo group-alive; true");
    let output = connection.run_checked(&line, COMMAND_TIMEOUT_MS)?;
    Ok(interpret_poll(&output.stdout_text(), process))
}

/// Decides the state from the poll script's output
/// (`<leader's stat line>\n---\n<exit status>\n---\n[group-alive]`).
///
/// Running when the leader is alive with the recorded start time, or — leader gone or a zombie —
/// when its session (`setsid`: session id = group id = the wrapper's PID) still has a member that
/// is not a zombie (`ps -o stat= -s PID`). A session id cannot be reused while the session
/// exists, so those members are ours (a command's children, or a command outliving a killed
/// wrapper); zombies waiting for their reaper do not count.
/// A leader PID alive with another start time is someone else's process: ours has ended.
fn interpret_poll(text: &str, process: &RemoteProcess) -> ProcessState {
    let mut parts = text.split("---");
    let stat_part = parts.next().unwrap_or("");
    let status_part = parts.next().unwrap_or("");
    let group_alive = parts.next().is_some_and(|p| p.trim() == "group-alive");
    let leader = parse_proc_stat(stat_part.trim(), process.pid);
    let reused = leader.is_some_and(|stat| {
        process
            .start_ticks
            .is_some_and(|ticks| ticks != stat.start_ticks)
    });
    let leader_alive = leader.is_some_and(|stat| stat.state != 'Z' && stat.state != 'X');
    if !reused && (leader_alive || group_alive) {
        return ProcessState::Running;
    }
    match status_part.trim().parse::<i32>() {
        Ok(status) => ProcessState::Exited { status },
        Err(_) => ProcessState::Vanished,
    }
}

/// Stops a process by PID: SIGTERM to its process group, up to `grace_ms` for it to end, then
/// SIGKILL. A process that already ended is left alone.
pub fn stop(
    connection: &mut Connection,
    process: &RemoteProcess,
    grace_ms: u64,
) -> Result<StopOutcome, SshError> {
    let state = poll(connection, process)?;
    if state != ProcessState::Running {
        return Ok(StopOutcome::AlreadyEnded(state));
    }
    signal_group(connection, process, Signal::Term)?;
    if wait_until_ended(connection, process, grace_ms)? {
        return Ok(StopOutcome::Terminated);
    }
    if poll(connection, process)? == ProcessState::Running {
        signal_group(connection, process, Signal::Kill)?;
    }
    if wait_until_ended(connection, process, grace_ms)? {
        return Ok(StopOutcome::Killed);
    }
    Err(SshError::Unkillable {
        login: connection.host().login(),
        pid: process.pid,
    })
}

/// Polls until the process is no longer running or `wait_ms` passed; true when it ended.
pub fn wait_until_ended(
    connection: &mut Connection,
    process: &RemoteProcess,
    wait_ms: u64,
) -> Result<bool, SshError> {
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    loop {
        if poll(connection, process)? != ProcessState::Running {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(PROCESS_POLL_INTERVAL_MS));
    }
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

fn signal_group(
    connection: &mut Connection,
    process: &RemoteProcess,
    signal: Signal,
) -> Result<(), SshError> {
    // `kill -SIG -PGID` signals the whole group; its id is the wrapper's PID (setsid).
    let line = match signal {
        Signal::Term => ShellLine::new().op("kill -TERM -"),
        Signal::Kill => ShellLine::new().op("kill -KILL -"),
    }
    .glued_num(u64::from(process.pid))
    .op("2>/dev/null; true");
    connection.run_checked(&line, COMMAND_TIMEOUT_MS)?;
    Ok(())
}

/// Fields of `/proc/PID/stat` that identify a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: R, S, D, Z, T, …
    pub state: char,
    /// Field 22: start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Parses one `/proc/PID/stat` line, checking that it is about `pid`. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_proc_stat(line: &str, pid: u32) -> Option<ProcStat> {
    let (head, tail) = line.rsplit_once(')')?;
    let stat_pid = head.split_once(' ')?.0.trim().parse::<u32>().ok()?;
    if stat_pid != pid {
        return None;
    }
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start_ticks = fields.get(19)?.parse::<u64>().ok()?;
    Some(ProcStat { state, start_ticks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrapper_waits_the_named_grace_before_sigkill() {
        let grace = format!("kill -TERM -$$; sleep {LEASE_KILL_GRACE_S}; kill -KILL -$$");
        assert!(WRAPPER_SCRIPT.contains(&grace), "{WRAPPER_SCRIPT}");
    }

    /// Runs of the wrapper whose command ends at once (`/bin/sh` directly, no ssh). When the
    /// pid file was written inside the watchdog's background job, such runs often had none: 10
    /// of 300 in a shell loop, and this test failed that wrapper on its first run.
    const INSTANT_RUNS: u32 = 300;

    #[test]
    fn a_command_that_ends_at_once_still_leaves_the_pid_file() {
        let script = WRAPPER_SCRIPT.trim_matches('\'');
        let dir = tempfile::tempdir().unwrap();
        for i in 0..INSTANT_RUNS {
            for name in ["pid", "exit_status"] {
                let _ = std::fs::remove_file(dir.path().join(name));
            }
            let status = std::process::Command::new("/bin/sh")
                .args(["-c", script, "naam-launch", "60", "/bin/sh", "-c", "exit 3"])
                .current_dir(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "run {i}: {status}");
            let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap_or_default();
            assert!(
                pid.trim().parse::<u32>().is_ok(),
                "run {i} of {INSTANT_RUNS}: pid {pid:?}"
            );
            let exit = std::fs::read_to_string(dir.path().join("exit_status")).unwrap();
            assert_eq!(exit.trim(), "3", "run {i}");
        }
    }

    const STAT: &str = "4242 (sh (x) y) S 1 4242 4242 0 -1 4194560 90 0 0 0 0 0 0 0 20 0 1 0 987654 2539520 205 18446744073709551615";

    #[test]
    fn proc_stat_fields_are_counted_after_the_last_paren() {
        assert_eq!(
            parse_proc_stat(STAT, 4242),
            Some(ProcStat {
                state: 'S',
                start_ticks: 987654
            })
        );
        assert_eq!(parse_proc_stat(STAT, 4243), None);
        assert_eq!(parse_proc_stat("garbage", 4242), None);
    }

    #[test]
    fn poll_output_is_interpreted_with_identity() {
        let ours = RemoteProcess {
            run_dir: "d".into(),
            pid: 4242,
            start_ticks: Some(987654),
        };
        let reused = RemoteProcess {
            start_ticks: Some(1),
            ..ours.clone()
        };
        assert_eq!(
            interpret_poll(&format!("{STAT}\n---\n\n---\ngroup-alive\n"), &ours),
            ProcessState::Running
        );
        assert_eq!(
            interpret_poll(&format!("{STAT}\n---\n\n---\ngroup-alive\n"), &reused),
            ProcessState::Vanished
        );
        assert_eq!(
            interpret_poll("\n---\n3\n---\n", &ours),
            ProcessState::Exited { status: 3 }
        );
        let zombie = STAT.replace(") S ", ") Z ");
        assert_eq!(
            interpret_poll(&format!("{zombie}\n---\n0\n---\n"), &ours),
            ProcessState::Exited { status: 0 }
        );
        // Leader gone, its group still has members (a child outliving the wrapper): running.
        assert_eq!(
            interpret_poll("\n---\n\n---\ngroup-alive\n", &ours),
            ProcessState::Running
        );
        assert_eq!(
            interpret_poll("\n---\n\n---\n", &ours),
            ProcessState::Vanished
        );
    }
}
