//! A pool of identical cores (the host's, the NIC's). Work waits in a FIFO queue owned by the
//! caller (for the server, the engine worker's ready queue); whenever a core is free and work is
//! waiting, the oldest item starts on the core free the longest and holds it for its service
//! time. The model is that of a c-server FIFO queue: the queueing tests check it against the
//! closed forms.
//!
//! Which free core takes the work changes no time: a free core's busy-until time is at or before
//! now, so it reads as free at every later time whatever it was, and the cores are identical.
//! The pool is so a multiset of busy-until times, with its least and where it is kept: whether a
//! core is free is the least, and work takes that one (the lowest-numbered free core, the rule
//! before, gives the same times: `tests::any_free_core_gives_the_lowest_numbered_ones_times`).
//!
//! A CPU hog sharing the cores ([`HogSlices`]) takes them in scheduler slices: while the hog holds
//! its slice no work starts, and work crossing into the hog's slice is preempted and resumes when
//! the slice ends. The slices of every core are aligned (see [`HogSlices`]).

/// Most cores a pool may have (BlueField-2 has 8; a server a few dozen).
pub const CORES_MAX: usize = 256;

/// A pool of `count` cores, each busy until some virtual time.
#[derive(Debug, Clone)]
pub struct CorePool {
    /// The cores' busy-until times, in no order: work started replaces the least (the core
    /// free the longest, at `least_slot`), and [`CorePool::replace_least`] finds the next least.
    busy_until_ns: Vec<u64>,
    /// The least of `busy_until_ns` (kept: read on every round of the server's pump, without an
    /// index's bound check): before it no core is free.
    first_free_ns: u64,
    /// Where `first_free_ns` is in `busy_until_ns` (the first of equal times).
    least_slot: usize,
    busy_total_ns: u64,
    hog: Option<HogSlices>,
}

/// A CPU hog time-sharing every core of a pool, as a scheduler alternates two runnable threads on
/// one core: from `start_ns` to `stop_ns` the hog holds each core for `hog_ns`, then the core's
/// worker runs for `worker_ns`, in turn, starting with the hog's slice (a newly runnable thread
/// runs first: an assumption). The slices of all cores are aligned: the pool serves one FIFO,
/// while Linux steers each datagram to one core's queue (RSS), where an arrival finds its core in
/// the hog's slice with probability `hog_ns / (hog_ns + worker_ns)` and waits for the rest of it;
/// aligned slices give the pool the same waiting, which staggered slices over a shared FIFO would
/// hide (a free core would always be found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HogSlices {
    /// When the hog starts (its first slice starts then).
    pub start_ns: u64,
    /// When it stops (a slice running then ends).
    pub stop_ns: u64,
    /// The hog's slice.
    pub hog_ns: u64,
    /// The worker's slice between two of the hog's.
    pub worker_ns: u64,
}

impl HogSlices {
    /// Slices of `slice_ns` for the hog, and for the worker what keeps the hog's long-run share
    /// of the core at `core_share` (in `(0, 1)`): `slice_ns · (1 − share) / share`, at least 1 ns.
    pub fn from_share(start_ns: u64, stop_ns: u64, slice_ns: u64, core_share: f64) -> HogSlices {
        let worker_ns = (slice_ns as f64 * (1.0 - core_share) / core_share).round() as u64;
        HogSlices {
            start_ns,
            stop_ns,
            hog_ns: slice_ns.max(1),
            worker_ns: worker_ns.max(1),
        }
    }

    fn period_ns(&self) -> u64 {
        self.hog_ns + self.worker_ns
    }

    /// The hog's slice `at_ns` falls in, or else the next one: `(from, to)` with `to > at_ns`.
    pub fn slice_at_or_after(&self, at_ns: u64) -> Option<(u64, u64)> {
        if at_ns >= self.stop_ns {
            return None;
        }
        let from = if at_ns < self.start_ns {
            self.start_ns
        } else {
            let period = self.period_ns();
            let from = self.start_ns + (at_ns - self.start_ns) / period * period;
            if at_ns < from + self.hog_ns {
                from
            } else {
                from + period
            }
        };
        (from < self.stop_ns).then(|| (from, from.saturating_add(self.hog_ns).min(self.stop_ns)))
    }

