//! The bench's point, shared by `benches/sim_mica.rs` and `examples/sim_cpu.rs`: 16 clients,
//! 2 M MICA YCSB-B ops/s offered for 50 ms on the `bf2-r7525` profile.

use std::path::Path;

use naam_roles::config::{Dataset, Distribution, MicaSpec, WorkloadSpec, YcsbWorkload};
use naam_sim::point::{SimClient, SimPointConfig};
use naam_sim::profile::CostProfile;
use naam_types::{PolicyKind, PolicySpec};

/// A millisecond in ns.
pub const MS: u64 = 1_000_000;
/// The point's seed.
pub const SEED: u64 = 0x51_0005;

/// The bench's point under `policy`.
pub fn config(policy: PolicyKind) -> SimPointConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    SimPointConfig {
        profile: CostProfile::load(&dir, "bf2-r7525").expect("profile"),
        dataset: Dataset {
            workload: WorkloadSpec::Mica(MicaSpec {
                records: 100_000,
                key_bytes: 8,
                value_bytes: 8,
                ycsb_workload: YcsbWorkload::B,
                distribution: Distribution::ScrambledZipfian,
                buckets: 32_768,
                slots: 7,
                log_bytes: 1 << 24,
                tenant_programs: Default::default(),
            }),
            tenants: 1,
            seed: SEED,
        },
        policy: PolicySpec::default_for(policy),
        clients: SimClient::even(16, 2_000_000.0, SEED),
        warmup_ns: 0,
        measure_ns: 50 * MS,
        interval_ns: 10 * MS,
        seed: SEED,
        sample_period_ns: MS,
        timeout_ns: 100 * MS,
        inflight_max: 65_536,
        hog: None,
    }
}
