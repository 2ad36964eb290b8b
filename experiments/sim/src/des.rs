//! The discrete-event core: a virtual clock and a queue of future events, popped in
//! `(time_ns, seq)` order. `seq` is the order of scheduling, so events due at the same time run
//! in the order they were scheduled: a run is a pure function of its inputs.
//!
//! Layout, for speed (the queue is on every event's path). The events wait in a slab whose slots
//! are reused; the queue orders slot numbers in three parts:
//!
//! - **due now**: a FIFO of the events due at the clock's time;
//! - **the wheel**: events due within [`WHEEL_SLOTS`] ns, one list per nanosecond slot (`time
//!   mod WHEEL_SLOTS`: within the window every slot holds one time), in scheduling order, with a
//!   bitmap of the non-empty slots and a summary of its non-empty words, to find the next time;
//! - **the far heap**: events due later, in a binary min-heap keyed on `(at_ns, seq)`, `seq`
//!   the far heap's own count of its pushes (so its scheduling order); the slot rides along.
//!   Its keys are 24 bytes. A take costs ≈ 190 instructions (sifts), against the ≈ 207 of the
//!   radix heap that was here (it spread its lowest bucket at each take); with the wheel's
//!   window of 32.8 µs few of the bench's events come here. A deque sorted by time
//!   (binary search, insert) was tried and cost more (its inserts' moves).
//!
//! The bench's point schedules ≈ 12 events per request, nearly all within a few µs: in a radix
//! heap alone they were re-sorted down the buckets at almost every pop (≈ 13 % of a request's
//! instructions); the wheel places and finds them with a few bit operations.
//!
//! Why the order is still `(time_ns, seq)`: the wheel keeps each time's events in scheduling
//! order; the far heap does too (its key's `seq` breaks ties between equal times). An
//! event goes to the far heap when its time is at least [`WHEEL_SLOTS`] ns away, and the clock
//! never goes back, so of the events due at one time those in the far heap were all scheduled
//! before those in the wheel: when the clock reaches a time, the far heap's events due then join
//! the FIFO first, then the wheel slot's, then whatever is scheduled at that time afterwards.

use std::cmp::Reverse;
use std::collections::binary_heap::PeekMut;
use std::collections::{BinaryHeap, VecDeque};

/// log2 of [`WHEEL_SLOTS`].
const WHEEL_BITS: u32 = 15;
/// Nanoseconds the wheel covers ahead of the clock (one slot each): 32.8 µs, the span of the
/// bench's links, steps and DMA, and of nearly all of its clients' send times (8 µs apart on
/// average: 2 M requests/s from 16 clients); later events (ticks, rare send times) go to the
/// far heap. A wider window takes most far events off the far heap (≈ 190 instructions a
/// take) for a few more bit operations per pop; 4.1 µs (12 bits) put 60 % of the sends there.
pub const WHEEL_SLOTS: usize = 1 << WHEEL_BITS;
/// Words of the wheel's bitmap.
const WHEEL_WORDS: usize = WHEEL_SLOTS / 64;
/// Words of the wheel's summary of its non-empty bitmap words (one bit each): few, so that the
/// rare search beyond a summary word's 4 096 ns ([`Wheel::first_set_beyond`]) looks at each.
const WHEEL_SUMMARY_WORDS: usize = WHEEL_WORDS.div_ceil(64);
const _: () = assert!(
    WHEEL_SUMMARY_WORDS >= 1 && WHEEL_SUMMARY_WORDS <= 16,
    "a few summary words"
);
/// "No slot": the end of a wheel list.
const NIL: u32 = u32::MAX;

/// A hint to load the cache line holding `byte` (no effect on what any load returns).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn prefetch_line(byte: *const u8) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is a hint: it never faults, whatever the address, and changes no
    // memory; SSE is part of every x86-64 target.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(byte.cast::<i8>()) }
}

/// No prefetch hint elsewhere: reads then take their cache misses when they happen.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
pub(crate) fn prefetch_line(_byte: *const u8) {}

/// An event queue with a virtual clock.
#[derive(Debug)]
pub struct EventQueue<E> {
    now_ns: u64,
    /// Slots of the events due now, in scheduling order.
    due_now: VecDeque<u32>,
    wheel: Wheel,
    far: FarHeap,
    slab: Vec<Slot<E>>,
    /// The first free slab slot, [`NIL`] when none is: the free slots are linked through their
    /// `next` (a free slot is in no wheel list), so freeing and taking one is two stores,
    /// with no growth check. Taken last freed first, as a stack of free slots would be.
    free_head: u32,
    popped: u64,
}

/// A slab slot: its event, if one waits there, and its link — the next event of its wheel list,
/// or while the slot is free, the next free slot ([`EventQueue`]'s `free_head`). One vector, so
/// that a schedule and a pop check one bound, not one per vector.
///
/// Aligned to a cache line: the simulator's events are 56 bytes, so a slot is one line, not
/// two lines' parts (the pop's read of a slot written microseconds before is a miss).
#[derive(Debug)]
#[repr(align(64))]
struct Slot<E> {
    event: Option<E>,
    next: u32,
}

