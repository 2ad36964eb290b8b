//! `naam report`'s page, built from small real results folders (runs of the committed quick
//! plans by the synthetic executor): it agrees with the summaries on disk, escapes what it reads,
//! and says clearly what is missing.

mod common;

use std::path::Path;

use naam_analysis::AnalysisError;
use naam_analysis::report::{CLAIMS, REPORT_FILE, escape_html, ops_text, write_report};
use naam_plan::ExperimentId;
use naam_results::{RunDir, Validity};

/// Experiments run in the folder the agreement test reports on.
const REPORTED: [ExperimentId; 3] = [
    ExperimentId::MicaYcsbB,
    ExperimentId::LoadShift,
    ExperimentId::OffloadScaling,
];

fn report_of(results: &Path) -> String {
    let out = results.join(REPORT_FILE);
    write_report(results, &out).expect("report written");
    std::fs::read_to_string(&out).expect("page")
}

/// (valid, saturated, invalid, missing) counted from the points' summary files.
fn counts_on_disk(run: &RunDir) -> (u32, u32, u32, u32) {
    let plan = run.read_plan().expect("plan");
    let mut counts = (0, 0, 0, 0);
    for point in &plan.points {
        if !run.is_complete(&point.id) {
            counts.3 += 1;
            continue;
        }
        match run.read_summary(&point.id).expect("summary").validity {
            Validity::Valid => counts.0 += 1,
            Validity::Saturated { .. } => counts.1 += 1,
            Validity::Invalid { .. } => counts.2 += 1,
        }
    }
    counts
}

/// The highest throughput of a valid or saturated point of `series`, from the summary files.
fn best_throughput_on_disk(run: &RunDir, series: &str) -> Option<f64> {
    let plan = run.read_plan().expect("plan");
    plan.points
        .iter()
        .filter(|p| p.series.as_str() == series && run.is_complete(&p.id))
        .map(|p| run.read_summary(&p.id).expect("summary"))
        .filter(|s| s.validity.is_valid())
        .filter_map(|s| s.traffic.map(|t| t.throughput_ops_per_s))
        .reduce(f64::max)
}

/// The claims row of `id` (`C1` …), as one line of the page.
fn claim_row<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<tr data-claim=\"{id}\">"))
        .unwrap_or_else(|| panic!("no row for claim {id}"));
    page[start..].lines().next().expect("a line")
}

#[test]
fn the_page_agrees_with_the_summaries_on_disk() {
    let root = tempfile::tempdir().expect("tempdir");
    for id in REPORTED {
        common::synthetic_run(&common::plan(id), root.path());
    }
    // One point made invalid, so the counts are not all "valid".
    let mica_run = naam_analysis::select_run(root.path(), ExperimentId::MicaYcsbB).expect("run");
    mark_invalid(
        &mica_run,
        "nic",
        "send lateness p99 2.0 ms above 1 ms (test)",
    );
    let page = report_of(root.path());
    for id in REPORTED {
        let run = RunDir::open(&naam_analysis::select_run(root.path(), id).expect("run"));
        let (valid, saturated, invalid, missing) = counts_on_disk(&run);
        let expected = format!(
            "data-experiment=\"{id}\" data-valid=\"{valid}\" data-saturated=\"{saturated}\" data-invalid=\"{invalid}\" data-missing=\"{missing}\""
        );
        assert!(page.contains(&expected), "{id}: page lacks {expected}");
        let plan = run.read_plan().expect("plan");
        for series in &plan.series {
            let points = plan.points.iter().filter(|p| p.series == *series).count();
            let row = format!("data-series=\"{series}\" data-points=\"{points}\"");
            assert!(page.contains(&row), "{id}: page lacks {row}");
        }
    }
    assert_eq!(
        page.matches("<img ").count(),
        REPORTED.len(),
        "one figure per run"
    );
    assert_eq!(page.matches("No run to show").count(), 6 - REPORTED.len());
    assert!(page.contains("invalid ×1: send lateness pN N ms above N ms (test)"));
    let mica = RunDir::open(&mica_run);
    let c1 = claim_row(&page, "C1");
    for series in ["host", "nic", "client", "naam-adaptive"] {
        let best = best_throughput_on_disk(&mica, series).expect("a valid point");
        let shown = format!("{series}: {}", ops_text(best));
        assert!(c1.contains(&shown), "C1 lacks {shown}: {c1}");
    }
    assert!(c1.contains("SYNTHETIC DATA"), "{c1}");
    assert!(claim_row(&page, "C2").contains("not measured (no run of"));
    let c3 = claim_row(&page, "C3");
    let shift_run = naam_analysis::select_run(root.path(), ExperimentId::LoadShift).expect("run");
    let first = first_rule_changes_on_disk(&RunDir::open(&shift_run), "naam-adaptive");
    let shown = format!(
        "naam-adaptive (steering: first rule change {first}; ≥ 90 % of completions at the NIC "
    );
    assert!(c3.contains(&shown), "C3 lacks {shown}: {c3}");
    assert!(claim_row(&page, "C4").contains("valid up to 512 offloads"));
}

