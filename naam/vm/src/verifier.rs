//! The verifier: run once at load, it checks every instruction slot and decodes the program into
//! [`Op`]s in the same pass. What it proves is listed in the crate docs ("Verifier").

use crate::op::{Kind, Op};
use crate::opcode::*;
use crate::{PROGRAM_INSN_MAX, STACK_FRAME_BYTES};

/// Why a program was rejected at load. `pc` is always the index of the offending 8-byte slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The program has no instructions.
    #[error("the program is empty")]
    Empty,
    /// The bytecode length is not a multiple of the 8-byte slot.
    #[error("bytecode of {len_bytes} bytes is not a whole number of 8-byte instructions")]
    TrailingBytes {
        /// Length of the bytecode in bytes.
        len_bytes: usize,
    },
    /// The program has more slots than [`PROGRAM_INSN_MAX`].
    #[error("program of {slots} instruction slots exceeds the limit of {max}")]
    TooLarge {
        /// Slots in the program.
        slots: usize,
        /// [`PROGRAM_INSN_MAX`].
        max: usize,
    },
    /// The opcode byte is not an RFC 9669 instruction this VM supports.
    #[error("pc {pc}: invalid opcode {opcode:#04x}")]
    InvalidOpcode {
        /// Slot index.
        pc: usize,
        /// The opcode byte.
        opcode: u8,
    },
    /// A field that must be zero for this opcode is not.
    #[error("pc {pc}: opcode {opcode:#04x} requires field {field} to be zero, found {value}")]
    NonZeroField {
        /// Slot index.
        pc: usize,
        /// The opcode byte.
        opcode: u8,
        /// `dst`, `src`, `off` or `imm`.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// The immediate is not one of the values the opcode allows (byte-swap width, atomic op).
    #[error("pc {pc}: opcode {opcode:#04x} does not accept immediate {imm:#x}")]
    InvalidImmediate {
        /// Slot index.
        pc: usize,
        /// The opcode byte.
        opcode: u8,
        /// The immediate found.
        imm: i32,
    },
    /// The offset is not one of the values the opcode allows (signed div/mod, `movsx` width).
    #[error("pc {pc}: opcode {opcode:#04x} does not accept offset {off}")]
    InvalidOffset {
        /// Slot index.
        pc: usize,
        /// The opcode byte.
        opcode: u8,
        /// The offset found.
        off: i16,
    },
    /// A register number above r10.
    #[error("pc {pc}: register r{reg} does not exist")]
    InvalidRegister {
        /// Slot index.
        pc: usize,
        /// The register number.
        reg: u8,
    },
    /// The instruction writes r10, the read-only frame pointer.
    #[error("pc {pc}: r10 (the frame pointer) is read-only")]
    WritesFramePointer {
        /// Slot index.
        pc: usize,
    },
    /// A jump lands outside the program.
    #[error("pc {pc}: jump target {target} is outside the program")]
    JumpOutOfRange {
        /// Slot index of the jump.
        pc: usize,
        /// Slot index it would land on.
        target: i64,
    },
    /// A jump or call lands on the second slot of a `lddw`.
    #[error("pc {pc}: jump target {target} is the second half of a lddw")]
    JumpIntoLddw {
        /// Slot index of the jump or call.
        pc: usize,
        /// Slot index it would land on.
        target: usize,
    },
    /// A local call lands outside the program.
    #[error("pc {pc}: call target {target} is outside the program")]
    CallOutOfRange {
        /// Slot index of the call.
        pc: usize,
        /// Slot index it would call.
        target: i64,
    },
    /// A `lddw` in the last slot has no second half.
    #[error("pc {pc}: lddw is missing its second slot")]
    IncompleteLddw {
        /// Slot index of the `lddw`.
        pc: usize,
    },
    /// A `lddw` with a pseudo source (map fd, map value, BTF id...): there are no maps here.
    #[error("pc {pc}: lddw with src {src} (a kernel pseudo-load) is not supported")]
    UnsupportedLddw {
        /// Slot index.
        pc: usize,
        /// The `src` field.
        src: u8,
    },
    /// A `call` form this VM does not implement (helper by BTF id).
    #[error("pc {pc}: call with src {src} is not supported")]
    UnsupportedCall {
        /// Slot index.
        pc: usize,
        /// The `src` field.
        src: u8,
    },
    /// A `call imm` names a helper id the registry does not hold.
    #[error("pc {pc}: call to unknown helper {id}")]
    UnknownHelper {
        /// Slot index.
        pc: usize,
        /// The helper id.
        id: u32,
    },
    /// A constant-offset access through r10 leaves the current stack frame.
    #[error("pc {pc}: {len}-byte stack access at r10{off:+} leaves the {frame}-byte frame")]
    StackOutOfBounds {
        /// Slot index.
        pc: usize,
        /// Offset from r10.
        off: i16,
        /// Bytes accessed.
        len: u8,
        /// [`STACK_FRAME_BYTES`].
        frame: usize,
    },
    /// The last instruction could continue past the end of the program.
    #[error("pc {pc}: the last instruction must be exit or an unconditional jump")]
    FallsOffEnd {
        /// Slot index of the last instruction.
        pc: usize,
    },
    /// The entry point (ELF symbol) is not an instruction of the program.
    #[error("entry point {entry} is not the start of an instruction")]
    BadEntry {
        /// Slot index of the entry.
        entry: usize,
    },
}

