//! The discrete-event core: a virtual clock and a queue of future events, popped in
//! `(time_ns, seq)` order. `seq` is the order of scheduling, so events due at the same time run
//! in the order they were scheduled: a run is a pure function of its inputs.
//!
//! Layout, for speed (the queue is on every event's path): a **radix heap** keyed on the integer
//! virtual time. Time never goes back (an event is never due before the last one popped), so a
//! future event waits in the bucket of the highest bit in which its time differs from now:
//! bucket `i` holds times in `now ^ t < 2^i`, `≥ 2^(i-1)`. Bucket 0 is "due now", a FIFO. To pop
//! when it is empty, the clock moves to the least time of the lowest non-empty bucket, whose
//! events are then spread over the buckets below it (each event moves down at most 64 times, in
//! practice a few); the pops need no comparisons between events, so few mispredicted branches
//! (a binary heap's sift was ≈ 17 % of a point's CPU time). Buckets hold compact keys
//! `(at_ns, slot)`, 16 bytes, and the events wait in a slab whose slots are reused (events moved
//! whole down the buckets instead were 4 % slower on the bench's point: an event moves ≈ 2.8
//! times).
//!
//! Why the order is still `(time_ns, seq)`: events due at one time always share a bucket (the
//! bucket depends only on the time and the clock), a bucket receives events in scheduling order
//! or, when it is refilled, in the order the bucket above held them, so events due at one time
//! stay in scheduling order; they reach the FIFO together when the clock reaches their time,
//! before any event scheduled at that time afterwards (which joins the FIFO's end).

use std::collections::VecDeque;

/// Buckets of the radix heap: "due now" and one per bit of a `u64` time.
const BUCKETS: usize = 65;

/// An event queue with a virtual clock.
#[derive(Debug)]
pub struct EventQueue<E> {
    now_ns: u64,
    /// Buckets `1..=64` (index 0 unused: bucket 0 is `due_now`).
    /// An array, not a `Vec`: `bucket_of` is at most 64, so indexing needs no bounds check.
    buckets: [Vec<Key>; BUCKETS],
    /// Bit `i - 1` set while bucket `i` is not empty.
    occupied: u64,
    /// Bucket 0: slots of the events due now, in scheduling order.
    due_now: VecDeque<u32>,
    /// Events waiting in buckets `1..=64`.
    waiting: usize,
    slab: Vec<Option<E>>,
    free_slots: Vec<u32>,
    /// A spare bucket, swapped in while one is spread (keeps its capacity).
    spare: Vec<Key>,
    popped: u64,
}

/// A future event: when it is due and where it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    at_ns: u64,
    slot: u32,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue::new()
    }
}

/// The bucket of an event due at `at_ns` when the clock reads `now_ns` (`at_ns >= now_ns`): 0
/// when due now, else one more than the highest bit in which the two differ.
fn bucket_of(at_ns: u64, now_ns: u64) -> usize {
    (u64::BITS - (at_ns ^ now_ns).leading_zeros()) as usize
}

impl<E> EventQueue<E> {
    /// An empty queue at time 0.
    pub fn new() -> EventQueue<E> {
        EventQueue {
            now_ns: 0,
            buckets: std::array::from_fn(|_| Vec::new()),
            occupied: 0,
            due_now: VecDeque::new(),
            waiting: 0,
            slab: Vec::new(),
            free_slots: Vec::new(),
            spare: Vec::new(),
            popped: 0,
        }
    }

    /// The virtual time: the time of the last event popped.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Events popped so far.
    pub fn popped(&self) -> u64 {
        self.popped
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.waiting + self.due_now.len()
    }

