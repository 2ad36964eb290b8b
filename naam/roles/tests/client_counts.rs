//! The client role's results file counts the measured phase only (`experiments/SCHEMA.md`):
//! errors, verification failures and misses that happen in warm-up must not appear in
//! `client-<k>.json`. (Issue: a point reported sent 50,136, completed 40,595, errors 19,282.)
//!
//! Real processes' code over real sockets, in one test process: the host role serves MICA on
//! loopback; the client role sends through a proxy that, during warm-up, answers every request
//! itself with a failure (an error reply, an answer that cannot verify, or a MICA miss), and in
//! the measured phase forwards to the host's ingress untouched and relays the host's answers
//! (servers answer the datagram's source, here the proxy).

mod common;

use common::realtime_ns;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use naam_engine::wire::{ErrorCode, ErrorKind, Reply};
use naam_engine::{Frame, Status};
use naam_roles::config::{
    ClientConfig, Dataset, Distribution, HostConfig, OneSided, Role, RoleConfig, Timeline,
    TimelineSpec, YcsbWorkload,
};
use naam_roles::ready::{self, HostReady};

const WARMUP_MS: u64 = 400;
const MEASURE_MS: u64 = 400;
/// The proxy stops failing requests this long before the measured phase, so that no injected
/// failure can reach the client after the boundary (loopback delivers in microseconds).
const INJECT_MARGIN_NS: u64 = 50_000_000;
/// Datagrams the proxy handles at most (the point sends ~1,600 requests).
const PROXIED_MAX: u64 = 100_000;

fn dataset() -> Dataset {
    common::mica(
        2000,
        1024,
        1 << 20,
        YcsbWorkload::B,
        Distribution::ScrambledZipfian,
        7,
    )
}

fn role(out_dir: &Path, timeline: Timeline, role: Role) -> RoleConfig {
    RoleConfig {
        schema: naam_roles::config::CONFIG_SCHEMA_VERSION,
        run_id: format!("counts-{}", std::process::id()),
        out_dir: out_dir.to_path_buf(),
        timeline: TimelineSpec::Fixed(timeline),
        role,
    }
}

fn host_config(shm_dir: &Path) -> HostConfig {
    common::host_config(dataset(), shm_dir, naam_roles::config::ControlKey([1; 16]))
}

fn client_config(host_ready: &Path) -> ClientConfig {
    ClientConfig {
        index: 0,
        host_ready: host_ready.to_path_buf(),
        dataset: dataset(),
        offered_ops_per_s: 2000.0,
        load_steps: Vec::new(),
        interval_ms: 100,
        seed: 11,
        verify: true,
        client_policy: None,
        cpus: Vec::new(),
        inflight_max: 1024,
        timeout_ms: 200,
        one_sided: OneSided::EmulatedRnic,
    }
}

/// The proxy's answer to request `id` during warm-up: in turn an error, a reply that cannot
/// verify (for a GET or a SET), and a MICA miss (a correct answer for a GET).
fn failure(id: u64) -> (Status, &'static [u8]) {
    match id % 3 {
        0 => (
            Status::Error(ErrorCode {
                kind: ErrorKind::FunctionError,
                detail: 77,
            }),
            &[],
        ),
        1 => (Status::Ok, &[0xff]),
        _ => (Status::Ok, &[naam_mica::get::REPLY_MISS]),
    }
}

/// Until `stop`: fails warm-up requests itself, forwards the others to `ingress`.
fn proxy(socket: &UdpSocket, ingress: SocketAddr, inject_until_ns: u64, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_536];
    let mut out = Vec::new();
    let mut client = None;
    for _ in 0..PROXIED_MAX {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        // The server answers the proxy (the datagram's source): relay its answers to the client.
        let Ok(Frame::Invoke(msg)) = Frame::decode(&buf[..n]) else {
            if let Some(client) = client.filter(|&c| c != from) {
                let _ = socket.send_to(&buf[..n], client);
            }
            continue;
        };
        // A client sends each Invoke from its steering key's port and names where it receives.
        let reply_to = msg
            .reply_to
            .map_or(from, |addr| naam_net::socket_addr(&addr));
        client = Some(reply_to);
        if realtime_ns() >= inject_until_ns {
            let _ = socket.send_to(&buf[..n], ingress);
            continue;
        }
        let (status, payload) = failure(msg.request_id.0);
        let reply = Reply {
            request_id: msg.request_id,
            status,
            location: naam_engine::Location::Host,
            steps: 1,
            attempts: 0,
            client_permille: 0,
            payload,
        };
        Frame::Reply(reply).encode(&mut out).unwrap();
        let _ = socket.send_to(&out, reply_to);
    }
}

