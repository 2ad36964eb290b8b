//! The interpreter: one `match` over pre-decoded [`Op`]s in a tight loop.
//!
//! What it does not do per instruction, because the verifier proved it at load: fetch bounds
//! (every jump, call and return target is an instruction, and the last instruction never falls
//! through), register-number checks (decoded registers are 0..=10, indexing a 16-entry file),
//! frame-pointer writes (r10 is never a destination), and region checks for constant-offset
//! stack accesses through r10 (the offset lies inside the current frame). Instructions are
//! counted per straight-line run, at taken jumps, calls and exits, not one by one.

use crate::helpers::{self, HelperError, Helpers, Registered};
use crate::memory::{self, Memory, MemoryError, STACK_SLOT, slot_base};
use crate::op::{Kind, Op};
use crate::opcode::{
    ATOMIC_ADD, ATOMIC_AND, ATOMIC_CMPXCHG, ATOMIC_FETCH, ATOMIC_OR, ATOMIC_XCHG, ATOMIC_XOR,
};
use crate::program::Program;
use crate::vm::{Exit, Frame, Trap};
use crate::{CALL_DEPTH_MAX, STACK_FRAME_BYTES};

/// Registers in the register file: r0..=r10 plus padding so a 4-bit index never needs a check.
const REGISTER_FILE: usize = 16;
const FRAME: u64 = STACK_FRAME_BYTES as u64;
const OP_BYTES: usize = size_of::<Op>();

/// Everything one invocation needs from the VM, borrowed for its duration.
pub(crate) struct Machine<'r> {
    pub program: &'r Program,
    pub ops: &'r [Op],
    /// Host address of the VM stack (`STACK_BYTES`, frame `d` at `d * STACK_FRAME_BYTES`).
    pub stack: *mut u8,
    pub frames: &'r mut [Frame; CALL_DEPTH_MAX],
    pub budget: u64,
    /// Deepest call depth reached (the frames the VM must scrub afterwards).
    pub depth_reached: &'r mut usize,
}

