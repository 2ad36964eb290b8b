//! The reusable per-thread machine: its stack, its globals buffer, its call frames, and the
//! typed traps an invocation can end with.

use crate::helpers::{HelperError, Helpers};
use crate::interp;
use crate::memory::{
    CONSTANTS_SLOT, EntryRegion, GLOBALS_SLOT, Memory, MemoryError, Region, Regions, STACK_SLOT,
    VM_SLOTS,
};
use crate::program::{GLOBALS_BYTES_MAX, Program};
use crate::{CALL_DEPTH_MAX, STACK_FRAME_BYTES};

/// Default instruction budget of one invocation ([`VmConfig::default`]).
pub const BUDGET_INSN_DEFAULT: u64 = 1 << 20;
/// Bytes of the whole stack: one frame for the entry function and one per nested call.
pub const STACK_BYTES: usize = STACK_FRAME_BYTES * (CALL_DEPTH_MAX + 1);

/// Configuration of a [`Vm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmConfig {
    /// Most instructions one invocation may execute before it traps with
    /// [`Trap::BudgetExceeded`] (see the crate docs, "Termination").
    pub budget_insn: u64,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            budget_insn: BUDGET_INSN_DEFAULT,
        }
    }
}

/// How an invocation ended normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// r0 at the final `exit`.
    pub r0: u64,
    /// Instructions executed, exactly (a `lddw` counts one, as does each `call` and `exit`).
    pub insn_count: u64,
}

/// How an invocation ended abnormally. `pc` is the 8-byte slot index of the faulting instruction
/// in the (linked) bytecode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Trap {
    /// A load, store or atomic touched bytes outside every mapped region.
    #[error("pc {pc}: {len}-byte access at {addr:#x} is outside every mapped region")]
    OutOfBounds {
        /// Slot index.
        pc: usize,
        /// First VM address of the access.
        addr: u64,
        /// Bytes accessed.
        len: u64,
    },
    /// A store or atomic wrote to a region mapped read-only.
    #[error("pc {pc}: {len}-byte write at {addr:#x} hits a read-only region")]
    ReadOnly {
        /// Slot index.
        pc: usize,
        /// First VM address of the access.
        addr: u64,
        /// Bytes accessed.
        len: u64,
    },
    /// The invocation executed more than its instruction budget.
    #[error("instruction budget of {budget} exhausted")]
    BudgetExceeded {
        /// [`VmConfig::budget_insn`].
        budget: u64,
    },
    /// A local call would nest deeper than [`CALL_DEPTH_MAX`].
    #[error("pc {pc}: call nests deeper than {depth_max} frames")]
    CallDepthExceeded {
        /// Slot index of the call.
        pc: usize,
        /// [`CALL_DEPTH_MAX`].
        depth_max: usize,
    },
    /// A `callx` (or a run with another registry than the program was verified against) named
    /// a helper id that is not registered.
    #[error("pc {pc}: call to unknown helper {id}")]
    UnknownHelper {
        /// Slot index of the call.
        pc: usize,
        /// The helper id (a full register for `callx`).
        id: u64,
    },
    /// A pointer argument of a helper call failed its signature's memory check; the helper did
    /// not run.
    #[error("pc {pc}: argument {arg} of helper {id}: {error}")]
    HelperArgument {
        /// Slot index of the call.
        pc: usize,
        /// Helper id.
        id: u32,
        /// Argument index (0 = r1).
        arg: u8,
        /// Why the memory check failed.
        error: MemoryError,
    },
    /// A helper returned an error.
    #[error("pc {pc}: helper {id} failed: {error}")]
    Helper {
        /// Slot index of the call.
        pc: usize,
        /// Helper id.
        id: u32,
        /// The helper's error.
        error: HelperError,
    },
}

/// Saved state of a caller during a local call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Frame {
    /// Decoded index to resume at.
    pub return_index: u32,
    /// r6..=r9 of the caller.
    pub saved: [u64; 4],
}

