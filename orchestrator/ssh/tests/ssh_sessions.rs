//! Connections against real OpenSSH servers: host-key checks, authentication, unreachable hosts,
//! quoting through a real remote shell, parallel sessions.

mod support;

use std::fs;

use naam_ssh::command::ShellLine;
use naam_ssh::limits::CONNECT_ATTEMPTS_MAX;
use naam_ssh::ssh::{ConnectOptions, Connection, SshError, connect_all};
use naam_ssh::{HostSpec, RemoteCommand};
use support::{Testbed, keygen};

fn host0(testbed: &Testbed) -> HostSpec {
    testbed.inventory().host("host0").unwrap().clone()
}

#[test]
fn unknown_host_key_is_refused_and_the_printed_command_accepts_it() {
    let testbed = Testbed::start();
    let mut host = host0(&testbed);
    host.known_hosts = testbed.dir.path().join("empty_known_hosts");
    let err = Connection::open(&host, &ConnectOptions::default()).unwrap_err();
    let SshError::UnknownHostKey {
        accept_command,
        fingerprint,
        ..
    } = &err
    else {
        panic!("expected UnknownHostKey, got {err}")
    };
    let message = err.to_string();
    assert!(message.contains("ssh-keyscan -p"), "{message}");
    assert!(
        message.contains(&host.known_hosts.display().to_string()),
        "{message}"
    );
    let expected_fingerprint = support::run_ok(
        "ssh-keygen",
        &[
            "-l",
            "-f",
            testbed.nodes[0]
                .dir
                .join("host_ed25519.pub")
                .to_str()
                .unwrap(),
        ],
    );
    assert!(
        expected_fingerprint.contains(fingerprint.as_str()),
        "{fingerprint} not in {expected_fingerprint}"
    );
    // Running exactly the advertised command makes the next connection succeed.
    support::run_ok("/bin/sh", &["-c", accept_command]);
    let mut connection = Connection::open(&host, &ConnectOptions::default()).expect("accepted key");
    let output = connection
        .run_checked(&ShellLine::new().op("echo accepted"), 10_000)
        .unwrap();
    assert_eq!(output.stdout_text(), "accepted\n");
}

#[test]
fn changed_host_key_is_refused_loudly() {
    let mut testbed = Testbed::start();
    let host = host0(&testbed);
    // The machine is "reinstalled": same address and port, new host key.
    let node = testbed.node("host0");
    node.kill();
    fs::remove_file(node.dir.join("host_ed25519")).unwrap();
    fs::remove_file(node.dir.join("host_ed25519.pub")).unwrap();
    keygen(&node.dir.join("host_ed25519"), "reinstalled");
    node.restart();
    let err = Connection::open(&host, &ConnectOptions::default()).unwrap_err();
    assert!(
        matches!(err, SshError::HostKeyChanged { .. }),
        "expected HostKeyChanged, got {err}"
    );
    let message = err.to_string();
    assert!(message.contains("HOST KEY CHANGED"), "{message}");
    assert!(message.contains("ssh-keygen -R '[127.0.0.1]:"), "{message}");
}

#[test]
fn wrong_client_key_is_rejected_without_retries_and_without_secrets() {
    let testbed = Testbed::start();
    let mut host = host0(&testbed);
    let other_key = testbed.dir.path().join("other_ed25519");
    keygen(&other_key, "not-authorized");
    host.identity_file = other_key.clone();
    let err = Connection::open(&host, &ConnectOptions::default()).unwrap_err();
    assert!(
        matches!(err, SshError::AuthRejected { .. }),
        "expected AuthRejected, got {err}"
    );
    let private_key = fs::read_to_string(&other_key).unwrap();
    let key_body = private_key.lines().nth(1).unwrap();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(
            !shown.contains(key_body),
            "the private key leaked into an error message"
        );
    }
    let sshd_log = fs::read_to_string(testbed.nodes[0].dir.join("sshd.log")).unwrap();
    let attempts = sshd_log.matches("Failed publickey for root").count();
    assert_eq!(
        attempts, 1,
        "a rejected key must not be retried; sshd log:\n{sshd_log}"
    );
}

#[test]
fn closed_port_is_unreachable_after_the_bounded_retries() {
    let mut testbed = Testbed::start();
    let host = host0(&testbed);
    testbed.node("host0").kill();
    let err = Connection::open(&host, &ConnectOptions::default()).unwrap_err();
    match &err {
        SshError::Unreachable { attempts, .. } => assert_eq!(*attempts, CONNECT_ATTEMPTS_MAX),
        other => panic!("expected Unreachable, got {other}"),
    }
    assert!(err.to_string().contains("unreachable after"), "{err}");
}

