//! Properties over random worlds: no panics, every completion counted once, intervals add up.

mod common;

use common::{World, config, locations, simulate};
use naam_loadgen::LoadMode;
use naam_loadgen::recorder::new_histogram;
use proptest::prelude::*;

const MS: u64 = 1_000_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn intervals_partition_the_measured_completions(
        seed in any::<u64>(),
        rate in 1_000.0f64..50_000.0,
        service_ns in 1u64..200_000,
        stall_start_ms in 0u64..300,
        stall_ms in 0u64..50,
        warmup_ms in 0u64..100,
        interval_ms in 1u64..100,
        tags in 1u8..=3,
    ) {
        let world = World {
            service_ns,
            server_stall: Some((stall_start_ms * MS, (stall_start_ms + stall_ms) * MS)),
            tags,
            ..World::default()
        };
        let mode = LoadMode::Poisson { rate_per_s: rate, seed };
        let cfg = config(mode, warmup_ms * MS, 300 * MS, interval_ms * MS);
        let out = simulate(cfg, locations(), &world, MS);
        let measured = out.latencies.iter().filter(|l| l.0 >= warmup_ms * MS).count() as u64;
        let mut merged = new_histogram();
        for interval in &out.intervals {
            merged.add(&interval.histogram).expect("same precision");
        }
        prop_assert_eq!(merged.len(), measured, "NAAM_SEED={}", seed);
        prop_assert_eq!(out.report.rate.completed, measured, "NAAM_SEED={}", seed);
        let warm: u64 = out.report.warmup.iter().map(|h| h.len()).sum();
        prop_assert_eq!(warm + measured, out.latencies.len() as u64, "NAAM_SEED={}", seed);
        // Every latency is at least the service time (measured from the intended send).
        prop_assert!(out.latencies.iter().all(|l| l.2 >= service_ns), "NAAM_SEED={}", seed);
    }
}
