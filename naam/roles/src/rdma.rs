//! The RDMA data path of the client role (`one_sided = "rdma"`): one-sided reads over real RDMA
//! hardware through naam-net's ibverbs backend, instead of the emulated RNIC.
//!
//! What exists and what does not, stated plainly: with the `rdma` feature the client opens the
//! RDMA device at start and fails with naam-net's typed error when there is none (the case on the
//! development machine and in CI, where this path is exercised). Registering the host's regions
//! and exchanging queue-pair information between host and clients is not wired yet, so on a
//! machine *with* a device the client stops right after opening it, saying so. Without the
//! feature, asking for RDMA is refused with how to build it.

use crate::RoleError;

/// Opens the RDMA device for one-sided reads.
#[cfg(feature = "rdma")]
pub fn open_one_sided() -> Result<(), RoleError> {
    let config = naam_net::rdma::RdmaConfig::default();
    let context = naam_net::rdma::RdmaContext::open(&config)
        .map_err(|e| RoleError::Setup(format!("rdma: {e}")))?;
    Err(RoleError::Setup(format!(
        "rdma: opened {}, but registering host regions and connecting queue pairs is not wired into the roles yet; use one_sided = \"emulated-rnic\"",
        context.device_name()
    )))
}

/// Without the `rdma` feature there is no RDMA path.
#[cfg(not(feature = "rdma"))]
pub fn open_one_sided() -> Result<(), RoleError> {
    Err(RoleError::Setup(
        "this naam-role was built without RDMA support: cargo build -p naam-roles --features rdma --bin naam-role".into(),
    ))
}

/// The off-box NIC role's data paths, one per worker: one-sided READs of the regions the host
/// exported ([`crate::ready::RdmaExport`]), each worker over its own queue pair, sent from
/// `gid_address`'s RoCE v2 GID when given (the RDMA link's NIC end). Fails at start, saying what
/// to check, when there is no RDMA device, no such GID, or the host exported nothing.
#[cfg(feature = "rdma")]
pub fn nic_paths(
    export: Option<&crate::ready::RdmaExport>,
    workers: u32,
    gid_address: Option<std::net::IpAddr>,
) -> Result<Vec<Box<dyn crate::serve::AccessPath>>, RoleError> {
    let config = naam_net::rdma::RdmaConfig::for_address(gid_address);
    let context = naam_net::rdma::RdmaContext::open(&config).map_err(|e| off_box(&e))?;
    let export = export.ok_or_else(|| {
        RoleError::Setup(format!(
            "{NIC_RDMA}: opened {}, but the host published no RDMA export in its ready file \
             (exporting the host's regions is not wired into the host role yet)",
            context.device_name()
        ))
    })?;
    let regions: Vec<_> = export.regions.iter().map(|r| r.exported()).collect();
    (0..workers)
        .map(|_| {
            let reader = naam_net::rdma::connect_reader(&context, export.handshake)
                .map_err(|e| off_box(&e))?;
            let map = naam_net::remote::RegionMap::new(&regions)
                .map_err(|e| RoleError::Setup(format!("{NIC_RDMA}: {e}")))?;
            let path = crate::serve::RemotePath::new(reader, map);
            Ok(Box::new(path) as Box<dyn crate::serve::AccessPath>)
        })
        .collect()
}

/// Without the `rdma` feature an off-box NIC cannot reach the host's memory.
#[cfg(not(feature = "rdma"))]
pub fn nic_paths(
    _export: Option<&crate::ready::RdmaExport>,
    _workers: u32,
    _gid_address: Option<std::net::IpAddr>,
) -> Result<Vec<Box<dyn crate::serve::AccessPath>>, RoleError> {
    Err(RoleError::Setup(format!(
        "{NIC_RDMA}: this naam-role was built without RDMA support: cargo build -p naam-roles \
         --features rdma --bin naam-role (on the BlueField-2's Arm side)"
    )))
}

/// The host's regions registered with its RDMA device and the handshake listener readers
/// connect to; deregistered and stopped on drop.
#[cfg(feature = "rdma")]
#[derive(Debug)]
pub struct HostExport {
    // Field order = drop order: the exporter (registrations, connections) before the device.
    _exporter: naam_net::rdma::Exporter,
    _context: naam_net::rdma::RdmaContext,
}

/// Without the `rdma` feature nothing is exported (no value exists).
#[cfg(not(feature = "rdma"))]
#[derive(Debug)]
pub enum HostExport {}

