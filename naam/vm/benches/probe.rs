//! ns/call of the two NAAM hot-path kernels, each five ways: the naam-vm JIT (Cranelift, every
//! access checked), the naam-vm interpreter, rbpf's interpreter and rbpf's x86-64 JIT (no bounds
//! checks) on the same clang-compiled bytecode and input bytes, and the same logic in native
//! Rust; and the JIT's compile time per program (`jit_compile`), including both NAAM functions.
//!
//! - `mica_probe_{7,15}`: scan a MICA bucket of 7 or 15 entries for a 16-bit tag (the match sits
//!   in the last entry, so every entry is read), `benches/bpf/mica_probe.c`;
//! - `btree_search_128`: binary search over the 128 sorted 8-byte keys of a 1 KB node,
//!   `benches/bpf/btree_search.c`.
//!
//! Run: `cargo bench -p naam-vm --features jit --bench probe` (without the feature the JIT
//! series run on the interpreter and say so on stderr). Inputs are drawn from a seeded generator
//! (`NAAM_SEED`, default below) and every engine is checked to agree before it is timed.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use naam_vm::{Backend, Helpers, Memory, Program, Tier, Vm, VmConfig};
use object::{Object, ObjectSection};

const MICA_OBJECT: &[u8] = include_bytes!("bpf/mica_probe.o");
const BTREE_OBJECT: &[u8] = include_bytes!("bpf/btree_search.o");
/// The NAAM functions of the two workloads (their helpers are stand-ins: only compile time is
/// measured on them).
const MICA_GET_OBJECT: &[u8] = include_bytes!("../../../workloads/mica/bpf/mica_get.o");
const BTREE_LOOKUP_OBJECT: &[u8] = include_bytes!("../../../workloads/btree/bpf/btree_lookup.o");
/// Helper ids of the NAAM ABI (`naam/engine/src/abi.rs`: naam_read, naam_reply, save_state).
const NAAM_HELPER_IDS: [u32; 3] = [0x4e01, 0x4e02, 0x4e03];
const SEED_DEFAULT: u64 = 0x6e61_616d_2d76_6d00;

const MICA_SLOTS_MAX: usize = 15;
const MICA_TAG_SHIFT: u32 = 48;
const MICA_OFFSET_MASK: u64 = (1 << MICA_TAG_SHIFT) - 1;
/// `struct probe_input`: tag, n_slots, version + next_extra, item_vec[15].
const MICA_INPUT_BYTES: usize = 8 + 8 + 8 + MICA_SLOTS_MAX * 8;
const NODE_KEYS: usize = 128;
/// `struct search_input`: key, n_keys, keys[128].
const BTREE_INPUT_BYTES: usize = 8 + 8 + NODE_KEYS * 8;

/// splitmix64: a tiny seeded generator for the inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn seed() -> u64 {
    let seed = std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED_DEFAULT);
    eprintln!("NAAM_SEED={seed}");
    seed
}

fn word(bytes: &[u8], index: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[index * 8..index * 8 + 8]);
    u64::from_le_bytes(word)
}

fn put_word(bytes: &mut [u8], index: usize, value: u64) {
    bytes[index * 8..index * 8 + 8].copy_from_slice(&value.to_le_bytes());
}

/// A bucket of `n_slots` entries whose only entry with the searched tag is the last one.
fn mica_input(rng: &mut SplitMix, n_slots: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; MICA_INPUT_BYTES];
    let tag = rng.next() >> MICA_TAG_SHIFT;
    put_word(&mut bytes, 0, tag);
    put_word(&mut bytes, 1, n_slots as u64);
    for i in 0..n_slots {
        let mut entry_tag = rng.next() >> MICA_TAG_SHIFT;
        if i + 1 == n_slots {
            entry_tag = tag;
        } else if entry_tag == tag {
            entry_tag ^= 1;
        }
        let offset = (rng.next() & MICA_OFFSET_MASK) | 1;
        put_word(&mut bytes, 3 + i, (entry_tag << MICA_TAG_SHIFT) | offset);
    }
    bytes
}

/// Native Rust twin of `mica_probe.c`, over the same bytes.
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

/// A full node of sorted random keys and a search key drawn between them.
fn btree_input(rng: &mut SplitMix) -> Vec<u8> {
    let mut keys: Vec<u64> = (0..NODE_KEYS).map(|_| rng.next() >> 1).collect();
    keys.sort_unstable();
    let mut bytes = vec![0u8; BTREE_INPUT_BYTES];
    put_word(&mut bytes, 0, keys[NODE_KEYS / 3] + 1);
    put_word(&mut bytes, 1, NODE_KEYS as u64);
    for (i, key) in keys.iter().enumerate() {
        put_word(&mut bytes, 2 + i, *key);
    }
    bytes
}

/// Native Rust twin of `btree_search.c`, over the same bytes.
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

/// The bytes of one code section (these programs need no linking).
fn section_bytes(object: &[u8], section: &str) -> Vec<u8> {
    let file = object::File::parse(object).expect("bench object parses");
    let section = file.section_by_name(section).expect("bench section exists");
    section.data().expect("section data").to_vec()
}

fn run_naam(vm: &mut Vm, program: &Program, helpers: &Helpers<()>, input: &[u8]) -> u64 {
    let mut mem = Memory::new();
    let addr = mem.map_read(input).expect("maps");
    vm.run(
        program,
        &mut mem,
        helpers,
        &mut (),
        addr,
        input.len() as u64,
    )
    .expect("runs")
    .r0
}

