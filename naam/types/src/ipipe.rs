//! The parameters of the iPipe baseline (`baselines/ipipe`): its scheduler's thresholds, its
//! core split, its statistics windows and the costs of its isolation model — the values a
//! manifest sets in `[policy.ipipe]` or `[policy.ipipe-processes]`, a plan records and a role
//! runs. The iPipe paper names `Tail_thresh`, `Mean_thresh`, α and the DRR quantum but publishes
//! no values: every default here is ours, with its reasoning.

use serde::{Deserialize, Serialize};

use crate::policy::{DELAY_NS_MAX, Param, ParamError, Parameters, param, relation};

/// Default tail threshold: 10 µs of execution at the 99th percentile. Assumption: ten times the
/// slowest native handler here on an emulated NIC core (a MICA GET, ≈ 0.4 µs on a host core at
/// half speed ≈ 0.8 µs); an actor whose tail exceeds it holds an FCFS core long enough to delay
/// everyone queued behind it, which is what the FCFS/DRR split is for.
pub const TAIL_THRESH_NS_DEFAULT: u64 = 10_000;
/// Default mean threshold: 500 µs of mean sojourn (queueing + execution) on the NIC.
/// Assumption: the congestion level at which NAAM's adaptive policy sheds host load (500 µs of
/// queueing delay), so that the two systems' reactions compare like with like.
pub const MEAN_THRESH_NS_DEFAULT: u64 = 500_000;
/// Default α: pull an actor back when the NIC's mean falls below half the mean threshold.
/// Assumption: a symmetric dead band.
pub const ALPHA_PERMILLE_DEFAULT: u16 = 500;
/// α is in permille; 1000 would never pull back.
pub const ALPHA_PERMILLE_MAX: u16 = 999;
/// Default DRR quantum: the tail threshold. Shreedhar and Varghese make the quantum at least the
/// largest packet so that every backlogged flow is served each round; a downgraded actor's work
/// items are around the tail threshold.
pub const DRR_QUANTUM_NS_DEFAULT: u64 = TAIL_THRESH_NS_DEFAULT;
/// Default DRR cores on the NIC (beside the FCFS cores): one. They only run downgraded actors.
pub const DRR_CORES_DEFAULT: u16 = 1;
/// Most DRR cores.
pub const DRR_CORES_MAX: u16 = 64;
/// Default per-actor window: the last 100 executions (p99 is then the 99th smallest).
pub const ACTOR_WINDOW_DEFAULT: u32 = 100;
/// Largest per-actor window.
pub const ACTOR_WINDOW_MAX: u32 = 4096;
/// Default side-wide window: 1024 completions per management decision (the mean of 1024
/// exponential samples has a relative standard error of ≈ 3 %).
pub const SIDE_WINDOW_DEFAULT: u32 = 1024;
/// Largest side-wide window.
pub const SIDE_WINDOW_MAX: u32 = 1 << 20;
/// Default NIC memory: 16 GiB, BlueField-2's middle DRAM option (8/16/32 GB).
pub const NIC_MEMORY_BYTES_DEFAULT: u64 = 16 << 30;
/// Largest memory of a side.
pub const MEMORY_BYTES_MAX: u64 = 1 << 40;
/// A tenant process switch, measured on the development machine (2 vCPU Intel Xeon VM, Linux
/// 6.18, shared with other builds: load averages 8 to 15) by
/// `cargo run --release -p naam-ipipe --example isolation_costs`, four runs of 20 000 round
/// trips; the median run of half the median round trip of a process-to-process pipe ping-pong
/// on one CPU (a switch plus a one-byte pipe transfer: 1362, 2048, 2190, 2212 ns; thread to
/// thread 1252 to 1978 ns). ARTIFACT.md lists the runs.
pub const TENANT_SWITCH_NS_MEASURED: u64 = 2_119;
/// A hand-off of a work item through shared memory to a process polling on another CPU,
/// measured with [`TENANT_SWITCH_NS_MEASURED`] (117, 183, 201, 206 ns; the median run).
pub const HANDOFF_NS_MEASURED: u64 = 192;
/// Memory of one more process, measured with [`TENANT_SWITCH_NS_MEASURED`]: private resident
/// memory (124 KiB) and page tables (40 to 52 KiB over the runs; 48 KiB taken) of an idle
/// process running the measuring binary (which links the iPipe runtime and both native actors),
/// plus a 16 KiB kernel stack.
pub const PROCESS_BYTES_MEASURED: u64 = 188 << 10;
/// Default time slice of a tenant process that has work queued while others wait: 3 ms, Linux
/// EEVDF's base slice of 0.75 ms scaled by 1 + log2(8 CPUs) (`kernel/sched/fair.c`).
pub const PROCESS_SLICE_NS_DEFAULT: u64 = 3_000_000;

