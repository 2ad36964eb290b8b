//! The executor: continuation-style execution of messages at one location.
//!
//! One executor serves one worker (a host core, a NIC core, a client thread). It is a state
//! machine in the manner of quinn-proto: the caller
//!
//! 1. [`submit`](Executor::submit)s decoded messages (with the time they arrived),
//! 2. drains [`poll_access`](Executor::poll_access) and performs each access its own way — a copy
//!    from host memory, a DMA with a delay, a one-sided read over the network — then hands the
//!    bytes back with [`complete_access`](Executor::complete_access) (in any order, at any later
//!    time: the executor never blocks and serves other messages meanwhile) — or, when the driver
//!    owns the bytes and nothing writes them until the step runs, lends them instead of copying
//!    ([`complete_access_in_place`](Executor::complete_access_in_place), or
//!    [`set_accesses_in_place`](Executor::set_accesses_in_place) for every access),
//! 3. calls [`run`](Executor::run) to execute ready steps in the VM ([`run_with`](Executor::run_with)
//!    over the [`AccessMemory`] that serves lent accesses),
//! 4. drains [`poll_completion`](Executor::poll_completion) for encoded reply frames (or, for a
//!    driver that answers its caller itself, bare payloads:
//!    [`set_reply_payload_only`](Executor::set_reply_payload_only)).
//!
//! Host-native functions (writes such as MICA SET) surface as [`NativeRequest`]s for the host
//! role to perform.
//!
//! Every access is checked by [`RegionTable::check`] before it is handed out; a message whose
//! access is denied ends with a typed error and harms no other message. Steps, retries, the VM
//! instruction budget per step and in-flight messages are all bounded.

use std::collections::VecDeque;
use std::sync::Arc;

use naam_vm::{Helpers, Program, Regions, Trap, Vm, VmConfig};

use crate::abi::{
    self, ACCESS_BYTES_MAX, ACCESSES_PER_STEP_MAX, ARGS_BYTES_MAX, RETRIES_MAX, STATE_BYTES_MAX,
    STEPS_MAX,
};
use crate::function::{FunctionBody, FunctionEntry, FunctionTable};
use crate::helpers::StepCtx;
use crate::ids::{Descriptor, FunctionId, Location, Nanos, RegionId, RequestId, TenantId};
use crate::ready::FrontQueue;
use crate::region::{Denial, RecentRegions, RegionTable, check_region};
use crate::stats::{ExecutorStats, PeriodLoad};
use crate::steer::steer_bucket;
use crate::wire::{
    Descriptors, ErrorCode, ErrorKind, Frame, Invoke, InvokeFlags, LoadSample, Reply, ReplyAddr,
    Status,
};

/// Upper bound of [`ExecutorConfig::inflight_max`].
pub const INFLIGHT_LIMIT: usize = 4096;
/// Default VM instruction budget of one step.
pub const STEP_BUDGET_INSN_DEFAULT: u64 = 100_000;

/// How an executor is set up.
#[derive(Clone, Copy, Debug)]
pub struct ExecutorConfig {
    /// The location it serves (told to functions; decides what may run).
    pub location: Location,
    /// Messages in flight at once (1..=[`INFLIGHT_LIMIT`]); beyond it, messages are pushed back
    /// or refused as overloaded.
    pub inflight_max: usize,
    /// VM instruction budget of one step.
    pub step_budget_insn: u64,
}

impl ExecutorConfig {
    /// A configuration for `location` with the default bounds.
    pub fn new(location: Location) -> ExecutorConfig {
        ExecutorConfig {
            location,
            inflight_max: 256,
            step_budget_insn: STEP_BUDGET_INSN_DEFAULT,
        }
    }
}

/// A bad executor configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `inflight_max` outside 1..=[`INFLIGHT_LIMIT`].
    #[error("inflight_max {value} outside 1..={INFLIGHT_LIMIT}")]
    InflightMax {
        /// The value given.
        value: usize,
    },
    /// A zero step budget.
    #[error("step_budget_insn must be positive")]
    StepBudget,
}

/// Names one pending access of one message (stale ids are recognised and ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccessId {
    slot: u32,
    generation: u32,
    index: u8,
}

impl AccessId {
    /// Packs into a u64 (e.g. the `read_id` of a one-sided read).
    pub fn to_u64(self) -> u64 {
        (u64::from(self.generation & 0x00ff_ffff) << 40)
            | (u64::from(self.slot) << 8)
            | u64::from(self.index)
    }

    /// Unpacks [`AccessId::to_u64`] (stale or forged values are caught at completion).
    pub fn from_u64(raw: u64) -> AccessId {
        AccessId {
            slot: ((raw >> 8) & 0xffff_ffff) as u32,
            generation: (raw >> 40) as u32,
            index: raw as u8,
        }
    }
}

/// An access the caller must perform: already checked against the region table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessRequest {
    /// Hand back with [`Executor::complete_access`] or [`Executor::fail_access`].
    pub id: AccessId,
    /// The tenant on whose behalf it runs.
    pub tenant: TenantId,
    /// The region the rkey resolved to.
    pub region: RegionId,
    /// The access.
    pub descriptor: Descriptor,
}

/// A message for a host-native function: the host role runs it and calls
/// [`Executor::complete_native`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeRequest {
    /// Names the message.
    pub id: AccessId,
    /// The tenant.
    pub tenant: TenantId,
    /// The function.
    pub function: FunctionId,
}

/// Why an access could not be served by the data path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessFailure {
    /// The remote side (e.g. the RNIC) denied it, with a [`Denial::code`].
    Denied(u32),
    /// It could not be carried out (transport error, timeout).
    DataPath,
}

/// What [`Executor::complete_access_into`] did with an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessFill {
    /// The bytes were written into the message's buffer; the access is complete.
    Completed,
    /// The driver's fill could not serve the bytes; the access is still pending (fail it with
    /// [`Executor::fail_access`]).
    NotServed,
    /// Stale or duplicate: no such pending access (the fill was not called).
    Stale,
}

/// Memory the driver owns and lends to the steps that read it, in place of a copy: a host in a
/// box ([`LocalHost`](crate::local::LocalHost)) or a simulator serving accesses from its own
/// bytes. The driver completes such an access with [`Executor::complete_access_in_place`]; the
/// executor asks for its bytes while it runs the step that reads them
/// ([`Executor::step_with`]) and maps them read-only into the VM for that step. The access was
/// checked against the region table before it was handed out, as every access is. The engine
/// still does no IO: the driver answers from memory it already holds.
///
/// Lending is for memory no one else writes while the step runs (a step sees the bytes as they
/// are when it runs, not when the access was completed). Memory shared with other writers (a
/// host worker's shared-memory regions) and off-box data paths keep the copy
/// ([`Executor::complete_access`]).
///
/// A memory may also ask to be told of each access lent at hand-out, before the step that
/// reads it runs ([`AccessMemory::PREFETCHES`], [`AccessMemory::prefetch`]): a driver that
/// keeps several messages in flight (a NIC worker draining its RX ring, MICA's batches) has
/// the access's cache lines fetched while the other messages' steps run.
pub trait AccessMemory {
    /// True when [`AccessMemory::prefetch`] does something: only then does the executor call
    /// it (a constant, so a memory that does not prefetch pays not even the test).
    const PREFETCHES: bool = false;

    /// The `len` bytes at `offset` of `region`, or `None` if the driver cannot serve them (the
    /// message then ends with a data-path error).
    fn bytes(&self, region: RegionId, offset: u64, len: u32) -> Option<&[u8]>;

    /// Told, when [`AccessMemory::PREFETCHES`], of each access lent in place at hand-out
    /// (already checked against the region table), in the order the step declared them, when
    /// the message is queued ready: a hint to start fetching the bytes the step will read. It
    /// must change nothing observable (no byte, and what [`AccessMemory::bytes`] later lends is
    /// what it would have lent).
    #[inline]
    fn prefetch(&self, _region: RegionId, _offset: u64, _len: u32) {}
}

/// Lends nothing: the memory of [`Executor::step`], where every access was copied.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMemory;