/// The verified, decoded program.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub ops: Vec<Op>,
    /// Slot index of every decoded instruction (for trap and error reports).
    pub slot_of: Vec<u32>,
    /// Decoded index of the entry point.
    pub entry: u32,
}

/// No decoded index: the slot is the second half of a `lddw`.
const LDDW_HALF: u32 = u32::MAX;

/// Verifies `bytecode` and decodes it; execution starts at slot `entry_slot`.
/// `helper_index` maps a helper id to its position in the registry, `None` when unknown.
pub(crate) fn verify(
    bytecode: &[u8],
    entry_slot: usize,
    helper_index: &dyn Fn(u32) -> Option<usize>,
) -> Result<Decoded, VerifyError> {
    let raw = split_slots(bytecode)?;
    let index_of_slot = index_slots(&raw)?;
    let decoder = Decoder {
        raw: &raw,
        index_of_slot: &index_of_slot,
        helper_index,
    };
    let mut ops = Vec::with_capacity(raw.len());
    let mut slot_of = Vec::with_capacity(raw.len());
    for (pc, insn) in raw.iter().enumerate() {
        if index_of_slot[pc] == LDDW_HALF {
            continue;
        }
        ops.push(decoder.decode(pc, *insn)?);
        slot_of.push(pc as u32);
    }
    if let (Some(last), Some(pc)) = (ops.last(), slot_of.last())
        && !last.never_falls_through()
    {
        return Err(VerifyError::FallsOffEnd { pc: *pc as usize });
    }
    let entry = match index_of_slot.get(entry_slot) {
        Some(&index) if index != LDDW_HALF => index,
        _ => return Err(VerifyError::BadEntry { entry: entry_slot }),
    };
    Ok(Decoded {
        ops,
        slot_of,
        entry,
    })
}

fn split_slots(bytecode: &[u8]) -> Result<Vec<RawInsn>, VerifyError> {
    if bytecode.is_empty() {
        return Err(VerifyError::Empty);
    }
    if !bytecode.len().is_multiple_of(SLOT_BYTES) {
        return Err(VerifyError::TrailingBytes {
            len_bytes: bytecode.len(),
        });
    }
    let slots = bytecode.len() / SLOT_BYTES;
    if slots > PROGRAM_INSN_MAX {
        return Err(VerifyError::TooLarge {
            slots,
            max: PROGRAM_INSN_MAX,
        });
    }
    Ok(bytecode
        .chunks_exact(SLOT_BYTES)
        .map(|chunk| {
            let mut slot = [0u8; SLOT_BYTES];
            slot.copy_from_slice(chunk);
            RawInsn::from_bytes(slot)
        })
        .collect())
}

/// Decoded index of every slot, [`LDDW_HALF`] for second halves of `lddw`; checks that every
/// `lddw` is complete and that its second slot is a plain carrier of the high 32 bits.
fn index_slots(raw: &[RawInsn]) -> Result<Vec<u32>, VerifyError> {
    let mut index_of_slot = vec![0u32; raw.len()];
    let mut next_index = 0u32;
    let mut pc = 0;
    while pc < raw.len() {
        index_of_slot[pc] = next_index;
        next_index += 1;
        if raw[pc].opcode == OP_LDDW {
            let half = raw.get(pc + 1).ok_or(VerifyError::IncompleteLddw { pc })?;
            check_lddw_half(pc + 1, *half)?;
            index_of_slot[pc + 1] = LDDW_HALF;
            pc += 1;
        }
        pc += 1;
    }
    Ok(index_of_slot)
}

