//! Authenticated control traffic: the NIC's load samples to the host's controller.
//!
//! A forged "host congested" sample must not move the steering, and a sample with an impossible
//! value must not enter `samples.jsonl` (issue 18). So:
//!
//! - **A per-run key.** The launcher draws a fresh [`ControlKey`] for every point and hands it to
//!   the host and NIC roles in their configuration files (never to clients, never in a ready
//!   file). The NIC appends a tag to every sample frame: SipHash-2-4 (a keyed PRF, Aumasson and
//!   Bernstein, 2012; the engine's rkey function) of the frame under the key, [`TAG_BYTES`] long.
//! - **A peer fixed at start.** The controller accepts samples from the NIC's sampling socket
//!   only (its address is known before traffic starts).
//! - **Fresh and in range.** Sample times strictly increase (a replayed sample is stale), lie
//!   within [`SAMPLE_SKEW_NS_MAX`] of the controller's clock (host and NIC share the machine's
//!   clock), name the NIC, and carry values a NIC can produce ([`QUEUE_DELAY_NS_MAX`],
//!   utilisation at most 1000 permille).
//!
//! Every datagram refused is counted by reason ([`ControlDrops`]) and reported in the host's
//! counters. The gate is sans-IO: it takes the datagram, its source and `now`.

use std::net::SocketAddr;

use naam_engine::region::siphash24;
use naam_engine::wire::LoadSample;
use naam_engine::{Frame, Location, Nanos};
use serde::{Deserialize, Serialize};

/// Bytes of the tag appended to a sample frame.
pub const TAG_BYTES: usize = 8;
/// Bytes of a control key (SipHash-2-4's key).
pub const CONTROL_KEY_BYTES: usize = 16;
/// Longest queueing delay a sample may report (ns): 60 s. Assumption: a point runs for seconds;
/// a mean queueing delay of a minute means a broken sample, not a loaded NIC.
pub const QUEUE_DELAY_NS_MAX: u64 = 60_000_000_000;
/// Largest distance between a sample's time and the controller's clock (ns): 1 s. Host and NIC
/// roles run on one machine and read one CLOCK_REALTIME; a sample is sent when its period ends.
pub const SAMPLE_SKEW_NS_MAX: u64 = 1_000_000_000;
/// Utilisation is permille of capacity.
pub const UTILISATION_PERMILLE_MAX: u16 = 1000;

/// The per-run key of the control channel (shown as `ControlKey(..)`: never logged).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlKey(pub [u8; CONTROL_KEY_BYTES]);

impl std::fmt::Debug for ControlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlKey(..)")
    }
}

impl ControlKey {
    /// A fresh key from the kernel's random source.
    pub fn fresh() -> std::io::Result<ControlKey> {
        use std::io::Read;
        let mut key = [0u8; CONTROL_KEY_BYTES];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
        Ok(ControlKey(key))
    }

    /// The tag of `frame`.
    pub fn tag(&self, frame: &[u8]) -> [u8; TAG_BYTES] {
        siphash24(&self.0, frame).to_le_bytes()
    }

    /// Appends `frame`'s tag to it.
    pub fn seal(&self, frame: &mut Vec<u8>) {
        let tag = self.tag(frame);
        frame.extend_from_slice(&tag);
    }

    /// The frame inside `datagram` if its tag is right.
    pub fn open<'a>(&self, datagram: &'a [u8]) -> Option<&'a [u8]> {
        let split = datagram.len().checked_sub(TAG_BYTES)?;
        let (frame, tag) = datagram.split_at(split);
        // Compare every byte whatever the first difference (no early exit on the tag).
        let diff = self
            .tag(frame)
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        (diff == 0).then_some(frame)
    }

    fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn from_hex(s: &str) -> Option<ControlKey> {
        if s.len() != 2 * CONTROL_KEY_BYTES || !s.is_ascii() {
            return None;
        }
        let mut key = [0u8; CONTROL_KEY_BYTES];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(ControlKey(key))
    }
}

