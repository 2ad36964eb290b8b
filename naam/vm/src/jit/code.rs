//! Executable memory for compiled programs, the context block native code reads and writes, and
//! the Rust side of an invocation: entering the code, the helper trampoline, and turning the
//! code's status into an [`Exit`] or a [`Trap`].

use core::ffi::c_void;
use core::mem::MaybeUninit;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::helpers::{DirectHelper, HELPER_ARGS, Helpers, ScalarHelper};
use crate::interp::{self, CallFailure, Machine};
use crate::memory::{Memory, Region};
use crate::program::{JitError, Program};
use crate::vm::{Exit, Trap};

/// Status the native code returns in [`Outcome::word`] when it did not exit (the trap's details
/// are in [`JitCtx`]), each with [`status::TRAPPED`] set.
pub(crate) mod status {
    /// Set in every status but an exit's (whose word is the budget left, below 2^62).
    pub const TRAPPED: u64 = 1 << 63;
    /// A load failed its region check; `trap_*` are set.
    pub const READ_FAULT: u64 = 1;
    /// A store or atomic failed its region check; `trap_*` are set.
    pub const WRITE_FAULT: u64 = 2;
    /// The instruction budget ran out at a taken jump, call or exit.
    pub const BUDGET: u64 = 3;
    /// A local call would nest deeper than `CALL_DEPTH_MAX`; `trap_index` is set.
    pub const CALL_DEPTH: u64 = 4;
    /// A helper call trapped or panicked; the trampoline kept what happened.
    pub const HELPER: u64 = 5;
}

/// What a compiled program returns, in two registers (rax and rdx on x86-64, x0 and x1 on
/// aarch64: a 16-byte `repr(C)` aggregate is returned there by both C ABIs, as Cranelift returns
/// two `i64` results), so a clean exit stores nothing.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Outcome {
    /// The budget left (`JitCtx::budget` less the instructions executed) after a final `exit`,
    /// or a [`status`] code with [`status::TRAPPED`] set.
    word: u64,
    /// r0 after a final `exit` (unspecified after a trap).
    r0: u64,
}

/// Signature of a compiled program: `fn(ctx, r1, r2, first region's host address, its read
/// cache bound, its write cache bound) -> (word, r0)` (see [`EntryRegion`]).
type EntryFn = unsafe extern "C" fn(*mut JitCtx, u64, u64, *mut u8, u64, u64) -> Outcome;

/// Widest single access (`ldxdw`, `stxdw`, 64-bit atomics): a region cache entry admits an
/// access at offset `rel` when `rel < len - (WIDEST_ACCESS_BYTES - 1)`, whatever its width.
pub(crate) const WIDEST_ACCESS_BYTES: u64 = 8;

/// Signature of the helper trampoline the native code calls:
/// `fn(ctx, r1, r2, r3, r4, r5, call descriptor) -> r0` (see [`call_descriptor`]). Seven
/// arguments: the System V ABI passes six in registers, so one goes on the stack (a call site
/// with three stack arguments spent two instructions on each).
pub(crate) type TrampolineFn =
    unsafe extern "C" fn(*mut JitCtx, u64, u64, u64, u64, u64, u64) -> u64;

/// Signature of a scalar helper's direct entry ([`direct`]), which the native code calls without
/// the trampoline: `fn(ctx, r1, r2, r3, r4, r5) -> r0`, six arguments, all in registers.
pub(crate) type DirectFn = unsafe extern "C" fn(*mut JitCtx, u64, u64, u64, u64, u64) -> u64;

/// One position of a registry's direct table ([`Helpers::direct_table`]): the native code of a
/// `call imm` whose verifier hint is this position compares `key` with [`direct_key`] of its
/// id, and calls `func` when they are equal. Positions whose helper has no direct entry hold
/// [`DirectEntry::NONE`], whose key no id has.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct DirectEntry {
    /// [`direct_key`] of the helper's id, or 0.
    pub key: u64,
    /// The helper's direct entry (`Some` whenever `key` is not 0).
    pub func: Option<DirectFn>,
}

