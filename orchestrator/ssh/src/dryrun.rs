//! The dry run: the whole deployment and run plan for an inventory, rendered as text, without
//! connecting to anything. `naam deploy --dry-run --inventory F --manifest M` prints
//! [`dry_run`]: what a run of the plan's first point would deploy and launch.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use naam_plan::{ManifestError, Variant};

use crate::deploy::{
    ArtifactSet, BuildRecipe, DeployError, DeployStep, SOURCE_BUNDLE_REMOTE, build_commands,
    plan_host,
};
use crate::executor::{CLIENT_EXIT_WAIT_MS, SERVER_STOP_GRACE_MS};
use crate::experiment::{self, ExperimentError, RoleSettings};
use crate::inventory::{Arch, HostSpec, Inventory, InventoryError};
use crate::run::{
    LaunchInput, LaunchSpec, Readiness, RunConfig, RunError, TIMELINE_FILE, expected_files,
    remote_run_dir, validate_launches,
};

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
    /// The manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The plan's first point does not map onto the inventory.
    #[error(transparent)]
    Experiment(#[from] ExperimentError),
    /// The plan has no point.
    #[error("manifest {manifest}: the plan has no point")]
    NoPoint {
        /// The manifest.
        manifest: PathBuf,
    },
}

/// How hosts without a role binary for their architecture are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bundle {
    /// From the artifact set's source bundle (its checksum is read).
    Given,
    /// From a source bundle the run makes when it starts (`git archive` of the checkout).
    MadeAtRunTime,
}

/// What a run of the first point of `manifest` (in `variant`) on the hosts of `inventory_path`
/// would deploy and launch, without connecting: the role binary built for this machine's
/// architecture (`naam_launch::role_binary`, or where `cargo build` puts it), a source bundle
/// built on hosts of other architectures, the role configurations as inputs, every launch in
/// start order, and the files collected.
pub fn dry_run(
    inventory_path: &Path,
    manifest: &Path,
    variant: Variant,
) -> Result<String, DryRunError> {
    let inventory = Inventory::load(inventory_path)?;
    let plan = naam_plan::load_manifest(manifest, variant)?;
    let point = plan.points.first().ok_or_else(|| DryRunError::NoPoint {
        manifest: manifest.to_path_buf(),
    })?;
    let point_run = experiment::point_run(&inventory, &plan, point, &RoleSettings::default())?;
    let mut artifacts = ArtifactSet::default();
    let binary = naam_launch::role_binary()
        .unwrap_or_else(|_| PathBuf::from("target/release/naam-role (not built yet: cargo build --release -p naam-roles --bin naam-role)"));
    if let Some(arch) = Arch::local() {
        artifacts.role_binaries.insert(arch, binary);
    }
    let mut config = RunConfig::new(
        &point_run.run_id,
        point_run.warmup_ms,
        point_run.measure_ms,
        PathBuf::from("<run folder>/orchestrator").join(&point.id),
    );
    config.stop_grace_ms = SERVER_STOP_GRACE_MS;
    config.exit_wait_ms = CLIENT_EXIT_WAIT_MS;
    let mut out = format!(
        "# plan {} ({}), point 1 of {}: {}\n",
        plan.id,
        plan.variant,
        plan.points.len(),
        point.id
    );
    let machines = &point_run.machines;
    let _ = writeln!(
        out,
        "# machines: host {}, nic {}, clients [{}]",
        machines.host,
        machines.nic,
        machines.clients.join(", ")
    );
    out.push_str(&render(
        &inventory,
        &artifacts,
        &point_run.launches,
        &config,
        Bundle::MadeAtRunTime,
    )?);
    Ok(out)
}

/// Renders the plan: per host how it is reached and what is deployed (assuming the inventory's
/// architecture; a real deploy checks `uname -m`), then the phases with every launch in start
/// order and the files that will be collected.
pub fn render_plan(
    inventory: &Inventory,
    artifacts: &ArtifactSet,
    launches: &[LaunchSpec],
    config: &RunConfig,
) -> Result<String, DryRunError> {
    render(inventory, artifacts, launches, config, Bundle::Given)
}