/// Runs the program to its final `exit` or to a trap.
pub(crate) fn run<C>(
    machine: Machine<'_>,
    mem: &mut Memory<'_>,
    helpers: &Helpers<C>,
    ctx: &mut C,
    r1: u64,
    r2: u64,
) -> Result<Exit, Trap> {
    let Machine {
        program,
        ops,
        stack,
        frames,
        budget,
        depth_reached,
    } = machine;
    let mut regs = [0u64; REGISTER_FILE];
    regs[1] = r1;
    regs[2] = r2;
    regs[10] = slot_base(STACK_SLOT) + FRAME;
    // Host address that r10 stands for in the current frame.
    // SAFETY: the stack holds CALL_DEPTH_MAX + 1 frames; r10 of depth d is (d + 1) frames in.
    let mut frame_top = unsafe { stack.add(STACK_FRAME_BYTES) };
    mem.set_stack(frame_top, FRAME);
    let mut depth = 0usize;
    let base = ops.as_ptr();
    // SAFETY: the verifier proved the entry is a decoded index.
    let mut ip = unsafe { base.add(program.entry as usize) };
    // First instruction of the current straight-line run.
    let mut block_start = ip;
    let mut executed = 0u64;

    loop {
        // SAFETY: the verifier proved every jump, call and return target is a decoded index
        // and that the last instruction never falls through, so `ip` points into `ops`.
        let op = unsafe { &*ip };
        // Decoded index of `op` (for traps and call frames: never on the hot path).
        macro_rules! pc {
            () => {
                (ip as usize - base as usize) / OP_BYTES
            };
        }
        macro_rules! dst {
            // SAFETY: decoded registers are 0..=10 (verifier), the file has 16 entries.
            () => {
                *unsafe { regs.get_unchecked(usize::from(op.dst)) }
            };
        }
        macro_rules! src {
            // SAFETY: as for `dst!`.
            () => {
                *unsafe { regs.get_unchecked(usize::from(op.src)) }
            };
        }
        macro_rules! alu {
            ($value:expr) => {{
                let value = $value;
                // SAFETY: as for `dst!`.
                *unsafe { regs.get_unchecked_mut(usize::from(op.dst)) } = value;
            }};
        }
        // A superinstruction: writes dst and skips the fused second instruction.
        macro_rules! fused {
            ($value:expr) => {{
                alu!($value);
                // SAFETY: the second instruction of a fused pair is an ALU instruction, so it
                // is not the last one (the verifier proved the last one never falls through).
                ip = unsafe { ip.add(2) };
                continue;
            }};
        }
        // The second source register of a fused `mov` + ALU pair.
        macro_rules! second_src {
            () => {
                // SAFETY: as for `dst!` (it is the decoded `src` of the second instruction).
                *unsafe { regs.get_unchecked(op.target as usize) }
            };
        }
        // Ends the current straight-line run at `pc` and continues at `$to`.
        macro_rules! transfer {
            ($to:expr) => {{
                executed += ((ip as usize - block_start as usize) / OP_BYTES) as u64 + 1;
                if executed > budget {
                    return Err(Trap::BudgetExceeded { budget });
                }
                // SAFETY: the verifier proved every jump, call and return target is a decoded
                // index.
                ip = unsafe { base.add($to) };
                block_start = ip;
                continue;
            }};
        }
        macro_rules! jump_if {
            ($condition:expr) => {{
                if $condition {
                    transfer!(op.target as usize);
                }
            }};
        }
        macro_rules! load {
            ($ty:ty) => {{
                let addr = src!().wrapping_add(op.target as i64 as u64);
                let (slot, offset) = memory::split(addr);
                let len = size_of::<$ty>() as u64;
                match mem.slot(slot) {
                    // SAFETY: `offset + len <= read_len`, the live length of the region's host range.
                    Some(region) if offset + len <= region.read_len => unsafe {
                        region.ptr.add(offset as usize).cast::<$ty>().read_unaligned()
                    },
                    _ => return Err(Trap::OutOfBounds { pc: program.slot_of(pc!()), addr, len }),
                }
            }};
        }
        macro_rules! store {
            ($ty:ty, $value:expr) => {{
                let value = $value as $ty;
                let addr = dst!().wrapping_add(op.target as i64 as u64);
                let (slot, offset) = mem.split_for_write(addr);
                let len = size_of::<$ty>() as u64;
                match mem.slot(slot) {
                    // SAFETY: `offset + len <= write_len`, the live length of a writable host range.
                    Some(region) if offset + len <= region.write_len => unsafe {
                        region.ptr.add(offset as usize).cast::<$ty>().write_unaligned(value)
                    },
                    _ => return Err(write_fault(mem, program.slot_of(pc!()), addr, len)),
                }
            }};
        }
        // SAFETY (stack kinds): the verifier proved -STACK_FRAME_BYTES <= off and off + len <= 0,
        // and `frame_top` is the top of the current frame inside the VM stack.
        macro_rules! load_stack {
            ($ty:ty) => {{
                unsafe {
                    frame_top
                        .offset(op.target as isize)
                        .cast::<$ty>()
                        .read_unaligned()
                }
            }};
        }
        macro_rules! store_stack {
            ($ty:ty, $value:expr) => {{
                let value = $value as $ty;
                unsafe {
                    frame_top
                        .offset(op.target as isize)
                        .cast::<$ty>()
                        .write_unaligned(value)
                }
            }};
        }

        match op.kind {
            Kind::Add64Imm => alu!(dst!().wrapping_add(op.imm)),
            Kind::Add64Reg => alu!(dst!().wrapping_add(src!())),
            Kind::Sub64Imm => alu!(dst!().wrapping_sub(op.imm)),
            Kind::Sub64Reg => alu!(dst!().wrapping_sub(src!())),
            Kind::Mul64Imm => alu!(dst!().wrapping_mul(op.imm)),
            Kind::Mul64Reg => alu!(dst!().wrapping_mul(src!())),
            Kind::Div64Imm => alu!(div64(dst!(), op.imm)),
            Kind::Div64Reg => alu!(div64(dst!(), src!())),
            Kind::SDiv64Imm => alu!(sdiv64(dst!(), op.imm)),
            Kind::SDiv64Reg => alu!(sdiv64(dst!(), src!())),
            Kind::Mod64Imm => alu!(mod64(dst!(), op.imm)),
            Kind::Mod64Reg => alu!(mod64(dst!(), src!())),
            Kind::SMod64Imm => alu!(smod64(dst!(), op.imm)),
            Kind::SMod64Reg => alu!(smod64(dst!(), src!())),
            Kind::Or64Imm => alu!(dst!() | op.imm),
            Kind::Or64Reg => alu!(dst!() | src!()),
            Kind::And64Imm => alu!(dst!() & op.imm),
            Kind::And64Reg => alu!(dst!() & src!()),
            Kind::Xor64Imm => alu!(dst!() ^ op.imm),
            Kind::Xor64Reg => alu!(dst!() ^ src!()),
            Kind::Lsh64Imm => alu!(dst!().wrapping_shl(op.imm as u32)),
            Kind::Lsh64Reg => alu!(dst!().wrapping_shl(src!() as u32)),
            Kind::Rsh64Imm => alu!(dst!().wrapping_shr(op.imm as u32)),
            Kind::Rsh64Reg => alu!(dst!().wrapping_shr(src!() as u32)),
            Kind::Arsh64Imm => alu!((dst!() as i64).wrapping_shr(op.imm as u32) as u64),
            Kind::Arsh64Reg => alu!((dst!() as i64).wrapping_shr(src!() as u32) as u64),
            Kind::Neg64 => alu!(dst!().wrapping_neg()),
            Kind::Mov64Imm => alu!(op.imm),
            Kind::Mov64Reg => alu!(src!()),
            Kind::MovSx8To64 => alu!(src!() as i8 as i64 as u64),
            Kind::MovSx16To64 => alu!(src!() as i16 as i64 as u64),
            Kind::MovSx32To64 => alu!(src!() as i32 as i64 as u64),
            Kind::Add32Imm => alu!(u64::from((dst!() as u32).wrapping_add(op.imm as u32))),
            Kind::Add32Reg => alu!(u64::from((dst!() as u32).wrapping_add(src!() as u32))),
            Kind::Sub32Imm => alu!(u64::from((dst!() as u32).wrapping_sub(op.imm as u32))),
            Kind::Sub32Reg => alu!(u64::from((dst!() as u32).wrapping_sub(src!() as u32))),
            Kind::Mul32Imm => alu!(u64::from((dst!() as u32).wrapping_mul(op.imm as u32))),
            Kind::Mul32Reg => alu!(u64::from((dst!() as u32).wrapping_mul(src!() as u32))),
            Kind::Div32Imm => alu!(div32(dst!(), op.imm)),
            Kind::Div32Reg => alu!(div32(dst!(), src!())),
            Kind::SDiv32Imm => alu!(sdiv32(dst!(), op.imm)),
            Kind::SDiv32Reg => alu!(sdiv32(dst!(), src!())),
            Kind::Mod32Imm => alu!(mod32(dst!(), op.imm)),
            Kind::Mod32Reg => alu!(mod32(dst!(), src!())),
            Kind::SMod32Imm => alu!(smod32(dst!(), op.imm)),
            Kind::SMod32Reg => alu!(smod32(dst!(), src!())),
            Kind::Or32Imm => alu!(u64::from(dst!() as u32 | op.imm as u32)),
            Kind::Or32Reg => alu!(u64::from(dst!() as u32 | src!() as u32)),
            Kind::And32Imm => alu!(u64::from(dst!() as u32 & op.imm as u32)),
            Kind::And32Reg => alu!(u64::from(dst!() as u32 & src!() as u32)),
            Kind::Xor32Imm => alu!(u64::from(dst!() as u32 ^ op.imm as u32)),
            Kind::Xor32Reg => alu!(u64::from(dst!() as u32 ^ src!() as u32)),
            Kind::Lsh32Imm => alu!(u64::from((dst!() as u32).wrapping_shl(op.imm as u32))),
            Kind::Lsh32Reg => alu!(u64::from((dst!() as u32).wrapping_shl(src!() as u32))),
            Kind::Rsh32Imm => alu!(u64::from((dst!() as u32).wrapping_shr(op.imm as u32))),
            Kind::Rsh32Reg => alu!(u64::from((dst!() as u32).wrapping_shr(src!() as u32))),
            Kind::Arsh32Imm => alu!(u64::from((dst!() as i32).wrapping_shr(op.imm as u32) as u32)),
            Kind::Arsh32Reg => alu!(u64::from((dst!() as i32).wrapping_shr(src!() as u32) as u32)),
            Kind::Neg32 => alu!(u64::from((dst!() as u32).wrapping_neg())),
            Kind::Mov32Imm => alu!(op.imm),
            Kind::Mov32Reg => alu!(u64::from(src!() as u32)),
            Kind::MovSx8To32 => alu!(u64::from(src!() as i8 as i32 as u32)),
            Kind::MovSx16To32 => alu!(u64::from(src!() as i16 as i32 as u32)),
            Kind::Trunc16 => alu!(u64::from(dst!() as u16)),
            Kind::Trunc32 => alu!(u64::from(dst!() as u32)),
            Kind::Swap16 => alu!(u64::from((dst!() as u16).swap_bytes())),
            Kind::Swap32 => alu!(u64::from((dst!() as u32).swap_bytes())),
            Kind::Swap64 => alu!(dst!().swap_bytes()),
            Kind::Nop => {}
            Kind::Lddw => alu!(op.imm),
            Kind::Ldx8 => alu!(u64::from(load!(u8))),
            Kind::Ldx16 => alu!(u64::from(load!(u16))),
            Kind::Ldx32 => alu!(u64::from(load!(u32))),
            Kind::Ldx64 => alu!(load!(u64)),
            Kind::LdxSx8 => alu!(load!(i8) as i64 as u64),
            Kind::LdxSx16 => alu!(load!(i16) as i64 as u64),
            Kind::LdxSx32 => alu!(load!(i32) as i64 as u64),
            Kind::St8 => store!(u8, op.imm),
            Kind::St16 => store!(u16, op.imm),
            Kind::St32 => store!(u32, op.imm),
            Kind::St64 => store!(u64, op.imm),
            Kind::Stx8 => store!(u8, src!()),
            Kind::Stx16 => store!(u16, src!()),
            Kind::Stx32 => store!(u32, src!()),
            Kind::Stx64 => store!(u64, src!()),
            Kind::LdxStack8 => alu!(u64::from(load_stack!(u8))),
            Kind::LdxStack16 => alu!(u64::from(load_stack!(u16))),
            Kind::LdxStack32 => alu!(u64::from(load_stack!(u32))),
            Kind::LdxStack64 => alu!(load_stack!(u64)),
            Kind::LdxSxStack8 => alu!(load_stack!(i8) as i64 as u64),
            Kind::LdxSxStack16 => alu!(load_stack!(i16) as i64 as u64),
            Kind::LdxSxStack32 => alu!(load_stack!(i32) as i64 as u64),
            Kind::StStack8 => store_stack!(u8, op.imm),
            Kind::StStack16 => store_stack!(u16, op.imm),
            Kind::StStack32 => store_stack!(u32, op.imm),
            Kind::StStack64 => store_stack!(u64, op.imm),
            Kind::StxStack8 => store_stack!(u8, src!()),
            Kind::StxStack16 => store_stack!(u16, src!()),
            Kind::StxStack32 => store_stack!(u32, src!()),
            Kind::StxStack64 => store_stack!(u64, src!()),
            Kind::Atomic32 => {
                atomic32(mem, &mut regs, *op).map_err(|f| f.trap(mem, program.slot_of(pc!())))?
            }
            Kind::Atomic64 => {
                atomic64(mem, &mut regs, *op).map_err(|f| f.trap(mem, program.slot_of(pc!())))?
            }
            Kind::Ja => transfer!(op.target as usize),
            Kind::Jeq64Imm => jump_if!(dst!() == op.imm),
            Kind::Jeq64Reg => jump_if!(dst!() == src!()),
            Kind::Jne64Imm => jump_if!(dst!() != op.imm),
            Kind::Jne64Reg => jump_if!(dst!() != src!()),
            Kind::Jgt64Imm => jump_if!(dst!() > op.imm),
            Kind::Jgt64Reg => jump_if!(dst!() > src!()),
            Kind::Jge64Imm => jump_if!(dst!() >= op.imm),
            Kind::Jge64Reg => jump_if!(dst!() >= src!()),
            Kind::Jlt64Imm => jump_if!(dst!() < op.imm),
            Kind::Jlt64Reg => jump_if!(dst!() < src!()),
            Kind::Jle64Imm => jump_if!(dst!() <= op.imm),
            Kind::Jle64Reg => jump_if!(dst!() <= src!()),
            Kind::Jsgt64Imm => jump_if!((dst!() as i64) > op.imm as i64),
            Kind::Jsgt64Reg => jump_if!((dst!() as i64) > src!() as i64),
            Kind::Jsge64Imm => jump_if!((dst!() as i64) >= op.imm as i64),
            Kind::Jsge64Reg => jump_if!((dst!() as i64) >= src!() as i64),
            Kind::Jslt64Imm => jump_if!((dst!() as i64) < op.imm as i64),
            Kind::Jslt64Reg => jump_if!((dst!() as i64) < src!() as i64),
            Kind::Jsle64Imm => jump_if!((dst!() as i64) <= op.imm as i64),
            Kind::Jsle64Reg => jump_if!((dst!() as i64) <= src!() as i64),
            Kind::Jset64Imm => jump_if!(dst!() & op.imm != 0),
            Kind::Jset64Reg => jump_if!(dst!() & src!() != 0),
            Kind::Jeq32Imm => jump_if!(dst!() as u32 == op.imm as u32),
            Kind::Jeq32Reg => jump_if!(dst!() as u32 == src!() as u32),
            Kind::Jne32Imm => jump_if!(dst!() as u32 != op.imm as u32),
            Kind::Jne32Reg => jump_if!(dst!() as u32 != src!() as u32),
            Kind::Jgt32Imm => jump_if!(dst!() as u32 > op.imm as u32),
            Kind::Jgt32Reg => jump_if!(dst!() as u32 > src!() as u32),
            Kind::Jge32Imm => jump_if!(dst!() as u32 >= op.imm as u32),
            Kind::Jge32Reg => jump_if!(dst!() as u32 >= src!() as u32),
            Kind::Jlt32Imm => jump_if!((dst!() as u32) < op.imm as u32),
            Kind::Jlt32Reg => jump_if!((dst!() as u32) < src!() as u32),
            Kind::Jle32Imm => jump_if!(dst!() as u32 <= op.imm as u32),
            Kind::Jle32Reg => jump_if!(dst!() as u32 <= src!() as u32),
            Kind::Jsgt32Imm => jump_if!(dst!() as i32 > op.imm as i32),
            Kind::Jsgt32Reg => jump_if!(dst!() as i32 > src!() as i32),
            Kind::Jsge32Imm => jump_if!(dst!() as i32 >= op.imm as i32),
            Kind::Jsge32Reg => jump_if!(dst!() as i32 >= src!() as i32),
            Kind::Jslt32Imm => jump_if!((dst!() as i32) < op.imm as i32),
            Kind::Jslt32Reg => jump_if!((dst!() as i32) < src!() as i32),
            Kind::Jsle32Imm => jump_if!(dst!() as i32 <= op.imm as i32),
            Kind::Jsle32Reg => jump_if!(dst!() as i32 <= src!() as i32),
            Kind::Jset32Imm => jump_if!(dst!() as u32 & op.imm as u32 != 0),
            Kind::Jset32Reg => jump_if!(dst!() as u32 & src!() as u32 != 0),
            Kind::MovAdd64Imm => fused!(src!().wrapping_add(op.imm)),
            Kind::MovSub64Imm => fused!(src!().wrapping_sub(op.imm)),
            Kind::MovMul64Imm => fused!(src!().wrapping_mul(op.imm)),
            Kind::MovAnd64Imm => fused!(src!() & op.imm),
            Kind::MovOr64Imm => fused!(src!() | op.imm),
            Kind::MovXor64Imm => fused!(src!() ^ op.imm),
            Kind::MovLsh64Imm => fused!(src!().wrapping_shl(op.imm as u32)),
            Kind::MovRsh64Imm => fused!(src!().wrapping_shr(op.imm as u32)),
            Kind::MovArsh64Imm => fused!((src!() as i64).wrapping_shr(op.imm as u32) as u64),
            Kind::MovAdd64Reg => fused!(src!().wrapping_add(second_src!())),
            Kind::MovSub64Reg => fused!(src!().wrapping_sub(second_src!())),
            Kind::MovMul64Reg => fused!(src!().wrapping_mul(second_src!())),
            Kind::MovAnd64Reg => fused!(src!() & second_src!()),
            Kind::MovOr64Reg => fused!(src!() | second_src!()),
            Kind::MovXor64Reg => fused!(src!() ^ second_src!()),
            Kind::LshRsh64 => fused!(
                dst!()
                    .wrapping_shl(op.imm as u32)
                    .wrapping_shr(op.imm as u32)
            ),
            Kind::LshArsh64 => {
                fused!(
                    (dst!().wrapping_shl(op.imm as u32) as i64).wrapping_shr(op.imm as u32) as u64
                )
            }
            Kind::CallHelper => {
                let id = op.imm as u32;
                let Some(helper) = helpers.lookup(id, op.target as usize) else {
                    return Err(Trap::UnknownHelper {
                        pc: program.slot_of(pc!()),
                        id: op.imm,
                    });
                };
                let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
                regs[0] = call_helper(helper, id, ctx, mem, args, move || program.slot_of(pc!()))?;
            }
            Kind::Callx => {
                let id = dst!();
                let helper = u32::try_from(id).ok().and_then(|id| helpers.find(id));
                let Some(helper) = helper else {
                    return Err(Trap::UnknownHelper {
                        pc: program.slot_of(pc!()),
                        id,
                    });
                };
                let args = [regs[1], regs[2], regs[3], regs[4], regs[5]];
                let pc = move || program.slot_of(pc!()); // copies ip (kept in a register)
                regs[0] = call_helper(helper, id as u32, ctx, mem, args, pc)?;
            }
            Kind::CallLocal => {
                if depth >= CALL_DEPTH_MAX {
                    let pc = program.slot_of(pc!());
                    return Err(Trap::CallDepthExceeded {
                        pc,
                        depth_max: CALL_DEPTH_MAX,
                    });
                }
                frames[depth] = Frame {
                    return_index: pc!() as u32 + 1,
                    saved: [regs[6], regs[7], regs[8], regs[9]],
                };
                depth += 1;
                *depth_reached = (*depth_reached).max(depth);
                regs[10] += FRAME;
                // SAFETY: depth <= CALL_DEPTH_MAX, so the new frame top is inside the stack.
                frame_top = unsafe { frame_top.add(STACK_FRAME_BYTES) };
                mem.set_stack(frame_top, FRAME * (depth as u64 + 1));
                transfer!(op.target as usize);
            }
            Kind::Exit => {
                if depth == 0 {
                    executed += ((ip as usize - block_start as usize) / OP_BYTES) as u64 + 1;
                    if executed > budget {
                        return Err(Trap::BudgetExceeded { budget });
                    }
                    return Ok(Exit {
                        r0: regs[0],
                        insn_count: executed,
                    });
                }
                depth -= 1;
                let frame = frames[depth];
                [regs[6], regs[7], regs[8], regs[9]] = frame.saved;
                regs[10] -= FRAME;
                // SAFETY: back to the caller's frame, which is inside the stack.
                frame_top = unsafe { frame_top.sub(STACK_FRAME_BYTES) };
                mem.set_stack(frame_top, FRAME * (depth as u64 + 1));
                transfer!(frame.return_index as usize);
            }
        }
        // SAFETY: `op` is not the last instruction (the verifier proved the last one never
        // falls through), so the next one exists.
        ip = unsafe { ip.add(1) };
    }
}

