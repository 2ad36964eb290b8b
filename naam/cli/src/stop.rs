//! Ctrl-C: the first SIGINT/SIGTERM stops the run: the point being measured is torn down and left
//! unfinished (the signal may have reached its roles; it is measured again when the run
//! resumes), and no further point starts. A second one ends the process at once.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

static SIGNALS: AtomicU32 = AtomicU32::new(0);
/// The flag the handler sets itself, so the runner sees the stop before it could start
/// another point (a watcher thread alone would leave a window of its polling period).
static STOP_FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
    // An atomic load (OnceLock::get) and an atomic store: async-signal-safe.
    if let Some(flag) = STOP_FLAG.get() {
        flag.store(true, Ordering::SeqCst);
    }
}

/// Period of the thread that prints the stop message (printing is not signal-safe).
const MESSAGE_POLL: Duration = Duration::from_millis(50);

/// A stop flag set by the first SIGINT/SIGTERM, within the signal handler.
pub fn install() -> Arc<AtomicBool> {
    let flag = Arc::clone(STOP_FLAG.get_or_init(|| Arc::new(AtomicBool::new(false))));
    // SAFETY: the handler only touches atomics and calls _exit, all async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    std::thread::spawn(|| {
        while SIGNALS.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(MESSAGE_POLL);
        }
        eprintln!(
            "naam: stopping; the point being measured is left unfinished and measured again when the run resumes with the same command (Ctrl-C again to abort)"
        );
    });
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_17_the_stop_flag_is_set_when_the_signal_returns() {
        let flag = install();
        // SAFETY: raise delivers SIGINT to this thread; the handler above runs before it returns.
        assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
        assert!(
            flag.load(Ordering::SeqCst),
            "a runner checking now would start another point"
        );
    }
}
