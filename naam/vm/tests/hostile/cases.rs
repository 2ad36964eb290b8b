//! Hostile programs, one test per class: each is rejected at load or trapped at run time with
//! the exact typed error, and none can touch memory it was not granted. Compiled twice: by
//! `tests/hostile.rs` for the interpreter and by `tests/hostile_jit.rs` for the JIT (`BACKEND`).

use crate::BACKEND;
use crate::common::*;
use naam_vm::memory::{GLOBALS_SLOT, STACK_SLOT, VM_SLOTS, slot_base};
use naam_vm::{
    ArgKind, Backend, DirectHelper, Exit, Helper, HelperError, Helpers, LoadError, Memory,
    MemoryError, PROGRAM_INSN_MAX, Program, Regions, STACK_FRAME_BYTES, ScalarHelper, Signature,
    Tier, Trap, VerifyError, Vm, VmConfig,
};

/// VM address of the first region a test maps.
const INPUT: u64 = slot_base(VM_SLOTS);

/// Loads `bytecode` for [`BACKEND`]; a program that loads runs on that backend's tier.
fn load<C>(bytecode: &[u8], helpers: &Helpers<C>) -> Result<Program, LoadError> {
    let program = Program::from_raw_with(bytecode, helpers, BACKEND)?;
    let expected = match BACKEND {
        Backend::Jit => Tier::Jit,
        Backend::Interpreter => Tier::Interpreter,
    };
    assert_eq!(program.tier(), expected, "{:?}", program.jit_error());
    Ok(program)
}

/// Loads raw bytecode for [`BACKEND`] with no helpers and runs it on `input`.
fn load_and_run(bytecode: &[u8], input: &[u8]) -> Result<Exit, Trap> {
    let program = load(bytecode, &Helpers::<()>::new()).expect("program verifies");
    run_on(&program, input, VmConfig::default())
}

fn verify_error(bytecode: &[u8]) -> VerifyError {
    match load(bytecode, &Helpers::<()>::new()) {
        Err(LoadError::Verify(error)) => error,
        other => panic!("expected a verifier error, got {other:?}"),
    }
}

fn trap(bytecode: &[u8], input: &[u8]) -> Trap {
    load_and_run(bytecode, input).expect_err("the program must trap")
}

#[test]
fn out_of_bounds_load_traps() {
    let input = [7u8; 16];
    let bytecode = program(&[ldxdw(0, 1, 9), exit()]);
    assert_eq!(
        trap(&bytecode, &input),
        Trap::OutOfBounds {
            pc: 0,
            addr: INPUT + 9,
            len: 8
        }
    );
    let in_bounds = program(&[ldxdw(0, 1, 8), exit()]);
    assert_eq!(
        load_and_run(&in_bounds, &input).unwrap().r0,
        u64::from_le_bytes([7; 8])
    );
}

#[test]
fn out_of_bounds_store_traps_and_read_only_regions_refuse_writes() {
    let mut buffer = [0u8; 8];
    let helpers = Helpers::<()>::new();
    let store_past_end = program(&[stb(1, 8, 1), exit()]);
    let program_oob = load(&store_past_end, &helpers).unwrap();
    let mut mem = Memory::new();
    let addr = mem.map_write(&mut buffer).unwrap();
    let result =
        Vm::new(VmConfig::default()).run(&program_oob, &mut mem, &helpers, &mut (), addr, 8);
    assert_eq!(
        result,
        Err(Trap::OutOfBounds {
            pc: 0,
            addr: addr + 8,
            len: 1
        })
    );
    assert_eq!(buffer, [0u8; 8], "nothing was written");

    let store_first = program(&[stb(1, 0, 1), exit()]);
    assert_eq!(
        trap(&store_first, &[0u8; 8]),
        Trap::ReadOnly {
            pc: 0,
            addr: INPUT,
            len: 1
        }
    );
}

#[test]
fn pointer_arithmetic_escaping_a_region_traps() {
    let input = [1u8; 32];
    // Below the region: the address falls into the previous slot (the program's globals).
    let below = program(&[add64_imm(1, -8), ldxdw(0, 1, 0), exit()]);
    let expected = Trap::OutOfBounds {
        pc: 1,
        addr: INPUT - 8,
        len: 8,
    };
    assert_eq!(trap(&below, &input), expected);
    assert_eq!(INPUT - 8, slot_base(GLOBALS_SLOT) + u64::from(u32::MAX) - 7);
    // One slot up: the next slot is not mapped.
    let next_slot = program(&[
        lddw(2, 1 << 32)[0],
        lddw(2, 1 << 32)[1],
        add64_reg(1, 2),
        ldxb(0, 1, 0),
        exit(),
    ]);
    assert_eq!(
        trap(&next_slot, &input),
        Trap::OutOfBounds {
            pc: 3,
            addr: INPUT + (1 << 32),
            len: 1
        }
    );
    // A pointer into the stack pushed above the top of the live frame.
    let above_stack = program(&[
        mov64_reg(1, 10),
        add64_imm(1, 8),
        ldxdw(0, 1, -16),
        ldxdw(0, 1, -8),
        exit(),
    ]);
    let top = slot_base(STACK_SLOT) + STACK_FRAME_BYTES as u64;
    assert_eq!(
        trap(&above_stack, &input),
        Trap::OutOfBounds {
            pc: 3,
            addr: top,
            len: 8
        }
    );
    // A slot far past the slot table (the JIT's miss path compares it with the table's live
    // length before it addresses any entry).
    let far_slot = slot_base(1000) + 8;
    let [f0, f1] = lddw(1, far_slot);
    let beyond_table = program(&[f0, f1, ldxb(0, 1, 0), exit()]);
    assert_eq!(
        trap(&beyond_table, &input),
        Trap::OutOfBounds {
            pc: 2,
            addr: far_slot,
            len: 1
        }
    );
    // A forged small address (a "host pointer").
    let forged = program(&[mov64_imm(1, 0x1000), ldxdw(0, 1, 0), exit()]);
    assert_eq!(
        trap(&forged, &input),
        Trap::OutOfBounds {
            pc: 1,
            addr: 0x1000,
            len: 8
        }
    );
}

#[test]
fn unbounded_loop_exhausts_the_budget() {
    let spin = program(&[mov64_imm(0, 0), add64_imm(0, 1), ja(-2), exit()]);
    let loaded = load(&spin, &Helpers::<()>::new()).unwrap();
    let budget = 10_000;
    let result = run_on(
        &loaded,
        &[],
        VmConfig {
            budget_insn: budget,
        },
    );
    assert_eq!(result, Err(Trap::BudgetExceeded { budget }));
}

#[test]
fn the_budget_is_exact_at_exit() {
    // r0 = n; loop { r0 -= 1; if r0 != 0 goto loop }; exit: executes 1 + 2n + 1 instructions.
    let n = 1000;
    let countdown = program(&[
        mov64_imm(0, n),
        add64_imm(0, -1),
        insn(0x55, 0, 0, -2, 0),
        exit(),
    ]);
    let loaded = load(&countdown, &Helpers::<()>::new()).unwrap();
    let needed = 2 * n as u64 + 2;
    let exit = run_on(
        &loaded,
        &[],
        VmConfig {
            budget_insn: needed,
        },
    )
    .unwrap();
    assert_eq!(exit.insn_count, needed);
    let short = run_on(
        &loaded,
        &[],
        VmConfig {
            budget_insn: needed - 1,
        },
    );
    assert_eq!(short, Err(Trap::BudgetExceeded { budget: needed - 1 }));
}

#[test]
fn runaway_recursion_hits_the_call_depth_limit() {
    // f: call f
    let recurse = program(&[call_local(-1), exit()]);
    assert_eq!(
        trap(&recurse, &[]),
        Trap::CallDepthExceeded {
            pc: 0,
            depth_max: naam_vm::CALL_DEPTH_MAX
        }
    );
}

#[test]
fn oversized_program_is_rejected() {
    let mut slots = vec![mov64_imm(0, 0); PROGRAM_INSN_MAX];
    slots.push(exit());
    let error = verify_error(&program(&slots));
    assert_eq!(
        error,
        VerifyError::TooLarge {
            slots: PROGRAM_INSN_MAX + 1,
            max: PROGRAM_INSN_MAX
        }
    );
    slots.truncate(PROGRAM_INSN_MAX - 1);
    slots.push(exit());
    assert!(
        load(&program(&slots), &Helpers::<()>::new()).is_ok(),
        "the limit itself loads"
    );
}

#[test]
fn invalid_opcode_is_rejected() {
    assert_eq!(
        verify_error(&program(&[mov64_imm(0, 0), insn(0xff, 0, 0, 0, 0), exit()])),
        VerifyError::InvalidOpcode {
            pc: 1,
            opcode: 0xff
        }
    );
    // Legacy packet load (LD | ABS | W) is not part of the supported set.
    assert_eq!(
        verify_error(&program(&[insn(0x20, 0, 0, 0, 0), exit()])),
        VerifyError::InvalidOpcode {
            pc: 0,
            opcode: 0x20
        }
    );
    assert_eq!(
        verify_error(&program(&[mov64_imm(11, 0), exit()])),
        VerifyError::InvalidRegister { pc: 0, reg: 11 }
    );
    assert_eq!(
        verify_error(&program(&[mov64_imm(10, 0), exit()])),
        VerifyError::WritesFramePointer { pc: 0 }
    );
}

#[test]
fn jump_out_of_range_or_into_lddw_is_rejected() {
    assert_eq!(
        verify_error(&program(&[ja(5), exit()])),
        VerifyError::JumpOutOfRange { pc: 0, target: 6 }
    );
    assert_eq!(
        verify_error(&program(&[exit(), ja(-3)])),
        VerifyError::JumpOutOfRange { pc: 1, target: -1 }
    );
    let [low, high] = lddw(0, 0x1122_3344_5566_7788);
    assert_eq!(
        verify_error(&program(&[ja(1), low, high, exit()])),
        VerifyError::JumpIntoLddw { pc: 0, target: 2 }
    );
    assert_eq!(
        verify_error(&program(&[call_local(1), low, high, exit()])),
        VerifyError::JumpIntoLddw { pc: 0, target: 2 }
    );
    assert_eq!(
        verify_error(&program(&[call_local(7), exit()])),
        VerifyError::CallOutOfRange { pc: 0, target: 8 }
    );
    assert_eq!(
        verify_error(&program(&[exit(), low])),
        VerifyError::IncompleteLddw { pc: 1 }
    );
    assert_eq!(
        verify_error(&program(&[mov64_imm(0, 1)])),
        VerifyError::FallsOffEnd { pc: 0 }
    );
}

#[test]
fn unknown_helper_is_rejected_at_load_and_trapped_through_callx() {
    let call = program(&[call_helper(99), exit()]);
    assert_eq!(
        verify_error(&call),
        VerifyError::UnknownHelper { pc: 0, id: 99 }
    );
    let indirect = program(&[mov64_imm(2, 99), callx(2), exit()]);
    assert_eq!(trap(&indirect, &[]), Trap::UnknownHelper { pc: 1, id: 99 });
}

