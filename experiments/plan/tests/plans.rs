//! The committed manifests and the properties of the plans they expand into.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use naam_plan::*;

fn experiments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(id: ExperimentId, variant: Variant) -> ExperimentPlan {
    let path = manifest_path(&experiments_dir(), id);
    load_manifest(&path, variant).unwrap_or_else(|e| panic!("{e}"))
}

/// Measured time of every quick point together; process start-up and loading come on top, so
/// the quick variants leave room under the ten-minute budget of `naam reproduce --quick`.
const QUICK_PLANNED_MS_MAX: u64 = 300_000;

#[test]
fn every_experiment_has_a_manifest_with_both_variants() {
    for id in ExperimentId::ALL {
        let path = manifest_path(&experiments_dir(), id);
        let [quick, full] = check_manifest(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(quick.id, id);
        assert_eq!(quick.variant, Variant::Quick);
        assert_eq!(full.variant, Variant::Full);
        assert!(
            full.points.len() >= quick.points.len(),
            "{id}: full is smaller than quick"
        );
    }
}

#[test]
fn quick_variants_fit_the_reproduce_budget() {
    let total: u64 = ExperimentId::ALL
        .iter()
        .map(|&id| load(id, Variant::Quick).planned_ms())
        .sum();
    assert!(
        total <= QUICK_PLANNED_MS_MAX,
        "quick plans need {total} ms of measurement"
    );
}

#[test]
fn points_are_the_product_of_repetitions_sweeps_and_series() {
    for id in ExperimentId::ALL {
        for variant in [Variant::Quick, Variant::Full] {
            let plan = load(id, variant);
            let s = &plan.sweep;
            let product = [
                s.offered_load_ops_per_s.len(),
                s.tree_depth.len(),
                s.tenants.len(),
            ]
            .iter()
            .map(|&n| n.max(1))
            .product::<usize>();
            let expected = plan.repetitions as usize * product * plan.series.len();
            assert_eq!(plan.points.len(), expected, "{id} {variant}");
            let ids: BTreeSet<&str> = plan.points.iter().map(|p| p.id.as_str()).collect();
            assert_eq!(
                ids.len(),
                plan.points.len(),
                "{id} {variant}: point ids repeat"
            );
            for (i, p) in plan.points.iter().enumerate() {
                assert_eq!(p.index as usize, i);
                assert!(
                    p.id.starts_with(&format!("{i:04}-{}", p.series.id_part())),
                    "{}",
                    p.id
                );
            }
        }
    }
}

#[test]
fn series_share_seeds_and_repetitions_do_not() {
    let plan = load(ExperimentId::MicaYcsbB, Variant::Quick);
    let mut by_coordinates: BTreeMap<(u32, Option<u64>), BTreeSet<u64>> = BTreeMap::new();
    for p in &plan.points {
        by_coordinates
            .entry((p.repetition, p.offered_load_ops_per_s))
            .or_default()
            .insert(p.seed);
    }
    assert!(
        by_coordinates.values().all(|seeds| seeds.len() == 1),
        "one seed per coordinates"
    );
    let distinct: BTreeSet<u64> = by_coordinates.values().flatten().copied().collect();
    assert_eq!(
        distinct.len(),
        by_coordinates.len(),
        "coordinates get distinct seeds"
    );
    let point = &plan.points[0];
    assert_ne!(point.client_seed(0), point.client_seed(1));
    assert_ne!(point.client_seed(0), point.seed);
}

#[test]
fn plan_json_is_canonical() {
    for id in ExperimentId::ALL {
        let plan = load(id, Variant::Quick);
        let json = serde_json::to_string(&plan).expect("serializes");
        let back: ExperimentPlan = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, plan);
        assert_eq!(
            serde_json::to_string(&back).expect("serializes"),
            json,
            "{id}: bytes differ"
        );
        assert_eq!(
            serde_json::to_string(&load(id, Variant::Quick)).expect("serializes"),
            json
        );
    }
}

#[test]
fn resolved_defaults_are_written_into_the_plan() {
    let plan = load(ExperimentId::MicaYcsbB, Variant::Quick);
    assert_eq!(plan.sweep.tenants, vec![TENANTS_WHEN_NOT_SWEPT]);
    assert!(
        plan.points
            .iter()
            .all(|p| p.tenants == TENANTS_WHEN_NOT_SWEPT)
    );
    assert!(plan.roles.pinning.host_cpus.is_empty());
    let json = serde_json::to_string(&plan).expect("serializes");
    assert!(json.contains("\"tenants\":[1]"), "{json}");
    let policies = load(ExperimentId::Policies, Variant::Quick);
    let Timing::Traffic { measure_ms, .. } = policies.timing else {
        panic!("traffic timing")
    };
    let hog_stop = policies.events.iter().find_map(|e| match e {
        Event::CpuHog { stop_ms, .. } => Some(*stop_ms),
        Event::LoadStep { .. } => None,
    });
    assert_eq!(
        hog_stop,
        Some(measure_ms),
        "an open-ended hog runs to the end"
    );
}

