//! Errors of the table's two boundaries: opening regions, and operations on an open table.

use crate::config::ConfigError;

/// The regions cannot be formatted or opened as a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The configuration is invalid.
    #[error("invalid MICA configuration: {0}")]
    Config(#[from] ConfigError),
    /// A region is smaller than the configuration needs.
    #[error("region `{region}` has {bytes_given} bytes, the configuration needs {bytes_needed}")]
    RegionTooSmall {
        /// `index`, `log` or `meta`.
        region: &'static str,
        /// Bytes the configuration needs.
        bytes_needed: usize,
        /// Bytes the caller provided.
        bytes_given: usize,
    },
    /// The meta region does not start with the table's magic number (never formatted?).
    #[error("meta region has magic {found:#018x}, not a formatted MICA table")]
    BadMagic {
        /// The first 8 bytes of the meta region.
        found: u64,
    },
    /// The meta region's configuration echo cannot be decoded.
    #[error("meta region holds an undecodable configuration")]
    BadMetaConfig,
}

/// An operation on an open table failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The key is longer than `KEY_BYTES_MAX`.
    #[error("key of {key_bytes} bytes is longer than {max} bytes", max = crate::layout::KEY_BYTES_MAX)]
    KeyTooLong {
        /// Length of the rejected key.
        key_bytes: usize,
    },
    /// The value is longer than `VALUE_BYTES_MAX`.
    #[error("value of {value_bytes} bytes is longer than {max} bytes", max = crate::layout::VALUE_BYTES_MAX)]
    ValueTooLong {
        /// Length of the rejected value.
        value_bytes: usize,
    },
    /// The item (header + padded key + padded value) exceeds the table's `item_bytes_max`.
    #[error("item of {item_bytes} bytes exceeds the table's item_bytes_max of {item_bytes_max}")]
    ItemTooLarge {
        /// Bytes the item would take in the log.
        item_bytes: usize,
        /// The table's bound.
        item_bytes_max: u32,
    },
    /// A bucket's version is odd when this (single) writer wants to lock it: another writer holds
    /// it or died holding it.
    #[error("bucket {bucket} is locked (odd version {version}) by another writer")]
    BucketLocked {
        /// Primary bucket index.
        bucket: u32,
        /// The odd version found.
        version: u32,
    },
    /// A bucket chain names an extra bucket out of range or is longer than `CHAIN_HOPS_MAX`.
    #[error("bucket {bucket}'s chain names extra bucket {next_extra}, out of range or too deep")]
    CorruptChain {
        /// Primary bucket index.
        bucket: u32,
        /// The offending 1-based extra-bucket index.
        next_extra: u32,
    },
    /// A valid, stable item's lengths point outside the log region.
    #[error("item at log offset {offset:#x} has lengths that leave the log region")]
    CorruptItem {
        /// The item's 48-bit log offset.
        offset: u64,
    },
    /// A GET saw the bucket locked or changing on every attempt.
    #[error("GET gave up after {attempts} attempts: bucket {bucket} kept changing")]
    RetriesExhausted {
        /// Primary bucket index.
        bucket: u32,
        /// Attempts made (`GET_ATTEMPTS_MAX`).
        attempts: usize,
    },
}
