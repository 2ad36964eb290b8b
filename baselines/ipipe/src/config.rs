//! The runtime's parameters, every default explicit and explained.
//!
//! The iPipe paper names its scheduler's thresholds (`Tail_thresh`, `Mean_thresh`, α, the DRR
//! quantum) but the text available to us publishes no values. The defaults are ours, each with
//! its reasoning, defined once in `naam_types::ipipe` (what manifests set and plans record).

use serde::{Deserialize, Serialize};

use crate::ids::Side;

/// Most cores one side may have.
pub const CORES_MAX: u16 = 256;
pub use naam_types::ipipe::{
    ACTOR_WINDOW_DEFAULT, ACTOR_WINDOW_MAX, ALPHA_PERMILLE_DEFAULT, ALPHA_PERMILLE_MAX,
    DRR_QUANTUM_NS_DEFAULT, MEAN_THRESH_NS_DEFAULT, NIC_MEMORY_BYTES_DEFAULT,
    PROCESS_SLICE_NS_DEFAULT, SIDE_WINDOW_DEFAULT, SIDE_WINDOW_MAX, TAIL_THRESH_NS_DEFAULT,
};
/// Default host memory for migrated actors: 256 GiB (assumption: a server's DRAM).
pub const HOST_MEMORY_BYTES_DEFAULT: u64 = 256 << 30;

/// The process-per-tenant isolation with this machine's measured process memory and the default
/// slice.
pub fn process_per_tenant_this_machine() -> Isolation {
    Isolation::ProcessPerTenant {
        process_bytes: naam_types::ipipe::PROCESS_BYTES_MEASURED,
        slice_ns: PROCESS_SLICE_NS_DEFAULT,
    }
}

/// The scheduler's thresholds (iPipe's `Tail_thresh`, `Mean_thresh`, α, and the DRR quantum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// An FCFS actor whose p99 execution time exceeds this is downgraded to DRR.
    pub tail_ns: u64,
    /// The management core migrates an actor to the host when the side's mean sojourn time
    /// exceeds this.
    pub mean_ns: u64,
    /// Pull an actor back when the mean falls below `(1 − α) · mean_ns` (α in permille).
    pub alpha_permille: u16,
    /// Execution time a DRR actor is credited per round (per-actor overrides allowed).
    pub drr_quantum_ns: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            tail_ns: TAIL_THRESH_NS_DEFAULT,
            mean_ns: MEAN_THRESH_NS_DEFAULT,
            alpha_permille: ALPHA_PERMILLE_DEFAULT,
            drr_quantum_ns: DRR_QUANTUM_NS_DEFAULT,
        }
    }
}

impl Thresholds {
    /// `(1 − α) · mean_ns`: the pull-back threshold.
    pub fn pull_back_ns(&self) -> u64 {
        self.mean_ns * u64::from(1000 - self.alpha_permille) / 1000
    }

    /// `(1 − α) · tail_ns`: below it a DRR actor returns to FCFS (our symmetric assumption).
    pub fn upgrade_ns(&self) -> u64 {
        self.tail_ns * u64::from(1000 - self.alpha_permille) / 1000
    }
}

/// How tenants' actors are isolated from each other: what decides how many offloads fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", deny_unknown_fields)]
pub enum Isolation {
    /// iPipe's own setting: every actor in one address space, trusted. Any FCFS core runs any
    /// actor from one shared queue; changing actor costs a function call.
    Trusted,
    /// What native code from mutually distrusting tenants needs: each tenant's actors in their
    /// own process. A tenant's process has a home FCFS core (round robin in registration
    /// order); a core that changes tenant pays an address-space switch, every work item is
    /// handed from the runtime to the tenant's process, and each process costs memory.
    ProcessPerTenant {
        /// Memory one tenant process costs on a side, beyond its objects (measured).
        process_bytes: u64,
        /// How long a tenant's process keeps a core while other tenants wait there.
        slice_ns: u64,
    },
}

/// Sizes of the statistics windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    /// Executions per actor over which its tail (p99) and mean are taken; a decision waits for
    /// a full window.
    pub actor_executions: u32,
    /// Completions on the side per management decision (the mean sojourn is taken over them,
    /// then the window starts afresh).
    pub side_completions: u32,
}

impl Default for Windows {
    fn default() -> Self {
        Windows {
            actor_executions: ACTOR_WINDOW_DEFAULT,
            side_completions: SIDE_WINDOW_DEFAULT,
        }
    }
}

/// One side's runtime configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpipeConfig {
    /// NIC (with a management core) or host.
    pub side: Side,
    /// Cores of this side. Core 0 is FCFS (and, on the NIC, the management core).
    pub cores: u16,
    /// The last `drr_cores` cores serve downgraded actors. The NIC needs at least one; with none
    /// (host), actors are never downgraded.
    pub drr_cores: u16,
    /// The scheduler's thresholds.
    pub thresholds: Thresholds,
    /// Statistics windows.
    pub windows: Windows,
    /// How tenants are isolated.
    pub isolation: Isolation,
    /// Memory for objects (and tenant processes) on this side.
    pub memory_bytes: u64,
}

