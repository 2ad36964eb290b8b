//! Issue 18, no reflection: a server answers the datagram's source, never a reply address
//! written inside a request by its sender for another host (one on the sender's own host is
//! honoured since issue 14: clients send from steering ports and name their receive port). (A fault campaign found 193 replies sent to a
//! third-party address named by forged requests: a reflection/amplification vector.)
//!
//! Real code over real sockets, in one test process: the host role serves MICA on loopback behind
//! the user-space eSwitch and (as root) the kernel eSwitch. An attacker socket sends real MICA
//! GETs whose reply address names a third-party socket the test owns, then one plain GET as a
//! sentinel. The host has one worker, which answers in arrival order: once the sentinel's answer
//! is in, every forged request's answer has been sent. The attacker gets every answer (each
//! verified against the dataset) and the third party gets nothing.

mod common;

use std::net::UdpSocket;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use naam_engine::{Frame, RequestId, Status};
use naam_roles::config::{
    Dataset, Distribution, EswitchMode, HostConfig, Role, RoleConfig, YcsbWorkload,
};
use naam_roles::host::HostCounters;
use naam_roles::ready::{self, HostReady};
use naam_roles::workload::{self, Request, Verified};

/// Forged requests sent (each names the third party as its reply address).
const FORGED: u64 = 64;
/// Longest wait for the attacker's answers (a bound, not a measurement).
const ANSWERS_TIMEOUT: Duration = Duration::from_secs(10);
const SEED: u64 = 18;

fn dataset() -> Dataset {
    common::mica(
        500,
        256,
        1 << 18,
        YcsbWorkload::C,
        Distribution::ScrambledZipfian,
        SEED,
    )
}

fn host_role(out: &Path, shm: &Path, eswitch: EswitchMode) -> RoleConfig {
    let host = HostConfig {
        eswitch,
        ..common::host_config(dataset(), shm, naam_roles::config::ControlKey([1; 16]))
    };
    let run_id = format!("reflect-{}-{eswitch:?}", std::process::id());
    common::host_role(run_id, out, 60_000, host)
}

/// Receives `count` replies on `socket` and checks each against what its request expected.
fn receive_verified(
    socket: &UdpSocket,
    expected: &[(Request, u64)],
    check: impl Fn(&Request, &[u8]) -> Verified,
) {
    let deadline = Instant::now() + ANSWERS_TIMEOUT;
    let mut answered = vec![false; expected.len()];
    let mut buf = vec![0u8; 65_536];
    while answered.iter().any(|a| !a) {
        assert!(Instant::now() < deadline, "answers missing: {answered:?}");
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        let Ok(Frame::Reply(reply)) = Frame::decode(&buf[..n]) else {
            panic!("the attacker got something other than a reply")
        };
        let index = expected
            .iter()
            .position(|(_, id)| RequestId(*id) == reply.request_id)
            .expect("a reply to a request the attacker sent");
        assert_eq!(reply.status, Status::Ok, "request {index}");
        let verdict = check(&expected[index].0, reply.payload);
        assert!(
            matches!(verdict, Verified::Correct | Verified::Miss),
            "request {index}: {verdict:?}"
        );
        assert!(!answered[index], "request {index} answered twice");
        answered[index] = true;
    }
}

fn forged_replies_reach_nobody_but_the_sender(eswitch: EswitchMode) -> HostCounters {
    println!("NAAM_SEED={SEED} eswitch={eswitch:?}");
    let dir = tempfile::tempdir().unwrap();
    let (out, shm) = (dir.path().join("out"), dir.path().join("shm"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&shm).unwrap();
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let role = host_role(&out, &shm, eswitch);
    let host = std::thread::spawn(move || {
        let Role::Host(h) = &role.role else {
            unreachable!()
        };
        naam_roles::host::run(&role, h, stop)
    });
    let ready_path = out.join(naam_roles::host::READY_FILE);
    let host_ready: HostReady = ready::wait_for(&ready_path, Duration::from_secs(60)).unwrap();
    let mut client = workload::client(&dataset(), &host_ready.dataset, 0, SEED, true).unwrap();

    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    attacker
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    // Another host: a reply address on the sender's own host is honoured (a client names the
    // port it receives on, since it sends from its steering key's port; issue 14).
    let third_party = UdpSocket::bind("127.0.0.2:0").unwrap();
    let victim = third_party.local_addr().unwrap();
    let mut sent = Vec::new();
    for id in 0..=FORGED {
        let mut request = Request::default();
        client.next(&mut request);
        // The last one is the sentinel: no reply address at all.
        let reply_to = (id < FORGED).then_some(victim);
        attacker
            .send_to(&common::encode(&request, id, reply_to), host_ready.ingress)
            .unwrap();
        sent.push((request, id));
    }
    receive_verified(&attacker, &sent, |r, payload| {
        client.verify(r.expect, payload)
    });

    third_party.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    let reflected = third_party.recv_from(&mut buf);
    assert!(
        reflected.is_err(),
        "a reply was reflected to the third party: {reflected:?}"
    );
    stop.store(true, Ordering::Relaxed);
    host.join().unwrap().unwrap();
    let counters: HostCounters =
        naam_results::raw::read_json(&out.join(naam_roles::host::COUNTERS_FILE), "host counters")
            .unwrap();
    assert_eq!(counters.unanswerable, 0);
    counters
}

#[test]
fn issue_18_forged_reply_addresses_are_ignored_behind_the_user_switch() {
    let counters = forged_replies_reach_nobody_but_the_sender(EswitchMode::User);
    // The switch overwrites the forged address with the datagram's source before the worker
    // sees it: nothing left for the worker to refuse.
    assert_eq!(counters.reply_to_refused, 0);
}

#[test]
fn issue_18_forged_reply_addresses_are_refused_and_counted_behind_the_kernel_switch() {
    // SAFETY: geteuid takes no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test loads the kernel eSwitch (BPF) and needs root; the project's test command \
         (scripts/test.sh) runs as root"
    );
    let counters = forged_replies_reach_nobody_but_the_sender(EswitchMode::Kernel);
    assert_eq!(counters.reply_to_refused, FORGED);
}