/// The first rule change after the hog of every point of `series`, from its raw files.
fn first_rule_changes_on_disk(run: &RunDir, series: &str) -> String {
    let plan = run.read_plan().expect("plan");
    let firsts: Vec<Option<f64>> = plan
        .points
        .iter()
        .filter(|p| p.series.as_str() == series)
        .map(|p| {
            let times = naam_results::shift::shift_times(&plan, &run.point_dir(&p.id));
            times
                .expect("raw files")
                .expect("a hog")
                .first_rule_change_ms
        })
        .collect();
    naam_results::digest::list_ms(&firsts)
}

/// Makes the first point of `series` invalid with `reason`, as the runner would have.
fn mark_invalid(run: &Path, series: &str, reason: &str) {
    let dir = RunDir::open(run);
    let plan = dir.read_plan().expect("plan");
    let point = plan
        .points
        .iter()
        .find(|p| p.series.as_str() == series)
        .expect("a point of the series");
    let mut summary = dir.read_summary(&point.id).expect("summary");
    summary.validity = Validity::Invalid {
        reasons: vec![reason.to_string()],
    };
    let text = serde_json::to_string_pretty(&summary).expect("json");
    std::fs::write(dir.point_dir(&point.id).join("summary.json"), text).expect("rewrite");
}

