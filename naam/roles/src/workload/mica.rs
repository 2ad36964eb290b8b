//! MICA under YCSB: per tenant an index, a log and a meta region laid out by naam-mica; GET is the
//! `mica_get` eBPF function (two or more steps), SET runs natively at the host (it allocates in
//! the log and updates a bucket under MICA's version protocol).
//!
//! Keys: with `key_bytes = 8`, the 8 little-endian bytes of YCSB's `fnvhash64(keynum)` (MICA's
//! 8-byte-key datasets with YCSB's hashed insert order); otherwise YCSB's key name
//! (`"user"` + decimal FNV hash) zero-padded to `key_bytes` (≥ 24). Values are self-verifying
//! ([`super::values`]).

use naam_engine::{AccessKind, Descriptor, FunctionId, Perms, Rkey};
use naam_mica::config::{MicaConfig, Slots};
use naam_mica::get::{GET_FUNCTION_SECTION, GET_OBJECT, GetArgs, GetReply, MicaRkeys};
use naam_mica::layout::item_bytes;
pub use naam_mica::set::{SET_ERR_ARGS, SET_ERR_TABLE, SET_STORED, decode_set, encode_set};
use naam_mica::table::{MicaRegionsMut, MicaTable};
use naam_mica::tenant::{TENANT_GET_SECTION, split_salt, tenant_get_object, tenant_salt};
use naam_ycsb::{OpKind, OperationGenerator, RunConfig};
use serde::{Deserialize, Serialize};

use super::values::{self, VALUE_BYTES_MIN};
use super::{
    ClientWorkload, Expect, FunctionCode, FunctionSpec, Mix, RegionSpec, Request, ServerWorkload,
    TenantMeta, Verified, WorkloadError, WorkloadMeta, set_one, set_one_read,
};
use crate::config::{MicaSpec, TenantPrograms};
use crate::shm::SharedRegion;

/// The GET function (eBPF).
pub const MICA_GET: FunctionId = FunctionId(1);
/// The SET function (host-native).
pub const MICA_SET: FunctionId = FunctionId(2);
/// Longest YCSB key name (`"user"` + up to 20 digits).
pub const YCSB_KEY_NAME_BYTES_MAX: usize = 24;
/// Operations a client's generator is sized for (only bounds YCSB's insert key space).
pub const CLIENT_OPERATIONS_MAX: u64 = 100_000_000;
/// Loading fails if more than 1/this of the records are evicted (MICA's index is lossy; a few
/// evictions are its nature, many mean the table is undersized).
pub const LOAD_EVICTED_PER_MILLE_MAX_DIVISOR: u64 = 100;

/// The table's shape, published to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicaMeta {
    /// Primary buckets.
    pub buckets: u32,
    /// Entries per bucket.
    pub slots: u32,
    /// Circular log bytes.
    pub log_bytes: u64,
    /// Largest item.
    pub item_bytes_max: u32,
    /// Records loaded per tenant.
    pub records: u64,
}

fn config_of(spec: &MicaSpec) -> Result<MicaConfig, WorkloadError> {
    let bad = |m: String| WorkloadError::Config(m);
    let key_len = key_len_of(spec.key_bytes).map_err(bad)?;
    if (spec.value_bytes as usize) < VALUE_BYTES_MIN {
        return Err(bad(format!(
            "value_bytes = {}: values are self-verifying and need at least {VALUE_BYTES_MIN}",
            spec.value_bytes
        )));
    }
    let mut config = MicaConfig::new();
    config.buckets = u32::try_from(spec.buckets)
        .map_err(|_| bad(format!("buckets = {} too large", spec.buckets)))?;
    config.slots = Slots::from_count(spec.slots).map_err(|e| bad(e.to_string()))?;
    config.log_bytes = spec.log_bytes;
    config.item_bytes_max = item_bytes(key_len, spec.value_bytes as usize) as u32;
    config.validate().map_err(|e| bad(e.to_string()))?;
    Ok(config)
}

