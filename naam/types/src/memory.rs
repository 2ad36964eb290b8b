//! What this machine can hold, checked before allocating anything a user sized (a MICA table from
//! `--log-bytes`, a host's regions from a manifest): a size the allocator cannot satisfy is then
//! an error naming the size and what asked for it, not an abort in the middle of a run.

use std::fmt;

/// Where Linux reports the memory that can be allocated without swapping.
pub const MEMINFO_PATH: &str = "/proc/meminfo";

/// Memory a request would need, and why it cannot have it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The request is larger than the memory available now.
    #[error(
        "{what} needs {needed} but this machine has {available} available \
         (MemAvailable in {MEMINFO_PATH}); choose smaller sizes",
        needed = Bytes(*needed_bytes),
        available = Bytes(*available_bytes)
    )]
    TooLarge {
        /// What asked, with the sizes it was given (e.g. `--log-bytes 1099511627776`).
        what: String,
        /// Bytes it needs.
        needed_bytes: u64,
        /// Bytes available.
        available_bytes: u64,
    },
    /// The available memory could not be read, so nothing large is allocated blind.
    #[error("{what}: cannot tell how much memory is available ({MEMINFO_PATH}: {reason})")]
    Unknown {
        /// What asked.
        what: String,
        /// Why the file gave no answer.
        reason: String,
    },
    /// The allocator refused although the check passed (memory went to something else).
    #[error("{what}: allocating {needed} failed", needed = Bytes(*needed_bytes))]
    AllocationFailed {
        /// What asked.
        what: String,
        /// Bytes it asked for.
        needed_bytes: u64,
    },
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
pub fn parse_available_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let mut words = line.split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kib.checked_mul(1024),
        _ => None,
    }
}

/// Bytes of memory available now ([`MEMINFO_PATH`]'s `MemAvailable`); the one file this crate
/// reads.
pub fn available_bytes() -> Result<u64, String> {
    let text = std::fs::read_to_string(MEMINFO_PATH).map_err(|e| e.to_string())?;
    parse_available_bytes(&text).ok_or_else(|| "no MemAvailable line in kB".to_string())
}

/// Ok when `needed_bytes` fits in `available_bytes`.
pub fn check(what: &str, needed_bytes: u64, available_bytes: u64) -> Result<(), MemoryError> {
    if needed_bytes <= available_bytes {
        return Ok(());
    }
    Err(MemoryError::TooLarge {
        what: what.to_string(),
        needed_bytes,
        available_bytes,
    })
}

/// Ok when `needed_bytes` fits in the memory available now.
pub fn check_available(what: &str, needed_bytes: u64) -> Result<(), MemoryError> {
    let available = available_bytes().map_err(|reason| MemoryError::Unknown {
        what: what.to_string(),
        reason,
    })?;
    check(what, needed_bytes, available)
}

/// `len` zero bytes, or an error if the allocator refuses (never an abort).
pub fn try_zeroed(what: &str, len: usize) -> Result<Vec<u8>, MemoryError> {
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(len)
        .map_err(|_| MemoryError::AllocationFailed {
            what: what.to_string(),
            needed_bytes: len as u64,
        })?;
    bytes.resize(len, 0);
    Ok(bytes)
}

/// A byte count printed with its binary unit (`1.0 TiB (1099511627776 B)`).
#[derive(Debug, Clone, Copy)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        let mut value = self.0 as f64;
        let mut unit = None;
        for name in UNITS {
            if value < 1024.0 {
                break;
            }
            value /= 1024.0;
            unit = Some(name);
        }
        match unit {
            Some(name) => write!(f, "{value:.1} {name} ({} B)", self.0),
            None => write!(f, "{} B", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24567890 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(parse_available_bytes(text), Some(20_000_000 * 1024));
        assert_eq!(parse_available_bytes("MemTotal: 5 kB\n"), None);
        assert_eq!(parse_available_bytes("MemAvailable: many kB\n"), None);
        assert_eq!(parse_available_bytes("MemAvailable: 5 pages\n"), None);
    }

    #[test]
    fn too_large_names_what_asked_and_both_sizes() {
        let err = check("--log-bytes 1099511627776", 1 << 40, 20 << 30).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--log-bytes 1099511627776"), "{text}");
        assert!(text.contains("1.0 TiB"), "{text}");
        assert!(text.contains("20.0 GiB"), "{text}");
        assert!(check("small", 10, 10).is_ok());
    }

    #[test]
    fn this_machine_reports_available_memory() {
        let available = available_bytes().unwrap();
        assert!(available > 0);
        assert!(check_available("a petabyte", 1 << 50).is_err());
        assert!(check_available("a kilobyte", 1 << 10).is_ok());
    }

    #[test]
    fn a_refused_allocation_is_an_error() {
        let err = try_zeroed("an impossible buffer", usize::MAX).unwrap_err();
        assert!(matches!(err, MemoryError::AllocationFailed { .. }), "{err}");
        assert_eq!(try_zeroed("small", 16).unwrap(), vec![0; 16]);
    }
}
