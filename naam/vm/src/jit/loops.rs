//! Loop versioning: which loops get a second, budget-check-free copy of their body.
//!
//! A loop qualifies when one exit test `T` (`if rI > K goto out`, or an equivalent unsigned
//! 64-bit compare with an immediate, or with a register the loop does not write that holds the
//! constant `K` on every edge into it) lies on every cycle and `rI` grows by at least 1 from one
//! pass of `T` to the next, along every path: then `T` lets the loop go round at most `K + 1`
//! times (the values it stays on are distinct and at most `K`), whatever `rI` held on entry,
//! and the loop executes at most `insn_bound` instructions from its entry until it leaves. At the
//! entry the translator compares the budget left with that bound; if the budget covers it, no
//! budget check inside the loop (at its taken jumps, those leaving it included) can fail, and the
//! copy without them runs, else the checked copy, which traps exactly where the interpreter does.
//! The analysis is over the ops the translator compiles (fused ops as their first half). A loop
//! is the set of ops on a cycle through its test, not necessarily contiguous (clang places a
//! loop's test before code that only runs after it, and its body after that code): ops between
//! its segments are outside it, and an edge from them into the loop is an edge from outside.

use crate::fuse;
use crate::op::{Kind, Op};

use super::translate::jump_condition;

/// Largest `K` an exit test may stay on: keeps `insn_bound` far from overflow (a loop that may
/// run a million times will rarely have the budget for all of them anyway).
const STAY_BOUND_MAX: u64 = 1 << 20;
/// Largest growth of the induction register per cycle: with `rI ≤ K ≤ STAY_BOUND_MAX` at each
/// pass, `rI + step` never wraps.
const STEP_MAX: i64 = 1 << 20;
/// Registers r0..=r10.
pub(super) const REGS: usize = 11;

/// A load or store of a versioned loop whose every address over the loop is known at the
/// loop's entry, from the registers there: the copy without budget checks skips its region
/// check when the precheck finds all of them in the region the cache held at the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HoistedAccess {
    /// Decoded index of the load or store.
    pub(super) index: usize,
    /// Whether it writes (checked against the write cache).
    pub(super) write: bool,
    /// Its address on the way from the entry to the first pass of the exit test, if it runs
    /// there: a register at the entry plus a constant.
    pub(super) entry_address: Option<(u8, i64)>,
    /// Its address in the first cycle (a register at the entry plus a constant) and its growth
    /// per cycle, if it runs in cycles.
    pub(super) cycle_address: Option<(u8, i64, i64)>,
}

/// A loop the translator compiles twice (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct VersionedLoop {
    /// First and last decoded index of the loop's ops.
    pub(super) first: usize,
    pub(super) last: usize,
    /// Which ops of `first..=last` are the loop's (indexed from `first`): clang places a
    /// loop's test after code that leaves it, so its ops need not be one contiguous range.
    pub(super) members: Vec<bool>,
    /// The leader every edge from outside the range enters by.
    pub(super) entry: usize,
    /// Most instructions the loop executes from entering `entry` until it leaves the range
    /// (the op that leaves counted).
    pub(super) insn_bound: i64,
    /// The largest value the exit test stays on.
    pub(super) stay_bound: u64,
    /// The induction register at the first pass of the exit test: a register at the entry plus
    /// a constant (`None`: unknown, and no access is hoisted).
    pub(super) first_pass: Option<(u8, i64)>,
    /// The accesses whose region check the unchecked copy may skip.
    pub(super) hoisted: Vec<HoistedAccess>,
}

impl VersionedLoop {
    pub(super) fn contains(&self, index: usize) -> bool {
        member(&self.members, self.first, index)
    }

    /// The loop's ops in order.
    pub(super) fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        (self.first..=self.last).filter(|index| self.contains(*index))
    }

    /// The loop's ops as maximal contiguous ranges, in order.
    pub(super) fn segments(&self) -> Vec<core::ops::Range<usize>> {
        let mut segments: Vec<core::ops::Range<usize>> = Vec::new();
        for index in self.indices() {
            match segments.last_mut() {
                Some(segment) if segment.end == index => segment.end = index + 1,
                _ => segments.push(index..index + 1),
            }
        }
        segments
    }
}

