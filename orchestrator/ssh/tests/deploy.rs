//! Deployment over SFTP to real sshd machines: idempotence by SHA-256, atomic placement, the
//! architecture check, and the source-bundle path (a tiny real crate built on the target).

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use expect_test::expect;
use naam_ssh::deploy::{
    Artifact, ArtifactKind, ArtifactSet, BuildRecipe, DeployError, DeployStep, ROLE_BINARY_REMOTE,
    deploy_all, deploy_host, make_source_bundle, plan_host, sha256_file,
};
use naam_ssh::ssh::{ConnectOptions, Connection, connect_all};
use naam_ssh::{Arch, RemoteCommand, ShellLine};
use support::{Testbed, run_ok, seed};

/// Bytes of the pseudo-random artifact (crosses several SFTP chunks).
const ARTIFACT_BYTES: usize = 300_000;

/// Deterministic bytes from a seed (xorshift64*).
fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn artifacts(dir: &Path, seed: u64) -> ArtifactSet {
    let binary = dir.join("naam-role");
    fs::copy("/bin/true", &binary).unwrap();
    let object = dir.join("mica_get.o");
    fs::write(&object, seeded_bytes(seed, ARTIFACT_BYTES)).unwrap();
    let config = dir.join("quick.toml");
    fs::write(&config, "duration_ms = 1000\n").unwrap();
    let mut set = ArtifactSet::default();
    set.role_binaries.insert(Arch::local().unwrap(), binary);
    set.files = vec![
        Artifact {
            local_path: object,
            remote_path: "functions/mica_get.o".into(),
            mode: 0o644,
            kind: ArtifactKind::FunctionObject,
        },
        Artifact {
            local_path: config,
            remote_path: "config/quick.toml".into(),
            mode: 0o600,
            kind: ArtifactKind::Config,
        },
    ];
    set
}

fn connections(testbed: &Testbed) -> Vec<Connection> {
    connect_all(&testbed.inventory().hosts, &ConnectOptions::default())
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

fn uploaded(
    reports: &[Result<naam_ssh::deploy::HostDeployReport, DeployError>],
) -> Vec<(String, usize)> {
    reports
        .iter()
        .map(|r| r.as_ref().unwrap())
        .map(|r| (r.host.clone(), r.uploaded_count()))
        .collect()
}

#[test]
fn a_second_deploy_uploads_nothing_and_a_changed_file_alone_is_sent() {
    let seed = seed();
    let testbed = Testbed::start();
    let set = artifacts(testbed.dir.path(), seed);
    let mut connections = connections(&testbed);
    let first = deploy_all(&mut connections, &set);
    assert_eq!(
        uploaded(&first),
        vec![
            ("host0".into(), 3),
            ("nic0".into(), 3),
            ("client0".into(), 3)
        ]
    );
    for (name, _) in support::NODES {
        let work = testbed.workdir(name);
        assert_eq!(
            sha256_file(&work.join("functions/mica_get.o")).unwrap(),
            sha256_file(&set.files[0].local_path).unwrap()
        );
        let mode = fs::metadata(work.join(ROLE_BINARY_REMOTE))
            .unwrap()
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o755,
            "{name}"
        );
        let leftovers = run_ok("find", &[work.to_str().unwrap(), "-name", "*.naam-upload"]);
        assert_eq!(leftovers, "", "temporary upload files left behind");
    }
    let second = deploy_all(&mut connections, &set);
    assert_eq!(
        uploaded(&second),
        vec![
            ("host0".into(), 0),
            ("nic0".into(), 0),
            ("client0".into(), 0)
        ]
    );
    fs::write(&set.files[1].local_path, "duration_ms = 2000\n").unwrap();
    let third = deploy_all(&mut connections, &set);
    let sent: Vec<String> = third[0]
        .as_ref()
        .unwrap()
        .files
        .iter()
        .filter(|f| !f.skipped)
        .map(|f| f.remote_path.clone())
        .collect();
    assert_eq!(sent, vec!["config/quick.toml"]);
    assert_eq!(
        fs::read_to_string(testbed.workdir("nic0").join("config/quick.toml")).unwrap(),
        "duration_ms = 2000\n"
    );
}

#[test]
fn a_remote_file_corrupted_after_deploy_is_replaced() {
    let testbed = Testbed::start();
    let set = artifacts(testbed.dir.path(), seed());
    let mut connection = connections(&testbed).remove(0);
    deploy_host(&mut connection, &set).unwrap();
    let remote = testbed.workdir("host0").join("functions/mica_get.o");
    fs::write(&remote, b"truncated").unwrap();
    let report = deploy_host(&mut connection, &set).unwrap();
    assert_eq!(report.uploaded_count(), 1);
    assert_eq!(
        sha256_file(&remote).unwrap(),
        sha256_file(&set.files[0].local_path).unwrap()
    );
}

