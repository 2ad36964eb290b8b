//! The Cranelift JIT (cargo feature `jit`): verified, decoded ops → one native function per
//! program, compiled once at load for the host (x86-64 or aarch64), and for the other ISA on
//! request (compile only, for tests on a machine that cannot run it).
//!
//! Same semantics as the interpreter, by construction from the same verified ops:
//! - registers r0..=r10 are Cranelift variables; r10, the frame top and the call depth change
//!   only at local calls and returns, as in the interpreter;
//! - every load, store and atomic not specialised to a constant r10 offset is checked against a
//!   one-entry region cache (per kind: read, write) in SSA variables, filled at entry with the
//!   first embedder region, and on a miss decodes its address to (slot, offset) and is checked
//!   against the invocation's slot table, with the same typed traps; helpers and local calls
//!   change the slot table, so they empty the caches; an access at a constant offset from r1's
//!   entry value, before any helper call, is checked against the first embedder region as the
//!   caller passed it instead, leaving the caches to the other regions (`entry`);
//! - the instruction count is kept per basic block at compile time and taken off the budget left
//!   (in a register) only where a value is needed (`translate::budget_offsets`); the budget left
//!   is compared at every taken jump, local call and exit, where the interpreter compares it, except
//!   at taken jumps whose check a later one repeats before anything observable (see
//!   `translate::budget_deferrable` and `translate::budget_anchored`), so [`Exit::insn_count`],
//!   [`Trap::BudgetExceeded`] and the memory it leaves are identical;
//! - a loop whose exit test bounds its passes (`loops`) is compiled twice: at its entry a
//!   precheck compares the budget left with the most instructions the loop can execute and
//!   checks every address its walking loads and stores can reach against the region caches; if
//!   both pass, a copy without budget checks (and without those accesses' region checks) runs,
//!   else the checked copy, which traps exactly where the interpreter does;
//! - local calls save r6..=r9 and a return-site number in a frame array on the native stack and
//!   return through a jump table over the return sites (the whole program is one native
//!   function, as it is one flat op array to the interpreter);
//! - helpers are called through a trampoline monomorphised for the embedder's context type; a
//!   `call imm` first reads the registry's direct table at the position its verifier hint names
//!   and, when that position holds a scalar or direct helper with the call's id, calls the
//!   helper's own entry (`code::direct`, or `code::direct_checked`, which checks the pointer
//!   arguments as the trampoline does) with r1..=r5 in registers instead; a helper's trap or panic is
//!   carried back across the native code and re-raised in Rust.
//!
//! [`Exit::insn_count`]: crate::Exit::insn_count
//! [`Trap::BudgetExceeded`]: crate::Trap::BudgetExceeded

mod code;
mod entry;
mod loops;
mod params;
mod translate;

pub(crate) use code::{
    DirectEntry, EntryRegion, JitCode, JitCtx, direct, direct_checked, direct_key, entry_region,
    run,
};

use std::sync::atomic::{AtomicU64, Ordering};

use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};

use crate::op::Op;
use crate::program::JitError;

/// An instruction-set architecture the JIT generates code for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitTarget {
    /// The machine this process runs on (x86-64 or aarch64).
    Host,
    /// x86-64 (System V), compile only unless it is the host.
    X86_64,
    /// aarch64 (AAPCS64, e.g. a BlueField-2's Arm cores), compile only unless it is the host.
    Aarch64,
}

/// Loops compiled with a second copy free of budget checks since the process started.
static VERSIONED_LOOPS: AtomicU64 = AtomicU64::new(0);

/// How many loops this process has compiled with a second copy free of budget checks, entered
/// when the budget left covers the loop's bound (for tests and fuzzing campaigns that must show
/// the versioned path is exercised; every compile counts, for any target).
pub fn versioned_loops_compiled() -> u64 {
    VERSIONED_LOOPS.load(Ordering::Relaxed)
}

/// Versioned loops whose ops are not one contiguous range.
static SPLIT_LOOPS: AtomicU64 = AtomicU64::new(0);

/// How many of [`versioned_loops_compiled`]'s loops had ops that are not one contiguous range
/// (clang's layout of a loop whose exit test comes before code that runs after it).
pub fn split_loops_versioned() -> u64 {
    SPLIT_LOOPS.load(Ordering::Relaxed)
}

/// Loads and stores whose region check a versioned loop's precheck does instead.
static HOISTED_ACCESSES: AtomicU64 = AtomicU64::new(0);

/// How many loads and stores this process has compiled without a region check of their own in a
/// versioned loop's copy (the loop's precheck checks every address they can reach).
pub fn hoisted_accesses_compiled() -> u64 {
    HOISTED_ACCESSES.load(Ordering::Relaxed)
}

/// Compiles `ops` for the host and makes the code executable.
pub(crate) fn compile_host(ops: &[Op], entry: u32) -> Result<JitCode, JitError> {
    let isa = target_isa(JitTarget::Host)?;
    let bytes = translate::compile(ops, entry, isa.as_ref())?;
    let calls_helpers = ops.iter().any(|op| {
        matches!(
            crate::fuse::first_of(*op).kind,
            crate::op::Kind::CallHelper | crate::op::Kind::Callx
        )
    });
    JitCode::new(&bytes, calls_helpers)
}

/// Compiles `ops` for `target` without running them; returns the machine-code bytes.
pub(crate) fn compile_only(ops: &[Op], entry: u32, target: JitTarget) -> Result<usize, JitError> {
    let isa = target_isa(target)?;
    Ok(translate::compile(ops, entry, isa.as_ref())?.len())
}

fn target_isa(target: JitTarget) -> Result<OwnedTargetIsa, JitError> {
    let builder = match target {
        JitTarget::Host => cranelift_native::builder().map_err(|reason| JitError::Target {
            reason: reason.to_string(),
        })?,
        JitTarget::X86_64 => lookup("x86_64-unknown-linux-gnu")?,
        JitTarget::Aarch64 => lookup("aarch64-unknown-linux-gnu")?,
    };
    let mut flags = settings::builder();
    let set = |flags: &mut settings::Builder, name: &str, value: &str| {
        flags.set(name, value).map_err(|error| JitError::Target {
            reason: format!("flag {name}={value}: {error}"),
        })
    };
    set(&mut flags, "opt_level", "speed")?;
    // Cranelift's own IR verifier: on in debug builds (tests), off where compile time counts.
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    set(&mut flags, "enable_verifier", verify)?;
    // Panics never unwind through JIT frames (the trampoline catches them).
    set(&mut flags, "unwind_info", "false")?;
    builder
        .finish(settings::Flags::new(flags))
        .map_err(|error| JitError::Target {
            reason: error.to_string(),
        })
}

fn lookup(triple: &str) -> Result<isa::Builder, JitError> {
    isa::lookup_by_name(triple).map_err(|error| JitError::Target {
        reason: format!("{triple}: {error}"),
    })
}