impl AccessMemory for NoMemory {
    fn bytes(&self, _region: RegionId, _offset: u64, _len: u32) -> Option<&[u8]> {
        None
    }
}

/// A finished message: its reply frame was written into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The caller's token from [`Executor::submit`] (e.g. which peer sent it).
    pub source: u64,
    /// Where the reply goes (`None`: back to the source).
    pub reply_to: Option<ReplyAddr>,
    /// The request.
    pub request_id: RequestId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its function.
    pub function: FunctionId,
    /// Outcome.
    pub status: Status,
    /// When it was received (as given to submit).
    pub arrived_at: Nanos,
    /// When its first step (or native call) began; equals `finished_at` if it never ran.
    pub started_at: Nanos,
    /// When it finished.
    pub finished_at: Nanos,
    /// eBPF instructions it executed here.
    pub insn: u64,
    /// Steps of its last attempt, as its reply frame says.
    pub steps: u8,
    /// Retries before it ended, as its reply frame says.
    pub attempts: u8,
}

/// What one executed step did: the work a cost model (the simulator's CPU time) charges for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepWork {
    /// eBPF instructions executed (the budget for a step that exhausted it, 0 for another trap).
    pub insn: u64,
    /// Bytes of fetched data the step ran over (its accesses' lengths).
    pub data_bytes: u64,
    /// Accesses it declared for the message's next step, handed out now.
    pub accesses_out: u32,
    /// True when the message ended with this step (reply, error or pushed-back continuation).
    pub finished: bool,
}

/// The sum of several steps' [`StepWork`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Steps run.
    pub steps: u64,
    /// eBPF instructions executed.
    pub insn: u64,
    /// Bytes of fetched data the steps ran over.
    pub data_bytes: u64,
    /// Accesses the steps declared.
    pub accesses_out: u64,
    /// Messages that ended.
    pub finished: u64,
}

impl Work {
    /// Adds one step.
    pub fn add(&mut self, step: &StepWork) {
        self.steps += 1;
        self.insn += step.insn;
        self.data_bytes += step.data_bytes;
        self.accesses_out += u64::from(step.accesses_out);
        self.finished += u64::from(step.finished);
    }
}

/// The class of a VM trap, carried as the detail of an `ErrorKind::Trap` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapClass {
    /// A load or store outside the granted memory.
    OutOfBounds = 1,
    /// The step's instruction budget ran out.
    Budget = 2,
    /// Too deep local calls.
    CallDepth = 3,
    /// A helper refused its arguments.
    Helper = 4,
    /// `NAAM_NEXT` without any declared access.
    NextWithoutAccess = 5,
    /// Any other trap.
    Other = 6,
}

impl TrapClass {
    fn of(trap: &Trap) -> TrapClass {
        match trap {
            Trap::OutOfBounds { .. } => TrapClass::OutOfBounds,
            Trap::BudgetExceeded { .. } => TrapClass::Budget,
            Trap::CallDepthExceeded { .. } => TrapClass::CallDepth,
            Trap::Helper { .. } => TrapClass::Helper,
            #[allow(unreachable_patterns)]
            _ => TrapClass::Other,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Free,
    Accessing,
    Ready,
    Native,
}

/// One message in flight. Buffers are allocated once per slot and reused.
struct Slot {
    generation: u32,
    phase: Phase,
    source: u64,
    reply_to: Option<ReplyAddr>,
    request_id: RequestId,
    tenant: TenantId,
    function: Option<Arc<FunctionEntry>>,
    flow: u32,
    flags: InvokeFlags,
    step: u8,
    attempt: u8,
    args: Box<[u8; ARGS_BYTES_MAX]>,
    args_len: usize,
    state: Box<[u8; STATE_BYTES_MAX]>,
    state_len: usize,
    origin: Descriptors,
    current: Descriptors,
    data: Box<[[u8; ACCESS_BYTES_MAX]; ACCESSES_PER_STEP_MAX]>,
    /// The regions the current descriptors were checked against (valid while Accessing/Ready).
    regions: [RegionId; ACCESSES_PER_STEP_MAX],
    pending_mask: u8,
    /// Accesses completed in place: their bytes are the driver's, lent to the step that reads
    /// them ([`AccessMemory`]) instead of copied into `data`.
    in_place_mask: u8,
    arrived_at: Nanos,
    started_at: Option<Nanos>,
    insn: u64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            generation: 0,
            phase: Phase::Free,
            source: 0,
            reply_to: None,
            request_id: RequestId(0),
            tenant: TenantId(0),
            function: None,
            flow: 0,
            flags: InvokeFlags::default(),
            step: 0,
            attempt: 0,
            args: Box::new([0; ARGS_BYTES_MAX]),
            args_len: 0,
            state: Box::new([0; STATE_BYTES_MAX]),
            state_len: 0,
            origin: Descriptors::new(),
            current: Descriptors::new(),
            data: Box::new([[0; ACCESS_BYTES_MAX]; ACCESSES_PER_STEP_MAX]),
            regions: [RegionId(0); ACCESSES_PER_STEP_MAX],
            pending_mask: 0,
            in_place_mask: 0,
            arrived_at: Nanos(0),
            started_at: None,
            insn: 0,
        }
    }

    /// Marks the access `bit` arrived; true when it was the last pending one (the slot is then
    /// ready to run its step).
    fn arrived(&mut self, bit: u8) -> bool {
        self.pending_mask &= !bit;
        let all = self.pending_mask == 0;
        if all {
            self.phase = Phase::Ready;
        }
        all
    }

    fn invoke_view(&self) -> Invoke<'_> {
        let function = self.function.as_ref().map_or(FunctionId(0), |f| f.id);
        Invoke {
            tenant: self.tenant,
            function,
            request_id: self.request_id,
            flow: self.flow,
            flags: self.flags,
            step: self.step,
            attempt: self.attempt,
            reply_to: self.reply_to,
            args: &self.args[..self.args_len],
            descriptors: self.current,
            origin: if self.step == 0 {
                Descriptors::new()
            } else {
                self.origin
            },
            state: &self.state[..self.state_len],
        }
    }
}

/// A finished message waiting to be polled, with its encoded reply frame.
struct Done {
    completion: Completion,
    frame: Vec<u8>,
}

/// Executes NAAM messages at one location. Owns no socket, thread or clock.
pub struct Executor {
    config: ExecutorConfig,
    functions: Arc<FunctionTable>,
    helpers: Arc<Helpers<StepCtx>>,
    regions: Arc<RegionTable>,
    /// Regions checked before (in `regions`, the last four found): accesses to them skip the
    /// rkey lookup, never the check. Cleared when the tables change.
    recent_regions: RecentRegions,
    /// The function the last submitted message named (in `functions`): consecutive messages
    /// to one function skip the table's hash lookup. Cleared when the tables change.
    last_function: Option<Arc<FunctionEntry>>,
    vm: Vm,
    step_ctx: StepCtx,
    slots: Vec<Slot>,
    free: Vec<u32>,
    ready: FrontQueue<u32>,
    accesses: VecDeque<AccessRequest>,
    natives: VecDeque<NativeRequest>,
    /// Finished messages, oldest first (a host in a box polls each out of an empty queue).
    done: FrontQueue<Done>,
    spare_frames: Vec<Vec<u8>>,
    scratch: Vec<u8>,
    client_permille: u16,
    pushback_credit_insn: Option<u64>,
    /// Every access is lent in place at hand-out ([`Executor::set_accesses_in_place`]).
    accesses_in_place: bool,
    /// Completions carry the bare reply payload instead of an encoded reply frame
    /// ([`Executor::set_reply_payload_only`]).
    reply_payload_only: bool,
    /// Accesses handed out since creation (queued or lent in place).
    accesses_handed_out: u64,
    stats: ExecutorStats,
    period: PeriodLoad,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("config", &self.config)
            .field("inflight", &self.inflight())
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// An executor over shared function and region tables.
    pub fn new(
        config: ExecutorConfig,
        functions: Arc<FunctionTable>,
        regions: Arc<RegionTable>,
    ) -> Result<Executor, ConfigError> {
        if config.inflight_max == 0 || config.inflight_max > INFLIGHT_LIMIT {
            return Err(ConfigError::InflightMax {
                value: config.inflight_max,
            });
        }
        if config.step_budget_insn == 0 {
            return Err(ConfigError::StepBudget);
        }
        let helpers = Arc::clone(functions.helpers());
        Ok(Executor {
            config,
            functions,
            helpers,
            regions,
            recent_regions: RecentRegions::default(),
            last_function: None,
            vm: Vm::new(VmConfig {
                budget_insn: config.step_budget_insn,
            }),
            step_ctx: StepCtx::default(),
            slots: Vec::new(),
            free: Vec::new(),
            ready: FrontQueue::default(),
            accesses: VecDeque::new(),
            natives: VecDeque::new(),
            done: FrontQueue::default(),
            spare_frames: Vec::new(),
            scratch: Vec::new(),
            client_permille: 0,
            pushback_credit_insn: None,
            accesses_in_place: false,
            reply_payload_only: false,
            accesses_handed_out: 0,
            stats: ExecutorStats::default(),
            period: PeriodLoad::default(),
        })
    }

