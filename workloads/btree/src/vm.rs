//! The eBPF path of a lookup: `bpf/btree_lookup.o`, verified by naam-vm and run one step per
//! level by naam-engine, in a `naam_engine::local::LocalHost` that owns the `nodes` region.
//!
//! The host-native writer (bulk load, inserts) works on the same bytes between lookups through
//! [`BTreeVm::tree_mut`], as writes do in NAAM: where the data lives.

use naam_engine::function::FunctionError;
use naam_engine::local::{CallReply, LocalError, LocalHost};
use naam_engine::region::RegionError;
use naam_engine::wire::{Descriptors, ErrorCode, ErrorKind};
use naam_engine::{
    Backend, Code, Descriptor, FunctionId, Invoke, Perms, RegionId, RequestId, Rkey, RkeySecret,
    Status, TenantId, Tier,
};

use crate::error::OpenError;
use crate::lookup::{
    ARGS_BYTES, ARGS_KEY, ArgsError, LOOKUP_FUNCTION_SECTION, LOOKUP_OBJECT, LookupArgs,
    LookupFunctionError, LookupReply, ReplyError,
};
use crate::reader::read_superblock;
use crate::tree::BTree;

/// The tenant that owns the `nodes` region and the function in a [`BTreeVm`].
pub const VM_TENANT: TenantId = TenantId(1);
/// The function id of `btree_lookup` in a [`BTreeVm`].
pub const VM_LOOKUP_FUNCTION: FunctionId = FunctionId(1);
/// The secret rkeys derive from. A box serves one process's own tree, so a fixed secret is
/// enough; the rkey is still checked on every access.
const RKEY_SECRET: RkeySecret = RkeySecret(*b"naam-btree-vmbox");

/// A lookup that ran in the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmLookup {
    /// The value, or `None` when the key is absent.
    pub value: Option<u64>,
    /// Steps of the last attempt (one per level).
    pub steps: u8,
    /// `NAAM_RETRY` restarts before the answer.
    pub attempts: u8,
    /// eBPF instructions executed, over all attempts.
    pub insn: u64,
}

