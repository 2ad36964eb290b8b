//! Hosts files: parsing, validation errors that name file, line and field, and round trips.

use std::path::Path;

use expect_test::{Expect, expect};
use naam_ssh::{Arch, Inventory, Role};

const GOOD: &str = r#"
[defaults]
user = "alice"
identity_file = "/keys/id_ed25519"
known_hosts = "known_hosts"

[[host]]
name = "host0"
ssh_host = "hp042.clemson.cloudlab.us"
roles = ["host"]
arch = "x86_64"
lan_address = "10.10.1.1"
cores = 64

[[host]]
name = "bf2-0"
ssh_host = "192.168.100.2"
port = 2222
user = "ubuntu"
roles = ["nic"]
arch = "aarch64"
lan_address = "10.10.1.11"
cores = 8
workdir = "/opt/naam/"

[[host]]
name = "client0"
ssh_host = "hp107.clemson.cloudlab.us"
roles = ["client", "host"]
arch = "amd64"
lan_address = "fd00::2"
cores = 16
"#;

fn parse(text: &str) -> Result<Inventory, String> {
    Inventory::parse(text, "hosts.toml", Path::new("/etc/naam")).map_err(|e| e.to_string())
}

#[test]
fn a_good_hosts_file_is_read_with_defaults_and_resolved_paths() {
    let inventory = parse(GOOD).unwrap();
    assert_eq!(inventory.hosts.len(), 3);
    let host = &inventory.hosts[0];
    assert_eq!(
        (
            host.port,
            host.user.as_str(),
            host.workdir.as_str(),
            host.line
        ),
        (22, "alice", "naam", 7)
    );
    assert_eq!(host.known_hosts, Path::new("/etc/naam/known_hosts"));
    let card = inventory.host("bf2-0").unwrap();
    assert_eq!(
        (
            card.port,
            card.user.as_str(),
            card.arch,
            card.workdir.as_str()
        ),
        (2222, "ubuntu", Arch::Aarch64, "/opt/naam")
    );
    let client = inventory.host("client0").unwrap();
    assert_eq!(
        client.roles,
        vec![Role::Host, Role::Client],
        "sorted in start order"
    );
    assert_eq!(client.arch, Arch::X86_64);
    assert_eq!(
        inventory
            .hosts_with_role(Role::Host)
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>(),
        vec!["host0", "client0"]
    );
}

