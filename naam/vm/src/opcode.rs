//! The raw eBPF instruction encoding of RFC 9669 §3–§5: one 64-bit slot per instruction
//! (`lddw` takes two), little-endian, `opcode:8 dst:4 src:4 off:16 imm:32`.

/// Bytes of one instruction slot.
pub const SLOT_BYTES: usize = 8;

// Instruction classes (low 3 bits of the opcode).
pub(crate) const CLASS_LD: u8 = 0x00;
pub(crate) const CLASS_LDX: u8 = 0x01;
pub(crate) const CLASS_ST: u8 = 0x02;
pub(crate) const CLASS_STX: u8 = 0x03;
pub(crate) const CLASS_ALU: u8 = 0x04;
pub(crate) const CLASS_JMP: u8 = 0x05;
pub(crate) const CLASS_JMP32: u8 = 0x06;
pub(crate) const CLASS_ALU64: u8 = 0x07;

/// Source bit of arithmetic and jump opcodes: 0 = immediate (`K`), 1 = register (`X`).
pub(crate) const SOURCE_X: u8 = 0x08;

// Arithmetic operation codes (high 4 bits of ALU / ALU64 opcodes).
pub(crate) const ALU_ADD: u8 = 0x00;
pub(crate) const ALU_SUB: u8 = 0x10;
pub(crate) const ALU_MUL: u8 = 0x20;
pub(crate) const ALU_DIV: u8 = 0x30;
pub(crate) const ALU_OR: u8 = 0x40;
pub(crate) const ALU_AND: u8 = 0x50;
pub(crate) const ALU_LSH: u8 = 0x60;
pub(crate) const ALU_RSH: u8 = 0x70;
pub(crate) const ALU_NEG: u8 = 0x80;
pub(crate) const ALU_MOD: u8 = 0x90;
pub(crate) const ALU_XOR: u8 = 0xa0;
pub(crate) const ALU_MOV: u8 = 0xb0;
pub(crate) const ALU_ARSH: u8 = 0xc0;
pub(crate) const ALU_END: u8 = 0xd0;

// Jump operation codes (high 4 bits of JMP / JMP32 opcodes).
pub(crate) const JMP_JA: u8 = 0x00;
pub(crate) const JMP_JEQ: u8 = 0x10;
pub(crate) const JMP_JGT: u8 = 0x20;
pub(crate) const JMP_JGE: u8 = 0x30;
pub(crate) const JMP_JSET: u8 = 0x40;
pub(crate) const JMP_JNE: u8 = 0x50;
pub(crate) const JMP_JSGT: u8 = 0x60;
pub(crate) const JMP_JSGE: u8 = 0x70;
pub(crate) const JMP_CALL: u8 = 0x80;
pub(crate) const JMP_EXIT: u8 = 0x90;
pub(crate) const JMP_JLT: u8 = 0xa0;
pub(crate) const JMP_JLE: u8 = 0xb0;
pub(crate) const JMP_JSLT: u8 = 0xc0;
pub(crate) const JMP_JSLE: u8 = 0xd0;

// Load/store modes (high 3 bits) and sizes (bits 3-4).
pub(crate) const MODE_IMM: u8 = 0x00;
pub(crate) const MODE_MEM: u8 = 0x60;
pub(crate) const MODE_MEMSX: u8 = 0x80;
pub(crate) const MODE_ATOMIC: u8 = 0xc0;
pub(crate) const SIZE_W: u8 = 0x00;
pub(crate) const SIZE_H: u8 = 0x08;
pub(crate) const SIZE_B: u8 = 0x10;
pub(crate) const SIZE_DW: u8 = 0x18;

/// `lddw`: the only `LD` instruction of RFC 9669 (`LD | IMM | DW`).
pub(crate) const OP_LDDW: u8 = CLASS_LD | MODE_IMM | SIZE_DW;

// `call` source values (RFC 9669 §4.3.1).
pub(crate) const CALL_SRC_HELPER: u8 = 0;
pub(crate) const CALL_SRC_LOCAL: u8 = 1;

// Atomic operations (the `imm` of `STX | ATOMIC`, RFC 9669 §5.3).
pub(crate) const ATOMIC_FETCH: i32 = 0x01;
pub(crate) const ATOMIC_ADD: i32 = 0x00;
pub(crate) const ATOMIC_OR: i32 = 0x40;
pub(crate) const ATOMIC_AND: i32 = 0x50;
pub(crate) const ATOMIC_XOR: i32 = 0xa0;
pub(crate) const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
pub(crate) const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;

/// Number of general registers r0..=r10; r10 is the read-only frame pointer.
pub(crate) const REGISTER_COUNT: u8 = 11;
/// The frame pointer register.
pub(crate) const R10: u8 = 10;

/// One raw 64-bit instruction slot, split into its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawInsn {
    pub opcode: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl RawInsn {
    /// Decodes one little-endian slot.
    pub(crate) fn from_bytes(slot: [u8; SLOT_BYTES]) -> RawInsn {
        RawInsn {
            opcode: slot[0],
            dst: slot[1] & 0x0f,
            src: slot[1] >> 4,
            off: i16::from_le_bytes([slot[2], slot[3]]),
            imm: i32::from_le_bytes([slot[4], slot[5], slot[6], slot[7]]),
        }
    }

    /// Encodes the slot back to its little-endian bytes.
    pub(crate) fn to_bytes(self) -> [u8; SLOT_BYTES] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.opcode,
            (self.src << 4) | (self.dst & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    pub(crate) fn class(self) -> u8 {
        self.opcode & 0x07
    }

    /// Bytes moved by a load/store opcode (`size` field).
    pub(crate) fn access_bytes(self) -> u8 {
        match self.opcode & 0x18 {
            SIZE_W => 4,
            SIZE_H => 2,
            SIZE_B => 1,
            _ => 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_insn_round_trips_through_bytes() {
        let insn = RawInsn {
            opcode: 0x7b,
            dst: 10,
            src: 1,
            off: -8,
            imm: -2,
        };
        assert_eq!(RawInsn::from_bytes(insn.to_bytes()), insn);
        assert_eq!(insn.to_bytes()[1], 0x1a);
    }
}
