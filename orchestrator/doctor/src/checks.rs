//! The checks: for each, the real command run on the node, and a pure evaluation of its output
//! into a [`Finding`] that says what is wrong and what to run to fix it.
//!
//! Output formats are those of the tools on Debian/Ubuntu and on NVIDIA's BlueField-2 images
//! (iproute2's `devlink` and `rdma`, Open vSwitch's `ovs-vsctl`, coreutils' `od`).

use std::net::Ipv4Addr;

use naam_ssh::{Arch, CommandError, HostSpec, ShellLine};

use crate::{Finding, Severity};

/// Clock offsets beyond this are reported as a warning: a tenth of the 10 ms intervals of the
/// load-shift figure (an assumption of this harness: timelines aligned to within 10 % of an
/// interval).
pub const CLOCK_OFFSET_WARN_NS: u64 = 1_000_000;
/// Clock offsets beyond this fail: the orchestrator itself refuses runs beyond 1 s
/// (`naam_ssh::limits::CLOCK_OFFSET_MS_MAX`); the doctor fails earlier, at 100 ms, ten load-shift
/// intervals.
pub const CLOCK_OFFSET_FAIL_NS: u64 = 100_000_000;
/// The role binary's path under the remote working directory.
pub const ROLE_BINARY: &str = "bin/naam-role";
/// ELF `e_machine` of x86-64.
const EM_X86_64: u16 = 62;
/// ELF `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;

/// One check: its stable id, what it is about, and the command it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Stable id (`arch`, `rdma`, ...).
    pub id: &'static str,
    /// The shell line run on the node.
    pub line: ShellLine,
}

/// Which checks a node gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeKind {
    /// A BlueField-2's Arm side (NIC role on an aarch64 machine).
    pub bluefield_arm: bool,
    /// A host whose NIC role runs on another machine (so it exports its memory over RDMA).
    pub host_of_offbox_nic: bool,
    /// This node's end of the host–Arm RDMA link across the card's bridge (a BlueField-2's Arm
    /// side, or a host of an off-box NIC; from the NIC node's `[host.bluefield]` table).
    pub rdma_link: Option<RdmaLinkEnd>,
}

/// One end of the host–Arm RDMA link, as the doctor checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdmaLinkEnd {
    /// This node's address on the link.
    pub local: Ipv4Addr,
    /// The other end's.
    pub peer: Ipv4Addr,
    /// Whether this node is the Arm side (else the host).
    pub on_arm: bool,
}

/// The probes of `host` (the clock offset is measured separately).
pub fn probes(host: &HostSpec, kind: NodeKind) -> Result<Vec<Probe>, CommandError> {
    let mut out = vec![
        Probe {
            id: "arch",
            line: ShellLine::new().op("uname -m"),
        },
        Probe {
            id: "role-binary",
            line: ShellLine::new()
                .op("head -c 20")
                .text(&binary_path(host))?
                .op("2>/dev/null | od -An -tx1"),
        },
    ];
    if kind.bluefield_arm {
        out.push(Probe {
            id: "eswitch-mode",
            line: ShellLine::new().op(
                "command -v devlink >/dev/null || echo 'devlink: not installed'; \
                 for d in $(devlink dev show 2>/dev/null); do devlink dev eswitch show \"$d\" 2>&1; done",
            ),
        });
        out.push(Probe {
            id: "ovs",
            line: ShellLine::new().op(
                "command -v ovs-vsctl >/dev/null || echo 'ovs-vsctl: not installed'; \
                 for b in $(ovs-vsctl list-br 2>/dev/null); do echo \"bridge $b\"; \
                 ovs-vsctl list-ports \"$b\" | sed 's/^/port /'; \
                 ovs-vsctl get-controller \"$b\" | sed 's/^/controller /'; done; \
                 echo \"hw-offload $(ovs-vsctl get Open_vSwitch . other_config:hw-offload 2>&1)\"",
            ),
        });
    }
    if kind.bluefield_arm || kind.host_of_offbox_nic {
        out.push(Probe {
            id: "rdma",
            line: ShellLine::new().op(
                "command -v rdma >/dev/null || echo 'rdma: not installed'; rdma link show 2>&1; \
                 ls /dev/infiniband 2>&1 | sed 's/^/dev /'",
            ),
        });
    }
    if let Some(link) = kind.rdma_link {
        out.push(Probe {
            id: "rdma-link",
            line: ShellLine::new()
                .op("ip -br addr show to")
                .text(&format!("{}/32", link.local))?
                .op("2>&1 | sed 's/^/addr /'; rdma link show 2>&1 | sed 's/^/rdma /'"),
        });
    }
    if kind.host_of_offbox_nic {
        out.push(Probe {
            id: "tmfifo",
            line: ShellLine::new().op("ip -br addr show tmfifo_net0 2>&1"),
        });
    }
    if host.has_role(naam_ssh::Role::Host) {
        out.push(Probe {
            id: "hugepages",
            line: ShellLine::new().op("grep -E '^HugePages_(Total|Free)' /proc/meminfo"),
        });
    }
    Ok(out)
}

