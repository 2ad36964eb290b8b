//! How long a rule update takes to reach the eSwitch: `Steering::apply` of a one-rule change
//! (the default alternating between all-host and all-NIC), kernel (BPF hash-map writes; needs
//! root: skipped with a message without it, and as root a kernel eSwitch that does not attach
//! fails the bench, so a check run as root never passes without its subject) and user space
//! (table swap). This is the eSwitch's
//! share of a load-shift time; the controller's sampling period and queue drain make up the rest.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use naam_engine::{RuleKey, RuleTable, Shares};
use naam_net::{KernelEswitch, Steering, UdpConfig, UdpSocket, UserEswitch, UserEswitchConfig};

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn bench_apply(c: &mut Criterion, name: &str, switch: &mut dyn Steering) {
    let tables = [RuleTable::new(Shares::HOST), RuleTable::new(Shares::NIC)];
    let mut flip = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            flip ^= 1;
            switch.apply(&tables[flip]).expect("apply")
        })
    });
}

/// The kernel eSwitch on `socket`: `None` (said on stderr) without root; as root, an eSwitch
/// that does not attach is a failure of the bench, not a skip.
fn kernel_eswitch(socket: &UdpSocket) -> Option<KernelEswitch> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    match KernelEswitch::attach(socket, 1, 1) {
        Ok(kernel) => Some(kernel),
        Err(e) if root => {
            panic!("eswitch_apply/kernel: running as root, the kernel eSwitch must attach: {e}")
        }
        Err(e) => {
            eprintln!("eswitch_apply/kernel skipped (not root): {e}");
            None
        }
    }
}

fn apply(c: &mut Criterion) {
    let config = UdpConfig {
        reuse_port: true,
        ..UdpConfig::new(loopback())
    };
    let socket = UdpSocket::bind(&config).expect("bind");
    if let Some(mut kernel) = kernel_eswitch(&socket) {
        bench_apply(c, "eswitch_apply/kernel_default_rule", &mut kernel);
    }
    let target = UdpSocket::bind(&UdpConfig::new(loopback())).expect("bind");
    let user_config = UserEswitchConfig {
        ingress: UdpConfig::new(loopback()),
        host: vec![target.local_addr()],
        nic: vec![],
    };
    let mut user = UserEswitch::start(user_config, &RuleTable::new(Shares::HOST)).expect("start");
    bench_apply(c, "eswitch_apply/user_default_rule", &mut user);
    // A table of 1000 function rules, one of which changes per apply (the kernel writes only it).
    let mut big = [RuleTable::new(Shares::HOST), RuleTable::new(Shares::HOST)];
    for f in 0..1000 {
        for t in &mut big {
            t.set(
                RuleKey::function(naam_engine::TenantId(1), naam_engine::FunctionId(f)),
                Shares::HOST,
            )
            .expect("set");
        }
    }
    big[1]
        .set(
            RuleKey::function(naam_engine::TenantId(1), naam_engine::FunctionId(7)),
            Shares::NIC,
        )
        .expect("set");
    if let Some(mut kernel) = kernel_eswitch(&socket) {
        let mut flip = 0;
        c.bench_function("eswitch_apply/kernel_1000_rules_one_changed", |b| {
            b.iter(|| {
                flip ^= 1;
                kernel.apply(&big[flip]).expect("apply")
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = apply
}
criterion_main!(benches);
