//! Registered memory regions, their rkey capabilities, and the one access check every location
//! uses.
//!
//! A region is `(id, tenant, len, perms)`; messages name it by its [`Rkey`], a 64-bit capability
//! derived with a keyed PRF (SipHash-2-4) from a server secret and the region's id and
//! generation: knowing region ids does not let anyone guess an rkey, and an unregistered region's
//! rkey is never reissued. [`RegionTable::check`] is the only way an access becomes a
//! [`RegionId`]: the host and NIC executors, the client executor (over a catalog replica) and the
//! emulated RNIC that serves one-sided reads all call it, so the rules are identical everywhere.
//! The table holds metadata only: memory belongs to the location's data path.

use crate::ids::{AccessKind, Descriptor, IdMap, RegionId, Rkey, TenantId};

/// Regions one table may hold.
pub const REGIONS_MAX: usize = 65_536;
/// Largest region (the VM and the DMA emulation address regions with 32-bit offsets).
pub const REGION_BYTES_MAX: u64 = 1 << 32;

/// What a tenant may do with a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Reads (functions, one-sided reads) allowed.
    pub read: bool,
    /// Writes (host-native functions) allowed.
    pub write: bool,
}

impl Perms {
    /// Read-only.
    pub const READ: Perms = Perms {
        read: true,
        write: false,
    };
    /// Read and write.
    pub const READ_WRITE: Perms = Perms {
        read: true,
        write: true,
    };

    fn allows(self, kind: AccessKind) -> bool {
        match kind {
            AccessKind::Read => self.read,
            AccessKind::Write => self.write,
        }
    }
}

/// Everything known about a region, as published to locations and clients (a catalog entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RegionInfo {
    /// Server-local number.
    pub id: RegionId,
    /// Owner.
    pub tenant: TenantId,
    /// Bytes.
    pub len: u64,
    /// Allowed access kinds.
    pub perms: Perms,
    /// Capability.
    pub rkey: Rkey,
}

/// Why an access was denied. Checked before any byte moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// No region has this rkey (forged, stale, or from another server).
    #[error("no region has rkey {rkey:?}")]
    UnknownRkey {
        /// The rkey presented.
        rkey: Rkey,
    },
    /// The region belongs to another tenant.
    #[error("region {region:?} belongs to tenant {owner:?}, not {requester:?}")]
    WrongTenant {
        /// The region.
        region: RegionId,
        /// Its owner.
        owner: TenantId,
        /// Who asked.
        requester: TenantId,
    },
    /// The access runs past the region's end.
    #[error("access [{offset}, +{len}) is outside region {region:?} of {region_len} bytes")]
    OutOfBounds {
        /// The region.
        region: RegionId,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u32,
        /// The region's length.
        region_len: u64,
    },
    /// The region does not allow this kind of access.
    #[error("region {region:?} does not allow {kind:?}")]
    PermissionDenied {
        /// The region.
        region: RegionId,
        /// The refused kind.
        kind: AccessKind,
    },
}

impl Denial {
    /// Stable code carried in replies and read replies (never 0).
    pub fn code(&self) -> u32 {
        match self {
            Denial::UnknownRkey { .. } => 1,
            Denial::WrongTenant { .. } => 2,
            Denial::OutOfBounds { .. } => 3,
            Denial::PermissionDenied { .. } => 4,
        }
    }

    /// Stable name of a code (for results and logs).
    pub fn code_name(code: u32) -> &'static str {
        match code {
            1 => "unknown-rkey",
            2 => "wrong-tenant",
            3 => "out-of-bounds",
            4 => "permission-denied",
            _ => "unknown-denial",
        }
    }
}

/// Why a region cannot be registered or unregistered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// The table already holds [`REGIONS_MAX`] regions.
    #[error("region table full ({max} regions)")]
    TableFull {
        /// [`REGIONS_MAX`].
        max: usize,
    },
    /// Zero bytes or more than [`REGION_BYTES_MAX`].
    #[error("region length {len} outside 1..={max}")]
    BadLength {
        /// Requested length.
        len: u64,
        /// [`REGION_BYTES_MAX`].
        max: u64,
    },
    /// No such region, or not this tenant's.
    #[error("tenant {tenant:?} has no region {region:?}")]
    NotFound {
        /// The tenant asking.
        tenant: TenantId,
        /// The region named.
        region: RegionId,
    },
    /// A catalog entry reuses an id or rkey.
    #[error("catalog entry {region:?} duplicates an id or rkey")]
    Duplicate {
        /// The entry.
        region: RegionId,
    },
}

