//! Runs one of `benches/probe.rs`'s kernels a fixed number of times, for a load-independent
//! instruction count under callgrind (criterion's timings move with the machine's load):
//!
//! ```sh
//! cargo build --release --features jit --example probe_count
//! valgrind --tool=callgrind target/release/examples/probe_count mica_probe_7 jit 10000
//! ```
//!
//! Kernels: `mica_probe_7`, `mica_probe_15`, `btree_search_128`, `native_mica_probe_7`,
//! `native_mica_probe_15`, `native_btree_search_128` (the benches' native twins, for the
//! baseline), and `helper_calls_4` (four calls of a helper that reads its pointer argument's first
//! byte: the helper call path alone; its native twin reads the byte four times); backends: `interpreter`, `jit`. The per-call count is the difference between two
//! runs with different iteration counts divided by the difference in iterations (start-up cancels
//! out). Inputs are the benches' shapes with fixed contents (the search key and tag positions
//! match the benches: the tag in the last entry, the key a third of the way in).

use std::hint::black_box;
use std::process::ExitCode;

use naam_vm::{Backend, Helpers, Memory, Program, Tier, Vm, VmConfig};

/// Helper calls in the `helper_calls_4` kernel.
const HELPER_CALLS: usize = 4;
/// Id of the `helper_calls_4` kernel's helper.
const FIRST_BYTE_ID: u32 = 1;
/// Bytes the helper's pointer argument covers (checked before the call).
const FIRST_BYTE_LEN: i32 = 8;

const MICA_OBJECT: &[u8] = include_bytes!("../benches/bpf/mica_probe.o");
const BTREE_OBJECT: &[u8] = include_bytes!("../benches/bpf/btree_search.o");
const MICA_SLOTS_MAX: usize = 15;
const MICA_TAG_SHIFT: u32 = 48;
const MICA_OFFSET_MASK: u64 = (1 << MICA_TAG_SHIFT) - 1;
const MICA_INPUT_WORDS: usize = 3 + MICA_SLOTS_MAX;
const NODE_KEYS: usize = 128;
const BTREE_INPUT_WORDS: usize = 2 + NODE_KEYS;
/// Iterations when none is given.
const ITERATIONS_DEFAULT: u64 = 10_000;

fn bytes_of(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|word| word.to_le_bytes()).collect()
}

fn word(bytes: &[u8], index: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[index * 8..index * 8 + 8]);
    u64::from_le_bytes(word)
}

/// A bucket of `n_slots` entries whose only entry with tag 7 is the last one.
fn mica_input(n_slots: usize) -> Vec<u8> {
    let tag = 7u64;
    let mut words = vec![0u64; MICA_INPUT_WORDS];
    words[0] = tag;
    words[1] = n_slots as u64;
    for i in 0..n_slots {
        let entry_tag = if i + 1 == n_slots {
            tag
        } else {
            100 + i as u64
        };
        words[3 + i] = (entry_tag << MICA_TAG_SHIFT) | (0x1000 + i as u64);
    }
    bytes_of(&words)
}

fn mica_probe_native(input: &[u8]) -> u64 {
    let tag = word(input, 0);
    let n = (word(input, 1) as usize).min(MICA_SLOTS_MAX);
    for i in 0..n {
        let entry = word(input, 3 + i);
        let offset = entry & MICA_OFFSET_MASK;
        if entry >> MICA_TAG_SHIFT == tag && offset != 0 {
            return offset;
        }
    }
    u64::MAX
}

/// A full node of keys 10, 20, ..., searched for a key a third of the way in.
fn btree_input() -> Vec<u8> {
    let mut words = vec![0u64; BTREE_INPUT_WORDS];
    words[0] = 10 * (NODE_KEYS as u64 / 3) + 1;
    words[1] = NODE_KEYS as u64;
    for i in 0..NODE_KEYS {
        words[2 + i] = 10 * (i as u64 + 1);
    }
    bytes_of(&words)
}

