//! An in-process host: regions as plain byte vectors, one executor, messages run to completion.
//! For tools and tests that want to run NAAM functions without processes or sockets
//! (`naam workload mica --via vm`, workload property tests, benchmarks). Still sans-IO: it owns
//! memory, not sockets or clocks; every call runs on a virtual time of zero.

use std::sync::Arc;

use crate::abi;
use crate::exec::{AccessMemory, Executor, ExecutorConfig};
use crate::function::{Code, FunctionError, FunctionTable};
use crate::ids::{FunctionId, Location, Nanos, RegionId, TenantId};
use crate::region::{Perms, RegionError, RegionInfo, RegionTable, RkeySecret};
use crate::wire::{Invoke, Status};

/// Where a workload tool runs an operation: host-native Rust, or the workload's eBPF function
/// through a [`LocalHost`] (the `--via native|vm` of `naam workload mica|btree`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Host-native Rust.
    Native,
    /// The eBPF function, run by the engine's executor in naam-vm.
    Vm,
}

impl std::str::FromStr for Via {
    type Err = ViaParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "native" => Ok(Via::Native),
            "vm" => Ok(Via::Vm),
            other => Err(ViaParseError {
                given: other.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Native => "native",
            Via::Vm => "vm",
        })
    }
}

/// A `--via` value other than `native` or `vm`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--via {given:?}: expected `native` or `vm`")]
pub struct ViaParseError {
    /// The rejected value.
    pub given: String,
}

/// Rounds (polls, then up to [`STEPS_PER_ROUND`] steps) a call may take before it is declared
/// stuck; far above what the engine's own bounds allow (steps × retries).
pub const CALL_ROUNDS_MAX: usize = 100_000;

/// Steps one round runs: every step a message may take ([`abi::STEPS_MAX`] per attempt, over
/// [`abi::RETRIES_MAX`] retries). Every access is lent in place at hand-out, so a message's
/// next step is ready as soon as its last one ends: one round runs the whole message without
/// returning to the call loop between steps.
pub const STEPS_PER_ROUND: usize = abi::STEPS_MAX * (abi::RETRIES_MAX + 1);

/// Messages one [`LocalHost::call_batch_into`] keeps in flight at most: several times what
/// hides a memory miss behind the other messages' steps (8 does, measured in the MICA and
/// B-tree benches), far under the executor's in-flight bound (256 by default: no message of a
/// batch is refused as overloaded), and the bits of the `u64` that marks the replies filled.
pub const CALL_BATCH_MAX: usize = 64;
const _: () = assert!(
    CALL_BATCH_MAX <= u64::BITS as usize,
    "a batch's filled replies are the bits of one u64"
);

/// The outcome of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallReply {
    /// Status.
    pub status: Status,
    /// Reply bytes (Ok) or continuation (Pushback).
    pub payload: Vec<u8>,
    /// Steps of the last attempt.
    pub steps: u8,
    /// Retries.
    pub attempts: u8,
    /// eBPF instructions executed.
    pub insn: u64,
}

impl CallReply {
    /// A reply to fill with [`LocalHost::call_into`].
    pub fn empty() -> CallReply {
        CallReply {
            status: Status::Ok,
            payload: Vec::new(),
            steps: 0,
            attempts: 0,
            insn: 0,
        }
    }

    /// Back to [`CallReply::empty`]'s fields, its payload buffer kept (emptied).
    fn reset(&mut self) {
        self.status = Status::Ok;
        self.payload.clear();
        self.steps = 0;
        self.attempts = 0;
        self.insn = 0;
    }
}

/// Why a call could not complete.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The message needs a host-native function (the caller runs those itself).
    #[error("function {function:?} of tenant {tenant:?} is host-native: run it natively")]
    HostNative {
        /// The tenant.
        tenant: TenantId,
        /// The function.
        function: FunctionId,
    },
    /// It did not complete within [`CALL_ROUNDS_MAX`] rounds.
    #[error("call did not complete in {CALL_ROUNDS_MAX} rounds")]
    Stuck,
    /// Setting up the executor failed.
    #[error("executor: {0}")]
    Executor(String),
    /// A batch of more than [`CALL_BATCH_MAX`] messages (nothing was run).
    #[error("a batch of {messages} messages: at most {CALL_BATCH_MAX}")]
    BatchTooLarge {
        /// The messages given.
        messages: usize,
    },
    /// A batch whose reply slots are not one per message (nothing was run).
    #[error("a batch of {messages} messages with {replies} reply slots")]
    BatchReplies {
        /// The messages given.
        messages: usize,
        /// The reply slots given.
        replies: usize,
    },
}

