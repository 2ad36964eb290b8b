//! # naam-doctor — preflight of a testbed inventory
//!
//! Before a run on real machines, `naam doctor --inventory hosts.toml` checks every node for
//! what the run needs and prints what to fix, command by command. Each check is a real command
//! run on the node over SSH ([`checks::probes`]) and a pure evaluation of its output
//! ([`checks::evaluate`]):
//!
//! | node | checks |
//! |---|---|
//! | every node | `arch` (`uname -m` against the inventory), `role-binary` (the deployed `naam-role`'s ELF machine), `clock` (offset from this machine, round-trip bounded) |
//! | BlueField-2 Arm side (NIC role on aarch64) | `eswitch-mode` (devlink: switchdev = embedded/DPU mode), `ovs` (a bridge joining the uplink and the host representor, `hw-offload=true`, a `ptcp:` OpenFlow listener for the controller, a port for the Arm's own traffic), `rdma` (an ACTIVE port), `rdma-link` (the host–Arm RDMA link's address — the `[host.bluefield]` table's, or its default — is configured, on an RDMA device's netdev) |
//! | host whose NIC role is off-box | `rdma`, `rdma-link` (as on the Arm side, the host's end), `tmfifo` (the rshim link the Arm side is reached through on CloudLab) |
//! | host | `hugepages` (informational: the harness does not use them) |
//!
//! Nodes are told apart from the inventory alone: a node with the NIC role on aarch64 is a
//! BlueField-2's Arm side; a host is "of an off-box NIC" when another node has the NIC role.
//!
//! [`ProbeRunner`] carries the probes: [`SshRunner`] runs them (naam-ssh sessions, host keys
//! checked), [`DryRunner`] records them without connecting (`naam doctor --dry-run` prints every
//! remote command).

// Errors carry naam-ssh's context (login, the command) and travel only on the failure path of
// network operations that take milliseconds; as in naam-ssh, their size is not worth boxing.
#![allow(clippy::result_large_err)]

pub mod checks;

use std::fmt::{self, Write};

use naam_ssh::{
    ConnectOptions, Connection, HostSpec, Inventory, Role, ShellLine, SshError,
    telemetry::measure_clock_offset,
};

use crate::checks::{NodeKind, Probe, RdmaLinkEnd};

/// Clock samples per node (the one with the smallest round trip is kept).
pub const CLOCK_SAMPLES: u32 = 16;
/// Longest a probe may run.
pub const PROBE_TIMEOUT_MS: u64 = 20_000;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// As a run needs it.
    Ok,
    /// Worth knowing; nothing to fix.
    Info,
    /// A run works, but measurements may suffer.
    Warn,
    /// A run cannot work until this is fixed.
    Fail,
    /// Not checked (dry run, or the node could not be reached).
    NotRun,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warn => "WARN",
            Severity::Fail => "FAIL",
            Severity::NotRun => "--",
        }
    }
}

/// The result of one check on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The check's id.
    pub check: &'static str,
    /// How bad.
    pub severity: Severity,
    /// What was found.
    pub summary: String,
    /// Commands (or edits) that fix it, in order.
    pub fixes: Vec<String>,
}

/// Every finding of one node, with the commands that produced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The node's name.
    pub node: String,
    /// `user@host:port`.
    pub login: String,
    /// Its roles and architecture, as the inventory says.
    pub described: String,
    /// (command run, finding), in check order.
    pub findings: Vec<(String, Finding)>,
}

/// The doctor's report over an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One per node, in inventory order.
    pub nodes: Vec<NodeReport>,
}

impl Report {
    /// Findings of at least `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| &n.findings)
            .filter(|(_, f)| f.severity == severity)
            .count()
    }

    /// True when no check failed (warnings and unrun checks aside).
    pub fn passed(&self) -> bool {
        self.count(Severity::Fail) == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for node in &self.nodes {
            let _ = writeln!(
                out,
                "node {} ({}, {})",
                node.node, node.login, node.described
            );
            for (command, finding) in &node.findings {
                let _ = writeln!(
                    out,
                    "  {:<5} {:<13} {}",
                    finding.severity.label(),
                    finding.check,
                    finding.summary
                );
                let _ = writeln!(out, "        ran: {command}");
                for fix in &finding.fixes {
                    let _ = writeln!(out, "        fix: {fix}");
                }
            }
        }
        let _ = write!(
            out,
            "summary: {} failed, {} warnings, {} not run, on {} nodes",
            self.count(Severity::Fail),
            self.count(Severity::Warn),
            self.count(Severity::NotRun),
            self.nodes.len()
        );
        f.write_str(&out)
    }
}

/// What a probe printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutput {
    /// Exit status.
    pub status: i32,
    /// stdout (stderr is folded into it by the probes that need it).
    pub stdout: String,
}

/// Why a probe did not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Dry run: recorded, not run.
    #[error("not run (dry run)")]
    DryRun,
    /// The node could not be reached or the command could not be run.
    #[error(transparent)]
    Ssh(#[from] SshError),
}

/// Runs probes on nodes.
pub trait ProbeRunner {
    /// Runs `line` on `node`.
    fn run(&mut self, node: &HostSpec, line: &ShellLine) -> Result<ProbeOutput, ProbeError>;
    /// Measures `node`'s clock offset: (remote minus local ns, error bound ns).
    fn clock_offset(&mut self, node: &HostSpec) -> Result<(i64, u64), ProbeError>;
}

