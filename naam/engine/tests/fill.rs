//! Accesses completed by filling the message's own buffer (`Executor::complete_access_into`):
//! the driver reads straight into it instead of handing over a buffer of its own. Every message
//! must answer as on the copying path; a fill that cannot serve leaves the access pending (the
//! driver then fails it); a stale or duplicate id is never filled.

mod support;

use std::sync::Arc;

use naam_engine::wire::{ErrorCode, ErrorKind};
use naam_engine::*;
use support::*;

/// Messages compared between the two paths.
const MESSAGES: usize = 300;
/// Pairs in the dataset.
const PAIRS: usize = 150;

fn executor(regions: &RegionTable) -> Executor {
    let config = ExecutorConfig::new(Location::Host);
    Executor::new(config, Arc::new(functions()), Arc::new(regions.clone())).expect("executor")
}

/// Fills every access's buffer from host memory (for `run_serving`), checking the buffer's
/// length and that a duplicate is refused.
fn fill_from<'a>(
    memory: &'a Memory,
    regions: &'a RegionTable,
) -> impl FnMut(&mut Executor, AccessRequest) + 'a {
    move |exec, a| {
        let bytes = serve(memory, regions, a.tenant, &a.descriptor).expect("checked");
        let mut asked_len = None;
        let fill = |buf: &mut [u8]| {
            asked_len = Some(buf.len());
            buf.copy_from_slice(&bytes);
            true
        };
        assert_eq!(exec.complete_access_into(a.id, fill), AccessFill::Completed);
        assert_eq!(
            asked_len,
            Some(bytes.len()),
            "the buffer is the access's length"
        );
        let duplicate = exec.complete_access_into(a.id, |_| panic!("a duplicate is filled"));
        assert_eq!(duplicate, AccessFill::Stale);
    }
}

#[test]
fn filled_and_copied_accesses_give_the_same_replies() {
    let seed = test_seed(0xf1_11);
    let (regions, memory, ds) = dataset(&pairs(PAIRS, seed.0), 9);
    let (mut copying, mut filling) = (executor(&regions), executor(&regions));
    let mut rng = SplitMix(seed.0);
    let mut hits = 0;
    for i in 0..MESSAGES {
        // Stored keys and keys that are not (misses), through the hash table and the tree.
        let key = match rng.next() % 3 {
            0 => rng.next() % 100_000 + 1,
            _ => ds.pairs[(rng.next() % ds.pairs.len() as u64) as usize].0,
        };
        let (function, (args, descriptors)) = if i % 2 == 0 {
            (HASH_GET, hash_request(&ds, key))
        } else {
            (TREE_GET, tree_request(&ds, key))
        };
        let msg = invoke(TENANT, function, i as u64, &args, descriptors);
        let (c_copy, frame_copy) = run_at_host(&mut copying, &memory, &regions, &msg);
        let (c_fill, frame_fill) = run_serving(&mut filling, &msg, fill_from(&memory, &regions));
        assert_eq!(c_copy, c_fill, "completion of message {i} (key {key})");
        assert_eq!(frame_copy, frame_fill, "reply of message {i} (key {key})");
        hits += usize::from(reply_of(&frame_fill).2.first() == Some(&1));
    }
    assert!(hits > 0, "some lookups hit");
    let counts = |e: &Executor| {
        let s = e.stats();
        (s.submitted, s.ok, s.errors, s.steps, s.insn)
    };
    assert_eq!(counts(&copying), counts(&filling));
}

#[test]
fn an_unserved_fill_leaves_the_access_pending_until_it_is_failed() {
    let (regions, memory, ds) = dataset(&pairs(PAIRS, 3), 9);
    let mut exec = executor(&regions);
    let (args, descriptors) = hash_request(&ds, ds.pairs[0].0);
    let msg = invoke(TENANT, HASH_GET, 1, &args, descriptors);
    exec.submit(Nanos(0), Nanos(0), 0, &msg);
    let access = exec.poll_access().expect("the bucket read");
    assert_eq!(
        exec.complete_access_into(access.id, |_| false),
        AccessFill::NotServed
    );
    assert_eq!(exec.ready_len(), 0, "nothing to run");
    let mut frame = Vec::new();
    assert!(
        exec.poll_completion(&mut frame).is_none(),
        "still in flight"
    );
    assert!(exec.fail_access(Nanos(0), access.id, AccessFailure::DataPath));
    let c = exec
        .poll_completion(&mut frame)
        .expect("ended by the failure");
    let data_path = Status::Error(ErrorCode {
        kind: ErrorKind::DataPath,
        detail: 0,
    });
    assert_eq!(c.status, data_path);
    let stale = exec.complete_access_into(access.id, |_| panic!("a stale id is filled"));
    assert_eq!(stale, AccessFill::Stale);
    // The executor goes on serving: the same message, filled properly, hits.
    let (c, frame) = run_serving(&mut exec, &msg, fill_from(&memory, &regions));
    assert_eq!(c.status, Status::Ok);
    assert_eq!(reply_of(&frame).2.first(), Some(&1), "a hit");
}
