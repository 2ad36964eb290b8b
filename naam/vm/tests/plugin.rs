//! The bpf_conformance plugin (examples/bpf_conformance_plugin.rs) as a real process, speaking
//! the runner's protocol: every fixture's program as base16 on stdin, its memory as a base16
//! argument, r0 in hex on stdout; load errors and traps on stderr with a non-zero exit.
//!
//! The test builds the example itself (`cargo build --example bpf_conformance_plugin`, into
//! `target/plugin-test`).

mod fixtures;

use fixtures::fixtures_dir;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const PLUGIN: &str = "bpf_conformance_plugin";

/// Builds the example with cargo into its own target folder (beside this test's) and returns
/// its path. (`cargo test --all-targets` builds examples as test harnesses, not as the plugin.)
fn plugin_path() -> PathBuf {
    static PLUGIN_PATH: OnceLock<PathBuf> = OnceLock::new();
    PLUGIN_PATH.get_or_init(build_plugin).clone()
}

fn build_plugin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/plugin-<hash> -> target/plugin-test
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target folder")
        .join("plugin-test");
    let mut args = vec![
        "build",
        "--quiet",
        "--locked",
        "--package",
        "naam-vm",
        "--example",
        PLUGIN,
    ];
    if cfg!(feature = "jit") {
        args.extend(["--features", "jit"]);
    }
    let status = Command::new(env!("CARGO"))
        .args(args)
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "cargo build --example {PLUGIN} failed: {status}"
    );
    target.join("debug").join("examples").join(PLUGIN)
}

fn run_plugin(plugin: &Path, memory_hex: &str, program_hex: &str) -> Output {
    run_plugin_with(plugin, &[], memory_hex, program_hex)
}

fn run_plugin_with(plugin: &Path, options: &[&str], memory_hex: &str, program_hex: &str) -> Output {
    let mut command = Command::new(plugin);
    command.args(options);
    if !memory_hex.is_empty() {
        command.arg(memory_hex);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("plugin starts");
    // The plugin may reject its arguments before reading stdin: a broken pipe is its answer.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(program_hex.as_bytes());
    child.wait_with_output().expect("plugin finishes")
}

/// (memory hex, program hex, expected r0) of one fixture, as the runner would send it.
fn fixture(text: &str) -> (String, String, u64) {
    let (mut memory, mut program, mut result) = (String::new(), String::new(), 0);
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("-- ") {
            section = name;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match section {
            "raw" => {
                let word =
                    u64::from_str_radix(line.trim_start_matches("0x"), 16).expect("raw word");
                program.extend(word.to_le_bytes().iter().map(|b| format!("{b:02x}")));
            }
            "mem" => memory.extend(line.split_whitespace()),
            "result" => {
                result = u64::from_str_radix(line.trim_start_matches("0x"), 16).expect("result")
            }
            _ => {}
        }
    }
    (memory, program, result)
}

/// Every fixture through the plugin process with `options`; fails listing each bad fixture.
fn every_fixture_passes_with(options: &[&str]) {
    let plugin = plugin_path();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixture folder")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "data"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 313, "found only {} fixtures", paths.len());
    let mut failures = Vec::new();
    for path in &paths {
        let (memory, program, expected) = fixture(&std::fs::read_to_string(path).expect("fixture"));
        let output = run_plugin_with(&plugin, options, &memory, &program);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let r0 = u64::from_str_radix(stdout.trim(), 16).ok();
        if !output.status.success() || r0 != Some(expected) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            failures.push(format!(
                "{}: {} {stdout:?} {stderr:?}",
                path.display(),
                output.status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixtures failed with {options:?}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_plugin_passes_every_fixture_through_the_runner_protocol() {
    every_fixture_passes_with(&[]);
}

#[cfg(feature = "jit")]
#[test]
fn the_plugin_passes_every_fixture_with_jit() {
    every_fixture_passes_with(&["--jit"]);
}

#[test]
fn load_errors_and_traps_exit_non_zero_with_a_message() {
    let plugin = plugin_path();
    // 0xff is not an opcode.
    let output = run_plugin(&plugin, "", "ff00000000000000");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid opcode 0xff"), "{stderr}");
    // ldxdw r0, [r1 + 8] over 4 bytes of memory: out of bounds.
    let output = run_plugin(&plugin, "01020304", "7910080000000000 9500000000000000");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("outside every mapped region"), "{stderr}");
    // Not hex.
    let output = run_plugin(&plugin, "zz", "9500000000000000");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("memory argument"));
}
