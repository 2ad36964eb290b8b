//! Self-verifying values: a value says which key it belongs to and which write produced it, and
//! the rest of its bytes follow from those two, so a client can verify any answer — including
//! values written by other clients — without knowing the history of writes.
//!
//! Layout (little-endian): `[0..4)` fingerprint of the key number, `[4..8)` version (0 for the
//! loaded value; writers use [`version_of`]), then filler derived from (fingerprint, version),
//! 8 bytes per word. Values are at least [`VALUE_BYTES_MIN`] long.

/// Shortest self-verifying value.
pub const VALUE_BYTES_MIN: usize = 8;

/// The key number's fingerprint (32 bits of a 64-bit mix).
pub fn fingerprint(keynum: u64) -> u32 {
    (mix(keynum ^ 0x5bd1_e995_5bd1_e995) >> 32) as u32
}

/// The version client `client` writes as its `count`-th write: distinct across clients.
pub fn version_of(client: u32, count: u32) -> u32 {
    ((client & 0xff) + 1) << 24 | (count & 0x00ff_ffff)
}

/// Fills `out` (≥ [`VALUE_BYTES_MIN`] bytes) with the value of `keynum` at `version`.
pub fn fill_value(out: &mut [u8], keynum: u64, version: u32) {
    debug_assert!(out.len() >= VALUE_BYTES_MIN);
    let fp = fingerprint(keynum);
    out[..4].copy_from_slice(&fp.to_le_bytes());
    out[4..8].copy_from_slice(&version.to_le_bytes());
    let seed = u64::from(fp) << 32 | u64::from(version);
    for (i, chunk) in out[8..].chunks_mut(8).enumerate() {
        let word = mix(seed.wrapping_add(i as u64)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

/// The value of `keynum` at `version`, `len` bytes.
pub fn value(keynum: u64, version: u32, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len.max(VALUE_BYTES_MIN)];
    fill_value(&mut out, keynum, version);
    out
}

/// Checks that `bytes` is a value of `keynum` (any version) of `len` bytes; returns its version.
/// Inline: a client checks every answer (its errors are built only on a failure).
#[inline]
pub fn check_value(bytes: &[u8], keynum: u64, len: usize) -> Result<u32, String> {
    if bytes.len() != len {
        return Err(format!("value of {} bytes, expected {len}", bytes.len()));
    }
    let found = u32::from_le_bytes(bytes[..4].try_into().map_err(|_| "short value")?);
    if found != fingerprint(keynum) {
        return Err(format!(
            "value belongs to another key (fingerprint {found:#x}, expected {:#x})",
            fingerprint(keynum)
        ));
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().map_err(|_| "short value")?);
    if !filler_matches(&bytes[8..], found, version) {
        return Err(format!("value of version {version:#x} is torn or corrupt"));
    }
    Ok(version)
}

/// True when `filler` is the filler [`fill_value`] writes after the fingerprint `fp` and
/// `version`: compared word by word as it is derived, so a client's check of every answer
/// allocates nothing (it runs once per request).
fn filler_matches(filler: &[u8], fp: u32, version: u32) -> bool {
    let seed = u64::from(fp) << 32 | u64::from(version);
    filler.chunks(8).enumerate().all(|(i, chunk)| {
        let word = mix(seed.wrapping_add(i as u64)).to_le_bytes();
        word[..chunk.len()] == *chunk
    })
}

/// SplitMix64's finaliser.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_verify_and_detect_tearing_and_mixups() {
        for len in [8, 9, 64, 1000] {
            let v = value(42, version_of(3, 7), len);
            assert_eq!(check_value(&v, 42, len), Ok(version_of(3, 7)));
            assert!(check_value(&v, 43, len).is_err(), "another key's value");
            if len > 8 {
                let mut torn = v.clone();
                torn[len - 1] ^= 1;
                assert!(check_value(&torn, 42, len).is_err(), "a torn value");
            }
        }
        assert_ne!(version_of(0, 1), version_of(1, 1));
    }

    #[test]
    fn a_change_anywhere_in_the_filler_is_caught() {
        // 21 bytes: two whole filler words and a partial one.
        let len = 21;
        let v = value(7, version_of(1, 2), len);
        for i in 8..len {
            let mut torn = v.clone();
            torn[i] ^= 0x80;
            assert!(check_value(&torn, 7, len).is_err(), "byte {i} changed");
        }
    }
}
