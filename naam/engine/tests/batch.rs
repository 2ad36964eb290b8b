//! Several messages in flight through one `LocalHost` (`LocalHost::call_batch_into`), and the
//! executor telling a lending memory of each access before the step that reads it
//! (`AccessMemory::prefetch`). A batch's replies must be the ones its messages get one by one;
//! the prefetch hint must see exactly the accesses the steps asked for and change nothing.

mod support;

use std::cell::RefCell;
use std::sync::Arc;

use naam_engine::local::{CALL_BATCH_MAX, CallReply, LocalError, LocalHost};
use naam_engine::wire::Descriptors;
use naam_engine::*;
use support::*;

/// Pairs in the dataset.
const PAIRS: usize = 150;

/// A host holding the dataset's regions (same secret and order: the same rkeys) and every test
/// function, loaded for `backend`.
fn host(backend: Backend) -> (LocalHost, Dataset) {
    let (_regions, memory, ds) = dataset(&pairs(PAIRS, 0xba7c), 9);
    let mut host = LocalHost::new(RkeySecret([9; 16]));
    host.set_backend(backend);
    for info in [ds.index, ds.items, ds.nodes, ds.other] {
        let added = host
            .add_region(info.tenant, memory[&info.id].clone(), info.perms)
            .expect("region");
        assert_eq!(added.rkey, info.rkey);
    }
    let fns = [
        (HASH_GET, "hash_get"),
        (TREE_GET, "tree_get"),
        (READ_ANY, "read_any"),
        (WILD_LOAD, "wild_load"),
        (SPIN, "spin"),
    ];
    for (id, name) in fns {
        let code = Code::Elf {
            object: ENGINE_FNS,
            name,
        };
        host.register(TENANT, id, name, code).expect(name);
    }
    (host, ds)
}

/// One message's parts, owned (a batch borrows its arguments from these).
struct Message {
    function: FunctionId,
    args: Vec<u8>,
    descriptors: Descriptors,
}

/// Message `i`: hits and misses of the hash index and the tree, alternating.
fn lookup(ds: &Dataset, i: usize) -> Message {
    let stored = ds.pairs[i * 7 % ds.pairs.len()].0;
    // Every third key is absent.
    let key = if i % 3 == 2 { stored ^ 0x5a5a } else { stored };
    let (function, (args, descriptors)) = if i.is_multiple_of(2) {
        (HASH_GET, hash_request(ds, key))
    } else {
        (TREE_GET, tree_request(ds, key))
    };
    Message {
        function,
        args,
        descriptors,
    }
}

fn invokes(messages: &[Message]) -> Vec<Invoke<'_>> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| invoke(TENANT, m.function, i as u64, &m.args, m.descriptors))
        .collect()
}

/// The replies of `messages` one by one (`call`) and as one batch, compared.
fn assert_batch_matches_one_by_one(host: &mut LocalHost, messages: &[Message]) -> Vec<CallReply> {
    let invokes = invokes(messages);
    let alone: Vec<CallReply> = invokes
        .iter()
        .map(|m| host.call(m).expect("call"))
        .collect();
    let mut batch: Vec<CallReply> = (0..invokes.len()).map(|_| CallReply::empty()).collect();
    host.call_batch_into(&invokes, &mut batch).expect("batch");
    assert_eq!(alone, batch, "a batch of {}", invokes.len());
    // Again with the reply buffers of the first batch (swapped, not reallocated): the same.
    host.call_batch_into(&invokes, &mut batch).expect("batch");
    assert_eq!(alone, batch, "a second batch of {}", invokes.len());
    batch
}

#[test]
fn a_batch_answers_as_its_messages_one_by_one() {
    for backend in Backend::ALL {
        let (mut host, ds) = host(backend);
        for size in [1, 2, 8, 13, CALL_BATCH_MAX] {
            let messages: Vec<Message> = (0..size).map(|i| lookup(&ds, i + size)).collect();
            let replies = assert_batch_matches_one_by_one(&mut host, &messages);
            assert!(
                replies
                    .iter()
                    .all(|r| r.status == Status::Ok && r.steps > 0)
            );
            if size >= 3 {
                let hits = replies.iter().filter(|r| r.payload.first() == Some(&1));
                let misses = replies.iter().filter(|r| r.payload.first() == Some(&0));
                assert!(hits.count() > 0 && misses.count() > 0, "{backend}: a mix");
            }
        }
    }
}

#[test]
fn messages_that_trap_or_are_refused_answer_their_error_and_the_others_theirs() {
    for backend in Backend::ALL {
        let (mut host, ds) = host(backend);
        let mut messages: Vec<Message> = (0..12).map(|i| lookup(&ds, i)).collect();
        let wild = 0xdead_0000_u64.to_le_bytes().to_vec();
        let outside = Descriptor::read(ds.index.rkey, 1 << 40, 64);
        let odd = [
            (WILD_LOAD, wild, Descriptors::new()),
            (SPIN, Vec::new(), Descriptors::new()),
            (
                HASH_GET,
                messages[0].args.clone(),
                Descriptors::from_slice(&[outside]).expect("one"),
            ),
            (FunctionId(99), Vec::new(), Descriptors::new()),
        ];
        for (at, (function, args, descriptors)) in [1, 4, 7, 11].into_iter().zip(odd) {
            messages[at] = Message {
                function,
                args,
                descriptors,
            };
        }
        let replies = assert_batch_matches_one_by_one(&mut host, &messages);
        let errors = replies
            .iter()
            .filter(|r| matches!(r.status, Status::Error(_)));
        assert_eq!(errors.count(), 4, "{backend}: the four odd messages fail");
    }
}

