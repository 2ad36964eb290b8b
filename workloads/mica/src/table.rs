//! The writer: SET and DELETE with MICA's bucket locking (version odd while held), its victim
//! choice, the circular log, extra-bucket chains, and the cleanup of entries the log has passed.
//!
//! One writer per table (MICA's EREW/CREW: each partition has one writing core); any number of
//! readers may run the GET protocol concurrently on the same bytes.

use std::sync::atomic::{Ordering, fence};

use crate::config::{BucketEviction, MicaConfig};
use crate::error::{OpError, OpenError};
use crate::hash::key_hash;
use crate::layout::{
    BUCKET_HEADER_BYTES, BUCKET_NEXT_EXTRA_OFFSET, BUCKET_VERSION_OFFSET, CHAIN_HOPS_MAX,
    ENTRY_BYTES, ITEM_EXPIRE_OFFSET, ITEM_HEADER_BYTES, ITEM_KEY_HASH_OFFSET,
    ITEM_KV_LENGTH_OFFSET, ITEM_SIZE_OFFSET, KEY_BYTES_MAX, META_EXTRA_FREE_OFFSET, META_MAGIC,
    META_MAGIC_OFFSET, META_TAIL_OFFSET, OFFSET_BITS, OFFSET_MASK, VALUE_BYTES_MAX, bucket_index,
    distance_from_tail, entry, entry_offset, item_bytes, kv_length, offset_is_valid, read_u32,
    round_up8, tag, write_u32, write_u64,
};
use crate::reader::{
    GetOutcome, MicaReader, MicaRegions, check_region, config_from_meta, get_hashed,
};
use crate::view::{Chain, SlotRef, View};

/// The three regions of a table, writable (the owner's view).
#[derive(Debug)]
pub struct MicaRegionsMut<'a> {
    /// The `index` region: buckets, then extra buckets.
    pub index: &'a mut [u8],
    /// The `log` region: `log_bytes` of circular log plus `item_bytes_max` of tail mirror.
    pub log: &'a mut [u8],
    /// The `meta` region: magic, tail, extra-bucket free list, configuration echo.
    pub meta: &'a mut [u8],
}

/// What a SET did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetReport {
    /// How the item was stored.
    pub kind: SetKind,
    /// The item's 48-bit log offset (unchanged by an in-place update).
    pub offset: u64,
    /// A live item whose index entry this SET took, if any.
    pub evicted: Option<Eviction>,
}

/// How a SET stored its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetKind {
    /// The key was not in the index: a new item and a new entry.
    Inserted,
    /// The key's item was valid and large enough: its value was overwritten in place.
    UpdatedInPlace,
    /// The key was in the index but its item was too small or already overwritten by the log:
    /// a new item, same entry.
    Rewritten,
}

/// A live item dropped from the index to make room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    /// Key hash of the evicted item.
    pub key_hash: u64,
    /// Its 48-bit log offset.
    pub offset: u64,
    /// Why it was chosen.
    pub reason: EvictionReason,
}

/// Why a SET evicted an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionReason {
    /// The chain held another key with the same 16-bit tag; MICA reuses that entry.
    SameTag,
    /// The chain was full (and could not grow); the victim follows `BucketEviction`.
    BucketFull,
}

/// Counters of what the writer did, kept in process memory (not in the regions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MicaStats {
    /// SETs that inserted a new key.
    pub sets_inserted: u64,
    /// SETs that updated a value in place.
    pub sets_in_place: u64,
    /// SETs that appended a new item for a key already indexed.
    pub sets_rewritten: u64,
    /// Live items evicted because another key had the same tag.
    pub evictions_same_tag: u64,
    /// Live items evicted because the chain was full.
    pub evictions_bucket_full: u64,
    /// Entries reused whose items the log had already overwritten.
    pub stale_entries_reused: u64,
    /// Entries cleared by the cleanup that follows the log tail.
    pub entries_cleaned: u64,
    /// DELETEs that found their key.
    pub deletes: u64,
    /// Extra buckets currently chained.
    pub extra_buckets_in_use: u64,
}