/// The secret rkeys are derived from (keep it on the server; clients never need it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RkeySecret(pub [u8; 16]);

impl std::fmt::Debug for RkeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RkeySecret(..)")
    }
}

/// The regions one server exposes (or a replica built from its catalog).
#[derive(Debug, Clone)]
pub struct RegionTable {
    secret: Option<RkeySecret>,
    slots: Vec<Option<RegionInfo>>,
    by_rkey: IdMap<Rkey, RegionId>,
    generation: u64,
}

impl RegionTable {
    /// An empty table that issues rkeys from `secret`.
    pub fn new(secret: RkeySecret) -> RegionTable {
        RegionTable {
            secret: Some(secret),
            slots: Vec::new(),
            by_rkey: IdMap::default(),
            generation: 0,
        }
    }

    /// A replica of another table's catalog (for NICs and clients); it cannot register regions.
    pub fn from_catalog(catalog: &[RegionInfo]) -> Result<RegionTable, RegionError> {
        let mut table = RegionTable {
            secret: None,
            slots: Vec::new(),
            by_rkey: IdMap::default(),
            generation: 0,
        };
        for info in catalog {
            let index = info.id.0 as usize;
            if index >= REGIONS_MAX || table.by_rkey.contains_key(&info.rkey) {
                return Err(RegionError::Duplicate { region: info.id });
            }
            if table.slots.len() <= index {
                table.slots.resize(index + 1, None);
            }
            if table.slots[index].replace(*info).is_some() {
                return Err(RegionError::Duplicate { region: info.id });
            }
            table.by_rkey.insert(info.rkey, info.id);
        }
        Ok(table)
    }

    /// Registers `len` bytes for `tenant`. Only tables created with [`RegionTable::new`] issue
    /// rkeys; a replica answers [`RegionError::TableFull`] with `max: 0`.
    pub fn register(
        &mut self,
        tenant: TenantId,
        len: u64,
        perms: Perms,
    ) -> Result<RegionInfo, RegionError> {
        let secret = self.secret.ok_or(RegionError::TableFull { max: 0 })?;
        if len == 0 || len > REGION_BYTES_MAX {
            return Err(RegionError::BadLength {
                len,
                max: REGION_BYTES_MAX,
            });
        }
        let index = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None if self.slots.len() < REGIONS_MAX => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return Err(RegionError::TableFull { max: REGIONS_MAX }),
        };
        self.generation += 1;
        let id = RegionId(index as u32);
        let rkey = Rkey(siphash24(&secret.0, &rkey_input(id, self.generation)));
        let info = RegionInfo {
            id,
            tenant,
            len,
            perms,
            rkey,
        };
        self.slots[index] = Some(info);
        self.by_rkey.insert(rkey, id);
        Ok(info)
    }

    /// Removes a region of `tenant`; its rkey is dead from now on.
    pub fn unregister(&mut self, tenant: TenantId, region: RegionId) -> Result<(), RegionError> {
        let slot = self
            .slots
            .get_mut(region.0 as usize)
            .ok_or(RegionError::NotFound { tenant, region })?;
        match slot {
            Some(info) if info.tenant == tenant => {
                self.by_rkey.remove(&info.rkey);
                *slot = None;
                Ok(())
            }
            _ => Err(RegionError::NotFound { tenant, region }),
        }
    }

    /// The region named `id`, if registered.
    pub fn get(&self, id: RegionId) -> Option<&RegionInfo> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    /// The region named by `rkey`, if any.
    pub fn by_rkey(&self, rkey: Rkey) -> Option<&RegionInfo> {
        self.get(*self.by_rkey.get(&rkey)?)
    }

    /// The catalog a tenant's clients receive: that tenant's regions only.
    pub fn catalog_for(&self, tenant: TenantId) -> Vec<RegionInfo> {
        self.iter()
            .filter(|r| r.tenant == tenant)
            .copied()
            .collect()
    }

    /// Every region (for a NIC replica, which serves all tenants).
    pub fn iter(&self) -> impl Iterator<Item = &RegionInfo> {
        self.slots.iter().flatten()
    }

    /// The access check: tenant, then permission, then bounds — before any byte moves.
    pub fn check(&self, tenant: TenantId, access: &Descriptor) -> Result<RegionId, Denial> {
        let info = self
            .by_rkey(access.rkey)
            .ok_or(Denial::UnknownRkey { rkey: access.rkey })?;
        check_region(info, tenant, access)
    }
}

