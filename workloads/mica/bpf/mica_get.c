// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * mica_get.c -- MICA's GET as a NAAM function: probe the key's bucket, then
 * fetch and validate the item, with MICA's version protocol.
 *
 * Layout of regions, arguments and reply: mica_abi.h. Protocol, step by step
 * (documented for clients in naam-mica, src/get.rs):
 *
 *   step 0      data[0] = primary bucket. Note its version (odd: a writer holds
 *               it -> NAAM_RETRY) and scan the slots for the key's tag.
 *   CANDIDATE   data = { item, log tail (8 B of meta), bucket header (8 B) }.
 *               Version changed -> NAAM_RETRY. Key hash and key bytes match:
 *               offset still valid in the circular log -> hit, else miss.
 *               No match: keep scanning the carried bucket snapshot.
 *   BUCKET      data[0] = next extra bucket of the chain: scan it.
 *   VERSION     data[0] = bucket header: version unchanged -> miss, else retry.
 *
 * A hit takes two steps. The function trusts nothing it fetched: every length
 * and index read from data is bounds-checked before use, and data that a torn
 * read could explain end in NAAM_RETRY.
 *
 * ACCESS ORDER (assumed). The CANDIDATE step's three reads must be performed in
 * declaration order -- item, then tail, then bucket header -- and each read
 * front to back. The writer moves the tail before it overwrites log bytes and
 * makes the version odd before it changes a bucket, so a tail and a version
 * read after the item vouch for the item's bytes. Our data paths keep this
 * order: the engine hands accesses out in declaration order, the host path
 * completes them in order, the emulated NIC's DMA queue is FIFO with a constant
 * delay, and the client sends its one-sided reads in order to a single-threaded
 * emulated RNIC. A path that cannot (unfenced RDMA READs on real hardware) must
 * fence the last two reads or split the step. See naam-mica's crate docs.
 */
#include "naam.h"
#include "mica_abi.h"

#define INLINE static inline __attribute__((always_inline))

#define PHASE_BUCKET 1
#define PHASE_CANDIDATE 2
#define PHASE_VERSION 3

#define SLOTS_MAX MICA_SLOTS_LARGE
#define BUCKET_WORDS_MAX (1 + SLOTS_MAX)
#define KEY_WORDS_MAX (MICA_KEY_BYTES_MAX / 8)
#define OFFSET_MASK ((1ULL << MICA_OFFSET_BITS) - 1)
#define ROUND_UP8(n) (((n) + 7) & ~7U)
/* Internal: "scan the carried bucket next" (never returned to the runtime). */
#define SCAN_NEXT (-1)

/* Carried from one step to the next. */
struct get_state {
    naam_u32 version0;                 /* primary bucket version at step 0 (even) */
    naam_u8 phase;                     /* what this step's ctx->data hold */
    naam_u8 next_slot;                 /* resume scanning `bucket` here */
    naam_u8 hops;                      /* extra buckets followed so far */
    naam_u8 cand_slot;                 /* slot whose item is being fetched */
    naam_u64 bucket[BUCKET_WORDS_MAX]; /* snapshot of the bucket being scanned */
};

_Static_assert(sizeof(struct get_state) <= NAAM_STATE_BYTES_MAX, "state fits the carried buffer");
_Static_assert(3 <= NAAM_ACCESSES_PER_STEP_MAX, "a candidate step declares three accesses");
_Static_assert(MICA_ARGS_KEY + MICA_KEY_BYTES_MAX <= NAAM_ARGS_BYTES_MAX, "args fit");
_Static_assert(1 + MICA_VALUE_BYTES_MAX <= NAAM_REPLY_BYTES_MAX, "a hit fits one reply");
_Static_assert(MICA_ERR_ARGS >= NAAM_ERR_BASE, "error codes stay clear of NAAM's");

/* The decoded argument block. */
struct args {
    naam_u64 index_rkey;
    naam_u64 log_rkey;
    naam_u64 meta_rkey;
    naam_u64 key_hash;
    naam_u64 log_bytes;
    naam_u32 buckets;
    naam_u32 extra_buckets;
    naam_u32 item_read_bytes;
    naam_u32 slots;
    naam_u32 key_len;
    const naam_u8 *key;
};

