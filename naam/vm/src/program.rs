//! A verified, pre-decoded program and the two ways to load one.

use crate::elf::{self, ElfError};
use crate::fuse;
use crate::helpers::Helpers;
use crate::jit_cache::JitCache;
use crate::op::{Kind, Op};
use crate::verifier::{self, VerifyError};

/// Largest `.rodata*` image (all read-only data sections of one ELF object, concatenated).
pub const CONSTANTS_BYTES_MAX: usize = 64 * 1024;
/// Largest `.data` + `.bss` image; each invocation starts from a fresh copy of it.
pub const GLOBALS_BYTES_MAX: usize = 16 * 1024;

/// Why a program could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The ELF object could not be turned into bytecode.
    #[error("ELF: {0}")]
    Elf(#[from] ElfError),
    /// The bytecode failed verification.
    #[error("verifier: {0}")]
    Verify(#[from] VerifyError),
}

/// The execution backend an embedder asks for when it loads a program (a manifest's
/// `backend = "interpreter" | "jit"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Backend {
    /// The interpreter over pre-decoded instructions: the reference semantics.
    #[default]
    Interpreter,
    /// Native code compiled once at load by the Cranelift JIT (x86-64, aarch64); the program
    /// runs on the interpreter instead when the JIT is not built or cannot compile it
    /// ([`Program::jit_error`] says why).
    Jit,
}

impl Backend {
    /// Every backend, in a stable order.
    pub const ALL: [Backend; 2] = [Backend::Interpreter, Backend::Jit];

    /// The name used in manifests and results.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Interpreter => "interpreter",
            Backend::Jit => "jit",
        }
    }

    /// The backend named `name` (`"interpreter"` or `"jit"`).
    pub fn from_name(name: &str) -> Option<Backend> {
        Backend::ALL
            .into_iter()
            .find(|backend| backend.name() == name)
    }
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a program asked for [`Backend::Jit`] runs on the interpreter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JitError {
    /// naam-vm was built without its `jit` feature.
    #[error("the JIT is not built (naam-vm's `jit` feature is off)")]
    NotBuilt,
    /// Cranelift has no backend for the requested machine, or refused a setting.
    #[error("no JIT target: {reason}")]
    Target {
        /// Cranelift's message.
        reason: String,
    },
    /// Cranelift could not compile the program.
    #[error("Cranelift could not compile the program: {reason}")]
    Codegen {
        /// Cranelift's message.
        reason: String,
    },
    /// The machine code needs relocations; the JIT links none (all calls go through a table).
    #[error("the compiled code needs {count} relocations; the JIT links none")]
    Relocations {
        /// Relocations Cranelift emitted.
        count: usize,
    },
    /// The operating system refused executable memory.
    #[error("executable memory refused (errno {errno})")]
    ExecutableMemory {
        /// `errno` of the failed `mmap`/`mprotect`.
        errno: i32,
    },
}

/// The execution tier a [`Program`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// The interpreter over pre-decoded instructions.
    Interpreter,
    /// Native code from the Cranelift JIT.
    Jit,
}

/// A verified, pre-decoded program. Immutable and `Send + Sync`: share it between worker threads
/// with `Arc`; each thread runs it on its own [`Vm`](crate::Vm).
#[derive(Debug)]
pub struct Program {
    /// The decoded ops (fused for the interpreter; the JIT compiles them unfused).
    pub(crate) ops: Box<[Op]>,
    /// Native code, when the program was loaded for [`Backend::Jit`] and compiled; shared with
    /// every program of equal ops and entry loaded through the same [`JitCache`].
    #[cfg(feature = "jit")]
    pub(crate) jit: Option<std::sync::Arc<crate::jit::JitCode>>,
    /// Why a [`Backend::Jit`] request runs on the interpreter.
    jit_error: Option<JitError>,
    /// Slot index of every decoded instruction, for trap reports.
    pub(crate) slot_of: Box<[u32]>,
    /// Decoded index where execution starts.
    pub(crate) entry: u32,
    /// 8-byte slots of the bytecode (a `lddw` counts two).
    slots: usize,
    /// Read-only data, visible at [`CONSTANTS_SLOT`](crate::memory::CONSTANTS_SLOT).
    pub(crate) constants: Box<[u8]>,
    /// Initial image of the writable globals, copied to the VM at every invocation.
    pub(crate) globals: Box<[u8]>,
    /// Bytes below the top of each reached frame the program can write ([`stack_write_reach`]):
    /// 0 when it never writes the stack (no scrub), the whole frame when it can write it
    /// through another register or a helper.
    pub(crate) stack_write_bytes: usize,
    /// Bytes below the top of each reached frame its r10 stores write ([`stack_r10_reach`]):
    /// what [`Vm::run`](crate::Vm::run) zeroes afterwards unless the invocation also wrote the
    /// stack another way (`Memory`'s stack mark; then whole frames).
    pub(crate) stack_r10_bytes: usize,
    /// The program has a local call, so an invocation can reach frames above frame 0 (without
    /// one, `Vm::run` scrubs frame 0 alone, a constant-size zeroing with no depth to read back).
    pub(crate) calls_local: bool,
}

