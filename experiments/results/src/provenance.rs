//! Where a run's numbers came from: code, toolchain, machine, configuration, testbed, seeds,
//! times and command lines. A run resumed later gets a second [`Session`]; every point's
//! summary names the session that measured it, so points measured by different code are never
//! silently mixed.

use std::path::Path;
use std::process::Command;

use naam_plan::ExperimentPlan;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::time;

/// Version of `provenance.json`.
pub const PROVENANCE_SCHEMA_VERSION: u32 = 1;

/// The toolchain that built this binary (`rustc -V` at build time).
pub const TOOLCHAIN: &str = env!("NAAM_RUSTC_VERSION");

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The configuration hash: SHA-256 of the plan's canonical JSON (what `plan.json` holds,
/// without pretty-printing).
pub fn config_hash(plan: &ExperimentPlan) -> String {
    // A plan is plain data (no maps with non-string keys), so serialization cannot fail.
    let json = serde_json::to_vec(plan).unwrap_or_default();
    sha256_hex(&json)
}

/// The code a session ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeIdentity {
    /// `git rev-parse HEAD`, or `None` outside a git checkout.
    pub commit: Option<String>,
    /// Whether tracked files differ from the commit or untracked files exist.
    pub dirty: bool,
    /// SHA-256 of `git diff HEAD --binary` followed by the names of untracked files; `None`
    /// when clean or outside git.
    pub dirty_diff_sha256: Option<String>,
}

impl CodeIdentity {
    /// Asks git about the checkout containing `repo_dir`.
    pub fn collect(repo_dir: &Path) -> CodeIdentity {
        let Some(commit) = git(repo_dir, &["rev-parse", "HEAD"]) else {
            return CodeIdentity {
                commit: None,
                dirty: false,
                dirty_diff_sha256: None,
            };
        };
        let diff = git(repo_dir, &["diff", "HEAD", "--binary"]).unwrap_or_default();
        let untracked =
            git(repo_dir, &["ls-files", "--others", "--exclude-standard"]).unwrap_or_default();
        let dirty = !diff.is_empty() || !untracked.is_empty();
        let hash =
            dirty.then(|| sha256_hex(format!("{diff}\n--untracked--\n{untracked}").as_bytes()));
        CodeIdentity {
            commit: Some(commit.trim().to_string()),
            dirty,
            dirty_diff_sha256: hash,
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The machine a session ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// CPU model (`model name` of /proc/cpuinfo, or the architecture).
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cores: u32,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Operating system (`PRETTY_NAME` of /etc/os-release).
    pub os: String,
}

impl HostInfo {
    /// Reads /proc and /etc; unknown fields say `unknown`.
    pub fn collect() -> HostInfo {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .ok()
        };
        let cpu_model = read("/proc/cpuinfo")
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let os = read("/etc/os-release")
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| std::env::consts::OS.to_string());
        HostInfo {
            hostname: read("/proc/sys/kernel/hostname").unwrap_or_else(|| "unknown".to_string()),
            cpu_model,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            kernel: read("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".to_string()),
            os,
        }
    }

    /// `hostname (cpu model, N cores, kernel)` for figure footnotes.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {} cores, Linux {})",
            self.hostname, self.cpu_model, self.cores, self.kernel
        )
    }
}

/// One invocation of the runner on a run folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Position in [`Provenance::sessions`].
    pub index: u32,
    /// What executed the points (`local testbed`, `synthetic: stands in for the testbed`, ...).
    pub executor: String,
    /// The code.
    pub code: CodeIdentity,
    /// The toolchain that built the runner.
    pub toolchain: String,
    /// The machine of the runner.
    pub host: HostInfo,
    /// The exact command line.
    pub command_line: Vec<String>,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// End, RFC 3339 UTC (`None` while running or if the session was killed).
    pub ended_at: Option<String>,
}

impl Session {
    /// A session starting now.
    pub fn start(index: u32, repo_dir: &Path, executor: &str) -> Session {
        Session {
            index,
            executor: executor.to_string(),
            code: CodeIdentity::collect(repo_dir),
            toolchain: TOOLCHAIN.to_string(),
            host: HostInfo::collect(),
            command_line: std::env::args().collect(),
            started_at: time::rfc3339(time::now_unix()),
            ended_at: None,
        }
    }
}

/// `provenance.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// [`PROVENANCE_SCHEMA_VERSION`].
    pub schema: u32,
    /// Experiment id.
    pub experiment: String,
    /// `quick` or `full`.
    pub variant: String,
    /// Run folder name.
    pub run_id: String,
    /// [`config_hash`] of `plan.json`.
    pub config_hash: String,
    /// `local`, `netns` or `inventory`.
    pub testbed: String,
    /// Whether the NIC was emulated (every testbed but real machines).
    pub nic_emulated: bool,
    /// The manifest the plan came from, as given.
    pub manifest: String,
    /// Base seed (every point's seed is in `plan.json`).
    pub base_seed: u64,
    /// Every session that worked on this run, oldest first.
    pub sessions: Vec<Session>,
}
