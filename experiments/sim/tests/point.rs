//! Simulated points: the production client sessions, workers, control stage and RNIC on the
//! virtual clock, over real MICA bytes with every answer verified. Checks that a point's raw
//! files are byte-identical for the same seed and profile and differ for another seed, and that
//! each placement serves its requests where it says. Seeded: `NAAM_SEED` replays other draws.

use std::path::{Path, PathBuf};

use naam_roles::config::{Dataset, Distribution, MicaSpec, WorkloadSpec, YcsbWorkload};
use naam_sim::point::{HogWindow, SimClient, SimOutcome, SimPoint, SimPointConfig};
use naam_sim::profile::CostProfile;
use naam_types::{PolicyKind, PolicySpec};

const MS: u64 = 1_000_000;

fn seed() -> u64 {
    let seed = std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x51_0003);
    eprintln!("NAAM_SEED={seed}");
    seed
}

fn profile(name: &str) -> CostProfile {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    CostProfile::load(&dir, name).unwrap()
}

fn config(policy: PolicyKind, offered_ops_per_s: f64, seed: u64) -> SimPointConfig {
    SimPointConfig {
        profile: profile("bf2-r7525"),
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
            tenants: 1,
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

/// Every file of a point folder, by name, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (PathBuf::from(p.file_name().unwrap()), bytes)
        })
        .collect();
    out.sort();
    out
}

fn assert_clean(outcome: &SimOutcome) {
    for c in &outcome.clients {
        assert!(c.errors.is_empty(), "client {}: {:?}", c.client, c.errors);
        assert_eq!(c.verify_failures, 0, "client {}", c.client);
        assert!(c.completed > 0, "client {} completed nothing", c.client);
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let seed = seed();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = run(
        config(PolicyKind::NaamAdaptive, 100_000.0, seed),
        dirs[0].path(),
    );
    run(
        config(PolicyKind::NaamAdaptive, 100_000.0, seed),
        dirs[1].path(),
    );
    run(
        config(PolicyKind::NaamAdaptive, 100_000.0, seed ^ 1),
        dirs[2].path(),
    );
    assert_clean(&a);
    let (first, again, other) = (
        files(dirs[0].path()),
        files(dirs[1].path()),
        files(dirs[2].path()),
    );
    let names: Vec<_> = first.iter().map(|(n, _)| n.display().to_string()).collect();
    assert!(names.contains(&"client-3.hlog".to_string()), "{names:?}");
    assert!(names.contains(&"server.json".to_string()), "{names:?}");
    assert_eq!(
        first, again,
        "the same seed and profile give byte-identical raw files"
    );
    assert_ne!(first, other, "another seed gives other files");
}

#[test]
fn each_placement_serves_where_it_says_and_verifies_every_answer() {
    let seed = seed();
    for kind in [PolicyKind::Host, PolicyKind::Nic, PolicyKind::Client] {
        let dir = tempfile::tempdir().unwrap();
        let outcome = run(config(kind, 50_000.0, seed), dir.path());
        assert_clean(&outcome);
        let [host, nic, client] = outcome.record.steered;
        let completed: u64 = outcome.clients.iter().map(|c| c.completed).sum();
        eprintln!(
            "{kind:?}: steered {:?}, completed {completed}",
            outcome.record.steered
        );
        // YCSB-B: 5 % updates, which always run at the host (host-native writes).
        match kind {
            PolicyKind::Host => assert_eq!((nic, client), (0, 0)),
            PolicyKind::Nic => {
                assert!(nic > 9 * host);
                assert!(outcome.server.nic.completions * 10 > completed * 9);
            }
            _ => {
                // After the first pushbacks the clients run their share locally: most GETs never
                // reach the server, and each reads the server's memory through the RNIC.
                assert!(host + client < completed / 5);
                assert!(outcome.record.rnic_reads > completed / 2);
            }
        }
        let summary: naam_results::raw::ClientSummary =
            serde_json::from_slice(&std::fs::read(dir.path().join("client-0.json")).unwrap())
                .unwrap();
        assert_eq!(summary, outcome.clients[0]);
    }
}

/// The host's load samples of a point folder: (time since the measured phase's start, queueing
/// delay).
fn host_delays(dir: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(dir.join(naam_results::raw::SAMPLES_FILE)).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|sample| sample["location"] == "host")
        .map(|sample| {
            let field = |name: &str| sample[name].as_u64().unwrap();
            (field("t_ns"), field("queue_delay_ns"))
        })
        .collect()
}

