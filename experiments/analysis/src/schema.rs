//! The documented, stable schema of every frame (experiments/SCHEMA.md mirrors these lists;
//! a test keeps them in step). Adding a column at the end is compatible; renaming or
//! retyping one is a schema change and bumps [`FRAMES_SCHEMA_VERSION`].

use crate::frame::{ColumnSpec, Dtype::*};

/// Version of the frame schemas, stored in the `run` frame.
pub const FRAMES_SCHEMA_VERSION: u32 = 1;

macro_rules! spec {
    ($name:literal, $dtype:expr, $doc:literal) => {
        ColumnSpec {
            name: $name,
            dtype: $dtype,
            doc: $doc,
        }
    };
}

/// Columns that identify a point; the first columns of `points`, `intervals`, `steering`,
/// `samples` and `vmcost`.
macro_rules! point_keys {
    () => {
        [
            spec!("experiment", Str, "experiment id"),
            spec!("run_id", Str, "run folder name"),
            spec!(
                "point_id",
                Str,
                "point id (index, series, swept values, repetition)"
            ),
            spec!("series", Str, "placement, policy or backend"),
            spec!("repetition", U32, "repetition from 0"),
            spec!(
                "offered_load_ops_per_s",
                U64,
                "offered load of the point, all clients (null: vm-cost)"
            ),
            spec!("tree_depth", U32, "B-tree depth (null unless B-tree)"),
            spec!("tenants", U32, "offloaded applications"),
        ]
    };
}

const POINT_KEYS: [ColumnSpec; 8] = point_keys!();

const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [ColumnSpec; A],
    b: [ColumnSpec; B],
) -> [ColumnSpec; C] {
    assert!(A + B == C, "lengths must add up");
    let mut out = [a[0]; C];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < C {
        out[i] = b[i - A];
        i += 1;
    }
    out
}

/// `run`: one row describing the run (provenance for footnotes).
pub const RUN: &[ColumnSpec] = &[
    spec!("frames_schema", U32, "FRAMES_SCHEMA_VERSION"),
    spec!("experiment", Str, "experiment id"),
    spec!("title", Str, "figure title from the manifest"),
    spec!("run_id", Str, "run folder name"),
    spec!("variant", Str, "quick or full"),
    spec!("status", Str, "complete or partial"),
    spec!("points_total", U32, "points in the plan"),
    spec!("points_complete", U32, "points with a summary"),
    spec!("config_hash", Str, "SHA-256 of the canonical plan JSON"),
    spec!(
        "testbed",
        Str,
        "local, netns, inventory or simulated (profile <name>)"
    ),
    spec!(
        "nic_emulated",
        Bool,
        "whether the NIC was emulated (or simulated)"
    ),
    spec!(
        "executor",
        Str,
        "what executed the points (distinct names of all sessions, '; ')"
    ),
    spec!(
        "synthetic",
        Bool,
        "whether any point came from the synthetic executor (not a measurement)"
    ),
    spec!("hostname", Str, "machine of the latest session"),
    spec!("cpu_model", Str, "its CPU model"),
    spec!("cores", U32, "its logical CPUs"),
    spec!("kernel", Str, "its kernel release"),
    spec!(
        "code_commit",
        Str,
        "git commit of the latest session (null outside git)"
    ),
    spec!("code_dirty", Bool, "uncommitted changes in any session"),
    spec!("sessions", U32, "runner sessions that worked on the run"),
    spec!("toolchain", Str, "rustc of the latest session"),
    spec!(
        "measure_ms",
        U64,
        "measured phase per point (null: vm-cost)"
    ),
    spec!("interval_ms", U64, "histogram interval (null: vm-cost)"),
    spec!("repetitions", U32, "repetitions in the plan"),
];

