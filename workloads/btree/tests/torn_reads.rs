//! Torn and stale nodes in the eBPF lookup. `LocalHost` runs a message to completion, so these
//! tests drive naam-engine's `Executor` directly (as `LocalHost::call` does) with a scripted
//! writer that changes the region bytes before each access: `btree_lookup` must retry
//! (`NAAM_RETRY`) into the right answer, or end in `RetriesExceeded` when the node never settles.

use std::sync::Arc;

use naam_btree::layout::{
    NODE_HIGH_OFFSET, NODE_TRAILER_FROM_END, NODE_VERSION_OFFSET, read_u32, read_u64,
};
use naam_btree::lookup::{LOOKUP_FUNCTION_SECTION, LOOKUP_OBJECT};
use naam_btree::{BTree, BTreeConfig, BTreeReader, LookupArgs, LookupReply};
use naam_engine::abi::{RETRIES_MAX, STEPS_MAX};
use naam_engine::exec::AccessFailure;
use naam_engine::wire::{Descriptors, ErrorKind};
use naam_engine::{
    Code, Descriptor, Executor, ExecutorConfig, Frame, FunctionId, FunctionTable, Invoke, Location,
    Nanos, Perms, RegionTable, RequestId, Rkey, RkeySecret, Status, TenantId,
};

const TENANT: TenantId = TenantId(7);
const LOOKUP: FunctionId = FunctionId(3);
const NODE_BYTES: u32 = 128;
/// Rounds (accesses + one step) a lookup may take: every step of every attempt, plus one.
const ROUNDS_MAX: usize = STEPS_MAX * (RETRIES_MAX + 1) + 1;

/// The outcome of one scripted lookup.
#[derive(Debug)]
struct Scripted {
    status: Status,
    reply: Option<LookupReply>,
    attempts: u8,
    /// Node offset read in each round.
    reads: Vec<u64>,
}

/// A tree of keys `0, 10, 20, …` (value = key / 10) in 128-byte nodes, three levels or more.
fn tree(keys: u64) -> Vec<u8> {
    let pairs: Vec<(u64, u64)> = (0..keys).map(|i| (i * 10, i)).collect();
    let config = BTreeConfig {
        node_bytes: NODE_BYTES,
        nodes_max: 400,
    };
    let mut nodes = vec![0; config.validate().expect("valid")];
    let tree = BTree::bulk_load(config, &mut nodes, &pairs, 80).expect("load");
    assert!(tree.superblock().height >= 3);
    nodes
}

/// Looks `key` up with `btree_lookup` over `nodes`; `script(round, node_offset, nodes)` runs
/// before each access.
fn lookup_with(
    nodes: &mut [u8],
    key: u64,
    mut script: impl FnMut(usize, u64, &mut [u8]),
) -> Scripted {
    let mut regions = RegionTable::new(RkeySecret([9; 16]));
    let info = regions
        .register(TENANT, nodes.len() as u64, Perms::READ)
        .expect("region");
    let mut functions = FunctionTable::new();
    let code = Code::Elf {
        object: LOOKUP_OBJECT,
        name: LOOKUP_FUNCTION_SECTION,
    };
    functions
        .register_ebpf(TENANT, LOOKUP, "btree_lookup", code)
        .expect("function");
    let config = ExecutorConfig::new(Location::Host);
    let mut exec = Executor::new(config, Arc::new(functions), Arc::new(regions)).expect("executor");
    let reader = BTreeReader::open(nodes).expect("tree");
    let args = LookupArgs::for_tree(&reader, info.rkey.0, key);
    let encoded = args.encode().expect("args");
    let first = args.initial_access();
    let descriptors =
        Descriptors::from_slice(&[Descriptor::read(Rkey(first.rkey), first.offset, first.len)])
            .expect("one descriptor");
    let invoke = Invoke::new_message(TENANT, LOOKUP, RequestId(1), &encoded, descriptors);
    exec.submit(Nanos(0), Nanos(0), 0, &invoke);
    let mut reads = Vec::new();
    let mut frame = Vec::new();
    for round in 0..ROUNDS_MAX {
        while let Some(access) = exec.poll_access() {
            let offset = access.descriptor.offset;
            reads.push(offset);
            script(round, offset, nodes);
            let bytes =
                nodes.get(offset as usize..(offset + u64::from(access.descriptor.len)) as usize);
            match bytes {
                Some(bytes) => exec.complete_access(access.id, bytes),
                None => exec.fail_access(Nanos(0), access.id, AccessFailure::DataPath),
            };
        }
        if exec.poll_completion(&mut frame).is_some() {
            let Ok(Frame::Reply(reply)) = Frame::decode(&frame) else {
                panic!("the executor's frame is a reply")
            };
            return Scripted {
                status: reply.status,
                reply: LookupReply::decode(reply.payload).ok(),
                attempts: reply.attempts,
                reads,
            };
        }
        exec.run(Nanos(0), 1);
    }
    panic!("lookup did not complete in {ROUNDS_MAX} rounds")
}

