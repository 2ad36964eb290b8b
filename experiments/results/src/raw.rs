//! The raw files of a point: the contract between the role processes that measure and the
//! runner that summarizes. Every type here is exactly one file's schema (experiments/SCHEMA.md
//! documents them for other tools). Counts cover the measured phase only; warm-up is excluded
//! everywhere.
//!
//! | file | writer | type |
//! |---|---|---|
//! | `client-<k>.hlog` | client `k` | HdrHistogram interval log, see [`crate::hlog`] |
//! | `client-<k>.json` | client `k` | [`ClientSummary`] |
//! | `server.json` | server host role | [`ServerSummary`] |
//! | `steering.jsonl` | controller | one [`SteeringChange`] per line |
//! | `samples.jsonl` (optional) | controller | one [`LoadSample`] per line |
//! | `vmcost.json` | vm-cost executor | [`VmCostReport`] |

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ResultsError;

/// Version of the raw file schemas; every JSON file carries it as `schema`.
pub const RAW_SCHEMA_VERSION: u32 = 1;

/// Largest raw JSON or JSON-lines file read (bounds memory on corrupt input).
pub const RAW_JSON_BYTES_MAX: u64 = 256 << 20;

/// `server.json`.
pub const SERVER_FILE: &str = "server.json";
/// `steering.jsonl`.
pub const STEERING_FILE: &str = "steering.jsonl";
/// `samples.jsonl`.
pub const SAMPLES_FILE: &str = "samples.jsonl";
/// `vmcost.json`.
pub const VMCOST_FILE: &str = "vmcost.json";
/// `clock.json` (points on real machines only).
pub const CLOCK_FILE: &str = "clock.json";

/// `client-<k>.hlog`.
pub fn client_hlog_file(client: u32) -> String {
    format!("client-{client}.hlog")
}

/// `client-<k>.json`.
pub fn client_summary_file(client: u32) -> String {
    format!("client-{client}.json")
}

/// Where a request was executed; the tag of its histograms in the `.hlog` (`host`, `nic`,
/// `client`): the engine's own type, from naam-types.
pub use naam_types::Location;

/// How a client schedules its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// Open loop, exponential inter-arrivals (the default).
    Poisson,
    /// Open loop, fixed inter-arrival time.
    Fixed,
    /// Closed loop with a window of outstanding requests: a max-throughput probe, labelled.
    ClosedLoop,
}

/// `client-<k>.json`: one client process's account of the measured phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSummary {
    /// [`RAW_SCHEMA_VERSION`].
    pub schema: u32,
    /// Client index `k`.
    pub client: u32,
    /// Schedule kind.
    pub schedule: ScheduleKind,
    /// Offered rate of this client (`None` for closed loop).
    pub offered_ops_per_s: Option<f64>,
    /// Requests sent during the measured phase.
    pub sent: u64,
    /// Requests completed (replied to) from the measured phase's start on, including the drain
    /// after its end.
    pub completed: u64,
    /// Of `completed`, the replies that arrived after the measured phase's end, while the
    /// client drained its window: the backlog the system under test still held when the sends
    /// stopped (a server's phase counters end at the phase's end and do not include them).
    /// Absent in older files (0).
    #[serde(default)]
    pub completed_after_phase: u64,
    /// Failed requests by kind (`timeout`, `rejected`, ...), during the measured phase.
    pub errors: BTreeMap<String, u64>,
    /// Replies whose content did not verify against the expected value.
    pub verify_failures: u64,
    /// Verified misses of a lossy store (MICA evicts on bucket overflow and log wrap): answered
    /// correctly, not failures. Absent in older files (0).
    #[serde(default)]
    pub misses: u64,
    /// Median of actual − intended send time.
    pub send_lateness_ns_p50: u64,
    /// 99th percentile of actual − intended send time.
    pub send_lateness_ns_p99: u64,
    /// Largest actual − intended send time.
    pub send_lateness_ns_max: u64,
    /// The in-flight window's share of the send lateness (absent in older files and when the
    /// window never filled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowHold>,
    /// Completed requests per second of measured phase.
    pub achieved_ops_per_s: f64,
    /// Warm-up duration (excluded from everything).
    pub warmup_ms: u64,
    /// Measured phase duration that ran (the plan's, unless the client was stopped early).
    pub measure_ms: u64,
    /// Set when a signal stopped the client before its measured phase ended: ms of the measured
    /// phase that ran (0 in warm-up). Such a point is invalid and never sealed by the testbeds.
    /// Absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at_ms: Option<u64>,
    /// The client's seed.
    pub seed: u64,
    /// Key distribution that ran (`scrambled-zipfian`, `zipfian`, `uniform`, `latest`).
    pub distribution: String,
    /// Interval length of the `.hlog`.
    pub interval_ms: u64,
}

