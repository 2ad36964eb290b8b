//! Where the `naam-role` binary is, and how to build it with the cargo at hand (the CLI and the
//! tests do when it is missing: `cargo run -p naam-cli` and `cargo test -p <crate>` build only
//! their own package's binaries).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::LaunchError;

/// Where launches find the role binary: relative to a machine's workdir, where the deploy phase
/// puts it (uploaded over SSH, linked on this machine).
pub const ROLE_BINARY_RELATIVE: &str = "bin/naam-role";
/// The command that builds the role binary, for messages.
pub const ROLE_BINARY_BUILD: &str = "cargo build -p naam-roles --bin naam-role";
/// Longest wait for that build (a cold build on 2 cores).
pub const ROLE_BUILD_TIMEOUT: Duration = Duration::from_secs(1800);
/// Interval between checks of that build.
const ROLE_BUILD_POLL: Duration = Duration::from_millis(200);

/// The `naam-role` binary next to the running executable (both are built into the same target
/// folder), or the one `NAAM_ROLE_BIN` names.
pub fn role_binary() -> Result<PathBuf, LaunchError> {
    if let Some(path) = std::env::var_os("NAAM_ROLE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| spawn_error(e.to_string()))?;
    let dir = exe
        .parent()
        .ok_or_else(|| spawn_error("no executable folder".into()))?;
    // Test executables live one level down, in deps/.
    for candidate in [dir.join("naam-role"), dir.join("../naam-role")] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(spawn_error(format!(
        "no naam-role binary beside {} (build it: {ROLE_BINARY_BUILD}, or set NAAM_ROLE_BIN)",
        exe.display()
    )))
}

/// Builds `naam-role` with `cargo` in the workspace at `workspace` (any folder inside it; the
/// release profile when `release`), waiting at most [`ROLE_BUILD_TIMEOUT`]; returns the
/// executable cargo reports. `NAAM_ROLE_BIN`, when set, is returned instead without building; a
/// build is done once per process (tests call this from many places).
pub fn build_role_binary(
    cargo: &OsStr,
    workspace: &Path,
    release: bool,
) -> Result<PathBuf, LaunchError> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = std::env::var_os("NAAM_ROLE_BIN") {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = BUILT.get() {
        return Ok(path.clone());
    }
    let path = cargo_build(cargo, workspace, release)?;
    Ok(BUILT.get_or_init(|| path).clone())
}

fn cargo_build(cargo: &OsStr, workspace: &Path, release: bool) -> Result<PathBuf, LaunchError> {
    let log = std::env::temp_dir().join(format!("naam-role-build-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).map_err(|e| LaunchError::io(&log, "create", e))?;
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "-p",
        "naam-roles",
        "--bin",
        "naam-role",
        "--message-format=json",
    ]);
    if release {
        command.arg("--release");
    }
    let mut child = command
        .current_dir(workspace)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| spawn_error(format!("{}: {e}", Path::new(cargo).display())))?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| spawn_error(e.to_string()))? {
            break status;
        }
        if started.elapsed() > ROLE_BUILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(spawn_error(format!(
                "{ROLE_BINARY_BUILD} took more than {ROLE_BUILD_TIMEOUT:?}; set NAAM_ROLE_BIN to a built naam-role"
            )));
        }
        std::thread::sleep(ROLE_BUILD_POLL);
    };
    let messages = reader.join().unwrap_or_default();
    let build_log = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    if !status.success() {
        return Err(spawn_error(format!(
            "{ROLE_BINARY_BUILD} failed ({status}):\n{build_log}"
        )));
    }
    executable_of(&messages)
        .ok_or_else(|| spawn_error("cargo reported no naam-role executable".into()))
}

/// The `naam-role` executable in cargo's JSON messages (its `compiler-artifact` line).
fn executable_of(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "naam-role")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

fn spawn_error(message: String) -> LaunchError {
    LaunchError::Spawn {
        role: "naam-role".into(),
        message,
    }
}
