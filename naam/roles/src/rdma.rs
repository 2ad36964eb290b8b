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
}