#[test]
fn constant_stack_offsets_outside_the_frame_are_rejected() {
    let frame = STACK_FRAME_BYTES as i16;
    let below = program(&[ldxdw(0, 10, -frame - 8), exit()]);
    let expected = VerifyError::StackOutOfBounds {
        pc: 0,
        off: -frame - 8,
        len: 8,
        frame: STACK_FRAME_BYTES,
    };
    assert_eq!(verify_error(&below), expected);
    let straddling_top = program(&[stxdw(10, 1, -4), exit()]);
    let expected = VerifyError::StackOutOfBounds {
        pc: 0,
        off: -4,
        len: 8,
        frame: STACK_FRAME_BYTES,
    };
    assert_eq!(verify_error(&straddling_top), expected);
}

#[test]
fn a_returned_callees_frame_is_no_longer_reachable() {
    // main: r1 = callee's r10 - 8 (returned in r0); exit reads through it.
    // callee: r0 = r10; r0 -= 8; store 1 there; exit.
    let dangling = program(&[
        call_local(2),
        ldxdw(0, 0, 0),
        exit(),
        mov64_reg(0, 10),
        add64_imm(0, -8),
        insn(0x7a, 0, 0, 0, 1),
        exit(),
    ]);
    let addr = slot_base(STACK_SLOT) + 2 * STACK_FRAME_BYTES as u64 - 8;
    assert_eq!(
        trap(&dangling, &[]),
        Trap::OutOfBounds {
            pc: 1,
            addr,
            len: 8
        }
    );
}

#[test]
fn one_invocation_cannot_read_what_the_previous_left_on_the_stack() {
    let helpers = Helpers::<()>::new();
    // Writes a secret into its frame and into its callee's frame.
    let writer = program(&[
        lddw(1, 0x5ec2e7)[0],
        lddw(1, 0x5ec2e7)[1],
        stxdw(10, 1, -8),
        call_local(1),
        exit(),
        stxdw(10, 1, -8),
        exit(),
    ]);
    // Reads the same slots back (its own frame and, through a call, the callee's).
    let reader = program(&[
        ldxdw(6, 10, -8),
        call_local(2),
        add64_reg(0, 6),
        exit(),
        ldxdw(0, 10, -8),
        exit(),
    ]);
    let writer = load(&writer, &helpers).unwrap();
    let reader = load(&reader, &helpers).unwrap();
    let mut vm = Vm::new(VmConfig::default());
    let mut mem = Memory::new();
    vm.run(&writer, &mut mem, &helpers, &mut (), 0, 0).unwrap();
    let exit = vm.run(&reader, &mut mem, &helpers, &mut (), 0, 0).unwrap();
    assert_eq!(exit.r0, 0, "the stack is scrubbed between invocations");
}

fn copy_first_byte(_: &mut (), mem: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
    let byte = mem.read(args[0], args[1])?.first().copied().unwrap_or(0);
    Ok(u64::from(byte))
}

fn refuse(_: &mut (), _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Err(HelperError::Failed { reason: "refused" })
}

#[test]
fn helper_pointer_arguments_are_checked_before_the_call() {
    let mut helpers = Helpers::<()>::new();
    let mut args = [ArgKind::Unused; 5];
    args[0] = ArgKind::ReadBytes { len_arg: 1 };
    args[1] = ArgKind::Scalar;
    helpers
        .register(
            1,
            Helper {
                name: "copy_first_byte",
                signature: Signature { args },
                func: copy_first_byte,
            },
        )
        .unwrap();
    helpers
        .register(
            2,
            Helper {
                name: "refuse",
                signature: Signature::SCALARS,
                func: refuse,
            },
        )
        .unwrap();
    let input = [42u8; 4];
    let run = |bytecode: &[u8]| {
        let loaded = load(bytecode, &helpers).unwrap();
        let mut mem = Memory::new();
        let addr = mem.map_read(&input).unwrap();
        Vm::new(VmConfig::default()).run(&loaded, &mut mem, &helpers, &mut (), addr, 4)
    };
    assert_eq!(run(&program(&[call_helper(1), exit()])).unwrap().r0, 42);
    let too_long = program(&[mov64_imm(2, 5), call_helper(1), exit()]);
    let error = MemoryError::OutOfBounds {
        addr: INPUT,
        len: 5,
    };
    assert_eq!(
        run(&too_long),
        Err(Trap::HelperArgument {
            pc: 1,
            id: 1,
            arg: 0,
            error
        })
    );
    let failing = program(&[call_helper(2), exit()]);
    let error = HelperError::Failed { reason: "refused" };
    assert_eq!(
        run(&failing),
        Err(Trap::Helper {
            pc: 0,
            id: 2,
            error
        })
    );
    // Through `callx` (whose id the JIT passes through its context): the failing helper's trap,
    // and a full-register id whose low half names a helper is unknown, reported in full.
    let indirect = program(&[mov64_imm(3, 2), callx(3), exit()]);
    assert_eq!(
        run(&indirect),
        Err(Trap::Helper {
            pc: 1,
            id: 2,
            error
        })
    );
    let wide_id = (1 << 32) | 2;
    let [wide_low, wide_high] = lddw(3, wide_id);
    let wide = program(&[wide_low, wide_high, callx(3), exit()]);
    assert_eq!(run(&wide), Err(Trap::UnknownHelper { pc: 2, id: wide_id }));
}

/// A helper whose second pointer argument must be writable: the fast argument check refuses
/// the call, and the trap names the first refused argument with its exact error.
#[test]
fn a_refused_later_pointer_argument_is_named_with_its_exact_error() {
    let mut helpers = Helpers::<()>::new();
    let mut args = [ArgKind::Unused; 5];
    args[0] = ArgKind::ReadBytes { len_arg: 2 };
    args[1] = ArgKind::WriteBytes { len_arg: 2 };
    args[2] = ArgKind::Scalar;
    let signature = Signature { args };
    let helper = Helper {
        name: "copy",
        signature,
        func: copy_first_byte,
    };
    helpers.register(3, helper).unwrap();
    let input = [7u8; 4];
    let run = |bytecode: &[u8]| {
        let loaded = load(bytecode, &helpers).unwrap();
        let mut mem = Memory::new();
        let addr = mem.map_read(&input).unwrap();
        Vm::new(VmConfig::default()).run(&loaded, &mut mem, &helpers, &mut (), addr, 4)
    };
    // r2 = the read-only input: mapped, but not for writing.
    let read_only = program(&[mov64_reg(2, 1), mov64_imm(3, 4), call_helper(3), exit()]);
    let error = MemoryError::ReadOnly {
        addr: INPUT,
        len: 4,
    };
    let expected = Trap::HelperArgument {
        pc: 2,
        id: 3,
        arg: 1,
        error,
    };
    assert_eq!(run(&read_only), Err(expected));
    // r2 = 8: below every slot.
    let unmapped = program(&[mov64_imm(2, 8), mov64_imm(3, 4), call_helper(3), exit()]);
    let error = MemoryError::OutOfBounds { addr: 8, len: 4 };
    let expected = Trap::HelperArgument {
        pc: 2,
        id: 3,
        arg: 1,
        error,
    };
    assert_eq!(run(&unmapped), Err(expected));
    // Both refused (r1 too long as well): the first one is named.
    let both = program(&[mov64_imm(2, 8), mov64_imm(3, 5), call_helper(3), exit()]);
    let error = MemoryError::OutOfBounds {
        addr: INPUT,
        len: 5,
    };
    let expected = Trap::HelperArgument {
        pc: 2,
        id: 3,
        arg: 0,
        error,
    };
    assert_eq!(run(&both), Err(expected));
}

/// Context of a helper that runs a second VM over the invocation's own `Memory`.
struct Nested {
    vm: Vm,
    program: Program,
}

fn run_nested(nested: &mut Nested, mem: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    let helpers = Helpers::<()>::new();
    match nested.vm.run(&nested.program, mem, &helpers, &mut (), 0, 0) {
        Ok(exit) => Ok(exit.r0),
        Err(_) => Err(HelperError::Failed {
            reason: "nested run trapped",
        }),
    }
}

#[test]
fn a_helper_running_a_nested_vm_over_the_same_memory_leaves_the_outer_stack_usable() {
    let mut helpers = Helpers::<Nested>::new();
    helpers
        .register(
            9,
            Helper {
                name: "run_nested",
                signature: Signature::SCALARS,
                func: run_nested,
            },
        )
        .unwrap();
    // main: store 7 at r10-8, call f, then read it back through a pointer (the checked path).
    // f: call the helper that runs a nested VM over the same Memory (which empties the VM slots).
    let outer = program(&[
        mov64_imm(6, 7),
        stxdw(10, 6, -8),
        call_local(3),
        mov64_reg(1, 10),
        ldxdw(0, 1, -8),
        exit(),
        call_helper(9),
        exit(),
    ]);
    let outer = load(&outer, &helpers).unwrap();
    let inner = load(&program(&[mov64_imm(0, 1), exit()]), &Helpers::<()>::new()).unwrap();
    let mut nested = Nested {
        vm: Vm::new(VmConfig::default()),
        program: inner,
    };
    let mut mem = Memory::new();
    let exit = Vm::new(VmConfig::default())
        .run(&outer, &mut mem, &helpers, &mut nested, 0, 0)
        .unwrap();
    assert_eq!(exit.r0, 7);
}

const SECRET: u64 = 0x005e_c2e7_005e_c2e7;

fn fill_secret(_: &mut (), mem: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
    mem.write(args[0], args[1])?.fill(0x5e);
    Ok(0)
}

/// `prefix`, then a local call that ORs together every stack byte of frames 0 and 1, read
/// through forged pointers (inside the call the stack slot covers both frames) into r0.
fn stack_reader(prefix: &[[u8; 8]]) -> Vec<u8> {
    let base = slot_base(STACK_SLOT);
    let [b0, b1] = lddw(1, base);
    let [e0, e1] = lddw(2, base + 2 * STACK_FRAME_BYTES as u64);
    let mut slots = prefix.to_vec();
    slots.extend([
        call_local(1),
        exit(),
        b0,
        b1,
        e0,
        e1,
        mov64_imm(0, 0),
        ldxdw(3, 1, 0),
        insn(0x4f, 0, 3, 0, 0),  // r0 |= r3
        add64_imm(1, 8),         // r1 += 8
        insn(0xad, 1, 2, -4, 0), // if r1 < r2 goto ldxdw
        exit(),
    ]);
    program(&slots)
}

/// Helpers with `fill_secret` as helper 3 (r1: bytes to write, r2: their length) and
/// `replace_memory` as helper 2.
fn fill_secret_helpers() -> Helpers<()> {
    let mut helpers = slot_changing_helpers();
    let mut args = [ArgKind::Unused; 5];
    args[0] = ArgKind::WriteBytes { len_arg: 1 };
    args[1] = ArgKind::Scalar;
    let signature = Signature { args };
    let fill = Helper {
        name: "fill_secret",
        signature,
        func: fill_secret,
    };
    helpers.register(3, fill).unwrap();
    helpers
}

