//! A plugin for the bpf_conformance runner (github.com/Alan-Jowett/bpf_conformance):
//!
//! ```sh
//! cargo build --release --example bpf_conformance_plugin
//! bpf_conformance_runner --test_file_directory tests \
//!     --plugin_path target/release/examples/bpf_conformance_plugin
//! ```
//!
//! Protocol: the input memory comes as a base16 first argument (absent when empty), the program
//! as base16 on standard input; the plugin prints r0 in hex and exits 0. On a load error or a
//! trap it prints the error on standard error and exits 1. Helper 5 returns its first argument,
//! as the suite expects; `callx` takes a helper id in its register.
//!
//! `--jit` runs the program on the Cranelift JIT (build with `--features jit`); it fails when the
//! program would fall back to the interpreter:
//!
//! ```sh
//! cargo build --release --features jit --example bpf_conformance_plugin
//! bpf_conformance_runner --test_file_directory tests \
//!     --plugin_path target/release/examples/bpf_conformance_plugin --plugin_options --jit
//! ```

use std::io::Read;
use std::process::ExitCode;

use naam_vm::{
    ArgKind, Backend, Helper, HelperError, Helpers, Memory, Program, Signature, Tier, Vm, VmConfig,
};

/// The suite's helper id 5: returns r1.
const HELPER_RETURN_R1: u32 = 5;

fn return_r1(_: &mut (), _: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
    Ok(args[0])
}

/// Decodes base16 text, ignoring whitespace.
fn base16_decode(text: &str, what: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "{what}: odd number of hex digits ({})",
            digits.len()
        ));
    }
    digits
        .chunks_exact(2)
        .enumerate()
        .map(|(i, pair)| {
            let pair =
                std::str::from_utf8(pair).map_err(|_| format!("{what}: byte {i} is not hex"))?;
            u8::from_str_radix(pair, 16)
                .map_err(|_| format!("{what}: byte {i} ({pair:?}) is not hex"))
        })
        .collect()
}

fn run() -> Result<u64, String> {
    // Options the runner may add start with "--"; the first other argument is the memory.
    let memory = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with("--"))
        .unwrap_or_default();
    let backend = if std::env::args().any(|arg| arg == "--jit") {
        Backend::Jit
    } else {
        Backend::Interpreter
    };
    let mut memory = base16_decode(&memory, "memory argument")?;
    let mut program_text = String::new();
    std::io::stdin()
        .read_to_string(&mut program_text)
        .map_err(|e| format!("reading stdin: {e}"))?;
    let bytecode = base16_decode(&program_text, "program on stdin")?;

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
        .map_err(|e| e.to_string())?;

    let program =
        Program::from_raw_with(&bytecode, &helpers, backend).map_err(|e| format!("load: {e}"))?;
    if backend == Backend::Jit && program.tier() != Tier::Jit {
        let reason = program.jit_error().map(ToString::to_string);
        return Err(format!("--jit: runs on the interpreter: {reason:?}"));
    }
    let memory_len = memory.len() as u64;
    let mut mem = Memory::new();
    let addr = mem
        .map_write(&mut memory)
        .map_err(|e| format!("memory: {e}"))?;
    let mut vm = Vm::new(VmConfig::default());
    let exit = vm
        .run(&program, &mut mem, &helpers, &mut (), addr, memory_len)
        .map_err(|trap| format!("trap: {trap}"))?;
    Ok(exit.r0)
}

fn main() -> ExitCode {
    match run() {
        Ok(r0) => {
            println!("{r0:x}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("naam-vm: {message}");
            ExitCode::FAILURE
        }
    }
}
