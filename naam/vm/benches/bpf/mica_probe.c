/* MICA-style bucket probe (benches/probe.rs): scan a bucket's 7-15 item slots for a 16-bit tag.
 * As in MICA (NSDI'14, src/table.h): a bucket is a 32-bit version, a 32-bit next-extra-bucket
 * index, then 8-byte entries holding a 16-bit tag (high bits) and a 48-bit log offset; an
 * offset of 0 means empty. Returns the offset of the first entry with the tag, or -1. */
#include "naam.h"

#define MICA_SLOTS_MAX 15
#define MICA_TAG_SHIFT 48
#define MICA_OFFSET_MASK ((1ULL << MICA_TAG_SHIFT) - 1)

struct mica_bucket {
    naam_u32 version;
    naam_u32 next_extra;
    naam_u64 item_vec[MICA_SLOTS_MAX];
};

struct probe_input {
    naam_u64 tag;     /* 16-bit tag to find */
    naam_u64 n_slots; /* entries per bucket in this build: 7 (one cache line) .. 15 */
    struct mica_bucket bucket;
};

__attribute__((section("naam/mica_probe"), used)) long mica_probe(const struct probe_input *in)
{
    naam_u64 n = in->n_slots < MICA_SLOTS_MAX ? in->n_slots : MICA_SLOTS_MAX;
    for (naam_u64 i = 0; i < n; i++) {
        naam_u64 entry = in->bucket.item_vec[i];
        naam_u64 offset = entry & MICA_OFFSET_MASK;
        if ((entry >> MICA_TAG_SHIFT) == in->tag && offset != 0)
            return offset;
    }
    return -1;
}
