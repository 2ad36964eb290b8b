//! The little the roles need from the operating system: clocks, CPU pinning, a stop flag set by
//! SIGTERM/SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Nanoseconds on CLOCK_MONOTONIC (latencies, schedules within one process).
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// Nanoseconds on CLOCK_REALTIME (timelines shared between processes and machines; kernel
/// receive timestamps).
pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime cannot fail for the standard clocks");
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Sleeps until CLOCK_REALTIME reaches `deadline_ns` (returns at once if it has passed); wakes
/// early when `stop` is set.
pub fn sleep_until_realtime(deadline_ns: u64, stop: &AtomicBool) {
    const SLICE: Duration = Duration::from_millis(5);
    loop {
        let now = realtime_ns();
        if now >= deadline_ns || stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(SLICE.min(Duration::from_nanos(deadline_ns - now)));
    }
}

/// Timer slack of the load generator's thread: 1 ns instead of Linux's default 50 µs, which
/// otherwise lets every timed wait (and so every scheduled send) overshoot by up to 50 µs.
pub const GENERATOR_TIMER_SLACK_NS: u64 = 1;
/// Makes the calling thread a punctual load generator ([`GENERATOR_TIMER_SLACK_NS`]); returns
/// what could not be applied, for the role's log. (Its priority is deliberately left alone: a
/// generator that preempts a co-located NIC or host worker only fills its own in-flight window
/// sooner and sends later.)
pub fn make_current_thread_punctual() -> Vec<String> {
    let mut not_applied = Vec::new();
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long and affects only the calling thread.
    if unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            GENERATOR_TIMER_SLACK_NS as libc::c_ulong,
        )
    } != 0
    {
        not_applied.push(format!(
            "timer slack {GENERATOR_TIMER_SLACK_NS} ns: {}",
            std::io::Error::last_os_error()
        ));
    }
    not_applied
}

/// Pins the calling thread to `cpus` (no-op for an empty list).
pub fn pin_current_thread(cpus: &[u32]) -> std::io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write within it; sched_setaffinity reads
    // it for the calling thread (pid 0).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &cpu in cpus {
            libc::CPU_SET(cpu as usize, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Picks the CPU list for worker `i` of a role: one CPU each, round robin, or all of them
/// unpinned when the list is empty.
pub fn cpu_for(cpus: &[u32], i: usize) -> Vec<u32> {
    if cpus.is_empty() {
        Vec::new()
    } else {
        vec![cpus[i % cpus.len()]]
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Installs SIGTERM/SIGINT handlers that set the process-wide stop flag, and returns it.
pub fn stop_flag() -> &'static AtomicBool {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    &STOP
}

/// Raises the soft limit of open files to at least `wanted` (up to the hard limit); returns the
/// soft limit in force afterwards. A client holds a send socket per steering key
/// (naam-net `steer_port`), beyond the common default soft limit of 1024.
pub fn raise_open_files_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur >= wanted {
        return limit.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: wanted.min(limit.rlim_max),
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit no higher than the hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return limit.rlim_cur;
    }
    raised.rlim_cur
}
