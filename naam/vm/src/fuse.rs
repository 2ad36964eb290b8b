//! Superinstructions: a peephole pass over verified, decoded ops that fuses pairs clang emits
//! back to back in hot loops, so the interpreter dispatches once and stores one intermediate
//! register less.
//!
//! The fused op replaces the *first* of the pair; the second stays in place, so a jump that
//! lands on it still executes it alone, and the fused op continues two slots on. Instruction
//! counting (by decoded-index distance) therefore stays exact, and neither instruction of a
//! fusable pair can trap, so traps are unaffected.

use crate::op::{Kind, Op};

/// Fuses every eligible pair in place.
pub(crate) fn fuse(ops: &mut [Op]) {
    for i in 1..ops.len() {
        let (first, second) = (ops[i - 1], ops[i]);
        if let Some(fused) = fuse_pair(first, second) {
            ops[i - 1] = fused;
        }
    }
}

/// The first instruction of a fused op (any other op is returned unchanged): consumers that
/// translate instruction by instruction (the JIT) see the program as the verifier decoded it.
pub(crate) fn first_of(op: Op) -> Op {
    use Kind::*;
    match op.kind {
        MovAdd64Imm | MovSub64Imm | MovMul64Imm | MovAnd64Imm | MovOr64Imm | MovXor64Imm
        | MovLsh64Imm | MovRsh64Imm | MovArsh64Imm | MovAdd64Reg | MovSub64Reg | MovMul64Reg
        | MovAnd64Reg | MovOr64Reg | MovXor64Reg => Op::new(Mov64Reg, op.dst, op.src, 0, 0),
        LshRsh64 | LshArsh64 => Op::new(Lsh64Imm, op.dst, 0, 0, op.imm),
        _ => op,
    }
}

fn fuse_pair(first: Op, second: Op) -> Option<Op> {
    if first.dst != second.dst {
        return None;
    }
    match first.kind {
        Kind::Mov64Reg => fuse_mov(first, second),
        Kind::Lsh64Imm if second.imm == first.imm => {
            let kind = match second.kind {
                Kind::Rsh64Imm => Kind::LshRsh64,
                Kind::Arsh64Imm => Kind::LshArsh64,
                _ => return None,
            };
            Some(Op::new(kind, first.dst, 0, 0, first.imm))
        }
        _ => None,
    }
}

/// `mov64 a, b` + `op64 a, imm` or `op64 a, c` (c != a: the second reads the value it overwrote).
fn fuse_mov(first: Op, second: Op) -> Option<Op> {
    use Kind::*;
    let kind = match second.kind {
        Add64Imm => MovAdd64Imm,
        Sub64Imm => MovSub64Imm,
        Mul64Imm => MovMul64Imm,
        And64Imm => MovAnd64Imm,
        Or64Imm => MovOr64Imm,
        Xor64Imm => MovXor64Imm,
        Lsh64Imm => MovLsh64Imm,
        Rsh64Imm => MovRsh64Imm,
        Arsh64Imm => MovArsh64Imm,
        _ if second.src == first.dst => return None,
        Add64Reg => MovAdd64Reg,
        Sub64Reg => MovSub64Reg,
        Mul64Reg => MovMul64Reg,
        And64Reg => MovAnd64Reg,
        Or64Reg => MovOr64Reg,
        Xor64Reg => MovXor64Reg,
        _ => return None,
    };
    Some(Op::new(
        kind,
        first.dst,
        first.src,
        i32::from(second.src),
        second.imm,
    ))
}

#[cfg(test)]
mod tests {
    use crate::program::Program;
    use crate::{Helpers, Memory, Vm, VmConfig};

    /// Seed of the differential test (`NAAM_SEED` overrides it).
    const SEED_DEFAULT: u64 = 0x5eed_f05e;
    const PROGRAMS: usize = 2_000;
    const BODY_INSNS: usize = 24;

    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn slot(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
        let (off, imm) = (off.to_le_bytes(), imm.to_le_bytes());
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

    /// A random straight-line program rich in fusable pairs, with forward jumps that may land
    /// between the halves of a pair, ending in a mix of every register into r0.
    fn random_program(rng: &mut SplitMix) -> Vec<u8> {
        const ALU64: [u8; 9] = [0x07, 0x17, 0x27, 0x57, 0x47, 0xa7, 0x67, 0x77, 0xc7];
        let mut slots = Vec::new();
        for reg in 0..10u8 {
            slots.push(slot(0xb7, reg, 0, 0, rng.next() as i32));
        }
        for i in 0..BODY_INSNS {
            let (a, b) = (rng.below(10) as u8, rng.below(10) as u8);
            let imm = if rng.below(2) == 0 {
                32
            } else {
                rng.below(64) as i32
            };
            match rng.below(6) {
                0 => slots.push(slot(0xbf, a, b, 0, 0)),
                1 => slots.push(slot(ALU64[rng.below(9) as usize], a, 0, 0, imm)),
                2 => slots.push(slot(ALU64[rng.below(6) as usize] | 0x08, a, b, 0, 0)),
                3 => {
                    let distance = rng.below((BODY_INSNS - i) as u64 + 1) as i16;
                    slots.push(slot(0x25, a, 0, distance, rng.next() as i32)); // jgt a, imm
                }
                4 => slots.extend([
                    slot(0x67, a, 0, 0, imm),
                    slot(0xc7 - 0x50 * (rng.below(2) as u8), a, 0, 0, imm),
                ]),
                _ => slots.extend([
                    slot(0xbf, a, b, 0, 0),
                    slot(ALU64[rng.below(9) as usize], a, 0, 0, imm),
                ]),
            }
        }
        for reg in 1..10u8 {
            slots.push(slot(0x27, 0, 0, 0, 31));
            slots.push(slot(0x0f, 0, reg, 0, 0));
        }
        slots.push(slot(0x95, 0, 0, 0, 0));
        slots.concat()
    }

    fn unfused(bytecode: &[u8]) -> Program {
        let helpers = Helpers::<()>::new();
        let mut program = Program::from_raw(bytecode, &helpers).expect("random program verifies");
        let decoded = crate::verifier::verify(bytecode, 0, &|_| None).expect("verifies");
        program.ops = decoded.ops.into_boxed_slice();
        program
    }

    fn run(program: &Program) -> crate::Exit {
        let mut vm = Vm::new(VmConfig::default());
        vm.run(
            program,
            &mut Memory::new(),
            &Helpers::<()>::new(),
            &mut (),
            0,
            0,
        )
        .expect("runs")
    }

    #[test]
    fn fused_programs_compute_and_count_exactly_like_unfused_ones() {
        let seed = std::env::var("NAAM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(SEED_DEFAULT);
        let mut rng = SplitMix(seed);
        let mut fused_pairs = 0;
        for index in 0..PROGRAMS {
            let bytecode = random_program(&mut rng);
            let fused = Program::from_raw(&bytecode, &Helpers::<()>::new()).expect("verifies");
            let plain = unfused(&bytecode);
            let (a, b) = (&fused.ops, &plain.ops);
            fused_pairs += a.iter().zip(b.iter()).filter(|(x, y)| x != y).count();
            for (fused_op, plain_op) in a.iter().zip(b.iter()) {
                assert_eq!(super::first_of(*fused_op), *plain_op, "NAAM_SEED={seed}");
            }
            assert_eq!(
                run(&fused),
                run(&plain),
                "program {index} differs; NAAM_SEED={seed}"
            );
        }
        assert!(
            fused_pairs > PROGRAMS,
            "only {fused_pairs} pairs fused; NAAM_SEED={seed}"
        );
    }
}
