//! The eBPF path of GET: `bpf/mica_get.o`, verified by naam-vm and run step by step by
//! naam-engine's [`Executor`], over the same region bytes the host-native writer changes.
//!
//! [`MicaVm`] is a host in a box for one table, like `naam_engine::local::LocalHost`, with one
//! difference: it does not own the regions. `LocalHost` hands out one region at a time
//! (`region_mut`), while MICA's writer needs its three regions at once, so here the caller keeps
//! the bytes (a [`MicaTable`](crate::MicaTable) writes them between GETs) and lends them to each
//! GET through [`RegionMemory`]. The loop is `LocalHost::call`'s: submit, perform every access the
//! executor hands out (in the order it hands them out: declaration order), run one step, repeat.
//!
//! [`RegionMemory::before_access`] sees every access just before its bytes are copied, so a test
//! can play a concurrent writer between the steps of a GET, or between the accesses of one step.

use std::sync::Arc;

use naam_engine::abi::{RETRIES_MAX, STEPS_MAX};
use naam_engine::exec::{AccessFailure, AccessRequest, ConfigError as ExecutorConfigError};
use naam_engine::function::{FunctionBody, FunctionError};
use naam_engine::region::RegionError;
use naam_engine::wire::{Descriptors, ErrorCode, ErrorKind};
use naam_engine::{
    Backend, Code, Descriptor, Executor, ExecutorConfig, Frame, FunctionId, FunctionTable, Invoke,
    Location, Nanos, Perms, RegionId, RegionTable, RequestId, Rkey, RkeySecret, Status, TenantId,
    Tier,
};

use crate::config::MicaConfig;
use crate::error::OpenError;
use crate::get::{
    ArgsError, GET_FUNCTION_SECTION, GET_OBJECT, GetArgs, GetFunctionError, GetReply, MicaRkeys,
    ReplyError,
};
use crate::reader::{GetOutcome, MicaRegions};

/// The tenant that owns the table's regions and function in a [`MicaVm`].
pub const VM_TENANT: TenantId = TenantId(1);
/// The function id of `mica_get` in a [`MicaVm`].
pub const VM_GET_FUNCTION: FunctionId = FunctionId(1);
/// Rounds (one step's accesses, then the step) one GET may take: every step of every attempt the
/// engine allows, plus the round that collects the reply. Beyond it the engine is broken.
pub const GET_ROUNDS_MAX: usize = STEPS_MAX * (RETRIES_MAX + 1) + 1;
/// The secret rkeys derive from. A box serves one process's own table, so a fixed secret is
/// enough; the rkeys are still checked on every access.
const RKEY_SECRET: RkeySecret = RkeySecret(*b"naam-mica-vm-box");

/// One of a table's three regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegionName {
    /// Buckets, then extra buckets.
    Index,
    /// The circular log and its tail mirror.
    Log,
    /// Magic, log tail, free list, configuration echo.
    Meta,
}

impl RegionName {
    /// The region's name in messages: `index`, `log` or `meta`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionName::Index => "index",
            RegionName::Log => "log",
            RegionName::Meta => "meta",
        }
    }
}

/// An access the runtime is about to perform, as [`RegionMemory::before_access`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessEvent {
    /// 0-based round of this GET: round `r` performs the accesses that the `r`-th step (counted
    /// over all attempts) will read.
    pub round: usize,
    /// Position of this access among its round's (declaration order).
    pub index_in_round: usize,
    /// The region read.
    pub region: RegionName,
    /// Byte offset in the region.
    pub offset: u64,
    /// Bytes read.
    pub len: u32,
}

/// Where a GET's accesses are served from: the table's three regions.
pub trait RegionMemory {
    /// The current bytes of `name`.
    fn region(&self, name: RegionName) -> &[u8];

    /// Called just before the bytes of `event` are copied. The default does nothing; tests use
    /// it to change region bytes as a concurrent writer would.
    fn before_access(&mut self, event: &AccessEvent) {
        let _ = event;
    }
}

impl RegionMemory for MicaRegions<'_> {
    fn region(&self, name: RegionName) -> &[u8] {
        match name {
            RegionName::Index => self.index,
            RegionName::Log => self.log,
            RegionName::Meta => self.meta,
        }
    }
}

/// A GET that ran in the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmGet {
    /// Hit (value copied out) or miss.
    pub outcome: GetOutcome,
    /// Steps of the last attempt.
    pub steps: u8,
    /// `NAAM_RETRY` restarts before the answer.
    pub attempts: u8,
    /// eBPF instructions executed, over all attempts.
    pub insn: u64,
}