/// A fault inside an atomic instruction, before it is tagged with its pc.
struct Fault {
    addr: u64,
    len: u64,
}

impl Fault {
    #[cold]
    fn trap(self, mem: &Memory<'_>, pc: usize) -> Trap {
        write_fault(mem, pc, self.addr, self.len)
    }
}

#[cold]
#[inline(never)]
pub(crate) fn write_fault(mem: &Memory<'_>, pc: usize, addr: u64, len: u64) -> Trap {
    match mem.classify_write_fault(addr, len) {
        memory::MemoryError::ReadOnly { addr, len } => Trap::ReadOnly { pc, addr, len },
        memory::MemoryError::OutOfBounds { addr, len } => Trap::OutOfBounds { pc, addr, len },
    }
}

/// Host pointer to `len` writable bytes at `dst + off`.
#[inline]
fn writable_ptr(
    mem: &mut Memory<'_>,
    regs: &[u64; REGISTER_FILE],
    op: Op,
    len: u64,
) -> Result<*mut u8, Fault> {
    let addr =
        regs[usize::from(op.dst) & (REGISTER_FILE - 1)].wrapping_add(op.target as i64 as u64);
    let (slot, offset) = memory::split(addr);
    match mem.slot(slot) {
        Some(region) if offset + len <= region.write_len => {
            // SAFETY: `offset + len <= write_len`, inside a live writable host range.
            let ptr = unsafe { region.ptr.add(offset as usize) };
            mem.note_write(slot);
            Ok(ptr)
        }
        _ => Err(Fault { addr, len }),
    }
}