fn check_lddw_half(pc: usize, half: RawInsn) -> Result<(), VerifyError> {
    let zero = |field: &'static str, value: i64| {
        if value == 0 {
            Ok(())
        } else {
            Err(VerifyError::NonZeroField {
                pc,
                opcode: OP_LDDW,
                field,
                value,
            })
        }
    };
    zero("opcode of the second lddw slot", i64::from(half.opcode))?;
    zero("dst", i64::from(half.dst))?;
    zero("src", i64::from(half.src))?;
    zero("off", i64::from(half.off))
}

struct Decoder<'a> {
    raw: &'a [RawInsn],
    index_of_slot: &'a [u32],
    helper_index: &'a dyn Fn(u32) -> Option<usize>,
}

/// Operand source of arithmetic and jumps.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Imm,
    Reg,
}

impl Decoder<'_> {
    fn decode(&self, pc: usize, insn: RawInsn) -> Result<Op, VerifyError> {
        match insn.class() {
            CLASS_LD => self.decode_lddw(pc, insn),
            CLASS_LDX => decode_ldx(pc, insn),
            CLASS_ST => decode_st(pc, insn),
            CLASS_STX => decode_stx(pc, insn),
            CLASS_ALU => decode_alu(pc, insn, false),
            CLASS_ALU64 => decode_alu(pc, insn, true),
            CLASS_JMP => self.decode_jmp(pc, insn, true),
            CLASS_JMP32 => self.decode_jmp(pc, insn, false),
            _ => Err(VerifyError::InvalidOpcode {
                pc,
                opcode: insn.opcode,
            }),
        }
    }

    fn decode_lddw(&self, pc: usize, insn: RawInsn) -> Result<Op, VerifyError> {
        if insn.opcode != OP_LDDW {
            return Err(VerifyError::InvalidOpcode {
                pc,
                opcode: insn.opcode,
            });
        }
        if insn.src != 0 {
            return Err(VerifyError::UnsupportedLddw { pc, src: insn.src });
        }
        require_zero(pc, insn, "off", insn.off.into())?;
        let dst = writable(pc, insn.dst)?;
        // `index_slots` proved the second half exists.
        let high = self.raw.get(pc + 1).map_or(0, |half| half.imm as u32);
        let value = u64::from(insn.imm as u32) | (u64::from(high) << 32);
        Ok(Op::new(Kind::Lddw, dst, 0, 0, value))
    }

    fn decode_jmp(&self, pc: usize, insn: RawInsn, wide: bool) -> Result<Op, VerifyError> {
        let operation = insn.opcode & 0xf0;
        let source = if insn.opcode & SOURCE_X != 0 {
            Source::Reg
        } else {
            Source::Imm
        };
        match operation {
            JMP_JA => self.decode_ja(pc, insn, wide, source),
            JMP_CALL if wide => self.decode_call(pc, insn, source),
            JMP_EXIT if wide && source == Source::Imm => {
                require_zero(pc, insn, "dst", insn.dst.into())?;
                require_zero(pc, insn, "src", insn.src.into())?;
                require_zero(pc, insn, "off", insn.off.into())?;
                require_zero(pc, insn, "imm", insn.imm.into())?;
                Ok(Op::new(Kind::Exit, 0, 0, 0, 0))
            }
            _ => {
                let kind =
                    jump_kind(operation, wide, source).ok_or(VerifyError::InvalidOpcode {
                        pc,
                        opcode: insn.opcode,
                    })?;
                let dst = register(pc, insn.dst)?;
                let src = operand(pc, insn, source)?;
                let target = self.jump_target(pc, i64::from(insn.off))?;
                let imm = if wide {
                    insn.imm as i64 as u64
                } else {
                    u64::from(insn.imm as u32)
                };
                Ok(Op::new(kind, dst, src, target, imm))
            }
        }
    }

    fn decode_ja(
        &self,
        pc: usize,
        insn: RawInsn,
        wide: bool,
        source: Source,
    ) -> Result<Op, VerifyError> {
        if source == Source::Reg {
            return Err(VerifyError::InvalidOpcode {
                pc,
                opcode: insn.opcode,
            });
        }
        require_zero(pc, insn, "dst", insn.dst.into())?;
        require_zero(pc, insn, "src", insn.src.into())?;
        // `ja` takes its offset from `off`; `gotol` (JMP32 | JA) from `imm`.
        let distance = if wide {
            require_zero(pc, insn, "imm", insn.imm.into())?;
            i64::from(insn.off)
        } else {
            require_zero(pc, insn, "off", insn.off.into())?;
            i64::from(insn.imm)
        };
        let target = self.jump_target(pc, distance)?;
        Ok(Op::new(Kind::Ja, 0, 0, target, 0))
    }

    fn decode_call(&self, pc: usize, insn: RawInsn, source: Source) -> Result<Op, VerifyError> {
        require_zero(pc, insn, "off", insn.off.into())?;
        if source == Source::Reg {
            // callx: the helper id is in `dst` (the encoding of the conformance suite).
            require_zero(pc, insn, "src", insn.src.into())?;
            require_zero(pc, insn, "imm", insn.imm.into())?;
            let reg = register(pc, insn.dst)?;
            return Ok(Op::new(Kind::Callx, reg, 0, 0, 0));
        }
        require_zero(pc, insn, "dst", insn.dst.into())?;
        match insn.src {
            CALL_SRC_HELPER => {
                let id = insn.imm as u32;
                let index = (self.helper_index)(id).ok_or(VerifyError::UnknownHelper { pc, id })?;
                Ok(Op::new(Kind::CallHelper, 0, 0, index as i32, u64::from(id)))
            }
            CALL_SRC_LOCAL => {
                let target = pc as i64 + 1 + i64::from(insn.imm);
                let index = self
                    .slot_index(pc, target)
                    .ok_or(VerifyError::CallOutOfRange { pc, target })??;
                Ok(Op::new(Kind::CallLocal, 0, 0, index, 0))
            }
            src => Err(VerifyError::UnsupportedCall { pc, src }),
        }
    }

    fn jump_target(&self, pc: usize, distance: i64) -> Result<i32, VerifyError> {
        let target = pc as i64 + 1 + distance;
        self.slot_index(pc, target)
            .ok_or(VerifyError::JumpOutOfRange { pc, target })?
    }

    /// Decoded index of slot `target`: `None` when outside the program, an error when it is the
    /// second half of a `lddw`.
    fn slot_index(&self, pc: usize, target: i64) -> Option<Result<i32, VerifyError>> {
        let slot = usize::try_from(target).ok()?;
        let index = *self.index_of_slot.get(slot)?;
        if index == LDDW_HALF {
            return Some(Err(VerifyError::JumpIntoLddw { pc, target: slot }));
        }
        Some(Ok(index as i32))
    }
}

