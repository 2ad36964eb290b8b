//! Data-driven conformance test: every program of the public bpf_conformance suite
//! (`tests/bpf_conformance/tests/*.data`, a copy of the project's `shared/bpf_conformance`;
//! format in its README) must load, run and return the expected r0. Failures are collected and
//! reported all together, one line per file. With the `jit` feature the same programs run on
//! the Cranelift JIT, and every one is also compiled for aarch64 (compile only: this machine
//! cannot run aarch64 code).

mod fixtures;

use std::path::PathBuf;

use fixtures::fixtures_dir;

use naam_vm::{
    ArgKind, Backend, Helper, HelperError, Helpers, Memory, Program, Signature, Tier, Vm, VmConfig,
};

/// The conformance suite's helper: id 5 returns its first argument.
const HELPER_RETURN_R1: u32 = 5;
/// The suite has 313 programs; fewer means the fixture folder is not the one we expect.
const FIXTURES_MIN: usize = 313;

/// One parsed `.data` fixture.
#[derive(Debug, Default)]
struct Fixture {
    raw: Vec<u8>,
    mem: Vec<u8>,
    result: Option<u64>,
}

fn parse_fixture(text: &str) -> Result<Fixture, String> {
    let mut fixture = Fixture::default();
    let mut section = "";
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("-- ") {
            section = name;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match section {
            "raw" => {
                let digits = line
                    .strip_prefix("0x")
                    .ok_or(format!("raw word {line:?}"))?;
                let word = u64::from_str_radix(digits, 16)
                    .map_err(|e| format!("raw word {line:?}: {e}"))?;
                fixture.raw.extend_from_slice(&word.to_le_bytes());
            }
            "mem" => {
                for byte in line.split_whitespace() {
                    fixture.mem.push(
                        u8::from_str_radix(byte, 16)
                            .map_err(|e| format!("mem byte {byte:?}: {e}"))?,
                    );
                }
            }
            "result" => {
                let digits = line.trim_start_matches("0x");
                fixture.result = Some(
                    u64::from_str_radix(digits, 16).map_err(|e| format!("result {line:?}: {e}"))?,
                );
            }
            _ => {} // asm, c, no register offset: informative
        }
    }
    Ok(fixture)
}

fn return_r1(_: &mut (), _: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
    Ok(args[0])
}

fn conformance_helpers() -> Helpers<()> {
    let mut helpers = Helpers::new();
    let mut args = [ArgKind::Unused; 5];
    args[0] = ArgKind::Scalar;
    let helper = Helper {
        name: "return_r1",
        signature: Signature { args },
        func: return_r1,
    };
    helpers
        .register(HELPER_RETURN_R1, helper)
        .expect("one helper registers");
    helpers
}

/// The tier a program loaded for `backend` must run on.
fn expected_tier(backend: Backend) -> Tier {
    match backend {
        Backend::Jit if cfg!(feature = "jit") => Tier::Jit,
        _ => Tier::Interpreter,
    }
}

/// Loads and runs one fixture on `backend`; `Err` says what went wrong.
fn check(
    fixture: &Fixture,
    helpers: &Helpers<()>,
    vm: &mut Vm,
    backend: Backend,
) -> Result<(), String> {
    let expected = fixture.result.ok_or("no -- result section")?;
    let program =
        Program::from_raw_with(&fixture.raw, helpers, backend).map_err(|e| format!("load: {e}"))?;
    if program.tier() != expected_tier(backend) {
        return Err(format!(
            "runs on {:?}: {:?}",
            program.tier(),
            program.jit_error()
        ));
    }
    let mut input = fixture.mem.clone();
    let mut mem = Memory::new();
    let addr = mem.map_write(&mut input).map_err(|e| format!("map: {e}"))?;
    let exit = vm
        .run(
            &program,
            &mut mem,
            helpers,
            &mut (),
            addr,
            fixture.mem.len() as u64,
        )
        .map_err(|e| format!("trap: {e}"))?;
    if exit.r0 != expected {
        return Err(format!("r0 = {:#x}, expected {expected:#x}", exit.r0));
    }
    Ok(())
}

fn fixture_paths() -> Vec<PathBuf> {
    let dir = fixtures_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "data"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= FIXTURES_MIN,
        "found {} fixtures in {}, expected at least {FIXTURES_MIN}",
        paths.len(),
        dir.display()
    );
    paths
}

/// Runs `check` on every fixture and fails with one line per failing file.
fn check_every_fixture(check: impl Fn(&Fixture) -> Result<(), String>) {
    let paths = fixture_paths();
    let mut failures = Vec::new();
    for path in &paths {
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let outcome = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| parse_fixture(&text))
            .and_then(|fixture| check(&fixture));
        if let Err(reason) = outcome {
            failures.push(format!("{name}: {reason}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance programs failed:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

fn every_program_passes_on(backend: Backend) {
    let helpers = conformance_helpers();
    let vm = std::cell::RefCell::new(Vm::new(VmConfig::default()));
    check_every_fixture(|fixture| check(fixture, &helpers, &mut vm.borrow_mut(), backend));
}

#[test]
fn every_conformance_program_returns_its_expected_r0() {
    every_program_passes_on(Backend::Interpreter);
}

#[test]
fn every_conformance_program_returns_its_expected_r0_on_the_jit() {
    every_program_passes_on(Backend::Jit);
}

/// aarch64 (a BlueField-2's Arm cores) cannot run here: every program is compiled for it, and
/// for x86-64, to check that Cranelift's backends accept what the JIT generates.
#[cfg(feature = "jit")]
#[test]
fn every_conformance_program_compiles_for_aarch64_and_x86_64() {
    use naam_vm::jit::JitTarget;
    let helpers = conformance_helpers();
    check_every_fixture(|fixture| {
        let program =
            Program::from_raw(&fixture.raw, &helpers).map_err(|e| format!("load: {e}"))?;
        for target in [JitTarget::Aarch64, JitTarget::X86_64] {
            let bytes = program
                .compile_for(target)
                .map_err(|e| format!("{target:?}: {e}"))?;
            if bytes == 0 {
                return Err(format!("{target:?}: no code"));
            }
        }
        Ok(())
    });
}