/// Loads the same section for the interpreter and for the JIT.
fn load_both(object: &[u8], section: &str, helpers: &Helpers<()>) -> (Program, Program) {
    let interpreted = Program::from_elf(object, section, helpers).expect("loads");
    let jitted =
        Program::from_elf_with(object, section, helpers, Backend::Jit).expect("loads for the JIT");
    if jitted.tier() != Tier::Jit {
        eprintln!("{section}: JIT unavailable ({:?})", jitted.jit_error());
    }
    (interpreted, jitted)
}

fn compare(
    c: &mut Criterion,
    group: &str,
    object: &[u8],
    section: &str,
    input: &[u8],
    native: fn(&[u8]) -> u64,
) {
    let helpers = Helpers::<()>::new();
    let (program, jitted) = load_both(object, section, &helpers);
    let mut vm = Vm::new(VmConfig::default());
    let bytecode = section_bytes(object, section);
    let rbpf_vm = rbpf::EbpfVmMbuff::new(Some(&bytecode)).expect("rbpf loads");
    let mut rbpf_jit = rbpf::EbpfVmRaw::new(Some(&bytecode)).expect("rbpf loads");
    rbpf_jit.jit_compile().expect("rbpf compiles");
    let mut rbpf_input = input.to_vec();

    let expected = native(input);
    for (name, program) in [("interpreter", &program), ("JIT", &jitted)] {
        assert_eq!(
            run_naam(&mut vm, program, &helpers, input),
            expected,
            "{group}: naam-vm {name} agrees"
        );
    }
    assert_eq!(
        rbpf_vm.execute_program(input, &[]).expect("rbpf runs"),
        expected,
        "{group}: rbpf agrees"
    );
    // SAFETY: rbpf's JIT does not check accesses; the program reads only its input (it agrees
    // with the checked interpreters above on the same bytes).
    let rbpf_jit_r0 = unsafe { rbpf_jit.execute_program_jit(&mut rbpf_input) };
    assert_eq!(
        rbpf_jit_r0.expect("rbpf JIT runs"),
        expected,
        "{group}: rbpf JIT agrees"
    );
    let mut mem = Memory::new();
    let addr = mem.map_read(input).expect("maps");
    let exit = vm
        .run(
            &program,
            &mut mem,
            &helpers,
            &mut (),
            addr,
            input.len() as u64,
        )
        .expect("runs");
    eprintln!("{group}: {} eBPF instructions per call", exit.insn_count);

    let mut group = c.benchmark_group(group);
    group.bench_function("naam_vm_jit", |b| {
        b.iter(|| run_naam(&mut vm, &jitted, &helpers, black_box(input)))
    });
    group.bench_function("naam_vm_interpreter", |b| {
        b.iter(|| run_naam(&mut vm, &program, &helpers, black_box(input)))
    });
    group.bench_function("rbpf_interpreter", |b| {
        b.iter(|| {
            rbpf_vm
                .execute_program(black_box(input), &[])
                .expect("rbpf runs")
        })
    });
    group.bench_function("rbpf_jit", |b| {
        // SAFETY: as above.
        b.iter(|| unsafe { rbpf_jit.execute_program_jit(black_box(&mut rbpf_input)) })
    });
    group.bench_function("native_rust", |b| b.iter(|| native(black_box(input))));
    group.finish();
}

fn refuse(_: &mut (), _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, naam_vm::HelperError> {
    Err(naam_vm::HelperError::Failed {
        reason: "stand-in: compile-time benchmark only",
    })
}

/// Stand-ins for the NAAM helpers, with the engine's signatures' shape (scalars).
fn naam_helpers() -> Helpers<()> {
    let mut helpers = Helpers::new();
    for id in NAAM_HELPER_IDS {
        let helper = naam_vm::Helper {
            name: "naam stand-in",
            signature: naam_vm::Signature::SCALARS,
            func: refuse,
        };
        helpers.register(id, helper).expect("registers");
    }
    helpers
}

/// Time to load one program for the JIT (verify + decode + Cranelift + executable mapping).
fn jit_compile_times(c: &mut Criterion) {
    let helpers = naam_helpers();
    let programs: [(&str, &[u8], &str); 4] = [
        ("mica_probe", MICA_OBJECT, "naam/mica_probe"),
        ("btree_search", BTREE_OBJECT, "naam/btree_search"),
        ("mica_get", MICA_GET_OBJECT, "naam/mica_get"),
        ("btree_lookup", BTREE_LOOKUP_OBJECT, "naam/btree_lookup"),
    ];
    let mut group = c.benchmark_group("jit_compile");
    for (name, object, section) in programs {
        let program =
            Program::from_elf_with(object, section, &helpers, Backend::Jit).expect("loads");
        eprintln!(
            "{name}: {} eBPF slots, {:?} bytes of x86-64 ({:?})",
            program.insn_count(),
            program.jit_code_bytes(),
            program.tier()
        );
        group.bench_function(name, |b| {
            b.iter(|| Program::from_elf_with(black_box(object), section, &helpers, Backend::Jit))
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    let mut rng = SplitMix(seed());
    for n_slots in [7, MICA_SLOTS_MAX] {
        let input = mica_input(&mut rng, n_slots);
        compare(
            c,
            &format!("mica_probe_{n_slots}"),
            MICA_OBJECT,
            "naam/mica_probe",
            &input,
            mica_probe_native,
        );
    }
    let input = btree_input(&mut rng);
    compare(
        c,
        "btree_search_128",
        BTREE_OBJECT,
        "naam/btree_search",
        &input,
        btree_search_native,
    );
}

criterion_group!(probe, benches, jit_compile_times);
criterion_main!(probe);
