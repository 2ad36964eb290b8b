//! Set-up shared by the roles' integration tests: a small one-tenant MICA dataset and a host
//! role's configuration with the defaults these tests have in common (each test overrides what it
//! is about: policy, eSwitch, NIC workers, Open vSwitch).
#![allow(dead_code)] // each test uses part of it

use std::path::Path;

use naam_roles::config::{
    ControlKey, Dataset, Distribution, EswitchMode, HostConfig, MicaSpec, PolicySpec, Polling,
    Role, RoleConfig, Timeline, TimelineSpec, VmBackend, WorkloadSpec, YcsbWorkload,
};

/// Nanoseconds on CLOCK_REALTIME (the clock of role timelines).
pub fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// One tenant's MICA table: `records` 8-byte keys with 16-byte values in `buckets` buckets of
/// 7 slots and a `log_bytes` circular log, loaded from `seed`, asked under `ycsb_workload`.
pub fn mica(
    records: u64,
    buckets: u64,
    log_bytes: u64,
    ycsb_workload: YcsbWorkload,
    distribution: Distribution,
    seed: u64,
) -> Dataset {
    Dataset {
        workload: WorkloadSpec::Mica(MicaSpec {
            records,
            key_bytes: 8,
            value_bytes: 16,
            ycsb_workload,
            distribution,
            buckets,
            slots: 7,
            log_bytes,
            tenant_programs: Default::default(),
        }),
        tenants: 1,
        seed,
    }
}

/// A host on loopback with one worker serving `dataset` at the host (static placement), no NIC
/// workers, behind the user-space eSwitch, its regions in `shm`, its control channel keyed with
/// `control_key`.
pub fn host_config(dataset: Dataset, shm: &Path, control_key: ControlKey) -> HostConfig {
    HostConfig {
        listen_ip: [127, 0, 0, 1].into(),
        ingress_port: 0,
        workers: 1,
        cpus: Vec::new(),
        rnic_cpus: Vec::new(),
        nic_workers: 0,
        dataset,
        policy: PolicySpec::Host,
        eswitch: EswitchMode::User,
        sample_period_us: 1000,
        polling: Polling::Blocking,
        shm_dir: shm.to_path_buf(),
        control_key,
        vm_backend: VmBackend::Interpreter,
        rdma_export: false,
        ovs: None,
        nic_link: None,
        rdma_link: None,
    }
}

/// The host role's configuration: run `run_id`, files in `out`, starting now with no warm-up and
/// a measured phase of `measure_ms`.
pub fn host_role(run_id: String, out: &Path, measure_ms: u64, host: HostConfig) -> RoleConfig {
    RoleConfig {
        schema: naam_roles::config::CONFIG_SCHEMA_VERSION,
        run_id,
        out_dir: out.to_path_buf(),
        timeline: TimelineSpec::Fixed(Timeline {
            start_realtime_ns: realtime_ns(),
            warmup_ms: 0,
            measure_ms,
        }),
        role: Role::Host(host),
    }
}

/// `request` as an Invoke frame with request id `id`, naming `reply_to` as its reply address.
pub fn encode(
    request: &naam_roles::workload::Request,
    id: u64,
    reply_to: Option<std::net::SocketAddr>,
) -> Vec<u8> {
    use naam_engine::{Frame, FunctionId, Invoke, RequestId};
    let invoke = Invoke {
        reply_to: reply_to.map(naam_net::reply_addr),
        ..Invoke::new_message(
            naam_roles::workload::tenant_id(request.tenant),
            FunctionId(request.function),
            RequestId(id),
            &request.args,
            request.descriptors,
        )
    };
    let mut bytes = Vec::new();
    Frame::Invoke(invoke).encode(&mut bytes).unwrap();
    bytes
}