/// A host's regions, lent to the steps that read them (indexed by region id). `PREFETCH`: told
/// of each access at hand-out, it starts fetching its bytes ([`LocalHost::call_batch_into`],
/// where other messages' steps run before the one that reads them). [`LocalHost::call_into`]
/// lends without: its one message's next step runs right after the hand-out, so a prefetch
/// would only add its instructions (≈ 120 a GET, measured).
struct HostMemory<'a, const PREFETCH: bool>(&'a [Vec<u8>]);

/// Bytes of a cache line (x86-64 and most aarch64 cores).
const CACHE_LINE_BYTES: usize = 64;

/// Cache lines of an access [`HostMemory::prefetch`] asks for, from its first: a MICA bucket
/// (128 bytes, up to 3 lines unaligned) or a B-tree node of 256 bytes (up to 5) is fetched
/// whole; the lines of a longer access past these are left to the CPU's own prefetcher, which
/// follows the step's sequential reads.
const PREFETCH_LINES_MAX: usize = 5;

impl<const PREFETCH: bool> AccessMemory for HostMemory<'_, PREFETCH> {
    const PREFETCHES: bool = PREFETCH && cfg!(target_arch = "x86_64");

    fn bytes(&self, region: RegionId, offset: u64, len: u32) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let region = self.0.get(region.0 as usize)?;
        region.get(start..start.checked_add(len as usize)?)
    }

    /// Starts fetching the access's first cache lines into L1 (`prefetcht0`), so that a batch's
    /// later steps find them there ([`LocalHost::call_batch_into`]). Computed from the same
    /// checked slice [`AccessMemory::bytes`] lends (an access outside its region asks for
    /// nothing). x86-64 only: elsewhere a no-op (`PREFETCHES` is false; aarch64 has no stable
    /// prefetch intrinsic).
    #[inline]
    fn prefetch(&self, region: RegionId, offset: u64, len: u32) {
        let Some(bytes) = self.bytes(region, offset, len) else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        // The first byte, then the first byte of each next line the access covers: every
        // address inside `bytes` (`at < bytes.len()`, since `lines * LINE <= skew + len`).
        let skew = bytes.as_ptr().addr() % CACHE_LINE_BYTES;
        let lines = (skew + bytes.len())
            .div_ceil(CACHE_LINE_BYTES)
            .min(PREFETCH_LINES_MAX);
        prefetch_line(bytes.as_ptr());
        for line in 1..lines {
            let at = line * CACHE_LINE_BYTES - skew;
            prefetch_line(bytes.as_ptr().wrapping_add(at));
        }
    }
}

