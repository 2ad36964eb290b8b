//! Shared by the integration tests: a tiny eBPF assembler for hand-written programs and a
//! one-call runner over an input of 64-bit words.

#![allow(dead_code)] // each test binary uses its own subset

use naam_vm::{Exit, Helpers, Memory, Program, Trap, Vm, VmConfig};

/// Encodes one instruction slot (RFC 9669 §3).
pub fn insn(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let off = off.to_le_bytes();
    let imm = imm.to_le_bytes();
    [
        opcode,
        (src << 4) | dst,
        off[0],
        off[1],
        imm[0],
        imm[1],
        imm[2],
        imm[3],
    ]
}

/// Concatenates instruction slots into bytecode.
pub fn program(slots: &[[u8; 8]]) -> Vec<u8> {
    slots.concat()
}

pub fn mov64_imm(dst: u8, imm: i32) -> [u8; 8] {
    insn(0xb7, dst, 0, 0, imm)
}
pub fn mov64_reg(dst: u8, src: u8) -> [u8; 8] {
    insn(0xbf, dst, src, 0, 0)
}
pub fn add64_imm(dst: u8, imm: i32) -> [u8; 8] {
    insn(0x07, dst, 0, 0, imm)
}
pub fn add64_reg(dst: u8, src: u8) -> [u8; 8] {
    insn(0x0f, dst, src, 0, 0)
}
pub fn ldxdw(dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0x79, dst, src, off, 0)
}
pub fn ldxb(dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0x71, dst, src, off, 0)
}
pub fn stxdw(dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0x7b, dst, src, off, 0)
}
pub fn stb(dst: u8, off: i16, imm: i32) -> [u8; 8] {
    insn(0x72, dst, 0, off, imm)
}
pub fn ja(off: i16) -> [u8; 8] {
    insn(0x05, 0, 0, off, 0)
}
pub fn jeq_imm(dst: u8, imm: i32, off: i16) -> [u8; 8] {
    insn(0x15, dst, 0, off, imm)
}
pub fn call_helper(id: i32) -> [u8; 8] {
    insn(0x85, 0, 0, 0, id)
}
pub fn call_local(relative: i32) -> [u8; 8] {
    insn(0x85, 0, 1, 0, relative)
}
pub fn callx(reg: u8) -> [u8; 8] {
    insn(0x8d, reg, 0, 0, 0)
}
pub fn exit() -> [u8; 8] {
    insn(0x95, 0, 0, 0, 0)
}
/// `lddw dst, value`: two slots.
pub fn lddw(dst: u8, value: u64) -> [[u8; 8]; 2] {
    [
        insn(0x18, dst, 0, 0, value as u32 as i32),
        insn(0, 0, 0, 0, (value >> 32) as u32 as i32),
    ]
}

/// Little-endian bytes of `words`.
pub fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Runs `program` with r1 = the VM address of `input` (mapped read-only), r2 = its length.
pub fn run_on(program: &Program, input: &[u8], config: VmConfig) -> Result<Exit, Trap> {
    let helpers = Helpers::<()>::new();
    let mut mem = Memory::new();
    let addr = mem.map_read(input).expect("one region maps");
    Vm::new(config).run(
        program,
        &mut mem,
        &helpers,
        &mut (),
        addr,
        input.len() as u64,
    )
}

/// Loads raw bytecode with no helpers and runs it on `input`.
pub fn load_and_run(bytecode: &[u8], input: &[u8]) -> Result<Exit, Trap> {
    let program = Program::from_raw(bytecode, &Helpers::<()>::new()).expect("program verifies");
    run_on(&program, input, VmConfig::default())
}