impl Program {
    /// Verifies raw bytecode (little-endian 8-byte slots) and decodes it; execution starts at
    /// slot 0. `helpers` is the registry the program's `call imm` ids are checked against.
    pub fn from_raw<C>(bytecode: &[u8], helpers: &Helpers<C>) -> Result<Program, LoadError> {
        Program::from_raw_with(bytecode, helpers, Backend::Interpreter)
    }

    /// [`Program::from_raw`] for a chosen backend; [`Backend::Jit`] compiles the program now.
    pub fn from_raw_with<C>(
        bytecode: &[u8],
        helpers: &Helpers<C>,
        backend: Backend,
    ) -> Result<Program, LoadError> {
        Ok(Program::from_bytecode(bytecode, helpers)?.with_backend(backend, None))
    }

    /// [`Program::from_raw_with`], taking [`Backend::Jit`]'s native code from `cache` when a
    /// live program there has the same ops and entry (and compiling it into `cache` otherwise).
    pub fn from_raw_cached<C>(
        bytecode: &[u8],
        helpers: &Helpers<C>,
        backend: Backend,
        cache: &mut JitCache,
    ) -> Result<Program, LoadError> {
        Ok(Program::from_bytecode(bytecode, helpers)?.with_backend(backend, Some(cache)))
    }

    fn from_bytecode<C>(bytecode: &[u8], helpers: &Helpers<C>) -> Result<Program, LoadError> {
        Program::build(bytecode, 0, Box::default(), Box::default(), helpers)
    }

    /// Loads one program from an ELF object produced by `clang -target bpf`. `name` is an ELF
    /// section name (`"naam/mica_get"`) or a function symbol name (`"mica_get"`). The program's
    /// section is linked with the sections it calls into, and its `.rodata*`/`.data`/`.bss`
    /// references are resolved to the VM's constants and globals slots.
    pub fn from_elf<C>(
        object: &[u8],
        name: &str,
        helpers: &Helpers<C>,
    ) -> Result<Program, LoadError> {
        Program::from_elf_with(object, name, helpers, Backend::Interpreter)
    }

    /// [`Program::from_elf`] for a chosen backend; [`Backend::Jit`] compiles the program now.
    pub fn from_elf_with<C>(
        object: &[u8],
        name: &str,
        helpers: &Helpers<C>,
        backend: Backend,
    ) -> Result<Program, LoadError> {
        Ok(Program::from_object(object, name, helpers)?.with_backend(backend, None))
    }

    /// [`Program::from_elf_with`], taking [`Backend::Jit`]'s native code from `cache` when a
    /// live program there has the same ops and entry, whatever its constants and globals (the
    /// code reads those at run time), and compiling it into `cache` otherwise.
    pub fn from_elf_cached<C>(
        object: &[u8],
        name: &str,
        helpers: &Helpers<C>,
        backend: Backend,
        cache: &mut JitCache,
    ) -> Result<Program, LoadError> {
        Ok(Program::from_object(object, name, helpers)?.with_backend(backend, Some(cache)))
    }

    fn from_object<C>(
        object: &[u8],
        name: &str,
        helpers: &Helpers<C>,
    ) -> Result<Program, LoadError> {
        let linked = elf::link(object, name)?;
        Program::build(
            &linked.bytecode,
            linked.entry_slot,
            linked.constants,
            linked.globals,
            helpers,
        )
    }

    fn build<C>(
        bytecode: &[u8],
        entry_slot: usize,
        constants: Box<[u8]>,
        globals: Box<[u8]>,
        helpers: &Helpers<C>,
    ) -> Result<Program, LoadError> {
        let mut decoded = verifier::verify(bytecode, entry_slot, &|id| helpers.index_of(id))?;
        fuse::fuse(&mut decoded.ops);
        let stack_write_bytes = stack_write_reach(&decoded.ops);
        let stack_r10_bytes = stack_r10_reach(&decoded.ops);
        // Fusion never folds a local call into another op (`fuse::first_of`), so a scan of the
        // kinds finds every one.
        let calls_local = decoded.ops.iter().any(|op| op.kind == Kind::CallLocal);
        Ok(Program {
            ops: decoded.ops.into_boxed_slice(),
            #[cfg(feature = "jit")]
            jit: None,
            jit_error: None,
            slot_of: decoded.slot_of.into_boxed_slice(),
            entry: decoded.entry,
            slots: bytecode.len() / crate::opcode::SLOT_BYTES,
            constants,
            globals,
            stack_write_bytes,
            stack_r10_bytes,
            calls_local,
        })
    }

    /// Size of the program in 8-byte instruction slots (a `lddw` counts two), the unit of
    /// [`PROGRAM_INSN_MAX`](crate::PROGRAM_INSN_MAX).
    pub fn insn_count(&self) -> usize {
        self.slots
    }

