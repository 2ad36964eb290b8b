//! Helpers shared by the integration tests: a seeded generator that prints its seed on failure,
//! NAAM Invoke frames, and receiving a known number of datagrams on several sockets.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use naam_engine::wire::{Descriptors, Invoke, InvokeFlags};
use naam_engine::{Descriptor, FunctionId, RequestId, Rkey, TenantId};
use naam_net::{RecvBatch, UdpSocket};

/// Seed used when `NAAM_SEED` is not set.
pub const SEED_DEFAULT: u64 = 0x6e61_616d_2d6e_6574;
/// How long a test waits for datagrams it sent before it fails.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// SplitMix64: small, seeded, good enough to pick test inputs.
#[derive(Debug)]
pub struct Rng {
    state: u64,
    seed: u64,
}

impl Rng {
    /// Seeded from `NAAM_SEED` (decimal or 0x-hex) or [`SEED_DEFAULT`]; prints the seed if the
    /// test panics while the generator is alive.
    pub fn from_env() -> Rng {
        let seed = std::env::var("NAAM_SEED")
            .ok()
            .and_then(|s| match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => s.parse().ok(),
            })
            .unwrap_or(SEED_DEFAULT);
        Rng { state: seed, seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

impl Drop for Rng {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "NAAM_SEED={:#x} (rerun with this environment variable to replay)",
                self.seed
            );
        }
    }
}

/// An encoded Invoke with `args_len` argument bytes and `descriptors` read descriptors.
pub fn invoke_frame(
    tenant: u32,
    function: u32,
    flow: u32,
    request_id: u64,
    args_len: usize,
    descriptors: usize,
) -> Vec<u8> {
    let args = vec![0xa5u8; args_len];
    let list: Vec<Descriptor> = (0..descriptors)
        .map(|i| Descriptor::read(Rkey(0x1234), 64 * i as u64, 64))
        .collect();
    let invoke = Invoke {
        tenant: TenantId(tenant),
        function: FunctionId(function),
        request_id: RequestId(request_id),
        flow,
        flags: InvokeFlags(InvokeFlags::ALLOW_PUSHBACK),
        step: 0,
        attempt: 0,
        reply_to: None,
        args: &args,
        descriptors: Descriptors::from_slice(&list)
            .expect("at most ACCESSES_PER_STEP_MAX descriptors"),
        origin: Descriptors::new(),
        state: &[],
    };
    let mut out = Vec::new();
    invoke.encode(&mut out).expect("a valid Invoke encodes");
    out
}

/// Receives until `expected` datagrams arrived across `sockets` (or [`DELIVERY_TIMEOUT`]);
/// returns `(socket index, bytes, sender)` for each, in no particular order across sockets.
pub fn receive_all(sockets: &[&UdpSocket], expected: usize) -> Vec<(usize, Vec<u8>, SocketAddr)> {
    let mut batch = RecvBatch::new(64);
    let mut out = Vec::with_capacity(expected);
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    while out.len() < expected && Instant::now() < deadline {
        let mut any = false;
        for (i, socket) in sockets.iter().enumerate() {
            let n = socket
                .recv_batch(&mut batch, Duration::ZERO)
                .expect("recv_batch");
            any |= n > 0;
            out.extend(batch.iter().map(|d| (i, d.bytes.to_vec(), d.from)));
        }
        if !any {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert_eq!(
        out.len(),
        expected,
        "datagrams received across {} sockets within {DELIVERY_TIMEOUT:?}",
        sockets.len()
    );
    out
}
