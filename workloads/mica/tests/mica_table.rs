//! Scenario tests of the native table: SET/GET/DELETE, each eviction cause, extra-bucket
//! chains, the version protocol, reopening regions, and the byte layout.

mod common;

use common::{Regions, keys_in_bucket, same_tag_key, small_config};
use expect_test::expect;
use naam_mica::hash::key_hash;
use naam_mica::layout::{
    BUCKET_VERSION_OFFSET, META_TAIL_OFFSET, bucket_index, distance_from_tail, offset_is_valid,
};
use naam_mica::{
    BucketEviction, EvictionReason, MicaConfig, MicaReader, MicaTable, OpError, OpenError, SetKind,
    Slots,
};

#[test]
fn set_get_delete_round_trip_with_in_place_and_rewritten_updates() {
    let config = small_config(16);
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    assert_eq!(table.get(b"alpha"), Ok(None));
    let first = table.set(b"alpha", b"12345678").expect("set");
    assert_eq!(first.kind, SetKind::Inserted);
    assert_eq!(table.get(b"alpha"), Ok(Some(b"12345678".to_vec())));

    let same_size = table.set(b"alpha", b"abc").expect("set");
    assert_eq!(same_size.kind, SetKind::UpdatedInPlace);
    assert_eq!(same_size.offset, first.offset);
    assert_eq!(table.get(b"alpha"), Ok(Some(b"abc".to_vec())));

    let longer = table.set(b"alpha", &[7u8; 100]).expect("set");
    assert_eq!(longer.kind, SetKind::Rewritten);
    assert_ne!(longer.offset, first.offset);
    assert_eq!(table.get(b"alpha"), Ok(Some(vec![7u8; 100])));

    assert_eq!(table.delete(b"alpha"), Ok(true));
    assert_eq!(table.get(b"alpha"), Ok(None));
    assert_eq!(table.delete(b"alpha"), Ok(false));
    assert_eq!(table.stats().sets_inserted, 1);
    assert_eq!(table.stats().sets_in_place, 1);
    assert_eq!(table.stats().sets_rewritten, 1);
    assert_eq!(table.stats().deletes, 1);
}

#[test]
fn oversized_keys_values_and_items_are_refused() {
    let config = small_config(4);
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    assert_eq!(
        table.set(&[1; 193], b"v"),
        Err(OpError::KeyTooLong { key_bytes: 193 })
    );
    assert_eq!(
        table.set(b"k", &[1; 1017]),
        Err(OpError::ValueTooLong { value_bytes: 1017 })
    );
    assert_eq!(
        table.set(b"k", &[1; 300]),
        Err(OpError::ItemTooLarge {
            item_bytes: 24 + 8 + 304,
            item_bytes_max: 256
        })
    );
    assert_eq!(
        table.get(&[1; 193]),
        Err(OpError::KeyTooLong { key_bytes: 193 })
    );
    assert_eq!(
        table.delete(&[1; 193]),
        Err(OpError::KeyTooLong { key_bytes: 193 })
    );
}

fn overflow_one_bucket(
    eviction: BucketEviction,
) -> (Vec<Vec<u8>>, Vec<Option<naam_mica::Eviction>>, Vec<bool>) {
    let config = MicaConfig {
        eviction,
        ..small_config(1)
    };
    let keys = keys_in_bucket(1, 0, 8);
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    let evictions: Vec<_> = keys
        .iter()
        .map(|k| table.set(k, k).expect("set").evicted)
        .collect();
    let hits = keys
        .iter()
        .map(|k| table.get(k).expect("get").is_some())
        .collect();
    (keys, evictions, hits)
}

#[test]
fn bucket_overflow_evicts_the_oldest_item() {
    let (keys, evictions, hits) = overflow_one_bucket(BucketEviction::Oldest);
    assert!(
        evictions[..7].iter().all(Option::is_none),
        "7 slots fill without eviction"
    );
    let evicted = evictions[7].expect("the 8th key evicts");
    assert_eq!(evicted.reason, EvictionReason::BucketFull);
    assert_eq!(
        evicted.key_hash,
        key_hash(&keys[0]),
        "oldest = first written"
    );
    assert_eq!(hits, [false, true, true, true, true, true, true, true]);
}

#[test]
fn bucket_overflow_as_released_mica_code_evicts_the_newest_item() {
    let (keys, evictions, hits) = overflow_one_bucket(BucketEviction::NewestAsReleasedCode);
    let evicted = evictions[7].expect("the 8th key evicts");
    assert_eq!(
        evicted.key_hash,
        key_hash(&keys[6]),
        "smallest distance from tail = 7th key"
    );
    assert_eq!(hits, [true, true, true, true, true, true, false, true]);
}

