//! A verified, pre-decoded program and the two ways to load one.

use crate::elf::{self, ElfError};
use crate::fuse;
use crate::helpers::Helpers;
use crate::op::Op;
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

/// How a verified program executes: the seam where a JIT plugs in.
///
/// Today there is one tier, the interpreter over pre-decoded [`Op`]s. The planned Cranelift JIT
/// (x86-64, aarch64) adds a variant holding native code compiled at load *from the same decoded
/// ops*, so it inherits the verifier's guarantees; it keeps [`Vm::run`](crate::Vm::run)'s
/// signature, the memory model (every non-stack access goes through the slot table), the
/// budget semantics and the [`Trap`](crate::Trap) values, and the conformance suite runs
/// against both.
#[derive(Debug)]
pub(crate) enum Code {
    /// Interpreted by [`crate::interp`].
    Interpreted(Box<[Op]>),
}

/// The execution tier a [`Program`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// The interpreter over pre-decoded instructions.
    Interpreter,
}

/// A verified, pre-decoded program. Immutable and `Send + Sync`: share it between worker threads
/// with `Arc`; each thread runs it on its own [`Vm`](crate::Vm).
#[derive(Debug)]
pub struct Program {
    pub(crate) code: Code,
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
}

impl Program {
    /// Verifies raw bytecode (little-endian 8-byte slots) and decodes it; execution starts at
    /// slot 0. `helpers` is the registry the program's `call imm` ids are checked against.
    pub fn from_raw<C>(bytecode: &[u8], helpers: &Helpers<C>) -> Result<Program, LoadError> {
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
        Ok(Program {
            code: Code::Interpreted(decoded.ops.into_boxed_slice()),
            slot_of: decoded.slot_of.into_boxed_slice(),
            entry: decoded.entry,
            slots: bytecode.len() / crate::opcode::SLOT_BYTES,
            constants,
            globals,
        })
    }

    /// Size of the program in 8-byte instruction slots (a `lddw` counts two), the unit of
    /// [`PROGRAM_INSN_MAX`](crate::PROGRAM_INSN_MAX).
    pub fn insn_count(&self) -> usize {
        self.slots
    }

    /// Bytes of read-only data the program carries (`.rodata*`).
    pub fn constants_len(&self) -> usize {
        self.constants.len()
    }

    /// Bytes of writable globals the program carries (`.data` + `.bss`).
    pub fn globals_len(&self) -> usize {
        self.globals.len()
    }

    /// The tier that executes this program.
    pub fn tier(&self) -> Tier {
        match self.code {
            Code::Interpreted(_) => Tier::Interpreter,
        }
    }

    /// Slot index of decoded instruction `index` (for trap reports).
    pub(crate) fn slot_of(&self, index: usize) -> usize {
        self.slot_of.get(index).map_or(index, |slot| *slot as usize)
    }
}

const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Program>();
};
