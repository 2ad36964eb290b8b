//! ELF loading of real clang-19 objects (`tests/bpf/*.c`, compiled by `scripts/build-bpf.sh`):
//! every linking feature clang emits runs and returns what a Rust model of the C computes, and
//! every unsupported construct is a typed error naming its section and relocation.

mod common;

use common::{run_on, words_to_bytes};
use naam_vm::{ElfError, Helpers, LoadError, Program, VmConfig};

const FEATURES: &[u8] = include_bytes!("bpf/elf_features.o");
const UNSUPPORTED: &[u8] = include_bytes!("bpf/elf_unsupported.o");

/// The tables of `elf_features.c`, mirrored.
const PRIMES: [u64; 8] = [2, 3, 5, 7, 11, 13, 17, 19];
const GREETING: &[u8] = b"hello, naam";
const WORDS: [&str; 3] = ["zero", "one", "three"];
const COUNTER_INITIAL: u64 = 40;

fn load(name: &str) -> Program {
    Program::from_elf(FEATURES, name, &Helpers::<()>::new())
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

fn run(program: &Program, words: &[u64]) -> u64 {
    let input = words_to_bytes(words);
    run_on(program, &input, VmConfig::default())
        .unwrap_or_else(|trap| panic!("trap: {trap}"))
        .r0
}

#[test]
fn rodata_table_reached_through_bpf_to_bpf_calls_into_text() {
    let program = load("naam/sum_primes");
    for n in [0u64, 1, 4, 8, 100] {
        let expected: u64 = PRIMES.iter().take(n.min(8) as usize).sum();
        assert_eq!(run(&program, &[n]), expected, "sum of the first {n} primes");
    }
}

#[test]
fn a_program_is_picked_by_section_name_or_by_symbol_name() {
    let by_section = load("naam/sum_primes");
    let by_symbol = load("sum_primes");
    assert_eq!(by_section.insn_count(), by_symbol.insn_count());
    assert_eq!(run(&by_section, &[5]), run(&by_symbol, &[5]));
}

#[test]
fn rodata_string_bytes_are_readable() {
    let program = load("greeting_byte");
    for k in [0u64, 4, 7, 10, 11, 23] {
        let expected = GREETING[(k % GREETING.len() as u64) as usize];
        assert_eq!(run(&program, &[k]), u64::from(expected), "byte {k}");
    }
}

#[test]
fn data_and_bss_globals_start_fresh_every_invocation() {
    let program = load("naam/bump");
    let helpers = Helpers::<()>::new();
    let mut vm = naam_vm::Vm::new(VmConfig::default());
    for x in [3u64, 3, 5] {
        let input = words_to_bytes(&[x]);
        let mut mem = naam_vm::Memory::new();
        let addr = mem.map_read(&input).unwrap();
        let exit = vm
            .run(&program, &mut mem, &helpers, &mut (), addr, 8)
            .unwrap();
        assert_eq!(
            exit.r0,
            (COUNTER_INITIAL + x) * 100 + 1,
            "bump({x}) on a reused VM"
        );
    }
    assert_eq!(
        program.globals_len(),
        8 + 4 * 8,
        ".data counter + .bss scratch[4]"
    );
}

#[test]
fn a_table_of_pointers_in_rodata_is_relocated_to_vm_addresses() {
    let program = load("word_len");
    for i in 0..6u64 {
        assert_eq!(
            run(&program, &[i]),
            WORDS[(i % 3) as usize].len() as u64,
            "words[{i} % 3]"
        );
    }
}

#[test]
fn two_functions_in_text_calling_each_other_are_picked_by_symbol() {
    let program = load("text_weigh");
    for (a, b) in [(3u64, 2u64), (0, 0), (9, 15)] {
        let expected = a * PRIMES[(b & 7) as usize] + PRIMES[(a & 7) as usize];
        assert_eq!(run(&program, &[a, b]), expected, "weigh({a}, {b})");
    }
}

#[test]
fn a_callee_writes_through_a_pointer_into_its_callers_frame() {
    let program = load("stack_pointer_arg");
    assert_eq!(run(&program, &[7]), 21);
}

#[test]
fn missing_and_non_code_names_are_typed_errors() {
    let helpers = Helpers::<()>::new();
    let load = |name: &str| Program::from_elf(FEATURES, name, &helpers).unwrap_err();
    assert_eq!(
        load("naam/nope"),
        LoadError::Elf(ElfError::ProgramNotFound {
            name: "naam/nope".into()
        })
    );
    assert_eq!(
        load("counter"),
        LoadError::Elf(ElfError::NotExecutable {
            name: "counter".into(),
            section: ".data".into()
        })
    );
    assert_eq!(
        load(".rodata"),
        LoadError::Elf(ElfError::NotExecutable {
            name: ".rodata".into(),
            section: ".rodata".into()
        })
    );
}

#[test]
fn non_bpf_and_non_elf_inputs_are_typed_errors() {
    let helpers = Helpers::<()>::new();
    let host_binary = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let err = Program::from_elf(&host_binary, "main", &helpers).unwrap_err();
    assert!(
        matches!(err, LoadError::Elf(ElfError::NotBpf { machine }) if machine != 247),
        "{err}"
    );
    let err = Program::from_elf(b"not an object", "f", &helpers).unwrap_err();
    assert!(
        matches!(err, LoadError::Elf(ElfError::Parse { .. })),
        "{err}"
    );
    let err =
        Program::from_elf(&FEATURES[..FEATURES.len() / 2], "sum_primes", &helpers).unwrap_err();
    assert!(
        matches!(err, LoadError::Elf(ElfError::Parse { .. })),
        "{err}"
    );
}

#[test]
fn an_extern_is_an_undefined_symbol() {
    let err = Program::from_elf(UNSUPPORTED, "uses_extern", &Helpers::<()>::new()).unwrap_err();
    let expected = ElfError::UndefinedSymbol {
        section: "naam/uses_extern".into(),
        offset: 0,
        symbol: "tenant_secret".into(),
    };
    assert_eq!(err, LoadError::Elf(expected));
}

#[test]
fn a_map_reference_names_the_maps_section() {
    let err = Program::from_elf(UNSUPPORTED, "uses_map", &Helpers::<()>::new()).unwrap_err();
    let expected = ElfError::UnsupportedTarget {
        section: "naam/uses_map".into(),
        offset: 8,
        target: "lookup_map".into(),
        reason: "BPF maps and kernel sections are not supported",
    };
    assert_eq!(err, LoadError::Elf(expected));
}

#[test]
fn taking_a_function_address_is_refused() {
    let err =
        Program::from_elf(UNSUPPORTED, "function_address", &Helpers::<()>::new()).unwrap_err();
    let expected = ElfError::UnsupportedTarget {
        section: "naam/function_address".into(),
        offset: 0,
        target: ".text".into(),
        reason: "the address of code cannot be taken",
    };
    assert_eq!(err, LoadError::Elf(expected));
}
