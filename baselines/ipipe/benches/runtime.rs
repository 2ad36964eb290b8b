//! What the iPipe runtime costs per request, with its native MICA actor: a GET through
//! submit → start → execute → finish → poll_transmit on one core, against MICA's native reader
//! alone over the same table (the difference is the runtime's own overhead: decode, routing,
//! FCFS look-up, statistics, reply encoding). Compare with naam-engine's `engine_overhead` and
//! naam-mica's `mica_get` (the eBPF path).

use criterion::{Criterion, criterion_group, criterion_main};
use naam_engine::wire::{Descriptors, Invoke};
use naam_engine::{Descriptor, FunctionId, Nanos, RequestId, Rkey, TenantId};
use naam_ipipe::{ActorSpec, App, CoreId, IpipeConfig, MicaApp, Op, Runtime};
use naam_mica::layout::item_bytes;
use naam_mica::{GetArgs, MicaConfig, MicaReader, MicaRegions, MicaRkeys, MicaTable, Slots};

const KEYS: u64 = 100_000;
const PROBES: usize = 4096;
const RKEYS: MicaRkeys = MicaRkeys {
    index: 1,
    log: 2,
    meta: 3,
};

fn config() -> MicaConfig {
    let mut c = MicaConfig::new();
    c.buckets = 1 << 15;
    c.slots = Slots::from_count(7).expect("7 slots");
    c.log_bytes = 1 << 24;
    c.item_bytes_max = item_bytes(8, 8) as u32;
    c
}

fn key(k: u64) -> [u8; 8] {
    k.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()
}

fn runtime() -> (Runtime, MicaApp, naam_ipipe::ActorId) {
    let mut rt = Runtime::new(IpipeConfig::nic(2)).expect("config");
    let spec = ActorSpec {
        tenant: TenantId(1),
        functions: vec![(FunctionId(1), Op::MicaGet)],
        quantum_ns: None,
    };
    let actor = rt.add_actor(spec).expect("actor");
    let app = rt
        .with_objects(actor, |t, a| {
            let app = MicaApp::install(t, a, config(), RKEYS).expect("install");
            let mut table =
                MicaTable::reattach(app.regions_mut(t).expect("objects")).expect("table");
            for k in 0..KEYS {
                table.set(&key(k), &k.to_le_bytes()).expect("load");
            }
            app
        })
        .expect("actor");
    rt.set_app(actor, App::Mica(app)).expect("app");
    (rt, app, actor)
}

fn frames() -> Vec<Vec<u8>> {
    (0..PROBES as u64)
        .map(|i| {
            let k = key(i.wrapping_mul(7919) % KEYS);
            let args = GetArgs::new(config(), RKEYS, &k);
            let mut block = Vec::new();
            args.encode(&mut block).expect("args");
            let a = args.initial_access();
            let d = Descriptors::from_slice(&[Descriptor::read(Rkey(a.rkey), a.offset, a.len)])
                .expect("one");
            let mut out = Vec::new();
            Invoke::new_message(TenantId(1), FunctionId(1), RequestId(i), &block, d)
                .encode(&mut out)
                .expect("frame");
            out
        })
        .collect()
}

fn mica_get(c: &mut Criterion) {
    let (mut rt, app, actor) = runtime();
    let frames = frames();
    let mut reply = Vec::new();
    let mut i = 0;
    c.bench_function("ipipe/mica_get_through_runtime", |b| {
        b.iter(|| {
            rt.submit(Nanos(0), 0, &frames[i % PROBES]);
            i += 1;
            if let Ok(Some(mut job)) = rt.start(CoreId(0), Nanos(0)) {
                job.execute();
                rt.finish(Nanos(1), job, 1);
            }
            rt.poll_transmit(&mut reply).expect("a reply")
        })
    });
    let snapshot = rt
        .with_objects(actor, |t, _| {
            [
                t.get(app.index).unwrap().to_vec(),
                t.get(app.log).unwrap().to_vec(),
                t.get(app.meta).unwrap().to_vec(),
            ]
        })
        .expect("actor");
    let reader = MicaReader::open(MicaRegions {
        index: &snapshot[0],
        log: &snapshot[1],
        meta: &snapshot[2],
    })
    .expect("reader");
    let mut value = Vec::new();
    let mut k = 0u64;
    c.bench_function("ipipe/mica_get_native_reader", |b| {
        b.iter(|| {
            k += 1;
            reader
                .get_into(&key(k.wrapping_mul(7919) % KEYS), &mut value)
                .expect("get")
        })
    });
}

criterion_group!(benches, mica_get);
criterion_main!(benches);
