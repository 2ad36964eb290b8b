//! Simulated MICA YCSB-B requests per wall-clock second on one core, with the VM executing every
//! step (the goal: ≥ 1 M/s). One iteration simulates a 50 ms point at 2 M ops/s offered
//! (about 100 000 requests) on the `bf2-r7525` profile with the NIC placement; the dataset's
//! setup is excluded. `cargo bench -p naam-sim --bench sim_mica`.

use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use naam_roles::config::{Dataset, Distribution, MicaSpec, WorkloadSpec, YcsbWorkload};
use naam_sim::point::{SimClient, SimPoint, SimPointConfig};
use naam_sim::profile::CostProfile;
use naam_types::{PolicyKind, PolicySpec};

const MS: u64 = 1_000_000;
const SEED: u64 = 0x51_0005;

fn config(policy: PolicyKind) -> SimPointConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    SimPointConfig {
        profile: CostProfile::load(&dir, "bf2-r7525").expect("profile"),
        dataset: Dataset {
            workload: WorkloadSpec::Mica(MicaSpec {
                records: 100_000,
                key_bytes: 8,
                value_bytes: 8,
                ycsb_workload: YcsbWorkload::B,
                distribution: Distribution::ScrambledZipfian,
                buckets: 32_768,
                slots: 7,
                log_bytes: 1 << 24,
                tenant_programs: Default::default(),
            }),
            tenants: 1,
            seed: SEED,
        },
        policy: PolicySpec::default_for(policy),
        clients: SimClient::even(16, 2_000_000.0, SEED),
        warmup_ns: 0,
        measure_ns: 50 * MS,
        interval_ns: 10 * MS,
        seed: SEED,
        sample_period_ns: MS,
        timeout_ns: 100 * MS,
        inflight_max: 65_536,
        hog: None,
    }
}

/// Requests one point simulates (all of them are measured: no warm-up).
fn requests(policy: PolicyKind) -> u64 {
    let out = tempfile::tempdir().expect("tempdir");
    let outcome = SimPoint::new(config(policy))
        .expect("setup")
        .run(out.path())
        .expect("run");
    outcome.clients.iter().map(|c| c.sent).sum()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sim_mica_ycsb_b");
    group.sample_size(10);
    for policy in [PolicyKind::Nic, PolicyKind::NaamAdaptive] {
        group.throughput(Throughput::Elements(requests(policy)));
        let out = tempfile::tempdir().expect("tempdir");
        group.bench_function(policy.name(), |b| {
            b.iter_batched(
                || SimPoint::new(config(policy)).expect("setup"),
                |point| point.run(out.path()).expect("run"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