/// Asks the CPU to fetch the cache line holding `byte` into every cache level.
#[inline(always)]
fn prefetch_line(byte: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of the x86-64 baseline, so the `sse` target feature
        // `_mm_prefetch` requires is always present; and a prefetch is only a hint: it never
        // faults, reads no byte into the program and writes none, whatever the address (here
        // one inside a checked, live slice anyway).
        unsafe { _mm_prefetch::<{ _MM_HINT_T0 }>(byte.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = byte;
}

/// Bytes of a huge page (x86-64 and aarch64 with 4 KiB base pages: 2 MiB).
const HUGE_PAGE_BYTES: usize = 2 << 20;

/// Asks the kernel to back every whole huge page inside `bytes` with one (Linux, glibc:
/// `MADV_HUGEPAGE`, then `MADV_COLLAPSE` for the pages already touched), as MICA backs its
/// table. A step's accesses land anywhere in a large region (a MICA GET reads one bucket of a
/// 16 MiB index and one item of a 64 MiB log): on 4 KiB pages nearly every access misses the
/// TLB, and the page walk stalls the step, whose code is too long for the CPU to overlap it
/// with other work (the native code in the same loop overlaps it with the next lookup). A
/// hint: the bytes do not change, nothing is done for a region under one huge page, and a
/// kernel that refuses (THP disabled, no memory to compact) leaves the pages as they were.
/// Public so a benchmark can give its native rows' memory the same pages.
pub fn back_with_huge_pages(bytes: &mut [u8]) {
    let first = bytes.as_ptr().addr().next_multiple_of(HUGE_PAGE_BYTES);
    let end = (bytes.as_ptr().addr() + bytes.len()) & !(HUGE_PAGE_BYTES - 1);
    if end <= first {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let start = bytes
            .as_mut_ptr()
            .wrapping_add(first - bytes.as_ptr().addr());
        for advice in [libc::MADV_HUGEPAGE, libc::MADV_COLLAPSE] {
            // SAFETY: `start..start + (end - first)` is whole pages inside `bytes`, memory this
            // function holds exclusively (`&mut`), and neither advice changes a byte of it: the
            // kernel only changes which physical pages hold the bytes (copying them into the
            // huge page). The result is ignored: a refusal leaves the mapping as it was.
            let _ = unsafe { libc::madvise(start.cast(), end - first, advice) };
        }
    }
}

/// A host in a box.
#[derive(Debug)]
pub struct LocalHost {
    regions: RegionTable,
    memory: Vec<Vec<u8>>,
    functions: FunctionTable,
    exec: Option<Executor>,
}

impl LocalHost {
    /// An empty host whose rkeys derive from `secret`.
    pub fn new(secret: RkeySecret) -> LocalHost {
        LocalHost {
            regions: RegionTable::new(secret),
            memory: Vec::new(),
            functions: FunctionTable::new(),
            exec: None,
        }
    }

    /// Loads the functions registered from now on for `backend` (`interpreter` or `jit`).
    pub fn set_backend(&mut self, backend: naam_vm::Backend) {
        self.functions = std::mem::take(&mut self.functions).with_backend(backend);
        self.exec = None;
    }

    /// The tier function `(tenant, id)` runs on (`None` for unknown or host-native functions).
    pub fn tier(&self, tenant: TenantId, id: FunctionId) -> Option<naam_vm::Tier> {
        match &self.functions.get(tenant, id)?.body {
            crate::function::FunctionBody::Ebpf(program) => Some(program.tier()),
            crate::function::FunctionBody::HostNative => None,
        }
    }

    /// Why function `(tenant, id)`, loaded for the JIT, runs on the interpreter.
    pub fn jit_error(&self, tenant: TenantId, id: FunctionId) -> Option<naam_vm::JitError> {
        match &self.functions.get(tenant, id)?.body {
            crate::function::FunctionBody::Ebpf(program) => program.jit_error().cloned(),
            crate::function::FunctionBody::HostNative => None,
        }
    }

    /// JIT compiles and reuses of the host's function table ([`FunctionTable::jit_cache_stats`]).
    pub fn jit_cache_stats(&self) -> naam_vm::JitCacheStats {
        self.functions.jit_cache_stats()
    }

    /// Registers `bytes` as a region of `tenant`.
    pub fn add_region(
        &mut self,
        tenant: TenantId,
        bytes: Vec<u8>,
        perms: Perms,
    ) -> Result<RegionInfo, RegionError> {
        let info = self.regions.register(tenant, bytes.len() as u64, perms)?;
        let slot = info.id.0 as usize;
        if self.memory.len() <= slot {
            self.memory.resize_with(slot + 1, Vec::new);
        }
        self.memory[slot] = bytes;
        back_with_huge_pages(&mut self.memory[slot]);
        self.exec = None;
        Ok(info)
    }

    /// A region's bytes, for native writers between calls.
    pub fn region_mut(&mut self, id: RegionId) -> Option<&mut [u8]> {
        self.memory.get_mut(id.0 as usize).map(Vec::as_mut_slice)
    }

    /// Registers an eBPF function.
    pub fn register(
        &mut self,
        tenant: TenantId,
        id: FunctionId,
        name: &str,
        code: Code<'_>,
    ) -> Result<(), FunctionError> {
        self.functions.register_ebpf(tenant, id, name, code)?;
        self.exec = None;
        Ok(())
    }

    /// Runs `invoke` to completion.
    pub fn call(&mut self, invoke: &Invoke<'_>) -> Result<CallReply, LocalError> {
        let mut reply = CallReply::empty();
        self.call_into(invoke, &mut reply)?;
        Ok(reply)
    }

    /// [`LocalHost::call`] into `reply`, whose payload buffer is swapped with one of the
    /// executor's (a caller that keeps one `CallReply` allocates nothing per call).
    pub fn call_into(
        &mut self,
        invoke: &Invoke<'_>,
        reply: &mut CallReply,
    ) -> Result<(), LocalError> {
        self.ensure_executor()?;
        let LocalHost { exec, memory, .. } = self;
        let Some(exec) = exec.as_mut() else {
            return Err(LocalError::Stuck);
        };
        exec.submit(Nanos(0), Nanos(0), 0, invoke);
        // Each round runs the ready steps first, then polls: a submitted message is never
        // finished before its first step (unless refused at once, and then `run_with` finds
        // nothing ready), so polling first would only find nothing on the first round.
        for _ in 0..CALL_ROUNDS_MAX {
            exec.run_with(Nanos(0), STEPS_PER_ROUND, &HostMemory::<false>(memory));
            if exec.poll_native().is_some() {
                return Err(LocalError::HostNative {
                    tenant: invoke.tenant,
                    function: invoke.function,
                });
            }
            // The executor hands back the bare payload (no frame to encode or decode), swapped
            // into the caller's buffer (no copy); the completion carries the other fields.
            if let Some(done) = exec.poll_completion(&mut reply.payload) {
                reply.status = done.status;
                reply.steps = done.steps;
                reply.attempts = done.attempts;
                reply.insn = done.insn;
                return Ok(());
            }
        }
        Err(LocalError::Stuck)
    }

    /// Runs every message of `invokes` to completion with all of them in flight at once, the
    /// reply of `invokes[i]` into `replies[i]` (its payload buffer swapped, as
    /// [`LocalHost::call_into`]'s): what a NIC worker draining its RX ring does, and MICA with
    /// its batches. The messages are submitted in order, then run from one FIFO of ready
    /// steps: each step's accesses are lent at hand-out and the memory starts fetching them
    /// ([`AccessMemory::prefetch`]), so one message's misses are served while the others'
    /// steps run. Each reply is the one `call_into` gives the message alone (status, payload,
    /// steps, attempts, instructions): messages share no state but the memory they read.
    ///
    /// A message that traps, is denied or refused answers with its error in its own reply;
    /// the others are unaffected. A message for a host-native function fails the whole batch
    /// ([`LocalError::HostNative`]), and so does one that does not complete
    /// ([`LocalError::Stuck`]): then every reply is reset to [`CallReply::empty`]'s fields (no
    /// reply of a failed batch is kept) and the executor is dropped, with the batch's other
    /// messages (rebuilt at the next call: none of them answers a later call). A batch of more
    /// than [`CALL_BATCH_MAX`] messages, or with not one reply slot per message, is refused
    /// before anything runs.
    pub fn call_batch_into(
        &mut self,
        invokes: &[Invoke<'_>],
        replies: &mut [CallReply],
    ) -> Result<(), LocalError> {
        if invokes.len() > CALL_BATCH_MAX {
            return Err(LocalError::BatchTooLarge {
                messages: invokes.len(),
            });
        }
        if replies.len() != invokes.len() {
            return Err(LocalError::BatchReplies {
                messages: invokes.len(),
                replies: replies.len(),
            });
        }
        self.ensure_executor()?;
        let result = self.run_batch(invokes, replies);
        if result.is_err() {
            self.exec = None;
            replies.iter_mut().for_each(CallReply::reset);
        }
        result
    }

    /// [`LocalHost::call_batch_into`]'s run, on an executor set up and a batch of a valid size.
    fn run_batch(
        &mut self,
        invokes: &[Invoke<'_>],
        replies: &mut [CallReply],
    ) -> Result<(), LocalError> {
        let LocalHost { exec, memory, .. } = self;
        let Some(exec) = exec.as_mut() else {
            return Err(LocalError::Stuck);
        };
        let memory = HostMemory::<true>(memory);
        for (source, invoke) in invokes.iter().enumerate() {
            exec.submit_with(Nanos(0), Nanos(0), source as u64, invoke, &memory);
        }
        // Bit `i`: `replies[i]` filled. A completion names its message by its source token.
        let all = u64::MAX >> (u64::BITS as usize - invokes.len().max(1));
        let mut filled = if invokes.is_empty() { all } else { 0 };
        let mut payload = Vec::new();
        for _ in 0..CALL_ROUNDS_MAX {
            if filled == all {
                return Ok(());
            }
            exec.run_with(Nanos(0), STEPS_PER_ROUND * invokes.len(), &memory);
            if let Some(native) = exec.poll_native() {
                return Err(LocalError::HostNative {
                    tenant: native.tenant,
                    function: native.function,
                });
            }
            while let Some(done) = exec.poll_completion(&mut payload) {
                let bit = 1u64 << (done.source % u64::from(u64::BITS));
                let Some(reply) = replies.get_mut(done.source as usize) else {
                    continue;
                };
                if filled & bit != 0 {
                    continue;
                }
                filled |= bit;
                // The executor's buffer into the reply, the reply's old one back for reuse.
                std::mem::swap(&mut reply.payload, &mut payload);
                reply.status = done.status;
                reply.steps = done.steps;
                reply.attempts = done.attempts;
                reply.insn = done.insn;
            }
        }
        Err(LocalError::Stuck)
    }

    /// Inlined, the test only (`call_into` and `call_batch_into` call it: out of line, each
    /// call paid a call and prologue for nothing).
    #[inline(always)]
    fn ensure_executor(&mut self) -> Result<(), LocalError> {
        if self.exec.is_none() {
            self.build_executor()?;
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn build_executor(&mut self) -> Result<(), LocalError> {
        let functions = Arc::new(self.functions.clone());
        let regions = Arc::new(self.regions.clone());
        let config = ExecutorConfig::new(Location::Host);
        // No message of a batch is refused as overloaded.
        assert!(config.inflight_max >= CALL_BATCH_MAX);
        let mut exec = Executor::new(config, functions, regions)
            .map_err(|e| LocalError::Executor(e.to_string()))?;
        // The host owns its regions and nothing writes them during a call: every access is
        // lent in place and mapped straight into the VM for the step that reads it.
        exec.set_accesses_in_place(true);
        exec.set_reply_payload_only(true);
        self.exec = Some(exec);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_backing_leaves_every_byte_as_it_was() {
        // Over several huge pages, not aligned to one, and under one (nothing to do).
        for len in [5 * HUGE_PAGE_BYTES + 12_345, 4096, 0] {
            let pattern = |i: usize| (i.wrapping_mul(31) ^ (i >> 12)) as u8;
            let mut bytes: Vec<u8> = (0..len).map(pattern).collect();
            back_with_huge_pages(&mut bytes[len.min(7)..]);
            assert_eq!(bytes.len(), len);
            assert!(bytes.iter().enumerate().all(|(i, &b)| b == pattern(i)));
        }
    }

    /// A host with one 64-byte region and `read_any` (the engine's test function: replies
    /// the first byte it reads), and a host-native function `NATIVE`.
    fn host_with_a_native_function() -> (LocalHost, u64) {
        const ENGINE_FNS: &[u8] = include_bytes!("../tests/bpf/engine_fns.o");
        let mut host = LocalHost::new(RkeySecret([4; 16]));
        let info = host
            .add_region(TenantId(1), (0..64).collect(), Perms::READ)
            .expect("region");
        let code = Code::Elf {
            object: ENGINE_FNS,
            name: "read_any",
        };
        host.register(TenantId(1), FunctionId(3), "read_any", code)
            .expect("read_any");
        host.functions
            .register_host_native(TenantId(1), NATIVE, "native")
            .expect("native");
        host.exec = None;
        (host, info.rkey.0)
    }

    const NATIVE: FunctionId = FunctionId(9);

    #[test]
    fn a_host_native_message_fails_its_batch_and_leaves_nothing_behind() {
        let (mut host, rkey) = host_with_a_native_function();
        let args: Vec<Vec<u8>> = (0..3u64)
            .map(|i| {
                [rkey, 10 + i, 1]
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect()
            })
            .collect();
        let read = |i: usize| {
            let id = crate::ids::RequestId(i as u64);
            Invoke::new_message(TenantId(1), FunctionId(3), id, &args[i], Default::default())
        };
        let native = Invoke::new_message(
            TenantId(1),
            NATIVE,
            crate::ids::RequestId(7),
            &[],
            Default::default(),
        );
        let mut replies = vec![CallReply::empty(), CallReply::empty(), CallReply::empty()];
        let err = host
            .call_batch_into(&[read(0), native, read(1)], &mut replies)
            .unwrap_err();
        assert!(matches!(
            err,
            LocalError::HostNative {
                function: NATIVE,
                ..
            }
        ));
        assert!(
            replies.iter().all(|r| *r == CallReply::empty()),
            "no reply kept"
        );
        // The next batch answers its own messages only (the failed one's are gone).
        host.call_batch_into(&[read(2), read(0)], &mut replies[..2])
            .expect("batch");
        let bytes: Vec<&[u8]> = replies[..2].iter().map(|r| &r.payload[..]).collect();
        assert_eq!(bytes, [&[12u8][..], &[10u8][..]]);
    }

    #[test]
    fn a_region_added_to_a_host_keeps_its_bytes() {
        let mut host = LocalHost::new(RkeySecret([1; 16]));
        let bytes: Vec<u8> = (0..3 * HUGE_PAGE_BYTES).map(|i| (i % 251) as u8).collect();
        let info = host
            .add_region(TenantId(1), bytes.clone(), Perms::READ)
            .expect("region");
        assert_eq!(host.region_mut(info.id).map(|r| &*r), Some(&bytes[..]));
    }
}