/// The error kind of requests still in flight when a client stopped (`ClientSummary::errors`).
pub const UNANSWERED_AT_END: &str = "unanswered-at-end";

/// How long a client's in-flight window was full and what it cost its sends: lateness the
/// system under test caused by holding every slot (loadgen `window`), apart from the generator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowHold {
    /// The generator's own send-lateness p99: lateness less each send's wait for a slot.
    pub send_lateness_own_ns_p99: u64,
    /// Time the window was full in the measured phase.
    pub full_ns: u64,
    /// Measured sends that waited for a slot.
    pub delayed_sends: u64,
}

/// Per-location counters of the server side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationCounters {
    /// Messages completed (replied) at this location.
    pub completions: u64,
    /// Execution steps (function invocations, one per continuation).
    pub steps: u64,
    /// Steps that returned retry (torn or stale read).
    pub retries: u64,
    /// Steps that trapped in the VM.
    pub traps: u64,
    /// Accesses refused by the region checks.
    pub access_denials: u64,
    /// Messages pushed back to the client.
    pub pushbacks: u64,
    /// Fraction of worker time busy during the measured phase, in `0..=1`.
    pub busy_fraction: f64,
}

/// `server.json`: the server side's account of the measured phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSummary {
    /// [`RAW_SCHEMA_VERSION`].
    pub schema: u32,
    /// The steering policy that ran (a series name).
    pub policy: String,
    /// Server host CPU.
    pub host: LocationCounters,
    /// NIC cores.
    pub nic: LocationCounters,
    /// Datagrams the server side received and did not serve. Absent in older files (zeros).
    #[serde(default)]
    pub dropped: DroppedDatagrams,
    /// Load samples of the measured phase that `samples.jsonl` could not hold (its size bound
    /// or a write error). Absent in older files (0).
    #[serde(default)]
    pub load_samples_dropped: u64,
    /// Rule changes of the measured phase that `steering.jsonl` could not hold (its size bound
    /// or a write error). Absent in older files (0).
    #[serde(default)]
    pub steering_changes_dropped: u64,
    /// What the host's and the NIC's eBPF functions ran on (`jit`, `interpreter`, or
    /// `interpreter (jit requested: <why not>)`). Absent in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm: Option<PerLocationVm>,
    /// CPU the host side spent in the measured phase, from every host-side thread and the host
    /// cores' interrupt time. Absent in older files and when not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu: Option<HostCpu>,
    /// The system under test that served the point: [`SYSTEM_NAAM`], or the iPipe baseline
    /// with its isolation model ([`SYSTEM_IPIPE_TRUSTED`], [`SYSTEM_IPIPE_PROCESSES`]). Absent
    /// in older files (NAAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The iPipe baseline's account of the point, when it served it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipipe: Option<IpipeRecord>,
}

/// `server.json`'s `system` when NAAM served the point.
pub const SYSTEM_NAAM: &str = "naam";
/// `server.json`'s `system` when iPipe served it with its own trusted isolation (one address
/// space for every actor).
pub const SYSTEM_IPIPE_TRUSTED: &str = "ipipe-trusted";
/// `server.json`'s `system` when iPipe served it with a process per tenant.
pub const SYSTEM_IPIPE_PROCESSES: &str = "ipipe-process-per-tenant";

/// Migrations an [`IpipeRecord`] lists (the rest are counted).
pub const MIGRATIONS_LISTED_MAX: usize = 4096;

/// One migration of an iPipe actor (times since the measured phase's start; negative during
/// warm-up).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MigrationRecord {
    /// The actor (= tenant index, in registration order).
    pub actor: u32,
    /// `true`: NIC → host; `false`: pulled back.
    pub to_host: bool,
    /// When the management core decided it.
    pub started_ns: i64,
    /// When its last phase finished.
    pub finished_ns: i64,
    /// Bytes of objects moved.
    pub bytes: u64,
    /// Requests buffered during it.
    pub requests: u32,
}