/// Where the role binary is on `host` (relative paths are under the login's home).
pub fn binary_path(host: &HostSpec) -> String {
    format!("{}/{ROLE_BINARY}", host.workdir.trim_end_matches('/'))
}

fn finding(check: &'static str, severity: Severity, summary: String) -> Finding {
    Finding {
        check,
        severity,
        summary,
        fixes: Vec::new(),
    }
}

fn fix<S: Into<String>>(mut f: Finding, fixes: impl IntoIterator<Item = S>) -> Finding {
    f.fixes = fixes.into_iter().map(Into::into).collect();
    f
}

/// Evaluates one probe's stdout (stderr folded in by the probe where it matters).
pub fn evaluate(id: &'static str, host: &HostSpec, kind: NodeKind, stdout: &str) -> Finding {
    match id {
        "rdma-link" => match kind.rdma_link {
            Some(link) => rdma_link(link, stdout),
            None => finding(id, Severity::Fail, "no RDMA link to check".into()),
        },
        "arch" => arch(host, stdout),
        "role-binary" => role_binary(host, stdout),
        "eswitch-mode" => eswitch_mode(stdout),
        "ovs" => ovs(stdout),
        "rdma" => rdma(stdout),
        "tmfifo" => tmfifo(stdout),
        "hugepages" => hugepages(stdout),
        _ => finding(id, Severity::Fail, "unknown check".into()),
    }
}

fn arch(host: &HostSpec, stdout: &str) -> Finding {
    let machine = stdout.trim();
    match Arch::from_uname(machine) {
        Some(a) if a == host.arch => finding("arch", Severity::Ok, format!("uname -m: {machine}")),
        Some(a) => fix(
            finding(
                "arch",
                Severity::Fail,
                format!(
                    "the machine is {machine}, the inventory says {}",
                    host.arch.as_str()
                ),
            ),
            [format!(
                "set `arch = \"{}\"` for host {} in the hosts file",
                a.as_str(),
                host.name
            )],
        ),
        None => finding(
            "arch",
            Severity::Fail,
            format!("unsupported architecture {machine:?} (x86_64 and aarch64 run the roles)"),
        ),
    }
}

fn role_binary(host: &HostSpec, stdout: &str) -> Finding {
    let bytes: Vec<u8> = stdout
        .split_whitespace()
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    let path = binary_path(host);
    if bytes.len() < 20 {
        return finding(
            "role-binary",
            Severity::Info,
            format!(
                "{path} is not deployed yet (`naam deploy` uploads it, or builds it there for another architecture)"
            ),
        );
    }
    if bytes[..4] != [0x7f, b'E', b'L', b'F'] {
        return finding(
            "role-binary",
            Severity::Fail,
            format!("{path} is not an ELF file"),
        );
    }
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    let wanted = match host.arch {
        Arch::X86_64 => EM_X86_64,
        Arch::Aarch64 => EM_AARCH64,
    };
    if machine == wanted {
        return finding(
            "role-binary",
            Severity::Ok,
            format!("{path} is built for {}", host.arch.as_str()),
        );
    }
    let mut f = finding(
        "role-binary",
        Severity::Fail,
        format!(
            "{path} is built for ELF machine {machine}, this node is {} ({wanted})",
            host.arch.as_str()
        ),
    );
    f.fixes = vec![
        format!(
            "rm {path}   # on {}; the next deploy builds it for this architecture",
            host.name
        ),
        format!(
            "or build it here: cargo build --release -p naam-roles --bin naam-role --target {}",
            host.arch.target_triple()
        ),
    ];
    f
}

