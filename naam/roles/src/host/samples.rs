//! The controller's records — `samples.jsonl` (load samples) and `steering.jsonl` (rule
//! changes) — streamed to disk as they happen, so a long measured phase keeps every record
//! without holding them in memory (a 10-minute soak under overload made 47,000 rule changes,
//! which an in-memory list turned into 16 MB of growth). Each file is bounded at what the
//! results readers accept ([`LOG_FILE_BYTES_MAX`]); a record past the bound (or after a write
//! error) is counted as dropped, and the host's counters and `server.json` say so, which makes
//! the point invalid with the reason. Nothing is cut silently.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use naam_results::raw;
use serde::{Deserialize, Serialize};

/// Largest log file written: the size the results readers accept ([`raw::RAW_JSON_BYTES_MAX`]).
/// At one host and one NIC sample per millisecond (about 110 bytes a line) `samples.jsonl`
/// holds about 20 minutes of measured phase.
pub const LOG_FILE_BYTES_MAX: u64 = raw::RAW_JSON_BYTES_MAX;

/// What became of the records of the measured phase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogWritten {
    /// Lines written.
    pub written: u64,
    /// Records not written: past the file's bound, or after a write error.
    pub dropped: u64,
    /// Time since the measured phase's start of the first dropped record.
    pub first_dropped_t_ns: Option<u64>,
    /// The write error that stopped the file, if one did.
    pub error: Option<String>,
}

/// A JSON-lines log being written.
#[derive(Debug)]
pub struct JsonlLog {
    out: Option<BufWriter<File>>,
    bytes: u64,
    bytes_max: u64,
    line: Vec<u8>,
    written: LogWritten,
}

impl JsonlLog {
    /// Creates (truncates) the file at `path`, bounded at `bytes_max`.
    pub fn create(path: &Path, bytes_max: u64) -> std::io::Result<JsonlLog> {
        Ok(JsonlLog {
            out: Some(BufWriter::new(File::create(path)?)),
            bytes: 0,
            bytes_max,
            line: Vec::new(),
            written: LogWritten::default(),
        })
    }

    /// Appends `record` (of time `t_ns` since the measured phase's start), or counts it dropped
    /// when the bound would be passed or the file failed.
    pub fn push<T: Serialize>(&mut self, t_ns: u64, record: &T) {
        self.line.clear();
        let encoded = serde_json::to_writer(&mut self.line, record);
        self.line.push(b'\n');
        let fits = self.bytes + self.line.len() as u64 <= self.bytes_max;
        match (&mut self.out, encoded, fits) {
            (Some(out), Ok(()), true) => match out.write_all(&self.line) {
                Ok(()) => {
                    self.bytes += self.line.len() as u64;
                    self.written.written += 1;
                }
                Err(e) => self.fail(t_ns, e.to_string()),
            },
            (_, Err(e), _) => self.fail(t_ns, e.to_string()),
            _ => self.drop_one(t_ns),
        }
    }

    /// Flushes the file; returns the account of what was written and dropped.
    pub fn finish(mut self) -> LogWritten {
        if let Some(mut out) = self.out.take()
            && let Err(e) = out.flush()
        {
            self.written.error = Some(e.to_string());
        }
        self.written
    }

    fn fail(&mut self, t_ns: u64, error: String) {
        self.out = None;
        self.written.error.get_or_insert(error);
        self.drop_one(t_ns);
    }

    fn drop_one(&mut self, t_ns: u64) {
        self.written.dropped += 1;
        self.written.first_dropped_t_ns.get_or_insert(t_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ns: u64) -> raw::LoadSample {
        raw::LoadSample {
            t_ns,
            location: raw::Location::Host,
            queue_delay_ns: 1_000,
            utilisation: 0.5,
            completions: 10,
        }
    }

    #[test]
    fn every_sample_is_kept_below_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(raw::SAMPLES_FILE);
        let mut log = JsonlLog::create(&path, LOG_FILE_BYTES_MAX).unwrap();
        // More than the 500,000 samples an in-memory buffer used to keep.
        let samples: u64 = 600_000;
        for t in 0..samples {
            log.push(t * 1_000_000, &sample(t * 1_000_000));
        }
        let written = log.finish();
        assert_eq!(written.written, samples);
        assert_eq!(written.dropped, 0);
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert_eq!(lines as u64, samples);
    }

    #[test]
    fn a_binding_bound_counts_what_it_drops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(raw::SAMPLES_FILE);
        let line_bytes = serde_json::to_vec(&sample(0)).unwrap().len() as u64 + 1;
        let mut log = JsonlLog::create(&path, 3 * line_bytes + 2).unwrap();
        for t in 0..5 {
            log.push(t, &sample(t));
        }
        let written = log.finish();
        assert_eq!(written.written, 3);
        assert_eq!(written.dropped, 2);
        assert_eq!(written.first_dropped_t_ns, Some(3));
        let read: Vec<raw::LoadSample> = raw::read_jsonl(&path, "load sample").unwrap();
        assert_eq!(read.len(), 3, "whole lines only");
    }
}
