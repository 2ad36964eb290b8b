//! The steering key in a header a hardware eSwitch can match: the UDP source port.
//!
//! A BlueField-2's embedded switch matches L2–L4 headers, not the NAAM header inside the UDP
//! payload, so a client carries each message's [`SteerKey`] in the UDP source port it sends
//! from: bucket `b` (`0..BUCKETS`) is port `base + b`, the pinned key (host-native calls, which
//! run where the data lives) is `base + BUCKETS`. Every eSwitch backend — the kernel eBPF
//! program, the user-space dispatcher and Open vSwitch flows matching `udp_src` — reads the key
//! back from the port with the same mapping, so they decide alike message by message.
//!
//! The base is [`STEER_PORT_BASE_DEFAULT`] unless configured: below Linux's default ephemeral
//! range (`net.ipv4.ip_local_port_range` = 32768–60999), so no auto-bound socket of another
//! program takes one of the ports, and above the privileged ports. A datagram whose source port
//! lies outside `base..=base + BUCKETS` carries no key ([`key_of_port`] is `None`).
//!
//! [`SteerSockets`] are a client's send-only sockets, one per key, bound lazily with
//! `SO_REUSEPORT` so the client processes of one machine (same user) share the ports. Replies do
//! not come back to them: the client names its receive address in each Invoke, which the server
//! honours when it is on the datagram's own source host (see `naam_engine::server::Sender`).

use std::net::{IpAddr, SocketAddr};

use naam_engine::SteerKey;
use naam_engine::steer::BUCKETS;

use crate::error::NetError;
use crate::udp::{RECV_BUFFER_BYTES_MIN, UdpConfig, UdpSocket};

/// Default first port of the steering range (assumption: a free block below Linux's default
/// ephemeral range 32768–60999; see the module doc).
pub const STEER_PORT_BASE_DEFAULT: u16 = 20_000;
/// Ports one steering range spans: a port per bucket, then the pinned key's.
pub const STEER_PORTS: u16 = BUCKETS + 1;
/// The highest base whose range still fits below port 65535.
pub const STEER_PORT_BASE_MAX: u16 = u16::MAX - STEER_PORTS;
/// The lowest base: above the privileged ports.
pub const STEER_PORT_BASE_MIN: u16 = 1024;

/// A steering range's base outside [`STEER_PORT_BASE_MIN`]`..=`[`STEER_PORT_BASE_MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "steering port base {base} out of range {STEER_PORT_BASE_MIN}..={STEER_PORT_BASE_MAX} \
     (the range spans {STEER_PORTS} ports)"
)]
pub struct SteerPortBaseError {
    /// The base given.
    pub base: u16,
}

/// Checks a steering range's base.
pub fn check_base(base: u16) -> Result<u16, SteerPortBaseError> {
    if (STEER_PORT_BASE_MIN..=STEER_PORT_BASE_MAX).contains(&base) {
        Ok(base)
    } else {
        Err(SteerPortBaseError { base })
    }
}

/// The offset of `key` in a steering range: its bucket, or [`BUCKETS`] when pinned.
pub fn key_offset(key: SteerKey) -> u16 {
    match key {
        SteerKey::Bucket(bucket) => bucket.min(BUCKETS - 1),
        SteerKey::Pinned => BUCKETS,
    }
}

/// The UDP source port carrying `key` in the range starting at `base` (a checked base).
pub fn source_port(base: u16, key: SteerKey) -> u16 {
    base + key_offset(key)
}

/// The key a source port carries in the range starting at `base`, `None` outside it.
pub fn key_of_port(base: u16, port: u16) -> Option<SteerKey> {
    let offset = port.checked_sub(base)?;
    match offset {
        o if o < BUCKETS => Some(SteerKey::Bucket(o)),
        o if o == BUCKETS => Some(SteerKey::Pinned),
        _ => None,
    }
}

/// A client's send-only sockets, one per steering key, bound lazily on `ip` with
/// `SO_REUSEPORT`.
#[derive(Debug)]
pub struct SteerSockets {
    ip: IpAddr,
    base: u16,
    sockets: Vec<Option<UdpSocket>>,
}