/// A formatted table: the single writer's handle.
#[derive(Debug)]
pub struct MicaTable<'a> {
    config: MicaConfig,
    index: &'a mut [u8],
    log: &'a mut [u8],
    meta: &'a mut [u8],
    stats: MicaStats,
    cleanup_shift: u32,
}

/// MICA's cleanup walks the buckets as the tail moves through half the 48-bit offset space, so
/// every entry is checked before offsets wrap around and a stale one could look valid again.
fn cleanup_shift(buckets: u32) -> u32 {
    let half_space = 1u64 << (OFFSET_BITS - 1);
    let mut shift = 0;
    while (half_space >> shift) > u64::from(buckets) {
        shift += 1;
    }
    shift
}

impl<'a> MicaTable<'a> {
    /// Formats the regions for `config` (zeroes them, links the extra-bucket free list, writes
    /// the meta region) and returns the writer. Regions may be larger than needed.
    pub fn format(config: MicaConfig, regions: MicaRegionsMut<'a>) -> Result<Self, OpenError> {
        let table = Self::attach(config, regions)?;
        table.index.fill(0);
        table.log.fill(0);
        Ok(table.format_zeroed_parts())
    }

    /// [`MicaTable::format`] of regions that are all zeroes already (freshly created files or
    /// mappings): the index and the log are not written again, so their pages stay untouched
    /// until used — the log's pages beyond its tail are never faulted in. The bytes are those
    /// `format` leaves.
    pub fn format_zeroed(
        config: MicaConfig,
        regions: MicaRegionsMut<'a>,
    ) -> Result<Self, OpenError> {
        let table = Self::attach(config, regions)?;
        Ok(table.format_zeroed_parts())
    }

    /// The meta region and the extra buckets' free list, over a zeroed index and log.
    fn format_zeroed_parts(self) -> Self {
        let config = self.config;
        let table = self;
        table.meta.fill(0);
        write_u64(table.meta, META_MAGIC_OFFSET, META_MAGIC);
        write_u64(table.meta, META_TAIL_OFFSET, 0);
        let bucket_bytes = config.bucket_bytes();
        for j in 1..=config.extra_buckets {
            let next = if j == config.extra_buckets { 0 } else { j + 1 };
            let at = (config.buckets as usize + j as usize - 1) * bucket_bytes;
            write_u32(table.index, at + BUCKET_NEXT_EXTRA_OFFSET, next);
        }
        let free_head = u32::from(config.extra_buckets > 0);
        write_u32(table.meta, META_EXTRA_FREE_OFFSET, free_head);
        config.write_meta(table.meta);
        table
    }

    /// Opens regions formatted earlier (e.g. by another process); the configuration comes from
    /// `meta`. Statistics start at zero, except the count of chained extra buckets.
    pub fn open(regions: MicaRegionsMut<'a>) -> Result<Self, OpenError> {
        let mut table = Self::reattach(regions)?;
        table.stats.extra_buckets_in_use = table.count_chained_extra_buckets();
        Ok(table)
    }

    /// Attaches to a formatted table like [`MicaTable::open`] but without recounting the chained
    /// extra buckets (a scan of every bucket): for a writer that re-attaches per operation, such
    /// as the host's native SET. Its statistics start at zero.
    pub fn reattach(regions: MicaRegionsMut<'a>) -> Result<Self, OpenError> {
        let config = config_from_meta(regions.meta)?;
        Self::attach(config, regions)
    }

