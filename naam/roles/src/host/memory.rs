//! The host's registered memory: every tenant's regions as shared-memory files, the region
//! table that names them, and one write lock per tenant for host-native writers.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use naam_engine::{RegionId, RegionTable, RkeySecret};
use naam_types::memory::{self, Bytes};

use crate::RoleError;
use crate::ready::{RegionEntry, ShmEntry};
use crate::shm::{self, SharedRegion};
use crate::workload::{DatasetMeta, ServerWorkload, TenantMeta, tenant_id};

/// All regions of all tenants.
#[derive(Debug)]
pub struct HostMemory {
    regions: Vec<Option<SharedRegion>>,
    by_tenant: Vec<Vec<RegionId>>,
    write_locks: Vec<Mutex<()>>,
}

impl HostMemory {
    /// The region `id`.
    pub fn region(&self, id: RegionId) -> Option<&SharedRegion> {
        self.regions.get(id.0 as usize)?.as_ref()
    }

    /// Tenant `index`'s regions, in the workload's order.
    pub fn tenant_regions(&self, index: usize) -> Vec<&SharedRegion> {
        self.by_tenant.get(index).map_or_else(Vec::new, |ids| {
            ids.iter().filter_map(|&id| self.region(id)).collect()
        })
    }

    /// Takes tenant `index`'s write lock (a poisoned lock is still a lock: the data's own
    /// versions tell readers what they need).
    pub fn write_lock(&self, index: usize) -> Option<MutexGuard<'_, ()>> {
        let lock = self.write_locks.get(index)?;
        Some(lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The shared-memory files, for the ready file.
    pub fn shm_entries(&self) -> Vec<ShmEntry> {
        self.regions
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.as_ref().map(|r| ShmEntry {
                    id: i as u32,
                    path: r.path().to_path_buf(),
                    len: r.len() as u64,
                })
            })
            .collect()
    }
}

/// Registers, creates and loads every tenant's regions. Returns the table, the memory and what
/// clients need to know.
pub fn build(
    workload: &dyn ServerWorkload,
    tenants: u32,
    shm_dir: &Path,
    run_id: &str,
    secret: RkeySecret,
) -> Result<(RegionTable, HostMemory, DatasetMeta), RoleError> {
    check_fits(workload, tenants, Some(shm_dir))?;
    build_with(workload, tenants, secret, |id, len| {
        let path = shm_dir.join(format!("naam-{run_id}-r{}", id.0));
        SharedRegion::create(&path, len).map_err(|e| RoleError::io(&path, "create region file", e))
    })
}

/// [`build`] into this process's private memory ([`SharedRegion::private`]: no files, huge pages
/// asked for), for a process that is its regions' only user — the simulator, whose NIC reads
/// them in-process. The same table, bytes and metadata as [`build`] with the same arguments.
pub fn build_private(
    workload: &dyn ServerWorkload,
    tenants: u32,
    secret: RkeySecret,
) -> Result<(RegionTable, HostMemory, DatasetMeta), RoleError> {
    check_fits(workload, tenants, None)?;
    build_with(workload, tenants, secret, |id, len| {
        SharedRegion::private(len).map_err(|e| {
            RoleError::Setup(format!(
                "mapping private region {} ({len} bytes): {e}",
                id.0
            ))
        })
    })
}

/// Registers every tenant's regions, makes each with `create` (its id and length) and loads it.
fn build_with(
    workload: &dyn ServerWorkload,
    tenants: u32,
    secret: RkeySecret,
    mut create: impl FnMut(RegionId, u64) -> Result<SharedRegion, RoleError>,
) -> Result<(RegionTable, HostMemory, DatasetMeta), RoleError> {
    let mut table = RegionTable::new(secret);
    let mut memory = HostMemory {
        regions: Vec::new(),
        by_tenant: Vec::new(),
        write_locks: Vec::new(),
    };
    let mut metas = Vec::new();
    for tenant in 0..tenants {
        let mut rkeys = Vec::new();
        let mut ids = Vec::new();
        for spec in workload.regions() {
            let info = table
                .register(tenant_id(tenant), spec.len, spec.perms)
                .map_err(|e| {
                    RoleError::Setup(format!("registering {} of tenant {tenant}: {e}", spec.name))
                })?;
            let region = create(info.id, spec.len)?;
            let slot = info.id.0 as usize;
            if memory.regions.len() <= slot {
                memory.regions.resize_with(slot + 1, || None);
            }
            memory.regions[slot] = Some(region);
            rkeys.push(info.rkey.0);
            ids.push(info.id);
        }
        memory.by_tenant.push(ids);
        memory.write_locks.push(Mutex::new(()));
        workload.load(tenant, &memory.tenant_regions(tenant as usize))?;
        metas.push(TenantMeta { rkeys });
    }
    let meta = DatasetMeta {
        workload: workload.meta(&memory.tenant_regions(0)),
        tenants: metas,
    };
    Ok((table, memory, meta))
}

/// Every tenant's regions fit in the memory available and in `shm_dir`'s file system (when they
/// are files there), checked before any region is created: regions are sparse files, so an
/// oversized dataset would otherwise fail later, with SIGBUS, when the host loads it.
fn check_fits(
    workload: &dyn ServerWorkload,
    tenants: u32,
    shm_dir: Option<&Path>,
) -> Result<(), RoleError> {
    let per_tenant_bytes: u64 = workload.regions().iter().map(|spec| spec.len).sum();
    let needed_bytes = per_tenant_bytes.saturating_mul(u64::from(tenants));
    let what = format!(
        "the regions of {tenants} tenants ({} each)",
        Bytes(per_tenant_bytes)
    );
    memory::check_available(&what, needed_bytes).map_err(|e| RoleError::Setup(e.to_string()))?;
    let Some(shm_dir) = shm_dir else {
        return Ok(());
    };
    let free_bytes = shm::free_bytes(shm_dir).map_err(|e| RoleError::io(shm_dir, "statvfs", e))?;
    if needed_bytes > free_bytes {
        return Err(RoleError::Setup(format!(
            "{what} need {} but {} has {} free; choose smaller sizes or a larger tmpfs",
            Bytes(needed_bytes),
            shm_dir.display(),
            Bytes(free_bytes)
        )));
    }
    Ok(())
}

/// The catalog as published.
pub fn catalog(table: &RegionTable) -> Vec<RegionEntry> {
    table.iter().map(RegionEntry::from).collect()
}

/// A fresh rkey secret from the kernel's random source.
pub fn fresh_secret() -> Result<RkeySecret, RoleError> {
    use std::io::Read;
    let mut secret = [0u8; 16];
    let path = Path::new("/dev/urandom");
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(|e| RoleError::io(path, "read random bytes", e))?;
    Ok(RkeySecret(secret))
}