/// Setting up or running the eBPF lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The region does not hold a tree.
    #[error("nodes region: {0}")]
    Open(#[from] OpenError),
    /// The engine refused to register the region.
    #[error("registering the nodes region with the engine: {0}")]
    Region(#[source] RegionError),
    /// `bpf/btree_lookup.o` could not be loaded or verified.
    #[error("loading btree_lookup into the engine: {0}")]
    Function(#[source] Box<FunctionError>),
    /// The lookup's arguments cannot be encoded.
    #[error("lookup arguments: {0}")]
    Args(#[from] ArgsError),
    /// The local host could not run the message.
    #[error("running btree_lookup: {0}")]
    Call(#[source] LocalError),
    /// `btree_lookup` met a node being written on every attempt the engine allows.
    #[error("lookup gave up: nodes kept changing through {attempts} retries")]
    RetriesExceeded {
        /// Retries made.
        attempts: u8,
    },
    /// `btree_lookup` returned one of its own error codes.
    #[error("{0}")]
    LookupFunction(LookupFunctionError),
    /// The engine ended the lookup with another error (trap, denied access, unknown code).
    #[error("the engine ended the lookup with {code:?}")]
    Engine {
        /// The engine's error code.
        code: ErrorCode,
    },
    /// The server pushed the message back (a `LocalHost` never should).
    #[error("the local host pushed the lookup back")]
    Pushback,
    /// The reply bytes are not a `btree_lookup` reply.
    #[error("{0}")]
    Reply(#[from] ReplyError),
}

/// A host in a box holding one tree's `nodes` region and `btree_lookup`.
#[derive(Debug)]
pub struct BTreeVm {
    host: LocalHost,
    region: RegionId,
    args: LookupArgs,
    /// `args` encoded (checked) once, at construction: a lookup writes its key into a copy.
    args_block: [u8; ARGS_BYTES],
    /// The first step's access (the root node), built once.
    root_access: Descriptors,
    next_request: u64,
    /// Reused for every lookup's reply.
    reply: CallReply,
    /// A batch's argument blocks and replies ([`BTreeVm::lookup_batch`]), kept across batches.
    batch_args: Vec<[u8; ARGS_BYTES]>,
    batch_replies: Vec<CallReply>,
}

impl BTreeVm {
    /// Registers `nodes` (a region built by `BTree::bulk_load`) and loads `btree_lookup`
    /// (verified once, here).
    pub fn new(nodes: Vec<u8>) -> Result<Self, VmError> {
        BTreeVm::with_backend(nodes, Backend::Interpreter)
    }

    /// [`BTreeVm::new`] with `btree_lookup` loaded for `backend` (`Backend::Jit` runs
    /// interpreted when naam-vm's JIT is not built: [`BTreeVm::tier`] says which ran).
    pub fn with_backend(nodes: Vec<u8>, backend: Backend) -> Result<Self, VmError> {
        let sb = read_superblock(&nodes)?;
        let region_bytes = nodes.len() as u64;
        let mut host = LocalHost::new(RKEY_SECRET);
        host.set_backend(backend);
        let info = host
            .add_region(VM_TENANT, nodes, Perms::READ)
            .map_err(VmError::Region)?;
        let code = Code::Elf {
            object: LOOKUP_OBJECT,
            name: LOOKUP_FUNCTION_SECTION,
        };
        host.register(VM_TENANT, VM_LOOKUP_FUNCTION, "btree_lookup", code)
            .map_err(|e| VmError::Function(Box::new(e)))?;
        let args = LookupArgs {
            nodes_rkey: info.rkey.0,
            key: 0,
            region_bytes,
            node_bytes: sb.node_bytes,
            root_offset: sb.root_offset,
        };
        let args_block = args.encode()?;
        let first = args.initial_access();
        let mut root_access = Descriptors::new();
        // One descriptor always fits (ACCESSES_PER_STEP_MAX >= 1).
        let _ = root_access.push(Descriptor::read(Rkey(first.rkey), first.offset, first.len));
        Ok(BTreeVm {
            host,
            region: info.id,
            args,
            args_block,
            root_access,
            next_request: 0,
            reply: CallReply::empty(),
            batch_args: Vec::new(),
            batch_replies: Vec::new(),
        })
    }

    /// The tier `btree_lookup` runs on.
    pub fn tier(&self) -> Option<Tier> {
        self.host.tier(VM_TENANT, VM_LOOKUP_FUNCTION)
    }

    /// The rkey the engine gave the `nodes` region.
    pub fn rkey(&self) -> u64 {
        self.args.nodes_rkey
    }

    /// The writer's handle on the region, for host-native inserts between lookups.
    pub fn tree_mut(&mut self) -> Result<BTree<'_>, OpenError> {
        let nodes = self.host.region_mut(self.region).unwrap_or_default();
        BTree::open(nodes)
    }

    /// The argument block of a lookup of `key`. Only the key differs between lookups: the
    /// rest of the block was encoded and checked at construction (`LookupArgs::encode`, whose
    /// checks do not depend on the key).
    fn args_of(&self, key: u64) -> [u8; ARGS_BYTES] {
        let mut args = self.args_block;
        args[ARGS_KEY..][..8].copy_from_slice(&key.to_le_bytes());
        args
    }

    /// Looks `key` up with `btree_lookup`.
    pub fn lookup(&mut self, key: u64) -> Result<VmLookup, VmError> {
        let args = self.args_of(key);
        self.next_request += 1;
        let invoke = Invoke::new_message(
            VM_TENANT,
            VM_LOOKUP_FUNCTION,
            RequestId(self.next_request),
            &args,
            self.root_access,
        );
        self.host
            .call_into(&invoke, &mut self.reply)
            .map_err(VmError::Call)?;
        lookup_of(&self.reply)
    }

    /// Looks every key of `keys` up in one batch, all in flight at once
    /// ([`LocalHost::call_batch_into`]: each step's node starts to be fetched while the other
    /// lookups' steps run), and puts each lookup's outcome into `lookups` (cleared first), in
    /// the order of `keys`: what [`BTreeVm::lookup`] returns for that key alone. At most
    /// [`naam_engine::local::CALL_BATCH_MAX`] keys; a batch the host cannot run fails whole
    /// ([`VmError::Call`], `lookups` then empty).
    pub fn lookup_batch(
        &mut self,
        keys: &[u64],
        lookups: &mut Vec<Result<VmLookup, VmError>>,
    ) -> Result<(), VmError> {
        lookups.clear();
        if self.batch_replies.len() < keys.len() {
            self.batch_replies.resize_with(keys.len(), CallReply::empty);
        }
        let mut batch_args = std::mem::take(&mut self.batch_args);
        batch_args.clear();
        batch_args.extend(keys.iter().map(|&key| self.args_of(key)));
        let first_request = self.next_request + 1;
        self.next_request += keys.len() as u64;
        let invokes: Vec<Invoke<'_>> = (batch_args.iter().zip(first_request..))
            .map(|(args, id)| {
                let (tenant, function) = (VM_TENANT, VM_LOOKUP_FUNCTION);
                Invoke::new_message(tenant, function, RequestId(id), args, self.root_access)
            })
            .collect();
        let replies = &mut self.batch_replies[..keys.len()];
        let ran = self.host.call_batch_into(&invokes, replies);
        drop(invokes);
        self.batch_args = batch_args;
        ran.map_err(VmError::Call)?;
        lookups.extend(replies.iter().map(lookup_of));
        Ok(())
    }
}

/// The lookup a reply of `btree_lookup` says.
fn lookup_of(reply: &CallReply) -> Result<VmLookup, VmError> {
    let code = match reply.status {
        Status::Ok => None,
        Status::Error(code) => Some(code),
        Status::Pushback => return Err(VmError::Pushback),
    };
    if let Some(code) = code {
        return Err(error_of(code, reply.attempts));
    }
    let value = match LookupReply::decode(&reply.payload)? {
        LookupReply::Found(value) => Some(value),
        LookupReply::NotFound => None,
    };
    Ok(VmLookup {
        value,
        steps: reply.steps,
        attempts: reply.attempts,
        insn: reply.insn,
    })
}

/// The typed error of an engine error reply.
fn error_of(code: ErrorCode, attempts: u8) -> VmError {
    match code.kind {
        ErrorKind::RetriesExceeded => VmError::RetriesExceeded { attempts },
        ErrorKind::FunctionError => match LookupFunctionError::from_code(u64::from(code.detail)) {
            Some(error) => VmError::LookupFunction(error),
            None => VmError::Engine { code },
        },
        _ => VmError::Engine { code },
    }
}
