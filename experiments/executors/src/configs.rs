//! From a plan's point to the role configurations of its processes. Every choice the manifest
//! leaves to the testbed is made here, explicitly: tenants split the dataset evenly, clients
//! split the offered load evenly, the hog runs on the host's cores, client-side policies run at
//! the clients.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use naam_plan::{Event, ExperimentPlan, PointPlan, PolicySpec, Series, Timing, Workload};
use naam_roles::config::{
    BtreeSpec, CONFIG_SCHEMA_VERSION, ClientConfig, Dataset, EswitchMode, HogConfig, HostConfig,
    MicaSpec, NicConfig, OneSided, Polling, Role, RoleConfig, TimelineSpec, WorkloadSpec,
};

use crate::TestbedError;

/// Smallest per-tenant MICA log (bytes).
pub const TENANT_LOG_BYTES_MIN: u64 = 1 << 16;
/// Smallest per-tenant bucket count.
pub const TENANT_BUCKETS_MIN: u64 = 64;
/// Requests a client keeps in flight at most.
pub const CLIENT_INFLIGHT_MAX: u32 = 4096;
/// A request without a reply for this long is a timeout.
pub const CLIENT_TIMEOUT_MS: u64 = 1000;

/// Testbed-level settings that are not in the manifest.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The eSwitch to use.
    pub eswitch: EswitchMode,
    /// Busy-poll or blocking workers.
    pub polling: Polling,
    /// Check every answer.
    pub verify: bool,
    /// Controller sampling period.
    pub sample_period_us: u64,
    /// Folder of the shared-memory region files.
    pub shm_dir: PathBuf,
}

/// The configurations of one point, and where each role's files go.
#[derive(Debug, Clone)]
pub struct PointConfigs {
    /// Host.
    pub host: RoleConfig,
    /// NIC.
    pub nic: RoleConfig,
    /// Clients.
    pub clients: Vec<RoleConfig>,
    /// The hog, if the plan has one.
    pub hog: Option<RoleConfig>,
    /// The file the servers read their timeline from.
    pub timeline_file: PathBuf,
}

/// The role configurations of `point`, with every role's folder under `dir`; `listen_ip` is
/// where the server listens (loopback, or its namespace's address).
pub fn build(
    plan: &ExperimentPlan,
    point: &PointPlan,
    settings: &Settings,
    dir: &Path,
    listen_ip: IpAddr,
    run_id: &str,
) -> Result<PointConfigs, TestbedError> {
    let (measure_ms, interval_ms) = match plan.timing {
        Timing::Traffic {
            measure_ms,
            interval_ms,
            ..
        } => (measure_ms, interval_ms),
        Timing::Iterations { .. } => {
            return Err(unsupported(
                "a vm-cost plan has no traffic to run on the testbed",
            ));
        }
    };
    let policy = point_policy(plan, point.series)?;
    let dataset = Dataset {
        workload: workload_spec(plan, point)?,
        tenants: point.tenants.max(1),
        seed: point.seed,
    };
    let timeline_file = dir.join("timeline.json");
    let server_timeline = TimelineSpec::File {
        path: timeline_file.clone(),
    };
    let role = |name: &str, role: Role, timeline: TimelineSpec| RoleConfig {
        schema: CONFIG_SCHEMA_VERSION,
        run_id: run_id.to_string(),
        out_dir: dir.join(name),
        timeline,
        role,
    };
    let roles = &plan.roles;
    let host_ready = dir.join("host").join(naam_roles::host::READY_FILE);
    let host = role(
        "host",
        Role::Host(HostConfig {
            listen_ip,
            ingress_port: 0,
            workers: roles.host_workers,
            cpus: roles.pinning.host_cpus.clone(),
            rnic_cpus: roles.pinning.nic_cpus.clone(),
            nic_workers: roles.nic_workers,
            dataset: dataset.clone(),
            policy,
            eswitch: settings.eswitch,
            sample_period_us: settings.sample_period_us,
            polling: settings.polling,
            shm_dir: settings.shm_dir.clone(),
        }),
        server_timeline.clone(),
    );
    let nic = role(
        "nic",
        Role::Nic(NicConfig {
            host_ready: host_ready.clone(),
            dataset: dataset.clone(),
            workers: roles.nic_workers,
            cpus: roles.pinning.nic_cpus.clone(),
            access_delay_ns: roles.nic_access_delay_ns,
            core_speed_factor: roles.nic_core_speed_factor,
            polling: settings.polling,
            sample_period_us: settings.sample_period_us,
        }),
        server_timeline,
    );
    // Clients and the hog get their (fixed) timeline when the servers are ready.
    let placeholder = TimelineSpec::File {
        path: timeline_file.clone(),
    };
    let offered =
        point.offered_load_ops_per_s.unwrap_or(0) as f64 / f64::from(roles.clients.max(1));
    let load_steps: Vec<(u64, f64)> = plan
        .events
        .iter()
        .filter_map(|e| match e {
            Event::LoadStep { at_ms, factor } => Some((*at_ms, *factor)),
            Event::CpuHog { .. } => None,
        })
        .collect();
    let client_policy = policy.runs_at_client().then_some(policy);
    let clients = (0..roles.clients)
        .map(|k| {
            role(
                &format!("client-{k}"),
                Role::Client(ClientConfig {
                    index: k,
                    host_ready: host_ready.clone(),
                    dataset: dataset.clone(),
                    offered_ops_per_s: offered,
                    load_steps: load_steps.clone(),
                    interval_ms,
                    seed: point.client_seed(k),
                    verify: settings.verify,
                    client_policy,
                    cpus: roles.pinning.client_cpus.clone(),
                    inflight_max: CLIENT_INFLIGHT_MAX,
                    timeout_ms: CLIENT_TIMEOUT_MS,
                    one_sided: OneSided::EmulatedRnic,
                }),
                placeholder.clone(),
            )
        })
        .collect();
    let hog = plan.events.iter().find_map(|e| match e {
        Event::CpuHog {
            start_ms,
            stop_ms,
            threads,
        } => Some(role(
            "hog",
            Role::Hog(HogConfig {
                threads: *threads,
                cpus: roles.pinning.host_cpus.clone(),
                start_ms: *start_ms,
                stop_ms: (*stop_ms).min(measure_ms).max(start_ms + 1),
            }),
            placeholder.clone(),
        )),
        Event::LoadStep { .. } => None,
    });
    Ok(PointConfigs {
        host,
        nic,
        clients,
        hog,
        timeline_file,
    })
}