#[test]
fn no_stack_byte_written_by_any_means_outlives_its_invocation() {
    let helpers = fill_secret_helpers();
    let [s0, s1] = lddw(6, SECRET);
    let [f0, f1] = lddw(1, slot_base(STACK_SLOT) + STACK_FRAME_BYTES as u64 - 264);
    // A loop storing through a pointer that walks the stack (4 words from the forged one).
    let walk = [
        mov64_imm(2, 0),
        stxdw(1, 6, 0),
        add64_imm(1, 8),
        add64_imm(2, 1),
    ];
    let walk = [&[f0, f1][..], &walk, &[insn(0xa5, 2, 0, -4, 4)]].concat(); // if r2 < 4
    let writers: [(&str, Vec<[u8; 8]>); 10] = [
        ("the deepest constant r10 offset", vec![stxdw(10, 6, -512)]),
        ("an r10 offset just past 32 bytes", vec![stxdw(10, 6, -36)]),
        ("an r10 offset past 64 bytes", vec![stxdw(10, 6, -100)]),
        ("an r10 offset past 128 bytes", vec![stxdw(10, 6, -264)]),
        ("a pointer walking the stack in a loop", walk),
        (
            "a forged pointer, then a helper swapping in a fresh Memory",
            vec![f0, f1, stxdw(1, 6, 0), call_helper(2)],
        ),
        (
            "a shallow r10 offset, in frames 0 and 1",
            vec![stxdw(10, 6, -16), call_local(1), exit(), stxdw(10, 6, -16)],
        ),
        ("a forged pointer", vec![f0, f1, stxdw(1, 6, 0)]),
        (
            "a helper, through a pointer from r10",
            vec![
                mov64_reg(1, 10),
                add64_imm(1, -40),
                mov64_imm(2, 16),
                call_helper(3),
            ],
        ),
        ("an atomic add at r10 - 96", vec![insn(0xdb, 10, 6, -96, 0)]),
    ];
    let reader = load(&stack_reader(&[]), &helpers).unwrap();
    let mut vm = Vm::new(VmConfig::default());
    for (how, body) in writers {
        let mut slots = vec![s0, s1];
        slots.extend(body.iter().copied());
        // The reader finds the secret when it runs in the writer's own invocation…
        let same = load(&stack_reader(&slots), &helpers).unwrap();
        let seen = vm.run(&same, &mut Memory::new(), &helpers, &mut (), 0, 0);
        assert_ne!(seen.unwrap().r0, 0, "{how}: the reader sees the write");
        // …and nothing in the next one.
        slots.push(exit());
        let writer = load(&program(&slots), &helpers).unwrap();
        vm.run(&writer, &mut Memory::new(), &helpers, &mut (), 0, 0)
            .unwrap();
        let left = vm.run(&reader, &mut Memory::new(), &helpers, &mut (), 0, 0);
        assert_eq!(left.unwrap().r0, 0, "{how}: the stack is scrubbed");
    }
}

#[test]
fn a_returned_callees_frame_stays_unreachable_after_checked_stack_reads() {
    // main reads its frame through a pointer, calls f, then reads f's frame through f's r10.
    // f reads its own frame through a pointer. (The JIT caches the last region it checked.)
    let dangling = program(&[
        mov64_reg(1, 10),
        ldxdw(2, 1, -8),
        call_local(2),
        ldxdw(0, 0, -8),
        exit(),
        mov64_reg(0, 10),
        ldxdw(3, 0, -8),
        exit(),
    ]);
    let addr = slot_base(STACK_SLOT) + 2 * STACK_FRAME_BYTES as u64 - 8;
    assert_eq!(
        trap(&dangling, &[]),
        Trap::OutOfBounds {
            pc: 3,
            addr,
            len: 8
        }
    );
}

#[test]
fn accesses_beside_a_region_just_checked_are_checked_exactly() {
    let first: Vec<u8> = (1..=16).collect();
    let second = 100u64.to_le_bytes();
    let run = |tail: &[[u8; 8]]| {
        // r3 = first[0..8] + first[15] + second; then `tail`.
        let mut slots = vec![
            ldxdw(3, 1, 0),
            ldxb(4, 1, 15),
            add64_reg(3, 4),
            ldxdw(5, 2, 0),
            add64_reg(3, 5),
            mov64_reg(0, 3),
        ];
        slots.extend_from_slice(tail);
        slots.push(exit());
        let loaded = load(&program(&slots), &Helpers::<()>::new()).unwrap();
        let mut mem = Memory::new();
        let a = mem.map_read(&first).unwrap();
        let b = mem.map_read(&second).unwrap();
        Vm::new(VmConfig::default()).run(&loaded, &mut mem, &Helpers::new(), &mut (), a, b)
    };
    let sum = u64::from_le_bytes(first[..8].try_into().unwrap()) + 16 + 100;
    assert_eq!(run(&[]).unwrap().r0, sum);
    let (a, b) = (INPUT, slot_base(VM_SLOTS + 1));
    for (tail, pc, addr) in [
        (ldxdw(0, 1, 9), 6, a + 9),  // crosses the first region's end by one byte
        (ldxdw(0, 1, -8), 6, a - 8), // just below the first region
        (ldxb(0, 2, 8), 6, b + 8),   // one past the second region's end
    ] {
        let len = if tail[0] == 0x71 { 1 } else { 8 };
        let trap = run(&[tail]).expect_err("must trap");
        assert_eq!(trap, Trap::OutOfBounds { pc, addr, len });
    }
}

/// Runs `slots` over an 8-byte writable buffer at every budget up to `needed` + 2: the run
/// exits with `needed` instructions once the budget allows them, else traps on the budget, and
/// the buffer's first byte is `stored(budget)` either way (the others stay 0).
fn budget_sweep(slots: &[[u8; 8]], needed: u64, stored: impl Fn(u64) -> u8) {
    let loaded = load(&program(slots), &Helpers::<()>::new()).unwrap();
    sweep_buffer::<8>(&loaded, needed, |budget| {
        let mut buffer = [0; 8];
        buffer[0] = stored(budget);
        buffer
    });
}

/// [`budget_sweep`] for a loaded program and an `N`-byte buffer that ends as `stored(budget)`.
fn sweep_buffer<const N: usize>(loaded: &Program, needed: u64, stored: impl Fn(u64) -> [u8; N]) {
    for budget in 0..=needed + 2 {
        let mut buffer = [0u8; N];
        let mut mem = Memory::new();
        let addr = mem.map_write(&mut buffer).unwrap();
        let config = VmConfig {
            budget_insn: budget,
        };
        let result =
            Vm::new(config).run(loaded, &mut mem, &Helpers::new(), &mut (), addr, N as u64);
        let expected = if budget >= needed {
            Ok(Exit {
                r0: 0,
                insn_count: needed,
            })
        } else {
            Err(Trap::BudgetExceeded { budget })
        };
        assert_eq!(result, expected, "budget {budget}");
        assert_eq!(buffer, stored(budget), "budget {budget}: stores done");
    }
}

#[test]
fn a_budget_check_the_jit_defers_still_comes_before_the_next_store() {
    // The taken jump at 1 leads to a block with no effect (it ends in a jump), so the JIT may
    // check the budget at 4 instead; the store at 5 must still happen only if the count was
    // within the budget at 1 and at 4, exactly as in the interpreter.
    let slots = [
        mov64_imm(0, 0),
        ja(1),
        mov64_imm(0, 1), // skipped
        mov64_imm(2, 7),
        ja(0), // count 4 here: checked, its target stores
        stb(1, 0, 1),
        exit(), // count 6
    ];
    budget_sweep(&slots, 6, |budget| u8::from(budget >= 4));
}

/// `if r{dst} > imm goto +off`.
fn jgt_imm(dst: u8, imm: i32, off: i16) -> [u8; 8] {
    insn(0x25, dst, 0, off, imm)
}

/// `*(u8 *)(r{dst} + 0) = r{src}`.
fn stxb(dst: u8, src: u8) -> [u8; 8] {
    insn(0x73, dst, src, 0, 0)
}

/// `r2 = 2; if r2 > 0 goto 3; exit; *(u8 *)(r1 + 0) = r2; r2 -= 1`, the start of a loop that
/// stores 2, then 1 (the tests below close it in different ways).
fn store_count_down() -> Vec<[u8; 8]> {
    vec![
        mov64_imm(2, 2),
        jgt_imm(2, 0, 1),
        exit(),
        stxb(1, 2),
        add64_imm(2, -1),
    ]
}

/// The byte a loop that stores r2 = 2, then r2 = 1, leaves at each budget: the first store
/// happens from budget `first` on, the second from `second` on (the counts of the checks that
/// guard them).
fn stores_of_two_passes(first: u64, second: u64) -> impl Fn(u64) -> u8 {
    move |budget| match budget {
        budget if budget < first => 0,
        budget if budget < second => 2,
        _ => 1,
    }
}

#[test]
fn budget_checks_on_loop_edges_come_before_the_next_store() {
    // The backward jump at 5 goes to a block (1) whose every path reaches a kept check (the
    // forward jump at 1, the exit at 2) before any effect, so the JIT may skip the check at 5;
    // the interpreter checks at counts 2, 5, 6, 9 and 11, and the stores at 3 must happen
    // exactly when it lets them.
    let skippable = [store_count_down(), vec![ja(-5)]].concat();
    budget_sweep(&skippable, 11, stores_of_two_passes(2, 6));
    // Here the backward jump at 3 goes straight to a store: its check (at count 4) is kept.
    let kept = [
        mov64_imm(2, 2),
        stxb(1, 2),
        add64_imm(2, -1),
        jgt_imm(2, 0, -3), // if r2 > 0 goto 1
        exit(),
    ];
    budget_sweep(&kept, 8, |budget| if budget >= 4 { 1 } else { 2 });
}

#[test]
fn a_jump_onto_the_same_test_counts_and_checks_that_test() {
    // The taken jump at 3 lands on the same test at 5, which is taken too: the JIT goes from
    // 3 straight to 1, counting 5 and checking at its count (the block at 1 stores). The
    // interpreter checks at counts 4 and 5 (then 11 at the exit), and the second store must
    // happen only when both pass. On the way out, 4 (entered only by 3 not taken) falls past
    // the test at 5, known not taken, straight to the exit, counting 5.
    let checked = [
        mov64_imm(2, 2),
        stxb(1, 2), // *(u8 *)(r1 + 0) = r2
        add64_imm(2, -1),
        jgt_imm(2, 0, 1), // if r2 > 0 goto 5
        mov64_imm(0, 0),
        jgt_imm(2, 0, -5), // if r2 > 0 goto 1
        exit(),
    ];
    budget_sweep(&checked, 11, |budget| if budget >= 5 { 1 } else { 2 });
    // Here the JIT goes from 5 straight to 1, which reaches a kept check (its own forward jump,
    // at count 7) before the store at 3: the edge's check is deferred there. The interpreter
    // checks at counts 2, 5, 6, 7 and 11.
    let tail = vec![
        jgt_imm(2, 0, 1), // if r2 > 0 goto 7
        exit(),
        jgt_imm(2, 0, -7), // if r2 > 0 goto 1
        exit(),
    ];
    let deferred = [store_count_down(), tail].concat();
    budget_sweep(&deferred, 11, stores_of_two_passes(2, 7));
}

