//! One snapshot per error class: the message must name the file, the line, the field, and what
//! to write instead. `UPDATE_EXPECT=1 cargo test -p naam-plan` refreshes the snapshots.

use std::path::Path;

use expect_test::{Expect, expect};
use naam_plan::{Variant, parse_manifest};

/// A small valid manifest; each test edits one thing in it.
const BASE: &str = r#"schema = 1
id = "mica-ycsb-b"
title = "MICA under YCSB-B"
seed = 7
series = ["host", "nic"]

[testbed]
kind = "local"

[roles]
clients = 1
client_threads = 1
host_workers = 1
nic_workers = 1
nic_access_delay_ns = 1500
nic_core_speed_factor = 0.5

[workload]
kind = "mica"
records = 1000
key_bytes = 8
value_bytes = 8
ycsb_workload = "b"
distribution = "scrambled-zipfian"
buckets = 1024
slots = 7
log_bytes = 1048576

[quick]
warmup_ms = 100
measure_ms = 1000
interval_ms = 100
repetitions = 2
offered_load_ops_per_s = [1000, 2000]

[full]
warmup_ms = 1000
measure_ms = 10000
interval_ms = 1000
repetitions = 5
offered_load_ops_per_s = [1000, 2000, 4000]
"#;

/// Applies `edits` (from → to, each must match once) to [`BASE`], loads the quick variant and
/// compares the error's class and message with `expected`.
fn check(edits: &[(&str, &str)], expected: Expect) {
    check_variant(edits, Variant::Quick, expected);
}

/// [`check`] for a given variant.
fn check_variant(edits: &[(&str, &str)], variant: Variant, expected: Expect) {
    let mut text = BASE.to_string();
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "edit target {from:?} must occur once"
        );
        text = text.replacen(from, to, 1);
    }
    let path = Path::new("experiments/mica-ycsb-b.toml");
    match parse_manifest(&text, path, variant) {
        Ok(plan) => panic!(
            "expected an error, got a plan with {} points",
            plan.points.len()
        ),
        Err(e) => expected.assert_eq(&format!("[{}] {e}", e.class())),
    }
}

#[test]
fn base_manifest_is_valid() {
    let plan = parse_manifest(BASE, Path::new("m.toml"), Variant::Quick).expect("valid");
    assert_eq!(plan.points.len(), 2 * 2 * 2);
}

