//! Probes of what isolating tenants from each other costs on this machine, for the iPipe
//! isolation model (`naam_ipipe::cost::IsolationCosts`): a context switch between two threads of
//! one process and between two processes on the same CPU (pipe ping-pong, lmbench's `lat_ctx`
//! method), and a hand-off of a work item through shared memory to a process polling on another
//! CPU. Shared by the criterion bench (`benches/isolation`) and the `isolation_costs` example,
//! which also measures the memory of one more process.
//!
//! Every loop is bounded by a count and by [`PROBE_DEADLINE`]; a peer that does not answer in
//! time is an error, not a hang.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Longest any probe may run before it reports its peer as stuck.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(20);
/// Spins between deadline checks in the shared-memory hand-off.
const SPINS_PER_CLOCK_CHECK: u32 = 1 << 16;

/// Who answers the ping-pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Another thread of this process (same address space).
    Thread,
    /// A forked process (its own address space).
    Process,
}

/// A probe that could not run.
#[derive(Debug)]
pub struct ProbeError(pub String);

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn os_error(what: &str) -> ProbeError {
    ProbeError(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// Pins the calling thread to `cpu`.
pub fn pin(cpu: usize) -> Result<(), ProbeError> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET stay within it; the call reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(os_error("sched_setaffinity"));
    }
    Ok(())
}

/// CPUs online (not the calling thread's affinity, which the probes narrow).
pub fn cpus() -> usize {
    // SAFETY: sysconf reads a system constant.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1)
}

struct Pipes {
    to_peer: [RawFd; 2],
    from_peer: [RawFd; 2],
}

impl Pipes {
    fn new() -> Result<Pipes, ProbeError> {
        let mut to_peer = [0; 2];
        let mut from_peer = [0; 2];
        // SAFETY: each array has room for the two descriptors pipe writes.
        let ok = unsafe {
            libc::pipe(to_peer.as_mut_ptr()) == 0 && libc::pipe(from_peer.as_mut_ptr()) == 0
        };
        if !ok {
            return Err(os_error("pipe"));
        }
        Ok(Pipes { to_peer, from_peer })
    }

    fn close(&self) {
        for fd in self.to_peer.iter().chain(&self.from_peer) {
            // SAFETY: our own descriptors, closed once.
            unsafe { libc::close(*fd) };
        }
    }
}

/// One byte through `fd` (returns false on EOF or error).
fn put(fd: RawFd) -> bool {
    let byte = 1u8;
    // SAFETY: one byte from a live stack variable.
    unsafe { libc::write(fd, (&raw const byte).cast(), 1) == 1 }
}

fn take(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: one byte into a live stack variable.
    unsafe { libc::read(fd, (&raw mut byte).cast(), 1) == 1 }
}

/// The peer's side: echo `round_trips + 1` bytes (one warm-up), then stop. Only calls read,
/// write and sched_setaffinity, which are async-signal-safe (a forked child may call them).
fn echo(read_fd: RawFd, write_fd: RawFd, round_trips: u64) {
    for _ in 0..=round_trips {
        if !take(read_fd) || !put(write_fd) {
            return;
        }
    }
}

/// Time of `round_trips` ping-pongs between this thread and a `peer`, both pinned to `cpu` and
/// `peer_cpu` (the same CPU measures context switches: each round trip is two switches plus two
/// one-byte pipe transfers). With `samples`, each round trip's time is recorded too.
pub fn pipe_ping_pong(
    peer: Peer,
    cpu: usize,
    peer_cpu: usize,
    round_trips: u64,
    samples: Option<&mut Vec<u64>>,
) -> Result<Duration, ProbeError> {
    pin(cpu)?;
    let pipes = Pipes::new()?;
    let (peer_read, peer_write) = (pipes.to_peer[0], pipes.from_peer[1]);
    let handle = match peer {
        Peer::Thread => Some(std::thread::spawn(move || {
            let _ = pin(peer_cpu);
            echo(peer_read, peer_write, round_trips);
        })),
        Peer::Process => {
            fork_child(|| {
                let _ = pin(peer_cpu);
                echo(peer_read, peer_write, round_trips);
            })?;
            None
        }
    };
    let timed = time_round_trips(&pipes, round_trips, samples);
    if let Some(handle) = handle {
        let _ = handle.join();
    } else {
        reap_child();
    }
    pipes.close();
    timed
}

