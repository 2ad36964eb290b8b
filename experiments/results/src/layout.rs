//! The run folder: `results/<experiment>/<run-id>/`.
//!
//! ```text
//! results/mica-ycsb-b/quick-3f2a9c1b04de/
//!   provenance.json        Provenance: code, toolchain, host, config hash, sessions
//!   plan.json              the ExperimentPlan (canonical JSON hashed into the run id)
//!   run.json               RunState: complete | partial, what is missing or failed
//!   run.lock               present while a runner works on the folder (holds its PID)
//!   points/<point-id>/     a complete point: raw files + summary.json
//!   points/<point-id>.partial/   a point being measured (or killed): redone on resume
//!   frames/                parquet + CSV frames written by naam-analysis
//! ```
//!
//! A point folder without `.partial` exists only once complete: the runner measures into
//! `<id>.partial/`, writes `summary.json` there, fsyncs every file, and renames the folder.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use naam_plan::ExperimentPlan;

use crate::atomic::{remove_stale_temps, sync_dir, sync_files_in, write_json_atomic};
use crate::error::ResultsError;
use crate::provenance::{PROVENANCE_SCHEMA_VERSION, Provenance, Session, config_hash};
use crate::raw::read_json;
use crate::state::RunState;
use crate::summary::PointSummary;

/// `provenance.json`.
pub const PROVENANCE_FILE: &str = "provenance.json";
/// `plan.json`.
pub const PLAN_FILE: &str = "plan.json";
/// `run.json`.
pub const RUN_FILE: &str = "run.json";
/// `run.lock`.
pub const LOCK_FILE: &str = "run.lock";
/// `points/`.
pub const POINTS_DIR: &str = "points";
/// `summary.json` inside a point folder.
pub const SUMMARY_FILE: &str = "summary.json";
/// Suffix of a point folder being measured.
pub const PARTIAL_SUFFIX: &str = ".partial";
/// `frames/`.
pub const FRAMES_DIR: &str = "frames";
/// Characters of the configuration hash in a run id.
pub const RUN_ID_HASH_CHARS: usize = 12;

/// The run id of a plan: `<variant>-<first 12 hex of the config hash>`, plus `-<suffix>` for a
/// fresh run of a configuration that already has one. Same plan → same folder → resume.
pub fn run_id(plan: &ExperimentPlan, suffix: Option<&str>) -> String {
    let hash = config_hash(plan);
    let base = format!("{}-{}", plan.variant, &hash[..RUN_ID_HASH_CHARS]);
    match suffix {
        Some(s) => format!("{base}-{s}"),
        None => base,
    }
}

