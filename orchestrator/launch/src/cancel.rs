//! Cancellation: Ctrl-C (SIGINT) or SIGTERM sets a flag that the run checks between steps, so it
//! tears down (stops every remote process it started) instead of leaving them running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNALLED.store(true, Ordering::SeqCst);
}

/// Why the handler could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// `sigaction` failed.
    #[error("cannot install the {signal} handler: {source}")]
    Install {
        /// The signal's name.
        signal: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Installs handlers for SIGINT and SIGTERM that make every [`Cancel`] report cancellation.
/// Call once, early in `main`; the default behaviour (terminate at once) is replaced.
pub fn install_signal_handlers() -> Result<(), CancelError> {
    for (signal, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        // SAFETY: `action` is fully initialised (zeroed, then the handler and an empty mask set);
        // the handler only performs an atomic store, which is async-signal-safe.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(CancelError::Install {
                signal: name,
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// A cancellation flag: set by [`Cancel::cancel`] or by a signal once the handlers are installed.
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
}

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests cancellation.
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was requested here or by a signal.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || SIGNALLED.load(Ordering::SeqCst)
    }
}
