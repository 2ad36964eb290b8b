//! The client endpoint's requests in flight by request id: a map with a fast path for the ids an
//! endpoint issues itself.
//!
//! An endpoint's ids are `flow << 48 | seq` with sequence numbers issued mostly in order, so the
//! low bits of an id pick a slot in a small direct-mapped array that is almost never taken by
//! another id: an insert, look-up or removal is one index and one compare, not a hash probe. An id
//! whose slot is taken (a straggler still in flight a whole window later) goes to a map, and a
//! look-up that misses its slot (a late, duplicate or foreign id) asks the map when it holds any.
//! Every id is in at most one of the two; which one never shows outside this module.
//!
//! The array starts small and doubles while it is at least half full, up to its bound: a request
//! takes the slot after its predecessor's, so an array sized to the bound (1 024 slots of 80 bytes
//! for the simulator's clients) was walked through once per 1 024 requests, and nearly every issue
//! met a slot evicted from the cache since its last use. Sized to what is in flight, the few slots
//! a client cycles through stay cached.

use crate::ids::IdMap;

/// Most slots of the direct-mapped array: enough that ids a window apart are rarely in flight
/// together at the loads this harness drives, small enough that a sweep's scan stays cheap.
pub(crate) const SLOTS_MAX: usize = 1024;
/// Slots an array starts with when its bound allows: a few cache lines, more than a client at the
/// simulator's rates keeps in flight (it doubles beyond).
pub(crate) const SLOTS_START: usize = 16;

/// Values by `u64` id (see the module docs).
pub(crate) struct InflightTable<V> {
    /// Slot `id & mask` holds `(id, value)` for ids that found it free.
    slots: Vec<Option<(u64, V)>>,
    mask: u64,
    /// Most slots the array grows to (a power of two).
    slots_bound: usize,
    /// Ids whose slot was taken when they were inserted.
    overflow: IdMap<u64, V>,
    /// Occupied slots.
    slotted: usize,
}

impl<V> InflightTable<V> {
    /// A table for up to `inflight_max` ids at once: its slots grow to the next power of two, at
    /// most [`SLOTS_MAX`] (more ids than slots still fit, in the map).
    pub(crate) fn new(inflight_max: usize) -> InflightTable<V> {
        let slots_bound = inflight_max.clamp(1, SLOTS_MAX).next_power_of_two();
        InflightTable::with_slots(SLOTS_START.min(slots_bound), slots_bound)
    }

    /// A table with `slots` slots, growing to `slots_bound` (powers of two).
    fn with_slots(slots: usize, slots_bound: usize) -> InflightTable<V> {
        debug_assert!(slots.is_power_of_two() && slots_bound.is_power_of_two());
        debug_assert!(slots <= slots_bound);
        InflightTable {
            slots: empty_slots(slots),
            mask: slots as u64 - 1,
            slots_bound,
            overflow: IdMap::default(),
            slotted: 0,
        }
    }

    /// Ids held.
    pub(crate) fn len(&self) -> usize {
        self.slotted + self.overflow.len()
    }

    #[inline]
    fn slot_index(&self, id: u64) -> usize {
        // The mask is below the slot count, a `usize`: the cast keeps every bit it selects.
        (id & self.mask) as usize
    }

    /// True when `id` is held.
    #[inline]
    pub(crate) fn contains_key(&self, id: u64) -> bool {
        match &self.slots[self.slot_index(id)] {
            Some((held, _)) if *held == id => true,
            _ => !self.overflow.is_empty() && self.overflow.contains_key(&id),
        }
    }

    /// Holds `value` under `id`, which must not be held yet (callers check with
    /// [`Self::contains_key`] first: a duplicate is their error to report).
    #[inline]
    pub(crate) fn insert_new(&mut self, id: u64, value: V) {
        debug_assert!(!self.contains_key(id), "id {id:#x} is held already");
        if self.len() >= self.slots.len() / 2 && self.slots.len() < self.slots_bound {
            self.grow();
        }
        let index = self.slot_index(id);
        match &mut self.slots[index] {
            slot @ None => {
                *slot = Some((id, value));
                self.slotted += 1;
            }
            Some(_) => {
                self.overflow.insert(id, value);
            }
        }
    }

    /// Takes `id`'s value out, if held.
    #[inline]
    pub(crate) fn remove(&mut self, id: u64) -> Option<V> {
        let index = self.slot_index(id);
        let slot = &mut self.slots[index];
        if matches!(slot, Some((held, _)) if *held == id) {
            self.slotted -= 1;
            return slot.take().map(|(_, value)| value);
        }
        if self.overflow.is_empty() {
            return None;
        }
        self.overflow.remove(&id)
    }

    /// Doubles the array. Ids in distinct slots stay in distinct slots (the new mask keeps the
    /// old one's bits), so every slotted id moves to its new slot; the map's ids stay there.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let slots = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, empty_slots(slots));
        self.mask = slots as u64 - 1;
        for (id, value) in old.into_iter().flatten() {
            let index = self.slot_index(id);
            debug_assert!(self.slots[index].is_none(), "slot {index} taken twice");
            self.slots[index] = Some((id, value));
        }
    }

    /// Appends the ids whose values pass `keep` to `out`, in no particular order.
    pub(crate) fn ids_where(&self, mut keep: impl FnMut(&V) -> bool, out: &mut Vec<u64>) {
        if self.slotted > 0 {
            let slotted = self.slots.iter().flatten();
            out.extend(slotted.filter(|(_, v)| keep(v)).map(|&(id, _)| id));
        }
        out.extend(
            self.overflow
                .iter()
                .filter(|(_, v)| keep(v))
                .map(|(&id, _)| id),
        );
    }
}

