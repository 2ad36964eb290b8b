//! Network namespaces (root only): the server machine (host and NIC roles, and the hog) in one
//! namespace, the clients in another, joined by a veth pair, optionally with netem delay on both
//! ends. Names carry the launcher's PID so concurrent runs never collide, and [`Netns`] deletes
//! its namespaces when dropped.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use crate::LaunchError;

/// The server side's address on the veth link.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
/// The client side's address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// Prefix length of the link.
pub const PREFIX_LEN: u8 = 24;
/// Largest netem delay accepted.
pub const NETEM_DELAY_US_MAX: u64 = 1_000_000;

/// Two namespaces joined by veth.
#[derive(Debug)]
pub struct Netns {
    /// The server machine's namespace.
    pub server: String,
    /// The clients' namespace.
    pub client: String,
}

impl Netns {
    /// Creates the namespaces and the link; `delay_us` adds netem delay each way.
    pub fn create(tag: &str, delay_us: Option<u64>) -> Result<Netns, LaunchError> {
        if let Some(d) = delay_us.filter(|&d| d > NETEM_DELAY_US_MAX) {
            return Err(LaunchError::Netns(format!(
                "netem delay {d} us is more than {NETEM_DELAY_US_MAX}"
            )));
        }
        let id = std::process::id();
        let ns = Netns {
            server: namespace_name(tag, id, SERVER_SUFFIX),
            client: namespace_name(tag, id, CLIENT_SUFFIX),
        };
        let (veth_s, veth_c) = (format!("nv{id}s"), format!("nv{id}c"));
        ip(&["netns", "add", &ns.server])?;
        ip(&["netns", "add", &ns.client])?;
        ip(&[
            "link", "add", &veth_s, "type", "veth", "peer", "name", &veth_c,
        ])?;
        for (dev, netns, addr) in [
            (&veth_s, &ns.server, SERVER_IP),
            (&veth_c, &ns.client, CLIENT_IP),
        ] {
            ip(&["link", "set", dev, "netns", netns])?;
            ip(&[
                "-n",
                netns,
                "addr",
                "add",
                &format!("{addr}/{PREFIX_LEN}"),
                "dev",
                dev,
            ])?;
            ip(&["-n", netns, "link", "set", dev, "up"])?;
            ip(&["-n", netns, "link", "set", "lo", "up"])?;
            if let Some(d) = delay_us {
                run(
                    "tc",
                    &[
                        "-n",
                        netns,
                        "qdisc",
                        "add",
                        "dev",
                        dev,
                        "root",
                        "netem",
                        "delay",
                        &format!("{d}us"),
                    ],
                )
                .map_err(|e| {
                    LaunchError::Netns(format!(
                        "{e}; netem delay needs the kernel's sch_netem module (modprobe sch_netem)"
                    ))
                })?;
            }
        }
        Ok(ns)
    }

    /// The server's address as clients reach it.
    pub fn server_ip(&self) -> IpAddr {
        IpAddr::V4(SERVER_IP)
    }

    /// `ip netns exec <ns>` in front of a program (exec replaces `ip`, so the PID is the
    /// program's).
    pub fn command(namespace: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", namespace]).arg(program);
        c
    }
}

const SERVER_SUFFIX: &str = "s";
const CLIENT_SUFFIX: &str = "c";

/// `naam-<tag>-<launcher pid>-<s|c>`: the launcher's PID tells a sweep whether its run is over.
fn namespace_name(tag: &str, launcher_pid: u32, suffix: &str) -> String {
    format!("naam-{tag}-{launcher_pid}-{suffix}")
}

/// The launcher PID in a namespace name [`Netns::create`] made; `None` for any other name.
pub fn launcher_pid_of(namespace: &str) -> Option<u32> {
    let rest = namespace.strip_prefix("naam-")?;
    let rest = [SERVER_SUFFIX, CLIENT_SUFFIX]
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix)?.strip_suffix('-'))?;
    let (tag, pid) = rest.rsplit_once('-')?;
    if tag.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// The network namespaces that exist (`ip netns list`).
pub fn list() -> Result<Vec<String>, LaunchError> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map_err(|e| LaunchError::Netns(format!("ip netns list: {e} (is iproute2 installed?)")))?;
    if !out.status.success() {
        return Err(LaunchError::Netns(format!(
            "ip netns list failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // Each line is `name` or `name (id: N)`.
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Deletes namespace `name` (its veth end goes with it).
pub fn delete(name: &str) -> Result<(), LaunchError> {
    ip(&["netns", "del", name])
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn ip(args: &[&str]) -> Result<(), LaunchError> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<(), LaunchError> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        LaunchError::Netns(format!(
            "{program} {}: {e} (is iproute2 installed?)",
            args.join(" ")
        ))
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(LaunchError::Netns(format!(
            "{program} {} failed: {}",
            args.join(" "),
            stderr.trim()
        )));
    }
    Ok(())
}

/// True when this process may create namespaces (effective uid 0).
pub fn have_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launcher_pids_are_read_only_from_our_names() {
        assert_eq!(
            launcher_pid_of(&namespace_name("p3", 4242, SERVER_SUFFIX)),
            Some(4242)
        );
        assert_eq!(
            launcher_pid_of(&namespace_name("p0-x", 7, CLIENT_SUFFIX)),
            Some(7)
        );
        for other in [
            "naam-4242-s",
            "naam-p3-42a-s",
            "naam-p3-4242-x",
            "mine-p3-4242-s",
            "naam--1-s",
        ] {
            assert_eq!(launcher_pid_of(other), None, "{other}");
        }
    }
}
