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
    assert_eq!(refused, Err(r#"--via "gpu": expected `native` or `vm`"#.to_string()));
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