/// Longest a run the budget must stop may take before the test calls it a hang.
const HANG_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Loads `bytecode` for [`BACKEND`] and runs it with no input under `budget_insn` on its own
/// thread: a run still going after [`HANG_WAIT`] fails the test instead of hanging it.
fn run_bounded(bytecode: Vec<u8>, budget_insn: u64) -> Result<Exit, Trap> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let loaded = load(&bytecode, &Helpers::<()>::new()).expect("program verifies");
        let _ = done.send(run_on(&loaded, &[], VmConfig { budget_insn }));
    });
    result
        .recv_timeout(HANG_WAIT)
        .unwrap_or_else(|_| panic!("still running after {HANG_WAIT:?}: the budget is ignored"))
}

#[test]
fn a_backward_jump_onto_the_same_test_keeps_the_budget_check_it_was_relied_on_for() {
    // The taken jump at 2 lands on the same test at 4, taken too: the JIT goes from 2 straight
    // back to 1. The block at 1 reaches no effect before the forward jump at 2, whose check is
    // kept (4 falls into a store), so a backward jump to 1 may defer its check to that one;
    // but the threaded edge *is* that jump, so its check must stay. Found by the differential
    // fuzz (issue 15, seed 2026120661), where it spun forever.
    let spin = program(&[
        mov64_imm(2, 0),
        add64_imm(3, 1),
        jeq_imm(2, 0, 1), // if r2 == 0 goto 4
        exit(),
        jeq_imm(2, 0, -4),        // if r2 == 0 goto 1
        insn(0x72, 10, 0, -8, 1), // *(u8 *)(r10 - 8) = 1
        exit(),
    ]);
    let budget = 10_000;
    assert_eq!(
        run_bounded(spin, budget),
        Err(Trap::BudgetExceeded { budget })
    );
}

fn fill_then_nest(
    nested: &mut Nested,
    mem: &mut Memory<'_>,
    args: [u64; 5],
) -> Result<u64, HelperError> {
    mem.write(args[0], args[1])?.fill(0x5e);
    run_nested(nested, mem, args)
}

/// A helper writes the stack, then runs a nested VM over the same `Memory` (whose own run
/// finishes first): the outer invocation still zeroes what the helper wrote.
#[test]
fn a_nested_run_does_not_hide_a_helpers_stack_write_from_the_outer_scrub() {
    let mut helpers = Helpers::<Nested>::new();
    let mut args = [ArgKind::Unused; 5];
    args[0] = ArgKind::WriteBytes { len_arg: 1 };
    args[1] = ArgKind::Scalar;
    let signature = Signature { args };
    let helper = Helper {
        name: "fill_then_nest",
        signature,
        func: fill_then_nest,
    };
    helpers.register(4, helper).unwrap();
    let writer = program(&[
        mov64_reg(1, 10),
        add64_imm(1, -40),
        mov64_imm(2, 16),
        call_helper(4),
        exit(),
    ]);
    let writer = load(&writer, &helpers).unwrap();
    let inner = load(&program(&[mov64_imm(0, 1), exit()]), &Helpers::<()>::new()).unwrap();
    let mut nested = Nested {
        vm: Vm::new(VmConfig::default()),
        program: inner,
    };
    let reader = load(&stack_reader(&[]), &helpers).unwrap();
    let mut vm = Vm::new(VmConfig::default());
    let mut mem = Memory::new();
    vm.run(&writer, &mut mem, &helpers, &mut nested, 0, 0)
        .unwrap();
    let left = vm.run(&reader, &mut mem, &helpers, &mut nested, 0, 0);
    assert_eq!(left.unwrap().r0, 0, "the stack is scrubbed");
}

fn explode(_: &mut (), _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    panic!("helper panics on purpose")
}

fn seven(_: &mut (), _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Ok(7)
}

/// One machine runs invocations that end in every kind of trap (a failed helper, a panicking
/// helper, a call too deep, the budget) and then a clean one that calls a helper: nothing of a
/// trapped invocation (a helper's failure flag, the depth it reached, its budget) leaks into the
/// next.
#[test]
fn a_machine_reused_after_every_kind_of_trap_runs_the_next_invocation_cleanly() {
    let mut helpers = Helpers::<()>::new();
    for (id, name, func) in [
        (1, "seven", seven as naam_vm::HelperFn<()>),
        (2, "refuse", refuse),
        (3, "explode", explode),
    ] {
        let signature = Signature::SCALARS;
        helpers
            .register(
                id,
                Helper {
                    name,
                    signature,
                    func,
                },
            )
            .unwrap();
    }
    let mut vm = Vm::new(VmConfig { budget_insn: 64 });
    let mut run = |bytecode: &[u8]| {
        let loaded = load(bytecode, &helpers).unwrap();
        let mut mem = Memory::new();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            vm.run(&loaded, &mut mem, &helpers, &mut (), 0, 0)
        }));
        outcome.map_err(|_| "panicked")
    };
    let clean = program(&[call_helper(1), exit()]);
    let failing = program(&[call_helper(2), exit()]);
    let error = HelperError::Failed { reason: "refused" };
    let failed = Trap::Helper {
        pc: 0,
        id: 2,
        error,
    };
    assert_eq!(run(&failing), Ok(Err(failed)));
    assert_eq!(
        run(&clean),
        Ok(Ok(Exit {
            r0: 7,
            insn_count: 2
        }))
    );
    assert_eq!(run(&program(&[call_helper(3), exit()])), Err("panicked"));
    assert_eq!(
        run(&clean),
        Ok(Ok(Exit {
            r0: 7,
            insn_count: 2
        }))
    );
    let depth_max = naam_vm::CALL_DEPTH_MAX;
    let too_deep = Trap::CallDepthExceeded { pc: 0, depth_max };
    assert_eq!(run(&program(&[call_local(-1), exit()])), Ok(Err(too_deep)));
    assert_eq!(
        run(&clean),
        Ok(Ok(Exit {
            r0: 7,
            insn_count: 2
        }))
    );
    let spin = program(&[ja(-1), exit()]);
    assert_eq!(run(&spin), Ok(Err(Trap::BudgetExceeded { budget: 64 })));
    assert_eq!(
        run(&clean),
        Ok(Ok(Exit {
            r0: 7,
            insn_count: 2
        }))
    );
}

/// A local call's instructions count exactly, through the call, the callee's `exit` and the
/// return (on the JIT, the count pending at an `exit` must reach both the return path and the
/// final exit).
#[test]
fn local_calls_count_every_instruction_exactly() {
    // 0: r0 = 1; 1: call 4; 2: r0 += 1; 3: exit; 4: r0 = 5; 5: exit
    let calls = program(&[
        mov64_imm(0, 1),
        call_local(2),
        add64_imm(0, 1),
        exit(),
        mov64_imm(0, 5),
        exit(),
    ]);
    let exit = load_and_run(&calls, &[]).unwrap();
    assert_eq!(
        exit,
        Exit {
            r0: 6,
            insn_count: 6
        }
    );
}

/// The JIT's count of versioned loops compiled so far (0 without the JIT).
fn versioned_loops_compiled() -> u64 {
    #[cfg(feature = "jit")]
    return naam_vm::jit::versioned_loops_compiled();
    #[cfg(not(feature = "jit"))]
    0
}

/// The JIT's count of versioned loops with split ops compiled so far (0 without the JIT).
fn split_loops_versioned() -> u64 {
    #[cfg(feature = "jit")]
    return naam_vm::jit::split_loops_versioned();
    #[cfg(not(feature = "jit"))]
    0
}

#[test]
fn a_versioned_loop_traps_on_the_budget_exactly_where_the_interpreter_does() {
    // `for (r2 = 0; r2 <= 3; r2++) buffer[r2] = 1; buffer[4] = 1`: the JIT compiles this loop
    // twice and runs the copy without budget checks when the budget left at its entry (1
    // instruction in) covers its bound, 1 + 4 passes × 6 = 25, i.e. from a budget of 26. The
    // interpreter checks at counts 7, 13, 19 and 25 (the backward jump), 26 (the test's exit)
    // and 28 (the exit); store k happens once the checks before it pass. A bound miscounted by
    // one would let a budget of 25 run the unchecked copy to the end and store buffer[4].
    let slots = [
        mov64_imm(2, 0),
        jgt_imm(2, 3, 5), // if r2 > 3 goto 7
        mov64_reg(3, 1),
        add64_reg(3, 2),
        stb(3, 0, 1),
        add64_imm(2, 1),
        ja(-6), // goto 1
        stb(1, 4, 1),
        exit(),
    ];
    let before = versioned_loops_compiled();
    let loaded = load(&program(&slots), &Helpers::<()>::new()).unwrap();
    if BACKEND == Backend::Jit && cfg!(feature = "jit") {
        assert!(versioned_loops_compiled() > before, "the loop is versioned");
    }
    let store_checks = [0, 7, 13, 19, 26];
    sweep_buffer(&loaded, 28, |budget| {
        store_checks.map(|check| u8::from(budget >= check))
    });
}

#[test]
fn a_versioned_loop_whose_ops_are_not_contiguous_counts_exactly_at_every_budget() {
    // clang's layout of `btree_lookup.o`'s searches: the exit test and the increment come
    // before code that only runs after the loop (5-7 here), the body after it, entered by a
    // jump. The loop (2-4 and 8-11) is versioned over its ops only; at every budget around its
    // bound the result, count, trap and stored bytes must be the interpreter's, and code
    // between its segments must not run in its copy.
    let slots = [
        mov64_imm(2, 0),
        ja(6),            // goto 8: the loop's entry
        jgt_imm(2, 3, 2), // if r2 > 3 goto 5: the exit test
        add64_imm(2, 1),
        ja(3),        // goto 8
        ja(0),        // after the loop: a taken jump, checked before the store
        stb(1, 7, 1), // (a copy that took these ops in would skip the check)
        exit(),
        mov64_reg(3, 1), // the body: buffer[r2] = 1
        add64_reg(3, 2),
        stb(3, 0, 1),
        ja(-10), // goto 2
    ];
    let before = split_loops_versioned();
    let loaded = load(&program(&slots), &Helpers::<()>::new()).unwrap();
    if BACKEND == Backend::Jit && cfg!(feature = "jit") {
        assert!(
            split_loops_versioned() > before,
            "the split loop is versioned"
        );
    }
    let reference = Program::from_raw_with(
        &program(&slots),
        &Helpers::<()>::new(),
        Backend::Interpreter,
    )
    .unwrap();
    let mut input = [0u8; 8];
    same_as_interpreter(&loaded, &reference, &mut input, 40);
    let mut buffer = [0u8; 8];
    let exit = run_on_buffer(&loaded, &mut buffer);
    assert_eq!(exit.map(|done| done.insn_count), Ok(38));
    assert_eq!(
        buffer,
        [1, 1, 1, 1, 1, 0, 0, 1],
        "five passes, then the exit's store"
    );
}