/// 64-bit atomics. One invocation runs on one thread over memory it borrows exclusively
/// (`map_write` takes `&mut [u8]`), so a plain read-modify-write is atomic.
fn atomic64(mem: &mut Memory<'_>, regs: &mut [u64; REGISTER_FILE], op: Op) -> Result<(), Fault> {
    let ptr = writable_ptr(mem, regs, op, 8)?.cast::<u64>();
    let src = usize::from(op.src) & (REGISTER_FILE - 1);
    // SAFETY: `ptr` covers 8 writable bytes (checked above); accesses are unaligned-safe.
    let old = unsafe { ptr.read_unaligned() };
    let operation = op.imm as i32;
    let new = match operation & !ATOMIC_FETCH {
        ATOMIC_ADD => old.wrapping_add(regs[src]),
        ATOMIC_OR => old | regs[src],
        ATOMIC_AND => old & regs[src],
        ATOMIC_XOR => old ^ regs[src],
        _ if operation == ATOMIC_XCHG => regs[src],
        _ if operation == ATOMIC_CMPXCHG => {
            let new = if old == regs[0] { regs[src] } else { old };
            regs[0] = old;
            new
        }
        _ => old, // the verifier admits no other operation
    };
    // SAFETY: as above.
    unsafe { ptr.write_unaligned(new) };
    if operation & ATOMIC_FETCH != 0 && operation != ATOMIC_CMPXCHG {
        regs[src] = old;
    }
    Ok(())
}

