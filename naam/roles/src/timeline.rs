//! The point's timeline as a role sees it: known at start, or learnt from a file the launcher
//! writes once every server is ready. Workers read it without blocking ([`TimelineWatch::get`]);
//! clients and the hog wait for it ([`TimelineWatch::wait`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::{Timeline, TimelineSpec};

/// Longest wait of a client or the hog for the timeline.
pub const TIMELINE_WAIT_MAX: Duration = Duration::from_secs(300);
/// How often the watcher looks for the timeline file.
pub const TIMELINE_POLL: Duration = Duration::from_millis(5);

/// A timeline that may arrive later.
#[derive(Debug, Clone, Default)]
pub struct TimelineWatch(Arc<OnceLock<Timeline>>);

impl TimelineWatch {
    /// A watch over `spec`; for a file, a background thread polls it until it appears or `stop`.
    pub fn start(spec: &TimelineSpec, stop: &'static AtomicBool) -> TimelineWatch {
        let watch = TimelineWatch::default();
        match spec {
            TimelineSpec::Fixed(t) => {
                let _ = watch.0.set(*t);
            }
            TimelineSpec::File { path } => {
                let (cell, path) = (Arc::clone(&watch.0), path.clone());
                std::thread::spawn(move || poll_file(&path, &cell, stop));
            }
        }
        watch
    }

    /// The timeline, if known yet.
    pub fn get(&self) -> Option<&Timeline> {
        self.0.get()
    }

    /// Waits for the timeline up to `timeout` (or until `stop`).
    pub fn wait(&self, timeout: Duration, stop: &AtomicBool) -> Option<Timeline> {
        let polls = (timeout.as_millis() / TIMELINE_POLL.as_millis()).max(1);
        for _ in 0..polls {
            if let Some(t) = self.get() {
                return Some(*t);
            }
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(TIMELINE_POLL);
        }
        self.get().copied()
    }
}

fn poll_file(path: &PathBuf, cell: &OnceLock<Timeline>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let parsed = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Timeline>(&bytes).ok());
        if let Some(t) = parsed {
            let _ = cell.set(t);
            return;
        }
        std::thread::sleep(TIMELINE_POLL);
    }
}
