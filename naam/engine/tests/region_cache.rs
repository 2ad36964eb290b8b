//! The executor skips the rkey lookup when an access names the region its previous access named,
//! never the check: an access of another tenant, past the end, or with a stale rkey after the
//! tables changed is denied right after an allowed access to the same region. Likewise a free
//! slot keeps its last function for the next message, until the tables change.

mod support;

use std::sync::Arc;

use naam_engine::wire::{Descriptors, ErrorKind};
use naam_engine::*;
use support::*;

fn denial_kind(
    exec: &mut Executor,
    memory: &Memory,
    regions: &RegionTable,
    msg: &Invoke<'_>,
) -> Option<ErrorKind> {
    let (c, _) = run_at_host(exec, memory, regions, msg);
    match c.status {
        Status::Error(code) => Some(code.kind),
        _ => None,
    }
}

/// A host executor over a small dataset and the test functions.
fn host_executor() -> (RegionTable, Memory, Dataset, Arc<FunctionTable>, Executor) {
    let (regions, memory, ds) = dataset(&pairs(40, 11), 4);
    let functions = Arc::new(functions());
    let config = ExecutorConfig::new(Location::Host);
    let exec =
        Executor::new(config, Arc::clone(&functions), Arc::new(regions.clone())).expect("executor");
    (regions, memory, ds, functions, exec)
}

#[test]
fn a_cached_region_is_still_checked_on_every_access() {
    let (regions, memory, ds, functions, mut exec) = host_executor();
    // READ_ANY reads (rkey, offset, len) from its arguments in step 0 and replies in step 1; the
    // first step's own access is the same, so every message checks the region twice.
    let args = |rkey: Rkey, offset: u64, len: u64| -> Vec<u8> {
        [rkey.0, offset, len]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
    };
    let read = |rkey, offset, len| {
        Descriptors::from_slice(&[Descriptor::read(rkey, offset, len)]).expect("one")
    };
    // Allowed: READ_ANY of the other tenant's own region.
    let ok_args = args(ds.other.rkey, 0, 8);
    let ok = invoke(
        OTHER_TENANT,
        READ_ANY,
        1,
        &ok_args,
        read(ds.other.rkey, 0, 8),
    );
    assert_eq!(denial_kind(&mut exec, &memory, &regions, &ok), None);
    // Same rkey right after: by TENANT (not the owner), then past the end.
    let wrong_tenant = invoke(TENANT, READ_ANY, 2, &ok_args, read(ds.other.rkey, 0, 8));
    assert_eq!(
        denial_kind(&mut exec, &memory, &regions, &wrong_tenant),
        Some(ErrorKind::AccessDenied)
    );
    assert_eq!(denial_kind(&mut exec, &memory, &regions, &ok), None);
    // The first access is allowed (and cached); the one step 0 declares runs past the end.
    let past_args = args(ds.other.rkey, 60, 8);
    let past_end = invoke(
        OTHER_TENANT,
        READ_ANY,
        3,
        &past_args,
        read(ds.other.rkey, 0, 8),
    );
    assert_eq!(
        denial_kind(&mut exec, &memory, &regions, &past_end),
        Some(ErrorKind::AccessDenied)
    );
    // New tables without the region: its rkey is unknown now, though it was the last one checked.
    assert_eq!(denial_kind(&mut exec, &memory, &regions, &ok), None);
    let mut fewer = regions.clone();
    fewer
        .unregister(OTHER_TENANT, ds.other.id)
        .expect("unregister");
    exec.set_tables(functions, Arc::new(fewer.clone()));
    assert_eq!(
        denial_kind(&mut exec, &memory, &fewer, &ok),
        Some(ErrorKind::AccessDenied)
    );
}