/// Registers every region of `memory` for one-sided READs and listens for readers' queue-pair
/// handshakes on `listen_ip` (a port the kernel picks), its queue pairs on `gid_address`'s RoCE
/// v2 GID when given (the RDMA link's host end); returns the guard to keep for the run and
/// what the ready file publishes. Fails at start, saying what to check, without a device.
#[cfg(feature = "rdma")]
pub fn export_host_regions(
    memory: &crate::host::memory::HostMemory,
    table: &naam_engine::RegionTable,
    listen_ip: std::net::IpAddr,
    gid_address: Option<std::net::IpAddr>,
) -> Result<(HostExport, crate::ready::RdmaExport), RoleError> {
    let config = naam_net::rdma::RdmaConfig::for_address(gid_address);
    let context = naam_net::rdma::RdmaContext::open(&config).map_err(|e| host_export(&e))?;
    let regions: Vec<naam_net::rdma::RegionToExport> = table
        .iter()
        .filter_map(|info| {
            let region = memory.region(info.id)?;
            Some(naam_net::rdma::RegionToExport {
                region: info.id.0,
                addr: region.as_ptr(),
                len: region.len(),
            })
        })
        .collect();
    let listen = std::net::SocketAddr::new(listen_ip, 0);
    // SAFETY: every region stays mapped for as long as `memory` lives, and the host role keeps
    // `memory` (an Arc held by its workers and this guard's owner) until the guard is dropped.
    let exporter = unsafe { naam_net::rdma::Exporter::start(&context, &regions, listen) }
        .map_err(|e| host_export(&e))?;
    let export = crate::ready::RdmaExport {
        handshake: exporter.handshake_addr(),
        regions: exporter
            .regions()
            .iter()
            .map(|r| crate::ready::RdmaRegion {
                region: r.region,
                addr: r.addr,
                len: r.len,
                rkey: r.rkey,
            })
            .collect(),
    };
    let guard = HostExport {
        _exporter: exporter,
        _context: context,
    };
    Ok((guard, export))
}

/// Without the `rdma` feature the host cannot export its regions.
#[cfg(not(feature = "rdma"))]
pub fn export_host_regions(
    _memory: &crate::host::memory::HostMemory,
    _table: &naam_engine::RegionTable,
    _listen_ip: std::net::IpAddr,
    _gid_address: Option<std::net::IpAddr>,
) -> Result<(HostExport, crate::ready::RdmaExport), RoleError> {
    Err(RoleError::Setup(format!(
        "{HOST_RDMA}: this naam-role was built without RDMA support: cargo build -p naam-roles \
         --features rdma --bin naam-role"
    )))
}

/// How the host export's errors start.
const HOST_RDMA: &str = "host role with rdma_export (its regions for an off-box NIC's RDMA READs)";

#[cfg(feature = "rdma")]
fn host_export(e: &naam_net::rdma::RdmaError) -> RoleError {
    RoleError::Setup(format!(
        "{HOST_RDMA}: {e}; check `ibv_devices` and `rdma link show` on the host (`naam doctor` \
         checks it), or run the NIC role on the host's machine"
    ))
}

/// How the off-box NIC's errors start.
const NIC_RDMA: &str =
    "NIC role with data_path = \"rdma\" (the host's regions over one-sided RDMA READs)";

#[cfg(feature = "rdma")]
fn off_box(e: &naam_net::rdma::RdmaError) -> RoleError {
    RoleError::Setup(format!(
        "{NIC_RDMA}: {e}; check `ibv_devices` and `rdma link show` on this machine (an ACTIVE \
         port; `naam doctor` checks it), or run the NIC role on the host's machine with \
         data_path = \"shared-memory\""
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn asking_for_rdma_fails_at_start_with_a_clear_error() {
        let message = super::open_one_sided().unwrap_err().to_string();
        if cfg!(feature = "rdma") {
            // No RDMA device on the development machine or in CI: naam-net's typed NoDevice.
            assert!(
                message.contains("no RDMA device") || message.contains("not wired"),
                "{message}"
            );
        } else {
            assert!(message.contains("without RDMA support"), "{message}");
        }
    }

    /// The off-box NIC fails at start with what to check (no device here and in CI), never
    /// later in the run (issue 14).
    #[test]
    fn an_off_box_nic_fails_at_start_saying_what_to_check() {
        let message = match super::nic_paths(None, 2, None) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("an RDMA path opened on a machine without a device"),
        };
        assert!(message.contains("data_path = \"rdma\""), "{message}");
        if cfg!(feature = "rdma") {
            assert!(
                message.contains("no RDMA device") || message.contains("no RDMA export"),
                "{message}"
            );
        } else {
            assert!(message.contains("without RDMA support"), "{message}");
        }
    }
}