/// `points`: one row per complete point (series × sweep value × repetition).
pub const POINTS: &[ColumnSpec] = &concat::<8, 49, 57>(
    POINT_KEYS,
    [
        spec!("point_index", U32, "position in the plan"),
        spec!("seed", U64, "the point's seed"),
        spec!("session", U32, "provenance session that measured it"),
        spec!(
            "valid",
            Bool,
            "the point measured the system under test (verdict valid or saturated)"
        ),
        spec!(
            "verdict",
            Str,
            "valid, saturated (carried less than offered while the generator kept pace) or invalid"
        ),
        spec!(
            "saturation",
            Str,
            "the shortfall of a saturated or invalid point (null: none)"
        ),
        spec!(
            "invalid_reasons",
            Str,
            "failed checks, '; '-separated (empty when valid)"
        ),
        spec!(
            "throughput_ops_per_s",
            F64,
            "requests completed within the measured phase, per second of it"
        ),
        spec!(
            "achieved_ops_per_s",
            F64,
            "sum of the clients' achieved rates"
        ),
        spec!(
            "offered_mean_ops_per_s",
            F64,
            "offered load averaged over load steps (null: closed loop)"
        ),
        spec!("sent", U64, "requests sent"),
        spec!("completed", U64, "requests completed"),
        spec!("errors", U64, "failed requests"),
        spec!("verify_failures", U64, "replies that did not verify"),
        spec!("latency_count", U64, "samples in the merged histogram"),
        spec!(
            "latency_ns_mean",
            F64,
            "mean latency from the intended send time"
        ),
        spec!("latency_ns_p50", U64, "median latency"),
        spec!(
            "latency_ns_p50_ci_lo",
            U64,
            "95 % order-statistic CI of the median, low"
        ),
        spec!(
            "latency_ns_p50_ci_hi",
            U64,
            "95 % order-statistic CI of the median, high"
        ),
        spec!("latency_ns_p90", U64, "90th percentile"),
        spec!("latency_ns_p99", U64, "99th percentile"),
        spec!(
            "latency_ns_p99_ci_lo",
            U64,
            "95 % order-statistic CI of p99, low"
        ),
        spec!(
            "latency_ns_p99_ci_hi",
            U64,
            "95 % order-statistic CI of p99, high"
        ),
        spec!("latency_ns_p999", U64, "99.9th percentile"),
        spec!("latency_ns_max", U64, "largest latency"),
        spec!(
            "share_host",
            F64,
            "fraction of requests executed on the host"
        ),
        spec!("share_nic", F64, "fraction executed on the NIC"),
        spec!("share_client", F64, "fraction executed at clients"),
        spec!(
            "latency_ns_p99_host",
            U64,
            "p99 of requests executed on the host (null: none)"
        ),
        spec!(
            "latency_ns_p99_nic",
            U64,
            "p99 of requests executed on the NIC (null: none)"
        ),
        spec!(
            "latency_ns_p99_client",
            U64,
            "p99 of requests executed at clients (null: none)"
        ),
        spec!(
            "host_busy_fraction",
            F64,
            "host worker utilisation (null: no server.json)"
        ),
        spec!(
            "nic_busy_fraction",
            F64,
            "NIC worker utilisation (null: no server.json)"
        ),
        spec!(
            "server_malformed",
            U64,
            "datagrams the server received that were not NAAM frames (null: no server.json)"
        ),
        spec!(
            "server_unexpected",
            U64,
            "frames of a kind the receiving server worker does not serve (null: no server.json)"
        ),
        spec!(
            "server_denied_reads",
            U64,
            "one-sided reads the emulated RNIC refused (null: no server.json)"
        ),
        spec!(
            "server_unsent_replies",
            U64,
            "replies the server could not send (null: no server.json)"
        ),
        spec!(
            "load_samples_dropped",
            U64,
            "load samples samples.jsonl could not hold (null: no server.json)"
        ),
        spec!(
            "steering_changes_dropped",
            U64,
            "rule changes steering.jsonl could not hold (null: no server.json)"
        ),
        spec!(
            "host_cpu_ns",
            U64,
            "host CPU in the measured phase: every host-side thread plus the host cores' softirq and irq time (null: not measured)"
        ),
        spec!(
            "host_cpu_ns_outside_workers",
            U64,
            "the part of host_cpu_ns outside the worker threads: emulated RNIC, controller, other threads, softirq, irq (null: not measured)"
        ),
        spec!(
            "send_lateness_ns_p99_max",
            U64,
            "worst client's send-lateness p99"
        ),
        spec!(
            "steering_changes",
            U32,
            "rule changes of the steering stage"
        ),
        spec!("intervals", U32, "intervals in the logs"),
        spec!(
            "shift_rules_ms",
            F64,
            "CPU hog start → first rule sending ≥ 90 % of new requests to the NIC; iPipe series: → the first migration of an actor to the host decided (null: no hog or never)"
        ),
        spec!(
            "shift_completions_ms",
            F64,
            "CPU hog start → end of the first interval with ≥ 90 % of completions at the NIC; iPipe series (hog on the NIC's cores): at the host (null: no hog, never, or already there before the hog)"
        ),
        spec!(
            "shift_completions_before_hog",
            Bool,
            "the last interval before the CPU hog already had ≥ 90 % of completions where the load goes (contention before the hog moved it): no shift time is given (null: no hog)"
        ),
        spec!(
            "reaction_mechanism",
            Str,
            "how the series' system reacts to the CPU hog: steering (NAAM) or migration (iPipe) (null: no hog)"
        ),
        spec!(
            "reaction_first_ms",
            F64,
            "CPU hog start → the system's first reaction: NAAM's first rule change of any kind; iPipe's first migration of an actor to the host decided (null: no hog or never). With shift_completions_ms, the two systems' reaction times side by side"
        ),
    ],
);

