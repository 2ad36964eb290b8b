//! Accesses through r1's value at entry: which checked loads and stores address the region the
//! code's caller passes in with r1 (the first embedder region, where embedders map what r1
//! points to, e.g. the NAAM step context) at a constant offset from r1's entry value.
//!
//! Such an access is checked against that region as the caller passed it, in two instructions
//! (a test for 0 of r1's host address, which the prologue sets to 0 unless the bytes the region
//! holds past r1 cover every such access of that kind), and leaves the region caches alone: a
//! NAAM step reads its context between the accesses to its arguments, state and fetched data,
//! and each of those reads had refilled the read cache, so the next access to the other region
//! missed it (a slot-table lookup, ≈ 25 instructions). The check is sound where it passes (the
//! access is in the first embedder region, at the host address it names); where it fails, the
//! access takes the ordinary checked path, so traps and their order are the interpreter's. The
//! passed region describes the slot table only until a helper call may have changed it, so an
//! access counts only when no helper call lies on any path from the entry to it (and only in
//! programs without local calls, where r1 is another function's argument after a call).

use crate::fuse;
use crate::op::{Kind, Op};

use super::loops::{REGS, Sym, meet, successors, transfer};

/// For each decoded index, when the op there is a checked load or store (not an atomic) whose
/// base register holds r1's value at the program's entry plus a constant on every path from the
/// entry, with no helper call on any of those paths, whose address is that value plus an offset
/// from 0 to `i32::MAX`, and when some access on one of those paths may have refilled the cache
/// of its kind: that constant. Before such an access the cache still holds the first embedder
/// region, as the caller primed it, and the ordinary check hits it as cheaply.
pub(super) fn entry_based(ops: &[Op], entry: usize) -> Vec<Option<i64>> {
    let mut based = vec![None; ops.len()];
    if entry >= ops.len() || ops.iter().any(|op| op.kind == Kind::CallLocal) {
        return based;
    }
    let states = reaching_states(ops, entry);
    for (index, (op, state)) in ops.iter().zip(&states).enumerate() {
        let op = fuse::first_of(*op);
        let Some(state) = state else {
            continue;
        };
        if let Some((base, write)) = access(op)
            && state.refilled[usize::from(write)]
        {
            based[index] = base_offset(op, state.regs[usize::from(base)]);
        }
    }
    based
}

/// What holds before an op: the registers relative to r1 at the entry (every other register
/// unknown there), and whether an access since the entry may have refilled the read and the
/// write cache.
#[derive(Clone, Copy, PartialEq, Eq)]
struct State {
    regs: [Sym; REGS],
    refilled: [bool; 2],
}

/// The state before each reachable op (`None`: unreachable); after a helper call every
/// register is unknown, which ends the facts.
fn reaching_states(ops: &[Op], entry: usize) -> Vec<Option<State>> {
    let mut states: Vec<Option<State>> = vec![None; ops.len()];
    let mut regs = [Sym::Unknown; REGS];
    regs[1] = Sym::Reg(1, 0);
    states[entry] = Some(State {
        regs,
        refilled: [false; 2],
    });
    let mut work = vec![entry];
    while let Some(index) = work.pop() {
        let Some(mut state) = states[index] else {
            continue;
        };
        let op = fuse::first_of(ops[index]);
        if let Some((base, write)) = access(op)
            && base_offset(op, state.regs[usize::from(base)]).is_none()
        {
            state.refilled[usize::from(write)] = true;
        }
        match op.kind {
            Kind::CallHelper | Kind::Callx => state.regs = [Sym::Unknown; REGS],
            Kind::Atomic32 | Kind::Atomic64 => {
                state.refilled[1] = true;
                transfer(op, &mut state.regs);
            }
            _ => transfer(op, &mut state.regs),
        }
        for to in successors(ops, index) {
            let merged = match states[to] {
                Some(old) => State {
                    regs: meet(old.regs, state.regs),
                    refilled: [0, 1].map(|kind| old.refilled[kind] || state.refilled[kind]),
                },
                None => state,
            };
            if states[to] != Some(merged) {
                states[to] = Some(merged);
                work.push(to);
            }
        }
    }
    states
}

/// The constant an access through a register holding `base` adds to r1's entry value, when
/// its address is that value plus an offset from 0 to `i32::MAX`.
fn base_offset(op: Op, base: Sym) -> Option<i64> {
    let Sym::Reg(1, offset) = base else {
        return None;
    };
    let address = offset.checked_add(i64::from(op.target))?;
    i32::try_from(address).ok().filter(|disp| *disp >= 0)?;
    Some(offset)
}

/// The base register of a checked load or store and whether it writes (atomics excluded: they
/// take the ordinary path).
fn access(op: Op) -> Option<(u8, bool)> {
    use Kind::*;
    match op.kind {
        Ldx8 | Ldx16 | Ldx32 | Ldx64 | LdxSx8 | LdxSx16 | LdxSx32 => Some((op.src, false)),
        St8 | St16 | St32 | St64 | Stx8 | Stx16 | Stx32 | Stx64 => Some((op.dst, true)),
        _ => None,
    }
}