    /// True if no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `event` at `at_ns`; a time in the past is moved to now (causality holds).
    ///
    /// # Panics
    /// If more than `u32::MAX` events wait at once (memory runs out long before).
    #[inline]
    pub fn schedule_at(&mut self, at_ns: u64, event: E) {
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(event);
                slot
            }
            None => {
                self.slab.push(Some(event));
                u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 events waiting")
            }
        };
        if at_ns <= self.now_ns {
            return self.due_now.push_back(slot);
        }
        self.place(Key { at_ns, slot });
        self.waiting += 1;
    }

    /// Puts a future event (`at_ns > now_ns`) into its bucket.
    #[inline]
    fn place(&mut self, key: Key) {
        let i = bucket_of(key.at_ns, self.now_ns);
        self.buckets[i].push(key);
        self.occupied |= 1 << (i - 1);
    }

    /// Schedules `event` `delay_ns` from now.
    pub fn schedule_in(&mut self, delay_ns: u64, event: E) {
        self.schedule_at(self.now_ns.saturating_add(delay_ns), event);
    }

    /// The lowest non-empty bucket above "due now" and its least time, if any event waits there.
    fn next_bucket(&self) -> Option<(usize, u64)> {
        if self.occupied == 0 {
            return None;
        }
        let i = self.occupied.trailing_zeros() as usize + 1;
        let at_ns = self.buckets[i].iter().map(|k| k.at_ns).min()?;
        Some((i, at_ns))
    }

    /// The time of the next event, if any.
    pub fn peek_ns(&self) -> Option<u64> {
        if !self.due_now.is_empty() {
            return Some(self.now_ns);
        }
        self.next_bucket().map(|(_, at_ns)| at_ns)
    }

    /// Moves the clock to `at_ns`, the least time in bucket `i` (the lowest non-empty one), and
    /// spreads that bucket's events over the buckets below it, in the order it held them.
    fn advance(&mut self, i: usize, at_ns: u64) {
        self.now_ns = at_ns;
        if let [only] = self.buckets[i][..] {
            // Half the buckets spread hold one event (the bench's NIC point): it is due now,
            // and the bucket keeps its capacity.
            self.buckets[i].clear();
            self.occupied &= !(1 << (i - 1));
            self.waiting -= 1;
            return self.due_now.push_back(only.slot);
        }
        let mut spread = std::mem::replace(&mut self.buckets[i], std::mem::take(&mut self.spare));
        self.occupied &= !(1 << (i - 1));
        let due_before = self.due_now.len();
        for key in spread.drain(..) {
            if key.at_ns == at_ns {
                self.due_now.push_back(key.slot);
            } else {
                self.place(key);
            }
        }
        self.waiting -= self.due_now.len() - due_before;
        self.spare = spread;
    }

    /// Pops the next event due at or before `until_ns` and advances the clock to it.
    #[inline]
    pub fn pop_until(&mut self, until_ns: u64) -> Option<(u64, E)> {
        if self.due_now.is_empty() {
            let (i, at_ns) = self.next_bucket()?;
            if at_ns > until_ns {
                return None;
            }
            self.advance(i, at_ns);
        } else if self.now_ns > until_ns {
            return None;
        }
        let slot = self.due_now.pop_front()?;
        let event = self.slab[slot as usize].take()?;
        self.free_slots.push(slot);
        self.popped += 1;
        Some((self.now_ns, event))
    }

    /// Pops the next event and advances the clock to it.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.pop_until(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_pop_in_time_then_scheduling_order() {
        let mut q = EventQueue::new();
        q.schedule_at(30, "c");
        q.schedule_at(10, "a");
        q.schedule_at(30, "d");
        q.schedule_at(10, "b");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(10, "a"), (10, "b"), (30, "c"), (30, "d")]);
        assert_eq!(q.now_ns(), 30);
        assert_eq!(q.popped(), 4);
    }

    #[test]
    fn the_past_is_moved_to_now_and_until_bounds_the_pop() {
        let mut q = EventQueue::new();
        q.schedule_at(100, 1);
        assert_eq!(q.pop(), Some((100, 1)));
        q.schedule_at(5, 2);
        q.schedule_in(50, 3);
        assert_eq!(q.pop_until(120), Some((100, 2)));
        assert_eq!(q.pop_until(120), None, "150 is beyond 120");
        assert_eq!(q.pop(), Some((150, 3)));
    }

    #[test]
    fn heap_events_due_now_pop_before_events_scheduled_now() {
        let mut q = EventQueue::new();
        q.schedule_at(10, "a");
        q.schedule_at(20, "b");
        q.schedule_at(20, "c");
        assert_eq!(q.pop(), Some((10, "a")));
        q.schedule_at(10, "d"); // due now: after nothing else due now
        q.schedule_at(3, "e"); // in the past: moved to now, after d
        assert_eq!(q.len(), 4);
        assert_eq!(q.peek_ns(), Some(10));
        assert_eq!(q.pop(), Some((10, "d")));
        assert_eq!(q.pop(), Some((10, "e")));
        assert_eq!(q.pop(), Some((20, "b")));
        q.schedule_in(0, "f"); // due now, scheduled after b and c: after c
        q.schedule_at(25, "g");
        assert_eq!(q.pop(), Some((20, "c")));
        assert_eq!(q.pop_until(19), None, "f is due at 20");
        assert_eq!(q.pop(), Some((20, "f")));
        assert_eq!(q.pop(), Some((25, "g")));
        assert!(q.is_empty());
        assert_eq!(q.popped(), 7);
    }

    #[test]
    fn a_seeded_random_schedule_pops_in_time_then_scheduling_order() {
        let seed = 0xde5_u64;
        eprintln!("seed {seed}");
        let mut rng = crate::rng::SimRng::new(seed);
        let mut q = EventQueue::new();
        let mut order = 0u64;
        let mut last = (0u64, 0u64);
        for _ in 0..20_000 {
            for _ in 0..rng.next_u64() % 3 {
                order += 1;
                let delay = [0, 0, 1, 5, 100][(rng.next_u64() % 5) as usize];
                q.schedule_in(delay, (q.now_ns() + delay, order));
            }
            if let Some((at, (due, seq))) = q.pop() {
                assert_eq!(at, due);
                assert!((at, seq) > last, "{:?} after {last:?}", (at, seq));
                last = (at, seq);
            }
        }
    }

    /// The radix heap against a reference binary heap on `(time, seq)`, over delays from 0 to
    /// beyond 2^40 ns (every bucket), with `pop_until` bounds that stop short of the next event.
    #[test]
    fn a_seeded_random_schedule_pops_as_a_binary_heap_on_time_and_seq() {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let seed = 0x4ad1_u64;
        eprintln!("seed {seed}");
        let mut rng = crate::rng::SimRng::new(seed);
        let mut q = EventQueue::new();
        let mut reference = BinaryHeap::new();
        let (mut seq, mut now) = (0u64, 0u64);
        for _ in 0..50_000 {
            for _ in 0..rng.next_u64() % 4 {
                seq += 1;
                let bits = rng.next_u64() % 42;
                let delay = (rng.next_u64() % (1 << bits)).saturating_sub(rng.next_u64() % 3);
                let at = (now + delay).saturating_sub(rng.next_u64() % 2);
                q.schedule_at(at, seq);
                reference.push(Reverse((at.max(now), seq)));
            }
            assert_eq!(q.len(), reference.len());
            let until = match rng.next_u64() % 4 {
                0 => u64::MAX,
                _ => now + rng.next_u64() % 64,
            };
            let expected = match reference.peek() {
                Some(Reverse((at, _))) if *at <= until => reference.pop().map(|Reverse(e)| e),
                _ => None,
            };
            let got = q.pop_until(until);
            assert_eq!(got, expected, "seed {seed}");
            if let Some((at, _)) = got {
                now = at;
            }
            assert_eq!(
                q.peek_ns(),
                reference.peek().map(|Reverse((at, _))| (*at).max(now))
            );
        }
    }
}