/// The leaf holding `key` and the height, found natively.
fn leaf_of(nodes: &[u8], key: u64) -> (u64, usize) {
    let mut reads = Vec::new();
    let height = BTreeReader::open(nodes).expect("tree").superblock().height;
    let done = lookup_with(&mut nodes.to_vec(), key, |_, offset, _| reads.push(offset));
    assert_eq!(done.reply, Some(LookupReply::Found(key / 10)));
    (reads[height - 1], height)
}

fn versions(nodes: &[u8], node: u64) -> (u32, u32) {
    let at = node as usize;
    let end = at + NODE_BYTES as usize - NODE_TRAILER_FROM_END;
    (
        read_u32(nodes, at + NODE_VERSION_OFFSET).unwrap_or(0),
        read_u32(nodes, end).unwrap_or(0),
    )
}

fn set_trailer(nodes: &mut [u8], node: u64, version: u32) {
    let end = node as usize + NODE_BYTES as usize - NODE_TRAILER_FROM_END;
    nodes[end..end + 4].copy_from_slice(&version.to_le_bytes());
}

#[test]
fn a_leaf_whose_two_versions_differ_is_retried_until_it_settles() {
    let mut nodes = tree(200);
    let key = 730;
    let (leaf, height) = leaf_of(&nodes, key);
    let (v, trailer) = versions(&nodes, leaf);
    assert_eq!(v, trailer);
    // The first two reads of the leaf overlap a write (trailer already at the next version);
    // the third sees it settled.
    let mut leaf_reads = 0;
    let done = lookup_with(&mut nodes, key, |_, offset, n| {
        if offset == leaf {
            leaf_reads += 1;
            let now = if leaf_reads <= 2 { v + 2 } else { v };
            set_trailer(n, leaf, now);
        }
    });
    assert_eq!(done.status, Status::Ok, "{done:?}");
    assert_eq!(done.reply, Some(LookupReply::Found(73)));
    assert_eq!(done.attempts, 2);
    assert_eq!(done.reads.len(), 3 * height, "three descents from the root");
}

#[test]
fn a_leaf_that_never_settles_ends_in_retries_exceeded() {
    let mut nodes = tree(200);
    let key = 1230;
    let (leaf, height) = leaf_of(&nodes, key);
    let (v, _) = versions(&nodes, leaf);
    let done = lookup_with(&mut nodes, key, |_, offset, n| {
        if offset == leaf {
            set_trailer(n, leaf, v + 2);
        }
    });
    assert!(
        matches!(done.status, Status::Error(code) if code.kind == ErrorKind::RetriesExceeded),
        "{done:?}"
    );
    assert_eq!(usize::from(done.attempts), RETRIES_MAX);
    assert_eq!(done.reads.len(), (RETRIES_MAX + 1) * height);
    // Native lookups give up on the same bytes too.
    assert!(BTreeReader::open(&nodes).expect("tree").get(key).is_err());
}

#[test]
fn a_split_between_the_parent_and_the_leaf_sends_the_lookup_back_to_the_root() {
    let mut nodes = tree(200);
    // The largest key of its leaf: a split moves it to the new right node.
    let (leaf, height) = leaf_of(&nodes, 10);
    let high = read_u64(&nodes, leaf as usize + NODE_HIGH_OFFSET).unwrap_or(0);
    let key = high - high % 10;
    assert_eq!(leaf_of(&nodes, key).0, leaf);
    // After the lookup has read the parent and before it reads the leaf, the writer inserts
    // keys into the leaf's range until it splits (the root stays where it is).
    let done = lookup_with(&mut nodes, key, |round, offset, n| {
        if round == height - 1 && offset == leaf {
            let mut tree = BTree::open(n).expect("writer");
            for k in (key - 9)..key {
                tree.insert(k, k).expect("insert");
            }
        }
    });
    let high_after = read_u64(&nodes, leaf as usize + NODE_HIGH_OFFSET).unwrap_or(0);
    assert!(
        high_after < key,
        "the leaf split and lost {key} to its right sibling"
    );
    assert_eq!(done.status, Status::Ok, "{done:?}");
    assert_eq!(done.reply, Some(LookupReply::Found(key / 10)));
    assert_eq!(done.attempts, 1, "the fences revealed the stale path once");
    assert_ne!(
        done.reads.last(),
        Some(&leaf),
        "the retry found the new node"
    );
    let native = BTreeReader::open(&nodes).expect("tree").get(key);
    assert_eq!(native, Ok(Some(key / 10)));
}
