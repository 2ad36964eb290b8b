//! Errors of the tree's boundaries: building, opening, looking up, inserting.

use crate::config::ConfigError;

/// A bulk load failed; the region is left unspecified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The configuration is invalid.
    #[error("invalid B-tree configuration: {0}")]
    Config(#[from] ConfigError),
    /// The region is smaller than the configuration says.
    #[error("nodes region has {bytes_given} bytes, the configuration needs {bytes_needed}")]
    RegionTooSmall {
        /// Bytes the configuration needs.
        bytes_needed: usize,
        /// Bytes the caller provided.
        bytes_given: usize,
    },
    /// The fill factor is not in 1..=100 percent.
    #[error("fill = {fill_percent} %: must be in 1..=100")]
    FillPercent {
        /// The rejected value.
        fill_percent: u8,
    },
    /// The pairs are not sorted by strictly increasing key.
    #[error("pair {index} has key {key}, not greater than the previous key {previous}")]
    Unsorted {
        /// Position of the offending pair.
        index: usize,
        /// Its key.
        key: u64,
        /// The key before it.
        previous: u64,
    },
    /// The tree needs more nodes than the region holds.
    #[error("the tree needs {nodes_needed} nodes, the region holds {nodes_max}")]
    Full {
        /// Nodes needed, superblock included.
        nodes_needed: u64,
        /// Nodes the region holds.
        nodes_max: u64,
    },
    /// The tree would be taller than `HEIGHT_MAX` (tiny nodes, huge data).
    #[error("the tree would have {height} levels, more than {max}", max = crate::layout::HEIGHT_MAX)]
    TooDeep {
        /// Levels needed.
        height: usize,
    },
}

/// A region cannot be opened as a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The region is shorter than its superblock says, or than one node.
    #[error("nodes region has {bytes_given} bytes, the superblock needs {bytes_needed}")]
    RegionTooSmall {
        /// Bytes needed.
        bytes_needed: usize,
        /// Bytes provided.
        bytes_given: usize,
    },
    /// The region does not start with the tree's magic number.
    #[error("nodes region has magic {found:#018x}, not a B-tree")]
    BadMagic {
        /// The first 8 bytes.
        found: u64,
    },
    /// A superblock field is out of range.
    #[error("superblock field `{field}` = {value} is out of range")]
    BadSuperblock {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: u64,
    },
}

/// A lookup or range scan failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Every attempt met a node being written (odd or unequal versions) or a stale path.
    #[error("gave up after {attempts} attempts: node {node_offset:#x} kept changing")]
    RetriesExhausted {
        /// The last node that forced a retry.
        node_offset: u64,
        /// Attempts made.
        attempts: usize,
    },
    /// A stable node is inconsistent.
    #[error("node {node_offset:#x} is corrupt: {reason}")]
    Corrupt {
        /// The node's offset.
        node_offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

/// An insert failed; the tree is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The splits this insert needs would exceed the region.
    #[error("no room: the insert needs {nodes_needed} more nodes, {nodes_free} are free")]
    Full {
        /// Nodes the splits need.
        nodes_needed: u64,
        /// Nodes left in the region.
        nodes_free: u64,
    },
    /// The root would split beyond `HEIGHT_MAX` levels.
    #[error("the tree is already {height} levels high")]
    TooDeep {
        /// Current height.
        height: usize,
    },
    /// A node on the path is locked (odd version) by another writer, or corrupt.
    #[error("lookup of the insert path failed: {0}")]
    Path(#[from] LookupError),
}