fn render(
    inventory: &Inventory,
    artifacts: &ArtifactSet,
    launches: &[LaunchSpec],
    config: &RunConfig,
    bundle: Bundle,
) -> Result<String, DryRunError> {
    let ordered = validate_launches(inventory, launches)?;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# dry run: nothing is connected to; run {} (attempt 1)",
        config.run_id
    );
    let _ = writeln!(
        w,
        "inventory {}: {} hosts",
        inventory.source,
        inventory.hosts.len()
    );
    let _ = writeln!(w, "\n== deploy (one SSH session per host, in parallel)");
    for host in &inventory.hosts {
        let roles: Vec<&str> = host.roles.iter().map(|r| r.as_str()).collect();
        let _ = writeln!(
            w,
            "host {} [{}] {} arch={} lan={} cores={} workdir={}",
            host.name,
            roles.join(","),
            host.login(),
            host.arch,
            host.lan_address,
            host.cores,
            host.workdir
        );
        let _ = writeln!(
            w,
            "  host key checked against {}",
            host.known_hosts.display()
        );
        let _ = writeln!(w, "  key {}", host.identity_file.display());
        let steps = match plan_host(host, host.arch, artifacts) {
            Err(DeployError::NoBinaryForArch { .. }) if bundle == Bundle::MadeAtRunTime => {
                render_bundle_steps(w, host, &artifacts.build)?;
                continue;
            }
            other => other?.steps,
        };
        for step in steps {
            let _ = match step {
                DeployStep::CheckArch { expected } => {
                    writeln!(w, "  check `uname -m` = {expected}")
                }
                DeployStep::Upload {
                    local_path,
                    remote_path,
                    mode,
                    kind,
                } => writeln!(
                    w,
                    "  upload {kind:?} {} -> {}/{remote_path} (mode {mode:o}; skipped when SHA-256 matches)",
                    local_path.display(),
                    host.workdir
                ),
                DeployStep::Build { commands, .. } => {
                    let _ = writeln!(
                        w,
                        "  build on target (skipped when the stamp matches the bundle):"
                    );
                    for command in commands {
                        let _ = writeln!(w, "    {command}");
                    }
                    Ok(())
                }
            };
        }
    }
    let _ = writeln!(
        w,
        "\n== start (dependency order: host, nic, client; readiness before the next group)"
    );
    for launch in &ordered {
        let host = inventory.host(&launch.host).expect("validated");
        let readiness = match &launch.readiness {
            Readiness::Running => "running".to_string(),
            Readiness::FileExists(file) => format!("file {file} exists"),
            Readiness::Command(command) => format!("`{command}` exits 0"),
        };
        let _ = writeln!(
            w,
            "{} {} on {}: {}",
            launch.role, launch.id, launch.host, launch.command
        );
        let _ = writeln!(
            w,
            "  in {}; ready when {readiness}",
            remote_run_dir(host, &config.run_id, 1, &launch.id)
        );
        if !launch.inputs.is_empty() {
            let inputs: Vec<String> = launch.inputs.iter().map(describe_input).collect();
            let _ = writeln!(w, "  inputs: {}", inputs.join(", "));
        }
    }
    let _ = writeln!(
        w,
        "then: clock offsets (refused beyond the bounds, else shifted per host); common start time written to each run dir's start_at and {TIMELINE_FILE}"
    );
    let _ = writeln!(
        w,
        "\n== warm-up {} ms, measure {} ms (CPU sampled from /proc/stat at both ends)",
        config.warmup_ms, config.measure_ms
    );
    let _ = writeln!(
        w,
        "\n== collect (clients exit, servers stopped by PID; files verified by SHA-256)"
    );
    for launch in &ordered {
        let _ = writeln!(w, "{}: {}", launch.id, expected_files(launch).join(", "));
    }
    let _ = writeln!(w, "into {}", config.results_dir.display());
    let _ = writeln!(
        w,
        "\n== teardown (anything still running stopped by PID: TERM, then KILL after {} ms)",
        config.stop_grace_ms
    );
    Ok(out)
}

fn describe_input(input: &LaunchInput) -> String {
    match input {
        LaunchInput::Bytes { name, bytes } => format!("{name} ({} bytes)", bytes.len()),
        LaunchInput::FromLaunch { launch, file } => {
            format!("{file} (copied from {launch} once it is ready)")
        }
    }
}

/// A host of an architecture without a local binary, when the bundle is made at run time.
fn render_bundle_steps(
    w: &mut String,
    host: &HostSpec,
    recipe: &BuildRecipe,
) -> Result<(), DryRunError> {
    let _ = writeln!(w, "  check `uname -m` = {}", host.arch);
    let _ = writeln!(
        w,
        "  upload SourceBundle (git archive of this checkout, made when the run starts) -> {}/{SOURCE_BUNDLE_REMOTE} (skipped when SHA-256 matches)",
        host.workdir
    );
    let _ = writeln!(
        w,
        "  build on target (skipped when the stamp matches the bundle):"
    );
    for command in build_commands(recipe)? {
        let _ = writeln!(w, "    {command}");
    }
    Ok(())
}
