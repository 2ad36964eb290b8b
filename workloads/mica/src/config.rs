//! Table configuration, its validation, and the region sizes it implies.

use crate::layout::{
    BUCKET_HEADER_BYTES, ENTRY_BYTES, ITEM_BYTES_LIMIT, ITEM_HEADER_BYTES, META_BYTES,
    META_CONFIG_OFFSET, read_u32, read_u64, write_u32, write_u64,
};

/// Most primary buckets (MICA allows up to 2^32; 2^30 × 128 B is already 128 GiB of index).
pub const BUCKETS_MAX: u32 = 1 << 30;
/// Most extra buckets (their 1-based index is a u32).
pub const EXTRA_BUCKETS_MAX: u32 = 1 << 28;
/// Smallest log (small logs make wrap-around testable).
pub const LOG_BYTES_MIN: u64 = 256;
/// Largest log; MICA requires at most 2^47 so that 48-bit offsets stay unambiguous.
pub const LOG_BYTES_MAX: u64 = 1 << 40;
/// Smallest `item_bytes_max`: a header and one 8-byte word of key.
pub const ITEM_BYTES_MAX_MIN: u32 = (ITEM_HEADER_BYTES + 8) as u32;

/// Default primary buckets of the CLI (2^16 × 128 B = 8 MiB of index).
pub const DEFAULT_BUCKETS: u32 = 1 << 16;
/// Default log size of the CLI (64 MiB).
pub const DEFAULT_LOG_BYTES: u64 = 1 << 26;

/// Entries per bucket: 7 fills one 64-byte cache line; MICA's released build uses 15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slots {
    /// 7 entries: a 64-byte bucket.
    Seven,
    /// 15 entries: a 128-byte bucket (MICA's `MEHCACHED_ITEMS_PER_BUCKET`).
    Fifteen,
}

impl Slots {
    /// The number of entries.
    pub const fn count(self) -> usize {
        match self {
            Slots::Seven => 7,
            Slots::Fifteen => 15,
        }
    }

    /// Bytes of one bucket.
    pub const fn bucket_bytes(self) -> usize {
        BUCKET_HEADER_BYTES + ENTRY_BYTES * self.count()
    }

    /// `Slots` for 7 or 15.
    pub fn from_count(count: u32) -> Result<Self, ConfigError> {
        match count {
            7 => Ok(Slots::Seven),
            15 => Ok(Slots::Fifteen),
            _ => Err(ConfigError::Slots { slots: count }),
        }
    }
}

/// Which entry a SET replaces when the key's bucket chain is full.
///
/// MICA's paper evicts the *oldest* item of the bucket (largest distance from the log tail). Its
/// released code (`mehcached_find_empty_or_oldest` in `efficient/mica` and the same function in
/// `mica2`) keeps the entry with the *smallest* distance instead — the newest — because the
/// comparison is `oldest_item_distance > distance`. We default to the documented behaviour and
/// offer the released code's as an option, so either can be measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BucketEviction {
    /// Evict the entry farthest behind the log tail (entries already overwritten by the log go
    /// first, then the oldest live item).
    Oldest,
    /// Evict the entry nearest the log tail, as MICA's released code does.
    NewestAsReleasedCode,
}

impl BucketEviction {
    fn code(self) -> u32 {
        match self {
            BucketEviction::Oldest => 0,
            BucketEviction::NewestAsReleasedCode => 1,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(BucketEviction::Oldest),
            1 => Some(BucketEviction::NewestAsReleasedCode),
            _ => None,
        }
    }
}

/// The shape of a MICA table. Every field is explicit; `MicaConfig::new` gives the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MicaConfig {
    /// Primary buckets: a power of two in `1..=BUCKETS_MAX`.
    pub buckets: u32,
    /// Entries per bucket.
    pub slots: Slots,
    /// Extra buckets that chain onto full primary buckets (0 = MICA's lossy build, which never
    /// chains; see the crate docs).
    pub extra_buckets: u32,
    /// Bytes of the circular log: a power of two in `LOG_BYTES_MIN..=LOG_BYTES_MAX`.
    pub log_bytes: u64,
    /// Largest item (header + padded key + padded value) a SET accepts, a multiple of 8 in
    /// `ITEM_BYTES_MAX_MIN..=ITEM_BYTES_LIMIT` and at most `log_bytes`. The log region carries
    /// this many bytes past `log_bytes` so that any item is contiguous (see `layout`).
    pub item_bytes_max: u32,
    /// Victim choice on a full bucket chain.
    pub eviction: BucketEviction,
}

