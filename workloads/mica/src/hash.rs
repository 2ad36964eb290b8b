//! The key hash: **CityHash64**, the function MICA hashes keys with. MICA's `src/hash.h` returns
//! `CityHash64(key, len)` from the C port of CityHash it compiles (`src/city.c`), which is
//! CityHash **1.0.3**: inputs of up to 64 bytes take 1.0.x's short-input paths (Google's 1.0.2
//! gives the same values), longer inputs the 64-byte-chunk loop that 1.0.3 introduced and 1.1
//! kept. CityHash 1.1 changed the short paths, so `pip install cityhash` (1.1) gives different
//! values for keys of 1 to 64 bytes — MICA's keys.
//!
//! Written here from the algorithm (Pike and Alakuijala's CityHash); `tests/vectors/` holds the
//! outputs of MICA's own `city.c` for every length from 0 to 256 bytes (every branch, and up to
//! four rounds of the chunk loop) and for YCSB-style key names, each also checked against one of
//! Google's releases (see `tests/vectors/README.md`); `tests/city_vectors.rs` compares them.
//!
//! Bucket and tag are derived from the 64-bit hash exactly as MICA derives them
//! (`layout::bucket_index`, `layout::tag`), so a key lands in MICA's bucket with MICA's tag.
//! The hash is computed by the client (it goes into the GET function's arguments) and by the host
//! writer; the eBPF function only compares stored hashes, so it never computes one.

/// CityHash's first multiplier constant (`k0`).
const K0: u64 = 0xc3a5_c85c_97cb_3127;
/// CityHash's second multiplier constant (`k1`).
const K1: u64 = 0xb492_b66f_be98_f273;
/// CityHash's third multiplier constant (`k2`).
const K2: u64 = 0x9ae1_6a3b_2f90_404f;
/// CityHash's fourth multiplier constant (`k3`, used by 1.0.x's short-input paths).
const K3: u64 = 0xc949_d7c7_509e_6557;
/// The multiplier of `Hash128to64` (CityHash's 128 → 64 bit fold, from Murmur).
const K_MUL: u64 = 0x9ddf_ea08_eb38_2d69;
/// CityHash64 processes long inputs in chunks of this many bytes.
const CHUNK_BYTES: usize = 64;