fn time_round_trips(
    pipes: &Pipes,
    round_trips: u64,
    mut samples: Option<&mut Vec<u64>>,
) -> Result<Duration, ProbeError> {
    let (out, back) = (pipes.to_peer[1], pipes.from_peer[0]);
    if !put(out) || !take(back) {
        return Err(ProbeError(
            "the ping-pong peer did not answer the warm-up".into(),
        ));
    }
    let start = Instant::now();
    let mut last = start;
    for _ in 0..round_trips {
        if !put(out) || !take(back) {
            return Err(ProbeError("the ping-pong peer stopped answering".into()));
        }
        let now = Instant::now();
        if let Some(samples) = samples.as_deref_mut() {
            samples.push((now - last).as_nanos() as u64);
        }
        last = now;
        if now - start > PROBE_DEADLINE {
            return Err(ProbeError("ping-pong exceeded its deadline".into()));
        }
    }
    Ok(start.elapsed())
}

/// Forks a child that runs `body` and exits without unwinding.
fn fork_child(body: impl FnOnce()) -> Result<(), ProbeError> {
    // SAFETY: the child runs only `body` (async-signal-safe calls by contract) and `_exit`.
    match unsafe { libc::fork() } {
        -1 => Err(os_error("fork")),
        0 => {
            body();
            // SAFETY: terminates the child at once, running no destructors of the parent's state.
            unsafe { libc::_exit(0) }
        }
        _ => Ok(()),
    }
}

fn reap_child() {
    let mut status = 0;
    // SAFETY: waits for any child of ours (the probe's own).
    unsafe { libc::wait(&mut status) };
}

/// A page of memory shared with forked children.
struct SharedPage {
    ptr: *mut libc::c_void,
}

const PAGE_BYTES: usize = 4096;
const PONG_OFFSET_WORDS: usize = 8;

impl SharedPage {
    fn new() -> Result<SharedPage, ProbeError> {
        // SAFETY: a fresh anonymous shared mapping; checked for failure below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(os_error("mmap"));
        }
        Ok(SharedPage { ptr })
    }

    /// The ping word (first cache line) and the pong word (second cache line).
    fn words(&self) -> (&AtomicU64, &AtomicU64) {
        let base = self.ptr.cast::<AtomicU64>();
        // SAFETY: the page is zeroed, page-aligned and lives until drop; both words lie within it
        // and AtomicU64 has the layout of u64.
        unsafe { (&*base, &*base.add(PONG_OFFSET_WORDS)) }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps the mapping made in new(), once.
        unsafe { libc::munmap(self.ptr, PAGE_BYTES) };
    }
}

/// Spins until `word` holds `value` or the deadline passes.
fn wait_for(word: &AtomicU64, value: u64, deadline: Instant) -> bool {
    let mut spins = 0u32;
    while word.load(Ordering::Acquire) != value {
        std::hint::spin_loop();
        spins += 1;
        if spins == SPINS_PER_CLOCK_CHECK {
            spins = 0;
            if Instant::now() > deadline {
                return false;
            }
        }
    }
    true
}

/// Time of `round_trips` hand-offs of a sequence number through shared memory to a forked
/// process polling on `peer_cpu` and back (each round trip is two cache-line transfers between
/// address spaces; no system call on the path).
pub fn shm_handoff(
    cpu: usize,
    peer_cpu: usize,
    round_trips: u64,
    mut samples: Option<&mut Vec<u64>>,
) -> Result<Duration, ProbeError> {
    if cpu == peer_cpu {
        return Err(ProbeError("a polling hand-off needs two CPUs".into()));
    }
    pin(cpu)?;
    let page = SharedPage::new()?;
    let deadline = Instant::now() + PROBE_DEADLINE;
    let (ping, pong) = page.words();
    fork_child(|| {
        let _ = pin(peer_cpu);
        for i in 1..=round_trips + 1 {
            if !wait_for(ping, i, deadline) {
                return;
            }
            pong.store(i, Ordering::Release);
        }
    })?;
    ping.store(1, Ordering::Release);
    let warm = wait_for(pong, 1, deadline);
    let start = Instant::now();
    let mut last = start;
    let mut ok = warm;
    for i in 2..=round_trips + 1 {
        if !ok {
            break;
        }
        ping.store(i, Ordering::Release);
        ok = wait_for(pong, i, deadline);
        if let Some(samples) = samples.as_deref_mut() {
            let now = Instant::now();
            samples.push((now - last).as_nanos() as u64);
            last = now;
        }
    }
    let elapsed = start.elapsed();
    reap_child();
    if !ok {
        return Err(ProbeError("the polling peer stopped answering".into()));
    }
    Ok(elapsed)
}

/// The `permille` quantile of round-trip samples, halved: the one-way time. Quantiles of single
/// round trips, unlike a mean, are not dragged up by the round trips that another process's time
/// slice interrupted on a busy machine.
pub fn one_way_quantile_ns(samples: &mut [u64], permille: usize) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_unstable();
    let rank = (permille * samples.len())
        .div_ceil(1000)
        .clamp(1, samples.len());
    samples[rank - 1] as f64 / 2.0
}
