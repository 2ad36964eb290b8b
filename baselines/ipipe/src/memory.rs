//! Distributed memory objects: a side's allocator and each actor's object table.
//!
//! iPipe's actors never hold pointers to their state: they allocate *objects* through the
//! runtime (`dmo_malloc`) and name them by id in every operation (`dmo_memset`, `dmo_memcpy`,
//! `dmo_memmove`, `dmo_free`). The runtime records each object as (object id, actor id, start
//! address, size) in the actor's object table, which is what lets it move an actor's state to
//! the host and back: the addresses change, the ids do not.
//!
//! On the NIC iPipe allocates with dlmalloc, on the host with glibc's malloc. Here one
//! [`Allocator`] per side hands out addresses first-fit from the side's memory window
//! (coalescing freed extents), so capacity and fragmentation are accounted as a real allocator
//! would; each object's bytes are held in their own buffer, so an address is the object's place
//! in the side's memory accounting, not a pointer the actor could forge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{ActorId, ObjectId};

/// Alignment of every allocation (a cache line).
pub const OBJECT_ALIGN_BYTES: u64 = 64;
/// Objects one actor may own.
pub const OBJECTS_PER_ACTOR_MAX: usize = 64;
/// Largest single object (a MICA log of 2^34 bytes fits).
pub const OBJECT_BYTES_MAX: u64 = 1 << 35;
/// First address of a side's window (non-zero, so that 0 is never a valid address).
pub const WINDOW_BASE: u64 = 1 << 32;

/// One row of an actor's object table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// The object's id (stable across migration).
    pub object: ObjectId,
    /// Its owner.
    pub actor: ActorId,
    /// Start address in the side's memory window.
    pub start: u64,
    /// Bytes.
    pub size: u64,
}

/// Why an object operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DmoError {
    /// The side's memory has no free extent this large.
    #[error("out of memory: no free extent of {size} bytes ({free} bytes free in total)")]
    OutOfMemory {
        /// Bytes asked for.
        size: u64,
        /// Bytes free on the side.
        free: u64,
    },
    /// Zero bytes, or more than [`OBJECT_BYTES_MAX`].
    #[error("object size {size} is not in 1..={OBJECT_BYTES_MAX}")]
    BadSize {
        /// Bytes asked for.
        size: u64,
    },
    /// The actor already owns [`OBJECTS_PER_ACTOR_MAX`] objects.
    #[error("actor {actor:?} already owns {OBJECTS_PER_ACTOR_MAX} objects")]
    TooManyObjects {
        /// The actor.
        actor: ActorId,
    },
    /// The actor owns no object with this id.
    #[error("actor {actor:?} owns no object {object:?}")]
    NoSuchObject {
        /// The actor.
        actor: ActorId,
        /// The id given.
        object: ObjectId,
    },
    /// A range outside the object.
    #[error("bytes [{offset}, +{len}) are outside object {object:?} of {size} bytes")]
    OutOfBounds {
        /// The object.
        object: ObjectId,
        /// Offset given.
        offset: u64,
        /// Length given.
        len: u64,
        /// The object's size.
        size: u64,
    },
}

/// First-fit allocation of addresses in a side's memory window.
#[derive(Debug, Clone)]
pub struct Allocator {
    capacity_bytes: u64,
    used_bytes: u64,
    /// Free extents: start → length, disjoint and coalesced.
    free: BTreeMap<u64, u64>,
}

fn aligned(size: u64) -> u64 {
    size.div_ceil(OBJECT_ALIGN_BYTES) * OBJECT_ALIGN_BYTES
}

impl Allocator {
    /// A window of `capacity_bytes` (rounded down to the alignment), all free.
    pub fn new(capacity_bytes: u64) -> Allocator {
        let capacity_bytes = capacity_bytes / OBJECT_ALIGN_BYTES * OBJECT_ALIGN_BYTES;
        let mut free = BTreeMap::new();
        if capacity_bytes > 0 {
            free.insert(WINDOW_BASE, capacity_bytes);
        }
        Allocator {
            capacity_bytes,
            used_bytes: 0,
            free,
        }
    }

    /// Bytes handed out (aligned sizes).
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// Bytes still free (possibly fragmented).
    pub fn free_bytes(&self) -> u64 {
        self.capacity_bytes - self.used_bytes
    }

    /// The start address of a fresh extent of `size` bytes (first fit).
    pub fn alloc(&mut self, size: u64) -> Result<u64, DmoError> {
        if size == 0 || size > OBJECT_BYTES_MAX {
            return Err(DmoError::BadSize { size });
        }
        let need = aligned(size);
        let found = self.free.iter().find(|&(_, &len)| len >= need);
        let Some((&start, &len)) = found else {
            return Err(DmoError::OutOfMemory {
                size,
                free: self.free_bytes(),
            });
        };
        self.free.remove(&start);
        if len > need {
            self.free.insert(start + need, len - need);
        }
        self.used_bytes += need;
        Ok(start)
    }