/// Runs `loaded` over `buffer` (writable) with the default budget.
fn run_on_buffer(loaded: &Program, buffer: &mut [u8]) -> Result<Exit, Trap> {
    let mut mem = Memory::new();
    let len = buffer.len() as u64;
    let addr = mem.map_write(buffer).unwrap();
    Vm::new(VmConfig::default()).run(loaded, &mut mem, &Helpers::new(), &mut (), addr, len)
}

const MICA_PROBE: &[u8] = include_bytes!("../../benches/bpf/mica_probe.o");

/// A MICA bucket of `slots` entries (the probe's input, `benches/bpf/mica_probe.c`) whose
/// entry `hit` (if any) has the searched tag.
fn mica_bucket(slots: u64, hit: Option<u64>) -> Vec<u8> {
    let tag = 7u64;
    let mut words = vec![tag, slots, 0];
    for slot in 0..15u64 {
        let entry_tag = if Some(slot) == hit { tag } else { 100 + slot };
        words.push((entry_tag << 48) | (0x1000 + slot));
    }
    words_to_bytes(&words)
}

#[test]
fn clangs_mica_probe_loop_counts_exactly_at_every_budget() {
    // clang's rotated loop (`i < n` and `i <= 14` tested apart, the index copied through
    // `r5 = r6; r6 = r5 + 1`) is versioned by the JIT; at every budget around its bound the
    // result, count and trap must be the interpreter's.
    let before = versioned_loops_compiled();
    let loaded = Program::from_elf_with(
        MICA_PROBE,
        "naam/mica_probe",
        &Helpers::<()>::new(),
        BACKEND,
    )
    .unwrap();
    if BACKEND == Backend::Jit && cfg!(feature = "jit") {
        assert!(
            versioned_loops_compiled() > before,
            "the probe's loop is versioned"
        );
    }
    let reference = Program::from_elf_with(
        MICA_PROBE,
        "naam/mica_probe",
        &Helpers::<()>::new(),
        Backend::Interpreter,
    )
    .unwrap();
    for (slots, hit) in [
        (7, Some(6)),
        (15, None),
        (15, Some(14)),
        (20, None),
        (0, None),
    ] {
        let mut input = mica_bucket(slots, hit);
        same_as_interpreter(&loaded, &reference, &mut input, 260);
        // One byte short: the last entry's load is out of bounds (the precheck fails).
        input.pop();
        same_as_interpreter(&loaded, &reference, &mut input, 260);
    }
}

/// Runs `loaded` and the interpreter's `reference` over a writable copy of `input` at every
/// budget up to `budget_max`: the same result (exit, count or trap) and the same bytes after.
fn same_as_interpreter(loaded: &Program, reference: &Program, input: &mut [u8], budget_max: u64) {
    for budget in 0..=budget_max {
        let config = VmConfig {
            budget_insn: budget,
        };
        let [got, want] = [loaded, reference].map(|program| {
            let mut bytes = input.to_vec();
            let mut mem = Memory::new();
            let len = bytes.len() as u64;
            let addr = mem.map_write(&mut bytes).unwrap();
            let result =
                Vm::new(config).run(program, &mut mem, &Helpers::new(), &mut (), addr, len);
            (result, bytes)
        });
        assert_eq!(got, want, "{} bytes, budget {budget}", input.len());
    }
}

#[test]
fn a_versioned_loops_hoisted_region_checks_trap_where_the_interpreter_does() {
    // Pointers walking a region in a counted loop: the JIT checks every address the loop can
    // reach at its entry and skips the per-access checks when all are in the region. With the
    // region exactly large enough that path runs; one byte short, the checked copy must trap
    // at the same access, count and memory as the interpreter; at every budget.
    // Entered past its test, as clang rotates loops: the load runs on the entry path (at r1 +
    // 2), then in 6 cycles (r1 + 3 ..= r1 + 8).
    let load_walk = [
        mov64_imm(2, 0),
        mov64_imm(0, 0),
        ja(1),            // goto 4
        jgt_imm(2, 6, 5), // if r2 > 6 goto 9
        ldxb(3, 1, 2),    // r3 = *(u8 *)(r1 + 2)
        add64_reg(0, 3),
        add64_imm(1, 1),
        add64_imm(2, 1),
        ja(-6), // goto 3
        exit(),
    ];
    // Entered at its test: stores at r1 + 3, 6, 9, 12.
    let store_walk = [
        mov64_imm(2, 1),
        mov64_imm(0, 0),
        stb(1, 0, 9),
        jgt_imm(2, 4, 5), // if r2 > 4 goto 9
        add64_imm(1, 3),
        stxb(1, 2), // *(u8 *)(r1 + 0) = r2
        add64_imm(2, 1),
        ja(-5), // goto 3
        mov64_imm(0, 1),
        exit(),
    ];
    for (slots, fits) in [(&load_walk[..], 9), (&store_walk[..], 13)] {
        let bytecode = program(slots);
        let before = versioned_loops_compiled();
        let loaded = load(&bytecode, &Helpers::<()>::new()).unwrap();
        if BACKEND == Backend::Jit && cfg!(feature = "jit") {
            assert!(versioned_loops_compiled() > before, "the loop is versioned");
        }
        let reference =
            Program::from_raw_with(&bytecode, &Helpers::<()>::new(), Backend::Interpreter).unwrap();
        for len in [fits - 1, fits, fits + 8] {
            let mut input: Vec<u8> = (1..=len as u8).collect();
            same_as_interpreter(&loaded, &reference, &mut input, 60);
        }
    }
}

/// `if r{dst} > r{src} goto +off` (unsigned).
fn jgt_reg(dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0x2d, dst, src, off, 0)
}

/// `if r{dst} < r{src} goto +off` (unsigned).
fn jlt_reg(dst: u8, src: u8, off: i16) -> [u8; 8] {
    insn(0xad, dst, src, off, 0)
}

#[test]
fn a_loop_bounded_by_a_register_holding_a_constant_counts_and_traps_as_the_interpreter() {
    // clang hoists a loop's constant bound into a register (MICA's bucket copy: `r5 = 15`, then
    // `if r5 > r0 goto` back): the JIT versions such a loop when the loop never writes the
    // register and every edge into it comes from an immediate. At every budget and with the
    // region exact, one byte short and longer, both backends agree.
    // `r5 = 4; do { buffer[r2] = 1; r2++ } while (r5 > r2); buffer[4] = 2` (mirrored test).
    let mirrored = [
        mov64_imm(2, 0),
        mov64_imm(5, 4),
        mov64_reg(3, 1),
        add64_reg(3, 2),
        stb(3, 0, 1),
        add64_imm(2, 1),
        jgt_reg(5, 2, -5), // if r5 > r2 goto 2
        stb(1, 4, 2),
        exit(),
    ];
    // A pointer walking the region (its checks hoisted), the bound second: `r4 = 6; do {
    // *r1++ = r2; r2++ } while (r2 < r4)`.
    let walking = [
        mov64_imm(2, 0),
        mov64_imm(4, 6),
        mov64_imm(0, 0),
        stxb(1, 2),
        add64_imm(1, 1),
        add64_imm(2, 1),
        jlt_reg(2, 4, -4), // if r2 < r4 goto 3
        exit(),
    ];
    for (slots, fits) in [(&mirrored[..], 5), (&walking[..], 6)] {
        let before = versioned_loops_compiled();
        let loaded = load(&program(slots), &Helpers::<()>::new()).unwrap();
        if BACKEND == Backend::Jit && cfg!(feature = "jit") {
            assert!(versioned_loops_compiled() > before, "the loop is versioned");
        }
        agrees_with_interpreter(&loaded, slots, fits, 40);
    }
}

#[test]
fn a_loop_whose_bound_register_is_not_one_constant_counts_as_the_interpreter() {
    // The register the exit test compares with is rewritten inside the loop (4 at the entry,
    // then 8), or holds 2 or 9 depending on the path into the loop: a bound taken from the
    // entry's constant would let the unchecked copy run past the budget (or stop checking
    // too early); the loop must count and store as the interpreter at every budget.
    let rewritten = [
        mov64_imm(2, 0),
        mov64_imm(5, 4),
        mov64_reg(3, 1),
        add64_reg(3, 2),
        stb(3, 0, 1),
        mov64_imm(5, 8),
        add64_imm(2, 1),
        jgt_reg(5, 2, -6), // if r5 > r2 goto 2
        exit(),
    ];
    let two_paths = [
        mov64_imm(2, 0),
        mov64_imm(5, 2),
        ldxb(3, 1, 0),
        jgt_imm(3, 0, 1), // if buffer[0] > 0 goto 5
        mov64_imm(5, 9),
        mov64_reg(3, 1),
        add64_reg(3, 2),
        stb(3, 1, 1),
        add64_imm(2, 1),
        jgt_reg(5, 2, -5), // if r5 > r2 goto 5
        exit(),
    ];
    for (slots, fits) in [(&rewritten[..], 8), (&two_paths[..], 10)] {
        let loaded = load(&program(slots), &Helpers::<()>::new()).unwrap();
        agrees_with_interpreter(&loaded, slots, fits, 80);
    }
}

/// Runs `loaded` and the interpreter on a region of `fits - 1`, `fits` and `fits + 8` bytes
/// (zeros and, for the first byte, 1) at every budget up to `budget_max`.
fn agrees_with_interpreter(loaded: &Program, slots: &[[u8; 8]], fits: usize, budget_max: u64) {
    let reference =
        Program::from_raw_with(&program(slots), &Helpers::<()>::new(), Backend::Interpreter)
            .unwrap();
    for len in [fits - 1, fits, fits + 8] {
        for first in [0, 1] {
            let mut input = vec![0u8; len];
            input[0] = first;
            same_as_interpreter(loaded, &reference, &mut input, budget_max);
        }
    }
}

/// Loads `bytecode` with `helpers`, runs it on no input and returns r0.
fn r0_of(bytecode: &[u8], helpers: &Helpers<()>) -> u64 {
    let program = load(bytecode, helpers).expect("program verifies");
    let mut mem = Memory::new();
    let mut vm = Vm::new(VmConfig::default());
    vm.run(&program, &mut mem, helpers, &mut (), 0, 0)
        .expect("the program exits")
        .r0
}

/// VM address of the stack slot at r10 - 8 in frame 0, as a pointer that is not r10.
const STACK_TOP_LESS_8: u64 = slot_base(STACK_SLOT) + STACK_FRAME_BYTES as u64 - 8;

/// `setup`, then a loop of two passes over `body` (r7 counts them; ops `body.len() + 2` back
/// to its start), then `r0 = r6`: a loop the JIT versions, where a translator forwarding stack
/// stores into loads would keep a slot's value in a register across the aliasing write.
fn in_a_loop(setup: &[[u8; 8]], body: &[[u8; 8]]) -> Vec<u8> {
    let mut slots = setup.to_vec();
    slots.extend([mov64_imm(6, 0), mov64_imm(7, 0)]);
    slots.extend_from_slice(body);
    let back = -(body.len() as i16) - 2;
    slots.extend([
        add64_imm(7, 1),
        insn(0xa5, 7, 0, back, 2), // if r7 < 2 goto body
        mov64_reg(0, 6),
        exit(),
    ]);
    program(&slots)
}

