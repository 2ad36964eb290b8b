//! A dataset this machine cannot hold is refused by the host before it creates a region: regions
//! are sparse files in a tmpfs, so without the check an oversized MICA log would be "created" and
//! the host would die of SIGBUS while loading it. The test asks for one more 8 GiB tenant log than
//! the memory available now holds.

use naam_engine::RkeySecret;
use naam_roles::config::{Dataset, Distribution, MicaSpec, WorkloadSpec, YcsbWorkload};
use naam_roles::host::memory;
use naam_roles::workload;

const LOG_BYTES: u64 = 1 << 33;

#[test]
fn regions_larger_than_memory_are_refused_before_any_is_created() {
    let available_bytes = naam_types::memory::available_bytes().unwrap();
    let tenants = u32::try_from(available_bytes / LOG_BYTES + 1).unwrap();
    assert!(tenants <= naam_types::TENANTS_MAX, "{tenants} tenants");
    let dataset = Dataset {
        workload: WorkloadSpec::Mica(MicaSpec {
            records: 1000,
            key_bytes: 8,
            value_bytes: 16,
            ycsb_workload: YcsbWorkload::B,
            distribution: Distribution::ScrambledZipfian,
            buckets: 1024,
            slots: 7,
            log_bytes: LOG_BYTES,
            tenant_programs: Default::default(),
        }),
        tenants,
        seed: 1,
    };
    let server = workload::server(&dataset).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = memory::build(&*server, tenants, dir.path(), "big", RkeySecret([1; 16]))
        .expect_err("more than the memory available");
    let text = err.to_string();
    assert!(
        text.contains(&format!("the regions of {tenants} tenants")),
        "{text}"
    );
    assert!(text.contains("available"), "{text}");
    let created = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(created, 0, "no region file was created");
}
