//! A policy parameter set in a manifest is explicit in the plan, changes the configuration hash,
//! reaches the host's role configuration, and changes what the policy the roles run decides: the
//! same host samples on a virtual clock move load to the NIC under a lowered congestion threshold
//! and not under the default one.

use std::net::{IpAddr, Ipv4Addr};

use naam_engine::wire::LoadSample;
use naam_engine::{Controller, Location, Nanos, RuleKey, policy};
use naam_executors::configs::{self, Settings};
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, PolicySpec, Variant};
use naam_roles::config::Role;

/// Queueing delay of every host sample: above the lowered threshold, below the default 500 µs.
const QUEUE_DELAY_NS: u64 = 400_000;
/// Host samples fed, one per virtual millisecond.
const SAMPLES: u64 = 20;
/// The NIC's share (permille) that counts as "load moved".
const MOVED_PERMILLE_MIN: u16 = 900;

fn plan(params: &[(&str, u64)]) -> ExperimentPlan {
    let mut manifest = ManifestBuilder::new(ExperimentId::MicaYcsbB).series(&["naam-adaptive"]);
    if !params.is_empty() {
        manifest = manifest.policy("naam-adaptive", params);
    }
    manifest
        .plan(Variant::Quick)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The policy in the host's role configuration of the plan's first point.
fn host_policy(plan: &ExperimentPlan) -> PolicySpec {
    let settings = Settings::for_machines();
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let built = configs::build(plan, &plan.points[0], &settings, localhost, "run")
        .unwrap_or_else(|e| panic!("{e}"));
    match built.host.role {
        Role::Host(host) => host.policy,
        other => panic!("the host launch runs {}", other.name()),
    }
}

/// The NIC's share after [`SAMPLES`] host samples with [`QUEUE_DELAY_NS`], on a virtual clock.
fn nic_share_after_congestion(spec: &PolicySpec) -> u16 {
    let mut controller = Controller::new(policy::build(spec), RuleKey::DEFAULT);
    for i in 1..=SAMPLES {
        controller.on_sample(LoadSample {
            at: Nanos(i * 1_000_000),
            location: Some(Location::Host),
            queue_delay_ns: QUEUE_DELAY_NS,
            utilisation_permille: 900,
            queue_len: 8,
            completions: 100,
            period_ns: 1_000_000,
        });
    }
    controller.current().shares.of(Location::Nic)
}

#[test]
fn a_threshold_set_in_the_manifest_changes_the_hash_and_the_decisions() {
    let default = plan(&[]);
    let lowered = plan(&[
        ("congested_delay_ns", 300_000),
        ("relieved_delay_ns", 50_000),
    ]);
    assert_ne!(
        naam_results::config_hash(&default),
        naam_results::config_hash(&lowered),
        "the parameters are inside the configuration hash"
    );
    let json = serde_json::to_string(&default).unwrap();
    assert!(
        json.contains("\"kind\":\"naam-adaptive\",\"congested_delay_ns\":500000"),
        "defaults are explicit in plan.json: {json}"
    );
    let (default_policy, lowered_policy) = (host_policy(&default), host_policy(&lowered));
    assert!(
        matches!(lowered_policy, PolicySpec::NaamAdaptive(c) if c.congested_delay_ns == 300_000),
        "{lowered_policy:?}"
    );
    assert_eq!(
        nic_share_after_congestion(&default_policy),
        0,
        "400 µs of queueing is below the default threshold: nothing moves"
    );
    assert!(
        nic_share_after_congestion(&lowered_policy) >= MOVED_PERMILLE_MIN,
        "above the lowered threshold, load moves to the NIC"
    );
}

/// Issue 13: each line of the iPipe thresholds' sweep (full offload-scaling) hands its own
/// thresholds to the NIC role, and the plain `ipipe` series the defaults.
#[test]
fn issue_13_a_sweep_line_s_thresholds_reach_the_nic_role() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../offload-scaling.toml");
    let plan = naam_plan::load_manifest(&path, Variant::Full).unwrap_or_else(|e| panic!("{e}"));
    let settings = Settings {
        ipipe_runs: true,
        ..Settings::for_machines()
    };
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let nic_params = |series: &str| {
        let point = plan
            .points
            .iter()
            .find(|p| p.series.as_str() == series)
            .unwrap_or_else(|| panic!("a point of {series}"));
        let built = configs::build(&plan, point, &settings, localhost, "run")
            .unwrap_or_else(|e| panic!("{e}"));
        let Role::Nic(nic) = built.nic.role else {
            panic!("the NIC launch runs {}", built.nic.role.name());
        };
        match nic.ipipe {
            Some(PolicySpec::Ipipe(p)) => p,
            other => panic!("{series}: the NIC runs {other:?}"),
        }
    };
    let defaults = nic_params("ipipe");
    let tail_x4 = nic_params("ipipe/tail-x4");
    assert_eq!(tail_x4.tail_thresh_ns, 4 * defaults.tail_thresh_ns);
    let quantum = nic_params("ipipe/quantum-x0.25");
    assert_eq!(quantum.drr_quantum_ns * 4, defaults.drr_quantum_ns);
    assert_eq!(quantum.tail_thresh_ns, defaults.tail_thresh_ns);
}
