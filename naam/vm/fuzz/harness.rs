//! The fuzz harness shared by the cargo-fuzz target (fuzz_targets/load_run.rs) and the stable
//! seeded driver (tests/fuzz_seeded.rs): whatever the bytes, loading and running must end in a
//! value or a typed error — never a panic, a hang or undefined behaviour — and must respect the
//! VM's own promises; and, for [`jit_matches_interpreter`], the JIT and the interpreter must end
//! every invocation alike.
#![allow(dead_code)] // each driver uses part of the harness

use naam_vm::{
    ArgKind, Backend, Exit, Helper, HelperError, Helpers, Memory, Program, ScalarHelper, Signature,
    Tier, Trap, Vm, VmConfig,
};

/// Budget of one fuzzed invocation: small, so hostile loops end fast.
pub const FUZZ_BUDGET_INSN: u64 = 20_000;
/// Input memory is the first `data[0] % FUZZ_MEMORY_BYTES_MAX` bytes after the header byte.
pub const FUZZ_MEMORY_BYTES_MAX: usize = 64;

fn return_r1(_: &mut u64, _: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
    Ok(args[0])
}

/// Scalar helper 5 (the JIT calls it without the trampoline): mixes all of r1..=r5, so a
/// misplaced argument shows in r0, and counts its calls.
struct MixArgs;

impl ScalarHelper<u64> for MixArgs {
    const NAME: &'static str = "mix_args";
    const ARG_COUNT: usize = 5;

    fn call(calls: &mut u64, args: [u64; 5]) -> u64 {
        *calls += 1;
        args.iter()
            .zip(0..)
            .fold(0, |mixed, (arg, at)| mixed ^ arg.rotate_left(13 * at))
    }
}

fn sum_bytes(calls: &mut u64, mem: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
    *calls += 1;
    Ok(mem
        .read(args[0], args[1])?
        .iter()
        .map(|b| u64::from(*b))
        .sum())
}

fn zero_bytes(calls: &mut u64, mem: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
    *calls += 1;
    mem.write(args[0], args[1])?.fill(0);
    Ok(0)
}

fn fail(_: &mut u64, _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Err(HelperError::Failed {
        reason: "fuzz helper 8 always fails",
    })
}

/// Helpers 5 (a [`ScalarHelper`] mixing r1..=r5), 6 (sum r2 readable bytes at r1), 7 (zero r2
/// writable bytes at r1), 8 (fails) and 9 (return r1, as in the conformance suite).
pub fn fuzz_helpers() -> Helpers<u64> {
    let mut helpers = Helpers::new();
    let scalar = Signature {
        args: [
            ArgKind::Scalar,
            ArgKind::Unused,
            ArgKind::Unused,
            ArgKind::Unused,
            ArgKind::Unused,
        ],
    };
    let read = Signature {
        args: [
            ArgKind::ReadBytes { len_arg: 1 },
            ArgKind::Scalar,
            ArgKind::Unused,
            ArgKind::Unused,
            ArgKind::Unused,
        ],
    };
    let write = Signature {
        args: [
            ArgKind::WriteBytes { len_arg: 1 },
            ArgKind::Scalar,
            ArgKind::Unused,
            ArgKind::Unused,
            ArgKind::Unused,
        ],
    };
    let table: [(u32, &'static str, Signature, naam_vm::HelperFn<u64>); 4] = [
        (6, "sum_bytes", read, sum_bytes),
        (7, "zero_bytes", write, zero_bytes),
        (8, "fail", Signature::SCALARS, fail),
        (9, "return_r1", scalar, return_r1),
    ];
    for (id, name, signature, func) in table {
        if let Err(error) = helpers.register(
            id,
            Helper {
                name,
                signature,
                func,
            },
        ) {
            panic!("fuzz helpers register: {error}");
        }
    }
    if let Err(error) = helpers.register_scalar::<MixArgs>(5) {
        panic!("fuzz helpers register: {error}");
    }
    helpers
}

/// Programs tried in an ELF input: generic names and those of the committed clang objects.
const ELF_NAMES: [&str; 5] = [
    "f",
    ".text",
    "naam/sum_primes",
    "naam/mica_probe",
    "btree_search",
];

/// What one input did (for the drivers' statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    /// The raw bytecode verified.
    pub raw_loaded: bool,
    /// The raw program exited normally.
    pub raw_exited: bool,
    /// The bytes parsed and linked as an ELF object.
    pub elf_loaded: bool,
}