    /// The end of the hog's slice holding the core at `at_ns`, if one does.
    pub fn held_until(&self, at_ns: u64) -> Option<u64> {
        self.slice_at_or_after(at_ns)
            .and_then(|(from, to)| (from <= at_ns).then_some(to))
    }

    /// When work needing `service_ns` of CPU time, ready at `at_ns`, is done: it waits for a
    /// slice holding the core to end, and is preempted by every slice it crosses into.
    ///
    /// Never inlined: [`CorePool::occupy`], inlined into the server's pump, keeps only the
    /// no-hog add on its path (this loop's registers made it save six on every call).
    #[inline(never)]
    pub fn finish_ns(&self, at_ns: u64, service_ns: u64) -> u64 {
        let (mut t, mut left) = (at_ns, service_ns);
        while let Some((from, to)) = self.slice_at_or_after(t) {
            if from > t {
                if t.saturating_add(left) <= from {
                    break;
                }
                left -= from - t;
            }
            t = to;
        }
        t.saturating_add(left)
    }
}

/// A core count outside `1..=CORES_MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a core pool has 1..={CORES_MAX} cores, not {count}")]
pub struct CoreCountError {
    /// The count given.
    pub count: usize,
}

impl CorePool {
    /// `count` idle cores.
    pub fn new(count: usize) -> Result<CorePool, CoreCountError> {
        if !(1..=CORES_MAX).contains(&count) {
            return Err(CoreCountError { count });
        }
        Ok(CorePool {
            busy_until_ns: vec![0; count],
            first_free_ns: 0,
            least_slot: 0,
            busy_total_ns: 0,
            hog: None,
        })
    }

    /// A hog time-sharing every core of the pool from now on.
    pub fn set_hog(&mut self, hog: HogSlices) {
        self.hog = Some(hog);
    }

    /// The end of the hog's slice holding every core at `now_ns`, if one does.
    pub fn held_until(&self, now_ns: u64) -> Option<u64> {
        self.hog.and_then(|h| h.held_until(now_ns))
    }

    /// When work needing `service_ns` of CPU time, started at `now_ns`, is done (later than
    /// `now_ns + service_ns` by the hog's slices it waits for or is preempted by). Inline: without
    /// a hog (most points) it is one add, cheaper than the call `occupy` made to it.
    #[inline]
    pub fn finish_ns(&self, now_ns: u64, service_ns: u64) -> u64 {
        match self.hog {
            Some(h) => h.finish_ns(now_ns, service_ns),
            None => now_ns.saturating_add(service_ns),
        }
    }

    /// Cores in the pool.
    pub fn count(&self) -> usize {
        self.busy_until_ns.len()
    }

    /// True when a core is free at `now_ns` (none is while the hog holds them): work may start.
    /// Without a hog (most points) one test answers for it, before the slice's arithmetic.
    #[inline]
    pub fn has_free_core(&self, now_ns: u64) -> bool {
        now_ns >= self.first_free_ns && self.hog.is_none_or(|h| h.held_until(now_ns).is_none())
    }

    /// True when every core is busy beyond `at_ns`: none can be free at or before it, whatever
    /// starts meanwhile (work starts only on a free core, and a core's busy time only grows).
    #[inline]
    pub fn busy_beyond(&self, at_ns: u64) -> bool {
        self.first_free_ns > at_ns
    }

    /// Cores free at `now_ns`.
    pub fn free_count(&self, now_ns: u64) -> usize {
        if self.held_until(now_ns).is_some() {
            return 0;
        }
        self.busy_until_ns.iter().filter(|&&t| t <= now_ns).count()
    }