/// A reusable machine, one per worker thread: it owns the stack and the globals buffer, so
/// [`Vm::run`] allocates nothing.
#[derive(Debug)]
pub struct Vm {
    config: VmConfig,
    /// Its length in the type, so the scrub's slicing needs no bounds check.
    pub(crate) stack: Box<[u8; STACK_BYTES]>,
    globals: Box<[u8]>,
    pub(crate) frames: [Frame; CALL_DEPTH_MAX],
    /// The native code's context, kept between invocations (see [`crate::jit::JitCtx`]).
    #[cfg(feature = "jit")]
    jit_ctx: crate::jit::JitCtx,
}

impl Vm {
    /// A machine with a zeroed stack of [`STACK_BYTES`].
    pub fn new(config: VmConfig) -> Vm {
        Vm {
            config,
            stack: Box::new([0u8; STACK_BYTES]),
            globals: vec![0u8; GLOBALS_BYTES_MAX].into_boxed_slice(),
            frames: [Frame::default(); CALL_DEPTH_MAX],
            #[cfg(feature = "jit")]
            jit_ctx: crate::jit::JitCtx::new(config.budget_insn),
        }
    }

    /// The configuration this machine runs with.
    pub fn config(&self) -> VmConfig {
        self.config
    }

    /// Runs `program` with r1 = `r1`, r2 = `r2`, r10 = top of the stack, over the regions of
    /// `mem` (plus the VM's stack and the program's data), calling `helpers` with `ctx`.
    ///
    /// Always inlined: at a call site that builds the `Memory` just before (the engine's step,
    /// a benchmark's loop), the compiler drops the VM-slot writes this overwrites, and the
    /// call's prologue, epilogue and argument shuffle go. `#[inline]` alone left it out of line
    /// in the engine's large step loop.
    #[inline(always)]
    pub fn run<C>(
        &mut self,
        program: &Program,
        mem: &mut Memory<'_>,
        helpers: &Helpers<C>,
        ctx: &mut C,
        r1: u64,
        r2: u64,
    ) -> Result<Exit, Trap> {
        self.run_over(program, mem, helpers, ctx, (r1, r2, None))
    }

    /// [`Vm::run`] over `regions`: the VM's slots are installed into them (they were never
    /// set), and emptied when it returns, as a `Memory`'s. For an embedder that maps its
    /// regions per invocation: it skips the stores with which `Memory::new` empties those
    /// slots. Always inlined, as `run`.
    #[inline(always)]
    pub fn run_regions<C>(
        &mut self,
        program: &Program,
        regions: &mut Regions<'_>,
        helpers: &Helpers<C>,
        ctx: &mut C,
        r1: u64,
        r2: u64,
    ) -> Result<Exit, Trap> {
        // `run_over` installs the VM's slots before anything reads `mem`.
        let (mem, entry) = regions.memory_to_install();
        self.run_over(program, mem, helpers, ctx, (r1, r2, entry))
    }

    /// `run`'s body, over a `Memory` whose VM slots may be unset (`run_regions`): they are
    /// installed before anything reads them.
    #[inline(always)]
    fn run_over<C>(
        &mut self,
        program: &Program,
        mem: &mut Memory<'_>,
        helpers: &Helpers<C>,
        ctx: &mut C,
        args: Args,
    ) -> Result<Exit, Trap> {
        // Most programs have no globals: one test, and the copy out of line.
        let globals_len = if program.globals.is_empty() {
            0
        } else {
            self.reset_globals(program)
        };
        let mut depth_reached = 0;
        {
            // One raw pointer per VM buffer, shared by the slot table and the interpreter.
            let stack = self.stack.as_mut_ptr();
            let globals = Region {
                ptr: self.globals.as_mut_ptr(),
                read_len: globals_len as u64,
                write_len: globals_len as u64,
            };
            let mut slots = VmSlots::install(mem, stack, globals, program);
            // Built where it is used, so the JIT's path writes only the fields it reads.
            let (frames, budget) = (&mut self.frames, self.config.budget_insn);
            let depth_reached_at = &mut depth_reached;
            let machine = once(move || interp::Machine {
                program,
                ops: &program.ops,
                stack,
                frames,
                budget,
                depth_reached: depth_reached_at,
            });
            #[cfg(feature = "jit")]
            let native = program.jit.as_deref().map(|code| (code, &mut self.jit_ctx));
            #[cfg(not(feature = "jit"))]
            let native = None;
            let result = execute(native, machine, slots.mem(), helpers, ctx, args);
            // Read before the slots are cleared (which marks the stack written again), and
            // only for a program that can write the stack (the probes' kernels cannot).
            let written = program.stack_write_bytes != 0 && slots.mem().stack_written();
            // Scrubbed before the slots are cleared (`slots` drops at the end of this block):
            // the clear is then the last write to a `Memory` the embedder may drop at once, and
            // the compiler removes it there; after an out-of-line scrub it could not.
            self.scrub_after(program, depth_reached, written);
            result
        }
    }