/// 32-bit atomics; fetched values are zero-extended.
fn atomic32(mem: &mut Memory<'_>, regs: &mut [u64; REGISTER_FILE], op: Op) -> Result<(), Fault> {
    let ptr = writable_ptr(mem, regs, op, 4)?.cast::<u32>();
    let src = usize::from(op.src) & (REGISTER_FILE - 1);
    let value = regs[src] as u32;
    // SAFETY: `ptr` covers 4 writable bytes (checked above).
    let old = unsafe { ptr.read_unaligned() };
    let operation = op.imm as i32;
    let new = match operation & !ATOMIC_FETCH {
        ATOMIC_ADD => old.wrapping_add(value),
        ATOMIC_OR => old | value,
        ATOMIC_AND => old & value,
        ATOMIC_XOR => old ^ value,
        _ if operation == ATOMIC_XCHG => value,
        _ if operation == ATOMIC_CMPXCHG => {
            let new = if old == regs[0] as u32 { value } else { old };
            regs[0] = u64::from(old);
            new
        }
        _ => old, // the verifier admits no other operation
    };
    // SAFETY: as above.
    unsafe { ptr.write_unaligned(new) };
    if operation & ATOMIC_FETCH != 0 && operation != ATOMIC_CMPXCHG {
        regs[src] = u64::from(old);
    }
    Ok(())
}