/// What the iPipe baseline's runtimes did over the whole run (warm-up included).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpipeRecord {
    /// `trusted` or `process-per-tenant`.
    pub isolation: String,
    /// Actors (one per tenant).
    pub actors: u32,
    /// NIC cores (FCFS + DRR) and host cores.
    pub cores: [u16; 2],
    /// Downgrades to DRR.
    pub downgrades: u64,
    /// Migrations NIC → host, completed.
    pub migrations_to_host: u64,
    /// Pull-backs host → NIC, completed.
    pub migrations_to_nic: u64,
    /// Requests the NIC forwarded to the host.
    pub forwarded: u64,
    /// Address-space switches (process per tenant), both sides.
    pub tenant_switches: u64,
    /// Requests refused (queue full, unknown function), both sides.
    pub refused: u64,
    /// The migrations, in order (at most [`MIGRATIONS_LISTED_MAX`]).
    pub migrations: Vec<MigrationRecord>,
    /// Images, recalls or forwards a runtime or the link between the sides refused (a driver
    /// error; a test expects none).
    pub failures: Vec<String>,
}

/// What each server location's eBPF functions ran on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerLocationVm {
    /// The host's.
    pub host: String,
    /// The NIC's.
    pub nic: String,
}

/// CPU time the server host spent in the measured phase, by where it went. Thread times are the
/// threads' own CPU clocks (on whatever core they ran); softirq and irq are `/proc/stat`'s for
/// the host's cores (all cores when the host is not pinned: then other processes' interrupt
/// work on those cores counts too, so the figure errs high).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostCpu {
    /// Length of the measured phase as accounted (between the two snapshots).
    pub phase_ns: u64,
    /// The host's worker threads (where `busy_fraction`'s busy time is measured).
    pub workers_ns: u64,
    /// The emulated RNIC thread (on real hardware the RNIC serves reads with no host CPU; here
    /// a thread of the host process does, wherever it is pinned).
    pub rnic_thread_ns: u64,
    /// The controller thread (policy, eSwitch rule updates, sample file).
    pub controller_ns: u64,
    /// Every other thread of the host process (the process's CPU clock minus the above).
    pub other_threads_ns: u64,
    /// Kernel softirq time (packet receive and transmit) on the host's cores.
    pub softirq_ns: u64,
    /// Kernel hard-irq time on the host's cores.
    pub irq_ns: u64,
    /// The cores `softirq_ns` and `irq_ns` were read from.
    pub cores: Vec<u32>,
}

impl HostCpu {
    /// Everything outside the worker threads.
    pub fn outside_workers_ns(&self) -> u64 {
        self.rnic_thread_ns
            + self.controller_ns
            + self.other_threads_ns
            + self.softirq_ns
            + self.irq_ns
    }

    /// Everything.
    pub fn total_ns(&self) -> u64 {
        self.workers_ns + self.outside_workers_ns()
    }
}

/// Datagrams the server side received and did not serve, by why, over the whole run (warm-up
/// included: the account errs towards more drops, never fewer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DroppedDatagrams {
    /// Datagrams that were not NAAM frames (host workers, NIC workers, emulated RNIC).
    pub malformed: u64,
    /// Frames of a kind the receiving worker does not serve.
    pub unexpected: u64,
    /// One-sided reads the emulated RNIC refused (region or rkey check).
    pub denied_reads: u64,
    /// Replies the workers could not send.
    pub unsent_replies: u64,
}

impl DroppedDatagrams {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.malformed + self.unexpected + self.denied_reads + self.unsent_replies
    }

    /// Field-by-field sum.
    pub fn plus(&self, other: &DroppedDatagrams) -> DroppedDatagrams {
        DroppedDatagrams {
            malformed: self.malformed + other.malformed,
            unexpected: self.unexpected + other.unexpected,
            denied_reads: self.denied_reads + other.denied_reads,
            unsent_replies: self.unsent_replies + other.unsent_replies,
        }
    }
}

/// One line of `steering.jsonl`: a rule change of the steering stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteeringChange {
    /// Time since measure start (negative changes in warm-up are not written).
    pub t_ns: u64,
    /// Policy that made the change.
    pub policy: String,
    /// What the rule covers (`all`, `tenant:3`, `function:3/1`, `flow:...`).
    pub scope: String,
    /// Share of messages sent to the host, per mille.
    pub host_permille: u16,
    /// Share sent to the NIC, per mille.
    pub nic_permille: u16,
    /// Share pushed back to clients, per mille.
    pub client_permille: u16,
    /// Why (the controller's words: `host queue delay 340us > 200us`).
    pub reason: String,
}