/// The iPipe baseline's parameters (`ipipe`: iPipe's own trusted setting; `ipipe-processes`:
/// a process per tenant — the last four parameters apply to it only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpipeParams {
    /// An FCFS actor whose p99 execution time exceeds this is downgraded to DRR (`Tail_thresh`).
    pub tail_thresh_ns: u64,
    /// The management core migrates an actor to the host when the NIC's mean sojourn exceeds
    /// this (`Mean_thresh`).
    pub mean_thresh_ns: u64,
    /// Pull an actor back below `(1 − α) · mean_thresh_ns` (permille).
    pub alpha_permille: u16,
    /// Execution time a DRR actor is credited per round.
    pub drr_quantum_ns: u64,
    /// DRR cores on the NIC, beside its FCFS cores (the NIC's workers).
    pub drr_cores: u16,
    /// Executions per actor in its tail/mean window.
    pub actor_window: u32,
    /// NIC completions per management decision.
    pub side_window: u32,
    /// NIC memory for actors' objects (and tenant processes).
    pub nic_memory_bytes: u64,
    /// ipipe-processes: cost of switching a core to another tenant's process.
    pub tenant_switch_ns: u64,
    /// ipipe-processes: cost of handing an item to the tenant's process.
    pub handoff_ns: u64,
    /// ipipe-processes: memory of a tenant process.
    pub process_bytes: u64,
    /// ipipe-processes: how long a tenant process keeps a core while others wait.
    pub slice_ns: u64,
}

impl Default for IpipeParams {
    fn default() -> Self {
        IpipeParams {
            tail_thresh_ns: TAIL_THRESH_NS_DEFAULT,
            mean_thresh_ns: MEAN_THRESH_NS_DEFAULT,
            alpha_permille: ALPHA_PERMILLE_DEFAULT,
            drr_quantum_ns: DRR_QUANTUM_NS_DEFAULT,
            drr_cores: DRR_CORES_DEFAULT,
            actor_window: ACTOR_WINDOW_DEFAULT,
            side_window: SIDE_WINDOW_DEFAULT,
            nic_memory_bytes: NIC_MEMORY_BYTES_DEFAULT,
            tenant_switch_ns: TENANT_SWITCH_NS_MEASURED,
            handoff_ns: HANDOFF_NS_MEASURED,
            process_bytes: PROCESS_BYTES_MEASURED,
            slice_ns: PROCESS_SLICE_NS_DEFAULT,
        }
    }
}

impl Parameters for IpipeParams {
    fn params() -> &'static [Param<Self>] {
        const PARAMS: [Param<IpipeParams>; 12] = [
            param!(IpipeParams, tail_thresh_ns, 1, DELAY_NS_MAX),
            param!(IpipeParams, mean_thresh_ns, 1, DELAY_NS_MAX),
            param!(IpipeParams, alpha_permille, 0, ALPHA_PERMILLE_MAX as u64),
            param!(IpipeParams, drr_quantum_ns, 1, DELAY_NS_MAX),
            param!(IpipeParams, drr_cores, 1, DRR_CORES_MAX as u64),
            param!(IpipeParams, actor_window, 1, ACTOR_WINDOW_MAX as u64),
            param!(IpipeParams, side_window, 1, SIDE_WINDOW_MAX as u64),
            param!(IpipeParams, nic_memory_bytes, 1 << 20, MEMORY_BYTES_MAX),
            param!(IpipeParams, tenant_switch_ns, 0, DELAY_NS_MAX),
            param!(IpipeParams, handoff_ns, 0, DELAY_NS_MAX),
            param!(IpipeParams, process_bytes, 0, MEMORY_BYTES_MAX),
            param!(IpipeParams, slice_ns, 1, DELAY_NS_MAX),
        ];
        &PARAMS
    }

    fn relations(&self) -> Result<(), ParamError> {
        relation(
            self.process_bytes < self.nic_memory_bytes,
            "process_bytes",
            "must be below nic_memory_bytes (a tenant process must fit on the NIC)",
        )
    }
}
