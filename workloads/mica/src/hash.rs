//! The key hash. MICA uses CityHash64; we use **FNV-1a-64 followed by the MurmurHash3 64-bit
//! finaliser (`fmix64`)**, written here from their published definitions. This is the only
//! difference from MICA's hashing: bucket and tag are derived from the 64-bit hash exactly as
//! MICA derives them (`layout::bucket_index`, `layout::tag`).
//!
//! Why the finaliser: FNV-1a alone mixes poorly into the middle bits for short keys, and the bucket
//! index comes from bits 16 and up; `fmix64` is a bijection that spreads every input bit over the
//! whole word. The hash is computed by the client (it goes into the GET function's arguments) and
//! by the host writer; the eBPF function only compares stored hashes, so it never computes one.

/// FNV-1a 64-bit offset basis (Fowler, Noll, Vo).
pub const FNV1A_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV 64-bit prime.
pub const FNV1A_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a over `bytes`.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(FNV1A_OFFSET_BASIS, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV1A_PRIME)
    })
}

/// MurmurHash3's 64-bit finaliser (Austin Appleby): a bijective avalanche step.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The key hash used for the index: `fmix64(fnv1a_64(key))`.
pub fn key_hash(key: &[u8]) -> u64 {
    fmix64(fnv1a_64(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_published_vectors() {
        // Vectors from the FNV reference test suite (isthe.com/chongo/src/fnv/test_fnv.c).
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_is_the_murmur3_finaliser() {
        assert_eq!(fmix64(0), 0);
        // fmix64 is a bijection: distinct inputs give distinct outputs
        let outs: std::collections::HashSet<u64> = (0..10_000u64).map(fmix64).collect();
        assert_eq!(outs.len(), 10_000);
    }

    #[test]
    fn sequential_keys_spread_over_buckets_and_tags() {
        // YCSB-like keys: every one of 64 buckets and many tags get used by 4096 keys.
        let mut buckets = [0u32; 64];
        let mut tags = std::collections::HashSet::new();
        for i in 0..4096u32 {
            let h = key_hash(format!("user{i}").as_bytes());
            buckets[crate::layout::bucket_index(h, 64) as usize] += 1;
            tags.insert(crate::layout::tag(h));
        }
        let (min, max) = (buckets.iter().min().copied(), buckets.iter().max().copied());
        assert!(min.is_some_and(|m| m >= 30), "bucket loads {buckets:?}");
        assert!(max.is_some_and(|m| m <= 100), "bucket loads {buckets:?}");
        assert!(tags.len() > 3900, "{} distinct tags", tags.len());
    }
}