/// Regions an executor keeps at hand (a bound: a MICA GET's steps name three regions, its
/// index, its log and the log's metadata, and the next message starts over at the index).
const RECENT_REGIONS: usize = 4;

/// Regions checked before, looked up by rkey: they skip the table's hash lookup, never the
/// check ([`check_region`]). A miss here replaces the entries in turn, so messages that cycle
/// through up to four regions find them all (a MICA GET's accesses name three regions in
/// turn: a one-entry cache of the last region found missed on each). A lookup compares the
/// rkeys of all entries, each always a region of the table (the first region found fills them
/// all), and hands back a reference to the one found: nothing is copied per access. Cleared
/// when the tables change.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecentRegions {
    /// Regions of the table once `filled` (never read before).
    entries: [RegionInfo; RECENT_REGIONS],
    filled: bool,
    /// The entry the next miss replaces.
    next: usize,
}

impl Default for RecentRegions {
    fn default() -> Self {
        let unread = RegionInfo {
            id: RegionId(0),
            tenant: TenantId(0),
            len: 0,
            perms: Perms {
                read: false,
                write: false,
            },
            rkey: Rkey(0),
        };
        RecentRegions {
            entries: [unread; RECENT_REGIONS],
            filled: false,
            next: 0,
        }
    }
}

impl RecentRegions {
    /// The region with `rkey`, from the entries or else from `table` (then kept); `None` when
    /// `table` has none.
    #[inline(always)]
    pub(crate) fn lookup(&mut self, table: &RegionTable, rkey: Rkey) -> Option<&RegionInfo> {
        if self.filled {
            // Unrolled: each entry found is lent from its own test, no index worked out.
            for index in 0..RECENT_REGIONS {
                if self.entries[index].rkey == rkey {
                    return Some(&self.entries[index]);
                }
            }
        }
        self.lookup_table(table, rkey)
    }

    /// [`RecentRegions::lookup`] when no entry has `rkey`: the table's region replaces the
    /// oldest entry (or, the first time, fills every entry).
    #[inline(never)]
    fn lookup_table(&mut self, table: &RegionTable, rkey: Rkey) -> Option<&RegionInfo> {
        let info = *table.by_rkey(rkey)?;
        if !self.filled {
            self.entries = [info; RECENT_REGIONS];
            self.filled = true;
        }
        let index = self.next % RECENT_REGIONS;
        self.entries[index] = info;
        self.next = (index + 1) % RECENT_REGIONS;
        Some(&self.entries[index])
    }
}

/// The access check after the rkey lookup: `info` must be the region `access.rkey` names in
/// the table the caller checks against ([`RegionTable::check`] looks it up; an executor may
/// reuse a region an earlier access named, for the same table and rkey: `RecentRegions`).
///
/// The common allowed access is one test of all three conditions; the denial, in the checks'
/// order, is worked out out of line (inlined, the error's construction cost every checked
/// access ≈ 10 instructions).
#[inline(always)]
pub(crate) fn check_region(
    info: &RegionInfo,
    tenant: TenantId,
    access: &Descriptor,
) -> Result<RegionId, Denial> {
    if info.tenant == tenant && info.perms.allows(access.kind) && in_bounds(info, access) {
        Ok(info.id)
    } else {
        Err(denial(info, tenant, access))
    }
}

/// True when `access` names at least one byte, all of them inside the region.
#[inline(always)]
fn in_bounds(info: &RegionInfo, access: &Descriptor) -> bool {
    access.len != 0
        && (access.offset)
            .checked_add(u64::from(access.len))
            .is_some_and(|end| end <= info.len)
}

/// Why [`check_region`] denies `access`: tenant, then permission, then bounds.
#[cold]
#[inline(never)]
fn denial(info: &RegionInfo, tenant: TenantId, access: &Descriptor) -> Denial {
    if info.tenant != tenant {
        return Denial::WrongTenant {
            region: info.id,
            owner: info.tenant,
            requester: tenant,
        };
    }
    if !info.perms.allows(access.kind) {
        return Denial::PermissionDenied {
            region: info.id,
            kind: access.kind,
        };
    }
    debug_assert!(!in_bounds(info, access));
    Denial::OutOfBounds {
        region: info.id,
        offset: access.offset,
        len: access.len,
        region_len: info.len,
    }
}

