//! From a plan's point to the role configurations of its processes. Every choice the manifest
//! leaves to the testbed is made here, explicitly: tenants split the dataset evenly, clients
//! split the offered load evenly, the hog runs on the cores that serve the series' requests
//! (the host's; the NIC's for the iPipe series, whose actors start on the NIC), client-side
//! policies run at the clients.
//!
//! The configurations hold on any machine, whatever the transport: every path is relative to the
//! role's run directory (the process runs inside it), where it writes its files, reads its
//! timeline ([`TIMELINE_FILE`], written by the launch sequence at the common start) and, for the
//! NIC and the clients, the host's ready file (put there by the sequence once the host is
//! ready). Only the host's listen address depends on where it runs.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use naam_launch::plan::TIMELINE_FILE;

use naam_plan::{Event, ExperimentPlan, PointPlan, PolicySpec, Series, Timing, Workload};
use naam_roles::config::{
    BtreeSpec, CONFIG_SCHEMA_VERSION, ClientConfig, ControlKey, Dataset, EswitchMode, HogConfig,
    HostConfig, MicaSpec, NicConfig, OneSided, Polling, Role, RoleConfig, TimelineSpec,
    WorkloadSpec,
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
    /// The testbed runs the iPipe baseline's series (the simulation testbed and the local
    /// role processes do; real machines not yet: untested there).
    pub ipipe_runs: bool,
}

impl Settings {
    /// Settings for real machines: the user-space eSwitch (no privileges, and NIC workers need
    /// not share the host's SO_REUSEPORT group), blocking workers, verification on, the local
    /// testbed's sampling period, `/dev/shm`.
    pub fn for_machines() -> Settings {
        Settings {
            eswitch: EswitchMode::User,
            polling: Polling::Blocking,
            verify: true,
            sample_period_us: crate::executor::SAMPLE_PERIOD_US,
            shm_dir: PathBuf::from("/dev/shm"),
            ipipe_runs: false,
        }
    }
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
}

/// The role configurations of `point`; `listen_ip` is where the server listens (loopback, its
/// namespace's address, or its machine's LAN address); `run_id` names the point's shared-memory
/// files.
pub fn build(
    plan: &ExperimentPlan,
    point: &PointPlan,
    settings: &Settings,
    listen_ip: IpAddr,
    run_id: &str,
) -> Result<PointConfigs, TestbedError> {
    let Timing::Traffic {
        measure_ms,
        interval_ms,
        ..
    } = plan.timing
    else {
        return Err(unsupported(
            "a vm-cost plan has no traffic to run on the testbed",
        ));
    };
    let policy = point_policy(plan, point.series, settings.ipipe_runs)?;
    let dataset = Dataset {
        workload: workload_spec(plan, point)?,
        tenants: point.tenants.max(1),
        seed: point.seed,
    };
    let role = |role: Role| RoleConfig {
        schema: CONFIG_SCHEMA_VERSION,
        run_id: run_id.to_string(),
        out_dir: PathBuf::from("."),
        timeline: TimelineSpec::File {
            path: PathBuf::from(TIMELINE_FILE),
        },
        role,
    };
    let pinning = Pinning::of(plan, &policy);
    let clients = client_configs(plan, point, settings, &dataset, policy, interval_ms);
    let clients = clients
        .into_iter()
        .map(|c| pinning.client(c))
        .collect::<Vec<_>>();
    // A fresh key per point for the host–NIC control channel (a secret, so drawn from the
    // kernel, not from the plan's seeds; clients never see it).
    let key = ControlKey::fresh().map_err(|e| {
        TestbedError::io(
            std::path::Path::new("/dev/urandom"),
            "draw a control key",
            e,
        )
    })?;
    Ok(PointConfigs {
        host: role(host_config(
            plan, settings, &dataset, policy, listen_ip, key,
        )),
        nic: role(nic_config(plan, settings, &dataset, policy, key)),
        clients: clients.into_iter().map(role).collect(),
        hog: hog_config(plan, measure_ms)
            .map(|h| pinning.hog(h))
            .map(role),
    })
}

/// Where a load-shift point's CPU hog and clients run. The hog congests the cores that serve
/// the series' requests when nothing has moved: the host's for NAAM and the placements, the
/// NIC's for the iPipe series (its actors start on the NIC, and iPipe reacts to NIC overload by
/// migrating them to the host). For iPipe the clients then take the host's cores, the mirror of
/// NAAM's run, where they share the NIC's, so that in both the hog never lands on the clients.
#[derive(Debug, Clone)]
struct Pinning {
    /// `Some((hog, clients))` CPUs for a series whose hog moves to the NIC.
    ipipe: Option<(Vec<u32>, Vec<u32>)>,
}