    /// Occupies the core free the longest from `now_ns` for `service_ns` of CPU time; returns when
    /// it is free again (later by the hog's slices that preempt the work).
    ///
    /// Inline: out of line, its call saved six registers for the hog's loop and the sift, paid
    /// on each of ≈ 2.9 calls per request of the bench's point.
    ///
    /// # Panics
    /// If no core is free at `now_ns` (a driver bug: work started on a busy core).
    #[inline(always)]
    pub fn occupy(&mut self, now_ns: u64, service_ns: u64) -> u64 {
        assert!(
            self.first_free_ns <= now_ns,
            "no core is free at {now_ns} ns: the first is busy until {} ns",
            self.first_free_ns
        );
        let end = self.finish_ns(now_ns, service_ns);
        self.first_free_ns = self.replace_least(end);
        self.busy_total_ns = self.busy_total_ns.saturating_add(service_ns);
        end
    }

    /// Replaces the least busy-until time with `end_ns`, not below it, and returns the new least.
    ///
    /// A scan of every core's time whose compares pick with `cmov`s, not branches: where a new
    /// busy-until time lands among the others is data-dependent, so the sift of the binary
    /// min-heap that was here took branches close to coin tosses (cachegrind `--branch-sim`:
    /// ≈ 1.9 mispredicted per request of the simulator's NIC point), for about the instructions
    /// of this scan of 8 cores (the bench's pools; ≈ 4 per core).
    #[inline]
    fn replace_least(&mut self, end_ns: u64) -> u64 {
        let times = &mut self.busy_until_ns[..];
        times[self.least_slot] = end_ns;
        let (mut slot, mut least_ns) = (0, times[0]);
        for (i, &t) in times.iter().enumerate().skip(1) {
            let lower = t < least_ns;
            least_ns = std::hint::select_unpredictable(lower, t, least_ns);
            slot = std::hint::select_unpredictable(lower, i, slot);
        }
        self.least_slot = slot;
        least_ns
    }

    /// Service time handed out so far, summed over cores.
    pub fn busy_total_ns(&self) -> u64 {
        self.busy_total_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_takes_a_free_core_and_holds_it() {
        let mut pool = CorePool::new(2).unwrap();
        assert!(pool.has_free_core(0));
        assert_eq!(pool.occupy(0, 100), 100);
        assert!(pool.has_free_core(50));
        assert_eq!(pool.occupy(50, 100), 150);
        assert!(!pool.has_free_core(99));
        assert_eq!(pool.free_count(120), 1);
        assert_eq!(pool.busy_total_ns(), 200);
    }

    #[test]
    #[should_panic(expected = "no core is free at 99 ns")]
    fn work_on_a_busy_pool_is_refused() {
        let mut pool = CorePool::new(1).unwrap();
        pool.occupy(0, 100);
        pool.occupy(99, 1);
    }

    #[test]
    fn a_hog_holds_its_slices_and_preempts_work_crossing_into_them() {
        // Hog slices [1000, 1100), [1300, 1400), [1600, 1650) (cut at the stop).
        let hog = HogSlices::from_share(1000, 1650, 100, 1.0 / 3.0);
        assert_eq!(hog.worker_ns, 200);
        let mut pool = CorePool::new(2).unwrap();
        pool.set_hog(hog);
        assert_eq!(pool.held_until(999), None);
        assert_eq!(pool.held_until(1000), Some(1100));
        assert!(!pool.has_free_core(1050), "the hog holds every core");
        assert_eq!(pool.free_count(1099), 0);
        assert_eq!(pool.free_count(1100), 2);
        // Started at 950, 50 ns run before the hog, the other 100 after its slice.
        assert_eq!(pool.occupy(950, 150), 1200);
        // Crosses two slices: 100 before 1300, 200 until 1600, 30 after 1650.
        assert_eq!(pool.occupy(1200, 330), 1680);
        assert_eq!(
            pool.finish_ns(1600, 10),
            1660,
            "waits for the last, cut slice"
        );
        assert_eq!(pool.finish_ns(1650, 10), 1660, "the hog has stopped");
        assert_eq!(pool.finish_ns(1099, 1), 1101);
        assert_eq!(pool.busy_total_ns(), 480, "CPU time, not time held");
    }

    /// The rule before the least was kept: work on the lowest-numbered free core, each core's
    /// busy-until time at its number. The reference for what the pool must answer.
    struct LowestFree {
        busy_until_ns: Vec<u64>,
    }

    impl LowestFree {
        fn free_core(&self, now_ns: u64) -> Option<usize> {
            self.busy_until_ns.iter().position(|&t| t <= now_ns)
        }

        fn busy_beyond(&self, at_ns: u64) -> bool {
            self.busy_until_ns.iter().all(|&t| t > at_ns)
        }

        fn free_count(&self, now_ns: u64) -> usize {
            self.busy_until_ns.iter().filter(|&&t| t <= now_ns).count()
        }
    }

    #[test]
    fn any_free_core_gives_the_lowest_numbered_ones_times() {
        // BlueField-2's count, others (a last level with one child, none), a single core.
        for count in [8, 5, 7, 2, 1] {
            agree_with_the_lowest_numbered_rule(count);
        }
    }

    /// A seeded schedule of work on `count` cores, started whenever a core is free (as the
    /// server's pump does), on the pool and on the lowest-numbered rule: the same answers —
    /// free or not, busy beyond later times, cores free — and the same end times, throughout.
    fn agree_with_the_lowest_numbered_rule(count: usize) {
        let mut pool = CorePool::new(count).unwrap();
        let mut lowest = LowestFree {
            busy_until_ns: vec![0; count],
        };
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut now = 0;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            now += (state >> 33) % 40;
            let free = lowest.free_core(now);
            assert_eq!(
                pool.has_free_core(now),
                free.is_some(),
                "{count} at {now} ns"
            );
            assert_eq!(pool.free_count(now), lowest.free_count(now));
            let later = now + (state >> 40) % 200;
            assert_eq!(pool.busy_beyond(later), lowest.busy_beyond(later));
            if let Some(core) = free {
                let service_ns = (state >> 13) % 300;
                let end = pool.occupy(now, service_ns);
                lowest.busy_until_ns[core] = now + service_ns;
                assert_eq!(end, now + service_ns, "{count} cores at {now} ns");
            }
            let least = pool.busy_until_ns.iter().copied().min();
            assert_eq!(Some(pool.first_free_ns), least, "{count} cores");
            assert_eq!(
                pool.busy_until_ns[pool.least_slot], pool.first_free_ns,
                "the least is where it is said to be"
            );
        }
    }

