//! `naam doctor` against real OpenSSH servers on 127.0.0.1 (the orchestrator's test setup): a
//! host, a BlueField-2 Arm side and a client, each an sshd of its own. The doctor's commands are
//! the real ones and run for real over SSH. What this machine lacks — a BlueField-2's `devlink`,
//! `ovs-vsctl`, `rdma` and an aarch64 `uname` — is supplied on the nodes' `PATH` (sshd `SetEnv`)
//! by stand-in scripts that print what those tools print on a card (formats of iproute2 and Open
//! vSwitch), healthy or broken.

#[path = "../../ssh/tests/support/mod.rs"]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use expect_test::{Expect, expect};
use naam_doctor::{DryRunner, Report, Severity, SshRunner, examine};
use naam_ssh::{ConnectOptions, Inventory};
use support::{EXTRA_CONFIG, Sshd, keygen};

/// A BlueField-2 Arm side as the tools describe it, healthy.
const BF2_HEALTHY: &[(&str, &str)] = &[
    ("uname", "echo aarch64"),
    (
        "devlink",
        r#"case "$*" in
  "dev show") printf 'pci/0000:03:00.0\npci/0000:03:00.1\n' ;;
  "dev eswitch show pci/0000:03:00.0") echo 'pci/0000:03:00.0: mode switchdev inline-mode none encap-mode basic' ;;
  "dev eswitch show pci/0000:03:00.1") echo 'pci/0000:03:00.1: mode switchdev inline-mode none encap-mode basic' ;;
esac"#,
    ),
    (
        "ovs-vsctl",
        r#"case "$*" in
  "list-br") printf 'ovsbr1\novsbr2\n' ;;
  "list-ports ovsbr1") printf 'en3f0pf0sf0\np0\npf0hpf\n' ;;
  "list-ports ovsbr2") printf 'en3f1pf1sf0\np1\npf1hpf\n' ;;
  "get-controller ovsbr1") echo 'ptcp:6653' ;;
  "get-controller ovsbr2") ;;
  "get Open_vSwitch . other_config:hw-offload") echo '"true"' ;;
esac"#,
    ),
    (
        "rdma",
        r#"printf 'link mlx5_0/1 state ACTIVE physical_state LINK_UP netdev p0 \nlink mlx5_1/1 state ACTIVE physical_state LINK_UP netdev p1 \nlink mlx5_2/1 state ACTIVE physical_state LINK_UP netdev enp3s0f0s0 \n'"#,
    ),
    // The RDMA link's Arm end on the SF's netdev (whose representor en3f0pf0sf0 is on ovsbr1).
    (
        "ip",
        r#"case "$*" in
  *192.168.200.2/32*) echo 'enp3s0f0s0       UP             10.10.1.1/24 192.168.200.2/24 fe80::a00:ff:fe14:1/64' ;;
esac"#,
    ),
];

/// The same card in legacy mode, with OVS left at its defaults and the link down.
const BF2_BROKEN: &[(&str, &str)] = &[
    ("uname", "echo aarch64"),
    (
        "devlink",
        r#"case "$*" in
  "dev show") printf 'pci/0000:03:00.0\n' ;;
  "dev eswitch show pci/0000:03:00.0") echo 'pci/0000:03:00.0: mode legacy inline-mode none encap-mode basic' ;;
esac"#,
    ),
    (
        "ovs-vsctl",
        r#"case "$*" in
  "list-br") echo 'ovsbr1' ;;
  "list-ports ovsbr1") printf 'p0\npf0hpf\n' ;;
  "get-controller ovsbr1") ;;
  "get Open_vSwitch . other_config:hw-offload") echo 'ovs-vsctl: no key "hw-offload" in Open_vSwitch record "." column other_config' >&2; exit 1 ;;
esac"#,
    ),
    (
        "rdma",
        r#"printf 'link mlx5_0/1 state DOWN physical_state DISABLED netdev p0 \n'"#,
    ),
    // The RDMA link's Arm end on an OVS internal port, which has no RDMA device.
    (
        "ip",
        r#"case "$*" in
  *192.168.200.2/32*) echo 'naam-arm         UP             10.10.1.1/24 192.168.200.2/24' ;;
