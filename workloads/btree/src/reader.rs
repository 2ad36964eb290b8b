//! Host-native lookups and range scans over a shared `nodes` region, with the same checks as the
//! NAAM function: versions equal and even, key inside the fences (else retry from the root),
//! counts, levels and child offsets in range (else corrupt).

use std::sync::atomic::{Ordering, fence};

use crate::error::{LookupError, OpenError};
use crate::layout::{
    HEIGHT_MAX, NODE_BYTES_ALIGN, NODE_BYTES_MAX, NODE_BYTES_MIN, SUPER_ENTRIES_OFFSET,
    SUPER_HEIGHT_OFFSET, SUPER_MAGIC, SUPER_MAGIC_OFFSET, SUPER_NODE_BYTES_OFFSET,
    SUPER_NODES_USED_OFFSET, SUPER_ROOT_OFFSET, read_u32, read_u64,
};
use crate::node::NodeRef;

/// Attempts of one lookup or scan before `LookupError::RetriesExhausted`.
pub const LOOKUP_ATTEMPTS_MAX: usize = 64;

/// What one descent found.
enum Descent<T> {
    Done(T),
    Retry { node_offset: u64 },
}

/// A read-only handle on a tree: what lookups and scans need.
#[derive(Debug, Clone, Copy)]
pub struct BTreeReader<'a> {
    nodes: &'a [u8],
    node_bytes: u32,
}

/// The superblock's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Bytes per node.
    pub node_bytes: u32,
    /// Levels (1 = the root is a leaf).
    pub height: usize,
    /// The root's node offset (fixed once built: root splits happen in place).
    pub root_offset: u64,
    /// Nodes in use, superblock included.
    pub nodes_used: u64,
    /// Keys stored.
    pub entries: u64,
}

/// Reads and checks the superblock of `nodes`.
pub fn read_superblock(nodes: &[u8]) -> Result<Superblock, OpenError> {
    let too_small = |bytes_needed| OpenError::RegionTooSmall {
        bytes_needed,
        bytes_given: nodes.len(),
    };
    let magic = read_u64(nodes, SUPER_MAGIC_OFFSET).ok_or(too_small(NODE_BYTES_MIN as usize))?;
    if magic != SUPER_MAGIC {
        return Err(OpenError::BadMagic { found: magic });
    }
    let node_bytes = read_u32(nodes, SUPER_NODE_BYTES_OFFSET).unwrap_or(0);
    let bad = |field, value| OpenError::BadSuperblock { field, value };
    let node_ok = (NODE_BYTES_MIN..=NODE_BYTES_MAX).contains(&node_bytes)
        && node_bytes.is_multiple_of(NODE_BYTES_ALIGN);
    if !node_ok {
        return Err(bad("node_bytes", u64::from(node_bytes)));
    }
    let height = read_u32(nodes, SUPER_HEIGHT_OFFSET).unwrap_or(0) as usize;
    if !(1..=HEIGHT_MAX).contains(&height) {
        return Err(bad("height", height as u64));
    }
    let nodes_used = read_u64(nodes, SUPER_NODES_USED_OFFSET).unwrap_or(0);
    let bytes_used = nodes_used
        .checked_mul(u64::from(node_bytes))
        .and_then(|b| usize::try_from(b).ok());
    match bytes_used {
        Some(b) if nodes_used >= 2 && b <= nodes.len() => {}
        Some(b) if nodes_used >= 2 => return Err(too_small(b)),
        _ => return Err(bad("nodes_used", nodes_used)),
    }
    let root_offset = read_u64(nodes, SUPER_ROOT_OFFSET).unwrap_or(0);
    let root_ok = root_offset != 0
        && root_offset.is_multiple_of(u64::from(node_bytes))
        && root_offset / u64::from(node_bytes) < nodes_used;
    if !root_ok {
        return Err(bad("root_offset", root_offset));
    }
    let entries = read_u64(nodes, SUPER_ENTRIES_OFFSET).unwrap_or(0);
    Ok(Superblock {
        node_bytes,
        height,
        root_offset,
        nodes_used,
        entries,
    })
}

impl<'a> BTreeReader<'a> {
    /// Opens a region built by `BTree::bulk_load` (possibly by another process).
    pub fn open(nodes: &'a [u8]) -> Result<Self, OpenError> {
        let sb = read_superblock(nodes)?;
        Ok(BTreeReader {
            nodes,
            node_bytes: sb.node_bytes,
        })
    }

    /// A reader over a region whose superblock its writer has checked.
    pub(crate) fn from_checked(nodes: &'a [u8], node_bytes: u32) -> Self {
        BTreeReader { nodes, node_bytes }
    }

    /// The superblock as it is now.
    pub fn superblock(&self) -> Superblock {
        // Checked at open; only this tree's writer changes it, keeping it valid.
        read_superblock(self.nodes).unwrap_or(Superblock {
            node_bytes: self.node_bytes,
            height: 1,
            root_offset: u64::from(self.node_bytes),
            nodes_used: 2,
            entries: 0,
        })
    }

    /// Bytes per node.
    pub fn node_bytes(&self) -> u32 {
        self.node_bytes
    }