/// Whether `index` is one of the ops `members` marks (indexed from `first`).
fn member(members: &[bool], first: usize, index: usize) -> bool {
    index
        .checked_sub(first)
        .and_then(|at| members.get(at))
        .is_some_and(|inside| *inside)
}

/// A register's value relative to the registers at an origin: `Reg(r, k)` is r's value there
/// plus `k` (wrapping, as eBPF's 64-bit addition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sym {
    Unknown,
    Reg(u8, i64),
}

/// The versioned loops of a program without local calls (a program with local calls keeps its
/// layout: return dispatch and pinned counts are not worth the analysis); disjoint ranges.
pub(super) fn versioned_loops(ops: &[Op], entry: usize) -> Vec<VersionedLoop> {
    if ops
        .iter()
        .any(|op| fuse::first_of(*op).kind == Kind::CallLocal)
    {
        return Vec::new();
    }
    let preds = predecessors(ops);
    let mut loops: Vec<VersionedLoop> = Vec::new();
    for test in 0..ops.len() {
        let Some(found) = version_at(ops, &preds, entry, test) else {
            continue;
        };
        // Two exit tests of one loop give the same range: keep the first.
        if loops
            .iter()
            .all(|other| other.last < found.first || found.last < other.first)
        {
            loops.push(found);
        }
    }
    loops
}

/// The loop whose exit test is the op at `test`, if it qualifies.
fn version_at(
    ops: &[Op],
    preds: &[Vec<usize>],
    entry: usize,
    test: usize,
) -> Option<VersionedLoop> {
    let (first, members) = cycle_members(ops, preds, test)?;
    let last = first + members.len() - 1;
    let span = Span {
        test,
        first,
        last,
        members: &members,
    };
    let loop_entry = single_entry(ops, entry, span)?;
    let bounds = Bounds {
        preds,
        entry,
        loop_entry,
    };
    let (stay, stay_bound, induction) = exit_test(ops, span, bounds)?;
    let order = topological_order(ops, span)?;
    let entry_walk = (loop_entry != test).then(|| walk(ops, &order, span, loop_entry, IDENTITY));
    let facts = entry_facts(entry_walk.as_ref(), induction);
    let cycle = induction_cycle(ops, &order, span, stay, induction, facts)?;
    let passes = i64::try_from(stay_bound + 1).ok()?;
    let insn_bound =
        entry_walk.as_ref().map_or(1, |walked| walked.longest) + passes * cycle.longest;
    let moves = walk(ops, &order, span, stay, IDENTITY);
    let at_first_pass = |reg: u8| at_first_pass(entry_walk.as_ref(), reg);
    let first_pass = at_first_pass(induction);
    let hoisted = match first_pass {
        Some(_) if !calls_helpers(ops, span) => (first..=last)
            .filter(|index| span.contains(*index))
            .filter_map(|index| {
                hoisted_access(ops, index, entry_walk.as_ref(), &moves, at_first_pass)
            })
            .collect(),
        _ => Vec::new(),
    };
    Some(VersionedLoop {
        first,
        last,
        members,
        entry: loop_entry,
        insn_bound,
        stay_bound,
        first_pass,
        hoisted,
    })
}

/// Whether the loop calls a helper (which may remap the slots a hoisted check relied on).
fn calls_helpers(ops: &[Op], span: Span) -> bool {
    (span.first..=span.last)
        .filter(|index| span.contains(*index))
        .any(|index| {
            matches!(
                fuse::first_of(ops[index]).kind,
                Kind::CallHelper | Kind::Callx
            )
        })
}

/// `reg` at the first pass of the exit test as a register at the entry plus a constant, the
/// same on every path (the entry is the test when `entry_walk` is `None`).
fn at_first_pass(entry_walk: Option<&Walk>, reg: u8) -> Option<(u8, i64)> {
    let Some(walked) = entry_walk else {
        return Some((reg, 0));
    };
    let mut values = walked.arrivals.iter().map(|regs| regs[usize::from(reg)]);
    let first = values.next()?;
    match first {
        Sym::Reg(base, add) if values.all(|value| value == first) => Some((base, add)),
        _ => None,
    }
}

