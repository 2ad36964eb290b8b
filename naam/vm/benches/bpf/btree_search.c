/* B-tree node search (benches/probe.rs): binary search over the sorted 8-byte keys of a 1 KB
 * node, as a Cell-style B-tree lookup does at every level. Returns the child index to descend
 * into: the number of keys <= the search key. */
#include "naam.h"

#define NODE_BYTES 1024
#define NODE_KEYS (NODE_BYTES / 8)

struct search_input {
    naam_u64 key;    /* search key */
    naam_u64 n_keys; /* keys used in the node, at most NODE_KEYS */
    naam_u64 keys[NODE_KEYS];
};

__attribute__((section("naam/btree_search"), used)) long btree_search(const struct search_input *in)
{
    naam_u64 lo = 0;
    naam_u64 hi = in->n_keys < NODE_KEYS ? in->n_keys : NODE_KEYS;
    while (lo < hi) {
        naam_u64 mid = (lo + hi) / 2;
        if (in->keys[mid] <= in->key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
