//! Native code shared between programs that run the same instructions: an embedder-owned cache,
//! so registering one function for hundreds of tenants compiles it once.
//!
//! What the JIT emits depends on the decoded ops and the entry index alone (and on the host
//! ISA, fixed for the process): constants, globals, helper functions and region addresses are
//! read at run time through the VM's slot table and the `JitCtx`, and the code has no
//! relocations (`jit::translate::compile` refuses any). So programs with equal ops and entry —
//! e.g. one object loaded for several tenants, or objects that differ only in `.rodata`/`.data`
//! — can run one `Arc<JitCode>`. The key is a hash of the ops and entry; a hit also compares
//! them in full, so a hash collision never shares code. The cache holds `Weak`s: code is freed
//! when the last program running it is dropped, and dead entries are pruned.
//!
//! No state is global: each [`JitCache`] is owned by its embedder (naam-engine's
//! `FunctionTable` keeps one per table) and passed to [`Program::from_elf_cached`] and
//! [`Program::from_raw_cached`].
//!
//! [`Program::from_elf_cached`]: crate::Program::from_elf_cached
//! [`Program::from_raw_cached`]: crate::Program::from_raw_cached

#[cfg(feature = "jit")]
use std::collections::HashMap;
#[cfg(feature = "jit")]
use std::hash::{Hash, Hasher};
#[cfg(feature = "jit")]
use std::sync::{Arc, Weak};

#[cfg(feature = "jit")]
use crate::jit::JitCode;
#[cfg(feature = "jit")]
use crate::op::Op;
#[cfg(feature = "jit")]
use crate::program::JitError;

/// Cache entries (live or dead) below which an insertion never sweeps the whole cache for dead
/// ones; above it, a sweep runs whenever the entries have doubled since the last one (so the
/// sweeps cost O(1) per insertion, amortised).
pub const JIT_CACHE_SWEEP_ENTRIES_MIN: usize = 64;

/// What a [`JitCache`] has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitCacheStats {
    /// Programs the cache had Cranelift compile (no live code with their ops and entry).
    pub compiles: u64,
    /// Programs that run code compiled for an earlier program.
    pub reuses: u64,
    /// Distinct native codes still held by at least one program.
    pub live_codes: usize,
}

/// Compiled code shared between programs with equal ops and entry (see the module docs).
/// Without naam-vm's `jit` feature it stays empty.
#[derive(Debug, Clone, Default)]
pub struct JitCache {
    /// Entries by [`ops_hash`]; a bucket holds every entry of that hash (collisions included).
    #[cfg(feature = "jit")]
    buckets: HashMap<u64, Vec<Cached>>,
    /// Entries in `buckets`, live or dead.
    #[cfg(feature = "jit")]
    entries: usize,
    /// `entries` at which the next insertion sweeps dead entries.
    #[cfg(feature = "jit")]
    sweep_at_entries: usize,
    compiles: u64,
    reuses: u64,
}

/// One compiled program: its key in full, and its code while some program holds it.
#[cfg(feature = "jit")]
#[derive(Debug, Clone)]
struct Cached {
    ops: Arc<[Op]>,
    entry: u32,
    code: Weak<JitCode>,
}

impl JitCache {
    /// An empty cache.
    pub fn new() -> JitCache {
        JitCache::default()
    }

    /// Compiles and reuses so far, and the codes still alive.
    pub fn stats(&self) -> JitCacheStats {
        JitCacheStats {
            compiles: self.compiles,
            reuses: self.reuses,
            live_codes: self.live_codes(),
        }
    }

    #[cfg(feature = "jit")]
    fn live_codes(&self) -> usize {
        let live = |cached: &&Cached| cached.code.strong_count() > 0;
        self.buckets.values().flatten().filter(live).count()
    }

    #[cfg(not(feature = "jit"))]
    fn live_codes(&self) -> usize {
        0
    }

    /// Drops the entries whose code no program holds any more; returns how many.
    pub fn prune(&mut self) -> usize {
        #[cfg(feature = "jit")]
        {
            let before = self.entries;
            self.buckets.retain(|_, bucket| {
                bucket.retain(|cached| cached.code.strong_count() > 0);
                !bucket.is_empty()
            });
            self.entries = self.buckets.values().map(Vec::len).sum();
            before - self.entries
        }
        #[cfg(not(feature = "jit"))]
        0
    }

