//! Verified ops → Cranelift IR → machine code for one ISA.
//!
//! The program becomes one function `fn(ctx: *mut JitCtx, r1, r2, first region's host address,
//! read bound, write bound) -> (word, r0)`, where the word is the budget left after a final
//! `exit`, or a trap's status with `status::TRAPPED` set. A Cranelift block starts at every
//! *leader* (the entry, every jump and call target, and every instruction after a jump, call or
//! exit); the instructions each block executes are counted at compile time and taken off the
//! budget left only where needed ([`budget_offsets`]), and the count is compared with the
//! budget where the interpreter compares it (taken jumps, local calls, exits), except at taken
//! jumps whose check a later one repeats before anything observable happens
//! ([`budget_deferrable`], [`budget_anchored`]). Faults leave through cold blocks that record
//! the trap in the context and return a [`status`] code.

use std::borrow::Cow;

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I16, I32, I64};
use cranelift_codegen::ir::{
    AbiParam, AliasRegionData, Block, BlockArg, Function, InstBuilder, JumpTableData, MemFlagsData,
    SigRef, Signature, StackSlot, StackSlotData, StackSlotKind, Type, UserFuncName, Value,
};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};

use super::code::{
    CALLX_DESCRIPTOR, DirectEntry, JitCtx, WIDEST_ACCESS_BYTES, call_descriptor, direct_key, status,
};
use super::entry::entry_based;
use super::loops::{HoistedAccess, VersionedLoop, versioned_loops};
use crate::fuse;
use crate::memory::{LIVE_OFFSET, Region, STACK_SLOT, VM_SLOTS, WRITTEN_OFFSET, slot_base};
use crate::op::{Kind, Op};
use crate::opcode::{
    ATOMIC_ADD, ATOMIC_AND, ATOMIC_CMPXCHG, ATOMIC_FETCH, ATOMIC_OR, ATOMIC_XCHG, ATOMIC_XOR,
};
use crate::program::JitError;
use crate::{BUDGET_INSN_DEFAULT, CALL_DEPTH_MAX, STACK_FRAME_BYTES};

const FRAME: i64 = STACK_FRAME_BYTES as i64;
/// Bytes of one saved frame on the native stack: return-site number and r6..=r9.
const SAVED_FRAME_BYTES: i64 = 5 * 8;
const REGION_BYTES: i64 = size_of::<Region>() as i64;
const SLOT_SHIFT: i64 = 32;

/// Set (to anything) to print each compiled program's Cranelift IR and the machine code
/// Cranelift emitted for it (after register allocation) on standard error: a debugging aid for
/// reading what the JIT makes of a program, e.g. with `examples/probe_count.rs` (the last line,
/// `code bytes: <hex>`, is the emitted code, for `objdump -D -b binary -m i386:x86-64`).
const LISTING_ENV: &str = "NAAM_JIT_LISTING";

/// Compiles `ops` (entry at decoded index `entry`) for `isa`; returns the machine code.
pub(crate) fn compile(ops: &[Op], entry: u32, isa: &dyn TargetIsa) -> Result<Vec<u8>, JitError> {
    let function = build(ops, entry, isa);
    let listing = std::env::var_os(LISTING_ENV).is_some();
    if listing {
        eprintln!("{}", function.display());
    }
    let mut context = cranelift_codegen::Context::for_function(function);
    context.set_disasm(listing);
    let compiled = context
        .compile(isa, &mut ControlPlane::default())
        .map_err(|error| JitError::Codegen {
            reason: format!("{:?}", error.inner),
        })?;
    if let Some(vcode) = compiled.vcode.as_deref() {
        eprintln!("{vcode}");
        // The emitted bytes too, in emission order (cold blocks last), for a disassembler.
        let hex: String = compiled
            .code_buffer()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        eprintln!("code bytes: {hex}");
    }
    let relocations = compiled.buffer.relocs().len();
    if relocations != 0 {
        return Err(JitError::Relocations { count: relocations });
    }
    Ok(compiled.code_buffer().to_vec())
}

fn build(ops: &[Op], entry: u32, isa: &dyn TargetIsa) -> Function {
    let pointer = isa.pointer_type();
    let mut signature = Signature::new(isa.default_call_conv());
    signature.params.push(AbiParam::new(pointer));
    signature.params.push(AbiParam::new(I64)); // r1
    signature.params.push(AbiParam::new(I64)); // r2
    // The first embedder region's host address and read and write cache bounds (`code::run`).
    signature.params.push(AbiParam::new(pointer));
    signature.params.push(AbiParam::new(I64));
    signature.params.push(AbiParam::new(I64));
    signature.returns.push(AbiParam::new(I64)); // budget left, or a trap's status
    signature.returns.push(AbiParam::new(I64)); // r0
    let mut function = Function::with_name_signature(UserFuncName::default(), signature);
    let mut builder_context = FunctionBuilderContext::new();
    let builder = FunctionBuilder::new(&mut function, &mut builder_context);
    let mut translator = Translator::new(builder, ops, entry as usize, isa);
    translator.prologue(entry as usize);
    translator.body();
    translator.version_loops();
    translator.builder.seal_all_blocks();
    translator.builder.finalize(isa.frontend_config());
    super::params::remove_dead_params(&mut function);
    function
}

/// Where an instruction's second operand comes from.
#[derive(Clone, Copy)]
enum Operand {
    Const(u64),
    Value(Value),
}

/// The arithmetic of one ALU op.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    SDiv,
    Mod,
    SMod,
    Or,
    And,
    Xor,
    Lsh,
    Rsh,
    Arsh,
    Mov,
}

/// A one-entry region cache in SSA variables: the slot the last checked access (of one kind,
/// read or write) went to, so the next access to the same slot costs an addition (a `lea`,
/// which leaves the address register intact) and a compare. `bound` is 0 (nothing hits) until a lookup fills it, and again after anything that
/// may change the slot table (helper calls, local calls and returns).
#[derive(Clone, Copy)]
struct RegionCache {
    /// Minus the VM address of the cached slot's byte 0.
    neg_lo: Variable,
    /// Offsets below it admit any access of up to [`WIDEST_ACCESS_BYTES`] bytes.
    bound: Variable,
    /// Host address of the cached slot's byte 0.
    host: Variable,
}

impl RegionCache {
    /// A cache's three variables.
    fn declare(builder: &mut FunctionBuilder<'_>, pointer: Type) -> Self {
        RegionCache {
            neg_lo: builder.declare_var(I64),
            bound: builder.declare_var(I64),
            host: builder.declare_var(pointer),
        }
    }
}

/// The first embedder region as the caller passed it (see `super::entry`), for the accesses
/// at a constant offset from r1's entry value: one value per kind, so that few values stay
/// live through the step (a host address and a room per kind had made regalloc2 spill others).
#[derive(Clone, Copy)]
struct EntryView {
    /// Per kind (read, write): the host address of r1's entry value when that region holds
    /// every such access of that kind (at offsets up to `last`), else 0, and then every one of
    /// them takes the ordinary checked path; `None` when no such access of that kind is
    /// compiled.
    host: [Option<Value>; 2],
    /// Per kind, the largest offset from r1's entry value of such an access (the start of its
    /// last window of up to [`WIDEST_ACCESS_BYTES`] bytes) that `host` vouches for.
    last: [i64; 2],
}

/// An access at a constant offset from r1's entry value, split by [`Translator::entry_split`]:
/// the current block may address `host + disp` directly; `slow` takes the ordinary checked
/// path.
struct EntrySplit {
    host: Value,
    disp: i32,
    slow: Block,
}

/// Memory flags of the three kinds of access the code makes.
struct Flags {
    /// Program loads and stores: checked, so they never trap; possibly unaligned.
    guest: MemFlagsData,
    /// The slot table and the context block: aligned host structures.
    host: MemFlagsData,
    /// Context fields fixed for the whole call (see `Translator::load_fixed`).
    fixed: MemFlagsData,
}

struct Translator<'a, 'f> {
    builder: FunctionBuilder<'f>,
    ops: &'a [Op],
    pointer: Type,
    regs: [Variable; 11],
    frame_top: Variable,
    depth: Variable,
    /// Budget left, plus `pending`: the budget less the instructions counted so far, once
    /// `pending` is taken off (see [`budget_offsets`]).
    remaining: Variable,
    /// Instructions executed since `remaining` was last brought up to date, at the point being
    /// translated (a compile-time count: counting costs no instruction until a check, or an
    /// edge into a leader whose offset differs, needs the value).
    pending: i64,
    /// `pending` at the start of each leader (see [`budget_offsets`]).
    offsets: Vec<i64>,
    ctx: Value,
    read_cache: RegionCache,
    write_cache: RegionCache,
    /// Per decoded index, the constant by which a checked load's or store's base register
    /// exceeds r1's entry value, before any helper call (see `super::entry`).
    entry_based: Vec<Option<i64>>,
    /// Set by the prologue when some access has an `entry_based` constant.
    entry_view: Option<EntryView>,
    /// Block of each decoded index that is a leader.
    blocks: Vec<Option<Block>>,
    /// Leaders predicted rarely run, laid out after the hot code (see [`predicted_cold`]); in
    /// the checked copy of a versioned loop, every leader (see [`checked_copies_cold`]).
    cold: Vec<bool>,
    /// [`predicted_cold`]'s own prediction, for the copies of versioned loops.
    predicted_cold: Vec<bool>,
    /// Loops compiled twice, checked and unchecked (see `super::loops`).
    loops: Vec<VersionedLoop>,
    /// The block comparing the budget left with each versioned loop's bound, which edges from
    /// outside the loop go to instead of its entry.
    prechecks: Vec<Block>,
    /// Number of the versioned loop entered at each decoded index.
    loop_entered: Vec<Option<usize>>,
    /// Whether the ops being translated are a versioned loop's copy without budget checks.
    unchecked: bool,
    /// Versioned loops' entries reached from outside only by jumps (or the prologue): those
    /// jumps leave their budget check to the precheck's fallback (see [`absorbs_entry_checks`]).
    absorbs_entry_checks: Vec<bool>,
    /// In that copy, the accesses whose region check its precheck did (by decoded index).
    hoisted: Vec<bool>,
    /// Host address of VM address 0 as the read and the write cache saw it at the loop's entry
    /// (the cached region's host address less its VM address): a hoisted access's host address
    /// is this plus its VM address.
    hoisted_bases: [Variable; 2],
    /// While translating the copy of a load run whose span hit the read cache (see
    /// [`Translator::translate_load_run`]): the host address of the span's first byte and that
    /// byte's offset from the run's base register.
    run_host: Option<(Value, i64)>,
    /// Where a block falling into each leader goes instead (see [`fall_threads`]).
    fall_threads: Vec<Option<usize>>,
    /// Number of the first block created while translating the current leader's ops, when that
    /// leader is predicted cold (its internal blocks are then cold too).
    cold_from: Option<u32>,
    /// Return site of each local call, by call index (return-site number = position).
    return_sites: Vec<Block>,
    /// Leaders whose taken jumps from before them may skip the budget check (see
    /// [`budget_deferrable`]).
    deferrable: Vec<bool>,
    /// Leaders whose taken backward jumps may skip the budget check (see [`budget_anchored`]).
    anchored: Vec<bool>,
    /// Decoded index of the last op that may branch to each leader (see [`last_branches`]).
    last_branch: Vec<Option<usize>>,
    /// Leaders to seal once the op at each decoded index is translated: those a later op (or
    /// the leader's own) may branch to. The others are sealed on entry.
    seal_after: Vec<Vec<Block>>,
    /// Decoded index of the first instruction of the current block.
    block_start: usize,
    /// Whether the current block still needs a terminator.
    open: bool,
    frames: StackSlot,
    signatures: HelperSignatures,
    flags: Flags,
    budget_trap: Block,
}

impl<'a, 'f> Translator<'a, 'f> {
    fn new(
        mut builder: FunctionBuilder<'f>,
        ops: &'a [Op],
        entry: usize,
        isa: &dyn TargetIsa,
    ) -> Self {
        let pointer = isa.pointer_type();
        let regs = core::array::from_fn(|_| builder.declare_var(I64));
        let frame_top = builder.declare_var(pointer);
        let depth = builder.declare_var(I64);
        let remaining = builder.declare_var(I64);
        let read_cache = RegionCache::declare(&mut builder, pointer);
        let write_cache = RegionCache::declare(&mut builder, pointer);
        let hoisted_bases = [builder.declare_var(pointer), builder.declare_var(pointer)];
        let frames = saved_frames_slot(ops, &mut builder);
        let signatures = HelperSignatures::import(&mut builder, isa);
        let budget_trap = builder.create_block();
        let (blocks, return_sites) = leaders(ops, entry, &mut builder);
        let deferrable = budget_deferrable(ops, &blocks);
        let anchored = budget_anchored(ops, &blocks, &deferrable);
        let fall_threads = fall_threads(ops, &blocks, entry);
        let loops = versioned_loops(ops, entry);
        let (last_branch, seal_after, loop_entered) =
            loop_branches(ops, &blocks, &fall_threads, &loops);
        let prechecks = loops.iter().map(|_| builder.create_block()).collect();
        let offsets = budget_offsets(ops, &blocks, entry);
        let predicted_cold = predicted_cold(ops, &blocks);
        Translator {
            flags: memory_flags(builder.func),
            builder,
            ops,
            pointer,
            regs,
            frame_top,
            depth,
            remaining,
            pending: 0,
            offsets,
            ctx: Value::from_u32(0), // set by the prologue
            read_cache,
            write_cache,
            entry_based: entry_based(ops, entry),
            entry_view: None,
            cold: checked_copies_cold(&predicted_cold, &blocks, &loops),
            absorbs_entry_checks: absorbs_entry_checks(ops, &fall_threads, &loops),
            blocks,
            predicted_cold,
            loops,
            prechecks,
            loop_entered,
            unchecked: false,
            hoisted: vec![false; ops.len()],
            hoisted_bases,
            run_host: None,
            fall_threads,
            cold_from: None,
            return_sites,
            deferrable,
            anchored,
            last_branch,
            seal_after,
            block_start: 0,
            open: false,
            frames,
            signatures,
            budget_trap,
        }
    }

