// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * btree_lookup.c -- Cell-style B-tree lookup as a NAAM function: one step per
 * level. Layout of nodes, arguments and reply: btree_abi.h.
 *
 * Each step, data[0] is one node (node_bytes). The function
 *   - checks the node's two versions (equal and even, else NAAM_RETRY: a torn
 *     read of a node being written);
 *   - checks that the key lies in the node's fence keys [low, high] (else
 *     NAAM_RETRY: the path went stale because a concurrent insert split a node);
 *   - at a leaf, binary-searches the key and replies found/value;
 *   - at an inner node, binary-searches the child and declares its read.
 * Nothing fetched is trusted: counts, levels and child offsets are checked
 * against the node size, the parent's level and the region size.
 */
#include "naam.h"
#include "btree_abi.h"

#define INLINE static inline __attribute__((always_inline))
#define CAP_MAX ((BTREE_NODE_BYTES_MAX - BTREE_NODE_OVERHEAD_BYTES) / 16)

_Static_assert(BTREE_NODE_BYTES_MAX <= NAAM_ACCESS_BYTES_MAX, "a node is one access");
_Static_assert(BTREE_HEIGHT_MAX <= NAAM_STEPS_MAX, "one step per level");
_Static_assert((1 << (BTREE_SEARCH_STEPS_MAX - 1)) > CAP_MAX, "search steps cover a node");
_Static_assert(BTREE_REPLY_BYTES <= NAAM_REPLY_BYTES_MAX, "reply fits");
_Static_assert(BTREE_ERR_ARGS >= NAAM_ERR_BASE, "error codes stay clear of NAAM's");

/* Carried between steps: the level the next node must have. */
struct lookup_state {
    naam_u32 expected_level;
    naam_u32 reserved;
};

/* Sizes and indices are held in 64-bit variables (each fits in 32 bits): eBPF's 32-bit
 * arithmetic would otherwise zero-extend every index before using it as an offset. */
struct args {
    naam_u64 rkey;
    naam_u64 key;
    naam_u64 region_bytes;
    naam_u64 node_bytes;
    naam_u64 cap;
};

/* The context fields a step reads, loaded together before any other region:
 * naam-vm's JIT checks each load against a one-entry cache of the region it
 * last read, so loads grouped by region (context, arguments, state, node) miss
 * it once per region instead of at every switch between them. */
struct step_in {
    naam_u64 args;
    naam_u64 state;
    naam_u64 data_addr;
    naam_u32 args_len;
    naam_u32 step;
    naam_u32 state_len;
    naam_u32 n_data;
    naam_u32 data_len;
};

/* Keeps clang from moving a region's loads past it (it would sink them to
 * their first use, interleaving the regions again); emits no instruction. */
#define REGION_BOUNDARY() asm volatile("" ::: "memory")

INLINE void load_step_in(const struct naam_ctx *ctx, struct step_in *in)
{
    in->args = ctx->args;
    in->args_len = ctx->args_len;
    in->step = ctx->step;
    in->state = ctx->state;
    in->state_len = ctx->state_len;
    in->n_data = ctx->n_data;
    in->data_len = ctx->data[0].len;
    in->data_addr = ctx->data[0].addr;
    REGION_BOUNDARY();
}

INLINE int load_args(const struct step_in *in, struct args *a)
{
    const naam_u8 *p = (const naam_u8 *)(unsigned long)in->args;
    if (in->args_len < BTREE_ARGS_BYTES)
        return -1;
    a->rkey = NAAM_LOAD(naam_u64, p, BTREE_ARGS_NODES_RKEY);
    a->key = NAAM_LOAD(naam_u64, p, BTREE_ARGS_KEY);
    a->region_bytes = NAAM_LOAD(naam_u64, p, BTREE_ARGS_REGION_BYTES);
    a->node_bytes = NAAM_LOAD(naam_u32, p, BTREE_ARGS_NODE_BYTES);
    if (a->node_bytes < BTREE_NODE_BYTES_MIN || a->node_bytes > BTREE_NODE_BYTES_MAX ||
        a->node_bytes % BTREE_NODE_BYTES_ALIGN != 0 || a->region_bytes < 2 * a->node_bytes)
        return -1;
    a->cap = (a->node_bytes - BTREE_NODE_OVERHEAD_BYTES) / 16;
    REGION_BOUNDARY();
    return 0;
}

