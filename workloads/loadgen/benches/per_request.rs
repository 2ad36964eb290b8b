//! Cost per request of the client's hot path: schedule + YCSB-B key choice + histogram record
//! (goal: <= 100 ns), on a virtual clock: each request is sent at its intended time and completed
//! when the next one is sent.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use naam_loadgen::{LoadConfig, LoadGenerator, LoadMode, TagId, TagSet, Thresholds};
use naam_ycsb::{OperationGenerator, RunConfig, Workload};

const RATE_PER_S: f64 = 1e6;

fn loadgen() -> LoadGenerator {
    let config = LoadConfig {
        mode: LoadMode::Poisson {
            rate_per_s: RATE_PER_S,
            seed: 1,
        },
        warmup_ns: 0,
        measure_ns: 3_000_000_000_000,
        requests_max: 1 << 40,
        inflight_max: 1 << 20,
        interval_ns: 1_000_000_000,
        thresholds: Thresholds::default(),
        rate_steps: Vec::new(),
        sum_totals: true,
    };
    LoadGenerator::new(config, TagSet::locations()).expect("valid benchmark configuration")
}

fn per_request(c: &mut Criterion) {
    let spec = Workload::B.spec();
    let config = RunConfig {
        records: 1_000_000,
        operations: 1 << 30,
        spec,
    };
    let mut keys = OperationGenerator::new(&config, 7, 0, 1).expect("valid");
    let mut generator = loadgen();
    let mut previous = None;
    c.bench_function("loadgen_schedule_key_record", |b| {
        b.iter(|| {
            let now = generator.next_send_ns().unwrap_or(0);
            if let Some(ticket) = previous.take() {
                let _ = black_box(generator.on_complete(&ticket, TagId(0), now));
            }
            previous = generator.poll_send(now).ok().flatten();
            black_box(keys.next_operation().keynum)
        })
    });
}

criterion_group!(benches, per_request);
criterion_main!(benches);