fn decode_alu(pc: usize, insn: RawInsn, wide: bool) -> Result<Op, VerifyError> {
    let operation = insn.opcode & 0xf0;
    let source = if insn.opcode & SOURCE_X != 0 {
        Source::Reg
    } else {
        Source::Imm
    };
    match operation {
        ALU_END => return decode_end(pc, insn, wide, source),
        ALU_NEG => return decode_neg(pc, insn, wide, source),
        _ => {}
    }
    let dst = writable(pc, insn.dst)?;
    let src = operand(pc, insn, source)?;
    let kind = alu_kind(pc, insn, operation, wide, source)?;
    let imm = if wide {
        insn.imm as i64 as u64
    } else {
        u64::from(insn.imm as u32)
    };
    Ok(Op::new(kind, dst, src, 0, imm))
}

/// The arithmetic kind for `operation`, after checking the `off` field (which selects signed
/// division and `movsx`).
fn alu_kind(
    pc: usize,
    insn: RawInsn,
    operation: u8,
    wide: bool,
    source: Source,
) -> Result<Kind, VerifyError> {
    use Kind::*;
    let bad_off = VerifyError::InvalidOffset {
        pc,
        opcode: insn.opcode,
        off: insn.off,
    };
    let signed = match (operation, insn.off) {
        (ALU_DIV | ALU_MOD, 0) => false,
        (ALU_DIV | ALU_MOD, 1) => true,
        (ALU_MOV, 8 | 16 | 32) if source == Source::Reg => {
            return match (wide, insn.off) {
                (true, 8) => Ok(MovSx8To64),
                (true, 16) => Ok(MovSx16To64),
                (true, _) => Ok(MovSx32To64),
                (false, 8) => Ok(MovSx8To32),
                (false, 16) => Ok(MovSx16To32),
                (false, _) => Err(bad_off),
            };
        }
        (_, 0) => false,
        _ => return Err(bad_off),
    };
    let imm = source == Source::Imm;
    let pick = |imm64: Kind, reg64: Kind, imm32: Kind, reg32: Kind| match (wide, imm) {
        (true, true) => imm64,
        (true, false) => reg64,
        (false, true) => imm32,
        (false, false) => reg32,
    };
    let kind = match operation {
        ALU_ADD => pick(Add64Imm, Add64Reg, Add32Imm, Add32Reg),
        ALU_SUB => pick(Sub64Imm, Sub64Reg, Sub32Imm, Sub32Reg),
        ALU_MUL => pick(Mul64Imm, Mul64Reg, Mul32Imm, Mul32Reg),
        ALU_DIV if signed => pick(SDiv64Imm, SDiv64Reg, SDiv32Imm, SDiv32Reg),
        ALU_DIV => pick(Div64Imm, Div64Reg, Div32Imm, Div32Reg),
        ALU_MOD if signed => pick(SMod64Imm, SMod64Reg, SMod32Imm, SMod32Reg),
        ALU_MOD => pick(Mod64Imm, Mod64Reg, Mod32Imm, Mod32Reg),
        ALU_OR => pick(Or64Imm, Or64Reg, Or32Imm, Or32Reg),
        ALU_AND => pick(And64Imm, And64Reg, And32Imm, And32Reg),
        ALU_XOR => pick(Xor64Imm, Xor64Reg, Xor32Imm, Xor32Reg),
        ALU_LSH => pick(Lsh64Imm, Lsh64Reg, Lsh32Imm, Lsh32Reg),
        ALU_RSH => pick(Rsh64Imm, Rsh64Reg, Rsh32Imm, Rsh32Reg),
        ALU_ARSH => pick(Arsh64Imm, Arsh64Reg, Arsh32Imm, Arsh32Reg),
        ALU_MOV => pick(Mov64Imm, Mov64Reg, Mov32Imm, Mov32Reg),
        _ => {
            return Err(VerifyError::InvalidOpcode {
                pc,
                opcode: insn.opcode,
            });
        }
    };
    Ok(kind)
}

