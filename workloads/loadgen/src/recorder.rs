//! Per-interval, per-tag latency histograms, merged only by adding.
//!
//! A completion lands in the interval that contains its *completion* time (as wrk2 and Java's
//! `HistogramLogWriter` users do): interval `i` covers `[warmup + i·interval, warmup +
//! (i+1)·interval)` ns since the run start. Completions before the end of warm-up go to separate
//! warm-up histograms: kept for inspection, never written to the measurement log, never in the
//! totals. Every tag of the set gets a histogram in every interval, empty or not, so a time series
//! has no holes. Values are ns; values above [`LATENCY_NS_MAX`] are recorded as that maximum and
//! counted in [`IntervalRecorder::saturated`].

use std::collections::VecDeque;

use hdrhistogram::Histogram;

use crate::error::{ConfigError, RecordError};
use crate::tag::{TagId, TagSet};

/// Shortest histogram interval: 1 ms.
pub const INTERVAL_NS_MIN: u64 = 1_000_000;
/// Longest histogram interval: 60 s.
pub const INTERVAL_NS_MAX: u64 = 60_000_000_000;
/// Largest latency recorded as itself: 60 s (larger values saturate).
pub const LATENCY_NS_MAX: u64 = 60_000_000_000;
/// Significant decimal digits of every histogram (0.1 % value resolution).
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Closed intervals kept until the caller drains them; beyond, the oldest is dropped and counted.
pub const CLOSED_INTERVALS_MAX: usize = 1 << 16;
/// Measured completions held before they reach their histograms (see [`IntervalRecorder`]).
pub const HELD_RECORDS_MAX: usize = 2048;
/// A held record is `tag index << HELD_TAG_SHIFT | value`.
const HELD_TAG_SHIFT: u32 = 48;
/// A held record already recorded (its tag bits name no tag).
const HELD_TAKEN: u64 = u64::MAX;

// Every recorded value and every tag index fit beside each other in a held record.
const _: () = assert!(LATENCY_NS_MAX < 1 << HELD_TAG_SHIFT);
const _: () = assert!((u8::MAX as u32) < 1 << (u64::BITS - HELD_TAG_SHIFT));

/// One tag's histogram over one interval.
#[derive(Debug, Clone)]
pub struct IntervalHistogram {
    /// Whose completions these are.
    pub tag: TagId,
    /// Interval start, ns since the run start.
    pub start_ns: u64,
    /// Interval length, ns (the last interval of a run may be shorter).
    pub length_ns: u64,
    /// Latencies in ns.
    pub histogram: Histogram<u64>,
}

/// Records `value` (at most [`LATENCY_NS_MAX`]) into an auto-resizing histogram, growing it.
/// (`saturating_record` would clamp to the current, small range instead of growing.)
#[inline]
pub fn record_auto(histogram: &mut Histogram<u64>, value: u64) {
    if histogram.record(value).is_err() {
        histogram.saturating_record(value);
    }
}

/// [`record_auto`] of `count` equal values at once.
pub fn record_auto_n(histogram: &mut Histogram<u64>, value: u64, count: u64) {
    if histogram.record_n(value, count).is_err() {
        histogram.saturating_record_n(value, count);
    }
}

/// Records a held record into its tag's histogram.
#[inline]
fn record_into(histograms: &mut [Histogram<u64>], record: u64) {
    let index = (record >> HELD_TAG_SHIFT) as usize;
    if let Some(histogram) = histograms.get_mut(index) {
        record_auto(histogram, record & ((1 << HELD_TAG_SHIFT) - 1));
    }
}

// HdrHistogram supports 0..=5 significant digits.
const _: () = assert!(SIGNIFICANT_DIGITS <= 5);

/// An empty auto-resizing histogram with this crate's precision (starts small, grows on demand).
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(SIGNIFICANT_DIGITS).expect("precision checked at compile time");
    h.auto(true);
    h
}

/// The interval recorder (see the module docs).
///
/// A measured completion is held, in order, and recorded into its histogram when
/// [`HELD_RECORDS_MAX`] are held or its interval closes: each record lands on a count chosen by
/// its latency, in arrays (tens of KiB per histogram) that the work between two completions of
/// one client evicts from the cache, so recorded one by one nearly each record waited for a
/// miss; recorded in a batch, the misses overlap and a line serves several records. Each
/// histogram takes its largest held record first, then the others in order: an auto-resizing
/// histogram grows (reallocates, copies and zeroes its array) whenever a record is beyond its
/// range, so a batch now grows it once, to the size its largest value needs, where rising
/// values grew it in steps. A histogram's state does not depend on the order of its records
/// (counts, total, least and largest; its size follows the largest), so it is the same.
#[derive(Debug)]
pub struct IntervalRecorder {
    tags: TagSet,
    interval_ns: u64,
    warmup_ns: u64,
    current_start_ns: u64,
    current: Vec<Histogram<u64>>,
    /// Measured completions not yet in `current`, oldest first.
    held: Vec<u64>,
    /// By tag, its largest value in `held` and where (the first of equals).
    held_largest: Vec<Option<(u64, usize)>>,
    warmup: Vec<Histogram<u64>>,
    totals: Vec<Histogram<u64>>,
    /// Whether closed intervals are added to `totals` (see [`IntervalRecorder::summing_totals`]).
    sum_totals: bool,
    closed: VecDeque<IntervalHistogram>,
    seen_ns: u64,
    saturated: u64,
    dropped: u64,
}