/// Little-endian u64 at `at` (CityHash's `Fetch64`; MICA runs on little-endian x86).
#[inline]
fn fetch64(s: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Little-endian u32 at `at`, widened (CityHash's `Fetch32`).
#[inline]
fn fetch32(s: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

/// `val ^ (val >> 47)`.
#[inline]
fn shift_mix(val: u64) -> u64 {
    val ^ (val >> 47)
}

/// Folds two words into one (`HashLen16(u, v)` = `Hash128to64(u, v)`, Murmur-inspired).
#[inline]
fn hash_len16(u: u64, v: u64) -> u64 {
    let mut a = (u ^ v).wrapping_mul(K_MUL);
    a ^= a >> 47;
    let mut b = (v ^ a).wrapping_mul(K_MUL);
    b ^= b >> 47;
    b.wrapping_mul(K_MUL)
}

#[inline]
fn hash_len_0_to_16(s: &[u8]) -> u64 {
    let len = s.len();
    if len > 8 {
        let a = fetch64(s, 0);
        let b = fetch64(s, len - 8);
        // `RotateByAtLeast1(b + len, len)`: 9 <= len <= 16, so the rotation is never by 0.
        return hash_len16(a, b.wrapping_add(len as u64).rotate_right(len as u32)) ^ b;
    }
    if len >= 4 {
        let a = fetch32(s, 0);
        return hash_len16((len as u64).wrapping_add(a << 3), fetch32(s, len - 4));
    }
    if len > 0 {
        // 32-bit arithmetic, as the C (`uint32 y`, `uint32 z`), then widened by the multiply.
        let (a, b, c) = (
            u32::from(s[0]),
            u32::from(s[len >> 1]),
            u32::from(s[len - 1]),
        );
        let y = a.wrapping_add(b << 8);
        let z = (len as u32).wrapping_add(c << 2);
        let mixed = u64::from(y).wrapping_mul(K2) ^ u64::from(z).wrapping_mul(K3);
        return shift_mix(mixed).wrapping_mul(K2);
    }
    K2
}

fn hash_len_17_to_32(s: &[u8]) -> u64 {
    let len = s.len();
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(K2);
    let d = fetch64(s, len - 16).wrapping_mul(K0);
    let u = a
        .wrapping_sub(b)
        .rotate_right(43)
        .wrapping_add(c.rotate_right(30))
        .wrapping_add(d);
    let v = a
        .wrapping_add((b ^ K3).rotate_right(20))
        .wrapping_sub(c)
        .wrapping_add(len as u64);
    hash_len16(u, v)
}

/// One half of the 33..=64-byte path: two words from the 32 bytes at `first`, `first + 8`, …
/// (CityHash 1.0's inline "v" and "w" pairs).
fn half_33_to_64(a: u64, z: u64, second: u64, third: u64) -> (u64, u64) {
    let b = a.wrapping_add(z).rotate_right(52);
    let c = a.rotate_right(37);
    let a = a.wrapping_add(second);
    let c = c.wrapping_add(a.rotate_right(7));
    let a = a.wrapping_add(third);
    (
        a.wrapping_add(z),
        b.wrapping_add(a.rotate_right(31)).wrapping_add(c),
    )
}

fn hash_len_33_to_64(s: &[u8]) -> u64 {
    let len = s.len();
    let a = fetch64(s, 0).wrapping_add(
        (len as u64)
            .wrapping_add(fetch64(s, len - 16))
            .wrapping_mul(K0),
    );
    let (vf, vs) = half_33_to_64(a, fetch64(s, 24), fetch64(s, 8), fetch64(s, 16));
    let a = fetch64(s, 16).wrapping_add(fetch64(s, len - 32));
    let (wf, ws) = half_33_to_64(
        a,
        fetch64(s, len - 8),
        fetch64(s, len - 24),
        fetch64(s, len - 16),
    );
    let r = shift_mix(
        vf.wrapping_add(ws)
            .wrapping_mul(K2)
            .wrapping_add(wf.wrapping_add(vs).wrapping_mul(K0)),
    );
    shift_mix(r.wrapping_mul(K0).wrapping_add(vs)).wrapping_mul(K2)
}

/// Two words from 32 bytes and two seeds (CityHash's `WeakHashLen32WithSeeds`).
fn weak_hash_len32_with_seeds(s: &[u8], at: usize, a: u64, b: u64) -> (u64, u64) {
    let (w, x, y, z) = (
        fetch64(s, at),
        fetch64(s, at + 8),
        fetch64(s, at + 16),
        fetch64(s, at + 24),
    );
    let a = a.wrapping_add(w);
    let b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    let a = a.wrapping_add(x).wrapping_add(y);
    let b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

/// The 64-byte chunk state of the long-input path.
#[derive(Clone, Copy)]
struct LongState {
    x: u64,
    y: u64,
    z: u64,
    v: (u64, u64),
    w: (u64, u64),
}

impl LongState {
    /// The state seeded from the input's last 64 bytes.
    fn seeded(s: &[u8]) -> LongState {
        let len = s.len();
        let x = fetch64(s, len - 40);
        let y = fetch64(s, len - 16).wrapping_add(fetch64(s, len - 56));
        let z = hash_len16(
            fetch64(s, len - 48).wrapping_add(len as u64),
            fetch64(s, len - 24),
        );
        let v = weak_hash_len32_with_seeds(s, len - 64, len as u64, z);
        let w = weak_hash_len32_with_seeds(s, len - 32, y.wrapping_add(K1), x);
        let x = x.wrapping_mul(K1).wrapping_add(fetch64(s, 0));
        LongState { x, y, z, v, w }
    }

    /// Mixes the 64-byte chunk at `at` into the state.
    fn absorb(&mut self, s: &[u8], at: usize) {
        let LongState { x, y, z, v, w } = *self;
        let x = x
            .wrapping_add(y)
            .wrapping_add(v.0)
            .wrapping_add(fetch64(s, at + 8))
            .rotate_right(37)
            .wrapping_mul(K1);
        let y = y
            .wrapping_add(v.1)
            .wrapping_add(fetch64(s, at + 48))
            .rotate_right(42)
            .wrapping_mul(K1);
        let x = x ^ w.1;
        let y = y.wrapping_add(v.0).wrapping_add(fetch64(s, at + 40));
        let z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        let v = weak_hash_len32_with_seeds(s, at, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        let w = weak_hash_len32_with_seeds(
            s,
            at + 32,
            z.wrapping_add(w.1),
            y.wrapping_add(fetch64(s, at + 16)),
        );
        // The C++ swaps z and x at the end of each round.
        *self = LongState {
            x: z,
            y,
            z: x,
            v,
            w,
        };
    }

    fn finish(&self) -> u64 {
        let LongState { x, y, z, v, w } = *self;
        hash_len16(
            hash_len16(v.0, w.0)
                .wrapping_add(shift_mix(y).wrapping_mul(K1))
                .wrapping_add(z),
            hash_len16(v.1, w.1).wrapping_add(x),
        )
    }
}

/// CityHash64 (release 1.0.3, MICA's) of `bytes`.
#[inline]
pub fn city_hash_64(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    if len <= 16 {
        return hash_len_0_to_16(bytes);
    }
    if len <= 32 {
        return hash_len_17_to_32(bytes);
    }
    if len <= 64 {
        return hash_len_33_to_64(bytes);
    }
    let mut state = LongState::seeded(bytes);
    // Whole chunks from the start, covering (len - 1) rounded down to 64: the last 1..=64 bytes
    // were already folded in by the seeding.
    let chunks = (len - 1) / CHUNK_BYTES;
    for chunk in 0..chunks {
        state.absorb(bytes, chunk * CHUNK_BYTES);
    }
    state.finish()
}

/// The key hash used for the index: MICA's `CityHash64(key, key_len)`.
///
/// Inline, with the short-input path (keys of up to 16 bytes, MICA's datasets): a client hashes
/// one key per GET, and the out-of-line call (saving the registers the long paths use) cost
/// about as much as hashing an 8-byte key.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    city_hash_64(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_hashes_to_k2() {
        // CityHash64("") returns the constant k2 (HashLen0to16's len == 0 branch).
        assert_eq!(city_hash_64(b""), K2);
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
