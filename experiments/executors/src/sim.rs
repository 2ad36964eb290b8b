//! The simulation testbed as the runner's [`PointExecutor`]: a plan's point becomes a
//! [`SimPointConfig`] — from the same role configurations the local testbed launches
//! ([`configs::build`]), so dataset, seeds, policy parameters, load steps and the hog are chosen
//! once for every testbed — and runs on naam-sim's virtual clock, writing the same raw files.
//!
//! What the simulation takes from the cost profile instead of the manifest: core counts (host,
//! NIC), the NIC's access delay and speed (the profile's DMA and per-instruction costs), links.
//!
//! Points are independent and deterministic, so the executor runs them **in parallel**: asked
//! for a point of a plan, it starts one worker per core on that point and the plan's next ones
//! ([`crate::sim_pool`]), each into a cache folder, and hands each out as the runner asks for it.
//! The files are those a sequential run writes.

use std::path::{Path, PathBuf};

use naam_plan::{Event, ExperimentPlan, PointPlan, Testbed, Timing};
use naam_roles::config::{EswitchMode, Polling, Role};
use naam_runner::{ExecError, PointExecutor};
use naam_sim::point::{HogWindow, SimClient, SimPoint, SimPointConfig};
use naam_sim::profile::CostProfile;

use crate::TestbedError;
use crate::configs::{self, CLIENT_INFLIGHT_MAX, CLIENT_TIMEOUT_MS, LOOPBACK, Settings};
use crate::executor::SAMPLE_PERIOD_US;
use crate::sim_pool::{Pool, point_dir};

/// Most points simulated at once (bounds memory: each holds its dataset).
pub const PARALLEL_POINTS_MAX: usize = 16;

/// Runs plan points on the simulation testbed.
#[derive(Debug)]
pub struct SimExecutor {
    parallel: usize,
    /// The workers of the plan being run (dropped, and so joined, before the cache goes).
    pool: Option<Pool>,
    cache: tempfile::TempDir,
}

impl SimExecutor {
    /// An executor running up to `parallel` points at once (1..=[`PARALLEL_POINTS_MAX`]).
    pub fn new(parallel: usize) -> Result<SimExecutor, TestbedError> {
        let cache = tempfile::Builder::new()
            .prefix("naam-sim-points-")
            .tempdir()
            .map_err(|e| TestbedError::io(Path::new("naam-sim-points"), "create", e))?;
        Ok(SimExecutor {
            parallel: parallel.clamp(1, PARALLEL_POINTS_MAX),
            pool: None,
            cache,
        })
    }

    /// One point per available core.
    pub fn per_core() -> Result<SimExecutor, TestbedError> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        SimExecutor::new(cores)
    }

    /// Runs `point` into `out_dir`: waits for the workers to simulate it (starting them on this
    /// point and the plan's next ones unless they run this plan already), or simulates it here
    /// when they will not (a point they handed over already, or one before their first).
    pub fn run(
        &mut self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
    ) -> Result<(), TestbedError> {
        let index = plan.points.iter().position(|p| p.id == point.id);
        let from = self.cache.path().join(&point.id);
        let pool = self.pool_for(plan, || match index {
            Some(i) => (i..plan.points.len()).collect(),
            None => Vec::new(),
        })?;
        let taken = index.is_some_and(|i| pool.take(i));
        if !taken {
            simulate_into(plan, point, pool.profile(), &from);
        }
        let result = std::fs::read_to_string(from.join(ERROR_FILE));
        if let Ok(message) = result {
            let _ = std::fs::remove_dir_all(&from);
            return Err(TestbedError::Run { message });
        }
        copy_dir(&from, out_dir)?;
        std::fs::remove_dir_all(&from).map_err(|e| TestbedError::io(&from, "remove", e))
    }

    /// The workers of `plan`, started on the points `indices` gives if they run another plan or
    /// none.
    fn pool_for(
        &mut self,
        plan: &ExperimentPlan,
        indices: impl FnOnce() -> Vec<usize>,
    ) -> Result<&Pool, TestbedError> {
        if !self.pool.as_ref().is_some_and(|p| p.serves(plan)) {
            self.pool = None;
            let profile = load_profile(plan)?;
            let (cache, parallel) = (self.cache.path(), self.parallel);
            self.pool = Some(Pool::start(
                plan,
                indices(),
                profile,
                cache,
                parallel,
                simulate_point,
            ));
        }
        Ok(self.pool.as_ref().expect("started above"))
    }
}

/// Simulates point `index` of `plan` into its cache folder under `cache`.
fn simulate_point(plan: &ExperimentPlan, index: usize, profile: &CostProfile, cache: &Path) {
    simulate_into(
        plan,
        &plan.points[index],
        profile,
        &point_dir(cache, plan, index),
    );
}

/// The file a failed point's cache folder holds instead of raw files.
pub(crate) const ERROR_FILE: &str = "error.txt";

/// Simulates one point into `dir` (emptied first: a pool dropped before handing a point over
/// leaves its files); a failure is written there as [`ERROR_FILE`].
fn simulate_into(plan: &ExperimentPlan, point: &PointPlan, profile: &CostProfile, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let outcome = std::fs::create_dir_all(dir)
        .map_err(|e| TestbedError::io(dir, "create", e))
        .and_then(|()| run_point(plan, point, profile, dir));
    if let Err(e) = outcome {
        let _ = std::fs::write(dir.join(ERROR_FILE), e.to_string());
    }
}

