//! The fuzz harness (`fuzz/harness.rs`, also the cargo-fuzz target's) driven on stable Rust by
//! a seeded generator: random bytes, random instruction streams built from real opcodes, and
//! bit-flipped conformance programs and clang objects. Every input must load, verify and run to
//! a value or a typed error without panicking. `NAAM_SEED=<n>` replays a run.
//!
//! With the `jit` feature, the same generators drive differential testing: every generated
//! program runs on the JIT and on the interpreter, which must agree (`NAAM_DIFF_INPUTS=<n>`
//! sets how many structured programs; the long runs reported in ARTIFACT.md use it in release).
//! A campaign runs on its own thread under a watch: an input that runs for over a minute (a
//! backend ignoring its budget) fails the test with the seed and the input's index.

#[path = "../fuzz/harness.rs"]
mod harness;

mod fixtures;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

const SEED_DEFAULT: u64 = 0x6e61_616d_6675_7a7a;
const RANDOM_INPUTS: usize = 4_000;
const STRUCTURED_INPUTS: usize = 30_000;
const MUTANTS_PER_SEED_INPUT: usize = 24;
const RANDOM_BYTES_MAX: usize = 512;
const STRUCTURED_SLOTS_MAX: usize = 32;
/// One differential input in this many is a counted loop ([`counted_loop`]).
#[cfg(feature = "jit")]
const COUNTED_LOOP_EVERY: usize = 8;

/// One differential input in this many, between the counted loops, is a run of loads through
/// one register ([`load_run`]).
#[cfg(feature = "jit")]
const LOAD_RUN_EVERY: usize = 8;

/// Every opcode of RFC 9669 this VM accepts, plus a few it must reject.
const OPCODES: &[u8] = &[
    0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64, 0x6c, 0x74, 0x7c,
    0x84, 0x94, 0x9c, 0xa4, 0xac, 0xb4, 0xbc, 0xc4, 0xcc, 0xd4, 0xdc, 0x07, 0x0f, 0x17, 0x1f, 0x27,
    0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f, 0x87, 0x97, 0x9f, 0xa7, 0xaf,
    0xb7, 0xbf, 0xc7, 0xcf, 0xd7, 0x18, 0x61, 0x69, 0x71, 0x79, 0x81, 0x89, 0x91, 0x62, 0x6a, 0x72,
    0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xc3, 0xdb, 0x05, 0x15, 0x1d, 0x25, 0x2d, 0x35, 0x3d, 0x45, 0x4d,
    0x55, 0x5d, 0x65, 0x6d, 0x75, 0x7d, 0xa5, 0xad, 0xb5, 0xbd, 0xc5, 0xcd, 0xd5, 0xdd, 0x06, 0x16,
    0x1e, 0x26, 0x2e, 0x36, 0x3e, 0x46, 0x4e, 0x56, 0x5e, 0x66, 0x6e, 0x76, 0x7e, 0xa6, 0xae, 0xb6,
    0xbe, 0xc6, 0xce, 0xd6, 0xde, 0x85, 0x8d, 0x95, 0x95, 0x95, 0x00, 0x20, 0x8c, 0xe5, 0xff,
];
/// Immediates that hit edge cases: zero, one, -1, INT_MIN, shift widths, byte-swap widths,
/// atomic operations, helper ids.
const IMMEDIATES: &[i32] = &[
    0,
    1,
    -1,
    i32::MIN,
    i32::MAX,
    8,
    16,
    31,
    32,
    63,
    64,
    0x01,
    0x40,
    0x41,
    0x50,
    0xa0,
    0xe1,
    0xf1,
    5,
    6,
    7,
    8,
    9,
];

/// splitmix64.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
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

fn random_bytes(rng: &mut SplitMix) -> Vec<u8> {
    (0..rng.below(RANDOM_BYTES_MAX))
        .map(|_| rng.next() as u8)
        .collect()
}

