//! Scenario tests of the native tree: errors, torn and stale nodes, reopening, byte layout.

use expect_test::expect;
use naam_btree::layout::{
    NODE_COUNT_OFFSET, NODE_HIGH_OFFSET, NODE_TRAILER_FROM_END, NODE_VERSION_OFFSET,
};
use naam_btree::reader::LOOKUP_ATTEMPTS_MAX;
use naam_btree::{
    BTree, BTreeConfig, BTreeReader, BuildError, InsertError, LookupError, OpenError,
};

fn pairs(n: u64) -> Vec<(u64, u64)> {
    (0..n).map(|i| (i * 10, i)).collect()
}

#[test]
fn bulk_load_refuses_bad_input() {
    let config = BTreeConfig {
        node_bytes: 128,
        nodes_max: 8,
    };
    let mut region = vec![0u8; 128 * 8];
    let err = |p: &[(u64, u64)], fill, region: &mut Vec<u8>| {
        BTree::bulk_load(config, region, p, fill).err()
    };
    assert_eq!(
        err(&[(5, 0), (5, 1)], 100, &mut region),
        Some(BuildError::Unsorted {
            index: 1,
            key: 5,
            previous: 5
        })
    );
    assert_eq!(
        err(&[(5, 0), (4, 1)], 100, &mut region),
        Some(BuildError::Unsorted {
            index: 1,
            key: 4,
            previous: 5
        })
    );
    assert_eq!(
        err(&pairs(3), 0, &mut region),
        Some(BuildError::FillPercent { fill_percent: 0 })
    );
    assert_eq!(
        err(&pairs(3), 101, &mut region),
        Some(BuildError::FillPercent { fill_percent: 101 })
    );
    // 100 keys in 5-key leaves: 20 leaves, 4 inner, 1 root, superblock = 26 > 8
    assert_eq!(
        err(&pairs(100), 100, &mut region),
        Some(BuildError::Full {
            nodes_needed: 26,
            nodes_max: 8
        })
    );
    let mut short = vec![0u8; 100];
    assert_eq!(
        BTree::bulk_load(config, &mut short, &pairs(1), 100).err(),
        Some(BuildError::RegionTooSmall {
            bytes_needed: 1024,
            bytes_given: 100
        })
    );
}

#[test]
fn a_full_region_refuses_an_insert_and_stays_intact() {
    // 5 keys fill one 128-byte leaf; the sixth needs a root split (two more nodes).
    let config = BTreeConfig {
        node_bytes: 128,
        nodes_max: 3,
    };
    let mut region = vec![0u8; 128 * 3];
    let mut tree = BTree::bulk_load(config, &mut region, &pairs(5), 100).expect("load");
    assert_eq!(
        tree.insert(1000, 1),
        Err(InsertError::Full {
            nodes_needed: 2,
            nodes_free: 1
        })
    );
    assert_eq!(
        tree.insert(20, 99),
        Ok(naam_btree::InsertOutcome::Updated),
        "updates need no room"
    );
    assert_eq!(tree.get(1000), Ok(None));
    assert_eq!(tree.get(20), Ok(Some(99)));
    assert_eq!(tree.range(0, u64::MAX, 10).map(|r| r.len()), Ok(5));
}

/// Offsets of the root and of the leaf holding key 0 in a two-level tree of 128-byte nodes.
fn two_level_tree(region: &mut Vec<u8>) -> (u64, u64) {
    let config = BTreeConfig {
        node_bytes: 128,
        nodes_max: 16,
    };
    *region = vec![0u8; 128 * 16];
    let tree = BTree::bulk_load(config, region, &pairs(20), 100).expect("load");
    let sb = tree.superblock();
    assert_eq!(sb.height, 2);
    (sb.root_offset, 128)
}

