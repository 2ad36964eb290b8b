//! Byte layout of the three regions, as MICA lays them out (`efficient/mica`, `src/table.h`,
//! `src/alloc_pool.c`). Every constant here is mirrored in `bpf/mica_abi.h`; the test
//! `abi_header_matches_layout` checks that the two agree.
//!
//! All multi-byte fields are little-endian.

/// Bytes of a bucket header: `u32 version`, `u32 next extra bucket` (1-based, 0 = none).
pub const BUCKET_HEADER_BYTES: usize = 8;
/// Offset of the bucket version (odd while the writer holds the bucket).
pub const BUCKET_VERSION_OFFSET: usize = 0;
/// Offset of the 1-based index of the next extra bucket in the chain (0 = none).
pub const BUCKET_NEXT_EXTRA_OFFSET: usize = 4;
/// Bytes of one index entry: `tag << 48 | log offset`.
pub const ENTRY_BYTES: usize = 8;
/// Bit position of the 16-bit tag in an entry (MICA: `MEHCACHED_TAG(v) = v >> 48`).
pub const TAG_SHIFT: u32 = 48;
/// Width of a log offset in an entry.
pub const OFFSET_BITS: u32 = 48;
/// Mask of a log offset in an entry.
pub const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
/// The bucket index is taken from the key hash above the tag bits.
pub const BUCKET_HASH_SHIFT: u32 = 16;
/// Extra buckets a chain may have after its primary bucket (bounds the GET function's steps).
pub const CHAIN_HOPS_MAX: usize = 6;

/// Bytes of an item header: `u64 item size`, `u32 kv lengths`, `u32 expiry`, `u64 key hash`.
pub const ITEM_HEADER_BYTES: usize = 24;
/// Offset of the item size (header + padded key + padded value).
pub const ITEM_SIZE_OFFSET: usize = 0;
/// Offset of `key_length << 24 | value_length`.
pub const ITEM_KV_LENGTH_OFFSET: usize = 8;
/// Offset of the expiry time (written as 0; MICA's GET does not check it either).
pub const ITEM_EXPIRE_OFFSET: usize = 12;
/// Offset of the full 64-bit key hash.
pub const ITEM_KEY_HASH_OFFSET: usize = 16;
/// Key length position in the kv length word.
pub const KEY_LENGTH_SHIFT: u32 = 24;
/// Value length mask in the kv length word.
pub const VALUE_LENGTH_MASK: u32 = (1 << KEY_LENGTH_SHIFT) - 1;
/// Longest key. MICA allows 255; ours must fit the GET function's 256-byte argument block.
pub const KEY_BYTES_MAX: usize = 192;
/// Longest value. Ours must fit a NAAM reply (1024 bytes) after the status byte.
pub const VALUE_BYTES_MAX: usize = 1016;
/// Largest item: header, longest key and longest value.
pub const ITEM_BYTES_LIMIT: usize = ITEM_HEADER_BYTES + KEY_BYTES_MAX + VALUE_BYTES_MAX;

/// Bytes of the meta region.
pub const META_BYTES: usize = 64;
/// Offset of the magic number in the meta region.
pub const META_MAGIC_OFFSET: usize = 0;
/// The magic number: "MICANAAM" read as a little-endian u64.
pub const META_MAGIC: u64 = u64::from_le_bytes(*b"MICANAAM");
/// Offset of the log tail (u64, monotonic, never masked).
pub const META_TAIL_OFFSET: usize = 8;
/// Offset of the head of the free list of extra buckets (u32, 1-based, 0 = empty).
pub const META_EXTRA_FREE_OFFSET: usize = 16;
/// Offset of the configuration echo (see `MicaConfig::write_meta`).
pub const META_CONFIG_OFFSET: usize = 24;

const _: () = assert!(ITEM_BYTES_LIMIT <= 4096, "an item must fit one NAAM access");
const _: () = assert!(KEY_BYTES_MAX.is_multiple_of(8) && VALUE_BYTES_MAX.is_multiple_of(8));
const _: () = assert!(KEY_BYTES_MAX < 256, "key length is an 8-bit field");

