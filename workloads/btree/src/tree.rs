//! The writer: bulk load, and inserts with node splits (server-side, as Cell's writes are).
//!
//! Split order keeps one-sided readers correct: the new right node is written before anything
//! points to it, then the left node shrinks (its high fence drops, so a reader that arrives for
//! a key now on the right retries), then the parent gains the separator. The root splits in
//! place — its halves move to two new nodes and the root becomes their parent — so the root's
//! offset, which clients cache and put in their first access, never changes.

use crate::config::{BTreeConfig, per_node};
use crate::error::{BuildError, InsertError, LookupError, OpenError};
use crate::layout::{
    HEIGHT_MAX, SUPER_ENTRIES_OFFSET, SUPER_HEIGHT_OFFSET, SUPER_MAGIC, SUPER_MAGIC_OFFSET,
    SUPER_NODE_BYTES_OFFSET, SUPER_NODES_USED_OFFSET, SUPER_ROOT_OFFSET, capacity, write_u32,
    write_u64,
};
use crate::node::{NodeImage, NodeRef, write_node};
use crate::reader::{BTreeReader, Superblock, read_superblock};

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new key.
    Inserted,
    /// The key existed; its value was replaced.
    Updated,
}

/// A tree in a caller-provided `nodes` region: the single writer's handle.
#[derive(Debug)]
pub struct BTree<'a> {
    nodes: &'a mut [u8],
    node_bytes: u32,
    nodes_max: u64,
}

/// A node on an insert's path: where it is, which child the path took, what it held.
struct PathNode {
    offset: u64,
    child: usize,
    image: NodeImage,
}

/// One node built by a bulk load: its first key (its low fence) and where it went.
struct Built {
    low: u64,
    offset: u64,
}

impl<'a> BTree<'a> {
    /// Builds a tree from `pairs` (strictly increasing keys) filling nodes to `fill_percent`
    /// (1..=100) of their capacity. The tree covers every u64 key: the first leaf's low fence is
    /// 0 and the last node's high fence is `u64::MAX`.
    pub fn bulk_load(
        config: BTreeConfig,
        nodes: &'a mut [u8],
        pairs: &[(u64, u64)],
        fill_percent: u8,
    ) -> Result<Self, BuildError> {
        let region_bytes = config.validate()?;
        if nodes.len() < region_bytes {
            return Err(BuildError::RegionTooSmall {
                bytes_needed: region_bytes,
                bytes_given: nodes.len(),
            });
        }
        let nodes_needed =
            BTreeConfig::nodes_for_bulk_load(config.node_bytes, pairs.len() as u64, fill_percent)
                .ok_or(BuildError::FillPercent { fill_percent })?;
        if let Some(index) = (1..pairs.len()).find(|&i| pairs[i].0 <= pairs[i - 1].0) {
            return Err(BuildError::Unsorted {
                index,
                key: pairs[index].0,
                previous: pairs[index - 1].0,
            });
        }
        if nodes_needed > config.nodes_max {
            return Err(BuildError::Full {
                nodes_needed,
                nodes_max: config.nodes_max,
            });
        }
        let mut tree = BTree {
            nodes: &mut nodes[..region_bytes],
            node_bytes: config.node_bytes,
            nodes_max: config.nodes_max,
        };
        tree.nodes[..config.node_bytes as usize].fill(0);
        let (leaf_fill, inner_fill) = per_node(capacity(config.node_bytes), fill_percent);
        let mut next_free = 1u64;
        let mut level_nodes = tree.build_leaves(pairs, leaf_fill, &mut next_free);
        let mut height = 1;
        while level_nodes.len() > 1 {
            level_nodes = tree.build_inner_level(&level_nodes, height, inner_fill, &mut next_free);
            height += 1;
        }
        if height > HEIGHT_MAX {
            return Err(BuildError::TooDeep { height });
        }
        debug_assert_eq!(next_free, nodes_needed);
        let sb = Superblock {
            node_bytes: config.node_bytes,
            height,
            root_offset: level_nodes[0].offset,
            nodes_used: next_free,
            entries: pairs.len() as u64,
        };
        tree.write_superblock(&sb);
        Ok(tree)
    }

