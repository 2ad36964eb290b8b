//! Accesses completed in place (`Executor::complete_access_in_place`): the driver lends its own
//! bytes to the step that reads them instead of copying them into the executor. The outcome of
//! every message must be the one of the copying path; accesses are still checked before they are
//! handed out; a step whose lent bytes cannot be served ends with a data-path error and harms no
//! other message.

mod support;

use std::sync::Arc;

use naam_engine::exec::Completion;
use naam_engine::wire::{Descriptors, ErrorCode, ErrorKind};
use naam_engine::*;
use support::*;

/// Messages of each kind compared between the two paths.
const MESSAGES_PER_KIND: usize = 200;
/// Pairs in the dataset.
const PAIRS: usize = 150;

/// The test dataset's host memory, lent by region id.
struct Lent<'a>(&'a Memory);

impl AccessMemory for Lent<'_> {
    fn bytes(&self, region: RegionId, offset: u64, len: u32) -> Option<&[u8]> {
        let bytes = self.0.get(&region)?;
        bytes.get(offset as usize..offset as usize + len as usize)
    }
}

/// Lends one byte too few of every access.
struct Short<'a>(&'a Memory);

impl AccessMemory for Short<'_> {
    fn bytes(&self, region: RegionId, offset: u64, len: u32) -> Option<&[u8]> {
        let bytes = self.0.get(&region)?;
        bytes.get(offset as usize..offset as usize + len as usize - 1)
    }
}

fn executor(regions: &RegionTable) -> Executor {
    let config = ExecutorConfig::new(Location::Host);
    Executor::new(config, Arc::new(functions()), Arc::new(regions.clone())).expect("executor")
}

/// Runs one message to completion, lending every access in place.
fn run_in_place<M: AccessMemory>(
    exec: &mut Executor,
    memory: &M,
    msg: &Invoke<'_>,
) -> (Completion, Vec<u8>) {
    exec.submit(Nanos(0), Nanos(0), 0, msg);
    for _ in 0..10_000 {
        while let Some(a) = exec.poll_access() {
            assert!(exec.complete_access_in_place(a.id), "a live access");
            assert!(
                !exec.complete_access_in_place(a.id),
                "a duplicate is refused"
            );
        }
        let mut frame = Vec::new();
        if let Some(c) = exec.poll_completion(&mut frame) {
            return (c, frame);
        }
        exec.run_with(Nanos(0), 1, memory);
    }
    panic!("message did not complete in 10,000 rounds");
}

/// The completion carries the reply frame's status, steps and attempts (a payload-only driver
/// such as `LocalHost` reads them there instead of from a frame).
fn assert_frame_matches(c: &Completion, frame: &[u8]) {
    let Ok(Frame::Reply(reply)) = Frame::decode(frame) else {
        panic!("not a reply frame");
    };
    assert_eq!(
        (c.status, c.steps, c.attempts),
        (reply.status, reply.steps, reply.attempts)
    );
}

#[test]
fn in_place_and_copied_accesses_give_the_same_replies() {
    let seed = test_seed(0x1a_9e);
    let (regions, memory, ds) = dataset(&pairs(PAIRS, seed.0), 9);
    let (mut copying, mut lending) = (executor(&regions), executor(&regions));
    let mut rng = SplitMix(seed.0);
    let mut hits = 0;
    for i in 0..2 * MESSAGES_PER_KIND {
        // Stored keys and keys that are not (misses), for both functions.
        let key = match rng.next() % 3 {
            0 => rng.next() % 100_000 + 1,
            _ => ds.pairs[(rng.next() % ds.pairs.len() as u64) as usize].0,
        };
        let (function, (args, descriptors)) = alternate_request(&ds, i, key);
        let msg = invoke(TENANT, function, i as u64, &args, descriptors);
        let (c_copy, frame_copy) = run_at_host(&mut copying, &memory, &regions, &msg);
        let (c_lent, frame_lent) = run_in_place(&mut lending, &Lent(&memory), &msg);
        assert_eq!(c_copy, c_lent, "completion of message {i} (key {key})");
        assert_eq!(frame_copy, frame_lent, "reply of message {i} (key {key})");
        assert_frame_matches(&c_lent, &frame_lent);
        hits += usize::from(reply_of(&frame_lent).2.first() == Some(&1));
    }
    assert!(hits > 0, "some lookups hit");
    assert_eq!(copying.stats().insn, lending.stats().insn);
}

#[test]
fn lent_bytes_that_cannot_be_served_end_the_message_with_a_data_path_error() {
    let (regions, memory, ds) = dataset(&pairs(PAIRS, 3), 9);
    let mut exec = executor(&regions);
    let key = ds.pairs[0].0;
    let (args, descriptors) = hash_request(&ds, key);
    let msg = invoke(TENANT, HASH_GET, 1, &args, descriptors);
    let data_path = Status::Error(ErrorCode {
        kind: ErrorKind::DataPath,
        detail: 0,
    });
    // Completed in place, but run without memory to lend, or with memory lending too few bytes.
    let (c, frame) = run_in_place(&mut exec, &NoMemory, &msg);
    assert_eq!((c.status, c.insn), (data_path, 0));
    assert_frame_matches(&c, &frame);
    let (c, _) = run_in_place(&mut exec, &Short(&memory), &msg);
    assert_eq!((c.status, c.insn), (data_path, 0));
    // The executor goes on serving: the same message, lent properly, hits.
    let (c, frame) = run_in_place(&mut exec, &Lent(&memory), &msg);
    assert_eq!(c.status, Status::Ok);
    assert_eq!(reply_of(&frame).2.first(), Some(&1), "a hit");
}