    /// Returns the extent at `start` of `size` bytes (as allocated), merging it with free
    /// neighbours.
    pub fn free(&mut self, start: u64, size: u64) {
        let mut start = start;
        let mut len = aligned(size);
        debug_assert!(self.used_bytes >= len, "freeing more than was allocated");
        self.used_bytes -= len;
        if let Some((&prev, &prev_len)) = self.free.range(..start).next_back()
            && prev + prev_len == start
        {
            self.free.remove(&prev);
            start = prev;
            len += prev_len;
        }
        if let Some(&next_len) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += next_len;
        }
        self.free.insert(start, len);
    }

    /// True if every size in `sizes` could be allocated now, in order (first fit, simulated).
    pub fn can_fit(&self, sizes: &[u64]) -> bool {
        let mut trial = self.clone();
        sizes.iter().all(|&size| trial.alloc(size).is_ok())
    }
}

/// One object: its table row and its bytes.
#[derive(Debug)]
pub struct Object {
    /// The table row.
    pub entry: ObjectEntry,
    bytes: Box<[u8]>,
}

/// An object's id and bytes on their way to the other side (phase 3 of a migration).
#[derive(Debug)]
pub struct ObjectImage {
    /// The object's id.
    pub object: ObjectId,
    /// Its bytes.
    pub bytes: Box<[u8]>,
}

/// One actor's object table on one side.
#[derive(Debug)]
pub struct ObjectTable {
    actor: ActorId,
    next_id: u32,
    objects: Vec<Object>,
}

impl ObjectTable {
    /// An empty table for `actor`.
    pub fn new(actor: ActorId) -> ObjectTable {
        ObjectTable {
            actor,
            next_id: 1,
            objects: Vec::new(),
        }
    }

    /// The table's rows.
    pub fn entries(&self) -> impl Iterator<Item = &ObjectEntry> {
        self.objects.iter().map(|o| &o.entry)
    }