/// READ_ANY's arguments: it reads `len` bytes at `offset` of the region with `rkey`.
fn read_any_args(rkey: Rkey, offset: u64, len: u64) -> Vec<u8> {
    [rkey.0, offset, len]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// A READ_ANY message by `tenant` whose step 0 declares the same access as its first one.
fn read_any(tenant: TenantId, id: u64, args: &[u8], rkey: Rkey, len: u32) -> Invoke<'_> {
    let read = Descriptors::from_slice(&[Descriptor::read(rkey, 0, len)]).expect("one");
    invoke(tenant, READ_ANY, id, args, read)
}

#[test]
fn several_cached_regions_are_all_still_checked_on_every_access() {
    let (regions, memory, ds, functions, mut exec) = host_executor();
    let other_args = read_any_args(ds.other.rkey, 0, 8);
    let index_args = read_any_args(ds.index.rkey, 0, 8);
    let other_ok = read_any(OTHER_TENANT, 1, &other_args, ds.other.rkey, 8);
    let index_ok = read_any(TENANT, 2, &index_args, ds.index.rkey, 8);
    // Both regions cached, then each named by a tenant that does not own it, alternately.
    assert_eq!(denial_kind(&mut exec, &memory, &regions, &other_ok), None);
    assert_eq!(denial_kind(&mut exec, &memory, &regions, &index_ok), None);
    let denied = Some(ErrorKind::AccessDenied);
    let other_by_tenant = read_any(TENANT, 3, &other_args, ds.other.rkey, 8);
    let index_by_other = read_any(OTHER_TENANT, 4, &index_args, ds.index.rkey, 8);
    for _ in 0..2 {
        assert_eq!(
            denial_kind(&mut exec, &memory, &regions, &other_by_tenant),
            denied
        );
        assert_eq!(
            denial_kind(&mut exec, &memory, &regions, &index_by_other),
            denied
        );
    }
    // Past the end of the index region (cached, allowed a message ago).
    let past_args = read_any_args(ds.index.rkey, ds.index.len - 4, 8);
    let past_end = read_any(TENANT, 5, &past_args, ds.index.rkey, 8);
    assert_eq!(denial_kind(&mut exec, &memory, &regions, &past_end), denied);
    // New tables without the other region: unknown now, though cached; the index still serves.
    assert_eq!(denial_kind(&mut exec, &memory, &regions, &index_ok), None);
    let mut fewer = regions.clone();
    fewer
        .unregister(OTHER_TENANT, ds.other.id)
        .expect("unregister");
    exec.set_tables(functions, Arc::new(fewer.clone()));
    assert_eq!(denial_kind(&mut exec, &memory, &fewer, &other_ok), denied);
    assert_eq!(denial_kind(&mut exec, &memory, &fewer, &index_ok), None);
}

#[test]
fn free_slots_let_go_of_the_old_tables_functions() {
    let (regions, memory, ds, functions, mut exec) = host_executor();
    let args: Vec<u8> = [ds.other.rkey.0, 0, 8]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let read = Descriptors::from_slice(&[Descriptor::read(ds.other.rkey, 0, 8)]).expect("one");
    let ok = invoke(OTHER_TENANT, READ_ANY, 1, &args, read);
    let entry = functions.get(OTHER_TENANT, READ_ANY).expect("registered");
    for _ in 0..3 {
        assert_eq!(denial_kind(&mut exec, &memory, &regions, &ok), None);
        // The table, the executor's one-entry cache and the free slot that ran it.
        assert_eq!(Arc::strong_count(entry), 3);
    }
    // New tables: the free slot and the cache drop the old entry; messages run as before.
    let renewed = Arc::new(support::functions());
    exec.set_tables(Arc::clone(&renewed), Arc::new(regions.clone()));
    assert_eq!(Arc::strong_count(entry), 1);
    assert_eq!(denial_kind(&mut exec, &memory, &regions, &ok), None);
    assert_eq!(Arc::strong_count(entry), 1);
    let renewed_entry = renewed.get(OTHER_TENANT, READ_ANY).expect("registered");
    assert_eq!(Arc::strong_count(renewed_entry), 3);
}