impl DirectEntry {
    /// A position with no direct entry: its key, 0, is no id's [`direct_key`].
    pub(crate) const NONE: DirectEntry = DirectEntry { key: 0, func: None };
}

/// What the direct table holds as the key of helper `id`: `id + 1`, never 0, so the table's
/// empty positions match no id.
pub(crate) const fn direct_key(id: u32) -> u64 {
    id as u64 + 1
}

/// A direct table with every position empty: what a machine's context points to before its first
/// invocation of a program that calls helpers (which points it to its registry's).
static NO_DIRECT_ENTRIES: [DirectEntry; crate::HELPERS_MAX] =
    [DirectEntry::NONE; crate::HELPERS_MAX];

/// The descriptor of a `callx`: the helper id is in [`JitCtx::helper_id`] (a full register),
/// looked up without a hint. No `call imm` descriptor equals it (their hint is at most
/// [`HELPERS_MAX`](crate::HELPERS_MAX)).
pub(crate) const CALLX_DESCRIPTOR: u64 = u64::MAX;

/// The descriptor of a `call imm` of helper `id` (its low 32 bits, which the registry looks
/// up) with the verifier's registry position `hint`: the hint in the high half, clamped to
/// [`HELPERS_MAX`](crate::HELPERS_MAX) (any position at or past it misses the registry alike,
/// and the clamp keeps the descriptor off [`CALLX_DESCRIPTOR`]), the id in the low half.
pub(crate) const fn call_descriptor(id: u64, hint: u64) -> u64 {
    let hint = if hint > crate::HELPERS_MAX as u64 {
        crate::HELPERS_MAX as u64
    } else {
        hint
    };
    (hint << 32) | (id & 0xffff_ffff)
}

/// The block of state shared between Rust and the native code. Native code addresses its fields
/// by `offset_of!`, so the layout is `repr(C)` and never generic. One per [`Vm`](crate::Vm),
/// kept between invocations: `budget` is written once, `helper_failed` (0 at entry) is put back
/// to 0 where it changes, `depth_reached` when the stack is scrubbed, `failure` and `panic`
/// (`None` at entry) are taken where they are read, and an invocation writes only the pointers
/// (`slots`, `frame_top`; for a program that calls helpers `trampoline`, `registry`, `direct`
/// and `helper_ctx`), which are dereferenced only while it runs (before and after, they may
/// dangle).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct JitCtx {
    /// The invocation's slot table, read at every checked access: the invocation's `Memory`
    /// itself (its slot table is its first field), so a helper's entry gets the `Memory` from
    /// it without another pointer.
    pub slots: *mut Region,
    /// Host address r10 stands for in frame 0.
    pub frame_top: *mut u8,
    /// The budget the code counts down from: [`VmConfig::budget_insn`], at most
    /// [`BUDGET_JIT_MAX`].
    ///
    /// [`VmConfig::budget_insn`]: crate::VmConfig::budget_insn
    pub budget: u64,
    /// Set by the trampoline when a helper trapped or panicked (the code then returns
    /// `status::HELPER`, and `trapped` puts it back to 0).
    pub helper_failed: u64,
    pub trampoline: TrampolineFn,
    /// The registry the invocation runs with (a `Helpers<C>`, for the trampoline's lookup).
    pub registry: *const c_void,
    /// The registry's direct table ([`Helpers::direct_table`]: [`HELPERS_MAX`] positions), read
    /// by `call imm`s that may call a scalar helper without the trampoline.
    ///
    /// [`HELPERS_MAX`]: crate::HELPERS_MAX
    pub direct: *const DirectEntry,
    /// The full id of the helper a call names, for the trampoline and the trap: a `callx`
    /// writes its register here before the call; a failed `call imm` writes its immediate on
    /// its (cold) fault path.
    pub helper_id: u64,
    // Outputs of a trap. Left unwritten at entry (nothing to store per invocation): the code
    // writes `trap_*` on the fault paths that report them, and `trapped` reads each only after
    // a status that says it was written.
    /// Written for `READ_FAULT`, `WRITE_FAULT`, `CALL_DEPTH` and `HELPER`.
    pub trap_index: MaybeUninit<u64>,
    /// Written for `READ_FAULT` and `WRITE_FAULT`.
    pub trap_addr: MaybeUninit<u64>,
    /// Written for `READ_FAULT` and `WRITE_FAULT`.
    pub trap_len: MaybeUninit<u64>,
    /// Read and raised by local calls. `Vm::run` takes it (puts it back to 0) when it scrubs the
    /// stack; after a program that writes no stack it is left as is, which only widens a later
    /// scrub over frames that are all zeros (and costs the common case no load or store).
    pub depth_reached: u64,
    /// The embedder's context (a `C`) helpers are called with: read by every helper entry, one
    /// load (it was a field of a per-invocation environment, two loads and six stores).
    pub helper_ctx: *mut c_void,
    /// Why a helper call failed; it becomes a trap once the code has returned, with the call's
    /// slot and id, which the code's fault path wrote into the context. Rust-only (after every
    /// field the code addresses), `None` between invocations.
    failure: Option<Failure>,
    /// A helper's panic, re-raised once the code has returned; `None` between invocations.
    panic: Option<Box<dyn Any + Send>>,
}