    /// The location this executor serves.
    pub fn location(&self) -> Location {
        self.config.location
    }

    /// Counters since creation.
    pub fn stats(&self) -> &ExecutorStats {
        &self.stats
    }

    /// Messages in flight.
    pub fn inflight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Messages whose accesses are complete and wait for [`Executor::run`].
    pub fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// Swaps in new tables (e.g. after a function was registered). Messages in flight keep the
    /// function they started with.
    pub fn set_tables(&mut self, functions: Arc<FunctionTable>, regions: Arc<RegionTable>) {
        self.helpers = Arc::clone(functions.helpers());
        self.functions = functions;
        self.regions = regions;
        self.recent_regions = RecentRegions::default();
        self.last_function = None;
        // Free slots keep their last function (`fill_slot`): let the old table's entries go.
        for slot in &mut self.slots {
            if slot.phase == Phase::Free {
                slot.function = None;
            }
        }
    }

    /// Server-side pushback share (permille) from the controller: messages whose steering bucket
    /// is below it, and that allow pushback, are pushed back at submission; the value is also the
    /// hint carried in every reply.
    pub fn set_client_permille(&mut self, permille: u16) {
        self.client_permille = permille.min(crate::steer::BUCKETS);
    }

    /// Splinter-style pushback: a message that allows it and has executed more than
    /// `credit_insn` instructions is stopped at its next step boundary and pushed back with its
    /// continuation. `None` disables it.
    pub fn set_pushback_credit(&mut self, credit_insn: Option<u64>) {
        self.pushback_credit_insn = credit_insn;
    }

    /// For a driver that owns every byte any access can name (a host in a box): each access,
    /// once checked, is completed in place at once instead of queued for
    /// [`Executor::poll_access`], and the step that reads it must run with
    /// [`Executor::step_with`] over memory that serves it ([`AccessMemory`]).
    pub fn set_accesses_in_place(&mut self, in_place: bool) {
        self.accesses_in_place = in_place;
    }

    /// For a driver that answers its caller itself (a host in a box): the buffer
    /// [`Executor::poll_completion`] hands back holds only the reply's payload (an Ok reply's
    /// bytes, a pushed-back message's continuation, nothing for an error) instead of an encoded
    /// reply frame; the [`Completion`] carries every other field of the frame.
    pub fn set_reply_payload_only(&mut self, payload_only: bool) {
        self.reply_payload_only = payload_only;
    }

    /// Accepts a message received at `arrived_at`. Every submitted message produces exactly one
    /// [`Completion`], now (refused, pushed back) or later.
    #[inline]
    pub fn submit(&mut self, now: Nanos, arrived_at: Nanos, source: u64, invoke: &Invoke<'_>) {
        self.submit_slot(now, arrived_at, source, invoke);
    }

    /// [`Executor::submit`], and when the message's first accesses are lent in place at once
    /// ([`Executor::set_accesses_in_place`]), `memory` is told of them
    /// ([`AccessMemory::prefetch`]): a driver that submits several messages before it runs
    /// them has each one's first bytes fetched while the others' steps run.
    pub fn submit_with<M: AccessMemory + ?Sized>(
        &mut self,
        now: Nanos,
        arrived_at: Nanos,
        source: u64,
        invoke: &Invoke<'_>,
        memory: &M,
    ) {
        let accepted = self.submit_slot(now, arrived_at, source, invoke);
        if let (true, Some(index)) = (M::PREFETCHES, accepted) {
            self.prefetch_lent(index, memory);
        }
    }

    /// [`Executor::submit`]; the slot of an accepted message (`None`: refused or pushed back).
    ///
    /// One copy out of line, shared by `submit` and `submit_with`: inlined into both, its
    /// `fill_slot` and `take_slot` were no longer inlined into it (≈ 70 instructions a
    /// message more).
    #[inline(never)]
    fn submit_slot(
        &mut self,
        now: Nanos,
        arrived_at: Nanos,
        source: u64,
        invoke: &Invoke<'_>,
    ) -> Option<u32> {
        self.stats.submitted += 1;
        let found = self.cache_function(invoke.tenant, invoke.function);
        // Borrowed from the cache, not cloned: a slot that ran this function last keeps its
        // `Arc` (`fill_slot`), so a message costs no reference-count traffic.
        let (true, Some(entry)) = (found, &self.last_function) else {
            self.refuse(
                now,
                arrived_at,
                source,
                invoke,
                ErrorCode {
                    kind: ErrorKind::UnknownFunction,
                    detail: 0,
                },
            );
            return None;
        };
        self.stats.function(entry.slot).invocations += 1;
        if let Some(code) = self.admission(invoke, entry) {
            let entry = Arc::clone(entry);
            self.refuse_or_push_back(now, arrived_at, source, invoke, &entry, code);
            return None;
        }
        let index = take_slot(&mut self.slots, &mut self.free);
        fill_slot(
            &mut self.slots[index as usize],
            invoke,
            entry,
            source,
            arrived_at,
        );
        self.start_step(now, index);
        Some(index)
    }

    /// True when [`Executor::poll_access`] or [`Executor::poll_completion`] has something: a
    /// driver polling after every event can skip both (and its reply buffer) when not.
    #[inline]
    pub fn has_output(&self) -> bool {
        !self.accesses.is_empty() || !self.done.is_empty()
    }

    /// The next access to perform, if any.
    #[inline]
    pub fn poll_access(&mut self) -> Option<AccessRequest> {
        self.accesses.pop_front()
    }

    /// True when [`Executor::poll_access`] has an access to hand out.
    #[inline]
    pub fn has_access(&self) -> bool {
        !self.accesses.is_empty()
    }

    /// Appends every queued access to `out`, in the order [`Executor::poll_access`] hands them
    /// out one by one, and returns how many. A driver that keeps a buffer of accesses takes a
    /// step's accesses as slice copies: no `Option<AccessRequest>` moved per access.
    #[inline]
    pub fn take_accesses_into(&mut self, out: &mut Vec<AccessRequest>) -> usize {
        let (front, back) = self.accesses.as_slices();
        out.extend_from_slice(front);
        out.extend_from_slice(back);
        let taken = self.accesses.len();
        self.accesses.clear();
        taken
    }

    /// The next host-native call to perform, if any.
    pub fn poll_native(&mut self) -> Option<NativeRequest> {
        self.natives.pop_front()
    }

    /// Hands back the bytes of an access. Stale, duplicate or mis-sized completions are
    /// ignored and return `false`.
    pub fn complete_access(&mut self, id: AccessId, data: &[u8]) -> bool {
        let copy = |buf: &mut [u8]| {
            let sized = buf.len() == data.len();
            if sized {
                buf.copy_from_slice(data);
            }
            sized
        };
        self.complete_access_into(id, copy) == AccessFill::Completed
    }