    /// Zeroes the stack bytes the invocation could have written, for a program that can write
    /// the stack (`scrub`): all of each reached frame if `stack_written`, else its r10 reach.
    #[inline(always)]
    fn scrub_after(&mut self, program: &Program, interp_depth: usize, stack_written: bool) {
        if program.stack_write_bytes != 0 {
            // Without a local call only frame 0 is reached. A depth the native code left in its
            // context stays there; it only widens a later scrub.
            let depth_reached = if program.calls_local {
                self.depth_reached(interp_depth)
            } else {
                0
            };
            let reach = if stack_written {
                STACK_FRAME_BYTES
            } else {
                program.stack_r10_bytes
            };
            self.scrub(depth_reached, reach);
        }
    }

    /// The deepest frame the invocation reached: the interpreter's `interp_depth`, or the one
    /// the native code keeps in its context (see `JitCtx`), which is put back to 0.
    #[inline(always)]
    fn depth_reached(&mut self, interp_depth: usize) -> usize {
        #[cfg(feature = "jit")]
        let interp_depth =
            interp_depth.max(core::mem::take(&mut self.jit_ctx.depth_reached) as usize);
        interp_depth
    }

    /// Copies the program's initial globals into the machine's buffer; returns their length.
    #[inline(never)]
    fn reset_globals(&mut self, program: &Program) -> usize {
        // The ELF loader bounds globals by GLOBALS_BYTES_MAX, the length of `self.globals`.
        let globals_len = program.globals.len().min(self.globals.len());
        self.globals[..globals_len].copy_from_slice(&program.globals[..globals_len]);
        globals_len
    }

    /// Zeroes every stack byte the invocation could have written — the top `reach` bytes of
    /// each frame it reached — so the next one (maybe another tenant's) starts from zeros: the
    /// stack is all zeros between invocations, and a program reads only zeros or what it wrote.
    ///
    /// Inlined into `run`: whole frames are one `memset`, and frame 0's top (a program that
    /// wrote the stack through r10 alone, without local calls) a few block stores, with no
    /// call frame of their own; partial tops of several frames stay out of line.
    #[inline(always)]
    fn scrub(&mut self, depth_reached: usize, reach: usize) {
        let frames = (depth_reached + 1).min(CALL_DEPTH_MAX + 1);
        if reach >= STACK_FRAME_BYTES {
            self.stack[..frames * STACK_FRAME_BYTES].fill(0);
            return;
        }
        if frames == 1 {
            zero_frame_top(self.frame(0), reach);
            return;
        }
        self.scrub_frame_tops(frames, reach);
    }

    /// Zeroes the top `reach` bytes of each of the first `frames` frames.
    #[inline(never)]
    fn scrub_frame_tops(&mut self, frames: usize, reach: usize) {
        for frame in 0..frames {
            zero_frame_top(self.frame(frame), reach);
        }
    }

    /// Frame `frame` of the stack (frame 0 at the lowest addresses, as r10 starts at its top).
    #[inline(always)]
    fn frame(&mut self, frame: usize) -> &mut [u8; STACK_FRAME_BYTES] {
        let frames = self.stack.as_chunks_mut::<STACK_FRAME_BYTES>().0;
        let last = frames.len() - 1;
        &mut frames[frame.min(last)]
    }
}

/// The constant sizes a frame top's scrub rounds up to: B-tree lookup's r10 stores reach 64
/// bytes, MICA GET's 120.
const SCRUB_TOP_SMALL_BYTES: usize = 64;
const SCRUB_TOP_LARGE_BYTES: usize = 128;