/// A configuration the runtime refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `cores` is zero or above [`CORES_MAX`].
    #[error("cores = {cores}: must be in 1..={CORES_MAX}")]
    Cores {
        /// The value given.
        cores: u16,
    },
    /// `drr_cores` leaves no FCFS core, or the NIC has none.
    #[error(
        "drr_cores = {drr_cores} with {cores} cores: the NIC needs 1..cores DRR cores (core 0 stays FCFS); the host needs fewer than cores"
    )]
    DrrCores {
        /// The value given.
        drr_cores: u16,
        /// Cores in total.
        cores: u16,
    },
    /// A threshold, window or size is zero where it must be positive.
    #[error("{field} = 0: must be positive")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A value above its maximum.
    #[error("{field} = {value}: above its maximum {max}")]
    Above {
        /// The field.
        field: &'static str,
        /// The value given.
        value: u64,
        /// The named maximum.
        max: u64,
    },
}

impl IpipeConfig {
    /// A NIC with `cores` cores (the last one DRR), default thresholds and windows, trusted.
    pub fn nic(cores: u16) -> IpipeConfig {
        IpipeConfig {
            side: Side::Nic,
            cores,
            drr_cores: 1,
            thresholds: Thresholds::default(),
            windows: Windows::default(),
            isolation: Isolation::Trusted,
            memory_bytes: NIC_MEMORY_BYTES_DEFAULT,
        }
    }

    /// A host side with `cores` FCFS cores (no DRR, no management), trusted.
    pub fn host(cores: u16) -> IpipeConfig {
        IpipeConfig {
            side: Side::Host,
            drr_cores: 0,
            memory_bytes: HOST_MEMORY_BYTES_DEFAULT,
            ..IpipeConfig::nic(cores)
        }
    }

    /// FCFS cores (the first ones).
    pub fn fcfs_cores(&self) -> u16 {
        self.cores - self.drr_cores
    }

    /// Checks every field; the runtime runs only validated configurations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.cores == 0 || self.cores > CORES_MAX {
            return Err(ConfigError::Cores { cores: self.cores });
        }
        let drr_ok =
            self.drr_cores < self.cores && (self.side == Side::Host || self.drr_cores >= 1);
        if !drr_ok {
            return Err(ConfigError::DrrCores {
                drr_cores: self.drr_cores,
                cores: self.cores,
            });
        }
        let t = &self.thresholds;
        positive("thresholds.tail_ns", t.tail_ns)?;
        positive("thresholds.mean_ns", t.mean_ns)?;
        positive("thresholds.drr_quantum_ns", t.drr_quantum_ns)?;
        within(
            "thresholds.alpha_permille",
            t.alpha_permille.into(),
            ALPHA_PERMILLE_MAX.into(),
        )?;
        let w = &self.windows;
        within(
            "windows.actor_executions",
            w.actor_executions.into(),
            ACTOR_WINDOW_MAX.into(),
        )?;
        positive("windows.actor_executions", w.actor_executions.into())?;
        within(
            "windows.side_completions",
            w.side_completions.into(),
            SIDE_WINDOW_MAX.into(),
        )?;
        positive("windows.side_completions", w.side_completions.into())?;
        positive("memory_bytes", self.memory_bytes)?;
        if let Isolation::ProcessPerTenant { slice_ns, .. } = self.isolation {
            positive("isolation.slice_ns", slice_ns)?;
        }
        Ok(())
    }
}

fn positive(field: &'static str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::Zero { field });
    }
    Ok(())
}

fn within(field: &'static str, value: u64, max: u64) -> Result<(), ConfigError> {
    if value > max {
        return Err(ConfigError::Above { field, value, max });
    }
    Ok(())
}

impl IpipeConfig {
    /// The NIC of a manifest's iPipe series: `fcfs_cores` FCFS cores (the NIC's workers) and the
    /// parameters' DRR cores, thresholds, windows and memory; a process per tenant if
    /// `processes`.
    pub fn nic_from_params(
        fcfs_cores: u16,
        params: &naam_types::ipipe::IpipeParams,
        processes: bool,
    ) -> IpipeConfig {
        IpipeConfig {
            side: Side::Nic,
            cores: fcfs_cores.saturating_add(params.drr_cores),
            drr_cores: params.drr_cores,
            thresholds: Thresholds {
                tail_ns: params.tail_thresh_ns,
                mean_ns: params.mean_thresh_ns,
                alpha_permille: params.alpha_permille,
                drr_quantum_ns: params.drr_quantum_ns,
            },
            windows: Windows {
                actor_executions: params.actor_window,
                side_completions: params.side_window,
            },
            isolation: if processes {
                Isolation::ProcessPerTenant {
                    process_bytes: params.process_bytes,
                    slice_ns: params.slice_ns,
                }
            } else {
                Isolation::Trusted
            },
            memory_bytes: params.nic_memory_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifests_default_parameters_make_the_default_nic() {
        let params = naam_types::ipipe::IpipeParams::default();
        let from_params = IpipeConfig::nic_from_params(1, &params, false);
        assert_eq!(from_params, IpipeConfig::nic(2));
        assert_eq!(from_params.validate(), Ok(()));
        let processes = IpipeConfig::nic_from_params(7, &params, true);
        assert_eq!((processes.cores, processes.fcfs_cores()), (8, 7));
        assert_eq!(processes.isolation, process_per_tenant_this_machine());
    }
}