impl IntervalRecorder {
    /// A recorder for `tags` with intervals of `interval_ns` after `warmup_ns` of warm-up.
    pub fn new(tags: TagSet, interval_ns: u64, warmup_ns: u64) -> Result<Self, ConfigError> {
        if !(INTERVAL_NS_MIN..=INTERVAL_NS_MAX).contains(&interval_ns) {
            return Err(ConfigError::IntervalOutOfRange {
                interval_ns,
                min: INTERVAL_NS_MIN,
                max: INTERVAL_NS_MAX,
            });
        }
        let fresh = || (0..tags.len()).map(|_| new_histogram()).collect::<Vec<_>>();
        Ok(Self {
            current: fresh(),
            held: Vec::with_capacity(HELD_RECORDS_MAX),
            held_largest: vec![None; tags.len()],
            warmup: fresh(),
            totals: fresh(),
            sum_totals: true,
            tags,
            interval_ns,
            warmup_ns,
            current_start_ns: warmup_ns,
            closed: VecDeque::new(),
            seen_ns: 0,
            saturated: 0,
            dropped: 0,
        })
    }

    /// The recorder, summing closed intervals into [`IntervalRecorder::totals`] (the default)
    /// or not: without, the totals stay empty (see `LoadConfig::sum_totals`). The intervals,
    /// the warm-up and every count are the same either way.
    pub fn summing_totals(mut self, sum_totals: bool) -> Self {
        self.sum_totals = sum_totals;
        self
    }

    /// The tag set.
    pub fn tags(&self) -> &TagSet {
        &self.tags
    }

    /// Records `latency_ns` for `tag`, completed at `done_ns` (ns since run start, never earlier
    /// than a time already seen).
    #[inline]
    pub fn record(&mut self, tag: TagId, done_ns: u64, latency_ns: u64) -> Result<(), RecordError> {
        let index = usize::from(tag.0);
        if index >= self.tags.len() {
            return Err(RecordError::UnknownTag {
                tag: tag.0,
                count: self.tags.len(),
            });
        }
        self.advance(done_ns)?;
        let value = if latency_ns > LATENCY_NS_MAX {
            self.saturated += 1;
            LATENCY_NS_MAX
        } else {
            latency_ns
        };
        if done_ns < self.warmup_ns {
            record_auto(&mut self.warmup[index], value);
        } else {
            self.hold(index, value);
        }
        Ok(())
    }

    /// Holds a measured completion for `current[index]`, recording the held ones when full.
    #[inline]
    fn hold(&mut self, index: usize, value: u64) {
        let at = self.held.len();
        self.held.push((index as u64) << HELD_TAG_SHIFT | value);
        if let Some(largest) = self.held_largest.get_mut(index)
            && largest.is_none_or(|(held, _)| value > held)
        {
            *largest = Some((value, at));
        }
        if self.held.len() >= HELD_RECORDS_MAX {
            self.record_held();
        }
    }

    /// Records every held completion into its histogram: each histogram's largest first, then
    /// the others in the order they were held (see [`IntervalRecorder`]).
    #[inline(never)]
    fn record_held(&mut self) {
        for largest in &mut self.held_largest {
            if let Some((_, at)) = largest.take() {
                let record = std::mem::replace(&mut self.held[at], HELD_TAKEN);
                record_into(&mut self.current, record);
            }
        }
        for &record in &self.held {
            if record != HELD_TAKEN {
                record_into(&mut self.current, record);
            }
        }
        self.held.clear();
    }

    /// Closes every interval that ends at or before `now_ns`.
    #[inline]
    pub fn advance(&mut self, now_ns: u64) -> Result<(), RecordError> {
        // Called twice per send and once per completion: the common case (no boundary crossed,
        // time not backwards) is two compares, kept inline; `observe` does the rest out of line.
        if now_ns >= self.seen_ns && !self.interval_ends_by(now_ns) {
            self.seen_ns = now_ns;
            return Ok(());
        }
        self.observe(now_ns)
    }