INLINE naam_u64 key_at(const naam_u8 *node, naam_u64 i)
{
    return NAAM_LOAD(naam_u64, node, BTREE_NODE_KEYS_OFFSET + 8 * i);
}

INLINE naam_u64 value_at(const naam_u8 *node, const struct args *a, naam_u64 i)
{
    return NAAM_LOAD(naam_u64, node, BTREE_NODE_KEYS_OFFSET + 8 * a->cap + 8 * i);
}

/* The first i in [0, count) with keys[i] > key (or >= key when `strict` is 0). */
INLINE naam_u64 search(const naam_u8 *node, naam_u64 count, naam_u64 key, int strict)
{
    naam_u64 lo = 0, hi = count;
#pragma clang loop unroll(disable)
    for (naam_u64 step = 0; step < BTREE_SEARCH_STEPS_MAX && lo < hi; step++) {
        naam_u64 mid = (lo + hi) / 2;
        naam_u64 k = key_at(node, mid);
        if (k < key || (strict && k == key))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

INLINE long reply(naam_u8 found, naam_u64 value)
{
    naam_u64 out[2] = {found, value};
    if (naam_reply(out, sizeof(out)) < 0)
        return BTREE_ERR_HELPER;
    return NAAM_DONE;
}

NAAM_FUNCTION(btree_lookup)
{
    struct step_in in;
    load_step_in(ctx, &in);
    struct args a;
    if (load_args(&in, &a) < 0)
        return BTREE_ERR_ARGS;
    struct lookup_state *st = (struct lookup_state *)(unsigned long)in.state;
    if (in.step != 0 && in.state_len != sizeof(*st))
        return BTREE_ERR_STATE;
    if (in.n_data != 1 || in.data_len != a.node_bytes)
        return BTREE_ERR_DATA;
    /* Read before the node (see struct step_in); checked after the node's own checks. */
    naam_u64 expected_level = in.step != 0 ? st->expected_level : 0;
    const naam_u8 *node = (const naam_u8 *)(unsigned long)in.data_addr;

    naam_u32 version = NAAM_LOAD(naam_u32, node, BTREE_NODE_VERSION_OFFSET);
    naam_u32 version_end =
        NAAM_LOAD(naam_u32, node, a.node_bytes - BTREE_NODE_TRAILER_FROM_END);
    if (version != version_end || (version & 1))
        return NAAM_RETRY;

    naam_u64 level = NAAM_LOAD(naam_u8, node, BTREE_NODE_LEVEL_OFFSET);
    naam_u64 count = NAAM_LOAD(naam_u16, node, BTREE_NODE_COUNT_OFFSET);
    if (count > a.cap || level >= BTREE_HEIGHT_MAX)
        return BTREE_ERR_CORRUPT;
    if (in.step != 0 && level != expected_level)
        return BTREE_ERR_CORRUPT;
    if (a.key < NAAM_LOAD(naam_u64, node, BTREE_NODE_LOW_OFFSET) ||
        a.key > NAAM_LOAD(naam_u64, node, BTREE_NODE_HIGH_OFFSET))
        return NAAM_RETRY;

    if (level == 0) {
        naam_u64 i = search(node, count, a.key, 0);
        if (i < count && key_at(node, i) == a.key)
            return reply(BTREE_REPLY_FOUND, value_at(node, &a, i));
        return reply(BTREE_REPLY_NOT_FOUND, 0);
    }

    /* Inner node: the last child whose first key is <= key. keys[0] is the
     * node's low fence, so a key inside the fences always has one. */
    naam_u64 after = search(node, count, a.key, 1);
    if (after == 0)
        return BTREE_ERR_CORRUPT;
    naam_u64 child = value_at(node, &a, after - 1);
    if (child == 0 || child % a.node_bytes != 0 || child > a.region_bytes - a.node_bytes)
        return BTREE_ERR_CORRUPT;
    if (naam_read(a.rkey, child, a.node_bytes) < 0)
        return BTREE_ERR_HELPER;
    st->expected_level = level - 1;
    st->reserved = 0;
    if (naam_save_state(sizeof(*st)) < 0)
        return BTREE_ERR_HELPER;
    return NAAM_NEXT;
}