/// The op at `index` as a hoisted access, when it is a load or store (not of the stack, not
/// atomic) whose base register is known wherever it runs: on the entry path from `entry_walk`,
/// in the cycles from `moves` (the walk of one cycle from the registers at a pass of the test)
/// with a constant growth per cycle.
fn hoisted_access(
    ops: &[Op],
    index: usize,
    entry_walk: Option<&Walk>,
    moves: &Walk,
    at_first_pass: impl Fn(u8) -> Option<(u8, i64)>,
) -> Option<HoistedAccess> {
    use Kind::*;
    let op = fuse::first_of(ops[index]);
    let (base, write) = match op.kind {
        Ldx8 | Ldx16 | Ldx32 | Ldx64 | LdxSx8 | LdxSx16 | LdxSx32 => (op.src, false),
        St8 | St16 | St32 | St64 | Stx8 | Stx16 | Stx32 | Stx64 => (op.dst, true),
        _ => return None,
    };
    let offset = i64::from(op.target);
    let known = |regs: &[Sym; REGS]| match regs[usize::from(base)] {
        Sym::Reg(reg, add) => Some((reg, add.wrapping_add(offset))),
        Sym::Unknown => None,
    };
    let entry_address = match entry_walk.and_then(|walked| walked.states[index - walked.first]) {
        Some(regs) => Some(known(&regs)?),
        None => None,
    };
    let cycle_address = match moves.states[index - moves.first] {
        Some(regs) => {
            let (reg, add) = known(&regs)?;
            let step = cycle_step(moves, reg)?;
            let (entry_reg, entry_add) = at_first_pass(reg)?;
            Some((entry_reg, entry_add.wrapping_add(add), step))
        }
        None => None,
    };
    (entry_address.is_some() || cycle_address.is_some()).then_some(HoistedAccess {
        index,
        write,
        entry_address,
        cycle_address,
    })
}

/// How much `reg` grows from one pass of the exit test to the next, the same on every cycle
/// and at most [`STEP_MAX`] either way.
fn cycle_step(moves: &Walk, reg: u8) -> Option<i64> {
    let mut steps = moves
        .arrivals
        .iter()
        .map(|regs| match regs[usize::from(reg)] {
            Sym::Reg(same, step) if same == reg && step.unsigned_abs() <= STEP_MAX as u64 => {
                Some(step)
            }
            _ => None,
        });
    let first = steps.next()??;
    steps.all(|step| step == Some(first)).then_some(first)
}

/// Where control may go after the op at `index` (local calls excluded by the caller).
pub(super) fn successors(ops: &[Op], index: usize) -> Vec<usize> {
    let op = fuse::first_of(ops[index]);
    let target = op.target as usize;
    let next = match op.kind {
        Kind::Exit => vec![],
        Kind::Ja => vec![target],
        kind if jump_condition(kind).is_some() => vec![index + 1, target],
        _ => vec![index + 1],
    };
    next.into_iter().filter(|to| *to < ops.len()).collect()
}

fn predecessors(ops: &[Op]) -> Vec<Vec<usize>> {
    let mut preds = vec![Vec::new(); ops.len()];
    for index in 0..ops.len() {
        for to in successors(ops, index) {
            preds[to].push(index);
        }
    }
    preds
}

/// Every op reachable from `from` by following `next`.
fn reachable(len: usize, from: usize, next: impl Fn(usize) -> Vec<usize>) -> Vec<bool> {
    let mut seen = vec![false; len];
    let mut work = vec![from];
    while let Some(index) = work.pop() {
        for to in next(index) {
            if !seen[to] {
                seen[to] = true;
                work.push(to);
            }
        }
    }
    seen
}

/// The ops on a cycle through `test`: the first one's index and which of the ops from it to
/// the last one's are on such a cycle.
fn cycle_members(ops: &[Op], preds: &[Vec<usize>], test: usize) -> Option<(usize, Vec<bool>)> {
    jump_condition(fuse::first_of(ops[test]).kind)?;
    let forward = reachable(ops.len(), test, |index| successors(ops, index));
    if !forward[test] {
        return None;
    }
    let backward = reachable(ops.len(), test, |index| preds[index].clone());
    let on_cycle: Vec<bool> = (0..ops.len())
        .map(|index| forward[index] && backward[index])
        .collect();
    let first = on_cycle.iter().position(|member| *member)?;
    let last = on_cycle.iter().rposition(|member| *member)?;
    Some((first, on_cycle[first..=last].to_vec()))
}