    /// Completes an access by letting `fill` write its bytes straight into the message's own
    /// buffer, which is exactly the access's length: a driver that reads from memory it holds
    /// needs no buffer of its own and the bytes are copied once, not twice
    /// ([`Executor::complete_access`] copies the driver's buffer in). `fill` says whether it
    /// served the bytes; a stale or duplicate id is not filled.
    ///
    /// Inlined: generic over `fill`, it is instantiated in the driver's crate, where out of
    /// line it called the fill and the descriptors' `as_slice` instead of inlining them.
    #[inline]
    pub fn complete_access_into(
        &mut self,
        id: AccessId,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> AccessFill {
        let Some(slot) = self.live_slot(id, Phase::Accessing) else {
            return AccessFill::Stale;
        };
        let index = usize::from(id.index);
        let bit = 1u8 << id.index;
        let Some(len) = slot.current.as_slice().get(index).map(|d| d.len as usize) else {
            return AccessFill::Stale;
        };
        if slot.pending_mask & bit == 0 {
            return AccessFill::Stale;
        }
        if !fill(&mut slot.data[index][..len]) {
            return AccessFill::NotServed;
        }
        if slot.arrived(bit) {
            self.ready.push_back(id.slot);
        }
        AccessFill::Completed
    }

    /// Completes an access whose bytes the driver lends in place (no copy): the step that reads
    /// them must be run with [`Executor::step_with`] (or [`Executor::run_with`]) over memory
    /// that serves them ([`AccessMemory`]). Stale or duplicate completions return `false`.
    pub fn complete_access_in_place(&mut self, id: AccessId) -> bool {
        let Some(slot) = self.live_slot(id, Phase::Accessing) else {
            return false;
        };
        let bit = 1u8 << id.index;
        if slot.pending_mask & bit == 0 {
            return false;
        }
        slot.in_place_mask |= bit;
        if slot.arrived(bit) {
            self.ready.push_back(id.slot);
        }
        true
    }

    /// Reports that an access failed; its message ends with an error.
    pub fn fail_access(&mut self, now: Nanos, id: AccessId, failure: AccessFailure) -> bool {
        if self.live_slot(id, Phase::Accessing).is_none() {
            return false;
        }
        let code = match failure {
            AccessFailure::Denied(detail) => ErrorCode {
                kind: ErrorKind::AccessDenied,
                detail,
            },
            AccessFailure::DataPath => ErrorCode {
                kind: ErrorKind::DataPath,
                detail: 0,
            },
        };
        self.finish(now, id.slot, Status::Error(code));
        true
    }

    /// The arguments and (checked) descriptors of a pending host-native call.
    pub fn native_call(&self, id: AccessId) -> Option<(&[u8], &[Descriptor])> {
        let slot = self.slots.get(id.slot as usize)?;
        (slot.generation == id.generation && slot.phase == Phase::Native)
            .then(|| (&slot.args[..slot.args_len], slot.current.as_slice()))
    }

    /// Ends a host-native call with its reply bytes or a function error code.
    pub fn complete_native(
        &mut self,
        now: Nanos,
        id: AccessId,
        result: Result<&[u8], u32>,
    ) -> bool {
        if self.live_slot(id, Phase::Native).is_none() {
            return false;
        }
        let status = match result {
            Ok(reply) => {
                // The reply travels through the step context like an eBPF step's (truncated to
                // the ABI's maximum), so both kinds of function finish through one path.
                let len = reply.len().min(abi::REPLY_BYTES_MAX);
                self.step_ctx.reply[..len].copy_from_slice(&reply[..len]);
                self.step_ctx.reply_len = len;
                Status::Ok
            }
            Err(detail) => Status::Error(ErrorCode {
                kind: ErrorKind::FunctionError,
                detail,
            }),
        };
        self.finish(now, id.slot, status);
        true
    }

    /// Runs up to `steps_max` ready steps; returns how many ran.
    pub fn run(&mut self, now: Nanos, steps_max: usize) -> usize {
        self.run_work(now, steps_max).steps as usize
    }

    /// [`Executor::run`] with accesses completed in place served from `memory`.
    ///
    /// Counts steps only: a caller that wants no [`Work`] (a host in a box) does not pay for
    /// each step's data bytes, accesses declared and end test.
    pub fn run_with<M: AccessMemory + ?Sized>(
        &mut self,
        now: Nanos,
        steps_max: usize,
        memory: &M,
    ) -> usize {
        let mut steps = 0;
        while steps < steps_max {
            let Some(index) = self.ready.pop_front() else {
                break;
            };
            self.run_step::<M, true>(now, index, memory);
            if M::PREFETCHES {
                self.prefetch_lent(index, memory);
            }
            steps += 1;
        }
        steps
    }

    /// Runs up to `steps_max` ready steps; returns what they did (a cost model charges for it).
    pub fn run_work(&mut self, now: Nanos, steps_max: usize) -> Work {
        self.run_work_with(now, steps_max, &NoMemory)
    }

    /// [`Executor::run_work`] with accesses completed in place served from `memory`.
    pub fn run_work_with<M: AccessMemory + ?Sized>(
        &mut self,
        now: Nanos,
        steps_max: usize,
        memory: &M,
    ) -> Work {
        let mut work = Work::default();
        while (work.steps as usize) < steps_max {
            let Some(step) = self.step_with(now, memory) else {
                break;
            };
            work.add(&step);
        }
        work
    }

    /// Runs the oldest ready step, if any, and says what it did.
    pub fn step(&mut self, now: Nanos) -> Option<StepWork> {
        self.step_with(now, &NoMemory)
    }

    /// [`Executor::step`] with accesses completed in place
    /// ([`Executor::complete_access_in_place`]) served from `memory`, mapped into the VM without
    /// a copy.
    pub fn step_with<M: AccessMemory + ?Sized>(
        &mut self,
        now: Nanos,
        memory: &M,
    ) -> Option<StepWork> {
        let index = self.ready.pop_front()?;
        let slot = &self.slots[index as usize];
        let data_bytes = slot
            .current
            .as_slice()
            .iter()
            .map(|d| u64::from(d.len))
            .sum();
        let (accesses_before, done_before) = (self.accesses_handed_out, self.done.len());
        let insn = self.run_step::<M, false>(now, index, memory);
        if M::PREFETCHES {
            self.prefetch_lent(index, memory);
        }
        Some(StepWork {
            insn,
            data_bytes,
            accesses_out: (self.accesses_handed_out - accesses_before) as u32,
            finished: self.done.len() > done_before,
        })
    }

    /// The next finished message; its reply frame (or bare payload,
    /// [`Executor::set_reply_payload_only`]) is swapped into `frame` (whose old buffer the
    /// executor keeps for reuse, so steady state allocates nothing).
    ///
    /// Inlined: out of line, its moves of the queued message cost more than its work.
    #[inline]
    pub fn poll_completion(&mut self, frame: &mut Vec<u8>) -> Option<Completion> {
        // Taken in place, not the whole message moved out of the queue first.
        let done = self.done.front_mut()?;
        let completion = done.completion;
        std::mem::swap(frame, &mut done.frame);
        let mut spare = std::mem::take(&mut done.frame);
        self.done.remove_front();
        spare.clear();
        self.spare_frames.push(spare);
        Some(completion)
    }

    /// Ends the current sampling period: a [`LoadSample`] for the controller. `busy_ns` is the
    /// worker's busy time in the period, measured by the caller.
    pub fn take_sample(&mut self, now: Nanos, busy_ns: u64) -> LoadSample {
        let oldest_waiting_ns = self
            .ready
            .front()
            .map_or(0, |&i| now.since(self.slots[i as usize].arrived_at));
        let queue_len = self.ready.len() as u32;
        self.period.take(
            now,
            self.config.location,
            busy_ns,
            queue_len,
            oldest_waiting_ns,
        )
    }

    // ---- internals -----------------------------------------------------------------------

    /// Why a message cannot be started here, if it cannot.
    fn admission(&self, invoke: &Invoke<'_>, entry: &FunctionEntry) -> Option<ErrorCode> {
        if matches!(entry.body, FunctionBody::HostNative) && self.config.location != Location::Host
        {
            return Some(ErrorCode {
                kind: ErrorKind::WrongLocation,
                detail: 0,
            });
        }
        // Host-native functions (writes) are never pushed back: they run only where the data is.
        let pushback_share = matches!(entry.body, FunctionBody::Ebpf(_))
            && self.config.location != Location::Client
            && invoke.flags.has(InvokeFlags::ALLOW_PUSHBACK)
            && steer_bucket(invoke.request_id) < self.client_permille;
        let full = self.free.is_empty() && self.slots.len() >= self.config.inflight_max;
        (pushback_share || full).then_some(ErrorCode {
            kind: ErrorKind::Overloaded,
            detail: 0,
        })
    }

    /// Out of line: inlined, its encodes made every accepted message's `submit` save more
    /// registers and a larger frame.
    #[inline(never)]
    fn refuse_or_push_back(
        &mut self,
        now: Nanos,
        arrived_at: Nanos,
        source: u64,
        invoke: &Invoke<'_>,
        entry: &FunctionEntry,
        code: ErrorCode,
    ) {
        let can_push = code.kind == ErrorKind::Overloaded
            && matches!(entry.body, FunctionBody::Ebpf(_))
            && invoke.flags.has(InvokeFlags::ALLOW_PUSHBACK)
            && self.config.location != Location::Client;
        if can_push {
            self.stats.function(entry.slot).pushbacks += 1;
            self.stats.pushbacks += 1;
            let _ = invoke.encode(&mut self.scratch);
            self.push_done(now, arrived_at, source, invoke, Status::Pushback, 0, 0);
            return;
        }
        self.stats.function(entry.slot).errors += 1;
        self.refuse(now, arrived_at, source, invoke, code);
    }

    /// Out of line, as `refuse_or_push_back`.
    #[inline(never)]
    fn refuse(
        &mut self,
        now: Nanos,
        arrived_at: Nanos,
        source: u64,
        invoke: &Invoke<'_>,
        code: ErrorCode,
    ) {
        self.stats.count_error(code.kind);
        self.scratch.clear();
        self.push_done(now, arrived_at, source, invoke, Status::Error(code), 0, 0);
    }

    /// Queues a completion for a message that never got a slot (payload: `self.scratch`).
    #[allow(clippy::too_many_arguments)]
    fn push_done(
        &mut self,
        now: Nanos,
        arrived_at: Nanos,
        source: u64,
        invoke: &Invoke<'_>,
        status: Status,
        steps: u8,
        insn: u64,
    ) {
        let completion = Completion {
            source,
            reply_to: invoke.reply_to,
            request_id: invoke.request_id,
            tenant: invoke.tenant,
            function: invoke.function,
            status,
            arrived_at,
            started_at: now,
            finished_at: now,
            insn,
            steps,
            attempts: invoke.attempt,
        };
        let reply = Reply {
            request_id: invoke.request_id,
            status,
            location: self.config.location,
            steps,
            attempts: invoke.attempt,
            client_permille: self.client_permille,
            payload: &self.scratch,
        };
        let mut frame = self.spare_frames.pop().unwrap_or_default();
        write_reply(&mut frame, reply, self.reply_payload_only);
        self.done.push_back(Done { completion, frame });
        self.period.record_completion();
    }

    /// Puts the table's entry of `(tenant, id)` in the one-entry cache (`last_function`);
    /// false when the table has none.
    fn cache_function(&mut self, tenant: TenantId, id: FunctionId) -> bool {
        match &self.last_function {
            Some(entry) if entry.tenant == tenant && entry.id == id => true,
            _ => match self.functions.get(tenant, id) {
                Some(entry) => {
                    self.last_function = Some(Arc::clone(entry));
                    true
                }
                None => false,
            },
        }
    }

    fn live_slot(&mut self, id: AccessId, phase: Phase) -> Option<&mut Slot> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        (slot.generation & 0x00ff_ffff == id.generation & 0x00ff_ffff && slot.phase == phase)
            .then_some(slot)
    }

