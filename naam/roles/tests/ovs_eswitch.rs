//! The host role with `eswitch = "ovs"` (issue 14): it programs an Open vSwitch bridge through
//! naam-net's `OvsEswitch`, so it fails at start, saying what is missing, when the `ovs` section
//! is absent or no OpenFlow listener answers (naam-net's `tests/ovs.rs` runs the backend against
//! a real `ovs-vswitchd`).

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;

use naam_roles::config::{
    ControlKey, Distribution, EswitchMode, HostConfig, OvsSwitch, PolicySpec, Role, RoleConfig,
    YcsbWorkload,
};

fn host_role(out: &Path, shm: &Path, ovs: Option<OvsSwitch>) -> RoleConfig {
    let dataset = common::mica(100, 64, 1 << 16, YcsbWorkload::C, Distribution::Uniform, 14);
    let host = HostConfig {
        nic_workers: 1,
        policy: PolicySpec::default_for(naam_types::PolicyKind::NaamAdaptive),
        eswitch: EswitchMode::Ovs,
        ovs,
        ..common::host_config(dataset, shm, ControlKey([0x14; 16]))
    };
    common::host_role(format!("ovs-{}", std::process::id()), out, 1_000, host)
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
