//! Helpers shared by the MICA integration tests.
#![allow(dead_code)]

use naam_mica::hash::key_hash;
use naam_mica::layout::{bucket_index, tag};
use naam_mica::{MicaConfig, MicaRegions, MicaRegionsMut, MicaTable};

/// Owned regions for one table.
pub struct Regions {
    pub index: Vec<u8>,
    pub log: Vec<u8>,
    pub meta: Vec<u8>,
}

impl Regions {
    pub fn new(config: &MicaConfig) -> Self {
        let sizes = config.validate().expect("test configuration is valid");
        Regions {
            index: vec![0; sizes.index_bytes],
            log: vec![0; sizes.log_bytes],
            meta: vec![0; sizes.meta_bytes],
        }
    }

    pub fn regions_mut(&mut self) -> MicaRegionsMut<'_> {
        MicaRegionsMut {
            index: &mut self.index,
            log: &mut self.log,
            meta: &mut self.meta,
        }
    }

    pub fn regions(&self) -> MicaRegions<'_> {
        MicaRegions {
            index: &self.index,
            log: &self.log,
            meta: &self.meta,
        }
    }

    pub fn format(&mut self, config: MicaConfig) -> MicaTable<'_> {
        MicaTable::format(config, self.regions_mut()).expect("format")
    }

    pub fn open(&mut self) -> MicaTable<'_> {
        MicaTable::open(self.regions_mut()).expect("open")
    }
}

/// A configuration for tests: `buckets` buckets of 7 slots, no extra buckets, a 64 KiB log.
pub fn small_config(buckets: u32) -> MicaConfig {
    MicaConfig {
        buckets,
        slots: naam_mica::Slots::Seven,
        extra_buckets: 0,
        log_bytes: 1 << 16,
        item_bytes_max: 256,
        eviction: naam_mica::BucketEviction::Oldest,
    }
}

/// `count` keys `k<i>` that map to `bucket`, all with distinct tags.
pub fn keys_in_bucket(buckets: u32, bucket: u32, count: usize) -> Vec<Vec<u8>> {
    let mut tags = std::collections::HashSet::new();
    let mut keys = Vec::new();
    for i in 0u64.. {
        if keys.len() == count {
            break;
        }
        let key = format!("k{i}").into_bytes();
        let h = key_hash(&key);
        if bucket_index(h, buckets) == bucket && tags.insert(tag(h)) {
            keys.push(key);
        }
    }
    keys
}

/// A key other than `key` with the same bucket (of `buckets`) and the same tag.
pub fn same_tag_key(buckets: u32, key: &[u8]) -> Vec<u8> {
    let h = key_hash(key);
    (0u64..)
        .map(|i| format!("t{i}").into_bytes())
        .find(|k| {
            let g = key_hash(k);
            k.as_slice() != key
                && tag(g) == tag(h)
                && bucket_index(g, buckets) == bucket_index(h, buckets)
        })
        .unwrap_or_default()
}

/// The seed for randomised tests: `NAAM_SEED` if set, else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
