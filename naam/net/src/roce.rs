//! Which RDMA device and GID index carry an IP address over RoCEv2.
//!
//! A RoCE queue pair sends from the GID it is given: its table index selects both the source IP
//! address and the RoCE version. Index 0 is usually the link-local address over RoCE v1, an
//! Ethernet frame of its own EtherType (0x8915) that no IP flow matches; an off-box NIC and its
//! host must instead use the RoCE v2 GID (UDP port 4791) of their RDMA link's addresses, which
//! the card's bridge passes between their ports. The kernel lists every GID in sysfs —
//! `/sys/class/infiniband/<device>/ports/<port>/gids/<index>` (16 bytes in eight groups of four
//! hex digits, an IPv4 address as `::ffff:a.b.c.d`) and `gid_attrs/types/<index>` (`IB/RoCE v1`
//! or `RoCE v2`) — the same files rdma-core's `show_gids` reads. Plain file reads: no verbs, so
//! this builds and is tested without the `rdma` feature (against a directory laid out as sysfs).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where the kernel lists RDMA devices.
pub const SYSFS_INFINIBAND: &str = "/sys/class/infiniband";
/// GID table entries read per port at most (a verbs GID index is a `u8`).
pub const GID_TABLE_ENTRIES_MAX: usize = 256;
/// RDMA devices read at most.
pub const DEVICES_MAX: usize = 64;
/// The type sysfs gives a RoCE v2 GID.
pub const ROCE_V2: &str = "RoCE v2";

/// A device's GID for an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoceGid {
    /// The RDMA device (`mlx5_0`, ...).
    pub device: String,
    /// Its GID table index.
    pub index: u8,
}

/// Why no GID was found.
#[derive(Debug, thiserror::Error)]
pub enum GidError {
    /// No device lists a RoCE v2 GID of the address.
    #[error(
        "no RDMA device has a RoCE v2 GID for {address} on port {port} (under {}; {}): the \
         address must be configured on an RDMA device's own netdev (`rdma link show` names it; \
         an OVS internal port has no RDMA device), e.g. `ip addr add {address}/24 dev <netdev>`; \
         `show_gids` lists the GIDs",
        sysfs.display(),
        if seen.is_empty() { "no GID of it at all".to_string() } else { format!("found only {}", seen.join(", ")) }
    )]
    NoRoceV2 {
        /// The address.
        address: IpAddr,
        /// The port searched.
        port: u8,
        /// The sysfs folder read.
        sysfs: PathBuf,
        /// GIDs of the address of another type (`mlx5_0 index 2: IB/RoCE v1`).
        seen: Vec<String>,
    },
}