    /// The code of a live program with these ops and entry, else a fresh compile (kept).
    #[cfg(feature = "jit")]
    pub(crate) fn code_for(&mut self, ops: &[Op], entry: u32) -> Result<Arc<JitCode>, JitError> {
        let hash = ops_hash(ops, entry);
        if let Some(code) = self.find(hash, ops, entry) {
            self.reuses += 1;
            return Ok(code);
        }
        self.compiles += 1;
        let code = Arc::new(crate::jit::compile_host(ops, entry)?);
        self.insert(hash, ops, entry, &code);
        Ok(code)
    }

    /// The live code filed under `hash` whose key equals `(ops, entry)`; drops that bucket's
    /// dead entries on the way.
    #[cfg(feature = "jit")]
    fn find(&mut self, hash: u64, ops: &[Op], entry: u32) -> Option<Arc<JitCode>> {
        let bucket = self.buckets.get_mut(&hash)?;
        let before = bucket.len();
        bucket.retain(|cached| cached.code.strong_count() > 0);
        self.entries -= before - bucket.len();
        // Full comparison: equal hashes alone never share code.
        let same = |cached: &&Cached| cached.entry == entry && *cached.ops == *ops;
        // `upgrade` can still fail: another thread may drop the last holder meanwhile.
        bucket.iter().find(same)?.code.upgrade()
    }

    #[cfg(feature = "jit")]
    fn insert(&mut self, hash: u64, ops: &[Op], entry: u32, code: &Arc<JitCode>) {
        if self.entries >= self.sweep_at_entries {
            self.prune();
            self.sweep_at_entries = (2 * self.entries).max(JIT_CACHE_SWEEP_ENTRIES_MIN);
        }
        let cached = Cached {
            ops: ops.into(),
            entry,
            code: Arc::downgrade(code),
        };
        self.buckets.entry(hash).or_default().push(cached);
        self.entries += 1;
    }
}

/// The cache key's hash: every field of every op, and the entry. Each op goes in as two words
/// (its kind, registers and target packed into one): SipHash's per-write cost, not the ops,
/// dominated a cache hit when each field went in by itself.
#[cfg(feature = "jit")]
fn ops_hash(ops: &[Op], entry: u32) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    entry.hash(&mut hasher);
    ops.len().hash(&mut hasher);
    for op in ops {
        let fields = u64::from(op.kind as u8)
            | u64::from(op.dst) << 8
            | u64::from(op.src) << 16
            | u64::from(op.target as u32) << 32;
        hasher.write_u64(fields);
        hasher.write_u64(op.imm);
    }
    hasher.finish()
}

#[cfg(all(test, feature = "jit"))]
mod tests {
    use super::*;
    use crate::op::Kind;

    fn return_imm(value: u64) -> Vec<Op> {
        vec![
            Op::new(Kind::Mov64Imm, 0, 0, 0, value),
            Op::new(Kind::Exit, 0, 0, 0, 0),
        ]
    }

    #[test]
    fn a_colliding_hash_never_shares_code() {
        let mut cache = JitCache::new();
        let (one, two) = (return_imm(1), return_imm(2));
        let code = cache.code_for(&one, 0).expect("compiles");
        // File `two` under `one`'s hash, as a collision would.
        let hash = ops_hash(&one, 0);
        assert!(
            cache.find(hash, &two, 0).is_none(),
            "a collision shared code"
        );
        assert!(
            cache.find(hash, &one, 1).is_none(),
            "another entry shared code"
        );
        let again = cache.find(hash, &one, 0).expect("the same key hits");
        assert!(Arc::ptr_eq(&code, &again));
    }

    #[test]
    fn insertions_sweep_dead_entries() {
        let mut cache = JitCache::new();
        for value in 0..(2 * JIT_CACHE_SWEEP_ENTRIES_MIN as u64) {
            // Each code is dropped at once: its entry is dead.
            drop(cache.code_for(&return_imm(value), 0).expect("compiles"));
        }
        assert!(
            cache.entries <= JIT_CACHE_SWEEP_ENTRIES_MIN,
            "{} dead entries kept",
            cache.entries
        );
        assert_eq!(cache.stats().live_codes, 0);
    }
}