#[test]
fn inventory_paths_resolve_against_the_manifest_folder() {
    let text = std::fs::read_to_string(manifest_path(&experiments_dir(), ExperimentId::LoadShift))
        .expect("read");
    let text = text.replace(
        "kind = \"local\"",
        "kind = \"inventory\"\ninventory = \"hosts.toml\"",
    );
    let plan =
        parse_manifest(&text, Path::new("site/load-shift.toml"), Variant::Quick).expect("valid");
    assert_eq!(
        plan.testbed,
        Testbed::Inventory {
            path: PathBuf::from("site/hosts.toml")
        }
    );
    assert!(!plan.testbed.nic_is_emulated());
}

#[test]
fn vm_cost_points_are_backends_times_repetitions() {
    let plan = load(ExperimentId::VmCost, Variant::Quick);
    assert!(matches!(plan.timing, Timing::Iterations { .. }));
    assert_eq!(
        plan.points.len(),
        plan.series.len() * plan.repetitions as usize
    );
    assert!(
        plan.points
            .iter()
            .all(|p| p.offered_load_ops_per_s.is_none())
    );
}

/// xorshift64* (Vigna): a tiny seeded generator for the mutation test.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Mutated manifests never panic: each mutation deletes, duplicates or replaces a byte range.
#[test]
fn mutated_manifests_give_errors_not_panics() {
    const MUTATIONS: u64 = 3_000;
    let seed: u64 = std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0001);
    let base = std::fs::read_to_string(manifest_path(&experiments_dir(), ExperimentId::Policies))
        .expect("read");
    let noise = [
        "0",
        "-1",
        "\"",
        "[",
        "]",
        "{",
        "=",
        "\n",
        "99999999999999999999",
        "1e309",
        "ms",
        "é",
    ];
    let mut state = seed | 1;
    for round in 0..MUTATIONS {
        let mut text = base.clone().into_bytes();
        let at = (next(&mut state) % text.len() as u64) as usize;
        let len = (next(&mut state) % 16) as usize;
        let end = (at + len).min(text.len());
        let piece = noise[(next(&mut state) % noise.len() as u64) as usize]
            .as_bytes()
            .to_vec();
        match next(&mut state) % 3 {
            0 => drop(text.drain(at..end)),
            1 => text.splice(at..at, text[at..end].to_vec()).for_each(drop),
            _ => text.splice(at..end, piece).for_each(drop),
        }
        let Ok(text) = String::from_utf8(text) else {
            continue;
        };
        let outcome = std::panic::catch_unwind(|| {
            let _ = parse_manifest(&text, Path::new("m.toml"), Variant::Quick);
        });
        assert!(
            outcome.is_ok(),
            "panic at round {round}; rerun with NAAM_SEED={seed}"
        );
    }
}

#[test]
fn issue_16_a_quick_plan_is_sized_to_the_machine_and_says_so() {
    let path = manifest_path(&experiments_dir(), ExperimentId::MicaYcsbB);
    let manifest_loads = load(ExperimentId::MicaYcsbB, Variant::Quick)
        .sweep
        .offered_load_ops_per_s;
    let half = LoadScale::for_ceiling(REFERENCE_CEILING_REQ_PER_S / 2);
    let sized = load_manifest_sized(&path, Variant::Quick, half).unwrap();
    assert_eq!(sized.load_scale, half);
    let expected: Vec<u64> = half.unwrap().apply(&manifest_loads);
    assert_eq!(sized.sweep.offered_load_ops_per_s, expected);
    let planned: BTreeSet<u64> = sized
        .points
        .iter()
        .filter_map(|p| p.offered_load_ops_per_s)
        .collect();
    assert_eq!(planned, expected.iter().copied().collect());
    assert!(
        sized.points.iter().all(|p| p
            .id
            .contains(&format!("-{}ops", p.offered_load_ops_per_s.unwrap()))),
        "point ids name the sized loads"
    );
    let json = serde_json::to_string(&sized).unwrap();
    assert!(
        json.contains("\"load_scale\""),
        "plan.json records the scale"
    );
}

