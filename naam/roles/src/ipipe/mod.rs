//! The iPipe baseline (naam-ipipe) as the server of a local point: the NIC role runs iPipe's
//! runtime instead of NAAM's workers, and the host role runs the counterpart that serves the
//! actors the NIC's management core migrates to it.
//!
//! The roles stay thin drivers of the sans-IO runtime ([`naam_ipipe::Runtime`]): every
//! scheduling decision (FCFS, downgrades to DRR, the management core's migrations in four
//! phases) is the runtime's; the roles own the threads, the clock, the sockets and the link
//! between the two processes ([`driver`], [`link`]).
//!
//! - **NIC** ([`nic`]): FCFS cores = the NIC role's workers, plus the manifest's DRR cores (the
//!   parameters' definition: DRR cores beside the FCFS cores), each a thread pinned to the NIC's
//!   CPUs; receiver threads (one per NIC socket: iPipe's shim network stack) hand datagrams to
//!   the runtime. One actor per tenant owns a copy of that tenant's regions, read from the very
//!   shared-memory files the emulated NIC maps (the bytes the host loaded and NAAM's functions
//!   read), as iPipe's actors own their objects in NIC memory.
//! - **Host** ([`host`]): the host role's workers' count of FCFS cores, pinned to the host's
//!   CPUs (a hog congests them as it congests NAAM's host workers), importing migrated actors,
//!   serving forwarded requests and answering the clients directly, exporting recalled actors.
//!
//! Emulated, stated plainly: a NIC core is a host thread that spins to run `1 / core_speed_factor`
//! times as long as the handler took; isolation costs (process per tenant) and DMA transfers
//! (forwards, migrated objects) are naam-ipipe's [`naam_ipipe::CostModel`], spun for; a migrated
//! actor's bytes really cross from one process to the other over the link.

pub mod driver;
pub mod host;
pub mod link;
pub mod nic;

use naam_engine::FunctionId;
use naam_ipipe::app::mica::InstallError;
use naam_ipipe::{ActorSpec, App, BtreeApp, IpipeConfig, Isolation, MicaApp, Op, Runtime};
use naam_mica::{MicaRegions, MicaRkeys};
use naam_results::raw::{self, IpipeRecord};
use naam_types::PolicySpec;
use naam_types::ipipe::IpipeParams;

use crate::config::WorkloadSpec;
use crate::workload::{ServerWorkload, tenant_id};

/// The iPipe parameters of a policy and whether it isolates tenants in processes, if it is an
/// iPipe series.
pub fn params_of(policy: &PolicySpec) -> Option<(IpipeParams, bool)> {
    match policy {
        PolicySpec::Ipipe(p) => Some((*p, false)),
        PolicySpec::IpipeProcesses(p) => Some((*p, true)),
        _ => None,
    }
}

/// `server.json`'s `system` for a point served under `policy`.
pub fn system_name(policy: &PolicySpec) -> &'static str {
    match params_of(policy) {
        None => raw::SYSTEM_NAAM,
        Some((_, false)) => raw::SYSTEM_IPIPE_TRUSTED,
        Some((_, true)) => raw::SYSTEM_IPIPE_PROCESSES,
    }
}

/// The isolation model's name in an [`IpipeRecord`].
pub fn isolation_name(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Trusted => "trusted",
        Isolation::ProcessPerTenant { .. } => "process-per-tenant",
    }
}

/// The host side of a point's iPipe: `cores` FCFS cores with the NIC's thresholds, windows and
/// isolation.
pub fn host_config(cores: u16, params: &IpipeParams, processes: bool) -> IpipeConfig {
    let nic = IpipeConfig::nic_from_params(1, params, processes);
    IpipeConfig {
        thresholds: nic.thresholds,
        windows: nic.windows,
        isolation: nic.isolation,
        ..IpipeConfig::host(cores)
    }
}

/// The operation each workload function is, for an actor's routes.
pub fn op_of(name: &str) -> Option<Op> {
    match name {
        "mica_get" => Some(Op::MicaGet),
        "mica_set" => Some(Op::MicaSet),
        "btree_lookup" => Some(Op::BtreeLookup),
        _ => None,
    }
}

/// The functions an actor of `workload` serves, with the operation each is (the same ids for
/// every tenant; tenant 0's list).
pub fn actor_functions(
    workload: &dyn ServerWorkload,
) -> Result<Vec<(FunctionId, Op)>, crate::workload::WorkloadError> {
    Ok(workload
        .functions(0)?
        .iter()
        .filter_map(|f| Some((f.id, op_of(f.name)?)))
        .collect())
}