/// `address` as sysfs prints a GID: IPv4 mapped into IPv6, eight groups of four hex digits.
pub fn gid_text(address: IpAddr) -> String {
    let v6 = match address {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    v6.segments()
        .iter()
        .map(|s| format!("{s:04x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The first device (by name) whose `port` has a RoCE v2 GID for `address`, read from `sysfs`
/// (normally [`SYSFS_INFINIBAND`]).
pub fn find_roce_v2_gid(sysfs: &Path, port: u8, address: IpAddr) -> Result<RoceGid, GidError> {
    let wanted = gid_text(address);
    let mut devices: Vec<String> = std::fs::read_dir(sysfs)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .take(DEVICES_MAX)
                .collect()
        })
        .unwrap_or_default();
    devices.sort();
    let mut seen = Vec::new();
    for device in devices {
        let port_dir = sysfs.join(&device).join("ports").join(port.to_string());
        for index in 0..GID_TABLE_ENTRIES_MAX {
            let Ok(gid) = std::fs::read_to_string(port_dir.join("gids").join(index.to_string()))
            else {
                break;
            };
            if !gid.trim().eq_ignore_ascii_case(&wanted) {
                continue;
            }
            let kind = std::fs::read_to_string(
                port_dir
                    .join("gid_attrs")
                    .join("types")
                    .join(index.to_string()),
            )
            .unwrap_or_default();
            let index = u8::try_from(index).expect("GID_TABLE_ENTRIES_MAX fits a u8 index");
            if kind.trim() == ROCE_V2 {
                return Ok(RoceGid { device, index });
            }
            seen.push(format!("{device} index {index}: {}", kind.trim()));
        }
    }
    Err(GidError::NoRoceV2 {
        address,
        port,
        sysfs: sysfs.to_path_buf(),
        seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const ZERO: &str = "0000:0000:0000:0000:0000:0000:0000:0000";

    /// A device's port 1 GID table as sysfs lays it out: (gid, type) per index.
    fn device(root: &Path, name: &str, table: &[(&str, &str)]) {
        let port = root.join(name).join("ports/1");
        std::fs::create_dir_all(port.join("gids")).unwrap();
        std::fs::create_dir_all(port.join("gid_attrs/types")).unwrap();
        for (i, (gid, kind)) in table.iter().enumerate() {
            std::fs::write(port.join("gids").join(i.to_string()), format!("{gid}\n")).unwrap();
            let types = port.join("gid_attrs/types").join(i.to_string());
            std::fs::write(types, format!("{kind}\n")).unwrap();
        }
    }

    #[test]
    fn an_ipv4_address_is_written_as_sysfs_writes_its_gid() {
        let host = IpAddr::V4(Ipv4Addr::new(192, 168, 200, 1));
        assert_eq!(gid_text(host), "0000:0000:0000:0000:0000:ffff:c0a8:c801");
    }

    /// The layout of a ConnectX port with one IPv4 address: link-local v1 and v2, then the
    /// address's v1 and v2 entries (the order `show_gids` prints on such a port).
    #[test]
    fn the_roce_v2_entry_of_the_address_is_chosen_on_the_device_that_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let link = "fe80:0000:0000:0000:0a00:00ff:fe14:0001";
        let ours = gid_text(IpAddr::V4(Ipv4Addr::new(192, 168, 200, 2)));
        let lan = gid_text(IpAddr::V4(Ipv4Addr::new(10, 10, 1, 1)));
        device(
            dir.path(),
            "mlx5_0",
            &[
                (link, "IB/RoCE v1"),
                (link, ROCE_V2),
                (&lan, "IB/RoCE v1"),
                (&lan, ROCE_V2),
            ],
        );
        device(
            dir.path(),
            "mlx5_2",
            &[
                (link, "IB/RoCE v1"),
                (link, ROCE_V2),
                (&ours, "IB/RoCE v1"),
                (&ours, ROCE_V2),
                (ZERO, ""),
            ],
        );
        let address = IpAddr::V4(Ipv4Addr::new(192, 168, 200, 2));
        let found = find_roce_v2_gid(dir.path(), 1, address).unwrap();
        assert_eq!(
            found,
            RoceGid {
                device: "mlx5_2".into(),
                index: 3
            }
        );
        let absent = IpAddr::V4(Ipv4Addr::new(192, 168, 200, 9));
        let err = find_roce_v2_gid(dir.path(), 1, absent)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no GID of it at all"), "{err}");
    }

    #[test]
    fn a_roce_v1_only_address_is_refused_naming_what_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let ours = gid_text(IpAddr::V4(Ipv4Addr::new(192, 168, 200, 1)));
        device(dir.path(), "mlx5_0", &[(&ours, "IB/RoCE v1")]);
        let address = IpAddr::V4(Ipv4Addr::new(192, 168, 200, 1));
        let err = find_roce_v2_gid(dir.path(), 1, address)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mlx5_0 index 0: IB/RoCE v1"), "{err}");
        assert!(err.contains("ip addr add 192.168.200.1/24"), "{err}");
        let none = find_roce_v2_gid(&dir.path().join("absent"), 1, address);
        assert!(matches!(none, Err(GidError::NoRoceV2 { .. })));
    }
}