    /// Bytes of the region (what a client puts in `LookupArgs::region_bytes`).
    pub fn region_bytes(&self) -> u64 {
        self.nodes.len() as u64
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: u64) -> Result<Option<u64>, LookupError> {
        self.with_retries(|r| {
            Ok(match r.descend(key)? {
                Descent::Done((offset, version)) => {
                    let leaf = r.node(offset)?;
                    let value = leaf.leaf_get(key);
                    fence(Ordering::Acquire);
                    if leaf.version_end() != version {
                        Descent::Retry {
                            node_offset: offset,
                        }
                    } else {
                        Descent::Done(value)
                    }
                }
                Descent::Retry { node_offset } => Descent::Retry { node_offset },
            })
        })
    }

    /// Up to `limit` pairs with keys in `start..=end`, in key order, following leaf siblings.
    pub fn range(
        &self,
        start: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, LookupError> {
        if start > end || limit == 0 {
            return Ok(Vec::new());
        }
        self.with_retries(|r| r.try_range(start, end, limit))
    }

    fn with_retries<T>(
        &self,
        mut attempt: impl FnMut(&Self) -> Result<Descent<T>, LookupError>,
    ) -> Result<T, LookupError> {
        let mut last = 0;
        for _ in 0..LOOKUP_ATTEMPTS_MAX {
            match attempt(self)? {
                Descent::Done(value) => return Ok(value),
                Descent::Retry { node_offset } => {
                    last = node_offset;
                    std::hint::spin_loop();
                }
            }
        }
        Err(LookupError::RetriesExhausted {
            node_offset: last,
            attempts: LOOKUP_ATTEMPTS_MAX,
        })
    }

    fn node(&self, offset: u64) -> Result<NodeRef<'a>, LookupError> {
        let aligned = offset != 0 && offset.is_multiple_of(u64::from(self.node_bytes));
        aligned
            .then(|| NodeRef::at(self.nodes, offset, self.node_bytes))
            .flatten()
            .ok_or(LookupError::Corrupt {
                node_offset: offset,
                reason: "child offset outside the region",
            })
    }

    /// Root to the leaf whose fences hold `key`: that leaf's offset and its (stable) version.
    fn descend(&self, key: u64) -> Result<Descent<(u64, u32)>, LookupError> {
        let mut offset = self.superblock().root_offset;
        let mut expected_level = None;
        for _ in 0..HEIGHT_MAX {
            let node = self.node(offset)?;
            let version = node.version();
            fence(Ordering::Acquire);
            if version & 1 == 1 || node.version_end() != version {
                return Ok(Descent::Retry {
                    node_offset: offset,
                });
            }
            let corrupt = |reason| LookupError::Corrupt {
                node_offset: offset,
                reason,
            };
            if !node.count_ok() {
                return Err(corrupt("count exceeds the node's capacity"));
            }
            if node.level() >= HEIGHT_MAX || expected_level.is_some_and(|l| l != node.level()) {
                return Err(corrupt("level does not follow its parent's"));
            }
            if key < node.low() || key > node.high() {
                return Ok(Descent::Retry {
                    node_offset: offset,
                });
            }
            if node.level() == 0 {
                return Ok(Descent::Done((offset, version)));
            }
            let child = node
                .child_index(key)
                .ok_or(corrupt("first key above the low fence"))?;
            let next = node.value(child);
            fence(Ordering::Acquire);
            if node.version_end() != version {
                return Ok(Descent::Retry {
                    node_offset: offset,
                });
            }
            expected_level = Some(node.level() - 1);
            offset = next;
        }
        Err(LookupError::Corrupt {
            node_offset: offset,
            reason: "deeper than HEIGHT_MAX",
        })
    }

    fn try_range(
        &self,
        start: u64,
        end: u64,
        limit: usize,
    ) -> Result<Descent<Vec<(u64, u64)>>, LookupError> {
        let (mut offset, _) = match self.descend(start)? {
            Descent::Done(found) => found,
            Descent::Retry { node_offset } => return Ok(Descent::Retry { node_offset }),
        };
        let mut out = Vec::new();
        let nodes_used = self.superblock().nodes_used;
        for _ in 0..nodes_used {
            let leaf = self.node(offset)?;
            let version = leaf.version();
            fence(Ordering::Acquire);
            if version & 1 == 1 || leaf.level() != 0 {
                return Ok(Descent::Retry {
                    node_offset: offset,
                });
            }
            let first = leaf.search(start, false);
            let taken = (first..leaf.count())
                .map(|i| (leaf.key(i), leaf.value(i)))
                .take_while(|&(k, _)| k <= end)
                .take(limit - out.len());
            out.extend(taken);
            let (high, next) = (leaf.high(), leaf.next());
            fence(Ordering::Acquire);
            if leaf.version_end() != version {
                return Ok(Descent::Retry {
                    node_offset: offset,
                });
            }
            if out.len() >= limit || high >= end || next == 0 {
                return Ok(Descent::Done(out));
            }
            offset = next;
        }
        Err(LookupError::Corrupt {
            node_offset: offset,
            reason: "leaf chain longer than the tree",
        })
    }
}