/// The bucket a key hash maps to: `(key_hash >> 16) & (buckets - 1)`.
pub fn bucket_index(key_hash: u64, buckets: u32) -> u32 {
    debug_assert!(buckets.is_power_of_two());
    ((key_hash >> BUCKET_HASH_SHIFT) as u32) & (buckets - 1)
}

/// The tag of a key hash: its low 16 bits, with 0 mapped to 1 (0 marks an empty entry).
pub fn tag(key_hash: u64) -> u16 {
    match key_hash as u16 {
        0 => 1,
        t => t,
    }
}

/// An index entry for `tag` and a log offset (masked to 48 bits).
pub fn entry(tag: u16, offset: u64) -> u64 {
    (u64::from(tag) << TAG_SHIFT) | (offset & OFFSET_MASK)
}

/// The tag of an index entry.
pub fn entry_tag(entry: u64) -> u16 {
    (entry >> TAG_SHIFT) as u16
}

/// The 48-bit log offset of an index entry.
pub fn entry_offset(entry: u64) -> u64 {
    entry & OFFSET_MASK
}

/// `n` rounded up to a multiple of 8.
pub const fn round_up8(n: usize) -> usize {
    (n + 7) & !7
}

/// Bytes an item takes in the log: header, key and value each padded to 8.
pub const fn item_bytes(key_len: usize, value_len: usize) -> usize {
    ITEM_HEADER_BYTES + round_up8(key_len) + round_up8(value_len)
}

/// The kv length word of an item header.
pub fn kv_length(key_len: usize, value_len: usize) -> u32 {
    debug_assert!(key_len <= KEY_BYTES_MAX && value_len <= VALUE_BYTES_MAX);
    ((key_len as u32) << KEY_LENGTH_SHIFT) | (value_len as u32)
}

/// MICA's validity rule: an offset is valid while `(tail - offset) mod 2^48 <= log_bytes`, i.e.
/// while the circular log has not written over it since.
pub fn offset_is_valid(tail: u64, offset: u64, log_bytes: u64) -> bool {
    distance_from_tail(tail, offset) <= log_bytes
}

/// `(tail - offset) mod 2^48`: how far behind the log's end an item starts.
pub fn distance_from_tail(tail: u64, offset: u64) -> u64 {
    tail.wrapping_sub(offset) & OFFSET_MASK
}

/// Reads a little-endian u32; `None` when out of bounds.
pub fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    bytes
        .get(at..end)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian u64; `None` when out of bounds.
pub fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let end = at.checked_add(8)?;
    let b: [u8; 8] = bytes.get(at..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Writes a little-endian u32 at an offset the caller has checked.
pub(crate) fn write_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Writes a little-endian u64 at an offset the caller has checked.
pub(crate) fn write_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_zero_maps_to_one_and_tag_sits_in_the_high_bits() {
        assert_eq!(tag(0xabcd_0000), 1);
        assert_eq!(tag(0x1234_5678), 0x5678);
        let e = entry(0x5678, 0x0000_1234_5678_9ab8);
        assert_eq!(e >> 48, 0x5678);
        assert_eq!(entry_tag(e), 0x5678);
        assert_eq!(entry_offset(e), 0x1234_5678_9ab8);
    }

    #[test]
    fn bucket_index_uses_bits_above_the_tag() {
        assert_eq!(bucket_index(0x0003_ffff, 4), 3);
        assert_eq!(bucket_index(0x0004_ffff, 4), 0);
        assert_eq!(bucket_index(0x0007_0000, 8), 7);
    }

    #[test]
    fn validity_wraps_modulo_2_pow_48() {
        assert!(offset_is_valid(1000, 0, 1000));
        assert!(!offset_is_valid(1001, 0, 1000));
        // tail has passed 2^48 while the offset was stored masked
        let tail = (1u64 << 48) + 16;
        assert!(offset_is_valid(tail, (1u64 << 48) - 8, 64));
        assert!(!offset_is_valid(tail, (1u64 << 48) - 64, 64));
    }

    #[test]
    fn item_bytes_pads_key_and_value_to_8() {
        assert_eq!(item_bytes(8, 8), 40);
        assert_eq!(item_bytes(1, 0), 32);
        assert_eq!(item_bytes(16, 64), 104);
        assert_eq!(item_bytes(KEY_BYTES_MAX, VALUE_BYTES_MAX), ITEM_BYTES_LIMIT);
    }
}