    /// Entry block: loads the context, sets every variable, jumps to the program's entry.
    fn prologue(&mut self, entry: usize) {
        let start = self.builder.create_block();
        self.builder.append_block_params_for_function_params(start);
        self.enter(start);
        self.ctx = self.builder.block_params(start)[0];
        let frame_top = self.load_fixed(self.pointer, core::mem::offset_of!(JitCtx, frame_top));
        self.builder.def_var(self.frame_top, frame_top);
        let (r1, r2) = (
            self.builder.block_params(start)[1],
            self.builder.block_params(start)[2],
        );
        let zero = self.builder.ins().iconst(I64, 0);
        let r10 = self.iconst(slot_base(STACK_SLOT) + FRAME as u64);
        for (reg, var) in self.regs.iter().enumerate() {
            let value = match reg {
                1 => r1,
                2 => r2,
                10 => r10,
                _ => zero,
            };
            self.builder.def_var(*var, value);
        }
        self.builder.def_var(self.depth, zero);
        let budget = self.load_fixed(I64, core::mem::offset_of!(JitCtx, budget));
        self.builder.def_var(self.remaining, budget);
        for cache in [self.read_cache, self.write_cache] {
            for var in [cache.neg_lo, cache.bound, cache.host] {
                self.builder.def_var(var, zero);
            }
        }
        let params = self.builder.block_params(start);
        let (host, read_bound, write_bound) = (params[3], params[4], params[5]);
        let (reads, writes) = checked_accesses(self.ops);
        if reads {
            self.prime_cache(self.read_cache, host, read_bound);
        }
        if writes {
            self.prime_cache(self.write_cache, host, write_bound);
        }
        self.entry_view = self.entry_view(r1, host, [read_bound, write_bound]);
        let target = self.target_block(usize::MAX, entry);
        self.builder.ins().jump(target, &[]);
        self.budget_trap_block();
    }

    /// The first embedder region as the caller passed it, seen from r1's entry value, for the
    /// kinds of access that have an `entry_based` constant (see [`EntryView`]).
    fn entry_view(&mut self, r1: Value, host: Value, bounds: [Value; 2]) -> Option<EntryView> {
        let last = entry_last_offsets(self.ops, &self.entry_based);
        if last == [None; 2] {
            return None;
        }
        // r1's offset in the region: a VM address below the slot's wraps to a huge offset,
        // which leaves no room.
        let neg_lo = self.iconst(slot_base(VM_SLOTS).wrapping_neg());
        let rel = self.builder.ins().iadd(r1, neg_lo);
        let r1_host = self.builder.ins().iadd(host, rel);
        let zero = self.builder.ins().iconst(self.pointer, 0);
        let mut hosts = [None; 2];
        for (kind, bound) in bounds.into_iter().enumerate() {
            if let Some(last) = last[kind] {
                // `bound - rel`, or 0 past the bound: any access of up to the widest width at
                // an offset below it fits (`rel + offset < bound`).
                let top = self.builder.ins().umax(bound, rel);
                let room = self.builder.ins().isub(top, rel);
                let fits = self
                    .builder
                    .ins()
                    .icmp_imm_u(IntCC::UnsignedGreaterThan, room, last);
                hosts[kind] = Some(self.builder.ins().select(fits, r1_host, zero));
            }
        }
        Some(EntryView {
            host: hosts,
            last: last.map(|last| last.unwrap_or(-1)),
        })
    }

    /// The entry view's host address of `kind` (see [`EntryView`]) when it is compiled and
    /// vouches for an access at `offset` past r1's entry value where it is not 0.
    fn entry_host(&self, kind: usize, offset: i64) -> Option<Value> {
        let view = self.entry_view?;
        let host = view.host[kind]?;
        (0..=view.last[kind]).contains(&offset).then_some(host)
    }

    /// Branches to a new block (entered here) when `host` is not 0, and to `slow` otherwise.
    fn unless_null(&mut self, host: Value, slow: Block) {
        let fast = self.builder.create_block();
        self.builder.ins().brif(host, fast, &[], slow, &[]);
        self.enter(fast);
    }

    fn budget_trap_block(&mut self) {
        self.builder.switch_to_block(self.budget_trap);
        self.builder.set_cold_block(self.budget_trap);
        self.leave(status::BUDGET);
    }

    /// Translates every op in order, opening a block at each leader.
    fn body(&mut self) {
        self.translate_range(0..self.ops.len());
        self.close_cold_leader();
    }

    /// Translates the ops of `range` in order, opening a block at each leader.
    fn translate_range(&mut self, range: core::ops::Range<usize>) {
        let mut index = range.start;
        while index < range.end {
            if let Some(block) = self.blocks[index] {
                if self.open {
                    self.add_count(index - self.block_start);
                    self.fall_into(index);
                }
                self.close_cold_leader();
                if self.cold[index] {
                    self.builder.set_cold_block(block);
                    self.cold_from = Some(self.builder.func.dfg.num_blocks() as u32);
                }
                self.builder.switch_to_block(block);
                self.pending = self.offsets[index];
                // Every branch to it is emitted: seal it before its first use of a variable.
                if self.last_branch[index].is_none_or(|last| last < index) {
                    self.builder.seal_block(block);
                }
                self.block_start = index;
                self.open = true;
            }
            // Not in a versioned loop's unchecked copy, whose hoisted accesses have their own
            // base (see `checked_address`).
            let run = (!self.unchecked)
                .then(|| load_run(self.ops, &self.blocks, index))
                .flatten()
                .filter(|run| run.end <= range.end);
            if let Some(run) = run {
                self.translate_load_run(index, run);
                index = run.end;
                continue;
            }
            // The JIT translates instruction by instruction: a fused op stands for its first
            // half (the second half follows it in place).
            let op = fuse::first_of(self.ops[index]);
            self.op(index, op);
            self.seal_leaders(index);
            index += 1;
        }
    }

    /// Translates a run of loads through one base register (see [`load_run`]) twice: a copy
    /// whose loads address the read cache's region directly, entered when the run's whole span
    /// hits the cache (then every load of the run would hit it: the same host addresses, no
    /// miss, no trap), and the ordinary checked copy, laid out cold, otherwise. A step of the
    /// B-tree lookup reads eight context fields through r1 this way: one check instead of
    /// eight.
    fn translate_load_run(&mut self, start: usize, run: LoadRun) {
        let checked = self.builder.create_block();
        let span_host = match self.entry_span(start, run, checked) {
            Some(span_host) => span_host,
            None => self.cached_span(run, checked),
        };
        let unchecked = self.builder.create_block();
        let span_param = self.builder.append_block_param(unchecked, self.pointer);
        self.builder
            .ins()
            .jump(unchecked, &[BlockArg::Value(span_host)]);
        self.enter(unchecked);
        self.run_host = Some((span_param, run.low));
        let join = self.builder.create_block();
        self.translate_run_ops(start..run.end, join);
        self.run_host = None;
        self.enter(checked);
        self.builder.set_cold_block(checked);
        let first_checked = self.builder.func.dfg.num_blocks() as u32;
        self.translate_run_ops(start..run.end, join);
        for number in first_checked..self.builder.func.dfg.num_blocks() as u32 {
            self.builder.set_cold_block(Block::from_u32(number));
        }
        self.enter(join);
        for index in start..run.end {
            self.seal_leaders(index);
        }
    }

    /// Branches to `checked` unless the run's whole span hits the read cache; the host address
    /// of the span's first byte.
    fn cached_span(&mut self, run: LoadRun, checked: Block) -> Value {
        let base = self.get(run.base);
        let first = self.builder.ins().iadd_imm_s(base, run.low);
        let neg_lo = self.builder.use_var(self.read_cache.neg_lo);
        let rel = self.builder.ins().iadd(first, neg_lo);
        let mut misses = vec![self.cache_miss(self.read_cache, first)];
        let widest = WIDEST_ACCESS_BYTES as i64;
        if run.high - run.low > widest {
            // The last window of the widest access: with the first, it bounds the span (the
            // first one's offset is below 2^32, so the second's does not wrap).
            let last = self.builder.ins().iadd_imm_s(base, run.high - widest);
            misses.push(self.cache_miss(self.read_cache, last));
        }
        for failed in misses {
            let next = self.builder.create_block();
            self.builder.ins().brif(failed, checked, &[], next, &[]);
            self.enter(next);
        }
        // The host address of the span's first byte reaches the copy as a block parameter, so
        // Cranelift cannot fold the (often constant) cache offset into each load's address: a
        // 64-bit constant per load instead of a displacement.
        let host = self.builder.use_var(self.read_cache.host);
        self.builder.ins().iadd(host, rel)
    }

    /// For a run whose base register holds r1's entry value plus a constant (see
    /// `super::entry`): branches to `checked` unless the first embedder region, as the caller
    /// passed it, holds the run's whole span (one compare, and the read cache stays as it
    /// was); the host address of the span's first byte.
    fn entry_span(&mut self, start: usize, run: LoadRun, checked: Block) -> Option<Value> {
        let low = self.entry_based[start]?.checked_add(run.low)?;
        // The last window of the widest access, or the first when the span is narrower: any
        // access of up to that width at an offset below `room` fits.
        let last = low.max(low.checked_add(run.high - run.low - WIDEST_ACCESS_BYTES as i64)?);
        if low < 0 || i32::try_from(last).is_err() {
            return None;
        }
        let host = self.entry_host(0, last)?;
        self.unless_null(host, checked);
        Some(self.builder.ins().iadd_imm_s(host, low))
    }

    fn translate_run_ops(&mut self, range: core::ops::Range<usize>, join: Block) {
        for index in range {
            let op = fuse::first_of(self.ops[index]);
            self.op(index, op);
        }
        self.builder.ins().jump(join, &[]);
    }

