//! Simulated MICA YCSB-B requests per wall-clock second on one core, with the VM executing every
//! step (the goal: ≥ 1 M/s). One iteration simulates a 50 ms point at 2 M ops/s offered
//! (about 100 000 requests) on the `bf2-r7525` profile with the NIC placement; the dataset's
//! setup is excluded. `cargo bench -p naam-sim --bench sim_mica`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use naam_sim::point::SimPoint;
use naam_types::PolicyKind;

mod common;

use common::config;

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
