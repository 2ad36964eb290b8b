//! The two clocks the transport reports times on.
//!
//! Kernel receive timestamps (`SO_TIMESTAMPNS`) are on `CLOCK_REALTIME`; rule-apply times are on
//! `CLOCK_MONOTONIC`, the clock `std::time::Instant` uses on Linux, so role processes can compare
//! an apply time with their own monotonic readings.

fn now_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime only writes it. The clocks used
    // here always exist on Linux, so the call cannot fail and the zero fallback is unreachable.
    let rc = unsafe { libc::clock_gettime(clock, &raw mut ts) };
    if rc != 0 {
        return 0;
    }
    timespec_ns(&ts)
}

/// Nanoseconds of a timespec (negative fields, which the kernel never reports, count as zero).
pub(crate) fn timespec_ns(ts: &libc::timespec) -> u64 {
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000_000).saturating_add(nanos)
}

/// `CLOCK_MONOTONIC` now, in nanoseconds (the clock of [`crate::eswitch::Applied::applied_at_ns`]).
pub fn monotonic_now_ns() -> u64 {
    now_ns(libc::CLOCK_MONOTONIC)
}

/// `CLOCK_REALTIME` now, in nanoseconds since the Unix epoch (the clock of kernel receive
/// timestamps, [`crate::Received::kernel_rx_realtime_ns`]).
pub fn realtime_now_ns() -> u64 {
    now_ns(libc::CLOCK_REALTIME)
}
