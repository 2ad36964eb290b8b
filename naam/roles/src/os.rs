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

/// CPU time of the whole process (every thread, live and exited), in ns.
pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// The clock's time in ns; 0 if the clock cannot be read (a thread clock of an exited thread).
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it. A failure leaves
    // it zero.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// A thread's CPU clock, readable from any thread of the process while the thread lives (the
/// kernel brings a running thread's time up to date on every read).
#[derive(Debug, Clone, Copy)]
pub struct ThreadClock(libc::clockid_t);

impl ThreadClock {
    /// The calling thread's clock (`None` if the kernel has none for it).
    pub fn current() -> Option<ThreadClock> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self is always valid for the caller; the call writes `clock` only.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        (rc == 0).then_some(ThreadClock(clock))
    }

    /// CPU time the thread has used, in ns (0 once it has exited).
    pub fn cpu_ns(self) -> u64 {
        clock_ns(self.0)
    }
}

/// A thread of this process as another of its threads sees it: its CPU clock and whether the
/// scheduler holds it runnable (`R` in `/proc/self/task/<tid>/stat`: running, or queued for a
/// CPU). Runnable with a CPU clock standing still means queued behind another task.
#[derive(Debug, Clone, Copy)]
pub struct ThreadProbe {
    tid: libc::pid_t,
    clock: ThreadClock,
}

impl ThreadProbe {
    /// The calling thread's probe (`None` if the kernel has no CPU clock for it).
    pub fn current() -> Option<ThreadProbe> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        Some(ThreadProbe {
            tid,
            clock: ThreadClock::current()?,
        })
    }

    /// CPU time the thread has used, in ns.
    pub fn cpu_ns(&self) -> u64 {
        self.clock.cpu_ns()
    }

    /// Whether the scheduler holds the thread runnable now (`false` when it sleeps, has exited
    /// or its state cannot be read).
    pub fn is_runnable(&self) -> bool {
        let path = format!("/proc/self/task/{}/stat", self.tid);
        std::fs::read_to_string(path).is_ok_and(|stat| state_of_stat(&stat) == Some('R'))
    }
}

/// Whether a datagram waits in the receive queue of socket `fd` (FIONREAD: the size of the next
/// datagram; `false` when there is none or the descriptor is not a socket).
pub fn datagram_waiting(fd: std::os::fd::RawFd) -> bool {
    let mut next_bytes: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid and writable; a
    // descriptor that is not (or no longer) a socket makes the call fail, not misbehave.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut next_bytes) };
    rc == 0 && next_bytes > 0
}

/// The state letter of a `/proc/<pid>/stat` line: the first field after the command name, whose
/// parentheses may themselves hold `)`.
fn state_of_stat(stat: &str) -> Option<char> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.trim_start().chars().next()
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
/// Real-time priority (SCHED_FIFO, 1–99) of the load generator's thread. With the default
/// scheduler a generator woken for its next send waits for whatever runs on its core to use up its
/// time slice (milliseconds on a 2-core machine shared by client, host, NIC and controller
/// threads: measured as p99 send lateness of 1–4 ms at 10–30 kops/s); a real-time thread
/// preempts it at once. Low on the real-time scale (the kernel's own real-time threads stay
/// above it), and bounded by the kernel's real-time throttling (`sched_rt_runtime_us`).
pub const GENERATOR_RT_PRIORITY: i32 = 10;

/// What [`make_current_thread_punctual`] applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Punctuality {
    /// The thread runs at [`GENERATOR_RT_PRIORITY`] (SCHED_FIFO).
    pub realtime: bool,
    /// What could not be applied, for the role's log.
    pub not_applied: Vec<String>,
}

/// Makes the calling thread a punctual load generator: [`GENERATOR_TIMER_SLACK_NS`] and, when
/// `realtime` and where permitted, [`GENERATOR_RT_PRIORITY`].
pub fn make_current_thread_punctual(realtime: bool) -> Punctuality {
    let mut punctuality = Punctuality::default();
    // SAFETY: PR_SET_TIMERSLACK takes an unsigned long and affects only the calling thread.
    if unsafe {
        libc::prctl(
            libc::PR_SET_TIMERSLACK,
            GENERATOR_TIMER_SLACK_NS as libc::c_ulong,
        )
    } != 0
    {
        punctuality.not_applied.push(format!(
            "timer slack {GENERATOR_TIMER_SLACK_NS} ns: {}",
            std::io::Error::last_os_error()
        ));
    }
    if !realtime {
        return punctuality;
    }
    match set_current_thread_policy(libc::SCHED_FIFO, GENERATOR_RT_PRIORITY) {
        Ok(()) => punctuality.realtime = true,
        Err(e) => punctuality
            .not_applied
            .push(format!("SCHED_FIFO priority {GENERATOR_RT_PRIORITY}: {e}")),
    }
    punctuality
}

