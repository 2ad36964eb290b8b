//! A synthetic executor: it writes genuine raw files (real `.hlog` interval logs of real
//! HdrHistograms, real JSON summaries) filled with **seeded model latencies, not
//! measurements**. It stands in for the testbed in tests of the runner, the analysis and the
//! figures, and its name says so in every provenance and footnote.
//!
//! The model is deliberately simple: each location has a capacity and a base latency;
//! queueing adds an exponential delay with mean `base × ρ / (1 − ρ)` (M/M/1-like); a CPU hog
//! cuts the host's capacity; adaptive series shift load from the host to the NIC and then to
//! clients as the host saturates. Every number derives from the point's seed.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use naam_plan::{Event, ExperimentPlan, PointPlan, Series, Timing, Workload};
use naam_results::hlog::{HlogError, HlogWriter, TagSet, new_histogram};
use naam_results::raw::*;
use naam_types::PerLocation;

use crate::executor::{ExecError, PointExecutor};

/// The executor's name in provenance and figure footnotes.
pub const SYNTHETIC_EXECUTOR_NAME: &str =
    "synthetic (seeded model latencies standing in for the testbed; not a measurement)";
/// Longest pause per point (the pause only makes a run take time, for kill tests).
pub const PAUSE_PER_POINT_MAX: Duration = Duration::from_secs(10);
/// Histogram draws per interval and location; beyond it each draw is recorded with a weight.
pub const DRAWS_PER_INTERVAL_MAX: u64 = 20_000;

/// Model capacity of the host CPU (ops/s).
const HOST_CAPACITY_OPS_PER_S: f64 = 60_000.0;
/// Model capacity of the NIC cores (ops/s).
const NIC_CAPACITY_OPS_PER_S: f64 = 30_000.0;
/// Model capacity of client-side execution (ops/s).
const CLIENT_CAPACITY_OPS_PER_S: f64 = 25_000.0;
/// Fraction of host capacity left while a CPU hog runs.
const HOG_HOST_CAPACITY_FRACTION: f64 = 0.3;
/// Utilisation cap of the queueing model.
const UTILISATION_MAX: f64 = 0.98;
/// Utilisation the adaptive policy keeps the host under.
const ADAPTIVE_HOST_UTILISATION_TARGET: f64 = 0.8;

/// Writes seeded synthetic raw files; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct SyntheticExecutor {
    /// Sleep before writing each point (bounded by [`PAUSE_PER_POINT_MAX`]).
    pub pause_per_point: Duration,
}

impl PointExecutor for SyntheticExecutor {
    fn name(&self) -> String {
        SYNTHETIC_EXECUTOR_NAME.to_string()
    }

    fn run_point(
        &mut self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
    ) -> Result<(), ExecError> {
        std::thread::sleep(self.pause_per_point.min(PAUSE_PER_POINT_MAX));
        match (&plan.workload, &plan.timing) {
            (Workload::VmCost(w), _) => write_vm_cost(point, &w.functions, out_dir),
            (
                _,
                Timing::Traffic {
                    warmup_ms,
                    measure_ms,
                    interval_ms,
                },
            ) => {
                let shape = Shape {
                    warmup_ms: *warmup_ms,
                    measure_ms: *measure_ms,
                    interval_ms: *interval_ms,
                };
                write_traffic(plan, point, shape, out_dir)
            }
            (_, Timing::Iterations { .. }) => Err(ExecError::Unsupported {
                executor: self.name(),
                what: "traffic with iteration timing".to_string(),
            }),
        }
    }
}

/// SplitMix64: small, seeded, good enough for model noise.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    fn exponential(&mut self, mean: f64) -> f64 {
        -self.unit().ln() * mean
    }
}

#[derive(Debug, Clone, Copy)]
struct Shape {
    warmup_ms: u64,
    measure_ms: u64,
    interval_ms: u64,
}

/// Per-location rates and utilisations of one interval.
#[derive(Debug, Clone, Copy)]
struct IntervalModel {
    /// Completed ops/s per location.
    rate: PerLocation<f64>,
    /// Utilisation per location.
    rho: PerLocation<f64>,
}