    /// True when the current interval ends at or before `now_ns`.
    #[inline]
    fn interval_ends_by(&self, now_ns: u64) -> bool {
        now_ns >= self.current_start_ns.saturating_add(self.interval_ns)
    }

    /// True when [`IntervalRecorder::advance`] to `now_ns` would leave a closed interval to
    /// take: one is waiting, or `now_ns` reaches the current interval's end. Lets a driver skip
    /// the poll on the many events between boundaries without changing what it writes.
    #[inline]
    pub fn interval_due(&self, now_ns: u64) -> bool {
        !self.closed.is_empty() || self.interval_ends_by(now_ns)
    }

    /// The oldest closed interval not yet taken.
    pub fn poll_interval(&mut self) -> Option<IntervalHistogram> {
        self.closed.pop_front()
    }

    /// Closes the last, partial interval at `end_ns` (if it has any length) and returns every
    /// interval not yet taken.
    pub fn finish(&mut self, end_ns: u64) -> Result<Vec<IntervalHistogram>, RecordError> {
        self.observe(end_ns)?;
        if end_ns > self.current_start_ns {
            self.close_current(end_ns - self.current_start_ns);
        }
        Ok(self.closed.drain(..).collect())
    }

    /// Per-tag sums of every closed interval (warm-up excluded), by tag id; empty histograms
    /// when the recorder does not sum them ([`IntervalRecorder::summing_totals`]).
    pub fn totals(&self) -> &[Histogram<u64>] {
        &self.totals
    }

    /// Per-tag warm-up histograms, by tag id.
    pub fn warmup(&self) -> &[Histogram<u64>] {
        &self.warmup
    }

    /// Takes the per-tag totals and warm-up histograms (see [`IntervalRecorder::totals`] and
    /// [`IntervalRecorder::warmup`]), leaving none: for the run's report, once the run is over.
    pub(crate) fn take_sums(&mut self) -> (Vec<Histogram<u64>>, Vec<Histogram<u64>>) {
        (
            std::mem::take(&mut self.totals),
            std::mem::take(&mut self.warmup),
        )
    }

    /// Latencies above [`LATENCY_NS_MAX`], recorded as that maximum.
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// Closed intervals dropped because the caller did not drain them.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    #[inline(never)]
    fn observe(&mut self, now_ns: u64) -> Result<(), RecordError> {
        if now_ns < self.seen_ns {
            return Err(RecordError::TimeWentBackwards {
                now_ns,
                seen_ns: self.seen_ns,
            });
        }
        self.seen_ns = now_ns;
        while self.interval_ends_by(now_ns) {
            self.close_current(self.interval_ns);
        }
        Ok(())
    }

    fn close_current(&mut self, length_ns: u64) {
        self.record_held();
        let start_ns = self.current_start_ns;
        for (index, slot) in self.current.iter_mut().enumerate() {
            let histogram = std::mem::replace(slot, new_histogram());
            if self.sum_totals {
                // Auto-resizing histograms of equal precision always add.
                let _ = self.totals[index].add(&histogram);
            }
            if self.closed.len() >= CLOSED_INTERVALS_MAX {
                self.closed.pop_front();
                self.dropped += 1;
            }
            self.closed.push_back(IntervalHistogram {
                tag: TagId(index as u8),
                start_ns,
                length_ns,
                histogram,
            });
        }
        self.current_start_ns = start_ns.saturating_add(length_ns);
    }
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::{Serializer, V2Serializer};
    use proptest::prelude::*;

    use super::*;

    const INTERVAL_NS: u64 = INTERVAL_NS_MIN;

    /// The histograms recorded one record at a time: warm-up by tag, and by interval and tag.
    struct OneByOne {
        warmup: Vec<Histogram<u64>>,
        intervals: Vec<Vec<Histogram<u64>>>,
    }

    impl OneByOne {
        fn record(&mut self, warmup_ns: u64, (tag, done_ns, latency_ns): (u8, u64, u64)) {
            let value = latency_ns.min(LATENCY_NS_MAX);
            let tag = usize::from(tag);
            if done_ns < warmup_ns {
                return record_auto(&mut self.warmup[tag], value);
            }
            let interval = ((done_ns - warmup_ns) / INTERVAL_NS) as usize;
            while self.intervals.len() <= interval {
                self.intervals
                    .push((0..3).map(|_| new_histogram()).collect());
            }
            record_auto(&mut self.intervals[interval][tag], value);
        }
    }

    fn v2(histogram: &Histogram<u64>) -> Vec<u8> {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(histogram, &mut bytes)
            .expect("serializes");
        bytes
    }

    fn assert_same(held: &Histogram<u64>, one_by_one: &Histogram<u64>, what: &str) {
        assert_eq!(v2(held), v2(one_by_one), "{what}: V2 bytes");
        assert_eq!(held, one_by_one, "{what}");
        assert_eq!(held.max(), one_by_one.max(), "{what}: max");
        assert_eq!(held.min_nz(), one_by_one.min_nz(), "{what}: min");
    }

