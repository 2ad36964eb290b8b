//! # naam-vm: the eBPF virtual machine NAAM functions run on
//!
//! NAAM (Network-accelerated Active Messages, arXiv 2509.07431) ships one eBPF bytecode per
//! function and runs it unchanged on clients, SmartNIC cores and host cores; this crate is that
//! portable runtime. (NAAM's paper publishes only its abstract: the runtime below is our
//! reconstruction, built to the eBPF ISA of RFC 9669.) It loads bytecode or `clang -target bpf`
//! ELF objects, verifies the program once, and interprets pre-decoded instructions (or runs them
//! compiled by a Cranelift JIT) over memory regions the embedder grants per invocation. It
//! depends on no other crate of the project, performs no IO and reads no clock.
//!
//! ```
//! use naam_vm::{Helpers, Memory, Program, Vm, VmConfig};
//!
//! // r0 = *(u32 *)(r1 + 0); exit
//! let bytecode = [0x61, 0x10, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
//! let helpers = Helpers::<()>::new();
//! let program = Program::from_raw(&bytecode, &helpers).unwrap();
//! let input = 42u32.to_le_bytes();
//! let mut mem = Memory::new();
//! let addr = mem.map_read(&input).unwrap();
//! let mut vm = Vm::new(VmConfig::default());
//! let exit = vm.run(&program, &mut mem, &helpers, &mut (), addr, input.len() as u64).unwrap();
//! assert_eq!((exit.r0, exit.insn_count), (42, 2));
//! ```
//!
//! ## Address space
//!
//! Programs never see host pointers. The VM address space is a table of [`memory::SLOTS`]
//! slots; slot `s` covers VM addresses `(s + 1) << 32 ..` up to its length (at most
//! [`memory::REGION_BYTES_MAX`]), so an address decodes to (slot, offset) with one shift and
//! one mask, and every address below `1 << 32` — null included — is invalid.
//!
//! | slot | VM address | what | access |
//! |---|---|---|---|
//! | 0 | `0x1_0000_0000` | the stack: frame *d* at `d * STACK_FRAME_BYTES`, r10 at its top | read-write, frames 0..=current depth |
//! | 1 | `0x2_0000_0000` | the program's constants (`.rodata*`) | read-only |
//! | 2 | `0x3_0000_0000` | the program's globals (`.data`, `.bss`), reset every invocation | read-write |
//! | 3 + k | `(k + 4) << 32` | the embedder's k-th [`Memory::map_read`] / [`Memory::map_write`] | as mapped |
//!
//! A callee's frame lies *above* its caller's, and the stack slot's length is the top of the
//! current frame: a function can reach its own frame and its callers' (pointers to locals may be
//! passed down), never a frame that is not live. Every stack byte an invocation could have
//! written is zeroed when it ends, so the stack is all zeros between invocations and nothing
//! leaks from one invocation (or tenant) to the next: a load-time scan bounds how deep below a
//! frame's top the program can write (its deepest constant r10 store; the whole frame once it
//! has a store or atomic through another register or a helper call, since the stack's VM
//! address is public), and that many bytes of each reached frame are zeroed — none for a
//! program that never writes its stack.
//!
//! ## Verifier
//!
//! Run once at load ([`Program::from_raw`], [`Program::from_elf`]), it guarantees:
//! - the program is non-empty, a whole number of 8-byte slots, and at most [`PROGRAM_INSN_MAX`]
//!   slots;
//! - every opcode is an RFC 9669 instruction, with its reserved fields zero and its `off`/`imm`
//!   among the allowed values (`sdiv`/`smod` offset 1, `movsx` widths, byte-swap widths, atomic
//!   operations); legacy packet loads and kernel pseudo-`lddw`s (maps) are refused;
//! - register numbers are r0..=r10 and r10 is never written;
//! - every jump and local call lands on an instruction inside the program, never on the second
//!   slot of a `lddw`, and the last instruction cannot fall off the end;
//! - every `call imm` names a helper of the registry it is verified against;
//! - every load/store/atomic through r10 with its constant offset stays inside the current
//!   [`STACK_FRAME_BYTES`] frame (accesses through other registers are checked at run time).
//!
//! It does *not* track pointer types or value ranges as the Linux verifier does: every memory
//! access that is not a constant r10 offset is bounds-checked by the interpreter against the
//! slot table, which is what makes hostile tenant code safe without a kernel-grade verifier.
//!
//! ## Termination
//!
//! The VM enforces a **mandatory instruction budget per invocation** ([`VmConfig::budget_insn`])
//! instead of proving loops bounded. Why: NAAM functions are continuation-style steps whose cost
//! the engine must bound anyway (per-step budgets, cost accounting on the emulated NIC), bounded
//! loops over runtime values (bucket scans, B-tree searches) are the norm and a bound prover would
//! reject many of them or need annotations, and a budget needs no analysis that could be wrong.
//! Local calls nest at most [`CALL_DEPTH_MAX`] deep, so recursion is bounded too.
//!
//! Instructions are counted per straight-line run (at every taken jump, call and exit), which
//! makes [`Exit::insn_count`] exact and costs nothing per instruction. An invocation never
//! *exits* having executed more than its budget; it traps with [`Trap::BudgetExceeded`] at the
//! first taken jump, call or exit after the budget ran out, so a trapping run may overshoot by at
//! most one straight-line run (bounded by the program size). The JIT may skip a check that a
//! later one repeats before any store, atomic, call or checked load (an overshoot of a few
//! effect-free runs, never a whole loop): the same trap, the same memory afterwards.
//!
//! ## Traps
//!
//! Bad behaviour at run time ends the invocation with a [`Trap`], never a panic or undefined
//! behaviour: [`Trap::OutOfBounds`] and [`Trap::ReadOnly`] for memory, [`Trap::BudgetExceeded`],
//! [`Trap::CallDepthExceeded`], [`Trap::UnknownHelper`] (a `callx` to an unregistered id),
//! [`Trap::HelperArgument`] (a helper's pointer argument fails its [`Signature`]) and
//! [`Trap::Helper`] (the helper's own error). Division by zero and `INT_MIN / -1` are not traps:
//! they yield RFC 9669's results (quotient 0, remainder = dividend; `INT_MIN`, remainder 0).
//! Stores made before a trap stay in the embedder's writable regions.
//!
//! ## Performance
//!
//! The verifier decodes once into 16-byte records (immediates pre-extended, jump targets
//! absolute, `lddw` merged into one record, r10-relative accesses specialised), and a peephole
//! pass fuses the pairs clang emits back to back in hot loops (`mov` + ALU, shift pairs) into
//! superinstructions. The interpreter's loop is a single jump-table dispatch through an
//! instruction pointer, with no per-instruction allocation, fetch bounds check, register-number
//! check, budget counter or stack bounds check. (Profiling with callgrind: removing a fifth of
//! the executed host instructions did not move the time, fusing dependent pairs did, which points
//! at the register file's store-to-load chains as the remaining cost.) `benches/probe.rs`
//! compares it with rbpf's interpreter and native Rust on a MICA bucket probe and a B-tree node
//! search.
//!
//! ## Loading, helpers, atomics
//!
//! [`Program::from_elf`] links one program out of a clang object: its section, the sections it
//! calls into (BPF-to-BPF calls), and its `.rodata*`/`.data`/`.bss` references (see the `elf`
//! module docs for what clang-19 emits); maps, externs and other relocations are typed
//! [`ElfError`]s. Helpers are numbered host functions with a typed [`Signature`]: the VM checks
//! every pointer argument against the invocation's memory before the call, and `callx` takes the
//! helper id from a register. A [`ScalarHelper`] (all-scalar arguments, cannot fail) is a second
//! kind, registered with [`Helpers::register_scalar`]: no memory check and no `Result`, and the
//! JIT calls it without the trampoline. A [`DirectHelper`] (pointer arguments, checked as any
//! helper's) is a third, registered with [`Helpers::register_direct`]: the JIT calls it without
//! the trampoline too, through an entry that makes the same check. Atomics are plain read-modify-writes: an invocation runs on one
//! thread over memory it borrows exclusively (`map_write` takes `&mut [u8]`).
//!
//! ## JIT (cargo feature `jit`)
//!
//! [`Program::from_raw_with`] / [`Program::from_elf_with`] with [`Backend::Jit`] compile the
//! verified ops once, at load, into one native function with Cranelift 0.135 (x86-64 and
//! aarch64; [`Program::tier`] says [`Tier::Jit`]). [`Vm::run`] keeps its signature and runs the
//! native code over the same slot table, stack and budget, with the same traps:
//! - every access that is not a verified constant r10 offset is checked: first against a
//!   one-entry region cache per access kind (read, write) held in registers — the slot the last
//!   such access went to, admitting any access of at most 8 bytes inside it — and on a miss
//!   against the slot table, which refills the cache; helper calls and local calls and returns
//!   empty both caches, since they change the slot table;
//! - instructions are counted per basic block and compared with the budget at exactly the
//!   interpreter's points (taken jumps, local calls, exits), so [`Exit::insn_count`] and where
//!   [`Trap::BudgetExceeded`] fires are identical;
//! - local calls save r6..=r9 and a return-site number on the native stack and return through a
//!   jump table, with the depth limit and stack-slot updates of the interpreter;
//! - helpers go through a trampoline monomorphised for the context type, except a `call imm` of
//!   a [`ScalarHelper`] or [`DirectHelper`] that the registry it runs with holds at the position
//!   the verifier recorded (checked at run time against the registry's direct table, keyed by
//!   id), which calls an entry monomorphised for that helper directly; a helper's trap or panic
//!   crosses the native code as a status and is re-raised in Rust.
//!
//! The interpreter stays the reference (differential tests and fuzzing compare the two) and the
//! fallback: without the feature, or when Cranelift or the OS refuses (no executable memory),
//! the program runs interpreted and [`Program::jit_error`] says why. Every RFC 9669 instruction
//! the verifier accepts is compiled; nothing falls back per instruction.
//! [`Program::from_raw_cached`] / [`Program::from_elf_cached`] take the native code from a
//! [`JitCache`] the embedder owns when a live program there has the same ops and entry (the code
//! depends on nothing else), so one function loaded for many tenants is compiled once.
//! `Program::compile_for` compiles for the other ISA without running it (tests compile every
//! conformance program and both NAAM functions for aarch64; this machine runs only x86-64).

