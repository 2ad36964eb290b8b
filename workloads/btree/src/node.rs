//! One node: bounds-checked reads of the bytes in place, and whole-node writes under the version
//! protocol (both versions odd while the body changes, then the trailer, then the header even).

use std::sync::atomic::{Ordering, fence};

use crate::layout::{
    NODE_COUNT_OFFSET, NODE_HIGH_OFFSET, NODE_KEYS_OFFSET, NODE_LEVEL_OFFSET, NODE_LOW_OFFSET,
    NODE_NEXT_OFFSET, NODE_TRAILER_FROM_END, NODE_VERSION_OFFSET, capacity, read_u16, read_u32,
    read_u64, write_u16, write_u32, write_u64,
};

/// A node's bytes in the region (exactly `node_bytes` long).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeRef<'a> {
    bytes: &'a [u8],
    cap: usize,
}

impl<'a> NodeRef<'a> {
    /// The node at `offset`, if it lies inside `nodes`.
    pub(crate) fn at(nodes: &'a [u8], offset: u64, node_bytes: u32) -> Option<Self> {
        let start = usize::try_from(offset).ok()?;
        let bytes = nodes.get(start..start.checked_add(node_bytes as usize)?)?;
        Some(NodeRef {
            bytes,
            cap: capacity(node_bytes),
        })
    }

    pub(crate) fn version(&self) -> u32 {
        read_u32(self.bytes, NODE_VERSION_OFFSET).unwrap_or(1)
    }

    pub(crate) fn version_end(&self) -> u32 {
        read_u32(self.bytes, self.bytes.len() - NODE_TRAILER_FROM_END).unwrap_or(1)
    }

    pub(crate) fn level(&self) -> usize {
        usize::from(self.bytes[NODE_LEVEL_OFFSET])
    }

    /// The entry count, clamped to the capacity (a larger count is reported by `count_ok`).
    pub(crate) fn count(&self) -> usize {
        self.raw_count().min(self.cap)
    }

    fn raw_count(&self) -> usize {
        usize::from(read_u16(self.bytes, NODE_COUNT_OFFSET).unwrap_or(0))
    }

    pub(crate) fn count_ok(&self) -> bool {
        self.raw_count() <= self.cap
    }

    pub(crate) fn low(&self) -> u64 {
        read_u64(self.bytes, NODE_LOW_OFFSET).unwrap_or(0)
    }

    pub(crate) fn high(&self) -> u64 {
        read_u64(self.bytes, NODE_HIGH_OFFSET).unwrap_or(0)
    }

    pub(crate) fn next(&self) -> u64 {
        read_u64(self.bytes, NODE_NEXT_OFFSET).unwrap_or(0)
    }

    pub(crate) fn key(&self, i: usize) -> u64 {
        read_u64(self.bytes, NODE_KEYS_OFFSET + 8 * i).unwrap_or(0)
    }

    pub(crate) fn value(&self, i: usize) -> u64 {
        read_u64(self.bytes, NODE_KEYS_OFFSET + 8 * self.cap + 8 * i).unwrap_or(0)
    }

    /// First `i` with `keys[i] >= key` (`strict`: `> key`), by binary search.
    pub(crate) fn search(&self, key: u64, strict: bool) -> usize {
        let (mut lo, mut hi) = (0, self.count());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let k = self.key(mid);
            if k < key || (strict && k == key) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The value of `key` in a leaf.
    pub(crate) fn leaf_get(&self, key: u64) -> Option<u64> {
        let i = self.search(key, false);
        (i < self.count() && self.key(i) == key).then(|| self.value(i))
    }

    /// The child index covering `key` in an inner node (`None` if `key < keys[0]`).
    pub(crate) fn child_index(&self, key: u64) -> Option<usize> {
        self.search(key, true).checked_sub(1)
    }

    /// The decoded contents.
    pub(crate) fn image(&self) -> NodeImage {
        let count = self.count();
        NodeImage {
            level: self.level(),
            low: self.low(),
            high: self.high(),
            next: self.next(),
            keys: (0..count).map(|i| self.key(i)).collect(),
            values: (0..count).map(|i| self.value(i)).collect(),
        }
    }
}

/// A node's contents, to be written whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeImage {
    pub(crate) level: usize,
    pub(crate) low: u64,
    pub(crate) high: u64,
    pub(crate) next: u64,
    pub(crate) keys: Vec<u64>,
    pub(crate) values: Vec<u64>,
}

impl NodeImage {
    pub(crate) fn empty_leaf() -> Self {
        NodeImage {
            level: 0,
            low: 0,
            high: u64::MAX,
            next: 0,
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Splits an overfull image: `self` keeps the lower half, the upper half is returned, with
    /// fences and sibling links left to the caller.
    pub(crate) fn split_off_upper(&mut self) -> NodeImage {
        let keep = self.keys.len().div_ceil(2);
        NodeImage {
            level: self.level,
            low: self.keys[keep],
            high: self.high,
            next: self.next,
            keys: self.keys.split_off(keep),
            values: self.values.split_off(keep),
        }
    }
}

/// Writes `image` at `offset` under the version protocol. The caller has checked that the node
/// lies inside `nodes` and that the image fits the node.
pub(crate) fn write_node(nodes: &mut [u8], offset: u64, node_bytes: u32, image: &NodeImage) {
    let cap = capacity(node_bytes);
    debug_assert!(image.keys.len() <= cap && image.keys.len() == image.values.len());
    debug_assert!(image.level < 256);
    let start = offset as usize;
    let node = &mut nodes[start..start + node_bytes as usize];
    let trailer = node.len() - NODE_TRAILER_FROM_END;
    let version = read_u32(node, NODE_VERSION_OFFSET).unwrap_or(0) & !1;
    write_u32(node, NODE_VERSION_OFFSET, version.wrapping_add(1));
    write_u32(node, trailer, version.wrapping_add(1));
    fence(Ordering::Release);
    node[NODE_LEVEL_OFFSET] = image.level as u8;
    node[NODE_LEVEL_OFFSET + 1] = 0;
    write_u16(node, NODE_COUNT_OFFSET, image.keys.len() as u16);
    write_u64(node, NODE_LOW_OFFSET, image.low);
    write_u64(node, NODE_HIGH_OFFSET, image.high);
    write_u64(node, NODE_NEXT_OFFSET, image.next);
    node[NODE_KEYS_OFFSET..trailer].fill(0);
    for (i, (k, v)) in image.keys.iter().zip(&image.values).enumerate() {
        write_u64(node, NODE_KEYS_OFFSET + 8 * i, *k);
        write_u64(node, NODE_KEYS_OFFSET + 8 * cap + 8 * i, *v);
    }
    node[trailer + 4..].fill(0);
    fence(Ordering::Release);
    write_u32(node, trailer, version.wrapping_add(2));
    fence(Ordering::Release);
    write_u32(node, NODE_VERSION_OFFSET, version.wrapping_add(2));
}