/// Events due within [`WHEEL_SLOTS`] ns of the clock: a list per time, linked through the slab's
/// slots (their `next`, which the methods are handed).
#[derive(Debug)]
struct Wheel {
    /// The first and last slab slot of each time's list, side by side: a pop and a schedule
    /// touch one cache line of them, not two. Meaningful only while the slot's bit in `bits`
    /// is set: the bitmap (4 KiB, in cache) says whether a slot is empty, so that a schedule
    /// into an empty slot (nearly all of them) writes its ends without reading them — a store
    /// to a line not in the cache does not hold up the instructions after it; the read of a
    /// `tail` that said "empty" did (`perf annotate`: ≈ 10 % of `schedule_step_done`'s and
    /// `hand_on`'s samples, on the line last touched one turn of the wheel before).
    ends: Box<[Ends; WHEEL_SLOTS]>,
    /// Bit `j % 64` of word `j / 64` set while slot `j` holds events.
    bits: Box<[u64; WHEEL_WORDS]>,
    /// Bit `w % 64` of word `w / 64` set while word `w` of `bits` is not zero. No word above it
    /// says which of its (8) words are not zero: the one that did cost a take and a schedule
    /// ≈ 13 instructions of a request's ≈ 10 000 to keep, for [`Wheel::first_set_beyond`]'s
    /// sake (≈ 1 take in 80 of the bench's). The wheel keeps no count of its events either:
    /// [`EventQueue::len`] (tests only) walks its lists.
    words: Box<[u64; WHEEL_SUMMARY_WORDS]>,
    /// The least time waiting in the wheel, `u64::MAX` when it is empty. Kept (a schedule
    /// lowers it; a take finds the next one) so that the take also prefetches the next time's
    /// [`Ends`]: spread over 256 KiB and last touched when that event was scheduled, microseconds
    /// before, the pop's read of them waited for a miss (`perf annotate`: ≈ 4.5 % of the NIC
    /// point's samples on the instruction after it), now overlapped with the handler's work.
    least_ns: u64,
}

/// A wheel list's ends: its first and last slab slot.
#[derive(Debug, Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
}

/// Events due [`WHEEL_SLOTS`] ns or more after the clock when scheduled: a binary min-heap on
/// `(at_ns, seq)`.
#[derive(Debug)]
struct FarHeap {
    heap: BinaryHeap<Reverse<Key>>,
    /// Pushes so far: the next key's `seq`.
    pushed: u64,
    /// The least time waiting, `u64::MAX` when none (kept: read at every pop).
    least_ns: u64,
}

/// A far event: when it is due, its place in the far heap's scheduling order, and where it
/// waits. Ordered by `(at_ns, seq)`: `seq` is unique, so `slot` never decides.
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

/// The wheel slot of time `at_ns`.
fn slot_of(at_ns: u64) -> usize {
    (at_ns & (WHEEL_SLOTS as u64 - 1)) as usize
}

impl Wheel {
    fn new() -> Wheel {
        Wheel {
            ends: Box::new(
                [Ends {
                    head: NIL,
                    tail: NIL,
                }; WHEEL_SLOTS],
            ),
            bits: Box::new([0; WHEEL_WORDS]),
            words: Box::new([0; WHEEL_SUMMARY_WORDS]),
            least_ns: u64::MAX,
        }
    }

    /// Appends `slot` to the list of time `at_ns` (within the window).
    #[inline]
    fn push<E>(&mut self, at_ns: u64, slot: u32, slots: &mut [Slot<E>]) {
        slots[slot as usize].next = NIL;
        self.append(at_ns, slot, slots);
    }

    /// [`Wheel::push`] for a slot whose link already reads [`NIL`].
    ///
    /// The summary's bits are set unconditionally (setting a set bit changes nothing): whether
    /// the bitmap word was empty is close to a coin toss at the bench's ≈ 50 ns between events
    /// and 64 ns per word, so a branch on it was mispredicted about half the time.
    #[inline]
    fn append<E>(&mut self, at_ns: u64, slot: u32, slots: &mut [Slot<E>]) {
        self.least_ns = self.least_ns.min(at_ns);
        let j = slot_of(at_ns);
        let (w, bit) = (j / 64, 1 << (j % 64));
        let word = self.bits[w];
        if word & bit != 0 {
            let last = self.ends[j].tail;
            slots[last as usize].next = slot;
            self.ends[j].tail = slot;
            return;
        }
        self.ends[j] = Ends {
            head: slot,
            tail: slot,
        };
        self.bits[w] = word | bit;
        self.words[w / 64] |= 1 << (w % 64);
    }

    /// True while events wait for time `at_ns` (within the window).
    #[inline]
    fn holds(&self, at_ns: u64) -> bool {
        let j = slot_of(at_ns);
        self.bits[j / 64] & 1 << (j % 64) != 0
    }