fn key_len_of(key_bytes: u32) -> Result<usize, String> {
    match key_bytes as usize {
        8 => Ok(8),
        n if n >= YCSB_KEY_NAME_BYTES_MAX => Ok(n),
        n => Err(format!(
            "key_bytes = {n}: use 8 (hashed binary keys) or ≥ {YCSB_KEY_NAME_BYTES_MAX} (YCSB key names)"
        )),
    }
}

/// The key of `keynum`, written into `out`. Inline: a client builds one per request, and an
/// 8-byte key overwrites the one before it in place (no clear, no append and its capacity check).
#[inline]
pub fn key_of(keynum: u64, key_bytes: u32, out: &mut Vec<u8>) {
    if key_bytes == 8 {
        let hash = naam_ycsb::fnvhash64(keynum as i64).to_le_bytes();
        match <&mut [u8; 8]>::try_from(out.as_mut_slice()) {
            Ok(key) => *key = hash,
            Err(_) => {
                out.clear();
                out.extend_from_slice(&hash);
            }
        }
        return;
    }
    key_name_of(keynum, key_bytes, out);
}

/// [`key_of`] for YCSB key names (`key_bytes` ≥ [`YCSB_KEY_NAME_BYTES_MAX`]).
#[inline(never)]
fn key_name_of(keynum: u64, key_bytes: u32, out: &mut Vec<u8>) {
    out.clear();
    // The name is written straight into `out`'s buffer (lent as a `String`, then given back):
    // a `String` of its own per key was an allocation and a free on every client request.
    // `out` is empty here, so the conversion cannot fail; the fallback only keeps this total.
    let mut name = String::from_utf8(std::mem::take(out)).unwrap_or_default();
    naam_ycsb::push_key_name(&mut name, keynum as i64, 1, false);
    *out = name.into_bytes();
    out.resize(key_bytes as usize, 0);
}

/// The server side.
#[derive(Debug)]
pub struct MicaServer {
    spec: MicaSpec,
    config: MicaConfig,
}

impl MicaServer {
    /// Validates the spec.
    pub fn new(spec: &MicaSpec, _seed: u64) -> Result<MicaServer, WorkloadError> {
        Ok(MicaServer {
            spec: spec.clone(),
            config: config_of(spec)?,
        })
    }
}

/// The three regions as the table wants them.
///
/// # Safety
/// The caller holds the tenant's write lock (or is loading before serving).
unsafe fn regions_mut<'a>(regions: &[&'a SharedRegion]) -> Option<MicaRegionsMut<'a>> {
    let [index, log, meta] = regions else {
        return None;
    };
    // SAFETY: forwarded from the caller: exclusive writer of these regions.
    unsafe {
        Some(MicaRegionsMut {
            index: index.bytes_mut(),
            log: log.bytes_mut(),
            meta: meta.bytes_mut(),
        })
    }
}

impl ServerWorkload for MicaServer {
    fn regions(&self) -> Vec<RegionSpec> {
        // validate() succeeded in new(); recomputing cannot fail.
        let sizes = self.config.validate().ok();
        let (index, log, meta) =
            sizes.map_or((0, 0, 0), |s| (s.index_bytes, s.log_bytes, s.meta_bytes));
        vec![
            RegionSpec {
                name: "mica-index",
                len: index as u64,
                perms: Perms::READ_WRITE,
            },
            RegionSpec {
                name: "mica-log",
                len: log as u64,
                perms: Perms::READ_WRITE,
            },
            RegionSpec {
                name: "mica-meta",
                len: meta as u64,
                perms: Perms::READ_WRITE,
            },
        ]
    }