fn eswitch_mode(stdout: &str) -> Finding {
    if stdout.contains("devlink: not installed") {
        return fix(
            finding(
                "eswitch-mode",
                Severity::Fail,
                "devlink (iproute2) is not installed".into(),
            ),
            ["sudo apt-get install -y iproute2"],
        );
    }
    let modes: Vec<&str> = stdout.lines().filter(|l| l.contains(" mode ")).collect();
    if modes.iter().any(|l| l.contains("mode switchdev")) {
        return finding(
            "eswitch-mode",
            Severity::Ok,
            format!(
                "embedded (DPU) mode: the Arm side owns the eSwitch ({})",
                modes.join("; ").trim()
            ),
        );
    }
    if let Some(line) = modes.iter().find(|l| l.contains("mode legacy")) {
        let device = line.split(": ").next().unwrap_or("pci/0000:03:00.0").trim();
        let set = format!("sudo devlink dev eswitch set {device} mode switchdev");
        return fix(
            finding(
                "eswitch-mode",
                Severity::Fail,
                format!("the eSwitch is in legacy mode ({}): flows cannot be offloaded", line.trim()),
            ),
            [
                set,
                "if the card is in separated-host mode: sudo mlxconfig -d /dev/mst/mt41686_pciconf0 s INTERNAL_CPU_MODEL=1, then power-cycle the server".to_string(),
            ],
        );
    }
    fix(
        finding(
            "eswitch-mode",
            Severity::Fail,
            "no devlink device reports an eSwitch mode: is this a BlueField-2's Arm side, with mlx5_core loaded?".into(),
        ),
        ["devlink dev show", "lsmod | grep mlx5_core"],
    )
}

/// What the `ovs` probe printed, parsed.
#[derive(Debug, Default)]
struct Bridges {
    bridges: Vec<(String, Vec<String>, Vec<String>)>,
    hw_offload: String,
    missing: bool,
}

fn parse_ovs(stdout: &str) -> Bridges {
    let mut b = Bridges::default();
    for line in stdout.lines() {
        if line.contains("ovs-vsctl: not installed") {
            b.missing = true;
        } else if let Some(name) = line.strip_prefix("bridge ") {
            b.bridges
                .push((name.trim().to_string(), Vec::new(), Vec::new()));
        } else if let (Some(port), Some(last)) = (line.strip_prefix("port "), b.bridges.last_mut())
        {
            last.1.push(port.trim().to_string());
        } else if let (Some(c), Some(last)) =
            (line.strip_prefix("controller "), b.bridges.last_mut())
        {
            last.2.push(c.trim().to_string());
        } else if let Some(v) = line.strip_prefix("hw-offload ") {
            b.hw_offload = v.trim().trim_matches('"').to_string();
        }
    }
    b
}