    fn build_leaves(
        &mut self,
        pairs: &[(u64, u64)],
        per_leaf: usize,
        next_free: &mut u64,
    ) -> Vec<Built> {
        if pairs.is_empty() {
            let offset = self.allocate(next_free);
            write_node(
                self.nodes,
                offset,
                self.node_bytes,
                &NodeImage::empty_leaf(),
            );
            return vec![Built { low: 0, offset }];
        }
        let chunks: Vec<&[(u64, u64)]> = pairs.chunks(per_leaf).collect();
        let first = *next_free;
        *next_free += chunks.len() as u64;
        let node_bytes = u64::from(self.node_bytes);
        let lows: Vec<u64> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| if i == 0 { 0 } else { c[0].0 })
            .collect();
        let mut built = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let offset = (first + i as u64) * node_bytes;
            let last = i + 1 == chunks.len();
            let image = NodeImage {
                level: 0,
                low: lows[i],
                high: if last { u64::MAX } else { lows[i + 1] - 1 },
                next: if last { 0 } else { offset + node_bytes },
                keys: chunk.iter().map(|p| p.0).collect(),
                values: chunk.iter().map(|p| p.1).collect(),
            };
            write_node(self.nodes, offset, self.node_bytes, &image);
            built.push(Built {
                low: lows[i],
                offset,
            });
        }
        built
    }

    fn build_inner_level(
        &mut self,
        children: &[Built],
        level: usize,
        per_inner: usize,
        next_free: &mut u64,
    ) -> Vec<Built> {
        let chunks: Vec<&[Built]> = children.chunks(per_inner).collect();
        let first = *next_free;
        *next_free += chunks.len() as u64;
        let node_bytes = u64::from(self.node_bytes);
        let mut built = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            let offset = (first + i as u64) * node_bytes;
            let last = i + 1 == chunks.len();
            let image = NodeImage {
                level,
                low: chunk[0].low,
                high: if last {
                    u64::MAX
                } else {
                    chunks[i + 1][0].low - 1
                },
                next: if last { 0 } else { offset + node_bytes },
                keys: chunk.iter().map(|c| c.low).collect(),
                values: chunk.iter().map(|c| c.offset).collect(),
            };
            write_node(self.nodes, offset, self.node_bytes, &image);
            built.push(Built {
                low: chunk[0].low,
                offset,
            });
        }
        built
    }

    fn allocate(&self, next_free: &mut u64) -> u64 {
        let offset = *next_free * u64::from(self.node_bytes);
        *next_free += 1;
        offset
    }

    fn write_superblock(&mut self, sb: &Superblock) {
        write_u64(self.nodes, SUPER_MAGIC_OFFSET, SUPER_MAGIC);
        write_u32(self.nodes, SUPER_NODE_BYTES_OFFSET, sb.node_bytes);
        write_u32(self.nodes, SUPER_HEIGHT_OFFSET, sb.height as u32);
        write_u64(self.nodes, SUPER_ROOT_OFFSET, sb.root_offset);
        write_u64(self.nodes, SUPER_NODES_USED_OFFSET, sb.nodes_used);
        write_u64(self.nodes, SUPER_ENTRIES_OFFSET, sb.entries);
    }

    /// Opens a region built earlier (e.g. by another process); its capacity is the region's
    /// length in whole nodes.
    pub fn open(nodes: &'a mut [u8]) -> Result<Self, OpenError> {
        let sb = read_superblock(nodes)?;
        let nodes_max = nodes.len() as u64 / u64::from(sb.node_bytes);
        let region_bytes = (nodes_max * u64::from(sb.node_bytes)) as usize;
        Ok(BTree {
            nodes: &mut nodes[..region_bytes],
            node_bytes: sb.node_bytes,
            nodes_max,
        })
    }

    /// A reader over the same region.
    pub fn reader(&self) -> BTreeReader<'_> {
        // The superblock was checked at build/open and only this writer changes it.
        BTreeReader::from_checked(self.nodes, self.node_bytes)
    }

    /// The superblock (root offset, height, nodes used, entries).
    pub fn superblock(&self) -> Superblock {
        self.reader().superblock()
    }

    /// Nodes the region holds, superblock included.
    pub fn nodes_max(&self) -> u64 {
        self.nodes_max
    }

    /// The value of `key` (see `BTreeReader::get`).
    pub fn get(&self, key: u64) -> Result<Option<u64>, LookupError> {
        self.reader().get(key)
    }

    /// A range scan (see `BTreeReader::range`).
    pub fn range(
        &self,
        start: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<(u64, u64)>, LookupError> {
        self.reader().range(start, end, limit)
    }

    /// Inserts or updates `key`. Fails without changing the tree if the splits it needs exceed
    /// the region or `HEIGHT_MAX`.
    pub fn insert(&mut self, key: u64, value: u64) -> Result<InsertOutcome, InsertError> {
        let sb = self.superblock();
        let path = self.path_to_leaf(sb.root_offset, key)?;
        let leaf_offset = path[path.len() - 1].offset;
        let mut leaf = path[path.len() - 1].image.clone();
        let i = leaf.keys.partition_point(|&k| k < key);
        if leaf.keys.get(i) == Some(&key) {
            leaf.values[i] = value;
            write_node(self.nodes, leaf_offset, self.node_bytes, &leaf);
            return Ok(InsertOutcome::Updated);
        }
        self.check_room(&path, sb)?;
        leaf.keys.insert(i, key);
        leaf.values.insert(i, value);
        self.place(&path, path.len() - 1, leaf, sb);
        let sb = Superblock {
            entries: sb.entries + 1,
            ..self.superblock()
        };
        self.write_superblock(&sb);
        Ok(InsertOutcome::Inserted)
    }

    /// The nodes from the root to the leaf for `key`, each with the child index taken from it.
    fn path_to_leaf(&self, root: u64, key: u64) -> Result<Vec<PathNode>, LookupError> {
        let mut path = Vec::with_capacity(HEIGHT_MAX);
        let mut offset = root;
        for _ in 0..HEIGHT_MAX {
            let node = NodeRef::at(self.nodes, offset, self.node_bytes)
                .filter(|_| offset != 0 && offset.is_multiple_of(u64::from(self.node_bytes)))
                .ok_or(LookupError::Corrupt {
                    node_offset: offset,
                    reason: "child offset outside the region",
                })?;
            let version = node.version();
            if version & 1 == 1 || node.version_end() != version {
                return Err(LookupError::RetriesExhausted {
                    node_offset: offset,
                    attempts: 1,
                });
            }
            if !node.count_ok() {
                return Err(LookupError::Corrupt {
                    node_offset: offset,
                    reason: "count exceeds the node's capacity",
                });
            }
            if node.level() == 0 {
                path.push(PathNode {
                    offset,
                    child: 0,
                    image: node.image(),
                });
                return Ok(path);
            }
            let child = node.child_index(key).ok_or(LookupError::Corrupt {
                node_offset: offset,
                reason: "first key above the low fence",
            })?;
            path.push(PathNode {
                offset,
                child,
                image: node.image(),
            });
            offset = node.value(child);
        }
        Err(LookupError::Corrupt {
            node_offset: offset,
            reason: "deeper than HEIGHT_MAX",
        })
    }

    /// Fails if the insert's splits need more nodes than are free or would make the tree too tall.
    fn check_room(&self, path: &[PathNode], sb: Superblock) -> Result<(), InsertError> {
        let cap = capacity(self.node_bytes);
        let full = path
            .iter()
            .rev()
            .take_while(|node| node.image.keys.len() == cap)
            .count();
        if full == 0 {
            return Ok(());
        }
        let root_splits = full == path.len();
        if root_splits && sb.height >= HEIGHT_MAX {
            return Err(InsertError::TooDeep { height: sb.height });
        }
        let nodes_needed = full as u64 + u64::from(root_splits);
        let nodes_free = self.nodes_max - sb.nodes_used;
        if nodes_needed > nodes_free {
            return Err(InsertError::Full {
                nodes_needed,
                nodes_free,
            });
        }
        Ok(())
    }

    /// Writes `image` for the node at `path[depth]`, splitting upward while it overflows.
    fn place(&mut self, path: &[PathNode], depth: usize, mut image: NodeImage, sb: Superblock) {
        let cap = capacity(self.node_bytes);
        let offset = path[depth].offset;
        if image.keys.len() <= cap {
            write_node(self.nodes, offset, self.node_bytes, &image);
            return;
        }
        if depth == 0 {
            self.split_root(offset, image, sb);
            return;
        }
        let right_offset = self.allocate_node();
        let right = image.split_off_upper();
        image.next = right_offset;
        image.high = right.low - 1;
        write_node(self.nodes, right_offset, self.node_bytes, &right);
        write_node(self.nodes, offset, self.node_bytes, &image);
        let parent_node = &path[depth - 1];
        let mut parent = parent_node.image.clone();
        parent.keys.insert(parent_node.child + 1, right.low);
        parent.values.insert(parent_node.child + 1, right_offset);
        self.place(path, depth - 1, parent, sb);
    }

    /// The root keeps its offset: its halves move to two new nodes under it.
    fn split_root(&mut self, root: u64, mut image: NodeImage, sb: Superblock) {
        let left_offset = self.allocate_node();
        let right_offset = self.allocate_node();
        let right = image.split_off_upper();
        image.high = right.low - 1;
        image.next = right_offset;
        let level = image.level + 1;
        let (low, high) = (image.low, right.high);
        write_node(self.nodes, left_offset, self.node_bytes, &image);
        write_node(self.nodes, right_offset, self.node_bytes, &right);
        let new_root = NodeImage {
            level,
            low,
            high,
            next: 0,
            keys: vec![low, right.low],
            values: vec![left_offset, right_offset],
        };
        write_node(self.nodes, root, self.node_bytes, &new_root);
        let sb = Superblock {
            height: sb.height + 1,
            ..self.superblock()
        };
        self.write_superblock(&sb);
    }

    fn allocate_node(&mut self) -> u64 {
        let sb = self.superblock();
        debug_assert!(
            sb.nodes_used < self.nodes_max,
            "check_room reserved the nodes"
        );
        let offset = sb.nodes_used * u64::from(self.node_bytes);
        let sb = Superblock {
            nodes_used: sb.nodes_used + 1,
            ..sb
        };
        self.write_superblock(&sb);
        offset
    }
}
