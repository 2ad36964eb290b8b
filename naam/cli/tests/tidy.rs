//! The repository's own rules, checked as an ordinary test:
//! - the crate dependency graph is the one ARCHITECTURE.md draws (section "Dependency rules"): a
//!   new edge, or a drawn edge the code no longer has, fails with the edge named;
//! - no limit (`const *_MAX` / `*_MIN`) is defined twice under `src/`, outside the listed debts;
//! - no function under `src/` is longer than [`FUNCTION_LINES_MAX`], outside the listed debts,
//!   and a listed function may not grow.
//!
//! Lists of debts must shrink: an entry that no longer applies fails the test until removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Longest function (lines, signature to closing brace) outside [`LONG_FUNCTIONS`].
const FUNCTION_LINES_MAX: usize = 70;

/// Functions longer than [`FUNCTION_LINES_MAX`]: (file, name, lines at most, reason).
const LONG_FUNCTIONS: &[(&str, &str, usize, &str)] = &[
    (
        "naam/vm/src/interp.rs",
        "run",
        399,
        "the interpreter's dispatch loop: one match over opcodes, kept whole for speed",
    ),
    (
        "experiments/analysis/src/figures/draw.rs",
        "draw_chart",
        130,
        "debt: split axes, series and legend",
    ),
    (
        "experiments/results/src/summary.rs",
        "summarize_traffic",
        98,
        "debt",
    ),
    (
        "experiments/plan/src/validate/variant.rs",
        "timing",
        98,
        "debt: one check per field",
    ),
    (
        "experiments/runner/src/synthetic.rs",
        "write_traffic",
        95,
        "debt",
    ),
    ("experiments/executors/src/vmcost.rs", "mica", 94, "debt"),
    (
        "experiments/plan/src/validate/variant.rs",
        "event",
        88,
        "debt",
    ),
    ("workloads/mica/src/trace.rs", "run_trace", 83, "debt"),
    (
        "experiments/analysis/src/figures/data.rs",
        "vm_cost_figure",
        77,
        "debt",
    ),
    ("orchestrator/doctor/src/checks.rs", "ovs", 73, "debt"),
    (
        "naam/net/src/batch.rs",
        "recvmmsg",
        73,
        "one unsafe system call with its buffers set up beside it",
    ),
];

/// Limits defined in more than one place: (name, reason). Debt: each should have one home.
const DUPLICATE_LIMITS: &[(&str, &str)] = &[
    ("CLIENT_INFLIGHT_MAX", "debt"),
    ("CLIENT_OPERATIONS_MAX", "debt"),
    (
        "CLIENTS_MAX",
        "two things: client processes in a plan, simulated clients in a sim point",
    ),
    (
        "CORES_MAX",
        "two things: a simulated core pool, one side of iPipe",
    ),
    (
        "EVENTS_MAX",
        "two things: timeline events per variant, a sim point's event budget",
    ),
    ("FUNCTIONS_MAX", "debt"),
    ("LAUNCHES_MAX", "debt"),
    ("LAUNCH_INPUTS_MAX", "debt"),
    ("LAUNCH_OUTPUTS_MAX", "debt"),
    ("MANIFEST_BYTES_MAX", "debt"),
    ("READS_INFLIGHT_MAX", "debt"),
    ("RECV_WAIT_MAX", "debt"),
    ("REGION_BYTES_MAX", "debt"),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A workspace member: its package name, folder and dependencies on other members.
struct Member {
    name: String,
    dir: PathBuf,
    /// (dependency, is a dev-dependency)
    deps: BTreeSet<(String, bool)>,
}

fn members() -> Vec<Member> {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata: {output:?}");
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).expect("metadata JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    packages
        .iter()
        .map(|p| {
            let manifest = Path::new(p["manifest_path"].as_str().expect("manifest path"));
            let deps = p["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| d["kind"].as_str() != Some("build"))
                .filter_map(|d| {
                    let name = d["name"].as_str()?;
                    let dev = d["kind"].as_str() == Some("dev");
                    names.contains(name).then(|| (name.to_string(), dev))
                })
                .collect();
            Member {
                name: p["name"].as_str().expect("name").to_string(),
                dir: manifest.parent().expect("crate folder").to_path_buf(),
                deps,
            }
        })
        .collect()
}

/// The edges ARCHITECTURE.md draws: `crate: dep, dep` and `crate (tests): dep` lines in the
/// first `text` block after the "Dependency rules" heading.
fn drawn_edges() -> BTreeSet<(String, String, bool)> {
    let doc =
        fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = doc
        .split_once("## Dependency rules")
        .expect("ARCHITECTURE.md has a \"Dependency rules\" section")
        .1;
    let block = section
        .split_once("```text\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the section holds a ```text block")
        .0;
    let mut edges = BTreeSet::new();
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (from, to) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("not `crate: deps`: {line}"));
        let (from, dev) = match from.trim().strip_suffix("(tests)") {
            Some(name) => (name.trim(), true),
            None => (from.trim(), false),
        };
        for dep in to.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            edges.insert((from.to_string(), dep.to_string(), dev));
        }
    }
    edges
}