/// Puts the calling thread in the default scheduling class (threads inherit a real-time
/// creator's class; helpers of the generator must not).
pub fn make_current_thread_ordinary() {
    // Lowering one's own class cannot be refused; a failure leaves the class as it was.
    let _ = set_current_thread_policy(libc::SCHED_OTHER, 0);
}

/// Runs `work` at the default priority when the thread is real-time (`realtime`), then restores
/// it: client-side execution is the system under test's work, and competes with co-located
/// host and NIC threads as they compete with each other, not from the generator's priority.
pub fn with_ordinary_priority<T>(realtime: bool, work: impl FnOnce() -> T) -> T {
    if !realtime {
        return work();
    }
    // Both calls only lower or restore the calling thread's own class: they cannot fail for a
    // thread that was allowed to become real-time; a failure leaves the class as it was.
    make_current_thread_ordinary();
    let result = work();
    let _ = set_current_thread_policy(libc::SCHED_FIFO, GENERATOR_RT_PRIORITY);
    result
}

/// Puts the calling thread in scheduling class `policy` at `priority`.
fn set_current_thread_policy(policy: libc::c_int, priority: i32) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: `param` is a valid sched_param; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_datagram_waits_in_a_socket_until_it_is_read() {
        use std::os::fd::AsRawFd;
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(!datagram_waiting(socket.as_raw_fd()));
        socket
            .send_to(b"request", socket.local_addr().unwrap())
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !datagram_waiting(socket.as_raw_fd()) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(
            datagram_waiting(socket.as_raw_fd()),
            "the datagram is queued"
        );
        socket.recv(&mut [0u8; 16]).unwrap();
        assert!(!datagram_waiting(socket.as_raw_fd()), "and gone once read");
    }

    #[test]
    fn the_state_follows_the_last_parenthesis_of_the_command_name() {
        assert_eq!(state_of_stat("42 (worker) R 1 42"), Some('R'));
        assert_eq!(state_of_stat("42 (a) b) S 1 42"), Some('S'));
        assert_eq!(state_of_stat("no command name"), None);
    }

    /// A probe taken on a thread that spins and one that sleeps, read from this thread.
    fn probe_of(spin: bool, stop: Arc<AtomicBool>) -> (ThreadProbe, std::thread::JoinHandle<()>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            tx.send(ThreadProbe::current().expect("a thread clock"))
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                if !spin {
                    std::thread::park();
                }
            }
        });
        (rx.recv().unwrap(), handle)
    }

    #[test]
    fn a_spinning_thread_is_runnable_and_its_clock_advances_a_sleeping_one_is_not() {
        let stop = Arc::new(AtomicBool::new(false));
        let (spinner, spinning) = probe_of(true, Arc::clone(&stop));
        let (sleeper, sleeping) = probe_of(false, Arc::clone(&stop));
        std::thread::sleep(Duration::from_millis(20));
        let (spun_ns, slept_ns) = (spinner.cpu_ns(), sleeper.cpu_ns());
        std::thread::sleep(Duration::from_millis(50));
        let spinner_runnable = spinner.is_runnable();
        let sleeper_runnable = sleeper.is_runnable();
        let spun_more_ns = spinner.cpu_ns() - spun_ns;
        let slept_more_ns = sleeper.cpu_ns() - slept_ns;
        stop.store(true, Ordering::Relaxed);
        sleeping.thread().unpark();
        spinning.join().unwrap();
        sleeping.join().unwrap();
        assert!(spinner_runnable, "a spinning thread is runnable");
        assert!(!sleeper_runnable, "a sleeping thread is not");
        assert!(spun_more_ns > 0, "the spinner's clock advanced");
        assert!(
            slept_more_ns < spun_more_ns,
            "the sleeper used less CPU ({slept_more_ns} ns) than the spinner ({spun_more_ns} ns)"
        );
    }
}
