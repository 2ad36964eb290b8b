//! The RDMA backend without hardware: opening a device fails at start with the typed error that
//! points at the emulated RNIC. (On a machine with a device, opening it must succeed instead.)
//! Run with `cargo test -p naam-net --features rdma --test rdma`.

#![cfg(feature = "rdma")]

use naam_net::rdma::{RdmaConfig, RdmaContext, RdmaError, device_names};

/// RDMA devices the kernel exposes (`/sys/class/infiniband`).
fn sysfs_devices() -> Vec<String> {
    std::fs::read_dir("/sys/class/infiniband")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn opening_a_device_fails_clearly_without_rdma_hardware() {
    let present = sysfs_devices();
    let opened = RdmaContext::open(&RdmaConfig::default());
    if present.is_empty() {
        let err = opened.expect_err("no RDMA device, so opening one must fail");
        assert!(matches!(err, RdmaError::NoDevice { .. }), "{err:?}");
        let text = err.to_string();
        for needle in [
            "no RDMA device found",
            "ibv_devices",
            "/dev/infiniband",
            "emulated RNIC",
        ] {
            assert!(text.contains(needle), "`{needle}` missing from: {text}");
        }
        assert!(matches!(device_names(), Err(RdmaError::NoDevice { .. })));
    } else {
        let ctx = opened.expect("an RDMA device is present, so opening the first one must succeed");
        assert!(
            present.iter().any(|d| d == ctx.device_name()),
            "{} not in {present:?}",
            ctx.device_name()
        );
    }
}

#[test]
fn naming_an_absent_device_is_an_error() {
    let config = RdmaConfig {
        device: Some("naam-no-such-device".into()),
        gid_index: 0,
        gid_address: None,
    };
    match RdmaContext::open(&config) {
        Err(RdmaError::NoDevice { .. }) => assert!(sysfs_devices().is_empty()),
        Err(RdmaError::DeviceNotFound { name, .. }) => assert_eq!(name, "naam-no-such-device"),
        other => panic!("unexpected {other:?}"),
    }
}
