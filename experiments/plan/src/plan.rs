//! The validated plan: every value explicit, every point enumerated.
//!
//! A plan is what a run executes and what its configuration hash is taken over (the canonical
//! JSON of [`ExperimentPlan`]: struct fields in declaration order, no maps). It does not record
//! where the manifest lived, so moving a manifest does not change the hash.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Version of the manifest schema and of the plan JSON written to `plan.json`.
pub const SCHEMA_VERSION: u32 = 1;

/// The experiments (ARTIFACT.md maps them to the paper's claims); each has one manifest `experiments/<id>.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExperimentId {
    /// MICA under YCSB-B at each placement: throughput and latency against offered load.
    MicaYcsbB,
    /// Cell-style B-tree lookups against offered load and tree depth.
    CellLookups,
    /// Reaction to host compute congestion (a CPU hog starts mid-run), over time.
    LoadShift,
    /// Many tenants' offloads on the NIC: throughput and p99 against the number of offloads.
    OffloadScaling,
    /// eBPF execution cost per backend and function.
    VmCost,
    /// Steering policies under a changing workload, over time.
    Policies,
}

impl ExperimentId {
    /// Every experiment, in the order `naam reproduce` runs them.
    pub const ALL: [ExperimentId; 6] = [
        ExperimentId::MicaYcsbB,
        ExperimentId::CellLookups,
        ExperimentId::LoadShift,
        ExperimentId::OffloadScaling,
        ExperimentId::VmCost,
        ExperimentId::Policies,
    ];

    /// The stable name used in file names, results folders and figures.
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentId::MicaYcsbB => "mica-ycsb-b",
            ExperimentId::CellLookups => "cell-lookups",
            ExperimentId::LoadShift => "load-shift",
            ExperimentId::OffloadScaling => "offload-scaling",
            ExperimentId::VmCost => "vm-cost",
            ExperimentId::Policies => "policies",
        }
    }

    /// Parses a stable name; `None` for anything else.
    pub fn parse(name: &str) -> Option<ExperimentId> {
        ExperimentId::ALL.into_iter().find(|id| id.as_str() == name)
    }

    /// The stable names joined for messages: `mica-ycsb-b, cell-lookups, ...`.
    pub fn names() -> String {
        ExperimentId::ALL.map(ExperimentId::as_str).join(", ")
    }
}

impl fmt::Display for ExperimentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of a manifest's two variant tables a plan was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// `[quick]`: sized so that every quick experiment together fits in ten minutes on 2 cores.
    Quick,
    /// `[full]`: the configuration meant for a real testbed.
    Full,
}

impl Variant {
    /// The table name in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Quick => "quick",
            Variant::Full => "full",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the roles run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Testbed {
    /// Every role a process on this machine, over loopback.
    Local,
    /// Every machine in its own network namespace joined by veth links (needs root).
    Netns,
    /// Real machines from an inventory file, driven by the orchestrator.
    Inventory {
        /// The inventory file, resolved against the manifest's folder.
        path: PathBuf,
    },
    /// The simulation testbed: the production engine on a virtual clock, its time modelled by
    /// a cost profile (`profiles/<profile>.toml` beside the manifest).
    Sim {
        /// The cost profile's name.
        profile: String,
        /// Its file, resolved against the manifest's folder.
        path: PathBuf,
    },
}

impl Testbed {
    /// The stable kind name (`local`, `netns`, `inventory`, `sim`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Testbed::Local => "local",
            Testbed::Netns => "netns",
            Testbed::Inventory { .. } => "inventory",
            Testbed::Sim { .. } => "sim",
        }
    }

    /// Whether the NIC of this testbed is emulated (a process standing in for a BlueField-2) or
    /// simulated.
    pub fn nic_is_emulated(&self) -> bool {
        !matches!(self, Testbed::Inventory { .. })
    }

    /// The testbed as results and figures name it: the kind, or for the simulation testbed
    /// `simulated (profile <name>)`.
    pub fn label(&self) -> String {
        match self {
            Testbed::Sim { profile, .. } => format!("simulated (profile {profile})"),
            other => other.kind_name().to_string(),
        }
    }
}