/// `intervals`: one row per interval × location × point; location `all` merges the three.
pub const INTERVALS: &[ColumnSpec] = &concat::<8, 9, 17>(
    POINT_KEYS,
    [
        spec!("interval_index", U32, "interval number from measure start"),
        spec!("t_ms", U64, "interval start from measure start"),
        spec!("interval_ms", U64, "interval length"),
        spec!("location", Str, "host, nic, client, or all"),
        spec!(
            "count",
            U64,
            "requests completed in the interval at the location"
        ),
        spec!("ops_per_s", F64, "count per second of interval"),
        spec!("latency_ns_p50", U64, "median latency (null: no requests)"),
        spec!("latency_ns_p99", U64, "99th percentile (null: no requests)"),
        spec!("latency_ns_max", U64, "largest latency (null: no requests)"),
    ],
);

/// `steering`: one row per rule change (steering.jsonl) × point.
pub const STEERING: &[ColumnSpec] = &concat::<8, 7, 15>(
    POINT_KEYS,
    [
        spec!("t_ns", U64, "time from measure start"),
        spec!("policy", Str, "policy that changed the rule"),
        spec!("scope", Str, "what the rule covers"),
        spec!("host_permille", U32, "share to the host, per mille"),
        spec!("nic_permille", U32, "share to the NIC, per mille"),
        spec!(
            "client_permille",
            U32,
            "share pushed back to clients, per mille"
        ),
        spec!("reason", Str, "the controller's reason"),
    ],
);

/// `samples`: one row per controller load sample (samples.jsonl) × point.
pub const SAMPLES: &[ColumnSpec] = &concat::<8, 5, 13>(
    POINT_KEYS,
    [
        spec!("t_ns", U64, "time from measure start"),
        spec!("location", Str, "host or nic"),
        spec!("queue_delay_ns", U64, "queueing delay"),
        spec!(
            "utilisation",
            F64,
            "busy fraction since the previous sample"
        ),
        spec!("completions", U64, "completions since the previous sample"),
    ],
);

/// `vmcost`: one row per function × backend × point.
pub const VMCOST: &[ColumnSpec] = &concat::<8, 6, 14>(
    POINT_KEYS,
    [
        spec!("function", Str, "NAAM function"),
        spec!("backend", Str, "native, interpreter, jit or kernel-jit"),
        spec!("status", Str, "measured or unavailable"),
        spec!("ns_per_op", F64, "mean time per call (null: unavailable)"),
        spec!("iterations", U64, "timed calls (null: unavailable)"),
        spec!("reason", Str, "why unavailable (null: measured)"),
    ],
);

/// `events`: one row per event of the plan (CPU hogs, load steps).
pub const EVENTS: &[ColumnSpec] = &[
    spec!("experiment", Str, "experiment id"),
    spec!("run_id", Str, "run folder name"),
    spec!("kind", Str, "cpu-hog or load-step"),
    spec!("start_ms", U64, "from measure start (a load step's at_ms)"),
    spec!("stop_ms", U64, "end of a CPU hog (null: load step)"),
    spec!("threads", U32, "CPU hog threads (null: load step)"),
    spec!("factor", F64, "load-step multiplier (null: CPU hog)"),
];

/// Every frame: name (file stem) and columns.
pub const FRAMES: [(&str, &[ColumnSpec]); 7] = [
    ("run", RUN),
    ("points", POINTS),
    ("intervals", INTERVALS),
    ("steering", STEERING),
    ("samples", SAMPLES),
    ("vmcost", VMCOST),
    ("events", EVENTS),
];
