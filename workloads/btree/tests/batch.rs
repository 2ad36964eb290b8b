//! B-tree lookups in flight together (`BTreeVm::lookup_batch`, through
//! `LocalHost::call_batch_into`, each node prefetched at hand-out): every lookup of a batch
//! answers exactly as it does alone (value, steps, attempts, instructions), hits, misses and a
//! mix, on the interpreter and the JIT; an over-size batch is refused.

use naam_btree::{BTree, BTreeConfig, BTreeVm, VmError};
use naam_engine::Backend;
use naam_engine::local::{CALL_BATCH_MAX, LocalError};

/// A tree of the even keys `2..=2 * pairs` (value: key ^ 0x5555) in `node_bytes` nodes.
fn build(node_bytes: u32, pairs: u64, backend: Backend) -> BTreeVm {
    let pairs: Vec<(u64, u64)> = (1..=pairs).map(|k| (2 * k, (2 * k) ^ 0x5555)).collect();
    let nodes_max = BTreeConfig::nodes_for_bulk_load(node_bytes, pairs.len() as u64, 90);
    let config = BTreeConfig {
        node_bytes,
        nodes_max: nodes_max.unwrap_or(2),
    };
    let mut region = vec![0; config.validate().expect("valid config")];
    BTree::bulk_load(config, &mut region, &pairs, 90).expect("bulk load");
    BTreeVm::with_backend(region, backend).expect("the engine takes the tree")
}

#[test]
fn a_batch_of_lookups_answers_as_each_lookup_alone() {
    for backend in Backend::ALL {
        for node_bytes in [256, 1024] {
            let mut vm = build(node_bytes, 5_000, backend);
            let mut lookups = Vec::new();
            for size in [1, 8, 29, CALL_BATCH_MAX] {
                // Even keys are stored, odd ones are not: a mix, then hits only.
                for step in [37, 74] {
                    let keys: Vec<u64> =
                        (0..size as u64).map(|i| (i * step + 2) % 10_003).collect();
                    let alone: Vec<_> = keys
                        .iter()
                        .map(|&k| vm.lookup(k).expect("lookup"))
                        .collect();
                    vm.lookup_batch(&keys, &mut lookups).expect("batch");
                    let batch: Vec<_> = lookups.iter().map(|l| *l.as_ref().expect("ok")).collect();
                    assert_eq!(alone, batch, "{backend}, {node_bytes} B: a batch of {size}");
                    for (key, lookup) in keys.iter().zip(&batch) {
                        let stored = key % 2 == 0 && (2..=10_000).contains(key);
                        assert_eq!(lookup.value, stored.then_some(key ^ 0x5555), "key {key}");
                    }
                }
            }
        }
    }
}

#[test]
fn an_oversize_batch_of_lookups_is_refused() {
    let mut vm = build(256, 100, Backend::Interpreter);
    let keys: Vec<u64> = (0..=CALL_BATCH_MAX as u64).collect();
    let mut lookups = Vec::new();
    let err = vm.lookup_batch(&keys, &mut lookups).unwrap_err();
    assert!(
        matches!(err, VmError::Call(LocalError::BatchTooLarge { .. })),
        "{err}"
    );
    assert!(lookups.is_empty());
    // The box still answers.
    assert_eq!(vm.lookup(4).expect("lookup").value, Some(4 ^ 0x5555));
}