#[test]
fn syntax_error() {
    check(
        &[("title = \"MICA under YCSB-B\"", "title = MICA")],
        expect![[r#"
        [syntax] experiments/mica-ycsb-b.toml:3:9: not valid TOML: string values must be quoted, expected literal string
          help: fix the TOML at this position (strings in double quotes, one `key = value` per line, tables as `[name]`); see experiments/SCHEMA.md"#]],
    );
}

#[test]
fn unknown_field_suggests_the_closest_key() {
    check(
        &[("measure_ms = 1000\n", "measure_msec = 1000\n")],
        expect![[r#"
            [unknown-field] experiments/mica-ycsb-b.toml:31: field `quick.measure_msec`: unknown key
              help: did you mean `measure_ms`? allowed keys here: series, warmup_ms, measure_ms, interval_ms, repetitions, offered_load_ops_per_s, tree_depth, tenants, iterations, warmup_iterations, events"#]],
    );
}

#[test]
fn missing_field() {
    check(
        &[("host_workers = 1\n", "")],
        expect![[r#"
        [missing-field] experiments/mica-ycsb-b.toml:10: field `roles.host_workers`: missing
          help: write `host_workers = 1` (worker threads of the server host)"#]],
    );
}

#[test]
fn unknown_table() {
    check(
        &[("[quick]", "[quick_]")],
        expect![[r#"
        [unknown-field] experiments/mica-ycsb-b.toml:29: field `quick_`: unknown key
          help: did you mean `quick`? allowed keys here: schema, id, title, testbed, roles, workload, series, policy, seed, quick, full"#]],
    );
}

#[test]
fn missing_variant_table() {
    let full = BASE.find("[full]").expect("BASE has [full]");
    check_variant(
        &[(&BASE[full..], "")],
        Variant::Full,
        expect![[r#"
        [missing-field] experiments/mica-ycsb-b.toml:30: field `full`: missing
          help: write `[full]` with warmup_ms, measure_ms, interval_ms, repetitions and the sweeps"#]],
    );
}

#[test]
fn wrong_type() {
    check(
        &[("clients = 1", "clients = \"one\"")],
        expect![[r#"
        [wrong-type] experiments/mica-ycsb-b.toml:11: field `roles.clients`: wrong type: found string "one", expected an integer
          help: write `clients = 1` (client processes)"#]],
    );
}

#[test]
fn out_of_bounds() {
    check(
        &[("repetitions = 2", "repetitions = 0")],
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:33: field `quick.repetitions`: 0 is outside 1..=100
          help: write `repetitions = 3`"#]],
    );
}

#[test]
fn invalid_mica_slots() {
    check(
        &[("slots = 7", "slots = 9")],
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:26: field `workload.slots`: 9 is not a MICA bucket size
          help: write `slots = 7` (one 64-byte cache line) or `slots = 15` (MICA's released build)"#]],
    );
}

#[test]
fn unknown_series_name() {
    check(
        &[("[\"host\", \"nic\"]", "[\"host\", \"nics\"]")],
        expect![[r#"
            [invalid-value] experiments/mica-ycsb-b.toml:5: field `series[1]`: unknown name "nics"
              help: did you mean "nic"? write one of "host", "nic", "client", "naam-adaptive", "kayak", "cell", "splinter", "ipipe", "ipipe-processes""#]],
    );
}

#[test]
fn series_of_another_experiment() {
    check(
        &[("[\"host\", \"nic\"]", "[\"host\", \"jit\"]")],
        expect![[r#"
            [not-applicable] experiments/mica-ycsb-b.toml:5: field `series[1]`: "jit" is not a series of `mica-ycsb-b`
              help: write one of "host", "nic", "client", "naam-adaptive", "kayak", "cell", "splinter", "ipipe", "ipipe-processes""#]],
    );
}

#[test]
fn key_of_another_workload() {
    check(
        &[("slots = 7", "slots = 7\nnode_bytes = 1024")],
        expect![[r#"
        [not-applicable] experiments/mica-ycsb-b.toml:27: field `workload.node_bytes`: B-tree and vm-cost keys do not apply to `kind = "mica"`
          help: remove `workload.node_bytes`"#]],
    );
}

#[test]
fn interval_does_not_divide_measure() {
    check(
        &[(
            "interval_ms = 100\nrepetitions = 2",
            "interval_ms = 300\nrepetitions = 2",
        )],
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:32: field `quick.interval_ms`: 300 ms does not divide measure_ms = 1000 into at most 100000 whole intervals
          help: write `interval_ms = 250` or change measure_ms"#]],
    );
}

#[test]
fn ipipe_series_run_on_the_local_testbed() {
    const { assert!(naam_plan::IPIPE_ROLE_IMPLEMENTED) };
    let text = BASE.replacen("[\"host\", \"nic\"]", "[\"host\", \"ipipe\"]", 1);
    let plan = parse_manifest(&text, Path::new("m.toml"), Variant::Quick).expect("valid");
    assert!(plan.points.iter().any(|p| p.series.as_str() == "ipipe"));
}

#[test]
fn ipipe_series_run_on_the_simulation_testbed() {
    let text = BASE
        .replacen("[\"host\", \"nic\"]", "[\"ipipe\", \"ipipe-processes\"]", 1)
        .replacen(
            "kind = \"local\"",
            "kind = \"sim\"\nprofile = \"bf2-r7525\"",
            1,
        );
    let plan = parse_manifest(&text, Path::new("m.toml"), Variant::Quick).expect("valid");
    assert_eq!(plan.points.len(), 2 * 2 * 2);
    assert!(
        plan.points
            .iter()
            .any(|p| p.series.as_str() == "ipipe-processes")
    );
}

#[test]
fn sim_testbed_needs_a_profile() {
    check(
        &[("kind = \"local\"", "kind = \"sim\"")],
        expect![[r#"
        [missing-field] experiments/mica-ycsb-b.toml:7: field `testbed.profile`: missing
          help: write `profile = "bf2-r7525"` (with `kind = "sim"`: experiments/profiles/bf2-r7525.toml)"#]],
    );
}

/// The simulator's profiles price interpreted instructions; a JIT asked for there would be priced
/// as the interpreter without a word, so it is refused (the local testbed runs it).
#[test]
fn sim_testbed_refuses_a_modelled_jit() {
    check(
        &[
            (
                "kind = \"local\"",
                "kind = \"sim\"\nprofile = \"bf2-r7525\"",
            ),
            (
                "nic_workers = 1\n",
                "nic_workers = 1\nnic_vm_backend = \"jit\"\n",
            ),
        ],
        expect![[r#"
            [not-implemented] experiments/mica-ycsb-b.toml:16: field `roles.nic_vm_backend`: a modelled JIT cost on the simulation testbed (its cost profiles price interpreted eBPF instructions) is not implemented yet
              help: remove the field (the simulator executes on the JIT when it is built either way; only the modelled cost is the interpreter's), or run the JIT on the local testbed"#]],
    );
    let text = BASE.replacen(
        "nic_workers = 1\n",
        "nic_workers = 1\nnic_vm_backend = \"jit\"\n",
        1,
    );
    let plan = parse_manifest(&text, Path::new("m.toml"), Variant::Quick).expect("local: valid");
    assert_eq!(plan.roles.nic_vm_backend.as_str(), "jit");
}

#[test]
fn sim_profile_must_be_a_file_stem() {
    check(
        &[(
            "kind = \"local\"",
            "kind = \"sim\"\nprofile = \"../etc/passwd\"",
        )],
        expect![[r#"
            [invalid-value] experiments/mica-ycsb-b.toml:9: field `testbed.profile`: "../etc/passwd" is not a profile name (1..=64 of a-z, 0-9, -)
              help: write `profile = "bf2-r7525"` (with `kind = "sim"`: experiments/profiles/bf2-r7525.toml)"#]],
    );
}

#[test]
fn a_profile_belongs_to_the_sim_testbed_only() {
    check(
        &[(
            "kind = \"local\"",
            "kind = \"local\"\nprofile = \"bf2-r7525\"",
        )],
        expect![[r#"
            [not-applicable] experiments/mica-ycsb-b.toml:9: field `testbed.profile`: a cost profile belongs to `kind = "sim"` only
              help: remove `testbed.profile`"#]],
    );
}

#[test]
fn the_old_simulation_kind_name_is_unknown() {
    check(
        &[("kind = \"local\"", "kind = \"simulation\"")],
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:8: field `testbed.kind`: unknown name "simulation"
          help: write one of "local", "netns", "inventory", "sim""#]],
    );
}

#[test]
fn event_after_the_measured_phase() {
    check(
        &[(
            "offered_load_ops_per_s = [1000, 2000]\n",
            "offered_load_ops_per_s = [1000, 2000]\nevents = [{ kind = \"cpu-hog\", start_ms = 5000, threads = 1 }]\n",
        )],
        expect![[r#"
            [invalid-value] experiments/mica-ycsb-b.toml:35: field `quick.events[0].start_ms`: 5000 is outside 0..=999
              help: write `start_ms = 500` (from measure start)"#]],
    );
}

#[test]
fn unknown_experiment_id() {
    check(
        &[("id = \"mica-ycsb-b\"", "id = \"mica-ycsb\"")],
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:2: field `id`: unknown name "mica-ycsb"
          help: did you mean "mica-ycsb-b"? write one of "mica-ycsb-b", "cell-lookups", "load-shift", "offload-scaling", "vm-cost", "policies""#]],
    );
}

#[test]
fn file_that_does_not_exist() {
    let e = naam_plan::load_manifest(Path::new("experiments/no-such.toml"), Variant::Quick)
        .unwrap_err();
    let text = format!("[{}] {e}", e.class());
    // The OS message differs between systems; the prefix and the help are ours.
    assert!(
        text.starts_with("[read] experiments/no-such.toml: cannot read the manifest: "),
        "{text}"
    );
    assert!(
        text.ends_with("help: check the path; manifests live in experiments/<id>.toml"),
        "{text}"
    );
}

/// `series` with the adaptive policy, and a `[policy.naam-adaptive]` table holding `params`.
fn adaptive(params: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "series = [\"host\", \"nic\"]",
            "series = [\"host\", \"naam-adaptive\"]".to_string(),
        ),
        (
            "[testbed]",
            format!("[policy.naam-adaptive]\n{params}\n\n[testbed]"),
        ),
    ]
}

fn check_owned(edits: &[(&'static str, String)], expected: Expect) {
    let edits: Vec<(&str, &str)> = edits.iter().map(|(f, t)| (*f, t.as_str())).collect();
    check(&edits, expected);
}

#[test]
fn policy_parameter_unknown() {
    check_owned(
        &adaptive("congested_ns = 400000"),
        expect![[r#"
            [invalid-value] experiments/mica-ycsb-b.toml:8: field `policy.naam-adaptive.congested_ns`: unknown parameter
              help: the parameters of naam-adaptive are congested_delay_ns, relieved_delay_ns, congested_samples, relieved_samples, shed_permille, severe_delay_ns, shed_severe_permille, shed_min_permille, return_permille, relapse_window_samples, backoff_max, pushback_samples, pushback_step_permille, client_share_max_permille, pushback_return_samples, pushback_return_permille"#]],
    );
}

#[test]
fn policy_parameter_out_of_range() {
    check_owned(
        &adaptive("shed_permille = 1500"),
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:8: field `policy.naam-adaptive.shed_permille`: 1500 is outside 1..=1000
          help: see experiments/SCHEMA.md for `policy.naam-adaptive.shed_permille`"#]],
    );
}

#[test]
fn policy_parameters_that_contradict_each_other() {
    check_owned(
        &adaptive("congested_delay_ns = 100000\nrelieved_delay_ns = 200000"),
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:7: field `policy.naam-adaptive.relieved_delay_ns`: must be below congested_delay_ns (the gap is the hysteresis band)
          help: see experiments/SCHEMA.md, "Policy parameters", for naam-adaptive's parameters and ranges"#]],
    );
}

#[test]
fn policy_table_for_a_series_not_in_the_plan() {
    check(
        &[(
            "[testbed]",
            "[policy.kayak]\nepoch_samples = 3\n\n[testbed]",
        )],
        expect![[r#"
        [not-applicable] experiments/mica-ycsb-b.toml:7: field `policy.kayak`: "kayak" is not in `series`
          help: add "kayak" to `series`, or remove `[policy.kayak]`"#]],
    );
}

#[test]
fn policy_table_for_a_static_placement() {
    check(
        &[("[testbed]", "[policy.host]\nx = 1\n\n[testbed]")],
        expect![[r#"
        [not-applicable] experiments/mica-ycsb-b.toml:7: field `policy.host`: "host" is a static placement: it has no parameters
          help: remove `[policy.host]`"#]],
    );
}

/// Issue 18: `naam check` refuses the sizes a run would refuse (MICA's item must fit a NAAM
/// reply), not a looser set of its own.
#[test]
fn a_value_larger_than_a_naam_reply_is_refused_by_the_plan() {
    check(
        &[("value_bytes = 8", "value_bytes = 2000")],
        expect![[r#"
            [invalid-value] experiments/mica-ycsb-b.toml:22: field `workload.value_bytes`: 2000 is outside 1..=1016
              help: write `value_bytes = 8`"#]],
    );
}

/// [`BASE`] with the iPipe series and, in `[full]`, one threshold-sweep line and its table.
fn with_sweep(line: &str, table: &str) -> Vec<(String, String)> {
    vec![
        (
            "series = [\"host\", \"nic\"]".to_string(),
            format!("series = [\"host\", \"ipipe\"]\n\n{table}"),
        ),
        (
            "[full]\n".to_string(),
            format!("[full]\nseries = [\"{line}\"]\n"),
        ),
    ]
}

fn check_sweep(line: &str, table: &str, expected: Expect) {
    let edits = with_sweep(line, table);
    let edits: Vec<(&str, &str)> = edits
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    check_variant(&edits, Variant::Full, expected);
}

#[test]
fn issue_13_a_sweep_line_runs_only_in_its_variant_with_its_own_thresholds() {
    let edits = with_sweep(
        "ipipe/tail-x4",
        "[policy.\"ipipe/tail-x4\"]\ntail_thresh_ns = 40000\n",
    );
    let mut text = BASE.to_string();
    for (from, to) in &edits {
        text = text.replacen(from.as_str(), to, 1);
    }
    let quick = parse_manifest(&text, Path::new("m.toml"), Variant::Quick).expect("quick");
    assert_eq!(quick.series.len(), 2, "the quick variant has no sweep line");
    let full = parse_manifest(&text, Path::new("m.toml"), Variant::Full).expect("full");
    let names: Vec<&str> = full.series.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["host", "ipipe", "ipipe/tail-x4"]);
    let tail = |series: &str| match full.policy(naam_plan::Series::parse(series).expect("name")) {
        Some(naam_plan::PolicySpec::Ipipe(p)) => p.tail_thresh_ns,
        other => panic!("{series}: {other:?}"),
    };
    assert_eq!(tail("ipipe"), 10_000);
    assert_eq!(tail("ipipe/tail-x4"), 40_000);
}

#[test]
fn issue_13_a_bad_sweep_label_is_named() {
    check_sweep(
        "ipipe/Tail x4",
        "",
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:39: field `full.series[0]`: "Tail x4" is not a sweep label: 1..=24 characters of a-z, 0-9, '-' and '.', starting with a letter or digit
          help: name a sweep series `ipipe/<label>`, e.g. `ipipe/tail-x4`"#]],
    );
}

#[test]
fn issue_13_a_sweep_line_needs_its_table() {
    check_sweep(
        "ipipe/tail-x4",
        "",
        expect![[r#"
        [invalid-value] experiments/mica-ycsb-b.toml:39: field `full.series[0]`: the sweep series "ipipe/tail-x4" has no `[policy."ipipe/tail-x4"]` table
          help: add `[policy."ipipe/tail-x4"]` with the thresholds this line of the sweep runs (experiments/SCHEMA.md, "Policy parameters")"#]],
    );
}

#[test]
fn issue_13_a_sweep_line_s_unknown_parameter_is_named() {
    check_sweep(
        "ipipe/tail-x4",
        "[policy.\"ipipe/tail-x4\"]\ntail_thresh = 40000\n",
        expect![[r#"
            [invalid-value] experiments/mica-ycsb-b.toml:8: field `policy."ipipe/tail-x4".tail_thresh`: unknown parameter
              help: did you mean `tail_thresh_ns`? the parameters are tail_thresh_ns, mean_thresh_ns, alpha_permille, drr_quantum_ns, drr_cores, actor_window, side_window, nic_memory_bytes, tenant_switch_ns, handoff_ns, process_bytes, slice_ns"#]],
    );
}

#[test]
fn issue_13_only_ipipe_has_sweep_lines() {
    check_sweep(
        "nic/fast",
        "",
        expect![[r#"
        [not-applicable] experiments/mica-ycsb-b.toml:39: field `full.series[0]`: "nic" has no threshold-sweep series: only the iPipe baseline has (`ipipe/<label>`)
          help: write `ipipe/<label>`, or a series name without `/`"#]],
    );
}