#[test]
fn strings_from_disk_are_escaped() {
    let root = tempfile::tempdir().expect("tempdir");
    let run_dir = common::synthetic_run(&common::plan(ExperimentId::VmCost), root.path());
    let run = RunDir::open(&run_dir);
    let mut provenance = run.read_provenance().expect("provenance");
    provenance.manifest = "<script>alert(\"manifest\")</script>".to_string();
    provenance.sessions[0].host.hostname = "a&b<i>".to_string();
    provenance.sessions[0].executor = "synthetic: <img src=x onerror=alert(1)>".to_string();
    run.write_provenance(&provenance)
        .expect("rewrite provenance");
    mark_invalid(&run_dir, "interpreter", "lateness <b>'high'</b>");
    let page = report_of(root.path());
    assert!(page.contains("&lt;script&gt;alert(&quot;manifest&quot;)&lt;/script&gt;"));
    assert!(page.contains("a&amp;b&lt;i&gt;"));
    assert!(page.contains("synthetic: &lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("lateness &lt;b&gt;&#39;high&#39;&lt;/b&gt;"));
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the page's own check script"
    );
    assert!(!page.contains("<img src=x"));
    assert!(!page.contains("<i>"));
}

#[test]
fn escape_html_escapes_the_five_special_characters() {
    assert_eq!(
        escape_html(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    assert_eq!(escape_html("plain µs text"), "plain µs text");
}

#[test]
fn an_empty_results_folder_gives_a_page_that_says_so() {
    let root = tempfile::tempdir().expect("tempdir");
    let page = report_of(root.path());
    assert_eq!(page.matches("<img ").count(), 0);
    assert_eq!(page.matches("No run to show: no run of `").count(), 6);
    for claim in &CLAIMS {
        assert!(
            claim_row(&page, claim.id).contains("not measured (no run of"),
            "{}",
            claim.id
        );
    }
    let results = root.path().display().to_string();
    assert!(page.contains(&format!(
        "naam run experiments/mica-ycsb-b.toml --quick --results {results} --plot"
    )));
    assert!(page.contains(&format!("naam report {results}")));
}

#[test]
fn a_missing_results_folder_is_a_clear_error() {
    let root = tempfile::tempdir().expect("tempdir");
    let missing = root.path().join("nowhere");
    let err = write_report(&missing, &root.path().join("r.html")).expect_err("no folder");
    assert!(matches!(err, AnalysisError::NoResults { .. }), "{err:?}");
    assert!(err.to_string().contains("no results folder at"), "{err}");
}

#[test]
fn a_run_without_complete_points_has_no_figure_and_no_claim_value() {
    let root = tempfile::tempdir().expect("tempdir");
    let run_dir = common::synthetic_run(&common::plan(ExperimentId::MicaYcsbB), root.path());
    let run = RunDir::open(&run_dir);
    std::fs::remove_dir_all(run.points_dir()).expect("remove every point");
    let total = run.read_plan().expect("plan").points.len();
    let page = report_of(root.path());
    assert!(page.contains("PARTIAL run"));
    assert!(page.contains(&format!(
        "data-valid=\"0\" data-saturated=\"0\" data-invalid=\"0\" data-missing=\"{total}\""
    )));
    assert!(
        claim_row(&page, "C1").contains(&format!(
            "not measured: no complete run (the newest has 0 of {total} points)"
        )),
        "{}",
        claim_row(&page, "C1")
    );
    assert!(
        page.contains(
            "data-missing-figure=\"mica-ycsb-b\">No figure: no point of this run is complete yet"
        ),
        "a figure from no points"
    );
}

/// ARTIFACT.md §B and the page state the same claims.
#[test]
fn the_claims_are_artifact_md_s() {
    let artifact = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ARTIFACT.md");
    let text = std::fs::read_to_string(&artifact).expect("ARTIFACT.md");
    for claim in &CLAIMS {
        let row = format!(
            "| {} | {} | `{}` |",
            claim.id, claim.claim, claim.experiment
        );
        assert!(text.contains(&row), "ARTIFACT.md lacks the row start {row}");
    }
}

/// A simulated run says so, with its cost profile, wherever its numbers are shown; a run on the
/// local testbed says its NIC is emulated.
#[test]
fn every_value_names_the_testbed_it_came_from() {
    let root = tempfile::tempdir().expect("tempdir");
    common::synthetic_run(&common::plan(ExperimentId::OffloadScaling), root.path());
    let simulated = common::synthetic_run(&common::plan(ExperimentId::MicaYcsbB), root.path());
    let run = RunDir::open(&simulated);
    let mut plan = run.read_plan().expect("plan");
    plan.testbed = naam_plan::Testbed::Sim {
        profile: "bf2-r7525".to_string(),
        path: "profiles/bf2-r7525.toml".into(),
    };
    let plan_json = serde_json::to_string_pretty(&plan).expect("plan JSON");
    std::fs::write(simulated.join(naam_results::layout::PLAN_FILE), plan_json).expect("plan");
    let mut provenance = run.read_provenance().expect("provenance");
    provenance.testbed = "simulated (profile bf2-r7525)".to_string();
    run.write_provenance(&provenance).expect("provenance");
    let page = report_of(root.path());
    let c1 = claim_row(&page, "C1");
    assert!(
        c1.contains("simulated with cost profile `bf2-r7525` (times modelled, not measured)"),
        "{c1}"
    );
    let c4 = claim_row(&page, "C4");
    assert!(c4.contains("local testbed on "), "{c4}");
    assert!(c4.contains("(NIC emulated, not hardware)"), "{c4}");
}

#[test]
fn other_runs_of_an_experiment_are_counted_not_hidden() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut plan = common::plan(ExperimentId::VmCost);
    common::synthetic_run(&plan, root.path());
    plan.base_seed += 1; // another configuration: another run folder
    common::synthetic_run(&plan, root.path());
    let page = report_of(root.path());
    assert!(page.contains("1 other run(s) of vm-cost in this folder are not shown"));
    assert_eq!(page.matches("other run(s)").count(), 1);
}