fn rkey_input(id: RegionId, generation: u64) -> [u8; 12] {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&id.0.to_le_bytes());
    input[4..].copy_from_slice(&generation.to_le_bytes());
    input
}

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `data` under the 128-bit `key`: a keyed PRF, so
/// rkeys are unpredictable without the secret. Checked against the reference vectors.
pub fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().unwrap_or([0; 8]));
    let k1 = u64::from_le_bytes(key[8..].try_into().unwrap_or([0; 8]));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let m = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        v[3] ^= m;
        sip_rounds(&mut v, 2);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    sip_rounds(&mut v, 2);
    v[0] ^= m;
    v[2] ^= 0xff;
    sip_rounds(&mut v, 4);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn sip_rounds(v: &mut [u64; 4], rounds: usize) {
    for _ in 0..rounds {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference_key() -> [u8; 16] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn siphash_matches_reference_vectors() {
        // From the SipHash paper's appendix / reference implementation (vectors.h, 64-bit
        // output): key = 00..0f, message = 00..(n-1).
        let message: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(&reference_key(), &message), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(&reference_key(), &[]), 0x726f_db47_dd0e_0e31);
    }

    fn table() -> RegionTable {
        RegionTable::new(RkeySecret([7; 16]))
    }

    #[test]
    fn rkeys_are_distinct_and_not_reissued() {
        let mut t = table();
        let a = t.register(TenantId(1), 64, Perms::READ).unwrap();
        t.unregister(TenantId(1), a.id).unwrap();
        let b = t.register(TenantId(1), 64, Perms::READ).unwrap();
        assert_eq!(a.id, b.id, "the slot is reused");
        assert_ne!(a.rkey, b.rkey, "but never its rkey");
        assert!(t.by_rkey(a.rkey).is_none());
    }

    #[test]
    fn check_denies_each_class() {
        let mut t = table();
        let r = t.register(TenantId(1), 100, Perms::READ).unwrap();
        let ok = Descriptor::read(r.rkey, 90, 10);
        assert_eq!(t.check(TenantId(1), &ok), Ok(r.id));
        let past_end = Descriptor::read(r.rkey, 91, 10);
        assert!(matches!(
            t.check(TenantId(1), &past_end),
            Err(Denial::OutOfBounds { .. })
        ));
        let wrapping = Descriptor::read(r.rkey, u64::MAX, 2);
        assert!(matches!(
            t.check(TenantId(1), &wrapping),
            Err(Denial::OutOfBounds { .. })
        ));
        assert!(matches!(
            t.check(TenantId(2), &ok),
            Err(Denial::WrongTenant { .. })
        ));
        let forged = Descriptor::read(Rkey(r.rkey.0 ^ 1), 0, 1);
        assert!(matches!(
            t.check(TenantId(1), &forged),
            Err(Denial::UnknownRkey { .. })
        ));
        let write = Descriptor {
            kind: AccessKind::Write,
            ..ok
        };
        assert!(matches!(
            t.check(TenantId(1), &write),
            Err(Denial::PermissionDenied { .. })
        ));
    }

    #[test]
    fn replica_checks_like_the_original() {
        let mut t = table();
        let a = t.register(TenantId(1), 100, Perms::READ).unwrap();
        let _b = t.register(TenantId(2), 100, Perms::READ_WRITE).unwrap();
        let replica = RegionTable::from_catalog(&t.iter().copied().collect::<Vec<_>>()).unwrap();
        for (tenant, offset) in [(1, 0), (2, 0), (1, 95)] {
            let d = Descriptor::read(a.rkey, offset, 10);
            assert_eq!(
                replica.check(TenantId(tenant), &d),
                t.check(TenantId(tenant), &d)
            );
        }
        assert_eq!(t.catalog_for(TenantId(1)), vec![a]);
    }

    /// The recent regions find every region of the table and nothing else, whatever the order
    /// of lookups: fewer regions than entries, more (each miss replaces an entry), repeats.
    #[test]
    fn recent_regions_find_what_the_table_has() {
        let mut t = table();
        let infos: Vec<RegionInfo> = (1..=6)
            .map(|i| {
                t.register(TenantId(i % 2), 64 * u64::from(i), Perms::READ)
                    .unwrap()
            })
            .collect();
        let forged = Rkey(infos.iter().fold(1, |k, i| k ^ i.rkey.0));
        let mut recent = RecentRegions::default();
        assert_eq!(recent.lookup(&t, forged), None);
        let order = [0, 0, 1, 2, 0, 3, 4, 5, 1, 5, 2, 2, 0, 4, 3, 1, 0];
        for (n, &i) in order.iter().enumerate() {
            let found = recent.lookup(&t, infos[i].rkey).copied();
            assert_eq!(found, Some(infos[i]), "lookup {n} of region {i}");
            assert_eq!(recent.lookup(&t, forged), None, "after lookup {n}");
        }
    }
}