INLINE int is_pow2(naam_u64 x) { return x != 0 && (x & (x - 1)) == 0; }

INLINE int load_args(const struct naam_ctx *ctx, struct args *a)
{
    const naam_u8 *p = (const naam_u8 *)(unsigned long)ctx->args;
    if (ctx->args_len < MICA_ARGS_KEY)
        return -1;
    a->index_rkey = NAAM_LOAD(naam_u64, p, MICA_ARGS_INDEX_RKEY);
    a->log_rkey = NAAM_LOAD(naam_u64, p, MICA_ARGS_LOG_RKEY);
    a->meta_rkey = NAAM_LOAD(naam_u64, p, MICA_ARGS_META_RKEY);
    a->key_hash = NAAM_LOAD(naam_u64, p, MICA_ARGS_KEY_HASH);
    a->log_bytes = NAAM_LOAD(naam_u64, p, MICA_ARGS_LOG_BYTES);
    a->buckets = NAAM_LOAD(naam_u32, p, MICA_ARGS_BUCKETS);
    a->extra_buckets = NAAM_LOAD(naam_u32, p, MICA_ARGS_EXTRA_BUCKETS);
    a->item_read_bytes = NAAM_LOAD(naam_u16, p, MICA_ARGS_ITEM_READ_BYTES);
    a->slots = NAAM_LOAD(naam_u8, p, MICA_ARGS_SLOTS);
    a->key_len = NAAM_LOAD(naam_u8, p, MICA_ARGS_KEY_LEN);
    a->key = p + MICA_ARGS_KEY;
    if (a->slots != MICA_SLOTS_SMALL && a->slots != MICA_SLOTS_LARGE)
        return -1;
    if (a->key_len > MICA_KEY_BYTES_MAX || ctx->args_len < MICA_ARGS_KEY + ROUND_UP8(a->key_len))
        return -1;
    if (!is_pow2(a->log_bytes) || a->log_bytes > MICA_LOG_BYTES_MAX || !is_pow2(a->buckets))
        return -1;
    if (a->item_read_bytes < MICA_ITEM_HEADER_BYTES + ROUND_UP8(a->key_len) ||
        a->item_read_bytes > NAAM_ACCESS_BYTES_MAX)
        return -1;
    return 0;
}

INLINE naam_u64 bucket_bytes(const struct args *a)
{
    return MICA_BUCKET_HEADER_BYTES + MICA_ENTRY_BYTES * (naam_u64)a->slots;
}

INLINE naam_u64 primary_offset(const struct args *a)
{
    naam_u64 index = (a->key_hash >> MICA_BUCKET_HASH_SHIFT) & (a->buckets - 1);
    return index * bucket_bytes(a);
}

/* Extra bucket j (1-based) follows the primary buckets. */
INLINE naam_u64 extra_offset(const struct args *a, naam_u32 j)
{
    return ((naam_u64)a->buckets + j - 1) * bucket_bytes(a);
}

INLINE long next_step(struct get_state *st, naam_u8 phase)
{
    st->phase = phase;
    if (naam_save_state(sizeof(*st)) < 0)
        return MICA_ERR_HELPER;
    return NAAM_NEXT;
}

/* The reply's end: nothing, or in a per-tenant build (mica_get_tenant.c) the
 * tenant's salt, whose lddw immediate the loader patches per tenant. */
INLINE long reply_done(void)
{
#ifdef MICA_TENANT_SALT
    naam_u64 salt = MICA_TENANT_SALT;
    if (naam_reply(&salt, MICA_TENANT_SALT_BYTES) < 0)
        return MICA_ERR_HELPER;
#endif
    return NAAM_DONE;
}

INLINE long reply_miss(void)
{
    naam_u8 status = MICA_REPLY_MISS;
    if (naam_reply(&status, 1) < 0)
        return MICA_ERR_HELPER;
    return reply_done();
}