fn btree_search_native(input: &[u8]) -> u64 {
    let key = word(input, 0);
    let (mut lo, mut hi) = (0usize, (word(input, 1) as usize).min(NODE_KEYS));
    while lo < hi {
        let mid = (lo + hi) / 2;
        if word(input, 2 + mid) <= key {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo as u64
}

/// One 8-byte eBPF instruction.
fn insn(opcode: u8, dst: u8, src: u8, imm: i32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes[0] = opcode;
    bytes[1] = (src << 4) | dst;
    bytes[4..].copy_from_slice(&imm.to_le_bytes());
    bytes
}

/// `r6 = r1; HELPER_CALLS × (r1 = r6; r2 = 8; call first_byte; r7 += r0); r0 = r7; exit`.
fn helper_calls_bytecode() -> Vec<u8> {
    const MOV64_REG: u8 = 0xbf;
    const MOV64_IMM: u8 = 0xb7;
    const ADD64_REG: u8 = 0x0f;
    const CALL: u8 = 0x85;
    const EXIT: u8 = 0x95;
    let mut code = vec![insn(MOV64_REG, 6, 1, 0), insn(MOV64_IMM, 7, 0, 0)];
    for _ in 0..HELPER_CALLS {
        code.push(insn(MOV64_REG, 1, 6, 0));
        code.push(insn(MOV64_IMM, 2, 0, FIRST_BYTE_LEN));
        code.push(insn(CALL, 0, 0, FIRST_BYTE_ID as i32));
        code.push(insn(ADD64_REG, 7, 0, 0));
    }
    code.push(insn(MOV64_REG, 0, 7, 0));
    code.push(insn(EXIT, 0, 0, 0));
    code.concat()
}

/// The helper: the first byte of the `r2` readable bytes at `r1`.
fn first_byte(
    _: &mut (),
    mem: &mut Memory<'_>,
    args: [u64; naam_vm::HELPER_ARGS],
) -> Result<u64, naam_vm::HelperError> {
    Ok(u64::from(mem.read(args[0], 1)?[0]))
}

fn helper_calls_native(input: &[u8]) -> u64 {
    (0..HELPER_CALLS)
        .map(|_| u64::from(black_box(input)[0]))
        .sum()
}

fn helpers_of(name: &str) -> Helpers<()> {
    let mut helpers = Helpers::<()>::new();
    if name == "helper_calls_4" {
        let mut args = [naam_vm::ArgKind::Unused; naam_vm::HELPER_ARGS];
        args[0] = naam_vm::ArgKind::ReadBytes { len_arg: 1 };
        args[1] = naam_vm::ArgKind::Scalar;
        let helper = naam_vm::Helper {
            name: "first_byte",
            signature: naam_vm::Signature { args },
            func: first_byte,
        };
        helpers.register(FIRST_BYTE_ID, helper).expect("registers");
    }
    helpers
}

/// `(object, section, input, native twin)` of a kernel name (without `native_`).
type Kernel = (&'static [u8], &'static str, Vec<u8>, fn(&[u8]) -> u64);

fn kernel(name: &str) -> Option<Kernel> {
    Some(match name {
        "mica_probe_7" => (
            MICA_OBJECT,
            "naam/mica_probe",
            mica_input(7),
            mica_probe_native,
        ),
        "mica_probe_15" => (
            MICA_OBJECT,
            "naam/mica_probe",
            mica_input(MICA_SLOTS_MAX),
            mica_probe_native,
        ),
        "btree_search_128" => (
            BTREE_OBJECT,
            "naam/btree_search",
            btree_input(),
            btree_search_native,
        ),
        // Raw bytecode, not an ELF object: the section name is unused.
        "helper_calls_4" => (&[], "", mica_input(7), helper_calls_native),
        _ => return None,
    })
}

fn run_vm(vm: &mut Vm, program: &Program, helpers: &Helpers<()>, input: &[u8]) -> u64 {
    let mut mem = Memory::new();
    let addr = mem.map_read(input).expect("maps");
    let exit = vm.run(
        program,
        &mut mem,
        helpers,
        &mut (),
        addr,
        input.len() as u64,
    );
    exit.expect("runs").r0
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: probe_count <kernel> <interpreter|jit> [iterations]";
    let name = args.first().ok_or(usage)?;
    let iterations = match args.get(2) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("bad iteration count {text:?}"))?,
        None => ITERATIONS_DEFAULT,
    };
    let (native, name) = match name.strip_prefix("native_") {
        Some(rest) => (true, rest),
        None => (false, name.as_str()),
    };
    let (object, section, input, twin) = kernel(name).ok_or(usage)?;
    let expected = twin(&input);
    if native {
        for _ in 0..iterations {
            black_box(twin(black_box(&input)));
        }
        println!("{name} native: r0 {expected}, {iterations} calls");
        return Ok(());
    }
    let backend = Backend::from_name(args.get(1).ok_or(usage)?).ok_or(usage)?;
    let helpers = helpers_of(name);
    let program = if object.is_empty() {
        Program::from_raw_with(&helper_calls_bytecode(), &helpers, backend)
    } else {
        Program::from_elf_with(object, section, &helpers, backend)
    }
    .map_err(|error| format!("{name}: {error}"))?;
    if backend == Backend::Jit && program.tier() != Tier::Jit {
        return Err(format!(
            "{section}: no JIT code ({:?})",
            program.jit_error()
        ));
    }
    let mut vm = Vm::new(VmConfig::default());
    let r0 = run_vm(&mut vm, &program, &helpers, &input);
    if r0 != expected {
        return Err(format!("{name}: r0 {r0}, native says {expected}"));
    }
    for _ in 0..iterations {
        black_box(run_vm(&mut vm, &program, &helpers, black_box(&input)));
    }
    println!("{name} {}: r0 {r0}, {iterations} calls", backend.name());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