/// `clock.json`: each machine's clock as the orchestrator measured it before the point. Every
/// machine's measured phase starts at the common start shifted by its offset, so intervals of
/// different machines line up to within each offset's error bound.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSummary {
    /// [`RAW_SCHEMA_VERSION`].
    pub schema: u32,
    /// One entry per machine whose clock was measured.
    pub machines: Vec<MachineClock>,
}

/// One machine's clock relative to the orchestrator's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineClock {
    /// The machine (inventory name).
    pub host: String,
    /// Its clock minus the orchestrator's.
    pub offset_ns: i64,
    /// Bound on the offset's error (half the best probe's round trip).
    pub error_bound_ns: u64,
}

/// One line of `samples.jsonl`: a load sample of the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSample {
    /// Time since measure start.
    pub t_ns: u64,
    /// Sampled location.
    pub location: Location,
    /// Queueing delay of the location's queue.
    pub queue_delay_ns: u64,
    /// Busy fraction since the previous sample, in `0..=1`.
    pub utilisation: f64,
    /// Completions since the previous sample.
    pub completions: u64,
}

/// Outcome of one function × backend measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum VmCostOutcome {
    /// Timed.
    Measured {
        /// Mean wall time per call.
        ns_per_op: f64,
        /// Timed calls.
        iterations: u64,
    },
    /// The backend cannot run here (`jit: the JIT is not built ...`, `kernel-jit: needs root`).
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// One function × backend entry of `vmcost.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmCostEntry {
    /// NAAM function name.
    pub function: String,
    /// Backend (a vm-cost series name: `native`, `interpreter`, `jit`, `kernel-jit`).
    pub backend: String,
    /// Measurement or the reason there is none.
    #[serde(flatten)]
    pub outcome: VmCostOutcome,
}

/// `vmcost.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmCostReport {
    /// [`RAW_SCHEMA_VERSION`].
    pub schema: u32,
    /// Entries, one per function × backend of the point.
    pub entries: Vec<VmCostEntry>,
}

/// Reads a JSON file of type `T` with a size bound.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, ResultsError> {
    let bytes = read_bounded(path, what)?;
    serde_json::from_slice(&bytes).map_err(|source| ResultsError::Json {
        path: path.to_path_buf(),
        what,
        source,
    })
}

/// Reads a JSON-lines file of `T` (blank lines skipped).
pub fn read_jsonl<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<Vec<T>, ResultsError> {
    let bytes = read_bounded(path, what)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item = serde_json::from_str(line).map_err(|source| ResultsError::JsonLine {
            path: path.to_path_buf(),
            line: i + 1,
            what,
            source,
        })?;
        out.push(item);
    }
    Ok(out)
}

/// Writes records as JSON lines (not atomic: for writers that stream; the runner seals the
/// point folder atomically afterwards).
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), ResultsError> {
    let mut text = Vec::new();
    for r in records {
        let line = serde_json::to_vec(r).map_err(|source| ResultsError::Json {
            path: path.to_path_buf(),
            what: "JSON line",
            source,
        })?;
        text.extend_from_slice(&line);
        text.push(b'\n');
    }
    fs::write(path, text).map_err(ResultsError::io(path, "write"))
}

pub(crate) fn read_bounded(path: &Path, what: &'static str) -> Result<Vec<u8>, ResultsError> {
    read_bounded_with(path, what, RAW_JSON_BYTES_MAX)
}

pub(crate) fn read_bounded_with(
    path: &Path,
    what: &'static str,
    limit_bytes: u64,
) -> Result<Vec<u8>, ResultsError> {
    let meta = fs::metadata(path).map_err(|source| missing_or_io(path, what, source))?;
    if meta.len() > limit_bytes {
        return Err(ResultsError::TooLarge {
            path: path.to_path_buf(),
            bytes: meta.len(),
            limit_bytes,
            what,
        });
    }
    fs::read(path).map_err(ResultsError::io(path, "read"))
}

fn missing_or_io(path: &Path, what: &'static str, source: std::io::Error) -> ResultsError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ResultsError::MissingFile {
            path: PathBuf::from(path),
            why: format!("the {what} of this point was not written"),
        }
    } else {
        ResultsError::Io {
            path: path.to_path_buf(),
            action: "read",
            source,
        }
    }
}