    /// Checks the slot's current descriptors and hands them out (or to the native queue).
    #[inline(always)]
    fn start_step(&mut self, now: Nanos, index: u32) {
        let (slot, mut hand_out, _) = self.split_for_hand_out(index);
        if let Err(denial) = hand_out.start::<false>(slot, index, now) {
            self.deny(now, index, denial);
        }
    }

    /// Slot `index` and, borrowed beside it, what handing out its accesses uses and the last
    /// step's context: a message's next step is checked and handed out with the slot indexed
    /// once.
    #[inline(always)]
    fn split_for_hand_out(&mut self, index: u32) -> (&mut Slot, HandOut<'_>, &StepCtx) {
        let Executor {
            slots,
            recent_regions,
            regions,
            ready,
            accesses,
            natives,
            accesses_handed_out,
            accesses_in_place,
            step_ctx,
            ..
        } = self;
        let hand_out = HandOut {
            recent_regions,
            regions,
            ready,
            accesses,
            natives,
            accesses_handed_out,
            in_place: *accesses_in_place,
        };
        (&mut slots[index as usize], hand_out, step_ctx)
    }

    fn deny(&mut self, now: Nanos, index: u32, denial: Denial) {
        let slot = &self.slots[index as usize];
        self.stats.denials += 1;
        *self.stats.denials_by_tenant.entry(slot.tenant).or_insert(0) += 1;
        if let Some(f) = function_slot(slot) {
            self.stats.function(f).denials += 1;
        }
        let code = ErrorCode {
            kind: ErrorKind::AccessDenied,
            detail: denial.code(),
        };
        self.finish(now, index, Status::Error(code));
    }

    /// Runs one step of the message in slot `index`; returns the instructions it executed (the
    /// budget for a step that exhausted it, 0 for any other trap).
    ///
    /// `BACK_TO_BACK`: the caller runs ready steps in a loop (`run_with`: a host in a box runs
    /// each message's steps one after the other), and the next step's check and hand-out are
    /// inlined into this path. [`Executor::step_with`] (one step per call: the simulator) keeps
    /// them out of line; inlined there they cost the simulator's NIC point ≈ 30 instructions a
    /// request.
    fn run_step<M: AccessMemory + ?Sized, const BACK_TO_BACK: bool>(
        &mut self,
        now: Nanos,
        index: u32,
        memory: &M,
    ) -> u64 {
        let slot = &mut self.slots[index as usize];
        if slot.started_at.is_none() {
            slot.started_at = Some(now);
            self.period.record_queue_delay(now.since(slot.arrived_at));
        }
        // Borrowed beside the step's buffers, not moved out and back: no reference-count
        // traffic and no put-back (with its drop check) per step.
        let (Some(entry), buffers) = split_for_step(slot) else {
            return 0;
        };
        let FunctionBody::Ebpf(program) = &entry.body else {
            return 0;
        };
        let function_slot = entry.slot;
        self.step_ctx.reset();
        let result = execute_step(
            &mut self.vm,
            program,
            &self.helpers,
            &mut self.step_ctx,
            buffers,
            self.config.location,
            memory,
        );
        // Through the slot still borrowed, not a second index into `slots`.
        if let StepEnd::Exit(exit) = &result {
            slot.insn += exit.insn_count;
        }
        self.stats.steps += 1;
        let counters = self.stats.function(function_slot);
        counters.steps += 1;
        match result {
            StepEnd::Unserved => {
                let code = ErrorCode {
                    kind: ErrorKind::DataPath,
                    detail: 0,
                };
                self.finish(now, index, Status::Error(code));
                0
            }
            StepEnd::Exit(exit) => {
                counters.insn += exit.insn_count;
                // A reply ends the message (`after_step`): counted here, where the function's
                // counters are at hand, not looked up again.
                counters.ok += u64::from(exit.r0 == abi::RET_DONE);
                self.stats.insn += exit.insn_count;
                self.after_step::<BACK_TO_BACK>(now, index, exit.r0);
                exit.insn_count
            }
            StepEnd::Trap(trap) => {
                counters.traps += 1;
                self.stats.traps += 1;
                let code = ErrorCode {
                    kind: ErrorKind::Trap,
                    detail: TrapClass::of(&trap) as u32,
                };
                self.finish(now, index, Status::Error(code));
                match trap {
                    Trap::BudgetExceeded { budget } => budget,
                    _ => 0,
                }
            }
        }
    }

