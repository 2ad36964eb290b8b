//! Each step sees exactly the regions granted to it: a buffer fetched for an earlier step of the
//! same message is no longer mapped when a later step runs, whether its bytes were copied into the
//! executor or lent in place, on every backend.

mod support;

use std::sync::Arc;

use naam_engine::abi;
use naam_engine::exec::{Completion, TrapClass};
use naam_engine::function::Code;
use naam_engine::wire::{Descriptors, ErrorCode, ErrorKind};
use naam_engine::*;
use support::*;

const PROBE: FunctionId = FunctionId(40);
/// Bytes of each of the first step's two accesses.
const ACCESS_BYTES: u32 = 8;

/// One eBPF instruction: opcode, registers (destination low nibble), offset, immediate.
fn insn(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes[0] = op;
    bytes[1] = dst | (src << 4);
    bytes[2..4].copy_from_slice(&off.to_le_bytes());
    bytes[4..].copy_from_slice(&imm.to_le_bytes());
    bytes
}

/// A two-step function. Step 0 (run over two fetched buffers) loads from the buffer whose
/// context entry is at `entry_offset`, saves that buffer's VM address in its state and declares
/// one read. Step 1 (run over that one read) loads from the saved address and returns done.
fn probe_program(entry_offset: usize) -> Vec<u8> {
    let (ldxw, ldxdw, stxdw, mov_reg, mov_imm) = (0x61, 0x79, 0x7b, 0xbf, 0xb7);
    let (jne_imm, call, exit) = (0x55, 0x85, 0x95);
    let ctx_off = |at: usize| at as i16;
    let program = [
        insn(mov_reg, 6, 1, 0, 0),
        insn(ldxw, 7, 6, ctx_off(abi::ctx::STEP), 0),
        insn(jne_imm, 7, 0, 13, 0),
        // Step 0.
        insn(ldxdw, 8, 6, ctx_off(entry_offset), 0),
        insn(ldxdw, 0, 8, 0, 0),
        insn(ldxdw, 9, 6, ctx_off(abi::ctx::STATE), 0),
        insn(stxdw, 9, 8, 0, 0),
        insn(mov_imm, 1, 0, 0, 8),
        insn(call, 0, 0, 0, abi::HELPER_SAVE_STATE as i32),
        insn(ldxdw, 7, 6, ctx_off(abi::ctx::ARGS), 0),
        insn(ldxdw, 1, 7, 0, 0),
        insn(mov_imm, 2, 0, 0, 0),
        insn(mov_imm, 3, 0, 0, ACCESS_BYTES as i32),
        insn(call, 0, 0, 0, abi::HELPER_READ as i32),
        insn(mov_imm, 0, 0, 0, abi::RET_NEXT as i32),
        insn(exit, 0, 0, 0, 0),
        // Step 1.
        insn(ldxdw, 9, 6, ctx_off(abi::ctx::STATE), 0),
        insn(ldxdw, 8, 9, 0, 0),
        insn(ldxdw, 0, 8, 0, 0),
        insn(mov_imm, 0, 0, 0, abi::RET_DONE as i32),
        insn(exit, 0, 0, 0, 0),
    ];
    program.concat()
}

/// The context offset of data entry `index`'s address.
fn data_entry(index: usize) -> usize {
    abi::ctx::DATA + index * abi::ctx::DATA_ENTRY_BYTES
}

/// Lends the region's bytes in place.
struct Lent<'a>(&'a [u8]);

impl AccessMemory for Lent<'_> {
    fn bytes(&self, _region: RegionId, offset: u64, len: u32) -> Option<&[u8]> {
        self.0.get(offset as usize..offset as usize + len as usize)
    }
}

/// Runs the probe whose step 1 loads from the first step's buffer `entry` on `backend`,
/// copying accesses or lending them in place; returns the message's status and steps.
fn run_probe(entry: usize, backend: Backend, in_place: bool) -> (Status, u8) {
    let mut regions = RegionTable::new(RkeySecret([7; 16]));
    let bytes = vec![0x3c_u8; 2 * ACCESS_BYTES as usize];
    let info = regions
        .register(TENANT, bytes.len() as u64, Perms::READ)
        .expect("register");
    let mut functions = FunctionTable::new().with_backend(backend);
    let program = probe_program(data_entry(entry));
    functions
        .register_ebpf(TENANT, PROBE, "probe", Code::Raw(&program))
        .expect("the probe loads");
    let config = ExecutorConfig::new(Location::Host);
    let mut exec = Executor::new(config, Arc::new(functions), Arc::new(regions)).expect("executor");
    exec.set_accesses_in_place(in_place);
    let mut descriptors = Descriptors::new();
    for offset in [0, u64::from(ACCESS_BYTES)] {
        let read = Descriptor::read(info.rkey, offset, ACCESS_BYTES);
        descriptors.push(read).expect("two accesses");
    }
    let args = info.rkey.0.to_le_bytes();
    let msg = invoke(TENANT, PROBE, 1, &args, descriptors);
    let done = run(&mut exec, &msg, &bytes);
    (done.status, done.steps)
}

fn run(exec: &mut Executor, msg: &Invoke<'_>, bytes: &[u8]) -> Completion {
    exec.submit(Nanos(0), Nanos(0), 0, msg);
    for _ in 0..100 {
        while let Some(a) = exec.poll_access() {
            let d = a.descriptor;
            let start = d.offset as usize;
            assert!(exec.complete_access(a.id, &bytes[start..start + d.len as usize]));
        }
        let mut frame = Vec::new();
        if let Some(c) = exec.poll_completion(&mut frame) {
            return c;
        }
        exec.run_with(Nanos(0), 1, &Lent(bytes));
    }
    panic!("message did not complete in 100 rounds");
}

#[test]
fn a_later_step_does_not_see_an_earlier_steps_buffers() {
    let out_of_bounds = Status::Error(ErrorCode {
        kind: ErrorKind::Trap,
        detail: TrapClass::OutOfBounds as u32,
    });
    for backend in [Backend::Interpreter, Backend::Jit] {
        for in_place in [false, true] {
            let case = format!("{backend:?}, in place: {in_place}");
            // The first buffer's address is the second step's buffer's too: mapped again.
            assert_eq!(run_probe(0, backend, in_place), (Status::Ok, 2), "{case}");
            // The second buffer was granted to the first step only: the second step traps.
            assert_eq!(
                run_probe(1, backend, in_place),
                (out_of_bounds, 2),
                "{case}"
            );
        }
    }
}