// SAFETY: the pointers are only dereferenced during an invocation, on the thread running it,
// which wrote them; between invocations they are inert.
unsafe impl Send for JitCtx {}

impl JitCtx {
    /// The context of a machine whose budget is `budget_insn`.
    pub(crate) fn new(budget_insn: u64) -> JitCtx {
        JitCtx {
            slots: core::ptr::null_mut(),
            frame_top: core::ptr::null_mut(),
            budget: budget_insn.min(BUDGET_JIT_MAX),
            helper_failed: 0,
            trampoline: trampoline::<()>,
            registry: core::ptr::null(),
            direct: NO_DIRECT_ENTRIES.as_ptr(),
            helper_id: 0,
            trap_index: MaybeUninit::uninit(),
            trap_addr: MaybeUninit::uninit(),
            trap_len: MaybeUninit::uninit(),
            depth_reached: 0,
            helper_ctx: core::ptr::null_mut(),
            failure: None,
            panic: None,
        }
    }
}

/// Largest budget the native code counts down from: its remaining budget is a signed 64-bit
/// count, tested for going negative. A larger budget behaves as this one, which no invocation
/// can exhaust in practice (2^62 instructions).
pub(crate) const BUDGET_JIT_MAX: u64 = 1 << 62;

/// Native code in its own mapping: written once, then read-only and executable until dropped.
#[derive(Debug)]
pub(crate) struct JitCode {
    base: *mut c_void,
    len: usize,
    /// Whether the program calls helpers (`call` of a helper, `callx`): the code of a program
    /// that does not never reads the context's `trampoline` and `env`, so its invocation builds
    /// no helper environment.
    calls_helpers: bool,
}

// SAFETY: the mapping is immutable after `new` and the code keeps no state of its own: every
// invocation brings its own `JitCtx`, stack and memory.
unsafe impl Send for JitCode {}
// SAFETY: as above.
unsafe impl Sync for JitCode {}

impl JitCode {
    /// Maps `bytes` read-write, copies them, then flips the mapping to read + execute.
    pub(crate) fn new(bytes: &[u8], calls_helpers: bool) -> Result<JitCode, JitError> {
        let len = bytes.len().max(1);
        // SAFETY: an anonymous private mapping; the result is checked before use.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(JitError::ExecutableMemory { errno: errno() });
        }
        let code = JitCode {
            base,
            len,
            calls_helpers,
        };
        // SAFETY: the mapping holds `len >= bytes.len()` writable bytes.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), base.cast::<u8>(), bytes.len()) };
        flush_instruction_cache(base, len);
        // SAFETY: `base`/`len` are the mapping made above.
        let protected = unsafe { libc::mprotect(base, len, libc::PROT_READ | libc::PROT_EXEC) };
        if protected != 0 {
            return Err(JitError::ExecutableMemory { errno: errno() });
        }
        Ok(code)
    }

    /// Bytes of machine code.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn entry(&self) -> EntryFn {
        // SAFETY: the mapping holds a function compiled with this signature at offset 0.
        unsafe { core::mem::transmute::<*mut c_void, EntryFn>(self.base) }
    }
}