    /// Tells `memory` of each access of the message in slot `index` if they were just lent in
    /// place (it is queued ready with lent accesses: its next step will read them; a message
    /// that ended, waits for its accesses or calls a host-native function has none). The
    /// regions are the ones the accesses were checked against.
    #[inline(always)]
    fn prefetch_lent<M: AccessMemory + ?Sized>(&self, index: u32, memory: &M) {
        let slot = &self.slots[index as usize];
        if slot.phase != Phase::Ready || slot.in_place_mask == 0 {
            return;
        }
        for (i, (d, region)) in slot.current.as_slice().iter().zip(slot.regions).enumerate() {
            if slot.in_place_mask & (1 << i) != 0 {
                memory.prefetch(region, d.offset, d.len);
            }
        }
    }

    /// Inlined into the step's path: out of line, the step paid its call and prologue (and the
    /// common `NAAM_NEXT` its tail call to `start_step`).
    #[inline(always)]
    fn after_step<const BACK_TO_BACK: bool>(&mut self, now: Nanos, index: u32, r0: u64) {
        match r0 {
            abi::RET_DONE => {
                // The function's `ok` is counted by the caller (`run_step`).
                self.stats.ok += 1;
                self.finish_with_payload(now, index, Status::Ok, false);
            }
            abi::RET_NEXT if BACK_TO_BACK => self.next_step_inline(now, index),
            abi::RET_NEXT => self.next_step(now, index),
            abi::RET_RETRY => self.retry(now, index),
            code => {
                let detail = u32::try_from(code).unwrap_or(u32::MAX);
                self.finish(
                    now,
                    index,
                    Status::Error(ErrorCode {
                        kind: ErrorKind::FunctionError,
                        detail,
                    }),
                );
            }
        }
    }

    fn next_step(&mut self, now: Nanos, index: u32) {
        self.next_step_inline(now, index);
    }

    /// [`Executor::next_step`], inlined into `run_with`'s step path (`BACK_TO_BACK`): out of
    /// line, each of a message's later steps paid its call and six-register prologue.
    #[inline(always)]
    fn next_step_inline(&mut self, now: Nanos, index: u32) {
        let credit = self.pushback_credit_insn;
        let location = self.config.location;
        let (slot, mut hand_out, step_ctx) = self.split_for_hand_out(index);
        let stop = if step_ctx.reads.is_empty() {
            Some((ErrorKind::Trap, TrapClass::NextWithoutAccess as u32))
        } else if usize::from(slot.step) + 1 >= STEPS_MAX {
            Some((ErrorKind::StepsExceeded, 0))
        } else {
            None
        };
        if let Some((kind, detail)) = stop {
            let code = ErrorCode { kind, detail };
            return self.finish(now, index, Status::Error(code));
        }
        slot.step += 1;
        slot.state_len = step_ctx.saved_state_len;
        // Straight from the step's context, not through a copy on the stack (the descriptors
        // are ≈ 100 bytes).
        slot.current = step_ctx.reads;
        let over_credit = credit.is_some_and(|c| slot.insn > c);
        if over_credit
            && slot.flags.has(InvokeFlags::ALLOW_PUSHBACK)
            && location != Location::Client
        {
            return self.push_back_continuation(now, index);
        }
        if let Err(denial) = hand_out.start::<true>(slot, index, now) {
            self.deny(now, index, denial);
        }
    }

    /// Rare, and out of line: inlined, it made `after_step`'s common path save more registers.
    #[cold]
    #[inline(never)]
    fn retry(&mut self, now: Nanos, index: u32) {
        let slot = &mut self.slots[index as usize];
        if usize::from(slot.attempt) >= RETRIES_MAX {
            return self.finish(
                now,
                index,
                Status::Error(ErrorCode {
                    kind: ErrorKind::RetriesExceeded,
                    detail: 0,
                }),
            );
        }
        slot.attempt += 1;
        slot.step = 0;
        slot.state_len = 0;
        slot.current = slot.origin;
        self.stats.retries += 1;
        if let Some(f) = function_slot(slot) {
            self.stats.function(f).retries += 1;
        }
        self.start_step(now, index);
    }

    /// Rare, and out of line: inlined, it made `after_step`'s common path save more registers.
    #[cold]
    #[inline(never)]
    fn push_back_continuation(&mut self, now: Nanos, index: u32) {
        let slot = &self.slots[index as usize];
        // Cannot fail: every part of a slot is within the wire maxima.
        let _ = slot.invoke_view().encode(&mut self.scratch);
        self.stats.pushbacks += 1;
        if let Some(f) = function_slot(slot) {
            self.stats.function(f).pushbacks += 1;
        }
        self.finish_with_payload(now, index, Status::Pushback, true);
    }

    /// Ends the message in slot `index` with `status`, counted. (A step that replies counts its
    /// `ok` in `run_step` and `after_step`, and goes straight to `finish_with_payload`.)
    fn finish(&mut self, now: Nanos, index: u32, status: Status) {
        match status {
            Status::Ok => {
                self.stats.ok += 1;
                if let Some(f) = function_slot(&self.slots[index as usize]) {
                    self.stats.function(f).ok += 1;
                }
            }
            Status::Error(code) => {
                self.stats.count_error(code.kind);
                if let Some(f) = function_slot(&self.slots[index as usize]) {
                    self.stats.function(f).errors += 1;
                }
            }
            Status::Pushback => {}
        }
        self.finish_with_payload(now, index, status, false);
    }

    /// Encodes the reply (payload: the step's reply bytes, or `self.scratch` for a
    /// continuation) and frees the slot.
    ///
    /// Inlined into `finish` (every message's end) and the rare pushed-back continuation: one
    /// call and prologue per message fewer.
    #[inline(always)]
    fn finish_with_payload(&mut self, now: Nanos, index: u32, status: Status, continuation: bool) {
        let slot = &mut self.slots[index as usize];
        let payload: &[u8] = match status {
            Status::Ok => self.step_ctx.reply_bytes(),
            Status::Pushback if continuation => &self.scratch,
            _ => &[],
        };
        let function = slot.function.as_ref().map_or(FunctionId(0), |f| f.id);
        let steps = slot.step.saturating_add(1);
        let reply = Reply {
            request_id: slot.request_id,
            status,
            location: self.config.location,
            steps,
            attempts: slot.attempt,
            client_permille: self.client_permille,
            payload,
        };
        let mut frame = self.spare_frames.pop().unwrap_or_default();
        write_reply(&mut frame, reply, self.reply_payload_only);
        self.done.push_back_with(|| Done {
            completion: Completion {
                source: slot.source,
                reply_to: slot.reply_to,
                request_id: slot.request_id,
                tenant: slot.tenant,
                function,
                status,
                arrived_at: slot.arrived_at,
                started_at: slot.started_at.unwrap_or(now),
                finished_at: now,
                insn: slot.insn,
                steps,
                attempts: slot.attempt,
            },
            frame,
        });
        self.period.record_completion();
        slot.phase = Phase::Free;
        // The function's `Arc` stays: the slot's next message, usually to the same function,
        // reuses it (`fill_slot`); `set_tables` drops those of free slots.
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(index);
    }
}

/// Writes `reply` into `frame`: the encoded frame, or only its payload.
fn write_reply(frame: &mut Vec<u8>, reply: Reply<'_>, payload_only: bool) {
    if payload_only {
        frame.extend_from_slice(reply.payload);
    } else {
        // Cannot fail: payloads are bounded by construction.
        let _ = Frame::Reply(reply).encode(frame);
    }
}

/// The dense counter slot of the slot's function, if it has one.
fn function_slot(slot: &Slot) -> Option<u32> {
    slot.function.as_ref().map(|f| f.slot)
}

/// A free slot's index (a new slot when none is free).
fn take_slot(slots: &mut Vec<Slot>, free: &mut Vec<u32>) -> u32 {
    if let Some(index) = free.pop() {
        return index;
    }
    slots.push(Slot::new());
    (slots.len() - 1) as u32
}