/// An open run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The folder `results_root/<experiment>/<run_id>` (not touched).
    pub fn at(results_root: &Path, experiment: &str, run_id: &str) -> RunDir {
        RunDir {
            root: results_root.join(experiment).join(run_id),
        }
    }

    /// An existing run folder.
    pub fn open(root: &Path) -> RunDir {
        RunDir {
            root: root.to_path_buf(),
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run id (the folder's name).
    pub fn run_id(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Creates the folder for `plan` or reopens it, checking the configuration hash, and
    /// appends a session to its provenance. Returns the provenance with the new session last.
    pub fn create_or_resume(
        &self,
        plan: &ExperimentPlan,
        manifest: &str,
        repo_dir: &Path,
        executor: &str,
    ) -> Result<Provenance, ResultsError> {
        let hash = config_hash(plan);
        fs::create_dir_all(self.points_dir())
            .map_err(ResultsError::io(self.points_dir(), "create folder"))?;
        let plan_path = self.root.join(PLAN_FILE);
        if plan_path.exists() {
            let recorded: ExperimentPlan = read_json(&plan_path, "plan")?;
            let recorded_hash = config_hash(&recorded);
            if recorded_hash != hash {
                return Err(ResultsError::ConfigMismatch {
                    path: self.root.clone(),
                    recorded: recorded_hash,
                    current: hash,
                });
            }
        } else {
            write_json_atomic(&plan_path, plan)?;
        }
        let mut provenance = match self.read_provenance() {
            Ok(p) => p,
            Err(ResultsError::MissingFile { .. }) => Provenance {
                schema: PROVENANCE_SCHEMA_VERSION,
                experiment: plan.id.to_string(),
                variant: plan.variant.to_string(),
                run_id: self.run_id(),
                config_hash: hash,
                testbed: plan.testbed.label(),
                nic_emulated: plan.testbed.nic_is_emulated(),
                manifest: manifest.to_string(),
                base_seed: plan.base_seed,
                sessions: Vec::new(),
            },
            Err(e) => return Err(e),
        };
        let index = provenance.sessions.len() as u32;
        provenance
            .sessions
            .push(Session::start(index, repo_dir, executor));
        self.write_provenance(&provenance)?;
        Ok(provenance)
    }

    /// Reads `provenance.json`.
    pub fn read_provenance(&self) -> Result<Provenance, ResultsError> {
        read_json(&self.root.join(PROVENANCE_FILE), "provenance")
    }

    /// Writes `provenance.json` atomically.
    pub fn write_provenance(&self, provenance: &Provenance) -> Result<(), ResultsError> {
        write_json_atomic(&self.root.join(PROVENANCE_FILE), provenance)
    }

    /// Reads `plan.json`.
    pub fn read_plan(&self) -> Result<ExperimentPlan, ResultsError> {
        read_json(&self.root.join(PLAN_FILE), "plan")
    }

    /// Reads `run.json`.
    pub fn read_state(&self) -> Result<RunState, ResultsError> {
        read_json(&self.root.join(RUN_FILE), "run state")
    }

    /// Writes `run.json` atomically.
    pub fn write_state(&self, state: &RunState) -> Result<(), ResultsError> {
        write_json_atomic(&self.root.join(RUN_FILE), state)
    }

    /// `points/`.
    pub fn points_dir(&self) -> PathBuf {
        self.root.join(POINTS_DIR)
    }

    /// `frames/`.
    pub fn frames_dir(&self) -> PathBuf {
        self.root.join(FRAMES_DIR)
    }

    /// The folder of a complete point.
    pub fn point_dir(&self, point_id: &str) -> PathBuf {
        self.points_dir().join(point_id)
    }

    /// The folder a point is measured into.
    pub fn staging_dir(&self, point_id: &str) -> PathBuf {
        self.points_dir()
            .join(format!("{point_id}{PARTIAL_SUFFIX}"))
    }

    /// Whether the point is complete (its sealed folder has a summary).
    pub fn is_complete(&self, point_id: &str) -> bool {
        self.point_dir(point_id).join(SUMMARY_FILE).is_file()
    }

    /// Reads a complete point's summary.
    pub fn read_summary(&self, point_id: &str) -> Result<PointSummary, ResultsError> {
        read_json(
            &self.point_dir(point_id).join(SUMMARY_FILE),
            "point summary",
        )
    }

    /// Empties (or creates) the staging folder of a point and returns it.
    pub fn begin_point(&self, point_id: &str) -> Result<PathBuf, ResultsError> {
        let staging = self.staging_dir(point_id);
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .map_err(ResultsError::io(&staging, "remove partial point"))?;
        }
        fs::create_dir_all(&staging).map_err(ResultsError::io(&staging, "create folder"))?;
        Ok(staging)
    }

    /// Writes the summary into the staging folder, makes every file durable and renames the
    /// folder into place: from now on the point is complete.
    pub fn seal_point(&self, point_id: &str, summary: &PointSummary) -> Result<(), ResultsError> {
        let staging = self.staging_dir(point_id);
        write_json_atomic(&staging.join(SUMMARY_FILE), summary)?;
        sync_files_in(&staging)?;
        let target = self.point_dir(point_id);
        if target.exists() {
            fs::remove_dir_all(&target).map_err(ResultsError::io(&target, "remove old point"))?;
        }
        fs::rename(&staging, &target).map_err(ResultsError::io(&staging, "rename point folder"))?;
        sync_dir(&self.points_dir())
    }

    /// Removes what a killed runner left: partial point folders and temp files. Returns the
    /// ids of the partial points found.
    pub fn clean_leftovers(&self) -> Result<Vec<String>, ResultsError> {
        remove_stale_temps(&self.root)?;
        let partial = self.partial_points()?;
        for id in &partial {
            let dir = self.staging_dir(id);
            fs::remove_dir_all(&dir).map_err(ResultsError::io(&dir, "remove partial point"))?;
        }
        Ok(partial)
    }

    /// Ids of points with a `.partial` folder.
    pub fn partial_points(&self) -> Result<Vec<String>, ResultsError> {
        let dir = self.points_dir();
        let Ok(entries) = fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(ResultsError::io(&dir, "list folder"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(PARTIAL_SUFFIX) {
                ids.push(id.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Takes the folder's lock (one runner per run folder). A lock left by a process that no
    /// longer exists (a killed runner) is taken over.
    pub fn lock(&self) -> Result<RunLock, ResultsError> {
        let path = self.root.join(LOCK_FILE);
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let _ = writeln!(file, "{}", std::process::id());
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    if holder.is_some_and(process_alive) {
                        let e = std::io::Error::new(
                            std::io::ErrorKind::WouldBlock,
                            format!(
                                "a runner (PID {}) is working on this run",
                                holder.unwrap_or(0)
                            ),
                        );
                        return Err(ResultsError::Io {
                            path,
                            action: "lock run folder",
                            source: e,
                        });
                    }
                    fs::remove_file(&path).map_err(ResultsError::io(&path, "remove stale lock"))?;
                }
                Err(e) => {
                    return Err(ResultsError::Io {
                        path,
                        action: "lock run folder",
                        source: e,
                    });
                }
            }
        }
        let e = std::io::Error::other("lock keeps reappearing");
        Err(ResultsError::Io {
            path,
            action: "lock run folder",
            source: e,
        })
    }
}

fn process_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Held while a runner works on a run folder; removes `run.lock` when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Run folders of one experiment under `results_root`, newest `run.json` first.
pub fn list_runs(results_root: &Path, experiment: &str) -> Vec<RunDir> {
    let dir = results_root.join(experiment);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut runs: Vec<(std::time::SystemTime, RunDir)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join(PLAN_FILE).is_file())
        .map(|e| {
            let run = RunDir::open(&e.path());
            let modified = fs::metadata(run.root.join(RUN_FILE))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (modified, run)
        })
        .collect();
    runs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.root.cmp(&a.1.root)));
    runs.into_iter().map(|(_, r)| r).collect()
}