mod elf;
mod fuse;
mod helpers;
mod interp;
#[cfg(feature = "jit")]
pub mod jit;
mod jit_cache;
pub mod memory;
mod op;
mod opcode;
mod program;
mod verifier;
mod vm;

pub use elf::ElfError;
pub use helpers::{
    ArgKind, DirectHelper, HELPER_ARGS, HELPERS_MAX, Helper, HelperError, HelperFn, Helpers,
    RegisterError, ScalarHelper, Signature,
};
pub use jit_cache::{JIT_CACHE_SWEEP_ENTRIES_MIN, JitCache, JitCacheStats};
pub use memory::{MapError, Memory, MemoryError, Regions};
pub use opcode::SLOT_BYTES;
pub use program::{
    Backend, CONSTANTS_BYTES_MAX, GLOBALS_BYTES_MAX, JitError, LoadError, Program, Tier,
};
pub use verifier::VerifyError;
pub use vm::{BUDGET_INSN_DEFAULT, Exit, STACK_BYTES, Trap, Vm, VmConfig};

#[cfg(feature = "jit")]
pub use jit::JitTarget;

/// Largest program, in 8-byte instruction slots (a `lddw` takes two).
pub const PROGRAM_INSN_MAX: usize = 65_536;
/// Bytes of one stack frame (r10 points at its top); RFC 9669 programs assume 512.
pub const STACK_FRAME_BYTES: usize = 512;
/// Deepest nesting of BPF-to-BPF calls below the entry function.
pub const CALL_DEPTH_MAX: usize = 8;
/// Regions the embedder may map for one invocation.
pub const MEMORY_REGIONS_MAX: usize = 16;

const _: () = assert!(
    PROGRAM_INSN_MAX <= i32::MAX as usize,
    "decoded targets are i32"
);
const _: () = assert!(
    STACK_FRAME_BYTES >= 512,
    "the conformance suite needs 512-byte frames"
);
const _: () = assert!(
    STACK_FRAME_BYTES.is_multiple_of(8),
    "frames keep 8-byte alignment"
);
const _: () = assert!(MEMORY_REGIONS_MAX >= 16, "the engine maps up to 16 regions");
const _: () = assert!(
    CALL_DEPTH_MAX >= 1,
    "BPF-to-BPF calls need at least one level"
);
