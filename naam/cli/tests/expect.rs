//! `naam expect`: a results folder checked against an expectations file. A small MICA run is
//! measured here (on the simulation testbed: the production engine on a virtual clock, seconds
//! in a debug build) and checked against expectations it meets, then against fabricated ones it
//! cannot meet and one whose experiment has no run; the committed `experiments/expectations.toml`
//! must load and name only series its experiments' manifests run.

use std::path::{Path, PathBuf};
use std::process::Command;

use naam_analysis::expect::{TestbedKind, load_expectations};
use naam_executors::SimExecutor;
use naam_plan::{ExperimentId, ManifestBuilder, Variant};
use naam_runner::{Progress, RunOptions, run_plan};

const OFFERED_OPS_PER_S: u64 = 20_000;

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Measures a two-series MICA run (host and NIC, one load) under `results`.
fn measure(results: &Path) {
    let text = ManifestBuilder::new(ExperimentId::MicaYcsbB)
        .series(&["host", "nic"])
        .sim("bf2-r7525")
        .timing(20, 60, 20)
        .variant_value("repetitions", 1)
        .offered(&[OFFERED_OPS_PER_S])
        .text();
    let experiments = repo_dir().join("experiments");
    let plan = naam_plan::parse_manifest(&text, &experiments.join("built.toml"), Variant::Quick)
        .unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        results_root: results.to_path_buf(),
        repo_dir: repo_dir(),
        manifest: "built.toml".into(),
        fresh_suffix: None,
        progress: Progress::Hidden,
        stop: None,
    };
    let mut executor = SimExecutor::new(2).unwrap();
    let outcome = run_plan(&plan, &mut executor, &options).unwrap();
    assert!(
        outcome.points_failed.is_empty(),
        "{:?}",
        outcome.points_failed
    );
}

/// Runs `naam expect` over `results` with `expectations` (TOML text): exit success, stdout.
fn naam_expect(results: &Path, expectations: &str) -> (bool, String) {
    let file = results.join("expectations.toml");
    std::fs::write(&file, expectations).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_naam"))
        .arg("expect")
        .arg(results)
        .arg("--expectations")
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.is_empty() || out.status.success() || !stdout.is_empty(),
        "{stderr}"
    );
    (out.status.success(), stdout)
}

const MET: &str = r#"
schema = 1
variant = "quick"

[[expect]]
experiment = "mica-ycsb-b"
testbed = "sim"
series = "host"
metric = "carried_fraction"
aggregate = "min"
expected = 1.0
tolerance = 0.05
source = "this test's run"
claim = "the host carries the offered load"

[[expect]]
experiment = "mica-ycsb-b"
testbed = "sim"
metric = "verify_failures"
aggregate = "sum"
expected = 0
tolerance_abs = 0
source = "this test's run"
claim = "every answer verifies"

[[expect]]
experiment = "mica-ycsb-b"
testbed = "sim"
series = "nic"
metric = "p50_us"
aggregate = "median"
relative_to = { series = "host" }
min = 1.0
source = "this test's run"
claim = "NIC p50 at or above the host's"
"#;

const UNMET: &str = r#"
schema = 1
variant = "quick"

[[expect]]
experiment = "mica-ycsb-b"
testbed = "sim"
series = "host"
metric = "throughput_ops_per_s"
aggregate = "max"
expected = 200000
tolerance = 0.1
source = "fabricated"
claim = "ten times the offered load"

[[expect]]
experiment = "cell-lookups"
testbed = "sim"
metric = "valid"
aggregate = "sum"
min = 1
source = "fabricated"
claim = "an experiment without a run"
"#;

#[test]
fn a_measured_run_meets_its_expectations_and_fabricated_ones_fail() {
    let results = tempfile::tempdir().unwrap();
    measure(results.path());
    let (ok, out) = naam_expect(results.path(), MET);
    assert!(ok, "{out}");
    assert_eq!(out.matches("PASS").count(), 3, "{out}");
    assert!(
        out.contains("expectations: 3 pass, 0 fail, 0 missing (of 3)"),
        "{out}"
    );
    assert!(
        out.contains("expected 1 ± 5 %"),
        "measured vs expected: {out}"
    );
    let (ok, out) = naam_expect(results.path(), UNMET);
    assert!(!ok, "a failed expectation fails the command: {out}");
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_default();
    let measured: f64 = fail
        .split("measured ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(
        fail.contains("expected 200000 ± 10 %")
            && (measured - OFFERED_OPS_PER_S as f64).abs() < 0.1 * OFFERED_OPS_PER_S as f64,
        "the failing line shows measured (about {OFFERED_OPS_PER_S}) and expected: {out}"
    );
    assert!(out.contains("MISSING cell-lookups"), "{out}");
    assert!(out.contains("0 pass, 1 fail, 1 missing"), "{out}");
}

#[test]
fn committed_expectations_name_series_their_manifests_run() {
    let repo = repo_dir();
    let file = load_expectations(&repo.join(naam_analysis::expect::EXPECTATIONS_FILE))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!file.expectations.is_empty());
    for e in &file.expectations {
        let suffix = if e.testbed == TestbedKind::Sim {
            "-sim"
        } else {
            ""
        };
        let manifest = repo.join(format!("experiments/{}{suffix}.toml", e.experiment));
        let plan = naam_plan::load_manifest(&manifest, file.variant)
            .unwrap_or_else(|err| panic!("{}: {err}", manifest.display()));
        let series: Vec<String> = plan.series.iter().map(|s| s.to_string()).collect();
        for name in e
            .select
            .series
            .iter()
            .chain(e.relative_to.iter().flat_map(|r| &r.series))
        {
            assert!(
                series.contains(name),
                "{:?}: series {name} is not in {} ({series:?})",
                e.claim,
                manifest.display()
            );
        }
        assert!(!e.source.is_empty() && !e.claim.is_empty());
    }
}