/// Starts the host role on a thread; returns it and its ready file once it serves.
fn start_host(
    out: &Path,
    shm: &Path,
    timeline: Timeline,
    stop: &'static AtomicBool,
) -> (
    std::thread::JoinHandle<Result<(), naam_roles::RoleError>>,
    HostReady,
) {
    let host_role = role(out, timeline, Role::Host(host_config(shm)));
    let host = std::thread::spawn(move || {
        let Role::Host(h) = &host_role.role else {
            unreachable!()
        };
        naam_roles::host::run(&host_role, h, stop)
    });
    let ready_path = out.join(naam_roles::host::READY_FILE);
    let host_ready: HostReady = ready::wait_for(&ready_path, Duration::from_secs(60)).unwrap();
    (host, host_ready)
}

#[test]
fn warm_up_failures_stay_out_of_the_client_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (out, shm) = (dir.path().join("out"), dir.path().join("shm"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&shm).unwrap();
    let timeline = Timeline {
        start_realtime_ns: realtime_ns() + 2_000_000_000,
        warmup_ms: WARMUP_MS,
        measure_ms: MEASURE_MS,
    };
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let (host, host_ready) = start_host(&out, &shm, timeline, stop);
    let proxy_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    proxy_socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let proxied = HostReady {
        ingress: proxy_socket.local_addr().unwrap(),
        ..host_ready.clone()
    };
    let proxied_path = out.join("proxied.ready.json");
    ready::write_atomic(&proxied_path, &proxied).unwrap();
    let inject_until = timeline.measure_start_realtime_ns() - INJECT_MARGIN_NS;
    let proxy_stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let ingress = host_ready.ingress;
    let proxy = std::thread::spawn(move || proxy(&proxy_socket, ingress, inject_until, proxy_stop));
    let client_role = role(&out, timeline, Role::Client(client_config(&proxied_path)));
    let client = std::thread::spawn(move || {
        let Role::Client(c) = &client_role.role else {
            unreachable!()
        };
        naam_roles::client::run(&client_role, c, proxy_stop)
    });
    let client_result = client.join().unwrap();
    proxy_stop.store(true, Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    proxy.join().unwrap();
    host.join().unwrap().unwrap();
    client_result.unwrap();
    let summary: naam_results::raw::ClientSummary = naam_results::raw::read_json(
        &out.join(naam_results::raw::client_summary_file(0)),
        "client summary",
    )
    .unwrap();
    assert!(
        summary.completed > 300,
        "the measured phase ran: {summary:?}"
    );
    assert!(
        summary.errors.is_empty(),
        "warm-up errors counted in the measured phase: {:?}",
        summary.errors
    );
    assert_eq!(
        summary.verify_failures, 0,
        "warm-up verification failures counted"
    );
    assert!(
        summary.misses * 100 <= summary.completed,
        "warm-up misses counted: {} misses for {} completions",
        summary.misses,
        summary.completed
    );
}

/// Measured phase of the stopped-client test: long enough that the stop lands well inside it.
const STOPPED_MEASURE_MS: u64 = 3000;
/// When the stopped-client test's signal arrives, after the measured phase's start.
const STOP_AFTER_MEASURE_START_MS: u64 = 300;

/// A client that a signal stops in the middle of its measured phase (Ctrl-C reaching the roles)
/// says so: its file carries the measured phase that ran, not the plan's, so the point cannot
/// pass for a full one. (Issue 17: a point cut at 97 % was sealed valid.)
#[test]
fn issue_17_a_client_stopped_early_reports_the_phase_it_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (out, shm) = (dir.path().join("out"), dir.path().join("shm"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&shm).unwrap();
    let timeline = Timeline {
        start_realtime_ns: realtime_ns() + 2_000_000_000,
        warmup_ms: 200,
        measure_ms: STOPPED_MEASURE_MS,
    };
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let (host, host_ready) = start_host(&out, &shm, timeline, stop);
    let ready_path = out.join("direct.ready.json");
    ready::write_atomic(&ready_path, &host_ready).unwrap();
    let client_stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let client_role = role(&out, timeline, Role::Client(client_config(&ready_path)));
    let client = std::thread::spawn(move || {
        let Role::Client(c) = &client_role.role else {
            unreachable!()
        };
        naam_roles::client::run(&client_role, c, client_stop)
    });
    let stop_at_ns = timeline.measure_start_realtime_ns() + STOP_AFTER_MEASURE_START_MS * 1_000_000;
    std::thread::sleep(Duration::from_nanos(
        stop_at_ns.saturating_sub(realtime_ns()),
    ));
    client_stop.store(true, Ordering::SeqCst);
    let client_result = client.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    host.join().unwrap().unwrap();
    client_result.unwrap();
    let summary: naam_results::raw::ClientSummary = naam_results::raw::read_json(
        &out.join(naam_results::raw::client_summary_file(0)),
        "client summary",
    )
    .unwrap();
    let ran_ms = summary
        .stopped_at_ms
        .expect("the client says it was stopped");
    assert!(ran_ms < STOPPED_MEASURE_MS, "{summary:?}");
    assert_eq!(
        summary.measure_ms, ran_ms,
        "the phase that ran, not the plan's"
    );
}

/// Garbage datagrams the garbage test sends to the emulated RNIC in the measured phase.
const GARBAGE_DATAGRAMS: u64 = 1000;
/// Datagrams per burst (then a pause), well inside a default socket receive buffer.
const GARBAGE_BURST: u64 = 20;

/// Issue 17: the host's CPU account covers more than its worker threads, and what the server
/// drops reaches its counters. Only the emulated RNIC receives traffic here (datagrams that are
/// not frames): the workers stay idle, yet the host spent CPU, and every datagram the RNIC read
/// is counted as malformed in `host.counters.json`.
#[test]
fn issue_17_host_cpu_outside_the_workers_and_dropped_datagrams_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (out, shm) = (dir.path().join("out"), dir.path().join("shm"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&shm).unwrap();
    let timeline = Timeline {
        start_realtime_ns: realtime_ns() + 1_500_000_000,
        warmup_ms: 200,
        measure_ms: 1000,
    };
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let (host, host_ready) = start_host(&out, &shm, timeline, stop);
    let send_from_ns = timeline.measure_start_realtime_ns() + 100_000_000;
    std::thread::sleep(Duration::from_nanos(
        send_from_ns.saturating_sub(realtime_ns()),
    ));
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..GARBAGE_DATAGRAMS {
        socket
            .send_to(b"not a NAAM frame", host_ready.rnic)
            .unwrap();
        if i % GARBAGE_BURST == GARBAGE_BURST - 1 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let end_ns = timeline.measure_start_realtime_ns() + timeline.measure_ms * 1_000_000;
    std::thread::sleep(
        Duration::from_nanos(end_ns.saturating_sub(realtime_ns())) + Duration::from_millis(100),
    );
    stop.store(true, Ordering::Relaxed);
    host.join().unwrap().unwrap();
    let counters: naam_roles::host::HostCounters =
        serde_json::from_slice(&std::fs::read(out.join(naam_roles::host::COUNTERS_FILE)).unwrap())
            .unwrap();
    // Loopback loses nothing unless the RNIC thread is starved for a whole receive buffer.
    let malformed = counters.dropped.malformed;
    assert!(
        malformed > 0 && malformed <= GARBAGE_DATAGRAMS,
        "{:?}",
        counters.dropped
    );
    assert_eq!(counters.rnic.malformed, malformed);
    let cpu = counters.cpu.expect("the measured phase was accounted");
    assert!(cpu.rnic_thread_ns > 0, "{cpu:?}");
    assert!(cpu.controller_ns > 0, "{cpu:?}");
    assert!(
        cpu.outside_workers_ns() > 0 && cpu.total_ns() > cpu.workers_ns,
        "{cpu:?}"
    );
    assert_eq!(counters.totals.completions, 0, "the workers served nothing");
}
