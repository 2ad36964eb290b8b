/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/*
 * NAAM functions used by naam-engine's own tests (not the paper's workloads; those live in
 * workloads/). Layouts are documented in tests/support/mod.rs, which builds the data.
 */
#include "naam.h"

/* ---- two-step hash lookup -------------------------------------------------------------------
 * index region: buckets of HASH_SLOTS entries {u64 key, u64 item_offset}; key 0 = empty.
 * items region: {u64 key, u64 version, u64 value}; version odd = being written.
 * args: {u64 index_rkey, u64 items_rkey, u64 key}; the client reads bucket (key % buckets) first.
 * reply: {u8 found, u64 value} */
#define HASH_SLOTS 4
struct hash_args { naam_u64 index_rkey, items_rkey, key; };
struct hash_item { naam_u64 key, version, value; };

NAAM_FUNCTION(hash_get)
{
    const struct hash_args *a = (const void *)ctx->args;
    if (ctx->args_len < sizeof(*a) || ctx->n_data < 1)
        return NAAM_ERR_BASE + 1;
    if (ctx->step == 0) {
        if (ctx->data[0].len < HASH_SLOTS * 16)
            return NAAM_ERR_BASE + 2;
        const naam_u64 *slots = (const void *)ctx->data[0].addr;
        for (int i = 0; i < HASH_SLOTS; i++) {
            if (slots[2 * i] == a->key) {
                if (naam_read(a->items_rkey, slots[2 * i + 1], sizeof(struct hash_item)) < 0)
                    return NAAM_ERR_BASE + 3;
                return NAAM_NEXT;
            }
        }
        naam_u8 miss = 0;
        naam_reply(&miss, 1);
        return NAAM_DONE;
    }
    if (ctx->data[0].len < sizeof(struct hash_item))
        return NAAM_ERR_BASE + 2;
    const struct hash_item *item = (const void *)ctx->data[0].addr;
    if (item->version & 1)
        return NAAM_RETRY;
    naam_u8 out[9];
    out[0] = item->key == a->key;
    __builtin_memcpy(&out[1], &item->value, 8);
    naam_reply(out, out[0] ? 9 : 1);
    return NAAM_DONE;
}

/* ---- multi-level tree walk ------------------------------------------------------------------
 * nodes region: nodes of 128 bytes {u32 leaf, u32 count, u64 keys[7], u64 ptrs[8]}; an inner
 * node's ptrs are child offsets (child i holds keys < keys[i], the last child the rest); a leaf's
 * ptrs[i] is the value of keys[i]. args: {u64 rkey, u64 key}; the client reads the root first.
 * state: {u64 levels} carried between steps. reply: {u8 found, u64 value, u64 levels} */
#define TREE_FANOUT 8
struct tree_args { naam_u64 rkey, key; };
struct tree_node { naam_u32 leaf, count; naam_u64 keys[TREE_FANOUT - 1]; naam_u64 ptrs[TREE_FANOUT]; };

NAAM_FUNCTION(tree_get)
{
    const struct tree_args *a = (const void *)ctx->args;
    if (ctx->args_len < sizeof(*a) || ctx->n_data < 1 || ctx->data[0].len < sizeof(struct tree_node))
        return NAAM_ERR_BASE + 1;
    const struct tree_node *n = (const void *)ctx->data[0].addr;
    naam_u64 *levels = (naam_u64 *)ctx->state;
    if (ctx->step == 0)
        *levels = 0;
    *levels += 1;
    naam_u32 count = n->count;
    if (count > TREE_FANOUT - 1)
        return NAAM_ERR_BASE + 4;
    if (n->leaf) {
        for (naam_u32 i = 0; i < TREE_FANOUT - 1; i++) {
            if (i < count && n->keys[i] == a->key) {
                naam_u8 out[17];
                out[0] = 1;
                __builtin_memcpy(&out[1], &n->ptrs[i], 8);
                __builtin_memcpy(&out[9], levels, 8);
                naam_reply(out, sizeof(out));
                return NAAM_DONE;
            }
        }
        naam_u8 out[17] = {0};
        __builtin_memcpy(&out[9], levels, 8);
        naam_reply(out, sizeof(out));
        return NAAM_DONE;
    }
    naam_u32 child = count;
    for (naam_u32 i = 0; i < TREE_FANOUT - 1; i++) {
        if (i < count && a->key < n->keys[i]) {
            child = i;
            break;
        }
    }
    if (child > TREE_FANOUT - 1)
        return NAAM_ERR_BASE + 4;
    if (naam_read(a->rkey, n->ptrs[child], sizeof(struct tree_node)) < 0)
        return NAAM_ERR_BASE + 3;
    naam_save_state(8);
    return NAAM_NEXT;
}

/* ---- hostile and edge-case functions ------------------------------------------------------ */

/* Reads whatever rkey/offset/len the arguments say: used to forge rkeys and cross tenants.
 * args: {u64 rkey, u64 offset, u64 len}. Step 0 has no data: declares the read; step 1 replies
 * with the first byte. */
NAAM_FUNCTION(read_any)
{
    const naam_u64 *a = (const void *)ctx->args;
    if (ctx->args_len < 24)
        return NAAM_ERR_BASE + 1;
    if (ctx->step == 0) {
        if (naam_read(a[0], a[1], (naam_u32)a[2]) < 0)
            return NAAM_ERR_BASE + 3;
        return NAAM_NEXT;
    }
    naam_reply((const void *)ctx->data[0].addr, 1);
    return NAAM_DONE;
}

/* Loads through a pointer taken from the arguments: the VM must trap, not read host memory. */
NAAM_FUNCTION(wild_load)
{
    const naam_u64 *a = (const void *)ctx->args;
    if (ctx->args_len < 8)
        return NAAM_ERR_BASE + 1;
    volatile const naam_u64 *p = (const void *)a[0];
    naam_u64 v = *p;
    naam_reply(&v, 8);
    return NAAM_DONE;
}

/* Never terminates on its own: the step budget must stop it. */
NAAM_FUNCTION(spin)
{
    volatile naam_u64 x = 0;
    for (;;)
        x += ctx->step + 1;
    return NAAM_DONE;
}

/* Asks for a restart forever: bounded by NAAM_RETRIES_MAX. */
NAAM_FUNCTION(always_retry)
{
    return ctx->attempt < 1000 ? NAAM_RETRY : NAAM_DONE;
}

/* Declares NAAM_NEXT without any access. */
NAAM_FUNCTION(next_without_read)
{
    return NAAM_NEXT;
}
