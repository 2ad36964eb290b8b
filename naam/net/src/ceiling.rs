//! The raw UDP request/response ceiling of this machine: a client thread and an echo thread on
//! loopback, ~100 B each way, through this crate's own sockets (blocking mode). The testbed
//! benchmark divides the host placement's ops/s by this number, measured in the same run.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::batch::{RecvBatch, SendBatch};
use crate::error::NetError;
use crate::udp::{BATCH_MAX, UdpConfig, UdpSocket};

/// Bytes of each echoed datagram (a small NAAM Invoke or Reply is about this size).
pub const ECHO_DATAGRAM_BYTES: usize = 100;
/// Longest measurement [`udp_echo_ceiling`] accepts.
pub const ECHO_DURATION_MAX: Duration = Duration::from_secs(60);
/// Requests after which a measurement stops even if its duration has not elapsed.
pub const ECHO_REQUESTS_MAX: u64 = 100_000_000;
/// How long the client waits for a round's replies before counting the missing ones as lost.
pub const ECHO_REPLY_TIMEOUT: Duration = Duration::from_millis(100);
/// How long the echo thread may outlive the measurement before it stops by itself.
const ECHO_SERVER_GRACE: Duration = Duration::from_secs(5);
/// The echo thread's receive wait, so it sees the stop flag promptly.
const ECHO_SERVER_POLL: Duration = Duration::from_millis(10);

/// One measurement of the UDP request/response ceiling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EchoCeiling {
    /// Requests answered.
    pub requests: u64,
    /// Requests whose reply did not come within [`ECHO_REPLY_TIMEOUT`].
    pub lost: u64,
    /// Measured time (ns).
    pub elapsed_ns: u64,
    /// `requests / elapsed`.
    pub requests_per_s: f64,
    /// Requests in flight per round (1: strict ping-pong; more: `sendmmsg`/`recvmmsg` batches).
    pub batch: usize,
    /// Bytes of each datagram.
    pub datagram_bytes: usize,
}

/// Measures req/s of a closed loop of `batch` outstanding ~100 B requests between a client thread
/// and an echo thread on 127.0.0.1, for `duration` (at most [`ECHO_DURATION_MAX`]) or
/// [`ECHO_REQUESTS_MAX`] requests, whichever comes first.
pub fn udp_echo_ceiling(duration: Duration, batch: usize) -> Result<EchoCeiling, NetError> {
    if duration.is_zero() || duration > ECHO_DURATION_MAX {
        return Err(NetError::Config {
            field: "udp_echo_ceiling.duration_ms",
            value: duration.as_millis() as u64,
            reason: "must be > 0 and ≤ ECHO_DURATION_MAX (60 s)",
        });
    }
    if batch == 0 || batch > BATCH_MAX {
        return Err(NetError::Config {
            field: "udp_echo_ceiling.batch",
            value: batch as u64,
            reason: "must be 1..=BATCH_MAX (64)",
        });
    }
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let mut config = UdpConfig::new(loopback);
    config.batch_max = BATCH_MAX;
    let server = UdpSocket::bind(&config)?;
    let client = UdpSocket::bind(&config)?;
    let server_addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let stop_server = Arc::clone(&stop);
    let deadline = Instant::now() + duration + ECHO_SERVER_GRACE;
    let echo = std::thread::Builder::new()
        .name("naam-echo".into())
        .spawn(move || echo_loop(&server, &stop_server, deadline))
        .map_err(|source| NetError::Syscall {
            call: "thread spawn",
            addr: None,
            source,
        })?;
    let measured = client_loop(&client, server_addr, duration, batch);
    stop.store(true, Ordering::Release);
    let served = echo.join().map_err(|_| NetError::ThreadPanicked {
        thread: "naam-echo",
    })?;
    let measured = measured?;
    served?;
    Ok(measured)
}

fn echo_loop(server: &UdpSocket, stop: &AtomicBool, deadline: Instant) -> Result<(), NetError> {
    let mut rx = RecvBatch::new(BATCH_MAX);
    let mut tx = SendBatch::new(BATCH_MAX);
    while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
        let n = server.recv_batch(&mut rx, ECHO_SERVER_POLL)?;
        for datagram in rx.iter().take(n) {
            tx.push(datagram.bytes, datagram.from);
        }
        server.send_batch(&mut tx)?;
    }
    Ok(())
}

fn client_loop(
    client: &UdpSocket,
    server: SocketAddr,
    duration: Duration,
    batch: usize,
) -> Result<EchoCeiling, NetError> {
    let mut rx = RecvBatch::new(BATCH_MAX);
    let mut tx = SendBatch::new(BATCH_MAX);
    let mut payload = [0x5au8; ECHO_DATAGRAM_BYTES];
    let (mut requests, mut lost, mut sequence) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < duration && requests < ECHO_REQUESTS_MAX {
        let round_first = sequence;
        for _ in 0..batch {
            payload[..8].copy_from_slice(&sequence.to_le_bytes());
            tx.push(&payload, server);
            sequence += 1;
        }
        client.send_batch(&mut tx)?;
        let answered = await_round(client, &mut rx, round_first, sequence)?;
        requests += answered;
        lost += batch as u64 - answered;
    }
    let elapsed_ns = start.elapsed().as_nanos().max(1) as u64;
    Ok(EchoCeiling {
        requests,
        lost,
        elapsed_ns,
        requests_per_s: requests as f64 * 1e9 / elapsed_ns as f64,
        batch,
        datagram_bytes: ECHO_DATAGRAM_BYTES,
    })
}

/// Receives the replies of sequence numbers `first..end`; returns how many came back in time.
fn await_round(
    client: &UdpSocket,
    rx: &mut RecvBatch,
    first: u64,
    end: u64,
) -> Result<u64, NetError> {
    let want = end - first;
    let mut answered = 0;
    let give_up = Instant::now() + ECHO_REPLY_TIMEOUT;
    while answered < want {
        let now = Instant::now();
        if now >= give_up {
            break;
        }
        let n = client.recv_batch(rx, give_up - now)?;
        answered += rx
            .iter()
            .take(n)
            .filter(|d| d.bytes.len() == ECHO_DATAGRAM_BYTES)
            .filter_map(|d| d.bytes[..8].try_into().ok().map(u64::from_le_bytes))
            .filter(|seq| (first..end).contains(seq))
            .count() as u64;
    }
    Ok(answered.min(want))
}
