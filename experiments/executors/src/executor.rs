//! The local testbed as the runner's [`PointExecutor`].

use std::path::{Path, PathBuf};

use naam_plan::{ExperimentPlan, PointPlan, Testbed, Timing};
use naam_roles::config::{EswitchMode, Polling};
use naam_runner::{ExecError, PointExecutor};

use crate::TestbedError;
use crate::configs::{self, LOOPBACK, Settings};
use crate::point::{self, Placement};
use naam_launch::netns::{self, Netns};
use naam_launch::{Cancel, LaunchError};

/// Controller sampling period of the local testbed: about a millisecond, so that a shift of "tens
/// of milliseconds" (the paper's claim) spans tens of decisions (assumption).
pub const SAMPLE_PERIOD_US: u64 = 1000;

/// What runs vm-cost points: the engine, MICA and the B-tree timed in this process, no testbed.
pub const VM_COST_EXECUTOR: &str =
    "in process (vm-cost: timed in the runner's process, no testbed)";

/// How the local testbed runs points.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The `naam-role` binary.
    pub role_binary: PathBuf,
    /// `None`: the kernel eSwitch when root, else the user-space one.
    pub eswitch: Option<EswitchMode>,
    /// Busy-poll or blocking workers.
    pub polling: Polling,
    /// Check every answer.
    pub verify: bool,
    /// Folder for shared-memory region files.
    pub shm_dir: PathBuf,
    /// netem delay each way in netns mode.
    pub netem_delay_us: Option<u64>,
}

impl LocalOptions {
    /// Defaults: the binary beside this executable, eSwitch by privilege, blocking workers,
    /// verification on, `/dev/shm`, no netem delay.
    pub fn new() -> Result<LocalOptions, TestbedError> {
        Ok(LocalOptions::with_role_binary(crate::role_binary()?))
    }

    /// The defaults of [`LocalOptions::new`] with the role binary at `role_binary`.
    pub fn with_role_binary(role_binary: PathBuf) -> LocalOptions {
        LocalOptions {
            role_binary,
            eswitch: None,
            polling: Polling::Blocking,
            verify: true,
            shm_dir: PathBuf::from("/dev/shm"),
            netem_delay_us: None,
        }
    }
}

/// Runs points with local role processes.
#[derive(Debug)]
pub struct LocalExecutor {
    options: LocalOptions,
    cancel: Cancel,
}

impl LocalExecutor {
    /// An executor with `options`.
    pub fn new(options: LocalOptions) -> LocalExecutor {
        LocalExecutor {
            options,
            cancel: Cancel::new(),
        }
    }

    /// The same executor, its points torn down when `cancel` is set (Ctrl-C).
    pub fn with_cancel(mut self, cancel: Cancel) -> LocalExecutor {
        self.cancel = cancel;
        self
    }

    fn eswitch(&self) -> EswitchMode {
        self.options.eswitch.unwrap_or(if netns::have_root() {
            EswitchMode::Kernel
        } else {
            EswitchMode::User
        })
    }

    /// Runs one point into `out_dir` (also usable without the runner, e.g. by tests).
    pub fn run(
        &self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        out_dir: &Path,
    ) -> Result<Option<point::TestbedRecord>, TestbedError> {
        let Timing::Traffic {
            warmup_ms,
            measure_ms,
            ..
        } = plan.timing
        else {
            // vm-cost: no processes, timed in this one.
            return crate::vmcost::run(plan, point, out_dir).map(|()| None);
        };
        let settings = Settings {
            eswitch: self.eswitch(),
            polling: self.options.polling,
            verify: self.options.verify,
            sample_period_us: SAMPLE_PERIOD_US,
            shm_dir: self.options.shm_dir.clone(),
            ipipe_runs: true,
        };
        // Unique per run of a point (shared-memory file names), carrying the launcher's PID.
        let run_id = crate::sweep::run_id(point.index, point.repetition);
        let result = self.launch(
            plan,
            point,
            &settings,
            &run_id,
            (warmup_ms, measure_ms),
            out_dir,
        );
        // A host killed mid-run cannot remove its regions; the launcher, alive, does.
        crate::sweep::remove_run_files(&self.options.shm_dir, &run_id);
        result
    }

    /// The point's roles on the plan's testbed.
    fn launch(
        &self,
        plan: &ExperimentPlan,
        point: &PointPlan,
        settings: &Settings,
        run_id: &str,
        timing: (u64, u64),
        out_dir: &Path,
    ) -> Result<Option<point::TestbedRecord>, TestbedError> {
        let binary = &self.options.role_binary;
        match &plan.testbed {
            Testbed::Local => {
                let configs = configs::build(plan, point, settings, LOOPBACK, run_id)?;
                point::run(
                    &configs,
                    timing,
                    binary,
                    Placement::Loopback,
                    &self.cancel,
                    out_dir,
                )
                .map(Some)
            }
            Testbed::Netns => {
                if !netns::have_root() {
                    return Err(LaunchError::Netns(
                        "the netns testbed needs root (run as root or use kind = \"local\")".into(),
                    )
                    .into());
                }
                let ns = Netns::create(&format!("p{}", point.index), self.options.netem_delay_us)?;
                let configs = configs::build(plan, point, settings, ns.server_ip(), run_id)?;
                let placement = Placement::Namespaces(ns);
                point::run(&configs, timing, binary, placement, &self.cancel, out_dir).map(Some)
            }
            Testbed::Sim { profile, .. } => Err(TestbedError::Unsupported(format!(
                "the simulation testbed (profile {profile}) runs through the simulation executor \
                 (naam_executors::SimExecutor)"
            ))),
            Testbed::Inventory { path } => Err(TestbedError::Unsupported(format!(
                "testbed inventory {} runs through the orchestrator (naam deploy / naam run with an inventory)",
                path.display()
            ))),
        }
    }
}

impl PointExecutor for LocalExecutor {
    fn name(&self) -> String {
        format!(
            "local testbed (emulated NIC, {} eSwitch)",
            match self.eswitch() {
                EswitchMode::Kernel => "kernel",
                EswitchMode::User => "user-space",
                EswitchMode::Ovs => "open-vswitch",
            }
        )
    }

    fn name_for(&self, plan: &ExperimentPlan) -> String {
        match plan.timing {
            Timing::Iterations { .. } => VM_COST_EXECUTOR.to_string(),
            Timing::Traffic { .. } => self.name(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use naam_plan::{ExperimentId, Variant, load_manifest, manifest_path};

    fn plan(id: ExperimentId) -> ExperimentPlan {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        load_manifest(&manifest_path(&dir, id), Variant::Quick).expect("committed manifest")
    }

    /// Issue 17: vm-cost results said "local testbed (emulated NIC, kernel eSwitch)" although
    /// they are timed in process.
    #[test]
    fn issue_17_vm_cost_is_labelled_in_process_and_traffic_by_its_testbed() {
        let executor = LocalExecutor::new(LocalOptions::with_role_binary("naam-role".into()));
        let vm_cost = executor.name_for(&plan(ExperimentId::VmCost));
        assert_eq!(vm_cost, VM_COST_EXECUTOR);
        assert!(!vm_cost.contains("testbed ("), "{vm_cost}");
        let traffic = executor.name_for(&plan(ExperimentId::MicaYcsbB));
        assert!(
            traffic.starts_with("local testbed (emulated NIC"),
            "{traffic}"
        );
    }
}