/// A header byte, some input memory, then instruction slots whose fields are mostly what their
/// opcode requires (so most programs verify and run), with occasional corruption.
fn structured(rng: &mut SplitMix) -> Vec<u8> {
    let memory_len = rng.below(harness::FUZZ_MEMORY_BYTES_MAX);
    let mut bytes = vec![memory_len as u8];
    bytes.extend((0..memory_len).map(|_| rng.next() as u8));
    let slots = 1 + rng.below(STRUCTURED_SLOTS_MAX);
    let mut i = 0;
    while i < slots {
        let fields = if i + 1 == slots {
            [0x95, 0, 0, 0, 0]
        } else {
            plausible(rng, i, slots)
        };
        let opcode = fields[0];
        push_fields(&mut bytes, fields);
        if opcode == 0x18 && i + 1 < slots {
            push_slot(&mut bytes, 0, 0, 0, 0, rng.next() as i32);
            i += 1;
        }
        i += 1;
    }
    if rng.below(4) == 0 {
        let at = 1 + memory_len + rng.below(bytes.len() - 1 - memory_len);
        bytes[at] ^= 1 << rng.below(8);
    }
    bytes
}

/// A counted loop in the shape the JIT versions (`r = start; do { body } while (r += step) <= K`,
/// or its `if (r > K) break` form), with a few plausible ops as its body (which may clobber the
/// counter or jump anywhere: then it is not versioned), often led by an access through r1 that
/// walks the input (whose region check the JIT then hoists to the loop's entry, when the whole
/// walk fits). One in three is laid out as clang lays out `btree_lookup.o`'s searches: the test
/// first, the exit after it, the body last, so the loop's ops are not one contiguous range.
#[cfg(feature = "jit")]
fn counted_loop(rng: &mut SplitMix) -> Vec<u8> {
    let memory_len = rng.below(harness::FUZZ_MEMORY_BYTES_MAX);
    let mut bytes = vec![memory_len as u8];
    bytes.extend((0..memory_len).map(|_| rng.next() as u8));
    let counter = 2 + rng.below(8) as u8;
    let split = rng.below(3) == 0;
    let mut body: Vec<[i64; 5]> = Vec::new();
    if rng.below(3) != 0 {
        let access = rng.pick(&[0x71, 0x79, 0x72, 0x73, 0x7b]); // ldxb, ldxdw, stb, stxb, stxdw
        let (dst, src) = if access & 0x07 == 0x01 {
            (0, 1)
        } else {
            (1, 0)
        };
        body.push([access, dst, src, rng.below(9) as i64, 5]);
        body.push([0x07, 1, 0, 0, rng.pick(&[1, 1, 8, -1, 3])]);
    }
    let body_len = body.len() + rng.below(4);
    // Slots before the body: the counter's move, and in the split layout the jump to the body,
    // the test, the jump back into the body and the exit; after it: the step and the jump back
    // (split), or the step, the test, a move or jump, and the exit.
    // Half the contiguous loops compare with a register set to the bound before the loop, as
    // clang hoists one (no extra draw: a seed's other programs stay as they were).
    let bound_reg = (!split && memory_len % 2 == 1)
        .then(|| 2 + (counter - 2 + 1 + (memory_len / 2 % 7) as u8) % 8);
    let (body_first, after_body) = if split {
        (5, 2)
    } else {
        (1 + usize::from(bound_reg.is_some()), 4)
    };
    let slots = body_first + body_len + after_body;
    while body.len() < body_len {
        let mut fields = plausible(rng, body_first + body.len(), slots);
        if fields[0] == 0x18 {
            fields[0] = 0xb7; // one slot each: no lddw
        }
        body.push(fields);
    }
    push_slot(&mut bytes, 0xb7, counter, 0, 0, rng.below(5) as i32);
    let step = 1 + rng.below(3) as i32;
    let bound = rng.below(12) as i32;
    if split {
        split_counted_loop(&mut bytes, rng, counter, &body, [step, bound]);
        return bytes;
    }
    if let Some(reg) = bound_reg {
        push_slot(&mut bytes, 0xb7, reg, 0, 0, bound);
    }
    for fields in body {
        push_fields(&mut bytes, fields);
    }
    push_slot(&mut bytes, 0x07, counter, 0, 0, step);
    let back = -(body_len as i16) - 2;
    let test = |opcode: u8| loop_test(opcode, counter, bound_reg, step % 2 == 0);
    // A compare of two registers has no immediate.
    let bound_imm = if bound_reg.is_some() { 0 } else { bound };
    if rng.below(2) == 0 {
        // if r <= K goto 1 (or r < K); then two exits.
        let (opcode, dst, src) = test(rng.pick(&[0xb5, 0xa5]));
        push_slot(&mut bytes, opcode, dst, src, back, bound_imm);
        push_slot(&mut bytes, 0xbf, 0, counter, 0, 0);
    } else {
        // if r > K goto out (or r >= K); goto 1.
        let (opcode, dst, src) = test(rng.pick(&[0x25, 0x35]));
        push_slot(&mut bytes, opcode, dst, src, 1, bound_imm);
        push_slot(&mut bytes, 0x05, 0, 0, back - 1, 0);
    }
    push_slot(&mut bytes, 0x95, 0, 0, 0, 0);
    bytes
}