esac"#,
    ),
];

/// A host whose card's RDMA port is up and whose rshim link is configured.
const HOST_HEALTHY: &[(&str, &str)] = &[
    (
        "rdma",
        r#"printf 'link mlx5_0/1 state ACTIVE physical_state LINK_UP netdev ens1f0np0 \n'"#,
    ),
    (
        "ip",
        r#"case "$*" in
  *tmfifo_net0*) echo 'tmfifo_net0      UP             192.168.100.1/24 fe80::21a:caff:feff:ff02/64' ;;
  *192.168.200.1/32*) echo 'ens1f0np0        UP             10.10.1.1/24 192.168.200.1/24 fe80::a00:ff:fe14:1/64' ;;
esac"#,
    ),
];

/// The first 20 bytes of an aarch64 ELF executable (e_machine 183 at offset 18).
const AARCH64_ELF_HEAD: [u8; 20] = [
    0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 183, 0,
];

struct Lab {
    dir: tempfile::TempDir,
    nodes: Vec<Sshd>,
    inventory: Inventory,
}

fn write_tools(dir: &Path, tools: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, body) in tools {
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Starts host0, arm0 and client0; `arm_tools` and `host_tools` go first on their PATH.
fn lab(arm_tools: &[(&str, &str)], host_tools: &[(&str, &str)]) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("client_ed25519");
    keygen(&key, "naam-doctor-test");
    let public = dir.path().join("client_ed25519.pub");
    let specs = [
        ("host0", "host", std::env::consts::ARCH, host_tools),
        ("arm0", "nic", "aarch64", arm_tools),
        ("client0", "client", std::env::consts::ARCH, &[][..]),
    ];
    let mut nodes = Vec::new();
    let mut hosts = String::new();
    for (index, (name, role, arch, tools)) in specs.iter().enumerate() {
        let sshd_dir = dir.path().join("sshd").join(name);
        let tool_dir = dir.path().join("tools").join(name);
        write_tools(&tool_dir, tools);
        fs::create_dir_all(&sshd_dir).unwrap();
        fs::write(
            sshd_dir.join(EXTRA_CONFIG),
            format!(
                "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n",
                tool_dir.display()
            ),
        )
        .unwrap();
        let workdir = dir.path().join("work").join(name);
        fs::create_dir_all(workdir.join("bin")).unwrap();
        if *arch == "aarch64" {
            fs::write(workdir.join("bin/naam-role"), AARCH64_ELF_HEAD).unwrap();
        }
        let sshd = Sshd::start(&sshd_dir, name, &public);
        hosts.push_str(&format!(
            "\n[[host]]\nname = \"{name}\"\nssh_host = \"127.0.0.1\"\nport = {}\nroles = [\"{role}\"]\n\
             arch = \"{arch}\"\nlan_address = \"10.10.1.{}\"\ncores = 2\nworkdir = \"{}\"\n",
            sshd.port,
            index + 1,
            workdir.display()
        ));
        nodes.push(sshd);
    }
    let known_hosts = dir.path().join("known_hosts");
    fs::write(
        &known_hosts,
        nodes.iter().map(Sshd::known_hosts_line).collect::<String>(),
    )
    .unwrap();
    let text = format!(
        "[defaults]\nuser = \"root\"\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\n{hosts}",
        key.display(),
        known_hosts.display()
    );
    let inventory = Inventory::parse(&text, "hosts.toml", dir.path()).expect("inventory");
    Lab {
        dir,
        nodes,
        inventory,
    }
}