/// Records every command without connecting.
#[derive(Debug, Default)]
pub struct DryRunner {
    /// (node, command) in the order asked.
    pub recorded: Vec<(String, String)>,
}

impl ProbeRunner for DryRunner {
    fn run(&mut self, node: &HostSpec, line: &ShellLine) -> Result<ProbeOutput, ProbeError> {
        self.recorded
            .push((node.name.clone(), line.as_str().to_string()));
        Err(ProbeError::DryRun)
    }

    fn clock_offset(&mut self, node: &HostSpec) -> Result<(i64, u64), ProbeError> {
        self.recorded
            .push((node.name.clone(), CLOCK_PROBE.to_string()));
        Err(ProbeError::DryRun)
    }
}

/// How the clock probe is shown (naam-ssh's `measure_clock_offset` runs this loop over one
/// channel).
pub const CLOCK_PROBE: &str = "while IFS= read -r _; do date +%s%N; done   (16 timed exchanges)";

/// Runs probes over SSH, one session per node, opened on first use.
#[derive(Debug)]
pub struct SshRunner {
    options: ConnectOptions,
    sessions: Vec<(String, Connection)>,
}

impl SshRunner {
    /// A runner connecting with `options`.
    pub fn new(options: ConnectOptions) -> SshRunner {
        SshRunner {
            options,
            sessions: Vec::new(),
        }
    }

    fn session(&mut self, node: &HostSpec) -> Result<&mut Connection, SshError> {
        if let Some(i) = self.sessions.iter().position(|(n, _)| *n == node.name) {
            return Ok(&mut self.sessions[i].1);
        }
        let conn = Connection::open(node, &self.options)?;
        self.sessions.push((node.name.clone(), conn));
        Ok(&mut self.sessions.last_mut().expect("just pushed").1)
    }
}

impl ProbeRunner for SshRunner {
    fn run(&mut self, node: &HostSpec, line: &ShellLine) -> Result<ProbeOutput, ProbeError> {
        let output = self.session(node)?.run(line, PROBE_TIMEOUT_MS)?;
        Ok(ProbeOutput {
            status: output.status,
            stdout: output.stdout_text(),
        })
    }

    fn clock_offset(&mut self, node: &HostSpec) -> Result<(i64, u64), ProbeError> {
        let offset = measure_clock_offset(self.session(node)?, CLOCK_SAMPLES)?;
        Ok((offset.offset_ns, offset.error_bound_ns()))
    }
}

/// The kind of `host` within `inventory`.
pub fn node_kind(inventory: &Inventory, host: &HostSpec) -> NodeKind {
    let nic_elsewhere = inventory
        .hosts
        .iter()
        .any(|h| h.name != host.name && h.has_role(Role::Nic));
    let bluefield_arm = host.has_role(Role::Nic) && host.arch == naam_ssh::Arch::Aarch64;
    let host_of_offbox_nic = host.has_role(Role::Host) && nic_elsewhere;
    let rdma_link = if bluefield_arm {
        let card = host.bluefield.unwrap_or_default();
        Some(RdmaLinkEnd {
            local: card.rdma_address,
            peer: card.host_rdma_address,
            on_arm: true,
        })
    } else if host_of_offbox_nic {
        let nic = inventory
            .hosts
            .iter()
            .find(|h| h.name != host.name && h.has_role(Role::Nic));
        let card = nic.and_then(|n| n.bluefield).unwrap_or_default();
        Some(RdmaLinkEnd {
            local: card.host_rdma_address,
            peer: card.rdma_address,
            on_arm: false,
        })
    } else {
        None
    };
    NodeKind {
        bluefield_arm,
        host_of_offbox_nic,
        rdma_link,
    }
}

/// Checks every node of `inventory` through `runner`.
pub fn examine(inventory: &Inventory, runner: &mut dyn ProbeRunner) -> Report {
    let nodes = inventory
        .hosts
        .iter()
        .map(|host| examine_node(host, node_kind(inventory, host), runner))
        .collect();
    Report { nodes }
}

fn examine_node(host: &HostSpec, kind: NodeKind, runner: &mut dyn ProbeRunner) -> NodeReport {
    let roles: Vec<&str> = host.roles.iter().map(|r| r.as_str()).collect();
    let mut findings = Vec::new();
    match checks::probes(host, kind) {
        Ok(probes) => {
            for probe in probes {
                findings.push(run_probe(host, kind, &probe, runner));
            }
        }
        Err(e) => findings.push((
            String::new(),
            not_run("probes", format!("cannot build the probe commands: {e}")),
        )),
    }
    let clock = match runner.clock_offset(host) {
        Ok((offset, error)) => checks::clock(offset, error),
        Err(e) => not_run("clock", e.to_string()),
    };
    findings.push((CLOCK_PROBE.to_string(), clock));
    NodeReport {
        node: host.name.clone(),
        login: host.login(),
        described: format!("roles {}, {}", roles.join("+"), host.arch.as_str()),
        findings,
    }
}

fn run_probe(
    host: &HostSpec,
    kind: NodeKind,
    probe: &Probe,
    runner: &mut dyn ProbeRunner,
) -> (String, Finding) {
    let command = probe.line.as_str().to_string();
    let finding = match runner.run(host, &probe.line) {
        Ok(output) => checks::evaluate(probe.id, host, kind, &output.stdout),
        Err(e) => not_run(probe.id, e.to_string()),
    };
    (command, finding)
}

fn not_run(check: &'static str, why: String) -> Finding {
    Finding {
        check,
        severity: Severity::NotRun,
        summary: why,
        fixes: Vec::new(),
    }
}
