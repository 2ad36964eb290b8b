//! The iPipe baseline on the simulation testbed: the same client sessions (YCSB-B over MICA,
//! every answer verified) against iPipe's runtime with native actors, one per tenant; the same
//! raw files, byte-identical for the same seed. Seeded: `NAAM_SEED` replays other draws.

use std::path::{Path, PathBuf};

use naam_roles::config::{Dataset, Distribution, MicaSpec, WorkloadSpec, YcsbWorkload};
use naam_sim::point::{SimClient, SimOutcome, SimPoint, SimPointConfig};
use naam_sim::profile::CostProfile;
use naam_types::{PolicyKind, PolicySpec};

const MS: u64 = 1_000_000;
/// Completions the server's and the clients' phase boundaries may see differently, in percent
/// of the clients' (requests in flight at the measured phase's start or end); YCSB-B's 5 % SETs
/// lie outside it.
const BOUNDARY_SLACK_PERCENT: u64 = 2;

fn seed() -> u64 {
    let seed = std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1b1b_0013);
    eprintln!("NAAM_SEED={seed}");
    seed
}

fn config(policy: PolicyKind, tenants: u32, offered_ops_per_s: f64, seed: u64) -> SimPointConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    SimPointConfig {
        profile: CostProfile::load(&dir, "bf2-r7525").unwrap(),
        dataset: Dataset {
            workload: WorkloadSpec::Mica(MicaSpec {
                records: 2000,
                key_bytes: 8,
                value_bytes: 8,
                ycsb_workload: YcsbWorkload::B,
                distribution: Distribution::ScrambledZipfian,
                buckets: 1024,
                slots: 7,
                log_bytes: 1 << 20,
                tenant_programs: Default::default(),
            }),
            tenants,
            seed,
        },
        policy: PolicySpec::default_for(policy),
        clients: SimClient::even(4, offered_ops_per_s, seed),
        warmup_ns: 10 * MS,
        measure_ns: 40 * MS,
        interval_ns: 10 * MS,
        seed,
        sample_period_ns: MS,
        timeout_ns: 100 * MS,
        inflight_max: 4096,
        hog: None,
    }
}

fn run(config: SimPointConfig, dir: &Path) -> SimOutcome {
    SimPoint::new(config).unwrap().run(dir).unwrap()
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                PathBuf::from(p.file_name().unwrap()),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Every client completed requests, with no error and no wrong answer; the measured
/// completions are the NIC's and the host's.
fn assert_verified(outcome: &SimOutcome) -> u64 {
    let mut completed = 0;
    for c in &outcome.clients {
        assert!(c.errors.is_empty(), "client {}: {:?}", c.client, c.errors);
        assert_eq!(c.verify_failures, 0, "client {}", c.client);
        assert!(c.completed > 0, "client {} completed nothing", c.client);
        completed += c.completed;
    }
    let ipipe = outcome.record.ipipe.as_ref().expect("iPipe served");
    assert!(ipipe.failures.is_empty(), "{:?}", ipipe.failures);
    completed
}

#[test]
fn mica_ycsb_b_through_the_simulated_ipipe_nic_verifies_every_answer() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(config(PolicyKind::Ipipe, 1, 100_000.0, seed), dir.path());
    let completed = assert_verified(&outcome);
    let [host, nic, client] = outcome.record.steered;
    assert_eq!((host, client), (0, 0), "every request enters the NIC");
    assert!(
        nic >= completed,
        "{nic} requests entered, {completed} completed"
    );
    // At 100 kops/s the NIC's seven FCFS cores keep up: no actor migrates, the NIC answers all
    // (SETs included: the actor owns its table and applies them itself).
    let ipipe = outcome.record.ipipe.as_ref().unwrap();
    assert_eq!(ipipe.migrations_to_host, 0, "{ipipe:?}");
    assert_eq!(outcome.server.host.completions, 0);
    eprintln!("server {:?}, clients completed {completed}", outcome.server);
    // Every completion is counted where it ran, SETs included (within the requests in flight
    // at the measured phase's two boundaries).
    let served = outcome.server.nic.completions + outcome.server.host.completions;
    assert!(
        served.abs_diff(completed) * 100 <= completed * BOUNDARY_SLACK_PERCENT,
        "server.json counted {served}, the clients {completed}"
    );
    assert_eq!(ipipe.actors, 1);
    assert_eq!(ipipe.cores, [8, 8]);
    let testbed = std::fs::read_to_string(dir.path().join("testbed.json")).unwrap();
    assert!(
        testbed.contains("simulated (profile bf2-r7525)"),
        "{testbed}"
    );
    assert!(testbed.contains("\"isolation\": \"trusted\""), "{testbed}");
}

#[test]
fn a_process_per_tenant_point_is_a_function_of_its_seed() {
    let seed = seed();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let kind = PolicyKind::IpipeProcesses;
    let a = run(config(kind, 16, 60_000.0, seed), dirs[0].path());
    run(config(kind, 16, 60_000.0, seed), dirs[1].path());
    run(config(kind, 16, 60_000.0, seed ^ 1), dirs[2].path());
    assert_verified(&a);
    let ipipe = a.record.ipipe.as_ref().unwrap();
    assert_eq!(
        (ipipe.actors, ipipe.isolation.as_str()),
        (16, "process-per-tenant")
    );
    // 16 tenants' processes on 7 FCFS cores: cores change tenant, and pay for it.
    assert!(ipipe.tenant_switches > 0, "{ipipe:?}");
    let (first, again, other) = (
        files(dirs[0].path()),
        files(dirs[1].path()),
        files(dirs[2].path()),
    );
    assert_eq!(first, again, "the same seed gives byte-identical raw files");
    assert_ne!(first, other, "another seed gives other files");
}

#[test]
fn an_overloaded_actor_migrates_to_the_host_with_its_objects_and_keeps_answering() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    // One tenant is one actor, which runs one item at a time: on the modelled A72 a GET holds a
    // core ≈ 2.7 µs, so 500 kops/s exceed what the actor can take on the NIC.
    let mut config = config(PolicyKind::Ipipe, 1, 500_000.0, seed);
    config.measure_ns = 20 * MS;
    let server = naam_roles::workload::server(&config.dataset).unwrap();
    let regions_bytes: u64 = server.regions().iter().map(|r| r.len).sum();
    let outcome = run(config, dir.path());
    assert_verified(&outcome);
    let ipipe = outcome.record.ipipe.as_ref().unwrap();
    let first = ipipe
        .migrations
        .first()
        .expect("the management core migrated the actor");
    assert!(first.to_host, "{first:?}");
    assert!(first.finished_ns > first.started_ns, "{first:?}");
    // Phase 3 moves the actor's objects: its copy of the tenant's three MICA regions.
    assert_eq!(first.bytes, regions_bytes, "{first:?}");
    assert!(
        ipipe.forwarded > 0,
        "requests reached the migrated actor by forwards"
    );
    assert!(outcome.server.host.completions > 0, "{:?}", outcome.server);
}