/// `slots` empty slots.
fn empty_slots<V>(slots: usize) -> Vec<Option<(u64, V)>> {
    std::iter::repeat_with(|| None).take(slots).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    /// Slots in the tables under test: small, so that ids collide, wrap and fall back often.
    const TEST_SLOTS: usize = 4;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u32),
        Remove(u64),
        Contains(u64),
    }

    /// Ids of two flows with sequence numbers over four windows, and a few near the top of the
    /// 48-bit sequence space (wrapping the slot index).
    fn id() -> impl Strategy<Value = u64> {
        let seq = prop_oneof![0u64..16, ((1u64 << 48) - 6)..(1u64 << 48)];
        (0u64..2, seq).prop_map(|(flow, seq)| flow << 48 | seq)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (id(), any::<u32>()).prop_map(|(id, v)| Op::Insert(id, v)),
            id().prop_map(Op::Remove),
            id().prop_map(Op::Contains),
        ]
    }

    /// Applies `op` to the table and to a plain map; panics where they disagree.
    fn apply(table: &mut InflightTable<u32>, model: &mut HashMap<u64, u32>, op: &Op) {
        match *op {
            Op::Insert(id, v) => {
                assert_eq!(table.contains_key(id), model.contains_key(&id), "{op:?}");
                if let std::collections::hash_map::Entry::Vacant(slot) = model.entry(id) {
                    table.insert_new(id, v);
                    slot.insert(v);
                }
            }
            Op::Remove(id) => assert_eq!(table.remove(id), model.remove(&id), "{op:?}"),
            Op::Contains(id) => {
                assert_eq!(table.contains_key(id), model.contains_key(&id), "{op:?}")
            }
        }
        assert_eq!(table.len(), model.len());
    }

    proptest! {
        /// Any mix of inserts (duplicates refused by the caller's check), removals and look-ups
        /// answers as a plain map does, and the ids a filter selects are the map's.
        #[test]
        /// A table that starts with fewer slots than its bound grows while the ops run.
        #[test]
        fn the_table_answers_as_a_map(
            start_log2 in 0u32..3,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            let mut table = InflightTable::with_slots(1 << start_log2, TEST_SLOTS);
            let mut model = HashMap::new();
            for op in &ops {
                apply(&mut table, &mut model, op);
            }
            let mut held = Vec::new();
            table.ids_where(|v| v % 3 != 0, &mut held);
            held.sort_unstable();
            let mut expected: Vec<u64> =
                model.iter().filter(|(_, v)| *v % 3 != 0).map(|(&id, _)| id).collect();
            expected.sort_unstable();
            prop_assert_eq!(held, expected);
        }
    }

    #[test]
    fn a_straggler_falls_back_to_the_map_and_is_found_after_its_slot_frees() {
        let mut table = InflightTable::with_slots(TEST_SLOTS, TEST_SLOTS);
        table.insert_new(1, 10);
        table.insert_new(1 + TEST_SLOTS as u64, 20);
        assert_eq!(table.overflow.len(), 1, "the second id's slot was taken");
        assert_eq!(table.remove(1), Some(10));
        assert!(table.contains_key(1 + TEST_SLOTS as u64));
        assert!(!table.contains_key(1), "a removed id is gone");
        table.insert_new(1 + 2 * TEST_SLOTS as u64, 30);
        assert_eq!(table.remove(1 + TEST_SLOTS as u64), Some(20));
        assert_eq!(table.remove(1 + 2 * TEST_SLOTS as u64), Some(30));
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn slots_follow_the_bound_up_to_the_most() {
        let slots = |inflight_max| {
            let table = InflightTable::<u32>::new(inflight_max);
            (table.slots.len(), table.slots_bound)
        };
        assert_eq!(slots(1), (1, 1));
        assert_eq!(slots(5), (8, 8));
        assert_eq!(slots(SLOTS_START), (SLOTS_START, SLOTS_START));
        assert_eq!(slots(1 << 20), (SLOTS_START, SLOTS_MAX));
    }

    #[test]
    fn the_array_doubles_at_half_full_up_to_its_bound_and_keeps_every_id() {
        let mut table = InflightTable::with_slots(2, 8);
        // 1 and 2 in 2 slots: grown to 4 at the second id (1 of 2 held).
        table.insert_new(1, 10);
        table.insert_new(2, 20);
        assert_eq!(table.slots.len(), 4);
        // 5 shares 1's slot in 4 slots, not in 8: grown at 2 of 4 held, 1 moved, 5 slotted.
        table.insert_new(5, 50);
        assert_eq!((table.slots.len(), table.overflow.len()), (8, 0));
        // 3 of 8 held: no growth, and 9, which shares 1's slot in 8, goes to the map.
        table.insert_new(9, 90);
        assert_eq!((table.slots.len(), table.overflow.len()), (8, 1));
        // The bound stops the growth.
        for id in [3, 4, 6] {
            table.insert_new(id, id as u32 * 10);
        }
        assert_eq!(table.slots.len(), 8);
        for id in [1, 2, 5, 9, 3, 4, 6] {
            assert_eq!(table.remove(id), Some(id as u32 * 10), "id {id}");
        }
        assert_eq!(table.len(), 0);
    }
}
