//! The workloads as the roles see them: the server side lays out and loads regions, registers
//! functions and runs host-native writes; the client side generates requests and verifies
//! answers. One implementation per workload ([`mica`], [`btree`]); every tenant gets its own copy
//! of the dataset, regions and functions (offload-scaling runs hundreds of them).

pub mod btree;
pub mod mica;
pub mod values;

use std::borrow::Cow;

use naam_engine::wire::Descriptors;
use naam_engine::{FunctionId, Perms, TenantId};
use serde::{Deserialize, Serialize};

use crate::config::{Dataset, WorkloadSpec};
use crate::shm::SharedRegion;

pub use naam_types::TENANTS_MAX;

/// The tenant id of tenant index `i` (ids start at 1; 0 is never a tenant).
pub fn tenant_id(index: u32) -> TenantId {
    TenantId(index + 1)
}

/// One region a tenant's copy of the workload needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionSpec {
    /// Name (for logs).
    pub name: &'static str,
    /// Bytes.
    pub len: u64,
    /// Permissions clients' functions get.
    pub perms: Perms,
}

/// How a function is implemented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionCode {
    /// eBPF in an ELF object, by section name.
    Elf {
        /// The object's bytes: a committed object, or a tenant's own variant of one.
        object: Cow<'static, [u8]>,
        /// The section.
        section: &'static str,
    },
    /// Native code at the host ([`ServerWorkload::native`]).
    HostNative,
}

/// One function a tenant registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Id (the same for every tenant).
    pub id: FunctionId,
    /// Name.
    pub name: &'static str,
    /// Code.
    pub code: FunctionCode,
}

/// What clients need to address a tenant's data: the rkeys of its regions, in
/// [`ServerWorkload::regions`] order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantMeta {
    /// Rkeys, one per region spec.
    pub rkeys: Vec<u64>,
}

/// Published by the host for clients (in its ready file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    /// Workload-specific facts shared by all tenants (e.g. the tree's root and height).
    pub workload: WorkloadMeta,
    /// Per tenant, by index.
    pub tenants: Vec<TenantMeta>,
}

/// Workload-specific facts clients need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum WorkloadMeta {
    /// MICA: the table's shape.
    Mica(mica::MicaMeta),
    /// B-tree: node size, root, height, keys.
    Btree(btree::BtreeMeta),
}

/// Why a workload cannot be set up or served.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The workload's parameters are invalid.
    #[error("workload parameters: {0}")]
    Config(String),
    /// Loading the dataset failed.
    #[error("loading tenant {tenant}: {message}")]
    Load {
        /// Tenant index.
        tenant: u32,
        /// What failed.
        message: String,
    },
    /// The host's published metadata does not match this workload.
    #[error("dataset metadata does not match the workload: {0}")]
    Meta(String),
}

/// The server side of a workload.
pub trait ServerWorkload: Send + Sync {
    /// The regions of one tenant.
    fn regions(&self) -> Vec<RegionSpec>;
    /// The functions tenant `tenant` (an index) registers: the same ids and names for every
    /// tenant, the code the same or (with `tenant_programs = "distinct"`) the tenant's own.
    fn functions(&self, tenant: u32) -> Result<Vec<FunctionSpec>, WorkloadError>;
    /// Fills a tenant's freshly created (zeroed) regions; `rkeys` in [`Self::regions`] order.
    fn load(&self, tenant: u32, regions: &[&SharedRegion]) -> Result<(), WorkloadError>;
    /// Facts shared by every tenant, once all are loaded.
    fn meta(&self, regions: &[&SharedRegion]) -> WorkloadMeta;
    /// Runs a host-native function over a tenant's regions. The caller holds that tenant's write
    /// lock. `Err` is a function-defined error code.
    fn native(
        &self,
        function: FunctionId,
        args: &[u8],
        regions: &[&SharedRegion],
    ) -> Result<Vec<u8>, u32>;
}

/// One request a client sends (or runs itself), with what its answer must be.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Tenant index.
    pub tenant: u32,
    /// Function.
    pub function: u32,
    /// Argument block.
    pub args: Vec<u8>,
    /// First step's accesses.
    pub descriptors: Descriptors,
    /// True for host-native functions (never run at the client).
    pub host_only: bool,
    /// What to check the answer against.
    pub expect: Expect,
    /// The operation name (`read`, `update`, ...) for error accounting.
    pub op: &'static str,
}

/// What a correct answer looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Expect {
    /// Nothing to check (verification off).
    #[default]
    Anything,
    /// A MICA hit whose value belongs to this key number.
    MicaValueOf(u64),
    /// As `MicaValueOf`, from the tenant's own program: the reply ends with the tenant's salt.
    MicaTenantValueOf {
        /// The key number.
        keynum: u64,
        /// The tenant's salt (`naam_mica::tenant::tenant_salt`).
        salt: u64,
    },
    /// A MICA SET acknowledgement.
    MicaStored,
    /// A B-tree hit with exactly this value.
    BtreeValue(u64),
}