impl SteerSockets {
    /// Sockets on `ip` for the range starting at `base`; none is bound yet.
    pub fn new(ip: IpAddr, base: u16) -> Result<SteerSockets, SteerPortBaseError> {
        Ok(SteerSockets {
            ip,
            base: check_base(base)?,
            sockets: (0..STEER_PORTS).map(|_| None).collect(),
        })
    }

    /// The range's base.
    pub fn base(&self) -> u16 {
        self.base
    }

    /// Sockets bound so far.
    pub fn bound(&self) -> usize {
        self.sockets.iter().filter(|s| s.is_some()).count()
    }

    /// Binds every key's socket now. A client calls this before its run starts: binding lazily
    /// puts a `socket` + `bind` on the generator's thread for each key's first message, and each
    /// doubling of a multi-threaded process's descriptor table (past 64 descriptors, up to the
    /// ~1000 a client holds) waits for an RCU grace period in `expand_files` — measured at ~10 ms per
    /// growth on a 2-vCPU VM (`perf record -e sched:sched_switch -g`: the generator in state D
    /// under `synchronize_rcu`), which made the generator late by as much.
    pub fn bind_all(&mut self) -> Result<(), NetError> {
        for slot in 0..self.sockets.len() {
            self.bind_slot(slot)?;
        }
        Ok(())
    }

    /// Sends `bytes` to `to` from the port that carries `key`, binding it first if needed.
    pub fn send_to(&mut self, key: SteerKey, bytes: &[u8], to: SocketAddr) -> Result<(), NetError> {
        let slot = usize::from(key_offset(key));
        self.bind_slot(slot)?.send_to(bytes, to)
    }

    /// The socket of range offset `slot`, bound on first use.
    fn bind_slot(&mut self, slot: usize) -> Result<&UdpSocket, NetError> {
        if self.sockets[slot].is_none() {
            let offset = u16::try_from(slot).expect("a steering range spans at most u16 ports");
            let config = UdpConfig {
                reuse_port: true,
                recv_buffer_bytes: RECV_BUFFER_BYTES_MIN,
                ..UdpConfig::new(SocketAddr::new(self.ip, self.base + offset))
            };
            self.sockets[slot] = Some(UdpSocket::bind(&config)?);
        }
        Ok(self.sockets[slot].as_ref().expect("bound just above"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_round_trips_through_its_port_and_nothing_else_is_a_key() {
        let base = STEER_PORT_BASE_DEFAULT;
        for bucket in 0..BUCKETS {
            let key = SteerKey::Bucket(bucket);
            assert_eq!(key_of_port(base, source_port(base, key)), Some(key));
        }
        assert_eq!(source_port(base, SteerKey::Pinned), base + BUCKETS);
        assert_eq!(key_of_port(base, base + BUCKETS), Some(SteerKey::Pinned));
        assert_eq!(key_of_port(base, base - 1), None);
        assert_eq!(key_of_port(base, base + STEER_PORTS), None);
        assert_eq!(key_of_port(base, 40_000), None, "an ephemeral port");
    }

    #[test]
    fn bind_all_binds_every_key_before_any_send() {
        // A base away from the default range, so other tests' clients do not share its ports.
        let base = 23_000;
        let mut sockets = SteerSockets::new(IpAddr::from([127, 0, 0, 1]), base).unwrap();
        assert_eq!(sockets.bound(), 0);
        sockets.bind_all().unwrap();
        assert_eq!(sockets.bound(), usize::from(STEER_PORTS));
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = sink.local_addr().unwrap();
        sockets.send_to(SteerKey::Pinned, b"x", to).unwrap();
        let mut buf = [0u8; 8];
        let (len, from) = sink.recv_from(&mut buf).unwrap();
        assert_eq!((len, from.port()), (1, source_port(base, SteerKey::Pinned)));
    }

    #[test]
    fn bases_are_bounded() {
        assert_eq!(check_base(1023), Err(SteerPortBaseError { base: 1023 }));
        assert_eq!(check_base(STEER_PORT_BASE_MAX), Ok(STEER_PORT_BASE_MAX));
        assert!(check_base(STEER_PORT_BASE_MAX + 1).is_err());
    }
}
