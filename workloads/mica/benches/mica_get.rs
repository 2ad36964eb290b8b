//! Host-native MICA GET per operation (the eBPF path is benchmarked in phase 2, through the VM).
//!
//! Table: 2^17 buckets of 15 slots, 64 MiB log, 100 000 keys. Datasets as MICA's paper:
//! 8 B keys / 8 B values and 16 B keys / 64 B values.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use naam_mica::{MicaConfig, MicaRegionsMut, MicaTable, Slots};

const KEYS: u64 = 100_000;

fn key(i: u64, key_bytes: usize) -> Vec<u8> {
    let mut k = i.to_le_bytes().repeat(key_bytes.div_ceil(8));
    k.truncate(key_bytes);
    k
}

fn bench_dataset(c: &mut Criterion, key_bytes: usize, value_bytes: usize) {
    let config = MicaConfig {
        buckets: 1 << 17,
        slots: Slots::Fifteen,
        log_bytes: 1 << 26,
        ..MicaConfig::new()
    };
    let sizes = config.validate().expect("valid");
    let (mut index, mut log, mut meta) = (
        vec![0; sizes.index_bytes],
        vec![0; sizes.log_bytes],
        vec![0; sizes.meta_bytes],
    );
    let mut table = MicaTable::format(
        config,
        MicaRegionsMut {
            index: &mut index,
            log: &mut log,
            meta: &mut meta,
        },
    )
    .expect("format");
    let value = vec![0xab; value_bytes];
    let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| key(i, key_bytes)).collect();
    for k in &keys {
        table.set(k, &value).expect("set");
    }
    let misses: Vec<Vec<u8>> = (KEYS..2 * KEYS).map(|i| key(i, key_bytes)).collect();
    let mut out = Vec::with_capacity(value_bytes);
    let name = format!("mica_get_native/{key_bytes}B_key_{value_bytes}B_value");
    let mut group = c.benchmark_group(name);
    let mut i = 0usize;
    group.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(table.get_into(black_box(&keys[i]), &mut out))
        })
    });
    group.bench_function("miss", |b| {
        b.iter(|| {
            i = (i + 7919) % misses.len();
            black_box(table.get_into(black_box(&misses[i]), &mut out))
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_dataset(c, 8, 8);
    bench_dataset(c, 16, 64);
}

criterion_group!(mica, benches);
criterion_main!(mica);
