//! The manifest as written: serde types that mirror the TOML one to one.
//!
//! Nothing here has a default: an absent optional key stays `None` and is resolved by
//! [`crate::validate`], which writes the resolved value into the plan. Values that need a
//! location in error messages are kept as [`Spanned`].

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole manifest file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    pub schema: Spanned<i64>,
    pub id: Spanned<String>,
    pub title: Spanned<String>,
    pub testbed: Spanned<RawTestbed>,
    pub roles: Spanned<RawRoles>,
    pub workload: Spanned<RawWorkload>,
    pub series: Spanned<Vec<Spanned<String>>>,
    pub policy: Option<Spanned<RawPolicies>>,
    pub seed: Spanned<i64>,
    pub quick: Option<Spanned<RawVariant>>,
    pub full: Option<Spanned<RawVariant>>,
}

/// `[policy.<name>]` tables: parameters by name, per policy.
pub(crate) type RawPolicies =
    BTreeMap<Spanned<String>, Spanned<BTreeMap<Spanned<String>, Spanned<i64>>>>;

/// `[testbed]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTestbed {
    pub kind: Spanned<String>,
    pub inventory: Option<Spanned<String>>,
    pub profile: Option<Spanned<String>>,
}

/// `[roles]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoles {
    pub clients: Spanned<i64>,
    pub client_threads: Spanned<i64>,
    pub host_workers: Spanned<i64>,
    pub nic_workers: Spanned<i64>,
    pub nic_access_delay_ns: Spanned<i64>,
    pub nic_core_speed_factor: Spanned<f64>,
    pub host_vm_backend: Option<Spanned<String>>,
    pub nic_vm_backend: Option<Spanned<String>>,
    pub pinning: Option<Spanned<RawPinning>>,
}

/// `[roles.pinning]`: CPU lists per role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPinning {
    pub host: Option<Spanned<Vec<Spanned<i64>>>>,
    pub nic: Option<Spanned<Vec<Spanned<i64>>>>,
    pub client: Option<Spanned<Vec<Spanned<i64>>>>,
}

/// `[workload]`: the union of every workload kind's keys; validation checks which belong.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub kind: Spanned<String>,
    // mica
    pub records: Option<Spanned<i64>>,
    pub key_bytes: Option<Spanned<i64>>,
    pub value_bytes: Option<Spanned<i64>>,
    pub ycsb_workload: Option<Spanned<String>>,
    pub buckets: Option<Spanned<i64>>,
    pub slots: Option<Spanned<i64>>,
    pub log_bytes: Option<Spanned<i64>>,
    pub tenant_programs: Option<Spanned<String>>,
    // mica and btree
    pub distribution: Option<Spanned<String>>,
    // btree
    pub keys: Option<Spanned<i64>>,
    pub node_bytes: Option<Spanned<i64>>,
    // vm-cost
    pub functions: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[quick]` or `[full]`: everything that differs between the two variants.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariant {
    /// Series this variant adds to the manifest's `series` (the full variants' threshold sweep).
    pub series: Option<Spanned<Vec<Spanned<String>>>>,
    pub warmup_ms: Option<Spanned<i64>>,
    pub measure_ms: Option<Spanned<i64>>,
    pub interval_ms: Option<Spanned<i64>>,
    pub repetitions: Spanned<i64>,
    pub offered_load_ops_per_s: Option<Spanned<Vec<Spanned<i64>>>>,
    pub tree_depth: Option<Spanned<Vec<Spanned<i64>>>>,
    pub tenants: Option<Spanned<Vec<Spanned<i64>>>>,
    pub iterations: Option<Spanned<i64>>,
    pub warmup_iterations: Option<Spanned<i64>>,
    pub events: Option<Spanned<Vec<Spanned<RawEvent>>>>,
}

/// One entry of `events = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEvent {
    pub kind: Spanned<String>,
    pub start_ms: Option<Spanned<i64>>,
    pub stop_ms: Option<Spanned<i64>>,
    pub threads: Option<Spanned<i64>>,
    pub at_ms: Option<Spanned<i64>>,
    pub factor: Option<Spanned<f64>>,
}
