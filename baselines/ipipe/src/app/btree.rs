//! The B-tree actor: a Cell-style B-tree in one object (the nodes region laid out by naam-btree),
//! read by the native reader.

use naam_btree::lookup::{ERR_ARGS, ERR_CORRUPT};
use naam_btree::{BTree, BTreeConfig, BTreeReader, LookupError, LookupReply, LookupRequest};
use serde::{Deserialize, Serialize};

use super::mica::InstallError;
use super::{HandlerError, Request};
use crate::ids::ObjectId;
use crate::memory::{Allocator, ObjectTable};

/// A B-tree owned by an actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtreeApp {
    /// The nodes object.
    pub nodes: ObjectId,
    /// The rkey clients name the nodes region by.
    pub rkey: u64,
}

impl BtreeApp {
    /// Allocates the nodes object for `config` and bulk-loads `pairs` (sorted keys) at
    /// `fill_percent`.
    pub fn install(
        objects: &mut ObjectTable,
        allocator: &mut Allocator,
        config: BTreeConfig,
        pairs: &[(u64, u64)],
        fill_percent: u8,
        rkey: u64,
    ) -> Result<BtreeApp, InstallError> {
        let bytes = config
            .validate()
            .map_err(|e| InstallError::Btree(e.to_string()))?;
        let nodes = objects.malloc(allocator, bytes as u64)?;
        let region = objects.get_mut(nodes)?;
        BTree::bulk_load(config, region, pairs, fill_percent)
            .map_err(|e| InstallError::Btree(e.to_string()))?;
        Ok(BtreeApp { nodes, rkey })
    }

    /// Allocates the nodes object and copies a built tree into it (the region a NAAM host
    /// loaded).
    pub fn adopt(
        objects: &mut ObjectTable,
        allocator: &mut Allocator,
        nodes: &[u8],
        rkey: u64,
    ) -> Result<BtreeApp, InstallError> {
        BTreeReader::open(nodes).map_err(|e| InstallError::Btree(e.to_string()))?;
        let id = objects.malloc(allocator, nodes.len() as u64)?;
        objects.get_mut(id)?.copy_from_slice(nodes);
        Ok(BtreeApp { nodes: id, rkey })
    }

    /// Lookup: the 16 reply bytes `btree_lookup` gives.
    pub fn lookup(
        &self,
        request: &Request<'_>,
        objects: &mut ObjectTable,
        reply: &mut Vec<u8>,
    ) -> Result<(), HandlerError> {
        let args = LookupRequest::parse(request.args).map_err(|_| HandlerError::Function {
            code: ERR_ARGS as u32,
        })?;
        if args.nodes_rkey != self.rkey {
            return Err(HandlerError::UnknownRkey {
                rkey: args.nodes_rkey,
            });
        }
        let corrupt = HandlerError::Function {
            code: ERR_CORRUPT as u32,
        };
        let nodes = objects.get(self.nodes).map_err(|_| corrupt)?;
        let reader = BTreeReader::open(nodes).map_err(|_| corrupt)?;
        let answer = match reader.get(args.key) {
            Ok(Some(value)) => LookupReply::Found(value),
            Ok(None) => LookupReply::NotFound,
            Err(LookupError::RetriesExhausted { .. }) => return Err(HandlerError::Retries),
            Err(_) => return Err(corrupt),
        };
        reply.extend_from_slice(&answer.encode());
        Ok(())
    }
}
