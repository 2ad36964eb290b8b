//! The function ABI of `include/naam.h`, mirrored in Rust.
//!
//! Every constant here has a twin `#define` in `naam.h`; the test `abi_matches_header` parses the
//! header and checks that they agree, so the C side and the engine cannot drift apart. The workloads check their own headers with
//! [`header_mismatches`].

use std::collections::{BTreeMap, BTreeSet};

/// `NAAM_ABI_VERSION`.
pub const ABI_VERSION: u32 = 1;

/// `NAAM_ARGS_BYTES_MAX`: argument block of a message.
pub const ARGS_BYTES_MAX: usize = 256;
/// `NAAM_STATE_BYTES_MAX`: state carried from one step to the next.
pub const STATE_BYTES_MAX: usize = 256;
/// `NAAM_REPLY_BYTES_MAX`: reply payload of one message.
pub const REPLY_BYTES_MAX: usize = 1024;
/// `NAAM_ACCESSES_PER_STEP_MAX`: descriptors of one step.
pub const ACCESSES_PER_STEP_MAX: usize = 4;
/// `NAAM_ACCESS_BYTES_MAX`: bytes of one access.
pub const ACCESS_BYTES_MAX: usize = 4096;
/// `NAAM_STEPS_MAX`: steps of one attempt of a message.
pub const STEPS_MAX: usize = 16;
/// `NAAM_RETRIES_MAX`: `NAAM_RETRY` restarts of one message.
pub const RETRIES_MAX: usize = 8;

/// `NAAM_DONE`: the function replied; the message ends.
pub const RET_DONE: u64 = 0;
/// `NAAM_NEXT`: the function declared the next step's accesses.
pub const RET_NEXT: u64 = 1;
/// `NAAM_RETRY`: the function saw a torn or stale read; restart from step 0.
pub const RET_RETRY: u64 = 2;
/// `NAAM_ERR_BASE`: function-defined error codes start here by convention.
pub const ERR_BASE: u64 = 16;

/// `NAAM_HELPER_READ`: declare a read for the next step.
pub const HELPER_READ: u32 = 0x4e01;
/// `NAAM_HELPER_REPLY`: append reply bytes.
pub const HELPER_REPLY: u32 = 0x4e02;
/// `NAAM_HELPER_SAVE_STATE`: carry state bytes into the next step.
pub const HELPER_SAVE_STATE: u32 = 0x4e03;

/// Byte offsets of `struct naam_ctx` (all fields little-endian, natural alignment).
pub mod ctx {
    /// `args` (u64 VM address).
    pub const ARGS: usize = 0;
    /// `args_len` (u32).
    pub const ARGS_LEN: usize = 8;
    /// `step` (u32).
    pub const STEP: usize = 12;
    /// `state` (u64 VM address).
    pub const STATE: usize = 16;
    /// `state_len` (u32).
    pub const STATE_LEN: usize = 24;
    /// `attempt` (u32).
    pub const ATTEMPT: usize = 28;
    /// `location` (u32).
    pub const LOCATION: usize = 32;
    /// `n_data` (u32).
    pub const N_DATA: usize = 36;
    /// `data[0]`: `struct naam_data { u64 addr; u32 len; u32 _reserved; }`.
    pub const DATA: usize = 40;
    /// `sizeof(struct naam_data)`.
    pub const DATA_ENTRY_BYTES: usize = 16;
    /// `sizeof(struct naam_ctx)`.
    pub const BYTES: usize = DATA + DATA_ENTRY_BYTES * super::ACCESSES_PER_STEP_MAX;
}

/// The `#define NAME <integer>` lines (decimal or `0x` hex) of a C ABI header: naam.h, and the
/// workloads' headers that build on it. Other defines are skipped.
pub fn header_defines(header: &str) -> BTreeMap<String, u64> {
    header
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "#define").then_some(())?;
            let name = words.next()?;
            let value = words.next()?;
            let parsed = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok()?,
                None => value.parse().ok()?,
            };
            Some((name.to_string(), parsed))
        })
        .collect()
}

/// Every disagreement between a C header's integer defines and the Rust constants meant to
/// mirror them (a define missing on either side, or a different value); empty when they agree.
/// With `exhaustive`, a define of the header that `rust` does not list is a disagreement too.
pub fn header_mismatches(header: &str, rust: &[(&str, u64)], exhaustive: bool) -> Vec<String> {
    let c = header_defines(header);
    let mut mismatches: Vec<String> = rust
        .iter()
        .filter_map(|&(name, value)| match c.get(name) {
            Some(&v) if v == value => None,
            Some(&v) => Some(format!("{name}: header {v}, Rust {value}")),
            None => Some(format!("{name}: not in the header (Rust {value})")),
        })
        .collect();
    if exhaustive {
        let listed: BTreeSet<&str> = rust.iter().map(|&(name, _)| name).collect();
        mismatches.extend(
            c.iter()
                .filter(|(name, _)| !listed.contains(name.as_str()))
                .map(|(name, v)| format!("{name}: only in the header ({v})")),
        );
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_matches_header() {
        let expected: [(&str, u64); 16] = [
            ("NAAM_ABI_VERSION", u64::from(ABI_VERSION)),
            ("NAAM_ARGS_BYTES_MAX", ARGS_BYTES_MAX as u64),
            ("NAAM_STATE_BYTES_MAX", STATE_BYTES_MAX as u64),
            ("NAAM_REPLY_BYTES_MAX", REPLY_BYTES_MAX as u64),
            ("NAAM_ACCESSES_PER_STEP_MAX", ACCESSES_PER_STEP_MAX as u64),
            ("NAAM_ACCESS_BYTES_MAX", ACCESS_BYTES_MAX as u64),
            ("NAAM_STEPS_MAX", STEPS_MAX as u64),
            ("NAAM_RETRIES_MAX", RETRIES_MAX as u64),
            ("NAAM_DONE", RET_DONE),
            ("NAAM_NEXT", RET_NEXT),
            ("NAAM_RETRY", RET_RETRY),
            ("NAAM_ERR_BASE", ERR_BASE),
            ("NAAM_HELPER_READ", u64::from(HELPER_READ)),
            ("NAAM_HELPER_REPLY", u64::from(HELPER_REPLY)),
            ("NAAM_HELPER_SAVE_STATE", u64::from(HELPER_SAVE_STATE)),
            ("NAAM_LOC_CLIENT", 2),
        ];
        let mismatches = header_mismatches(include_str!("../include/naam.h"), &expected, false);
        assert!(mismatches.is_empty(), "naam.h disagrees: {mismatches:#?}");
    }

    #[test]
    fn a_disagreement_is_named() {
        let header = "#define A 1\n#define B 0x10\n#define C \"text\"\n#define D 4\n";
        assert_eq!(
            header_mismatches(header, &[("A", 1), ("B", 16)], false),
            Vec::<String>::new()
        );
        assert_eq!(
            header_mismatches(header, &[("A", 2), ("E", 5)], true),
            [
                "A: header 1, Rust 2",
                "E: not in the header (Rust 5)",
                "B: only in the header (16)",
                "D: only in the header (4)"
            ]
        );
    }

    #[test]
    fn ctx_layout_fits_the_declared_struct() {
        // struct naam_ctx: 40 bytes of scalars, then the data array.
        assert_eq!(ctx::BYTES, 40 + 16 * ACCESSES_PER_STEP_MAX);
        assert_eq!(ctx::N_DATA + 4, ctx::DATA);
    }
}
