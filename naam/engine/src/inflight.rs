//! The client endpoint's requests in flight by request id: a map with a fast path for the ids an
//! endpoint issues itself.
//!
//! An endpoint's ids are `flow << 48 | seq` with sequence numbers issued mostly in order, so the
//! low bits of an id pick a slot in a small direct-mapped array that is almost never taken by
//! another id: an insert, look-up or removal is one index and one compare, not a hash probe. An id
//! whose slot is taken (a straggler still in flight a whole window later) goes to a map, and a
//! look-up that misses its slot (a late, duplicate or foreign id) asks the map when it holds any.
//! Every id is in at most one of the two; which one never shows outside this module.

use crate::ids::IdMap;

/// Most slots of the direct-mapped array: enough that ids a window apart are rarely in flight
/// together at the loads this harness drives, small enough that a sweep's scan stays cheap.
pub(crate) const SLOTS_MAX: usize = 1024;

/// Values by `u64` id (see the module docs).
pub(crate) struct InflightTable<V> {
    /// Slot `id & mask` holds `(id, value)` for ids that found it free.
    slots: Vec<Option<(u64, V)>>,
    mask: u64,
    /// Ids whose slot was taken when they were inserted.
    overflow: IdMap<u64, V>,
    /// Occupied slots.
    slotted: usize,
}

impl<V> InflightTable<V> {
    /// A table for up to `inflight_max` ids at once: its slots are the next power of two, at most
    /// [`SLOTS_MAX`] (more ids than slots still fit, in the map).
    pub(crate) fn new(inflight_max: usize) -> InflightTable<V> {
        InflightTable::with_slots(inflight_max.clamp(1, SLOTS_MAX).next_power_of_two())
    }

    /// A table with `slots` slots (a power of two).
    fn with_slots(slots: usize) -> InflightTable<V> {
        debug_assert!(slots.is_power_of_two());
        InflightTable {
            slots: std::iter::repeat_with(|| None).take(slots).collect(),
            mask: slots as u64 - 1,
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
        fn the_table_answers_as_a_map(ops in proptest::collection::vec(op(), 0..200)) {
            let mut table = InflightTable::with_slots(TEST_SLOTS);
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
        let mut table = InflightTable::with_slots(TEST_SLOTS);
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
        assert_eq!(InflightTable::<u32>::new(1).slots.len(), 1);
        assert_eq!(InflightTable::<u32>::new(5).slots.len(), 8);
        assert_eq!(InflightTable::<u32>::new(1 << 20).slots.len(), SLOTS_MAX);
    }
}