/// The report with what varies between runs masked: ports, the scratch directory, and the
/// clock checks (their severity depends on the round trips measured; they are checked apart).
fn stable(report: &Report, lab: &Lab) -> String {
    let mut text = report.to_string();
    for node in &lab.nodes {
        text = text.replace(&format!(":{},", node.port), ":PORT,");
    }
    text = text.replace(&lab.dir.path().display().to_string(), "TMP");
    let mut out = Vec::new();
    let mut in_clock = false;
    for line in text.lines() {
        let finding_line =
            line.len() > 8 && !line[2..8].trim().is_empty() && line.starts_with("  ");
        if finding_line {
            in_clock = line.contains(" clock ");
            if in_clock {
                out.push("  ...   clock         (measured; checked apart)".to_string());
                continue;
            }
        }
        if line.starts_with("node ") || line.starts_with("summary") {
            in_clock = false;
        }
        if in_clock {
            continue;
        }
        if let Some(at) = line.find("regions are ordinary shared mappings); ") {
            out.push(format!(
                "{}regions are ordinary shared mappings); (this machine's counts)",
                &line[..at]
            ));
            continue;
        }
        if line.starts_with("summary") {
            out.push(format!(
                "summary: {} failed (clock findings aside)",
                failed_but_clock(report)
            ));
            continue;
        }
        out.push(line.to_string());
    }
    out.join("\n")
}

fn failed_but_clock(report: &Report) -> usize {
    report
        .nodes
        .iter()
        .flat_map(|n| &n.findings)
        .filter(|(_, f)| f.severity == Severity::Fail && f.check != "clock")
        .count()
}

/// Every node's clock was measured, and on one machine it is far within the failure bound.
fn clocks_measured(report: &Report) {
    for node in &report.nodes {
        let (_, clock) = node
            .findings
            .iter()
            .find(|(_, f)| f.check == "clock")
            .expect("a clock finding per node");
        assert!(
            matches!(clock.severity, Severity::Ok | Severity::Warn),
            "{}: {clock:?}",
            node.node
        );
        assert!(clock.summary.starts_with("offset "), "{}", clock.summary);
    }
}

fn check(report: &Report, lab: &Lab, expect: Expect) {
    expect.assert_eq(&stable(report, lab));
}

