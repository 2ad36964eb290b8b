//! Removes block parameters nothing reads before Cranelift compiles the function.
//!
//! The SSA builder gives a block a parameter for every register variable looked up through it
//! while a predecessor was still unknown (a loop header, a block a later jump reaches), including
//! registers the block overwrites before reading them (e.g. a loop counter's old copy). Cranelift
//! keeps such a parameter, and the register allocator then moves the dead value into place on every
//! edge into the block (on each loop iteration for a loop header). A parameter is live when an
//! instruction reads it, or when it is passed to a live parameter; every other parameter goes,
//! with its argument on every branch to its block.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir::{Block, Function, Value, ValueDef};

/// Removes the parameters of non-entry blocks that no instruction reads, directly or through
/// other parameters.
pub(crate) fn remove_dead_params(function: &mut Function) {
    function.dfg.resolve_all_aliases();
    let live = live_params(function, &incoming_args(function));
    let dead: HashMap<Block, Vec<usize>> = blocks_with_params(function)
        .into_iter()
        .map(|(block, params)| {
            let indexes = params
                .iter()
                .enumerate()
                .filter(|(_, param)| !live.contains(*param))
                .map(|(index, _)| index)
                .collect::<Vec<_>>();
            (block, indexes)
        })
        .filter(|(_, indexes)| !indexes.is_empty())
        .collect();
    if dead.is_empty() {
        return;
    }
    remove_args(function, &dead);
    for (block, indexes) in &dead {
        // Highest index first, so the lower ones keep their positions.
        for index in indexes.iter().rev() {
            let param = function.dfg.block_params(*block)[*index];
            function.dfg.remove_block_param(param);
        }
    }
}

/// The values passed to each block parameter, over every branch.
fn incoming_args(function: &Function) -> HashMap<Value, Vec<Value>> {
    let dfg = &function.dfg;
    let mut incoming: HashMap<Value, Vec<Value>> = HashMap::new();
    for block in function.layout.blocks() {
        for inst in function.layout.block_insts(block) {
            let calls = dfg.insts[inst].branch_destination(&dfg.jump_tables, &dfg.exception_tables);
            for call in calls {
                let params = dfg.block_params(call.block(&dfg.value_lists));
                for (param, arg) in params.iter().zip(call.args(&dfg.value_lists)) {
                    if let Some(value) = arg.as_value() {
                        incoming.entry(*param).or_default().push(value);
                    }
                }
            }
        }
    }
    incoming
}

/// Parameters read by an instruction (not as a branch argument), of the entry block, or passed
/// to a live parameter.
fn live_params(function: &Function, incoming: &HashMap<Value, Vec<Value>>) -> HashSet<Value> {
    let dfg = &function.dfg;
    let is_param = |value: Value| matches!(dfg.value_def(value), ValueDef::Param(..));
    let mut live = HashSet::new();
    let mut work = Vec::new();
    if let Some(entry) = function.layout.entry_block() {
        work.extend_from_slice(dfg.block_params(entry));
    }
    for block in function.layout.blocks() {
        for inst in function.layout.block_insts(block) {
            work.extend(dfg.inst_args(inst).iter().copied().filter(|v| is_param(*v)));
        }
    }
    while let Some(param) = work.pop() {
        if !live.insert(param) {
            continue;
        }
        for value in incoming.get(&param).into_iter().flatten() {
            if is_param(*value) && !live.contains(value) {
                work.push(*value);
            }
        }
    }
    live
}

/// Every non-entry block with parameters, and its parameters.
fn blocks_with_params(function: &Function) -> Vec<(Block, Vec<Value>)> {
    let entry = function.layout.entry_block();
    function
        .layout
        .blocks()
        .filter(|block| Some(*block) != entry)
        .map(|block| (block, function.dfg.block_params(block).to_vec()))
        .filter(|(_, params)| !params.is_empty())
        .collect()
}

/// Removes, from every branch to a block in `dead`, the arguments at the listed indexes.
fn remove_args(function: &mut Function, dead: &HashMap<Block, Vec<usize>>) {
    let blocks: Vec<Block> = function.layout.blocks().collect();
    for block in blocks {
        let insts: Vec<_> = function.layout.block_insts(block).collect();
        for inst in insts {
            let dfg = &mut function.dfg;
            let calls = dfg.insts[inst]
                .branch_destination_mut(&mut dfg.jump_tables, &mut dfg.exception_tables);
            for call in calls {
                let Some(indexes) = dead.get(&call.block(&dfg.value_lists)) else {
                    continue;
                };
                for index in indexes.iter().rev() {
                    call.remove(*index, &mut dfg.value_lists);
                }
            }
        }
    }
}
