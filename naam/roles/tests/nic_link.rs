//! The host–NIC control link (issue 14): behind a BlueField-2's switch the Arm side holds the
//! server's address too, so the NIC's load samples go over a link of their own. Here on loopback:
//! the server listens on 127.0.0.1, the host's end of the link is 127.0.0.2 and the NIC's
//! 127.0.0.3. A real NIC role's samples reach the host's controller over the link; a correctly
//! tagged sample from the server's own address (where the NIC sent from without the link) is
//! dropped and counted.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use naam_engine::wire::LoadSample;
use naam_engine::{Frame, Location, Nanos};
use naam_roles::config::{
    ControlKey, Distribution, HostConfig, NicConfig, NicLink, PolicySpec, Polling, Role,
    RoleConfig, VmBackend, YcsbWorkload,
};
use naam_roles::control_auth::ControlDrops;
use naam_roles::host::HostCounters;
use naam_roles::ready::{self, HostReady};

const KEY: ControlKey = ControlKey([0x4c; 16]);
/// The host's end of the link.
const HOST_END: [u8; 4] = [127, 0, 0, 2];
/// The NIC's end of the link.
const NIC_END: [u8; 4] = [127, 0, 0, 3];
/// The NIC's sampling period (µs): 1 ms, so a second holds hundreds of samples.
const SAMPLE_PERIOD_US: u64 = 1000;
/// How long the NIC serves (a bound, not a measurement).
const NIC_RUN: Duration = Duration::from_millis(1000);
/// Samples the host must have received from the NIC in [`NIC_RUN`]: far fewer than the ~1000
/// periods, so a loaded machine's stalls do not fail the test, but more than a stray one.
const NIC_SAMPLES_MIN: usize = 20;

fn dataset() -> naam_roles::config::Dataset {
    common::mica(100, 64, 1 << 16, YcsbWorkload::C, Distribution::Uniform, 14)
}

fn link() -> NicLink {
    NicLink {
        host_ip: IpAddr::from(HOST_END),
        nic_ip: IpAddr::from(NIC_END),
    }
}

fn host_role(out: &Path, shm: &Path) -> RoleConfig {
    let host = HostConfig {
        nic_workers: 1,
        policy: PolicySpec::default_for(naam_types::PolicyKind::NaamAdaptive),
        sample_period_us: SAMPLE_PERIOD_US,
        nic_link: Some(link()),
        ..common::host_config(dataset(), shm, KEY)
    };
    common::host_role(format!("link-{}", std::process::id()), out, 60_000, host)
}

fn nic_role(out: &Path, host_ready: &Path) -> RoleConfig {
    let nic = NicConfig {
        host_ready: host_ready.to_path_buf(),
        dataset: dataset(),
        workers: 1,
        cpus: Vec::new(),
        access_delay_ns: 0,
        core_speed_factor: 1.0,
        polling: Polling::Blocking,
        sample_period_us: SAMPLE_PERIOD_US,
        control_key: KEY,
        vm_backend: VmBackend::Interpreter,
        data_path: Default::default(),
        ipipe: None,
        rdma_link: None,
    };
    let template = host_role(out, out);
    RoleConfig {
        run_id: format!("link-nic-{}", std::process::id()),
        role: Role::Nic(nic),
        ..template
    }
}

/// A sample the NIC could have sent, tagged with the run's key.
fn sealed_nic_sample() -> Vec<u8> {
    let sample = LoadSample {
        at: Nanos(common::realtime_ns()),
        location: Some(Location::Nic),
        queue_delay_ns: 1,
        utilisation_permille: 1,
        queue_len: 0,
        completions: 0,
        period_ns: 1_000_000,
    };
    let mut bytes = Vec::new();
    Frame::Sample(sample).encode(&mut bytes).unwrap();
    KEY.seal(&mut bytes);
    bytes
}

fn dirs(root: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let (host_out, nic_out, shm) = (root.join("host"), root.join("nic"), root.join("shm"));
    for d in [&host_out, &nic_out, &shm] {
        std::fs::create_dir_all(d).unwrap();
    }
    (host_out, nic_out, shm)
}

#[test]
fn issue_14_nic_samples_reach_the_controller_over_the_host_nic_link() {
    let dir = tempfile::tempdir().unwrap();
    let (host_out, nic_out, shm) = dirs(dir.path());
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let host_config = host_role(&host_out, &shm);
    let host = std::thread::spawn(move || {
        let Role::Host(h) = &host_config.role else {
            unreachable!()
        };
        naam_roles::host::run(&host_config, h, stop)
    });
    let ready_path = host_out.join(naam_roles::host::READY_FILE);
    let host_ready: HostReady = ready::wait_for(&ready_path, Duration::from_secs(60)).unwrap();
    assert_eq!(host_ready.control.ip(), IpAddr::from(HOST_END));
    let source = SocketAddr::new(IpAddr::from(NIC_END), host_ready.ingress.port());
    assert_eq!(host_ready.control_source, Some(source));

    let nic_stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let nic_config = nic_role(&nic_out, &ready_path);
    let nic = std::thread::spawn(move || {
        let Role::Nic(n) = &nic_config.role else {
            unreachable!()
        };
        naam_roles::nic::run(&nic_config, n, nic_stop)
    });
    // Where the NIC sent from without the link: the server's own address. Tagged right, it is
    // still refused.
    let server_address = UdpSocket::bind((host_ready.ingress.ip(), 0)).unwrap();
    server_address
        .send_to(&sealed_nic_sample(), host_ready.control)
        .unwrap();
    std::thread::sleep(NIC_RUN);
    nic_stop.store(true, Ordering::Relaxed);
    nic.join().unwrap().unwrap();
    stop.store(true, Ordering::Relaxed);
    host.join().unwrap().unwrap();

    let counters: HostCounters =
        naam_results::raw::read_json(&host_out.join(naam_roles::host::COUNTERS_FILE), "counters")
            .unwrap();
    assert_eq!(
        counters.control_drops,
        ControlDrops {
            unknown_peer: 1,
            ..ControlDrops::default()
        }
    );
    let samples: Vec<naam_results::raw::LoadSample> =
        naam_results::raw::read_jsonl(&host_out.join(naam_results::raw::SAMPLES_FILE), "samples")
            .unwrap();
    let from_nic = samples
        .iter()
        .filter(|s| s.location == naam_results::raw::Location::Nic)
        .count();
    assert!(
        from_nic >= NIC_SAMPLES_MIN,
        "{from_nic} NIC samples reached the controller (at least {NIC_SAMPLES_MIN} expected)"
    );
}

#[test]
fn issue_14_a_nic_link_with_one_address_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = host_role(dir.path(), dir.path());
    let Role::Host(h) = &mut config.role else {
        unreachable!()
    };
    h.nic_link = Some(NicLink {
        host_ip: IpAddr::from(HOST_END),
        nic_ip: IpAddr::from(HOST_END),
    });
    let path = dir.path().join("role.json");
    config.write(&path).unwrap();
    let err = RoleConfig::read(&path).unwrap_err().to_string();
    assert!(
        err.contains("`nic_link` host_ip 127.0.0.2 and nic_ip 127.0.0.2 must be two distinct"),
        "{err}"
    );
}