impl Serialize for ControlKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ControlKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ControlKey, D::Error> {
        let s = String::deserialize(d)?;
        ControlKey::from_hex(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "control_key: {} hex digits expected",
                2 * CONTROL_KEY_BYTES
            ))
        })
    }
}

/// Why a control datagram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// From an address other than the NIC's sampling socket.
    UnknownPeer,
    /// Missing or wrong tag.
    BadTag,
    /// Tagged, but not a sample frame.
    Undecodable,
    /// Not newer than the last sample accepted (a replay, or reordered).
    Stale,
    /// A value no NIC produces (location, queue delay, utilisation, time).
    OutOfRange,
}

/// Control datagrams refused, by reason (`host.counters.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlDrops {
    /// From an unknown sender.
    pub unknown_peer: u64,
    /// Missing or wrong tag.
    pub bad_tag: u64,
    /// Not a sample frame.
    pub undecodable: u64,
    /// Stale (replayed or reordered).
    pub stale: u64,
    /// Impossible values.
    pub out_of_range: u64,
}

impl ControlDrops {
    /// Counts one drop.
    pub fn count(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::UnknownPeer => &mut self.unknown_peer,
            DropReason::BadTag => &mut self.bad_tag,
            DropReason::Undecodable => &mut self.undecodable,
            DropReason::Stale => &mut self.stale,
            DropReason::OutOfRange => &mut self.out_of_range,
        };
        *counter += 1;
    }

    /// Every drop.
    pub fn total(&self) -> u64 {
        self.unknown_peer + self.bad_tag + self.undecodable + self.stale + self.out_of_range
    }
}

/// The controller's gate for NIC samples (see the module docs).
#[derive(Debug)]
pub struct SampleGate {
    key: ControlKey,
    peer: SocketAddr,
    last_at: Option<Nanos>,
    /// Refusals so far.
    pub drops: ControlDrops,
}

impl SampleGate {
    /// Accepts samples sealed with `key` from `peer` only.
    pub fn new(key: ControlKey, peer: SocketAddr) -> SampleGate {
        SampleGate {
            key,
            peer,
            last_at: None,
            drops: ControlDrops::default(),
        }
    }

    /// The sample in `datagram` from `from`, received at `now`, or `None` (counted).
    pub fn admit(&mut self, from: SocketAddr, datagram: &[u8], now: Nanos) -> Option<LoadSample> {
        match self.check(from, datagram, now) {
            Ok(sample) => {
                self.last_at = Some(sample.at);
                Some(sample)
            }
            Err(reason) => {
                self.drops.count(reason);
                None
            }
        }
    }

    fn check(
        &self,
        from: SocketAddr,
        datagram: &[u8],
        now: Nanos,
    ) -> Result<LoadSample, DropReason> {
        if !same_peer(self.peer, from) {
            return Err(DropReason::UnknownPeer);
        }
        let frame = self.key.open(datagram).ok_or(DropReason::BadTag)?;
        let Ok(Frame::Sample(sample)) = Frame::decode(frame) else {
            return Err(DropReason::Undecodable);
        };
        if self.last_at.is_some_and(|last| sample.at <= last) {
            return Err(DropReason::Stale);
        }
        if !in_range(&sample, now) {
            return Err(DropReason::OutOfRange);
        }
        Ok(sample)
    }
}

/// True if `from` is `peer` (a peer bound to the unspecified address sends from any of the
/// machine's addresses, on its port).
fn same_peer(peer: SocketAddr, from: SocketAddr) -> bool {
    peer.port() == from.port() && (peer.ip() == from.ip() || peer.ip().is_unspecified())
}