#[test]
fn an_oversize_batch_or_one_without_a_reply_per_message_is_refused_and_runs_nothing() {
    let (mut host, ds) = host(Backend::Interpreter);
    let messages: Vec<Message> = (0..=CALL_BATCH_MAX).map(|i| lookup(&ds, i)).collect();
    let invokes = invokes(&messages);
    let mut replies: Vec<CallReply> = (0..invokes.len()).map(|_| CallReply::empty()).collect();
    let err = host.call_batch_into(&invokes, &mut replies).unwrap_err();
    assert!(
        matches!(err, LocalError::BatchTooLarge { messages } if messages == CALL_BATCH_MAX + 1)
    );
    assert_eq!(
        err.to_string(),
        format!(
            "a batch of {} messages: at most {CALL_BATCH_MAX}",
            CALL_BATCH_MAX + 1
        )
    );
    let err = host
        .call_batch_into(&invokes[..3], &mut replies[..2])
        .unwrap_err();
    assert!(matches!(
        err,
        LocalError::BatchReplies {
            messages: 3,
            replies: 2
        }
    ));
    assert!(
        replies.iter().all(|r| *r == CallReply::empty()),
        "nothing ran"
    );
    // An empty batch completes at once.
    host.call_batch_into(&[], &mut []).expect("empty batch");
}

/// Lends the dataset's memory and records every prefetch it is told of.
struct Recording<'a> {
    memory: &'a Memory,
    prefetched: RefCell<Vec<(RegionId, u64, u32)>>,
}

impl AccessMemory for Recording<'_> {
    const PREFETCHES: bool = true;

    fn bytes(&self, region: RegionId, offset: u64, len: u32) -> Option<&[u8]> {
        let bytes = self.memory.get(&region)?;
        bytes.get(offset as usize..offset as usize + len as usize)
    }

    fn prefetch(&self, region: RegionId, offset: u64, len: u32) {
        self.prefetched.borrow_mut().push((region, offset, len));
    }
}

fn executor(regions: &RegionTable) -> Executor {
    let config = ExecutorConfig::new(Location::Host);
    Executor::new(config, Arc::new(functions()), Arc::new(regions.clone())).expect("executor")
}

#[test]
fn a_prefetching_memory_is_told_of_exactly_the_accesses_the_steps_asked_for_in_order() {
    let (regions, memory, ds) = dataset(&pairs(PAIRS, 0x9f), 9);
    let (mut copying, mut lending) = (executor(&regions), executor(&regions));
    lending.set_accesses_in_place(true);
    let recording = Recording {
        memory: &memory,
        prefetched: RefCell::new(Vec::new()),
    };
    let mut handed_out = Vec::new();
    for i in 0..40 {
        let m = lookup(&ds, i);
        let msg = invoke(TENANT, m.function, i as u64, &m.args, m.descriptors);
        let (c_copy, frame_copy) = run_serving(&mut copying, &msg, |exec, a| {
            handed_out.push((a.region, a.descriptor.offset, a.descriptor.len));
            let bytes = serve(&memory, &regions, a.tenant, &a.descriptor).expect("allowed");
            assert!(exec.complete_access(a.id, &bytes));
        });
        lending.submit_with(Nanos(0), Nanos(0), 0, &msg, &recording);
        // Half the steps through `run_with`, half through `step_with`: both tell the memory.
        if i % 2 == 0 {
            lending.run_with(Nanos(0), usize::MAX, &recording);
        } else {
            while lending.step_with(Nanos(0), &recording).is_some() {}
        }
        let mut frame = Vec::new();
        let c_lent = lending.poll_completion(&mut frame).expect("done");
        assert_eq!((c_copy, frame_copy), (c_lent, frame), "message {i}");
    }
    assert!(handed_out.len() > 40, "later steps' accesses too");
    assert_eq!(*recording.prefetched.borrow(), handed_out);
}

#[test]
fn accesses_not_lent_at_hand_out_are_never_prefetched() {
    let (regions, memory, ds) = dataset(&pairs(PAIRS, 0x9f), 9);
    let mut exec = executor(&regions);
    let recording = Recording {
        memory: &memory,
        prefetched: RefCell::new(Vec::new()),
    };
    for i in 0..10 {
        let m = lookup(&ds, i);
        let msg = invoke(TENANT, m.function, i as u64, &m.args, m.descriptors);
        exec.submit_with(Nanos(0), Nanos(0), 0, &msg, &recording);
        let mut frame = Vec::new();
        // Copied (even messages) or completed in place one by one (odd): the driver holds the
        // access, not the executor, so it is the driver's to prefetch.
        while exec.poll_completion(&mut frame).is_none() {
            while let Some(a) = exec.poll_access() {
                if i % 2 == 0 {
                    let bytes = serve(&memory, &regions, a.tenant, &a.descriptor).expect("allowed");
                    assert!(exec.complete_access(a.id, &bytes));
                } else {
                    assert!(exec.complete_access_in_place(a.id));
                }
            }
            exec.run_with(Nanos(0), 1, &recording);
        }
        assert!(!frame.is_empty());
    }
    assert_eq!(*recording.prefetched.borrow(), Vec::new());
    // The copying path's memory is never told of anything either.
    const { assert!(!<NoMemory as AccessMemory>::PREFETCHES) };
}