/// Sizes of the three regions a configuration needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionSizes {
    /// Bytes of the `index` region: (buckets + extra buckets) × bucket bytes.
    pub index_bytes: usize,
    /// Bytes of the `log` region: `log_bytes + item_bytes_max` (the tail mirror).
    pub log_bytes: usize,
    /// Bytes of the `meta` region.
    pub meta_bytes: usize,
}

/// A configuration that cannot describe a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The bucket count is zero, not a power of two, or above `BUCKETS_MAX`.
    #[error("buckets = {buckets}: must be a power of two in 1..={max}", max = BUCKETS_MAX)]
    Buckets {
        /// The rejected value.
        buckets: u32,
    },
    /// The slot count is neither 7 nor 15.
    #[error("slots = {slots}: must be 7 or 15")]
    Slots {
        /// The rejected value.
        slots: u32,
    },
    /// Too many extra buckets.
    #[error("extra buckets = {extra_buckets}: must be at most {max}", max = EXTRA_BUCKETS_MAX)]
    ExtraBuckets {
        /// The rejected value.
        extra_buckets: u32,
    },
    /// The log size is not a power of two in range.
    #[error(
        "log bytes = {log_bytes}: must be a power of two in {min}..={max}",
        min = LOG_BYTES_MIN,
        max = LOG_BYTES_MAX
    )]
    LogBytes {
        /// The rejected value.
        log_bytes: u64,
    },
    /// The item size bound is out of range, not a multiple of 8, or larger than the log.
    #[error(
        "item bytes max = {item_bytes_max}: must be a multiple of 8 in {min}..={max} and at most the log size",
        min = ITEM_BYTES_MAX_MIN,
        max = ITEM_BYTES_LIMIT
    )]
    ItemBytesMax {
        /// The rejected value.
        item_bytes_max: u32,
    },
    /// The regions would not fit this machine's address space.
    #[error("the regions of this configuration do not fit in memory (usize overflow)")]
    TooLarge,
}

impl MicaConfig {
    /// The defaults: 2^16 buckets of 15 slots, no extra buckets, a 64 MiB log, items up to
    /// `ITEM_BYTES_LIMIT`, evict the oldest.
    pub fn new() -> Self {
        MicaConfig {
            buckets: DEFAULT_BUCKETS,
            slots: Slots::Fifteen,
            extra_buckets: 0,
            log_bytes: DEFAULT_LOG_BYTES,
            item_bytes_max: ITEM_BYTES_LIMIT as u32,
            eviction: BucketEviction::Oldest,
        }
    }

    /// Checks every bound and returns the region sizes.
    pub fn validate(&self) -> Result<RegionSizes, ConfigError> {
        if !self.buckets.is_power_of_two() || self.buckets > BUCKETS_MAX {
            return Err(ConfigError::Buckets {
                buckets: self.buckets,
            });
        }
        if self.extra_buckets > EXTRA_BUCKETS_MAX {
            return Err(ConfigError::ExtraBuckets {
                extra_buckets: self.extra_buckets,
            });
        }
        let log_ok = self.log_bytes.is_power_of_two()
            && (LOG_BYTES_MIN..=LOG_BYTES_MAX).contains(&self.log_bytes);
        if !log_ok {
            return Err(ConfigError::LogBytes {
                log_bytes: self.log_bytes,
            });
        }
        let item_ok = self.item_bytes_max.is_multiple_of(8)
            && (ITEM_BYTES_MAX_MIN..=ITEM_BYTES_LIMIT as u32).contains(&self.item_bytes_max)
            && u64::from(self.item_bytes_max) <= self.log_bytes;
        if !item_ok {
            return Err(ConfigError::ItemBytesMax {
                item_bytes_max: self.item_bytes_max,
            });
        }
        self.region_sizes()
    }

    fn region_sizes(&self) -> Result<RegionSizes, ConfigError> {
        let buckets_total = u64::from(self.buckets) + u64::from(self.extra_buckets);
        let index_bytes = buckets_total
            .checked_mul(self.slots.bucket_bytes() as u64)
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(ConfigError::TooLarge)?;
        let log_bytes = self
            .log_bytes
            .checked_add(u64::from(self.item_bytes_max))
            .and_then(|b| usize::try_from(b).ok())
            .ok_or(ConfigError::TooLarge)?;
        Ok(RegionSizes {
            index_bytes,
            log_bytes,
            meta_bytes: META_BYTES,
        })
    }