#[test]
fn the_dependency_graph_is_the_one_architecture_md_draws() {
    let actual: BTreeSet<(String, String, bool)> = members()
        .into_iter()
        .flat_map(|m| {
            let name = m.name;
            m.deps
                .into_iter()
                .map(move |(d, dev)| (name.clone(), d, dev))
        })
        .collect();
    let drawn = drawn_edges();
    let show = |edges: Vec<&(String, String, bool)>| -> Vec<String> {
        edges
            .into_iter()
            .map(|(a, b, dev)| format!("{a}{} -> {b}", if *dev { " (tests)" } else { "" }))
            .collect()
    };
    let undrawn = show(actual.difference(&drawn).collect());
    let stale = show(drawn.difference(&actual).collect());
    assert!(
        undrawn.is_empty() && stale.is_empty(),
        "edges in the code but not in ARCHITECTURE.md: {undrawn:?}; \
         drawn but not in the code: {stale:?}"
    );
}

/// Every `.rs` file under each member's `src/`, as (path relative to the root, text).
fn sources() -> Vec<(String, String)> {
    let root = workspace_root().canonicalize().expect("root");
    let mut files = Vec::new();
    for member in members() {
        collect_rs(&member.dir.join("src"), &mut files);
    }
    files
        .into_iter()
        .map(|path| {
            let text = fs::read_to_string(&path).expect("source file");
            let rel = path.strip_prefix(&root).unwrap_or(&path);
            (rel.to_string_lossy().into_owned(), text)
        })
        .collect()
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text with comments, string and character literals blanked (newlines kept), so braces
/// and keywords can be counted.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let skipped = literal_or_comment_len(&chars[i..]);
        if skipped == 0 {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        for &c in &chars[i..i + skipped] {
            out.push(if c == '\n' { '\n' } else { ' ' });
        }
        i += skipped;
    }
    out
}

/// Length of the comment or literal starting at `s[0]` (0 if none starts there).
fn literal_or_comment_len(s: &[char]) -> usize {
    let find = |from: usize, pat: &[char]| {
        (from..s.len())
            .find(|&k| s[k..].starts_with(pat))
            .map_or(s.len(), |k| k + pat.len())
    };
    match s {
        ['/', '/', ..] => find(2, &['\n']) - 1,
        ['/', '*', ..] => find(2, &['*', '/']),
        ['r', '#', ..] | ['r', '"', ..] => {
            let hashes = s[1..].iter().take_while(|&&c| c == '#').count();
            if s.get(1 + hashes) != Some(&'"') {
                return 0;
            }
            let mut close = vec!['"'];
            close.extend(std::iter::repeat_n('#', hashes));
            find(2 + hashes, &close)
        }
        ['"', ..] => {
            let mut k = 1;
            while k < s.len() && s[k] != '"' {
                k += if s[k] == '\\' { 2 } else { 1 };
            }
            (k + 1).min(s.len())
        }
        ['\'', '\\', ..] => find(3, &['\'']),
        ['\'', _, '\'', ..] => 3,
        _ => 0,
    }
}

