//! Without privileges the kernel eSwitch fails with a typed error that says why, and the
//! user-space eSwitch still works. The test (run as root, as the project's test command is)
//! re-runs this binary as user `nobody` with no capabilities (`setpriv`) and checks what the
//! unprivileged run reports. A custom harness: the same binary is the driver and the probe.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use naam_engine::{RuleTable, Shares};
use naam_net::{
    KernelEswitch, RecvBatch, Steering, UdpConfig, UdpSocket, UserEswitch, UserEswitchConfig,
};

/// Set in the probe's environment.
const PROBE_ENV: &str = "NAAM_NET_UNPRIVILEGED_PROBE";
/// The unprivileged user and group (`nobody`/`nogroup` on Debian).
const NOBODY: u32 = 65534;

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// Runs unprivileged: prints one line per check for the driver to assert on.
fn probe() {
    let socket = UdpSocket::bind(&UdpConfig {
        reuse_port: true,
        ..UdpConfig::new(loopback())
    })
    .expect("bind");
    match KernelEswitch::attach(&socket, 1, 1) {
        Ok(_) => println!("kernel: attached"),
        Err(e) => println!("kernel: {e}"),
    }
    let target = UdpSocket::bind(&UdpConfig::new(loopback())).expect("bind target");
    let config = UserEswitchConfig {
        ingress: UdpConfig::new(loopback()),
        host: vec![target.local_addr()],
        nic: vec![],
    };
    let user =
        UserEswitch::start(config, &RuleTable::new(Shares::HOST)).expect("start the user eSwitch");
    let sender = UdpSocket::bind(&UdpConfig::new(loopback())).expect("bind sender");
    sender
        .send_to(b"not an invoke", user.ingress_addr())
        .expect("send_to");
    let mut batch = RecvBatch::new(4);
    let n = target
        .recv_batch(&mut batch, Duration::from_secs(10))
        .expect("recv");
    let counts = user.counts().expect("counts");
    println!(
        "user: forwarded {n}, malformed {}, kind {}",
        counts.malformed,
        user.kind()
    );
}

fn main() {
    if std::env::var_os(PROBE_ENV).is_some() {
        probe();
        return;
    }
    // SAFETY: geteuid takes no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test drops to user nobody with setpriv and needs root to do so (euid is {euid}); the project's test command runs as root"
    );
    let exe = std::env::current_exe().expect("the test binary's path");
    let output = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(&exe)
        .env(PROBE_ENV, "1")
        .output()
        .expect("run setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the unprivileged probe failed: {}\n{stdout}\n{stderr}",
        output.status
    );
    let kernel = stdout
        .lines()
        .find(|l| l.starts_with("kernel: "))
        .unwrap_or("no kernel line");
    for needle in [
        "not permitted",
        "euid 65534",
        "CAP_BPF false",
        "use the user-space eSwitch otherwise",
    ] {
        assert!(
            kernel.contains(needle),
            "the unprivileged attach error lacks `{needle}`: {kernel}"
        );
    }
    assert!(
        stdout
            .lines()
            .any(|l| l == "user: forwarded 1, malformed 1, kind user-space"),
        "probe output:\n{stdout}"
    );
    println!("eswitch_unprivileged: ok ({kernel})");
}