/// The op `test` goes to when it stays in the loop, the largest `K` it stays on (it stays
/// exactly when `rI ≤ K`) and `rI`: an unsigned 64-bit compare with a bound, one edge out.
fn exit_test(ops: &[Op], span: Span, bounds: Bounds) -> Option<(usize, u64, u8)> {
    let test = span.test;
    let op = fuse::first_of(ops[test]);
    let inside = |index: usize| span.contains(index);
    let (target, fall) = (op.target as usize, test + 1);
    immediate_forms(ops, span, bounds, op)
        .into_iter()
        .flatten()
        .find_map(|(kind, induction, bound)| {
            let (stay, stay_bound) = match (kind, inside(target), inside(fall)) {
                (Kind::Jgt64Imm, false, true) => (fall, Some(bound)),
                (Kind::Jge64Imm, false, true) => (fall, bound.checked_sub(1)),
                (Kind::Jle64Imm, true, false) => (target, Some(bound)),
                (Kind::Jlt64Imm, true, false) => (target, bound.checked_sub(1)),
                _ => return None,
            };
            let stay_bound = stay_bound.filter(|bound| *bound <= STAY_BOUND_MAX)?;
            Some((stay, stay_bound, induction))
        })
}

/// The exit test as unsigned compares of a register with an immediate: the kind (the `Imm`
/// form), the register and the immediate. A compare of two registers has such a form for each
/// of them that holds a constant the loop does not change (clang hoists a bound it compares
/// with into a register: MICA's bucket copy tests `if r5 > r0` after `r5 = 15`); with that
/// register first, the compare is mirrored (`K > rI` is `rI < K`).
fn immediate_forms(ops: &[Op], span: Span, bounds: Bounds, op: Op) -> [Option<(Kind, u8, u64)>; 2] {
    use Kind::*;
    let (as_is, mirrored) = match op.kind {
        Jgt64Imm | Jge64Imm | Jlt64Imm | Jle64Imm => {
            return [Some((op.kind, op.dst, op.imm)), None];
        }
        Jgt64Reg => (Jgt64Imm, Jlt64Imm),
        Jge64Reg => (Jge64Imm, Jle64Imm),
        Jlt64Reg => (Jlt64Imm, Jgt64Imm),
        Jle64Reg => (Jle64Imm, Jge64Imm),
        _ => return [None, None],
    };
    let constant = |reg: u8| invariant_constant(ops, span, bounds, reg);
    [
        constant(op.src).map(|bound| (as_is, op.dst, bound)),
        constant(op.dst).map(|bound| (mirrored, op.src, bound)),
    ]
}

/// What the search for a loop's constant bound needs: the predecessors, the program's entry
/// and the loop's.
#[derive(Clone, Copy)]
struct Bounds<'a> {
    preds: &'a [Vec<usize>],
    entry: usize,
    loop_entry: usize,
}

/// Ops searched back from an edge into a loop for the immediate its bound register was set to.
const CONSTANT_SEARCH_OPS: usize = 64;

/// The value `reg` holds whenever the loop runs, if it is one constant: no op of the loop
/// writes it, and on every edge from outside into the loop's entry it was last set from an
/// immediate, found through ops with a single predecessor (not the program's entry).
fn invariant_constant(ops: &[Op], span: Span, bounds: Bounds, reg: u8) -> Option<u64> {
    if bounds.loop_entry == bounds.entry
        || (span.first..=span.last)
            .filter(|index| span.contains(*index))
            .any(|index| writes(ops[index], reg))
    {
        return None;
    }
    let mut values = bounds.preds[bounds.loop_entry]
        .iter()
        .filter(|from| !span.contains(**from))
        .map(|from| constant_after(ops, bounds, *from, reg));
    let first = values.next()??;
    values.all(|value| value == Some(first)).then_some(first)
}

/// The immediate `reg` holds after the op at `index`, if the last op writing it on the way
/// there sets it to one and every op between has a single predecessor.
fn constant_after(ops: &[Op], bounds: Bounds, index: usize, reg: u8) -> Option<u64> {
    let mut at = index;
    for _ in 0..CONSTANT_SEARCH_OPS {
        let op = fuse::first_of(ops[at]);
        if writes(op, reg) {
            let immediate = matches!(op.kind, Kind::Lddw | Kind::Mov64Imm | Kind::Mov32Imm);
            return immediate.then_some(op.imm);
        }
        let [single] = bounds.preds[at].as_slice() else {
            return None;
        };
        if at == bounds.entry {
            return None;
        }
        at = *single;
    }
    None
}