    /// Events in the wheel, by a walk of its lists (for [`EventQueue::len`]).
    fn len<E>(&self, slots: &[Slot<E>]) -> usize {
        let mut len = 0;
        let set_bits = |(w, &word): (usize, &u64)| {
            let mut word: u64 = word;
            std::iter::from_fn(move || {
                let bit = (word != 0).then(|| word.trailing_zeros() as usize)?;
                word &= word - 1;
                Some(w * 64 + bit)
            })
        };
        for j in self.bits.iter().enumerate().flat_map(set_bits) {
            let mut slot = self.ends[j].head;
            while slot != NIL {
                len += 1;
                slot = slots[slot as usize].next;
            }
        }
        len
    }

    /// The time of the wheel's next events, if any.
    #[inline(always)]
    fn next_ns(&self) -> Option<u64> {
        (self.least_ns != u64::MAX).then_some(self.least_ns)
    }

    /// Finds the least time waiting once the events of time `at_ns` (the least) were taken —
    /// every time in the wheel is within `[at_ns, at_ns + WHEEL_SLOTS)` — and prefetches its
    /// list's ends for the pop that takes them. `word` and `summary` are the bitmap word and the
    /// summary word of `at_ns`'s slot, as [`Wheel::clear`] left them (not loaded again).
    ///
    /// Whether the next time is in that word (64 ns) or a later one is close to a coin toss at
    /// the bench's ≈ 50 ns between events: both candidates are worked out (the later word's from
    /// the summary, in cache) and one is selected without a branch, which was mispredicted about
    /// half the time. Only a next time beyond the summary word's 4 096 ns (or round the window)
    /// takes [`Wheel::find_least_beyond`], so that the common path carries no "none found" to
    /// test (an `Option` returned from both paths did: −4 instructions a take without it).
    #[inline(always)]
    fn find_least_after(&mut self, at_ns: u64, word: u64, summary: u64) {
        let from = slot_of(at_ns);
        let (w, b) = (from / 64, from % 64);
        let (m, c) = (w / 64, w % 64);
        // The word's bits from `from` on, shifted down to bit 0 (`from`'s own is clear).
        let here = word >> b;
        // Two shifts: by 64 at `c == 63`, which one shift may not do.
        let later = summary & ((u64::MAX << c) << 1);
        if here | later == 0 {
            return self.find_least_beyond(at_ns, m);
        }
        let near = from + here.trailing_zeros() as usize;
        // With no later word (`later == 0`, then `here` is selected) this reads some word in
        // bounds whose result is not used.
        let w_later = (m * 64 + later.trailing_zeros() as usize) % WHEEL_WORDS;
        let next = w_later * 64 + self.bits[w_later].trailing_zeros() as usize;
        let j = std::hint::select_unpredictable(here != 0, near, next);
        self.least_at(at_ns, j);
    }

    /// [`Wheel::find_least_after`] when no time waits in the summary word of `at_ns`'s slot
    /// (`m`) after that slot.
    #[cold]
    #[inline(never)]
    fn find_least_beyond(&mut self, at_ns: u64, m: usize) {
        match self.first_set_beyond(m) {
            Some(j) => self.least_at(at_ns, j),
            None => self.least_ns = u64::MAX,
        }
    }

    /// Slot `j`, the first non-empty one after `at_ns`'s (taken), holds the least time waiting:
    /// kept, and its list's ends prefetched. The prefetch's address is worked out without an
    /// index's bound check: a prefetch reads nothing the program sees, whatever the address
    /// (`j` is a slot, in bounds, when the bitmap is consistent).
    #[inline(always)]
    fn least_at(&mut self, at_ns: u64, j: usize) {
        prefetch_line(self.ends.as_ptr().wrapping_add(j).cast::<u8>());
        let ahead = (j + WHEEL_SLOTS - slot_of(at_ns)) % WHEEL_SLOTS;
        self.least_ns = at_ns + ahead as u64;
    }

    /// The first non-empty slot after summary word `m`'s words, else round from the first
    /// (which may be in `m`, before the slot the search started from): the summary words after
    /// `m`, then from the first, are looked at in turn.
    #[inline]
    fn first_set_beyond(&self, m: usize) -> Option<usize> {
        let m = (m + 1..WHEEL_SUMMARY_WORDS)
            .chain(0..=m)
            .find(|&i| self.words[i] != 0)?;
        let word = m * 64 + self.words[m].trailing_zeros() as usize;
        Some(word * 64 + self.bits[word].trailing_zeros() as usize)
    }

    /// Takes the list of time `at_ns` (not empty): returns its first event and moves the others
    /// to the end of `fifo`. Most times hold one event, which so skips the FIFO; such a list's
    /// first is its last, known from the wheel's own arrays without a look at the slab.
    #[inline]
    fn take_first<E>(&mut self, at_ns: u64, fifo: &mut VecDeque<u32>, slots: &[Slot<E>]) -> u32 {
        let j = slot_of(at_ns);
        let first = self.ends[j].head;
        if first != self.ends[j].tail {
            Self::move_from(slots[first as usize].next, fifo, slots);
        }
        let (word, summary) = self.clear(j);
        self.find_least_after(at_ns, word, summary);
        first
    }

