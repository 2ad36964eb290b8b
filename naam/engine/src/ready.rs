//! The executor's queue of ready steps (slot indices, oldest first).
//!
//! Its front is held apart from the rest: when a message's accesses are lent in place, each of
//! its steps is pushed into an empty queue and popped right after, and a `VecDeque`'s wrap-around
//! arithmetic on that push and pop cost ≈ 30 instructions per step. The order is exactly a
//! FIFO's: the front is filled only while the rest is empty.

use std::collections::VecDeque;

/// A FIFO of slot indices with the front out of line.
#[derive(Debug, Default)]
pub(crate) struct ReadyQueue {
    /// The oldest entry, when there is one (then `rest` holds the younger ones).
    front: Option<u32>,
    /// The entries after `front`, oldest first; empty whenever `front` is `None`.
    rest: VecDeque<u32>,
}

impl ReadyQueue {
    /// Appends `index` at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, index: u32) {
        if self.front.is_none() {
            // `rest` is empty whenever `front` is: `index` is the only entry.
            self.front = Some(index);
        } else {
            self.rest.push_back(index);
        }
    }

    /// Removes and returns the oldest entry.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<u32> {
        let index = self.front.take()?;
        self.front = self.rest.pop_front();
        Some(index)
    }

    /// The oldest entry.
    pub(crate) fn front(&self) -> Option<u32> {
        self.front
    }

    /// Entries queued.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.front.is_some()) + self.rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mixed pushes and pops keep a `VecDeque`'s order, front and length at every point.
    #[test]
    fn it_is_a_fifo() {
        let mut queue = ReadyQueue::default();
        let mut model = VecDeque::new();
        let mut next = 0u32;
        // Bursts of pushes and pops of different lengths, draining to empty twice.
        for (pushes, pops) in [(1, 1), (3, 1), (0, 2), (2, 0), (1, 4), (5, 3), (0, 3)] {
            for _ in 0..pushes {
                queue.push_back(next);
                model.push_back(next);
                next += 1;
            }
            for _ in 0..pops {
                assert_eq!(queue.pop_front(), model.pop_front());
            }
            assert_eq!(queue.front(), model.front().copied());
            assert_eq!(queue.len(), model.len());
        }
        assert_eq!(queue.pop_front(), None);
        assert_eq!(queue.len(), 0);
    }
}