INLINE long reply_hit(const naam_u8 *value, naam_u32 value_len)
{
    naam_u8 status = MICA_REPLY_HIT;
    if (naam_reply(&status, 1) < 0)
        return MICA_ERR_HELPER;
    if (value_len > 0 && naam_reply(value, value_len) < 0)
        return MICA_ERR_HELPER;
    return reply_done();
}

/* Keys are zero-padded to 8 bytes in the item and in the args: compare words.
 * Loops are bounded by named maxima; the NAAM VM meters instructions instead of
 * requiring unrolling, so they stay loops (fewer instructions run for short keys). */
INLINE int keys_equal(const naam_u8 *stored, const naam_u8 *key, naam_u32 key_len)
{
    naam_u32 words = ROUND_UP8(key_len) / 8;
#pragma clang loop unroll(disable)
    for (naam_u32 w = 0; w < words && w < KEY_WORDS_MAX; w++) {
        if (NAAM_LOAD(naam_u64, stored, 8 * w) != NAAM_LOAD(naam_u64, key, 8 * w))
            return 0;
    }
    return 1;
}

/*
 * Scan the carried bucket snapshot from st->next_slot for the key's tag and
 * declare the next step's accesses. `version_checked`: this step already read
 * the bucket version after everything the answer depends on.
 */
INLINE long scan(const struct args *a, struct get_state *st, int version_checked)
{
    naam_u16 tag = (naam_u16)a->key_hash;
    if (tag == 0)
        tag = 1;
    int found = -1;
#pragma clang loop unroll(disable)
    for (naam_u32 s = st->next_slot; s < a->slots && s < SLOTS_MAX; s++) {
        if ((naam_u16)(st->bucket[1 + s] >> MICA_TAG_SHIFT) == tag) {
            found = s;
            break;
        }
    }
    if (found >= 0) {
        naam_u64 offset = st->bucket[1 + found] & OFFSET_MASK;
        st->cand_slot = found;
        st->next_slot = found + 1;
        if (naam_read(a->log_rkey, offset & (a->log_bytes - 1), a->item_read_bytes) < 0 ||
            naam_read(a->meta_rkey, MICA_META_TAIL_OFFSET, 8) < 0 ||
            naam_read(a->index_rkey, primary_offset(a), MICA_BUCKET_HEADER_BYTES) < 0)
            return MICA_ERR_HELPER;
        return next_step(st, PHASE_CANDIDATE);
    }
    naam_u32 next = (naam_u32)(st->bucket[0] >> 32); /* next extra bucket, at byte 4 */
    if (next != 0) {
        /* Out of range or too deep: only a torn snapshot explains it here. */
        if (next > a->extra_buckets || st->hops >= MICA_CHAIN_HOPS_MAX)
            return NAAM_RETRY;
        st->hops += 1;
        if (naam_read(a->index_rkey, extra_offset(a, next), bucket_bytes(a)) < 0)
            return MICA_ERR_HELPER;
        return next_step(st, PHASE_BUCKET);
    }
    if (version_checked)
        return reply_miss();
    if (naam_read(a->index_rkey, primary_offset(a), MICA_BUCKET_HEADER_BYTES) < 0)
        return MICA_ERR_HELPER;
    return next_step(st, PHASE_VERSION);
}

/* data[0] is a bucket: the primary one at step 0, an extra one later. Copies it
 * into the state; SCAN_NEXT tells the caller to scan it. */
INLINE long on_bucket(const struct naam_ctx *ctx, const struct args *a,
                                      struct get_state *st, int primary)
{
    if (ctx->n_data != 1 || ctx->data[0].len < bucket_bytes(a))
        return MICA_ERR_DATA;
    const naam_u8 *b = (const naam_u8 *)(unsigned long)ctx->data[0].addr;
    if (primary) {
        naam_u32 version = NAAM_LOAD(naam_u32, b, MICA_BUCKET_VERSION_OFFSET);
        if (version & 1)
            return NAAM_RETRY;
        st->version0 = version;
        st->hops = 0;
    }
#pragma clang loop unroll(disable)
    for (naam_u32 w = 0; w <= a->slots && w < BUCKET_WORDS_MAX; w++)
        st->bucket[w] = NAAM_LOAD(naam_u64, b, 8 * w);
    st->next_slot = 0;
    return SCAN_NEXT;
}