/// Whether the op (as the translator compiles it: a fused op as its first half) may change
/// `reg`.
fn writes(op: Op, reg: u8) -> bool {
    let mut regs = IDENTITY;
    transfer(fuse::first_of(op), &mut regs);
    regs[usize::from(reg)] != Sym::Reg(reg, 0)
}

/// The one op every edge from outside the loop's ops (and the program's entry, if inside) goes
/// to.
fn single_entry(ops: &[Op], entry: usize, span: Span) -> Option<usize> {
    let inside = |index: usize| span.contains(index);
    let mut entries = (0..ops.len())
        .filter(|from| !inside(*from))
        .flat_map(|from| successors(ops, from))
        .filter(|to| inside(*to))
        .chain(inside(entry).then_some(entry));
    let loop_entry = entries.next()?;
    entries.all(|to| to == loop_entry).then_some(loop_entry)
}

/// The loop's ops but `test` in an order where every edge between them goes forward, if there
/// is one (no cycle avoids `test`).
fn topological_order(ops: &[Op], span: Span) -> Option<Vec<usize>> {
    let Span {
        test, first, last, ..
    } = span;
    let inner = |index: usize| span.contains(index) && index != test;
    let mut incoming = vec![0usize; last + 1 - first];
    let members = (first..=last).filter(|index| span.contains(*index)).count();
    for from in (first..=last).filter(|index| inner(*index)) {
        for to in successors(ops, from).into_iter().filter(|to| inner(*to)) {
            incoming[to - first] += 1;
        }
    }
    let mut ready: Vec<usize> = (first..=last)
        .filter(|index| inner(*index) && incoming[index - first] == 0)
        .collect();
    let mut order = Vec::with_capacity(incoming.len());
    while let Some(from) = ready.pop() {
        order.push(from);
        for to in successors(ops, from).into_iter().filter(|to| inner(*to)) {
            incoming[to - first] -= 1;
            if incoming[to - first] == 0 {
                ready.push(to);
            }
        }
    }
    (order.len() == members - 1).then_some(order)
}

/// Registers equal to themselves: the state at an origin.
const IDENTITY: [Sym; REGS] = {
    let mut regs = [Sym::Unknown; REGS];
    let mut reg = 0;
    while reg < REGS {
        regs[reg] = Sym::Reg(reg as u8, 0);
        reg += 1;
    }
    regs
};

/// A loop's exit test and ops.
#[derive(Clone, Copy)]
struct Span<'a> {
    test: usize,
    first: usize,
    last: usize,
    /// Which ops of `first..=last` are the loop's (indexed from `first`).
    members: &'a [bool],
}

impl Span<'_> {
    fn contains(&self, index: usize) -> bool {
        member(self.members, self.first, index)
    }
}

/// Offsets from the induction register `induction` that the other registers hold at the first
/// pass of the exit test, on every path from the loop's entry (`None` when the entry is the
/// test): clang's rotated loops compute the next index (`r6 = r5 + 1`) before the test and copy
/// it after (`r5 = r6`), so the step is only visible with such a fact.
fn entry_facts(entry_walk: Option<&Walk>, induction: u8) -> [Option<i64>; REGS] {
    let mut facts = [None; REGS];
    facts[usize::from(induction)] = Some(0);
    let Some(walked) = entry_walk else {
        return facts;
    };
    for (reg, fact) in facts.iter_mut().enumerate() {
        let mut offsets =
            walked
                .arrivals
                .iter()
                .map(|regs| match (regs[usize::from(induction)], regs[reg]) {
                    (Sym::Reg(base, at), Sym::Reg(other, value)) if base == other => {
                        Some(value.wrapping_sub(at))
                    }
                    _ => None,
                });
        let first = offsets.next().flatten();
        *fact = first.filter(|_| offsets.all(|offset| offset == first));
    }
    facts
}

