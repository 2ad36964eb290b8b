//! The launch plan: what to start where, in which order, with which inputs, how to tell it is
//! ready, how it is expected to end and what it leaves behind — data, the same for every
//! transport.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::command::RemoteCommand;

/// Most launches in one run.
pub const LAUNCHES_MAX: usize = 1_024;
/// Most declared outputs per launch.
pub const LAUNCH_OUTPUTS_MAX: usize = 64;
/// Most input files per launch.
pub const LAUNCH_INPUTS_MAX: usize = 16;
/// Longest launch id or run id.
pub const NAME_BYTES_MAX: usize = 128;

/// A role process's standard output, in its run directory.
pub const STDOUT_LOG: &str = "stdout.log";
/// A role process's standard error, in its run directory.
pub const STDERR_LOG: &str = "stderr.log";
/// File (in each launch's run directory) holding the common start time in that machine's clock.
pub const START_AT_FILE: &str = "start_at";
/// File (in each launch's run directory) holding the timeline as `naam-role` reads it: JSON of
/// `naam_types::Timeline`, the start in that machine's clock; written with `start_at`.
pub const TIMELINE_FILE: &str = "timeline.json";
/// Files a transport keeps in a run directory for itself (PID and exit status over SSH).
pub const TRANSPORT_FILES: [&str; 2] = ["pid", "exit_status"];

/// What a machine does in an experiment. Ordered by start order: host, then NIC, then clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The server host (its CPU cores run NAAM functions; it owns the regions).
    Host,
    /// The SmartNIC's cores (BlueField-2 Arm), reaching host memory over PCIe.
    Nic,
    /// A load-generating client.
    Client,
}

impl Role {
    /// Every role, in start order.
    pub const ALL: [Role; 3] = [Role::Host, Role::Nic, Role::Client];

    /// The name used in hosts files and plans.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host => "host",
            Role::Nic => "nic",
            Role::Client => "client",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| "expected one of client, host, nic".to_string())
    }
}

/// How to tell that a started process is ready for the next group to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Ready as soon as it runs.
    Running,
    /// Ready when this file (relative to its run directory) exists.
    FileExists(String),
    /// Ready when this command, run in its run directory, exits 0.
    Command(RemoteCommand),
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Readiness::Running => f.write_str("running"),
            Readiness::FileExists(file) => write!(f, "file {file} exists"),
            Readiness::Command(command) => write!(f, "`{command}` exits 0"),
        }
    }
}

/// How a launch's process is expected to end; an end that does not fit makes it unmeasured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ends {
    /// Runs until it is stopped (servers): ending by itself before that is a failure.
    WhenStopped,
    /// Exits 0 by itself once the measurement is over (clients).
    AfterMeasurement,
    /// Exits 0 by itself at any time after the start (a CPU hog with its own stop time).
    ByItself,
}

impl Ends {
    /// The usual expectation for a role: servers run until stopped, clients until the end.
    pub fn for_role(role: Role) -> Ends {
        match role {
            Role::Host | Role::Nic => Ends::WhenStopped,
            Role::Client => Ends::AfterMeasurement,
        }
    }
}

/// A file put into a launch's run directory before it starts (SHA-256 verified on arrival).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchInput {
    /// Bytes known before the run, e.g. a role configuration.
    Bytes {
        /// File name in the run directory.
        name: String,
        /// Its content.
        bytes: Vec<u8>,
    },
    /// A file that a launch of an earlier start group wrote in its run directory (e.g. the host's
    /// ready file, which the NIC and the clients read): fetched to the launcher and placed.
    FromLaunch {
        /// The launch that wrote it.
        launch: String,
        /// File name, in both run directories.
        file: String,
    },
}

impl LaunchInput {
    /// The file name in the receiving run directory.
    pub fn name(&self) -> &str {
        match self {
            LaunchInput::Bytes { name, .. } => name,
            LaunchInput::FromLaunch { file, .. } => file,
        }
    }
}

impl fmt::Display for LaunchInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaunchInput::Bytes { name, bytes } => write!(f, "{name} ({} bytes)", bytes.len()),
            LaunchInput::FromLaunch { launch, file } => {
                write!(f, "{file} (copied from {launch} once it is ready)")
            }
        }
    }
}

/// One role process to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// Unique id; names its run directory and its local results directory.
    pub id: String,
    /// Machine it runs on (an inventory host name, or the local transport's machine name).
    pub host: String,
    /// Its role (decides the start order and the machine role it needs).
    pub role: Role,
    /// Program and arguments. A relative program path with a `/` (`bin/naam-role`) is relative
    /// to the machine's workdir; a bare name is looked up in `PATH`.
    pub command: RemoteCommand,
    /// Readiness check.
    pub readiness: Readiness,
    /// Files it writes in its run directory, to collect (logs are always collected).
    pub outputs: Vec<String>,
    /// Files put into its run directory before it starts.
    pub inputs: Vec<LaunchInput>,
    /// How it is expected to end.
    pub ends: Ends,
}