/// CPU lists per role; an empty list means "not pinned".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinning {
    /// CPUs for the host role's workers.
    pub host_cpus: Vec<u32>,
    /// CPUs for the emulated NIC's workers.
    pub nic_cpus: Vec<u32>,
    /// CPUs for the client processes.
    pub client_cpus: Vec<u32>,
}

/// Processes, threads and the emulated NIC's cost model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Roles {
    /// Client processes.
    pub clients: u32,
    /// Sending threads per client process.
    pub client_threads: u32,
    /// Worker threads of the server host role.
    pub host_workers: u32,
    /// Worker threads of the (emulated) NIC role.
    pub nic_workers: u32,
    /// Added delay per dependent host-memory access from the NIC (stands in for PCIe DMA).
    pub nic_access_delay_ns: u64,
    /// Speed of a NIC core relative to a host core (1.0 = same; < 1 = slower, as Arm A72 cores).
    pub nic_core_speed_factor: f64,
    /// The eBPF backend the host loads its functions for (`host_vm_backend`, default the
    /// interpreter; the default is left out of plan.json and so of the configuration hash).
    #[serde(default, skip_serializing_if = "VmBackend::is_interpreter")]
    pub host_vm_backend: VmBackend,
    /// The same for the (emulated) NIC (`nic_vm_backend`).
    #[serde(default, skip_serializing_if = "VmBackend::is_interpreter")]
    pub nic_vm_backend: VmBackend,
    /// CPU pinning per role.
    pub pinning: Pinning,
}

/// Steering policies with their parameters, and eBPF backends (naam-types).
pub use naam_types::{PolicyKind, PolicySpec, TenantPrograms, VmBackend};
/// Key choice, with YCSB's names: naam-ycsb's own type, so the plan, the role configurations
/// and the generator share it.
pub use naam_ycsb::Distribution;
/// YCSB core workload letter (operation mix): naam-ycsb's own type.
pub use naam_ycsb::Workload as YcsbWorkload;

/// The key distributions a manifest may name (YCSB's `latest` needs inserts the workloads do not
/// issue), with their names.
pub const MANIFEST_DISTRIBUTIONS: [(Distribution, &str); 3] = [
    (
        Distribution::ScrambledZipfian,
        Distribution::ScrambledZipfian.name(),
    ),
    (Distribution::Zipfian, Distribution::Zipfian.name()),
    (Distribution::Uniform, Distribution::Uniform.name()),
];

/// The MICA key-value store (lossy index of buckets + circular log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicaWorkload {
    /// Records loaded before the run.
    pub records: u64,
    /// Key size.
    pub key_bytes: u32,
    /// Value size.
    pub value_bytes: u32,
    /// Operation mix.
    pub ycsb_workload: YcsbWorkload,
    /// Key choice.
    pub distribution: Distribution,
    /// Buckets of the index (a power of two).
    pub buckets: u64,
    /// Entries per bucket: 7 (one cache line) or 15 (MICA's released build).
    pub slots: u32,
    /// Size of the circular log.
    pub log_bytes: u64,
    /// One GET program for every tenant, or each tenant its own (`tenant_programs`; the default,
    /// shared, is left out of the serialised plan and so of existing configuration hashes).
    #[serde(default, skip_serializing_if = "TenantPrograms::is_shared")]
    pub tenant_programs: TenantPrograms,
}

/// The Cell-style B-tree of fixed-size nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BtreeWorkload {
    /// Keys bulk-loaded before the run.
    pub keys: u64,
    /// Node size.
    pub node_bytes: u32,
    /// Key choice for lookups.
    pub distribution: Distribution,
}

/// Micro-benchmark of eBPF execution per backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmCostWorkload {
    /// NAAM functions to time (names from the workloads' function sets).
    pub functions: Vec<String>,
}

