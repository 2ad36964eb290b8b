//! Host-native functions (writes such as MICA SET): handed to the host role, never run elsewhere
//! and never pushed back to a client, whatever the pushback share.

mod support;

use std::sync::Arc;

use naam_engine::wire::{Descriptors, ErrorCode, ErrorKind};
use naam_engine::*;
use support::*;

const SET: FunctionId = FunctionId(40);

/// An executor, the test dataset (read-only regions) and a writable region.
fn executor(location: Location) -> (Executor, Dataset, RegionInfo) {
    let (mut regions, _memory, ds) = dataset(&pairs(10, 3), 4);
    let writable = regions.register(TENANT, 64, Perms::READ_WRITE).unwrap();
    let mut functions = functions();
    functions.register_host_native(TENANT, SET, "set").unwrap();
    let exec = Executor::new(
        ExecutorConfig::new(location),
        Arc::new(functions),
        Arc::new(regions),
    )
    .unwrap();
    (exec, ds, writable)
}

fn write_intent(region: &RegionInfo) -> Descriptors {
    Descriptors::from_slice(&[Descriptor {
        rkey: region.rkey,
        offset: 0,
        len: 8,
        kind: AccessKind::Write,
    }])
    .unwrap()
}

#[test]
fn a_host_native_call_goes_to_the_host_role_even_with_full_pushback() {
    let (mut exec, _ds, writable) = executor(Location::Host);
    exec.set_client_permille(1000);
    let args = [7u8; 16];
    exec.submit(
        Nanos(0),
        Nanos(0),
        0,
        &invoke(TENANT, SET, 1, &args, write_intent(&writable)),
    );
    let request = exec
        .poll_native()
        .expect("handed to the host role, not pushed back");
    let (call_args, writes) = exec.native_call(request.id).expect("a pending call");
    assert_eq!(call_args, &args);
    assert_eq!(writes.len(), 1);
    assert!(exec.complete_native(Nanos(1), request.id, Ok(&[1])));
    let mut frame = Vec::new();
    exec.poll_completion(&mut frame).expect("completed");
    let (status, location, payload) = reply_of(&frame);
    assert_eq!(
        (status, location, payload),
        (Status::Ok, Location::Host, vec![1])
    );
}

#[test]
fn a_host_native_call_is_refused_elsewhere() {
    for location in [Location::Nic, Location::Client] {
        let (mut exec, _ds, writable) = executor(location);
        exec.submit(
            Nanos(0),
            Nanos(0),
            0,
            &invoke(TENANT, SET, 1, &[0; 4], write_intent(&writable)),
        );
        let mut frame = Vec::new();
        exec.poll_completion(&mut frame).expect("refused at once");
        assert_eq!(
            reply_of(&frame).0,
            Status::Error(ErrorCode {
                kind: ErrorKind::WrongLocation,
                detail: 0
            }),
            "at {location}"
        );
    }
}

#[test]
fn a_write_on_a_read_only_region_is_denied() {
    let (mut exec, ds, _writable) = executor(Location::Host);
    // The test dataset's regions are read-only.
    exec.submit(
        Nanos(0),
        Nanos(0),
        0,
        &invoke(TENANT, SET, 1, &[0; 4], write_intent(&ds.index)),
    );
    let mut frame = Vec::new();
    exec.poll_completion(&mut frame).expect("denied at once");
    assert_eq!(
        reply_of(&frame).0,
        Status::Error(ErrorCode {
            kind: ErrorKind::AccessDenied,
            detail: 4
        })
    );
}