/// Runs one point on the simulation testbed, writing its raw files into `out_dir`.
pub fn run_point(
    plan: &ExperimentPlan,
    point: &PointPlan,
    profile: &CostProfile,
    out_dir: &Path,
) -> Result<(), TestbedError> {
    let config = sim_config(plan, point, profile)?;
    SimPoint::new(config)
        .and_then(|p| p.run(out_dir))
        .map(drop)
        .map_err(|e| TestbedError::Run {
            message: e.to_string(),
        })
}

/// The plan's cost profile.
pub fn load_profile(plan: &ExperimentPlan) -> Result<CostProfile, TestbedError> {
    let Testbed::Sim { profile, path } = &plan.testbed else {
        return Err(TestbedError::Unsupported(format!(
            "the simulation executor runs `kind = \"sim\"` plans, not {}",
            plan.testbed.kind_name()
        )));
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    CostProfile::load(dir, profile).map_err(|e| TestbedError::Output {
        path: path.clone(),
        message: e.to_string(),
    })
}

/// The simulated point of `point`: the local testbed's role configurations, with time modelled
/// by `profile`.
pub fn sim_config(
    plan: &ExperimentPlan,
    point: &PointPlan,
    profile: &CostProfile,
) -> Result<SimPointConfig, TestbedError> {
    let Timing::Traffic {
        warmup_ms,
        measure_ms,
        interval_ms,
        ..
    } = plan.timing
    else {
        return Err(TestbedError::Unsupported(
            "vm-cost times the VM on this machine; it has no simulated variant".into(),
        ));
    };
    let settings = Settings {
        eswitch: EswitchMode::User,
        polling: Polling::Blocking,
        verify: true,
        sample_period_us: SAMPLE_PERIOD_US,
        shm_dir: PathBuf::from("/dev/shm"),
        ipipe_runs: true,
    };
    let configs = configs::build(plan, point, &settings, LOOPBACK, "sim")?;
    let Role::Host(host) = &configs.host.role else {
        return Err(TestbedError::Unsupported("no host role".into()));
    };
    let warmup_ns = warmup_ms * 1_000_000;
    let clients = configs
        .clients
        .iter()
        .filter_map(|c| match &c.role {
            Role::Client(cc) => Some(SimClient {
                seed: cc.seed,
                offered_ops_per_s: cc.offered_ops_per_s,
                load_steps: cc
                    .load_steps
                    .iter()
                    .map(|&(at_ms, factor)| (warmup_ns + at_ms * 1_000_000, factor))
                    .collect(),
            }),
            _ => None,
        })
        .collect();
    Ok(SimPointConfig {
        profile: profile.clone(),
        dataset: host.dataset.clone(),
        policy: host.policy,
        clients,
        warmup_ns,
        measure_ns: measure_ms * 1_000_000,
        interval_ns: interval_ms * 1_000_000,
        seed: point.seed,
        sample_period_ns: SAMPLE_PERIOD_US * 1000,
        timeout_ns: CLIENT_TIMEOUT_MS * 1_000_000,
        inflight_max: CLIENT_INFLIGHT_MAX,
        hog: hog_window(plan, warmup_ns, measure_ms),
    })
}

/// The plan's CPU hog, in virtual time since the run's start (it stops by the measurement's end,
/// as on the local testbed).
fn hog_window(plan: &ExperimentPlan, warmup_ns: u64, measure_ms: u64) -> Option<HogWindow> {
    plan.events.iter().find_map(|e| match e {
        Event::CpuHog {
            start_ms, stop_ms, ..
        } => Some(HogWindow {
            start_ns: warmup_ns + start_ms * 1_000_000,
            stop_ns: warmup_ns + (*stop_ms).min(measure_ms) * 1_000_000,
        }),
        Event::LoadStep { .. } => None,
    })
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), TestbedError> {
    std::fs::create_dir_all(to).map_err(|e| TestbedError::io(to, "create", e))?;
    let entries = std::fs::read_dir(from).map_err(|e| TestbedError::io(from, "read", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| TestbedError::io(from, "read", e))?;
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target).map_err(|e| TestbedError::io(&target, "write", e))?;
    }
    Ok(())
}

impl PointExecutor for SimExecutor {
    fn name(&self) -> String {
        format!(
            "simulation testbed (naam-sim, virtual clock, {} points in parallel; eBPF executed \
             on {} where a point offers ≥ {} requests per program, else interpreted; its CPU \
             time modelled from the profile's interpreter costs)",
            self.parallel,
            naam_sim::point::executed_on(naam_sim::point::EXECUTE_ON_DEFAULT),
            naam_sim::point::JIT_CALLS_PER_PROGRAM_MIN
        )
    }

    /// Starts the workers on exactly the points the runner will ask for (a resumed run's
    /// complete points are not simulated again).
    fn will_run(&mut self, plan: &ExperimentPlan, todo: &[&PointPlan]) {
        let indices = || {
            let position = |p: &&PointPlan| plan.points.iter().position(|q| q.id == p.id);
            todo.iter().filter_map(position).collect()
        };
        self.pool = None;
        // A profile that does not load is reported by run_point, which loads it again.
        let _ = self.pool_for(plan, indices);
    }

    fn run_point(
        &mut self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
    ) -> Result<(), ExecError> {
        self.run(plan, point, out_dir)
            .map(drop)
            .map_err(|e| e.into_exec_error(self.name()))
    }
}
