//! Property test: any argument list (any characters but NUL) survives `/bin/sh` byte for byte
//! when rendered by `RemoteCommand`. Seeded: set `NAAM_SEED` to replay; the seed is printed.

use std::process::Command;

use naam_ssh::{RemoteCommand, ShellLine};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Cases per run (each spawns one `sh`).
const CASES: u32 = 256;
/// Arguments per case.
const ARGS_MAX: usize = 6;

fn seed() -> u64 {
    std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0051_7007)
}

/// Characters a shell treats specially, plus arbitrary Unicode (never NUL).
fn argument() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '\'', '"', '\\', '$', '`', '!', '*', '?', '[', ']', '{', '}', '(', ')', '<', '>', '|', '&',
        ';', '#', '~', ' ', '\t', '\n', '=', '%', '-',
    ]);
    let any_char = any::<char>().prop_filter("no NUL", |c| *c != '\0');
    prop::collection::vec(prop_oneof![special, any_char], 0..12)
        .prop_map(|chars| chars.into_iter().collect())
}

fn run_through_sh(args: &[String]) -> Vec<String> {
    let command = RemoteCommand::new("printf")
        .unwrap()
        .arg("%s\\0")
        .unwrap()
        .args(args.iter().cloned())
        .unwrap();
    let line = ShellLine::from(&command);
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg(line.as_str())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "sh failed on {}: {}",
        line.as_str(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut pieces: Vec<String> = output
        .stdout
        .split(|&b| b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    pieces.pop();
    pieces
}

#[test]
fn quoted_arguments_survive_sh_byte_for_byte() {
    let seed = seed();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = prop::collection::vec(argument(), 1..=ARGS_MAX);
    let result = runner.run(&strategy, |args| {
        prop_assert_eq!(run_through_sh(&args), args);
        Ok(())
    });
    if let Err(err) = result {
        panic!("NAAM_SEED={seed}: {err}");
    }
}

#[test]
fn nul_cannot_enter_a_command() {
    assert!(RemoteCommand::new("echo").unwrap().arg("a\0b").is_err());
    assert!(ShellLine::new().text("a\0b").is_err());
}
