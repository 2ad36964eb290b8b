//! The dry run: the whole deployment and run plan for an inventory, rendered as text, without
//! connecting to anything. `naam deploy --dry-run` prints it.

use std::fmt::Write;

use crate::deploy::{ArtifactSet, DeployError, DeployStep, plan_host};
use crate::inventory::Inventory;
use crate::run::{LaunchSpec, Readiness, RunConfig, RunError, expected_files, remote_run_dir, validate_launches};

/// Why a plan could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    /// The launches do not fit the inventory.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A host cannot be deployed to with these artifacts.
    #[error(transparent)]
    Deploy(#[from] DeployError),
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
    let ordered = validate_launches(inventory, launches)?;
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# dry run: nothing is connected to; run {} (attempt 1)", config.run_id);
    let _ = writeln!(w, "inventory {}: {} hosts", inventory.source, inventory.hosts.len());
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
        let _ = writeln!(w, "  host key checked against {}", host.known_hosts.display());
        let _ = writeln!(w, "  key {}", host.identity_file.display());
        for step in plan_host(host, host.arch, artifacts)?.steps {
            let _ = match step {
                DeployStep::CheckArch { expected } => writeln!(w, "  check `uname -m` = {expected}"),
                DeployStep::Upload { local_path, remote_path, mode, kind } => writeln!(
                    w,
                    "  upload {kind:?} {} -> {}/{remote_path} (mode {mode:o}; skipped when SHA-256 matches)",
                    local_path.display(),
                    host.workdir
                ),
                DeployStep::Build { commands, .. } => {
                    let _ = writeln!(w, "  build on target (skipped when the stamp matches the bundle):");
                    for command in commands {
                        let _ = writeln!(w, "    {command}");
                    }
                    Ok(())
                }
            };
        }
    }
    let _ = writeln!(w, "\n== start (dependency order: host, nic, client; readiness before the next group)");
    for launch in &ordered {
        let host = inventory.host(&launch.host).expect("validated");
        let readiness = match &launch.readiness {
            Readiness::Running => "running".to_string(),
            Readiness::FileExists(file) => format!("file {file} exists"),
            Readiness::Command(command) => format!("`{command}` exits 0"),
        };
        let _ = writeln!(w, "{} {} on {}: {}", launch.role, launch.id, launch.host, launch.command);
        let _ = writeln!(w, "  in {}; ready when {readiness}", remote_run_dir(host, &config.run_id, 1, &launch.id));
    }
    let _ = writeln!(w, "then: clock offsets; common start time written to each run dir's start_at");
    let _ = writeln!(w, "\n== warm-up {} ms, measure {} ms (CPU sampled from /proc/stat at both ends)", config.warmup_ms, config.measure_ms);
    let _ = writeln!(w, "\n== collect (clients exit, servers stopped by PID; files verified by SHA-256)");
    for launch in &ordered {
        let _ = writeln!(w, "{}: {}", launch.id, expected_files(launch).join(", "));
    }
    let _ = writeln!(w, "into {}", config.results_dir.display());
    let _ = writeln!(w, "\n== teardown (anything still running stopped by PID: TERM, then KILL after {} ms)", config.stop_grace_ms);
    Ok(out)
}
