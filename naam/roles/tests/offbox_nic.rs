//! The off-box NIC's data path without a device (issue 14): a NIC [`ServerWorker`] over MICA,
//! reaching the host's regions through the roles' [`RemotePath`] — naam-net's `RemoteReader`
//! logic (region map, bounded in-flight READs, completions back to the worker's accesses) over
//! `InProcessVerbs`, which serves READs from a copy of the host's region bytes registered under
//! an rkey and an address, as the host's RNIC would. Every GET is answered and verified against
//! the dataset; a region the host did not export fails its access (an error reply, not a hang).
//! Sans-IO: no socket, no thread, no clock.

mod common;

use std::sync::Arc;

use naam_engine::server::WorkerConfig;
use naam_engine::{Frame, Location, Nanos, RkeySecret};
use naam_engine::{ServerWorker, Status};
use naam_net::remote::{ExportedRegion, InProcessVerbs, RegionMap};
use naam_roles::config::{Dataset, Distribution, YcsbWorkload};
use naam_roles::host::memory;
use naam_roles::serve::{AccessPath, RemotePath};
use naam_roles::workload::{self, Request, ServerWorkload, Verified};

const SEED: u64 = 14;
/// GETs submitted at once (below the worker's in-flight bound of 256 messages).
const GETS: u64 = 200;
/// READs the stand-in verbs keep in flight (fewer than the GETs' accesses: the reader queues).
const VERBS_CAPACITY: usize = 8;
/// Polls before a READ completes.
const VERBS_DELAY_POLLS: u32 = 2;
/// Rounds the driver may take.
const ROUNDS_MAX: usize = 100_000;
/// Where the stand-in "host" maps region `i` (any distinct addresses do).
const ADDR_BASE: u64 = 0x7f00_0000_0000;
const ADDR_STRIDE: u64 = 1 << 32;

fn dataset() -> Dataset {
    common::mica(
        1000,
        512,
        1 << 18,
        YcsbWorkload::C,
        Distribution::ScrambledZipfian,
        SEED,
    )
}

/// The NIC's path: the host's regions copied into the stand-in verbs, minus `withheld`.
fn remote_path(
    table: &naam_engine::RegionTable,
    memory: &memory::HostMemory,
    withheld: Option<u32>,
) -> RemotePath<InProcessVerbs> {
    let mut verbs = InProcessVerbs::new(VERBS_CAPACITY, VERBS_DELAY_POLLS);
    let mut exported = Vec::new();
    for info in table.iter().filter(|i| Some(i.id.0) != withheld) {
        let region = memory.region(info.id).expect("a mapped region");
        let mut bytes = vec![0u8; region.len()];
        assert!(region.read_into(0, &mut bytes));
        let (addr, rkey) = (
            ADDR_BASE + u64::from(info.id.0) * ADDR_STRIDE,
            100 + info.id.0,
        );
        verbs.register(rkey, addr, bytes);
        exported.push(ExportedRegion {
            region: info.id.0,
            addr,
            len: info.len,
            rkey,
        });
    }
    RemotePath::new(verbs, RegionMap::new(&exported).expect("a region map"))
}

/// Serves `GETS` GETs through a NIC worker over `path`; returns (status, verdict) per GET.
fn serve_gets(withheld: Option<u32>) -> Vec<(Status, Option<Verified>)> {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset();
    let server: Arc<dyn ServerWorkload> = Arc::from(workload::server(&ds).unwrap());
    let (table, memory, meta) =
        memory::build(&*server, 1, dir.path(), "offbox", RkeySecret([14; 16])).unwrap();
    let functions =
        naam_roles::host::functions(&*server, 1, naam_roles::config::VmBackend::Interpreter)
            .unwrap();
    let mut path = remote_path(&table, &memory, withheld);
    let table = Arc::new(table);
    let config = WorkerConfig::new(Location::Nic, 1_000_000);
    let mut worker = ServerWorker::new(config, Arc::new(functions), table, Nanos(0)).unwrap();
    let mut client = workload::client(&ds, &meta, 0, SEED, true).unwrap();
    let mut requests = Vec::new();
    for id in 0..GETS {
        let mut request = Request::default();
        client.next(&mut request);
        worker.handle_datagram(
            Nanos(0),
            Nanos(0),
            &common::encode(&request, id, None),
            || 0,
        );
        requests.push(request);
    }
    let mut answers: Vec<Option<(Status, Option<Verified>)>> = vec![None; GETS as usize];
    let mut reply = Vec::new();
    for round in 0..ROUNDS_MAX {
        let now = round as u64 * 1_000;
        while let Some(access) = worker.poll_access() {
            path.start(now, access, &mut worker);
        }
        path.poll_due(now, &mut worker);
        worker.run(Nanos(now), 64);
        while let Some(out) = worker.poll_reply(&mut reply) {
            let Ok(Frame::Reply(r)) = Frame::decode(&reply) else {
                panic!("a reply frame")
            };
            let i = r.request_id.0 as usize;
            assert_eq!(r.location, Location::Nic);
            let _ = out;
            let verdict =
                (r.status == Status::Ok).then(|| client.verify(requests[i].expect, r.payload));
            assert!(
                answers[i].replace((r.status, verdict)).is_none(),
                "GET {i} answered twice"
            );
        }
        if answers.iter().all(Option::is_some) {
            assert_eq!(worker.inflight(), 0);
            assert!(!path.has_pending());
            return answers.into_iter().flatten().collect();
        }
    }
    panic!("GETs unanswered after {ROUNDS_MAX} rounds");
}

#[test]
fn issue_14_an_off_box_nic_serves_verified_gets_through_remote_reads() {
    println!("NAAM_SEED={SEED}");
    let answers = serve_gets(None);
    let correct = answers
        .iter()
        .filter(|a| matches!(a, (Status::Ok, Some(Verified::Correct))))
        .count();
    for (i, a) in answers.iter().enumerate() {
        assert!(
            matches!(a, (Status::Ok, Some(Verified::Correct | Verified::Miss))),
            "GET {i}: {a:?}"
        );
    }
    assert!(
        correct * 10 >= answers.len() * 9,
        "{correct} of {} found",
        answers.len()
    );
}

#[test]
fn issue_14_a_region_the_host_did_not_export_fails_its_accesses() {
    // Region 0 is the tenant's first (MICA's index): every GET reads it first.
    let answers = serve_gets(Some(0));
    assert!(
        answers.iter().all(|(status, _)| *status != Status::Ok),
        "a GET over an unexported region answered: {:?}",
        answers.iter().find(|(s, _)| *s == Status::Ok)
    );
}

/// The host side of the off-box path: exporting its regions fails at start, saying what to
/// check, where there is no RDMA device (here and in CI) or no RDMA support built in.
#[test]
fn issue_14_exporting_the_hosts_regions_fails_at_start_without_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let server: Arc<dyn ServerWorkload> = Arc::from(workload::server(&dataset()).unwrap());
    let (table, memory, _) =
        memory::build(&*server, 1, dir.path(), "export", RkeySecret([14; 16])).unwrap();
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    let message = match naam_roles::rdma::export_host_regions(&memory, &table, ip, Some(ip)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("regions registered on a machine without an RDMA device"),
    };
    assert!(message.contains("rdma_export"), "{message}");
    let expected = if cfg!(feature = "rdma") {
        "no RDMA device"
    } else {
        "without RDMA support"
    };
    assert!(message.contains(expected), "{message}");
}
