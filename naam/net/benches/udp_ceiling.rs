//! The raw UDP request/response ceiling on loopback: a client thread and an echo thread, one
//! ~100 B datagram each way, strictly ping-pong (`batch = 1`) and with 32 requests in flight per
//! `sendmmsg`/`recvmmsg` round. Criterion reports time per request (and requests/s as
//! throughput); each configuration is also measured once with the library function the testbed
//! benchmark uses, [`naam_net::udp_echo_ceiling`], and printed. A measurement that fails or
//! completes no request fails the bench (it never reports a made-up time).

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naam_net::udp_echo_ceiling;

/// Batches measured: strict ping-pong, and 32 in flight.
const BATCHES: [usize; 2] = [1, 32];
/// Length of the one-off library measurement printed per batch.
const LIBRARY_RUN: Duration = Duration::from_millis(500);

fn echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("udp_echo_loopback");
    for batch in BATCHES {
        match udp_echo_ceiling(LIBRARY_RUN, batch) {
            Ok(m) => eprintln!(
                "udp_echo_ceiling(batch={batch}): {:.0} req/s ({} requests, {} lost, {:.1} ms)",
                m.requests_per_s,
                m.requests,
                m.lost,
                m.elapsed_ns as f64 / 1e6
            ),
            Err(e) => panic!("udp_echo_ceiling(batch={batch}) failed: {e}"),
        }
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter_custom(|iters| {
                // One measurement of about `iters` requests; time per request × iters.
                let run =
                    Duration::from_micros(iters.clamp(1, 5_000_000)).min(Duration::from_secs(5));
                match udp_echo_ceiling(run, batch) {
                    Ok(m) if m.requests > 0 => Duration::from_nanos(
                        (m.elapsed_ns as f64 / m.requests as f64 * iters as f64) as u64,
                    ),
                    Ok(m) => panic!("udp_echo_ceiling(batch={batch}) completed no request: {m:?}"),
                    Err(e) => panic!("udp_echo_ceiling(batch={batch}) failed: {e}"),
                }
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = echo
}
criterion_main!(benches);
