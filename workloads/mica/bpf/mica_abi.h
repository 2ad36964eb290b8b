/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * mica_abi.h -- byte layout of MICA's NAAM regions and of the mica_get
 * function's argument block and reply. Every value here is mirrored by a
 * constant in naam-mica (src/layout.rs, src/get.rs); a Rust test parses this
 * file and checks that the two agree. Plain `#define NAME <integer>` lines only.
 *
 * All multi-byte fields are little-endian.
 */
#ifndef MICA_ABI_H
#define MICA_ABI_H

/* ---- Index region: buckets, then extra buckets ----------------------------
 * bucket = u32 version (odd while the writer holds it), u32 next extra bucket
 * (1-based, 0 = none), then MICA_SLOTS_* u64 entries. Extra bucket j (j >= 1)
 * lives at bucket position (buckets + j - 1). */
#define MICA_BUCKET_HEADER_BYTES 8
#define MICA_BUCKET_VERSION_OFFSET 0
#define MICA_BUCKET_NEXT_EXTRA_OFFSET 4
#define MICA_ENTRY_BYTES 8
#define MICA_SLOTS_SMALL 7
#define MICA_SLOTS_LARGE 15
/* entry = tag << 48 | log offset (48 bits); 0 = empty slot */
#define MICA_TAG_SHIFT 48
#define MICA_OFFSET_BITS 48
/* bucket = (key_hash >> 16) & (buckets - 1); tag = key_hash & 0xffff, 0 -> 1 */
#define MICA_BUCKET_HASH_SHIFT 16
/* extra buckets followed after the primary one */
#define MICA_CHAIN_HOPS_MAX 6

/* ---- Log region: items at (offset & (log_bytes - 1)) ----------------------
 * item = u64 item size, u32 kv lengths (key << 24 | value), u32 expiry,
 * u64 key hash, key padded to 8, value padded to 8 (padding bytes are zero). */
#define MICA_ITEM_HEADER_BYTES 24
#define MICA_ITEM_SIZE_OFFSET 0
#define MICA_ITEM_KV_LENGTH_OFFSET 8
#define MICA_ITEM_EXPIRE_OFFSET 12
#define MICA_ITEM_KEY_HASH_OFFSET 16
#define MICA_KEY_LENGTH_SHIFT 24
#define MICA_VALUE_LENGTH_MASK 16777215
#define MICA_KEY_BYTES_MAX 192
#define MICA_VALUE_BYTES_MAX 1016
/* log sizes are powers of two up to this */
#define MICA_LOG_BYTES_MAX 1099511627776

/* ---- Meta region ----------------------------------------------------------
 * u64 tail: the log's end offset (monotonic); an item offset is valid while
 * ((tail - offset) mod 2^48) <= log_bytes. */
#define MICA_META_TAIL_OFFSET 8

/* ---- mica_get argument block ---------------------------------------------- */
#define MICA_ARGS_INDEX_RKEY 0       /* u64 */
#define MICA_ARGS_LOG_RKEY 8         /* u64 */
#define MICA_ARGS_META_RKEY 16       /* u64 */
#define MICA_ARGS_KEY_HASH 24        /* u64 */
#define MICA_ARGS_LOG_BYTES 32       /* u64, power of two */
#define MICA_ARGS_BUCKETS 40         /* u32, power of two */
#define MICA_ARGS_EXTRA_BUCKETS 44   /* u32 */
#define MICA_ARGS_ITEM_READ_BYTES 48 /* u16: bytes read per candidate item */
#define MICA_ARGS_SLOTS 50           /* u8: 7 or 15 */
#define MICA_ARGS_KEY_LEN 51         /* u8 */
#define MICA_ARGS_RESERVED 52        /* u32, zero */
#define MICA_ARGS_KEY 56             /* key bytes, zero-padded to 8 */

/* ---- mica_get reply: u8 status, then the value on a hit ------------------- */
#define MICA_REPLY_MISS 0
#define MICA_REPLY_HIT 1

/* ---- mica_get_tenant: mica_get whose every reply ends with 8 bytes of a
 * per-tenant salt. The object is compiled with this placeholder as the salt; a
 * loader writes each tenant's salt over the placeholder's lddw immediates, so
 * every tenant registers its own program (naam-mica, src/tenant.rs). -------- */
#define MICA_TENANT_SALT_PLACEHOLDER 6491869449711915493 /* 0x5a17c0de7e4a11e5 */
#define MICA_TENANT_SALT_BYTES 8

/* ---- mica_get error codes (>= NAAM_ERR_BASE) ------------------------------ */
#define MICA_ERR_ARGS 16           /* argument block malformed */
#define MICA_ERR_DATA 17           /* fetched accesses differ from those declared */
#define MICA_ERR_STATE 18          /* carried state missing or malformed */
#define MICA_ERR_ITEM_TRUNCATED 19 /* valid item longer than item_read_bytes */
#define MICA_ERR_HELPER 20         /* naam_read/naam_reply/naam_save_state refused */

#endif /* MICA_ABI_H */