/// The loop test `if r{counter} <op> K` as `(opcode, dst, src)`: with the immediate, or, when
/// `bound_reg` holds `K`, with that register, second or (`mirrored`) first with the compare
/// turned round (`r > K` as `K < r`).
#[cfg(feature = "jit")]
fn loop_test(opcode: u8, counter: u8, bound_reg: Option<u8>, mirrored: bool) -> (u8, u8, u8) {
    let Some(reg) = bound_reg else {
        return (opcode, counter, 0);
    };
    let with_reg = opcode | 0x08;
    if !mirrored {
        return (with_reg, counter, reg);
    }
    // jgt <-> jlt, jge <-> jle (with the register).
    let turned = match with_reg {
        0x2d => 0xad,
        0xad => 0x2d,
        0x3d => 0xbd,
        _ => 0x3d,
    };
    (turned, reg, counter)
}

/// Three to six loads through r1 or a copy of it a few bytes off, with stack stores and
/// additions between them, now and then one loading into the base register (which ends the
/// run), over an input often shorter than the loads reach: the JIT checks such a run's span
/// once and must trap at the same load as the interpreter when the span does not fit.
#[cfg(feature = "jit")]
fn load_run(rng: &mut SplitMix) -> Vec<u8> {
    let memory_len = rng.below(harness::FUZZ_MEMORY_BYTES_MAX);
    let mut bytes = vec![memory_len as u8];
    bytes.extend((0..memory_len).map(|_| rng.next() as u8));
    push_slot(&mut bytes, 0xb7, 0, 0, 0, 0); // r0 = 0
    let base = rng.pick(&[1u8, 6]);
    if base == 6 {
        push_slot(&mut bytes, 0xbf, 6, 1, 0, 0);
        push_slot(&mut bytes, 0x07, 6, 0, 0, rng.pick(&[0, 1, -1, 8, -8]));
    }
    for _ in 0..3 + rng.below(4) {
        let opcode = rng.pick(&[0x71, 0x69, 0x61, 0x79]); // ldxb, ldxh, ldxw, ldxdw
        let dst = rng.pick(&[2u8, 3, 4, 5, 7, base]);
        let off = rng.below(28) as i16 - 2;
        push_slot(&mut bytes, opcode, dst, base, off, 0);
        match rng.below(3) {
            0 => push_slot(&mut bytes, 0x7b, 10, dst, -8, 0), // *(u64 *)(r10 - 8) = dst
            1 => push_slot(&mut bytes, 0x0f, 0, dst, 0, 0),   // r0 += dst
            _ => {}
        }
    }
    push_slot(&mut bytes, 0x95, 0, 0, 0, 0);
    bytes
}

/// [`counted_loop`]'s split layout after the counter's move (slot 0): `goto body; test: if r > K
/// goto out (or r >= K); goto body; out: exit; body: …; r += step; goto test`, with the body's
/// ops at slots 5 on.
#[cfg(feature = "jit")]
fn split_counted_loop(
    bytes: &mut Vec<u8>,
    rng: &mut SplitMix,
    counter: u8,
    body: &[[i64; 5]],
    [step, bound]: [i32; 2],
) {
    push_slot(bytes, 0x05, 0, 0, 3, 0); // 1: goto 5
    let opcode = rng.pick(&[0x25, 0x35]);
    push_slot(bytes, opcode, counter, 0, 1, bound); // 2: if r > K goto 4
    push_slot(bytes, 0x05, 0, 0, 1, 0); // 3: goto 5
    push_slot(bytes, 0x95, 0, 0, 0, 0); // 4: exit
    for fields in body {
        push_fields(bytes, *fields);
    }
    push_slot(bytes, 0x07, counter, 0, 0, step);
    // From slot 5 + len + 1 back to slot 2.
    let back = -(body.len() as i16) - 5;
    push_slot(bytes, 0x05, 0, 0, back, 0);
}