#[test]
fn a_denied_access_is_never_handed_out_for_lending() {
    let (regions, memory, ds) = dataset(&pairs(PAIRS, 5), 9);
    let mut exec = executor(&regions);
    // READ_ANY reads the other tenant's region: the region check denies it at submission.
    let (args, _) = hash_request(&ds, 1);
    let denied = Descriptor::read(ds.other.rkey, 0, 8);
    let descriptors = naam_engine::wire::Descriptors::from_slice(&[denied]).expect("one");
    let msg = invoke(TENANT, READ_ANY, 7, &args, descriptors);
    exec.submit(Nanos(0), Nanos(0), 0, &msg);
    assert_eq!(exec.poll_access(), None, "nothing to lend");
    let mut frame = Vec::new();
    let c = exec
        .poll_completion(&mut frame)
        .expect("ended at submission");
    assert!(
        matches!(
            c.status,
            Status::Error(ErrorCode {
                kind: ErrorKind::AccessDenied,
                ..
            })
        ),
        "{:?}",
        c.status
    );
    assert_eq!(exec.run_with(Nanos(0), 1, &Lent(&memory)), 0);
}

#[test]
fn a_stale_in_place_completion_is_ignored() {
    let (regions, memory, ds) = dataset(&pairs(PAIRS, 7), 9);
    let mut exec = executor(&regions);
    let (args, descriptors) = hash_request(&ds, ds.pairs[1].0);
    let msg = invoke(TENANT, HASH_GET, 2, &args, descriptors);
    exec.submit(Nanos(0), Nanos(0), 0, &msg);
    let first = exec.poll_access().expect("the bucket read");
    assert!(exec.fail_access(Nanos(0), first.id, AccessFailure::DataPath));
    assert!(
        !exec.complete_access_in_place(first.id),
        "its message ended"
    );
    let mut frame = Vec::new();
    assert!(exec.poll_completion(&mut frame).is_some());
    let (c, _) = run_in_place(&mut exec, &Lent(&memory), &msg);
    assert_eq!(c.status, Status::Ok);
}

#[test]
fn an_executor_lending_every_access_queues_none_and_answers_as_the_copying_one() {
    let (regions, memory, ds) = dataset(&pairs(PAIRS, 13), 9);
    let (mut copying, mut lending) = (executor(&regions), executor(&regions));
    lending.set_accesses_in_place(true);
    let mut accesses_out = 0;
    for (i, &(key, _)) in ds.pairs.iter().take(MESSAGES_PER_KIND).enumerate() {
        let (function, (args, descriptors)) = alternate_request(&ds, i, key);
        let msg = invoke(TENANT, function, i as u64, &args, descriptors);
        let (c_copy, frame_copy) = run_at_host(&mut copying, &memory, &regions, &msg);
        lending.submit(Nanos(0), Nanos(0), 0, &msg);
        let mut frame = Vec::new();
        let c_lent = loop {
            assert_eq!(lending.poll_access(), None, "nothing is queued");
            if let Some(c) = lending.poll_completion(&mut frame) {
                break c;
            }
            let step = lending
                .step_with(Nanos(0), &Lent(&memory))
                .expect("a ready step");
            accesses_out += u64::from(step.accesses_out);
        };
        assert_eq!((c_copy, &frame_copy), (c_lent, &frame), "message {i}");
    }
    // Every step but a message's last declares the next step's accesses.
    assert!(accesses_out > 0);
    assert_eq!(copying.stats().steps, lending.stats().steps);
}

#[test]
fn a_payload_only_executor_hands_back_the_frames_payload_and_fields() {
    let (regions, memory, ds) = dataset(&pairs(PAIRS, 17), 9);
    let (mut framing, mut bare) = (executor(&regions), executor(&regions));
    bare.set_reply_payload_only(true);
    let mut payload_bytes = 0;
    for (i, &(key, _)) in ds.pairs.iter().take(MESSAGES_PER_KIND).enumerate() {
        // Every third key is absent (its reply payload says so); others are hits.
        let key = if i % 3 == 2 { key ^ 0x5a5a } else { key };
        let (function, (args, descriptors)) = alternate_request(&ds, i, key);
        let msg = invoke(TENANT, function, i as u64, &args, descriptors);
        let (c_frame, frame) = run_in_place(&mut framing, &Lent(&memory), &msg);
        let (c_bare, payload) = run_in_place(&mut bare, &Lent(&memory), &msg);
        let Ok(Frame::Reply(reply)) = Frame::decode(&frame) else {
            panic!("message {i}: not a reply frame");
        };
        assert_eq!(c_frame, c_bare, "message {i}");
        assert_eq!(reply.payload, payload.as_slice(), "message {i}");
        payload_bytes += payload.len();
    }
    assert!(payload_bytes > 0, "some replies carry bytes");
}

/// Even messages get from the hash index, odd ones from the tree.
fn alternate_request(ds: &Dataset, i: usize, key: u64) -> (FunctionId, (Vec<u8>, Descriptors)) {
    if i.is_multiple_of(2) {
        (HASH_GET, hash_request(ds, key))
    } else {
        (TREE_GET, tree_request(ds, key))
    }
}
