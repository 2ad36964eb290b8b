//! The eBPF lookup (`btree_lookup` through naam-engine's `LocalHost` and naam-vm) against the
//! native lookup and `BTreeMap`, on trees built by bulk load then inserts (run natively on the
//! same region bytes between lookups), over several node sizes and depths. Every lookup runs on
//! both paths; they must agree with each other and with the model, take one step per level and
//! never retry (nothing writes during a lookup here).

use std::collections::BTreeMap;

use naam_btree::{BTree, BTreeConfig, BTreeVm, InsertOutcome};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn seed(default: u64) -> u64 {
    std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

const NODE_SIZES: [u32; 5] = [128, 192, 256, 1024, 4096];

/// A tree of `pairs` with `headroom` spare nodes, registered in a `BTreeVm`.
fn build(node_bytes: u32, pairs: &[(u64, u64)], fill_percent: u8, headroom: u64) -> BTreeVm {
    let needed =
        BTreeConfig::nodes_for_bulk_load(node_bytes, pairs.len() as u64, fill_percent).unwrap_or(2);
    let config = BTreeConfig {
        node_bytes,
        nodes_max: needed + headroom,
    };
    let mut region = vec![0; config.validate().expect("valid config")];
    BTree::bulk_load(config, &mut region, pairs, fill_percent).expect("bulk load");
    BTreeVm::new(region).expect("the engine takes the tree")
}

/// Looks `key` up on both paths; both must give the model's answer in `height` steps.
fn check_key(vm: &mut BTreeVm, model: &BTreeMap<u64, u64>, key: u64) -> Result<(), String> {
    let tree = vm.tree_mut().map_err(|e| format!("open: {e}"))?;
    let height = tree.superblock().height;
    let native = tree
        .get(key)
        .map_err(|e| format!("native get {key}: {e}"))?;
    let ebpf = vm.lookup(key).map_err(|e| format!("eBPF get {key}: {e}"))?;
    let want = model.get(&key).copied();
    if native != want || ebpf.value != want {
        return Err(format!(
            "get {key}: native {native:?}, eBPF {:?}, model {want:?}",
            ebpf.value
        ));
    }
    if usize::from(ebpf.steps) != height || ebpf.attempts != 0 {
        return Err(format!(
            "get {key}: {} steps and {} retries in a tree of height {height}",
            ebpf.steps, ebpf.attempts
        ));
    }
    Ok(())
}

/// Every model key, the probes and the extremes.
fn check_all(vm: &mut BTreeVm, model: &BTreeMap<u64, u64>, probes: &[u64]) -> Result<(), String> {
    let keys: Vec<u64> = model
        .keys()
        .copied()
        .chain(probes.iter().copied())
        .chain([0, 1, u64::MAX - 1, u64::MAX])
        .collect();
    keys.into_iter()
        .try_for_each(|key| check_key(vm, model, key))
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u64, u64),
    Lookup(u64),
}

fn key_strategy() -> impl Strategy<Value = u64> {
    // Keys from the whole range, from a narrow band (dense runs) and the extremes.
    prop_oneof![any::<u64>(), 0u64..2000, Just(0), Just(u64::MAX)]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (key_strategy(), any::<u64>()).prop_map(|(k, v)| Op::Insert(k, v)),
        key_strategy().prop_map(Op::Lookup),
    ]
}

fn run_ops(vm: &mut BTreeVm, model: &mut BTreeMap<u64, u64>, ops: &[Op]) -> Result<(), String> {
    for (i, op) in ops.iter().enumerate() {
        match *op {
            Op::Insert(key, value) => {
                let mut tree = vm.tree_mut().map_err(|e| format!("open: {e}"))?;
                let outcome = tree.insert(key, value);
                let expected = match model.insert(key, value) {
                    Some(_) => InsertOutcome::Updated,
                    None => InsertOutcome::Inserted,
                };
                if outcome != Ok(expected) {
                    return Err(format!("op {i}: insert {key}: {outcome:?}"));
                }
            }
            Op::Lookup(key) => check_key(vm, model, key).map_err(|e| format!("op {i}: {e}"))?,
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: RngSeed::Fixed(seed(0x4542_5046)),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn ebpf_and_native_lookups_agree_with_btreemap_through_loads_and_inserts(
        node_index in 0usize..NODE_SIZES.len(),
        fill_percent in 1u8..=100,
        loaded in prop::collection::btree_map(key_strategy(), any::<u64>(), 0..1500),
        ops in prop::collection::vec(op_strategy(), 0..800),
        probes in prop::collection::vec(key_strategy(), 0..50),
    ) {
        let s = seed(0x4542_5046);
        let node_bytes = NODE_SIZES[node_index];
        let pairs: Vec<(u64, u64)> = loaded.iter().map(|(k, v)| (*k, *v)).collect();
        let mut vm = build(node_bytes, &pairs, fill_percent, 4 * ops.len() as u64 + 4);
        let mut model = loaded.clone();
        let after_load = check_all(&mut vm, &model, &probes);
        prop_assert!(after_load.is_ok(), "NAAM_SEED={s} node {node_bytes} after load: {after_load:?}");
        let during = run_ops(&mut vm, &mut model, &ops);
        prop_assert!(during.is_ok(), "NAAM_SEED={s} node {node_bytes}: {during:?}");
        let at_end = check_all(&mut vm, &model, &probes);
        prop_assert!(at_end.is_ok(), "NAAM_SEED={s} node {node_bytes} at the end: {at_end:?}");
    }
}

/// Deep trees (tiny nodes, many keys) of every node size, bulk loaded and then grown by
/// inserts: every key on both paths, one eBPF step per level.
#[test]
fn deep_trees_of_every_node_size_agree_on_both_paths() {
    let seed = seed(21);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut heights = Vec::new();
    for node_bytes in NODE_SIZES {
        let mut model: BTreeMap<u64, u64> = (0..10_000)
            .map(|_| (rng.random::<u64>() >> 8, rng.random()))
            .collect();
        let pairs: Vec<(u64, u64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        let inserts: Vec<Op> = (0..2_000)
            .map(|_| Op::Insert(rng.random::<u64>() >> 8, rng.random()))
            .collect();
        let mut vm = build(node_bytes, &pairs, 80, 4 * inserts.len() as u64);
        run_ops(&mut vm, &mut model, &inserts)
            .unwrap_or_else(|e| panic!("NAAM_SEED={seed} node {node_bytes}: {e}"));
        let probes: Vec<u64> = (0..2000).map(|_| rng.random::<u64>() >> 8).collect();
        check_all(&mut vm, &model, &probes)
            .unwrap_or_else(|e| panic!("NAAM_SEED={seed} node {node_bytes}: {e}"));
        let height = vm.tree_mut().map(|t| t.superblock().height).unwrap_or(0);
        heights.push((node_bytes, height));
    }
    // 12 000 keys in 128-byte nodes (5 keys or children each) need at least log5(12 000) > 5
    // levels; larger nodes need fewer, and the largest at least two.
    assert!(heights[0].1 >= 6, "NAAM_SEED={seed}: {heights:?}");
    assert!(
        heights.windows(2).all(|w| w[0].1 >= w[1].1),
        "NAAM_SEED={seed}: {heights:?}"
    );
    assert!(heights[4].1 >= 2, "NAAM_SEED={seed}: {heights:?}");
}