/* data = { item, tail, bucket header }, declared by scan(). SCAN_NEXT: not the
 * key; the caller scans on (the version was checked after every read). */
INLINE long on_candidate(const struct naam_ctx *ctx, const struct args *a,
                                         struct get_state *st)
{
    if (ctx->n_data != 3 || ctx->data[0].len < a->item_read_bytes || ctx->data[1].len < 8 ||
        ctx->data[2].len < MICA_BUCKET_HEADER_BYTES)
        return MICA_ERR_DATA;
    if (st->cand_slot >= SLOTS_MAX)
        return MICA_ERR_STATE;
    const naam_u8 *item = (const naam_u8 *)(unsigned long)ctx->data[0].addr;
    const naam_u8 *tail_bytes = (const naam_u8 *)(unsigned long)ctx->data[1].addr;
    const naam_u8 *header = (const naam_u8 *)(unsigned long)ctx->data[2].addr;
    if (NAAM_LOAD(naam_u32, header, MICA_BUCKET_VERSION_OFFSET) != st->version0)
        return NAAM_RETRY;
    if (NAAM_LOAD(naam_u64, item, MICA_ITEM_KEY_HASH_OFFSET) == a->key_hash) {
        naam_u32 kv = NAAM_LOAD(naam_u32, item, MICA_ITEM_KV_LENGTH_OFFSET);
        naam_u32 key_len = kv >> MICA_KEY_LENGTH_SHIFT;
        naam_u32 value_len = kv & MICA_VALUE_LENGTH_MASK;
        if (key_len == a->key_len && keys_equal(item + MICA_ITEM_HEADER_BYTES, a->key, key_len)) {
            naam_u64 tail = NAAM_LOAD(naam_u64, tail_bytes, 0);
            naam_u64 offset = st->bucket[1 + st->cand_slot] & OFFSET_MASK;
            if (((tail - offset) & OFFSET_MASK) > a->log_bytes)
                return reply_miss(); /* overwritten by the circular log */
            naam_u32 value_at = MICA_ITEM_HEADER_BYTES + ROUND_UP8(key_len);
            if (value_len > MICA_VALUE_BYTES_MAX || value_at + value_len > ctx->data[0].len)
                return MICA_ERR_ITEM_TRUNCATED;
            return reply_hit(item + value_at, value_len);
        }
    }
    return SCAN_NEXT;
}

/* data[0] = bucket header, read after a whole miss scan. */
INLINE long on_version(const struct naam_ctx *ctx, const struct get_state *st)
{
    if (ctx->n_data != 1 || ctx->data[0].len < MICA_BUCKET_HEADER_BYTES)
        return MICA_ERR_DATA;
    const naam_u8 *header = (const naam_u8 *)(unsigned long)ctx->data[0].addr;
    if (NAAM_LOAD(naam_u32, header, MICA_BUCKET_VERSION_OFFSET) != st->version0)
        return NAAM_RETRY;
    return reply_miss();
}

NAAM_FUNCTION(mica_get)
{
    struct args a;
    if (load_args(ctx, &a) < 0)
        return MICA_ERR_ARGS;
    struct get_state *st = (struct get_state *)(unsigned long)ctx->state;
    if (ctx->step != 0 && ctx->state_len != sizeof(struct get_state))
        return MICA_ERR_STATE;
    long result;
    int version_checked = 0;
    if (ctx->step == 0 || st->phase == PHASE_BUCKET) {
        result = on_bucket(ctx, &a, st, ctx->step == 0);
    } else if (st->phase == PHASE_CANDIDATE) {
        result = on_candidate(ctx, &a, st);
        version_checked = 1;
    } else if (st->phase == PHASE_VERSION) {
        return on_version(ctx, st);
    } else {
        return MICA_ERR_STATE;
    }
    if (result != SCAN_NEXT)
        return result;
    return scan(&a, st, version_checked);
}