#[test]
fn a_new_key_with_the_same_tag_takes_the_entry() {
    let config = small_config(1);
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    let twin = same_tag_key(1, b"first");
    assert!(!twin.is_empty());
    table.set(b"first", b"1").expect("set");
    let report = table.set(&twin, b"2").expect("set");
    let evicted = report.evicted.expect("same tag evicts");
    assert_eq!(evicted.reason, EvictionReason::SameTag);
    assert_eq!(evicted.key_hash, key_hash(b"first"));
    assert_eq!(table.get(b"first"), Ok(None));
    assert_eq!(table.get(&twin), Ok(Some(b"2".to_vec())));
    assert_eq!(table.stats().evictions_same_tag, 1);
}

#[test]
fn log_wrap_invalidates_overwritten_items_and_items_crossing_the_end_stay_readable() {
    // 256-byte log, 40-byte items: only the newest 6 fit; 40 does not divide 256, so items
    // cross the end of the log and live partly in the tail mirror.
    let config = MicaConfig {
        log_bytes: 256,
        item_bytes_max: 128,
        ..small_config(64)
    };
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    let keys: Vec<Vec<u8>> = (0..40u64).map(|i| i.to_le_bytes().to_vec()).collect();
    let offsets: Vec<u64> = keys
        .iter()
        .map(|k| table.set(k, &k.repeat(1)).expect("set").offset)
        .collect();
    let tail = table.tail();
    assert_eq!(tail, 40 * 40);
    let mut crossing_hits = 0;
    for (key, &offset) in keys.iter().zip(&offsets) {
        let valid = offset_is_valid(tail, offset, 256);
        let got = table.get(key).expect("get");
        assert_eq!(
            got.is_some(),
            valid,
            "key {key:?} at offset {offset}, tail {tail}"
        );
        if let Some(value) = got {
            assert_eq!(&value, key);
            crossing_hits += usize::from(offset % 256 + 40 > 256);
        }
    }
    let valid_count = offsets
        .iter()
        .filter(|&&o| distance_from_tail(tail, o) <= 256)
        .count();
    assert_eq!(valid_count, 6);
    assert_eq!(
        crossing_hits, 1,
        "exactly one live item crosses the end of the log"
    );
}

#[test]
fn extra_buckets_chain_when_full_and_are_freed_by_delete() {
    let config = MicaConfig {
        extra_buckets: 2,
        ..small_config(1)
    };
    let keys = keys_in_bucket(1, 0, 22);
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    for key in &keys[..21] {
        assert_eq!(table.set(key, key).expect("set").evicted, None);
    }
    assert_eq!(table.stats().extra_buckets_in_use, 2);
    let full = table.set(&keys[21], b"x").expect("set");
    assert_eq!(
        full.evicted.map(|e| e.reason),
        Some(EvictionReason::BucketFull)
    );
    assert_eq!(full.evicted.map(|e| e.key_hash), Some(key_hash(&keys[0])));

    // Deleting from the primary bucket pulls entries back from the last extra bucket.
    for key in &keys[1..9] {
        assert_eq!(table.delete(key), Ok(true));
    }
    assert_eq!(table.stats().extra_buckets_in_use, 1);
    for key in &keys[9..21] {
        assert_eq!(
            table.get(key).expect("get").as_deref(),
            Some(key.as_slice())
        );
    }
    for key in &keys[9..16] {
        assert_eq!(table.delete(key), Ok(true));
    }
    assert_eq!(table.stats().extra_buckets_in_use, 0);
    for key in &keys[16..21] {
        assert_eq!(
            table.get(key).expect("get").as_deref(),
            Some(key.as_slice())
        );
    }
}

#[test]
fn an_odd_bucket_version_makes_get_retry_and_set_refuse() {
    let config = small_config(4);
    let mut regions = Regions::new(&config);
    let bucket = bucket_index(key_hash(b"k"), 4) as usize;
    {
        let mut table = regions.format(config);
        table.set(b"k", b"v").expect("set");
    }
    let version_at = bucket * config.bucket_bytes() + BUCKET_VERSION_OFFSET;
    assert_eq!(
        regions.index[version_at], 2,
        "one SET: locked once, unlocked once"
    );
    regions.index[version_at] = 3;
    let reader = MicaReader::open(regions.regions()).expect("open");
    assert_eq!(
        reader.get(b"k"),
        Err(OpError::RetriesExhausted {
            bucket: bucket as u32,
            attempts: naam_mica::reader::GET_ATTEMPTS_MAX
        })
    );
    let mut table = regions.open();
    assert_eq!(
        table.set(b"k", b"w"),
        Err(OpError::BucketLocked {
            bucket: bucket as u32,
            version: 3
        })
    );
}