#[test]
fn a_healthy_bluefield_testbed_passes_with_every_command_shown() {
    let lab = lab(BF2_HEALTHY, HOST_HEALTHY);
    let mut runner = SshRunner::new(ConnectOptions::default());
    let report = examine(&lab.inventory, &mut runner);
    assert!(report.passed(), "{report}");
    clocks_measured(&report);
    check(
        &report,
        &lab,
        expect![[r#"
            node host0 (root@127.0.0.1:PORT, roles host, x86_64)
              ok    arch          uname -m: x86_64
                    ran: uname -m
              info  role-binary   TMP/work/host0/bin/naam-role is not deployed yet (`naam deploy` uploads it, or builds it there for another architecture)
                    ran: head -c 20 'TMP/work/host0/bin/naam-role' 2>/dev/null | od -An -tx1
              ok    rdma          link mlx5_0/1 state ACTIVE physical_state LINK_UP netdev ens1f0np0
                    ran: command -v rdma >/dev/null || echo 'rdma: not installed'; rdma link show 2>&1; ls /dev/infiniband 2>&1 | sed 's/^/dev /'
              ok    rdma-link     192.168.200.1 on ens1f0np0 (RDMA device mlx5_0/1; its RoCE v2 GID carries the link to 192.168.200.2)
                    ran: ip -br addr show to '192.168.200.1/32' 2>&1 | sed 's/^/addr /'; rdma link show 2>&1 | sed 's/^/rdma /'
              ok    tmfifo        the Arm side is reachable over rshim: tmfifo_net0      UP             192.168.100.1/24 fe80::21a:caff:feff:ff02/64
                    ran: ip -br addr show tmfifo_net0 2>&1
              info  hugepages     not used by the harness (regions are ordinary shared mappings); (this machine's counts)
                    ran: grep -E '^HugePages_(Total|Free)' /proc/meminfo
              ...   clock         (measured; checked apart)
            node arm0 (root@127.0.0.1:PORT, roles nic, aarch64)
              ok    arch          uname -m: aarch64
                    ran: uname -m
              ok    role-binary   TMP/work/arm0/bin/naam-role is built for aarch64
                    ran: head -c 20 'TMP/work/arm0/bin/naam-role' 2>/dev/null | od -An -tx1
              ok    eswitch-mode  embedded (DPU) mode: the Arm side owns the eSwitch (pci/0000:03:00.0: mode switchdev inline-mode none encap-mode basic; pci/0000:03:00.1: mode switchdev inline-mode none encap-mode basic)
                    ran: command -v devlink >/dev/null || echo 'devlink: not installed'; for d in $(devlink dev show 2>/dev/null); do devlink dev eswitch show "$d" 2>&1; done
              ok    ovs           bridge ovsbr1 (en3f0pf0sf0, p0, pf0hpf), hw-offload true, OpenFlow listener ptcp:6653
                    ran: command -v ovs-vsctl >/dev/null || echo 'ovs-vsctl: not installed'; for b in $(ovs-vsctl list-br 2>/dev/null); do echo "bridge $b"; ovs-vsctl list-ports "$b" | sed 's/^/port /'; ovs-vsctl get-controller "$b" | sed 's/^/controller /'; done; echo "hw-offload $(ovs-vsctl get Open_vSwitch . other_config:hw-offload 2>&1)"
              ok    rdma          link mlx5_0/1 state ACTIVE physical_state LINK_UP netdev p0
                    ran: command -v rdma >/dev/null || echo 'rdma: not installed'; rdma link show 2>&1; ls /dev/infiniband 2>&1 | sed 's/^/dev /'
              ok    rdma-link     192.168.200.2 on enp3s0f0s0 (RDMA device mlx5_2/1; its RoCE v2 GID carries the link to 192.168.200.1)
                    ran: ip -br addr show to '192.168.200.2/32' 2>&1 | sed 's/^/addr /'; rdma link show 2>&1 | sed 's/^/rdma /'
              ...   clock         (measured; checked apart)
            node client0 (root@127.0.0.1:PORT, roles client, x86_64)
              ok    arch          uname -m: x86_64
                    ran: uname -m
              info  role-binary   TMP/work/client0/bin/naam-role is not deployed yet (`naam deploy` uploads it, or builds it there for another architecture)
                    ran: head -c 20 'TMP/work/client0/bin/naam-role' 2>/dev/null | od -An -tx1
              ...   clock         (measured; checked apart)
            summary: 0 failed (clock findings aside)"#]],
    );
}

#[test]
fn a_misconfigured_card_fails_with_the_commands_that_fix_it() {
    let lab = lab(BF2_BROKEN, &[]);
    let mut runner = SshRunner::new(ConnectOptions::default());
    let report = examine(&lab.inventory, &mut runner);
    assert!(!report.passed());
    clocks_measured(&report);
    let arm = &report.nodes[1];
    let failed: Vec<&str> = arm
        .findings
        .iter()
        .filter(|(_, f)| f.severity == Severity::Fail)
        .map(|(_, f)| f.check)
        .collect();
    assert_eq!(failed, ["eswitch-mode", "ovs", "rdma", "rdma-link"]);
    check(
        &report,
        &lab,
        expect![[r#"
            node host0 (root@127.0.0.1:PORT, roles host, x86_64)
              ok    arch          uname -m: x86_64
                    ran: uname -m
              info  role-binary   TMP/work/host0/bin/naam-role is not deployed yet (`naam deploy` uploads it, or builds it there for another architecture)
                    ran: head -c 20 'TMP/work/host0/bin/naam-role' 2>/dev/null | od -An -tx1
              FAIL  rdma          no RDMA device: the NIC role reaches host memory with one-sided RDMA READs
                    ran: command -v rdma >/dev/null || echo 'rdma: not installed'; rdma link show 2>&1; ls /dev/infiniband 2>&1 | sed 's/^/dev /'
                    fix: sudo modprobe mlx5_ib ib_uverbs
                    fix: ibv_devices   # lists the devices once the drivers are loaded
                    fix: ls /dev/infiniband   # uverbs devices must exist
              FAIL  rdma-link     the RDMA link's host address 192.168.200.1 is not configured here (its peer: 192.168.200.2)
                    ran: ip -br addr show to '192.168.200.1/32' 2>&1 | sed 's/^/addr /'; rdma link show 2>&1 | sed 's/^/rdma /'
                    fix: sudo ip addr add 192.168.200.1/24 dev <the card's PF netdev, e.g. ens1f0np0>   # the PF whose representor (pf0hpf) is the bridge's host port
                    fix: sudo ip link set <the card's PF netdev, e.g. ens1f0np0> up
                    fix: ping -c 1 192.168.200.2   # once the controller has installed the bridge's flows (a run)
              WARN  tmfifo        tmfifo_net0 (rshim) is not up with an address: Device "tmfifo_net0" does not exist.
                    ran: ip -br addr show tmfifo_net0 2>&1
                    fix: sudo systemctl start rshim
                    fix: sudo ip addr add 192.168.100.1/24 dev tmfifo_net0 && sudo ip link set tmfifo_net0 up
              info  hugepages     not used by the harness (regions are ordinary shared mappings); (this machine's counts)
                    ran: grep -E '^HugePages_(Total|Free)' /proc/meminfo
              ...   clock         (measured; checked apart)
            node arm0 (root@127.0.0.1:PORT, roles nic, aarch64)
              ok    arch          uname -m: aarch64
                    ran: uname -m
              ok    role-binary   TMP/work/arm0/bin/naam-role is built for aarch64
                    ran: head -c 20 'TMP/work/arm0/bin/naam-role' 2>/dev/null | od -An -tx1
              FAIL  eswitch-mode  the eSwitch is in legacy mode (pci/0000:03:00.0: mode legacy inline-mode none encap-mode basic): flows cannot be offloaded
                    ran: command -v devlink >/dev/null || echo 'devlink: not installed'; for d in $(devlink dev show 2>/dev/null); do devlink dev eswitch show "$d" 2>&1; done
                    fix: sudo devlink dev eswitch set pci/0000:03:00.0 mode switchdev
                    fix: if the card is in separated-host mode: sudo mlxconfig -d /dev/mst/mt41686_pciconf0 s INTERNAL_CPU_MODEL=1, then power-cycle the server
              FAIL  ovs           hw-offload is "ovs-vsctl: no key \"hw-offload\" in Open_vSwitch record \".\" column other_config", not true: flows stay in software on the Arm cores; bridge ovsbr1 has no OpenFlow listener for the host's controller (controllers: []); bridge ovsbr1 has no port for the Arm's own traffic (an SF such as en3f0pf0sf0)
                    ran: command -v ovs-vsctl >/dev/null || echo 'ovs-vsctl: not installed'; for b in $(ovs-vsctl list-br 2>/dev/null); do echo "bridge $b"; ovs-vsctl list-ports "$b" | sed 's/^/port /'; ovs-vsctl get-controller "$b" | sed 's/^/controller /'; done; echo "hw-offload $(ovs-vsctl get Open_vSwitch . other_config:hw-offload 2>&1)"
                    fix: sudo ovs-vsctl set Open_vSwitch . other_config:hw-offload=true
                    fix: sudo systemctl restart openvswitch-switch
                    fix: sudo ovs-vsctl set-controller ovsbr1 ptcp:6653
                    fix: sudo ovs-vsctl add-port ovsbr1 en3f0pf0sf0
              FAIL  rdma          no RDMA port is ACTIVE: link mlx5_0/1 state DOWN physical_state DISABLED netdev p0
                    ran: command -v rdma >/dev/null || echo 'rdma: not installed'; rdma link show 2>&1; ls /dev/infiniband 2>&1 | sed 's/^/dev /'
                    fix: sudo ip link set p0 up
                    fix: check the cable and the switch port; rdma link show
              FAIL  rdma-link     192.168.200.2 is on naam-arm, which is no RDMA device's netdev (rdma link show): RoCE cannot send from it (an OVS internal port has no RDMA device)
                    ran: ip -br addr show to '192.168.200.2/32' 2>&1 | sed 's/^/addr /'; rdma link show 2>&1 | sed 's/^/rdma /'
                    fix: sudo ip addr del 192.168.200.2/24 dev naam-arm
                    fix: sudo ip addr add 192.168.200.2/24 dev enp3s0f0s0   # the SF whose representor (en3f0pf0sf0) is the bridge's NIC port
                    fix: sudo ip link set enp3s0f0s0 up
                    fix: ping -c 1 192.168.200.1   # once the controller has installed the bridge's flows (a run)
              ...   clock         (measured; checked apart)
            node client0 (root@127.0.0.1:PORT, roles client, x86_64)
              ok    arch          uname -m: x86_64
                    ran: uname -m
              info  role-binary   TMP/work/client0/bin/naam-role is not deployed yet (`naam deploy` uploads it, or builds it there for another architecture)
                    ran: head -c 20 'TMP/work/client0/bin/naam-role' 2>/dev/null | od -An -tx1
              ...   clock         (measured; checked apart)
            summary: 6 failed (clock findings aside)"#]],
    );
}

#[test]
fn a_dry_run_lists_every_remote_command_without_connecting() {
    let lab = lab(&[], &[]);
    let mut runner = DryRunner::default();
    let report = examine(&lab.inventory, &mut runner);
    assert_eq!(report.count(Severity::NotRun), runner.recorded.len());
    let listing: String = runner
        .recorded
        .iter()
        .map(|(node, command)| format!("{node}: {command}\n"))
        .collect::<String>()
        .replace(&lab.dir.path().display().to_string(), "TMP");
    expect![[r#"
        host0: uname -m
        host0: head -c 20 'TMP/work/host0/bin/naam-role' 2>/dev/null | od -An -tx1
        host0: command -v rdma >/dev/null || echo 'rdma: not installed'; rdma link show 2>&1; ls /dev/infiniband 2>&1 | sed 's/^/dev /'
        host0: ip -br addr show to '192.168.200.1/32' 2>&1 | sed 's/^/addr /'; rdma link show 2>&1 | sed 's/^/rdma /'
        host0: ip -br addr show tmfifo_net0 2>&1
        host0: grep -E '^HugePages_(Total|Free)' /proc/meminfo
        host0: while IFS= read -r _; do date +%s%N; done   (16 timed exchanges)
        arm0: uname -m
        arm0: head -c 20 'TMP/work/arm0/bin/naam-role' 2>/dev/null | od -An -tx1
        arm0: command -v devlink >/dev/null || echo 'devlink: not installed'; for d in $(devlink dev show 2>/dev/null); do devlink dev eswitch show "$d" 2>&1; done
        arm0: command -v ovs-vsctl >/dev/null || echo 'ovs-vsctl: not installed'; for b in $(ovs-vsctl list-br 2>/dev/null); do echo "bridge $b"; ovs-vsctl list-ports "$b" | sed 's/^/port /'; ovs-vsctl get-controller "$b" | sed 's/^/controller /'; done; echo "hw-offload $(ovs-vsctl get Open_vSwitch . other_config:hw-offload 2>&1)"
        arm0: command -v rdma >/dev/null || echo 'rdma: not installed'; rdma link show 2>&1; ls /dev/infiniband 2>&1 | sed 's/^/dev /'
        arm0: ip -br addr show to '192.168.200.2/32' 2>&1 | sed 's/^/addr /'; rdma link show 2>&1 | sed 's/^/rdma /'
        arm0: while IFS= read -r _; do date +%s%N; done   (16 timed exchanges)
        client0: uname -m
        client0: head -c 20 'TMP/work/client0/bin/naam-role' 2>/dev/null | od -An -tx1
        client0: while IFS= read -r _; do date +%s%N; done   (16 timed exchanges)
    "#]]
    .assert_eq(&listing);
}