/// The verdict on one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The answer is right (or nothing was expected).
    Correct,
    /// A lossy store's miss: MICA evicts items when a bucket is full or the log wraps, so a GET of
    /// a loaded key may correctly answer "miss". Counted apart from errors.
    Miss,
    /// The answer is wrong, and why.
    Wrong(String),
}

/// The client side of a workload.
pub trait ClientWorkload: Send {
    /// Fills `out` with the next request.
    fn next(&mut self, out: &mut Request);
    /// Checks an answer's payload against what the request expected.
    fn verify(&self, expect: Expect, payload: &[u8]) -> Verified;
    /// The key distribution that runs (recorded in results).
    fn distribution_name(&self) -> &'static str;
}

/// The server side of `dataset`.
pub fn server(dataset: &Dataset) -> Result<Box<dyn ServerWorkload>, WorkloadError> {
    check_tenants(dataset)?;
    match &dataset.workload {
        WorkloadSpec::Mica(spec) => Ok(Box::new(mica::MicaServer::new(spec, dataset.seed)?)),
        WorkloadSpec::Btree(spec) => Ok(Box::new(btree::BtreeServer::new(spec, dataset.seed)?)),
    }
}

/// The client side of `dataset` for client `index` with `seed`, addressing the host's `meta`.
pub fn client(
    dataset: &Dataset,
    meta: &DatasetMeta,
    index: u32,
    seed: u64,
    verify: bool,
) -> Result<Box<dyn ClientWorkload>, WorkloadError> {
    check_tenants(dataset)?;
    if meta.tenants.len() != dataset.tenants as usize {
        return Err(WorkloadError::Meta(format!(
            "{} tenants published, {} configured",
            meta.tenants.len(),
            dataset.tenants
        )));
    }
    match (&dataset.workload, &meta.workload) {
        (WorkloadSpec::Mica(spec), WorkloadMeta::Mica(m)) => Ok(Box::new(mica::MicaClient::new(
            spec,
            m,
            &meta.tenants,
            index,
            seed,
            verify,
        )?)),
        (WorkloadSpec::Btree(spec), WorkloadMeta::Btree(m)) => Ok(Box::new(
            btree::BtreeClient::new(spec, m, &meta.tenants, seed, verify)?,
        )),
        _ => Err(WorkloadError::Meta(
            "the host published another workload's metadata".into(),
        )),
    }
}

fn check_tenants(dataset: &Dataset) -> Result<(), WorkloadError> {
    if dataset.tenants == 0 || dataset.tenants > TENANTS_MAX {
        return Err(WorkloadError::Config(format!(
            "tenants = {}: must be in 1..={TENANTS_MAX}",
            dataset.tenants
        )));
    }
    Ok(())
}

/// A single-descriptor list from a workload's (rkey, offset, len).
pub fn one_read(rkey: u64, offset: u64, len: u32) -> Descriptors {
    let mut d = Descriptors::new();
    set_one_read(&mut d, rkey, offset, len);
    d
}

/// Makes `descriptors` the single read (rkey, offset, len) in place: a request's list is
/// rewritten for every request, where a new list was built and copied over it.
#[inline]
pub fn set_one_read(descriptors: &mut Descriptors, rkey: u64, offset: u64, len: u32) {
    set_one(
        descriptors,
        naam_engine::Descriptor::read(naam_engine::Rkey(rkey), offset, len),
    );
}

/// Makes `descriptors` the single `descriptor`, in place.
#[inline]
pub fn set_one(descriptors: &mut Descriptors, descriptor: naam_engine::Descriptor) {
    descriptors.clear();
    // Cannot fail: an empty list has room for one.
    let _ = descriptors.push(descriptor);
}

/// A small seeded generator for tenant choice and the like (SplitMix64).
#[derive(Debug, Clone)]
pub struct Mix(pub u64);

impl Mix {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// [`Mix::below`] for a generator that serves only this choice: with `n = 1` the answer is
    /// 0 whatever the draw, so none is made (a one-tenant client drew once per request for it).
    #[inline]
    pub fn pick(&mut self, n: u32) -> u32 {
        if n == 1 { 0 } else { self.below(n) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pick_among_one_draws_nothing_and_among_more_draws_as_below() {
        let mut picked = Mix(7);
        let mut drawn = Mix(7);
        for n in [1, 3, 1, 1, 16, 2, 1, 1000] {
            let expected = if n == 1 { 0 } else { drawn.below(n) };
            assert_eq!(picked.pick(n), expected, "n = {n}");
        }
        assert_eq!(picked.0, drawn.0, "the same draws, none for n = 1");
    }

    #[test]
    fn a_list_set_in_place_is_the_list_built_anew() {
        let mut list = one_read(9, 8, 7);
        let _ = list.push(naam_engine::Descriptor::read(naam_engine::Rkey(1), 2, 3));
        set_one_read(&mut list, 4, 5, 6);
        assert_eq!(list, one_read(4, 5, 6));
    }
}
