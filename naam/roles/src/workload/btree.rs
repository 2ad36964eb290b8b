//! Cell-style B-tree lookups: per tenant one `nodes` region built by naam-btree's bulk load;
//! lookups are the `btree_lookup` eBPF function, one step per level.
//!
//! Keys are `(i + 1) × KEY_STRIDE` for `i` in `0..keys` and the value of a key is a 64-bit mix of
//! it, so every answer is checkable. A point that sweeps the tree depth gets exactly that depth:
//! the bulk load's fill factor is lowered until the tree has the depth, and if even full nodes
//! are too deep for the configured keys, the key count is reduced (the ready file and the host's
//! log say which keys and depth ran).

use naam_btree::lookup::{LOOKUP_FUNCTION_SECTION, LOOKUP_OBJECT};
use naam_btree::{BTree, BTreeConfig, LookupArgs, LookupReply};
use naam_engine::{FunctionId, Perms};
use naam_ycsb::{OperationGenerator, RunConfig, Workload};
use serde::{Deserialize, Serialize};

use super::values::mix;
use super::{
    ClientWorkload, Expect, FunctionCode, FunctionSpec, Mix, RegionSpec, Request, ServerWorkload,
    TenantMeta, Verified, WorkloadError, WorkloadMeta, set_one_read,
};
use crate::config::BtreeSpec;
use crate::shm::SharedRegion;

/// The lookup function (eBPF).
pub const BTREE_LOOKUP: FunctionId = FunctionId(3);
/// Distance between consecutive keys (leaves room for misses between them).
pub const KEY_STRIDE: u64 = 16;
/// Spare nodes beyond the bulk load (for inserts).
pub const SPARE_NODES: u64 = 16;
/// Fill factor of a bulk load when the depth is not swept.
pub const FILL_PERCENT_DEFAULT: u8 = 100;
/// Operations a client's generator is sized for.
const CLIENT_OPERATIONS_MAX: u64 = 100_000_000;

/// The tree's shape, published to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtreeMeta {
    /// Node size.
    pub node_bytes: u32,
    /// Region size.
    pub region_bytes: u64,
    /// Root node offset.
    pub root_offset: u64,
    /// Levels.
    pub height: u32,
    /// Keys loaded per tenant.
    pub keys: u64,
}

/// The key of index `i`.
pub fn key_at(i: u64) -> u64 {
    (i + 1) * KEY_STRIDE
}

/// The value stored under `key`.
pub fn value_of(key: u64) -> u64 {
    mix(key)
}

/// The server side.
#[derive(Debug)]
pub struct BtreeServer {
    node_bytes: u32,
    keys: u64,
    fill_percent: u8,
    nodes_max: u64,
}

/// Builds the tree of `keys` keys at `fill` into a scratch buffer; returns its height.
fn height_of(node_bytes: u32, keys: u64, fill: u8) -> Result<(u32, u64), String> {
    let nodes = BTreeConfig::nodes_for_bulk_load(node_bytes, keys, fill)
        .ok_or("bad fill or node size")?
        + SPARE_NODES;
    let config = BTreeConfig {
        node_bytes,
        nodes_max: nodes,
    };
    let bytes = config.validate().map_err(|e| e.to_string())?;
    let mut scratch = vec![0u8; bytes];
    let pairs = pairs(keys);
    let tree = BTree::bulk_load(config, &mut scratch, &pairs, fill).map_err(|e| e.to_string())?;
    Ok((tree.superblock().height as u32, nodes))
}

fn pairs(keys: u64) -> Vec<(u64, u64)> {
    (0..keys)
        .map(|i| (key_at(i), value_of(key_at(i))))
        .collect()
}

