//! The dry run: what a run on an inventory's machines would do, without connecting to anything —
//! how each host is reached and what is deployed to it, then the launch sequence's own
//! recording: the same sequence a run follows, over the recording transport instead of SSH
//! (`naam deploy --dry-run` prints it).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use naam_launch::recording::RecordingTransport;
use naam_launch::{Cancel, sequence};

use crate::deploy::{
    ArtifactSet, BuildRecipe, DeployError, DeployStep, SOURCE_BUNDLE_REMOTE, build_commands,
    plan_host,
};
use crate::inventory::{HostSpec, InventoryError};
use crate::run::{LaunchSpec, RunConfig, RunError, remote_run_dir, validate_launches};
use crate::{Inventory, inventory};

/// Why a plan could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The launches do not fit the inventory.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A host cannot be deployed to with these artifacts.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The hosts file.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// A local scratch folder for the recording.
    #[error("dry-run scratch folder {}: {message}", path.display())]
    Scratch {
        /// The folder.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// How hosts without a role binary for their architecture are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bundle {
    /// From the artifact set's source bundle (its checksum is read).
    Given,
    /// From a source bundle the run makes when it starts (`git archive` of the checkout).
    MadeAtRunTime,
}

/// Renders the run: per host how it is reached and what is deployed (assuming the inventory's
/// architecture; a real deploy checks `uname -m`), then the sequence's recording — every launch
/// with its inputs in start order, readiness, the common start, the measurement, the stops, the
/// files collected and the teardown. `bundle` says how hosts without a binary get one.
pub fn render_plan_with(
    inventory: &Inventory,
    artifacts: &ArtifactSet,
    launches: &[LaunchSpec],
    config: &RunConfig,
    bundle: Bundle,
) -> Result<String, DryRunError> {
    let ordered = validate_launches(inventory, launches)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# dry run: nothing is connected to; run {} (attempt 1)",
        config.run_id
    );
    let _ = writeln!(
        out,
        "inventory {}: {} hosts",
        inventory.source,
        inventory.hosts.len()
    );
    let _ = writeln!(out, "\n== hosts (one SSH session per host, in parallel)");
    let mut deploy_lines = BTreeMap::new();
    for host in &inventory.hosts {
        out.push_str(&describe_host(host));
        deploy_lines.insert(host.name.clone(), deploy_steps(host, artifacts, bundle)?);
    }
    let _ = writeln!(out, "\n== recording (the launch sequence, step by step)");
    out.push_str(&record(inventory, &ordered, config, deploy_lines)?);
    let _ = writeln!(out, "files collected into {}", config.results_dir.display());
    Ok(out)
}

/// [`render_plan_with`] for an artifact set that holds every binary or bundle it needs.
pub fn render_plan(
    inventory: &Inventory,
    artifacts: &ArtifactSet,
    launches: &[LaunchSpec],
    config: &RunConfig,
) -> Result<String, DryRunError> {
    render_plan_with(inventory, artifacts, launches, config, Bundle::Given)
}

/// How a host is reached.
fn describe_host(host: &HostSpec) -> String {
    let roles: Vec<&str> = host.roles.iter().map(|r| r.as_str()).collect();
    format!(
        "host {} [{}] {} arch={} lan={} cores={} workdir={}\n  host key checked against {}\n  key {}\n",
        host.name,
        roles.join(","),
        host.login(),
        host.arch,
        host.lan_address,
        host.cores,
        host.workdir,
        host.known_hosts.display(),
        host.identity_file.display()
    )
}

/// What the deploy phase does on `host`, one line per step.
fn deploy_steps(
    host: &HostSpec,
    artifacts: &ArtifactSet,
    bundle: Bundle,
) -> Result<Vec<String>, DryRunError> {
    let steps = match plan_host(host, host.arch, artifacts) {
        Err(DeployError::NoBinaryForArch { .. }) if bundle == Bundle::MadeAtRunTime => {
            return bundle_steps(host, &artifacts.build);
        }
        other => other?.steps,
    };
    let mut lines = Vec::new();
    for step in steps {
        match step {
            DeployStep::CheckArch { expected } => {
                lines.push(format!("check `uname -m` = {expected}"))
            }
            DeployStep::Upload {
                local_path,
                remote_path,
                mode,
                kind,
            } => lines.push(format!(
                "upload {kind:?} {} -> {}/{remote_path} (mode {mode:o}; skipped when SHA-256 matches)",
                local_path.display(),
                host.workdir
            )),
            DeployStep::Build { commands, .. } => {
                lines.push("build on target (skipped when the stamp matches the bundle):".into());
                lines.extend(commands.iter().map(|c| format!("  {c}")));
            }
        }
    }
    Ok(lines)
}

/// A host of an architecture without a local binary, when the bundle is made at run time.
fn bundle_steps(host: &HostSpec, recipe: &BuildRecipe) -> Result<Vec<String>, DryRunError> {
    let mut lines = vec![
        format!("check `uname -m` = {}", host.arch),
        format!(
            "upload SourceBundle (git archive of this checkout, made when the run starts) -> {}/{SOURCE_BUNDLE_REMOTE} (skipped when SHA-256 matches)",
            host.workdir
        ),
        "build on target (skipped when the stamp matches the bundle):".into(),
    ];
    lines.extend(build_commands(recipe)?.iter().map(|c| format!("  {c}")));
    Ok(lines)
}

/// The launch sequence over the recording transport (inputs it keeps go to a scratch folder,
/// removed afterwards).
fn record(
    inventory: &Inventory,
    ordered: &[LaunchSpec],
    config: &RunConfig,
    deploy_lines: BTreeMap<String, Vec<String>>,
) -> Result<String, DryRunError> {
    let run_dir = |launch: &LaunchSpec| {
        let host: &inventory::HostSpec = inventory.host(&launch.host).expect("validated");
        remote_run_dir(host, &config.run_id, 1, &launch.id)
    };
    let run_dirs = ordered.iter().map(|l| (l.id.clone(), run_dir(l))).collect();
    let scratch = std::env::temp_dir().join(format!("naam-dry-run-{}", std::process::id()));
    let mut sequence_config = config.sequence();
    sequence_config.results_dir = scratch.clone();
    let record = sequence::new_record(ordered, &sequence_config, 1, run_dir);
    let mut transport = RecordingTransport::new(run_dirs, deploy_lines);
    sequence::run(
        &mut transport,
        ordered.to_vec(),
        &sequence_config,
        record,
        &Cancel::new(),
        &|_| {},
    );
    std::fs::remove_dir_all(&scratch).map_err(|e| DryRunError::Scratch {
        path: scratch,
        message: e.to_string(),
    })?;
    Ok(transport.text())
}
