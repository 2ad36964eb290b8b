//! The CPU hog: busy threads pinned to the host's cores from `start_ms` to `stop_ms` of the
//! measured phase — the "host compute congestion" of the load-shift experiment.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::RoleError;
use crate::config::{HogConfig, RoleConfig};
use crate::os::{cpu_for, pin_current_thread, realtime_ns, sleep_until_realtime};

/// Runs the hog until its stop time (or `stop`).
pub fn run(
    config: &RoleConfig,
    hog: &HogConfig,
    stop: &'static AtomicBool,
) -> Result<(), RoleError> {
    let timeline = crate::timeline::TimelineWatch::start(&config.timeline, stop)
        .wait(crate::timeline::TIMELINE_WAIT_MAX, stop)
        .ok_or_else(|| RoleError::Setup("the point's timeline never arrived".into()))?;
    let measure_start = timeline.measure_start_realtime_ns();
    let start = measure_start + hog.start_ms * 1_000_000;
    let end = measure_start + hog.stop_ms * 1_000_000;
    sleep_until_realtime(start, stop);
    eprintln!(
        "hog: {} threads busy from {} to {} ms of the measured phase",
        hog.threads, hog.start_ms, hog.stop_ms
    );
    std::thread::scope(|scope| {
        for i in 0..hog.threads as usize {
            let cpus = cpu_for(&hog.cpus, i);
            scope.spawn(move || {
                let _ = pin_current_thread(&cpus);
                spin_until(end, stop);
            });
        }
    });
    Ok(())
}

fn spin_until(end: u64, stop: &AtomicBool) {
    let mut x = 0u64;
    while !stop.load(Ordering::Relaxed) && realtime_ns() < end {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}