/// What handing out a step's accesses uses beside its slot, borrowed apart from it
/// ([`Executor::split_for_hand_out`]).
struct HandOut<'e> {
    recent_regions: &'e mut RecentRegions,
    regions: &'e RegionTable,
    ready: &'e mut FrontQueue<u32>,
    accesses: &'e mut VecDeque<AccessRequest>,
    natives: &'e mut VecDeque<NativeRequest>,
    accesses_handed_out: &'e mut u64,
    in_place: bool,
}

impl HandOut<'_> {
    /// Checks `slot`'s current descriptors and hands them out, or queues it as ready or for
    /// its native call. `CONTINUED`: a message's later step, whose function is the eBPF one
    /// its last step ran (never host-native). A denied message must end (`Executor::deny`).
    #[inline(always)]
    fn start<const CONTINUED: bool>(
        &mut self,
        slot: &mut Slot,
        index: u32,
        now: Nanos,
    ) -> Result<(), Denial> {
        self.check(slot)?;
        if !CONTINUED
            && matches!(
                slot.function.as_deref().map(|f| &f.body),
                Some(FunctionBody::HostNative)
            )
        {
            slot.phase = Phase::Native;
            slot.started_at.get_or_insert(now);
            let function = slot.function.as_ref().map_or(FunctionId(0), |f| f.id);
            self.natives.push_back(NativeRequest {
                id: access_id(slot, index, 0),
                tenant: slot.tenant,
                function,
            });
            return Ok(());
        }
        self.hand_out(slot, index);
        Ok(())
    }

    /// Checks each of `slot`'s current descriptors, its region straight into `slot.regions`
    /// (a denied message ends, and its regions are then never read).
    #[inline(always)]
    fn check(&mut self, slot: &mut Slot) -> Result<(), Denial> {
        let tenant = slot.tenant;
        for (d, checked) in slot.current.as_slice().iter().zip(&mut slot.regions) {
            let Some(info) = self.recent_regions.lookup(self.regions, d.rkey) else {
                return Err(Denial::UnknownRkey { rkey: d.rkey });
            };
            *checked = check_region(info, tenant, d)?;
        }
        Ok(())
    }

    /// Hands out `slot`'s checked accesses: lent in place (then it is ready), or queued for
    /// the driver.
    #[inline(always)]
    fn hand_out(&mut self, slot: &mut Slot, index: u32) {
        if slot.current.is_empty() {
            slot.phase = Phase::Ready;
            self.ready.push_back(index);
            return;
        }
        let all = ((1u16 << slot.current.len()) - 1) as u8;
        *self.accesses_handed_out += slot.current.len() as u64;
        if self.in_place {
            slot.phase = Phase::Ready;
            slot.pending_mask = 0;
            slot.in_place_mask = all;
            self.ready.push_back(index);
            return;
        }
        slot.phase = Phase::Accessing;
        slot.pending_mask = all;
        slot.in_place_mask = 0;
        for (i, (d, region)) in slot.current.as_slice().iter().zip(slot.regions).enumerate() {
            self.accesses.push_back(AccessRequest {
                id: access_id(slot, index, i),
                tenant: slot.tenant,
                region,
                descriptor: *d,
            });
        }
    }
}

/// The id of access `i` of the message in `slot` (at `index`).
#[inline(always)]
fn access_id(slot: &Slot, index: u32, i: usize) -> AccessId {
    AccessId {
        slot: index,
        generation: slot.generation,
        index: i as u8,
    }
}

fn fill_slot(
    slot: &mut Slot,
    invoke: &Invoke<'_>,
    entry: &Arc<FunctionEntry>,
    source: u64,
    arrived_at: Nanos,
) {
    slot.phase = Phase::Accessing;
    slot.source = source;
    slot.reply_to = invoke.reply_to;
    slot.request_id = invoke.request_id;
    slot.tenant = invoke.tenant;
    // A slot keeps its last message's function: the same one again costs no reference-count
    // traffic (two atomic operations per message).
    if !slot
        .function
        .as_ref()
        .is_some_and(|f| Arc::ptr_eq(f, entry))
    {
        slot.function = Some(Arc::clone(entry));
    }
    slot.flow = invoke.flow;
    slot.flags = invoke.flags;
    slot.step = invoke.step;
    slot.attempt = invoke.attempt;
    slot.args[..invoke.args.len()].copy_from_slice(invoke.args);
    slot.args_len = invoke.args.len();
    // A first step carries no state: no call into `memcpy` for nothing.
    if !invoke.state.is_empty() {
        slot.state[..invoke.state.len()].copy_from_slice(invoke.state);
    }
    slot.state_len = invoke.state.len();
    slot.current = invoke.descriptors;
    // Copied from the slot, not the invoke: one copy of the descriptors, not two through a
    // temporary.
    slot.origin = if invoke.step == 0 {
        slot.current
    } else {
        invoke.origin
    };
    slot.pending_mask = 0;
    slot.in_place_mask = 0;
    slot.arrived_at = arrived_at;
    slot.started_at = None;
    slot.insn = 0;
}

/// What a step reads and writes of its slot, borrowed beside the slot's function.
struct StepBuffers<'s> {
    args: &'s [u8],
    state: &'s mut [u8; STATE_BYTES_MAX],
    state_len: usize,
    current: &'s Descriptors,
    data: &'s [[u8; ACCESS_BYTES_MAX]; ACCESSES_PER_STEP_MAX],
    regions: &'s [RegionId; ACCESSES_PER_STEP_MAX],
    in_place_mask: u8,
    step: u8,
    attempt: u8,
}

/// The slot's function and, borrowed beside it, its step's buffers.
#[inline(always)]
fn split_for_step(slot: &mut Slot) -> (Option<&FunctionEntry>, StepBuffers<'_>) {
    let Slot {
        function,
        args,
        args_len,
        state,
        state_len,
        current,
        data,
        regions,
        in_place_mask,
        step,
        attempt,
        ..
    } = slot;
    let buffers = StepBuffers {
        args: &args[..*args_len],
        state,
        state_len: *state_len,
        current,
        data,
        regions,
        in_place_mask: *in_place_mask,
        step: *step,
        attempt: *attempt,
    };
    (function.as_deref(), buffers)
}

/// How a step ended.
enum StepEnd {
    /// The program exited.
    Exit(naam_vm::Exit),
    /// The VM trapped.
    Trap(Trap),
    /// The driver could not lend the bytes of an access completed in place (the VM did not run).
    Unserved,
}

/// Runs one step of `program` over the slot's args, state and fetched data (copied into the
/// slot, or lent in place by `memory`).
///
/// The context block is mapped first, into the first embedder slot: naam-vm's JIT starts its
/// read cache on that slot, so a program's first loads (its context fields) hit it. The
/// context holds the VM addresses of the regions mapped after it, which are known before they
/// are mapped (`EmbedderSlots`), so it is written before it is lent to the VM.
fn execute_step<M: AccessMemory + ?Sized>(
    vm: &mut Vm,
    program: &Program,
    helpers: &Helpers<StepCtx>,
    step_ctx: &mut StepCtx,
    buffers: StepBuffers<'_>,
    location: Location,
    memory: &M,
) -> StepEnd {
    let (args, state, current) = (buffers.args, buffers.state, buffers.current);
    let ctx = StepContext {
        args_len: args.len(),
        step: buffers.step,
        state_bytes: state.len(),
        state_len: buffers.state_len,
        attempt: buffers.attempt,
        location,
    }
    .encode(current.as_slice());
    // `Regions`, not `Memory`: the VM installs its slots into them (`Vm::run_regions`), so the
    // step does not first empty them.
    let mut mem = Regions::new();
    let ctx_addr = map_read(&mut mem, &ctx);
    // Each buffer gets the address written into the context above (checked in debug builds).
    let mut check = EmbedderSlots::after_context();
    let args_addr = map_read(&mut mem, args);
    debug_assert_eq!(args_addr, check.next_address(args.len()));
    let state_bytes = state.len();
    // Cannot fail: see `map_read`.
    let state_addr = mem.map_write(&mut state[..]).unwrap_or(0);
    debug_assert_eq!(state_addr, check.next_address(state_bytes));
    for (i, (d, buf)) in current.as_slice().iter().zip(buffers.data).enumerate() {
        let len = d.len as usize;
        let bytes = if buffers.in_place_mask & (1 << i) == 0 {
            &buf[..len]
        } else {
            match memory.bytes(buffers.regions[i], d.offset, d.len) {
                Some(lent) if lent.len() == len => lent,
                _ => return StepEnd::Unserved,
            }
        };
        // Mapped even if empty, as its context entry says (`EmbedderSlots::next_data_address`).
        let addr = mem.map_read(bytes).unwrap_or(0);
        debug_assert_eq!(addr, check.next_data_address());
    }
    let result = vm.run_regions(
        program,
        &mut mem,
        helpers,
        step_ctx,
        ctx_addr,
        abi::ctx::BYTES as u64,
    );
    match result {
        Ok(exit) => StepEnd::Exit(exit),
        Err(trap) => StepEnd::Trap(trap),
    }
}