#[test]
fn missing_identity_file_is_named() {
    let testbed = Testbed::start();
    let mut host = host0(&testbed);
    host.identity_file = testbed.dir.path().join("no_such_key");
    let err = Connection::open(&host, &ConnectOptions::default()).unwrap_err();
    assert!(matches!(err, SshError::IdentityMissing { .. }), "{err}");
    assert!(err.to_string().contains("no_such_key"), "{err}");
}

#[test]
fn arguments_survive_the_real_remote_shell_byte_for_byte() {
    let testbed = Testbed::start();
    let mut connection = Connection::open(&host0(&testbed), &ConnectOptions::default()).unwrap();
    let nasty = [
        "plain",
        "",
        "two words",
        "it's",
        "\"dq\"",
        "$HOME",
        "`id`",
        "$(id)",
        "a\nb",
        "*",
        "; rm -rf /",
        "\\",
        "é",
    ];
    let command = RemoteCommand::new("printf")
        .unwrap()
        .arg("%s\\0")
        .unwrap()
        .args(nasty)
        .unwrap();
    let output = connection
        .run_checked(&ShellLine::from(&command), 10_000)
        .unwrap();
    let echoed: Vec<String> = output
        .stdout
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    assert_eq!(&echoed[..nasty.len()], &nasty[..]);
    assert_eq!(
        echoed.len(),
        nasty.len() + 1,
        "one trailing empty piece after the last NUL"
    );
}

#[test]
fn failing_command_reports_status_and_stderr() {
    let testbed = Testbed::start();
    let mut connection = Connection::open(&host0(&testbed), &ConnectOptions::default()).unwrap();
    let command = RemoteCommand::from_argv(["/bin/sh", "-c", "echo oops >&2; exit 7"]).unwrap();
    let err = connection
        .run_checked(&ShellLine::from(&command), 10_000)
        .unwrap_err();
    match err {
        SshError::CommandFailed { status, stderr, .. } => {
            assert_eq!(status, 7);
            assert_eq!(stderr, "oops\n");
        }
        other => panic!("expected CommandFailed, got {other}"),
    }
}

#[test]
fn every_host_gets_its_own_session_in_parallel() {
    let testbed = Testbed::start();
    let inventory = testbed.inventory();
    let results = connect_all(&inventory.hosts, &ConnectOptions::default());
    assert_eq!(results.len(), 3);
    for (result, host) in results.into_iter().zip(&inventory.hosts) {
        let mut connection = result.unwrap_or_else(|e| panic!("{}: {e}", host.name));
        let marker = format!("session-{}", host.name);
        let echo = RemoteCommand::from_argv(["echo", &marker]).unwrap();
        assert_eq!(
            connection
                .run_checked(&ShellLine::from(&echo), 10_000)
                .unwrap()
                .stdout_text()
                .trim(),
            marker
        );
        assert_eq!(connection.host().name, host.name);
    }
    for node in &testbed.nodes {
        let log = fs::read_to_string(node.dir.join("sshd.log")).unwrap();
        assert!(
            log.contains("Accepted publickey for root"),
            "{}: {log}",
            node.name
        );
    }
}

#[test]
fn the_clock_probe_brackets_the_remote_clock_within_its_round_trip() {
    let testbed = Testbed::start();
    let mut connection = Connection::open(&host0(&testbed), &ConnectOptions::default()).unwrap();
    let clock = naam_ssh::telemetry::measure_clock_offset(&mut connection, 7).unwrap();
    // The "remote" clock is this machine's: the true offset is 0, and the remote reading lies
    // between send and receive, so the estimate is within half the round trip.
    assert_eq!(clock.samples, 7);
    assert!(clock.rtt_ns > 0, "{clock:?}");
    assert!(
        clock.offset_ns.unsigned_abs() <= clock.error_bound_ns(),
        "{clock:?}"
    );
    // A dialogue answers every round, in order.
    let line = ShellLine::new().op("i=0; while IFS= read -r _; do i=$((i+1)); echo \"$i\"; done");
    let replies = connection
        .dialogue(&line, 3, 10_000, naam_ssh::telemetry::unix_now_ns)
        .unwrap();
    let texts: Vec<&str> = replies.iter().map(|(_, text, _)| text.as_str()).collect();
    assert_eq!(texts, ["1", "2", "3"]);
    assert!(replies.iter().all(|(sent, _, received)| sent <= received));
}
