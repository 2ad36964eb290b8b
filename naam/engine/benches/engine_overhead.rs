//! Per-message engine overhead, excluding the VM: decode + dispatch + access bookkeeping + one
//! step's bookkeeping + reply encoding, around a two-instruction function (`r0 = 0; exit`), with
//! 10 and 10,000 live functions (dispatch must not slow down with the number of functions).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use naam_engine::function::Code;
use naam_engine::wire::{Descriptors, InvokeFlags};
use naam_engine::*;

/// `mov r0, 0; exit`
const TRIVIAL: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

fn setup(functions_live: u32) -> (Executor, Vec<u8>, Vec<u8>) {
    let mut functions = FunctionTable::new();
    for f in 0..functions_live {
        let tenant = TenantId(f % 100);
        functions
            .register_ebpf(tenant, FunctionId(f), "trivial", Code::Raw(&TRIVIAL))
            .unwrap();
    }
    let mut regions = RegionTable::new(RkeySecret([3; 16]));
    let region = regions.register(TenantId(7), 4096, Perms::READ).unwrap();
    let exec = Executor::new(
        ExecutorConfig::new(Location::Host),
        Arc::new(functions),
        Arc::new(regions),
    )
    .unwrap();
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
    let (_, frame, _) = setup(10);
    c.bench_function("decode_invoke", |b| {
        b.iter(|| black_box(Frame::decode(black_box(&frame)).is_ok()))
    });
    for live in [10u32, 10_000] {
        let (mut exec, frame, data) = setup(live);
        let mut reply = Vec::new();
        c.bench_function(&format!("message_overhead/{live}_functions"), |b| {
            b.iter(|| one_message(&mut exec, black_box(&frame), &data, &mut reply))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
