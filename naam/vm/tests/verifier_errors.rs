//! Data-driven: what the verifier says about malformed programs, one line per program, as the
//! embedder (and a person reading a load failure) sees it. `UPDATE_EXPECT=1 cargo test` refreshes
//! the snapshot after a deliberate change.

mod common;

use common::*;
use expect_test::{Expect, expect};
use naam_vm::{Helpers, Program};

/// Loads each `(name, bytecode)` and renders `name: error` (or `name: ok`) lines.
fn check(cases: &[(&str, Vec<u8>)], expected: Expect) {
    let helpers = Helpers::<()>::new();
    let rendered: Vec<String> = cases
        .iter()
        .map(
            |(name, bytecode)| match Program::from_raw(bytecode, &helpers) {
                Ok(_) => format!("{name}: ok"),
                Err(error) => format!("{name}: {error}"),
            },
        )
        .collect();
    expected.assert_eq(&(rendered.join("\n") + "\n"));
}

#[test]
fn verifier_messages_name_the_slot_and_the_rule() {
    let [low, high] = lddw(1, u64::MAX);
    check(
        &[
            ("empty", vec![]),
            ("trailing bytes", vec![0x95, 0, 0, 0, 0, 0, 0, 0, 1]),
            ("minimal", program(&[exit()])),
            ("register 12", program(&[mov64_reg(0, 12), exit()])),
            ("write r10", program(&[add64_imm(10, 8), exit()])),
            (
                "reg operand with imm",
                program(&[insn(0x0f, 0, 1, 0, 7), exit()]),
            ),
            (
                "imm operand with src",
                program(&[insn(0x07, 0, 3, 0, 7), exit()]),
            ),
            ("sdiv offset 2", program(&[insn(0x37, 0, 0, 2, 7), exit()])),
            (
                "movsx32 into w",
                program(&[insn(0xbc, 0, 1, 32, 0), exit()]),
            ),
            ("bswap 24", program(&[insn(0xd7, 0, 0, 0, 24), exit()])),
            (
                "neg by register",
                program(&[insn(0x8f, 0, 1, 0, 0), exit()]),
            ),
            (
                "atomic sub",
                program(&[insn(0xdb, 10, 1, -8, 0x10), exit()]),
            ),
            (
                "atomic fetch into r10",
                program(&[insn(0xdb, 1, 10, 0, 0x01), exit()]),
            ),
            ("8-bit atomic", program(&[insn(0xd3, 1, 2, 0, 0), exit()])),
            (
                "ldxdw sign-extend",
                program(&[insn(0x99, 0, 1, 0, 0), exit()]),
            ),
            (
                "lddw map fd",
                program(&[insn(0x18, 1, 1, 0, 0), insn(0, 0, 0, 0, 0), exit()]),
            ),
            (
                "lddw bad half",
                program(&[low, insn(0x07, 0, 0, 0, 0), exit()]),
            ),
            ("lddw ok", program(&[low, high, exit()])),
            ("call by BTF id", program(&[insn(0x85, 0, 2, 0, 1), exit()])),
            ("exit with imm", program(&[insn(0x95, 0, 0, 0, 1)])),
            ("jmp32 call", program(&[insn(0x86, 0, 0, 0, 1), exit()])),
            ("stack below frame", program(&[stb(10, -513, 1), exit()])),
            ("stack at top", program(&[stb(10, 0, 1), exit()])),
            ("stack lowest byte", program(&[stb(10, -512, 1), exit()])),
            ("conditional last", program(&[jeq_imm(0, 0, -1)])),
            ("call last", program(&[call_local(-1)])),
        ],
        expect![[r#"
            empty: verifier: the program is empty
            trailing bytes: verifier: bytecode of 9 bytes is not a whole number of 8-byte instructions
            minimal: ok
            register 12: verifier: pc 0: register r12 does not exist
            write r10: verifier: pc 0: r10 (the frame pointer) is read-only
            reg operand with imm: verifier: pc 0: opcode 0x0f requires field imm to be zero, found 7
            imm operand with src: verifier: pc 0: opcode 0x07 requires field src to be zero, found 3
            sdiv offset 2: verifier: pc 0: opcode 0x37 does not accept offset 2
            movsx32 into w: verifier: pc 0: opcode 0xbc does not accept offset 32
            bswap 24: verifier: pc 0: opcode 0xd7 does not accept immediate 0x18
            neg by register: verifier: pc 0: invalid opcode 0x8f
            atomic sub: verifier: pc 0: opcode 0xdb does not accept immediate 0x10
            atomic fetch into r10: verifier: pc 0: r10 (the frame pointer) is read-only
            8-bit atomic: verifier: pc 0: invalid opcode 0xd3
            ldxdw sign-extend: verifier: pc 0: invalid opcode 0x99
            lddw map fd: verifier: pc 0: lddw with src 1 (a kernel pseudo-load) is not supported
            lddw bad half: verifier: pc 1: opcode 0x18 requires field opcode of the second lddw slot to be zero, found 7
            lddw ok: ok
            call by BTF id: verifier: pc 0: call with src 2 is not supported
            exit with imm: verifier: pc 0: opcode 0x95 requires field imm to be zero, found 1
            jmp32 call: verifier: pc 0: invalid opcode 0x86
            stack below frame: verifier: pc 0: 1-byte stack access at r10-513 leaves the 512-byte frame
            stack at top: verifier: pc 0: 1-byte stack access at r10+0 leaves the 512-byte frame
            stack lowest byte: ok
            conditional last: verifier: pc 0: the last instruction must be exit or an unconditional jump
            call last: verifier: pc 0: the last instruction must be exit or an unconditional jump
        "#]],
    );
}