#[test]
fn issue_16_full_variants_simulations_and_like_machines_keep_the_manifests_loads() {
    let half = LoadScale::for_ceiling(REFERENCE_CEILING_REQ_PER_S / 2);
    let local = manifest_path(&experiments_dir(), ExperimentId::MicaYcsbB);
    let full = load_manifest_sized(&local, Variant::Full, half).unwrap();
    assert_eq!(full, load(ExperimentId::MicaYcsbB, Variant::Full));
    let sim = experiments_dir().join("mica-ycsb-b-sim.toml");
    let simulated = load_manifest_sized(&sim, Variant::Quick, half).unwrap();
    assert_eq!(simulated, load_manifest(&sim, Variant::Quick).unwrap());
    let alike = LoadScale::for_ceiling(REFERENCE_CEILING_REQ_PER_S);
    let quick = load_manifest_sized(&local, Variant::Quick, alike).unwrap();
    assert_eq!(quick, load(ExperimentId::MicaYcsbB, Variant::Quick));
    let json = serde_json::to_string(&quick).unwrap();
    assert!(
        !json.contains("load_scale"),
        "an unsized plan's hash is unchanged"
    );
}

/// Issue 13: the full offload-scaling variants add the iPipe thresholds' sensitivity sweep, each
/// line with its own parameters in the plan (and so in plan.json and the configuration hash,
/// taken over the plan's canonical JSON); the quick variants do not.
#[test]
fn issue_13_full_offload_scaling_sweeps_the_ipipe_thresholds() {
    for id in [ExperimentId::OffloadScaling] {
        for path in [
            manifest_path(&experiments_dir(), id),
            experiments_dir().join("offload-scaling-sim.toml"),
        ] {
            let quick = load_manifest(&path, Variant::Quick).unwrap_or_else(|e| panic!("{e}"));
            let full = load_manifest(&path, Variant::Full).unwrap_or_else(|e| panic!("{e}"));
            let sweep = |plan: &ExperimentPlan| -> Vec<Series> {
                let sweep = plan.series.iter().copied();
                sweep
                    .filter(|s| matches!(s, Series::IpipeSweep(_)))
                    .collect()
            };
            assert!(sweep(&quick).is_empty(), "{}: quick sweeps", path.display());
            let lines = sweep(&full);
            assert_eq!(lines.len(), 7, "{}", path.display());
            let ipipe = *full.policy(Series::Ipipe).expect("ipipe's policy");
            let tail_x4 = Series::parse("ipipe/tail-x4").expect("a sweep name");
            let PolicySpec::Ipipe(p) = full.policy(tail_x4).expect("its own policy") else {
                panic!("a sweep line runs trusted iPipe");
            };
            let PolicySpec::Ipipe(defaults) = ipipe else {
                panic!("ipipe runs trusted iPipe");
            };
            assert_eq!(p.tail_thresh_ns, 4 * defaults.tail_thresh_ns);
            assert_eq!(p.mean_thresh_ns, defaults.mean_thresh_ns);
            // Every line has distinct parameters, written into plan.json.
            let json = serde_json::to_string(&full).expect("json");
            assert!(
                json.contains("\"ipipe/tail-x4\""),
                "series named in plan.json"
            );
            let specs: BTreeSet<String> = lines
                .iter()
                .map(|s| format!("{:?}", full.policy(*s).expect("a policy")))
                .collect();
            assert_eq!(specs.len(), lines.len(), "two lines share parameters");
            let back: ExperimentPlan = serde_json::from_str(&json).expect("plan.json reads back");
            assert_eq!(back, full);
            // Point ids name the line without a path separator.
            let ids = full.points.iter().filter(|p| p.series == tail_x4);
            assert!(ids.clone().count() > 0);
            assert!(ids.clone().all(|p| p.id.contains("-ipipe+tail-x4-")), "ids");
        }
    }
}

/// Changing one threshold of one sweep line changes the plan's canonical JSON, so the
/// configuration hash and the run folder.
#[test]
fn issue_13_a_sweep_line_s_threshold_is_in_the_configuration() {
    let path = experiments_dir().join("offload-scaling-sim.toml");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let edited = text.replacen("tail_thresh_ns = 40000", "tail_thresh_ns = 40001", 1);
    assert_ne!(text, edited);
    let plan = |t: &str| {
        let plan = parse_manifest(t, &path, Variant::Full).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_string(&plan).expect("json")
    };
    assert_ne!(plan(&text), plan(&edited));
}