#[test]
fn an_inventory_round_trips_through_toml() {
    let inventory = parse(GOOD).unwrap();
    let again = Inventory::parse(
        &inventory.to_toml().unwrap(),
        "hosts.toml",
        Path::new("/elsewhere"),
    )
    .unwrap();
    let strip = |inv: &Inventory| {
        inv.hosts
            .iter()
            .map(|h| naam_ssh::HostSpec {
                line: 0,
                ..h.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&again), strip(&inventory));
}

fn check_error(edit: (&str, &str), expected: Expect) {
    assert!(GOOD.contains(edit.0), "fixture lacks {:?}", edit.0);
    let text = GOOD.replacen(edit.0, edit.1, 1);
    expected.assert_eq(&parse(&text).unwrap_err());
}

#[test]
fn errors_name_file_line_and_field() {
    check_error(
        ("cores = 64", "cores = 0"),
        expect![[r#"hosts.toml:13: field `cores` = "0": expected 1..=1024"#]],
    );
    check_error(
        ("cores = 64", "cores = \"many\""),
        expect![[r#"
        hosts.toml:13:9: invalid type: string "many", expected i64"#]],
    );
    check_error(
        ("port = 2222", "port = 70000"),
        expect![[r#"hosts.toml:18: field `port` = "70000": expected 1..=65535"#]],
    );
    check_error(
        ("roles = [\"nic\"]", "roles = [\"gpu\"]"),
        expect![[r#"hosts.toml:20: field `roles` = "gpu": expected one of client, host, nic"#]],
    );
    check_error(
        ("roles = [\"nic\"]", "roles = []"),
        expect![[r#"hosts.toml:20: field `roles` = "[]": a host needs at least one role"#]],
    );
    check_error(
        ("roles = [\"nic\"]", "roles = [\"nic\", \"nic\"]"),
        expect![[r#"hosts.toml:20: field `roles` = "nic": listed twice"#]],
    );
    check_error(
        ("arch = \"aarch64\"", "arch = \"riscv64\""),
        expect![[r#"hosts.toml:21: field `arch` = "riscv64": expected x86_64 or aarch64"#]],
    );
    check_error(
        ("lan_address = \"10.10.1.11\"", "lan_address = \"10.10.1\""),
        expect![[
            r#"hosts.toml:22: field `lan_address` = "10.10.1": not an IP address (invalid IP address syntax)"#
        ]],
    );
    check_error(
        (
            "lan_address = \"10.10.1.11\"",
            "lan_address = \"10.10.1.1\"",
        ),
        expect![[r#"hosts.toml:22: field `lan_address` = "10.10.1.1" is already used at line 12"#]],
    );
    check_error(
        ("name = \"bf2-0\"", "name = \"host0\""),
        expect![[r#"hosts.toml:16: field `name` = "host0" is already used at line 8"#]],
    );
    check_error(
        ("name = \"bf2-0\"", "name = \"bf2 0\""),
        expect![[
            r#"hosts.toml:16: field `name` = "bf2 0": expected [A-Za-z0-9][A-Za-z0-9._-]*, at most 63 bytes"#
        ]],
    );
    check_error(
        (
            "ssh_host = \"192.168.100.2\"",
            "ssh_host = \"-oProxyCommand=x\"",
        ),
        expect![[
            r#"hosts.toml:17: field `ssh_host` = "-oProxyCommand=x": expected a DNS name or IP address"#
        ]],
    );
    check_error(
        ("cores = 8\n", ""),
        expect![["hosts.toml:15: host bf2-0: missing field `cores`"]],
    );
    check_error(
        ("user = \"alice\"\n", ""),
        expect![["hosts.toml:6: host host0: missing field `user`"]],
    );
    check_error(
        ("workdir = \"/opt/naam/\"", "workdir = \"../up\""),
        expect![[
            r#"hosts.toml:24: field `workdir` = "../up": expected a non-empty path without `..`"#
        ]],
    );
    check_error(
        ("cores = 8", "cores = 8\ncolor = \"blue\""),
        expect![
            "hosts.toml:24:1: unknown field `color`, expected one of `name`, `ssh_host`, `port`, `user`, `identity_file`, `known_hosts`, `roles`, `arch`, `lan_address`, `cores`, `workdir`, `bluefield`"
        ],
    );
    check_error(
        (
            "[[host]]\nname = \"client0\"",
            "[[host]\nname = \"client0\"",
        ),
        expect!["hosts.toml:26:8: unclosed array table, expected `]`"],
    );
}

#[test]
fn empty_and_unreadable_files_are_reported() {
    assert_eq!(
        parse("").unwrap_err(),
        "hosts.toml: no [[host]] tables: an inventory needs at least one host"
    );
    let err = Inventory::load(Path::new("/nonexistent/hosts.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/nonexistent/hosts.toml: cannot read the hosts file"),
        "{err}"
    );
}

#[test]
fn missing_key_files_are_named_with_their_host() {
    let inventory = parse(GOOD).unwrap();
    let err = inventory.check_local_files().unwrap_err().to_string();
    assert_eq!(
        err,
        "hosts.toml:7: host host0: `identity_file` names /keys/id_ed25519, which does not exist"
    );
}

/// `GOOD` with `table` under the BlueField-2 node (issue 14).
fn with_bluefield(table: &str) -> String {
    let anchor = "workdir = \"/opt/naam/\"\n";
    assert!(GOOD.contains(anchor));
    GOOD.replacen(anchor, &format!("{anchor}[host.bluefield]\n{table}"), 1)
}

#[test]
fn issue_14_a_bluefield_table_overrides_the_link_and_bridge_defaults() {
    let text = with_bluefield("openflow_port = 6654\nnic_port = 4\n");
    let inventory = parse(&text).unwrap();
    let card = inventory.host("bf2-0").unwrap();
    assert_eq!(
        card.bluefield,
        Some(naam_ssh::Bluefield {
            openflow_port: 6654,
            nic_port: 4,
            ..naam_ssh::Bluefield::default()
        })
    );
    let defaults = naam_ssh::Bluefield::default();
    assert_eq!(
        (
            defaults.host_control_address.to_string(),
            defaults.control_address.to_string(),
            defaults.openflow_port,
            [defaults.uplink_port, defaults.host_port, defaults.nic_port]
        ),
        (
            "192.168.100.1".into(),
            "192.168.100.2".into(),
            6653,
            [1, 2, 3]
        ),
        "BlueField's rshim defaults and the guide's bridge"
    );
    assert_eq!(inventory.host("host0").unwrap().bluefield, None);
    let again = Inventory::parse(&inventory.to_toml().unwrap(), "again", Path::new("/")).unwrap();
    assert_eq!(again.host("bf2-0").unwrap().bluefield, card.bluefield);
}

#[test]
fn issue_14_bluefield_errors_name_file_line_and_field() {
    let check = |table: &str, expected: Expect| {
        expected.assert_eq(&parse(&with_bluefield(table)).unwrap_err());
    };
    check(
        "control_address = \"192.168.100\"\n",
        expect![[
            r#"hosts.toml:26: field `bluefield.control_address` = "192.168.100": not an IP address (invalid IP address syntax)"#
        ]],
    );
    check(
        "openflow_port = 0\n",
        expect![[r#"hosts.toml:26: field `bluefield.openflow_port` = "0": expected 1..=65535"#]],
    );
    check(
        "uplink_port = -1\n",
        expect![[
            r#"hosts.toml:26: field `bluefield.uplink_port` = "-1": expected 1..=4294967040"#
        ]],
    );
    check(
        "nic_port = 1\n",
        expect![[
            r#"hosts.toml:25: field `bluefield.uplink_port/host_port/nic_port` = "1 / 2 / 1": the bridge's three ports must be distinct"#
        ]],
    );
    check(
        "host_control_address = \"192.168.100.2\"\n",
        expect![[
            r#"hosts.toml:25: field `bluefield.control_address/host_control_address` = "192.168.100.2 / 192.168.100.2": the link's two ends must be distinct, specific addresses of one family"#
        ]],
    );
    check(
        "bridge = \"br0\"\n",
        expect![
            "hosts.toml:26:1: unknown field `bridge`, expected one of `control_address`, `host_control_address`, `openflow_port`, `uplink_port`, `host_port`, `nic_port`, `rdma_address`, `host_rdma_address`"
        ],
    );
}

/// The host–Arm RDMA link's addresses: defaults, overrides, and errors naming file, line and
/// field (issue 14).
#[test]
fn issue_14_the_rdma_link_is_read_from_the_bluefield_table() {
    let defaults = naam_ssh::Bluefield::default();
    assert_eq!(
        (
            defaults.host_rdma_address.to_string(),
            defaults.rdma_address.to_string()
        ),
        ("192.168.200.1".into(), "192.168.200.2".into())
    );
    let text = with_bluefield("rdma_address = \"10.99.0.2\"\nhost_rdma_address = \"10.99.0.1\"\n");
    let inventory = parse(&text).unwrap();
    let card = inventory.host("bf2-0").unwrap().bluefield.unwrap();
    assert_eq!(
        (
            card.rdma_address.to_string(),
            card.host_rdma_address.to_string()
        ),
        ("10.99.0.2".into(), "10.99.0.1".into())
    );
    let again = Inventory::parse(&inventory.to_toml().unwrap(), "again", Path::new("/")).unwrap();
    assert_eq!(again.host("bf2-0").unwrap().bluefield, Some(card));
    let check = |table: &str, expected: Expect| {
        expected.assert_eq(&parse(&with_bluefield(table)).unwrap_err());
    };
    check(
        "rdma_address = \"fd00::2\"\n",
        expect![[
            r#"hosts.toml:26: field `bluefield.rdma_address` = "fd00::2": the RDMA link is IPv4 (RoCEv2 over IPv4: the bridge's flows match IPv4 and ARP)"#
        ]],
    );
    check(
        "host_rdma_address = \"192.168.200\"\n",
        expect![[
            r#"hosts.toml:26: field `bluefield.host_rdma_address` = "192.168.200": not an IP address (invalid IP address syntax)"#
        ]],
    );
    check(
        "host_rdma_address = \"192.168.200.2\"\n",
        expect![[
            r#"hosts.toml:25: field `bluefield.rdma_address/host_rdma_address` = "192.168.200.2 / 192.168.200.2": the RDMA link's two ends must be distinct, specific addresses"#
        ]],
    );
    check(
        "rdma_address = \"192.168.100.7\"\n",
        expect![[
            r#"hosts.toml:25: field `bluefield.rdma_address/host_rdma_address` = "192.168.100.7 / 192.168.200.1": 192.168.100.7 is in the host–NIC control link's /24 (192.168.100.2 / 192.168.100.1): the RDMA link needs a prefix of its own (rshim's link carries no RDMA)"#
        ]],
    );
}