#[test]
fn formatted_regions_reopen_with_their_contents() {
    let config = MicaConfig {
        slots: Slots::Fifteen,
        extra_buckets: 3,
        ..small_config(8)
    };
    let mut regions = Regions::new(&config);
    {
        let mut table = regions.format(config);
        for i in 0..50u32 {
            table
                .set(&i.to_be_bytes(), &(i * 3).to_be_bytes())
                .expect("set");
        }
    }
    let reader = MicaReader::open(regions.regions()).expect("open");
    assert_eq!(reader.config(), &config);
    for i in 0..50u32 {
        assert_eq!(
            reader.get(&i.to_be_bytes()),
            Ok(Some((i * 3).to_be_bytes().to_vec()))
        );
    }
    let mut table = regions.open();
    assert_eq!(table.delete(&7u32.to_be_bytes()), Ok(true));
    assert_eq!(table.get(&7u32.to_be_bytes()), Ok(None));
}

#[test]
fn unformatted_or_short_regions_are_refused() {
    let config = small_config(8);
    let mut regions = Regions::new(&config);
    assert_eq!(
        MicaReader::open(regions.regions()).err(),
        Some(OpenError::BadMagic { found: 0 })
    );
    regions.format(config);
    let short = naam_mica::MicaRegions {
        index: &regions.index[..10],
        log: &regions.log,
        meta: &regions.meta,
    };
    assert_eq!(
        MicaReader::open(short).err(),
        Some(OpenError::RegionTooSmall {
            region: "index",
            bytes_needed: 8 * 64,
            bytes_given: 10
        })
    );
    let bad = MicaConfig {
        buckets: 3,
        ..config
    };
    assert!(matches!(
        MicaTable::format(bad, regions.regions_mut()),
        Err(OpenError::Config(_))
    ));
}

#[test]
fn cleanup_clears_entries_the_log_has_passed_as_the_tail_sweeps_the_buckets() {
    // 4 buckets: the cleanup cursor advances one bucket per 2^45 bytes of log (half of the
    // 48-bit offset space spread over the buckets).
    let config = small_config(4);
    let mut regions = Regions::new(&config);
    let bucket = u64::from(bucket_index(key_hash(b"old"), 4));
    {
        let mut table = regions.format(config);
        table.set(b"old", b"v").expect("set");
    }
    // Jump the tail to just before the boundary that finishes `bucket`'s sweep.
    let tail = ((bucket + 1) << 45) - 8;
    regions.meta[META_TAIL_OFFSET..META_TAIL_OFFSET + 8].copy_from_slice(&tail.to_le_bytes());
    let mut table = regions.open();
    assert_eq!(table.get(b"old"), Ok(None), "the log has passed it");
    table.set(b"new", b"w").expect("set");
    assert_eq!(table.stats().entries_cleaned, 1);
    assert_eq!(table.get(b"new"), Ok(Some(b"w".to_vec())));
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(8)
        .map(|w| w.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn byte_layout_of_a_bucket_and_an_item() {
    let config = small_config(1);
    let mut regions = Regions::new(&config);
    {
        let mut table = regions.format(config);
        table.set(b"key", b"value").expect("set");
        table.set(b"k2", b"").expect("set");
    }
    let dump = format!(
        "hash(key) {:016x}\nbucket    {}\nitem      {}\nmeta      {}\n",
        key_hash(b"key"),
        hex(&regions.index[..64]),
        hex(&regions.log[..40]),
        hex(&regions.meta[..24]),
    );
    expect![[r#"
        hash(key) 99856d7c6e9accf9
        bucket    0400000000000000 000000000000f9cc 2800000000001a69 0000000000000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000
        item      2800000000000000 0500000300000000 f9cc9a6e7c6d8599 6b65790000000000 76616c7565000000
        meta      4d4943414e41414d 4800000000000000 0000000000000000
    "#]].assert_eq(&dump);
}

/// `format_zeroed` over zeroed regions leaves the bytes `format` leaves over dirty ones, before
/// and after the same SETs (extra buckets included: their free list is linked in both).
#[test]
fn format_zeroed_of_zero_regions_equals_format_of_dirty_ones() {
    let mut config = small_config(8);
    config.extra_buckets = 3;
    let (mut dirty, mut zeroed) = (Regions::new(&config), Regions::new(&config));
    for part in [&mut dirty.index, &mut dirty.log, &mut dirty.meta] {
        part.fill(0xa5);
    }
    {
        let mut a = MicaTable::format(config, dirty.regions_mut()).expect("format");
        let mut b = MicaTable::format_zeroed(config, zeroed.regions_mut()).expect("format_zeroed");
        for k in 0u64..40 {
            let (key, value) = (k.to_le_bytes(), (k * 7).to_le_bytes());
            assert_eq!(a.set(&key, &value).is_ok(), b.set(&key, &value).is_ok());
        }
    }
    assert!(dirty.index == zeroed.index, "index bytes differ");
    assert!(dirty.log == zeroed.log, "log bytes differ");
    assert!(dirty.meta == zeroed.meta, "meta bytes differ");
}
