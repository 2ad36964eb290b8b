//! File replay (`naam workload btree --via native|vm`): CSV output, identical on both paths, and
//! errors naming file and line.

use expect_test::{Expect, expect};
use naam_btree::{ReplayOptions, Via, run_replay};

/// Replays through both paths; they must print the same bytes (errors included), which must be
/// `expected`.
fn check(load: &str, lookups: &str, expected: Expect) {
    let native = replay(load, lookups, Via::Native);
    let vm = replay(load, lookups, Via::Vm);
    assert_eq!(native, vm, "--via native and --via vm differ");
    expected.assert_eq(&native);
}

fn replay(load: &str, lookups: &str, via: Via) -> String {
    let options = ReplayOptions {
        node_bytes: 128,
        via,
        ..ReplayOptions::new()
    };
    let mut out = Vec::new();
    match run_replay(
        ("load.csv", load.as_bytes()),
        ("keys.txt", lookups.as_bytes()),
        options,
        &mut out,
    ) {
        Ok(s) => format!(
            "{}-- loaded {} found {} not found {} height {}\n",
            String::from_utf8_lossy(&out),
            s.loaded,
            s.found,
            s.not_found,
            s.height
        ),
        Err(e) => format!("{}error: {e}\n", String::from_utf8_lossy(&out)),
    }
}

#[test]
fn lookups_print_in_input_order() {
    let load: String = [30u64, 10, 20, 18446744073709551615, 0, 7, 8, 9, 11]
        .iter()
        .map(|k| format!("{k},{}\n", k % 1000))
        .collect();
    check(
        &format!("key,value\n{load}"),
        "key\n10\n5\n\n18446744073709551615\n0\n 30 \n",
        expect![[r#"
            key,found,value
            10,true,10
            5,false,
            18446744073709551615,true,615
            0,true,0
            30,true,30
            -- loaded 9 found 4 not found 1 height 2
        "#]],
    );
}

#[test]
fn errors_name_the_file_and_line() {
    check(
        "1,2\n3\n",
        "1\n",
        expect![[r#"
        error: load.csv:2: expected `key,value`, found "3"
    "#]],
    );
    check(
        "1,2\nx,3\n",
        "1\n",
        expect![[r#"
        error: load.csv:2: key "x" is not a decimal u64
    "#]],
    );
    check(
        "1,2\n4,-3\n",
        "1\n",
        expect![[r#"
        error: load.csv:2: value "-3" is not a decimal u64
    "#]],
    );
    check(
        "1,2\n\n1,3\n",
        "1\n",
        expect![[r#"
        error: load.csv:3: key 1 was already loaded at line 1
    "#]],
    );
    check(
        "1,2\n",
        "1\n18446744073709551616\n",
        expect![[r#"
        key,found,value
        1,true,2
        error: keys.txt:2: key "18446744073709551616" is not a decimal u64
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
fn an_empty_load_file_gives_an_empty_tree() {
    check(
        "",
        "0\n5\n",
        expect![[r#"
        key,found,value
        0,false,
        5,false,
        -- loaded 0 found 0 not found 2 height 1
    "#]],
    );
}

#[test]
fn a_bad_node_size_is_named() {
    let options = ReplayOptions {
        node_bytes: 100,
        ..ReplayOptions::new()
    };
    let result = run_replay(
        ("a.csv", &b"1,2\n"[..]),
        ("b", &b"1\n"[..]),
        options,
        &mut Vec::new(),
    );
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    expect!["a.csv: building the B-tree: invalid B-tree configuration: node bytes = 100: must be a multiple of 64 in 128..=4096"].assert_eq(&message);
}

mod generated {
    //! Generated load and lookup files replayed through both paths print the same bytes.

    use std::collections::BTreeMap;
    use std::fmt::Write as _;

    use naam_btree::{ReplayOptions, Via, run_replay};
    use proptest::prelude::*;
    use proptest::test_runner::{Config as ProptestConfig, RngSeed};

    fn seed(default: u64) -> u64 {
        std::env::var("NAAM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    }

    fn replay(load: &str, lookups: &str, options: ReplayOptions) -> (String, String) {
        let mut out = Vec::new();
        let result = run_replay(
            ("load.csv", load.as_bytes()),
            ("keys.txt", lookups.as_bytes()),
            options,
            &mut out,
        );
        let summary = match result {
            Ok(s) => format!("{s:?}"),
            Err(e) => format!("error: {e}"),
        };
        (String::from_utf8_lossy(&out).into_owned(), summary)
    }

    fn key_strategy() -> impl Strategy<Value = u64> {
        prop_oneof![any::<u64>(), 0u64..5000, Just(0), Just(u64::MAX)]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            rng_seed: RngSeed::Fixed(seed(0x5245_504c)),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn native_and_vm_print_the_same_bytes(
            node_bytes in prop::sample::select(vec![128u32, 192, 256, 1024, 4096]),
            fill_percent in 1u8..=100,
            loaded in prop::collection::btree_map(key_strategy(), any::<u64>(), 0..3000),
            extra in prop::collection::vec(key_strategy(), 0..500),
        ) {
            let s = seed(0x5245_504c);
            // Load file in a scrambled order (reversed halves), lookups: loaded keys then others.
            let pairs: Vec<(&u64, &u64)> = loaded.iter().collect();
            let (low, high) = pairs.split_at(pairs.len() / 2);
            let load = high.iter().chain(low.iter().rev()).fold(String::new(), |mut t, (k, v)| {
                let _ = writeln!(t, "{k},{v}");
                t
            });
            let lookups = loaded.keys().chain(&extra).fold(String::new(), |mut t, k| {
                let _ = writeln!(t, "{k}");
                t
            });
            let options = ReplayOptions { node_bytes, fill_percent, via: Via::Native };
            let native = replay(&load, &lookups, options);
            let vm = replay(&load, &lookups, ReplayOptions { via: Via::Vm, ..options });
            prop_assert_eq!(&native, &vm, "NAAM_SEED={} node {}", s, node_bytes);
            let model: BTreeMap<u64, u64> = loaded.clone();
            let found = native.0.lines().skip(1).filter(|l| l.contains(",true,")).count();
            let expected = loaded.len() + extra.iter().filter(|k| model.contains_key(k)).count();
            prop_assert_eq!(found, expected, "NAAM_SEED={}", s);
        }
    }
}

#[test]
fn a_load_file_without_newlines_is_an_error_at_line_one_not_a_growing_buffer() {
    let endless_ones = std::io::BufReader::new(std::io::repeat(b'1'));
    let err =
        naam_btree::trace::read_load("/dev/urandom-like", endless_ones).expect_err("no line ends");
    let text = err.to_string();
    assert!(
        text.contains("/dev/urandom-like") && text.contains("longer than"),
        "{text}"
    );
}