fn model_at(plan: &ExperimentPlan, point: &PointPlan, t_ms: f64) -> IntervalModel {
    let mut factor = 1.0;
    let mut hog = false;
    for e in &plan.events {
        match *e {
            Event::LoadStep { at_ms, factor: f } if t_ms >= at_ms as f64 => factor = f,
            Event::CpuHog {
                start_ms, stop_ms, ..
            } if (start_ms as f64..stop_ms as f64).contains(&t_ms) => hog = true,
            _ => {}
        }
    }
    let load = point.offered_load_ops_per_s.unwrap_or(0) as f64 * factor;
    let depth_cost = point
        .tree_depth
        .map_or(1.0, |d| f64::from(d).max(1.0) / 2.0);
    let tenant_cost = 1.0 + 0.02 * f64::from(point.tenants).log2();
    let host_cap =
        HOST_CAPACITY_OPS_PER_S * if hog { HOG_HOST_CAPACITY_FRACTION } else { 1.0 } / depth_cost;
    let caps = PerLocation {
        host: host_cap,
        nic: NIC_CAPACITY_OPS_PER_S / depth_cost / tenant_cost,
        client: CLIENT_CAPACITY_OPS_PER_S / depth_cost,
    };
    let shares = shares(point.series, load, &caps);
    let wanted = |l: Location| load * shares[l];
    IntervalModel {
        rate: PerLocation::from_fn(|l| wanted(l).min(caps[l] * UTILISATION_MAX)),
        rho: PerLocation::from_fn(|l| (wanted(l) / caps[l]).min(UTILISATION_MAX)),
    }
}

/// Shares of a series at `load`, per location.
fn shares(series: Series, load: f64, caps: &PerLocation<f64>) -> PerLocation<f64> {
    let split = |host, nic, client| PerLocation { host, nic, client };
    match series {
        Series::Host => split(1.0, 0.0, 0.0),
        Series::Nic | Series::Ipipe | Series::IpipeProcesses | Series::IpipeSweep(_) => {
            split(0.0, 1.0, 0.0)
        }
        Series::Client => split(0.0, 0.0, 1.0),
        Series::Kayak => split(0.6, 0.0, 0.4),
        Series::Cell => split(0.5, 0.0, 0.5),
        Series::Splinter => {
            let host = (caps.host * ADAPTIVE_HOST_UTILISATION_TARGET / load.max(1.0)).min(1.0);
            split(host, 0.0, 1.0 - host)
        }
        _ => {
            let host = (caps.host * ADAPTIVE_HOST_UTILISATION_TARGET / load.max(1.0)).min(1.0);
            let nic = ((1.0 - host) * load).min(caps.nic * ADAPTIVE_HOST_UTILISATION_TARGET)
                / load.max(1.0);
            split(host, nic, (1.0 - host - nic).max(0.0))
        }
    }
}

/// Base latency per location (ns): host DRAM path, NIC with its per-access delay, client RTTs.
fn base_latency_ns(plan: &ExperimentPlan, point: &PointPlan) -> PerLocation<f64> {
    let accesses = f64::from(point.tree_depth.unwrap_or(2));
    let nic_delay = plan.roles.nic_access_delay_ns as f64;
    PerLocation {
        host: 2_000.0 + 200.0 * accesses,
        nic: 3_000.0 + nic_delay * accesses / plan.roles.nic_core_speed_factor.max(0.01),
        client: 8_000.0 + 5_000.0 * accesses,
    }
}

/// An interval log that cannot be encoded or written, as an [`ExecError::Io`] on `dir`.
fn hlog_error(dir: &Path) -> impl Fn(HlogError) -> ExecError + '_ {
    move |error| ExecError::Io {
        path: dir.to_path_buf(),
        source: match error {
            HlogError::Write { source } => source,
            other => std::io::Error::other(other.to_string()),
        },
    }
}

struct ClientLog {
    writer: HlogWriter<Vec<u8>>,
    completed: u64,
}

