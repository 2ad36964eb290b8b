//! The model's times that depend only on the profile and a length, computed once per point: a
//! frame's serialisation on the link, a DMA read's latency, the rate caps' gaps, fixed send costs.
//! Each came from a float division or product and a conversion per datagram or access (≈ 25
//! instructions each, four to six times per request); a table read gives the same integer.

use naam_engine::abi::ACCESS_BYTES_MAX;

use crate::profile::{CostProfile, LinkCost, round_ns};

/// Frame lengths whose serialisation time is tabled: every frame the bench's points send is
/// shorter; a longer one is computed when it is sent.
const FRAME_BYTES_TABLED: usize = 2048;

/// Per-point times (see the module docs).
#[derive(Debug)]
pub(super) struct ModelTimes {
    link: LinkCost,
    /// By frame length: `link.serialisation_ns(len)`.
    serialisation_ns: Box<[u64]>,
    /// By access length: the DMA's `read_ns` plus its per-byte time, rounded.
    dma_latency_ns: Box<[u64]>,
    /// Between two DMA reads at the DMA's rate cap.
    pub dma_gap_ns: u64,
    /// Between two one-sided reads at the RNIC's rate cap.
    pub rnic_gap_ns: u64,
    /// A client's CPU time to send a datagram.
    pub client_tx_ns: u64,
}

impl ModelTimes {
    pub(super) fn new(profile: &CostProfile) -> ModelTimes {
        let (link, dma) = (profile.link, profile.dma);
        ModelTimes {
            link,
            serialisation_ns: (0..=FRAME_BYTES_TABLED)
                .map(|len| link.serialisation_ns(len))
                .collect(),
            dma_latency_ns: (0..=ACCESS_BYTES_MAX as u32)
                .map(|len| dma_latency_ns(profile, len))
                .collect(),
            dma_gap_ns: round_ns(1e9 / dma.reads_per_s_max),
            rnic_gap_ns: round_ns(1e9 / profile.rdma.reads_per_s_max),
            client_tx_ns: round_ns(profile.client.tx_ns),
        }
    }

    /// `link.serialisation_ns(bytes)`.
    #[inline]
    pub(super) fn serialisation_ns(&self, bytes: usize) -> u64 {
        match self.serialisation_ns.get(bytes) {
            Some(&ns) => ns,
            None => self.link.serialisation_ns(bytes),
        }
    }

    /// A DMA read of `len` bytes, from its start to its bytes' arrival.
    #[inline]
    pub(super) fn dma_latency_ns(&self, profile: &CostProfile, len: u32) -> u64 {
        match self.dma_latency_ns.get(len as usize) {
            Some(&ns) => ns,
            None => dma_latency_ns(profile, len),
        }
    }
}

fn dma_latency_ns(profile: &CostProfile, len: u32) -> u64 {
    profile.dma.read_ns + round_ns(f64::from(len) * profile.dma.byte_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabled_times_are_the_computed_ones() {
        for name in ["bf2-r7525", "this-machine"] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
            let profile = CostProfile::load(&dir, name).expect("a shipped profile");
            let times = ModelTimes::new(&profile);
            for len in (0..=FRAME_BYTES_TABLED + 64).step_by(7) {
                assert_eq!(
                    times.serialisation_ns(len),
                    profile.link.serialisation_ns(len)
                );
            }
            for len in (0..=ACCESS_BYTES_MAX as u32 + 64).step_by(5) {
                let computed = profile.dma.read_ns + round_ns(f64::from(len) * profile.dma.byte_ns);
                assert_eq!(times.dma_latency_ns(&profile, len), computed);
            }
        }
    }
}
