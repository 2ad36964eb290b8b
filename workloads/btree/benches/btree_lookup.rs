//! Host-native B-tree lookup per operation (the eBPF path is benchmarked in phase 2).
//!
//! 1 000 000 random u64 keys bulk loaded at 90 % fill, with 1 KB nodes (Cell-style default) and
//! 256-byte nodes (a deeper tree).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use naam_btree::{BTree, BTreeConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KEYS: usize = 1_000_000;
const FILL_PERCENT: u8 = 90;

fn bench_node_size(c: &mut Criterion, node_bytes: u32) {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut keys: Vec<u64> = (0..KEYS).map(|_| rng.random::<u64>() | 1).collect();
    keys.sort_unstable();
    keys.dedup();
    let pairs: Vec<(u64, u64)> = keys.iter().map(|&k| (k, k ^ 0x5555)).collect();
    let nodes_max =
        BTreeConfig::nodes_for_bulk_load(node_bytes, pairs.len() as u64, FILL_PERCENT).unwrap_or(2);
    let config = BTreeConfig {
        node_bytes,
        nodes_max,
    };
    let mut region = vec![0u8; config.validate().expect("valid")];
    let tree = BTree::bulk_load(config, &mut region, &pairs, FILL_PERCENT).expect("load");
    let reader = tree.reader();
    let height = reader.superblock().height;
    let mut probe_rng = ChaCha8Rng::seed_from_u64(7);
    let hits: Vec<u64> = (0..4096)
        .map(|_| keys[probe_rng.random_range(0..keys.len())])
        .collect();
    let misses: Vec<u64> = (0..4096).map(|_| probe_rng.random::<u64>() & !1).collect();
    let mut group = c.benchmark_group(format!(
        "btree_lookup_native/{node_bytes}B_nodes_height_{height}"
    ));
    let mut i = 0usize;
    group.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(reader.get(black_box(hits[i])))
        })
    });
    group.bench_function("miss", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(reader.get(black_box(misses[i])))
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_node_size(c, 1024);
    bench_node_size(c, 256);
}

criterion_group!(btree, benches);
criterion_main!(btree);
