//! Per-message engine overhead, excluding the VM: decode + dispatch + access bookkeeping + one
//! step's bookkeeping + reply encoding, around a two-instruction function (`r0 = 0; exit`), with
//! 10 and 10,000 live functions (dispatch must not slow down with the number of functions); the
//! same message through the sans-IO server worker (`worker_message`), and one request's round trip
//! through the client endpoint (`endpoint_round_trip`: issue, encode, reply, event).
//! `message_overhead/10_functions_jit` is the same message with the function loaded for the JIT
//! (`cargo bench -p naam-engine --features jit --bench engine_overhead`; without the feature the
//! row is skipped, said on stderr).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use naam_engine::client::Call;
use naam_engine::function::Code;
use naam_engine::server::WorkerConfig;
use naam_engine::wire::{Descriptors, InvokeFlags};
use naam_engine::*;

/// `mov r0, 0; exit`
const TRIVIAL: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

fn tables(
    functions_live: u32,
    backend: Backend,
) -> (Arc<FunctionTable>, Arc<RegionTable>, RegionInfo) {
    let mut functions = FunctionTable::new().with_backend(backend);
    for f in 0..functions_live {
        let tenant = TenantId(f % 100);
        functions
            .register_ebpf(tenant, FunctionId(f), "trivial", Code::Raw(&TRIVIAL))
            .unwrap();
    }
    let mut regions = RegionTable::new(RkeySecret([3; 16]));
    let region = regions.register(TenantId(7), 4096, Perms::READ).unwrap();
    (Arc::new(functions), Arc::new(regions), region)
}

fn setup(functions_live: u32, backend: Backend) -> (Executor, Vec<u8>, Vec<u8>) {
    let (functions, regions, region) = tables(functions_live, backend);
    let exec = Executor::new(ExecutorConfig::new(Location::Host), functions, regions).unwrap();
    let args = [1u8; 24];
    let msg = Invoke {
        flags: InvokeFlags(InvokeFlags::ALLOW_PUSHBACK),
        ..Invoke::new_message(
            TenantId(7),
            FunctionId(7),
            RequestId(1),
            &args,
            Descriptors::from_slice(&[Descriptor::read(region.rkey, 64, 64)]).unwrap(),
        )
    };
    let mut frame = Vec::new();
    msg.encode(&mut frame).unwrap();
    (exec, frame, vec![0xab; 64])
}

fn one_message(exec: &mut Executor, frame: &[u8], data: &[u8], reply: &mut Vec<u8>) {
    let Ok(Frame::Invoke(msg)) = Frame::decode(frame) else {
        unreachable!()
    };
    exec.submit(Nanos(1), Nanos(0), 0, &msg);
    while let Some(a) = exec.poll_access() {
        exec.complete_access(a.id, data);
    }
    exec.run(Nanos(2), 1);
    black_box(exec.poll_completion(reply));
}

fn bench(c: &mut Criterion) {
    let (_, frame, _) = setup(10, Backend::Interpreter);
    c.bench_function("decode_invoke", |b| {
        b.iter(|| black_box(Frame::decode(black_box(&frame)).is_ok()))
    });
    // 10 000 functions only on the interpreter: JIT compilation is per function, at load.
    for (live, backend) in [
        (10u32, Backend::Interpreter),
        (10_000, Backend::Interpreter),
        (10, Backend::Jit),
    ] {
        if backend == Backend::Jit && !jit_built() {
            eprintln!("message_overhead: JIT row skipped (build with `--features jit`)");
            continue;
        }
        let suffix = if backend == Backend::Jit { "_jit" } else { "" };
        let (mut exec, frame, data) = setup(live, backend);
        let mut reply = Vec::new();
        c.bench_function(&format!("message_overhead/{live}_functions{suffix}"), |b| {
            b.iter(|| one_message(&mut exec, black_box(&frame), &data, &mut reply))
        });
    }
}

/// Whether naam-vm's JIT compiles here (the feature on, the machine supported).
fn jit_built() -> bool {
    let helpers = naam_engine::helpers::naam_helpers();
    naam_vm::Program::from_raw_with(&TRIVIAL, &helpers, Backend::Jit)
        .is_ok_and(|program| program.tier() == Tier::Jit)
}

/// A server worker: one datagram in, its access served, its step run, its reply out.
fn worker_message(worker: &mut ServerWorker, frame: &[u8], data: &[u8], reply: &mut Vec<u8>) {
    worker.handle_datagram(Nanos(1), Nanos(0), frame, || 0);
    while let Some(a) = worker.poll_access() {
        worker.complete_access(a.id, data);
    }
    black_box(worker.run(Nanos(2), 1));
    black_box(worker.poll_reply(reply));
}

/// A client endpoint: one request issued and encoded, its reply handled, its event out.
fn endpoint_round_trip(
    client: &mut ClientEndpoint<u64>,
    seq: &mut u64,
    call: &Call<'_>,
    buf: &mut Vec<u8>,
    reply: &[u8],
) {
    *seq += 1;
    let _ = client.issue(Nanos(*seq), Nanos(*seq), *seq, call, *seq);
    black_box(client.poll_transmit(buf));
    // The reply names request 1: rewrite its id (bytes 4..12 of a reply frame) to this one's.
    let mut answer = reply.to_vec();
    answer[4..12].copy_from_slice(&client.request_id(*seq).0.to_le_bytes());
    client.handle_datagram(Nanos(*seq), &answer);
    black_box(client.poll_event(buf));
}

fn bench_machines(c: &mut Criterion) {
    let (_, frame, data) = setup(10, Backend::Interpreter);
    let (functions, regions, _) = tables(10, Backend::Interpreter);
    let mut worker = ServerWorker::new(
        WorkerConfig::new(Location::Host, 1_000_000),
        Arc::clone(&functions),
        Arc::clone(&regions),
        Nanos(0),
    )
    .unwrap();
    let mut reply = Vec::new();
    c.bench_function("worker_message/10_functions", |b| {
        b.iter(|| worker_message(&mut worker, black_box(&frame), &data, &mut reply))
    });
    let mut client: ClientEndpoint<u64> = ClientEndpoint::new(
        EndpointConfig::new(1, 1_000_000_000),
        functions,
        regions,
        None,
        Nanos(0),
    )
    .unwrap();
    let args = [1u8; 24];
    let call = Call {
        tenant: TenantId(7),
        function: FunctionId(7),
        args: &args,
        descriptors: &Descriptors::new(),
        server_only: false,
    };
    let mut answer = Vec::new();
    Frame::Reply(wire::Reply {
        request_id: RequestId(1),
        status: Status::Ok,
        location: Location::Host,
        steps: 1,
        attempts: 0,
        client_permille: 0,
        payload: &[1, 2, 3, 4, 5, 6, 7, 8],
    })
    .encode(&mut answer)
    .unwrap();
    let (mut seq, mut buf) = (0u64, Vec::new());
    c.bench_function("endpoint_round_trip", |b| {
        b.iter(|| endpoint_round_trip(&mut client, &mut seq, &call, &mut buf, &answer))
    });
}

criterion_group!(benches, bench, bench_machines);
criterion_main!(benches);