#[test]
fn an_inventory_arch_that_uname_contradicts_is_refused() {
    let testbed = Testbed::start();
    let mut host = testbed.inventory().host("nic0").unwrap().clone();
    host.arch = if Arch::local() == Some(Arch::Aarch64) {
        Arch::X86_64
    } else {
        Arch::Aarch64
    };
    let mut connection = Connection::open(&host, &ConnectOptions::default()).unwrap();
    let err = deploy_host(&mut connection, &artifacts(testbed.dir.path(), seed())).unwrap_err();
    assert!(matches!(err, DeployError::ArchMismatch { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("`uname -m` says \"{}\"", std::env::consts::ARCH)),
        "{err}"
    );
}

#[test]
fn a_foreign_arch_gets_the_source_bundle_and_the_build_commands() {
    let testbed = Testbed::start();
    let mut set = artifacts(testbed.dir.path(), seed());
    set.role_binaries = [(Arch::X86_64, PathBuf::from("/build/x86_64/naam-role"))].into();
    let bundle = testbed.dir.path().join("naam-src.tar.gz");
    fs::write(&bundle, b"bundle").unwrap();
    set.source_bundle = Some(bundle);
    let mut card = testbed.inventory().host("nic0").unwrap().clone();
    card.arch = Arch::Aarch64;
    let plan = plan_host(&card, Arch::Aarch64, &set).unwrap();
    let rendered: Vec<String> = plan
        .steps
        .iter()
        .map(|step| match step {
            DeployStep::CheckArch { expected } => format!("check {expected}"),
            DeployStep::Upload {
                remote_path, kind, ..
            } => format!("upload {kind:?} {remote_path}"),
            DeployStep::Build { commands, .. } => commands
                .iter()
                .map(|c| format!("run {c}"))
                .collect::<Vec<_>>()
                .join("\n"),
        })
        .collect();
    expect![[r#"
        check aarch64
        upload SourceBundle bundles/naam-src.tar.gz
        run 'rm' '-rf' 'src/naam'
        run 'mkdir' '-p' 'src/naam'
        run 'tar' '-xzf' 'bundles/naam-src.tar.gz' '-C' 'src/naam'
        run 'cargo' 'build' '--release' '--locked' '--manifest-path' 'src/naam/Cargo.toml' '-p' 'naam-roles' '--bin' 'naam-role'
        run 'install' '-D' '-m' '755' 'src/naam/target/release/naam-role' 'bin/naam-role'
        upload FunctionObject functions/mica_get.o
        upload Config config/quick.toml"#]]
    .assert_eq(&rendered.join("\n"));
    set.source_bundle = None;
    assert!(matches!(
        plan_host(&card, Arch::Aarch64, &set),
        Err(DeployError::NoBinaryForArch { .. })
    ));
}

/// A dependency-free crate in a fresh git repository, standing in for the workspace.
fn tiny_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    fs::create_dir_all(repo.join("src")).unwrap();
    fs::write(
        repo.join("Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::write(
        repo.join("src/main.rs"),
        "fn main() { println!(\"hello from the bundle\"); }\n",
    )
    .unwrap();
    let r = repo.to_str().unwrap();
    run_ok(
        "cargo",
        &[
            "generate-lockfile",
            "--offline",
            "--manifest-path",
            &format!("{r}/Cargo.toml"),
        ],
    );
    run_ok("git", &["-C", r, "init", "-q"]);
    run_ok("git", &["-C", r, "add", "."]);
    run_ok(
        "git",
        &[
            "-C",
            r,
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "-m",
            "tiny",
        ],
    );
    repo
}

#[test]
fn a_source_bundle_is_built_on_the_target_once() {
    let testbed = Testbed::start();
    let repo = tiny_repo(testbed.dir.path());
    let bundle = make_source_bundle(&repo, &testbed.dir.path().join("bundle.tar.gz")).unwrap();
    assert_eq!(
        bundle.commit,
        run_ok("git", &["-C", repo.to_str().unwrap(), "rev-parse", "HEAD"]).trim()
    );
    assert!(!bundle.dirty);
    let set = ArtifactSet {
        source_bundle: Some(bundle.path.clone()),
        build: BuildRecipe {
            package: "hello".into(),
            bin: "hello".into(),
        },
        ..ArtifactSet::default()
    };
    let mut connection = connections(&testbed).remove(0);
    let first = deploy_host(&mut connection, &set).unwrap();
    assert!(first.built);
    let binary = testbed.workdir("host0").join(ROLE_BINARY_REMOTE);
    let run = RemoteCommand::new(binary.to_str().unwrap()).unwrap();
    assert_eq!(
        connection
            .run_checked(&ShellLine::from(&run), 10_000)
            .unwrap()
            .stdout_text(),
        "hello from the bundle\n"
    );
    let second = deploy_host(&mut connection, &set).unwrap();
    assert!(!second.built, "the stamp names the same bundle: no rebuild");
    assert_eq!(second.uploaded_count(), 0);
}

#[test]
fn a_dirty_work_tree_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let repo = tiny_repo(dir.path());
    fs::write(repo.join("src/main.rs"), "fn main() {}\n").unwrap();
    let bundle = make_source_bundle(&repo, &dir.path().join("b.tar.gz")).unwrap();
    assert!(
        bundle.dirty,
        "uncommitted changes are not in the bundle, and the caller is told"
    );
    let err = make_source_bundle(dir.path(), &dir.path().join("c.tar.gz")).unwrap_err();
    assert!(matches!(err, DeployError::Git { .. }), "{err}");
}