    /// Moves the list of time `at_ns` to the end of `fifo`.
    #[inline]
    fn take<E>(&mut self, at_ns: u64, fifo: &mut VecDeque<u32>, slots: &[Slot<E>]) {
        let j = slot_of(at_ns);
        Self::move_from(self.ends[j].head, fifo, slots);
        let (word, summary) = self.clear(j);
        self.find_least_after(at_ns, word, summary);
    }

    /// Moves the events of a list from `slot` on (possibly none) to the end of `fifo`.
    #[inline]
    fn move_from<E>(mut slot: u32, fifo: &mut VecDeque<u32>, slots: &[Slot<E>]) {
        while slot != NIL {
            fifo.push_back(slot);
            slot = slots[slot as usize].next;
        }
    }

    /// Marks slot `j` empty and returns its bitmap word and summary word after that. Its ends
    /// are left as they were: they are read only while the slot holds events (its bit set), and
    /// [`Wheel::append`] writes both into an empty slot. The summary's bit is written without a
    /// branch (whether the word is now empty is close to a coin toss, see
    /// [`Wheel::find_least_after`]).
    #[inline]
    fn clear(&mut self, j: usize) -> (u64, u64) {
        let w = j / 64;
        let (m, c) = (w / 64, w % 64);
        let word = self.bits[w] & !(1 << (j % 64));
        self.bits[w] = word;
        // Bit `c` is set (slot `j` held events): it flips exactly when the word is now empty.
        let summary = self.words[m] ^ (u64::from(word == 0) << c);
        self.words[m] = summary;
        (word, summary)
    }
}

impl FarHeap {
    fn new() -> FarHeap {
        FarHeap {
            heap: BinaryHeap::new(),
            pushed: 0,
            least_ns: u64::MAX,
        }
    }

    fn push(&mut self, at_ns: u64, slot: u32) {
        let seq = self.pushed;
        self.pushed += 1;
        self.heap.push(Reverse(Key { at_ns, seq, slot }));
        self.least_ns = self.least_ns.min(at_ns);
    }

