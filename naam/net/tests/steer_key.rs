//! The steering key travels in the UDP source port (issue 14): over a seeded stream of Invokes,
//! each sent from the port of a key drawn independently of its request id, the kernel eBPF
//! eSwitch and the user-space eSwitch place every message where `SteerKey::location` under the
//! rule's shares says — the key, not the payload's request id, decides.
//!
//! The kernel half needs root (the project's test command runs as root).

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use common::{Rng, invoke_frame, receive_all};
use naam_engine::steer::{BUCKETS, steer_bucket};
use naam_engine::{
    FunctionId, Location, RequestId, RuleKey, RuleTable, Shares, SteerKey, TenantId,
};
use naam_net::eswitch::invoke_layout;
use naam_net::steer_port::{STEER_PORT_BASE_DEFAULT, SteerSockets};
use naam_net::{KernelEswitch, Steering, UdpConfig, UdpSocket, UserEswitch, UserEswitchConfig};

const HOST_SOCKETS: u32 = 2;
const NIC_SOCKETS: u32 = 2;
/// Messages per rule table.
const MESSAGES: usize = 2000;
/// Datagrams sent before the receivers are drained.
const SEND_CHUNK: usize = 250;
/// One message in this many is pinned (a host-native call).
const PINNED_ONE_IN: u64 = 10;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// One message of the stream: its key (independent of its request id) and its frame.
struct Message {
    key: SteerKey,
    function: u32,
    request_id: u64,
    frame: Vec<u8>,
}

fn stream(rng: &mut Rng) -> Vec<Message> {
    (0..MESSAGES)
        .map(|i| {
            let key = if rng.below(PINNED_ONE_IN) == 0 {
                SteerKey::Pinned
            } else {
                SteerKey::Bucket(rng.below(u64::from(BUCKETS)) as u16)
            };
            let function = 1 + rng.below(2) as u32;
            let request_id = (rng.next_u64() << 16) | i as u64;
            let frame = invoke_frame(1, function, 0, request_id, 16, 1);
            Message {
                key,
                function,
                request_id,
                frame,
            }
        })
        .collect()
}

/// Rule tables: a split default, and the roles' shape (a split default plus a fixed all-host
/// rule for a host-native function, whose clients pin its messages).
fn tables() -> Vec<(&'static str, RuleTable)> {
    let split = Shares::new(300, 500, 200).expect("shares sum to 1000");
    let mut fixed = RuleTable::new(Shares::new(100, 900, 0).expect("shares"));
    fixed
        .set(RuleKey::function(TenantId(1), FunctionId(2)), Shares::HOST)
        .expect("set a function rule");
    vec![
        ("split 300/500/200", RuleTable::new(split)),
        ("all nic", RuleTable::new(Shares::NIC)),
        ("nic 900 with a host-native function", fixed),
    ]
}

/// Where `table` puts `m` by its key: the NIC or the host (the client range is pushed back from
/// the host).
fn expected_at_nic(table: &RuleTable, m: &Message) -> bool {
    let shares = table.lookup(TenantId(1), FunctionId(m.function), 0);
    m.key.location(shares) == Location::Nic
}

/// Sends every message from its key's port to `to`; returns per request id whether it arrived
/// at a NIC socket (receivers: host sockets first).
fn deliver(msgs: &[Message], to: SocketAddr, receivers: &[&UdpSocket]) -> BTreeMap<u64, bool> {
    let mut senders =
        SteerSockets::new(Ipv4Addr::LOCALHOST.into(), STEER_PORT_BASE_DEFAULT).expect("base");
    let mut placed = BTreeMap::new();
    for chunk in msgs.chunks(SEND_CHUNK) {
        for m in chunk {
            senders
                .send_to(m.key, &m.frame, to)
                .expect("send from a steering port");
        }
        for (socket, bytes, _) in receive_all(receivers, chunk.len()) {
            let at = invoke_layout::REQUEST_ID;
            let id = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("a request id"));
            placed.insert(id, socket >= HOST_SOCKETS as usize);
        }
    }
    placed
}

fn check(what: &str, table: &RuleTable, msgs: &[Message], placed: &BTreeMap<u64, bool>) {
    let wrong: Vec<String> = msgs
        .iter()
        .filter(|m| placed.get(&m.request_id) != Some(&expected_at_nic(table, m)))
        .take(5)
        .map(|m| {
            format!(
                "key {:?} id {:#x}: at nic {:?}",
                m.key,
                m.request_id,
                placed.get(&m.request_id)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: placements differ from the key's, e.g.\n{}",
        wrong.join("\n")
    );
}

fn require_root() {
    // SAFETY: geteuid takes no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test loads the kernel eSwitch (BPF) and needs root (euid is {euid}); the project's \
         test command (scripts/test.sh) runs as root"
    );
}

fn reuseport_group(sockets: u32) -> Vec<UdpSocket> {
    let config = |addr| UdpConfig {
        reuse_port: true,
        ..UdpConfig::new(addr)
    };
    let first = UdpSocket::bind(&config(loopback(0))).expect("bind the first group socket");
    let addr = first.local_addr();
    let mut group = vec![first];
    for _ in 1..sockets {
        group.push(UdpSocket::bind(&config(addr)).expect("join the reuseport group"));
    }
    group
}

#[test]
fn issue_14_kernel_and_user_eswitches_decide_on_the_source_port_key_alike() {
    require_root();
    let mut rng = Rng::from_env();
    let group = reuseport_group(HOST_SOCKETS + NIC_SOCKETS);
    let mut kernel =
        KernelEswitch::attach(&group[0], HOST_SOCKETS, NIC_SOCKETS).expect("attach kernel");
    let targets: Vec<UdpSocket> = (0..HOST_SOCKETS + NIC_SOCKETS)
        .map(|_| UdpSocket::bind(&UdpConfig::new(loopback(0))).expect("bind target"))
        .collect();
    let addrs: Vec<SocketAddr> = targets.iter().map(UdpSocket::local_addr).collect();
    let (host, nic) = addrs.split_at(HOST_SOCKETS as usize);
    let config = UserEswitchConfig {
        ingress: UdpConfig::new(loopback(0)),
        host: host.to_vec(),
        nic: nic.to_vec(),
    };
    let mut user = UserEswitch::start(config, &RuleTable::new(Shares::HOST)).expect("user");
    let mut independent = 0;
    for (what, table) in tables() {
        let msgs = stream(&mut rng);
        independent += msgs
            .iter()
            .filter(|m| m.key != SteerKey::Bucket(steer_bucket(RequestId(m.request_id))))
            .count();
        kernel.apply(&table).expect("apply kernel");
        let in_kernel = deliver(
            &msgs,
            group[0].local_addr(),
            &group.iter().collect::<Vec<_>>(),
        );
        check(&format!("kernel, {what}"), &table, &msgs, &in_kernel);
        user.apply(&table).expect("apply user");
        let in_user = deliver(
            &msgs,
            user.ingress_addr(),
            &targets.iter().collect::<Vec<_>>(),
        );
        assert_eq!(
            in_user, in_kernel,
            "{what}: user-space and kernel agree message by message"
        );
    }
    assert!(
        independent > MESSAGES,
        "keys are drawn independently of request ids, so the payload alone could not decide"
    );
    user.stop().expect("stop user");
    kernel.detach(&group[0]).expect("detach");
}