    fn functions(&self, tenant: u32) -> Result<Vec<FunctionSpec>, WorkloadError> {
        let get = match self.spec.tenant_programs {
            TenantPrograms::Shared => FunctionCode::Elf {
                object: GET_OBJECT.into(),
                section: GET_FUNCTION_SECTION,
            },
            TenantPrograms::Distinct => FunctionCode::Elf {
                object: tenant_get_object(tenant_salt(tenant))
                    .map_err(|e| WorkloadError::Config(e.to_string()))?
                    .into(),
                section: TENANT_GET_SECTION,
            },
        };
        Ok(vec![
            FunctionSpec {
                id: MICA_GET,
                name: "mica_get",
                code: get,
            },
            FunctionSpec {
                id: MICA_SET,
                name: "mica_set",
                code: FunctionCode::HostNative,
            },
        ])
    }

    fn load(&self, tenant: u32, regions: &[&SharedRegion]) -> Result<(), WorkloadError> {
        let load_err = |message: String| WorkloadError::Load { tenant, message };
        // SAFETY: loading happens before the host serves anything: no other writer or reader.
        let parts =
            unsafe { regions_mut(regions) }.ok_or_else(|| load_err("expected 3 regions".into()))?;
        // The regions are freshly created, hence zero (this trait's contract): the table skips
        // zeroing them again, which would fault in every page of the log.
        let mut table =
            MicaTable::format_zeroed(self.config, parts).map_err(|e| load_err(e.to_string()))?;
        let mut key = Vec::new();
        let mut value = vec![0u8; self.spec.value_bytes as usize];
        for keynum in 0..self.spec.records {
            key_of(keynum, self.spec.key_bytes, &mut key);
            values::fill_value(&mut value, keynum, 0);
            table
                .set(&key, &value)
                .map_err(|e| load_err(format!("record {keynum}: {e}")))?;
        }
        let evicted = table.stats().evictions_bucket_full + table.stats().evictions_same_tag;
        if evicted * LOAD_EVICTED_PER_MILLE_MAX_DIVISOR > self.spec.records {
            return Err(load_err(format!(
                "{evicted} of {} records evicted at load (lossy index): raise buckets or log_bytes",
                self.spec.records
            )));
        }
        if evicted > 0 {
            eprintln!(
                "mica: tenant {tenant}: {evicted} of {} records evicted at load (MICA's lossy index); their GETs miss",
                self.spec.records
            );
        }
        Ok(())
    }

    fn meta(&self, _regions: &[&SharedRegion]) -> WorkloadMeta {
        WorkloadMeta::Mica(MicaMeta {
            buckets: self.config.buckets,
            slots: self.config.slots.count() as u32,
            log_bytes: self.config.log_bytes,
            item_bytes_max: self.config.item_bytes_max,
            records: self.spec.records,
        })
    }

    fn native(
        &self,
        function: FunctionId,
        args: &[u8],
        regions: &[&SharedRegion],
    ) -> Result<Vec<u8>, u32> {
        if function != MICA_SET {
            return Err(SET_ERR_ARGS);
        }
        let (key, value) = decode_set(args).ok_or(SET_ERR_ARGS)?;
        // SAFETY: the host calls native functions holding the tenant's write lock.
        let parts = unsafe { regions_mut(regions) }.ok_or(SET_ERR_ARGS)?;
        let mut table = MicaTable::reattach(parts).map_err(|_| SET_ERR_TABLE)?;
        table.set(key, value).map_err(|_| SET_ERR_TABLE)?;
        Ok(vec![SET_STORED])
    }
}

