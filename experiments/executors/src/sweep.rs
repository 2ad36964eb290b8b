//! Leftovers of dead runs: shared-memory region files and network namespaces that a launcher
//! killed with `kill -9` (or a machine that lost power) could not remove. Both carry the
//! launcher's PID in their names — region files `naam-<pid>-<point>-<repetition>-<nonce>-r<id>`
//! (the point's [`run_id`] and the host's region number), namespaces `naam-p<point>-<pid>-<s|c>`
//! — so a sweep at the start of a run removes exactly those whose launcher is gone: never a file
//! or namespace of a live process (a concurrent run keeps its own), never one we did not name.

use std::path::{Path, PathBuf};

use naam_launch::netns;

/// What a sweep removed, and what it could not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Region files removed.
    pub shm_files: Vec<PathBuf>,
    /// Their bytes (file sizes).
    pub shm_bytes: u64,
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// The dead launchers they belonged to.
    pub dead_launcher_pids: Vec<u32>,
    /// Leftovers that could not be removed, with the reason.
    pub failures: Vec<String>,
}

impl SweepReport {
    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.shm_files.is_empty() && self.namespaces.is_empty() && self.failures.is_empty()
    }

    /// One line for the terminal.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "removed {} region files ({} bytes) and {} network namespaces left by dead runs \
             (launcher PIDs {:?})",
            self.shm_files.len(),
            self.shm_bytes,
            self.namespaces.len(),
            self.dead_launcher_pids
        );
        for failure in &self.failures {
            text.push_str(&format!("; could not remove {failure}"));
        }
        text
    }
}

/// A fresh run id for one run of a point: the launcher's PID (what [`sweep_dead_runs`] reads
/// back), the point, the repetition and a clock nonce (so reruns never share file names).
pub fn run_id(point_index: u32, repetition: u32) -> String {
    let nonce = naam_roles::os::realtime_ns() % 1_000_000_000;
    format!("{}-{point_index}-{repetition}-{nonce}", std::process::id())
}

/// The launcher PID of a region file the host created under a [`run_id`]
/// (`naam-<run id>-r<region>`); `None` for any other name.
pub fn launcher_pid_of_region_file(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("naam-")?;
    let (run, region) = rest.rsplit_once("-r")?;
    let fields: Vec<&str> = run.split('-').collect();
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if fields.len() != 4 || !fields.iter().all(|f| all_digits(f)) || !all_digits(region) {
        return None;
    }
    fields[0].parse().ok()
}

/// Removes the region files of run `run_id` in `shm_dir` (its host, killed, could not); returns
/// how many there were.
pub fn remove_run_files(shm_dir: &Path, run_id: &str) -> usize {
    let prefix = format!("naam-{run_id}-r");
    let Ok(entries) = std::fs::read_dir(shm_dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// True while process `pid` exists (a zombie counts: its parent has yet to reap it).
pub fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes the region files in `shm_dir` and (as root) the namespaces of launchers that no
/// longer exist.
pub fn sweep_dead_runs(shm_dir: &Path) -> SweepReport {
    let mut report = SweepReport::default();
    sweep_region_files(shm_dir, &mut report);
    if netns::have_root() {
        sweep_namespaces(&mut report);
    }
    report.dead_launcher_pids.sort_unstable();
    report.dead_launcher_pids.dedup();
    report
}

fn sweep_region_files(shm_dir: &Path, report: &mut SweepReport) {
    let Ok(entries) = std::fs::read_dir(shm_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(launcher_pid_of_region_file) else {
            continue;
        };
        if process_exists(pid) {
            continue;
        }
        let path = entry.path();
        let bytes = entry.metadata().map_or(0, |m| m.len());
        match std::fs::remove_file(&path) {
            Ok(()) => {
                report.shm_files.push(path);
                report.shm_bytes += bytes;
                report.dead_launcher_pids.push(pid);
            }
            // Its own host removed it meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => report.failures.push(format!("{}: {e}", path.display())),
        }
    }
}

fn sweep_namespaces(report: &mut SweepReport) {
    let names = match netns::list() {
        Ok(names) => names,
        Err(e) => return report.failures.push(format!("namespaces: {e}")),
    };
    for name in names {
        let Some(pid) = netns::launcher_pid_of(&name) else {
            continue;
        };
        if process_exists(pid) {
            continue;
        }
        match netns::delete(&name) {
            Ok(()) => {
                report.namespaces.push(name);
                report.dead_launcher_pids.push(pid);
            }
            // A concurrent sweep deleted it first.
            Err(_) if !netns::list().is_ok_and(|now| now.contains(&name)) => {}
            Err(e) => report.failures.push(format!("namespace {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_make_region_names_that_give_back_the_launcher() {
        let name = format!("naam-{}-r12", run_id(3, 1));
        assert_eq!(launcher_pid_of_region_file(&name), Some(std::process::id()));
        for other in [
            "naam-12-r1",
            "naam-1-2-3-x-r1",
            "naam-1-2-3-4-r",
            "naam-1-2-3-4",
            "other-1-2-3-4-r1",
            "naam-1-2-3-4-5-r1",
        ] {
            assert_eq!(launcher_pid_of_region_file(other), None, "{other}");
        }
    }
}
