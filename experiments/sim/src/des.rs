//! The discrete-event core: a virtual clock and a queue of future events, popped in
//! `(time_ns, seq)` order. `seq` is the order of scheduling, so events due at the same time run
//! in the order they were scheduled: a run is a pure function of its inputs.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// An event queue with a virtual clock.
#[derive(Debug)]
pub struct EventQueue<E> {
    now_ns: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<Entry<E>>>,
    popped: u64,
}

#[derive(Debug)]
struct Entry<E> {
    at_ns: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ns, self.seq) == (other.at_ns, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at_ns, self.seq).cmp(&(other.at_ns, other.seq))
    }
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
        self.heap.len()
    }

    /// True if no event waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Schedules `event` at `at_ns`; a time in the past is moved to now (causality holds).
    pub fn schedule_at(&mut self, at_ns: u64, event: E) {
        self.seq += 1;
        self.heap.push(Reverse(Entry {
            at_ns: at_ns.max(self.now_ns),
            seq: self.seq,
            event,
        }));
    }

    /// Schedules `event` `delay_ns` from now.
    pub fn schedule_in(&mut self, delay_ns: u64, event: E) {
        self.schedule_at(self.now_ns.saturating_add(delay_ns), event);
    }

    /// The time of the next event, if any.
    pub fn peek_ns(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(e)| e.at_ns)
    }

    /// Pops the next event due at or before `until_ns` and advances the clock to it.
    pub fn pop_until(&mut self, until_ns: u64) -> Option<(u64, E)> {
        if self.peek_ns()? > until_ns {
            return None;
        }
        let Reverse(entry) = self.heap.pop()?;
        self.now_ns = entry.at_ns;
        self.popped += 1;
        Some((entry.at_ns, entry.event))
    }

    /// Pops the next event and advances the clock to it.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.pop_until(u64::MAX)
    }

    /// Moves the clock forward to `at_ns` (never back) without an event.
    pub fn advance_to(&mut self, at_ns: u64) {
        self.now_ns = self.now_ns.max(at_ns);
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
}
