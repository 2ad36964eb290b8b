//! Torn and stale reads in the eBPF GET: a scripted writer changes the region bytes between the
//! steps of a GET (and between the accesses of one step) through `RegionMemory::before_access`,
//! and `mica_get` must retry (`NAAM_RETRY`) into the right answer, or end in `RetriesExceeded`
//! when the writer never lets go. Also checks the access order the function relies on.

mod common;

use common::{Regions, keys_in_bucket, small_config};
use naam_engine::abi::RETRIES_MAX;
use naam_mica::hash::key_hash;
use naam_mica::layout::{BUCKET_VERSION_OFFSET, META_TAIL_OFFSET, bucket_index, read_u64};
use naam_mica::{
    AccessEvent, GetOutcome, MicaConfig, MicaVm, RegionMemory, RegionName, VmError, VmGet,
};

/// The table's regions and a writer script run before every access of a GET.
struct Scripted<F> {
    regions: Regions,
    script: F,
    events: Vec<AccessEvent>,
}

impl<F: FnMut(&AccessEvent, &mut Regions)> RegionMemory for Scripted<F> {
    fn region(&self, name: RegionName) -> &[u8] {
        match name {
            RegionName::Index => &self.regions.index,
            RegionName::Log => &self.regions.log,
            RegionName::Meta => &self.regions.meta,
        }
    }

    fn before_access(&mut self, event: &AccessEvent) {
        self.events.push(*event);
        (self.script)(event, &mut self.regions);
    }
}

/// A table of 4 buckets holding `key → b"old"`.
fn setup(key: &[u8]) -> (MicaConfig, Regions, MicaVm) {
    let config = small_config(4);
    let mut regions = Regions::new(&config);
    regions.format(config).set(key, b"old").expect("set");
    let vm = MicaVm::new(config).expect("engine");
    (config, regions, vm)
}

/// Byte offset of the version of `key`'s primary bucket.
fn version_at(config: &MicaConfig, key: &[u8]) -> usize {
    bucket_index(key_hash(key), config.buckets) as usize * config.bucket_bytes()
        + BUCKET_VERSION_OFFSET
}

fn version(regions: &Regions, at: usize) -> u32 {
    u32::from_le_bytes(regions.index[at..at + 4].try_into().unwrap_or_default())
}

fn set_version(regions: &mut Regions, at: usize, version: u32) {
    regions.index[at..at + 4].copy_from_slice(&version.to_le_bytes());
}

/// Runs one eBPF GET of `key` over `regions` with `script`; returns the run (or error), the
/// value, the events seen, and the regions.
fn get_with<F: FnMut(&AccessEvent, &mut Regions)>(
    vm: &mut MicaVm,
    regions: Regions,
    key: &[u8],
    script: F,
) -> (Result<VmGet, VmError>, Vec<u8>, Vec<AccessEvent>, Regions) {
    let mut memory = Scripted {
        regions,
        script,
        events: Vec::new(),
    };
    let mut value = Vec::new();
    let run = vm.get(&mut memory, key, &mut value);
    (run, value, memory.events, memory.regions)
}

#[test]
fn an_odd_version_at_the_probe_retries_until_the_writer_unlocks() {
    let key = b"torn-1";
    let (config, regions, mut vm) = setup(key);
    let at = version_at(&config, key);
    let v0 = version(&regions, at);
    // A writer holds the bucket during the first two probes, then finishes (+2).
    let (run, value, events, _) = get_with(&mut vm, regions, key, |e, r| match e.round {
        0 => set_version(r, at, v0 + 1),
        2 => set_version(r, at, v0 + 2),
        _ => {}
    });
    let run = run.expect("GET completes");
    assert_eq!(
        (run.outcome, value.as_slice()),
        (GetOutcome::Hit, &b"old"[..])
    );
    assert_eq!((run.attempts, run.steps), (2, 2), "{events:?}");
}

#[test]
fn a_set_between_the_probe_and_the_item_fetch_retries_into_the_new_value() {
    let key = b"torn-2";
    let (_, regions, mut vm) = setup(key);
    // Round 1 fetches the item the probe found; just before, the writer replaces the value with
    // a longer one (a new item: the old bytes stay in the log, still valid, still "old").
    let (run, value, _, regions) = get_with(&mut vm, regions, key, |e, r| {
        if e.round == 1 && e.index_in_round == 0 {
            r.open().set(key, b"new and longer").expect("set");
        }
    });
    let run = run.expect("GET completes");
    assert_eq!(value, b"new and longer");
    assert_eq!((run.outcome, run.attempts), (GetOutcome::Hit, 1));
    let mut regions = regions;
    assert_eq!(
        regions.open().get(key),
        Ok(Some(b"new and longer".to_vec()))
    );
}

#[test]
fn a_writer_starting_within_the_fetch_step_is_seen_by_the_version_read() {
    let key = b"torn-3";
    let (config, regions, mut vm) = setup(key);
    let at = version_at(&config, key);
    let v0 = version(&regions, at);
    // The item and the tail are read intact, then a writer locks the bucket before the version
    // is read (access 2 of round 1); it unlocks before the next attempt's probe.
    let (run, value, _, _) = get_with(&mut vm, regions, key, |e, r| {
        match (e.round, e.index_in_round) {
            (1, 2) => set_version(r, at, v0 + 1),
            (2, 0) => set_version(r, at, v0 + 2),
            _ => {}
        }
    });
    let run = run.expect("GET completes");
    assert_eq!(
        (run.outcome, value.as_slice()),
        (GetOutcome::Hit, &b"old"[..])
    );
    assert_eq!(run.attempts, 1);
}