/// Setting up or running the eBPF GET failed.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The configuration is invalid.
    #[error("MICA table: {0}")]
    Table(#[from] OpenError),
    /// The engine refused to register one of the table's regions.
    #[error("registering the {region} region with the engine: {error}")]
    Region {
        /// `index`, `log` or `meta`.
        region: &'static str,
        /// The engine's refusal.
        #[source]
        error: RegionError,
    },
    /// `bpf/mica_get.o` could not be loaded or verified.
    #[error("loading mica_get into the engine: {0}")]
    Function(#[source] Box<FunctionError>),
    /// The executor refused its configuration.
    #[error("setting up the executor: {0}")]
    Executor(#[source] ExecutorConfigError),
    /// The GET's arguments cannot be encoded (key too long).
    #[error("GET arguments: {0}")]
    Args(#[from] ArgsError),
    /// A region lent to a GET is not as long as the region registered for the table.
    #[error("the {region} region has {bytes_given} bytes, {bytes_registered} were registered")]
    RegionLength {
        /// `index`, `log` or `meta`.
        region: &'static str,
        /// Bytes registered with the engine.
        bytes_registered: usize,
        /// Bytes lent to this GET.
        bytes_given: usize,
    },
    /// `mica_get` saw a writer in the bucket on every attempt the engine allows.
    #[error("GET gave up: the bucket kept changing through {attempts} retries")]
    RetriesExceeded {
        /// Retries made.
        attempts: u8,
    },
    /// `mica_get` returned one of its own error codes.
    #[error("{0}")]
    GetFunction(GetFunctionError),
    /// The engine ended the GET with another error (trap, denied access, unknown code).
    #[error("the engine ended the GET with {code:?}")]
    Engine {
        /// The engine's error code.
        code: ErrorCode,
    },
    /// The reply bytes are not a `mica_get` reply.
    #[error("{0}")]
    Reply(#[from] ReplyError),
    /// The executor's reply frame could not be decoded, or was not a plain reply.
    #[error("the executor produced an unexpected frame")]
    Frame,
    /// The GET did not complete within [`GET_ROUNDS_MAX`] rounds (an engine bug).
    #[error("GET did not complete within {GET_ROUNDS_MAX} rounds")]
    Stuck,
}

/// A host in a box for one MICA table: the engine's region and function tables, an executor at
/// the host location, and reusable buffers (a GET allocates nothing in steady state).
#[derive(Debug)]
pub struct MicaVm {
    config: MicaConfig,
    rkeys: MicaRkeys,
    ids: [RegionId; 3],
    lens: [usize; 3],
    functions: Arc<FunctionTable>,
    regions: Arc<RegionTable>,
    exec: Executor,
    args: Vec<u8>,
    frame: Vec<u8>,
    next_request: u64,
}

const NAMES: [RegionName; 3] = [RegionName::Index, RegionName::Log, RegionName::Meta];

impl MicaVm {
    /// Registers regions sized for `config` and loads `mica_get` (verified once, here) for the
    /// interpreter.
    pub fn new(config: MicaConfig) -> Result<Self, VmError> {
        MicaVm::with_backend(config, Backend::Interpreter)
    }

    /// [`MicaVm::new`] with `mica_get` loaded for `backend` (`Backend::Jit` runs interpreted
    /// when naam-vm's JIT is not built: [`MicaVm::tier`] says which ran).
    pub fn with_backend(config: MicaConfig, backend: Backend) -> Result<Self, VmError> {
        let sizes = config.validate().map_err(OpenError::from)?;
        let lens = [sizes.index_bytes, sizes.log_bytes, sizes.meta_bytes];
        let mut regions = RegionTable::new(RKEY_SECRET);
        let mut infos = Vec::with_capacity(NAMES.len());
        for (name, len) in NAMES.iter().zip(lens) {
            let info = regions
                .register(VM_TENANT, len as u64, Perms::READ)
                .map_err(|error| VmError::Region {
                    region: name.as_str(),
                    error,
                })?;
            infos.push(info);
        }
        let mut functions = FunctionTable::new().with_backend(backend);
        let code = Code::Elf {
            object: GET_OBJECT,
            name: GET_FUNCTION_SECTION,
        };
        functions
            .register_ebpf(VM_TENANT, VM_GET_FUNCTION, "mica_get", code)
            .map_err(|e| VmError::Function(Box::new(e)))?;
        let (functions, regions) = (Arc::new(functions), Arc::new(regions));
        let exec = new_executor(&functions, &regions)?;
        Ok(MicaVm {
            config,
            rkeys: MicaRkeys {
                index: infos[0].rkey.0,
                log: infos[1].rkey.0,
                meta: infos[2].rkey.0,
            },
            ids: [infos[0].id, infos[1].id, infos[2].id],
            lens,
            functions,
            regions,
            exec,
            args: Vec::new(),
            frame: Vec::new(),
            next_request: 0,
        })
    }

    /// The tier `mica_get` runs on.
    pub fn tier(&self) -> Option<Tier> {
        match &self.functions.get(VM_TENANT, VM_GET_FUNCTION)?.body {
            FunctionBody::Ebpf(program) => Some(program.tier()),
            FunctionBody::HostNative => None,
        }
    }

    /// The table's configuration.
    pub fn config(&self) -> &MicaConfig {
        &self.config
    }

    /// The rkeys the engine gave the three regions.
    pub fn rkeys(&self) -> MicaRkeys {
        self.rkeys
    }

    /// GET `key` with `mica_get` over `memory`; on a hit the value is copied into `value`
    /// (cleared first).
    pub fn get<M: RegionMemory>(
        &mut self,
        memory: &mut M,
        key: &[u8],
        value: &mut Vec<u8>,
    ) -> Result<VmGet, VmError> {
        self.check_lengths(memory)?;
        // The key hashed once for the block and the first access, as a client does.
        let first =
            GetArgs::new(self.config, self.rkeys, key).encode_with_access(&mut self.args)?;
        let mut descriptors = Descriptors::new();
        // One descriptor always fits (ACCESSES_PER_STEP_MAX >= 1).
        let _ = descriptors.push(Descriptor::read(Rkey(first.rkey), first.offset, first.len));
        self.next_request += 1;
        let invoke = Invoke::new_message(
            VM_TENANT,
            VM_GET_FUNCTION,
            RequestId(self.next_request),
            &self.args,
            descriptors,
        );
        self.exec.submit(Nanos(0), Nanos(0), 0, &invoke);
        for round in 0..GET_ROUNDS_MAX {
            self.perform_accesses(memory, round);
            if let Some(done) = self.exec.poll_completion(&mut self.frame) {
                return decode_reply(&self.frame, done.insn, value);
            }
            self.exec.run(Nanos(0), 1);
        }
        // The message is still in flight: start over with a fresh executor.
        self.exec = new_executor(&self.functions, &self.regions)?;
        Err(VmError::Stuck)
    }

    fn check_lengths<M: RegionMemory>(&self, memory: &M) -> Result<(), VmError> {
        for (name, &bytes_registered) in NAMES.iter().zip(&self.lens) {
            let bytes_given = memory.region(*name).len();
            if bytes_given != bytes_registered {
                return Err(VmError::RegionLength {
                    region: name.as_str(),
                    bytes_registered,
                    bytes_given,
                });
            }
        }
        Ok(())
    }

    /// Serves every access the executor hands out, in its order.
    fn perform_accesses<M: RegionMemory>(&mut self, memory: &mut M, round: usize) {
        let mut index_in_round = 0;
        while let Some(access) = self.exec.poll_access() {
            match self.region_name(&access) {
                Some(region) => {
                    let event = AccessEvent {
                        round,
                        index_in_round,
                        region,
                        offset: access.descriptor.offset,
                        len: access.descriptor.len,
                    };
                    memory.before_access(&event);
                    complete(&mut self.exec, &access, memory.region(region));
                }
                None => {
                    self.exec
                        .fail_access(Nanos(0), access.id, AccessFailure::DataPath);
                }
            }
            index_in_round += 1;
        }
    }

    fn region_name(&self, access: &AccessRequest) -> Option<RegionName> {
        let at = self.ids.iter().position(|&id| id == access.region)?;
        Some(NAMES[at])
    }
}

fn new_executor(
    functions: &Arc<FunctionTable>,
    regions: &Arc<RegionTable>,
) -> Result<Executor, VmError> {
    Executor::new(
        ExecutorConfig::new(Location::Host),
        Arc::clone(functions),
        Arc::clone(regions),
    )
    .map_err(VmError::Executor)
}

/// Copies an access's bytes into the executor, or fails it if it leaves the region (the engine
/// checked the bounds against the registered length, which `check_lengths` matched).
fn complete(exec: &mut Executor, access: &AccessRequest, region: &[u8]) {
    let start = usize::try_from(access.descriptor.offset).unwrap_or(usize::MAX);
    let bytes = start
        .checked_add(access.descriptor.len as usize)
        .and_then(|end| region.get(start..end));
    match bytes {
        Some(bytes) => {
            exec.complete_access(access.id, bytes);
        }
        None => {
            exec.fail_access(Nanos(0), access.id, AccessFailure::DataPath);
        }
    }
}

fn decode_reply(frame: &[u8], insn: u64, value: &mut Vec<u8>) -> Result<VmGet, VmError> {
    let Ok(Frame::Reply(reply)) = Frame::decode(frame) else {
        return Err(VmError::Frame);
    };
    let code = match reply.status {
        Status::Ok => None,
        Status::Error(code) => Some(code),
        Status::Pushback => return Err(VmError::Frame),
    };
    if let Some(code) = code {
        return Err(match code.kind {
            ErrorKind::RetriesExceeded => VmError::RetriesExceeded {
                attempts: reply.attempts,
            },
            ErrorKind::FunctionError => match GetFunctionError::from_code(u64::from(code.detail)) {
                Some(error) => VmError::GetFunction(error),
                None => VmError::Engine { code },
            },
            _ => VmError::Engine { code },
        });
    }
    value.clear();
    let outcome = match GetReply::decode(reply.payload)? {
        GetReply::Hit(bytes) => {
            value.extend_from_slice(bytes);
            GetOutcome::Hit
        }
        GetReply::Miss => GetOutcome::Miss,
    };
    Ok(VmGet {
        outcome,
        steps: reply.steps,
        attempts: reply.attempts,
        insn,
    })
}