/// Appends the slot `[opcode, dst, src, off, imm]` ([`plausible`]'s fields).
fn push_fields(bytes: &mut Vec<u8>, fields: [i64; 5]) {
    let [opcode, dst, src, off, imm] = fields;
    push_slot(
        bytes,
        opcode as u8,
        dst as u8,
        src as u8,
        off as i16,
        imm as i32,
    );
}

fn push_slot(bytes: &mut Vec<u8>, opcode: u8, dst: u8, src: u8, off: i16, imm: i32) {
    let (off, imm) = (off.to_le_bytes(), imm.to_le_bytes());
    bytes.extend([
        opcode,
        (src << 4) | (dst & 0x0f),
        off[0],
        off[1],
        imm[0],
        imm[1],
        imm[2],
        imm[3],
    ]);
}

/// `[opcode, dst, src, off, imm]` of a well-formed instruction at slot `i` of `slots`.
fn plausible(rng: &mut SplitMix, i: usize, slots: usize) -> [i64; 5] {
    let opcode = rng.pick(OPCODES);
    let dst = rng.below(10) as i64;
    let src = rng.below(11) as i64;
    let imm = if rng.below(3) == 0 {
        i64::from(rng.next() as i32)
    } else {
        i64::from(rng.pick(IMMEDIATES))
    };
    let target = rng.below(slots) as i64;
    let jump = target - (i as i64 + 1);
    let x = opcode & 0x08 != 0;
    match opcode & 0x07 {
        0x04 | 0x07 => match opcode & 0xf0 {
            0xd0 => [opcode as i64, dst, 0, 0, [16, 32, 64][rng.below(3)]],
            0x80 => [opcode as i64, dst, 0, 0, 0],
            0x30 | 0x90 => [
                opcode as i64,
                dst,
                if x { src } else { 0 },
                rng.below(2) as i64,
                if x { 0 } else { imm },
            ],
            _ if x => [opcode as i64, dst, src, 0, 0],
            _ => [opcode as i64, dst, 0, 0, imm],
        },
        0x01 => [
            opcode as i64,
            dst,
            rng.pick(&[1, 10, 10, src]),
            memory_offset(rng),
            0,
        ],
        0x02 => [
            opcode as i64,
            rng.pick(&[1, 10, 10]),
            0,
            memory_offset(rng),
            imm,
        ],
        0x03 => {
            let atomic =
                i64::from(rng.pick(&[0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xa0, 0xa1, 0xe1, 0xf1]));
            let imm = if opcode & 0xe0 == 0xc0 { atomic } else { 0 };
            [
                opcode as i64,
                rng.pick(&[1, 10, 10]),
                rng.below(10) as i64,
                memory_offset(rng),
                imm,
            ]
        }
        0x05 | 0x06 => match opcode {
            0x85 if rng.below(2) == 0 => [0x85, 0, 1, 0, jump],
            0x85 => [0x85, 0, 0, 0, 5 + rng.below(5) as i64],
            0x8d => [0x8d, rng.below(10) as i64, 0, 0, 0],
            0x95 => [0x95, 0, 0, 0, 0],
            0x06 => [0x06, 0, 0, 0, jump],
            0x05 => [0x05, 0, 0, jump, 0],
            _ if x => [opcode as i64, dst, src, jump, 0],
            _ => [opcode as i64, dst, 0, jump, imm],
        },
        _ => [opcode as i64, dst, 0, 0, imm],
    }
}

/// Offsets that land inside the input memory, inside the stack frame, or just outside either.
fn memory_offset(rng: &mut SplitMix) -> i64 {
    match rng.below(3) {
        0 => rng.below(harness::FUZZ_MEMORY_BYTES_MAX) as i64,
        1 => -(8 * (1 + rng.below(64)) as i64),
        _ => i64::from(rng.next() as i16),
    }
}

fn mutate(rng: &mut SplitMix, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    if bytes.is_empty() {
        return bytes;
    }
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(bytes.len());
        match rng.below(3) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.next() as u8,
            _ => bytes[at] = rng.pick(&[0x00, 0xff, 0x95, 0x85, 0x18]),
        }
    }
    bytes
}

