//! The shift time of a load-shift point, from its raw files: how long after the CPU hog started
//! at least [`SHIFTED_SHARE`] of the completed requests ran at the NIC.

use std::collections::BTreeMap;
use std::path::Path;

use naam_results::raw;

use crate::TestbedError;

/// Share of an interval's completions at the NIC that counts as "shifted".
pub const SHIFTED_SHARE: f64 = 0.9;

/// Completions per interval (keyed by start, µs since the measured phase's start) and location
/// (host, NIC, client), from client `client`'s interval log.
pub fn completions_by_interval(
    point_dir: &Path,
    client: u32,
) -> Result<BTreeMap<u64, [u64; 3]>, TestbedError> {
    let path = point_dir.join(raw::client_hlog_file(client));
    let text = std::fs::read_to_string(&path).map_err(|e| TestbedError::io(&path, "read", e))?;
    let log = naam_loadgen::read_hlog(&text).map_err(|e| TestbedError::Output {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let mut by_start: BTreeMap<u64, [u64; 3]> = BTreeMap::new();
    for e in &log.entries {
        let slot = match e.tag.as_deref() {
            Some("host") => 0,
            Some("nic") => 1,
            Some("client") => 2,
            _ => continue,
        };
        by_start
            .entry((e.start_s * 1e6).round() as u64)
            .or_default()[slot] += e.histogram.len();
    }
    Ok(by_start)
}

/// Time (ms) from `hog_at_ms` (ms since the measured phase's start) to the end of the first
/// interval starting at or after it in which ≥ [`SHIFTED_SHARE`] of completions ran at the NIC;
/// `None` if none did.
pub fn shift_time_ms(
    by_interval: &BTreeMap<u64, [u64; 3]>,
    hog_at_ms: u64,
    interval_ms: u64,
) -> Option<f64> {
    let hog_us = hog_at_ms * 1000;
    by_interval.range(hog_us..).find_map(|(start_us, counts)| {
        let total: u64 = counts.iter().sum();
        let shifted = total > 0 && counts[1] as f64 >= SHIFTED_SHARE * total as f64;
        shifted.then(|| (start_us + interval_ms * 1000 - hog_us) as f64 / 1000.0)
    })
}

/// Share of completions at each location over intervals starting in `[from_ms, to_ms)`.
pub fn shares(by_interval: &BTreeMap<u64, [u64; 3]>, from_ms: u64, to_ms: u64) -> [f64; 3] {
    let mut sum = [0u64; 3];
    for counts in by_interval
        .range(from_ms * 1000..to_ms * 1000)
        .map(|(_, c)| c)
    {
        for (s, c) in sum.iter_mut().zip(counts) {
            *s += c;
        }
    }
    let total = sum.iter().sum::<u64>().max(1) as f64;
    sum.map(|c| c as f64 / total)
}