    /// Bytes of all objects.
    pub fn bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.entry.size).sum()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// True when the actor owns no object here.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    fn index(&self, object: ObjectId) -> Result<usize, DmoError> {
        self.objects
            .iter()
            .position(|o| o.entry.object == object)
            .ok_or(DmoError::NoSuchObject {
                actor: self.actor,
                object,
            })
    }

    /// `dmo_malloc`: a zeroed object of `size` bytes at an address from `allocator`.
    pub fn malloc(&mut self, allocator: &mut Allocator, size: u64) -> Result<ObjectId, DmoError> {
        if self.objects.len() >= OBJECTS_PER_ACTOR_MAX {
            return Err(DmoError::TooManyObjects { actor: self.actor });
        }
        let object = ObjectId(self.next_id);
        if size == 0 || size > OBJECT_BYTES_MAX {
            return Err(DmoError::BadSize { size });
        }
        // `adopt` moves `next_id` past this id.
        self.adopt(allocator, object, vec![0; size as usize].into_boxed_slice())?;
        Ok(object)
    }

    /// Places an object that arrives with its id and bytes (the end of a migration).
    pub fn adopt(
        &mut self,
        allocator: &mut Allocator,
        object: ObjectId,
        bytes: Box<[u8]>,
    ) -> Result<(), DmoError> {
        let size = bytes.len() as u64;
        let start = allocator.alloc(size)?;
        self.next_id = self.next_id.max(object.0 + 1);
        self.objects.push(Object {
            entry: ObjectEntry {
                object,
                actor: self.actor,
                start,
                size,
            },
            bytes,
        });
        Ok(())
    }

    /// `dmo_free`.
    pub fn free(&mut self, allocator: &mut Allocator, object: ObjectId) -> Result<(), DmoError> {
        let at = self.index(object)?;
        let gone = self.objects.swap_remove(at);
        allocator.free(gone.entry.start, gone.entry.size);
        Ok(())
    }

    /// Every object leaves this side: frees their addresses and returns their bytes.
    pub fn take_all(&mut self, allocator: &mut Allocator) -> Vec<ObjectImage> {
        self.objects
            .drain(..)
            .map(|o| {
                allocator.free(o.entry.start, o.entry.size);
                ObjectImage {
                    object: o.entry.object,
                    bytes: o.bytes,
                }
            })
            .collect()
    }

    /// The bytes of `object`.
    pub fn get(&self, object: ObjectId) -> Result<&[u8], DmoError> {
        Ok(&self.objects[self.index(object)?].bytes)
    }

    /// The bytes of `object`, writable.
    pub fn get_mut(&mut self, object: ObjectId) -> Result<&mut [u8], DmoError> {
        let at = self.index(object)?;
        Ok(&mut self.objects[at].bytes)
    }

    /// Several distinct objects at once, writable (e.g. MICA's index, log and meta).
    pub fn get_many_mut<const N: usize>(
        &mut self,
        objects: [ObjectId; N],
    ) -> Result<[&mut [u8]; N], DmoError> {
        let mut at = [0usize; N];
        for (slot, object) in at.iter_mut().zip(objects) {
            *slot = self.index(object)?;
        }
        let found = self
            .objects
            .get_disjoint_mut(at)
            .map_err(|_| DmoError::NoSuchObject {
                actor: self.actor,
                object: objects[0],
            })?;
        Ok(found.map(|o| &mut *o.bytes))
    }

    fn range(&self, object: ObjectId, offset: u64, len: u64) -> Result<(usize, usize), DmoError> {
        let size = self.get(object)?.len() as u64;
        let end = offset.checked_add(len).filter(|&end| end <= size);
        let end = end.ok_or(DmoError::OutOfBounds {
            object,
            offset,
            len,
            size,
        })?;
        Ok((offset as usize, end as usize))
    }

    /// `dmo_memset`: `len` bytes of `object` from `offset` set to `byte`.
    pub fn memset(
        &mut self,
        object: ObjectId,
        offset: u64,
        byte: u8,
        len: u64,
    ) -> Result<(), DmoError> {
        let (from, to) = self.range(object, offset, len)?;
        self.get_mut(object)?[from..to].fill(byte);
        Ok(())
    }

    /// `dmo_memcpy` / `dmo_memmove`: `len` bytes from `src` at `src_offset` to `dst` at
    /// `dst_offset` (the same object may overlap itself: ranges are moved as by `memmove`).
    pub fn memmove(
        &mut self,
        dst: ObjectId,
        dst_offset: u64,
        src: ObjectId,
        src_offset: u64,
        len: u64,
    ) -> Result<(), DmoError> {
        let (s_from, s_to) = self.range(src, src_offset, len)?;
        let (d_from, _) = self.range(dst, dst_offset, len)?;
        if src == dst {
            self.get_mut(dst)?.copy_within(s_from..s_to, d_from);
            return Ok(());
        }
        let [d, s] = self.get_many_mut([dst, src])?;
        d[d_from..d_from + (s_to - s_from)].copy_from_slice(&s[s_from..s_to]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_reuses_freed_extents_and_coalesces_neighbours() {
        let mut a = Allocator::new(1024);
        let x = a.alloc(100).unwrap(); // 128 bytes (aligned)
        let y = a.alloc(64).unwrap();
        let z = a.alloc(64).unwrap();
        assert_eq!(
            (x, y, z),
            (WINDOW_BASE, WINDOW_BASE + 128, WINDOW_BASE + 192)
        );
        assert_eq!(a.used_bytes(), 256);
        a.free(x, 100);
        assert_eq!(
            a.alloc(64).unwrap(),
            WINDOW_BASE,
            "the first free extent fits"
        );
        a.free(WINDOW_BASE, 64);
        a.free(y, 64);
        assert_eq!(
            a.alloc(192).unwrap(),
            WINDOW_BASE,
            "x and y coalesced into 192 bytes"
        );
        assert_eq!(
            a.alloc(1024),
            Err(DmoError::OutOfMemory {
                size: 1024,
                free: 1024 - 256
            })
        );
        assert!(a.can_fit(&[512, 256]) && !a.can_fit(&[512, 512]));
        assert_eq!(a.alloc(0), Err(DmoError::BadSize { size: 0 }));
    }

    #[test]
    fn dmo_operations_are_bounded_by_the_object() {
        let mut a = Allocator::new(4096);
        let mut t = ObjectTable::new(ActorId(3));
        let o = t.malloc(&mut a, 16).unwrap();
        let p = t.malloc(&mut a, 16).unwrap();
        t.memset(o, 4, 0xab, 8).unwrap();
        t.memmove(p, 0, o, 0, 16).unwrap();
        t.memmove(p, 1, p, 0, 15).unwrap();
        assert_eq!(&t.get(p).unwrap()[..6], &[0, 0, 0, 0, 0, 0xab]);
        let err = t.memset(o, 10, 0, 8).unwrap_err();
        assert_eq!(
            err,
            DmoError::OutOfBounds {
                object: o,
                offset: 10,
                len: 8,
                size: 16
            }
        );
        let entries: Vec<_> = t
            .entries()
            .map(|e| (e.object.0, e.actor.0, e.start, e.size))
            .collect();
        assert_eq!(
            entries,
            [(1, 3, WINDOW_BASE, 16), (2, 3, WINDOW_BASE + 64, 16)]
        );
        t.free(&mut a, o).unwrap();
        assert_eq!(
            t.get(o),
            Err(DmoError::NoSuchObject {
                actor: ActorId(3),
                object: o
            })
        );
    }
}
