//! Deploying artifacts to the machines: the role binary per architecture, the NAAM function
//! objects and configuration files.
//!
//! Every file is uploaded idempotently: the remote SHA-256 is compared with the local one and the
//! file is skipped when they match; otherwise it goes to a temporary name next to its target, its
//! remote checksum is verified, and `mv -f` renames it into place (atomic on one file system), so
//! a reader never sees a half-written file and an interrupted deploy leaves the old one intact.
//!
//! Architectures: a host whose `uname -m` matches an architecture with a local build gets that
//! binary; any other (a BlueField-2's aarch64 cores, from an x86 laptop) gets the source bundle —
//! a `git archive` of the workspace — and builds it there with cargo. The build is skipped when a
//! stamp next to the installed binary names the same bundle checksum.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::command::{RemoteCommand, ShellLine};
use crate::inventory::{Arch, HostSpec};
use crate::limits::{COMMAND_TIMEOUT_MS, IDEMPOTENT_ATTEMPTS_MAX, REMOTE_BUILD_TIMEOUT_MS};
use crate::retry::RetryPolicy;
use crate::ssh::{Connection, SshError};

/// Remote path (under the workdir) of the installed role binary.
pub const ROLE_BINARY_REMOTE: &str = naam_launch::binary::ROLE_BINARY_RELATIVE;
/// Remote path of the uploaded source bundle.
pub const SOURCE_BUNDLE_REMOTE: &str = "bundles/naam-src.tar.gz";
/// Remote directory the source bundle is unpacked into.
pub const SOURCE_DIR_REMOTE: &str = "src/naam";
/// Stamp next to the installed binary: the SHA-256 of the bundle it was built from.
pub const BUILD_STAMP_REMOTE: &str = "bin/naam-role.source-sha256";
/// Suffix of the temporary name a file is uploaded to before its rename.
pub const UPLOAD_TMP_SUFFIX: &str = ".naam-upload";

/// Why a deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// An SSH operation failed on a host.
    #[error("deploy to {host}: {source}")]
    Ssh {
        /// The host.
        host: String,
        /// The SSH error.
        source: SshError,
    },
    /// The host's `uname -m` differs from the inventory's `arch`.
    #[error(
        "deploy to {host}: the inventory says arch = {inventory}, but `uname -m` says {uname:?}; fix the hosts file"
    )]
    ArchMismatch {
        /// The host.
        host: String,
        /// What the inventory says.
        inventory: Arch,
        /// What the machine says.
        uname: String,
    },
    /// Neither a binary for the host's architecture nor a source bundle was given.
    #[error("deploy to {host}: no role binary for {arch} and no source bundle to build one")]
    NoBinaryForArch {
        /// The host.
        host: String,
        /// Its architecture.
        arch: Arch,
    },
    /// A local artifact could not be read.
    #[error("artifact {path}: {source}")]
    LocalIo {
        /// The local file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The checksum of an uploaded file differs from the local one on every attempt.
    #[error(
        "deploy to {host}: {remote_path} has SHA-256 {actual} after upload, expected {expected}"
    )]
    ChecksumMismatch {
        /// The host.
        host: String,
        /// The remote file.
        remote_path: String,
        /// The local file's checksum.
        expected: String,
        /// The remote file's checksum.
        actual: String,
    },
    /// An artifact's remote path is not a clean relative path.
    #[error("artifact remote path {path:?}: {reason}")]
    BadRemotePath {
        /// The path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `git archive` failed.
    #[error("source bundle from {repo}: {message}")]
    Git {
        /// The repository.
        repo: PathBuf,
        /// What failed.
        message: String,
    },
}

/// What an artifact is (for plans and reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// The lean role binary (`naam-role`).
    RoleBinary,
    /// A NAAM function object (eBPF ELF; the same bytes for every architecture).
    FunctionObject,
    /// A configuration file.
    Config,
    /// A source bundle to build on the target.
    SourceBundle,
}