/// Conformance programs (header byte + memory + code) and the committed clang objects.
fn seed_inputs() -> Vec<Vec<u8>> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    let fixtures = fixtures::fixtures_dir();
    for entry in std::fs::read_dir(&fixtures).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let mut bytes = vec![0u8];
        let mut section = "";
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("-- ") {
                section = name;
            } else if section == "raw"
                && let Ok(word) = u64::from_str_radix(line.trim_start_matches("0x"), 16)
            {
                bytes.extend(word.to_le_bytes());
            }
        }
        inputs.push(bytes);
    }
    for object in [
        "tests/bpf/elf_features.o",
        "benches/bpf/mica_probe.o",
        "benches/bpf/btree_search.o",
    ] {
        inputs.push(std::fs::read(manifest.join(object)).expect("committed object"));
    }
    inputs
}

#[derive(Default, Debug)]
struct Tally {
    inputs: usize,
    raw_loaded: usize,
    raw_exited: usize,
    elf_loaded: usize,
}

impl Tally {
    fn add(&mut self, outcome: harness::Outcome) {
        self.inputs += 1;
        self.raw_loaded += usize::from(outcome.raw_loaded);
        self.raw_exited += usize::from(outcome.raw_exited);
        self.elf_loaded += usize::from(outcome.elf_loaded);
    }
}

#[test]
fn arbitrary_bytes_load_verify_and_run_without_panicking() {
    let seed = seed();
    let mut rng = SplitMix(seed);
    let mut tally = Tally::default();
    for _ in 0..RANDOM_INPUTS {
        tally.add(harness::load_and_run(&random_bytes(&mut rng)));
    }
    for _ in 0..STRUCTURED_INPUTS {
        tally.add(harness::load_and_run(&structured(&mut rng)));
    }
    let seeds = seed_inputs();
    assert!(seeds.len() > 300, "only {} seed inputs found", seeds.len());
    for input in &seeds {
        for _ in 0..MUTANTS_PER_SEED_INPUT {
            tally.add(harness::load_and_run(&mutate(&mut rng, input)));
        }
    }
    eprintln!("{tally:?}");
    // The generators must reach the interpreter and the ELF loader, not just the verifier.
    assert!(
        tally.raw_loaded > tally.inputs / 10,
        "too few inputs verified: {tally:?}"
    );
    assert!(
        tally.raw_exited > tally.inputs / 20,
        "too few inputs ran to exit: {tally:?}"
    );
    assert!(tally.elf_loaded > 0, "no mutated object linked: {tally:?}");
}

/// Structured programs of the default differential run (each runs under up to three budgets).
#[cfg(feature = "jit")]
const DIFF_INPUTS_DEFAULT: usize = 6_000;
/// Mutants of each seed input (conformance programs) in the differential run.
#[cfg(feature = "jit")]
const DIFF_MUTANTS_PER_SEED_INPUT: usize = 4;

#[cfg(feature = "jit")]
#[derive(Default, Debug)]
struct DiffTally {
    inputs: u64,
    loaded: u64,
    compiled: u64,
    executions: u64,
    exited: u64,
}

#[cfg(feature = "jit")]
impl DiffTally {
    fn add(&mut self, outcome: harness::Differential) {
        self.inputs += 1;
        self.loaded += u64::from(outcome.loaded);
        self.compiled += u64::from(outcome.compiled);
        self.executions += outcome.executions;
        self.exited += outcome.exited;
    }
}

/// Longest one input of a campaign may run before the test calls it a hang: an input runs in
/// milliseconds, even under the fuzzing budget; a backend that ignores its budget never ends.
const STALL_WAIT: Duration = Duration::from_secs(60);

/// Runs `campaign` on its own thread, which stores the index of each input it starts in the
/// counter it is given, and returns its result; fails, naming `what` and that index, if no new
/// input starts within [`STALL_WAIT`] (the stuck thread is left spinning: the test has failed).
fn watched<T: Send + 'static>(
    what: &str,
    campaign: impl FnOnce(&AtomicUsize) -> T + Send + 'static,
) -> T {
    let started = Arc::new(AtomicUsize::new(0));
    let progress = Arc::clone(&started);
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(campaign(&progress));
    });
    let mut seen = usize::MAX;
    loop {
        match result.recv_timeout(STALL_WAIT) {
            Ok(value) => return value,
            Err(RecvTimeoutError::Disconnected) => panic!(
                "{what}: the run panicked at input {} (message above)",
                started.load(Ordering::Relaxed)
            ),
            Err(RecvTimeoutError::Timeout) => {
                let now = started.load(Ordering::Relaxed);
                if now == seen {
                    panic!("{what}: input {now} ran for over {STALL_WAIT:?}: a hang");
                }
                seen = now;
            }
        }
    }
}

