//! The native actors answer NAAM's wire requests as MICA's and the B-tree's own native readers
//! answer over the same bytes, with the reply bytes of NAAM's eBPF functions — before, during
//! and after migrations.

mod support;

use std::collections::HashMap;

use naam_btree::{BTree, BTreeConfig, BTreeReader, LookupArgs, LookupReply};
use naam_engine::wire::{Descriptors, ErrorKind, Invoke, Status};
use naam_engine::{AccessKind, Descriptor, FunctionId, Nanos, RequestId, Rkey, TenantId};
use naam_ipipe::drive::VirtualPair;
use naam_ipipe::{
    ActorId, ActorSpec, App, BtreeApp, CoreId, CostModel, IpipeConfig, MicaApp, Op, Runtime, Side,
};
use naam_mica::layout::item_bytes;
use naam_mica::set::{SET_STORED, encode_set};
use naam_mica::{
    GetArgs, GetReply, MicaConfig, MicaReader, MicaRegions, MicaRegionsMut, MicaRkeys, MicaTable,
    Slots,
};
use support::{Mix, reply, seed};

const GET: FunctionId = FunctionId(1);
const SET: FunctionId = FunctionId(2);
const LOOKUP: FunctionId = FunctionId(3);
const KEYS: u64 = 2_000;
const VALUE_BYTES: usize = 32;

fn mica_config() -> MicaConfig {
    let mut c = MicaConfig::new();
    c.buckets = 1024;
    c.slots = Slots::from_count(15).expect("15 slots");
    c.log_bytes = 1 << 20;
    c.item_bytes_max = item_bytes(8, VALUE_BYTES) as u32;
    c
}

const RKEYS: MicaRkeys = MicaRkeys {
    index: 0x11,
    log: 0x22,
    meta: 0x33,
};