/// One architecture-independent file to put on every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The local file.
    pub local_path: PathBuf,
    /// Where it goes, relative to the host's workdir (no `..`, no leading `/`).
    pub remote_path: String,
    /// Unix mode of the remote file.
    pub mode: i32,
    /// What it is.
    pub kind: ArtifactKind,
}

/// How the role binary is built from a source bundle on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecipe {
    /// Cargo package (`-p`).
    pub package: String,
    /// Binary target (`--bin`).
    pub bin: String,
}

impl Default for BuildRecipe {
    fn default() -> Self {
        BuildRecipe {
            package: "naam-roles".into(),
            bin: "naam-role".into(),
        }
    }
}

/// Everything to deploy: the input of a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArtifactSet {
    /// Prebuilt role binaries by architecture (usually just the local one).
    pub role_binaries: BTreeMap<Arch, PathBuf>,
    /// A source bundle (`git archive` tarball) for architectures without a binary.
    pub source_bundle: Option<PathBuf>,
    /// How to build from the bundle.
    pub build: BuildRecipe,
    /// Function objects and configuration files, for every host.
    pub files: Vec<Artifact>,
}

/// One step of a host's deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployStep {
    /// Check `uname -m` against the inventory.
    CheckArch {
        /// The architecture the inventory declares.
        expected: Arch,
    },
    /// Upload a file unless the remote copy has the same SHA-256.
    Upload {
        /// The local file.
        local_path: PathBuf,
        /// Its remote path under the workdir.
        remote_path: String,
        /// Its mode.
        mode: i32,
        /// What it is.
        kind: ArtifactKind,
    },
    /// Build the role binary from the uploaded bundle, unless the stamp names this bundle.
    Build {
        /// The shell lines run on the target, in order (each under the workdir).
        commands: Vec<RemoteCommand>,
        /// SHA-256 of the bundle; written to the stamp after a successful build.
        bundle_sha256: String,
    },
}

/// The deployment of one host, as a list of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDeployPlan {
    /// The host.
    pub host: String,
    /// Its architecture.
    pub arch: Arch,
    /// The steps, in order.
    pub steps: Vec<DeployStep>,
}

pub use naam_launch::record::{FileReport, HostDeployReport};

/// Plans one host's deployment for architecture `arch` (no connection needed).
pub fn plan_host(
    host: &HostSpec,
    arch: Arch,
    artifacts: &ArtifactSet,
) -> Result<HostDeployPlan, DeployError> {
    let mut steps = vec![DeployStep::CheckArch {
        expected: host.arch,
    }];
    if let Some(binary) = artifacts.role_binaries.get(&arch) {
        steps.push(DeployStep::Upload {
            local_path: binary.clone(),
            remote_path: ROLE_BINARY_REMOTE.into(),
            mode: 0o755,
            kind: ArtifactKind::RoleBinary,
        });
    } else if let Some(bundle) = &artifacts.source_bundle {
        steps.push(DeployStep::Upload {
            local_path: bundle.clone(),
            remote_path: SOURCE_BUNDLE_REMOTE.into(),
            mode: 0o644,
            kind: ArtifactKind::SourceBundle,
        });
        steps.push(DeployStep::Build {
            commands: build_commands(&artifacts.build)?,
            bundle_sha256: sha256_file(bundle)?,
        });
    } else {
        return Err(DeployError::NoBinaryForArch {
            host: host.name.clone(),
            arch,
        });
    }
    for file in &artifacts.files {
        check_remote_path(&file.remote_path)?;
        steps.push(DeployStep::Upload {
            local_path: file.local_path.clone(),
            remote_path: file.remote_path.clone(),
            mode: file.mode,
            kind: file.kind,
        });
    }
    Ok(HostDeployPlan {
        host: host.name.clone(),
        arch,
        steps,
    })
}