impl ClientLog {
    /// An empty log whose origin is a fixed date (the model has no clock).
    fn new(out_dir: &Path) -> Result<ClientLog, ExecError> {
        let writer = HlogWriter::new(
            Vec::new(),
            TagSet::locations(),
            Duration::from_secs(1_757_412_000),
            &["synthetic model (not a measurement)"],
        )
        .map_err(hlog_error(out_dir))?;
        Ok(ClientLog {
            writer,
            completed: 0,
        })
    }
}

fn write_traffic(
    plan: &ExperimentPlan,
    point: &PointPlan,
    shape: Shape,
    out_dir: &Path,
) -> Result<(), ExecError> {
    let clients = plan.roles.clients;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ExecError::Io { path, source }
    };
    let mut logs = Vec::new();
    let mut rngs = Vec::new();
    for k in 0..clients {
        logs.push(ClientLog::new(out_dir)?);
        rngs.push(Rng(point.client_seed(k)));
    }
    let base = base_latency_ns(plan, point);
    let intervals = shape.measure_ms / shape.interval_ms;
    let interval_s = shape.interval_ms as f64 / 1000.0;
    let mut totals = PerLocation::<u64>::default();
    let mut busy = PerLocation::<f64>::default();
    let mut steering = Vec::new();
    let mut samples = Vec::new();
    let mut last_permille = None;
    for i in 0..intervals {
        let t_ms = (i as f64 + 0.5) * shape.interval_ms as f64;
        let m = model_at(plan, point, t_ms);
        let start = Duration::from_millis(i * shape.interval_ms);
        for location in Location::ALL {
            let n_total = (m.rate[location] * interval_s).round() as u64;
            let mean_queue = base[location] * m.rho[location] / (1.0 - m.rho[location]);
            for k in 0..clients as usize {
                let n = n_total / u64::from(clients)
                    + u64::from((k as u64) < n_total % u64::from(clients));
                if n == 0 {
                    continue;
                }
                let h = draw(&mut rngs[k], n, base[location], mean_queue);
                logs[k].completed += h.len();
                logs[k]
                    .writer
                    .write(
                        location.name(),
                        start,
                        Duration::from_millis(shape.interval_ms),
                        &h,
                    )
                    .map_err(hlog_error(out_dir))?;
            }
            totals[location] += n_total;
            busy[location] += m.rho[location] / intervals as f64;
            if location != Location::Client {
                samples.push(LoadSample {
                    t_ns: (i * shape.interval_ms) * 1_000_000,
                    location,
                    queue_delay_ns: mean_queue as u64,
                    utilisation: m.rho[location],
                    completions: n_total,
                });
            }
        }
        let total: f64 = m.rate.total().max(1.0);
        let permille = m.rate.map(|r| (r / total * 1000.0).round() as u16);
        if last_permille != Some(permille) {
            steering.push(SteeringChange {
                t_ns: i * shape.interval_ms * 1_000_000,
                policy: point.series.to_string(),
                scope: "all".to_string(),
                host_permille: permille.host,
                nic_permille: permille.nic,
                client_permille: permille.client,
                reason: format!("synthetic model: host utilisation {:.2}", m.rho.host),
            });
            last_permille = Some(permille);
        }
    }
    for (k, log) in logs.into_iter().enumerate() {
        let bytes = log.writer.finish().map_err(hlog_error(out_dir))?;
        let path = out_dir.join(client_hlog_file(k as u32));
        std::fs::write(&path, bytes).map_err(io(&path))?;
        write_client_summary(plan, point, shape, k as u32, log.completed, out_dir)?;
    }
    write_server(point, totals, busy, out_dir)?;
    write_jsonl(&out_dir.join(STEERING_FILE), &steering).map_err(|e| ExecError::PointFailed {
        message: e.to_string(),
    })?;
    write_jsonl(&out_dir.join(SAMPLES_FILE), &samples).map_err(|e| ExecError::PointFailed {
        message: e.to_string(),
    })
}

/// A histogram of `n` latencies `base + Exp(mean_queue)`, drawing at most
/// [`DRAWS_PER_INTERVAL_MAX`] values and weighting each so the count is exactly `n`.
fn draw(rng: &mut Rng, n: u64, base: f64, mean_queue: f64) -> Histogram<u64> {
    let mut h = new_histogram();
    let draws = n.min(DRAWS_PER_INTERVAL_MAX);
    for d in 0..draws {
        let weight = n / draws + u64::from(d < n % draws);
        let latency = (base + rng.exponential(mean_queue.max(1.0))).round() as u64;
        let _ = h.record_n(latency.max(1), weight);
    }
    h
}

