//! YCSB's 64-bit FNV hash and its key names.

/// FNV-1a 64-bit offset basis (YCSB `Utils.FNV_OFFSET_BASIS_64`).
pub const FNV_OFFSET_BASIS_64: u64 = 0xCBF2_9CE4_8422_2325;
/// FNV 64-bit prime (YCSB `Utils.FNV_PRIME_64`).
pub const FNV_PRIME_64: u64 = 1_099_511_628_211;
/// YCSB's key-name prefix.
pub const KEY_PREFIX: &str = "user";
/// Bound on `zeropadding` so a key name stays small (YCSB has none; 64 is far above any use).
pub const ZERO_PADDING_MAX: usize = 64;

/// YCSB's `Utils.fnvhash64`: FNV-1a over the 8 little-end-first bytes of `val` (arithmetic shift,
/// as Java's `>>` on a `long`), then `Math.abs` — which leaves `i64::MIN` negative, as in Java.
///
/// Each byte is one xor and one multiplication, all in one dependency chain; a zero byte's xor
/// changes nothing, so when the four high bytes are zero (every key number, nearly every
/// Zipfian rank) their four multiplications are one by [`FNV_PRIME_64_POW4`] (wrapping
/// multiplication is associative): the same hash, a chain of five multiplications, not eight.
#[inline]
pub fn fnvhash64(val: i64) -> i64 {
    let bytes = val.to_le_bytes();
    let hash = if (val as u64) >> 32 == 0 {
        fnv_bytes(FNV_OFFSET_BASIS_64, &bytes[..4]).wrapping_mul(FNV_PRIME_64_POW4)
    } else {
        fnv_bytes(FNV_OFFSET_BASIS_64, &bytes)
    };
    (hash as i64).wrapping_abs()
}

/// [`FNV_PRIME_64`]⁴ (wrapping): four FNV steps over zero bytes.
pub const FNV_PRIME_64_POW4: u64 = FNV_PRIME_64
    .wrapping_mul(FNV_PRIME_64)
    .wrapping_mul(FNV_PRIME_64)
    .wrapping_mul(FNV_PRIME_64);

/// FNV-1a steps over `bytes` from `hash`.
#[inline(always)]
fn fnv_bytes(mut hash: u64, bytes: &[u8]) -> u64 {
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME_64);
    }
    hash
}

/// Appends YCSB's `CoreWorkload.buildKeyName(keynum, zeropadding, orderedinserts)` to `out`:
/// `"user"`, then `zeropadding - digits` zeros (if positive), then the decimal key number —
/// hashed with [`fnvhash64`] unless `ordered` (YCSB's default `insertorder=hashed` is
/// `ordered == false`). `zeropadding` is clamped to [`ZERO_PADDING_MAX`].
pub fn push_key_name(out: &mut String, keynum: i64, zeropadding: usize, ordered: bool) {
    let value = if ordered { keynum } else { fnvhash64(keynum) };
    let digits = decimal_len(value);
    out.push_str(KEY_PREFIX);
    let fill = zeropadding.min(ZERO_PADDING_MAX).saturating_sub(digits);
    out.extend(std::iter::repeat_n('0', fill));
    push_decimal(out, value);
}

/// "00" … "99": two decimal digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends Java's `Long.toString(value)` (the formatter machinery costs several times more on
/// this path, which runs once per generated operation).
fn push_decimal(out: &mut String, value: i64) {
    let mut buf = [0u8; 20];
    let mut magnitude = value.unsigned_abs();
    let mut start = buf.len();
    while magnitude >= 100 {
        let pair = (magnitude % 100) as usize * 2;
        magnitude /= 100;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if magnitude >= 10 {
        let pair = magnitude as usize * 2;
        start -= 2;
        buf[start..start + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        start -= 1;
        buf[start] = b'0' + magnitude as u8;
    }
    if value < 0 {
        out.push('-');
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or_default());
}

/// [`push_key_name`] into a new string.
pub fn key_name(keynum: i64, zeropadding: usize, ordered: bool) -> String {
    let mut out = String::with_capacity(KEY_PREFIX.len() + 20);
    push_key_name(&mut out, keynum, zeropadding, ordered);
    out
}

/// Length of Java's `Long.toString(value)`, sign included.
fn decimal_len(value: i64) -> usize {
    let sign = usize::from(value < 0);
    let magnitude = value.unsigned_abs();
    let digits = magnitude.checked_ilog10().map_or(1, |d| d as usize + 1);
    sign + digits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// YCSB's loop as written: eight bytes, arithmetic shifts.
    fn fnvhash64_reference(mut val: i64) -> i64 {
        let mut hash = FNV_OFFSET_BASIS_64;
        for _ in 0..8 {
            hash ^= (val & 0xff) as u64;
            val >>= 8;
            hash = hash.wrapping_mul(FNV_PRIME_64);
        }
        (hash as i64).wrapping_abs()
    }

    #[test]
    fn fnvhash64_with_zero_high_bytes_folded_is_the_byte_loop() {
        let edges = [
            0i64,
            1,
            0xff,
            0x100,
            99_999,
            i32::MAX as i64,
            u32::MAX as i64,
        ];
        let edges = edges
            .into_iter()
            .chain([1 << 32, i64::MAX, -1, i64::MIN, -(1 << 32)]);
        let spread = (0..64).flat_map(|shift| {
            [
                1i64 << shift,
                (1i64 << shift).wrapping_sub(1),
                (1i64 << shift).wrapping_neg(),
            ]
        });
        for v in edges.chain(spread) {
            assert_eq!(fnvhash64(v), fnvhash64_reference(v), "value {v:#x}");
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            for v in [x as i64, (x >> 32) as i64, (x >> 29) as i64] {
                assert_eq!(fnvhash64(v), fnvhash64_reference(v), "value {v:#x}");
            }
        }
    }

    #[test]
    fn decimals_match_the_standard_formatter() {
        for v in [
            0i64,
            7,
            10,
            99,
            100,
            12345,
            123456,
            -1,
            -10,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = String::new();
            push_decimal(&mut out, v);
            assert_eq!(out, v.to_string());
        }
    }

    #[test]
    fn decimal_len_counts_sign_and_digits() {
        for v in [0i64, 9, 10, 99, 100, -1, -10, i64::MAX, i64::MIN] {
            assert_eq!(decimal_len(v), v.to_string().len(), "value {v}");
        }
    }
}
