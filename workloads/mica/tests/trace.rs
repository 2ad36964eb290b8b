//! Trace replay (`naam workload mica --via native`): output lines and errors naming file and line.

use expect_test::{Expect, expect};
use naam_mica::trace::{LineError, parse_line};
use naam_mica::{MicaConfig, Slots, TraceOp, Via, run_trace};

/// Replays `trace` through both paths; they must print the same bytes (errors included), which
/// must be `expected`.
fn check(trace: &str, expected: Expect) {
    let native = replay(trace, Via::Native);
    let vm = replay(trace, Via::Vm);
    assert_eq!(native, vm, "--via native and --via vm differ");
    expected.assert_eq(&native);
}

fn replay(trace: &str, via: Via) -> String {
    let config = MicaConfig {
        buckets: 64,
        slots: Slots::Seven,
        log_bytes: 1 << 16,
        ..MicaConfig::new()
    };
    let mut out = Vec::new();
    match run_trace("t.trace", trace.as_bytes(), config, via, &mut out) {
        Ok(summary) => format!(
            "{}-- sets {} hits {} misses {} deletes {}/{}\n",
            String::from_utf8_lossy(&out),
            summary.sets,
            summary.get_hits,
            summary.get_misses,
            summary.deletes_found,
            summary.deletes_missing
        ),
        Err(e) => format!("{}error: {e}\n", String::from_utf8_lossy(&out)),
    }
}

#[test]
fn replay_prints_one_line_per_operation() {
    check(
        "# a comment\nS 6b31 76616c7565\nG 6b31\nG 6B32\n\nS 6b31 FF00\nG 6b31\nD 6b31\nD 6b31\nG 6b31\n",
        expect![[r#"
            S ok
            G hit 76616c7565
            G miss
            S ok
            G hit ff00
            D ok
            D miss
            G miss
            -- sets 2 hits 2 misses 2 deletes 1/1
        "#]],
    );
}

#[test]
fn errors_name_the_file_and_line() {
    check(
        "S 6b31 00\nX 6b31\n",
        expect![[r#"
        S ok
        error: t.trace:2: unknown operation "X" (expected S, G or D)
    "#]],
    );
    check(
        "G 6b3\n",
        expect![[r#"
        error: t.trace:1: key "6b3" is not hex bytes: odd number of digits
    "#]],
    );
    check(
        "G zz\n",
        expect![[r#"
        error: t.trace:1: key "zz" is not hex bytes: non-hex digit
    "#]],
    );
    check(
        "S 6b31\n",
        expect![[r#"
        error: t.trace:1: `S` needs 2 field(s) after it, found 1
    "#]],
    );
    check(
        "G 6b31 00\n",
        expect![[r#"
        error: t.trace:1: `G` needs 1 field(s) after it, found 2
    "#]],
    );
    let long_key = "00".repeat(193);
    check(
        &format!("G 6b31\nS {long_key} 00\n"),
        expect![[r#"
        G miss
        error: t.trace:2: key of 193 bytes is longer than 192 bytes
    "#]],
    );
}

#[test]
fn via_parses_native_and_vm_only() {
    assert_eq!("native".parse::<Via>(), Ok(Via::Native));
    assert_eq!("vm".parse::<Via>(), Ok(Via::Vm));
    let refused = "gpu".parse::<Via>().map_err(|e| e.to_string());
    assert_eq!(
        refused,
        Err(r#"--via "gpu": expected `native` or `vm`"#.to_string())
    );
}

#[test]
fn a_get_of_a_key_too_long_fails_alike_on_both_paths() {
    let long_key = "ab".repeat(193);
    check(
        &format!("S 6b31 00\nG {long_key}\n"),
        expect![[r#"
        S ok
        error: t.trace:2: key of 193 bytes is longer than 192 bytes
    "#]],
    );
}

#[test]
fn lines_parse_to_operations() {
    assert_eq!(parse_line("  "), Ok(None));
    assert_eq!(
        parse_line("D 00ff"),
        Ok(Some(TraceOp::Delete { key: vec![0, 255] }))
    );
    assert_eq!(
        parse_line("S 01 0203"),
        Ok(Some(TraceOp::Set {
            key: vec![1],
            value: vec![2, 3]
        }))
    );
    assert_eq!(
        parse_line("s 01 02"),
        Err(LineError::UnknownOp { op: "s".into() })
    );
}

mod generated {
    //! Generated traces replayed through both paths print the same bytes.

    use std::fmt::Write as _;

    use naam_mica::{BucketEviction, MicaConfig, Slots, Via, run_trace};
    use proptest::prelude::*;
    use proptest::test_runner::{Config as ProptestConfig, RngSeed};

    fn seed(default: u64) -> u64 {
        std::env::var("NAAM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// `(op, key id, value)`: op 0..4 SET, 4..8 GET, 8 DELETE; keys of 1..=24 bytes.
    fn trace_text(ops: &[(u8, u16, Vec<u8>)]) -> String {
        ops.iter().fold(String::new(), |mut text, (op, id, value)| {
            let key = hex(&id.to_le_bytes().repeat(12)[..usize::from(id % 24) + 1]);
            let _ = match op {
                0..4 => writeln!(text, "S {key} {}", hex(value)),
                4..8 => writeln!(text, "G {key}"),
                _ => writeln!(text, "D {key}"),
            };
            text
        })
    }

    fn replay(text: &str, config: MicaConfig, via: Via) -> (String, String) {
        let mut out = Vec::new();
        let result = run_trace("gen.trace", text.as_bytes(), config, via, &mut out);
        let summary = match result {
            Ok(s) => format!("{s:?}"),
            Err(e) => format!("error: {e}"),
        };
        (String::from_utf8_lossy(&out).into_owned(), summary)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            rng_seed: RngSeed::Fixed(seed(0x5452_4143)),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn native_and_vm_print_the_same_bytes(
            buckets_log2 in 0u32..5,
            fifteen in any::<bool>(),
            extra_buckets in 0u32..6,
            log_log2 in 9u32..14,
            oldest in any::<bool>(),
            ops in prop::collection::vec((0u8..9, 0u16..300, prop::collection::vec(any::<u8>(), 1..64)), 1..1200),
        ) {
            let config = MicaConfig {
                buckets: 1 << buckets_log2,
                slots: if fifteen { Slots::Fifteen } else { Slots::Seven },
                extra_buckets,
                log_bytes: 1 << log_log2,
                item_bytes_max: 128,
                eviction: if oldest { BucketEviction::Oldest } else { BucketEviction::NewestAsReleasedCode },
            };
            let text = trace_text(&ops);
            let native = replay(&text, config, Via::Native);
            let vm = replay(&text, config, Via::Vm);
            prop_assert_eq!(&native, &vm, "NAAM_SEED={} {:?}", seed(0x5452_4143), config);
            prop_assert!(native.0.lines().count() == ops.len(), "NAAM_SEED={} one line per op", seed(0x5452_4143));
        }
    }
}

#[test]
fn a_trace_without_newlines_is_an_error_at_line_one_not_a_growing_buffer() {
    let config = MicaConfig {
        buckets: 64,
        slots: Slots::Seven,
        log_bytes: 1 << 16,
        ..MicaConfig::new()
    };
    let endless_zeros = std::io::BufReader::new(std::io::repeat(0));
    let err = run_trace(
        "/dev/zero",
        endless_zeros,
        config,
        Via::Native,
        &mut Vec::new(),
    )
    .expect_err("no line ends");
    let text = err.to_string();
    assert!(
        text.starts_with("/dev/zero:1:") && text.contains("longer than 65536 bytes"),
        "{text}"
    );
}