/// `le`/`be` (ALU) and `bswap` (ALU64): the source bit selects the byte order, `imm` the width.
fn decode_end(pc: usize, insn: RawInsn, wide: bool, source: Source) -> Result<Op, VerifyError> {
    if wide && source == Source::Reg {
        return Err(VerifyError::InvalidOpcode {
            pc,
            opcode: insn.opcode,
        });
    }
    require_zero(pc, insn, "src", insn.src.into())?;
    require_zero(pc, insn, "off", insn.off.into())?;
    let dst = writable(pc, insn.dst)?;
    let to_little_endian = !wide && source == Source::Imm;
    let kind = match (to_little_endian, insn.imm) {
        (true, 16) => Kind::Trunc16,
        (true, 32) => Kind::Trunc32,
        (true, 64) => Kind::Nop,
        (false, 16) => Kind::Swap16,
        (false, 32) => Kind::Swap32,
        (false, 64) => Kind::Swap64,
        _ => {
            return Err(VerifyError::InvalidImmediate {
                pc,
                opcode: insn.opcode,
                imm: insn.imm,
            });
        }
    };
    Ok(Op::new(kind, dst, 0, 0, 0))
}

fn decode_neg(pc: usize, insn: RawInsn, wide: bool, source: Source) -> Result<Op, VerifyError> {
    if source == Source::Reg {
        return Err(VerifyError::InvalidOpcode {
            pc,
            opcode: insn.opcode,
        });
    }
    require_zero(pc, insn, "src", insn.src.into())?;
    require_zero(pc, insn, "off", insn.off.into())?;
    require_zero(pc, insn, "imm", insn.imm.into())?;
    let dst = writable(pc, insn.dst)?;
    Ok(Op::new(
        if wide { Kind::Neg64 } else { Kind::Neg32 },
        dst,
        0,
        0,
        0,
    ))
}