    fn attach(config: MicaConfig, regions: MicaRegionsMut<'a>) -> Result<Self, OpenError> {
        let sizes = config.validate()?;
        check_region("index", regions.index.len(), sizes.index_bytes)?;
        check_region("log", regions.log.len(), sizes.log_bytes)?;
        check_region("meta", regions.meta.len(), sizes.meta_bytes)?;
        Ok(MicaTable {
            config,
            index: &mut regions.index[..sizes.index_bytes],
            log: &mut regions.log[..sizes.log_bytes],
            meta: &mut regions.meta[..sizes.meta_bytes],
            stats: MicaStats::default(),
            cleanup_shift: cleanup_shift(config.buckets),
        })
    }

    fn count_chained_extra_buckets(&self) -> u64 {
        let view = self.view();
        (0..self.config.buckets)
            .map(|b| {
                let primary = b as usize * self.config.bucket_bytes();
                let mut hops = 0u64;
                let mut next = view.next_extra(primary);
                while let Some(at) = view
                    .extra_offset(next)
                    .filter(|_| hops < CHAIN_HOPS_MAX as u64)
                {
                    hops += 1;
                    next = view.next_extra(at);
                }
                hops
            })
            .sum()
    }

    /// The table's configuration.
    pub fn config(&self) -> &MicaConfig {
        &self.config
    }

    /// What the writer has done since format/open.
    pub fn stats(&self) -> &MicaStats {
        &self.stats
    }

    /// The log tail: total bytes ever appended (monotonic).
    pub fn tail(&self) -> u64 {
        self.view().tail()
    }