#[test]
fn a_helper_writing_a_stack_slot_through_a_pointer_argument_is_seen_by_later_loads() {
    let helpers = fill_secret_helpers();
    let [v0, v1] = lddw(8, 0x1111_2222_3333_4444);
    let bytecode = in_a_loop(
        &[v0, v1, stxdw(10, 8, -8)],
        &[
            ldxdw(3, 10, -8),
            add64_reg(6, 3),
            mov64_reg(1, 10),
            add64_imm(1, -8),
            mov64_imm(2, 8),
            call_helper(3), // writes 0x5e into r10 - 8 .. r10
        ],
    );
    assert_eq!(
        r0_of(&bytecode, &helpers),
        0x1111_2222_3333_4444u64.wrapping_add(0x5e5e_5e5e_5e5e_5e5e)
    );
}

#[test]
fn a_store_through_another_register_aliasing_a_stack_slot_is_seen_in_a_loop() {
    let [p0, p1] = lddw(2, STACK_TOP_LESS_8);
    let bytecode = in_a_loop(
        &[p0, p1, insn(0x7a, 10, 0, -8, 5)], // *(u64 *)(r10 - 8) = 5
        &[
            ldxdw(3, 10, -8), // r6 += slot; the slot += 1 through r2
            add64_reg(6, 3),
            add64_imm(3, 1),
            stxdw(2, 3, 0),
        ],
    );
    assert_eq!(r0_of(&bytecode, &Helpers::new()), 5 + 6);
}

#[test]
fn an_atomic_on_a_stack_slot_is_seen_by_later_loads() {
    let [p0, p1] = lddw(2, STACK_TOP_LESS_8);
    let bytecode = in_a_loop(
        &[p0, p1, mov64_imm(8, 40), stxdw(10, 8, -8), mov64_imm(5, 2)],
        &[
            ldxdw(3, 10, -8),
            add64_reg(6, 3),
            insn(0xdb, 2, 5, 0, 0), // atomic *(u64 *)r2 += r5
        ],
    );
    assert_eq!(r0_of(&bytecode, &Helpers::new()), 40 + 42);
}

#[test]
fn a_narrower_stack_store_overlapping_a_slot_keeps_it_in_memory() {
    let [v0, v1] = lddw(8, 0x1111_2222_3333_4444);
    // A forwarding JIT may keep the 64-bit slot at r10 - 16; the one at r10 - 8 has a byte
    // store and a 32-bit store at r10 - 4 overlapping it, so its loads must read memory.
    let bytecode = in_a_loop(
        &[v0, v1, stxdw(10, 8, -8), insn(0x7a, 10, 0, -16, 1)],
        &[
            ldxdw(3, 10, -8),
            add64_reg(6, 3),
            ldxdw(3, 10, -16),
            add64_reg(6, 3),
            stb(10, -8, 0x55),
            insn(0x62, 10, 0, -4, 0x66), // *(u32 *)(r10 - 4) = 0x66
        ],
    );
    assert_eq!(
        r0_of(&bytecode, &Helpers::new()),
        0x1111_2222_3333_4444 + 1 + 0x0000_0066_3333_4455 + 1
    );
}

/// r0 = r6[0..8] + r6[12..16] + r6[23], the three loads one run through r6 (the JIT checks
/// its span once, with a stack store and additions between the loads), after `setup`.
fn load_run(setup: &[[u8; 8]]) -> Vec<u8> {
    let mut slots = setup.to_vec();
    slots.extend([
        ldxdw(3, 6, 0),
        stxdw(10, 3, -8),
        insn(0x61, 4, 6, 12, 0), // ldxw r4, [r6 + 12]
        add64_reg(3, 4),
        ldxb(5, 6, 23),
        add64_reg(3, 5),
        mov64_reg(0, 3),
        exit(),
    ]);
    program(&slots)
}

#[test]
fn a_run_of_loads_checked_as_one_span_traps_at_the_load_the_interpreter_does() {
    let bytes: Vec<u8> = (1..=24).collect();
    let sum = u64::from_le_bytes(bytes[..8].try_into().unwrap()) + 0x100f0e0d + 24;
    let run = |setup: &[[u8; 8]], len: usize| {
        let loaded = load(&load_run(setup), &Helpers::<()>::new()).unwrap();
        let other = [9u8; 8];
        let mut mem = Memory::new();
        let a = mem.map_read(&bytes[..len]).unwrap();
        let b = mem.map_read(&other).unwrap();
        Vm::new(VmConfig::default()).run(&loaded, &mut mem, &Helpers::new(), &mut (), a, b)
    };
    let base = mov64_reg(6, 1);
    // The read cache holds r1's region (the span hits), or r2's (it misses: checked loads).
    let other_cached = [ldxb(7, 2, 0), mov64_reg(6, 1)];
    for setup in [&[base][..], &other_cached[..]] {
        let pc = setup.len();
        assert_eq!(run(setup, 24).unwrap().r0, sum);
        let short = |len, at: usize, addr, bytes| {
            (
                len,
                Trap::OutOfBounds {
                    pc: pc + at,
                    addr,
                    len: bytes,
                },
            )
        };
        for (len, trap) in [
            short(23, 4, INPUT + 23, 1), // the run's last byte is one past the region
            short(15, 2, INPUT + 12, 4), // so is its middle load's
            short(7, 0, INPUT, 8),       // and its first load's
        ] {
            assert_eq!(run(setup, len), Err(trap), "{len} bytes");
        }
    }
    let absent = slot_base(VM_SLOTS + 7);
    let below = [mov64_reg(6, 1), add64_imm(6, -1)];
    let unmapped = lddw(6, absent);
    for (setup, addr) in [(&unmapped[..], absent), (&below[..], INPUT - 1)] {
        let pc = setup.len();
        let trap = Trap::OutOfBounds { pc, addr, len: 8 };
        assert_eq!(run(setup, 24), Err(trap));
    }
}

/// Replaces the invocation's memory with one whose first region is a new writable buffer
/// holding [`REPLACED`] (safe code may do this, so the JIT empties its region caches after every
/// helper call; `tests/hostile` checks that it does).
fn replace_memory(_: &mut (), mem: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    *mem = Memory::new();
    let fresh: &'static mut [u8; 16] = Box::leak(Box::new([0; 16]));
    fresh[..8].copy_from_slice(&REPLACED.to_le_bytes());
    mem.map_write(fresh).map_err(|_| HelperError::Failed {
        reason: "cannot map",
    })
}

/// Maps a new read-only region holding [`APPENDED`] after the others and returns its address
/// (changes no slot already mapped).
fn map_another(_: &mut (), mem: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    static BYTES: [u8; 8] = APPENDED.to_le_bytes();
    mem.map_read(&BYTES).map_err(|_| HelperError::Failed {
        reason: "cannot map",
    })
}

const REPLACED: u64 = 0x7e91_ace0_7e91_ace0;
const APPENDED: u64 = 0x0a99_e4de_0a99_e4de;

/// A registry with `map_another` (id 1) and `replace_memory` (id 2).
fn slot_changing_helpers() -> Helpers<()> {
    let mut helpers = Helpers::<()>::new();
    let another = Helper {
        name: "map_another",
        signature: Signature::SCALARS,
        func: map_another,
    };
    helpers.register(1, another).unwrap();
    let replace = Helper {
        name: "replace_memory",
        signature: Signature::SCALARS,
        func: replace_memory,
    };
    helpers.register(2, replace).unwrap();
    helpers
}

/// Runs `bytecode` with [`slot_changing_helpers`] over a writable 16-byte input holding
/// `first` in its first word; returns the run's outcome and the input after it.
fn run_slot_changing(bytecode: &[u8], first: u64) -> (Result<Exit, Trap>, [u8; 16]) {
    let helpers = slot_changing_helpers();
    let loaded = load(bytecode, &helpers).unwrap();
    let mut input = [0u8; 16];
    input[..8].copy_from_slice(&first.to_le_bytes());
    let mut mem = Memory::new();
    let addr = mem.map_write(&mut input).unwrap();
    let outcome = Vm::new(VmConfig::default()).run(&loaded, &mut mem, &helpers, &mut (), addr, 16);
    (outcome, input)
}

/// r6 = the input; load its first word and store it in the second (both of the JIT's caches
/// then hold the input); call helper 1.
fn load_store_call_1() -> [[u8; 8]; 4] {
    [
        mov64_reg(6, 1),
        ldxdw(7, 6, 0),
        stxdw(6, 7, 8),
        call_helper(1),
    ]
}

#[test]
fn a_helper_that_replaces_the_memory_empties_the_region_caches() {
    // Load and store through the input (both of the JIT's caches hold it), call a helper that
    // maps another region, load the input again (the caches hold it again), then call one
    // that replaces the memory: the next load and store go to the new region in slot 3, as in
    // the interpreter, not to the input the caches held.
    let then = [
        ldxdw(7, 6, 0),
        call_helper(2),
        ldxdw(0, 6, 0),
        stxdw(6, 0, 8),
        exit(),
    ];
    let bytecode = program(&[&load_store_call_1()[..], &then].concat());
    let first = 0x1111_2222_3333_4444;
    let (outcome, input) = run_slot_changing(&bytecode, first);
    assert_eq!(
        outcome.unwrap().r0,
        REPLACED,
        "the load after the call reads the new region"
    );
    let second = u64::from_le_bytes(input[8..].try_into().unwrap());
    assert_eq!(
        second, first,
        "the store after the call does not reach the input"
    );
}

#[test]
fn a_helper_that_maps_a_new_region_leaves_the_others_exact() {
    // After `map_another`, the input's accesses still reach the input, its bounds still hold
    // (one byte past it traps), and the new region reads.
    let then = [
        ldxdw(8, 0, 0),
        stxdw(6, 8, 8),
        ldxdw(0, 6, 0),
        add64_reg(0, 8),
        exit(),
    ];
    let bytecode = program(&[&load_store_call_1()[..], &then].concat());
    let first = 5;
    let (outcome, input) = run_slot_changing(&bytecode, first);
    assert_eq!(outcome.unwrap().r0, first.wrapping_add(APPENDED));
    assert_eq!(input[8..], APPENDED.to_le_bytes());
    let past_the_end = program(&[
        mov64_reg(6, 1),
        ldxdw(7, 6, 0),
        call_helper(1),
        ldxdw(0, 6, 9),
        exit(),
    ]);
    let (trapped, _) = run_slot_changing(&past_the_end, 0);
    let expected = Trap::OutOfBounds {
        pc: 3,
        addr: INPUT + 9,
        len: 8,
    };
    assert_eq!(trapped, Err(expected));
}