fn decode_ldx(pc: usize, insn: RawInsn) -> Result<Op, VerifyError> {
    use Kind::*;
    let mode = insn.opcode & 0xe0;
    let len = insn.access_bytes();
    require_zero(pc, insn, "imm", insn.imm.into())?;
    let dst = writable(pc, insn.dst)?;
    let src = register(pc, insn.src)?;
    let on_stack = src == R10;
    if on_stack {
        check_stack_access(pc, insn.off, len)?;
    }
    let kind = match (mode, len, on_stack) {
        (MODE_MEM, 1, false) => Ldx8,
        (MODE_MEM, 2, false) => Ldx16,
        (MODE_MEM, 4, false) => Ldx32,
        (MODE_MEM, 8, false) => Ldx64,
        (MODE_MEMSX, 1, false) => LdxSx8,
        (MODE_MEMSX, 2, false) => LdxSx16,
        (MODE_MEMSX, 4, false) => LdxSx32,
        (MODE_MEM, 1, true) => LdxStack8,
        (MODE_MEM, 2, true) => LdxStack16,
        (MODE_MEM, 4, true) => LdxStack32,
        (MODE_MEM, 8, true) => LdxStack64,
        (MODE_MEMSX, 1, true) => LdxSxStack8,
        (MODE_MEMSX, 2, true) => LdxSxStack16,
        (MODE_MEMSX, 4, true) => LdxSxStack32,
        _ => {
            return Err(VerifyError::InvalidOpcode {
                pc,
                opcode: insn.opcode,
            });
        }
    };
    Ok(Op::new(kind, dst, src, insn.off.into(), 0))
}

fn decode_st(pc: usize, insn: RawInsn) -> Result<Op, VerifyError> {
    use Kind::*;
    if insn.opcode & 0xe0 != MODE_MEM {
        return Err(VerifyError::InvalidOpcode {
            pc,
            opcode: insn.opcode,
        });
    }
    require_zero(pc, insn, "src", insn.src.into())?;
    let dst = register(pc, insn.dst)?;
    let len = insn.access_bytes();
    let on_stack = dst == R10;
    if on_stack {
        check_stack_access(pc, insn.off, len)?;
    }
    let kind = match (len, on_stack) {
        (1, false) => St8,
        (2, false) => St16,
        (4, false) => St32,
        (8, false) => St64,
        (1, true) => StStack8,
        (2, true) => StStack16,
        (4, true) => StStack32,
        _ => StStack64,
    };
    Ok(Op::new(
        kind,
        dst,
        0,
        insn.off.into(),
        insn.imm as i64 as u64,
    ))
}

fn decode_stx(pc: usize, insn: RawInsn) -> Result<Op, VerifyError> {
    use Kind::*;
    let mode = insn.opcode & 0xe0;
    let len = insn.access_bytes();
    let dst = register(pc, insn.dst)?;
    let src = register(pc, insn.src)?;
    let on_stack = dst == R10;
    if on_stack {
        check_stack_access(pc, insn.off, len)?;
    }
    let kind = match (mode, len, on_stack) {
        (MODE_MEM, ..) => {
            require_zero(pc, insn, "imm", insn.imm.into())?;
            match (len, on_stack) {
                (1, false) => Stx8,
                (2, false) => Stx16,
                (4, false) => Stx32,
                (8, false) => Stx64,
                (1, true) => StxStack8,
                (2, true) => StxStack16,
                (4, true) => StxStack32,
                _ => StxStack64,
            }
        }
        (MODE_ATOMIC, 4 | 8, _) => {
            check_atomic(pc, insn, src)?;
            if len == 4 { Atomic32 } else { Atomic64 }
        }
        _ => {
            return Err(VerifyError::InvalidOpcode {
                pc,
                opcode: insn.opcode,
            });
        }
    };
    Ok(Op::new(
        kind,
        dst,
        src,
        insn.off.into(),
        insn.imm as i64 as u64,
    ))
}