impl LaunchSpec {
    /// A launch with readiness [`Readiness::Running`], no inputs or outputs, and the role's usual
    /// end ([`Ends::for_role`]).
    pub fn new(id: &str, host: &str, role: Role, command: RemoteCommand) -> LaunchSpec {
        LaunchSpec {
            id: id.to_string(),
            host: host.to_string(),
            role,
            command,
            readiness: Readiness::Running,
            outputs: Vec::new(),
            inputs: Vec::new(),
            ends: Ends::for_role(role),
        }
    }

    /// The same launch, ready when `file` exists in its run directory.
    pub fn ready_when(mut self, file: &str) -> LaunchSpec {
        self.readiness = Readiness::FileExists(file.to_string());
        self
    }

    /// The same launch, with these outputs added.
    pub fn with_outputs<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        outputs: I,
    ) -> LaunchSpec {
        self.outputs.extend(outputs.into_iter().map(Into::into));
        self
    }

    /// Every file collected for it: its outputs, then its two logs.
    pub fn expected_files(&self) -> Vec<String> {
        let mut files = self.outputs.clone();
        files.push(STDOUT_LOG.into());
        files.push(STDERR_LOG.into());
        files
    }
}

/// Why launches cannot run as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("launch {launch}: {reason}")]
pub struct InvalidLaunch {
    /// The launch id (`*` for the whole set).
    pub launch: String,
    /// What is wrong.
    pub reason: String,
}

/// Checks launches against the limits and each other (ids, names, inputs from earlier groups);
/// `machine_ok(host, role)` says whether a machine exists and may play a role (an inventory's
/// roles). Returns them in start order (host, NIC, client; stable within a role).
pub fn validate_launches(
    launches: &[LaunchSpec],
    machine_ok: impl Fn(&str, Role) -> Result<(), String>,
) -> Result<Vec<LaunchSpec>, InvalidLaunch> {
    if launches.is_empty() || launches.len() > LAUNCHES_MAX {
        return Err(InvalidLaunch {
            launch: "*".into(),
            reason: format!("{} launches; expected 1..={LAUNCHES_MAX}", launches.len()),
        });
    }
    let mut ids = BTreeSet::new();
    for launch in launches {
        let invalid = |reason: String| InvalidLaunch {
            launch: launch.id.clone(),
            reason,
        };
        if !is_clean_name(&launch.id) {
            return Err(invalid("id must be [A-Za-z0-9][A-Za-z0-9._-]*".into()));
        }
        if !ids.insert(launch.id.as_str()) {
            return Err(invalid("id used twice".into()));
        }
        machine_ok(&launch.host, launch.role).map_err(invalid)?;
        if launch.outputs.len() > LAUNCH_OUTPUTS_MAX {
            return Err(invalid(format!(
                "{} outputs; at most {LAUNCH_OUTPUTS_MAX}",
                launch.outputs.len()
            )));
        }
        for output in &launch.outputs {
            check_file_name(output)
                .map_err(|reason| invalid(format!("output {output:?}: {reason}")))?;
        }
        check_inputs(launch, launches).map_err(invalid)?;
    }
    let mut ordered = launches.to_vec();
    ordered.sort_by_key(|launch| launch.role);
    Ok(ordered)
}

/// Inputs: at most [`LAUNCH_INPUTS_MAX`], clean distinct names, sources started in an earlier
/// group (so they are ready before this launch starts).
fn check_inputs(launch: &LaunchSpec, launches: &[LaunchSpec]) -> Result<(), String> {
    if launch.inputs.len() > LAUNCH_INPUTS_MAX {
        return Err(format!(
            "{} inputs; at most {LAUNCH_INPUTS_MAX}",
            launch.inputs.len()
        ));
    }
    let mut names = BTreeSet::new();
    for input in &launch.inputs {
        let name = input.name();
        check_file_name(name).map_err(|reason| format!("input {name:?}: {reason}"))?;
        if !names.insert(name) || launch.outputs.iter().any(|o| o == name) {
            return Err(format!(
                "input {name:?}: named twice (inputs and outputs share the run directory)"
            ));
        }
        if let LaunchInput::FromLaunch { launch: source, .. } = input {
            let source_role = launches.iter().find(|l| &l.id == source).map(|l| l.role);
            match source_role {
                None => return Err(format!("input {name:?}: launch {source} does not exist")),
                Some(role) if role >= launch.role => {
                    return Err(format!(
                        "input {name:?}: launch {source} ({role}) does not start before a {} launch",
                        launch.role
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// `[A-Za-z0-9][A-Za-z0-9._-]*`, at most [`NAME_BYTES_MAX`] bytes: launch and run ids.
pub fn is_clean_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && name.len() <= NAME_BYTES_MAX
}

/// A clean relative path that is none of the launcher's own files.
fn check_file_name(name: &str) -> Result<(), &'static str> {
    let reserved = [STDOUT_LOG, STDERR_LOG, START_AT_FILE, TIMELINE_FILE];
    if reserved.contains(&name) || TRANSPORT_FILES.contains(&name) {
        return Err("reserved name (the orchestrator's own files)");
    }
    if name.is_empty()
        || name.starts_with('/')
        || name
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err("must be a clean relative path");
    }
    if name.chars().any(|c| c.is_control() || c == '\\') {
        return Err("must not contain control characters or backslashes");
    }
    Ok(())
}
