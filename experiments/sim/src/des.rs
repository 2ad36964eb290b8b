//! The discrete-event core: a virtual clock and a queue of future events, popped in
//! `(time_ns, seq)` order. `seq` is the order of scheduling, so events due at the same time run
//! in the order they were scheduled: a run is a pure function of its inputs.
//!
//! Layout, for speed (the queue is on every event's path): the binary heap holds only compact
//! keys `(at_ns, seq, slot)`, 24 bytes, and the events wait in a slab whose slots are reused, so
//! a sift moves keys, never events. An event scheduled for the current time (a zero delay, or a
//! time in the past) skips the heap: it joins a FIFO of "due now" events. The order is still
//! `(time_ns, seq)`: every heap event due now was scheduled before the clock reached now, hence
//! before every FIFO event, so heap events due now pop first, then the FIFO in order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// An event queue with a virtual clock.
#[derive(Debug)]
pub struct EventQueue<E> {
    now_ns: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<Key>>,
    slab: Vec<Option<E>>,
    free_slots: Vec<u32>,
    due_now: VecDeque<E>,
    popped: u64,
}

/// A future event's place in the heap: ordered by `(at_ns, seq)`; `seq` is unique, so `slot`
/// never decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    at_ns: u64,
    seq: u64,
    slot: u32,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time 0.
    pub fn new() -> EventQueue<E> {
        EventQueue {
            now_ns: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            slab: Vec::new(),
            free_slots: Vec::new(),
            due_now: VecDeque::new(),
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
        self.heap.len() + self.due_now.len()
    }

    /// True if no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `event` at `at_ns`; a time in the past is moved to now (causality holds).
    ///
    /// # Panics
    /// If more than `u32::MAX` future events wait at once (memory runs out long before).
    pub fn schedule_at(&mut self, at_ns: u64, event: E) {
        self.seq += 1;
        if at_ns <= self.now_ns {
            self.due_now.push_back(event);
            return;
        }
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
        self.heap.push(Reverse(Key {
            at_ns,
            seq: self.seq,
            slot,
        }));
    }

    /// Schedules `event` `delay_ns` from now.
    pub fn schedule_in(&mut self, delay_ns: u64, event: E) {
        self.schedule_at(self.now_ns.saturating_add(delay_ns), event);
    }

    /// The time of the next event, if any.
    pub fn peek_ns(&self) -> Option<u64> {
        if !self.due_now.is_empty() {
            return Some(self.now_ns);
        }
        self.heap.peek().map(|Reverse(k)| k.at_ns)
    }

    /// Pops the next event due at or before `until_ns` and advances the clock to it.
    pub fn pop_until(&mut self, until_ns: u64) -> Option<(u64, E)> {
        let heap_first = match self.heap.peek() {
            Some(Reverse(k)) => k.at_ns <= self.now_ns || self.due_now.is_empty(),
            None => false,
        };
        if !heap_first {
            if self.now_ns > until_ns {
                return None;
            }
            let event = self.due_now.pop_front()?;
            self.popped += 1;
            return Some((self.now_ns, event));
        }
        if self.heap.peek()?.0.at_ns > until_ns {
            return None;
        }
        let Reverse(key) = self.heap.pop()?;
        let event = self.slab[key.slot as usize].take()?;
        self.free_slots.push(key.slot);
        self.now_ns = key.at_ns;
        self.popped += 1;
        Some((key.at_ns, event))
    }

    /// Pops the next event and advances the clock to it.
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
}