    #[test]
    fn the_first_free_time_stays_while_another_core_shares_it() {
        // Two cores free at 100: taking one leaves the least at 100, taking the other then moves
        // it to the third core's 150.
        let mut pool = CorePool::new(3).unwrap();
        pool.occupy(0, 100);
        pool.occupy(0, 100);
        pool.occupy(0, 150);
        assert_eq!(pool.first_free_ns, 100);
        pool.occupy(100, 400);
        assert_eq!(pool.first_free_ns, 100);
        assert!(pool.has_free_core(100));
        pool.occupy(100, 400);
        assert_eq!(pool.first_free_ns, 150);
        assert!(pool.busy_beyond(149));
        assert!(!pool.busy_beyond(150));
    }

    #[test]
    fn counts_outside_the_bounds_are_refused() {
        assert_eq!(CorePool::new(0).unwrap_err(), CoreCountError { count: 0 });
        assert!(CorePool::new(CORES_MAX + 1).is_err());
    }

    #[test]
    fn the_first_free_time_is_the_least_busy_time_for_any_core_count() {
        // 1 to 9 cores; the services make ties and none.
        const COUNT_MAX: usize = 9;
        const ROUNDS: u64 = 200;
        const STEP_NS: u64 = 7;
        for count in 1..=COUNT_MAX {
            let mut pool = CorePool::new(count).unwrap();
            let mut now_ns = 0;
            let mut started = 0u64;
            for round in 0..ROUNDS {
                while pool.has_free_core(now_ns) {
                    let service_ns = 1 + (round * 37 + started * 11) % 90;
                    pool.occupy(now_ns, service_ns);
                    started += 1;
                    let least_ns = pool.busy_until_ns.iter().copied().min();
                    assert_eq!(Some(pool.first_free_ns), least_ns, "{count} cores");
                }
                now_ns += STEP_NS;
            }
        }
    }
}
