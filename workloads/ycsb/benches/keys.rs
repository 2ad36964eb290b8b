//! Generator cost per key for each distribution (goal: <= 30 ns/key), and per full operation
//! (op mix + key) and key name, over 10^6 records with YCSB-B's mix.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use naam_ycsb::{Distribution, OperationGenerator, Workload, push_key_name};

const RECORDS: u64 = 1_000_000;
const OPERATIONS: u64 = 10_000_000;
const SEED: u64 = 0x5eed;

fn generator(distribution: Distribution) -> OperationGenerator {
    let mut spec = Workload::B.spec();
    spec.request_distribution = distribution;
    let config = naam_ycsb::RunConfig {
        records: RECORDS,
        operations: OPERATIONS,
        spec,
    };
    OperationGenerator::new(&config, SEED, 0, 1).expect("valid benchmark configuration")
}

fn keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("ycsb_keynum");
    for distribution in Distribution::ALL {
        let mut g = generator(distribution);
        group.bench_function(distribution.name(), |b| {
            b.iter(|| black_box(g.next_keynum()))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("ycsb_b_operation");
    for distribution in Distribution::ALL {
        let mut g = generator(distribution);
        group.bench_function(distribution.name(), |b| {
            b.iter(|| black_box(g.next_operation()))
        });
    }
    group.finish();

    let mut g = generator(Distribution::ScrambledZipfian);
    let mut name = String::with_capacity(32);
    c.bench_function("ycsb_b_operation_and_key_name/scrambled-zipfian", |b| {
        b.iter(|| {
            let op = g.next_operation();
            name.clear();
            push_key_name(&mut name, op.keynum as i64, 1, false);
            black_box(name.len())
        })
    });
}

criterion_group!(benches, keys);
criterion_main!(benches);
