//! The host's registered memory: every tenant's regions as shared-memory files, the region
//! table that names them, and one write lock per tenant for host-native writers.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use naam_engine::{RegionId, RegionTable, RkeySecret};

use crate::RoleError;
use crate::ready::{RegionEntry, ShmEntry};
use crate::shm::SharedRegion;
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
            let path = shm_dir.join(format!("naam-{run_id}-r{}", info.id.0));
            let region = SharedRegion::create(&path, spec.len)
                .map_err(|e| RoleError::io(&path, "create region file", e))?;
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
