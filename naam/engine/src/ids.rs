//! Identifiers and small value types shared by every part of the engine.

use std::fmt;

/// A tenant: the owner of regions and functions. Isolation is per tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(pub u32);

/// A function registered by a tenant; function ids are scoped by tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionId(pub u32);

/// A region of registered memory, as numbered by the server that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionId(pub u32);

/// The capability that names a region in messages (RDMA's rkey). Derived from a secret, so it
/// cannot be guessed from the region id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rkey(pub u64);

impl fmt::Debug for Rkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rkey({:#018x})", self.0)
    }
}

/// A client-chosen request id, unique per client; echoed in the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A point in time in nanoseconds, on whatever clock the caller runs (real or virtual).
/// The engine never reads a clock: every entry point takes `now`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nanos(pub u64);

impl Nanos {
    /// The time elapsed since `earlier`, zero if `earlier` is later (clocks may be coarse).
    pub fn since(self, earlier: Nanos) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This time plus `ns` nanoseconds (saturating).
    pub fn plus_ns(self, ns: u64) -> Nanos {
        Nanos(self.0.saturating_add(ns))
    }
}

/// Where a message executes (defined in naam-types, shared from manifest to role).
pub use naam_types::Location;

/// Whether an access reads or writes region memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// Copy bytes out of the region.
    Read,
    /// Change bytes of the region (host-native functions only; they run where the data lives).
    Write,
}

impl AccessKind {
    /// Wire encoding.
    pub fn code(self) -> u8 {
        match self {
            AccessKind::Read => 0,
            AccessKind::Write => 1,
        }
    }

    /// Decodes the wire encoding.
    pub fn from_code(code: u8) -> Option<AccessKind> {
        match code {
            0 => Some(AccessKind::Read),
            1 => Some(AccessKind::Write),
            _ => None,
        }
    }
}

/// One access descriptor: `len` bytes at `offset` of the region named by `rkey`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Descriptor {
    /// The region's capability.
    pub rkey: Rkey,
    /// Byte offset inside the region.
    pub offset: u64,
    /// Bytes to access (1..=`ACCESS_BYTES_MAX`).
    pub len: u32,
    /// Read or write.
    pub kind: AccessKind,
}

impl Descriptor {
    /// A read descriptor.
    pub fn read(rkey: Rkey, offset: u64, len: u32) -> Descriptor {
        Descriptor {
            rkey,
            offset,
            len,
            kind: AccessKind::Read,
        }
    }
}

/// A map keyed by the engine's ids, hashed with [`IdHasher`].
pub(crate) type IdMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;

/// The hasher of the per-message lookups (function by `(tenant, id)`, region by rkey): one
/// rotate, xor and multiply per word (FxHash's mixing step) instead of SipHash-1-3's rounds.
/// No HashDoS concern: only the operator registers keys (functions, regions), so a message can
/// choose what it looks up but not the table's layout; rkeys are SipHash outputs already.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher {
    state: u64,
}

/// FxHash's multiplier (odd, so the multiply is a bijection on the state).
const ID_HASH_MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(ID_HASH_MULTIPLIER);
    }
}

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}
