//! Isolation and hostile functions: each denial or trap is typed, counted, and harmless to the
//! other messages in flight.

mod support;

use std::sync::Arc;

use naam_engine::exec::TrapClass;
use naam_engine::region::Denial;
use naam_engine::wire::{Descriptors, ErrorCode, ErrorKind};
use naam_engine::*;
use support::*;

struct Fixture {
    exec: Executor,
    memory: Memory,
    regions: Arc<RegionTable>,
    ds: Dataset,
}

fn fixture(location: Location) -> Fixture {
    let (regions, memory, ds) = dataset(&pairs(100, 11), 5);
    let regions = Arc::new(regions);
    let exec = Executor::new(
        ExecutorConfig::new(location),
        Arc::new(functions()),
        regions.clone(),
    )
    .unwrap();
    Fixture {
        exec,
        memory,
        regions,
        ds,
    }
}

fn read_any_args(rkey: Rkey, offset: u64, len: u64) -> Vec<u8> {
    [rkey.0, offset, len]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// Runs `function` of `tenant` with `args` and returns the reply status.
fn status_of(f: &mut Fixture, tenant: TenantId, function: FunctionId, args: &[u8]) -> Status {
    let msg = invoke(tenant, function, 1, args, Descriptors::new());
    let (_c, frame) = run_at_host(&mut f.exec, &f.memory, &f.regions, &msg);
    reply_of(&frame).0
}

fn denied(denial_code: u32) -> Status {
    Status::Error(ErrorCode {
        kind: ErrorKind::AccessDenied,
        detail: denial_code,
    })
}

fn trapped(class: TrapClass) -> Status {
    Status::Error(ErrorCode {
        kind: ErrorKind::Trap,
        detail: class as u32,
    })
}

const WRONG_TENANT: u32 = 2;
const UNKNOWN_RKEY: u32 = 1;
const OUT_OF_BOUNDS: u32 = 3;

#[test]
fn a_function_of_tenant_a_cannot_read_tenant_b_region() {
    let mut f = fixture(Location::Host);
    let args = read_any_args(f.ds.other.rkey, 0, 8);
    assert_eq!(
        status_of(&mut f, TENANT, READ_ANY, &args),
        denied(WRONG_TENANT)
    );
    assert_eq!(f.exec.stats().denials_by_tenant.get(&TENANT), Some(&1));
    // The owner can.
    assert_eq!(status_of(&mut f, OTHER_TENANT, READ_ANY, &args), Status::Ok);
}

#[test]
fn a_forged_rkey_is_denied() {
    let mut f = fixture(Location::Host);
    let forged = Rkey(f.ds.index.rkey.0.wrapping_add(1));
    assert_eq!(
        status_of(&mut f, TENANT, READ_ANY, &read_any_args(forged, 0, 8)),
        denied(UNKNOWN_RKEY)
    );
    assert_eq!(f.exec.stats().denials, 1);
}

#[test]
fn an_access_past_the_region_end_is_denied() {
    let mut f = fixture(Location::Host);
    let len = f.ds.index.len;
    let args = read_any_args(f.ds.index.rkey, len - 4, 8);
    assert_eq!(
        status_of(&mut f, TENANT, READ_ANY, &args),
        denied(OUT_OF_BOUNDS)
    );
    let slot = f.exec.stats().functions.iter().find(|c| c.denials == 1);
    assert!(slot.is_some(), "counted against the function");
}

#[test]
fn a_client_location_denies_before_any_read_leaves() {
    // The client's replica of the catalog holds only its tenant's regions.
    let (regions, memory, ds) = dataset(&pairs(10, 1), 5);
    let client_regions = Arc::new(RegionTable::from_catalog(&regions.catalog_for(TENANT)).unwrap());
    let mut exec = Executor::new(
        ExecutorConfig::new(Location::Client),
        Arc::new(functions()),
        client_regions.clone(),
    )
    .unwrap();
    let args = read_any_args(ds.other.rkey, 0, 8);
    let msg = invoke(TENANT, READ_ANY, 1, &args, Descriptors::new());
    let (_c, frame) = run_at_host(&mut exec, &memory, &client_regions, &msg);
    assert_eq!(reply_of(&frame).0, denied(UNKNOWN_RKEY));
    assert_eq!(Denial::code_name(UNKNOWN_RKEY), "unknown-rkey");
}

#[test]
fn a_wild_pointer_traps_out_of_bounds() {
    let mut f = fixture(Location::Host);
    for addr in [0u64, 0x1000, u64::MAX - 7, 0x7fff_0000_0000] {
        assert_eq!(
            status_of(&mut f, TENANT, WILD_LOAD, &addr.to_le_bytes()),
            trapped(TrapClass::OutOfBounds),
            "addr {addr:#x}"
        );
    }
    assert_eq!(f.exec.stats().traps, 4);
}

#[test]
fn an_endless_loop_is_stopped_by_the_step_budget() {
    let mut f = fixture(Location::Nic);
    assert_eq!(
        status_of(&mut f, TENANT, SPIN, &[]),
        trapped(TrapClass::Budget)
    );
}

#[test]
fn endless_retries_are_bounded() {
    let mut f = fixture(Location::Host);
    let status = status_of(&mut f, TENANT, ALWAYS_RETRY, &[]);
    assert_eq!(
        status,
        Status::Error(ErrorCode {
            kind: ErrorKind::RetriesExceeded,
            detail: 0
        })
    );
    assert_eq!(f.exec.stats().retries, abi::RETRIES_MAX as u64);
}

#[test]
fn next_without_an_access_is_an_error() {
    let mut f = fixture(Location::Host);
    assert_eq!(
        status_of(&mut f, TENANT, NEXT_WITHOUT_READ, &[]),
        trapped(TrapClass::NextWithoutAccess)
    );
}

#[test]
fn an_unknown_function_is_refused() {
    let mut f = fixture(Location::Host);
    let status = status_of(&mut f, TENANT, FunctionId(999), &[]);
    assert_eq!(
        status,
        Status::Error(ErrorCode {
            kind: ErrorKind::UnknownFunction,
            detail: 0
        })
    );
    // A function id registered for another tenant is not visible either.
    assert_eq!(status_of(&mut f, OTHER_TENANT, HASH_GET, &[]), status);
}

#[test]
fn hostile_messages_do_not_disturb_good_ones_in_flight() {
    let mut f = fixture(Location::Host);
    let good_key = f.ds.pairs[3];
    let (hash_args, hash_desc) = hash_request(&f.ds, good_key.0);
    let forged = read_any_args(Rkey(1), 0, 8);
    let other = read_any_args(f.ds.other.rkey, 0, 8);
    // Interleave: good, spin, forged, good, cross-tenant, wild, good.
    let batch: Vec<(FunctionId, &[u8], Descriptors)> = vec![
        (HASH_GET, &hash_args, hash_desc),
        (SPIN, &[], Descriptors::new()),
        (READ_ANY, &forged, Descriptors::new()),
        (HASH_GET, &hash_args, hash_desc),
        (READ_ANY, &other, Descriptors::new()),
        (WILD_LOAD, &[0; 8], Descriptors::new()),
        (HASH_GET, &hash_args, hash_desc),
    ];
    for (id, (function, args, d)) in batch.iter().enumerate() {
        f.exec.submit(
            Nanos(0),
            Nanos(0),
            0,
            &invoke(TENANT, *function, id as u64, args, *d),
        );
    }
    let mut replies = std::collections::BTreeMap::new();
    for _ in 0..1000 {
        while let Some(a) = f.exec.poll_access() {
            let bytes = serve(&f.memory, &f.regions, a.tenant, &a.descriptor)
                .expect("checked accesses are servable");
            f.exec.complete_access(a.id, &bytes);
        }
        f.exec.run(Nanos(0), 1);
        let mut frame = Vec::new();
        while let Some(c) = f.exec.poll_completion(&mut frame) {
            replies.insert(c.request_id.0, reply_of(&frame));
        }
    }
    assert_eq!(replies.len(), batch.len());
    for id in [0, 3, 6] {
        let (status, _, payload) = &replies[&id];
        assert_eq!(*status, Status::Ok);
        assert_eq!(payload[0], 1);
        assert_eq!(
            u64::from_le_bytes(payload[1..9].try_into().unwrap()),
            good_key.1
        );
    }
    assert_eq!(f.exec.stats().ok, 3);
    // The function's own counters agree (its `ok` is counted where the step ends, `run_step`).
    let by_function = &f.exec.stats().functions;
    assert_eq!(by_function.iter().map(|c| c.ok).sum::<u64>(), 3);
    assert_eq!(f.exec.stats().traps, 2);
    assert_eq!(f.exec.stats().denials, 2);
}
