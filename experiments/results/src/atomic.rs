//! Atomic, durable file writes: temp file in the same folder, write, fsync, rename, fsync the
//! folder. A reader (or a process killed at any instant) sees the old file or the new one,
//! never a torn one. Leftover temp files of a killed writer are named `.<name>.tmp.<pid>.<n>`
//! and removed by [`remove_stale_temps`].

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::error::ResultsError;

/// Marker inside temp file names.
pub const TEMP_MARKER: &str = ".tmp.";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let dir = parent_of(path);
    let temp = temp_path(path);
    let result = write_temp(&temp, bytes).and_then(|()| {
        fs::rename(&temp, path).map_err(ResultsError::io(path, "rename a temp file onto"))
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result?;
    sync_dir(&dir)
}

/// Serializes `value` as pretty JSON (with a final newline) and writes it atomically.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), ResultsError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| ResultsError::Json {
        path: path.to_path_buf(),
        what: "JSON value",
        source,
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// fsyncs a folder, making renames and creations inside it durable.
pub fn sync_dir(dir: &Path) -> Result<(), ResultsError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(ResultsError::io(dir, "fsync folder"))
}

/// Deepest folder nesting [`sync_files_in`] descends into (role processes may keep logs in a
/// sub-folder of a point).
pub const SYNC_DEPTH_MAX: usize = 4;

/// fsyncs every regular file inside `dir` (sub-folders down to [`SYNC_DEPTH_MAX`]), then the
/// folders themselves.
pub fn sync_files_in(dir: &Path) -> Result<(), ResultsError> {
    sync_tree(dir, SYNC_DEPTH_MAX)
}

fn sync_tree(dir: &Path, depth_left: usize) -> Result<(), ResultsError> {
    for entry in fs::read_dir(dir).map_err(ResultsError::io(dir, "list folder"))? {
        let entry = entry.map_err(ResultsError::io(dir, "list folder"))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(ResultsError::io(&path, "stat"))?;
        if kind.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(ResultsError::io(&path, "fsync"))?;
        } else if kind.is_dir() && depth_left > 0 {
            sync_tree(&path, depth_left - 1)?;
        }
    }
    sync_dir(dir)
}

/// Removes temp files a killed writer left in `dir`; returns how many.
pub fn remove_stale_temps(dir: &Path) -> Result<usize, ResultsError> {
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries {
        let entry = entry.map_err(ResultsError::io(dir, "list folder"))?;
        let name = entry.file_name();
        if is_temp_name(&name.to_string_lossy()) {
            let path = entry.path();
            fs::remove_file(&path).map_err(ResultsError::io(&path, "remove stale temp file"))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether a file name is one of ours temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARKER)
}

fn write_temp(temp: &Path, bytes: &[u8]) -> Result<(), ResultsError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .map_err(ResultsError::io(temp, "create temp file"))?;
    file.write_all(bytes)
        .map_err(ResultsError::io(temp, "write temp file"))?;
    file.sync_all()
        .map_err(ResultsError::io(temp, "fsync temp file"))
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    parent_of(path).join(format!(".{name}{TEMP_MARKER}{}.{n}", std::process::id()))
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.json");
        write_atomic(&path, b"first version, longer").expect("write");
        write_atomic(&path, b"second").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"second");
        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["run.json".to_string()]);
    }

    #[test]
    fn stale_temps_are_recognised_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(".run.json.tmp.123.0"), b"torn").expect("write");
        fs::write(dir.path().join("keep.json"), b"{}").expect("write");
        assert_eq!(remove_stale_temps(dir.path()).expect("clean"), 1);
        assert!(dir.path().join("keep.json").exists());
        assert!(!is_temp_name("run.json"));
    }

    #[test]
    fn write_into_missing_folder_is_an_error_naming_the_file() {
        let err = write_atomic(Path::new("/nonexistent-naam/x.json"), b"x").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent-naam/.x.json.tmp."),
            "{err}"
        );
    }
}
