//! The host role with `eswitch = "ovs"` (issue 14): it programs an Open vSwitch bridge through
//! naam-net's `OvsEswitch`, so it fails at start, saying what is missing, when the `ovs` section
//! is absent or no OpenFlow listener answers (naam-net's `tests/ovs.rs` runs the backend against
//! a real `ovs-vswitchd`).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use naam_roles::config::{
    ControlKey, Dataset, Distribution, EswitchMode, HostConfig, MicaSpec, OvsSwitch, PolicySpec,
    Polling, Role, RoleConfig, Timeline, TimelineSpec, WorkloadSpec, YcsbWorkload,
};

fn realtime_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn host_role(out: &Path, shm: &Path, ovs: Option<OvsSwitch>) -> RoleConfig {
    RoleConfig {
        schema: naam_roles::config::CONFIG_SCHEMA_VERSION,
        run_id: format!("ovs-{}", std::process::id()),
        out_dir: out.to_path_buf(),
        timeline: TimelineSpec::Fixed(Timeline {
            start_realtime_ns: realtime_ns(),
            warmup_ms: 0,
            measure_ms: 1_000,
        }),
        role: Role::Host(HostConfig {
            listen_ip: [127, 0, 0, 1].into(),
            ingress_port: 0,
            workers: 1,
            cpus: Vec::new(),
            rnic_cpus: Vec::new(),
            nic_workers: 1,
            dataset: Dataset {
                workload: WorkloadSpec::Mica(MicaSpec {
                    records: 100,
                    key_bytes: 8,
                    value_bytes: 16,
                    ycsb_workload: YcsbWorkload::C,
                    distribution: Distribution::Uniform,
                    buckets: 64,
                    slots: 7,
                    log_bytes: 1 << 16,
                    tenant_programs: Default::default(),
                }),
                tenants: 1,
                seed: 14,
            },
            policy: PolicySpec::default_for(naam_types::PolicyKind::NaamAdaptive),
            eswitch: EswitchMode::Ovs,
            sample_period_us: 1000,
            polling: Polling::Blocking,
            shm_dir: shm.to_path_buf(),
            control_key: ControlKey([0x14; 16]),
            vm_backend: naam_roles::config::VmBackend::Interpreter,
            rdma_export: false,
            ovs,
        }),
    }
}

fn start_error(ovs: Option<OvsSwitch>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (out, shm) = (dir.path().join("out"), dir.path().join("shm"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&shm).unwrap();
    let role = host_role(&out, &shm, ovs);
    let Role::Host(h) = &role.role else {
        unreachable!()
    };
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    match naam_roles::host::run(&role, h, stop) {
        Err(e) => e.to_string(),
        Ok(()) => panic!("the host ran without an Open vSwitch to program"),
    }
}

#[test]
fn issue_14_an_ovs_host_fails_at_start_without_its_switch() {
    let missing = start_error(None);
    assert!(
        missing.contains("needs the host's `ovs` section"),
        "{missing}"
    );
    // A port nothing listens on (bound and released by this test).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let unreachable = start_error(Some(OvsSwitch {
        openflow: closed,
        uplink_port: 1,
        host_port: 2,
        nic_port: 3,
    }));
    assert!(
        unreachable.contains("Open vSwitch eSwitch: connecting to Open vSwitch at"),
        "{unreachable}"
    );
}
