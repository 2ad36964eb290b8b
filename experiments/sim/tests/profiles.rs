//! The shipped cost profiles load, and a profile with a missing source, an unknown key or an
//! out-of-range value is refused with a message naming the key.

use std::path::{Path, PathBuf};

use naam_sim::profile::{CostProfile, ProfileError};

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles")
}

fn shipped(name: &str) -> String {
    std::fs::read_to_string(profiles_dir().join(format!("{name}.toml"))).unwrap()
}

fn parse(text: &str) -> Result<CostProfile, ProfileError> {
    CostProfile::parse("edited", text, Path::new("edited.toml"))
}

#[test]
fn the_shipped_profiles_load() {
    let bf2 = CostProfile::load(&profiles_dir(), "bf2-r7525").unwrap();
    assert_eq!(bf2.nic.cores, 8, "BlueField-2 has 8 Arm cores");
    assert_eq!(bf2.dma.read_ns, 560);
    assert_eq!(bf2.label(), "simulated (profile bf2-r7525)");
    let here = CostProfile::load(&profiles_dir(), "this-machine").unwrap();
    assert_eq!(here.host.cores, 1);
}

#[test]
fn a_step_costs_what_it_ran() {
    let bf2 = CostProfile::load(&profiles_dir(), "bf2-r7525").unwrap();
    let nic = bf2.nic;
    let expected =
        nic.step_ns + 100.0 * nic.insn_ns + 64.0 * nic.data_byte_ns + nic.access_issue_ns;
    assert_eq!(nic.step_cost_ns(100, 64, 1), expected.round() as u64);
    // 1434 bytes + 66 bytes of framing at 100 Gb/s: 12000 bits / 100 = 120 ns.
    assert_eq!(bf2.link.serialisation_ns(1434), 120);
}

#[test]
fn a_value_without_a_source_is_refused() {
    let text = shipped("bf2-r7525").replacen(
        "source = \"pcie-bench: PCIe DMA read round trip",
        "source = \"   \", was = \"",
        1,
    );
    // The edit also adds an unknown key: the first error found is reported.
    assert!(parse(&text).is_err());
    let text = shipped("bf2-r7525").replace(
        "read_ns = { value = 560, source = \"pcie-bench: PCIe DMA read round trip, 64 B, median 560 ns (NFP6000, Xeon E5-2630v4, IOMMU on)\" }",
        "read_ns = { value = 560, source = \"\" }",
    );
    let err = parse(&text).unwrap_err();
    assert!(
        matches!(&err, ProfileError::NoSource { key, .. } if key == "dma.read_ns"),
        "{err}"
    );
}

#[test]
fn unknown_keys_and_out_of_range_values_are_refused() {
    let text =
        shipped("bf2-r7525").replace("[hog]", "[hog]\nthreads = { value = 1, source = \"x\" }");
    let err = parse(&text).unwrap_err();
    assert!(err.to_string().contains("threads"), "{err}");
    let text =
        shipped("bf2-r7525").replace("core_share = { value = 0.5", "core_share = { value = 1.5");
    let err = parse(&text).unwrap_err();
    assert!(
        matches!(&err, ProfileError::OutOfRange { key, .. } if key == "hog.core_share"),
        "{err}"
    );
    let err = CostProfile::load(&profiles_dir(), "no-such-profile").unwrap_err();
    assert!(matches!(err, ProfileError::Io { .. }), "{err}");
}
