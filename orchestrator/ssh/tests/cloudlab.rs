//! The CloudLab manifest importer, over a hand-written GENI RSpec v3 manifest fixture.

use std::path::PathBuf;

use expect_test::expect;
use naam_ssh::cloudlab::{
    BlueFieldArm, CloudLabError, ImportOptions, import_manifest, parse_manifest,
};
use naam_ssh::{Arch, Role};

const MANIFEST: &str = include_str!("fixtures/cloudlab-manifest.xml");

fn options() -> ImportOptions {
    ImportOptions::new(
        PathBuf::from("/keys/id_ed25519"),
        PathBuf::from("/keys/known_hosts"),
        16,
    )
}

#[test]
fn manifest_becomes_an_inventory() {
    let mut options = options();
    options.user = Some("bob".into());
    options.cores.insert("host".into(), 64);
    let inventory = import_manifest(MANIFEST, &options).unwrap();
    expect![[r#"
        [[host]]
        name = "host"
        ssh_host = "clnode241.clemson.cloudlab.us"
        port = 22
        user = "bob"
        identity_file = "/keys/id_ed25519"
        known_hosts = "/keys/known_hosts"
        roles = ["host"]
        arch = "x86_64"
        lan_address = "10.10.1.1"
        cores = 64
        workdir = "naam"

        [[host]]
        name = "client0"
        ssh_host = "clnode107.clemson.cloudlab.us"
        port = 22
        user = "bob"
        identity_file = "/keys/id_ed25519"
        known_hosts = "/keys/known_hosts"
        roles = ["client"]
        arch = "x86_64"
        lan_address = "10.10.1.2"
        cores = 16
        workdir = "naam"

        [[host]]
        name = "client1"
        ssh_host = "clnode108.clemson.cloudlab.us"
        port = 22
        user = "bob"
        identity_file = "/keys/id_ed25519"
        known_hosts = "/keys/known_hosts"
        roles = ["client"]
        arch = "x86_64"
        lan_address = "10.10.1.3"
        cores = 16
        workdir = "naam"
    "#]]
    .assert_eq(&inventory.to_toml().unwrap());
}

#[test]
fn nodes_carry_hardware_type_logins_and_lines() {
    let nodes = parse_manifest(MANIFEST).unwrap();
    let names: Vec<(&str, usize, Option<&str>, usize)> = nodes
        .iter()
        .map(|n| {
            (
                n.client_id.as_str(),
                n.line,
                n.hardware_type.as_deref(),
                n.logins.len(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("host", 11, Some("r7525"), 2),
            ("client0", 30, Some("r7525"), 2),
            ("client1", 47, Some("r7525"), 2)
        ]
    );
}

#[test]
fn role_and_arch_overrides_apply() {
    let mut options = options();
    options.roles.insert("client1".into(), vec![Role::Nic]);
    options.arch.insert("client1".into(), Arch::Aarch64);
    let inventory = import_manifest(MANIFEST, &options).unwrap();
    let card = inventory.host("client1").unwrap();
    assert_eq!(
        (card.roles.as_slice(), card.arch, card.user.as_str()),
        (&[Role::Nic][..], Arch::Aarch64, "alice")
    );
}

/// Issue 14: the r7525 host's BlueField-2 Arm side becomes its own SSH target with the NIC role
/// (a forwarded port of its host, aarch64, 8 cores, a LAN address of its own); clients get none.
#[test]
fn issue_14_a_bluefield_hosts_arm_side_becomes_its_own_node() {
    let mut options = options();
    options.bluefield_arm = Some(BlueFieldArm::default());
    let inventory = import_manifest(MANIFEST, &options).unwrap();
    let names: Vec<&str> = inventory.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["host", "host-bf2", "client0", "client1"]);
    let (host, arm) = (
        inventory.host("host").unwrap(),
        inventory.host("host-bf2").unwrap(),
    );
    assert_eq!(
        (arm.ssh_host.as_str(), arm.port, arm.user.as_str()),
        (host.ssh_host.as_str(), 2222, host.user.as_str())
    );
    assert_eq!(
        (arm.roles.as_slice(), arm.arch, arm.cores),
        (&[Role::Nic][..], Arch::Aarch64, 8)
    );
    assert_eq!(arm.lan_address.to_string(), "10.10.1.101");
}

fn import_error(xml: &str, options: &ImportOptions) -> String {
    import_manifest(xml, options).unwrap_err().to_string()
}

#[test]
fn bad_manifests_say_what_and_where() {
    let request = MANIFEST.replace("type=\"manifest\"", "type=\"request\"");
    expect![[r#"not a manifest RSpec: root element <rspec> with type=Some("request"); run `geni-get manifest` on a node of the running experiment"#]]
        .assert_eq(&import_error(&request, &options()));
    let no_login = MANIFEST.replacen(
        "<login authentication=\"ssh-keys\" hostname=\"clnode107",
        "<nologin hostname=\"clnode107",
        2,
    );
    expect!["manifest line 30: node client0 has no <login>"]
        .assert_eq(&import_error(&no_login, &options()));
    let mut carol = options();
    carol.user = Some("carol".into());
    expect![["manifest line 11: node host has no <login> for user carol"]]
        .assert_eq(&import_error(MANIFEST, &carol));
    let unknown = MANIFEST.replace("client_id=\"client1\"", "client_id=\"worker7\"");
    expect!["manifest line 47: cannot tell the role of node worker7 from its name; pass roles for it (e.g. worker7=host)"]
        .assert_eq(&import_error(&unknown, &options()));
    let bad_ip = MANIFEST.replace("10.10.1.3", "10.10.1.300");
    expect![[r#"manifest line 56: <ip address="10.10.1.300">: not an IP address"#]]
        .assert_eq(&import_error(&bad_ip, &options()));
    let truncated = &MANIFEST[..MANIFEST.len() / 2];
    assert!(matches!(
        import_manifest(truncated, &options()),
        Err(CloudLabError::Xml { .. } | CloudLabError::NoNodes)
    ));
    let mut stray = options();
    stray.cores.insert("host7".into(), 4);
    expect![[
        "an option names node host7, which is not in the manifest (nodes: host, client0, client1)"
    ]]
    .assert_eq(&import_error(MANIFEST, &stray));
    expect![["the manifest lists no <node> elements"]].assert_eq(&import_error(
        r#"<rspec type="manifest" xmlns="http://www.geni.net/resources/rspec/3"/>"#,
        &options(),
    ));
}

#[test]
fn profile_py_is_valid_python() {
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/../cloudlab/profile.py");
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])",
            profile,
        ])
        .output()
        .expect("python3 is installed by scripts/install-test-deps.sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
