//! Issue 18, forged control: the host's control port admits only samples tagged with the run's
//! key, from the NIC's sampling socket, fresh and possible. (A fault campaign cut the host's share
//! from 72 % to 11 % with forged "host congested" samples, and put `queue_delay_ns = 2^64−1` and
//! location "client" into `samples.jsonl` of a point sealed valid.)
//!
//! Real code over real sockets: the host role runs NAAM-adaptive behind the user-space eSwitch
//! with one NIC worker expected. The test sends the campaign's forgeries to the control port — from
//! a stranger, untagged, with a wrong key, replayed, and with impossible values under the right
//! key from the NIC's own address — then one honest NIC sample. Every forgery is counted under
//! its reason; only the honest sample reaches `samples.jsonl`; the steering never moves.

mod common;

use common::realtime_ns;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use naam_engine::wire::LoadSample;
use naam_engine::{Frame, Location, Nanos};
use naam_roles::config::{
    ControlKey, Distribution, HostConfig, PolicySpec, Role, RoleConfig, YcsbWorkload,
};
use naam_roles::control_auth::ControlDrops;
use naam_roles::host::HostCounters;
use naam_roles::ready::{self, HostReady};

const KEY: ControlKey = ControlKey([0x5a; 16]);
/// How long the controller gets to read the datagrams before the host stops (a bound on its
/// 1 ms receive loop, not a measurement).
const SETTLE: Duration = Duration::from_millis(1000);
/// The honest sample's queueing delay (recognisable in `samples.jsonl`).
const HONEST_QUEUE_DELAY_NS: u64 = 1234;

fn host_role(out: &Path, shm: &Path) -> RoleConfig {
    let dataset = common::mica(100, 64, 1 << 16, YcsbWorkload::C, Distribution::Uniform, 18);
    let host = HostConfig {
        nic_workers: 1,
        policy: PolicySpec::default_for(naam_types::PolicyKind::NaamAdaptive),
        ..common::host_config(dataset, shm, KEY)
    };
    common::host_role(format!("forged-{}", std::process::id()), out, 60_000, host)
}

fn sample(location: Location, queue_delay_ns: u64, utilisation_permille: u16) -> LoadSample {
    LoadSample {
        at: Nanos(realtime_ns()),
        location: Some(location),
        queue_delay_ns,
        utilisation_permille,
        queue_len: 0,
        completions: 0,
        period_ns: 1_000_000,
    }
}

fn frame(sample: LoadSample, key: Option<ControlKey>) -> Vec<u8> {
    let mut bytes = Vec::new();
    Frame::Sample(sample).encode(&mut bytes).unwrap();
    if let Some(key) = key {
        key.seal(&mut bytes);
    }
    bytes
}

/// Sends the campaign's forgeries, then one honest sample; returns the drops they must cause.
fn send_forgeries(control: SocketAddr, nic: &UdpSocket, stranger: &UdpSocket) -> ControlDrops {
    let congested_host = sample(Location::Host, 50_000_000, 1000);
    let honest = sample(Location::Nic, HONEST_QUEUE_DELAY_NS, 10);
    let sends: Vec<(&UdpSocket, Vec<u8>)> = vec![
        // A stranger, even with the right key (it cannot have it, but the peer check is first).
        (stranger, frame(congested_host, Some(KEY))),
        (stranger, frame(congested_host, None)),
        // The NIC's address, untagged or tagged with another key.
        (nic, frame(congested_host, None)),
        (nic, frame(congested_host, Some(ControlKey([0xa5; 16])))),
        (nic, b"garbage".to_vec()),
        // The right key and address, impossible values: the host's location, the client's, an
        // impossible queueing delay, utilisation above 100 %.
        (nic, frame(congested_host, Some(KEY))),
        (nic, frame(sample(Location::Client, 1, 1), Some(KEY))),
        (nic, frame(sample(Location::Nic, u64::MAX, 1), Some(KEY))),
        (nic, frame(sample(Location::Nic, 1, 1001), Some(KEY))),
        // The honest sample, then its replay.
        (nic, frame(honest, Some(KEY))),
        (nic, frame(honest, Some(KEY))),
    ];
    for (socket, bytes) in &sends {
        socket.send_to(bytes, control).unwrap();
    }
    ControlDrops {
        unknown_peer: 2,
        bad_tag: 3,
        undecodable: 0,
        stale: 1,
        out_of_range: 4,
    }
}

#[test]
fn issue_18_forged_and_impossible_samples_change_nothing_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (out, shm) = (dir.path().join("out"), dir.path().join("shm"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&shm).unwrap();
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let role = host_role(&out, &shm);
    let host = std::thread::spawn(move || {
        let Role::Host(h) = &role.role else {
            unreachable!()
        };
        naam_roles::host::run(&role, h, stop)
    });
    let ready_path = out.join(naam_roles::host::READY_FILE);
    let host_ready: HostReady = ready::wait_for(&ready_path, Duration::from_secs(60)).unwrap();
    // The NIC's sampling socket is worker 0's, on the first address the host reserved for it.
    let nic = UdpSocket::bind(host_ready.nic_listen[0]).unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let expected = send_forgeries(host_ready.control, &nic, &stranger);
    std::thread::sleep(SETTLE);
    stop.store(true, Ordering::Relaxed);
    host.join().unwrap().unwrap();

    let counters: HostCounters =
        naam_results::raw::read_json(&out.join(naam_roles::host::COUNTERS_FILE), "counters")
            .unwrap();
    assert_eq!(counters.control_drops, expected);
    let samples: Vec<naam_results::raw::LoadSample> =
        naam_results::raw::read_jsonl(&out.join(naam_results::raw::SAMPLES_FILE), "samples")
            .unwrap();
    let from_the_port: Vec<_> = samples
        .iter()
        .filter(|s| s.location != naam_results::raw::Location::Host)
        .collect();
    assert_eq!(from_the_port.len(), 1, "{from_the_port:?}");
    assert_eq!(from_the_port[0].queue_delay_ns, HONEST_QUEUE_DELAY_NS);
    assert!(
        samples.iter().all(|s| s.queue_delay_ns < 50_000_000),
        "a forged queueing delay entered the samples"
    );
    let changes: Vec<naam_results::raw::SteeringChange> =
        naam_results::raw::read_jsonl(&out.join(naam_results::raw::STEERING_FILE), "steering")
            .unwrap();
    assert!(changes.is_empty(), "the steering moved: {changes:?}");
}