/// The steering policy, with its parameters, of a series that is a placement or a policy.
fn point_policy(plan: &ExperimentPlan, series: Series) -> Result<PolicySpec, TestbedError> {
    if let Some(policy) = plan.policy(series) {
        return Ok(*policy);
    }
    Err(match series {
        Series::IpipeModel => unsupported("the ipipe-model series is not implemented yet"),
        other => unsupported(&format!("series {other} is a VM backend, not a placement")),
    })
}

fn unsupported(what: &str) -> TestbedError {
    TestbedError::Unsupported(what.to_string())
}

/// The per-tenant workload: the manifest's dataset split evenly over the point's tenants.
fn workload_spec(plan: &ExperimentPlan, point: &PointPlan) -> Result<WorkloadSpec, TestbedError> {
    let tenants = u64::from(point.tenants.max(1));
    match &plan.workload {
        Workload::Mica(m) => {
            let records = m.records.div_ceil(tenants).max(1);
            let item_bytes = 24
                + u64::from(m.key_bytes).next_multiple_of(8)
                + u64::from(m.value_bytes).next_multiple_of(8);
            let log_floor = (item_bytes * records * 2).max(TENANT_LOG_BYTES_MIN);
            Ok(WorkloadSpec::Mica(MicaSpec {
                records,
                key_bytes: m.key_bytes,
                value_bytes: m.value_bytes,
                ycsb_workload: m.ycsb_workload,
                distribution: m.distribution,
                buckets: (m.buckets / tenants)
                    .max(TENANT_BUCKETS_MIN)
                    .next_power_of_two(),
                slots: m.slots,
                log_bytes: (m.log_bytes / tenants).max(log_floor).next_power_of_two(),
            }))
        }
        Workload::Btree(b) => Ok(WorkloadSpec::Btree(BtreeSpec {
            keys: b.keys.div_ceil(tenants).max(1),
            node_bytes: b.node_bytes,
            depth: point.tree_depth,
            distribution: b.distribution,
        })),
        Workload::VmCost(_) => Err(unsupported("vm-cost runs in-process, not on the testbed")),
    }
}

/// Loopback.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