/// Tenant `t`'s salt when each tenant runs its own GET program: the actor's native GET then
/// answers as that program does (iPipe's actors are per-tenant code already).
fn tenant_salt_of(spec: &crate::config::MicaSpec, t: usize) -> Option<u64> {
    (spec.tenant_programs == naam_types::TenantPrograms::Distinct)
        .then(|| naam_mica::tenant::tenant_salt(t as u32))
}

/// Tenant `t`'s actor on `runtime`: it serves `functions` and owns a copy of the tenant's
/// regions (`bytes`, in the workload's order, named by `rkeys`) as its objects.
pub fn install_actor(
    runtime: &mut Runtime,
    workload: &WorkloadSpec,
    t: usize,
    bytes: &[Vec<u8>],
    rkeys: &[u64],
    functions: &[(FunctionId, Op)],
) -> Result<(), String> {
    let spec = ActorSpec {
        tenant: tenant_id(t as u32),
        functions: functions.to_vec(),
        quantum_ns: None,
    };
    let actor = runtime.add_actor(spec).map_err(|e| e.to_string())?;
    let app = runtime
        .with_objects(actor, |objects, allocator| match (workload, bytes, rkeys) {
            (WorkloadSpec::Mica(spec), [index, log, meta], &[ri, rl, rm]) => {
                let regions = MicaRegions { index, log, meta };
                let rkeys = MicaRkeys {
                    index: ri,
                    log: rl,
                    meta: rm,
                };
                MicaApp::adopt(objects, allocator, regions, rkeys)
                    .map(|app| app.with_tenant_salt(tenant_salt_of(spec, t)))
                    .map(App::Mica)
            }
            (WorkloadSpec::Btree(_), [nodes], &[rkey]) => {
                BtreeApp::adopt(objects, allocator, nodes, rkey).map(App::Btree)
            }
            _ => Err(InstallError::Mica(format!(
                "tenant {t}: {} regions and {} rkeys do not fit the workload",
                bytes.len(),
                rkeys.len()
            ))),
        })
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("tenant {t}: {e}"))?;
    runtime.set_app(actor, app).map_err(|e| e.to_string())
}

/// One record of a point from the NIC's and the host's: the NIC's migrations and forwards, the
/// tallies of both sides.
pub fn merge(nic: &IpipeRecord, host: &IpipeRecord) -> IpipeRecord {
    let mut failures = nic.failures.clone();
    failures.extend(host.failures.iter().cloned());
    IpipeRecord {
        cores: [nic.cores[0], host.cores[1]],
        downgrades: nic.downgrades + host.downgrades,
        tenant_switches: nic.tenant_switches + host.tenant_switches,
        refused: nic.refused + host.refused,
        failures,
        ..nic.clone()
    }
}

/// One side's counters over a measured phase, as `server.json` has them, from iPipe's runtime
/// statistics at the phase's start and end: a completion is a request run to its reply on that
/// side, a step one run of an actor; busy is the share of `capacity_ns` (cores × phase) its cores
/// spent running actors. Used by the local roles and the simulator alike.
pub fn phase_counters(
    start: &naam_ipipe::RuntimeStats,
    end: &naam_ipipe::RuntimeStats,
    capacity_ns: u64,
) -> naam_results::raw::LocationCounters {
    let completions = end.completed.saturating_sub(start.completed);
    let busy_ns = end.busy_ns.saturating_sub(start.busy_ns);
    naam_results::raw::LocationCounters {
        completions,
        steps: completions,
        retries: 0,
        traps: 0,
        access_denials: 0,
        pushbacks: 0,
        busy_fraction: (busy_ns as f64 / capacity_ns.max(1) as f64).min(1.0),
    }
}

/// The counters of two servers that shared the same cores over the same phase (the host's iPipe
/// counterpart and NAAM's host workers, both `workers` threads on the host's CPUs): every count
/// added, busy fractions of the same capacity added (at most 1).
pub fn same_cores(
    a: &naam_results::raw::LocationCounters,
    b: &naam_results::raw::LocationCounters,
) -> naam_results::raw::LocationCounters {
    naam_results::raw::LocationCounters {
        completions: a.completions + b.completions,
        steps: a.steps + b.steps,
        retries: a.retries + b.retries,
        traps: a.traps + b.traps,
        access_denials: a.access_denials + b.access_denials,
        pushbacks: a.pushbacks + b.pushbacks,
        busy_fraction: (a.busy_fraction + b.busy_fraction).min(1.0),
    }
}