/// The commands that build and install the role binary from the uploaded bundle (run in the
/// workdir): unpack into a clean directory, `cargo build --release --locked`, install.
pub fn build_commands(recipe: &BuildRecipe) -> Result<Vec<RemoteCommand>, DeployError> {
    let bad = |_| DeployError::BadRemotePath {
        path: recipe.bin.clone(),
        reason: "contains a NUL byte",
    };
    let built = format!("{SOURCE_DIR_REMOTE}/target/release/{}", recipe.bin);
    Ok(vec![
        RemoteCommand::from_argv(["rm", "-rf", SOURCE_DIR_REMOTE]).map_err(bad)?,
        RemoteCommand::from_argv(["mkdir", "-p", SOURCE_DIR_REMOTE]).map_err(bad)?,
        RemoteCommand::from_argv(["tar", "-xzf", SOURCE_BUNDLE_REMOTE, "-C", SOURCE_DIR_REMOTE])
            .map_err(bad)?,
        RemoteCommand::from_argv([
            "cargo",
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            &format!("{SOURCE_DIR_REMOTE}/Cargo.toml"),
            "-p",
            &recipe.package,
            "--bin",
            &recipe.bin,
        ])
        .map_err(bad)?,
        RemoteCommand::from_argv(["install", "-D", "-m", "755", &built, ROLE_BINARY_REMOTE])
            .map_err(bad)?,
    ])
}