/// The walk of one cycle (from the exit test's stay edge back to it), when the induction
/// register grows by 1..=[`STEP_MAX`] on every path. It starts from `facts` (offsets from the
/// induction register that hold at the test) and drops each that a cycle does not keep, until
/// the rest hold at every pass.
fn induction_cycle(
    ops: &[Op],
    order: &[usize],
    span: Span,
    stay: usize,
    induction: u8,
    mut facts: [Option<i64>; REGS],
) -> Option<Walk> {
    loop {
        let start = facts.map(|fact| fact.map_or(Sym::Unknown, |at| Sym::Reg(induction, at)));
        let cycle = walk(ops, order, span, stay, start);
        let mut kept = true;
        for regs in &cycle.arrivals {
            let Sym::Reg(base, step) = regs[usize::from(induction)] else {
                return None;
            };
            if base != induction || !(1..=STEP_MAX).contains(&step) {
                return None;
            }
            for (reg, fact) in facts.iter_mut().enumerate() {
                let holds =
                    fact.is_some_and(|at| regs[reg] == Sym::Reg(induction, at.wrapping_add(step)));
                if fact.is_some() && !holds {
                    *fact = None;
                    kept = false;
                }
            }
        }
        if cycle.arrivals.is_empty() {
            return None;
        }
        if kept {
            return Some(cycle);
        }
    }
}

/// What the paths from one origin inside the loop do until they reach `test` or leave.
struct Walk {
    /// Most ops executed on one path, the last one (`test`, or the op that leaves) counted.
    longest: i64,
    /// The registers, relative to those at the origin, on each edge into `test`.
    arrivals: Vec<[Sym; REGS]>,
    /// The registers before each op of the loop (from `first`) the walk reaches.
    states: Vec<Option<[Sym; REGS]>>,
    first: usize,
}

/// Follows every path from `origin` (not the test), whose registers are `start`, in
/// topological `order`.
fn walk(ops: &[Op], order: &[usize], span: Span, origin: usize, start: [Sym; REGS]) -> Walk {
    let Span {
        test, first, last, ..
    } = span;
    let mut states: Vec<Option<(i64, [Sym; REGS])>> = vec![None; last + 1 - first];
    states[origin - first] = Some((0, start));
    let mut result = Walk {
        longest: 0,
        arrivals: Vec::new(),
        states: vec![None; last + 1 - first],
        first,
    };
    for index in order {
        let Some((before, mut regs)) = states[index - first] else {
            continue;
        };
        result.states[index - first] = Some(regs);
        let executed = before + 1;
        result.longest = result.longest.max(executed);
        transfer(fuse::first_of(ops[*index]), &mut regs);
        for to in successors(ops, *index) {
            if to == test {
                result.longest = result.longest.max(executed + 1);
                result.arrivals.push(regs);
            } else if span.contains(to) {
                states[to - first] = Some(match states[to - first] {
                    None => (executed, regs),
                    Some((other, known)) => (other.max(executed), meet(known, regs)),
                });
            }
        }
    }
    result
}

pub(super) fn meet(a: [Sym; REGS], b: [Sym; REGS]) -> [Sym; REGS] {
    core::array::from_fn(|reg| {
        if a[reg] == b[reg] {
            a[reg]
        } else {
            Sym::Unknown
        }
    })
}

/// The registers after `op`: copies and additions of constants are followed, anything else
/// written is unknown.
pub(super) fn transfer(op: Op, regs: &mut [Sym; REGS]) {
    use Kind::*;
    let dst = usize::from(op.dst);
    match op.kind {
        Mov64Reg => regs[dst] = regs[usize::from(op.src)],
        Add64Imm => regs[dst] = offset(regs[dst], op.imm as i64),
        Sub64Imm => regs[dst] = offset(regs[dst], (op.imm as i64).wrapping_neg()),
        CallHelper | Callx => regs[..=5].fill(Sym::Unknown),
        Atomic32 | Atomic64 => {
            regs[0] = Sym::Unknown;
            regs[usize::from(op.src)] = Sym::Unknown;
        }
        Ja | Exit | Nop | St8 | St16 | St32 | St64 | Stx8 | Stx16 | Stx32 | Stx64 | StStack8
        | StStack16 | StStack32 | StStack64 | StxStack8 | StxStack16 | StxStack32 | StxStack64 => {}
        kind if jump_condition(kind).is_some() => {}
        _ => regs[dst] = Sym::Unknown,
    }
}

fn offset(value: Sym, add: i64) -> Sym {
    match value {
        Sym::Reg(reg, known) => Sym::Reg(reg, known.wrapping_add(add)),
        Sym::Unknown => Sym::Unknown,
    }
}