#[test]
fn a_torn_node_makes_lookups_retry_until_they_give_up() {
    let mut region = Vec::new();
    let (_, leaf) = two_level_tree(&mut region);
    let trailer = leaf as usize + 128 - NODE_TRAILER_FROM_END;
    region[trailer] += 2; // trailer version ahead of the header: a read that overlapped a write
    let reader = BTreeReader::open(&region).expect("open");
    assert_eq!(
        reader.get(0),
        Err(LookupError::RetriesExhausted {
            node_offset: leaf,
            attempts: LOOKUP_ATTEMPTS_MAX
        })
    );
    assert_eq!(reader.get(150), Ok(Some(15)), "other leaves are unaffected");
    region[trailer] -= 2;
    region[leaf as usize + NODE_VERSION_OFFSET] += 1; // odd: a writer holds it
    region[trailer] += 1;
    let reader = BTreeReader::open(&region).expect("open");
    assert!(matches!(
        reader.get(0),
        Err(LookupError::RetriesExhausted { .. })
    ));
}

#[test]
fn a_key_outside_the_fences_means_a_stale_path_and_a_retry() {
    let mut region = Vec::new();
    let (_, leaf) = two_level_tree(&mut region);
    // As if the leaf had split after the reader left the root: its high fence drops below 40.
    let high = leaf as usize + NODE_HIGH_OFFSET;
    region[high..high + 8].copy_from_slice(&39u64.to_le_bytes());
    let reader = BTreeReader::open(&region).expect("open");
    assert_eq!(reader.get(30), Ok(Some(3)));
    assert!(
        matches!(reader.get(40), Err(LookupError::RetriesExhausted { node_offset, .. }) if node_offset == leaf)
    );
}

#[test]
fn inconsistent_stable_nodes_are_reported_corrupt() {
    let mut region = Vec::new();
    let (root, _) = two_level_tree(&mut region);
    let count = root as usize + NODE_COUNT_OFFSET;
    region[count] = 200;
    let reader = BTreeReader::open(&region).expect("open");
    assert_eq!(
        reader.get(0),
        Err(LookupError::Corrupt {
            node_offset: root,
            reason: "count exceeds the node's capacity"
        })
    );
}

#[test]
fn regions_reopen_for_reading_and_writing() {
    let config = BTreeConfig::new(64);
    let mut region = vec![0u8; 1024 * 64];
    {
        BTree::bulk_load(config, &mut region, &pairs(500), 80).expect("load");
    }
    let reader = BTreeReader::open(&region).expect("open");
    assert_eq!(reader.get(4990), Ok(Some(499)));
    assert_eq!(reader.superblock().entries, 500);
    let mut tree = BTree::open(&mut region).expect("open");
    assert_eq!(tree.nodes_max(), 64);
    tree.insert(5, 55).expect("insert");
    assert_eq!(tree.get(5), Ok(Some(55)));
    assert_eq!(
        BTreeReader::open(&[0u8; 256]).err(),
        Some(OpenError::BadMagic { found: 0 })
    );
}

fn hex_words(bytes: &[u8]) -> String {
    bytes
        .chunks(8)
        .map(|w| w.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn byte_layout_of_the_superblock_and_a_leaf() {
    let config = BTreeConfig {
        node_bytes: 128,
        nodes_max: 4,
    };
    let mut region = vec![0u8; 128 * 4];
    BTree::bulk_load(config, &mut region, &[(7, 70), (9, 90)], 100).expect("load");
    let dump = format!(
        "super {}\nleaf  {}\n",
        hex_words(&region[..40]),
        hex_words(&region[128..256])
    );
    expect![[r#"
        super 4e41414d54524545 8000000001000000 8000000000000000 0200000000000000 0200000000000000
        leaf  0200000000000200 0000000000000000 ffffffffffffffff 0000000000000000 0700000000000000 0900000000000000 0000000000000000 0000000000000000 0000000000000000 4600000000000000 5a00000000000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000 0200000000000000
    "#]].assert_eq(&dump);
}
