//! Byte layout of the `nodes` region. Mirrored in `bpf/btree_abi.h`; the test
//! `abi_header_matches_layout` checks that the two agree. All fields are little-endian.
//!
//! ```text
//! node 0        superblock (magic, node size, root offset, height, nodes used, entries)
//! node i ≥ 1    u32 version | u8 level | u8 0 | u16 count | u64 low | u64 high | u64 next |
//!               keys[cap] | values or children[cap] | … | u32 version copy | u32 0
//!               cap = (node_bytes − 40) / 16
//! ```
//!
//! Nodes are addressed by byte offset (`i × node_bytes`); offset 0 (the superblock) means "none".
//! A leaf holds `count` sorted keys and their values. An inner node holds `count` children and
//! their first keys: `keys[0]` is the node's low fence, child `i` covers
//! `[keys[i], keys[i+1] − 1]` and the last child runs to the node's high fence. Every node carries
//! its fences `[low, high]` (inclusive), so a reader that followed a stale pointer notices.

/// Smallest node.
pub const NODE_BYTES_MIN: u32 = 128;
/// Largest node: one NAAM access (`NAAM_ACCESS_BYTES_MAX`).
pub const NODE_BYTES_MAX: u32 = 4096;
/// Node sizes are multiples of a cache line.
pub const NODE_BYTES_ALIGN: u32 = 64;
/// Default node size (Cell's small RDMA-friendly nodes: 1 KB).
pub const NODE_BYTES_DEFAULT: u32 = 1024;

/// Offset of the version (odd while a writer changes the node).
pub const NODE_VERSION_OFFSET: usize = 0;
/// Offset of the level (u8; 0 = leaf).
pub const NODE_LEVEL_OFFSET: usize = 4;
/// Offset of the entry count (u16).
pub const NODE_COUNT_OFFSET: usize = 6;
/// Offset of the low fence key (inclusive).
pub const NODE_LOW_OFFSET: usize = 8;
/// Offset of the high fence key (inclusive).
pub const NODE_HIGH_OFFSET: usize = 16;
/// Offset of the right sibling's node offset (0 = none).
pub const NODE_NEXT_OFFSET: usize = 24;
/// Offset of `keys[0]`.
pub const NODE_KEYS_OFFSET: usize = 32;
/// Header + trailer bytes of a node.
pub const NODE_OVERHEAD_BYTES: usize = 40;
/// The version copy sits this many bytes before the node's end.
pub const NODE_TRAILER_FROM_END: usize = 8;
/// Levels of a tree (a lookup takes one NAAM step per level; `NAAM_STEPS_MAX` is 16).
pub const HEIGHT_MAX: usize = 12;
/// Binary-search iterations that cover the largest node.
pub const SEARCH_STEPS_MAX: usize = 9;

/// Superblock: magic ("NAAMTREE" as a little-endian u64).
pub const SUPER_MAGIC: u64 = u64::from_le_bytes(*b"NAAMTREE");
/// Superblock: offset of the magic.
pub const SUPER_MAGIC_OFFSET: usize = 0;
/// Superblock: offset of the node size (u32).
pub const SUPER_NODE_BYTES_OFFSET: usize = 8;
/// Superblock: offset of the height (u32; 1 = the root is a leaf).
pub const SUPER_HEIGHT_OFFSET: usize = 12;
/// Superblock: offset of the root's node offset (u64).
pub const SUPER_ROOT_OFFSET: usize = 16;
/// Superblock: offset of the nodes in use, superblock included (u64).
pub const SUPER_NODES_USED_OFFSET: usize = 24;
/// Superblock: offset of the number of keys (u64).
pub const SUPER_ENTRIES_OFFSET: usize = 32;

const _: () = assert!((1usize << (SEARCH_STEPS_MAX - 1)) > capacity(NODE_BYTES_MAX));
const _: () = assert!(
    capacity(NODE_BYTES_MIN) >= 2,
    "inner nodes need two children"
);
const _: () = assert!(capacity(NODE_BYTES_MAX) <= u16::MAX as usize);

/// Keys (and values or children) a node of `node_bytes` holds.
pub const fn capacity(node_bytes: u32) -> usize {
    (node_bytes as usize - NODE_OVERHEAD_BYTES) / 16
}

/// Reads a little-endian u64; `None` when out of bounds.
pub fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    Some(u64::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

/// Reads a little-endian u32; `None` when out of bounds.
pub fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

/// Reads a little-endian u16; `None` when out of bounds.
pub fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let end = at.checked_add(2)?;
    Some(u16::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

pub(crate) fn write_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn write_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

pub(crate) fn write_u16(bytes: &mut [u8], at: usize, value: u16) {
    bytes[at..at + 2].copy_from_slice(&value.to_le_bytes());
}