/// Zeroes at least the top `reach` bytes of `frame`. Up to 128 bytes (the reach of a typical
/// program's r10 spills) the size is rounded up to a constant, so the zeroing is a few inline
/// 16-byte stores instead of a `memset` call (which costs more than the stores for so few
/// bytes); the bytes below `reach` are zeros already, as the whole stack is between
/// invocations.
#[inline(always)]
fn zero_frame_top(frame: &mut [u8; STACK_FRAME_BYTES], reach: usize) {
    if reach <= SCRUB_TOP_SMALL_BYTES {
        zero_top::<SCRUB_TOP_SMALL_BYTES>(frame);
    } else if reach <= SCRUB_TOP_LARGE_BYTES {
        zero_top::<SCRUB_TOP_LARGE_BYTES>(frame);
    } else {
        frame[STACK_FRAME_BYTES - reach.min(STACK_FRAME_BYTES)..].fill(0);
    }
}

/// Zeroes the top `N` bytes of `frame` (a constant size).
#[inline(always)]
fn zero_top<const N: usize>(frame: &mut [u8; STACK_FRAME_BYTES]) {
    const { assert!(N <= STACK_FRAME_BYTES) };
    frame[STACK_FRAME_BYTES - N..].fill(0);
}

/// Types `build` as the `FnOnce` it is (it hands out its captured `&mut` borrows).
#[inline(always)]
fn once<'r>(build: impl FnOnce() -> interp::Machine<'r>) -> impl FnOnce() -> interp::Machine<'r> {
    build
}

/// The program's native code and the machine's context for it (with the `jit` feature).
#[cfg(feature = "jit")]
type Native<'r> = Option<(&'r crate::jit::JitCode, &'r mut crate::jit::JitCtx)>;
/// Without the `jit` feature, a program has no native code.
#[cfg(not(feature = "jit"))]
type Native<'r> = Option<(core::convert::Infallible, &'r ())>;

/// Runs the machine's program on its native code when it has some, else on the interpreter.
#[inline(always)]
fn execute<'r, C>(
    native: Native<'_>,
    machine: impl FnOnce() -> interp::Machine<'r>,
    mem: &mut Memory<'_>,
    helpers: &Helpers<C>,
    ctx: &mut C,
    args: Args,
) -> Result<Exit, Trap> {
    #[cfg(feature = "jit")]
    if let Some(native) = native {
        return crate::jit::run(machine(), native, mem, helpers, ctx, args);
    }
    #[cfg(not(feature = "jit"))]
    let _ = native;
    let (r1, r2, _) = args;
    interp::run(machine(), mem, helpers, ctx, r1, r2)
}

/// An invocation's r1 and r2, and the first embedder region as the JIT's caches start with it
/// when the embedder's [`Regions`] kept it (else the JIT's entry reads it from the slot table).
type Args = (u64, u64, Option<EntryRegion>);

/// Installs the VM's slots (stack, constants, globals) into a [`Memory`] and removes them on
/// drop, even if a helper panics, so no pointer to VM-owned memory outlives `Vm::run`.
struct VmSlots<'m, 'a> {
    mem: &'m mut Memory<'a>,
}

impl<'m, 'a> VmSlots<'m, 'a> {
    #[inline(always)]
    fn install(
        mem: &'m mut Memory<'a>,
        stack: *mut u8,
        globals: Region,
        program: &Program,
    ) -> Self {
        let frame = STACK_FRAME_BYTES as u64;
        let stack = Region {
            ptr: stack,
            read_len: frame,
            write_len: frame,
        };
        let constants_len = program.constants.len() as u64;
        let constants = Region {
            ptr: program.constants.as_ptr().cast_mut(),
            read_len: constants_len,
            write_len: 0,
        };
        const {
            assert!(STACK_SLOT == 0 && CONSTANTS_SLOT == 1 && GLOBALS_SLOT == 2 && VM_SLOTS == 3);
        }
        mem.install_vm_slots([stack, constants, globals]);
        VmSlots { mem }
    }

    fn mem(&mut self) -> &mut Memory<'a> {
        self.mem
    }
}

impl Drop for VmSlots<'_, '_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.mem.clear_vm_slots();
    }
}

const _: () = {
    const fn assert_send<T: Send>() {}
    assert_send::<Vm>(); // one per worker thread, moved there at start-up
};
