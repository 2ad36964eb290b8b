//! The executor's FIFOs of ready steps (slot indices) and of finished messages, oldest first.
//!
//! Their front is held apart from the rest: when a message's accesses are lent in place, each of
//! its steps is pushed into an empty queue and popped right after, and a `VecDeque`'s wrap-around
//! arithmetic on that push and pop cost ≈ 30 instructions per step; a host in a box likewise
//! polls each finished message out of an otherwise empty queue. The order is exactly a FIFO's:
//! the front is filled only while the rest is empty.

use std::collections::VecDeque;

/// A FIFO with its front out of line.
#[derive(Debug)]
pub(crate) struct FrontQueue<T> {
    /// The oldest entry, when there is one (then `rest` holds the younger ones).
    front: Option<T>,
    /// The entries after `front`, oldest first; empty whenever `front` is `None`.
    rest: VecDeque<T>,
}

impl<T> Default for FrontQueue<T> {
    fn default() -> Self {
        FrontQueue {
            front: None,
            rest: VecDeque::new(),
        }
    }
}

impl<T> FrontQueue<T> {
    /// Appends `entry` at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, entry: T) {
        if self.front.is_none() {
            // `rest` is empty whenever `front` is: `entry` is the only one.
            self.front = Some(entry);
        } else {
            self.rest.push_back(entry);
        }
    }

    /// Appends the entry `make` builds at the back, built where it is stored: `make` runs
    /// inside the branch that stores it, so the entry need not be built on the stack first
    /// and then moved in (a finished message is ~130 bytes).
    #[inline(always)]
    pub(crate) fn push_back_with(&mut self, make: impl FnOnce() -> T) {
        if self.front.is_none() {
            self.front = Some(make());
        } else {
            self.rest.push_back(make());
        }
    }

    /// Removes and returns the oldest entry.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let entry = self.front.take()?;
        // Only a queue holding more than one entry pays the deque's arithmetic.
        if !self.rest.is_empty() {
            self.front = self.rest.pop_front();
        }
        Some(entry)
    }

    /// The oldest entry.
    pub(crate) fn front(&self) -> Option<&T> {
        self.front.as_ref()
    }

    /// The oldest entry, to take parts of in place (then [`FrontQueue::remove_front`]): no
    /// move of the whole entry out of the queue.
    #[inline]
    pub(crate) fn front_mut(&mut self) -> Option<&mut T> {
        self.front.as_mut()
    }

    /// Drops the oldest entry, if any.
    #[inline]
    pub(crate) fn remove_front(&mut self) {
        self.front = None;
        if !self.rest.is_empty() {
            self.front = self.rest.pop_front();
        }
    }

    /// True when nothing is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.front.is_none()
    }

    /// Entries queued.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.front.is_some()) + self.rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mixed pushes (both kinds) and pops keep a `VecDeque`'s order, front and length at every point.
    #[test]
    fn it_is_a_fifo() {
        let mut queue = FrontQueue::default();
        let mut model = VecDeque::new();
        let mut next = 0u32;
        // Bursts of pushes and pops of different lengths, draining to empty twice.
        for (pushes, pops) in [(1, 1), (3, 1), (0, 2), (2, 0), (1, 4), (5, 3), (0, 3)] {
            for _ in 0..pushes {
                // Both pushes, into an empty queue and behind a front.
                if next.is_multiple_of(2) {
                    queue.push_back(next);
                } else {
                    queue.push_back_with(|| next);
                }
                model.push_back(next);
                next += 1;
            }
            for _ in 0..pops {
                assert_eq!(queue.pop_front(), model.pop_front());
            }
            assert_eq!(queue.front(), model.front());
            assert_eq!(queue.is_empty(), model.is_empty());
            assert_eq!(queue.len(), model.len());
        }
        assert_eq!(queue.pop_front(), None);
        assert_eq!(queue.len(), 0);
    }

    /// Taking the front in place and removing it is a pop.
    #[test]
    fn remove_front_after_front_mut_is_a_pop() {
        let mut queue = FrontQueue::default();
        let mut model = VecDeque::new();
        for entry in 0..4u32 {
            queue.push_back(entry);
            model.push_back(entry);
        }
        while let Some(front) = queue.front_mut() {
            let taken = std::mem::take(front);
            assert_eq!(Some(taken), model.pop_front());
            queue.remove_front();
            assert_eq!(queue.len(), model.len());
        }
        queue.remove_front();
        assert!(queue.is_empty() && model.is_empty());
    }
}
