//! Pre-decoded instructions: what the verifier hands to the interpreter (and, later, to a JIT).
//!
//! Decoding happens once, at load. Every field the interpreter reads is already in the form it
//! needs: immediates sign- or zero-extended for their width, jump and call targets as absolute
//! indices into the decoded program (`lddw` takes one decoded slot, not two), and loads and stores
//! through `r10` with a verified constant offset turned into the unchecked `*Stack` kinds.

/// What one decoded instruction does. One variant per (operation, width, operand source), so the
/// interpreter's dispatch is a single jump table and no arm re-examines opcode bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    // ALU64, immediate operand (imm sign-extended to 64 bits) and register operand.
    Add64Imm,
    Add64Reg,
    Sub64Imm,
    Sub64Reg,
    Mul64Imm,
    Mul64Reg,
    Div64Imm,
    Div64Reg,
    SDiv64Imm,
    SDiv64Reg,
    Mod64Imm,
    Mod64Reg,
    SMod64Imm,
    SMod64Reg,
    Or64Imm,
    Or64Reg,
    And64Imm,
    And64Reg,
    Xor64Imm,
    Xor64Reg,
    Lsh64Imm,
    Lsh64Reg,
    Rsh64Imm,
    Rsh64Reg,
    Arsh64Imm,
    Arsh64Reg,
    Neg64,
    Mov64Imm,
    Mov64Reg,
    MovSx8To64,
    MovSx16To64,
    MovSx32To64,
    // ALU32 (imm zero-extended from its 32 bits; results zero-extended to 64 bits).
    Add32Imm,
    Add32Reg,
    Sub32Imm,
    Sub32Reg,
    Mul32Imm,
    Mul32Reg,
    Div32Imm,
    Div32Reg,
    SDiv32Imm,
    SDiv32Reg,
    Mod32Imm,
    Mod32Reg,
    SMod32Imm,
    SMod32Reg,
    Or32Imm,
    Or32Reg,
    And32Imm,
    And32Reg,
    Xor32Imm,
    Xor32Reg,
    Lsh32Imm,
    Lsh32Reg,
    Rsh32Imm,
    Rsh32Reg,
    Arsh32Imm,
    Arsh32Reg,
    Neg32,
    Mov32Imm,
    Mov32Reg,
    MovSx8To32,
    MovSx16To32,
    // Byte order: a little-endian VM turns `le` into truncation and `be`/`bswap` into swaps.
    Trunc16,
    Trunc32,
    Swap16,
    Swap32,
    Swap64,
    /// `le64`: leaves the register unchanged (still an executed instruction).
    Nop,
    /// `lddw`: `imm` holds the full 64-bit value.
    Lddw,
    // Loads and stores through a register other than r10: checked against the mapped regions.
    Ldx8,
    Ldx16,
    Ldx32,
    Ldx64,
    LdxSx8,
    LdxSx16,
    LdxSx32,
    St8,
    St16,
    St32,
    St64,
    Stx8,
    Stx16,
    Stx32,
    Stx64,
    // The same through r10 with a verified constant offset: `off` is relative to the frame top
    // and proven inside the current frame, so the interpreter skips the region check.
    LdxStack8,
    LdxStack16,
    LdxStack32,
    LdxStack64,
    LdxSxStack8,
    LdxSxStack16,
    LdxSxStack32,
    StStack8,
    StStack16,
    StStack32,
    StStack64,
    StxStack8,
    StxStack16,
    StxStack32,
    StxStack64,
    /// 32-bit atomic read-modify-write; `imm` is the RFC 9669 atomic operation code.
    Atomic32,
    /// 64-bit atomic read-modify-write; `imm` is the RFC 9669 atomic operation code.
    Atomic64,
    // Jumps: `target` is the absolute decoded index.
    Ja,
    Jeq64Imm,
    Jeq64Reg,
    Jne64Imm,
    Jne64Reg,
    Jgt64Imm,
    Jgt64Reg,
    Jge64Imm,
    Jge64Reg,
    Jlt64Imm,
    Jlt64Reg,
    Jle64Imm,
    Jle64Reg,
    Jsgt64Imm,
    Jsgt64Reg,
    Jsge64Imm,
    Jsge64Reg,
    Jslt64Imm,
    Jslt64Reg,
    Jsle64Imm,
    Jsle64Reg,
    Jset64Imm,
    Jset64Reg,
    Jeq32Imm,
    Jeq32Reg,
    Jne32Imm,
    Jne32Reg,
    Jgt32Imm,
    Jgt32Reg,
    Jge32Imm,
    Jge32Reg,
    Jlt32Imm,
    Jlt32Reg,
    Jle32Imm,
    Jle32Reg,
    Jsgt32Imm,
    Jsgt32Reg,
    Jsge32Imm,
    Jsge32Reg,
    Jslt32Imm,
    Jslt32Reg,
    Jsle32Imm,
    Jsle32Reg,
    Jset32Imm,
    Jset32Reg,
    // Superinstructions (see `fuse`): `mov64 dst, src` followed by an ALU64 instruction on
    // `dst`; `imm` is the second instruction's immediate, `target` its source register. They
    // execute both instructions and continue two slots on, where the second still stands for
    // jumps that land on it.
    MovAdd64Imm,
    MovSub64Imm,
    MovMul64Imm,
    MovAnd64Imm,
    MovOr64Imm,
    MovXor64Imm,
    MovLsh64Imm,
    MovRsh64Imm,
    MovArsh64Imm,
    MovAdd64Reg,
    MovSub64Reg,
    MovMul64Reg,
    MovAnd64Reg,
    MovOr64Reg,
    MovXor64Reg,
    /// `lsh64 dst, k; rsh64 dst, k`: zero-extends the low `64 - k` bits (`imm` = k).
    LshRsh64,
    /// `lsh64 dst, k; arsh64 dst, k`: sign-extends the low `64 - k` bits (`imm` = k).
    LshArsh64,
    /// Helper call: `imm` is the helper id, `target` the index the load-time registry gave it.
    CallHelper,
    /// BPF-to-BPF call: `target` is the callee's decoded index.
    CallLocal,
    /// `callx dst`: the helper id is in register `dst`.
    Callx,
    Exit,
}

/// One pre-decoded instruction (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Op {
    pub kind: Kind,
    /// Destination register (0..=10).
    pub dst: u8,
    /// Source register (0..=10).
    pub src: u8,
    /// Memory offset (loads, stores, atomics) or jump/call target or helper registry index.
    pub target: i32,
    /// Immediate, already extended for the instruction's width.
    pub imm: u64,
}

impl Op {
    pub(crate) fn new(kind: Kind, dst: u8, src: u8, target: i32, imm: u64) -> Op {
        Op {
            kind,
            dst,
            src,
            target,
            imm,
        }
    }

    /// True when execution never continues at the next instruction (the verifier forbids such
    /// an instruction to be missing at the end of the program).
    pub(crate) fn never_falls_through(self) -> bool {
        matches!(self.kind, Kind::Ja | Kind::Exit)
    }
}

const _: () = assert!(
    core::mem::size_of::<Op>() == 16,
    "decoded instructions stay 16 bytes"
);