    pub(crate) fn view(&self) -> View<'_> {
        View {
            config: &self.config,
            index: self.index,
            log: self.log,
            meta: self.meta,
        }
    }

    /// A reader over the same regions.
    pub fn reader(&self) -> MicaReader<'_> {
        // The regions were checked when this table was formatted or opened.
        MicaReader::from_checked(self.config, self.regions())
    }

    /// The three regions, read-only: what a GET reads (e.g. the eBPF GET of `vm::MicaVm`).
    pub fn regions(&self) -> MicaRegions<'_> {
        MicaRegions {
            index: self.index,
            log: self.log,
            meta: self.meta,
        }
    }

    /// GET (see `MicaReader::get`).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        let mut value = Vec::new();
        Ok(match self.get_into(key, &mut value)? {
            GetOutcome::Hit => Some(value),
            GetOutcome::Miss => None,
        })
    }

    /// GET into a caller's buffer (see `MicaReader::get_into`).
    pub fn get_into(&self, key: &[u8], value: &mut Vec<u8>) -> Result<GetOutcome, OpError> {
        if key.len() > KEY_BYTES_MAX {
            return Err(OpError::KeyTooLong {
                key_bytes: key.len(),
            });
        }
        get_hashed(self.view(), key, key_hash(key), value)
    }

    /// SET: stores `value` under `key`, possibly evicting another key (see `SetReport`).
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<SetReport, OpError> {
        if key.len() > KEY_BYTES_MAX {
            return Err(OpError::KeyTooLong {
                key_bytes: key.len(),
            });
        }
        if value.len() > VALUE_BYTES_MAX {
            return Err(OpError::ValueTooLong {
                value_bytes: value.len(),
            });
        }
        let size = item_bytes(key.len(), value.len());
        if size > self.config.item_bytes_max as usize {
            return Err(OpError::ItemTooLarge {
                item_bytes: size,
                item_bytes_max: self.config.item_bytes_max,
            });
        }
        let item = NewItem {
            key_hash: key_hash(key),
            key,
            value,
            size,
        };
        let chain = self.chain(item.key_hash)?;
        let found = self
            .view()
            .find_item(&chain, item.key_hash, tag(item.key_hash), key);
        let tail_before = self.tail();
        let version = self.lock(chain.primary(), item.key_hash)?;
        let report = match found {
            Some(at) => self.overwrite(at, &item),
            None => self.insert(&chain, &item),
        };
        self.unlock(chain.primary(), version);
        self.cleanup(tail_before, self.tail());
        Ok(report)
    }

    /// DELETE: removes `key`'s entry; `false` if it was not indexed.
    pub fn delete(&mut self, key: &[u8]) -> Result<bool, OpError> {
        if key.len() > KEY_BYTES_MAX {
            return Err(OpError::KeyTooLong {
                key_bytes: key.len(),
            });
        }
        let hash = key_hash(key);
        let chain = self.chain(hash)?;
        let Some(at) = self.view().find_item(&chain, hash, tag(hash), key) else {
            return Ok(false);
        };
        let version = self.lock(chain.primary(), hash)?;
        self.set_entry(at, 0);
        self.fill_hole(&chain, at);
        self.unlock(chain.primary(), version);
        self.stats.deletes += 1;
        Ok(true)
    }

    fn chain(&self, hash: u64) -> Result<Chain, OpError> {
        self.view()
            .chain(hash)
            .map_err(|bad| OpError::CorruptChain {
                bucket: bad.bucket,
                next_extra: bad.next_extra,
            })
    }

    /// Makes the bucket version odd: readers retry until `unlock`.
    fn lock(&mut self, primary: usize, hash: u64) -> Result<u32, OpError> {
        let version = self.view().version(primary);
        if version & 1 == 1 {
            let bucket = bucket_index(hash, self.config.buckets);
            return Err(OpError::BucketLocked { bucket, version });
        }
        write_u32(
            self.index,
            primary + BUCKET_VERSION_OFFSET,
            version.wrapping_add(1),
        );
        fence(Ordering::Release);
        Ok(version)
    }

    fn unlock(&mut self, primary: usize, version: u32) {
        fence(Ordering::Release);
        write_u32(
            self.index,
            primary + BUCKET_VERSION_OFFSET,
            version.wrapping_add(2),
        );
    }

    fn set_entry(&mut self, at: SlotRef, value: u64) {
        write_u64(
            self.index,
            at.bucket + BUCKET_HEADER_BYTES + at.slot * ENTRY_BYTES,
            value,
        );
    }

    fn overwrite(&mut self, at: SlotRef, item: &NewItem<'_>) -> SetReport {
        let offset = entry_offset(self.view().entry(at));
        let valid = offset_is_valid(self.tail(), offset, self.config.log_bytes);
        let room = self.view().item_header(offset).map_or(0, |h| h.item_bytes);
        if valid && room >= item.size as u64 {
            self.write_value_in_place(offset, item.key.len(), item.value);
            self.stats.sets_in_place += 1;
            return SetReport {
                kind: SetKind::UpdatedInPlace,
                offset,
                evicted: None,
            };
        }
        let new_offset = self.append(item);
        self.set_entry(at, entry(tag(item.key_hash), new_offset));
        self.stats.sets_rewritten += 1;
        SetReport {
            kind: SetKind::Rewritten,
            offset: new_offset,
            evicted: None,
        }
    }

    fn insert(&mut self, chain: &Chain, item: &NewItem<'_>) -> SetReport {
        let view = self.view();
        let (at, reason) = if let Some(at) = view.find_same_tag(chain, tag(item.key_hash)) {
            (at, Some(EvictionReason::SameTag))
        } else if let Some(at) = view.find_empty(chain) {
            (at, None)
        } else if let Some(at) = self.grow_chain(chain) {
            (at, None)
        } else {
            (self.pick_victim(chain), Some(EvictionReason::BucketFull))
        };
        let evicted = reason.and_then(|reason| self.note_victim(at, reason));
        let offset = self.append(item);
        self.set_entry(at, entry(tag(item.key_hash), offset));
        self.stats.sets_inserted += 1;
        SetReport {
            kind: SetKind::Inserted,
            offset,
            evicted,
        }
    }

    /// Records the entry at `at` as evicted if its item is still live.
    fn note_victim(&mut self, at: SlotRef, reason: EvictionReason) -> Option<Eviction> {
        let view = self.view();
        let offset = entry_offset(view.entry(at));
        let live = offset_is_valid(view.tail(), offset, self.config.log_bytes);
        let header = view.item_header(offset).filter(|_| live);
        let Some(header) = header else {
            self.stats.stale_entries_reused += 1;
            return None;
        };
        match reason {
            EvictionReason::SameTag => self.stats.evictions_same_tag += 1,
            EvictionReason::BucketFull => self.stats.evictions_bucket_full += 1,
        }
        Some(Eviction {
            key_hash: header.key_hash,
            offset,
            reason,
        })
    }

    /// The chain's victim by distance from the log tail (see `BucketEviction`).
    fn pick_victim(&self, chain: &Chain) -> SlotRef {
        let view = self.view();
        let tail = view.tail();
        let distance = |at: &SlotRef| distance_from_tail(tail, entry_offset(view.entry(*at)));
        let mut slots = view.slots(chain);
        let first = slots.next().unwrap_or(SlotRef {
            bucket: chain.primary(),
            slot: 0,
        });
        slots.fold(first, |best, at| {
            let better = match self.config.eviction {
                BucketEviction::Oldest => distance(&at) > distance(&best),
                BucketEviction::NewestAsReleasedCode => distance(&at) < distance(&best),
            };
            if better { at } else { best }
        })
    }

    /// Chains a free extra bucket after the last one, if the chain may grow and one is free.
    fn grow_chain(&mut self, chain: &Chain) -> Option<SlotRef> {
        if chain.hops() >= CHAIN_HOPS_MAX {
            return None;
        }
        let head = read_u32(self.meta, META_EXTRA_FREE_OFFSET).unwrap_or(0);
        let at = self.view().extra_offset(head)?;
        let next_free = self.view().next_extra(at);
        write_u32(self.meta, META_EXTRA_FREE_OFFSET, next_free);
        write_u32(self.index, at + BUCKET_NEXT_EXTRA_OFFSET, 0);
        write_u32(self.index, chain.last() + BUCKET_NEXT_EXTRA_OFFSET, head);
        self.stats.extra_buckets_in_use += 1;
        Some(SlotRef {
            bucket: at,
            slot: 0,
        })
    }

    /// MICA's `fill_hole`: after a DELETE, move an entry from the chain's last extra bucket into
    /// the hole, and return that bucket to the free list once it is empty.
    fn fill_hole(&mut self, chain: &Chain, hole: SlotRef) {
        let offsets = chain.offsets();
        if offsets.len() < 2 || hole.bucket == chain.last() {
            return;
        }
        let last = chain.last();
        let slots = self.config.slots.count();
        let view = self.view();
        let occupied: Vec<usize> = (0..slots)
            .filter(|&s| {
                view.entry(SlotRef {
                    bucket: last,
                    slot: s,
                }) != 0
            })
            .collect();
        if let Some(&moved) = occupied.first() {
            let moved_ref = SlotRef {
                bucket: last,
                slot: moved,
            };
            let value = view.entry(moved_ref);
            self.set_entry(hole, value);
            self.set_entry(moved_ref, 0);
        }
        if occupied.len() <= 1 {
            let prev = offsets[offsets.len() - 2];
            write_u32(self.index, prev + BUCKET_NEXT_EXTRA_OFFSET, 0);
            let j = (last / self.config.bucket_bytes() - self.config.buckets as usize + 1) as u32;
            let head = read_u32(self.meta, META_EXTRA_FREE_OFFSET).unwrap_or(0);
            write_u32(self.index, last + BUCKET_NEXT_EXTRA_OFFSET, head);
            write_u32(self.meta, META_EXTRA_FREE_OFFSET, j);
            self.stats.extra_buckets_in_use -= 1;
        }
    }

    /// Appends an item at the log tail and returns its 48-bit offset. The tail moves first, so
    /// readers see the bytes about to be overwritten as invalid before they change.
    fn append(&mut self, item: &NewItem<'_>) -> u64 {
        let tail = self.tail();
        write_u64(
            self.meta,
            META_TAIL_OFFSET,
            tail.wrapping_add(item.size as u64),
        );
        fence(Ordering::Release);
        let log_bytes = self.config.log_bytes as usize;
        let at = (tail & (self.config.log_bytes - 1)) as usize;
        let end = at + item.size;
        let bytes = &mut self.log[at..end];
        bytes[ITEM_SIZE_OFFSET..ITEM_SIZE_OFFSET + 8]
            .copy_from_slice(&(item.size as u64).to_le_bytes());
        bytes[ITEM_EXPIRE_OFFSET..ITEM_EXPIRE_OFFSET + 4].fill(0);
        bytes[ITEM_KEY_HASH_OFFSET..ITEM_KEY_HASH_OFFSET + 8]
            .copy_from_slice(&item.key_hash.to_le_bytes());
        let key_end = ITEM_HEADER_BYTES + round_up8(item.key.len());
        bytes[ITEM_HEADER_BYTES..key_end].fill(0);
        bytes[ITEM_HEADER_BYTES..ITEM_HEADER_BYTES + item.key.len()].copy_from_slice(item.key);
        self.write_value_in_place(tail & OFFSET_MASK, item.key.len(), item.value);
        if end > log_bytes {
            // The part past the end is the start of the next lap: keep both copies, as MICA's
            // double mapping of the pool does.
            self.log.copy_within(log_bytes..end, 0);
        }
        tail & OFFSET_MASK
    }

    /// Writes the kv length word and the (zero-padded) value of the item at `offset`.
    fn write_value_in_place(&mut self, offset: u64, key_len: usize, value: &[u8]) {
        let at = (offset & (self.config.log_bytes - 1)) as usize;
        write_u32(
            self.log,
            at + ITEM_KV_LENGTH_OFFSET,
            kv_length(key_len, value.len()),
        );
        write_u32(self.log, at + ITEM_EXPIRE_OFFSET, 0);
        let start = at + ITEM_HEADER_BYTES + round_up8(key_len);
        let padded = &mut self.log[start..start + round_up8(value.len())];
        padded.fill(0);
        padded[..value.len()].copy_from_slice(value);
        let log_bytes = self.config.log_bytes as usize;
        let end = start + round_up8(value.len());
        if end > log_bytes {
            let from = start.max(log_bytes);
            self.log.copy_within(from..end, from - log_bytes);
        }
    }

    /// MICA's `cleanup_bucket`: clear entries whose items the log has overwritten, in the
    /// buckets that the tail's advance from `old_tail` to `new_tail` maps to.
    fn cleanup(&mut self, old_tail: u64, new_tail: u64) {
        let mask = u64::from(self.config.buckets - 1);
        let mut bucket = (old_tail >> self.cleanup_shift) & mask;
        let end = (new_tail >> self.cleanup_shift) & mask;
        for _ in 0..self.config.buckets {
            if bucket == end {
                break;
            }
            self.clean_bucket(bucket as u32);
            bucket = (bucket + 1) & mask;
        }
    }

    fn clean_bucket(&mut self, bucket: u32) {
        let primary = bucket as usize * self.config.bucket_bytes();
        let hash_of_bucket = u64::from(bucket) << crate::layout::BUCKET_HASH_SHIFT;
        let Ok(chain) = self.chain(hash_of_bucket) else {
            return;
        };
        let Ok(version) = self.lock(primary, hash_of_bucket) else {
            return;
        };
        let tail = self.tail();
        let stale: Vec<SlotRef> = self
            .view()
            .slots(&chain)
            .filter(|&at| {
                let e = self.view().entry(at);
                e != 0 && !offset_is_valid(tail, entry_offset(e), self.config.log_bytes)
            })
            .collect();
        for at in stale {
            self.set_entry(at, 0);
            self.stats.entries_cleaned += 1;
        }
        self.unlock(primary, version);
    }
}

/// An item about to be written.
struct NewItem<'k> {
    key_hash: u64,
    key: &'k [u8],
    value: &'k [u8],
    size: usize,
}
