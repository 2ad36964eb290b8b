//! The eBPF backend is chosen per location in the manifest (`[roles] host_vm_backend`,
//! `nic_vm_backend`): the choice is part of the plan and its configuration hash (the default
//! leaves both as they were), reaches the host's and the NIC's role configurations, and a name
//! that is not a backend is refused with the closest one.

use std::net::{IpAddr, Ipv4Addr};

use naam_executors::configs::{self, Settings};
use naam_plan::{ExperimentId, ExperimentPlan, ManifestBuilder, Variant, VmBackend};
use naam_roles::config::Role;

fn plan(roles: &[(&str, &str)]) -> Result<ExperimentPlan, naam_plan::ManifestError> {
    let mut manifest = ManifestBuilder::new(ExperimentId::MicaYcsbB).series(&["host"]);
    for (key, value) in roles {
        manifest = manifest.role(key, format!("\"{value}\""));
    }
    manifest.plan(Variant::Quick)
}

/// The backends in the host's and the NIC's role configurations of the plan's first point.
fn backends(plan: &ExperimentPlan) -> (VmBackend, VmBackend) {
    let settings = Settings::for_machines();
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let built = configs::build(plan, &plan.points[0], &settings, localhost, "run")
        .unwrap_or_else(|e| panic!("{e}"));
    let host = match built.host.role {
        Role::Host(host) => host.vm_backend,
        other => panic!("the host launch runs {}", other.name()),
    };
    let nic = match built.nic.role {
        Role::Nic(nic) => nic.vm_backend,
        other => panic!("the NIC launch runs {}", other.name()),
    };
    (host, nic)
}

#[test]
fn a_backend_chosen_per_location_reaches_its_role_and_the_hash() {
    let default = plan(&[]).unwrap();
    let jit_host = plan(&[("host_vm_backend", "jit")]).unwrap();
    let explicit_default = plan(&[("nic_vm_backend", "interpreter")]).unwrap();
    assert_eq!(
        backends(&default),
        (VmBackend::Interpreter, VmBackend::Interpreter)
    );
    assert_eq!(
        backends(&jit_host),
        (VmBackend::Jit, VmBackend::Interpreter)
    );
    assert_ne!(
        naam_results::config_hash(&default),
        naam_results::config_hash(&jit_host),
        "the backend is inside the configuration hash"
    );
    assert_eq!(
        naam_results::config_hash(&default),
        naam_results::config_hash(&explicit_default),
        "the interpreter is the default, written or not"
    );
}

#[test]
fn a_name_that_is_not_a_backend_is_refused_with_the_closest() {
    let err = plan(&[("nic_vm_backend", "jitt")]).unwrap_err().to_string();
    assert!(err.contains("roles.nic_vm_backend"), "{err}");
    assert!(err.contains("did you mean \"jit\""), "{err}");
}
