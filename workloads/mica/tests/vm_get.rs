//! The eBPF GET (`mica_get` through naam-engine and naam-vm) on the cases that make MICA lossy,
//! each checked against the native GET on the same bytes: chains of extra buckets (one step per
//! bucket), same-tag eviction, bucket overflow under both victim rules, and log wrap.

mod common;

use common::{Regions, keys_in_bucket, same_tag_key, small_config};
use naam_mica::hash::key_hash;
use naam_mica::layout::{
    BUCKET_HEADER_BYTES, BUCKET_NEXT_EXTRA_OFFSET, ENTRY_BYTES, entry_tag, offset_is_valid,
    read_u32, read_u64, tag,
};
use naam_mica::{BucketEviction, GetOutcome, MicaConfig, MicaTable, MicaVm, VmGet};

/// GETs `key` on both paths; they must agree. Returns the value and the eBPF run.
fn both(table: &MicaTable<'_>, vm: &mut MicaVm, key: &[u8]) -> (Option<Vec<u8>>, VmGet) {
    let native = table.get(key).expect("native get");
    let mut value = Vec::new();
    let run = vm
        .get(&mut table.regions(), key, &mut value)
        .expect("eBPF get");
    let ebpf = (run.outcome == GetOutcome::Hit).then_some(value);
    assert_eq!(native, ebpf, "key {key:?}: native and eBPF differ");
    (ebpf, run)
}

/// Which bucket of its chain holds `key`'s entry (0 = primary), read from the index bytes, and
/// how many buckets the chain has.
fn chain_position(table: &MicaTable<'_>, key: &[u8]) -> (Option<usize>, usize) {
    let config = table.config();
    let index = table.regions().index;
    let bucket_bytes = config.bucket_bytes();
    let hash = key_hash(key);
    let mut at = ((hash >> 16) as usize & (config.buckets as usize - 1)) * bucket_bytes;
    let mut found = None;
    for position in 0.. {
        let slots = (0..config.slots.count())
            .map(|s| read_u64(index, at + BUCKET_HEADER_BYTES + s * ENTRY_BYTES).unwrap_or(0));
        if found.is_none() && slots.clone().any(|e| e != 0 && entry_tag(e) == tag(hash)) {
            found = Some(position);
        }
        let next = read_u32(index, at + BUCKET_NEXT_EXTRA_OFFSET).unwrap_or(0) as usize;
        if next == 0 {
            return (found, position + 1);
        }
        at = (config.buckets as usize + next - 1) * bucket_bytes;
    }
    unreachable!("the loop returns")
}

#[test]
fn a_get_takes_one_step_per_bucket_of_the_chain_it_walks() {
    let config = MicaConfig {
        extra_buckets: 6,
        ..small_config(2)
    };
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    let mut vm = MicaVm::new(config).expect("engine");
    // 7 slots per bucket: 30 keys chain the primary bucket to four extra buckets.
    let keys = keys_in_bucket(2, 1, 31);
    for key in &keys[..30] {
        assert_eq!(table.set(key, key).expect("set").evicted, None);
    }
    let (_, chain_len) = chain_position(&table, &keys[0]);
    assert_eq!(chain_len, 5, "30 keys over 7-slot buckets");
    for key in &keys[..30] {
        let (value, run) = both(&table, &mut vm, key);
        assert_eq!(value.as_deref(), Some(key.as_slice()));
        let (position, _) = chain_position(&table, key);
        let position = position.expect("indexed");
        // the primary bucket, one step per extra bucket, then the item
        assert_eq!(usize::from(run.steps), position + 2, "key {key:?}");
        assert_eq!(run.attempts, 0);
    }
    // An absent key walks the whole chain, then reads the version once more.
    let (value, run) = both(&table, &mut vm, &keys[30]);
    assert_eq!(value, None);
    assert_eq!(usize::from(run.steps), chain_len + 1);
    // An empty bucket: the probe and the version check.
    let other = keys_in_bucket(2, 0, 1);
    let (value, run) = both(&table, &mut vm, &other[0]);
    assert_eq!((value, run.steps), (None, 2));
}

#[test]
fn a_key_sharing_a_stored_keys_tag_misses_after_comparing_the_item() {
    let config = small_config(1);
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    let mut vm = MicaVm::new(config).expect("engine");
    table.set(b"first", b"1").expect("set");
    let twin = same_tag_key(1, b"first");
    let (value, run) = both(&table, &mut vm, &twin);
    // Step 0 finds the tag, step 1 reads the item (another key) with the tail and the version:
    // the version was read after everything, so the miss needs no further step.
    assert_eq!((value, run.steps), (None, 2));
    // A SET of the twin takes the entry (same-tag eviction): now the first key misses.
    let evicted = table.set(&twin, b"2").expect("set").evicted;
    assert_eq!(evicted.map(|e| e.key_hash), Some(key_hash(b"first")));
    assert_eq!(both(&table, &mut vm, b"first").0, None);
    assert_eq!(both(&table, &mut vm, &twin).0, Some(b"2".to_vec()));
}

fn overflow_one_bucket(eviction: BucketEviction) -> Vec<bool> {
    let config = MicaConfig {
        eviction,
        ..small_config(1)
    };
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    let mut vm = MicaVm::new(config).expect("engine");
    let keys = keys_in_bucket(1, 0, 8);
    for key in &keys {
        table.set(key, key).expect("set");
    }
    keys.iter()
        .map(|key| both(&table, &mut vm, key).0.is_some())
        .collect()
}

#[test]
fn bucket_overflow_evicts_by_either_rule_on_both_paths() {
    let oldest = overflow_one_bucket(BucketEviction::Oldest);
    assert_eq!(oldest, [false, true, true, true, true, true, true, true]);
    let newest = overflow_one_bucket(BucketEviction::NewestAsReleasedCode);
    assert_eq!(newest, [true, true, true, true, true, true, false, true]);
}

#[test]
fn log_wrap_hides_overwritten_items_on_both_paths() {
    // 256-byte log and 40-byte items: only the newest 6 survive; some cross the log's end.
    let config = MicaConfig {
        log_bytes: 256,
        item_bytes_max: 128,
        ..small_config(64)
    };
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    let mut vm = MicaVm::new(config).expect("engine");
    let keys: Vec<Vec<u8>> = (0..40u64).map(|i| i.to_le_bytes().to_vec()).collect();
    let offsets: Vec<u64> = keys
        .iter()
        .map(|k| table.set(k, k).expect("set").offset)
        .collect();
    let (mut hits, mut stale_entries) = (0, 0);
    for (key, &offset) in keys.iter().zip(&offsets) {
        let (value, _) = both(&table, &mut vm, key);
        let valid = offset_is_valid(table.tail(), offset, config.log_bytes);
        assert_eq!(value.is_some(), valid, "key {key:?} at {offset}");
        hits += usize::from(value.is_some());
        // The entry of an overwritten item may still be in its bucket: the offset check decides.
        let (position, _) = chain_position(&table, key);
        stale_entries += usize::from(!valid && position.is_some());
    }
    assert_eq!(hits, 6);
    assert!(
        stale_entries > 0,
        "some misses come from the offset check alone"
    );
}