/// Checks the atomic operation code and that the register it writes back is not r10.
fn check_atomic(pc: usize, insn: RawInsn, src: u8) -> Result<(), VerifyError> {
    let operation = insn.imm;
    let plain = [ATOMIC_ADD, ATOMIC_OR, ATOMIC_AND, ATOMIC_XOR];
    let writes_src = match operation {
        op if plain.contains(&op) => false,
        op if plain.contains(&(op & !ATOMIC_FETCH)) => true,
        ATOMIC_XCHG => true,
        ATOMIC_CMPXCHG => false, // writes r0
        _ => {
            return Err(VerifyError::InvalidImmediate {
                pc,
                opcode: insn.opcode,
                imm: insn.imm,
            });
        }
    };
    if writes_src && src == R10 {
        return Err(VerifyError::WritesFramePointer { pc });
    }
    Ok(())
}

fn check_stack_access(pc: usize, off: i16, len: u8) -> Result<(), VerifyError> {
    let start = i64::from(off);
    let end = start + i64::from(len);
    if start < -(STACK_FRAME_BYTES as i64) || end > 0 {
        return Err(VerifyError::StackOutOfBounds {
            pc,
            off,
            len,
            frame: STACK_FRAME_BYTES,
        });
    }
    Ok(())
}

fn jump_kind(operation: u8, wide: bool, source: Source) -> Option<Kind> {
    use Kind::*;
    let imm = source == Source::Imm;
    let pick = |imm64: Kind, reg64: Kind, imm32: Kind, reg32: Kind| match (wide, imm) {
        (true, true) => imm64,
        (true, false) => reg64,
        (false, true) => imm32,
        (false, false) => reg32,
    };
    Some(match operation {
        JMP_JEQ => pick(Jeq64Imm, Jeq64Reg, Jeq32Imm, Jeq32Reg),
        JMP_JNE => pick(Jne64Imm, Jne64Reg, Jne32Imm, Jne32Reg),
        JMP_JGT => pick(Jgt64Imm, Jgt64Reg, Jgt32Imm, Jgt32Reg),
        JMP_JGE => pick(Jge64Imm, Jge64Reg, Jge32Imm, Jge32Reg),
        JMP_JLT => pick(Jlt64Imm, Jlt64Reg, Jlt32Imm, Jlt32Reg),
        JMP_JLE => pick(Jle64Imm, Jle64Reg, Jle32Imm, Jle32Reg),
        JMP_JSGT => pick(Jsgt64Imm, Jsgt64Reg, Jsgt32Imm, Jsgt32Reg),
        JMP_JSGE => pick(Jsge64Imm, Jsge64Reg, Jsge32Imm, Jsge32Reg),
        JMP_JSLT => pick(Jslt64Imm, Jslt64Reg, Jslt32Imm, Jslt32Reg),
        JMP_JSLE => pick(Jsle64Imm, Jsle64Reg, Jsle32Imm, Jsle32Reg),
        JMP_JSET => pick(Jset64Imm, Jset64Reg, Jset32Imm, Jset32Reg),
        _ => return None,
    })
}

/// The source register of an arithmetic or jump: for `X` a valid register (and `imm` zero),
/// for `K` zero.
fn operand(pc: usize, insn: RawInsn, source: Source) -> Result<u8, VerifyError> {
    match source {
        Source::Reg => {
            require_zero(pc, insn, "imm", insn.imm.into())?;
            register(pc, insn.src)
        }
        Source::Imm => {
            require_zero(pc, insn, "src", insn.src.into())?;
            Ok(0)
        }
    }
}

fn register(pc: usize, reg: u8) -> Result<u8, VerifyError> {
    if reg >= REGISTER_COUNT {
        return Err(VerifyError::InvalidRegister { pc, reg });
    }
    Ok(reg)
}

fn writable(pc: usize, reg: u8) -> Result<u8, VerifyError> {
    let reg = register(pc, reg)?;
    if reg == R10 {
        return Err(VerifyError::WritesFramePointer { pc });
    }
    Ok(reg)
}

fn require_zero(
    pc: usize,
    insn: RawInsn,
    field: &'static str,
    value: i64,
) -> Result<(), VerifyError> {
    if value != 0 {
        return Err(VerifyError::NonZeroField {
            pc,
            opcode: insn.opcode,
            field,
            value,
        });
    }
    Ok(())
}