#[test]
fn a_miss_retries_when_the_key_is_set_before_the_final_version_check() {
    let config = small_config(4);
    let keys = keys_in_bucket(4, 2, 2);
    let mut regions = Regions::new(&config);
    regions.format(config).set(&keys[0], b"other").expect("set");
    let mut vm = MicaVm::new(config).expect("engine");
    // keys[1] is absent: the probe finds no tag, round 1 re-reads the version. Just before, the
    // writer stores keys[1] in the same bucket (version +2): the miss is not trusted.
    let (run, value, events, _) = get_with(&mut vm, regions, &keys[1], |e, r| {
        if e.round == 1 {
            r.open().set(&keys[1], b"arrived").expect("set");
        }
    });
    let run = run.expect("GET completes");
    assert_eq!(events[1].len, 8, "round 1 reads the bucket header only");
    assert_eq!(
        (run.outcome, value.as_slice()),
        (GetOutcome::Hit, &b"arrived"[..])
    );
    assert_eq!(run.attempts, 1);
}

#[test]
fn an_entry_pulled_back_from_an_extra_bucket_while_the_chain_is_walked_is_not_missed() {
    let config = MicaConfig {
        extra_buckets: 2,
        ..small_config(1)
    };
    let keys = keys_in_bucket(1, 0, 10);
    let mut regions = Regions::new(&config);
    let mut table = regions.format(config);
    for key in &keys {
        table.set(key, key).expect("set");
    }
    assert_eq!(
        table.stats().extra_buckets_in_use,
        1,
        "7 in the primary, 3 chained"
    );
    let mut vm = MicaVm::new(config).expect("engine");
    // The GET of keys[9] probes the primary bucket, then reads the extra bucket in round 1. Just
    // before, the writer deletes keys[0]: the hole is filled from the extra bucket, which may
    // empty it. Whatever moved, the version tells the GET to look again.
    let (run, value, events, _) = get_with(&mut vm, regions, &keys[9], |e, r| {
        if e.round == 1 && e.index_in_round == 0 {
            assert!(r.open().delete(&keys[0]).expect("delete"));
        }
    });
    let run = run.expect("GET completes");
    assert_eq!(
        events[1].region,
        RegionName::Index,
        "round 1 reads the extra bucket"
    );
    assert_eq!(
        (run.outcome, value.as_slice()),
        (GetOutcome::Hit, keys[9].as_slice())
    );
    assert_eq!(run.attempts, 1);
}

#[test]
fn a_bucket_that_stays_locked_ends_in_retries_exceeded() {
    let key = b"torn-4";
    let (config, regions, mut vm) = setup(key);
    let at = version_at(&config, key);
    let v0 = version(&regions, at);
    let (run, _, events, _) = get_with(&mut vm, regions, key, |_, r| set_version(r, at, v0 + 1));
    match run {
        Err(VmError::RetriesExceeded { attempts }) => {
            assert_eq!(usize::from(attempts), RETRIES_MAX)
        }
        other => panic!("expected RetriesExceeded, got {other:?}"),
    }
    assert_eq!(events.len(), RETRIES_MAX + 1, "one probe per attempt");
    // The same box serves the next GET normally once the writer is gone.
    let mut regions = Regions::new(&config);
    regions.format(config).set(key, b"again").expect("set");
    let (run, value, _, _) = get_with(&mut vm, regions, key, |_, _| {});
    assert_eq!(
        run.map(|r| (r.outcome, r.attempts)).ok(),
        Some((GetOutcome::Hit, 0))
    );
    assert_eq!(value, b"again");
}

#[test]
fn a_tail_that_passed_the_item_between_probe_and_fetch_gives_a_miss() {
    let key = b"torn-5";
    let (config, regions, mut vm) = setup(key);
    // MICA moves the tail before it writes an item. Here a writer (in another bucket) has moved
    // it a whole log ahead but not yet written: the item bytes still read as the key's, and
    // only the tail, read after the item, shows they are no longer valid.
    let (run, _, events, mut regions) = get_with(&mut vm, regions, key, |e, r| {
        if e.round == 1 && e.index_in_round == 0 {
            let tail = read_u64(&r.meta, META_TAIL_OFFSET).unwrap_or(0);
            let moved = tail + config.log_bytes;
            r.meta[META_TAIL_OFFSET..META_TAIL_OFFSET + 8].copy_from_slice(&moved.to_le_bytes());
        }
    });
    let run = run.expect("GET completes");
    assert_eq!(
        (run.outcome, run.attempts, run.steps),
        (GetOutcome::Miss, 0, 2)
    );
    assert_eq!(events.len(), 4, "probe, then item + tail + version");
    assert_eq!(regions.open().get(key), Ok(None), "the native GET agrees");
}

#[test]
fn a_step_s_accesses_are_performed_in_declaration_order() {
    let key = b"order";
    let (config, regions, mut vm) = setup(key);
    let (run, _, events, _) = get_with(&mut vm, regions, key, |_, _| {});
    assert!(run.is_ok());
    let seen: Vec<(usize, usize, RegionName, u32)> = events
        .iter()
        .map(|e| (e.round, e.index_in_round, e.region, e.len))
        .collect();
    let bucket = config.bucket_bytes() as u32;
    let item = config.item_bytes_max;
    assert_eq!(
        seen,
        [
            (0, 0, RegionName::Index, bucket),
            (1, 0, RegionName::Log, item),
            (1, 1, RegionName::Meta, 8),
            (1, 2, RegionName::Index, 8),
        ]
    );
}
