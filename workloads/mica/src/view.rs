//! Read-side primitives over the three regions, shared by the reader (GET) and the writer
//! (SET/DELETE look-ups). Every read is bounds-checked: the regions may have been written by
//! another process, and garbage must give "no match" or an error, never a panic.

use crate::config::MicaConfig;
use crate::layout::{
    BUCKET_HEADER_BYTES, BUCKET_NEXT_EXTRA_OFFSET, BUCKET_VERSION_OFFSET, CHAIN_HOPS_MAX,
    ENTRY_BYTES, ITEM_HEADER_BYTES, ITEM_KEY_HASH_OFFSET, ITEM_KV_LENGTH_OFFSET, KEY_LENGTH_SHIFT,
    META_TAIL_OFFSET, VALUE_LENGTH_MASK, bucket_index, entry_offset, entry_tag, read_u32, read_u64,
    round_up8,
};

/// Buckets of one chain: the primary bucket, then up to `CHAIN_HOPS_MAX` extra buckets, as byte
/// offsets into the index region.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chain {
    offsets: [usize; CHAIN_HOPS_MAX + 1],
    len: usize,
}

impl Chain {
    pub(crate) fn offsets(&self) -> &[usize] {
        &self.offsets[..self.len]
    }

    pub(crate) fn primary(&self) -> usize {
        self.offsets[0]
    }

    pub(crate) fn last(&self) -> usize {
        self.offsets[self.len - 1]
    }

    pub(crate) fn hops(&self) -> usize {
        self.len - 1
    }
}

/// Where a key's entry sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRef {
    /// Byte offset of the bucket in the index region.
    pub(crate) bucket: usize,
    /// Entry number within the bucket.
    pub(crate) slot: usize,
}

/// A chain that cannot be followed: an extra-bucket index out of range, or too many hops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadChain {
    pub(crate) bucket: u32,
    pub(crate) next_extra: u32,
}

/// The decoded header of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ItemHeader {
    pub(crate) item_bytes: u64,
    pub(crate) key_len: usize,
    pub(crate) value_len: usize,
    pub(crate) key_hash: u64,
}

/// Shared read access to the regions of one table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub(crate) config: &'a MicaConfig,
    pub(crate) index: &'a [u8],
    pub(crate) log: &'a [u8],
    pub(crate) meta: &'a [u8],
}

impl<'a> View<'a> {
    pub(crate) fn primary_offset(&self, key_hash: u64) -> usize {
        bucket_index(key_hash, self.config.buckets) as usize * self.config.bucket_bytes()
    }

    /// Byte offset of extra bucket `j` (1-based); `None` when out of range.
    pub(crate) fn extra_offset(&self, j: u32) -> Option<usize> {
        if j == 0 || j > self.config.extra_buckets {
            return None;
        }
        let position = self.config.buckets as usize + (j as usize - 1);
        Some(position * self.config.bucket_bytes())
    }

    pub(crate) fn version(&self, bucket: usize) -> u32 {
        read_u32(self.index, bucket + BUCKET_VERSION_OFFSET).unwrap_or(1)
    }

    pub(crate) fn next_extra(&self, bucket: usize) -> u32 {
        read_u32(self.index, bucket + BUCKET_NEXT_EXTRA_OFFSET).unwrap_or(0)
    }

    pub(crate) fn entry(&self, at: SlotRef) -> u64 {
        read_u64(
            self.index,
            at.bucket + BUCKET_HEADER_BYTES + at.slot * ENTRY_BYTES,
        )
        .unwrap_or(0)
    }

    pub(crate) fn tail(&self) -> u64 {
        read_u64(self.meta, META_TAIL_OFFSET).unwrap_or(0)
    }

    /// The primary bucket of `key_hash` and its extra buckets.
    pub(crate) fn chain(&self, key_hash: u64) -> Result<Chain, BadChain> {
        let primary = self.primary_offset(key_hash);
        let mut chain = Chain {
            offsets: [0; CHAIN_HOPS_MAX + 1],
            len: 1,
        };
        chain.offsets[0] = primary;
        let mut next = self.next_extra(primary);
        while next != 0 {
            let bad = BadChain {
                bucket: bucket_index(key_hash, self.config.buckets),
                next_extra: next,
            };
            let offset = self.extra_offset(next).ok_or(bad)?;
            if chain.len > CHAIN_HOPS_MAX {
                return Err(bad);
            }
            chain.offsets[chain.len] = offset;
            chain.len += 1;
            next = self.next_extra(offset);
        }
        Ok(chain)
    }

    /// Every slot of a chain, in scan order.
    pub(crate) fn slots(&self, chain: &Chain) -> impl Iterator<Item = SlotRef> + use<> {
        let slots = self.config.slots.count();
        let offsets = *chain;
        (0..offsets.len).flat_map(move |b| {
            (0..slots).map(move |slot| SlotRef {
                bucket: offsets.offsets[b],
                slot,
            })
        })
    }

    /// Position of a log offset in the log region.
    pub(crate) fn log_position(&self, offset: u64) -> usize {
        (offset & (self.config.log_bytes - 1)) as usize
    }

    pub(crate) fn item_header(&self, offset: u64) -> Option<ItemHeader> {
        let at = self.log_position(offset);
        let kv = read_u32(self.log, at + ITEM_KV_LENGTH_OFFSET)?;
        Some(ItemHeader {
            item_bytes: read_u64(self.log, at)?,
            key_len: (kv >> KEY_LENGTH_SHIFT) as usize,
            value_len: (kv & VALUE_LENGTH_MASK) as usize,
            key_hash: read_u64(self.log, at + ITEM_KEY_HASH_OFFSET)?,
        })
    }

    /// The value bytes of the item at `offset`, if the header's lengths stay inside the region.
    pub(crate) fn item_value(&self, offset: u64, header: &ItemHeader) -> Option<&'a [u8]> {
        let start = self.log_position(offset) + ITEM_HEADER_BYTES + round_up8(header.key_len);
        self.log.get(start..start.checked_add(header.value_len)?)
    }

    /// Does the item at `offset` hold `key` (hash, then length and bytes, as MICA compares)?
    pub(crate) fn item_holds(&self, offset: u64, key_hash: u64, key: &[u8]) -> Option<ItemHeader> {
        let header = self.item_header(offset)?;
        if header.key_hash != key_hash || header.key_len != key.len() {
            return None;
        }
        let start = self.log_position(offset) + ITEM_HEADER_BYTES;
        let stored = self.log.get(start..start + key.len())?;
        (stored == key).then_some(header)
    }

    /// The first slot of the chain whose tag matches and whose item holds `key`.
    pub(crate) fn find_item(
        &self,
        chain: &Chain,
        key_hash: u64,
        tag: u16,
        key: &[u8],
    ) -> Option<SlotRef> {
        self.slots(chain).find(|&at| {
            let e = self.entry(at);
            entry_tag(e) == tag && self.item_holds(entry_offset(e), key_hash, key).is_some()
        })
    }

    /// The first slot of the chain with this tag (whatever key its item holds).
    pub(crate) fn find_same_tag(&self, chain: &Chain, tag: u16) -> Option<SlotRef> {
        self.slots(chain)
            .find(|&at| entry_tag(self.entry(at)) == tag)
    }

    /// The first empty slot of the chain.
    pub(crate) fn find_empty(&self, chain: &Chain) -> Option<SlotRef> {
        self.slots(chain).find(|&at| self.entry(at) == 0)
    }
}