/// The client side: YCSB operations over the tenants' tables.
#[derive(Debug)]
pub struct MicaClient {
    spec: MicaSpec,
    config: MicaConfig,
    rkeys: Vec<MicaRkeys>,
    generator: OperationGenerator,
    tenants: Mix,
    index: u32,
    writes: u32,
    verify: bool,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl MicaClient {
    /// A client `index` with `seed` over the published tables.
    pub fn new(
        spec: &MicaSpec,
        meta: &MicaMeta,
        tenants: &[TenantMeta],
        index: u32,
        seed: u64,
        verify: bool,
    ) -> Result<MicaClient, WorkloadError> {
        let config = config_of(spec)?;
        if meta.buckets != config.buckets
            || meta.log_bytes != config.log_bytes
            || meta.records != spec.records
        {
            return Err(WorkloadError::Meta(format!(
                "host table {meta:?} differs from the configured {spec:?}"
            )));
        }
        let rkeys = tenants
            .iter()
            .map(|t| match t.rkeys[..] {
                [index, log, meta] => Ok(MicaRkeys { index, log, meta }),
                _ => Err(WorkloadError::Meta(format!(
                    "a MICA tenant has {} regions, expected 3",
                    t.rkeys.len()
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let generator = ycsb_generator(spec, seed)?;
        let value = vec![0u8; spec.value_bytes as usize];
        Ok(MicaClient {
            spec: spec.clone(),
            config,
            rkeys,
            generator,
            tenants: Mix(seed ^ 0x7e4a),
            index,
            writes: 0,
            verify,
            key: Vec::new(),
            value,
        })
    }

    // Inline: one call per GET, from `next` only.
    #[inline]
    fn get(&mut self, tenant: u32, keynum: u64, out: &mut Request) {
        let rkeys = self.rkeys[tenant as usize];
        // One CityHash per GET for the argument block and the initial access.
        let a = GetArgs::new(self.config, rkeys, &self.key)
            .encode_with_access(&mut out.args)
            .expect("key and item sizes were validated against the config");
        set_one_read(&mut out.descriptors, a.rkey, a.offset, a.len);
        out.function = MICA_GET.0;
        out.host_only = false;
        out.expect = match (self.verify, self.spec.tenant_programs) {
            (false, _) => Expect::Anything,
            (true, TenantPrograms::Shared) => Expect::MicaValueOf(keynum),
            (true, TenantPrograms::Distinct) => Expect::MicaTenantValueOf {
                keynum,
                salt: tenant_salt(tenant),
            },
        };
    }

    fn set(&mut self, tenant: u32, keynum: u64, out: &mut Request) {
        self.writes = self.writes.wrapping_add(1);
        values::fill_value(
            &mut self.value,
            keynum,
            values::version_of(self.index, self.writes),
        );
        encode_set(&self.key, &self.value, &mut out.args);
        // The SET's write set: the bucket it modifies (checked for tenant and write permission).
        let args = GetArgs::new(self.config, self.rkeys[tenant as usize], &self.key);
        let a = args.initial_access();
        let write = Descriptor {
            rkey: Rkey(a.rkey),
            offset: a.offset,
            len: a.len,
            kind: AccessKind::Write,
        };
        set_one(&mut out.descriptors, write);
        out.function = MICA_SET.0;
        out.host_only = true;
        out.expect = if self.verify {
            Expect::MicaStored
        } else {
            Expect::Anything
        };
    }
}

impl MicaClient {
    /// A decoded GET reply against the value `keynum` must hold.
    fn check_get(&self, reply: GetReply<'_>, keynum: u64) -> Verified {
        match reply {
            GetReply::Hit(value) => {
                match values::check_value(value, keynum, self.spec.value_bytes as usize) {
                    Ok(_) => Verified::Correct,
                    Err(why) => Verified::Wrong(why),
                }
            }
            GetReply::Miss => Verified::Miss,
        }
    }
}

fn ycsb_generator(spec: &MicaSpec, seed: u64) -> Result<OperationGenerator, WorkloadError> {
    let bad = |m: String| WorkloadError::Config(m);
    let mut ycsb = spec.ycsb_workload.spec();
    if ycsb.proportions.scan > 0.0 {
        return Err(bad(format!(
            "YCSB workload {} has scans; MICA is a hash table without ordered scans",
            spec.ycsb_workload
        )));
    }
    ycsb.request_distribution = spec.distribution;
    let run = RunConfig {
        records: spec.records,
        operations: CLIENT_OPERATIONS_MAX,
        spec: ycsb,
    };
    OperationGenerator::new(&run, seed, 0, 1).map_err(|e| bad(e.to_string()))
}

impl ClientWorkload for MicaClient {
    fn next(&mut self, out: &mut Request) {
        let op = self.generator.next_operation();
        let tenant = self.tenants.pick(self.rkeys.len() as u32);
        key_of(op.keynum, self.spec.key_bytes, &mut self.key);
        out.tenant = tenant;
        match op.kind {
            // Scans are refused at construction (no scans on a hash table).
            OpKind::Read | OpKind::Scan => {
                out.op = "read";
                self.get(tenant, op.keynum, out);
            }
            OpKind::Update | OpKind::ReadModifyWrite | OpKind::Insert => {
                out.op = if op.kind == OpKind::Insert {
                    "insert"
                } else {
                    "update"
                };
                self.set(tenant, op.keynum, out);
            }
        }
    }

    fn verify(&self, expect: Expect, payload: &[u8]) -> Verified {
        // One call of `check_get` for both GET expectations, so that it inlines (a call per
        // answer otherwise).
        let (decoded, keynum) = match expect {
            Expect::MicaValueOf(keynum) => {
                (GetReply::decode(payload).map_err(|e| e.to_string()), keynum)
            }
            Expect::MicaTenantValueOf { keynum, salt } => {
                (split_salt(payload, salt).map_err(|e| e.to_string()), keynum)
            }
            other => return verify_other(other, payload),
        };
        match decoded {
            Ok(reply) => self.check_get(reply, keynum),
            Err(why) => Verified::Wrong(why),
        }
    }

    fn distribution_name(&self) -> &'static str {
        self.generator.distribution().name()
    }
}

/// [`MicaClient`]'s verdict on answers other than a GET's.
fn verify_other(expect: Expect, payload: &[u8]) -> Verified {
    match expect {
        Expect::Anything => Verified::Correct,
        Expect::MicaValueOf(_) | Expect::MicaTenantValueOf { .. } => {
            Verified::Wrong("a GET expectation checked as another's".into())
        }
        Expect::MicaStored if payload == [SET_STORED] => Verified::Correct,
        Expect::MicaStored => Verified::Wrong(format!("SET answered {payload:?}")),
        Expect::BtreeValue(_) => Verified::Wrong("a B-tree expectation on a MICA request".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Key numbers whose names span short and full-length hashes.
    const KEYNUMS: [u64; 6] = [0, 1, 7, 99_999, 1 << 40, u64::MAX];

    #[test]
    fn key_names_are_ycsb_names_padded_with_zeros() {
        let key_bytes = YCSB_KEY_NAME_BYTES_MAX as u32 + 8;
        let mut key = Vec::new();
        for keynum in KEYNUMS {
            key_of(keynum, key_bytes, &mut key);
            let mut expected = naam_ycsb::key_name(keynum as i64, 1, false).into_bytes();
            expected.resize(key_bytes as usize, 0);
            assert_eq!(key, expected, "keynum {keynum}");
        }
    }

    #[test]
    fn key_names_reuse_the_buffer() {
        let key_bytes = YCSB_KEY_NAME_BYTES_MAX as u32;
        let mut key = Vec::new();
        key_of(KEYNUMS[0], key_bytes, &mut key);
        let buffer = key.as_ptr();
        for keynum in KEYNUMS {
            key_of(keynum, key_bytes, &mut key);
            assert_eq!(key.as_ptr(), buffer, "keynum {keynum}: reallocated");
        }
    }

    #[test]
    fn binary_keys_are_the_hash() {
        let mut key = Vec::new();
        for keynum in KEYNUMS {
            key_of(keynum, 8, &mut key);
            let hash = naam_ycsb::fnvhash64(keynum as i64);
            assert_eq!(key, hash.to_le_bytes(), "keynum {keynum}");
        }
    }
}