/// Loads `data` as raw bytecode (after a one-byte header that sizes the input memory) and as an
/// ELF object, runs whatever loads twice, and checks the VM's promises.
pub fn load_and_run(data: &[u8]) -> Outcome {
    let helpers = fuzz_helpers();
    let mut outcome = Outcome::default();
    let (memory_len, rest) = match data.split_first() {
        Some((header, rest)) => (usize::from(*header) % FUZZ_MEMORY_BYTES_MAX, rest),
        None => (0, data),
    };
    let memory_len = memory_len.min(rest.len());
    let (memory, bytecode) = rest.split_at(memory_len);
    if let Ok(program) = Program::from_raw(bytecode, &helpers) {
        outcome.raw_loaded = true;
        assert!(program.insn_count() <= naam_vm::PROGRAM_INSN_MAX);
        outcome.raw_exited = run_twice(&program, &helpers, memory).is_ok();
    }
    for name in ELF_NAMES {
        if let Ok(program) = Program::from_elf(data, name, &helpers) {
            outcome.elf_loaded = true;
            let _ = run_twice(&program, &helpers, memory);
        }
    }
    outcome
}

/// Runs `program` twice on fresh copies of `memory` with one reused VM: both runs must agree
/// (nothing leaks from one invocation into the next) and respect the budget.
fn run_twice(program: &Program, helpers: &Helpers<u64>, memory: &[u8]) -> Result<u64, Trap> {
    let config = VmConfig {
        budget_insn: FUZZ_BUDGET_INSN,
    };
    let mut vm = Vm::new(config);
    let mut results = [
        (Err(Trap::BudgetExceeded { budget: 0 }), Vec::new()),
        (Err(Trap::BudgetExceeded { budget: 0 }), Vec::new()),
    ];
    for result in &mut results {
        let mut bytes = memory.to_vec();
        let mut calls = 0u64;
        let outcome = {
            let mut mem = Memory::new();
            let addr = match mem.map_write(&mut bytes) {
                Ok(addr) => addr,
                Err(error) => panic!("mapping {} bytes: {error}", memory.len()),
            };
            vm.run(
                program,
                &mut mem,
                helpers,
                &mut calls,
                addr,
                memory.len() as u64,
            )
        };
        if let Ok(exit) = outcome {
            assert!(
                exit.insn_count <= FUZZ_BUDGET_INSN,
                "exit after {} > budget",
                exit.insn_count
            );
            assert!(exit.insn_count >= 1, "an exit executes at least the exit");
        }
        *result = (outcome.map(|exit| exit.r0), bytes);
    }
    assert_eq!(
        results[0], results[1],
        "two runs of one program on the same input differ"
    );
    let [(first, _), _] = results;
    first
}

/// What one differential input did (for the drivers' statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Differential {
    /// The bytecode verified.
    pub loaded: bool,
    /// The program was compiled by the JIT (false when the `jit` feature is off).
    pub compiled: bool,
    /// JIT invocations compared with the interpreter's (two per interpreted one: see
    /// `compare_budgets`).
    pub executions: u64,
    /// Invocations that exited normally.
    pub exited: u64,
}

/// Everything an invocation leaves behind that the two backends must agree on.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    outcome: Result<Exit, Trap>,
    memory: Vec<u8>,
    helper_calls: u64,
}

