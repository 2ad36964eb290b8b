//! The digest `naam reproduce` prints at its end agrees with the points' summaries on disk.

use std::collections::BTreeMap;
mod common;

use std::path::Path;

use common::{options, plan};
use naam_plan::{ExperimentId, ExperimentPlan};
use naam_results::digest::{describe_digest, digest, reason_kind};
use naam_results::{RunDir, Validity};
use naam_runner::synthetic::SyntheticExecutor;
use naam_runner::*;

fn run(plan: &ExperimentPlan, root: &Path) -> RunDir {
    let outcome = run_plan(plan, &mut SyntheticExecutor::default(), &options(root)).expect("run");
    RunDir::open(Path::new(&outcome.run_dir))
}

#[test]
fn the_digest_counts_what_the_summaries_say() {
    let root = tempfile::tempdir().expect("tempdir");
    for id in [ExperimentId::MicaYcsbB, ExperimentId::LoadShift] {
        let plan = plan(id);
        let run = run(&plan, root.path());
        let d = digest(&run).expect("digest");
        let (mut verdicts, mut reasons) = (BTreeMap::new(), BTreeMap::new());
        let mut best: BTreeMap<String, f64> = BTreeMap::new();
        for point in &plan.points {
            let s = run.read_summary(&point.id).expect("summary on disk");
            *verdicts.entry(s.validity.verdict()).or_insert(0u32) += 1;
            if let Validity::Invalid { reasons: rs } = &s.validity {
                for r in rs {
                    *reasons.entry(reason_kind(r)).or_insert(0u32) += 1;
                }
            }
            if let Some(t) = s.traffic.filter(|_| s.validity.is_valid()) {
                let b = best.entry(point.series.to_string()).or_insert(0.0);
                *b = b.max(t.throughput_ops_per_s);
            }
        }
        let count = |v: &str| verdicts.get(v).copied().unwrap_or(0);
        assert_eq!(d.points_valid, count("valid"), "{d:#?}");
        assert_eq!(d.points_saturated, count("saturated"));
        assert_eq!(d.points_invalid, count("invalid"));
        assert_eq!(d.points_missing, 0);
        assert_eq!(d.reasons, reasons);
        for s in &d.series {
            assert_eq!(s.throughput_ops_per_s_max, best.get(&s.series).copied());
            let hog = id == ExperimentId::LoadShift;
            assert_eq!(
                s.shift_rules_ms.len() as u32,
                if hog { s.points } else { 0 }
            );
        }
        println!("{}", describe_digest(&d));
    }
}