/// Checks the helper's pointer arguments against its signature, then calls it with r1..=r5.
#[inline(never)]
pub(crate) fn call_helper<C>(
    helper: &Registered<C>,
    id: u32,
    ctx: &mut C,
    mem: &mut Memory<'_>,
    args: [u64; helpers::HELPER_ARGS],
    pc: impl Fn() -> usize,
) -> Result<u64, Trap> {
    // The slot index is looked up only for a trap (`pc`), never on the call's hot path.
    match call_helper_checked(helper, ctx, mem, args) {
        Ok(r0) => Ok(r0),
        Err(failure) => Err(failure.into_trap(pc(), id)),
    }
}

/// Why a helper call failed, kept small so the call's hot path moves no [`Trap`]; it becomes
/// one (with the call's slot) on the cold path.
#[derive(Debug)]
pub(crate) enum CallFailure {
    /// A pointer argument's bytes are not granted.
    Argument { arg: u8, error: MemoryError },
    /// The helper returned an error.
    Helper(HelperError),
}

impl CallFailure {
    #[cold]
    #[inline(never)]
    pub(crate) fn into_trap(self, pc: usize, id: u32) -> Trap {
        match self {
            CallFailure::Argument { arg, error } => Trap::HelperArgument { pc, id, arg, error },
            CallFailure::Helper(error) => Trap::Helper { pc, id, error },
        }
    }
}

