/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * btree_abi.h -- byte layout of the Cell-style B-tree's `nodes` region and of
 * the btree_lookup function's argument block and reply. Every value is
 * mirrored by a constant in naam-btree (src/layout.rs, src/lookup.rs); a Rust
 * test parses this file and checks that the two agree. Plain
 * `#define NAME <integer>` lines only. All fields are little-endian.
 */
#ifndef BTREE_ABI_H
#define BTREE_ABI_H

/* ---- Node (node_bytes, a multiple of 64 in [MIN, MAX]) --------------------
 * u32 version | u8 level (0 = leaf) | u8 reserved | u16 count |
 * u64 low key (inclusive) | u64 high key (inclusive) | u64 next (right sibling, 0 = none) |
 * keys[cap] | values or child offsets [cap] | ... | u32 version copy | u32 reserved
 * with cap = (node_bytes - 40) / 16. Both versions are odd while a writer
 * changes the node; a reader accepts a node only if they are equal and even. */
#define BTREE_NODE_BYTES_MIN 128
#define BTREE_NODE_BYTES_MAX 4096
#define BTREE_NODE_BYTES_ALIGN 64
#define BTREE_NODE_VERSION_OFFSET 0
#define BTREE_NODE_LEVEL_OFFSET 4
#define BTREE_NODE_COUNT_OFFSET 6
#define BTREE_NODE_LOW_OFFSET 8
#define BTREE_NODE_HIGH_OFFSET 16
#define BTREE_NODE_NEXT_OFFSET 24
#define BTREE_NODE_KEYS_OFFSET 32
#define BTREE_NODE_OVERHEAD_BYTES 40
#define BTREE_NODE_TRAILER_FROM_END 8
/* levels of a tree (a lookup takes one step per level) */
#define BTREE_HEIGHT_MAX 12
/* binary-search iterations that cover the largest node's keys */
#define BTREE_SEARCH_STEPS_MAX 9

/* ---- btree_lookup argument block ------------------------------------------ */
#define BTREE_ARGS_NODES_RKEY 0   /* u64 */
#define BTREE_ARGS_KEY 8          /* u64 */
#define BTREE_ARGS_REGION_BYTES 16 /* u64: bytes of the nodes region */
#define BTREE_ARGS_NODE_BYTES 24  /* u32 */
#define BTREE_ARGS_RESERVED 28    /* u32, zero */
#define BTREE_ARGS_BYTES 32

/* ---- btree_lookup reply: u8 found, 7 zero bytes, u64 value (0 if not found) */
#define BTREE_REPLY_BYTES 16
#define BTREE_REPLY_NOT_FOUND 0
#define BTREE_REPLY_FOUND 1

/* ---- btree_lookup error codes (>= NAAM_ERR_BASE) --------------------------- */
#define BTREE_ERR_ARGS 16    /* argument block malformed */
#define BTREE_ERR_DATA 17    /* fetched node missing or of the wrong length */
#define BTREE_ERR_STATE 18   /* carried state missing or malformed */
#define BTREE_ERR_CORRUPT 19 /* a stable node is inconsistent (count, level, child) */
#define BTREE_ERR_HELPER 20  /* naam_read/naam_reply/naam_save_state refused */

#endif /* BTREE_ABI_H */