fn check_remote_path(path: &str) -> Result<(), DeployError> {
    let reason = if path.is_empty() {
        Some("empty")
    } else if path.starts_with('/') {
        Some("must be relative to the host's workdir")
    } else if path.split('/').any(|part| part == ".." || part.is_empty()) {
        Some("must not contain `..` or empty components")
    } else if path.chars().any(|c| c.is_control() || c == '\\') {
        Some("must not contain control characters or backslashes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(DeployError::BadRemotePath {
            path: path.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// SHA-256 of a local file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, DeployError> {
    let io = |source| DeployError::LocalIo {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// A source bundle made by `git archive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceBundle {
    /// The tarball.
    pub path: PathBuf,
    /// The commit archived.
    pub commit: String,
    /// Whether the work tree had uncommitted changes (they are not in the bundle).
    pub dirty: bool,
}

/// Archives `HEAD` of the git work tree at `repo` into `out` (`git archive --format=tar.gz`).
pub fn make_source_bundle(repo: &Path, out: &Path) -> Result<SourceBundle, DeployError> {
    let git = |args: &[&str]| -> Result<String, DeployError> {
        let output = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .map_err(|e| DeployError::Git {
                repo: repo.to_path_buf(),
                message: format!("cannot run git: {e}"),
            })?;
        if !output.status.success() {
            return Err(DeployError::Git {
                repo: repo.to_path_buf(),
                message: format!(
                    "git {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"])?.is_empty();
    let out_text = out.to_str().ok_or_else(|| DeployError::Git {
        repo: repo.to_path_buf(),
        message: format!("output path {} is not UTF-8", out.display()),
    })?;
    git(&["archive", "--format=tar.gz", "-o", out_text, "HEAD"])?;
    Ok(SourceBundle {
        path: out.to_path_buf(),
        commit,
        dirty,
    })
}

/// Deploys to one host: checks its architecture, then runs its plan.
pub fn deploy_host(
    connection: &mut Connection,
    artifacts: &ArtifactSet,
) -> Result<HostDeployReport, DeployError> {
    let host = connection.host().clone();
    let ssh = |source| DeployError::Ssh {
        host: host.name.clone(),
        source,
    };
    let uname = connection
        .run_checked(&ShellLine::new().op("uname -m"), COMMAND_TIMEOUT_MS)
        .map_err(ssh)?
        .stdout_text();
    let arch = Arch::from_uname(&uname)
        .filter(|&arch| arch == host.arch)
        .ok_or_else(|| DeployError::ArchMismatch {
            host: host.name.clone(),
            inventory: host.arch,
            uname: uname.trim().to_string(),
        })?;
    let plan = plan_host(&host, arch, artifacts)?;
    let mut report = HostDeployReport {
        host: host.name.clone(),
        files: Vec::new(),
        built: false,
    };
    for step in &plan.steps {
        match step {
            DeployStep::CheckArch { .. } => {}
            DeployStep::Upload {
                local_path,
                remote_path,
                mode,
                ..
            } => {
                report.files.push(upload_idempotent(
                    connection,
                    local_path,
                    remote_path,
                    *mode,
                )?);
            }
            DeployStep::Build {
                commands,
                bundle_sha256,
            } => {
                report.built = build_unless_stamped(connection, commands, bundle_sha256)?;
            }
        }
    }
    Ok(report)
}

/// Deploys to every connected host at once, one thread per host.
pub fn deploy_all(
    connections: &mut [Connection],
    artifacts: &ArtifactSet,
) -> Vec<Result<HostDeployReport, DeployError>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = connections
            .iter_mut()
            .map(|connection| scope.spawn(move || deploy_host(connection, artifacts)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle.join().unwrap_or_else(|_| {
                    Err(DeployError::Git {
                        repo: PathBuf::new(),
                        message: "deploy thread panicked".into(),
                    })
                })
            })
            .collect()
    })
}

/// The path of `relative` under the host's workdir.
pub fn remote_path(host: &HostSpec, relative: &str) -> String {
    format!("{}/{relative}", host.workdir)
}

/// SHA-256 of a remote file, or `None` when it does not exist.
pub fn remote_sha256(connection: &mut Connection, path: &str) -> Result<Option<String>, SshError> {
    let line = ShellLine::new()
        .op("sha256sum 2>/dev/null <")
        .text(path)
        .map_err(|source| SshError::Command {
            login: connection.host().login(),
            source,
        })?
        .op("|| true");
    let output = connection.run_checked(&line, COMMAND_TIMEOUT_MS)?;
    let text = output.stdout_text();
    let digest = text.split_whitespace().next().unwrap_or("");
    Ok(
        (digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| digest.to_ascii_lowercase()),
    )
}

/// Uploads `local` to `relative` under the workdir unless the remote checksum already matches;
/// verifies the upload and renames it into place. Retried a bounded number of times.
pub fn upload_idempotent(
    connection: &mut Connection,
    local: &Path,
    relative: &str,
    mode: i32,
) -> Result<FileReport, DeployError> {
    check_remote_path(relative)?;
    let host_name = connection.host().name.clone();
    let expected = sha256_file(local)?;
    let target = remote_path(connection.host(), relative);
    let ssh = |source| DeployError::Ssh {
        host: host_name.clone(),
        source,
    };
    if remote_sha256(connection, &target).map_err(ssh)?.as_deref() == Some(expected.as_str()) {
        return Ok(FileReport {
            remote_path: relative.into(),
            sha256: expected,
            uploaded_bytes: 0,
            skipped: true,
        });
    }
    let policy = RetryPolicy::attempts(IDEMPOTENT_ATTEMPTS_MAX);
    let uploaded_bytes = policy
        .run(
            |_| upload_once(connection, local, &target, mode, &expected),
            retryable_deploy,
        )
        .map_err(|(err, _)| err)?;
    Ok(FileReport {
        remote_path: relative.into(),
        sha256: expected,
        uploaded_bytes,
        skipped: false,
    })
}

/// Uploads `local` to the absolute remote path `target` (always, no checksum skip), verifies its
/// SHA-256 and renames it into place; retried a bounded number of times. Used for the small
/// per-run inputs of role processes.
pub fn upload_verified(
    connection: &mut Connection,
    local: &Path,
    target: &str,
    mode: i32,
) -> Result<FileReport, DeployError> {
    let expected = sha256_file(local)?;
    let policy = RetryPolicy::attempts(IDEMPOTENT_ATTEMPTS_MAX);
    let uploaded_bytes = policy
        .run(
            |_| upload_once(connection, local, target, mode, &expected),
            retryable_deploy,
        )
        .map_err(|(err, _)| err)?;
    Ok(FileReport {
        remote_path: target.into(),
        sha256: expected,
        uploaded_bytes,
        skipped: false,
    })
}

fn retryable_deploy(err: &DeployError) -> bool {
    match err {
        DeployError::Ssh { source, .. } => source.is_transient(),
        DeployError::ChecksumMismatch { .. } => true,
        _ => false,
    }
}

fn upload_once(
    connection: &mut Connection,
    local: &Path,
    target: &str,
    mode: i32,
    expected: &str,
) -> Result<u64, DeployError> {
    let host_name = connection.host().name.clone();
    let ssh = |source| DeployError::Ssh {
        host: host_name.clone(),
        source,
    };
    let login = connection.host().login();
    let command_err = |source| DeployError::Ssh {
        host: host_name.clone(),
        source: SshError::Command {
            login: login.clone(),
            source,
        },
    };
    let tmp = format!("{target}{UPLOAD_TMP_SUFFIX}");
    let parent = Path::new(target)
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty());
    if let Some(parent) = parent {
        let mkdir = ShellLine::new()
            .op("mkdir -p")
            .text(&parent)
            .map_err(command_err)?;
        connection
            .run_checked(&mkdir, COMMAND_TIMEOUT_MS)
            .map_err(ssh)?;
    }
    let sent_bytes = connection.upload(local, &tmp, mode).map_err(ssh)?;
    let actual = remote_sha256(connection, &tmp)
        .map_err(ssh)?
        .unwrap_or_default();
    if actual != expected {
        let remove = ShellLine::new()
            .op("rm -f")
            .text(&tmp)
            .map_err(command_err)?;
        connection
            .run_checked(&remove, COMMAND_TIMEOUT_MS)
            .map_err(ssh)?;
        return Err(DeployError::ChecksumMismatch {
            host: host_name.clone(),
            remote_path: target.into(),
            expected: expected.into(),
            actual,
        });
    }
    let rename = ShellLine::new()
        .op("chmod")
        .text(&format!("{mode:o}"))
        .and_then(|l| l.text(&tmp)?.op("&& mv -f").text(&tmp)?.text(target))
        .map_err(command_err)?;
    connection
        .run_checked(&rename, COMMAND_TIMEOUT_MS)
        .map_err(ssh)?;
    Ok(sent_bytes)
}

fn build_unless_stamped(
    connection: &mut Connection,
    commands: &[RemoteCommand],
    bundle_sha256: &str,
) -> Result<bool, DeployError> {
    let host = connection.host().clone();
    let ssh = |source| DeployError::Ssh {
        host: host.name.clone(),
        source,
    };
    let command_err = |source| DeployError::Ssh {
        host: host.name.clone(),
        source: SshError::Command {
            login: host.login(),
            source,
        },
    };
    let stamp = remote_path(&host, BUILD_STAMP_REMOTE);
    let binary = remote_path(&host, ROLE_BINARY_REMOTE);
    let check = ShellLine::new()
        .op("test -x")
        .text(&binary)
        .and_then(|l| Ok(l.op("&& cat").text(&stamp)?.op("2>/dev/null || true")))
        .map_err(command_err)?;
    let stamped = connection
        .run_checked(&check, COMMAND_TIMEOUT_MS)
        .map_err(ssh)?
        .stdout_text();
    if stamped.trim() == bundle_sha256 {
        return Ok(false);
    }
    for command in commands {
        // rustup installs cargo in ~/.cargo/bin, which a non-interactive SSH session's PATH lacks.
        let line = ShellLine::new()
            .op("cd")
            .text(&host.workdir)
            .map_err(command_err)?
            .op("&& PATH=\"$HOME/.cargo/bin:$PATH\" &&")
            .command(command);
        connection
            .run_checked(&line, REMOTE_BUILD_TIMEOUT_MS)
            .map_err(ssh)?;
    }
    let write_stamp = ShellLine::new()
        .op("printf '%s\\n'")
        .text(bundle_sha256)
        .and_then(|l| l.op(">").text(&stamp))
        .map_err(command_err)?;
    connection
        .run_checked(&write_stamp, COMMAND_TIMEOUT_MS)
        .map_err(ssh)?;
    Ok(true)
}
