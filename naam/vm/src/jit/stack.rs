//! Which r10-relative stack slots the translator keeps in Cranelift variables (store-to-load
//! forwarding): clang's searches reload a spilled key and base pointer from the stack on every
//! iteration, and a variable turns each reload into a register (or one spill-slot load).
//!
//! Sound only while nothing but the slot's own stores writes its bytes between a store and a
//! later load. The translator writes every store through to memory and re-defines each
//! promoted slot from memory after every other possible writer (a store or atomic through any
//! register: the stack's VM address is public; a helper call: a helper may write through a
//! pointer argument). What this module rules out is a writer the translator cannot see as
//! such: another r10-relative access overlapping the slot at another offset or width.

use crate::fuse;
use crate::op::{Kind, Op};

/// Width of a promoted slot: only 64-bit slots, so a load never needs the narrower load's
/// zero or sign extension of what a store wrote.
const SLOT_BYTES: i32 = 8;
/// At most this many slots are promoted: each costs a reload after every other writer.
pub(super) const PROMOTED_SLOTS_MAX: usize = 16;

/// An r10-relative access: offset from the frame top, bytes, whether it loads.
#[derive(Clone, Copy)]
struct StackAccess {
    offset: i32,
    bytes: i32,
    load: bool,
}

/// Offsets (from the frame top) of the stack slots to promote, in ascending order: 64-bit
/// slots loaded at least once whose every overlapping r10-relative access is a 64-bit load or
/// store at exactly that offset. None in a program with local calls (r10 and the frame top
/// move there).
pub(super) fn promoted_slots(ops: &[Op]) -> Vec<i32> {
    let firsts = ops.iter().map(|op| fuse::first_of(*op));
    if firsts.clone().any(|op| op.kind == Kind::CallLocal) {
        return Vec::new();
    }
    let accesses: Vec<StackAccess> = firsts.filter_map(stack_access).collect();
    let mut offsets: Vec<i32> = accesses
        .iter()
        .filter(|access| access.load && access.bytes == SLOT_BYTES)
        .map(|access| access.offset)
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    offsets.retain(|&offset| {
        accesses
            .iter()
            .all(|access| exact_or_apart(*access, offset))
    });
    offsets.truncate(PROMOTED_SLOTS_MAX);
    offsets
}

/// Whether `access` is the 64-bit slot at `offset` itself or shares no byte with it.
fn exact_or_apart(access: StackAccess, offset: i32) -> bool {
    let same = access.offset == offset && access.bytes == SLOT_BYTES;
    let end = i64::from(access.offset) + i64::from(access.bytes);
    let apart = end <= i64::from(offset)
        || i64::from(access.offset) >= i64::from(offset) + i64::from(SLOT_BYTES);
    same || apart
}

fn stack_access(op: Op) -> Option<StackAccess> {
    use Kind::*;
    let (bytes, load) = match op.kind {
        LdxStack8 | LdxSxStack8 => (1, true),
        LdxStack16 | LdxSxStack16 => (2, true),
        LdxStack32 | LdxSxStack32 => (4, true),
        LdxStack64 => (8, true),
        StStack8 | StxStack8 => (1, false),
        StStack16 | StxStack16 => (2, false),
        StStack32 | StxStack32 => (4, false),
        StStack64 | StxStack64 => (8, false),
        _ => return None,
    };
    Some(StackAccess {
        offset: op.target,
        bytes,
        load,
    })
}

/// Which promoted slots each op's successors may load before storing (bit `k` for the slot at
/// `slots[k]`): after another writer only those need re-defining from memory, since on every
/// path from there the others are stored before they are loaded (a dead re-load is still
/// emitted: Cranelift keeps loads of writable memory).
pub(super) struct SlotLiveness {
    live_in: Vec<u16>,
}

impl SlotLiveness {
    /// Backward liveness over the ops (no local calls: `promoted_slots` is empty otherwise).
    pub(super) fn new(ops: &[Op], slots: &[i32]) -> Self {
        let (uses, stores): (Vec<u16>, Vec<u16>) =
            ops.iter().map(|op| slot_effect(*op, slots)).unzip();
        let mut live_in = vec![0u16; ops.len()];
        if slots.is_empty() {
            return SlotLiveness { live_in };
        }
        let mut changed = true;
        while changed {
            changed = false;
            for index in (0..ops.len()).rev() {
                let out = live_out(ops, &live_in, index);
                let value = (out & !stores[index]) | uses[index];
                changed |= value != live_in[index];
                live_in[index] = value;
            }
        }
        SlotLiveness { live_in }
    }

    /// Slots some path from the op at `index` loads before storing.
    pub(super) fn before(&self, index: usize) -> u16 {
        self.live_in.get(index).copied().unwrap_or(0)
    }

    /// Slots some path from the op at `index`'s successors loads before storing.
    pub(super) fn after(&self, ops: &[Op], index: usize) -> u16 {
        live_out(ops, &self.live_in, index)
    }
}

/// The promoted slots (bits of `slots`) the ops at `indices` load.
pub(super) fn slots_loaded(ops: &[Op], slots: &[i32], indices: impl Iterator<Item = usize>) -> u16 {
    indices.fold(0, |loaded, index| loaded | slot_effect(ops[index], slots).0)
}

fn live_out(ops: &[Op], live_in: &[u16], index: usize) -> u16 {
    super::loops::successors(ops, index)
        .into_iter()
        .fold(0, |out, next| out | live_in[next])
}

/// (slots the op loads, slots it stores), as bits of `slots`.
fn slot_effect(op: Op, slots: &[i32]) -> (u16, u16) {
    let Some(access) = stack_access(fuse::first_of(op)) else {
        return (0, 0);
    };
    let Some(position) = slots.iter().position(|slot| *slot == access.offset) else {
        return (0, 0);
    };
    if access.bytes != SLOT_BYTES {
        return (0, 0); // not promoted: no access overlaps a promoted slot at another width
    }
    let bit = 1u16 << position;
    if access.load { (bit, 0) } else { (0, bit) }
}