fn observe(vm: &mut Vm, program: &Program, helpers: &Helpers<u64>, memory: &[u8]) -> Observed {
    let mut bytes = memory.to_vec();
    let mut helper_calls = 0u64;
    let outcome = {
        let mut mem = Memory::new();
        let addr = match mem.map_write(&mut bytes) {
            Ok(addr) => addr,
            Err(error) => panic!("mapping {} bytes: {error}", memory.len()),
        };
        vm.run(
            program,
            &mut mem,
            helpers,
            &mut helper_calls,
            addr,
            memory.len() as u64,
        )
    };
    Observed {
        outcome,
        memory: bytes,
        helper_calls,
    }
}

/// Loads `data` (header byte, input memory, bytecode, as [`load_and_run`]) on the interpreter
/// and on the JIT and runs both on [`memory_variants`] of the input, each under several budgets
/// (see `compare_budgets`). Every invocation must end alike on both backends: same r0 and
/// instruction count or same trap, same bytes in memory, same helper calls.
pub fn jit_matches_interpreter(data: &[u8]) -> Differential {
    let helpers = fuzz_helpers();
    let mut outcome = Differential::default();
    let (memory_len, rest) = match data.split_first() {
        Some((header, rest)) => (usize::from(*header) % FUZZ_MEMORY_BYTES_MAX, rest),
        None => (0, data),
    };
    let memory_len = memory_len.min(rest.len());
    let (memory, bytecode) = rest.split_at(memory_len);
    let Ok(interpreted) = Program::from_raw(bytecode, &helpers) else {
        return outcome;
    };
    let jitted = match Program::from_raw_with(bytecode, &helpers, Backend::Jit) {
        Ok(program) => program,
        Err(error) => panic!("the interpreter loads what the JIT refuses: {error}"),
    };
    outcome.loaded = true;
    outcome.compiled = jitted.tier() == Tier::Jit;
    for memory in memory_variants(memory) {
        compare_budgets(&interpreted, &jitted, &helpers, &memory, &mut outcome);
    }
    outcome
}

/// The input memory as given, all zeros, all ones and byte-reversed: branches on loaded values
/// go the other way.
fn memory_variants(memory: &[u8]) -> [Vec<u8>; 4] {
    [
        memory.to_vec(),
        vec![0; memory.len()],
        vec![0xff; memory.len()],
        memory.iter().rev().copied().collect(),
    ]
}

/// Runs both programs under the fuzzing budget and, when the interpreter exits after `n`
/// instructions, under budgets `n` and `n - 1` (the last that passes, the first that traps) and
/// `n / 2` (a trap part-way, where the JIT may have deferred a budget check: the memory and
/// helper calls must still match). The JIT runs each twice on one machine: the second run, after
/// whatever the first ended in, must match too (the machine keeps state between invocations).
fn compare_budgets(
    interpreted: &Program,
    jitted: &Program,
    helpers: &Helpers<u64>,
    memory: &[u8],
    outcome: &mut Differential,
) {
    let mut budgets = vec![FUZZ_BUDGET_INSN];
    let mut index = 0;
    while let Some(&budget) = budgets.get(index) {
        let config = VmConfig {
            budget_insn: budget,
        };
        let expected = observe(&mut Vm::new(config), interpreted, helpers, memory);
        let mut vm = Vm::new(config);
        for run in ["first", "second"] {
            let actual = observe(&mut vm, jitted, helpers, memory);
            assert_eq!(
                actual, expected,
                "JIT (left, {run} run on its machine) and interpreter (right) differ with a \
                 budget of {budget}"
            );
            outcome.executions += 1;
        }
        if let Ok(exit) = expected.outcome {
            outcome.exited += 1;
            if index == 0 {
                budgets.push(exit.insn_count);
                budgets.push(exit.insn_count - 1);
                budgets.push(exit.insn_count / 2);
            }
        }
        index += 1;
    }
}
