//! The executor skips the rkey lookup when an access names the region its previous access named,
//! never the check: an access of another tenant, past the end, or with a stale rkey after the
//! tables changed is denied right after an allowed access to the same region.

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

#[test]
fn a_cached_region_is_still_checked_on_every_access() {
    let (regions, memory, ds) = dataset(&pairs(40, 11), 4);
    let functions = Arc::new(functions());
    let config = ExecutorConfig::new(Location::Host);
    let mut exec =
        Executor::new(config, Arc::clone(&functions), Arc::new(regions.clone())).expect("executor");
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