    /// True when `other` runs exactly this program: the same decoded instructions, entry point,
    /// read-only data and initial globals (whatever the backend). Programs loaded from objects
    /// that differ in one constant are not the same code.
    pub fn same_code(&self, other: &Program) -> bool {
        self.entry == other.entry
            && self.ops == other.ops
            && self.constants == other.constants
            && self.globals == other.globals
    }

    /// Bytes of read-only data the program carries (`.rodata*`).
    pub fn constants_len(&self) -> usize {
        self.constants.len()
    }

    /// Bytes of writable globals the program carries (`.data` + `.bss`).
    pub fn globals_len(&self) -> usize {
        self.globals.len()
    }

    /// Compiles the program when `backend` is [`Backend::Jit`] (or takes its code from
    /// `cache`); keeps the interpreter (and records why) when the JIT is not built or cannot
    /// compile it.
    fn with_backend(mut self, backend: Backend, cache: Option<&mut JitCache>) -> Program {
        if backend == Backend::Jit {
            match self.compile_jit(cache) {
                Ok(()) => self.jit_error = None,
                Err(error) => self.jit_error = Some(error),
            }
        }
        self
    }

    #[cfg(feature = "jit")]
    fn compile_jit(&mut self, cache: Option<&mut JitCache>) -> Result<(), JitError> {
        let code = match cache {
            Some(cache) => cache.code_for(&self.ops, self.entry)?,
            None => std::sync::Arc::new(crate::jit::compile_host(&self.ops, self.entry)?),
        };
        self.jit = Some(code);
        Ok(())
    }

    #[cfg(not(feature = "jit"))]
    fn compile_jit(&mut self, _: Option<&mut JitCache>) -> Result<(), JitError> {
        Err(JitError::NotBuilt)
    }

    /// True when this program and `other` run the same native code (loaded through one
    /// [`JitCache`] with equal ops and entry); false when either runs on the interpreter.
    pub fn shares_jit_code(&self, other: &Program) -> bool {
        #[cfg(feature = "jit")]
        if let (Some(mine), Some(theirs)) = (&self.jit, &other.jit) {
            return std::sync::Arc::ptr_eq(mine, theirs);
        }
        let _ = other;
        false
    }

    /// Compiles the program for `target` without keeping or running the code (for checking
    /// another ISA, such as a BlueField-2's aarch64, on this machine); returns the bytes of
    /// machine code.
    #[cfg(feature = "jit")]
    pub fn compile_for(&self, target: crate::jit::JitTarget) -> Result<usize, JitError> {
        crate::jit::compile_only(&self.ops, self.entry, target)
    }

    /// The tier that executes this program.
    pub fn tier(&self) -> Tier {
        #[cfg(feature = "jit")]
        if self.jit.is_some() {
            return Tier::Jit;
        }
        Tier::Interpreter
    }

    /// Why a program loaded for [`Backend::Jit`] runs on the interpreter (`None` otherwise).
    pub fn jit_error(&self) -> Option<&JitError> {
        self.jit_error.as_ref()
    }

    /// Bytes of native code, when the program runs on the JIT.
    pub fn jit_code_bytes(&self) -> Option<usize> {
        #[cfg(feature = "jit")]
        if let Some(code) = &self.jit {
            return Some(code.len());
        }
        None
    }

    /// Slot index of decoded instruction `index` (for trap reports).
    pub(crate) fn slot_of(&self, index: usize) -> usize {
        self.slot_of.get(index).map_or(index, |slot| *slot as usize)
    }
}

/// Bytes below the top of a frame that `ops` can write, in any frame it reaches: its r10
/// stores' reach ([`stack_r10_reach`]), or the whole frame when it has a store or atomic through
/// another register or calls a helper (either can reach any live stack byte: the stack's VM
/// address is public, so a program can forge a pointer into it).
fn stack_write_reach(ops: &[Op]) -> usize {
    use crate::op::Kind::*;
    let indirect = ops.iter().map(|op| fuse::first_of(*op)).any(|op| {
        matches!(
            op.kind,
            St8 | St16
                | St32
                | St64
                | Stx8
                | Stx16
                | Stx32
                | Stx64
                | Atomic32
                | Atomic64
                | CallHelper
                | Callx
        )
    });
    if indirect {
        crate::STACK_FRAME_BYTES
    } else {
        stack_r10_reach(ops)
    }
}

/// The deepest verified constant r10 offset among the stack stores of `ops`. Writes to the
/// stack any other way are noted when they happen (both backends and `Memory::write` mark the
/// stack slot), and `Vm::run` then zeroes whole frames.
fn stack_r10_reach(ops: &[Op]) -> usize {
    use crate::op::Kind::*;
    let mut reach = 0usize;
    for op in ops.iter().map(|op| fuse::first_of(*op)) {
        if let StStack8 | StStack16 | StStack32 | StStack64 | StxStack8 | StxStack16 | StxStack32
        | StxStack64 = op.kind
        {
            // The verifier proved -STACK_FRAME_BYTES <= off < 0.
            reach = reach.max(op.target.unsigned_abs() as usize);
        }
    }
    reach.min(crate::STACK_FRAME_BYTES)
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Program>();
};
