//! # naam-types — the vocabulary shared from manifest to role process
//!
//! The values that cross crate and process boundaries, defined once: where a message runs
//! ([`Location`]) and a value per location ([`PerLocation`]); the timeline every role of a point
//! shares ([`Timeline`]); and the steering policies with every parameter ([`policy`]), the iPipe
//! baseline's included ([`ipipe`]). A manifest
//! names them, the plan records them (and its configuration hash covers them), role
//! configurations carry them, and the engine runs them: nothing is turned into a string and
//! parsed back on the way.
//!
//! **Invariant:** depends on serde only; no file, socket or clock of its own ([`text`] reads only
//! from a reader its caller passes; [`memory`] reads `/proc/meminfo`, the one exception, so that
//! every crate checks a user-sized allocation the same way), no NAAM logic (the engine's policies implement what
//! [`policy`] parameterises).

pub mod ipipe;
pub mod location;
pub mod memory;
pub mod policy;
pub mod text;
pub mod timeline;

pub use location::{Location, PerLocation, VmBackend};
pub use policy::{PolicyKind, PolicySpec};
pub use timeline::Timeline;

/// Most tenants (offloaded applications) of one dataset, checked by the plan and by the host:
/// each tenant registers its own regions (MICA: index, log and meta) within the engine's 65 536.
pub const TENANTS_MAX: u32 = 4096;

/// Whether a dataset's tenants run one program or each its own (`[workload] tenant_programs`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TenantPrograms {
    /// Every tenant registers the same bytecode (its own registration, regions and rkeys).
    #[default]
    Shared,
    /// Every tenant registers its own program: the workload's function compiled with a
    /// per-tenant constant that every reply carries, so clients can tell whose program answered.
    Distinct,
}

impl TenantPrograms {
    /// Every choice with its manifest name.
    pub const ALL: [(TenantPrograms, &'static str); 2] = [
        (TenantPrograms::Shared, "shared"),
        (TenantPrograms::Distinct, "distinct"),
    ];

    /// True for the default, which plans and role configurations leave out of their serialised
    /// form (so configuration hashes of existing plans stay what they were).
    pub fn is_shared(&self) -> bool {
        *self == TenantPrograms::Shared
    }
}
