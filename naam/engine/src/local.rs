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
}

/// A host's regions, lent to the steps that read them (indexed by region id).
struct HostMemory<'a>(&'a [Vec<u8>]);

impl AccessMemory for HostMemory<'_> {
    fn bytes(&self, region: RegionId, offset: u64, len: u32) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let region = self.0.get(region.0 as usize)?;
        region.get(start..start.checked_add(len as usize)?)
    }
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
            exec.run_with(Nanos(0), STEPS_PER_ROUND, &HostMemory(memory));
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

    fn ensure_executor(&mut self) -> Result<(), LocalError> {
        if self.exec.is_none() {
            let functions = Arc::new(self.functions.clone());
            let regions = Arc::new(self.regions.clone());
            let mut exec = Executor::new(ExecutorConfig::new(Location::Host), functions, regions)
                .map_err(|e| LocalError::Executor(e.to_string()))?;
            // The host owns its regions and nothing writes them during a call: every access is
            // lent in place and mapped straight into the VM for the step that reads it.
            exec.set_accesses_in_place(true);
            exec.set_reply_payload_only(true);
            self.exec = Some(exec);
        }
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