/// What the clients ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Workload {
    /// MICA under YCSB.
    Mica(MicaWorkload),
    /// Cell-style B-tree lookups.
    Btree(BtreeWorkload),
    /// eBPF execution cost (no traffic).
    VmCost(VmCostWorkload),
}

/// The prefix of the iPipe baseline's threshold-sweep series, `ipipe/<label>`.
pub const IPIPE_SWEEP_PREFIX: &str = "ipipe/";
/// Longest label of a threshold-sweep series (the part after [`IPIPE_SWEEP_PREFIX`]).
pub const SWEEP_LABEL_BYTES_MAX: usize = 24;
const SWEEP_NAME_BYTES: usize = IPIPE_SWEEP_PREFIX.len() + SWEEP_LABEL_BYTES_MAX;

/// The name of a threshold-sweep series, `ipipe/<label>`, held inline so [`Series`] stays
/// `Copy`. A label is 1..=[`SWEEP_LABEL_BYTES_MAX`] of `a-z`, `0-9`, `-` and `.`, starting
/// with a letter or digit, so the name is also safe in point ids and file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SweepName {
    bytes: [u8; SWEEP_NAME_BYTES],
    len: u8,
}

impl SweepName {
    /// `ipipe/<label>`, or why `label` is not one.
    pub fn new(label: &str) -> Result<SweepName, String> {
        let allowed =
            |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.';
        let first_ok = label
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !first_ok || label.len() > SWEEP_LABEL_BYTES_MAX || !label.bytes().all(allowed) {
            return Err(format!(
                "\"{label}\" is not a sweep label: 1..={SWEEP_LABEL_BYTES_MAX} characters of a-z, 0-9, '-' and '.', starting with a letter or digit"
            ));
        }
        let name = format!("{IPIPE_SWEEP_PREFIX}{label}");
        let mut bytes = [0; SWEEP_NAME_BYTES];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Ok(SweepName {
            bytes,
            len: name.len() as u8,
        })
    }

    /// The series name, `ipipe/<label>`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// One line of a figure: a placement, a steering policy, or a VM backend. In manifests and
/// `plan.json` a series is its name (`"nic"`, `"ipipe/tail-x4"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Series {
    /// Static placement: every message runs on the host CPU (classic RPC).
    Host,
    /// Static placement: every message runs on the (emulated) NIC cores.
    Nic,
    /// Static placement: every message runs at the client with one-sided reads.
    Client,
    /// NAAM's adaptive steering (our reconstruction).
    NaamAdaptive,
    /// Kayak-style gradient on the RPC fraction (NSDI'21).
    Kayak,
    /// Cell-style client-side cost estimate (ATC'16).
    Cell,
    /// Splinter-style pushback of over-budget work (ATC'20).
    Splinter,
    /// The iPipe baseline (SIGCOMM'19) in its own trusted setting: actors in one address space.
    Ipipe,
    /// The iPipe baseline with a process per tenant.
    IpipeProcesses,
    /// The iPipe baseline (trusted) with its own thresholds (`[policy."ipipe/<label>"]`): one
    /// line of the thresholds' sensitivity sweep.
    IpipeSweep(SweepName),
    /// vm-cost: the function's logic compiled natively (Rust).
    Native,
    /// vm-cost: our eBPF interpreter.
    Interpreter,
    /// vm-cost: a user-space eBPF JIT.
    Jit,
    /// vm-cost: the Linux kernel's eBPF JIT (needs root).
    KernelJit,
}

/// What a series is, which decides the experiments it may appear in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesClass {
    /// A static placement, a steering policy or the iPipe baseline: a traffic experiment's
    /// line.
    Steering,
    /// An eBPF execution backend (vm-cost only).
    VmBackend,
}

impl Series {
    /// Every series with its manifest name.
    pub const ALL: [Series; 13] = [
        Series::Host,
        Series::Nic,
        Series::Client,
        Series::NaamAdaptive,
        Series::Kayak,
        Series::Cell,
        Series::Splinter,
        Series::Ipipe,
        Series::IpipeProcesses,
        Series::Native,
        Series::Interpreter,
        Series::Jit,
        Series::KernelJit,
    ];