/// Keys and fill factor giving exactly `depth` levels (see the module docs).
fn shape_for_depth(node_bytes: u32, keys: u64, depth: u32) -> Result<(u64, u8), String> {
    // Too deep (or unbuildable) counts as "at least `depth`": height falls as the fill rises.
    let deep_enough =
        |keys: u64, fill: u8| height_of(node_bytes, keys, fill).map_or(true, |(h, _)| h >= depth);
    let mut keys = keys;
    while height_of(node_bytes, keys, 100)?.0 > depth {
        if keys <= 1 {
            return Err(format!(
                "no tree of depth {depth} exists with {node_bytes}-byte nodes"
            ));
        }
        keys = keys * 2 / 3;
    }
    if !deep_enough(keys, 1) {
        return Err(format!(
            "{keys} keys cannot make a tree of depth {depth} with {node_bytes}-byte nodes; add keys"
        ));
    }
    // The highest fill that is still deep enough.
    let (mut lo, mut hi) = (1u8, 100u8);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if deep_enough(keys, mid) {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    match height_of(node_bytes, keys, lo) {
        Ok((h, _)) if h == depth => Ok((keys, lo)),
        _ => Err(format!(
            "no fill factor gives exactly {depth} levels for {keys} keys of {node_bytes}-byte nodes"
        )),
    }
}

impl BtreeServer {
    /// Chooses keys and fill (for a swept depth) and sizes the region.
    pub fn new(spec: &BtreeSpec, _seed: u64) -> Result<BtreeServer, WorkloadError> {
        let bad = WorkloadError::Config;
        let (keys, fill_percent) = match spec.depth {
            Some(depth) => {
                shape_for_depth(spec.node_bytes, spec.keys.max(1), depth).map_err(bad)?
            }
            None => (spec.keys.max(1), FILL_PERCENT_DEFAULT),
        };
        let (_height, nodes_max) = height_of(spec.node_bytes, keys, fill_percent).map_err(bad)?;
        Ok(BtreeServer {
            node_bytes: spec.node_bytes,
            keys,
            fill_percent,
            nodes_max,
        })
    }

    fn config(&self) -> BTreeConfig {
        BTreeConfig {
            node_bytes: self.node_bytes,
            nodes_max: self.nodes_max,
        }
    }
}

impl ServerWorkload for BtreeServer {
    fn regions(&self) -> Vec<RegionSpec> {
        let len = self.config().validate().unwrap_or(0) as u64;
        vec![RegionSpec {
            name: "btree-nodes",
            len,
            perms: Perms::READ_WRITE,
        }]
    }

    fn functions(&self, _tenant: u32) -> Result<Vec<FunctionSpec>, WorkloadError> {
        let code = FunctionCode::Elf {
            object: LOOKUP_OBJECT.into(),
            section: LOOKUP_FUNCTION_SECTION,
        };
        Ok(vec![FunctionSpec {
            id: BTREE_LOOKUP,
            name: "btree_lookup",
            code,
        }])
    }

    fn load(&self, tenant: u32, regions: &[&SharedRegion]) -> Result<(), WorkloadError> {
        let [nodes] = regions else {
            return Err(WorkloadError::Load {
                tenant,
                message: "expected 1 region".into(),
            });
        };
        // SAFETY: loading happens before the host serves anything.
        let bytes = unsafe { nodes.bytes_mut() };
        BTree::bulk_load(self.config(), bytes, &pairs(self.keys), self.fill_percent)
            .map(drop)
            .map_err(|e| WorkloadError::Load {
                tenant,
                message: e.to_string(),
            })
    }

    fn meta(&self, regions: &[&SharedRegion]) -> WorkloadMeta {
        // The superblock check needs the whole used region: copy it (once, at setup).
        let mut bytes = vec![0u8; regions.first().map_or(0, |r| r.len())];
        let read = regions.first().is_some_and(|r| r.read_into(0, &mut bytes));
        let sb = read
            .then(|| naam_btree::reader::read_superblock(&bytes).ok())
            .flatten();
        WorkloadMeta::Btree(BtreeMeta {
            node_bytes: self.node_bytes,
            region_bytes: regions.first().map_or(0, |r| r.len() as u64),
            root_offset: sb.map_or(0, |s| s.root_offset),
            height: sb.map_or(0, |s| s.height as u32),
            keys: self.keys,
        })
    }

    fn native(
        &self,
        _function: FunctionId,
        _args: &[u8],
        _regions: &[&SharedRegion],
    ) -> Result<Vec<u8>, u32> {
        Err(16)
    }
}

/// The client side: lookups of loaded keys, chosen by the configured distribution.
#[derive(Debug)]
pub struct BtreeClient {
    meta: BtreeMeta,
    rkeys: Vec<u64>,
    generator: OperationGenerator,
    tenants: Mix,
    verify: bool,
}

impl BtreeClient {
    /// A client over the published trees.
    pub fn new(
        spec: &BtreeSpec,
        meta: &BtreeMeta,
        tenants: &[TenantMeta],
        seed: u64,
        verify: bool,
    ) -> Result<BtreeClient, WorkloadError> {
        if meta.node_bytes != spec.node_bytes || meta.keys == 0 || meta.root_offset == 0 {
            return Err(WorkloadError::Meta(format!(
                "host tree {meta:?} does not match {spec:?}"
            )));
        }
        let rkeys = tenants
            .iter()
            .map(|t| {
                t.rkeys
                    .first()
                    .copied()
                    .ok_or_else(|| WorkloadError::Meta("a B-tree tenant without regions".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut ycsb = Workload::C.spec();
        ycsb.request_distribution = spec.distribution;
        let run = RunConfig {
            records: meta.keys,
            operations: CLIENT_OPERATIONS_MAX,
            spec: ycsb,
        };
        let generator = OperationGenerator::new(&run, seed, 0, 1)
            .map_err(|e| WorkloadError::Config(e.to_string()))?;
        Ok(BtreeClient {
            meta: *meta,
            rkeys,
            generator,
            tenants: Mix(seed ^ 0xb7ee),
            verify,
        })
    }
}

impl ClientWorkload for BtreeClient {
    fn next(&mut self, out: &mut Request) {
        let key = key_at(self.generator.next_keynum());
        let tenant = self.tenants.pick(self.rkeys.len() as u32);
        let args = LookupArgs {
            nodes_rkey: self.rkeys[tenant as usize],
            key,
            region_bytes: self.meta.region_bytes,
            node_bytes: self.meta.node_bytes,
            root_offset: self.meta.root_offset,
        };
        out.args.clear();
        // Cannot fail: the shape was checked against the published tree.
        if let Ok(bytes) = args.encode() {
            out.args.extend_from_slice(&bytes);
        }
        let a = args.initial_access();
        set_one_read(&mut out.descriptors, a.rkey, a.offset, a.len);
        out.tenant = tenant;
        out.function = BTREE_LOOKUP.0;
        out.host_only = false;
        out.op = "lookup";
        out.expect = if self.verify {
            Expect::BtreeValue(value_of(key))
        } else {
            Expect::Anything
        };
    }

    fn verify(&self, expect: Expect, payload: &[u8]) -> Verified {
        match expect {
            Expect::Anything => Verified::Correct,
            Expect::BtreeValue(expected) => match LookupReply::decode(payload) {
                Ok(LookupReply::Found(v)) if v == expected => Verified::Correct,
                Ok(LookupReply::Found(v)) => {
                    Verified::Wrong(format!("value {v:#x}, expected {expected:#x}"))
                }
                Ok(LookupReply::NotFound) => Verified::Wrong("a loaded key was not found".into()),
                Err(e) => Verified::Wrong(e.to_string()),
            },
            other => Verified::Wrong(format!("{other:?} on a B-tree request")),
        }
    }

    fn distribution_name(&self) -> &'static str {
        self.generator.distribution().name()
    }
}