/// A NIC sample's values are ones a NIC can produce now.
fn in_range(sample: &LoadSample, now: Nanos) -> bool {
    sample.location == Some(Location::Nic)
        && sample.queue_delay_ns <= QUEUE_DELAY_NS_MAX
        && sample.utilisation_permille <= UTILISATION_PERMILLE_MAX
        && sample.at.0.abs_diff(now.0) <= SAMPLE_SKEW_NS_MAX
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: ControlKey = ControlKey([7; CONTROL_KEY_BYTES]);
    const NOW: Nanos = Nanos(1_000_000_000_000);

    fn peer() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    fn sealed(key: ControlKey, sample: LoadSample) -> Vec<u8> {
        let mut bytes = Vec::new();
        Frame::Sample(sample).encode(&mut bytes).unwrap();
        key.seal(&mut bytes);
        bytes
    }

    fn nic_sample(at: u64) -> LoadSample {
        LoadSample {
            at: Nanos(at),
            location: Some(Location::Nic),
            queue_delay_ns: 5_000,
            utilisation_permille: 400,
            queue_len: 3,
            completions: 100,
            period_ns: 1_000_000,
        }
    }

    fn changed(mut sample: LoadSample, change: impl FnOnce(&mut LoadSample)) -> LoadSample {
        change(&mut sample);
        sample
    }

    /// Datagrams the gate must drop after admitting `good`, each with the reason it must count.
    fn hostile_datagrams(good: LoadSample) -> Vec<(SocketAddr, Vec<u8>, DropReason)> {
        vec![
            (
                "127.0.0.1:4001".parse().unwrap(),
                sealed(KEY, nic_sample(NOW.0 + 1)),
                DropReason::UnknownPeer,
            ),
            (
                peer(),
                sealed(ControlKey([8; 16]), nic_sample(NOW.0 + 1)),
                DropReason::BadTag,
            ),
            (peer(), vec![1, 2, 3], DropReason::BadTag),
            (
                peer(),
                {
                    let mut b = b"not a frame".to_vec();
                    KEY.seal(&mut b);
                    b
                },
                DropReason::Undecodable,
            ),
            (peer(), sealed(KEY, good), DropReason::Stale),
            (
                peer(),
                sealed(
                    KEY,
                    changed(nic_sample(NOW.0 + 2), |s| s.queue_delay_ns = u64::MAX),
                ),
                DropReason::OutOfRange,
            ),
            (
                peer(),
                sealed(
                    KEY,
                    changed(nic_sample(NOW.0 + 3), |s| {
                        s.location = Some(Location::Client)
                    }),
                ),
                DropReason::OutOfRange,
            ),
            (
                peer(),
                sealed(
                    KEY,
                    changed(nic_sample(NOW.0 + 4), |s| s.location = Some(Location::Host)),
                ),
                DropReason::OutOfRange,
            ),
            (
                peer(),
                sealed(
                    KEY,
                    changed(nic_sample(NOW.0 + 5), |s| s.utilisation_permille = 1001),
                ),
                DropReason::OutOfRange,
            ),
            (
                peer(),
                sealed(KEY, nic_sample(NOW.0 + SAMPLE_SKEW_NS_MAX + 1)),
                DropReason::OutOfRange,
            ),
        ]
    }

    /// Each case: the sample (or datagram) and the drop it must cause (`None`: admitted).
    #[test]
    fn the_gate_admits_only_fresh_tagged_possible_samples_from_the_nic() {
        let mut gate = SampleGate::new(KEY, peer());
        let good = nic_sample(NOW.0);
        assert_eq!(gate.admit(peer(), &sealed(KEY, good), NOW), Some(good));
        let cases = hostile_datagrams(good);
        let mut expected = ControlDrops::default();
        for (i, (from, datagram, reason)) in cases.into_iter().enumerate() {
            assert_eq!(gate.admit(from, &datagram, NOW), None, "case {i}");
            expected.count(reason);
            assert_eq!(gate.drops, expected, "case {i}: {reason:?}");
        }
        let next = nic_sample(NOW.0 + 10);
        assert_eq!(gate.admit(peer(), &sealed(KEY, next), NOW), Some(next));
    }

    #[test]
    fn a_key_round_trips_through_its_hex_form_and_never_prints() {
        let key = ControlKey([0xab; CONTROL_KEY_BYTES]);
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<ControlKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<ControlKey>("\"abc\"").is_err());
        assert!(serde_json::from_str::<ControlKey>(&format!("\"{}\"", "zz".repeat(16))).is_err());
        assert_eq!(format!("{key:?}"), "ControlKey(..)");
    }
}
