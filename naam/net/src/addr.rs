//! Socket addresses: between `std::net`, the kernel's `sockaddr` structures, and the engine's
//! [`ReplyAddr`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use naam_engine::wire::ReplyAddr;

/// The engine's reply address for a socket address: IPv4 as the IPv4-mapped IPv6 address
/// `::ffff:a.b.c.d`, IPv6 as is (flow info and scope id are not carried).
pub fn reply_addr(addr: SocketAddr) -> ReplyAddr {
    let ip = match addr {
        SocketAddr::V4(v4) => v4.ip().to_ipv6_mapped(),
        SocketAddr::V6(v6) => *v6.ip(),
    };
    ReplyAddr {
        ip: ip.octets(),
        port: addr.port(),
    }
}

/// The socket address of a reply address: the inverse of [`reply_addr`] (IPv4-mapped addresses
/// become [`SocketAddr::V4`]).
pub fn socket_addr(addr: &ReplyAddr) -> SocketAddr {
    let ip = Ipv6Addr::from(addr.ip);
    match ip.to_ipv4_mapped() {
        Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, addr.port)),
        None => SocketAddr::V6(SocketAddrV6::new(ip, addr.port, 0, 0)),
    }
}

/// `addr` as a destination for a socket of the other family where that is possible: an IPv4
/// destination of an IPv6 (dual-stack) socket becomes IPv4-mapped, an IPv4-mapped destination of
/// an IPv4 socket becomes plain IPv4; anything else is returned unchanged.
pub(crate) fn for_socket_family(addr: SocketAddr, ipv6_socket: bool) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if ipv6_socket => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        SocketAddr::V6(v6) if !ipv6_socket => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, v6.port())),
            None => addr,
        },
        _ => addr,
    }
}

/// A socket address in the kernel's layout, ready for `bind`, `sendto` and `sendmmsg`.
#[derive(Clone, Copy)]
pub(crate) struct RawSockAddr {
    pub(crate) storage: libc::sockaddr_storage,
    pub(crate) len: libc::socklen_t,
}

impl std::fmt::Debug for RawSockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match from_raw(&self.storage, self.len) {
            Some(addr) => write!(f, "RawSockAddr({addr})"),
            None => write!(f, "RawSockAddr(family {})", self.storage.ss_family),
        }
    }
}

impl RawSockAddr {
    /// An all-zero address (family `AF_UNSPEC`), for preallocated slots.
    pub(crate) fn zeroed() -> RawSockAddr {
        // SAFETY: sockaddr_storage is a plain C struct of integers and byte arrays; all-zero is a
        // valid value of it (family AF_UNSPEC).
        let storage = unsafe { std::mem::zeroed::<libc::sockaddr_storage>() };
        RawSockAddr { storage, len: 0 }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (&raw const self.storage).cast()
    }
}

/// Converts a socket address to the kernel's layout.
pub(crate) fn to_raw(addr: SocketAddr) -> RawSockAddr {
    let mut raw = RawSockAddr::zeroed();
    match addr {
        SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: v4.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in (that
            // is its purpose); the write covers only the first size_of::<sockaddr_in>() bytes.
            unsafe {
                (&raw mut raw.storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            raw.len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        }
        SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: v6.port().to_be(),
                sin6_flowinfo: v6.flowinfo().to_be(),
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: v6.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                (&raw mut raw.storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            raw.len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        }
    }
    raw
}

/// Reads a socket address the kernel wrote (`len` bytes of `storage`); `None` for families other
/// than IPv4 and IPv6 or a length too short for the family.
pub(crate) fn from_raw(
    storage: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in and the kernel wrote at
            // least its size; sockaddr_storage is aligned for every sockaddr type.
            let sin = unsafe { &*(std::ptr::from_ref(storage).cast::<libc::sockaddr_in>()) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                port,
                u32::from_be(sin6.sin6_flowinfo),
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trip() {
        for text in [
            "127.0.0.1:9000",
            "[::1]:7",
            "[fe80::1%2]:65535",
            "0.0.0.0:0",
        ] {
            let addr: SocketAddr = text.parse().unwrap();
            let raw = to_raw(addr);
            assert_eq!(from_raw(&raw.storage, raw.len), Some(addr), "{text}");
        }
    }

    #[test]
    fn destinations_follow_the_socket_family() {
        let v4: SocketAddr = "10.0.0.1:5".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:5".parse().unwrap();
        assert_eq!(for_socket_family(v4, true), mapped);
        assert_eq!(for_socket_family(mapped, false), v4);
        assert_eq!(for_socket_family(v4, false), v4);
        assert_eq!(for_socket_family(mapped, true), mapped);
        assert_eq!(
            for_socket_family(v6, false),
            v6,
            "no IPv4 form: left for the kernel to refuse"
        );
    }

    #[test]
    fn short_or_foreign_raw_addresses_are_refused() {
        let raw = to_raw("10.1.2.3:80".parse().unwrap());
        assert_eq!(from_raw(&raw.storage, raw.len - 1), None);
        let unspec = RawSockAddr::zeroed();
        assert_eq!(from_raw(&unspec.storage, 128), None);
    }
}