impl Pinning {
    fn of(plan: &ExperimentPlan, policy: &PolicySpec) -> Pinning {
        let pinning = &plan.roles.pinning;
        let hog = plan
            .events
            .iter()
            .any(|e| matches!(e, Event::CpuHog { .. }));
        let ipipe = hog && naam_roles::ipipe::params_of(policy).is_some();
        Pinning {
            ipipe: ipipe.then(|| (pinning.nic_cpus.clone(), pinning.host_cpus.clone())),
        }
    }

    fn hog(&self, role: Role) -> Role {
        match (role, &self.ipipe) {
            (Role::Hog(h), Some((cpus, _))) => Role::Hog(HogConfig {
                cpus: cpus.clone(),
                ..h
            }),
            (role, _) => role,
        }
    }

    fn client(&self, role: Role) -> Role {
        match (role, &self.ipipe) {
            (Role::Client(c), Some((_, cpus))) if !cpus.is_empty() => Role::Client(ClientConfig {
                cpus: cpus.clone(),
                ..c
            }),
            (role, _) => role,
        }
    }
}

fn host_config(
    plan: &ExperimentPlan,
    settings: &Settings,
    dataset: &Dataset,
    policy: PolicySpec,
    listen_ip: IpAddr,
    control_key: ControlKey,
) -> Role {
    let roles = &plan.roles;
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
        control_key,
        vm_backend: roles.host_vm_backend,
        // On one machine; the inventory executor exports for an off-box NIC.
        rdma_export: false,
        ovs: None,
        nic_link: None,
        rdma_link: None,
    })
}

fn nic_config(
    plan: &ExperimentPlan,
    settings: &Settings,
    dataset: &Dataset,
    policy: PolicySpec,
    control_key: ControlKey,
) -> Role {
    let roles = &plan.roles;
    Role::Nic(NicConfig {
        host_ready: PathBuf::from(naam_roles::host::READY_FILE),
        dataset: dataset.clone(),
        workers: roles.nic_workers,
        cpus: roles.pinning.nic_cpus.clone(),
        access_delay_ns: roles.nic_access_delay_ns,
        core_speed_factor: roles.nic_core_speed_factor,
        polling: settings.polling,
        sample_period_us: settings.sample_period_us,
        control_key,
        vm_backend: roles.nic_vm_backend,
        // On one machine; the inventory executor switches an off-box NIC to RDMA.
        data_path: naam_roles::config::NicDataPath::SharedMemory,
        ipipe: naam_roles::ipipe::params_of(&policy).map(|_| policy),
        rdma_link: None,
    })
}

/// Every client's role: the offered load split evenly, the plan's load steps, its own seed,
/// and a client-side policy when the series runs one.
fn client_configs(
    plan: &ExperimentPlan,
    point: &PointPlan,
    settings: &Settings,
    dataset: &Dataset,
    policy: PolicySpec,
    interval_ms: u64,
) -> Vec<Role> {
    let roles = &plan.roles;
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
    (0..roles.clients)
        .map(|k| {
            Role::Client(ClientConfig {
                index: k,
                host_ready: PathBuf::from(naam_roles::host::READY_FILE),
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
            })
        })
        .collect()
}

/// The CPU hog of a load-shift plan, on the host's cores (see [`Pinning`] for iPipe's),
/// stopping by the measurement's end.
fn hog_config(plan: &ExperimentPlan, measure_ms: u64) -> Option<Role> {
    plan.events.iter().find_map(|e| match e {
        Event::CpuHog {
            start_ms,
            stop_ms,
            threads,
        } => Some(Role::Hog(HogConfig {
            threads: *threads,
            cpus: plan.roles.pinning.host_cpus.clone(),
            start_ms: *start_ms,
            stop_ms: (*stop_ms).min(measure_ms).max(start_ms + 1),
        })),
        Event::LoadStep { .. } => None,
    })
}

/// The steering policy, with its parameters, of a series that is a placement or a policy.
fn point_policy(
    plan: &ExperimentPlan,
    series: Series,
    ipipe_runs: bool,
) -> Result<PolicySpec, TestbedError> {
    if series.is_ipipe() && !ipipe_runs {
        return Err(unsupported(
            "the iPipe baseline's series run on the local and simulation testbeds, not yet on real machines",
        ));
    }
    match plan.policy(series) {
        Some(policy) => Ok(*policy),
        None => Err(unsupported(&format!(
            "series {series} is a VM backend, not a placement"
        ))),
    }
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
                tenant_programs: m.tenant_programs,
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