    /// Emits each versioned loop's precheck and its copy without budget checks (see
    /// `super::loops`), after the body, so every edge into the precheck is known.
    fn version_loops(&mut self) {
        for number in 0..self.loops.len() {
            let versioned = self.loops[number].clone();
            let mut copy_blocks = self.blocks.clone();
            for index in versioned.indices() {
                if copy_blocks[index].is_some() {
                    copy_blocks[index] = Some(self.builder.create_block());
                }
            }
            let copy_entry = copy_blocks[versioned.entry]
                .unwrap_or_else(|| unreachable!("a loop's entry is a leader"));
            self.precheck(self.prechecks[number], &versioned, copy_entry);
            self.translate_copy(&versioned, copy_blocks);
            super::VERSIONED_LOOPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if versioned.segments().len() > 1 {
                super::SPLIT_LOOPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// The loop's entry goes to the copy without budget checks when the budget left covers the
    /// most instructions the loop can execute (then no check in it can fail), else to the
    /// checked copy. One compare: the budget left is `remaining` less the entry's offset.
    fn precheck(&mut self, precheck: Block, versioned: &VersionedLoop, copy_entry: Block) {
        self.enter(precheck);
        let remaining = self.builder.use_var(self.remaining);
        let needed = self.offsets[versioned.entry] + versioned.insn_bound;
        let short = self
            .builder
            .ins()
            .icmp_imm_s(IntCC::SignedLessThan, remaining, needed);
        let misses = self.hoist_checks(versioned);
        let fallback = self.builder.create_block();
        // One branch per condition: a compare and a jump each, no flags combined.
        for failed in [short].into_iter().chain(misses) {
            let next = self.builder.create_block();
            self.builder.ins().brif(failed, fallback, &[], next, &[]);
            self.enter(next);
        }
        self.builder.ins().jump(copy_entry, &[]);
        self.enter(fallback);
        self.builder.set_cold_block(fallback);
        let checked = self.block_of(versioned.entry);
        if self.absorbs_entry_checks[versioned.entry] {
            // The jumps into the loop left their budget check to this block.
            self.pending = self.offsets[versioned.entry];
            let over = self.over_budget();
            self.builder
                .ins()
                .brif(over, self.budget_trap, &[], checked, &[]);
        } else {
            self.builder.ins().jump(checked, &[]);
        }
    }

    /// Checks every address of the loop's hoisted accesses against the region caches as they
    /// are at its entry and records their bases (see `hoisted_bases`); returns whether one is
    /// outside (then the checked copy runs). Addresses are those of the entry path and of every
    /// cycle the exit test can allow from the induction register's first pass `x0`: `stays =
    /// K + 1 - min(x0, K + 1)`, and an access growing by `step` per cycle goes from its first
    /// cycle's address to that plus `(stays - 1) × step` (both ends checked: no address wraps,
    /// with region offsets below 2^32 and `stays × step` below 2^41).
    fn hoist_checks(&mut self, versioned: &VersionedLoop) -> Vec<Value> {
        let Some((induction, add)) = versioned.first_pass else {
            return Vec::new();
        };
        if versioned.hoisted.is_empty() {
            return Vec::new();
        }
        let x0 = self.get(induction);
        let x0 = self.builder.ins().iadd_imm_s(x0, add);
        let passes = self.iconst(versioned.stay_bound + 1);
        let capped = self.builder.ins().umin(x0, passes);
        let stays = self.builder.ins().isub(passes, capped);
        let one = self.iconst(1);
        let at_least_one = self.builder.ins().umax(stays, one);
        let last_cycle = self.builder.ins().iadd_imm_s(at_least_one, -1);
        let mut misses = Vec::new();
        for access in &versioned.hoisted {
            let cache = [self.read_cache, self.write_cache][usize::from(access.write)];
            let addresses = self.hoisted_addresses(access, last_cycle);
            for address in addresses {
                misses.push(self.cache_miss(cache, address));
            }
            self.hoisted[access.index] = true;
        }
        let hoisted = versioned.hoisted.len() as u64;
        super::HOISTED_ACCESSES.fetch_add(hoisted, std::sync::atomic::Ordering::Relaxed);
        for (cache, base) in [self.read_cache, self.write_cache]
            .into_iter()
            .zip(self.hoisted_bases)
        {
            let host = self.builder.use_var(cache.host);
            let neg_lo = self.builder.use_var(cache.neg_lo);
            let value = self.builder.ins().iadd(host, neg_lo);
            self.builder.def_var(base, value);
        }
        misses
    }

    /// The VM addresses a hoisted access's precheck checks: on the entry path, in the first
    /// cycle and in the cycle numbered `last_cycle`.
    fn hoisted_addresses(&mut self, access: &HoistedAccess, last_cycle: Value) -> Vec<Value> {
        let mut addresses = Vec::new();
        if let Some((reg, add)) = access.entry_address {
            let value = self.get(reg);
            addresses.push(self.builder.ins().iadd_imm_s(value, add));
        }
        if let Some((reg, add, step)) = access.cycle_address {
            let value = self.get(reg);
            let first = self.builder.ins().iadd_imm_s(value, add);
            let span = self.builder.ins().imul_imm_s(last_cycle, step);
            let last = self.builder.ins().iadd(first, span);
            // The entry path's address one step before the first cycle's: the three are in
            // one progression, and its ends bound it.
            if access.entry_address != Some((reg, add.wrapping_sub(step))) {
                addresses.push(first);
            }
            addresses.push(last);
        }
        addresses
    }

    /// Whether an access of up to [`WIDEST_ACCESS_BYTES`] at `address` misses `cache`.
    fn cache_miss(&mut self, cache: RegionCache, address: Value) -> Value {
        let neg_lo = self.builder.use_var(cache.neg_lo);
        let bound = self.builder.use_var(cache.bound);
        let rel = self.builder.ins().iadd(address, neg_lo);
        self.builder
            .ins()
            .icmp(IntCC::UnsignedGreaterThanOrEqual, rel, bound)
    }

    /// Translates the loop's ops again into `copy_blocks` (the other leaders keep theirs),
    /// with no budget check at any taken jump (see `taken_jump`).
    fn translate_copy(&mut self, versioned: &VersionedLoop, copy_blocks: Vec<Option<Block>>) {
        let inside = |index: usize| versioned.contains(index);
        let mut last_branch = last_branches(self.ops, &copy_blocks, inside);
        for (index, last) in last_branch.iter_mut().enumerate() {
            if !inside(index) {
                *last = None;
            }
        }
        let seal_after = seal_points(&copy_blocks, &last_branch);
        let blocks = core::mem::replace(&mut self.blocks, copy_blocks);
        let last_branch = core::mem::replace(&mut self.last_branch, last_branch);
        let seal_after = core::mem::replace(&mut self.seal_after, seal_after);
        let cold = core::mem::replace(&mut self.cold, self.predicted_cold.clone());
        self.unchecked = true;
        self.open = false;
        // Each segment ends in a jump (an op that only fell through out of the loop would be on
        // no cycle), so no block stays open between them.
        for segment in versioned.segments() {
            self.translate_range(segment);
            debug_assert!(!self.open, "a loop segment's last op is a jump");
        }
        self.close_cold_leader();
        self.unchecked = false;
        self.hoisted.fill(false);
        self.blocks = blocks;
        self.last_branch = last_branch;
        self.seal_after = seal_after;
        self.cold = cold;
    }

    /// Ends the open block by falling into the leader at `index`, or past it when that leader's
    /// test is known not to be taken (see [`fall_threads`]): the test is counted, and a test
    /// not taken is no budget check point.
    fn fall_into(&mut self, index: usize) {
        let target = match self.fall_threads[index] {
            Some(next) => {
                self.add_count(1);
                next
            }
            None => index,
        };
        self.settle(self.offsets[target]);
        let block = self.target_block(index - 1, target);
        self.builder.ins().jump(block, &[]);
    }

    /// Marks cold every block created while translating a cold leader's ops (its edges, the
    /// checks of its jumps): they run only when it does.
    fn close_cold_leader(&mut self) {
        let Some(first) = self.cold_from.take() else {
            return;
        };
        for number in first..self.builder.func.dfg.num_blocks() as u32 {
            self.builder.set_cold_block(Block::from_u32(number));
        }
    }

    /// Seals the leaders whose last possible predecessor is the op at `index`. A block sealed
    /// as soon as its predecessors are known lets the SSA builder resolve a variable to the one
    /// value reaching it, where sealing everything at the end leaves block parameters that are
    /// redundant (register moves, longer live ranges, more saved registers).
    fn seal_leaders(&mut self, index: usize) {
        for block in core::mem::take(&mut self.seal_after[index]) {
            self.builder.seal_block(block);
        }
    }

    /// Switches to an internal block whose predecessors have all been emitted, and seals it.
    fn enter(&mut self, block: Block) {
        self.builder.switch_to_block(block);
        self.builder.seal_block(block);
    }

    fn op(&mut self, index: usize, op: Op) {
        use Kind::*;
        match op.kind {
            Lddw | Mov64Imm | Mov32Imm => {
                let value = self.iconst(op.imm);
                self.set(op.dst, value);
            }
            Nop => {}
            Neg64 => {
                let value = self.get(op.dst);
                let negated = self.builder.ins().ineg(value);
                self.set(op.dst, negated);
            }
            Neg32 => {
                let value = self.get32(op.dst);
                let negated = self.builder.ins().ineg(value);
                self.set32(op.dst, negated);
            }
            MovSx8To64 | MovSx16To64 | MovSx32To64 | MovSx8To32 | MovSx16To32 => self.movsx(op),
            Trunc16 | Trunc32 | Swap16 | Swap32 | Swap64 => self.byte_order(op),
            Ldx8 | Ldx16 | Ldx32 | Ldx64 | LdxSx8 | LdxSx16 | LdxSx32 => self.load(index, op),
            St8 | St16 | St32 | St64 | Stx8 | Stx16 | Stx32 | Stx64 => self.store(index, op),
            LdxStack8 | LdxStack16 | LdxStack32 | LdxStack64 | LdxSxStack8 | LdxSxStack16
            | LdxSxStack32 => self.load_stack(op),
            StStack8 | StStack16 | StStack32 | StStack64 | StxStack8 | StxStack16 | StxStack32
            | StxStack64 => self.store_stack(op),
            Atomic32 | Atomic64 => self.atomic(index, op),
            Ja => {
                self.add_count(index + 1 - self.block_start);
                self.taken_jump(index, op.target as usize);
            }
            CallHelper => self.call_helper(index, op.imm, op.target as u64),
            Callx => self.callx(index, op.dst),
            CallLocal => self.call_local(index, op),
            Exit => self.exit(index),
            kind => match jump_condition(kind) {
                Some(condition) => self.conditional_jump(index, op, condition),
                None => self.arith(op),
            },
        }
    }

    // ---- registers and constants -------------------------------------------------------------

    fn get(&mut self, reg: u8) -> Value {
        self.builder.use_var(self.regs[usize::from(reg)])
    }

    fn get32(&mut self, reg: u8) -> Value {
        let value = self.get(reg);
        self.builder.ins().ireduce(I32, value)
    }

    fn set(&mut self, reg: u8, value: Value) {
        self.builder.def_var(self.regs[usize::from(reg)], value);
    }

    /// Sets `reg` to the zero-extension of a 32-bit value.
    fn set32(&mut self, reg: u8, value: Value) {
        let extended = self.builder.ins().uextend(I64, value);
        self.set(reg, extended);
    }

    fn iconst(&mut self, value: u64) -> Value {
        self.builder.ins().iconst(I64, value as i64)
    }

    fn iconst32(&mut self, value: u64) -> Value {
        self.builder.ins().iconst(I32, i64::from(value as u32))
    }

    /// Loads a context field the code never writes and the embedder never changes during the
    /// call (the slot table's address, the frame top, the budget, the trampoline): the load may
    /// move or go away when its value is unused.
    fn load_fixed(&mut self, ty: Type, offset: usize) -> Value {
        self.builder
            .ins()
            .load(ty, self.flags.fixed, self.ctx, offset as i32)
    }

    fn load_ctx(&mut self, ty: Type, offset: usize) -> Value {
        self.builder
            .ins()
            .load(ty, self.flags.host, self.ctx, offset as i32)
    }

    /// The slot table, read from the context where needed (on a region-cache miss, at a local
    /// call or return): an ordinary load, which Cranelift neither hoists out of loops nor
    /// merges with the entry's, so the pointer does not hold a register through the body.
    fn slots(&mut self) -> Value {
        self.load_ctx(self.pointer, core::mem::offset_of!(JitCtx, slots))
    }
    /// Whether the count exceeds the budget: the budget left (`remaining` less `pending`) is
    /// negative, i.e. `remaining < pending` (the code counts down from a budget of at most
    /// [`BUDGET_JIT_MAX`](super::code::BUDGET_JIT_MAX), so no register holds the budget and no
    /// count wraps). One compare, whatever is pending.
    fn over_budget(&mut self) -> Value {
        let remaining = self.builder.use_var(self.remaining);
        self.builder
            .ins()
            .icmp_imm_s(IntCC::SignedLessThan, remaining, self.pending)
    }

    fn store_ctx(&mut self, value: Value, offset: usize) {
        self.builder
            .ins()
            .store(self.flags.host, value, self.ctx, offset as i32);
    }

    // ---- arithmetic ------------------------------------------------------------------------

    fn arith(&mut self, op: Op) {
        let Some((arith, wide, immediate)) = arith_of(op.kind) else {
            // Every other kind is handled in `op`; the verifier emits nothing else.
            return;
        };
        if wide {
            let a = self.get(op.dst);
            let b = if immediate {
                Operand::Const(op.imm)
            } else {
                Operand::Value(self.get(op.src))
            };
            let value = self.arith_value(arith, I64, a, b);
            self.set(op.dst, value);
        } else {
            let a = self.get32(op.dst);
            let b = if immediate {
                Operand::Const(u64::from(op.imm as u32))
            } else {
                Operand::Value(self.get32(op.src))
            };
            let value = self.arith_value(arith, I32, a, b);
            self.set32(op.dst, value);
        }
    }

    /// `a <arith> b` at width `ty`, with RFC 9669's results for division by zero and overflow.
    fn arith_value(&mut self, arith: Arith, ty: Type, a: Value, b: Operand) -> Value {
        let bits = u64::from(ty.bits());
        let b = match (arith, b) {
            (Arith::Lsh | Arith::Rsh | Arith::Arsh, Operand::Const(k)) => {
                Operand::Const(k & (bits - 1))
            }
            (_, b) => b,
        };
        match arith {
            Arith::Div | Arith::Mod | Arith::SDiv | Arith::SMod => self.divide(arith, ty, a, b),
            _ => {
                let b = self.operand(ty, b);
                let ins = self.builder.ins();
                match arith {
                    Arith::Add => ins.iadd(a, b),
                    Arith::Sub => ins.isub(a, b),
                    Arith::Mul => ins.imul(a, b),
                    Arith::Or => ins.bor(a, b),
                    Arith::And => ins.band(a, b),
                    Arith::Xor => ins.bxor(a, b),
                    Arith::Lsh => ins.ishl(a, b),
                    Arith::Rsh => ins.ushr(a, b),
                    Arith::Arsh => ins.sshr(a, b),
                    _ => b, // Mov
                }
            }
        }
    }

    fn operand(&mut self, ty: Type, operand: Operand) -> Value {
        match operand {
            Operand::Value(value) => value,
            Operand::Const(k) if ty == I32 => self.iconst32(k),
            Operand::Const(k) => self.iconst(k),
        }
    }

    /// Division and remainder: by zero gives 0 (quotient) or the dividend (remainder); signed
    /// `MIN / -1` gives `MIN`, remainder 0. Constant divisors are resolved here.
    fn divide(&mut self, arith: Arith, ty: Type, a: Value, b: Operand) -> Value {
        let signed = matches!(arith, Arith::SDiv | Arith::SMod);
        let quotient = matches!(arith, Arith::Div | Arith::SDiv);
        let minus_one = if ty == I32 {
            u64::from(u32::MAX)
        } else {
            u64::MAX
        };
        match b {
            Operand::Const(0) if quotient => self.operand(ty, Operand::Const(0)),
            Operand::Const(0) => a,
            Operand::Const(k) if signed && k == minus_one => {
                if quotient {
                    self.builder.ins().ineg(a)
                } else {
                    self.operand(ty, Operand::Const(0))
                }
            }
            Operand::Const(k) => {
                let b = self.operand(ty, Operand::Const(k));
                self.divide_raw(signed, quotient, a, b)
            }
            Operand::Value(b) => self.divide_checked(signed, quotient, ty, a, b),
        }
    }

    fn divide_raw(&mut self, signed: bool, quotient: bool, a: Value, b: Value) -> Value {
        let ins = self.builder.ins();
        match (signed, quotient) {
            (false, true) => ins.udiv(a, b),
            (false, false) => ins.urem(a, b),
            (true, true) => ins.sdiv(a, b),
            (true, false) => ins.srem(a, b),
        }
    }

    /// Division by a register: the divisor is replaced by 1 where the hardware would fault,
    /// and the RFC's result selected afterwards.
    fn divide_checked(
        &mut self,
        signed: bool,
        quotient: bool,
        ty: Type,
        a: Value,
        b: Value,
    ) -> Value {
        let zero = self.operand(ty, Operand::Const(0));
        let one = self.operand(ty, Operand::Const(1));
        let is_zero = self.builder.ins().icmp(IntCC::Equal, b, zero);
        let is_minus_one = if signed {
            self.builder.ins().icmp_imm_s(IntCC::Equal, b, -1)
        } else {
            self.builder.ins().iconst(I8, 0)
        };
        let unsafe_divisor = self.builder.ins().bor(is_zero, is_minus_one);
        let divisor = self.builder.ins().select(unsafe_divisor, one, b);
        let raw = self.divide_raw(signed, quotient, a, divisor);
        let (on_zero, on_minus_one) = if quotient {
            (zero, self.builder.ins().ineg(a))
        } else {
            (a, zero)
        };
        let value = self.builder.ins().select(is_minus_one, on_minus_one, raw);
        self.builder.ins().select(is_zero, on_zero, value)
    }

    fn movsx(&mut self, op: Op) {
        let (from, wide) = match op.kind {
            Kind::MovSx8To64 => (I8, true),
            Kind::MovSx16To64 => (I16, true),
            Kind::MovSx32To64 => (I32, true),
            Kind::MovSx8To32 => (I8, false),
            _ => (I16, false),
        };
        let value = self.get(op.src);
        let narrow = self.builder.ins().ireduce(from, value);
        if wide {
            let extended = self.builder.ins().sextend(I64, narrow);
            self.set(op.dst, extended);
        } else {
            let extended = self.builder.ins().sextend(I32, narrow);
            self.set32(op.dst, extended);
        }
    }

    fn byte_order(&mut self, op: Op) {
        let (ty, swap) = match op.kind {
            Kind::Trunc16 => (I16, false),
            Kind::Trunc32 => (I32, false),
            Kind::Swap16 => (I16, true),
            Kind::Swap32 => (I32, true),
            _ => (I64, true),
        };
        let mut value = self.get(op.dst);
        if ty != I64 {
            value = self.builder.ins().ireduce(ty, value);
        }
        if swap {
            value = self.builder.ins().bswap(value);
        }
        if ty != I64 {
            value = self.builder.ins().uextend(I64, value);
        }
        self.set(op.dst, value);
    }

    // ---- memory ------------------------------------------------------------------------------

    /// Host address of `len` bytes at VM address `reg + off`, after checking them against the
    /// region cache, then (on a miss) the slot table's read (or write) length; a failure leaves
    /// through a cold fault block.
    fn checked_address(&mut self, index: usize, reg: u8, off: i32, len: u64, write: bool) -> Value {
        let base = self.get(reg);
        let addr = self.builder.ins().iadd_imm_s(base, i64::from(off));
        if let Some((span_host, low)) = self.run_host {
            // A load of a run whose span hit the read cache (see `translate_load_run`), through
            // the run's base register.
            debug_assert!(!write, "a load run holds loads only");
            return self
                .builder
                .ins()
                .iadd_imm_s(span_host, i64::from(off) - low);
        }
        if self.unchecked && self.hoisted[index] {
            // Checked by the loop's precheck, against the region cached at its entry.
            let base = self.builder.use_var(self.hoisted_bases[usize::from(write)]);
            return self.builder.ins().iadd(base, addr);
        }
        let cache = if write {
            self.write_cache
        } else {
            self.read_cache
        };
        let neg_lo = self.builder.use_var(cache.neg_lo);
        let bound = self.builder.use_var(cache.bound);
        // A VM address below the slot's wraps to a huge `rel` (addresses span less than 2^37).
        let rel = self.builder.ins().iadd(addr, neg_lo);
        let hit = self.builder.ins().icmp(IntCC::UnsignedLessThan, rel, bound);
        let miss = self.builder.create_block();
        let join = self.builder.create_block();
        let rel_param = self.builder.append_block_param(join, I64);
        self.builder
            .ins()
            .brif(hit, join, &[BlockArg::Value(rel)], miss, &[]);
        self.enter(miss);
        self.builder.set_cold_block(miss);
        let offset = self.slot_lookup(index, addr, len, write, cache);
        self.builder.ins().jump(join, &[BlockArg::Value(offset)]);
        self.enter(join);
        // The sum is formed here, next to its use, so the load or store folds it into its
        // address (base + index) instead of computing it before the branch.
        let host = self.builder.use_var(cache.host);
        self.builder.ins().iadd(host, rel_param)
    }

    /// The general check against the slot table; on success fills `cache` with the slot and
    /// returns the access's offset in it. Two branches, each to a fault block of its own (slot
    /// outside the table, then bytes past the slot's length): the table entry is addressed
    /// only once the slot is known to be in it, so no clamp and no combined flag, ≈ 8
    /// instructions fewer per miss (≈ 14 misses per B-tree lookup through the engine: one per
    /// region a step touches). With one fault block shared by both branches, register
    /// allocation gave the B-tree search kernel's loop two more moves per iteration.
    fn slot_lookup(
        &mut self,
        index: usize,
        addr: Value,
        len: u64,
        write: bool,
        cache: RegionCache,
    ) -> Value {
        let high = self.builder.ins().ushr_imm_s(addr, SLOT_SHIFT);
        let slot = self.builder.ins().iadd_imm_s(high, -1);
        let slots = self.slots();
        // Slots at or above `live` are not initialised (or not in the table).
        let live = self
            .builder
            .ins()
            .load(I64, self.flags.host, slots, LIVE_OFFSET as i32);
        let in_table = self.builder.ins().icmp(IntCC::UnsignedLessThan, slot, live);
        let outside = self.builder.create_block();
        let in_slot = self.builder.create_block();
        self.builder
            .ins()
            .brif(in_table, in_slot, &[], outside, &[]);
        self.fault_block(outside, index, addr, len, write);
        self.enter(in_slot);
        self.builder.set_cold_block(in_slot);
        // The slot's entry addressed from `high` (the slot's number plus one: the entry one
        // past it) and read one entry back: indexed by `slot`, the register allocator worked
        // out `high - 1` a second time after the branch.
        let next_offset = self.builder.ins().imul_imm_s(high, REGION_BYTES);
        let next_entry = self.builder.ins().iadd(slots, next_offset);
        let limit_field = if write {
            core::mem::offset_of!(Region, write_len)
        } else {
            core::mem::offset_of!(Region, read_len)
        };
        let limit = self.builder.ins().load(
            I64,
            self.flags.host,
            next_entry,
            limit_field as i32 - REGION_BYTES as i32,
        );
        // The low 32 bits, as a 32-bit move (no mask constant).
        let low = self.builder.ins().ireduce(I32, addr);
        let offset = self.builder.ins().uextend(I64, low);
        let end = self.builder.ins().iadd_imm_s(offset, len as i64);
        let fits = self
            .builder
            .ins()
            .icmp(IntCC::UnsignedLessThanOrEqual, end, limit);
        let access = self.builder.create_block();
        let fault = self.builder.create_block();
        self.builder.ins().brif(fits, access, &[], fault, &[]);
        self.fault_block(fault, index, addr, len, write);
        self.enter(access);
        self.builder.set_cold_block(access);
        if write {
            self.note_write(next_entry);
        }
        let host = self.builder.ins().load(
            self.pointer,
            self.flags.host,
            next_entry,
            core::mem::offset_of!(Region, ptr) as i32 - REGION_BYTES as i32,
        );
        // Minus the slot's byte 0: the offset less the address (the slot's bits cancel).
        let neg_lo = self.builder.ins().isub(offset, addr);
        self.fill_cache(cache, neg_lo, limit, host);
        offset
    }

    /// A write that fills the write cache marks its slot in `Memory`'s written entries, at a fixed
    /// offset from the table entry after the slot's, `next_entry` (one store: no branch, no value
    /// kept live for it), as the interpreter's stores do: every write through a register reaches
    /// the stack through such a fill in the same invocation (a hit needs one; the caller primes the
    /// caches with an embedder slot, and a versioned loop's hoisted accesses use the cache their
    /// precheck found), so `Vm::run` sees it and scrubs whole frames.
    fn note_write(&mut self, next_entry: Value) {
        let one = self.iconst32(1);
        let offset = WRITTEN_OFFSET as i32 - REGION_BYTES as i32;
        self.builder
            .ins()
            .istore8(self.flags.host, one, next_entry, offset);
    }

    /// Caches a slot: minus its VM address `neg_lo`, its length `limit`, its host address `host`.
    fn fill_cache(&mut self, cache: RegionCache, neg_lo: Value, limit: Value, host: Value) {
        // `limit - margin`, or 0 below the margin, with the margin as immediates only: an
        // `umax` with the margin took a register for it, and Cranelift kept that constant in a
        // stack slot through the whole program (stored at the entry, reloaded at each miss).
        let margin = (WIDEST_ACCESS_BYTES - 1) as i64;
        let less = self.builder.ins().iadd_imm_s(limit, -margin);
        let short = self
            .builder
            .ins()
            .icmp_imm_u(IntCC::UnsignedLessThan, limit, margin);
        let zero = self.iconst(0);
        let bound = self.builder.ins().select(short, zero, less);
        self.builder.def_var(cache.neg_lo, neg_lo);
        self.builder.def_var(cache.bound, bound);
        self.builder.def_var(cache.host, host);
    }
    /// Fills `cache` with the first embedder region (slot [`VM_SLOTS`]), where embedders map
    /// what r1 points to, so a program's first access there hits instead of taking the
    /// slot-table path: its host address and its cache bound (0 when it is not mapped) come in
    /// as arguments, worked out by the caller (`code::run`), where the compiler often knows the
    /// region just mapped.
    fn prime_cache(&mut self, cache: RegionCache, host: Value, bound: Value) {
        let neg_lo = self.iconst(slot_base(VM_SLOTS).wrapping_neg());
        self.builder.def_var(cache.neg_lo, neg_lo);
        self.builder.def_var(cache.bound, bound);
        self.builder.def_var(cache.host, host);
    }

    /// Empties both region caches: the slot table may have changed.
    fn invalidate_caches(&mut self) {
        let zero = self.iconst(0);
        for cache in [self.read_cache, self.write_cache] {
            self.builder.def_var(cache.bound, zero);
        }
    }

    fn fault_block(&mut self, fault: Block, index: usize, addr: Value, len: u64, write: bool) {
        self.enter(fault);
        self.builder.set_cold_block(fault);
        let index = self.iconst(index as u64);
        self.store_ctx(index, core::mem::offset_of!(JitCtx, trap_index));
        self.store_ctx(addr, core::mem::offset_of!(JitCtx, trap_addr));
        let len = self.iconst(len);
        self.store_ctx(len, core::mem::offset_of!(JitCtx, trap_len));
        self.leave(if write {
            status::WRITE_FAULT
        } else {
            status::READ_FAULT
        });
    }

    fn load(&mut self, index: usize, op: Op) {
        let (len, signed) = access_of(op.kind);
        if let Some(split) = self.entry_split(index, op.target, false) {
            let value = self.load_value(split.host, split.disp, len, signed);
            let join = self.builder.create_block();
            let loaded = self.builder.append_block_param(join, I64);
            self.builder.ins().jump(join, &[BlockArg::Value(value)]);
            self.enter_slow(split.slow, join);
            let host = self.checked_address(index, op.src, op.target, len, false);
            let value = self.load_value(host, 0, len, signed);
            self.builder.ins().jump(join, &[BlockArg::Value(value)]);
            self.leave_slow(join);
            self.set(op.dst, loaded);
            return;
        }
        let host = self.checked_address(index, op.src, op.target, len, false);
        let value = self.load_value(host, 0, len, signed);
        self.set(op.dst, value);
    }

    /// For an access at `index` through a register holding r1's entry value plus a constant
    /// (see `super::entry`), `off` past it, with room for it in the first embedder region as
    /// the caller passed it: branches to a block (entered here) where the access addresses
    /// that region directly, and to the returned `slow` block otherwise. Not inside a load
    /// run's unchecked copy or for an access a versioned loop's precheck checked, which have
    /// their own addresses.
    fn entry_split(&mut self, index: usize, off: i32, write: bool) -> Option<EntrySplit> {
        if self.run_host.is_some() || (self.unchecked && self.hoisted[index]) {
            return None;
        }
        let offset = self.entry_based[index]?.checked_add(i64::from(off))?;
        let disp = i32::try_from(offset).ok().filter(|disp| *disp >= 0)?;
        let host = self.entry_host(usize::from(write), offset)?;
        let slow = self.builder.create_block();
        self.unless_null(host, slow);
        Some(EntrySplit { host, disp, slow })
    }

    /// Enters an entry split's `slow` block, laid out cold (created before `join`).
    fn enter_slow(&mut self, slow: Block, join: Block) {
        debug_assert!(
            slow.as_u32() < join.as_u32(),
            "the join is created after the split"
        );
        self.enter(slow);
        self.builder.set_cold_block(slow);
    }

    /// Marks cold every block the slow path created after `join`, and enters `join`.
    fn leave_slow(&mut self, join: Block) {
        for number in join.as_u32() + 1..self.builder.func.dfg.num_blocks() as u32 {
            self.builder.set_cold_block(Block::from_u32(number));
        }
        self.enter(join);
    }

    fn load_stack(&mut self, op: Op) {
        let (len, signed) = access_of(op.kind);
        let frame_top = self.builder.use_var(self.frame_top);
        let value = self.load_value(frame_top, op.target, len, signed);
        self.set(op.dst, value);
    }

    /// Loads `len` bytes at `host + off`, extended to 64 bits.
    fn load_value(&mut self, host: Value, off: i32, len: u64, signed: bool) -> Value {
        let flags = self.flags.guest;
        let ins = self.builder.ins();
        match (len, signed) {
            (1, false) => ins.uload8(I64, flags, host, off),
            (1, true) => ins.sload8(I64, flags, host, off),
            (2, false) => ins.uload16(I64, flags, host, off),
            (2, true) => ins.sload16(I64, flags, host, off),
            (4, false) => ins.uload32(flags, host, off),
            (4, true) => ins.sload32(flags, host, off),
            _ => ins.load(I64, flags, host, off),
        }
    }

    fn store(&mut self, index: usize, op: Op) {
        let (len, _) = access_of(op.kind);
        let value = self.stored_value(op);
        if let Some(split) = self.entry_split(index, op.target, true) {
            self.store_value(value, split.host, split.disp, len);
            let join = self.builder.create_block();
            self.builder.ins().jump(join, &[]);
            self.enter_slow(split.slow, join);
            let host = self.checked_address(index, op.dst, op.target, len, true);
            self.store_value(value, host, 0, len);
            self.builder.ins().jump(join, &[]);
            self.leave_slow(join);
            return;
        }
        let host = self.checked_address(index, op.dst, op.target, len, true);
        self.store_value(value, host, 0, len);
    }

    fn store_stack(&mut self, op: Op) {
        let (len, _) = access_of(op.kind);
        let value = self.stored_value(op);
        let frame_top = self.builder.use_var(self.frame_top);
        self.store_value(value, frame_top, op.target, len);
    }

    fn stored_value(&mut self, op: Op) -> Value {
        use Kind::*;
        match op.kind {
            St8 | St16 | St32 | St64 | StStack8 | StStack16 | StStack32 | StStack64 => {
                self.iconst(op.imm)
            }
            _ => self.get(op.src),
        }
    }

    fn store_value(&mut self, value: Value, host: Value, off: i32, len: u64) {
        let flags = self.flags.guest;
        let ins = self.builder.ins();
        match len {
            1 => ins.istore8(flags, value, host, off),
            2 => ins.istore16(flags, value, host, off),
            4 => ins.istore32(flags, value, host, off),
            _ => ins.store(flags, value, host, off),
        };
    }

    /// Atomic read-modify-writes: one invocation owns its memory, so a checked load and store.
    fn atomic(&mut self, index: usize, op: Op) {
        let (ty, len) = if op.kind == Kind::Atomic32 {
            (I32, 4)
        } else {
            (I64, 8)
        };
        let host = self.checked_address(index, op.dst, op.target, len, true);
        let flags = self.flags.guest;
        let old = self.builder.ins().load(ty, flags, host, 0);
        let source = self.get_width(op.src, ty);
        let operation = op.imm as i32;
        let ins = self.builder.ins();
        let new = match operation & !ATOMIC_FETCH {
            ATOMIC_ADD => ins.iadd(old, source),
            ATOMIC_OR => ins.bor(old, source),
            ATOMIC_AND => ins.band(old, source),
            ATOMIC_XOR => ins.bxor(old, source),
            _ if operation == ATOMIC_XCHG => source,
            _ if operation == ATOMIC_CMPXCHG => {
                let expected = self.get_width(0, ty);
                let equal = self.builder.ins().icmp(IntCC::Equal, old, expected);
                self.builder.ins().select(equal, source, old)
            }
            _ => old, // the verifier admits no other operation
        };
        self.builder.ins().store(flags, new, host, 0);
        let old = self.widen(old, ty);
        if operation == ATOMIC_CMPXCHG {
            self.set(0, old);
        } else if operation & ATOMIC_FETCH != 0 {
            self.set(op.src, old);
        }
    }

    fn get_width(&mut self, reg: u8, ty: Type) -> Value {
        if ty == I32 {
            self.get32(reg)
        } else {
            self.get(reg)
        }
    }

    fn widen(&mut self, value: Value, ty: Type) -> Value {
        if ty == I32 {
            self.builder.ins().uextend(I64, value)
        } else {
            value
        }
    }

    // ---- control flow ------------------------------------------------------------------------

    fn block_of(&self, index: usize) -> Block {
        self.blocks[index].unwrap_or_else(|| unreachable!("decoded index {index} is a leader"))
    }

    /// The block an edge from the op at `from` to the leader at `target` goes to: a versioned
    /// loop's precheck when `target` is its entry and `from` is outside it (the checked copy's
    /// own edges, and the unchecked copy's, stay in their copy).
    fn target_block(&self, from: usize, target: usize) -> Block {
        if let Some(number) = self.loop_entered[target]
            && !self.unchecked
            && !self.loops[number].contains(from)
        {
            return self.prechecks[number];
        }
        self.block_of(target)
    }

    /// Counts `executed` more instructions (no code: see `pending`).
    fn add_count(&mut self, executed: usize) {
        self.pending += executed as i64;
    }

    /// Brings `remaining` to the budget left plus `offset` (the pending count a leader expects,
    /// or 0 for the budget left itself), with at most one addition.
    fn settle(&mut self, offset: i64) {
        if self.pending != offset {
            let remaining = self.builder.use_var(self.remaining);
            let remaining = self
                .builder
                .ins()
                .iadd_imm_s(remaining, offset - self.pending);
            self.builder.def_var(self.remaining, remaining);
            self.pending = offset;
        }
    }

    /// The taken jump from `index` to `target`: checked against the budget, as in the
    /// interpreter, unless the check can be deferred (a forward jump to a block that is
    /// [`budget_deferrable`], a backward one to a block that is [`budget_anchored`]).
    /// In a versioned loop's unchecked copy no jump is checked: its precheck found the budget
    /// enough for every instruction the loop can execute.
    fn taken_jump(&mut self, index: usize, target: usize) {
        let deferred = self.check_deferred(index, target);
        self.taken_edge(index, target, deferred);
    }

    /// Whether the taken jump from `index` to `target` may skip its budget check: a forward
    /// one to a [`budget_deferrable`] leader, a backward one to a [`budget_anchored`] leader.
    fn check_deferred(&self, index: usize, target: usize) -> bool {
        if target > index {
            self.deferrable[target]
        } else {
            self.anchored[target]
        }
    }

    /// [`Self::taken_jump`] with the deferral decided by the caller.
    fn taken_edge(&mut self, index: usize, target: usize, deferred: bool) {
        let block = self.target_block(index, target);
        let absorbed = self.absorbs_entry_checks[target] && block != self.block_of(target);
        if deferred || self.unchecked || absorbed {
            self.settle(self.offsets[target]);
            self.builder.ins().jump(block, &[]);
            self.open = false;
        } else {
            self.checked_jump(index, target);
        }
    }

    /// Ends the block with a jump from `from` to the leader at `target` unless the budget ran
    /// out.
    fn checked_jump(&mut self, from: usize, target: usize) {
        let over = self.over_budget();
        let block = self.target_block(from, target);
        if self.pending == self.offsets[target] {
            self.builder
                .ins()
                .brif(over, self.budget_trap, &[], block, &[]);
        } else {
            // The count is settled on the jump's own edge, after the check: the old count is
            // then dead, and the subtraction updates its register in place.
            let edge = self.builder.create_block();
            self.builder
                .ins()
                .brif(over, self.budget_trap, &[], edge, &[]);
            self.enter(edge);
            self.settle(self.offsets[target]);
            self.builder.ins().jump(block, &[]);
        }
        self.open = false;
    }

    fn conditional_jump(&mut self, index: usize, op: Op, condition: (IntCC, bool, bool, bool)) {
        let (cc, wide, immediate, test) = condition;
        self.add_count(index + 1 - self.block_start);
        let ty = if wide { I64 } else { I32 };
        let a = self.get_width(op.dst, ty);
        let b = if immediate {
            self.operand(ty, Operand::Const(op.imm))
        } else {
            self.get_width(op.src, ty)
        };
        let taken = if test {
            let bits = self.builder.ins().band(a, b);
            self.builder.ins().icmp_imm_s(IntCC::NotEqual, bits, 0)
        } else {
            self.builder.ins().icmp(cc, a, b)
        };
        let check = self.builder.create_block();
        let next = self.target_block(index, index + 1);
        // Both edges leave with the count the fall-through leader expects (the taken one
        // settles its own in `check`).
        self.settle(self.offsets[index + 1]);
        let fall = self.builder.create_block();
        self.builder.ins().brif(taken, check, &[], fall, &[]);
        self.enter(fall);
        if self.cold[index + 1] {
            self.builder.set_cold_block(fall);
        }
        self.builder.ins().jump(next, &[]);
        self.enter(check);
        match threaded_target(self.ops, index) {
            Some(through) => {
                // The jump lands on the same test, taken too: count it and go to its target.
                // The budget analyses follow both original jumps and may rely on either's
                // check (a leader is anchored because the first one's is kept), so the
                // threaded edge skips its check only when both would (issue 15: a threaded
                // backward jump that deferred to itself spun forever).
                let landing = op.target as usize;
                let deferred =
                    self.check_deferred(index, landing) && self.check_deferred(landing, through);
                self.add_count(1);
                self.taken_edge(index, through, deferred);
            }
            None => self.taken_jump(index, op.target as usize),
        }
    }

    /// `call imm` of helper `id`, with the verifier's registry position `hint`: the helper's
    /// direct entry when the registry the code runs with has one for `id` at `hint`, else the
    /// trampoline.
    fn call_helper(&mut self, index: usize, id: u64, hint: u64) {
        let args = self.helper_args();
        let descriptor = self.iconst(call_descriptor(id, hint));
        let r0 = match usize::try_from(hint) {
            Ok(position) if position < crate::HELPERS_MAX => {
                self.call_direct_or_trampoline(position, id as u32, &args, descriptor)
            }
            _ => self.call_trampoline(&args, descriptor),
        };
        self.after_helper_call(index, r0, Some(id));
    }

    /// `callx` of the helper whose id is in `reg`: the id goes through the context.
    fn callx(&mut self, index: usize, reg: u8) {
        let id = self.get(reg);
        self.store_ctx(id, core::mem::offset_of!(JitCtx, helper_id));
        let args = self.helper_args();
        let descriptor = self.iconst(CALLX_DESCRIPTOR);
        let r0 = self.call_trampoline(&args, descriptor);
        self.after_helper_call(index, r0, None);
    }

    /// The context and r1..=r5, as a helper call passes them.
    fn helper_args(&mut self) -> [Value; 6] {
        let mut args = [self.ctx; 6];
        for reg in 1..=5u8 {
            args[usize::from(reg)] = self.get(reg);
        }
        args
    }

    /// Reads position `position` (below `HELPERS_MAX`) of the direct table: when its key is
    /// `id`'s, calls its entry with `args`; else calls the trampoline. Returns r0.
    fn call_direct_or_trampoline(
        &mut self,
        position: usize,
        id: u32,
        args: &[Value; 6],
        descriptor: Value,
    ) -> Value {
        let table = self.load_fixed(self.pointer, core::mem::offset_of!(JitCtx, direct));
        let entry = position * core::mem::size_of::<DirectEntry>();
        let key_offset = entry + core::mem::offset_of!(DirectEntry, key);
        let func_offset = entry + core::mem::offset_of!(DirectEntry, func);
        let key = self.load_table(I64, table, key_offset);
        let is_direct = self
            .builder
            .ins()
            .icmp_imm_s(IntCC::Equal, key, direct_key(id) as i64);
        let (direct, trampoline, join) = (
            self.builder.create_block(),
            self.builder.create_block(),
            self.builder.create_block(),
        );
        let r0 = self.builder.append_block_param(join, I64);
        self.builder
            .ins()
            .brif(is_direct, direct, &[], trampoline, &[]);
        self.enter(direct);
        let func = self.load_table(self.pointer, table, func_offset);
        let call = self
            .builder
            .ins()
            .call_indirect(self.signatures.direct, func, args);
        let direct_r0 = self.builder.inst_results(call)[0];
        self.builder.ins().jump(join, &[direct_r0.into()]);
        self.enter(trampoline);
        let trampoline_r0 = self.call_trampoline(args, descriptor);
        self.builder.ins().jump(join, &[trampoline_r0.into()]);
        self.enter(join);
        r0
    }

    /// A field of the direct table, which does not change while the code runs.
    fn load_table(&mut self, ty: Type, table: Value, offset: usize) -> Value {
        self.builder
            .ins()
            .load(ty, self.flags.fixed, table, offset as i32)
    }

    /// Calls the trampoline with `args` (the context, r1..=r5) and `descriptor`; returns r0.
    fn call_trampoline(&mut self, args: &[Value; 6], descriptor: Value) -> Value {
        let trampoline = self.load_fixed(self.pointer, core::mem::offset_of!(JitCtx, trampoline));
        let mut all = args.to_vec();
        all.push(descriptor);
        let call = self
            .builder
            .ins()
            .call_indirect(self.signatures.trampoline, trampoline, &all);
        self.builder.inst_results(call)[0]
    }

    /// After a helper call: r0 takes its result unless the helper failed. The fault path
    /// writes the call's index and (for a `call imm`, whose `id` it is) the helper id, for the
    /// trap.
    fn after_helper_call(&mut self, index: usize, r0: Value, id: Option<u64>) {
        self.set(0, r0);
        // A helper may remap the VM's slots (one that runs a nested VM over this memory).
        self.invalidate_caches();
        let failed = self.load_ctx(I64, core::mem::offset_of!(JitCtx, helper_failed));
        let fault = self.builder.create_block();
        let next = self.builder.create_block();
        self.builder.ins().brif(failed, fault, &[], next, &[]);
        self.enter(fault);
        self.builder.set_cold_block(fault);
        let index_value = self.iconst(index as u64);
        self.store_ctx(index_value, core::mem::offset_of!(JitCtx, trap_index));
        if let Some(id) = id {
            let id = self.iconst(id);
            self.store_ctx(id, core::mem::offset_of!(JitCtx, helper_id));
        }
        self.leave(status::HELPER);
        self.enter(next);
    }

    fn call_local(&mut self, index: usize, op: Op) {
        self.add_count(index + 1 - self.block_start);
        let depth = self.builder.use_var(self.depth);
        let too_deep = self.builder.ins().icmp_imm_s(
            IntCC::UnsignedGreaterThanOrEqual,
            depth,
            CALL_DEPTH_MAX as i64,
        );
        let fault = self.builder.create_block();
        let push = self.builder.create_block();
        self.builder.ins().brif(too_deep, fault, &[], push, &[]);
        self.enter(fault);
        self.builder.set_cold_block(fault);
        let index_value = self.iconst(index as u64);
        self.store_ctx(index_value, core::mem::offset_of!(JitCtx, trap_index));
        self.leave(status::CALL_DEPTH);
        self.enter(push);
        let site = self.site_of_return(index + 1);
        self.push_frame(depth, site);
        self.move_frame(depth, 1);
        self.checked_jump(index, op.target as usize);
    }

    fn site_of_return(&self, index: usize) -> u64 {
        let block = self.block_of(index);
        let site = self.return_sites.iter().position(|b| *b == block);
        site.unwrap_or_else(|| unreachable!("index {index} follows a call")) as u64
    }

    /// Saves the return-site number and r6..=r9 in frame `depth`.
    fn push_frame(&mut self, depth: Value, site: u64) {
        let frame = self.saved_frame(depth);
        let site = self.iconst(site);
        self.builder.ins().store(self.flags.host, site, frame, 0);
        for (slot, reg) in (6..=9).enumerate() {
            let value = self.get(reg);
            let off = 8 * (slot as i32 + 1);
            self.builder.ins().store(self.flags.host, value, frame, off);
        }
        let depth = self.builder.ins().iadd_imm_s(depth, 1);
        self.builder.def_var(self.depth, depth);
        let reached = self.load_ctx(I64, core::mem::offset_of!(JitCtx, depth_reached));
        let reached = self.builder.ins().umax(reached, depth);
        self.store_ctx(reached, core::mem::offset_of!(JitCtx, depth_reached));
    }

    fn saved_frame(&mut self, depth: Value) -> Value {
        let frames = self.builder.ins().stack_addr(self.pointer, self.frames, 0);
        let offset = self.builder.ins().imul_imm_s(depth, SAVED_FRAME_BYTES);
        self.builder.ins().iadd(frames, offset)
    }

    /// Moves r10 and the frame top one frame up (`step` 1) or down (-1), and reinstalls the
    /// stack slot to cover the frames now live, as `Memory::set_stack` does.
    fn move_frame(&mut self, old_depth: Value, step: i64) {
        self.invalidate_caches();
        let r10 = self.get(10);
        let r10 = self.builder.ins().iadd_imm_s(r10, step * FRAME);
        self.set(10, r10);
        let frame_top = self.builder.use_var(self.frame_top);
        let frame_top = self.builder.ins().iadd_imm_s(frame_top, step * FRAME);
        self.builder.def_var(self.frame_top, frame_top);
        // Live frames: depth + 1 after the move.
        let frames_live = self.builder.ins().iadd_imm_s(old_depth, 1 + step);
        let len = self.builder.ins().imul_imm_s(frames_live, FRAME);
        let base = self.builder.ins().isub(frame_top, len);
        let entry = self.slots(); // slot 0 is the stack
        let host = self.flags.host;
        for (value, field) in [
            (base, core::mem::offset_of!(Region, ptr)),
            (len, core::mem::offset_of!(Region, read_len)),
            (len, core::mem::offset_of!(Region, write_len)),
        ] {
            self.builder.ins().store(host, value, entry, field as i32);
        }
    }

    fn exit(&mut self, index: usize) {
        self.add_count(index + 1 - self.block_start);
        if self.return_sites.is_empty() {
            self.final_exit();
            return;
        }
        let depth = self.builder.use_var(self.depth);
        let finished = self.builder.create_block();
        let returning = self.builder.create_block();
        self.builder
            .ins()
            .brif(depth, returning, &[], finished, &[]);
        // Both paths start from the count pending here (`final_exit` settles its own).
        let pending = self.pending;
        self.enter(finished);
        self.final_exit();
        self.pending = pending;
        self.enter(returning);
        self.return_to_caller(depth);
    }

    /// `exit` at depth 0: budget check, then the budget left and r0 are returned.
    fn final_exit(&mut self) {
        let over = self.over_budget();
        let done = self.builder.create_block();
        self.builder
            .ins()
            .brif(over, self.budget_trap, &[], done, &[]);
        self.enter(done);
        self.settle(0);
        let remaining = self.builder.use_var(self.remaining);
        let r0 = self.get(0);
        self.builder.ins().return_(&[remaining, r0]);
        self.open = false;
    }

    /// `exit` inside a local call: restores the caller's frame and jumps to its return site.
    fn return_to_caller(&mut self, depth: Value) {
        let depth = self.builder.ins().iadd_imm_s(depth, -1);
        self.builder.def_var(self.depth, depth);
        let frame = self.saved_frame(depth);
        let site = self.builder.ins().load(I64, self.flags.host, frame, 0);
        for (slot, reg) in (6..=9).enumerate() {
            let off = 8 * (slot as i32 + 1);
            let value = self.builder.ins().load(I64, self.flags.host, frame, off);
            self.set(reg, value);
        }
        let old_depth = self.builder.ins().iadd_imm_s(depth, 1);
        self.move_frame(old_depth, -1);
        let over = self.over_budget();
        // Return sites expect the budget left exactly (offset 0).
        self.settle(0);
        let dispatch = self.builder.create_block();
        self.builder
            .ins()
            .brif(over, self.budget_trap, &[], dispatch, &[]);
        self.enter(dispatch);
        let site = self.builder.ins().ireduce(I32, site);
        let calls: Vec<_> = self
            .return_sites
            .iter()
            .map(|block| self.builder.func.dfg.block_call(*block, &[]))
            .collect();
        // The default is never taken (site numbers come from `push_frame`), but it needs its
        // own block call: the SSA builder appends arguments to each call separately.
        let last = self.return_sites[self.return_sites.len() - 1];
        let fallback = self.builder.func.dfg.block_call(last, &[]);
        let table = self
            .builder
            .create_jump_table(JumpTableData::new(fallback, &calls));
        self.builder.ins().br_table(site, table);
        self.open = false;
    }

    /// Returns the trap status `code` from the native function (ends the current block, which
    /// may be a side exit: the instruction stream's own block is closed by its callers).
    fn leave(&mut self, code: u64) {
        // r0 is unspecified after a trap: the word again, so no constant (shared with the hot
        // code's zeros, it would hold a register through the whole function) is needed.
        let word = self.iconst(code | status::TRAPPED);
        self.builder.ins().return_(&[word, word]);
    }
}

/// The count still pending (executed but not yet taken off the remaining budget) at the start of
/// each leader. Along a fall-through edge the count is carried, not taken off: a leader entered
/// by falling through from the block before it expects that block's offset plus its length, and
/// the other edges into it add the difference. A leader nothing falls into expects the count
/// pending at the nearest forward jump to it (inside a loop, more likely than a jump from before
/// the loop), or 0. So a loop whose body spans several blocks takes its count off about once per
/// iteration instead of once per block. The entry, local-call targets and return sites expect 0
/// (they are reached with the budget left exactly).
fn budget_offsets(ops: &[Op], blocks: &[Option<Block>], entry: usize) -> Vec<i64> {
    let mut pinned = vec![false; ops.len()];
    pinned[entry] = true;
    for (index, op) in ops.iter().enumerate() {
        let op = fuse::first_of(*op);
        if op.kind == Kind::CallLocal {
            pinned[op.target as usize] = true;
            if let Some(site) = pinned.get_mut(index + 1) {
                *site = true;
            }
        }
    }
    let mut offsets = vec![0i64; ops.len()];
    // The count pending at the nearest forward jump seen so far to each leader.
    let mut jumped: Vec<Option<i64>> = vec![None; ops.len()];
    let mut start = 0;
    for index in 0..ops.len() {
        if blocks[index].is_some() {
            let falls_into = index
                .checked_sub(1)
                .map(|before| fuse::first_of(ops[before]).kind)
                .is_some_and(|kind| !matches!(kind, Kind::Ja | Kind::Exit | Kind::CallLocal));
            offsets[index] = match (pinned[index], falls_into) {
                (true, _) => 0,
                (false, true) => offsets[start] + (index - start) as i64,
                (false, false) => jumped[index].unwrap_or(0),
            };
            start = index;
        }
        let op = fuse::first_of(ops[index]);
        let target = op.target as usize;
        if (op.kind == Kind::Ja || jump_condition(op.kind).is_some()) && target > index {
            jumped[target] = Some(offsets[start] + (index + 1 - start) as i64);
        }
    }
    offsets
}

/// Leaders predicted rarely run, so Cranelift lays them out after the hot code and a loop's
/// iteration runs straight through, with one taken jump (its back edge) instead of also jumping
/// over the code after the loop. A leader is predicted cold when it is entered only by falling
/// through a backward conditional jump (a loop's test: the loop usually goes round) and its block
/// does not go back into the loop by an unconditional backward jump (then both ways stay in the
/// loop, e.g. the two halves of a binary search's step); and, in a program with a loop and
/// without local calls (where every `exit` is the final one), when its block ends in `exit`: it
/// runs at most once per invocation (a loop-free program keeps its layout: moving its exit would
/// only add a jump). Layout only: no semantics change.
fn predicted_cold(ops: &[Op], blocks: &[Option<Block>]) -> Vec<bool> {
    let mut targeted = vec![false; ops.len()];
    for op in ops {
        let op = fuse::first_of(*op);
        if matches!(op.kind, Kind::Ja | Kind::CallLocal) || jump_condition(op.kind).is_some() {
            targeted[op.target as usize] = true;
        }
    }
    let mut cold = vec![false; ops.len()];
    for (index, op) in ops.iter().enumerate() {
        let op = fuse::first_of(*op);
        let fall = index + 1;
        let backward = jump_condition(op.kind).is_some() && op.target as usize <= index;
        if !backward || fall >= ops.len() || blocks[fall].is_none() || targeted[fall] {
            continue;
        }
        let end = (fall + 1..ops.len())
            .find(|next| blocks[*next].is_some())
            .unwrap_or(ops.len());
        let last = fuse::first_of(ops[end - 1]);
        let loops_back = last.kind == Kind::Ja && (last.target as usize) < end;
        cold[fall] = !loops_back;
    }
    let calls_local = ops
        .iter()
        .any(|op| fuse::first_of(*op).kind == Kind::CallLocal);
    let loops = ops.iter().enumerate().any(|(index, op)| {
        let op = fuse::first_of(*op);
        (op.kind == Kind::Ja || jump_condition(op.kind).is_some()) && op.target as usize <= index
    });
    if loops && !calls_local {
        let mut end = ops.len();
        for start in (0..ops.len()).rev() {
            if blocks[start].is_some() {
                cold[start] |= fuse::first_of(ops[end - 1]).kind == Kind::Exit;
                end = start;
            }
        }
    }
    cold
}

/// [`last_branches`] with the leaders that versioned loops' prechecks and copies (emitted after
/// the body) jump to sealed at the end, its [`seal_points`], and the number of the loop entered
/// at each index.
#[allow(clippy::type_complexity)]
fn loop_branches(
    ops: &[Op],
    blocks: &[Option<Block>],
    fall_threads: &[Option<usize>],
    loops: &[VersionedLoop],
) -> (Vec<Option<usize>>, Vec<Vec<Block>>, Vec<Option<usize>>) {
    let mut last_branch = last_branches(ops, blocks, |_| true);
    let mut loop_entered = vec![None; ops.len()];
    for (number, versioned) in loops.iter().enumerate() {
        loop_entered[versioned.entry] = Some(number);
        let late = loop_exits(ops, fall_threads, versioned);
        for leader in late.into_iter().chain([versioned.entry]) {
            last_branch[leader] = Some(ops.len());
        }
    }
    let seal_after = seal_points(blocks, &last_branch);
    (last_branch, seal_after, loop_entered)
}

/// For each versioned loop's entry, whether nothing outside the loop falls into it (by
/// fall-through or a threaded fall): then every edge into its precheck is a taken jump or the
/// prologue's, whose budget check the precheck makes redundant when it passes (the budget left
/// covers the loop's bound) and its fallback makes when it fails, with the same count (nothing
/// runs in between): a check on a fall-through edge would trap before the interpreter does.
fn absorbs_entry_checks(
    ops: &[Op],
    fall_threads: &[Option<usize>],
    loops: &[VersionedLoop],
) -> Vec<bool> {
    let mut absorbs = vec![false; ops.len()];
    for versioned in loops {
        let entry = versioned.entry;
        let falls_in = entry.checked_sub(1).is_some_and(|before| {
            !versioned.contains(before) && !fuse::first_of(ops[before]).never_falls_through()
        });
        // A threaded fall past the test at `leader` comes from the op before it.
        let threads_in = (1..ops.len())
            .any(|leader| !versioned.contains(leader - 1) && fall_threads[leader] == Some(entry));
        absorbs[entry] = !falls_in && !threads_in;
    }
    absorbs
}

/// The leaders outside a versioned loop that its ops may go to: by fall-through, jump, a
/// threaded jump ([`threaded_target`]) or a threaded fall ([`fall_threads`]).
fn loop_exits(ops: &[Op], fall_threads: &[Option<usize>], versioned: &VersionedLoop) -> Vec<usize> {
    let mut exits = Vec::new();
    for index in versioned.indices() {
        let op = fuse::first_of(ops[index]);
        let next = index + 1;
        exits.push(next);
        exits.extend(fall_threads.get(next).copied().flatten());
        if op.kind == Kind::Ja || jump_condition(op.kind).is_some() {
            exits.push(op.target as usize);
        }
        exits.extend(threaded_target(ops, index));
    }
    exits.retain(|leader| *leader < ops.len() && !versioned.contains(*leader));
    exits
}

/// [`predicted_cold`], and every leader of a versioned loop's checked copy whose bound fits the
/// default budget (the precheck then sends a run to the unchecked copy unless the budget is
/// nearly spent): layout only.
fn checked_copies_cold(
    predicted: &[bool],
    blocks: &[Option<Block>],
    loops: &[VersionedLoop],
) -> Vec<bool> {
    let mut cold = predicted.to_vec();
    let default_budget = i64::try_from(BUDGET_INSN_DEFAULT).unwrap_or(i64::MAX);
    for versioned in loops.iter().filter(|l| l.insn_bound <= default_budget) {
        for index in versioned.indices() {
            cold[index] |= blocks[index].is_some();
        }
    }
    cold
}

/// One block per leader, and the return sites of local calls in call order.
fn leaders(
    ops: &[Op],
    entry: usize,
    builder: &mut FunctionBuilder<'_>,
) -> (Vec<Option<Block>>, Vec<Block>) {
    let mut is_leader = vec![false; ops.len()];
    is_leader[entry] = true;
    for (index, op) in ops.iter().enumerate() {
        let op = fuse::first_of(*op);
        let transfers = matches!(op.kind, Kind::Ja | Kind::CallLocal | Kind::Exit)
            || jump_condition(op.kind).is_some();
        if transfers && index + 1 < ops.len() {
            is_leader[index + 1] = true;
        }
        if matches!(op.kind, Kind::Ja | Kind::CallLocal) || jump_condition(op.kind).is_some() {
            is_leader[op.target as usize] = true;
        }
    }
    let blocks: Vec<Option<Block>> = is_leader
        .iter()
        .map(|leader| leader.then(|| builder.create_block()))
        .collect();
    let mut return_sites = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        if op.kind == Kind::CallLocal
            && let Some(Some(block)) = blocks.get(index + 1)
        {
            return_sites.push(*block);
        }
    }
    (blocks, return_sites)
}

/// The stack slot of the saved-frame array: sized only for programs with local calls (a smaller
/// native frame otherwise).
fn saved_frames_slot(ops: &[Op], builder: &mut FunctionBuilder<'_>) -> StackSlot {
    let calls = ops
        .iter()
        .any(|op| fuse::first_of(*op).kind == Kind::CallLocal);
    let frames_bytes = if calls {
        (SAVED_FRAME_BYTES as u32) * CALL_DEPTH_MAX as u32
    } else {
        0
    };
    builder.create_sized_stack_slot(StackSlotData::new(
        StackSlotKind::ExplicitSlot,
        frames_bytes,
        3,
    ))
}

/// The leaders to seal once the op at each decoded index is translated: those whose last
/// possible predecessor ([`last_branches`]) is that op, at or after the leader (the others are
/// sealed on entry).
fn seal_points(blocks: &[Option<Block>], last_branch: &[Option<usize>]) -> Vec<Vec<Block>> {
    let mut seal_after = vec![Vec::new(); blocks.len()];
    for (leader, block) in blocks.iter().enumerate() {
        // A versioned loop's entry (`last` past the end) is sealed by its precheck.
        if let (Some(block), Some(last)) = (block, last_branch[leader])
            && last >= leader
            && let Some(seal) = seal_after.get_mut(last)
        {
            seal.push(*block);
        }
    }
    seal_after
}

/// The decoded index of the last op that `is_source` takes that may transfer to each leader (`None` where
/// no op does, and for other indexes): the op before it (by fall-through), every jump or call to
/// it, and, for a return site (the op after a local call), every `exit` (returns dispatch to any
/// return site).
fn last_branches(
    ops: &[Op],
    blocks: &[Option<Block>],
    is_source: impl Fn(usize) -> bool,
) -> Vec<Option<usize>> {
    let mut last: Vec<Option<usize>> = blocks
        .iter()
        .enumerate()
        .map(|(index, block)| {
            block
                .and(index.checked_sub(1))
                .filter(|before| is_source(*before))
        })
        .collect();
    let last_exit = ops
        .iter()
        .rposition(|op| fuse::first_of(*op).kind == Kind::Exit);
    for (index, op) in ops
        .iter()
        .enumerate()
        .filter(|(index, _)| is_source(*index))
    {
        let op = fuse::first_of(*op);
        let target = op.target as usize;
        if matches!(op.kind, Kind::Ja | Kind::CallLocal) || jump_condition(op.kind).is_some() {
            last[target] = last[target].max(Some(index));
        }
        if let Some(through) = threaded_target(ops, index) {
            last[through] = last[through].max(Some(index));
        }
        if op.kind == Kind::CallLocal
            && let Some(site) = last.get_mut(index + 1)
        {
            *site = (*site).max(last_exit);
        }
    }
    last
}

/// Where the taken edge of the conditional jump at `index` goes directly: the taken target of
/// the op it jumps to, when that op is the same test (kind, registers and immediate), which then
/// tests the same values (nothing runs in between) and is taken too — clang repeats a loop's test
/// this way (`if (k <= key) lo = mid + 1; ... while (...)`). The threaded edge counts that op;
/// the interpreter checks the budget at both taken jumps, the second time with the larger count
/// and with nothing between them, so the edge is checked at that larger count unless both
/// original jumps' checks may be deferred (`conditional_jump`): a deferred check is repeated,
/// with a count at least as large, before any effect. The budget analyses below keep following
/// the original edges, a path through that one pure op more, which reaches the same effects and
/// checks: the checks they count on as kept are all made, by the threaded edge if need be.
fn threaded_target(ops: &[Op], index: usize) -> Option<usize> {
    let op = fuse::first_of(ops[index]);
    jump_condition(op.kind)?;
    let landing = fuse::first_of(*ops.get(op.target as usize)?);
    let same_test = landing.kind == op.kind
        && landing.dst == op.dst
        && landing.src == op.src
        && landing.imm == op.imm;
    same_test.then_some(landing.target as usize)
}

/// For each leader holding a conditional jump, where the block before it may fall instead: past
/// it, to the op after it, when that block is entered only by the fall-through of the same test
/// (kind, registers and immediate; not taken there, so not taken again) and changes neither of
/// the test's registers, with ALU ops and constants only — clang's binary search tests
/// `keys[mid] > key` again after `lo = mid + 1`. The skipped test is counted; a test not taken
/// checks no budget.
fn fall_threads(ops: &[Op], blocks: &[Option<Block>], entry: usize) -> Vec<Option<usize>> {
    let mut targeted = vec![false; ops.len()];
    targeted[entry] = true;
    for (index, op) in ops.iter().enumerate() {
        let op = fuse::first_of(*op);
        if matches!(op.kind, Kind::Ja | Kind::CallLocal) || jump_condition(op.kind).is_some() {
            targeted[op.target as usize] = true;
        }
        if let Some(through) = threaded_target(ops, index) {
            targeted[through] = true;
        }
    }
    let mut threads = vec![None; ops.len()];
    let mut start = 0;
    for (test, block) in blocks.iter().enumerate() {
        if block.is_none() {
            continue;
        }
        if test > start && !targeted[start] && test + 1 < ops.len() {
            threads[test] = fall_thread(ops, start, test);
        }
        start = test;
    }
    threads
}

/// The op after `test` when the block `start..test` qualifies (see [`fall_threads`]).
fn fall_thread(ops: &[Op], start: usize, test: usize) -> Option<usize> {
    let op = fuse::first_of(ops[test]);
    let (_, _, immediate, _) = jump_condition(op.kind)?;
    let before = fuse::first_of(*ops.get(start.checked_sub(1)?)?);
    let same_test = before.kind == op.kind
        && before.dst == op.dst
        && before.src == op.src
        && before.imm == op.imm
        && before.target as usize != start;
    let keeps_registers = ops[start..test].iter().all(|body| {
        let body = fuse::first_of(*body);
        let register_op = arith_of(body.kind).is_some()
            || matches!(body.kind, Kind::Lddw | Kind::Mov64Imm | Kind::Mov32Imm);
        register_op && body.dst != op.dst && (immediate || body.dst != op.src)
    });
    (same_test && keeps_registers).then_some(test + 1)
}

/// Leaders (by decoded index) whose taken jumps may skip the budget check: from the leader on,
/// every path reaches a budget check (an exit, or a taken jump that is checked) before any
/// effect that would outlive a trap (a store, an atomic, a call) or could trap otherwise (a
/// checked load). A skipped check that would have failed is then repeated, with a count at
/// least as large, at that later check, before anything the interpreter would not have done is
/// visible: the invocation ends in the same `BudgetExceeded` with the same memory. Only forward
/// jumps skip checks, so every loop (which contains a backward jump) keeps one, and the
/// recurrence below only looks forward (fall-through edges go forward too).
fn budget_deferrable(ops: &[Op], blocks: &[Option<Block>]) -> Vec<bool> {
    let mut deferrable = vec![false; ops.len() + 1];
    let mut end = ops.len();
    for start in (0..ops.len()).rev() {
        if blocks[start].is_none() {
            continue;
        }
        deferrable[start] = block_deferrable(&ops[start..end], end, &deferrable);
        end = start;
    }
    deferrable.truncate(ops.len());
    deferrable
}

/// Whether the block `ops` (ending before decoded index `end`) is free of effects and every edge
/// out of it either is a taken jump (checked, or deferred only to a deferrable leader) or falls
/// through to a deferrable leader.
fn block_deferrable(ops: &[Op], end: usize, deferrable: &[bool]) -> bool {
    use Kind::*;
    for op in ops {
        let op = fuse::first_of(*op);
        match op.kind {
            Ja | Exit => return true,
            kind if has_effect(kind) => return false,
            _ => {}
        }
    }
    // No jump or exit ended it: it falls through to `end`'s leader, or a conditional jump
    // ended it, whose taken edge is checked (or deferred, to a deferrable leader) and whose
    // fall-through goes to `end`'s leader.
    deferrable.get(end).copied().unwrap_or(false)
}

/// Leaders from which every path reaches a budget check that is kept (an exit, or a taken
/// forward jump to a leader that is not [`budget_deferrable`]) before any effect, through
/// forward edges only. A backward jump to such a leader may skip its check: the check it
/// defers comes before any effect (as for deferrable leaders), and every loop still passes a
/// kept check, since from the leader on no path goes backward before reaching one.
fn budget_anchored(ops: &[Op], blocks: &[Option<Block>], deferrable: &[bool]) -> Vec<bool> {
    let mut anchored = vec![false; ops.len() + 1];
    let mut end = ops.len();
    for start in (0..ops.len()).rev() {
        if blocks[start].is_none() {
            continue;
        }
        anchored[start] = block_anchored(ops, start, end, deferrable, &anchored);
        end = start;
    }
    anchored.truncate(ops.len());
    anchored
}

/// Whether the block `start..end` is free of effects and leaves only through kept checks or
/// forward edges to anchored leaders.
fn block_anchored(
    ops: &[Op],
    start: usize,
    end: usize,
    deferrable: &[bool],
    anchored: &[bool],
) -> bool {
    use Kind::*;
    let forward_ok =
        |index: usize, target: usize| target > index && (!deferrable[target] || anchored[target]);
    for (index, op) in ops.iter().enumerate().take(end).skip(start) {
        let op = fuse::first_of(*op);
        match op.kind {
            Exit => return true,
            Ja => return forward_ok(index, op.target as usize),
            kind if jump_condition(kind).is_some() && !forward_ok(index, op.target as usize) => {
                return false;
            }
            kind if has_effect(kind) => return false,
            _ => {}
        }
    }
    anchored.get(end).copied().unwrap_or(false)
}

/// Whether an op of this kind may be observed or trap other than by the budget: a checked
/// load (an out-of-bounds trap), a store or atomic, or a call. A budget check may be deferred
/// past ops without effects only (`budget_deferrable`, `budget_anchored`).
fn has_effect(kind: Kind) -> bool {
    use Kind::*;
    const EFFECTS: [Kind; 28] = [
        Ldx8, Ldx16, Ldx32, Ldx64, LdxSx8, LdxSx16, LdxSx32, St8, St16, St32, St64, Stx8, Stx16,
        Stx32, Stx64, StStack8, StStack16, StStack32, StStack64, StxStack8, StxStack16, StxStack32,
        StxStack64, Atomic32, Atomic64, CallHelper, Callx, CallLocal,
    ];
    EFFECTS.contains(&kind)
}

/// Per kind (read, write), the largest offset from r1's entry value of an access with an
/// `entry_based` constant (see `super::entry`) at an offset from 0 to `i32::MAX`, if any: a
/// load run's span (see `Translator::entry_span`) ends within its loads' windows, so its last
/// window starts at or below this too.
fn entry_last_offsets(ops: &[Op], entry_based: &[Option<i64>]) -> [Option<i64>; 2] {
    let mut last = [None; 2];
    for (op, based) in ops.iter().zip(entry_based) {
        let op = fuse::first_of(*op);
        let Some(offset) = based.and_then(|based| based.checked_add(i64::from(op.target))) else {
            continue;
        };
        if i32::try_from(offset).is_ok_and(|offset| offset >= 0) {
            let kind = usize::from(!is_checked_load(op.kind));
            last[kind] = last[kind].max(Some(offset));
        }
    }
    last
}

/// Whether the program has loads, and stores or atomics, checked against the slot table.
fn checked_accesses(ops: &[Op]) -> (bool, bool) {
    use Kind::*;
    let (mut reads, mut writes) = (false, false);
    for op in ops {
        match fuse::first_of(*op).kind {
            Ldx8 | Ldx16 | Ldx32 | Ldx64 | LdxSx8 | LdxSx16 | LdxSx32 => reads = true,
            St8 | St16 | St32 | St64 | Stx8 | Stx16 | Stx32 | Stx64 | Atomic32 | Atomic64 => {
                writes = true
            }
            _ => {}
        }
    }
    (reads, writes)
}

/// `(condition, 64-bit, immediate operand, jset)` of a conditional jump.
pub(super) fn jump_condition(kind: Kind) -> Option<(IntCC, bool, bool, bool)> {
    use IntCC::*;
    use Kind::*;
    let (cc, wide, immediate) = match kind {
        Jeq64Imm => (Equal, true, true),
        Jeq64Reg => (Equal, true, false),
        Jne64Imm => (NotEqual, true, true),
        Jne64Reg => (NotEqual, true, false),
        Jgt64Imm => (UnsignedGreaterThan, true, true),
        Jgt64Reg => (UnsignedGreaterThan, true, false),
        Jge64Imm => (UnsignedGreaterThanOrEqual, true, true),
        Jge64Reg => (UnsignedGreaterThanOrEqual, true, false),
        Jlt64Imm => (UnsignedLessThan, true, true),
        Jlt64Reg => (UnsignedLessThan, true, false),
        Jle64Imm => (UnsignedLessThanOrEqual, true, true),
        Jle64Reg => (UnsignedLessThanOrEqual, true, false),
        Jsgt64Imm => (SignedGreaterThan, true, true),
        Jsgt64Reg => (SignedGreaterThan, true, false),
        Jsge64Imm => (SignedGreaterThanOrEqual, true, true),
        Jsge64Reg => (SignedGreaterThanOrEqual, true, false),
        Jslt64Imm => (SignedLessThan, true, true),
        Jslt64Reg => (SignedLessThan, true, false),
        Jsle64Imm => (SignedLessThanOrEqual, true, true),
        Jsle64Reg => (SignedLessThanOrEqual, true, false),
        Jset64Imm => (NotEqual, true, true),
        Jset64Reg => (NotEqual, true, false),
        Jeq32Imm => (Equal, false, true),
        Jeq32Reg => (Equal, false, false),
        Jne32Imm => (NotEqual, false, true),
        Jne32Reg => (NotEqual, false, false),
        Jgt32Imm => (UnsignedGreaterThan, false, true),
        Jgt32Reg => (UnsignedGreaterThan, false, false),
        Jge32Imm => (UnsignedGreaterThanOrEqual, false, true),
        Jge32Reg => (UnsignedGreaterThanOrEqual, false, false),
        Jlt32Imm => (UnsignedLessThan, false, true),
        Jlt32Reg => (UnsignedLessThan, false, false),
        Jle32Imm => (UnsignedLessThanOrEqual, false, true),
        Jle32Reg => (UnsignedLessThanOrEqual, false, false),
        Jsgt32Imm => (SignedGreaterThan, false, true),
        Jsgt32Reg => (SignedGreaterThan, false, false),
        Jsge32Imm => (SignedGreaterThanOrEqual, false, true),
        Jsge32Reg => (SignedGreaterThanOrEqual, false, false),
        Jslt32Imm => (SignedLessThan, false, true),
        Jslt32Reg => (SignedLessThan, false, false),
        Jsle32Imm => (SignedLessThanOrEqual, false, true),
        Jsle32Reg => (SignedLessThanOrEqual, false, false),
        Jset32Imm => (NotEqual, false, true),
        Jset32Reg => (NotEqual, false, false),
        _ => return None,
    };
    let test = matches!(kind, Jset64Imm | Jset64Reg | Jset32Imm | Jset32Reg);
    Some((cc, wide, immediate, test))
}

/// `(arithmetic, 64-bit, immediate operand)` of an ALU op.
fn arith_of(kind: Kind) -> Option<(Arith, bool, bool)> {
    use Kind::*;
    Some(match kind {
        Add64Imm => (Arith::Add, true, true),
        Add64Reg => (Arith::Add, true, false),
        Sub64Imm => (Arith::Sub, true, true),
        Sub64Reg => (Arith::Sub, true, false),
        Mul64Imm => (Arith::Mul, true, true),
        Mul64Reg => (Arith::Mul, true, false),
        Div64Imm => (Arith::Div, true, true),
        Div64Reg => (Arith::Div, true, false),
        SDiv64Imm => (Arith::SDiv, true, true),
        SDiv64Reg => (Arith::SDiv, true, false),
        Mod64Imm => (Arith::Mod, true, true),
        Mod64Reg => (Arith::Mod, true, false),
        SMod64Imm => (Arith::SMod, true, true),
        SMod64Reg => (Arith::SMod, true, false),
        Or64Imm => (Arith::Or, true, true),
        Or64Reg => (Arith::Or, true, false),
        And64Imm => (Arith::And, true, true),
        And64Reg => (Arith::And, true, false),
        Xor64Imm => (Arith::Xor, true, true),
        Xor64Reg => (Arith::Xor, true, false),
        Lsh64Imm => (Arith::Lsh, true, true),
        Lsh64Reg => (Arith::Lsh, true, false),
        Rsh64Imm => (Arith::Rsh, true, true),
        Rsh64Reg => (Arith::Rsh, true, false),
        Arsh64Imm => (Arith::Arsh, true, true),
        Arsh64Reg => (Arith::Arsh, true, false),
        Mov64Reg => (Arith::Mov, true, false),
        Add32Imm => (Arith::Add, false, true),
        Add32Reg => (Arith::Add, false, false),
        Sub32Imm => (Arith::Sub, false, true),
        Sub32Reg => (Arith::Sub, false, false),
        Mul32Imm => (Arith::Mul, false, true),
        Mul32Reg => (Arith::Mul, false, false),
        Div32Imm => (Arith::Div, false, true),
        Div32Reg => (Arith::Div, false, false),
        SDiv32Imm => (Arith::SDiv, false, true),
        SDiv32Reg => (Arith::SDiv, false, false),
        Mod32Imm => (Arith::Mod, false, true),
        Mod32Reg => (Arith::Mod, false, false),
        SMod32Imm => (Arith::SMod, false, true),
        SMod32Reg => (Arith::SMod, false, false),
        Or32Imm => (Arith::Or, false, true),
        Or32Reg => (Arith::Or, false, false),
        And32Imm => (Arith::And, false, true),
        And32Reg => (Arith::And, false, false),
        Xor32Imm => (Arith::Xor, false, true),
        Xor32Reg => (Arith::Xor, false, false),
        Lsh32Imm => (Arith::Lsh, false, true),
        Lsh32Reg => (Arith::Lsh, false, false),
        Rsh32Imm => (Arith::Rsh, false, true),
        Rsh32Reg => (Arith::Rsh, false, false),
        Arsh32Imm => (Arith::Arsh, false, true),
        Arsh32Reg => (Arith::Arsh, false, false),
        Mov32Reg => (Arith::Mov, false, false),
        _ => return None,
    })
}

/// A run of loads through one base register inside one block (see [`load_run`]).
#[derive(Clone, Copy)]
struct LoadRun {
    /// One past the run's last load.
    end: usize,
    base: u8,
    /// Lowest offset the run loads from and one past the highest byte it loads, from `base`.
    low: i64,
    high: i64,
}

/// Fewest loads worth one span check: it costs about two region checks (two compares when
/// the span is wider than the widest access) and a second, cold copy of the run's ops.
const RUN_LOADS_MIN: usize = 3;
/// Widest span checked at once: the offsets stay far below the slots' 2^32 spacing, so the
/// span's last window cannot wrap past a first one that hits.
const RUN_SPAN_BYTES_MAX: i64 = 4096;

/// The run of checked loads starting at `start`, when there are at least [`RUN_LOADS_MIN`]:
/// loads through the first one's base register, with only ops between them that cannot trap,
/// branch, touch a region or change the slot table or the base register (register arithmetic
/// other than division, stack accesses), all inside `start`'s block. A load into the base
/// register ends the run.
fn load_run(ops: &[Op], blocks: &[Option<Block>], start: usize) -> Option<LoadRun> {
    let base = fuse::first_of(ops[start]);
    if !is_checked_load(base.kind) {
        return None;
    }
    let mut run = LoadRun {
        end: start,
        base: base.src,
        low: i64::MAX,
        high: i64::MIN,
    };
    let mut loads = 0;
    for (index, op) in ops.iter().enumerate().skip(start) {
        if index > start && blocks[index].is_some() {
            break;
        }
        let op = fuse::first_of(*op);
        if !(is_checked_load(op.kind) && op.src == run.base) {
            if keeps_register(op, run.base) {
                continue;
            }
            break;
        }
        let (len, _) = access_of(op.kind);
        let low = run.low.min(i64::from(op.target));
        let high = run.high.max(i64::from(op.target) + len as i64);
        if high - low > RUN_SPAN_BYTES_MAX {
            break;
        }
        (run.low, run.high, run.end) = (low, high, index + 1);
        loads += 1;
        if op.dst == run.base {
            break;
        }
    }
    (loads >= RUN_LOADS_MIN).then_some(run)
}

fn is_checked_load(kind: Kind) -> bool {
    use Kind::*;
    matches!(
        kind,
        Ldx8 | Ldx16 | Ldx32 | Ldx64 | LdxSx8 | LdxSx16 | LdxSx32
    )
}

/// Whether `op` may sit between the loads of a run through `base` (see [`load_run`]).
fn keeps_register(op: Op, base: u8) -> bool {
    use Kind::*;
    match op.kind {
        Nop | StStack8 | StStack16 | StStack32 | StStack64 | StxStack8 | StxStack16
        | StxStack32 | StxStack64 => true,
        Lddw | Mov64Imm | Mov32Imm | Neg64 | Neg32 | MovSx8To64 | MovSx16To64 | MovSx32To64
        | MovSx8To32 | MovSx16To32 | Trunc16 | Trunc32 | Swap16 | Swap32 | Swap64 | LdxStack8
        | LdxStack16 | LdxStack32 | LdxStack64 | LdxSxStack8 | LdxSxStack16 | LdxSxStack32 => {
            op.dst != base
        }
        kind => match arith_of(kind) {
            Some((Arith::Div | Arith::SDiv | Arith::Mod | Arith::SMod, ..)) | None => false,
            Some(_) => op.dst != base,
        },
    }
}

/// `(bytes, sign-extending)` of a load or store kind.
fn access_of(kind: Kind) -> (u64, bool) {
    use Kind::*;
    match kind {
        Ldx8 | St8 | Stx8 | LdxStack8 | StStack8 | StxStack8 => (1, false),
        Ldx16 | St16 | Stx16 | LdxStack16 | StStack16 | StxStack16 => (2, false),
        Ldx32 | St32 | Stx32 | LdxStack32 | StStack32 | StxStack32 => (4, false),
        LdxSx8 | LdxSxStack8 => (1, true),
        LdxSx16 | LdxSxStack16 => (2, true),
        LdxSx32 | LdxSxStack32 => (4, true),
        _ => (8, false),
    }
}

/// The signatures of the two ways native code calls a helper.
struct HelperSignatures {
    /// The trampoline (`code::TrampolineFn`).
    trampoline: SigRef,
    /// A scalar helper's direct entry (`code::DirectFn`).
    direct: SigRef,
}

impl HelperSignatures {
    fn import(builder: &mut FunctionBuilder<'_>, isa: &dyn TargetIsa) -> Self {
        HelperSignatures {
            trampoline: builder.import_signature(trampoline_signature(isa)),
            direct: builder.import_signature(direct_signature(isa)),
        }
    }
}

fn trampoline_signature(isa: &dyn TargetIsa) -> Signature {
    let mut signature = Signature::new(isa.default_call_conv());
    signature.params.push(AbiParam::new(isa.pointer_type()));
    // r1..=r5 and the call descriptor.
    for _ in 0..6 {
        signature.params.push(AbiParam::new(I64));
    }
    signature.returns.push(AbiParam::new(I64));
    signature
}

/// Signature of a scalar helper's direct entry: the context and r1..=r5, returning r0.
fn direct_signature(isa: &dyn TargetIsa) -> Signature {
    let mut signature = Signature::new(isa.default_call_conv());
    signature.params.push(AbiParam::new(isa.pointer_type()));
    for _ in 0..5 {
        signature.params.push(AbiParam::new(I64));
    }
    signature.returns.push(AbiParam::new(I64));
    signature
}

/// Program accesses and host-structure accesses live in separate alias regions: a program
/// store can never change the slot table or the context (they are not in any mapped region).
fn memory_flags(function: &mut Function) -> Flags {
    let mut region = |user_id: u32, description: &'static str| {
        function.dfg.alias_regions.insert(AliasRegionData {
            user_id,
            description: Cow::Borrowed(description),
        })
    };
    let guest_region = region(1, "program memory");
    let host_region = region(2, "slot table and context");
    let guest = MemFlagsData::new()
        .with_notrap()
        .with_alias_region(Some(guest_region));
    let host = MemFlagsData::trusted().with_alias_region(Some(host_region));
    let fixed = host.with_readonly().with_can_move();
    Flags { guest, host, fixed }
}
