//! Runs one simulated MICA YCSB-B point and prints what it measured, for exploring a profile:
//! `cargo run -p naam-sim --example sim_point -- <profile> <series> <offered ops/s> [records]`.

use std::path::Path;
use std::time::Instant;

use naam_roles::config::{Dataset, Distribution, MicaSpec, WorkloadSpec, YcsbWorkload};
use naam_sim::point::{SimClient, SimPoint, SimPointConfig};
use naam_sim::profile::CostProfile;
use naam_types::{PolicyKind, PolicySpec};

const MS: u64 = 1_000_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let profile = args.first().map_or("bf2-r7525", String::as_str);
    let series = args.get(1).map_or("nic", String::as_str);
    let offered: f64 = args
        .get(2)
        .map_or(1e6, |s| s.parse().expect("offered ops/s"));
    let records: u64 = args.get(3).map_or(100_000, |s| s.parse().expect("records"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let kind = PolicyKind::from_name(series).expect("a series name");
    let config = SimPointConfig {
        profile: CostProfile::load(&dir, profile).expect("profile"),
        dataset: Dataset {
            workload: WorkloadSpec::Mica(MicaSpec {
                records,
                key_bytes: 8,
                value_bytes: 8,
                ycsb_workload: YcsbWorkload::B,
                distribution: Distribution::ScrambledZipfian,
                buckets: (records / 3).next_power_of_two(),
                slots: 7,
                log_bytes: 1 << 24,
                tenant_programs: Default::default(),
            }),
            tenants: 1,
            seed: 7,
        },
        policy: PolicySpec::default_for(kind),
        clients: SimClient::even(16, offered, 7),
        warmup_ns: 20 * MS,
        measure_ns: 100 * MS,
        interval_ns: 10 * MS,
        seed: 7,
        sample_period_ns: MS,
        timeout_ns: 100 * MS,
        inflight_max: 65_536,
        hog: None,
    };
    let out = tempfile::tempdir().expect("tempdir");
    let wall = Instant::now();
    let outcome = SimPoint::new(config)
        .expect("setup")
        .run(out.path())
        .expect("run");
    let wall_s = wall.elapsed().as_secs_f64();
    let intervals =
        naam_results::summary::read_point_intervals(out.path(), 16, 10).expect("intervals");
    let mut all = hdrhistogram::Histogram::<u64>::new(3).expect("histogram");
    for h in intervals.values() {
        all.add(h).expect("merge");
    }
    let achieved: f64 = outcome.clients.iter().map(|c| c.achieved_ops_per_s).sum();
    let errors: u64 = outcome.clients.iter().flat_map(|c| c.errors.values()).sum();
    println!(
        "{profile} {series} offered {offered:.0}: achieved {achieved:.0} ops/s, p50 {} ns, p99 {} ns, \
         errors {errors}, steered {:?}, host busy {:.2}, nic busy {:.2}, {} events in {wall_s:.2} s",
        all.value_at_quantile(0.5),
        all.value_at_quantile(0.99),
        outcome.record.steered,
        outcome.server.host.busy_fraction,
        outcome.server.nic.busy_fraction,
        outcome.record.events,
    );
}
