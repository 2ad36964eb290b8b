//! Issue 18's fault campaign, garbage datagrams: while a local point runs (host, emulated NIC,
//! one verifying client), a stranger sends seeded garbage at a bounded rate to every port the
//! server side listens on — the eSwitch's ingress, the RNIC, the controller and each NIC worker.
//! Half the datagrams are random bytes, half start with a valid frame header (magic, version, a
//! random kind) followed by random bytes, so the decoders past the header are exercised too.
//! The point must finish with every answer verified, and the garbage must be counted, not
//! served and not lost silently.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use naam_engine::wire::{MAGIC, WIRE_VERSION};
use naam_executors::LocalExecutor;
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, Variant};
use naam_results::raw;
use naam_roles::host::HostCounters;
use naam_roles::nic::NicCounters;
use naam_roles::ready::{self, HostReady, NicReady};
use naam_roles::workload::Mix;

/// Garbage datagrams per second, all ports together (the client offers 2000 requests/s).
const GARBAGE_PER_S: u64 = 1000;
/// Most garbage datagrams sent (bounds the loop whatever the run's length).
const GARBAGE_MAX: u64 = 5000;
/// Longest garbage datagram.
const GARBAGE_BYTES_MAX: usize = 1400;
/// How long the injector waits for the roles' ready files.
const READY_WAIT: Duration = Duration::from_secs(60);
const SEED: u64 = 18;

fn plan() -> ExperimentPlan {
    ManifestBuilder::new(ExperimentId::MicaYcsbB)
        .seed(SEED)
        .series(&["naam-adaptive"])
        .workload("value_bytes", 8)
        .workload("buckets", 2048)
        .timing(200, 2000, 100)
        .offered(&[2000])
        .plan(Variant::Quick)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Seeded garbage (the workloads' splitmix64 stream; the seed is printed).
struct Garbage(Mix);

impl Garbage {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn datagram(&mut self, n: u64) -> Vec<u8> {
        let len = (self.next() % GARBAGE_BYTES_MAX as u64) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| self.next() as u8).collect();
        if n % 2 == 1 && bytes.len() >= 4 {
            bytes[..2].copy_from_slice(&MAGIC.to_le_bytes());
            bytes[2] = WIRE_VERSION;
        }
        bytes
    }
}

/// Every port the server side listens on, from the roles' ready files.
fn server_ports(roles: &Path) -> Vec<SocketAddr> {
    let host: HostReady = ready::wait_for(&roles.join("host/host.ready.json"), READY_WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let nic: NicReady = ready::wait_for(&roles.join("nic/nic.ready.json"), READY_WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut ports = vec![host.ingress, host.rnic, host.control];
    ports.extend(nic.listen);
    ports.sort();
    ports.dedup();
    ports
}

/// Sends garbage round-robin to `ports` until `done` or [`GARBAGE_MAX`]; returns the count.
fn inject(ports: &[SocketAddr], done: &AtomicBool) -> u64 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut garbage = Garbage(Mix(SEED));
    let started = Instant::now();
    let mut sent = 0;
    while !done.load(Ordering::SeqCst) && sent < GARBAGE_MAX {
        let due = Duration::from_micros(sent * 1_000_000 / GARBAGE_PER_S);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let to = ports[(sent % ports.len() as u64) as usize];
        let _ = socket.send_to(&garbage.datagram(sent), to);
        sent += 1;
    }
    sent
}

#[test]
fn garbage_at_every_server_port_is_counted_and_every_answer_verified() {
    println!("garbage seed {SEED}");
    let plan = plan();
    let options = common::local_options();
    let out = tempfile::tempdir().unwrap();
    let done = AtomicBool::new(false);
    let (result, (ports, sent)) = std::thread::scope(|scope| {
        let injector = scope.spawn(|| {
            let ports = server_ports(&out.path().join("roles"));
            let sent = inject(&ports, &done);
            (ports, sent)
        });
        let result = LocalExecutor::new(options).run(&plan, &plan.points[0], out.path());
        done.store(true, Ordering::SeqCst);
        (result, injector.join().unwrap())
    });
    result.unwrap_or_else(|e| panic!("the point failed under garbage: {e}"));
    println!("sent {sent} garbage datagrams to {ports:?}");
    assert!(
        sent > 100,
        "the injector ran while the point did ({sent} datagrams)"
    );
    check_client(out.path());
    check_counted(out.path());
}

fn check_client(out: &Path) {
    let summary: raw::ClientSummary =
        raw::read_json(&out.join(raw::client_summary_file(0)), "client").unwrap();
    assert_eq!(summary.verify_failures, 0, "{summary:?}");
    assert!(summary.completed > 0, "{summary:?}");
}

/// The host, its RNIC, its controller and the NIC each counted garbage they received.
fn check_counted(out: &Path) {
    let host: HostCounters =
        raw::read_json(&out.join("roles/host/host.counters.json"), "host counters").unwrap();
    let nic: NicCounters =
        raw::read_json(&out.join("roles/nic/nic.counters.json"), "nic counters").unwrap();
    let control = &host.control_drops;
    let control_dropped =
        control.unknown_peer + control.bad_tag + control.undecodable + control.stale;
    println!(
        "counted: host malformed {}, rnic malformed {}, control dropped {control_dropped}, \
         nic malformed {}",
        host.malformed, host.rnic.malformed, nic.malformed
    );
    assert!(host.rnic.malformed > 0, "the RNIC counts garbage");
    assert!(control_dropped > 0, "the controller counts garbage");
    assert!(
        host.malformed + nic.malformed > 0,
        "the workers count garbage (host {}, NIC {})",
        host.malformed,
        nic.malformed
    );
}