    /// Bytes of one bucket.
    pub fn bucket_bytes(&self) -> usize {
        self.slots.bucket_bytes()
    }

    /// Writes this configuration into the meta region (after the tail and free-list head), so
    /// that `MicaTable::open` / `MicaReader::open` can check regions they did not format.
    pub(crate) fn write_meta(&self, meta: &mut [u8]) {
        let at = META_CONFIG_OFFSET;
        write_u32(meta, at, self.buckets);
        write_u32(meta, at + 4, self.slots.count() as u32);
        write_u32(meta, at + 8, self.extra_buckets);
        write_u32(meta, at + 12, self.item_bytes_max);
        write_u64(meta, at + 16, self.log_bytes);
        write_u32(meta, at + 24, self.eviction.code());
    }

    /// Reads back what `write_meta` wrote; `None` if a field is undecodable.
    pub(crate) fn read_meta(meta: &[u8]) -> Option<Result<Self, ConfigError>> {
        let at = META_CONFIG_OFFSET;
        let slots = match Slots::from_count(read_u32(meta, at + 4)?) {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        let config = MicaConfig {
            buckets: read_u32(meta, at)?,
            slots,
            extra_buckets: read_u32(meta, at + 8)?,
            item_bytes_max: read_u32(meta, at + 12)?,
            log_bytes: read_u64(meta, at + 16)?,
            eviction: BucketEviction::from_code(read_u32(meta, at + 24)?)?,
        };
        Some(config.validate().map(|_| config))
    }
}

impl Default for MicaConfig {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut MicaConfig)) -> Result<RegionSizes, ConfigError> {
        let mut c = MicaConfig::new();
        f(&mut c);
        c.validate()
    }

    #[test]
    fn defaults_are_valid_and_sized_as_documented() {
        let sizes = MicaConfig::new().validate();
        assert_eq!(
            sizes,
            Ok(RegionSizes {
                index_bytes: (1 << 16) * 128,
                log_bytes: (1 << 26) + ITEM_BYTES_LIMIT,
                meta_bytes: 64
            })
        );
    }

    #[test]
    fn each_bound_is_enforced() {
        assert_eq!(
            with(|c| c.buckets = 0),
            Err(ConfigError::Buckets { buckets: 0 })
        );
        assert_eq!(
            with(|c| c.buckets = 12),
            Err(ConfigError::Buckets { buckets: 12 })
        );
        assert_eq!(
            with(|c| c.buckets = BUCKETS_MAX * 2),
            Err(ConfigError::Buckets {
                buckets: BUCKETS_MAX * 2
            })
        );
        assert_eq!(Slots::from_count(8), Err(ConfigError::Slots { slots: 8 }));
        assert_eq!(
            with(|c| c.extra_buckets = EXTRA_BUCKETS_MAX + 1),
            Err(ConfigError::ExtraBuckets {
                extra_buckets: EXTRA_BUCKETS_MAX + 1
            })
        );
        assert_eq!(
            with(|c| c.log_bytes = 128),
            Err(ConfigError::LogBytes { log_bytes: 128 })
        );
        assert_eq!(
            with(|c| c.log_bytes = 1000),
            Err(ConfigError::LogBytes { log_bytes: 1000 })
        );
        assert_eq!(
            with(|c| c.item_bytes_max = 44),
            Err(ConfigError::ItemBytesMax { item_bytes_max: 44 })
        );
        assert_eq!(
            with(|c| {
                c.log_bytes = 256;
                c.item_bytes_max = 512;
            }),
            Err(ConfigError::ItemBytesMax {
                item_bytes_max: 512
            })
        );
        assert!(with(|c| c.slots = Slots::Seven).is_ok());
    }

    #[test]
    fn meta_round_trips_the_configuration() {
        let mut c = MicaConfig::new();
        c.slots = Slots::Seven;
        c.extra_buckets = 9;
        c.eviction = BucketEviction::NewestAsReleasedCode;
        let mut meta = [0u8; META_BYTES];
        c.write_meta(&mut meta);
        assert_eq!(MicaConfig::read_meta(&meta), Some(Ok(c)));
    }
}