/// The differential campaign of `seed`: `inputs` structured programs, then mutants of the seed
/// inputs (numbered after them), each index stored in `started` before it runs.
#[cfg(feature = "jit")]
fn differential_campaign(seed: u64, inputs: usize, started: &AtomicUsize) -> DiffTally {
    let mut rng = SplitMix(seed);
    let mut tally = DiffTally::default();
    for input in 0..inputs {
        // One input in eight a counted loop, so the JIT's loop versioning is exercised, and
        // one in eight a run of loads, for its span checks.
        let program = if input % COUNTED_LOOP_EVERY == 0 {
            counted_loop(&mut rng)
        } else if input % LOAD_RUN_EVERY == LOAD_RUN_EVERY / 2 {
            load_run(&mut rng)
        } else {
            structured(&mut rng)
        };
        started.store(input, Ordering::Relaxed);
        tally.add(harness::jit_matches_interpreter(&program));
    }
    let mut mutant = inputs;
    for input in &seed_inputs() {
        for _ in 0..DIFF_MUTANTS_PER_SEED_INPUT {
            started.store(mutant, Ordering::Relaxed);
            tally.add(harness::jit_matches_interpreter(&mutate(&mut rng, input)));
            mutant += 1;
        }
    }
    tally
}

#[cfg(feature = "jit")]
#[test]
fn the_jit_and_the_interpreter_agree_on_generated_programs() {
    let seed = seed();
    let inputs = std::env::var("NAAM_DIFF_INPUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DIFF_INPUTS_DEFAULT);
    let versioned_before = naam_vm::jit::versioned_loops_compiled();
    let split_before = naam_vm::jit::split_loops_versioned();
    let hoisted_before = naam_vm::jit::hoisted_accesses_compiled();
    let tally = watched(&format!("NAAM_SEED={seed}"), move |started| {
        differential_campaign(seed, inputs, started)
    });
    let versioned = naam_vm::jit::versioned_loops_compiled() - versioned_before;
    let split = naam_vm::jit::split_loops_versioned() - split_before;
    let hoisted = naam_vm::jit::hoisted_accesses_compiled() - hoisted_before;
    eprintln!(
        "{tally:?} versioned_loops_compiled={versioned} (of which not contiguous: {split}) \
         hoisted_accesses_compiled={hoisted} disagreements=0"
    );
    assert!(versioned > 0, "no generated loop was versioned");
    assert!(split > 0, "no generated loop with split ops was versioned");
    assert!(hoisted > 0, "no generated access was hoisted");
    assert_eq!(
        tally.compiled, tally.loaded,
        "every verified program compiles"
    );
    assert!(
        tally.loaded > tally.inputs / 10,
        "too few inputs verified: {tally:?}"
    );
    assert!(
        tally.exited > tally.inputs / 20,
        "too few inputs ran to exit: {tally:?}"
    );
}

/// Inputs the fuzzer once crashed on (`tests/fuzz_regressions/`, named after the bug).
#[test]
fn fuzzer_crashes_stay_fixed() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let paths: Vec<_> = std::fs::read_dir(&folder)
        .expect("regression folder")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert!(
        !paths.is_empty(),
        "no regression inputs in {}",
        folder.display()
    );
    watched(&format!("replaying {}", folder.display()), move |started| {
        for (index, path) in paths.iter().enumerate() {
            started.store(index, Ordering::Relaxed);
            eprintln!("replaying {} (input {index})", path.display());
            let input = std::fs::read(path).expect("regression input");
            harness::load_and_run(&input);
            // With the JIT, each input runs on both backends, which must agree (a JIT run
            // that ignores its budget is caught by the watch).
            #[cfg(feature = "jit")]
            harness::jit_matches_interpreter(&input);
        }
    });
}
