//! `naam_mica::hash::key_hash` is MICA's CityHash64 (release 1.0.3): checked against values MICA's
//! own `city.c` printed (`tests/vectors/README.md` says how they were made and cross-checked).

use naam_mica::hash::{city_hash_64, key_hash};
use naam_mica::layout::{bucket_index, tag};

/// The bytes of the length-`n` pattern input (`tests/vectors/README.md`).
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| ((i * 167 + n * 13 + 7) % 256) as u8)
        .collect()
}

/// `(first column, hash)` rows of a vector file.
fn rows(csv: &str) -> Vec<(&str, u64)> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let (input, hash) = line.rsplit_once(',').expect("two columns");
            let hash = u64::from_str_radix(hash.trim_start_matches("0x"), 16).expect("hex hash");
            (input, hash)
        })
        .collect()
}

#[test]
fn every_length_0_to_256_matches_micas_city_c() {
    let vectors = rows(include_str!("vectors/cityhash64_pattern.csv"));
    assert_eq!(vectors.len(), 257, "one vector per length 0..=256");
    for (len, expected) in vectors {
        let len: usize = len.parse().expect("length");
        assert_eq!(city_hash_64(&pattern(len)), expected, "length {len}");
    }
}

#[test]
fn ycsb_key_names_and_text_match_micas_city_c() {
    let vectors = rows(include_str!("vectors/cityhash64_text.csv"));
    assert!(vectors.len() >= 10);
    for (text, expected) in vectors {
        assert_eq!(key_hash(text.as_bytes()), expected, "{text:?}");
    }
}

#[test]
fn eight_byte_binary_keys_match_micas_city_c() {
    let vectors = rows(include_str!("vectors/cityhash64_keys8.csv"));
    assert!(vectors.len() >= 10);
    for (word, expected) in vectors {
        let word: u64 = word.parse().expect("u64 key");
        assert_eq!(key_hash(&word.to_le_bytes()), expected, "key {word}");
    }
}

#[test]
fn bucket_and_tag_follow_from_the_city_hash_as_in_mica() {
    // MICA: bucket = (keyhash >> 16) & (buckets - 1); tag = keyhash & 0xffff, 0 -> 1.
    let h = key_hash(b"user6284781860667377211");
    assert_eq!(h, 0xa826_933b_2cbb_4755);
    assert_eq!(bucket_index(h, 1 << 20), 0x3b_2cbb & ((1 << 20) - 1));
    assert_eq!(tag(h), 0x4755);
}