fn write_client_summary(
    plan: &ExperimentPlan,
    point: &PointPlan,
    shape: Shape,
    k: u32,
    completed: u64,
    out_dir: &Path,
) -> Result<(), ExecError> {
    let clients = f64::from(plan.roles.clients);
    let distribution = match &plan.workload {
        Workload::Mica(m) => serde_json::to_value(m.distribution),
        Workload::Btree(b) => serde_json::to_value(b.distribution),
        Workload::VmCost(_) => Ok(serde_json::Value::Null),
    };
    let distribution = distribution
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let summary = ClientSummary {
        schema: RAW_SCHEMA_VERSION,
        client: k,
        schedule: ScheduleKind::Poisson,
        offered_ops_per_s: point.offered_load_ops_per_s.map(|o| o as f64 / clients),
        sent: completed,
        completed,
        completed_after_phase: 0,
        errors: Default::default(),
        verify_failures: 0,
        misses: 0,
        send_lateness_ns_p50: 1_500,
        send_lateness_ns_p99: 25_000,
        send_lateness_ns_max: 120_000,
        window: None,
        achieved_ops_per_s: completed as f64 * 1000.0 / shape.measure_ms as f64,
        warmup_ms: shape.warmup_ms,
        measure_ms: shape.measure_ms,
        stopped_at_ms: None,
        seed: point.client_seed(k),
        distribution,
        interval_ms: shape.interval_ms,
    };
    write_json(&out_dir.join(client_summary_file(k)), &summary)
}

fn write_server(
    point: &PointPlan,
    totals: PerLocation<u64>,
    busy: PerLocation<f64>,
    out_dir: &Path,
) -> Result<(), ExecError> {
    let steps_per = u64::from(point.tree_depth.unwrap_or(2));
    let counters = |l: Location| LocationCounters {
        completions: totals[l],
        steps: totals[l] * steps_per,
        retries: totals[l] / 1000,
        traps: 0,
        access_denials: 0,
        pushbacks: if l == Location::Host {
            totals.client
        } else {
            0
        },
        busy_fraction: busy[l],
    };
    let server = ServerSummary {
        schema: RAW_SCHEMA_VERSION,
        policy: point.series.to_string(),
        host: counters(Location::Host),
        nic: counters(Location::Nic),
        dropped: Default::default(),
        load_samples_dropped: 0,
        steering_changes_dropped: 0,
        vm: None,
        host_cpu: None,
        system: None,
        ipipe: None,
    };
    write_json(&out_dir.join(SERVER_FILE), &server)
}

fn write_vm_cost(point: &PointPlan, functions: &[String], out_dir: &Path) -> Result<(), ExecError> {
    let mut rng = Rng(point.seed ^ u64::from(point.repetition));
    let backend = point.series.as_str();
    let base_ns = match point.series {
        Series::Native => Some(25.0),
        Series::Interpreter => Some(450.0),
        Series::Jit => Some(80.0),
        _ => None,
    };
    let entries = functions
        .iter()
        .enumerate()
        .map(|(i, f)| VmCostEntry {
            function: f.clone(),
            backend: backend.to_string(),
            outcome: match base_ns {
                Some(ns) => VmCostOutcome::Measured {
                    ns_per_op: ns * (1.0 + i as f64) * (0.97 + 0.06 * rng.unit()),
                    iterations: 100_000,
                },
                None => VmCostOutcome::Unavailable {
                    reason: "needs root (synthetic)".to_string(),
                },
            },
        })
        .collect();
    write_json(
        &out_dir.join(VMCOST_FILE),
        &VmCostReport {
            schema: RAW_SCHEMA_VERSION,
            entries,
        },
    )
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ExecError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| ExecError::PointFailed {
        message: e.to_string(),
    })?;
    std::fs::write(path, bytes).map_err(|source| ExecError::Io {
        path: path.to_path_buf(),
        source,
    })
}