#[test]
fn a_hogs_slices_queue_a_lightly_loaded_host_for_the_rest_of_a_slice() {
    // 50 k ops/s: 8 host cores at about 1 % busy, never queueing without the hog (a sample's
    // delay is the 400 ns receive). With it, every arrival in one of the hog's 3 ms slices waits
    // for the rest of the slice (≈ 150 arrive per slice: fewer than the host executor's 256
    // slots, so no write is refused), and the worker, off its core, is silent for the slice.
    const QUIET_DELAY_NS_MAX: u64 = 10_000;
    let seed = seed();
    let mut hogged = config(PolicyKind::NaamAdaptive, 50_000.0, seed);
    let slice_ns = hogged.profile.hog_slice_ns;
    let hog = HogWindow {
        start_ns: 20 * MS,
        stop_ns: 45 * MS,
    };
    hogged.hog = Some(hog);
    let (from_ns, to_ns) = (
        hog.start_ns - hogged.warmup_ns,
        hog.stop_ns - hogged.warmup_ns,
    );
    let dir = tempfile::tempdir().unwrap();
    assert_clean(&run(hogged, dir.path()));
    let delays = host_delays(dir.path());
    let during: Vec<_> = delays
        .iter()
        .filter(|&&(t, _)| (from_ns..to_ns).contains(&t))
        .collect();
    eprintln!("host delays during the hog (t_ns, ns): {during:?}");
    eprintln!("steering changes: {:?}", nic_changes(dir.path()));
    let quiet = |&&(t, delay): &&(u64, u64)| {
        !(from_ns..to_ns + slice_ns).contains(&t) && delay > QUIET_DELAY_NS_MAX
    };
    assert_eq!(delays.iter().find(quiet), None, "queued without the hog");
    let slices = (to_ns - from_ns) / (2 * slice_ns);
    let silent = during.iter().filter(|&&&(_, d)| d >= slice_ns).count() as u64;
    assert!(
        silent + 1 >= slices,
        "{silent} samples count a slice's silence in {slices} hog periods"
    );
    let backlog = during
        .iter()
        .filter(|&&&(_, d)| (slice_ns / 4..slice_ns).contains(&d))
        .count() as u64;
    assert!(
        backlog + 1 >= slices,
        "{backlog} samples see the slice's backlog in {slices} hog periods"
    );
}

/// The steering changes of a point folder: (time since the measured phase's start, NIC share ‰).
fn nic_changes(dir: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(dir.join(naam_results::raw::STEERING_FILE)).unwrap();
    text.lines()
        .map(|line| {
            let change: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |name: &str| change[name].as_u64().unwrap();
            (field("t_ns"), field("nic_permille"))
        })
        .collect()
}

#[test]
fn a_slices_backlog_enters_the_host_worker_in_batches_and_no_write_is_refused() {
    // 400 k ops/s at the host: ≈ 1 200 datagrams arrive in one of the hog's 3 ms slices, more than
    // the host executor's 256 slots. Received in batches between steps, as the roles' worker
    // loop does, they wait in the socket rather than fill the executor, so no host-native write
    // (which cannot be pushed back) is refused as overloaded.
    let seed = seed();
    let mut hogged = config(PolicyKind::Host, 400_000.0, seed);
    hogged.hog = Some(HogWindow {
        start_ns: 20 * MS,
        stop_ns: 40 * MS,
    });
    let dir = tempfile::tempdir().unwrap();
    let outcome = run(hogged, dir.path());
    assert_clean(&outcome);
    let delays = host_delays(dir.path());
    let worst_ns = delays.iter().map(|&(_, d)| d).max().unwrap();
    assert!(
        worst_ns >= MS,
        "the slices queued the host ({worst_ns} ns at most)"
    );
}

/// The simulator executes eBPF on naam-vm's JIT when it is built; the modelled time comes from the
/// instructions counted, which the JIT counts exactly as the interpreter does, so every raw file
/// is byte-identical whichever backend executed (host, NIC, client placements, NAAM-adaptive with
/// a hog, and iPipe).
#[cfg(feature = "jit")]
#[test]
fn raw_files_are_byte_identical_on_the_interpreter_and_the_jit() {
    use naam_sim::point::executed_on;
    use naam_types::VmBackend;
    assert_eq!(executed_on(VmBackend::Jit), "jit");
    assert_eq!(executed_on(VmBackend::Interpreter), "interpreter");
    let seed = seed();
    let kinds = [
        PolicyKind::Host,
        PolicyKind::Nic,
        PolicyKind::Client,
        PolicyKind::NaamAdaptive,
        PolicyKind::Ipipe,
    ];
    for kind in kinds {
        let mut point = config(kind, 200_000.0, seed);
        if kind == PolicyKind::NaamAdaptive {
            point.hog = Some(HogWindow {
                start_ns: 20 * MS,
                stop_ns: 35 * MS,
            });
        }
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        for (backend, dir) in [VmBackend::Interpreter, VmBackend::Jit].iter().zip(&dirs) {
            let outcome = SimPoint::executing_on(point.clone(), *backend)
                .unwrap()
                .run(dir.path())
                .unwrap();
            assert_clean(&outcome);
        }
        let (interpreted, jitted) = (files(dirs[0].path()), files(dirs[1].path()));
        assert!(
            interpreted.len() > 2,
            "{kind:?}: {} files",
            interpreted.len()
        );
        assert_eq!(
            interpreted, jitted,
            "{kind:?}: the backend changed the raw files"
        );
    }
}

/// The simulator compiles a point's programs only where they run often enough to repay it: a
/// thousand tenants' programs, each called ~100 times, are interpreted (the files are the same
/// either way; only the simulator's speed differs).
#[test]
fn points_with_few_requests_per_program_are_interpreted() {
    use naam_sim::point::{EXECUTE_ON_DEFAULT, JIT_CALLS_PER_PROGRAM_MIN, execute_on_for};
    use naam_types::VmBackend;
    let one_tenant = config(PolicyKind::Nic, 2_000_000.0, 1);
    let requests = 2_000_000.0 * 0.05;
    assert!(requests >= JIT_CALLS_PER_PROGRAM_MIN);
    assert_eq!(execute_on_for(&one_tenant), EXECUTE_ON_DEFAULT);
    let mut many = one_tenant;
    many.dataset.tenants = 1024;
    assert!(requests / 1024.0 < JIT_CALLS_PER_PROGRAM_MIN);
    assert_eq!(execute_on_for(&many), VmBackend::Interpreter);
}