fn ovs(stdout: &str) -> Finding {
    let parsed = parse_ovs(stdout);
    if parsed.missing {
        return fix(
            finding(
                "ovs",
                Severity::Fail,
                "Open vSwitch is not installed on the Arm side".into(),
            ),
            ["sudo apt-get install -y openvswitch-switch"],
        );
    }
    let is_uplink = |p: &str| p == "p0" || p == "p1";
    let is_host_rep = |p: &str| p.starts_with("pf0hpf") || p.starts_with("pf1hpf");
    let bridge = parsed.bridges.iter().find(|(_, ports, _)| {
        ports.iter().any(|p| is_uplink(p)) && ports.iter().any(|p| is_host_rep(p))
    });
    let Some((name, ports, controllers)) = bridge else {
        return fix(
            finding(
                "ovs",
                Severity::Fail,
                format!(
                    "no OVS bridge joins an uplink (p0/p1) and the host's representor (pf0hpf); bridges: {:?}",
                    parsed.bridges.iter().map(|b| &b.0).collect::<Vec<_>>()
                ),
            ),
            [
                "sudo ovs-vsctl add-br ovsbr1",
                "sudo ovs-vsctl add-port ovsbr1 p0",
                "sudo ovs-vsctl add-port ovsbr1 pf0hpf",
                "sudo ovs-vsctl add-port ovsbr1 en3f0pf0sf0   # the Arm's own port (the NIC role's address)",
            ],
        );
    };
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    if parsed.hw_offload != "true" {
        problems.push(format!(
            "hw-offload is {:?}, not true: flows stay in software on the Arm cores",
            parsed.hw_offload
        ));
        fixes.push("sudo ovs-vsctl set Open_vSwitch . other_config:hw-offload=true".to_string());
        fixes.push("sudo systemctl restart openvswitch-switch".to_string());
    }
    if !controllers.iter().any(|c| c.starts_with("ptcp:")) {
        problems.push(format!("bridge {name} has no OpenFlow listener for the host's controller (controllers: {controllers:?})"));
        fixes.push(format!("sudo ovs-vsctl set-controller {name} ptcp:6653"));
    }
    if !ports.iter().any(|p| p.contains("sf")) {
        problems.push(format!(
            "bridge {name} has no port for the Arm's own traffic (an SF such as en3f0pf0sf0)"
        ));
        fixes.push(format!("sudo ovs-vsctl add-port {name} en3f0pf0sf0"));
    }
    if problems.is_empty() {
        return finding(
            "ovs",
            Severity::Ok,
            format!(
                "bridge {name} ({}), hw-offload true, OpenFlow listener {}",
                ports.join(", "),
                controllers.join(", ")
            ),
        );
    }
    Finding {
        check: "ovs",
        severity: Severity::Fail,
        summary: problems.join("; "),
        fixes,
    }
}

fn rdma(stdout: &str) -> Finding {
    if stdout.contains("rdma: not installed") {
        return fix(
            finding(
                "rdma",
                Severity::Fail,
                "the rdma tool (iproute2) is not installed".into(),
            ),
            ["sudo apt-get install -y iproute2 rdma-core ibverbs-utils"],
        );
    }
    let links: Vec<&str> = stdout.lines().filter(|l| l.starts_with("link ")).collect();
    if let Some(active) = links.iter().find(|l| l.contains("state ACTIVE")) {
        return finding("rdma", Severity::Ok, active.trim().to_string());
    }
    if let Some(down) = links.first() {
        let netdev = down
            .split_whitespace()
            .skip_while(|w| *w != "netdev")
            .nth(1)
            .unwrap_or("p0");
        let up = format!("sudo ip link set {netdev} up");
        return fix(
            finding(
                "rdma",
                Severity::Fail,
                format!("no RDMA port is ACTIVE: {}", down.trim()),
            ),
            [
                up,
                "check the cable and the switch port; rdma link show".to_string(),
            ],
        );
    }
    fix(
        finding(
            "rdma",
            Severity::Fail,
            "no RDMA device: the NIC role reaches host memory with one-sided RDMA READs".into(),
        ),
        [
            "sudo modprobe mlx5_ib ib_uverbs",
            "ibv_devices   # lists the devices once the drivers are loaded",
            "ls /dev/infiniband   # uverbs devices must exist",
        ],
    )
}

/// The RDMA link's address must be on this node, on the netdev of an RDMA device (so the
/// device has a RoCE v2 GID for it; an OVS internal port has none).
fn rdma_link(link: RdmaLinkEnd, stdout: &str) -> Finding {
    let addr_line = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("addr "))
        .find(|l| l.contains(&format!(" {}/", link.local)));
    let rdma_netdevs: Vec<(&str, &str)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("rdma link "))
        .filter_map(|l| {
            let device = l.split_whitespace().next()?;
            let netdev = l.split_whitespace().skip_while(|w| *w != "netdev").nth(1)?;
            Some((device, netdev))
        })
        .collect();
    let side = if link.on_arm { "Arm side" } else { "host" };
    let Some(line) = addr_line else {
        let netdev = link_netdev(link, &rdma_netdevs);
        return fix(
            finding(
                "rdma-link",
                Severity::Fail,
                format!(
                    "the RDMA link's {side} address {} is not configured here (its peer: {})",
                    link.local, link.peer
                ),
            ),
            rdma_link_fixes(link, &netdev),
        );
    };
    let netdev = line.split_whitespace().next().unwrap_or("?");
    match rdma_netdevs.iter().find(|(_, n)| *n == netdev) {
        Some((device, _)) => finding(
            "rdma-link",
            Severity::Ok,
            format!(
                "{} on {netdev} (RDMA device {device}; its RoCE v2 GID carries the link to {})",
                link.local, link.peer
            ),
        ),
        None => {
            let mut fixes = vec![format!("sudo ip addr del {}/24 dev {netdev}", link.local)];
            fixes.extend(rdma_link_fixes(link, &link_netdev(link, &rdma_netdevs)));
            fix(
                finding(
                    "rdma-link",
                    Severity::Fail,
                    format!(
                        "{} is on {netdev}, which is no RDMA device's netdev (rdma link show): \
                         RoCE cannot send from it (an OVS internal port has no RDMA device)",
                        link.local
                    ),
                ),
                fixes,
            )
        }
    }
}