fn key(k: u64) -> [u8; 8] {
    (k.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes()
}

fn value(k: u64, version: u64) -> Vec<u8> {
    let mut v = vec![0u8; VALUE_BYTES];
    v[..8].copy_from_slice(&k.to_le_bytes());
    v[8..16].copy_from_slice(&version.to_le_bytes());
    v
}

fn get_frame(tenant: u32, rkeys: MicaRkeys, k: u64, id: u64) -> Vec<u8> {
    let key = key(k);
    let args = GetArgs::new(mica_config(), rkeys, &key);
    let mut block = Vec::new();
    args.encode(&mut block).expect("GET args");
    let a = args.initial_access();
    let d =
        Descriptors::from_slice(&[Descriptor::read(Rkey(a.rkey), a.offset, a.len)]).expect("one");
    encode(Invoke::new_message(
        TenantId(tenant),
        GET,
        RequestId(id),
        &block,
        d,
    ))
}

fn set_frame(tenant: u32, k: u64, version: u64, id: u64) -> Vec<u8> {
    let key = key(k);
    let mut block = Vec::new();
    encode_set(&key, &value(k, version), &mut block);
    let a = GetArgs::new(mica_config(), RKEYS, &key).initial_access();
    let write = Descriptor {
        rkey: Rkey(a.rkey),
        offset: a.offset,
        len: a.len,
        kind: AccessKind::Write,
    };
    let d = Descriptors::from_slice(&[write]).expect("one");
    encode(Invoke::new_message(
        TenantId(tenant),
        SET,
        RequestId(id),
        &block,
        d,
    ))
}

fn encode(invoke: Invoke<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    invoke.encode(&mut out).expect("encodes");
    out
}

/// A NIC with one MICA actor of tenant 1 loaded with `KEYS` keys, and the same table built by
/// MICA's writer in plain buffers (the twin the native reader reads).
fn mica_nic() -> (Runtime, ActorId, MicaApp, [Vec<u8>; 3]) {
    let mut config = IpipeConfig::nic(2);
    // No management decision within these tests: migrations are forced.
    config.windows.side_completions = naam_ipipe::config::SIDE_WINDOW_MAX;
    let mut rt = Runtime::new(config).expect("config");
    let spec = ActorSpec {
        tenant: TenantId(1),
        functions: vec![(GET, Op::MicaGet), (SET, Op::MicaSet)],
        quantum_ns: None,
    };
    let actor = rt.add_actor(spec).expect("actor");
    let app = rt
        .with_objects(actor, |t, a| MicaApp::install(t, a, mica_config(), RKEYS))
        .expect("actor present")
        .expect("installs");
    rt.set_app(actor, App::Mica(app)).expect("app");
    let sizes = mica_config().validate().expect("valid");
    let mut twin = [
        vec![0u8; sizes.index_bytes],
        vec![0u8; sizes.log_bytes],
        vec![0u8; sizes.meta_bytes],
    ];
    {
        let [index, log, meta] = &mut twin;
        let mut table =
            MicaTable::format(mica_config(), MicaRegionsMut { index, log, meta }).expect("format");
        rt.with_objects(actor, |t, _| {
            let mut mine =
                MicaTable::reattach(app.regions_mut(t).expect("objects")).expect("formatted");
            for k in 0..KEYS {
                mine.set(&key(k), &value(k, 0)).expect("load");
                table.set(&key(k), &value(k, 0)).expect("load twin");
            }
        })
        .expect("actor present");
        assert_eq!(
            table.stats().evictions_bucket_full + table.stats().evictions_same_tag,
            0
        );
    }
    (rt, actor, app, twin)
}

/// Runs one request to completion on core 0 and returns the reply frame.
fn call(rt: &mut Runtime, frame: &[u8]) -> Vec<u8> {
    rt.submit(Nanos(0), 9, frame);
    if let Some(mut job) = rt.start(CoreId(0), Nanos(0)).expect("core 0 exists") {
        job.execute();
        rt.finish(Nanos(1), job, 1_000);
    }
    let mut out = Vec::new();
    rt.poll_transmit(&mut out).expect("a reply");
    out
}

fn twin_get(twin: &[Vec<u8>; 3], k: u64) -> Vec<u8> {
    let regions = MicaRegions {
        index: &twin[0],
        log: &twin[1],
        meta: &twin[2],
    };
    let found = MicaReader::open(regions)
        .expect("twin")
        .get(&key(k))
        .expect("no torn reads");
    let mut out = Vec::new();
    match &found {
        Some(v) => GetReply::Hit(v).encode(&mut out),
        None => GetReply::Miss.encode(&mut out),
    }
    out
}

#[test]
fn mica_answers_equal_micas_native_reader_under_ycsb_b() {
    let (mut rt, actor, app, mut twin) = mica_nic();
    let mut mix = Mix(seed());
    let (mut gets, mut hits) = (0, 0);
    for id in 0..3_000u64 {
        // YCSB-B's mix: 95 % reads, 5 % updates; some keys were never loaded (misses).
        let k = mix.below(KEYS + KEYS / 4);
        if mix.below(100) < 5 {
            let (_, status, payload) = reply(&call(&mut rt, &set_frame(1, k, id, id)));
            assert_eq!((status, payload), (Status::Ok, vec![SET_STORED]), "SET {k}");
            let [index, log, meta] = &mut twin;
            let mut table = MicaTable::reattach(MicaRegionsMut { index, log, meta }).expect("twin");
            table.set(&key(k), &value(k, id)).expect("twin SET");
            continue;
        }
        let (rid, status, payload) = reply(&call(&mut rt, &get_frame(1, RKEYS, k, id)));
        assert_eq!((rid, status), (id, Status::Ok));
        assert_eq!(payload, twin_get(&twin, k), "GET {k} (request {id})");
        gets += 1;
        hits += u64::from(payload[0] == 1);
    }
    assert!(
        hits > gets * 3 / 4 && hits < gets,
        "hits and misses both ran: {hits}/{gets}"
    );
    let mine = rt
        .with_objects(actor, |t, _| {
            [
                t.get(app.index).unwrap().to_vec(),
                t.get(app.log).unwrap().to_vec(),
                t.get(app.meta).unwrap().to_vec(),
            ]
        })
        .expect("actor present");
    assert!(
        mine == twin,
        "the actor's objects are byte for byte the twin's"
    );
}

#[test]
fn a_request_naming_another_region_is_denied_and_unknown_functions_refused() {
    let (mut rt, _, _, _) = mica_nic();
    let other = MicaRkeys {
        index: 0x44,
        ..RKEYS
    };
    let (_, status, _) = reply(&call(&mut rt, &get_frame(1, other, 1, 1)));
    let Status::Error(e) = status else {
        panic!("{status:?}")
    };
    assert_eq!(
        (e.kind, e.detail),
        (ErrorKind::AccessDenied, 1),
        "unknown-rkey"
    );
    let (_, status, _) = reply(&call(&mut rt, &get_frame(2, RKEYS, 1, 2)));
    let Status::Error(e) = status else {
        panic!("{status:?}")
    };
    assert_eq!(e.kind, ErrorKind::UnknownFunction, "tenant 2 has no actor");
}

#[test]
fn btree_answers_equal_the_native_reader() {
    let node_bytes = 256;
    let keys = 3_000u64;
    let pairs: Vec<(u64, u64)> = (0..keys)
        .map(|i| ((i + 1) * 16, i.wrapping_mul(0x1234_5678_9abc_def1)))
        .collect();
    let nodes = BTreeConfig::nodes_for_bulk_load(node_bytes, keys, 90).expect("shape") + 16;
    let config = BTreeConfig {
        node_bytes,
        nodes_max: nodes,
    };
    let mut rt = Runtime::new(IpipeConfig::nic(2)).expect("config");
    let spec = ActorSpec {
        tenant: TenantId(1),
        functions: vec![(LOOKUP, Op::BtreeLookup)],
        quantum_ns: None,
    };
    let actor = rt.add_actor(spec).expect("actor");
    let app = rt
        .with_objects(actor, |t, a| {
            BtreeApp::install(t, a, config, &pairs, 90, 0x77)
        })
        .expect("present")
        .expect("installs");
    rt.set_app(actor, App::Btree(app)).expect("app");
    let mut twin = vec![0u8; config.validate().expect("valid")];
    BTree::bulk_load(config, &mut twin, &pairs, 90).expect("twin");
    let reader = BTreeReader::open(&twin).expect("twin");
    let mut mix = Mix(seed());
    for id in 0..2_000u64 {
        // Loaded keys are multiples of 16; one lookup in eight misses between them.
        let k = (mix.below(keys) + 1) * 16 + if mix.below(8) == 0 { 5 } else { 0 };
        let args = LookupArgs::for_tree(&reader, 0x77, k);
        let block = args.encode().expect("args");
        let a = args.initial_access();
        let d = Descriptors::from_slice(&[Descriptor::read(Rkey(a.rkey), a.offset, a.len)])
            .expect("one");
        let frame = encode(Invoke::new_message(
            TenantId(1),
            LOOKUP,
            RequestId(id),
            &block,
            d,
        ));
        let (_, status, payload) = reply(&call(&mut rt, &frame));
        let expected = match reader.get(k).expect("no torn reads") {
            Some(v) => LookupReply::Found(v),
            None => LookupReply::NotFound,
        };
        assert_eq!(
            (status, payload),
            (Status::Ok, expected.encode().to_vec()),
            "lookup {k}"
        );
    }
}

#[test]
fn mica_answers_stay_right_across_a_migration_to_the_host_and_back() {
    let (nic, actor, _, _) = mica_nic();
    let host = Runtime::new(IpipeConfig::host(2)).expect("host config");
    let mut pair = VirtualPair::new(
        nic,
        host,
        CostModel::default(),
        Box::new(|_: Side, _: &_| 1_000),
    );
    let mut mix = Mix(seed());
    let mut latest: HashMap<u64, u64> = (0..KEYS).map(|k| (k, 0)).collect();
    let mut expect_by_id = HashMap::new();
    for id in 0..6_000u64 {
        let k = mix.below(KEYS);
        let frame = if mix.below(100) < 5 {
            latest.insert(k, id);
            expect_by_id.insert(id, vec![SET_STORED]);
            set_frame(1, k, id, id)
        } else {
            let mut hit = vec![1u8];
            hit.extend_from_slice(&value(k, latest[&k]));
            expect_by_id.insert(id, hit);
            get_frame(1, RKEYS, k, id)
        };
        pair.arrive(Nanos(id * 2_000), id, frame);
    }
    pair.run_until(Nanos(4_000_000), 10_000_000);
    pair.force_migration(actor).expect("to the host");
    pair.run_until(Nanos(8_000_000), 10_000_000);
    assert_eq!(
        pair.nic.actor_state(actor),
        Ok(naam_ipipe::ActorState::Remote)
    );
    pair.force_migration(actor).expect("back to the NIC");
    pair.run_until(Nanos(20_000_000), 10_000_000);
    assert!(pair.failures.is_empty(), "{:?}", pair.failures);
    assert_eq!(pair.replies.len(), 6_000, "every request answered once");
    let mut sides = [0u64; 2];
    for r in &pair.replies {
        let (id, status, payload) = reply(&r.frame);
        assert_eq!(
            (status, &payload),
            (Status::Ok, &expect_by_id[&id]),
            "request {id}"
        );
        sides[usize::from(r.side == Side::Host)] += 1;
    }
    assert!(
        sides[0] > 0 && sides[1] > 0,
        "both sides answered: {sides:?}"
    );
}

#[test]
fn an_actor_adopting_a_loaded_table_serves_its_bytes() {
    let (_, _, _, twin) = mica_nic();
    let mut rt = Runtime::new(IpipeConfig::nic(2)).expect("config");
    let spec = ActorSpec {
        tenant: TenantId(1),
        functions: vec![(GET, Op::MicaGet)],
        quantum_ns: None,
    };
    let actor = rt.add_actor(spec).expect("actor");
    let regions = MicaRegions {
        index: &twin[0],
        log: &twin[1],
        meta: &twin[2],
    };
    let app = rt
        .with_objects(actor, |t, a| MicaApp::adopt(t, a, regions, RKEYS))
        .expect("present")
        .expect("a formatted table");
    rt.set_app(actor, App::Mica(app)).expect("app");
    for k in [0, 17, KEYS - 1, KEYS + 3] {
        let (_, status, payload) = reply(&call(&mut rt, &get_frame(1, RKEYS, k, k)));
        assert_eq!(
            (status, payload),
            (Status::Ok, twin_get(&twin, k)),
            "GET {k}"
        );
    }
    let garbage = MicaRegions {
        index: &twin[0],
        log: &twin[1],
        meta: &[0; 64],
    };
    let refused = rt
        .with_objects(actor, |t, a| MicaApp::adopt(t, a, garbage, RKEYS))
        .expect("present");
    assert!(refused.is_err(), "an unformatted meta region is refused");
}