    /// Takes the events due at `at_ns` (the least time waiting): returns the first scheduled and
    /// moves the others, in scheduling order (the heap pops equal times by `seq`), to the end of
    /// `fifo`. Most times hold one far event, which so skips the FIFO. `None` only when empty.
    fn take_first(&mut self, at_ns: u64, fifo: &mut VecDeque<u32>) -> Option<u32> {
        let Reverse(first) = self.heap.pop()?;
        while let Some(next) = self.heap.peek_mut() {
            if next.0.at_ns != at_ns {
                break;
            }
            fifo.push_back(PeekMut::pop(next).0.slot);
        }
        self.least_ns = self.heap.peek().map_or(u64::MAX, |Reverse(key)| key.at_ns);
        Some(first.slot)
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time 0.
    pub fn new() -> EventQueue<E> {
        EventQueue {
            now_ns: 0,
            due_now: VecDeque::new(),
            wheel: Wheel::new(),
            far: FarHeap::new(),
            slab: Vec::new(),
            free_head: NIL,
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

    /// True while events due at the clock's time wait: after a pop, every other event due then
    /// waits in the due-now FIFO (a clock move hands them all over), and so does any event
    /// scheduled for now. When false, an event scheduled for now is the next one popped.
    #[inline]
    pub fn any_due_now(&self) -> bool {
        !self.due_now.is_empty()
    }

    /// True only when an event scheduled now for `at_ns`, a later time, would be the first popped
    /// then: none is queued for that time yet (later ones follow it). Answered from the wheel's
    /// slot and the far heap's least time, so false (not known) beyond the wheel's window or
    /// when the far heap holds an event due by `at_ns`.
    #[inline]
    pub fn first_at(&self, at_ns: u64) -> bool {
        let ahead_ns = at_ns.wrapping_sub(self.now_ns);
        (1..WHEEL_SLOTS as u64).contains(&ahead_ns)
            && !self.wheel.holds(at_ns)
            && (self.far.heap.is_empty() || self.far.least_ns > at_ns)
    }

    /// Moves the clock to `at_ns` when no event is due by then (none due now either) and says
    /// whether it did: an event scheduled for `at_ns` would then be the next one popped, so the
    /// caller may run its handler at once instead (what else is scheduled meanwhile is later).
    #[inline]
    pub fn advance_if_next(&mut self, at_ns: u64) -> bool {
        if at_ns < self.now_ns || self.any_due_now() {
            return false;
        }
        let none_by = self.next_ns().is_none_or(|(next_ns, _, _)| next_ns > at_ns);
        if none_by {
            // Every waiting time is later: the wheel's window and the far heap stay valid.
            self.now_ns = at_ns;
        }
        none_by
    }

    /// Events waiting: a walk of the wheel's lists (it keeps no count), for checks and tests.
    pub fn len(&self) -> usize {
        self.due_now.len() + self.wheel.len(&self.slab) + self.far.heap.len()
    }

    /// True if no event waits.
    pub fn is_empty(&self) -> bool {
        self.due_now.is_empty() && self.wheel.next_ns().is_none() && self.far.heap.is_empty()
    }

    /// Schedules `event` at `at_ns`; a time in the past is moved to now (causality holds).
    ///
    /// The common case only — a time within the wheel's window and a free slot, ≈ 99.6 % of the
    /// bench's events —, which needs no call and so no saved registers; the rest is
    /// [`EventQueue::schedule_cold`], the same placement.
    ///
    /// # Panics
    /// If more than `u32::MAX - 1` events wait at once (memory runs out long before).
    #[inline(never)]
    pub fn schedule_at(&mut self, at_ns: u64, event: E) {
        self.schedule_inline(at_ns, event);
    }

    /// [`EventQueue::schedule_at`] inline in its caller, for the run's hottest schedules (a
    /// step's end, an access's completion, a datagram's arrival): the caller builds the event
    /// straight in its slab slot. Called out of line, the event was built on the caller's
    /// stack and read back by `schedule_at` in 16-byte pieces spanning the caller's narrower
    /// stores, which the CPU cannot forward from its store buffer: ≈ 45 % of `schedule_at`'s
    /// own samples sat on that read (`perf annotate`, NIC point).
    ///
    /// # Panics
    /// As [`EventQueue::schedule_at`].
    #[inline(always)]
    pub fn schedule_inline(&mut self, at_ns: u64, event: E) {
        let ahead_ns = at_ns.wrapping_sub(self.now_ns);
        let slot = self.free_head;
        let i = slot as usize;
        // A free slot is in the slab (`NIL` is not): no panicking index below.
        let Some(Slot {
            event: entry,
            next: link,
        }) = self.slab.get_mut(i)
        else {
            return self.schedule_cold(at_ns, event);
        };
        if !(1..WHEEL_SLOTS as u64).contains(&ahead_ns) {
            return self.schedule_cold(at_ns, event);
        }
        // The slot is free, so this writes over `None`: nothing to drop.
        debug_assert!(entry.is_none(), "a free slot holds no event");
        std::mem::forget(entry.replace(event));
        // The slot leaves the free list and ends its wheel list: its link is read once, set once.
        self.free_head = std::mem::replace(link, NIL);
        self.wheel.append(at_ns, slot, &mut self.slab);
    }

    /// [`EventQueue::schedule_at`] for an event due now (or before), beyond the wheel's window,
    /// or with no free slot (the slab grows).
    #[cold]
    #[inline(never)]
    fn schedule_cold(&mut self, at_ns: u64, event: E) {
        let slot = match self.free_head {
            NIL => {
                self.slab.push(Slot {
                    event: Some(event),
                    next: NIL,
                });
                let slot = u32::try_from(self.slab.len() - 1).expect("fewer than 2^32 events");
                assert!(slot != NIL, "fewer than 2^32 - 1 events waiting");
                slot
            }
            slot => {
                let entry = &mut self.slab[slot as usize];
                self.free_head = entry.next;
                entry.event = Some(event);
                slot
            }
        };
        if at_ns <= self.now_ns {
            self.due_now.push_back(slot);
        } else if at_ns - self.now_ns < WHEEL_SLOTS as u64 {
            self.wheel.push(at_ns, slot, &mut self.slab);
        } else {
            self.far.push(at_ns, slot);
        }
    }

    /// Schedules `event` `delay_ns` from now.
    pub fn schedule_in(&mut self, delay_ns: u64, event: E) {
        self.schedule_at(self.now_ns.saturating_add(delay_ns), event);
    }

    /// The time of the next event after those due now, if any, and whether the far heap and
    /// the wheel hold events due then.
    #[inline(always)]
    fn next_ns(&self) -> Option<(u64, bool, bool)> {
        // Most pops: the wheel's time is before the far heap's least (`u64::MAX` when empty).
        // One compare says so: the wheel's least is `u64::MAX` when it is empty, before no time
        // (with the wheel's `Option` first, the compiler tested that apart, then the order).
        if self.wheel.least_ns < self.far.least_ns {
            return Some((self.wheel.least_ns, false, true));
        }
        let wheel = self.wheel.next_ns();
        let far = (!self.far.heap.is_empty()).then_some(self.far.least_ns);
        let at_ns = match (wheel, far) {
            (Some(w), Some(f)) => w.min(f),
            (w, f) => w.or(f)?,
        };
        Some((at_ns, far == Some(at_ns), wheel == Some(at_ns)))
    }

    /// The time of the next event, if any.
    pub fn peek_ns(&self) -> Option<u64> {
        if !self.due_now.is_empty() {
            return Some(self.now_ns);
        }
        self.next_ns().map(|(at_ns, _, _)| at_ns)
    }

    /// Moves the clock to `at_ns`, the next time, and returns the first of its events; the
    /// others go to the FIFO: the far heap's first (scheduled earlier), then the wheel's. The
    /// first skips the FIFO.
    #[inline]
    fn advance(&mut self, at_ns: u64, in_far: bool, in_wheel: bool) -> Option<u32> {
        self.now_ns = at_ns;
        if !in_far {
            return in_wheel.then(|| self.wheel.take_first(at_ns, &mut self.due_now, &self.slab));
        }
        // The FIFO is empty (the clock moves only then): the far heap's first event is the next
        // one, its others follow, then the wheel's.
        let first = self.far.take_first(at_ns, &mut self.due_now);
        if in_wheel {
            self.wheel.take(at_ns, &mut self.due_now, &self.slab);
        }
        first
    }

    /// Pops the next event due at or before `until_ns` and advances the clock to it.
    #[inline]
    pub fn pop_until(&mut self, until_ns: u64) -> Option<(u64, E)> {
        let slot = self.next_slot_until(until_ns)?;
        let event = self.take_slot(slot)?;
        Some((self.now_ns, event))
    }

    /// Pops the next event and advances the clock to it.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.pop_until(u64::MAX)
    }

    /// Pops the next event and advances the clock to it ([`EventQueue::now_ns`] is its time).
    /// Without the time beside it, the caller's match reads the event where it was taken to.
    #[inline]
    pub fn pop_event(&mut self) -> Option<E> {
        let slot = self.next_slot_until(u64::MAX)?;
        self.take_slot(slot)
    }

    /// The slot of the next event due at or before `until_ns`, the clock moved to its time.
    #[inline]
    fn next_slot_until(&mut self, until_ns: u64) -> Option<u32> {
        if self.due_now.is_empty() {
            let (at_ns, in_far, in_wheel) = self.next_ns()?;
            if at_ns > until_ns {
                return None;
            }
            self.advance(at_ns, in_far, in_wheel)
        } else if self.now_ns > until_ns {
            None
        } else {
            self.due_now.pop_front()
        }
    }

    /// Takes the event of a popped slot and frees the slot. The slot is checked before the
    /// take: with a panicking index between the take and the caller's match, the compiler kept
    /// the taken event in a temporary of its own and copied it (64 bytes) once more.
    #[inline]
    fn take_slot(&mut self, slot: u32) -> Option<E> {
        let i = slot as usize;
        let Slot {
            event: entry,
            next: link,
        } = self.slab.get_mut(i)?;
        let event = entry.take()?;
        *link = self.free_head;
        self.free_head = slot;
        self.popped += 1;
        Some(event)
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

    /// Freed slots are linked through the wheel's links and taken again, on the wheel's path
    /// and on the cold one (due now, far), so the slab holds at most what waited at once.
    #[test]
    fn freed_slots_are_taken_again() {
        let mut q = EventQueue::new();
        let far = WHEEL_SLOTS as u64 + 1;
        for round in 0..1000u64 {
            let delay = [0, 1, 7, far][(round % 4) as usize];
            q.schedule_in(delay, round);
            q.schedule_in(delay + 1, round + 1_000_000);
            let now = q.now_ns();
            assert_eq!(q.pop(), Some((now + delay, round)));
            assert_eq!(q.pop(), Some((now + delay + 1, round + 1_000_000)));
        }
        assert_eq!(q.slab.len(), 2, "two events waited at most");
        assert!(q.is_empty());
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
    fn any_due_now_says_whether_an_event_scheduled_now_would_wait_behind_others() {
        let mut q = EventQueue::new();
        q.schedule_at(10, "a");
        q.schedule_at(10, "b");
        q.schedule_at(WHEEL_SLOTS as u64 + 20, "far");
        q.schedule_at(WHEEL_SLOTS as u64 + 20, "far2");
        assert!(!q.any_due_now(), "nothing is due at 0");
        assert_eq!(q.pop(), Some((10, "a")));
        assert!(q.any_due_now(), "b is due at 10 too");
        assert_eq!(q.pop(), Some((10, "b")));
        assert!(!q.any_due_now());
        q.schedule_in(0, "now");
        assert!(q.any_due_now(), "an event scheduled for now waits there");
        assert_eq!(q.pop(), Some((10, "now")));
        assert_eq!(q.pop(), Some((WHEEL_SLOTS as u64 + 20, "far")));
        assert!(q.any_due_now(), "far2 came out of the far heap with far");
        assert_eq!(q.pop(), Some((WHEEL_SLOTS as u64 + 20, "far2")));
        assert!(!q.any_due_now());
    }

    /// `first_at` against the events waiting, on a seeded schedule reaching the wheel and the far
    /// heap: never true when one waits for that time, always true within the wheel's window when
    /// none waits for that time or before it.
    #[test]
    fn first_at_is_true_only_when_no_event_waits_for_that_time() {
        let (seed, h) = (0xf1_u64, WHEEL_SLOTS as u64);
        eprintln!("seed {seed}");
        let (mut rng, mut q) = (crate::rng::SimRng::new(seed), EventQueue::new());
        let mut waiting: Vec<u64> = Vec::new();
        let (mut answered_true, mut answered_false) = (0, 0);
        for _ in 0..20_000 {
            for _ in 0..rng.next_u64() % 3 {
                let delay = [1, 2, 7, h - 1, h, h + 3, 3 * h][(rng.next_u64() % 7) as usize];
                let at = q.now_ns() + delay;
                q.schedule_at(at, at);
                waiting.push(at);
            }
            let now = q.now_ns();
            for ahead in [0, 1, 2, 5, h - 1, h] {
                let at = now + ahead;
                let context = format!("at {at}, now {now}, seed {seed}");
                if q.first_at(at) {
                    assert!(
                        (1..h).contains(&ahead) && !waiting.contains(&at),
                        "{context}"
                    );
                    answered_true += 1;
                } else {
                    let none_by = waiting.iter().all(|&t| t <= now || t > at);
                    assert!(!(1..h).contains(&ahead) || !none_by, "{context}");
                    answered_false += 1;
                }
            }
            if let Some((_, at)) = q.pop() {
                let i = waiting
                    .iter()
                    .position(|&t| t == at)
                    .expect("a waiting time");
                waiting.swap_remove(i);
            }
        }
        assert!(
            answered_true > 1000 && answered_false > 1000,
            "both answers were tested"
        );
    }

    /// Times anywhere in the wheel's window, so in every bitmap word and summary word, with few
    /// events waiting (long searches, the clock going round the window many times): popped as
    /// a reference heap pops them.
    #[test]
    fn times_spread_over_the_whole_window_pop_in_order() {
        let (seed, h) = (0x5ead_u64, WHEEL_SLOTS as u64);
        let mut rng = crate::rng::SimRng::new(seed);
        let mut q = EventQueue::new();
        let mut reference = BinaryHeap::new();
        let mut seq = 0u64;
        for _ in 0..30_000 {
            for _ in 0..rng.next_u64() % 3 {
                let at = q.now_ns() + 1 + rng.next_u64() % (h - 1);
                q.schedule_at(at, seq);
                reference.push(Reverse((at, seq)));
                seq += 1;
            }
            let expected = reference.pop().map(|Reverse(key)| key);
            assert_eq!(q.pop(), expected, "seed {seed}");
        }
        assert!(q.now_ns() > 20 * h, "the clock went round the window");
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

    #[test]
    fn a_time_in_both_the_far_heap_and_the_wheel_keeps_scheduling_order() {
        let mut q = EventQueue::new();
        let t = WHEEL_SLOTS as u64 + 10;
        q.schedule_at(t, "far"); // beyond the wheel's window: the far heap
        q.schedule_at(t + 2 * WHEEL_SLOTS as u64, "later");
        q.schedule_at(20, "step");
        assert_eq!(q.pop(), Some((20, "step")));
        q.schedule_at(t, "near"); // now within the window: the wheel
        q.schedule_at(t, "near2");
        assert_eq!(q.peek_ns(), Some(t));
        assert_eq!(q.pop(), Some((t, "far")));
        q.schedule_at(t, "now"); // due now: after every event already due at t
        assert_eq!(q.pop(), Some((t, "near")));
        assert_eq!(q.pop(), Some((t, "near2")));
        assert_eq!(q.pop(), Some((t, "now")));
        assert_eq!(q.pop(), Some((t + 2 * WHEEL_SLOTS as u64, "later")));
        assert!(q.is_empty());
    }

    /// Against a reference binary heap on `(time, seq)` with delays around the wheel's window
    /// (just inside, at, just beyond, a few windows on) on a coarse time grid, so that events due
    /// at one time are often split between the far heap and the wheel.
    #[test]
    fn delays_around_the_wheels_window_pop_as_a_binary_heap() {
        use std::collections::BinaryHeap;
        let seed = 0x3ee1_u64;
        eprintln!("seed {seed}");
        let mut rng = crate::rng::SimRng::new(seed);
        let h = WHEEL_SLOTS as u64;
        let delays = [
            0,
            1,
            16,
            h - 16,
            h - 1,
            h,
            h + 1,
            h + 16,
            2 * h,
            3 * h - 16,
            64 * h,
        ];
        let mut q = EventQueue::new();
        let mut reference = BinaryHeap::new();
        let (mut seq, mut now) = (0u64, 0u64);
        for _ in 0..100_000 {
            schedule_both(
                &mut q,
                &mut reference,
                &mut rng,
                (&delays, 16),
                now,
                &mut seq,
            );
            let until = match rng.next_u64() % 3 {
                0 => now + rng.next_u64() % 32,
                _ => u64::MAX,
            };
            now = pop_both_until(&mut q, &mut reference, until, now, seed);
            assert_eq!(q.len(), reference.len());
        }
    }

    /// Schedules zero to two events, numbered on from `seq`, each at now plus one of `delays`
    /// rounded down to a multiple of `grid_ns`, in the queue and in the reference heap (which
    /// holds times in the past as now, as the queue does).
    fn schedule_both(
        q: &mut EventQueue<u64>,
        reference: &mut std::collections::BinaryHeap<std::cmp::Reverse<(u64, u64)>>,
        rng: &mut crate::rng::SimRng,
        (delays, grid_ns): (&[u64], u64),
        now: u64,
        seq: &mut u64,
    ) {
        for _ in 0..rng.next_u64() % 3 {
            *seq += 1;
            let delay = delays[(rng.next_u64() % delays.len() as u64) as usize];
            let at = (now + delay) / grid_ns * grid_ns;
            q.schedule_at(at, *seq);
            reference.push(std::cmp::Reverse((at.max(now), *seq)));
        }
    }

    /// Pops the next event due by `until` from the queue and from the reference heap, asserts
    /// they agree, and returns the clock after the pop.
    fn pop_both_until(
        q: &mut EventQueue<u64>,
        reference: &mut std::collections::BinaryHeap<std::cmp::Reverse<(u64, u64)>>,
        until: u64,
        now: u64,
        seed: u64,
    ) -> u64 {
        use std::cmp::Reverse;
        let expected = match reference.peek() {
            Some(Reverse((at, _))) if *at <= until => reference.pop().map(|Reverse(e)| e),
            _ => None,
        };
        let got = q.pop_until(until);
        assert_eq!(got, expected, "seed {seed}");
        got.map_or(now, |(at, _)| at)
    }

    /// `advance_if_next` against a reference binary heap: it moves the clock exactly when nothing
    /// waits for that time or before, and the pops that follow keep `(time, seq)` order, with
    /// delays around the wheel's window.
    #[test]
    fn advance_if_next_moves_the_clock_only_past_nothing() {
        let (seed, h) = (0xad7_u64, WHEEL_SLOTS as u64);
        eprintln!("seed {seed}");
        let delays = [0, 1, 3, 9, h - 1, h, h + 2, 5 * h];
        let (mut rng, mut q) = (crate::rng::SimRng::new(seed), EventQueue::new());
        let mut reference = std::collections::BinaryHeap::new();
        let (mut seq, mut now, mut moved) = (0u64, 0u64, 0u32);
        for _ in 0..50_000 {
            schedule_both(
                &mut q,
                &mut reference,
                &mut rng,
                (&delays, 1),
                now,
                &mut seq,
            );
            let at = now + delays[(rng.next_u64() % delays.len() as u64) as usize];
            let expected = reference
                .peek()
                .is_none_or(|std::cmp::Reverse((t, _))| *t > at);
            assert_eq!(q.advance_if_next(at), expected, "at {at}, seed {seed}");
            assert_eq!(q.len(), reference.len());
            if expected {
                now = at;
                moved += 1;
                assert_eq!(q.now_ns(), at);
            }
            now = pop_both_until(&mut q, &mut reference, u64::MAX, now, seed);
        }
        assert!(moved > 5000, "the clock was moved {moved} times");
    }

    /// The far heap alone against a reference binary heap on `(time, seq)`: few distinct times
    /// (so many ties, whose order is the point) and slots numbered against scheduling order (so
    /// an order by slot is caught), each take at the least time waiting.
    #[test]
    fn the_far_heap_takes_equal_times_in_scheduling_order() {
        use std::collections::BinaryHeap;
        let seed = 0xfa23_u64;
        eprintln!("seed {seed}");
        let mut rng = crate::rng::SimRng::new(seed);
        let (mut far, mut fifo) = (FarHeap::new(), VecDeque::new());
        let mut reference = BinaryHeap::new();
        let (mut seq, mut now, mut ties) = (0u64, 0u64, 0u32);
        for _ in 0..20_000 {
            for _ in 0..rng.next_u64() % 4 {
                seq += 1;
                let at = now + 1 + rng.next_u64() % 8;
                let slot = u32::MAX - 1 - (seq % 1_000_000) as u32;
                far.push(at, slot);
                reference.push(Reverse((at, seq, slot)));
            }
            let Some(&Reverse((at, _, _))) = reference.peek() else {
                continue;
            };
            assert_eq!(far.least_ns, at, "seed {seed}");
            let mut expected = Vec::new();
            while let Some(Reverse((_, _, slot))) = reference
                .peek_mut()
                .filter(|e| e.0.0 == at)
                .map(PeekMut::pop)
            {
                expected.push(slot);
            }
            let mut got: Vec<u32> = far.take_first(at, &mut fifo).into_iter().collect();
            got.extend(fifo.drain(..));
            ties += u32::from(got.len() > 1);
            assert_eq!(got, expected, "at {at}, seed {seed}");
            now = at;
        }
        assert!(ties > 1000, "{ties} takes of several events");
    }

    /// The queue against a reference binary heap on `(time, seq)`, over delays from 0 to
    /// beyond 2^40 ns, with `pop_until` bounds that stop short of the next event.
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
            now = pop_both_until(&mut q, &mut reference, until, now, seed);
            assert_eq!(
                q.peek_ns(),
                reference.peek().map(|Reverse((at, _))| (*at).max(now))
            );
        }
    }
}
