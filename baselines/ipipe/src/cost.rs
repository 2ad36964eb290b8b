//! What a job costs beyond the native code the driver times: the isolation model's switches and
//! hand-offs, and DMA transfers (forwarded requests, migrated objects). Drivers add
//! [`CostModel::overhead_ns`] to a job's time — a real-clock driver by spinning for it (an
//! emulation, stated as such), a discrete-event driver by adding it to `now`.
//!
//! Every constant says where it comes from.

use crate::runtime::{Direction, Phase, Task, TaskKind};

/// What isolating tenants in processes costs per work item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationCosts {
    /// A core switches from one tenant's process to another's: an address-space switch.
    pub tenant_switch_ns: u64,
    /// A work item is handed from the runtime to the tenant's process.
    pub handoff_ns: u64,
}

impl IsolationCosts {
    /// Measured on the development machine (`naam_types::ipipe::TENANT_SWITCH_NS_MEASURED` and
    /// `HANDOFF_NS_MEASURED` say how): a process-to-process switch on one CPU and a hand-off
    /// through shared memory to a process polling on another CPU.
    pub const THIS_MACHINE: IsolationCosts = IsolationCosts {
        tenant_switch_ns: naam_types::ipipe::TENANT_SWITCH_NS_MEASURED,
        handoff_ns: naam_types::ipipe::HANDOFF_NS_MEASURED,
    };
}

/// The per-process memory measured with [`IsolationCosts::THIS_MACHINE`].
pub const PROCESS_BYTES_THIS_MACHINE: u64 = naam_types::ipipe::PROCESS_BYTES_MEASURED;

/// DMA between the NIC and the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmaCosts {
    /// Fixed cost of one transfer (one object, or one forwarded request).
    pub transfer_ns: u64,
    /// Bulk rate of large transfers, bytes per second.
    pub bytes_per_s: u64,
}

impl DmaCosts {
    /// BlueField-2 DOCA DMA as measured by smartnickit-project/smartnic-bench
    /// (`benchs/docs/doca_dma.md`): writes of up to 256 B at 10.19 M/s give ≈ 98 ns per
    /// transfer; 4 KiB reads at 3.87 M/s give ≈ 15.85 GB/s in bulk.
    pub const BF2_DOCA: DmaCosts = DmaCosts {
        transfer_ns: 98,
        bytes_per_s: 3_870_000 * 4096,
    };

    /// Time of `transfers` transfers moving `bytes` in total.
    pub fn ns(&self, transfers: u64, bytes: u64) -> u64 {
        let bulk = (u128::from(bytes) * 1_000_000_000 / u128::from(self.bytes_per_s.max(1))) as u64;
        transfers * self.transfer_ns + bulk
    }
}

/// The modelled costs of one side's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    /// Process isolation's costs (charged only when a task says it switched or handed off).
    pub isolation: IsolationCosts,
    /// DMA transfers.
    pub dma: DmaCosts,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            isolation: IsolationCosts::THIS_MACHINE,
            dma: DmaCosts::BF2_DOCA,
        }
    }
}

impl CostModel {
    /// Time `task` takes beyond its native execution (which the driver measures or models).
    pub fn overhead_ns(&self, task: &Task) -> u64 {
        let isolation = u64::from(task.tenant_switch) * self.isolation.tenant_switch_ns
            + u64::from(task.handoff) * self.isolation.handoff_ns;
        let dma = match task.kind {
            TaskKind::Run { .. } => 0,
            TaskKind::Forward { bytes } => self.dma.ns(1, bytes as u64),
            TaskKind::Migrate {
                phase: Phase::MoveObjects,
                objects,
                bytes,
                ..
            } => self.dma.ns(u64::from(objects), bytes),
            TaskKind::Migrate {
                direction: Direction::ToHost,
                phase: Phase::PushBuffered,
                requests,
                ..
            } => self.dma.ns(u64::from(requests), 0),
            // Lock and state are bookkeeping (timed as native work); requests buffered for a
            // pull-back are on the NIC already.
            TaskKind::Migrate { .. } => 0,
            // The NIC's DMA engine reads the exported objects: charged to phase 3 on the NIC.
            TaskKind::Export { .. } => 0,
        };
        isolation + dma
    }
}

impl CostModel {
    /// The costs a manifest's iPipe parameters name (DMA at BlueField-2's rates).
    pub fn from_params(params: &naam_types::ipipe::IpipeParams) -> CostModel {
        CostModel {
            isolation: IsolationCosts {
                tenant_switch_ns: params.tenant_switch_ns,
                handoff_ns: params.handoff_ns,
            },
            dma: DmaCosts::BF2_DOCA,
        }
    }
}