    /// The stable name.
    pub fn as_str(&self) -> &str {
        match self {
            Series::IpipeSweep(name) => name.as_str(),
            Series::Host => "host",
            Series::Nic => "nic",
            Series::Client => "client",
            Series::NaamAdaptive => "naam-adaptive",
            Series::Kayak => "kayak",
            Series::Cell => "cell",
            Series::Splinter => "splinter",
            Series::Ipipe => "ipipe",
            Series::IpipeProcesses => "ipipe-processes",
            Series::Native => "native",
            Series::Interpreter => "interpreter",
            Series::Jit => "jit",
            Series::KernelJit => "kernel-jit",
        }
    }

    /// Parses a stable name (`ipipe/<label>` with a valid label included).
    pub fn parse(name: &str) -> Option<Series> {
        if let Some(label) = name.strip_prefix(IPIPE_SWEEP_PREFIX) {
            return SweepName::new(label).ok().map(Series::IpipeSweep);
        }
        Series::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The steering policy a placement or policy series runs (the iPipe baseline's "policy" is
    /// everything to the NIC, with its runtime's parameters; `None` for VM backends). A sweep
    /// series runs trusted iPipe.
    pub fn policy_kind(&self) -> Option<PolicyKind> {
        match self {
            Series::IpipeSweep(_) => Some(PolicyKind::Ipipe),
            _ => PolicyKind::from_name(self.as_str()),
        }
    }

    /// Whether the iPipe baseline serves this series (either isolation model, or a sweep).
    pub fn is_ipipe(&self) -> bool {
        matches!(
            self,
            Series::Ipipe | Series::IpipeProcesses | Series::IpipeSweep(_)
        )
    }

    /// The name as it appears in point ids and folder names (`/` written `+`).
    pub fn id_part(&self) -> String {
        self.as_str().replace('/', "+")
    }

    /// Which experiments this series belongs to.
    pub fn class(self) -> SeriesClass {
        match self {
            Series::Native | Series::Interpreter | Series::Jit | Series::KernelJit => {
                SeriesClass::VmBackend
            }
            _ => SeriesClass::Steering,
        }
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Series> for String {
    fn from(series: Series) -> String {
        series.as_str().to_string()
    }
}

impl TryFrom<String> for Series {
    type Error = String;

    fn try_from(name: String) -> Result<Series, String> {
        Series::parse(&name).ok_or_else(|| format!("unknown series \"{name}\""))
    }
}

/// How long each point runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Timing {
    /// Traffic experiments: warm-up (excluded), measured phase, histogram interval.
    Traffic {
        /// Warm-up before measuring; its samples are not recorded.
        warmup_ms: u64,
        /// Measured phase.
        measure_ms: u64,
        /// Length of one interval histogram in the `.hlog`.
        interval_ms: u64,
    },
    /// vm-cost: iteration counts per function and backend.
    Iterations {
        /// Untimed iterations first.
        warmup_iterations: u64,
        /// Timed iterations.
        iterations: u64,
    },
}

/// Something that happens during the measured phase; times from measure start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Event {
    /// CPU-bound threads on the host's cores from `start_ms` to `stop_ms`.
    CpuHog {
        /// When the hog starts.
        start_ms: u64,
        /// When it stops (the end of the measured phase if the manifest says nothing).
        stop_ms: u64,
        /// Busy threads.
        threads: u32,
    },
    /// The offered load becomes `factor` × the point's offered load at `at_ms`.
    LoadStep {
        /// When the step happens.
        at_ms: u64,
        /// Multiplier of the point's offered load.
        factor: f64,
    },
}

/// The swept values of a plan (each list non-empty; a dimension not swept has one value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// Total offered load over all clients (empty for vm-cost).
    pub offered_load_ops_per_s: Vec<u64>,
    /// B-tree depths (empty unless the workload is a B-tree).
    pub tree_depth: Vec<u32>,
    /// Offloaded applications (tenants), each with its own function and region.
    pub tenants: Vec<u32>,
}

/// One point: a sweep value × series × repetition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PointPlan {
    /// Stable name: `0007-nic-40000ops-t1-r0` (index, series, swept values, repetition).
    pub id: String,
    /// Position in execution order.
    pub index: u32,
    /// Placement, policy or backend.
    pub series: Series,
    /// Total offered load over all clients (`None` for vm-cost).
    pub offered_load_ops_per_s: Option<u64>,
    /// B-tree depth (`None` unless the workload is a B-tree).
    pub tree_depth: Option<u32>,
    /// Offloaded applications.
    pub tenants: u32,
    /// Repetition number from 0.
    pub repetition: u32,
    /// The point's seed; every series at the same sweep value and repetition shares it
    /// (common random numbers), so placements see the same key sequence.
    pub seed: u64,
}