/// The scalar fields of a step's context block; `encode` writes them with the VM address each
/// buffer mapped after the context will get (`EmbedderSlots`).
struct StepContext {
    args_len: usize,
    step: u8,
    /// The state buffer's capacity, which is what gets mapped.
    state_bytes: usize,
    /// The bytes of state the function saved.
    state_len: usize,
    attempt: u8,
    location: Location,
}

impl StepContext {
    /// Written as 64-bit words, each u32 field paired with its neighbour (the ABI's layout,
    /// asserted below): 13 word stores instead of a zeroed block and 20 field stores, which in
    /// the engine's inlined step spilled and reloaded half of the fields.
    #[inline(always)]
    fn encode(&self, current: &[Descriptor]) -> [u8; abi::ctx::BYTES] {
        let mut words = [0u64; CTX_WORDS];
        let mut slots = EmbedderSlots::after_context();
        words[0] = slots.next_address(self.args_len);
        words[1] = u32_pair(self.args_len as u32, u32::from(self.step));
        words[2] = slots.next_address(self.state_bytes);
        words[3] = u32_pair(self.state_len as u32, u32::from(self.attempt));
        let location = u32::from(self.location.code());
        words[4] = u32_pair(location, current.len() as u32);
        let entries = words[CTX_HEADER_WORDS..].chunks_exact_mut(2);
        for (entry, d) in entries.zip(current) {
            entry[0] = slots.next_data_address();
            // The entry's `_reserved` half stays 0.
            entry[1] = u64::from(d.len);
        }
        let mut ctx = [0u8; abi::ctx::BYTES];
        for (bytes, word) in ctx.chunks_exact_mut(8).zip(words) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        ctx
    }
}

/// The context block in 64-bit words: the header, then two per data entry.
const CTX_WORDS: usize = abi::ctx::BYTES / 8;
const CTX_HEADER_WORDS: usize = abi::ctx::DATA / 8;

// The word layout `StepContext::encode` writes is the ABI's.
const _: () = {
    use abi::ctx;
    assert!(
        ctx::BYTES.is_multiple_of(8) && ctx::DATA.is_multiple_of(8) && ctx::DATA_ENTRY_BYTES == 16
    );
    assert!(ctx::ARGS == 0 && ctx::ARGS_LEN == 8 && ctx::STEP == 12);
    assert!(ctx::STATE == 16 && ctx::STATE_LEN == 24 && ctx::ATTEMPT == 28);
    assert!(ctx::LOCATION == 32 && ctx::N_DATA == 36 && ctx::DATA == 40);
};

/// `low` in the word's first four bytes (little-endian), `high` in the next four.
fn u32_pair(low: u32, high: u32) -> u64 {
    u64::from(low) | (u64::from(high) << 32)
}

/// The VM addresses the embedder slots after the context block's get, in mapping order:
/// `Memory` gives the next free slot to each buffer mapped, and `map_read` maps no empty one
/// (it gets the null address) but the data buffers, which are all mapped (cannot fail, as
/// `map_read`).
struct EmbedderSlots {
    next: usize,
}

impl EmbedderSlots {
    /// The slots after the context block's (the first embedder slot).
    fn after_context() -> EmbedderSlots {
        EmbedderSlots {
            next: naam_vm::memory::VM_SLOTS + 1,
        }
    }

    /// The address a buffer of `len` bytes will be mapped at, mapped next.
    fn next_address(&mut self, len: usize) -> u64 {
        if len == 0 {
            return 0;
        }
        let address = naam_vm::memory::slot_base(self.next);
        self.next += 1;
        address
    }

    /// The address the next data buffer will be mapped at: every data buffer is mapped, empty
    /// or not, so no test of its length (which the region check has made non-zero: a step
    /// reads only checked descriptors) and the entries' addresses are consecutive slots.
    fn next_data_address(&mut self) -> u64 {
        let address = naam_vm::memory::slot_base(self.next);
        self.next += 1;
        address
    }
}

/// Maps a read-only buffer; an empty buffer gets the null address (any access to it traps).
fn map_read<'a>(mem: &mut Regions<'a>, bytes: &'a [u8]) -> u64 {
    if bytes.is_empty() {
        return 0;
    }
    // Cannot fail: a step maps at most 3 + ACCESSES_PER_STEP_MAX regions, well under the VM's
    // MEMORY_REGIONS_MAX (asserted below).
    mem.map_read(bytes).unwrap_or(0)
}

const _: () = assert!(3 + ACCESSES_PER_STEP_MAX <= naam_vm::MEMORY_REGIONS_MAX);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccessKind, Rkey};

    /// The context block field by field at the ABI's offsets (the encoding before it was
    /// written as words), for comparison.
    fn encode_by_field(c: &StepContext, current: &[Descriptor]) -> [u8; abi::ctx::BYTES] {
        use abi::ctx;
        let mut slots = EmbedderSlots::after_context();
        let args = slots.next_address(c.args_len);
        let state = slots.next_address(c.state_bytes);
        // (offset, value, width in bytes)
        let mut fields = vec![
            (ctx::ARGS, args, 8),
            (ctx::ARGS_LEN, c.args_len as u64, 4),
            (ctx::STEP, u64::from(c.step), 4),
            (ctx::STATE, state, 8),
            (ctx::STATE_LEN, c.state_len as u64, 4),
            (ctx::ATTEMPT, u64::from(c.attempt), 4),
            (ctx::LOCATION, u64::from(c.location.code()), 4),
            (ctx::N_DATA, current.len() as u64, 4),
        ];
        for (i, d) in current.iter().enumerate() {
            let at = ctx::DATA + i * ctx::DATA_ENTRY_BYTES;
            // Every data entry gets a slot, an empty one too (the region check refuses those
            // before a step: the case below only pins down the addresses).
            fields.push((at, slots.next_data_address(), 8));
            fields.push((at + 8, u64::from(d.len), 4));
        }
        let mut block = [0u8; ctx::BYTES];
        for (at, value, width) in fields {
            block[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        }
        block
    }

    fn descriptor(len: u32) -> Descriptor {
        Descriptor {
            rkey: Rkey(0x1234),
            offset: 64,
            len,
            kind: AccessKind::Read,
        }
    }

    #[test]
    fn the_context_block_is_the_abis_field_by_field() {
        let lens = [4096, 0, 1, 24];
        for (case, location) in [Location::Host, Location::Nic, Location::Client]
            .into_iter()
            .enumerate()
        {
            for n_data in 0..=ACCESSES_PER_STEP_MAX {
                let current: Vec<Descriptor> =
                    lens[..n_data].iter().map(|&l| descriptor(l)).collect();
                let c = StepContext {
                    args_len: [0, 17, ARGS_BYTES_MAX][case],
                    step: 3 + n_data as u8,
                    state_bytes: STATE_BYTES_MAX,
                    state_len: 40 + case,
                    attempt: 2 + case as u8,
                    location,
                };
                assert_eq!(
                    c.encode(&current),
                    encode_by_field(&c, &current),
                    "{location:?}, {n_data} data entries"
                );
            }
        }
    }
}
