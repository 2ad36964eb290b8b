//! The runtime is sans-IO like naam-engine: its source names no socket, file, process, thread,
//! clock or async runtime (the isolation probes, which need processes, live in `benches/`).

use std::path::Path;

const FORBIDDEN: [&str; 9] = [
    "std::net",
    "std::fs",
    "std::process",
    "thread::spawn",
    "Instant::now",
    "SystemTime",
    "tokio",
    "std::thread",
    "std::time::Instant",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn runtime_source_is_sans_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() >= 10, "found the runtime's source files");
    let mut offences = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        for (n, line) in text.lines().enumerate() {
            for word in FORBIDDEN.iter().filter(|w| line.contains(*w)) {
                offences.push(format!("{}:{}: {word}", file.display(), n + 1));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the runtime must stay sans-IO:\n{}",
        offences.join("\n")
    );
}