impl PointPlan {
    /// Seed of client process `client` (`0..clients`) of this point.
    pub fn client_seed(&self, client: u32) -> u64 {
        crate::seeds::derive(self.seed, &[u64::from(client), 0xC11E])
    }
}

/// A validated experiment: what a run executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentPlan {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Which experiment.
    pub id: ExperimentId,
    /// Human title for figures.
    pub title: String,
    /// The variant table this plan came from.
    pub variant: Variant,
    /// Where the roles run.
    pub testbed: Testbed,
    /// Processes, threads and NIC model.
    pub roles: Roles,
    /// What clients ask for.
    pub workload: Workload,
    /// Lines of the figure, in manifest order: `series`, then the variant's own `series`.
    pub series: Vec<Series>,
    /// The steering policy of every placement or policy series, in series order, with every
    /// parameter (the manifest's `[policy.<name>]` values, defaults for the rest; a sweep
    /// series `ipipe/<label>` has its own entry from `[policy."ipipe/<label>"]`).
    pub policies: Vec<PolicySpec>,
    /// Swept values.
    pub sweep: Sweep,
    /// Duration of each point.
    pub timing: Timing,
    /// Repetitions of every sweep value × series.
    pub repetitions: u32,
    /// Base seed; every point's seed derives from it.
    pub base_seed: u64,
    /// Events during the measured phase.
    pub events: Vec<Event>,
    /// Every point in execution order: repetition, then sweep value, then series.
    pub points: Vec<PointPlan>,
    /// How the quick variant's offered loads were sized to this machine (absent: the
    /// manifest's loads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_scale: Option<crate::LoadScale>,
}

impl ExperimentPlan {
    /// Planned wall time of one point (warm-up + measure), for progress estimates; vm-cost
    /// points have no planned duration and count as [`VM_COST_POINT_MS_ESTIMATE`].
    pub fn point_planned_ms(&self) -> u64 {
        match self.timing {
            Timing::Traffic {
                warmup_ms,
                measure_ms,
                ..
            } => warmup_ms + measure_ms,
            Timing::Iterations { .. } => VM_COST_POINT_MS_ESTIMATE,
        }
    }

    /// Planned wall time of the whole plan.
    pub fn planned_ms(&self) -> u64 {
        self.point_planned_ms() * self.points.len() as u64
    }

    /// Looks a point up by id.
    pub fn point(&self, id: &str) -> Option<&PointPlan> {
        self.points.iter().find(|p| p.id == id)
    }

    /// The steering policy, with its parameters, that series `series` runs (`None` for series
    /// that are not placements or policies).
    pub fn policy(&self, series: Series) -> Option<&PolicySpec> {
        let slot = self
            .series
            .iter()
            .filter(|s| s.policy_kind().is_some())
            .position(|s| *s == series)?;
        self.policies.get(slot)
    }
}

/// Progress-bar estimate for one vm-cost point (it has iterations, not a duration).
pub const VM_COST_POINT_MS_ESTIMATE: u64 = 1_000;