/// Runs `loaded` with [`slot_changing_helpers`] over [`Regions`] holding a 16-byte input with
/// `first` in its first word and `!first` in its second, then 64 zeros, on `vm`.
fn run_regions_on(vm: &mut Vm, loaded: &Program, first: u64) -> Result<Exit, Trap> {
    let mut input = [0u8; 16];
    input[..8].copy_from_slice(&first.to_le_bytes());
    input[8..].copy_from_slice(&(!first).to_le_bytes());
    let mut regions = Regions::new();
    let addr = regions.map_write(&mut input).unwrap();
    // A larger region after it, which the JIT's caches must not start with.
    let after = [0u8; 64];
    regions.map_read(&after).unwrap();
    assert_eq!((addr, regions.regions_mapped()), (INPUT, 2));
    let helpers = slot_changing_helpers();
    vm.run_regions(loaded, &mut regions, &helpers, &mut (), addr, 16)
}

#[test]
fn a_run_over_regions_installs_the_vm_slots_and_scrubs_as_a_run_over_memory() {
    let helpers = slot_changing_helpers();
    let stack_word = slot_base(STACK_SLOT) + STACK_FRAME_BYTES as u64 - 8;
    let [p0, p1] = lddw(2, stack_word);
    // Store the input's first word at r10 - 8, read it back through a forged stack pointer
    // (the slot table's stack entry, which the run installed).
    let through_the_table = [
        ldxdw(6, 1, 0),
        stxdw(10, 6, -8),
        p0,
        p1,
        ldxdw(0, 2, 0),
        exit(),
    ];
    let loaded = load(&program(&through_the_table), &helpers).unwrap();
    let mut vm = Vm::new(VmConfig::default());
    assert_eq!(run_regions_on(&mut vm, &loaded, SECRET).unwrap().r0, SECRET);
    // The next invocation, over a `Memory`, finds a scrubbed stack.
    let reader = load(&stack_reader(&[]), &helpers).unwrap();
    let left = vm.run(&reader, &mut Memory::new(), &helpers, &mut (), 0, 0);
    assert_eq!(
        left.unwrap().r0,
        0,
        "the stack is scrubbed after a run over regions"
    );
    // A helper that swaps in a fresh `Memory` takes the VM's slots away, as in `Vm::run`.
    let swapped = [
        stxdw(10, 1, -8),
        call_helper(2),
        p0,
        p1,
        ldxdw(0, 2, 0),
        exit(),
    ];
    let loaded = load(&program(&swapped), &helpers).unwrap();
    let expected = Trap::OutOfBounds {
        pc: 4,
        addr: stack_word,
        len: 8,
    };
    assert_eq!(run_regions_on(&mut vm, &loaded, 1), Err(expected));
    // The first embedder region (the JIT's caches start with it) reads up to its last byte…
    let last_word = load(&program(&[ldxdw(0, 1, 8), exit()]), &helpers).unwrap();
    assert_eq!(run_regions_on(&mut vm, &last_word, 1).unwrap().r0, !1);
    // …and not one byte past it.
    let past_the_end = program(&[ldxdw(0, 1, 9), exit()]);
    let loaded = load(&past_the_end, &helpers).unwrap();
    let expected = Trap::OutOfBounds {
        pc: 0,
        addr: INPUT + 9,
        len: 8,
    };
    assert_eq!(run_regions_on(&mut vm, &loaded, 1), Err(expected));
}

/// A scalar helper: r1 + 2·r2 + 3·r3 + 4·r4 + 5·r5 (each argument register weighted apart, so a
/// misplaced one shows), counting its calls in the context.
struct Weighted;

impl ScalarHelper<u64> for Weighted {
    const NAME: &'static str = "weighted";
    const ARG_COUNT: usize = 5;

    fn call(calls: &mut u64, args: [u64; 5]) -> u64 {
        *calls += 1;
        args.iter().zip(1..).fold(0u64, |sum, (arg, weight)| {
            sum.wrapping_add(arg.wrapping_mul(weight))
        })
    }
}

/// A scalar helper that panics.
struct ExplodeScalar;

impl ScalarHelper<u64> for ExplodeScalar {
    const NAME: &'static str = "explode_scalar";
    const ARG_COUNT: usize = 0;

    fn call(_: &mut u64, _: [u64; 5]) -> u64 {
        panic!("scalar helper panics on purpose")
    }
}

fn seven_counted(calls: &mut u64, _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    *calls += 1;
    Ok(7)
}

fn refuse_counted(_: &mut u64, _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Err(HelperError::Failed { reason: "refused" })
}

/// r1..=r5 set to 1..=5, a call of helper 3 (`call imm` or `callx` through r6), then r0 plus r5
/// (r1..=r5 keep their values across a call).
fn weighted_call(indirect: bool) -> Vec<u8> {
    let mut slots: Vec<[u8; 8]> = (1..=5).map(|reg| mov64_imm(reg, i32::from(reg))).collect();
    if indirect {
        slots.extend([mov64_imm(6, 3), callx(6)]);
    } else {
        slots.push(call_helper(3));
    }
    slots.extend([add64_reg(0, 5), exit()]);
    program(&slots)
}

/// Runs `loaded` with `helpers` on a fresh machine; the outcome (`Err` if it panicked) and the
/// helper calls counted.
fn run_counted(loaded: &Program, helpers: &Helpers<u64>) -> (Result<Result<Exit, Trap>, ()>, u64) {
    let mut calls = 0;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Vm::new(VmConfig::default()).run(loaded, &mut Memory::new(), helpers, &mut calls, 0, 0)
    }));
    (outcome.map_err(|_| ()), calls)
}

#[test]
fn a_scalar_helper_gets_r1_to_r5_and_they_keep_their_values() {
    let mut helpers = Helpers::<u64>::new();
    helpers.register_scalar::<Weighted>(3).unwrap();
    let signature = helpers.get(3).unwrap().signature;
    assert_eq!(signature, Signature::SCALARS);
    // 1 + 4 + 9 + 16 + 25 = 55, plus r5.
    for (indirect, insn_count) in [(false, 8), (true, 9)] {
        let loaded = load(&weighted_call(indirect), &helpers).unwrap();
        let exit = Exit { r0: 60, insn_count };
        assert_eq!(run_counted(&loaded, &helpers), (Ok(Ok(exit)), 1));
    }
}

/// A program runs with the registry it was verified against or another one: the position the
/// verifier recorded for a `call imm` may then hold another helper, a helper of the other kind
/// or none. The call still reaches the helper its id names (or traps as unknown), whichever
/// kind, on both backends.
#[test]
fn a_scalar_helper_call_run_with_another_registry_reaches_the_helper_its_id_names() {
    let mut verified = Helpers::<u64>::new();
    verified.register_scalar::<Weighted>(3).unwrap();
    let loaded = load(&weighted_call(false), &verified).unwrap();
    let full = |name, func| Helper {
        name,
        signature: Signature::SCALARS,
        func,
    };
    let exit = |r0| Ok(Ok(Exit { r0, insn_count: 8 }));
    // Helper 3 one position later, behind a full helper.
    let mut moved = Helpers::<u64>::new();
    moved.register(1, full("seven", seven_counted)).unwrap();
    moved.register_scalar::<Weighted>(3).unwrap();
    assert_eq!(run_counted(&loaded, &moved), (exit(60), 1));
    // Helper 3 at the same position, a full helper.
    let mut full_at_hint = Helpers::<u64>::new();
    full_at_hint
        .register(3, full("seven", seven_counted))
        .unwrap();
    assert_eq!(run_counted(&loaded, &full_at_hint), (exit(12), 1));
    let mut refusing = Helpers::<u64>::new();
    refusing
        .register(3, full("refuse", refuse_counted))
        .unwrap();
    let error = HelperError::Failed { reason: "refused" };
    let refused = Trap::Helper {
        pc: 5,
        id: 3,
        error,
    };
    assert_eq!(run_counted(&loaded, &refusing), (Ok(Err(refused)), 0));
    // Another scalar helper at the position, and no helper 3.
    let mut other = Helpers::<u64>::new();
    other.register_scalar::<Weighted>(2).unwrap();
    let unknown = Trap::UnknownHelper { pc: 5, id: 3 };
    assert_eq!(run_counted(&loaded, &other), (Ok(Err(unknown)), 0));
}

#[test]
fn a_scalar_helpers_panic_is_raised_by_run_and_the_machine_runs_on() {
    let mut helpers = Helpers::<u64>::new();
    helpers.register_scalar::<Weighted>(3).unwrap();
    helpers.register_scalar::<ExplodeScalar>(4).unwrap();
    let exploding = load(&program(&[call_helper(4), exit()]), &helpers).unwrap();
    let clean = load(&weighted_call(false), &helpers).unwrap();
    let mut vm = Vm::new(VmConfig::default());
    let mut calls = 0;
    let mut run = |loaded: &Program| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            vm.run(loaded, &mut Memory::new(), &helpers, &mut calls, 0, 0)
        }))
        .map_err(|_| "panicked")
    };
    assert_eq!(run(&exploding), Err("panicked"));
    let exit = Exit {
        r0: 60,
        insn_count: 8,
    };
    assert_eq!(run(&clean), Ok(Ok(exit)));
    assert_eq!(run(&exploding), Err("panicked"));
    assert_eq!(run(&clean), Ok(Ok(exit)));
}

/// A direct helper (pointer argument, checked as every helper's): the sum of the `r2` bytes at
/// `r1`, counting its calls; 13 bytes are refused with an error, 14 make it panic.
struct SumBytes;

impl DirectHelper<u64> for SumBytes {
    const NAME: &'static str = "sum_bytes";
    const SIGNATURE: Signature = Signature {
        args: [
            ArgKind::ReadBytes { len_arg: 1 },
            ArgKind::Scalar,
            ArgKind::Unused,
            ArgKind::Unused,
            ArgKind::Unused,
        ],
    };

    fn call(calls: &mut u64, mem: &mut Memory<'_>, args: [u64; 5]) -> Result<u64, HelperError> {
        *calls += 1;
        match args[1] {
            13 => Err(HelperError::Failed { reason: "thirteen" }),
            14 => panic!("direct helper panics on purpose"),
            len => Ok(mem.read(args[0], len)?.iter().map(|b| u64::from(*b)).sum()),
        }
    }
}

/// `SumBytes` under id 5, as a direct helper or as an ordinary one (the trampoline's path on
/// the JIT), behind a scalar helper (id 3), so its position is 1.
fn sum_bytes_registry(direct: bool) -> Helpers<u64> {
    let mut helpers = Helpers::<u64>::new();
    helpers.register_scalar::<Weighted>(3).unwrap();
    if direct {
        helpers.register_direct::<SumBytes>(5).unwrap();
    } else {
        let helper = Helper {
            name: SumBytes::NAME,
            signature: SumBytes::SIGNATURE,
            func: SumBytes::call,
        };
        helpers.register(5, helper).unwrap();
    }
    helpers
}

/// r1 = the input's address + `offset`, r2 = `len`, a call of helper 5, then r0 + r2.
fn sum_bytes_call(offset: i32, len: i32) -> Vec<u8> {
    program(&[
        add64_imm(1, offset),
        mov64_imm(2, len),
        call_helper(5),
        add64_reg(0, 2),
        exit(),
    ])
}