    /// Records `(tag, done_ns, latency_ns)` in order (times never decreasing) through a
    /// recorder and one by one, and checks every interval, the totals and the warm-up.
    fn check(warmup_ns: u64, records: &[(u8, u64, u64)]) {
        let tags = TagSet::locations();
        let mut recorder = IntervalRecorder::new(tags, INTERVAL_NS, warmup_ns).expect("valid");
        let mut model = OneByOne {
            warmup: (0..3).map(|_| new_histogram()).collect(),
            intervals: Vec::new(),
        };
        for &record in records {
            let (tag, done_ns, latency_ns) = record;
            recorder
                .record(TagId(tag), done_ns, latency_ns)
                .expect("records");
            model.record(warmup_ns, record);
        }
        let end_ns = records.last().map_or(0, |r| r.1) + 1;
        let closed = recorder.finish(end_ns).expect("finishes");
        let mut totals: Vec<Histogram<u64>> = (0..3).map(|_| new_histogram()).collect();
        for (i, interval) in closed.iter().enumerate() {
            let expected = model.intervals.get(i / 3).map(|tags| &tags[i % 3]);
            let empty = new_histogram();
            let expected = expected.unwrap_or(&empty);
            assert_eq!(usize::from(interval.tag.0), i % 3);
            assert_same(&interval.histogram, expected, &format!("closed {i}"));
            totals[i % 3].add(expected).expect("adds");
        }
        for (tag, total) in totals.iter().enumerate() {
            assert_same(&recorder.totals()[tag], total, &format!("total {tag}"));
            assert_same(&recorder.warmup()[tag], &model.warmup[tag], "warm-up");
        }
    }

    #[test]
    fn records_held_past_the_bound_and_across_intervals_land_as_one_by_one() {
        // Rising latencies grow the histograms in steps; three bounds' worth in one interval.
        let count = 3 * HELD_RECORDS_MAX as u64 + 7;
        let records: Vec<_> = (0..count)
            .map(|i| ((i % 2) as u8, 100_000 + i * 300, 1 + i * i * 977))
            .collect();
        check(100_000, &records);
    }

    /// Without sums, a recorder closes the same intervals and keeps the same warm-up; its
    /// totals stay empty.
    #[test]
    fn a_recorder_without_sums_closes_the_same_intervals() {
        let records: Vec<_> = (0..2_000u64)
            .map(|i| ((i % 3) as u8, 50_000 + i * 1_000, 1 + i * i * 31))
            .collect();
        let run = |sum_totals: bool| {
            let tags = TagSet::locations();
            let mut recorder = IntervalRecorder::new(tags, INTERVAL_NS, 100_000)
                .expect("valid")
                .summing_totals(sum_totals);
            for &(tag, done_ns, latency_ns) in &records {
                recorder
                    .record(TagId(tag), done_ns, latency_ns)
                    .expect("records");
            }
            let closed = recorder.finish(2_100_000).expect("finishes");
            (closed, recorder)
        };
        let ((summed, with), (unsummed, without)) = (run(true), run(false));
        assert_eq!(summed.len(), unsummed.len());
        for (i, (a, b)) in summed.iter().zip(&unsummed).enumerate() {
            assert_eq!(
                (a.tag, a.start_ns, a.length_ns),
                (b.tag, b.start_ns, b.length_ns)
            );
            assert_same(&b.histogram, &a.histogram, &format!("closed {i}"));
        }
        for tag in 0..3 {
            assert_same(&without.warmup()[tag], &with.warmup()[tag], "warm-up");
            assert!(!with.totals()[tag].is_empty(), "tag {tag} summed");
            assert!(without.totals()[tag].is_empty(), "tag {tag} not summed");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        /// Any records of three tags over warm-up and several intervals, saturating ones
        /// included, leave the recorder's histograms as recording each at once would.
        #[test]
        fn held_records_leave_the_histograms_as_one_by_one(
            warmup_ns in 0u64..2 * INTERVAL_NS,
            steps in proptest::collection::vec(
                (0u8..3, 0u64..INTERVAL_NS / 200, 0u32..40, 0u64..1 << 16),
                0..1_500,
            ),
        ) {
            let mut done_ns = 0;
            let records: Vec<_> = steps
                .iter()
                .map(|&(tag, gap_ns, magnitude, low)| {
                    done_ns += gap_ns;
                    let latency_ns = (1u64 << magnitude) + low;
                    let latency_ns = if magnitude == 39 { LATENCY_NS_MAX + low } else { latency_ns };
                    (tag, done_ns, latency_ns)
                })
                .collect();
            check(warmup_ns, &records);
        }
    }
}