/// Checks `args` against `helper`'s signature, then calls it. The calls of all-scalar helpers
/// (most of the engine's) call the helper here; the others go out of line, check and call
/// there, so nothing of the check lives across a call in the caller (the trampoline then saves
/// fewer registers on every call).
#[inline(always)]
pub(crate) fn call_helper_checked<C>(
    registered: &Registered<C>,
    ctx: &mut C,
    mem: &mut Memory<'_>,
    args: [u64; helpers::HELPER_ARGS],
) -> Result<u64, CallFailure> {
    if registered.checks_pointers() {
        return call_checking_pointers(registered, ctx, mem, args);
    }
    (registered.helper.func)(ctx, mem, args).map_err(CallFailure::Helper)
}

/// `helpers::check_args`, then the helper: the path of helpers with a pointer argument.
#[inline(never)]
fn call_checking_pointers<C>(
    registered: &Registered<C>,
    ctx: &mut C,
    mem: &mut Memory<'_>,
    args: [u64; helpers::HELPER_ARGS],
) -> Result<u64, CallFailure> {
    if let Err((arg, error)) = helpers::check_args(registered, mem, &args) {
        return Err(CallFailure::Argument { arg, error });
    }
    (registered.helper.func)(ctx, mem, args).map_err(CallFailure::Helper)
}

#[inline(always)]
fn div64(a: u64, b: u64) -> u64 {
    a.checked_div(b).unwrap_or(0)
}

#[inline(always)]
fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

#[inline(always)]
fn mod64(a: u64, b: u64) -> u64 {
    a.checked_rem(b).unwrap_or(a)
}

#[inline(always)]
fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

#[inline(always)]
fn div32(a: u64, b: u64) -> u64 {
    u64::from((a as u32).checked_div(b as u32).unwrap_or(0))
}

#[inline(always)]
fn sdiv32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    u64::from(if b == 0 { 0 } else { a.wrapping_div(b) as u32 })
}

#[inline(always)]
fn mod32(a: u64, b: u64) -> u64 {
    u64::from((a as u32).checked_rem(b as u32).unwrap_or(a as u32))
}

#[inline(always)]
fn smod32(a: u64, b: u64) -> u64 {
    let (a, b) = (a as i32, b as i32);
    u64::from(if b == 0 {
        a as u32
    } else {
        a.wrapping_rem(b) as u32
    })
}
