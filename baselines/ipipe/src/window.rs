//! Execution statistics: a sliding window of an actor's execution times (mean and an exact
//! nearest-rank percentile), and a side-wide tumbling window of sojourn times for the
//! management core.

use std::collections::VecDeque;

/// The last `capacity` execution times of one actor, kept both in arrival order and sorted, so
/// that the tail is exact and an update costs one binary search and one shift of at most
/// `capacity` words.
#[derive(Debug, Clone)]
pub struct ExecWindow {
    capacity: usize,
    arrival: VecDeque<u64>,
    sorted: Vec<u64>,
    sum_ns: u128,
}

impl ExecWindow {
    /// An empty window of `capacity` (≥ 1) samples.
    pub fn new(capacity: usize) -> ExecWindow {
        assert!(capacity >= 1, "a window holds at least one sample");
        ExecWindow {
            capacity,
            arrival: VecDeque::with_capacity(capacity),
            sorted: Vec::with_capacity(capacity),
            sum_ns: 0,
        }
    }

    /// Adds a sample, dropping the oldest when full.
    pub fn push(&mut self, ns: u64) {
        if self.arrival.len() == self.capacity
            && let Some(old) = self.arrival.pop_front()
        {
            let at = self.sorted.partition_point(|&v| v < old);
            self.sorted.remove(at);
            self.sum_ns -= u128::from(old);
        }
        self.arrival.push_back(ns);
        let at = self.sorted.partition_point(|&v| v < ns);
        self.sorted.insert(at, ns);
        self.sum_ns += u128::from(ns);
    }

    /// True once `capacity` samples are in.
    pub fn is_full(&self) -> bool {
        self.arrival.len() == self.capacity
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.arrival.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.arrival.is_empty()
    }

    /// Mean of the samples (0 when empty).
    pub fn mean_ns(&self) -> u64 {
        match self.arrival.len() {
            0 => 0,
            n => (self.sum_ns / n as u128) as u64,
        }
    }

    /// Nearest-rank percentile (`permille` of 1000; 990 is p99); 0 when empty.
    pub fn quantile_ns(&self, permille: u32) -> u64 {
        let n = self.sorted.len();
        if n == 0 {
            return 0;
        }
        let rank = (permille as usize * n).div_ceil(1000).clamp(1, n);
        self.sorted[rank - 1]
    }

    /// The 99th percentile.
    pub fn p99_ns(&self) -> u64 {
        self.quantile_ns(990)
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.arrival.clear();
        self.sorted.clear();
        self.sum_ns = 0;
    }

    /// The samples, oldest first (an actor's state travels with it when it migrates).
    pub fn samples(&self) -> impl Iterator<Item = u64> + '_ {
        self.arrival.iter().copied()
    }
}

/// Sojourn times (arrival to completion) of the last completions on a side, counted towards the
/// next management decision; after a decision it starts afresh, so that every decision sees only
/// completions that happened after the previous one.
#[derive(Debug, Clone, Copy)]
pub struct SideWindow {
    capacity: u64,
    count: u64,
    sum_ns: u128,
}

impl SideWindow {
    /// An empty window of `capacity` (≥ 1) completions.
    pub fn new(capacity: u64) -> SideWindow {
        assert!(capacity >= 1, "a window holds at least one completion");
        SideWindow {
            capacity,
            count: 0,
            sum_ns: 0,
        }
    }

    /// Adds a completion's sojourn time.
    pub fn push(&mut self, ns: u64) {
        self.count += 1;
        self.sum_ns += u128::from(ns);
    }

    /// True once the window has `capacity` completions.
    pub fn is_full(&self) -> bool {
        self.count >= self.capacity
    }

    /// Mean sojourn (0 when empty).
    pub fn mean_ns(&self) -> u64 {
        match self.count {
            0 => 0,
            n => (self.sum_ns / u128::from(n)) as u64,
        }
    }

    /// Starts afresh.
    pub fn reset(&mut self) {
        self.count = 0;
        self.sum_ns = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_window_keeps_the_last_samples_and_their_exact_tail() {
        let mut w = ExecWindow::new(100);
        for v in 1..=100 {
            w.push(v);
        }
        assert!(w.is_full());
        assert_eq!((w.mean_ns(), w.p99_ns(), w.quantile_ns(500)), (50, 99, 50));
        w.push(1000);
        assert_eq!(w.len(), 100, "the oldest (1) left");
        assert_eq!(w.p99_ns(), 100);
        assert_eq!(w.quantile_ns(1000), 1000);
        assert_eq!(w.samples().next(), Some(2));
    }
}
