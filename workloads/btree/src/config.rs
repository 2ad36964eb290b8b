//! Tree configuration: node size and region capacity.

use crate::layout::{
    NODE_BYTES_ALIGN, NODE_BYTES_DEFAULT, NODE_BYTES_MAX, NODE_BYTES_MIN, capacity,
};

/// Most nodes of one region (superblock included).
pub const NODES_MAX_LIMIT: u64 = 1 << 32;

/// The shape of a `nodes` region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BTreeConfig {
    /// Bytes of every node: a multiple of 64 in `NODE_BYTES_MIN..=NODE_BYTES_MAX`.
    pub node_bytes: u32,
    /// Nodes the region holds, superblock included: `2..=NODES_MAX_LIMIT`.
    pub nodes_max: u64,
}

/// A configuration that cannot describe a region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The node size is out of range or not a multiple of 64.
    #[error(
        "node bytes = {node_bytes}: must be a multiple of {align} in {min}..={max}",
        align = NODE_BYTES_ALIGN,
        min = NODE_BYTES_MIN,
        max = NODE_BYTES_MAX
    )]
    NodeBytes {
        /// The rejected value.
        node_bytes: u32,
    },
    /// The node count is below 2 (superblock + root) or above `NODES_MAX_LIMIT`.
    #[error("nodes max = {nodes_max}: must be in 2..={limit}", limit = NODES_MAX_LIMIT)]
    NodesMax {
        /// The rejected value.
        nodes_max: u64,
    },
    /// The region would not fit this machine's address space.
    #[error("a region of {nodes_max} nodes of {node_bytes} bytes does not fit in memory")]
    TooLarge {
        /// Node size.
        node_bytes: u32,
        /// Node count.
        nodes_max: u64,
    },
}

impl BTreeConfig {
    /// `nodes_max` nodes of the default size (1 KB).
    pub fn new(nodes_max: u64) -> Self {
        BTreeConfig {
            node_bytes: NODE_BYTES_DEFAULT,
            nodes_max,
        }
    }

    /// Checks the bounds and returns the region's size in bytes.
    pub fn validate(&self) -> Result<usize, ConfigError> {
        let node_ok = (NODE_BYTES_MIN..=NODE_BYTES_MAX).contains(&self.node_bytes)
            && self.node_bytes.is_multiple_of(NODE_BYTES_ALIGN);
        if !node_ok {
            return Err(ConfigError::NodeBytes {
                node_bytes: self.node_bytes,
            });
        }
        if !(2..=NODES_MAX_LIMIT).contains(&self.nodes_max) {
            return Err(ConfigError::NodesMax {
                nodes_max: self.nodes_max,
            });
        }
        self.nodes_max
            .checked_mul(u64::from(self.node_bytes))
            .and_then(|bytes| usize::try_from(bytes).ok())
            .ok_or(ConfigError::TooLarge {
                node_bytes: self.node_bytes,
                nodes_max: self.nodes_max,
            })
    }

    /// Keys per node.
    pub fn capacity(&self) -> usize {
        capacity(self.node_bytes)
    }

    /// Nodes (superblock included) a bulk load of `entries` keys at `fill_percent` uses, or
    /// `None` if `fill_percent` is not in `1..=100`. Size a region with headroom for inserts.
    pub fn nodes_for_bulk_load(node_bytes: u32, entries: u64, fill_percent: u8) -> Option<u64> {
        if !(1..=100).contains(&fill_percent)
            || !(NODE_BYTES_MIN..=NODE_BYTES_MAX).contains(&node_bytes)
        {
            return None;
        }
        let (leaf_fill, inner_fill) = per_node(capacity(node_bytes), fill_percent);
        let mut level_nodes = entries.div_ceil(leaf_fill as u64).max(1);
        let mut total = 1 + level_nodes;
        while level_nodes > 1 {
            level_nodes = level_nodes.div_ceil(inner_fill as u64);
            total += level_nodes;
        }
        Some(total)
    }
}

/// Entries per leaf and children per inner node of a bulk load at `fill_percent`.
pub(crate) fn per_node(capacity: usize, fill_percent: u8) -> (usize, usize) {
    let filled = capacity * usize::from(fill_percent) / 100;
    (filled.max(1), filled.max(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_enforced() {
        assert_eq!(BTreeConfig::new(10).validate(), Ok(10 * 1024));
        assert_eq!(
            BTreeConfig {
                node_bytes: 100,
                nodes_max: 10
            }
            .validate(),
            Err(ConfigError::NodeBytes { node_bytes: 100 })
        );
        assert_eq!(
            BTreeConfig {
                node_bytes: 1000,
                nodes_max: 10
            }
            .validate(),
            Err(ConfigError::NodeBytes { node_bytes: 1000 })
        );
        assert_eq!(
            BTreeConfig {
                node_bytes: 8192,
                nodes_max: 10
            }
            .validate(),
            Err(ConfigError::NodeBytes { node_bytes: 8192 })
        );
        assert_eq!(
            BTreeConfig::new(1).validate(),
            Err(ConfigError::NodesMax { nodes_max: 1 })
        );
    }

    #[test]
    fn bulk_load_sizing() {
        // 1 KB nodes hold 61 keys; at 100 %, 1000 keys take 17 leaves and one root.
        assert_eq!(
            BTreeConfig::nodes_for_bulk_load(1024, 1000, 100),
            Some(1 + 17 + 1)
        );
        // at 50 %: 30 per leaf -> 34 leaves -> 2 inner -> root
        assert_eq!(
            BTreeConfig::nodes_for_bulk_load(1024, 1000, 50),
            Some(1 + 34 + 2 + 1)
        );
        assert_eq!(BTreeConfig::nodes_for_bulk_load(1024, 0, 50), Some(2));
        assert_eq!(BTreeConfig::nodes_for_bulk_load(1024, 10, 0), None);
    }
}
