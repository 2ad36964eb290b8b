//! The native tree against `BTreeMap`: bulk loads, inserts with splits, lookups and range scans,
//! over random keys, several node sizes, fill factors and depths.

use std::collections::BTreeMap;

use naam_btree::{BTree, BTreeConfig, InsertOutcome};
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

/// Builds a tree of `pairs` in a region with `headroom` spare nodes.
fn build<'r>(
    node_bytes: u32,
    pairs: &[(u64, u64)],
    fill_percent: u8,
    headroom: u64,
    region: &'r mut Vec<u8>,
) -> BTree<'r> {
    let needed =
        BTreeConfig::nodes_for_bulk_load(node_bytes, pairs.len() as u64, fill_percent).unwrap_or(2);
    let config = BTreeConfig {
        node_bytes,
        nodes_max: needed + headroom,
    };
    *region = vec![0; config.validate().expect("valid config")];
    BTree::bulk_load(config, region, pairs, fill_percent).expect("bulk load")
}

/// Every model key, some absent keys, and the extremes look up as in the model.
fn check_lookups(
    tree: &BTree<'_>,
    model: &BTreeMap<u64, u64>,
    probes: &[u64],
) -> Result<(), String> {
    let keys =
        model
            .keys()
            .copied()
            .chain(probes.iter().copied())
            .chain([0, 1, u64::MAX - 1, u64::MAX]);
    for key in keys {
        let got = tree.get(key).map_err(|e| format!("get {key}: {e}"))?;
        if got != model.get(&key).copied() {
            return Err(format!(
                "get {key}: tree {got:?}, model {:?}",
                model.get(&key)
            ));
        }
    }
    Ok(())
}

fn check_range(
    tree: &BTree<'_>,
    model: &BTreeMap<u64, u64>,
    start: u64,
    end: u64,
    limit: usize,
) -> Result<(), String> {
    let got = tree
        .range(start, end, limit)
        .map_err(|e| format!("range: {e}"))?;
    let want: Vec<(u64, u64)> = if start <= end {
        model
            .range(start..=end)
            .map(|(k, v)| (*k, *v))
            .take(limit)
            .collect()
    } else {
        Vec::new()
    };
    if got != want {
        return Err(format!(
            "range {start}..={end} limit {limit}: tree {} pairs, model {}",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

fn key_strategy() -> impl Strategy<Value = u64> {
    // Keys from the whole range, from a narrow band (dense runs) and the extremes.
    prop_oneof![any::<u64>(), 0u64..2000, Just(0), Just(u64::MAX)]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: RngSeed::Fixed(seed(0x4254_5245)),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn bulk_load_then_inserts_agree_with_btreemap(
        node_index in 0usize..NODE_SIZES.len(),
        fill_percent in 1u8..=100,
        loaded in prop::collection::btree_map(key_strategy(), any::<u64>(), 0..1500),
        inserted in prop::collection::vec((key_strategy(), any::<u64>()), 0..600),
        probes in prop::collection::vec(key_strategy(), 0..50),
        ranges in prop::collection::vec((key_strategy(), key_strategy(), 0usize..300), 1..8),
    ) {
        let node_bytes = NODE_SIZES[node_index];
        let s = seed(0x4254_5245);
        let pairs: Vec<(u64, u64)> = loaded.iter().map(|(k, v)| (*k, *v)).collect();
        let mut region = Vec::new();
        let mut tree = build(node_bytes, &pairs, fill_percent, 4 * inserted.len() as u64 + 4, &mut region);
        let root = tree.superblock().root_offset;
        let mut model = loaded.clone();
        prop_assert!(check_lookups(&tree, &model, &probes).is_ok(), "NAAM_SEED={s} after load: {:?}", check_lookups(&tree, &model, &probes));
        for (key, value) in &inserted {
            let outcome = tree.insert(*key, *value);
            let expected = if model.insert(*key, *value).is_some() { InsertOutcome::Updated } else { InsertOutcome::Inserted };
            prop_assert_eq!(outcome, Ok(expected), "NAAM_SEED={} insert {}", s, key);
        }
        prop_assert_eq!(tree.superblock().root_offset, root, "the root never moves");
        prop_assert_eq!(tree.superblock().entries, model.len() as u64);
        let lookups = check_lookups(&tree, &model, &probes);
        prop_assert!(lookups.is_ok(), "NAAM_SEED={s}: {lookups:?}");
        for (a, b, limit) in &ranges {
            let r = check_range(&tree, &model, *a.min(b), *a.max(b), *limit);
            prop_assert!(r.is_ok(), "NAAM_SEED={s}: {r:?}");
        }
    }
}

/// Deep trees: tiny nodes and many keys, lookups and scans across every level.
#[test]
fn deep_trees_of_every_node_size_agree_with_btreemap() {
    let seed = seed(11);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for node_bytes in NODE_SIZES {
        let model: BTreeMap<u64, u64> = (0..30_000)
            .map(|_| (rng.random::<u64>() >> 8, rng.random()))
            .collect();
        let pairs: Vec<(u64, u64)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        let mut region = Vec::new();
        let tree = build(node_bytes, &pairs, 70, 0, &mut region);
        let height = tree.superblock().height;
        let probes: Vec<u64> = (0..2000).map(|_| rng.random::<u64>() >> 8).collect();
        check_lookups(&tree, &model, &probes)
            .unwrap_or_else(|e| panic!("NAAM_SEED={seed} node {node_bytes}: {e}"));
        for _ in 0..50 {
            let (a, b) = (rng.random::<u64>() >> 8, rng.random::<u64>() >> 8);
            check_range(&tree, &model, a.min(b), a.max(b), 500)
                .unwrap_or_else(|e| panic!("NAAM_SEED={seed} node {node_bytes}: {e}"));
        }
        check_range(&tree, &model, 0, u64::MAX, usize::MAX)
            .unwrap_or_else(|e| panic!("NAAM_SEED={seed}: {e}"));
        let expected_min_height = if node_bytes == 128 { 6 } else { 2 };
        assert!(
            height >= expected_min_height,
            "NAAM_SEED={seed} node {node_bytes}: height {height}"
        );
    }
}

/// A tree grown only by inserts (from an empty bulk load) splits the root repeatedly.
#[test]
fn inserts_into_an_empty_tree_split_up_to_several_levels() {
    let seed = seed(12);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut region = Vec::new();
    let mut tree = build(128, &[], 100, 20_000, &mut region);
    let root = tree.superblock().root_offset;
    let mut model = BTreeMap::new();
    for _ in 0..5_000 {
        let (k, v) = (rng.random_range(0..20_000u64), rng.random());
        model.insert(k, v);
        tree.insert(k, v)
            .unwrap_or_else(|e| panic!("NAAM_SEED={seed}: {e}"));
    }
    let sb = tree.superblock();
    assert_eq!(sb.root_offset, root);
    assert!(sb.height >= 5, "NAAM_SEED={seed}: height {}", sb.height);
    check_lookups(&tree, &model, &[20_000, 20_001])
        .unwrap_or_else(|e| panic!("NAAM_SEED={seed}: {e}"));
    check_range(&tree, &model, 0, u64::MAX, usize::MAX)
        .unwrap_or_else(|e| panic!("NAAM_SEED={seed}: {e}"));
}