/// (name, first line, lines) of every function with a body.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        if let Some(end) = body_end(&lines, i) {
            found.push((name, i + 1, end - i + 1));
        }
    }
    found
}

fn fn_name(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|&w| w == "fn")?;
    let modifiers_only = words[..at].iter().all(|w| {
        w.starts_with("pub") || ["const", "async", "unsafe", "extern", "\"C\""].contains(w)
    });
    let name: String = words
        .get(at + 1)?
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (modifiers_only && !name.is_empty()).then_some(name)
}

/// The line of the brace that closes the body of the function declared on line `start`, or
/// `None` for a declaration without a body.
fn body_end(lines: &[&str], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut opened = false;
    // Parentheses and brackets of the signature (`[u8; 4]` holds a `;` that ends nothing).
    let mut nested = 0usize;
    for (k, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '(' | '[' if !opened => nested += 1,
                ')' | ']' if !opened => nested = nested.saturating_sub(1),
                ';' if !opened && nested == 0 => return None,
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if opened && depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

#[test]
fn no_function_grows_past_the_limit_outside_the_listed_debts() {
    let mut problems = Vec::new();
    let mut listed_seen = BTreeSet::new();
    for (file, text) in sources() {
        for (name, line, len) in functions(&code_only(&text)) {
            if len <= FUNCTION_LINES_MAX {
                continue;
            }
            let listed = LONG_FUNCTIONS
                .iter()
                .find(|(f, n, _, _)| *f == file && *n == name);
            if listed.is_some() {
                listed_seen.insert((file.clone(), name.clone()));
            }
            match listed {
                Some((_, _, max, _)) if len <= *max => {}
                Some((_, _, max, _)) => problems.push(format!(
                    "{file}:{line} fn {name}: {len} lines, listed at {max}"
                )),
                None => problems.push(format!(
                    "{file}:{line} fn {name}: {len} lines > {FUNCTION_LINES_MAX}"
                )),
            }
        }
    }
    for (file, name, _, _) in LONG_FUNCTIONS {
        if !listed_seen.contains(&(file.to_string(), name.to_string())) {
            problems.push(format!(
                "{file} fn {name} is listed in LONG_FUNCTIONS but no longer long (or gone): remove it"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Names of `const *_MAX` / `*_MIN` items in `code`.
fn limits(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let rest = line.trim_start();
            let rest = rest
                .strip_prefix("pub ")
                .or_else(|| rest.strip_prefix("pub(crate) "))
                .unwrap_or(rest);
            let name: String = rest
                .strip_prefix("const ")?
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            (name.ends_with("_MAX") || name.ends_with("_MIN")).then_some(name)
        })
        .collect()
}

#[test]
fn each_limit_is_defined_once_outside_the_listed_debts() {
    let mut homes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (file, text) in sources() {
        for name in limits(&code_only(&text)) {
            homes.entry(name).or_default().push(file.clone());
        }
    }
    let mut problems = Vec::new();
    for (name, files) in homes.iter().filter(|(_, f)| f.len() > 1) {
        if !DUPLICATE_LIMITS.iter().any(|(n, _)| n == name) {
            problems.push(format!("{name} is defined in {files:?}: give it one home"));
        }
    }
    for (name, _) in DUPLICATE_LIMITS {
        if homes.get(*name).is_none_or(|f| f.len() < 2) {
            problems.push(format!(
                "{name} is listed in DUPLICATE_LIMITS but defined once: remove it"
            ));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_function_scanner_sees_through_literals_and_comments() {
    let code = code_only(
        "fn a(x: [u8; 2]) {\n    let s = \"}\"; // }\n    let c = '}';\n    let r = r#\"}\"#;\n}\nfn b();\n",
    );
    assert_eq!(functions(&code), vec![("a".to_string(), 1, 5)]);
    assert_eq!(
        limits("pub const X_MAX: u8 = 1;\nconst Y: u8 = 2;\n"),
        vec!["X_MAX"]
    );
}
