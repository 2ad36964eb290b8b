//! Ctrl-C: the first SIGINT/SIGTERM asks the runner to stop after the current point (the run
//! stays resumable); a second one ends the process at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

static SIGNALS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    if SIGNALS.fetch_add(1, Ordering::Relaxed) >= 1 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// A stop flag set by the first SIGINT/SIGTERM.
pub fn install() -> Arc<AtomicBool> {
    // SAFETY: the handler only touches an atomic and calls _exit, both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let flag = Arc::new(AtomicBool::new(false));
    let watched = Arc::clone(&flag);
    std::thread::spawn(move || {
        while SIGNALS.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "naam: stopping after the current point (Ctrl-C again to abort; the run resumes with the same command)"
        );
        watched.store(true, Ordering::Relaxed);
    });
    flag
}
