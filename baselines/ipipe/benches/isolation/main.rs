//! What isolating tenants costs on this machine (the iPipe isolation model's inputs):
//!
//! - `context_switch/{thread,process}`: one round trip of a pipe ping-pong between two threads of
//!   one process, or two processes, pinned to the same CPU — two context switches and two
//!   one-byte pipe transfers per iteration (lmbench `lat_ctx`'s method). The process figure minus
//!   the thread figure is what a separate address space adds.
//! - `handoff/shm_polling`: one round trip of a sequence number through shared memory to a
//!   process polling on the other CPU (two cache-line transfers, no system call).
//! - `handoff/pipe_blocking`: one round trip through pipes to a process blocked on the other CPU
//!   (two wake-ups).
//!
//! `cargo run --release -p naam-ipipe --example isolation_costs` prints the same figures as
//! one-way nanoseconds, with the memory of one more process.

// `one_way_quantile_ns` is the example's (criterion reports per round trip).
#[allow(dead_code)]
mod probes;

use criterion::{Criterion, criterion_group, criterion_main};
use probes::{Peer, cpus, pipe_ping_pong, shm_handoff};

fn context_switch(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_switch");
    for (name, peer) in [("thread", Peer::Thread), ("process", Peer::Process)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                pipe_ping_pong(peer, 0, 0, iters, None)
                    .unwrap_or_else(|e| panic!("context_switch/{name}: {e}"))
            })
        });
    }
    group.finish();
}

fn handoff(c: &mut Criterion) {
    if cpus() < 2 {
        eprintln!("handoff: skipped, this machine has one CPU (a cross-CPU hand-off needs two)");
        return;
    }
    let mut group = c.benchmark_group("handoff");
    group.bench_function("shm_polling", |b| {
        b.iter_custom(|iters| shm_handoff(0, 1, iters, None).unwrap_or_else(|e| panic!("shm: {e}")))
    });
    group.bench_function("pipe_blocking", |b| {
        b.iter_custom(|iters| {
            pipe_ping_pong(Peer::Process, 0, 1, iters, None).unwrap_or_else(|e| panic!("pipe: {e}"))
        })
    });
    group.finish();
}

criterion_group!(benches, context_switch, handoff);
criterion_main!(benches);
