//! Host-native GET over shared regions, with MICA's version protocol: read the bucket version
//! (retry while odd), find the item, copy the value, then check the offset against the log tail
//! and the bucket version again (retry if it changed).

use std::sync::atomic::{Ordering, fence};

use crate::config::MicaConfig;
use crate::error::{OpError, OpenError};
use crate::hash::key_hash;
use crate::layout::{
    KEY_BYTES_MAX, META_MAGIC, META_MAGIC_OFFSET, bucket_index, entry_offset, offset_is_valid,
    read_u64, tag,
};
use crate::view::View;

/// Attempts of one GET before it reports `OpError::RetriesExhausted` (MICA spins without bound;
/// we bound it, as everything).
pub const GET_ATTEMPTS_MAX: usize = 64;

/// The three regions of a table, read-only (a reader's view).
#[derive(Debug, Clone, Copy)]
pub struct MicaRegions<'a> {
    /// The `index` region: buckets, then extra buckets.
    pub index: &'a [u8],
    /// The `log` region: `log_bytes` of circular log plus `item_bytes_max` of tail mirror.
    pub log: &'a [u8],
    /// The `meta` region: magic, tail, extra-bucket free list, configuration echo.
    pub meta: &'a [u8],
}

/// The outcome of a GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetOutcome {
    /// The key was found; the value was copied out.
    Hit,
    /// The key is absent, was evicted, or its item was overwritten by the circular log.
    Miss,
}

/// A read-only handle on a formatted table: what a GET needs.
#[derive(Debug, Clone)]
pub struct MicaReader<'a> {
    config: MicaConfig,
    index: &'a [u8],
    log: &'a [u8],
    meta: &'a [u8],
}

pub(crate) fn check_region(
    region: &'static str,
    given: usize,
    needed: usize,
) -> Result<(), OpenError> {
    if given < needed {
        return Err(OpenError::RegionTooSmall {
            region,
            bytes_needed: needed,
            bytes_given: given,
        });
    }
    Ok(())
}

/// Reads and checks the configuration a formatted meta region carries.
pub(crate) fn config_from_meta(meta: &[u8]) -> Result<MicaConfig, OpenError> {
    check_region("meta", meta.len(), crate::layout::META_BYTES)?;
    let magic = read_u64(meta, META_MAGIC_OFFSET).unwrap_or(0);
    if magic != META_MAGIC {
        return Err(OpenError::BadMagic { found: magic });
    }
    match MicaConfig::read_meta(meta) {
        Some(Ok(config)) => Ok(config),
        Some(Err(e)) => Err(OpenError::Config(e)),
        None => Err(OpenError::BadMetaConfig),
    }
}

impl<'a> MicaReader<'a> {
    /// Opens regions formatted by `MicaTable::format`; the configuration comes from `meta`.
    pub fn open(regions: MicaRegions<'a>) -> Result<Self, OpenError> {
        let config = config_from_meta(regions.meta)?;
        let sizes = config.validate()?;
        check_region("index", regions.index.len(), sizes.index_bytes)?;
        check_region("log", regions.log.len(), sizes.log_bytes)?;
        Ok(MicaReader {
            config,
            index: &regions.index[..sizes.index_bytes],
            log: &regions.log[..sizes.log_bytes],
            meta: &regions.meta[..sizes.meta_bytes],
        })
    }

    /// A reader over regions already checked against `config` (by the table that owns them).
    pub(crate) fn from_checked(config: MicaConfig, regions: MicaRegions<'a>) -> Self {
        MicaReader {
            config,
            index: regions.index,
            log: regions.log,
            meta: regions.meta,
        }
    }

    /// The table's configuration.
    pub fn config(&self) -> &MicaConfig {
        &self.config
    }

    pub(crate) fn view(&self) -> View<'_> {
        View {
            config: &self.config,
            index: self.index,
            log: self.log,
            meta: self.meta,
        }
    }

    /// GET: the value of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        let mut value = Vec::new();
        Ok(match self.get_into(key, &mut value)? {
            GetOutcome::Hit => Some(value),
            GetOutcome::Miss => None,
        })
    }

    /// GET into a caller's buffer (cleared first); no allocation when it is large enough.
    pub fn get_into(&self, key: &[u8], value: &mut Vec<u8>) -> Result<GetOutcome, OpError> {
        if key.len() > KEY_BYTES_MAX {
            return Err(OpError::KeyTooLong {
                key_bytes: key.len(),
            });
        }
        get_hashed(self.view(), key, key_hash(key), value)
    }

    /// GET with the key hash a request carries (as `mica_get` uses the hash in its arguments:
    /// a hash that is not the key's finds the wrong bucket or tag and misses).
    pub fn get_hashed_into(
        &self,
        key: &[u8],
        key_hash: u64,
        value: &mut Vec<u8>,
    ) -> Result<GetOutcome, OpError> {
        if key.len() > KEY_BYTES_MAX {
            return Err(OpError::KeyTooLong {
                key_bytes: key.len(),
            });
        }
        get_hashed(self.view(), key, key_hash, value)
    }
}

/// MICA's GET with a precomputed key hash.
pub(crate) fn get_hashed(
    view: View<'_>,
    key: &[u8],
    key_hash: u64,
    value: &mut Vec<u8>,
) -> Result<GetOutcome, OpError> {
    let primary = view.primary_offset(key_hash);
    let bucket = bucket_index(key_hash, view.config.buckets);
    let tag = tag(key_hash);
    for _ in 0..GET_ATTEMPTS_MAX {
        let version_start = view.version(primary);
        if version_start & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        fence(Ordering::Acquire);
        let stable = |v: &View<'_>| {
            fence(Ordering::Acquire);
            v.version(primary) == version_start
        };
        let chain = match view.chain(key_hash) {
            Ok(chain) => chain,
            Err(_) if !stable(&view) => continue,
            Err(bad) => {
                return Err(OpError::CorruptChain {
                    bucket,
                    next_extra: bad.next_extra,
                });
            }
        };
        let Some(at) = view.find_item(&chain, key_hash, tag, key) else {
            if stable(&view) {
                return Ok(GetOutcome::Miss);
            }
            continue;
        };
        let offset = entry_offset(view.entry(at));
        value.clear();
        let copied = view
            .item_header(offset)
            .and_then(|h| view.item_value(offset, &h));
        if let Some(bytes) = copied {
            value.extend_from_slice(bytes);
        }
        fence(Ordering::Acquire);
        let valid = offset_is_valid(view.tail(), offset, view.config.log_bytes);
        if !stable(&view) {
            continue;
        }
        return match (valid, copied.is_some()) {
            (false, _) => Ok(GetOutcome::Miss),
            (true, true) => Ok(GetOutcome::Hit),
            (true, false) => Err(OpError::CorruptItem { offset }),
        };
    }
    Err(OpError::RetriesExhausted {
        bucket,
        attempts: GET_ATTEMPTS_MAX,
    })
}