impl Drop for JitCode {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are a mapping this value owns; no invocation can be running,
        // since every `run` borrows a `Program` holding an `Arc` of this code (dropped last).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(target_arch = "aarch64")]
fn flush_instruction_cache(base: *mut c_void, len: usize) {
    unsafe extern "C" {
        fn __clear_cache(start: *mut core::ffi::c_char, end: *mut core::ffi::c_char);
    }
    let start = base.cast::<core::ffi::c_char>();
    // SAFETY: the range is the mapping just written (aarch64 caches are not coherent).
    unsafe { __clear_cache(start, start.add(len)) };
}

#[cfg(not(target_arch = "aarch64"))]
fn flush_instruction_cache(_: *mut c_void, _: usize) {
    // x86-64 keeps instruction and data caches coherent.
}

/// Runs compiled code to its final `exit` or to a trap, over the same machine (stack, budget,
/// depth bookkeeping) the interpreter would use, with the machine's context `native.1` (made by
/// [`JitCtx::new`] for the machine's stack and budget). The caller installed the VM slots in
/// `mem`. Inlined into `Vm::run`: a call boundary here costs a prologue, an epilogue and the
/// argument shuffle on every invocation.
#[inline(always)]
pub(crate) fn run<C>(
    machine: Machine<'_>,
    native: (&JitCode, &mut JitCtx),
    mem: &mut Memory<'_>,
    helpers: &Helpers<C>,
    ctx: &mut C,
    (r1, r2, entry): (u64, u64, Option<EntryRegion>),
) -> Result<Exit, Trap> {
    let Machine {
        program,
        stack,
        budget,
        ..
    } = machine;
    let (code, jit_ctx) = native;
    let first = entry.unwrap_or_else(|| first_region(mem));
    let mem: *mut Memory<'_> = mem;
    // The `Memory` itself, whose first field is the slot table (`Memory::slots_of`): a helper's
    // entry reads it back as the `Memory`, with the same provenance.
    jit_ctx.slots = Memory::slots_of(mem);
    // The stack holds CALL_DEPTH_MAX + 1 frames; r10 of frame 0 is one frame in (`Vm::run`
    // installed the stack slot as frame 0 alone, the frame below this top).
    jit_ctx.frame_top = stack.wrapping_add(crate::STACK_FRAME_BYTES);
    if !code.calls_helpers {
        // No helper environment: the code never reads `trampoline` or `env`.
        return match enter(code, jit_ctx, (r1, r2, first)) {
            Ok(exit) => Ok(exit),
            // SAFETY: the native code has returned; `mem` is again only ours.
            Err(status) => Err(trapped(
                status,
                budget,
                jit_ctx,
                program,
                unsafe { &*mem },
                None,
            )),
        };
    }
    // The helpers' environment: four pointers in the context, no per-invocation block.
    jit_ctx.helper_ctx = core::ptr::from_mut(ctx).cast();
    jit_ctx.registry = core::ptr::from_ref(helpers).cast();
    jit_ctx.trampoline = trampoline::<C>;
    jit_ctx.direct = helpers.direct_table();
    match enter(code, jit_ctx, (r1, r2, first)) {
        // A helper that trapped or panicked made the code return `status::HELPER`, so the
        // context holds no failure and no panic.
        Ok(exit) => Ok(exit),
        // SAFETY: the native code has returned; `mem` is again only ours.
        Err(status) => Err(helper_env_trapped(
            status,
            budget,
            jit_ctx,
            program,
            unsafe { &*mem },
        )),
    }
}

/// A region as the code's region caches start with it: its host address and its read and write
/// bounds (the length less `WIDEST_ACCESS_BYTES - 1`, at least 0); a null address and bounds of
/// 0 start them empty (no access hits, the first one fills them from the slot table).
pub(crate) type EntryRegion = (*mut u8, u64, u64);

/// `region` as the code's caches start with it (see [`EntryRegion`]).
#[inline(always)]
pub(crate) fn entry_region(region: &Region) -> EntryRegion {
    let margin = WIDEST_ACCESS_BYTES - 1;
    (
        region.ptr,
        region.read_len.saturating_sub(margin),
        region.write_len.saturating_sub(margin),
    )
}

/// The first embedder region (slot `VM_SLOTS`, where embedders map what r1 points to), as the
/// code's region caches start with it, or empty when it is not mapped. Worked out here,
/// inlined at the embedder's call site, where the compiler often still knows the region it
/// just mapped (`Regions` keep it, for when the compiler does not).
#[inline(always)]
fn first_region(mem: &Memory<'_>) -> EntryRegion {
    match mem.slot(crate::memory::VM_SLOTS as u64) {
        Some(region) => entry_region(region),
        None => (core::ptr::null_mut(), 0, 0),
    }
}

/// Calls the code with the context `run` prepared and the arguments `(r1, r2, first region)`;
/// its exit, or the status of its trap.
#[inline(always)]
fn enter(
    code: &JitCode,
    jit_ctx: &mut JitCtx,
    args: (u64, u64, (*mut u8, u64, u64)),
) -> Result<Exit, u64> {
    let (r1, r2, (host, read_bound, write_bound)) = args;
    // SAFETY: the code was compiled from this program's verified ops with `EntryFn`'s
    // signature; `jit_ctx` outlives the call and its pointers are live for its duration, as
    // is the first region, granted by `mem` for the whole call.
    let outcome = unsafe { (code.entry())(jit_ctx, r1, r2, host, read_bound, write_bound) };
    if outcome.word & status::TRAPPED == 0 {
        return Ok(Exit {
            r0: outcome.r0,
            insn_count: jit_ctx.budget - outcome.word,
        });
    }
    Err(outcome.word & !status::TRAPPED)
}

/// A program that calls helpers trapped (cold): re-raises a helper's panic, else says where
/// (with the helper's trap, if a helper failed).
#[cold]
#[inline(never)]
fn helper_env_trapped(
    outcome: u64,
    budget: u64,
    jit_ctx: &mut JitCtx,
    program: &Program,
    mem: &Memory<'_>,
) -> Trap {
    // Both taken: the next invocation starts with neither.
    let (panic, failure) = (jit_ctx.panic.take(), jit_ctx.failure.take());
    if let Some(panic) = panic {
        // The next invocation starts with no helper failure (only a failure sets it).
        jit_ctx.helper_failed = 0;
        resume_unwind(panic);
    }
    let helper_trap = match failure {
        Some(failure) if outcome == status::HELPER => Some(failure_trap(jit_ctx, program, failure)),
        _ => None,
    };
    trapped(outcome, budget, jit_ctx, program, mem, helper_trap)
}

/// The trap of a failed helper call (cold), at the slot and with the id the code's fault path
/// wrote into the context.
#[cold]
#[inline(never)]
fn failure_trap(jit_ctx: &JitCtx, program: &Program, failure: Failure) -> Trap {
    // SAFETY: the code writes `trap_index` before returning `status::HELPER`.
    let pc = program.slot_of(unsafe { jit_ctx.trap_index.assume_init() } as usize);
    let id = jit_ctx.helper_id;
    match failure {
        Failure::Unknown => Trap::UnknownHelper { pc, id },
        Failure::Call(failure) => failure.into_trap(pc, id as u32),
    }
}

/// The invocation ended in a trap (cold): says where (`helper_trap`: a failed helper's).
#[cold]
#[inline(never)]
fn trapped(
    outcome: u64,
    budget: u64,
    jit_ctx: &mut JitCtx,
    program: &Program,
    mem: &Memory<'_>,
    helper_trap: Option<Trap>,
) -> Trap {
    // The next invocation starts with no helper failure (only a failure sets it).
    jit_ctx.helper_failed = 0;
    // SAFETY (each read below): the code wrote the field before returning this status.
    let pc = || program.slot_of(unsafe { jit_ctx.trap_index.assume_init() } as usize);
    let fault = || unsafe {
        (
            jit_ctx.trap_addr.assume_init(),
            jit_ctx.trap_len.assume_init(),
        )
    };
    match outcome {
        status::READ_FAULT => {
            let (addr, len) = fault();
            Trap::OutOfBounds {
                pc: pc(),
                addr,
                len,
            }
        }
        status::WRITE_FAULT => {
            let (addr, len) = fault();
            interp::write_fault(mem, pc(), addr, len)
        }
        status::BUDGET => Trap::BudgetExceeded { budget },
        status::CALL_DEPTH => Trap::CallDepthExceeded {
            pc: pc(),
            depth_max: crate::CALL_DEPTH_MAX,
        },
        _ => helper_trap.unwrap_or(Trap::BudgetExceeded { budget }),
    }
}

/// The embedder's context of the invocation `jit_ctx` runs.
///
/// # Safety
/// `jit_ctx` is the context `run::<C>` gave the native code, which is suspended in a helper
/// call: `helper_ctx` is the `&mut C` `run` was given, unused by anything else until the call
/// returns, and the reference does not outlive the call.
#[inline(always)]
unsafe fn helper_ctx<'c, C>(jit_ctx: *const JitCtx) -> &'c mut C {
    // SAFETY: per the contract above.
    unsafe { &mut *(*jit_ctx).helper_ctx.cast::<C>() }
}

/// The `Memory` of the invocation `jit_ctx` runs (its `slots` is the `Memory`, see
/// `Memory::slots_of`).
///
/// # Safety
/// As [`helper_ctx`]: `run` derived `slots` from its exclusive `&mut Memory`, and the native
/// code touches the memory only through it, not while it is suspended in the call.
#[inline(always)]
unsafe fn memory<'c, 'm>(jit_ctx: *const JitCtx) -> &'c mut Memory<'m> {
    // SAFETY: per the contract above.
    unsafe { &mut *(*jit_ctx).slots.cast::<Memory<'m>>() }
}

/// The registry of the invocation `jit_ctx` runs.
///
/// # Safety
/// As [`helper_ctx`]: `registry` is the `&Helpers<C>` `run::<C>` was given.
#[inline(always)]
unsafe fn registry<'c, C>(jit_ctx: *const JitCtx) -> &'c Helpers<C> {
    // SAFETY: per the contract above.
    unsafe { &*(*jit_ctx).registry.cast::<Helpers<C>>() }
}

/// Called by native code for `call imm` and `callx`. Never unwinds: a helper's panic is caught
/// and re-raised by `run` once the native code has returned.
unsafe extern "C" fn trampoline<C>(
    jit_ctx: *mut JitCtx,
    r1: u64,
    r2: u64,
    r3: u64,
    r4: u64,
    r5: u64,
    descriptor: u64,
) -> u64 {
    let called = catch_unwind(AssertUnwindSafe(|| {
        call::<C>(jit_ctx, [r1, r2, r3, r4, r5], descriptor)
    }));
    // Only the helper's value on the hot path: everything a failure needs is out of line, so
    // the trampoline keeps fewer values alive across the helper call (fewer registers saved).
    match called {
        Ok(Ok(r0)) => r0,
        failed => call_failed(jit_ctx, failed),
    }
}

/// The direct entry of scalar helper `H` (see [`DirectFn`]), called by native code for a
/// `call imm` whose hint names `H`'s position in the registry it runs with. `H` cannot fail; a
/// panic is caught and kept as the trampoline keeps it (re-raised once the code has returned).
pub(crate) unsafe extern "C" fn direct<C, H: ScalarHelper<C>>(
    jit_ctx: *mut JitCtx,
    r1: u64,
    r2: u64,
    r3: u64,
    r4: u64,
    r5: u64,
) -> u64 {
    // SAFETY: native code passes back the context `run::<C>` gave it (`direct` is the
    // registry's, a `Helpers<C>`) and is suspended in this call.
    let ctx = unsafe { helper_ctx::<C>(jit_ctx) };
    let args: [u64; HELPER_ARGS] = [r1, r2, r3, r4, r5];
    match catch_unwind(AssertUnwindSafe(|| H::call(ctx, args))) {
        Ok(r0) => r0,
        Err(panic) => call_failed(jit_ctx, Err(panic)),
    }
}

/// The direct entry of direct helper `H` (see [`DirectFn`]), called by native code as
/// [`direct`] is: checks `H`'s pointer arguments and calls it as the trampoline would
/// (`helpers::call_direct_checked`), and keeps a failure or a panic as the trampoline keeps
/// them, for the code's fault path and `run`.
pub(crate) unsafe extern "C" fn direct_checked<C, H: DirectHelper<C>>(
    jit_ctx: *mut JitCtx,
    r1: u64,
    r2: u64,
    r3: u64,
    r4: u64,
    r5: u64,
) -> u64 {
    // SAFETY (both): as in `direct`: the context `run::<C>` gave the code, suspended in this
    // call, so nothing else touches the memory now.
    let (ctx, mem) = unsafe { (helper_ctx::<C>(jit_ctx), memory(jit_ctx)) };
    let args: [u64; HELPER_ARGS] = [r1, r2, r3, r4, r5];
    let called = catch_unwind(AssertUnwindSafe(|| {
        crate::helpers::call_direct_checked::<C, H>(ctx, mem, args)
    }));
    match called {
        Ok(Ok(r0)) => r0,
        failed => call_failed(jit_ctx, failed.map(|r| r.map_err(Failure::Call))),
    }
}

/// A helper call from native code failed or panicked (cold): keeps what happened for `run`
/// and flags it for the native code (which then returns at once: one failure per invocation).
#[cold]
#[inline(never)]
fn call_failed(jit_ctx: *mut JitCtx, called: std::thread::Result<Result<u64, Failure>>) -> u64 {
    // SAFETY: as in `trampoline`, which passes its context on unchanged; the helper's borrows
    // of the embedder's context and memory have ended.
    let jit_ctx = unsafe { &mut *jit_ctx };
    match called {
        Ok(Ok(r0)) => r0,
        Ok(Err(failure)) => {
            jit_ctx.failure = Some(failure);
            jit_ctx.helper_failed = 1;
            0
        }
        Err(panic) => {
            jit_ctx.panic = Some(panic);
            jit_ctx.helper_failed = 1;
            0
        }
    }
}

/// Why a call from native code failed, before it becomes a [`Trap`].
#[derive(Debug)]
enum Failure {
    /// No helper has the id.
    Unknown,
    /// The helper's argument check or the helper itself failed.
    Call(CallFailure),
}

/// Looks the helper a call names up (`call imm`: by its id and the verifier's hint, both in
/// `descriptor`; `callx`: by the full id the code wrote into the context), checks its arguments
/// and calls it.
#[inline(always)]
fn call<C>(jit_ctx: *mut JitCtx, args: [u64; 5], descriptor: u64) -> Result<u64, Failure> {
    // SAFETY: native code passes back the context `run::<C>` gave it, suspended in this call.
    let helpers = unsafe { registry::<C>(jit_ctx) };
    let helper = if descriptor == CALLX_DESCRIPTOR {
        // SAFETY: as above; the `callx` wrote the id.
        let id = unsafe { (*jit_ctx).helper_id };
        u32::try_from(id).ok().and_then(|id| helpers.find(id))
    } else {
        helpers.lookup(descriptor as u32, (descriptor >> 32) as usize)
    };
    let Some(helper) = helper else {
        return Err(Failure::Unknown);
    };
    // SAFETY: as above: nothing else touches the context or the memory now.
    let (ctx, mem) = unsafe { (helper_ctx::<C>(jit_ctx), memory(jit_ctx)) };
    interp::call_helper_checked(helper, ctx, mem, args).map_err(Failure::Call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_descriptors_keep_id_and_hint_and_never_read_as_callx() {
        let max = crate::HELPERS_MAX as u64;
        for (id, hint) in [
            (0, 0),
            (7, 3),
            (u64::MAX, u64::MAX),
            (u64::MAX, max),
            (1 << 32, 9),
        ] {
            let descriptor = call_descriptor(id, hint);
            assert_ne!(descriptor, CALLX_DESCRIPTOR);
            assert_eq!(descriptor as u32, id as u32);
            assert_eq!(descriptor >> 32, hint.min(max));
        }
    }
}