/// Runs `loaded` with `helpers` over `input` (mapped at `INPUT`, r1) on `vm`; the outcome
/// (`Err` if it panicked) and the helper calls counted.
fn run_on_input(
    vm: &mut Vm,
    loaded: &Program,
    helpers: &Helpers<u64>,
    input: &[u8],
) -> (Result<Result<Exit, Trap>, ()>, u64) {
    let mut calls = 0;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut mem = Memory::new();
        let addr = mem.map_read(input).expect("one region maps");
        vm.run(
            loaded,
            &mut mem,
            helpers,
            &mut calls,
            addr,
            input.len() as u64,
        )
    }));
    (outcome.map_err(|_| ()), calls)
}

/// A direct helper's calls behave as the same helper's registered as an ordinary one: same r0,
/// same argument refusals (the first refused argument, its exact error), same helper errors,
/// a panic raised by `run`, the machine running on after each.
#[test]
fn a_direct_helper_checks_its_pointer_argument_as_an_ordinary_helper() {
    let input: Vec<u8> = (1..=32).collect();
    let cases = [
        (0, 4, Some(1 + 2 + 3 + 4)),
        (28, 4, Some(29 + 30 + 31 + 32)),
        (0, 32, Some((1..=32).sum())),
        (0, 0, Some(0)),
        (29, 4, None),
        (0, 33, None),
        (-1, 1, None),
        (32, 1, None),
        (0, -1, None),
        (0, 13, None),
        (0, 14, None),
    ];
    let (direct, ordinary) = (sum_bytes_registry(true), sum_bytes_registry(false));
    let (mut vm_direct, mut vm_ordinary) =
        (Vm::new(VmConfig::default()), Vm::new(VmConfig::default()));
    for (offset, len, sum) in cases {
        let bytecode = sum_bytes_call(offset, len);
        let (loaded_direct, loaded_ordinary) = (
            load(&bytecode, &direct).unwrap(),
            load(&bytecode, &ordinary).unwrap(),
        );
        let got = run_on_input(&mut vm_direct, &loaded_direct, &direct, &input);
        let want = run_on_input(&mut vm_ordinary, &loaded_ordinary, &ordinary, &input);
        assert_eq!(got, want, "offset {offset}, len {len}");
        if let Some(sum) = sum {
            let exit = Exit {
                r0: sum + len as u64,
                insn_count: 5,
            };
            assert_eq!(got, (Ok(Ok(exit)), 1), "offset {offset}, len {len}");
        }
        let refused = match len {
            13 => Some(Ok(Err(Trap::Helper {
                pc: 2,
                id: 5,
                error: HelperError::Failed { reason: "thirteen" },
            }))),
            14 => Some(Err(())),
            _ => None,
        };
        if let Some(refused) = refused {
            assert_eq!(got, (refused, 1), "offset {offset}, len {len}");
        }
        if sum.is_none() && refused.is_none() {
            let (Ok(Err(Trap::HelperArgument { pc, id, arg, .. })), 0) = got else {
                panic!("offset {offset}, len {len}: {got:?}");
            };
            assert_eq!((pc, id, arg), (2, 5, 0));
        }
    }
}

/// A direct helper's call run with another registry than the one it was verified against
/// reaches the helper its id names, whichever kind is at the recorded position.
#[test]
fn a_direct_helper_call_run_with_another_registry_reaches_the_helper_its_id_names() {
    let input = [5u8; 8];
    let loaded = load(&sum_bytes_call(0, 8), &sum_bytes_registry(true)).unwrap();
    let exit = |r0| Ok(Ok(Exit { r0, insn_count: 5 }));
    let mut vm = Vm::new(VmConfig::default());
    // At position 0 (no helper 3 before it).
    let mut moved = Helpers::<u64>::new();
    moved.register_direct::<SumBytes>(5).unwrap();
    assert_eq!(
        run_on_input(&mut vm, &loaded, &moved, &input),
        (exit(48), 1)
    );
    // An ordinary helper 5 at the position.
    assert_eq!(
        run_on_input(&mut vm, &loaded, &sum_bytes_registry(false), &input),
        (exit(48), 1)
    );
    // A scalar helper 5 at the position: no pointer check, its own value.
    let mut scalar = Helpers::<u64>::new();
    scalar.register_scalar::<Weighted>(3).unwrap();
    scalar.register_scalar::<Weighted>(5).unwrap();
    let weighted = INPUT + 2 * 8;
    assert_eq!(
        run_on_input(&mut vm, &loaded, &scalar, &input),
        (exit(weighted + 8), 1)
    );
    // No helper 5.
    let mut none = Helpers::<u64>::new();
    none.register_scalar::<Weighted>(3).unwrap();
    let unknown = Trap::UnknownHelper { pc: 2, id: 5 };
    assert_eq!(
        run_on_input(&mut vm, &loaded, &none, &input),
        (Ok(Err(unknown)), 0)
    );
}

#[test]
fn a_direct_helper_has_its_signature_and_its_id_once() {
    let helpers = sum_bytes_registry(true);
    let helper = helpers.get(5).unwrap();
    assert_eq!(
        (helper.name, helper.signature),
        ("sum_bytes", SumBytes::SIGNATURE)
    );
    let mut again = sum_bytes_registry(true);
    assert!(matches!(
        again.register_direct::<SumBytes>(5),
        Err(naam_vm::RegisterError::DuplicateId { id: 5, .. })
    ));
}

/// `r6 = r1 + 3`; a load and a store through r2 (another region: the JIT's region caches then
/// hold it); loads at r1 + 0 (8 bytes), r6 + 9 (r1 + 12, 4 bytes), a store at r1 + 13 and a
/// load at r6 + 12 (r1 + 15); r0 = their sum. The JIT checks the accesses through r1's entry
/// value against r1's region as the caller passed it, leaving the caches to r2's region.
fn entry_based_accesses() -> Vec<u8> {
    program(&[
        mov64_reg(6, 1),
        add64_imm(6, 3),
        ldxb(3, 2, 0),
        stb(2, 1, 7),
        ldxdw(4, 1, 0),
        add64_reg(3, 4),
        insn(0x61, 4, 6, 9, 0), // ldxw r4, [r6 + 9]
        add64_reg(3, 4),
        stb(1, 13, 0x5a),
        ldxb(4, 6, 12),
        add64_reg(3, 4),
        mov64_reg(0, 3),
        exit(),
    ])
}

#[test]
fn accesses_through_r1_at_entry_trap_and_count_as_the_interpreter() {
    // r1's region is as long as the accesses need (16 bytes), or shorter, byte by byte, so each
    // access in turn is the first past its end; r1 points to its start, into it (5 bytes in:
    // the JIT's room for r1 is then 5 bytes less), into the other region, or nowhere. Every
    // budget; results and both regions' bytes equal the interpreter's.
    let bytecode = entry_based_accesses();
    let loaded = load(&bytecode, &Helpers::<()>::new()).unwrap();
    let reference =
        Program::from_raw_with(&bytecode, &Helpers::<()>::new(), Backend::Interpreter).unwrap();
    for len in 8..=24 {
        for r1_at in [Some(0), Some(5), None] {
            for budget in 0..=14 {
                let [got, want] = [&loaded, &reference].map(|program| {
                    let mut first: Vec<u8> = (1..=len as u8).collect();
                    let mut other = [9u8; 8];
                    let mut mem = Memory::new();
                    let a = mem.map_write(&mut first).unwrap();
                    let b = mem.map_write(&mut other).unwrap();
                    let r1 = r1_at.map_or(b, |at| a + at);
                    let config = VmConfig {
                        budget_insn: budget,
                    };
                    let result =
                        Vm::new(config).run(program, &mut mem, &Helpers::new(), &mut (), r1, b);
                    (result, first, other)
                });
                assert_eq!(got, want, "{len} bytes, r1 at {r1_at:?}, budget {budget}");
            }
        }
    }
}

#[test]
fn an_access_through_r1_at_entry_after_a_helper_call_reads_the_slot_table_again() {
    // A load through another region (the JIT's read cache then holds it), a helper that
    // replaces the memory, then a load through a copy of r1's entry value (a register the call
    // keeps): it reads the new region in slot 3, as in the interpreter, not the input r1's
    // region was at entry.
    let bytecode = program(&[
        mov64_reg(6, 1),
        mov64_reg(7, 1),
        add64_reg(7, 2),
        ldxb(8, 7, -1),
        call_helper(2),
        ldxdw(0, 6, 0),
        exit(),
    ]);
    let (outcome, _) = run_slot_changing(&bytecode, 0x1111_2222_3333_4444);
    assert_eq!(outcome.unwrap().r0, REPLACED);
}

#[test]
fn a_region_shorter_than_the_widest_access_admits_nothing_past_its_end_once_cached() {
    // An access to a first region, then one to a second of 1..=7 bytes (the JIT's cache of
    // that kind misses and fills with the short region, whose cache bound is 0: nothing may
    // hit it), then a load or store of each width at each offset through the second: every one
    // past its end traps as in the interpreter, every other reads or writes the same bytes.
    let reference = |bytecode: &[u8]| {
        Program::from_raw_with(bytecode, &Helpers::<()>::new(), Backend::Interpreter).unwrap()
    };
    for (load_or_store, width) in [
        (0x71, 1),
        (0x69, 2),
        (0x61, 4),
        (0x79, 8),
        (0x73, 1),
        (0x6b, 2),
        (0x63, 4),
        (0x7b, 8),
    ] {
        let store = load_or_store & 0x7 == 0x3;
        for off in 0..=8i16 {
            let access = if store {
                [
                    insn(0x73, 1, 3, 0, 0),
                    insn(0x73, 2, 3, 0, 0),
                    insn(load_or_store, 2, 3, off, 0),
                ]
            } else {
                [
                    insn(0x71, 4, 1, 0, 0),
                    insn(0x71, 5, 2, 0, 0),
                    insn(load_or_store, 3, 2, off, 0),
                ]
            };
            let mut slots = vec![mov64_imm(3, 0x55)];
            slots.extend_from_slice(&access);
            slots.extend_from_slice(&[mov64_reg(0, 3), add64_reg(0, 4), add64_reg(0, 5), exit()]);
            let bytecode = program(&slots);
            let loaded = load(&bytecode, &Helpers::<()>::new()).unwrap();
            let interpreted = reference(&bytecode);
            for len in 1..=7u8 {
                let [got, want] = [&loaded, &interpreted].map(|program| {
                    let mut first = [7u8; 8];
                    let mut short: Vec<u8> = (1..=len).collect();
                    let mut mem = Memory::new();
                    let a = mem.map_write(&mut first).unwrap();
                    let b = mem.map_write(&mut short).unwrap();
                    let config = VmConfig::default();
                    let result =
                        Vm::new(config).run(program, &mut mem, &Helpers::new(), &mut (), a, b);
                    (result, first, short)
                });
                let past_end = i64::from(off) + width > i64::from(len);
                assert_eq!(
                    got.0.is_err(),
                    past_end,
                    "{load_or_store:#x} at {off} of {len}"
                );
                assert_eq!(got, want, "{load_or_store:#x} at {off} of {len} bytes");
            }
        }
    }
}
