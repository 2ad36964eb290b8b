//! The engine is sans-IO: its source names no socket, file, process, thread, clock or async
//! runtime, and holds no shared or global state (no atomics, locks, statics with interior
//! mutability), so a single-threaded simulator can run many endpoints and workers in one process.
//! (A tidy check in the rust-analyzer manner: an ordinary test over the source text.)

use std::path::Path;

const FORBIDDEN: [&str; 16] = [
    "std::net",
    "std::fs",
    "std::process",
    "thread::spawn",
    "Instant::now",
    "SystemTime",
    "tokio",
    "std::thread",
    "std::time::Instant",
    "std::sync::atomic",
    "Mutex",
    "RwLock",
    "OnceLock",
    "static mut",
    "thread_local!",
    "lazy_static",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn engine_source_is_sans_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() >= 5, "found the engine's source files");
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for word in FORBIDDEN.iter().filter(|w| line.contains(*w)) {
                offences.push(format!("{}:{}: {word}", file.display(), n + 1));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the engine must stay sans-IO:\n{}",
        offences.join("\n")
    );
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    assert!(
        !deps.contains("tokio") && !deps.contains("mio"),
        "no async runtime dependency"
    );
}