/// The netdev the link's address belongs on: the host's first RDMA netdev (the card's PF); on
/// the Arm side, the first that is neither an uplink nor a representor (the SF behind the
/// bridge's NIC port), else the default image's SF netdev.
fn link_netdev(link: RdmaLinkEnd, rdma_netdevs: &[(&str, &str)]) -> String {
    let fits = |n: &&str| {
        !link.on_arm || !(matches!(*n, "p0" | "p1") || n.starts_with("pf") || n.contains("hpf"))
    };
    let fallback = if link.on_arm {
        "enp3s0f0s0"
    } else {
        "<the card's PF netdev, e.g. ens1f0np0>"
    };
    rdma_netdevs
        .iter()
        .map(|(_, n)| *n)
        .find(fits)
        .unwrap_or(fallback)
        .to_string()
}

fn rdma_link_fixes(link: RdmaLinkEnd, netdev: &str) -> Vec<String> {
    let port = if link.on_arm {
        "the SF whose representor (en3f0pf0sf0) is the bridge's NIC port"
    } else {
        "the PF whose representor (pf0hpf) is the bridge's host port"
    };
    vec![
        format!("sudo ip addr add {}/24 dev {netdev}   # {port}", link.local),
        format!("sudo ip link set {netdev} up"),
        format!(
            "ping -c 1 {}   # once the controller has installed the bridge's flows (a run)",
            link.peer
        ),
    ]
}

fn tmfifo(stdout: &str) -> Finding {
    if stdout.contains("tmfifo_net0") && stdout.contains("UP") && stdout.contains('/') {
        return finding(
            "tmfifo",
            Severity::Ok,
            format!("the Arm side is reachable over rshim: {}", stdout.trim()),
        );
    }
    fix(
        finding(
            "tmfifo",
            Severity::Warn,
            format!(
                "tmfifo_net0 (rshim) is not up with an address: {}",
                stdout.trim()
            ),
        ),
        [
            "sudo systemctl start rshim",
            "sudo ip addr add 192.168.100.1/24 dev tmfifo_net0 && sudo ip link set tmfifo_net0 up",
        ],
    )
}

fn hugepages(stdout: &str) -> Finding {
    finding(
        "hugepages",
        Severity::Info,
        format!(
            "not used by the harness (regions are ordinary shared mappings); {}",
            stdout.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    )
}

/// Evaluates a measured clock offset (remote minus local, with its error bound).
pub fn clock(offset_ns: i64, error_ns: u64) -> Finding {
    let off = offset_ns.unsigned_abs();
    let summary = format!(
        "offset {:+.3} ms (±{:.3} ms)",
        offset_ns as f64 / 1e6,
        error_ns as f64 / 1e6
    );
    let severity = if off > CLOCK_OFFSET_FAIL_NS {
        Severity::Fail
    } else if off + error_ns > CLOCK_OFFSET_WARN_NS {
        Severity::Warn
    } else {
        Severity::Ok
    };
    let f = finding("clock", severity, summary);
    if severity == Severity::Ok {
        return f;
    }
    fix(
        f,
        [
            "chronyc tracking   # is the clock synchronised?",
            "sudo chronyc makestep",
            "sudo apt-get install -y chrony && sudo systemctl enable --now chrony",
        ],
    )
}
