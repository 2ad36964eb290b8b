//! The eSwitch over real sockets on 127.0.0.1 (no XDP, no network namespace): the kernel program
//! attached to a real reuseport group steers exactly as `RuleTable::route` says, datagram by
//! datagram; the user-space switch agrees with it; malformed datagrams go to host socket 0; rule
//! updates take effect for the next datagram.
//!
//! The kernel tests need root (or CAP_BPF). The project's test command runs as root; run
//! elsewhere, they fail with a message saying so rather than pass without testing anything.

mod common;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use common::{Rng, invoke_frame, receive_all};
use naam_engine::wire::{Frame, Reply, Status};
use naam_engine::{FunctionId, Location, RequestId, RuleKey, RuleTable, Shares, TenantId};
use naam_net::eswitch::{
    ESWITCH_RULES_MAX, EswitchError, GroupShape, Verdict, invoke_layout, parse_invoke_header,
};
use naam_net::{
    KernelEswitch, SendBatch, SteerCounts, Steering, UdpConfig, UdpSocket, UserEswitch,
    UserEswitchConfig, socket_addr,
};

const HOST_SOCKETS: u32 = 2;
const NIC_SOCKETS: u32 = 3;
/// Invokes sent per rule table.
const MESSAGES_PER_TABLE: usize = 3000;
/// Datagrams sent before the receivers are drained (keeps every socket buffer far from full).
const SEND_CHUNK: usize = 500;

fn require_root() {
    // SAFETY: geteuid takes no arguments and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test loads the kernel eSwitch (BPF) and needs root or CAP_BPF (euid is {euid}); \
         the project's test command (scripts/test.sh) runs as root"
    );
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A reuseport group on one loopback port: host sockets bound first, then NIC sockets.
struct Group {
    sockets: Vec<UdpSocket>,
    addr: SocketAddr,
}

impl Group {
    fn bind(host: u32, nic: u32) -> Group {
        let config = |addr| UdpConfig {
            reuse_port: true,
            ..UdpConfig::new(addr)
        };
        let first = UdpSocket::bind(&config(loopback(0))).expect("bind the first group socket");
        let addr = first.local_addr();
        let mut sockets = vec![first];
        for _ in 1..host + nic {
            sockets.push(UdpSocket::bind(&config(addr)).expect("join the reuseport group"));
        }
        Group { sockets, addr }
    }

    fn refs(&self) -> Vec<&UdpSocket> {
        self.sockets.iter().collect()
    }
}

/// Separate sockets (distinct ports) standing for the host's and NIC's sockets behind a
/// user-space switch.
struct Targets {
    sockets: Vec<UdpSocket>,
}

impl Targets {
    fn bind(count: u32) -> Targets {
        Targets {
            sockets: (0..count)
                .map(|_| UdpSocket::bind(&UdpConfig::new(loopback(0))).expect("bind target"))
                .collect(),
        }
    }

    fn user_config(&self, host: u32) -> UserEswitchConfig {
        let addrs: Vec<SocketAddr> = self.sockets.iter().map(UdpSocket::local_addr).collect();
        let (h, n) = addrs.split_at(host as usize);
        UserEswitchConfig {
            ingress: UdpConfig::new(loopback(0)),
            host: h.to_vec(),
            nic: n.to_vec(),
        }
    }

    fn refs(&self) -> Vec<&UdpSocket> {
        self.sockets.iter().collect()
    }
}

/// One test message: its steering fields and its encoded frame.
struct Message {
    tenant: u32,
    function: u32,
    flow: u32,
    request_id: u64,
    frame: Vec<u8>,
}

fn messages(rng: &mut Rng, count: usize) -> Vec<Message> {
    (0..count)
        .map(|i| {
            let (tenant, function, flow) = (
                1 + rng.below(4) as u32,
                1 + rng.below(4) as u32,
                rng.below(3) as u32,
            );
            // Unique per message (low bits: index), otherwise random.
            let request_id = (rng.next_u64() << 16) | i as u64;
            let frame = invoke_frame(
                tenant,
                function,
                flow,
                request_id,
                rng.below(65) as usize,
                rng.below(5) as usize,
            );
            Message {
                tenant,
                function,
                flow,
                request_id,
                frame,
            }
        })
        .collect()
}

/// The socket index `RuleTable::route` implies (host sockets first, then NIC sockets; the client
/// range goes to a host socket), independently of the crate's own `decide`.
fn route_index(table: &RuleTable, m: &Message) -> u32 {
    match table.route(
        TenantId(m.tenant),
        FunctionId(m.function),
        m.flow,
        RequestId(m.request_id),
    ) {
        Location::Nic => HOST_SOCKETS + (m.request_id % u64::from(NIC_SOCKETS)) as u32,
        Location::Host | Location::Client => (m.request_id % u64::from(HOST_SOCKETS)) as u32,
    }
}

fn route_counts(table: &RuleTable, msgs: &[Message]) -> SteerCounts {
    let mut c = SteerCounts::default();
    for m in msgs {
        match table.route(
            TenantId(m.tenant),
            FunctionId(m.function),
            m.flow,
            RequestId(m.request_id),
        ) {
            Location::Host => c.host += 1,
            Location::Nic => c.nic += 1,
            Location::Client => c.client += 1,
        }
    }
    c
}

fn request_id_of(frame: &[u8]) -> u64 {
    let at = invoke_layout::REQUEST_ID;
    u64::from_le_bytes(
        frame[at..at + 8]
            .try_into()
            .expect("a frame long enough to hold a request id"),
    )
}

/// Sends `frames` to `to` and returns, per request id, the index of the socket that got it.
fn deliver(frames: &[&[u8]], to: SocketAddr, receivers: &[&UdpSocket]) -> BTreeMap<u64, usize> {
    let sender = UdpSocket::bind(&UdpConfig::new(loopback(0))).expect("bind sender");
    let mut batch = SendBatch::new(64);
    let mut placed = BTreeMap::new();
    for chunk in frames.chunks(SEND_CHUNK) {
        for frame in chunk {
            if !batch.push(frame, to) {
                sender.send_batch(&mut batch).expect("send_batch");
                assert!(batch.push(frame, to));
            }
        }
        sender.send_batch(&mut batch).expect("send_batch");
        for (socket, bytes, _) in receive_all(receivers, chunk.len()) {
            assert!(
                placed.insert(request_id_of(&bytes), socket).is_none(),
                "each datagram arrives once"
            );
        }
    }
    placed
}

/// Rule tables exercising every level of the lookup.
fn tables() -> Vec<(&'static str, RuleTable)> {
    let shares = |h, n, c| Shares::new(h, n, c).expect("shares sum to 1000");
    let mut specific = RuleTable::new(shares(0, 1000, 0));
    specific
        .set(
            RuleKey {
                tenant: Some(TenantId(1)),
                function: None,
                flow: None,
            },
            Shares::HOST,
        )
        .unwrap();
    specific
        .set(
            RuleKey::function(TenantId(2), FunctionId(3)),
            shares(100, 600, 300),
        )
        .unwrap();
    specific
        .set(
            RuleKey {
                tenant: Some(TenantId(2)),
                function: Some(FunctionId(3)),
                flow: Some(1),
            },
            Shares::NIC,
        )
        .unwrap();
    specific
        .set(
            RuleKey {
                tenant: Some(TenantId(2)),
                function: Some(FunctionId(4)),
                flow: Some(2),
            },
            Shares::CLIENT,
        )
        .unwrap();
    specific
        .set(
            RuleKey {
                tenant: Some(TenantId(3)),
                function: None,
                flow: None,
            },
            shares(250, 250, 500),
        )
        .unwrap();
    let mut flows_only = RuleTable::new(Shares::HOST);
    for flow in 0..3 {
        let key = RuleKey {
            tenant: Some(TenantId(4)),
            function: Some(FunctionId(1)),
            flow: Some(flow),
        };
        flows_only
            .set(key, shares(1000 - 300 * flow as u16, 300 * flow as u16, 0))
            .unwrap();
    }
    vec![
        ("all host", RuleTable::new(Shares::HOST)),
        ("all nic", RuleTable::new(Shares::NIC)),
        ("split 300/500/200", RuleTable::new(shares(300, 500, 200))),
        ("tenant, function and flow rules", specific),
        ("flow rules over a host default", flows_only),
    ]
}

fn check_placements(
    what: &str,
    table: &RuleTable,
    msgs: &[Message],
    placed: &BTreeMap<u64, usize>,
) {
    let wrong: Vec<String> = msgs
        .iter()
        .filter(|m| placed.get(&m.request_id).copied() != Some(route_index(table, m) as usize))
        .take(5)
        .map(|m| {
            format!(
                "tenant {} function {} flow {} id {:#x}: socket {:?}, route says {}",
                m.tenant,
                m.function,
                m.flow,
                m.request_id,
                placed.get(&m.request_id),
                route_index(table, m)
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: placements differ from RuleTable::route, e.g.\n{}",
        wrong.join("\n")
    );
}

#[test]
fn kernel_program_steers_exactly_as_the_rule_table_routes_and_the_user_switch_agrees() {
    require_root();
    let mut rng = Rng::from_env();
    let group = Group::bind(HOST_SOCKETS, NIC_SOCKETS);
    let mut kernel = KernelEswitch::attach(&group.sockets[0], HOST_SOCKETS, NIC_SOCKETS)
        .expect("attach the kernel eSwitch");
    let targets = Targets::bind(HOST_SOCKETS + NIC_SOCKETS);
    let mut user = UserEswitch::start(
        targets.user_config(HOST_SOCKETS),
        &RuleTable::new(Shares::HOST),
    )
    .expect("start the user eSwitch");
    assert_eq!((kernel.kind(), user.kind()), ("kernel-ebpf", "user-space"));
    for (what, table) in tables() {
        let msgs = messages(&mut rng, MESSAGES_PER_TABLE);
        let frames: Vec<&[u8]> = msgs.iter().map(|m| m.frame.as_slice()).collect();
        let expected_counts = route_counts(&table, &msgs);
        assert!(
            expected_counts.host + expected_counts.nic + expected_counts.client
                == MESSAGES_PER_TABLE as u64
        );

        let before = kernel.counts().expect("kernel counters");
        kernel.apply(&table).expect("apply to the kernel eSwitch");
        let in_kernel = deliver(&frames, group.addr, &group.refs());
        check_placements(what, &table, &msgs, &in_kernel);
        assert_eq!(
            kernel.counts().expect("kernel counters").since(&before),
            expected_counts,
            "{what}: kernel counters"
        );

        let before = user.counts().expect("user counters");
        user.apply(&table).expect("apply to the user eSwitch");
        let in_user = deliver(&frames, user.ingress_addr(), &targets.refs());
        assert_eq!(
            in_user, in_kernel,
            "{what}: the user-space switch places every message where the kernel did"
        );
        assert_eq!(
            user.counts().expect("user counters").since(&before),
            expected_counts,
            "{what}: user counters"
        );
    }
    assert_eq!(user.drops(), Default::default());
    user.stop().expect("stop the user eSwitch");
    kernel.detach(&group.sockets[0]).expect("detach");
}

/// Datagrams that are not well-formed Invokes, each with a name.
fn malformed() -> Vec<(&'static str, Vec<u8>)> {
    let good = invoke_frame(1, 1, 0, 0xfeed, 8, 1);
    let edit = |at: usize, value: u8| {
        let mut f = good.clone();
        f[at] = value;
        f
    };
    let reply = {
        let mut out = Vec::new();
        let r = Reply {
            request_id: RequestId(1),
            status: Status::Ok,
            location: Location::Host,
            steps: 1,
            attempts: 0,
            client_permille: 0,
            payload: b"x",
        };
        Frame::Reply(r).encode(&mut out).unwrap();
        out
    };
    vec![
        ("empty", Vec::new()),
        ("header only", good[..4].to_vec()),
        (
            "fixed part cut short",
            good[..invoke_layout::FIXED_BYTES - 1].to_vec(),
        ),
        ("one byte missing", good[..good.len() - 1].to_vec()),
        ("one byte extra", [good.as_slice(), &[0]].concat()),
        ("bad magic", edit(invoke_layout::MAGIC, 0x42)),
        ("wire version 2", edit(invoke_layout::VERSION, 2)),
        ("a reply frame", reply),
        ("unknown flag", edit(invoke_layout::FLAGS, 0x02)),
        ("five descriptors", edit(invoke_layout::DESCRIPTORS, 5)),
        (
            "args over the maximum",
            edit(invoke_layout::ARGS_LEN + 1, 0x7f),
        ),
        ("continuation without origin", edit(invoke_layout::STEP, 1)),
        ("garbage", vec![0xff; 300]),
    ]
}

#[test]
fn malformed_datagrams_go_to_host_socket_zero() {
    require_root();
    let all_nic = RuleTable::new(Shares::NIC);
    let group = Group::bind(HOST_SOCKETS, NIC_SOCKETS);
    let mut kernel = KernelEswitch::attach(&group.sockets[2], HOST_SOCKETS, NIC_SOCKETS)
        .expect("attach via any group member");
    kernel.apply(&all_nic).expect("apply");
    let targets = Targets::bind(HOST_SOCKETS + NIC_SOCKETS);
    let user = UserEswitch::start(targets.user_config(HOST_SOCKETS), &all_nic)
        .expect("start the user eSwitch");
    let sender = UdpSocket::bind(&UdpConfig::new(loopback(0))).expect("bind sender");
    let cases = malformed();
    for (what, bytes) in &cases {
        assert_eq!(
            parse_invoke_header(bytes),
            None,
            "{what} parses as an Invoke"
        );
        for (to, receivers) in [
            (group.addr, group.refs()),
            (user.ingress_addr(), targets.refs()),
        ] {
            sender.send_to(bytes, to).expect("send_to");
            let got = receive_all(&receivers, 1);
            assert_eq!(
                (got[0].0, got[0].1.as_slice()),
                (0, bytes.as_slice()),
                "{what} (to {to})"
            );
        }
    }
    let n = cases.len() as u64;
    let only_malformed = SteerCounts {
        malformed: n,
        ..Default::default()
    };
    assert_eq!(kernel.counts().expect("counters"), only_malformed);
    assert_eq!(user.counts().expect("counters"), only_malformed);
}

/// Alternates one function's rule between all-host and all-NIC, sending one datagram after
/// each apply; returns the switch's counts.
fn alternate_rules(
    switch: &mut dyn Steering,
    to: SocketAddr,
    receivers: &[&UdpSocket],
) -> SteerCounts {
    let sender = UdpSocket::bind(&UdpConfig::new(loopback(0))).expect("bind sender");
    let mut table = RuleTable::new(Shares::HOST);
    let key = RuleKey::function(TenantId(9), FunctionId(9));
    let mut last_applied_ns = 0;
    for round in 0..40u64 {
        let to_nic = round % 2 == 1;
        table
            .set(key, if to_nic { Shares::NIC } else { Shares::HOST })
            .unwrap();
        let applied = switch.apply(&table).expect("apply");
        assert_eq!(applied.version, table.version());
        assert!(
            applied.applied_at_ns >= last_applied_ns,
            "apply times are monotonic"
        );
        last_applied_ns = applied.applied_at_ns;
        sender
            .send_to(&invoke_frame(9, 9, 0, round, 0, 0), to)
            .expect("send_to");
        let got = receive_all(receivers, 1);
        let at_nic = got[0].0 >= HOST_SOCKETS as usize;
        assert_eq!(
            at_nic,
            to_nic,
            "round {round}, {}: the datagram after the apply follows the new rule",
            switch.kind()
        );
    }
    switch.counts().expect("counters")
}

#[test]
fn rule_updates_take_effect_for_the_next_datagram() {
    require_root();
    let group = Group::bind(HOST_SOCKETS, NIC_SOCKETS);
    let mut kernel =
        KernelEswitch::attach(&group.sockets[0], HOST_SOCKETS, NIC_SOCKETS).expect("attach");
    let in_kernel = alternate_rules(&mut kernel, group.addr, &group.refs());
    assert_eq!(
        (in_kernel.host, in_kernel.nic, in_kernel.total()),
        (20, 20, 40)
    );

    let targets = Targets::bind(HOST_SOCKETS + NIC_SOCKETS);
    let mut user = UserEswitch::start(
        targets.user_config(HOST_SOCKETS),
        &RuleTable::new(Shares::HOST),
    )
    .expect("start");
    let ingress = user.ingress_addr();
    let in_user = alternate_rules(&mut user, ingress, &targets.refs());
    assert_eq!(in_user, in_kernel);
}

#[test]
fn the_user_switch_fills_in_the_clients_reply_address_and_drops_loops() {
    let targets = Targets::bind(2);
    let user =
        UserEswitch::start(targets.user_config(1), &RuleTable::new(Shares::HOST)).expect("start");
    let client = UdpSocket::bind(&UdpConfig::new(loopback(0))).expect("bind client");
    client
        .send_to(&invoke_frame(1, 2, 3, 4, 5, 1), user.ingress_addr())
        .expect("send_to");
    let got = receive_all(&targets.refs(), 1);
    let Ok(Frame::Invoke(invoke)) = Frame::decode(&got[0].1) else {
        panic!("the forwarded frame is an Invoke")
    };
    assert_eq!(
        invoke.reply_to.map(|r| socket_addr(&r)),
        Some(client.local_addr())
    );
    // A location that mistakenly sends to the ingress is not forwarded back to itself.
    targets.sockets[0]
        .send_to(&invoke_frame(1, 2, 3, 5, 0, 0), user.ingress_addr())
        .expect("send_to");
    let deadline = std::time::Instant::now() + common::DELIVERY_TIMEOUT;
    while user.drops().looped == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert_eq!(user.drops().looped, 1);
    assert_eq!(user.stop().expect("stop").total(), 1);
}

#[test]
fn attaching_needs_a_bound_reuseport_udp_socket_and_a_sane_group() {
    let plain = UdpSocket::bind(&UdpConfig::new(loopback(0))).expect("bind");
    match KernelEswitch::attach(&plain, 1, 1) {
        Err(EswitchError::NotReusePortSocket { reason, .. }) => {
            assert!(reason.contains("SO_REUSEPORT"), "{reason}")
        }
        other => panic!("expected NotReusePortSocket, got {other:?}"),
    }
    let tcp = std::net::TcpListener::bind(loopback(0)).expect("tcp listener");
    assert!(matches!(
        KernelEswitch::attach(&tcp, 1, 1),
        Err(EswitchError::NotReusePortSocket { .. })
    ));
    assert!(matches!(
        KernelEswitch::attach(&plain, 0, 1),
        Err(EswitchError::GroupShape {
            host_sockets: 0,
            ..
        })
    ));
    let config = UserEswitchConfig {
        ingress: UdpConfig::new(loopback(0)),
        host: Vec::new(),
        nic: vec![loopback(9)],
    };
    assert!(matches!(
        UserEswitch::start(config, &RuleTable::new(Shares::HOST)),
        Err(EswitchError::GroupShape { .. })
    ));
    assert!(GroupShape::new(1, 0).is_ok());
}

#[test]
fn invoke_layout_matches_the_engines_encoding_and_the_c_program() {
    let frame = invoke_frame(
        0x0102_0304,
        0x0506_0708,
        0x0a0b_0c0d,
        0x1122_3344_5566_7788,
        3,
        2,
    );
    let header = parse_invoke_header(&frame).expect("a well-formed Invoke");
    assert_eq!(
        (
            header.tenant,
            header.function,
            header.flow,
            header.request_id
        ),
        (
            TenantId(0x0102_0304),
            FunctionId(0x0506_0708),
            0x0a0b_0c0d,
            RequestId(0x1122_3344_5566_7788)
        )
    );
    assert_eq!(frame.len(), invoke_layout::FIXED_BYTES + 3 + 2 * 24);
    let source = include_str!("../bpf/eswitch.c");
    for needle in [
        format!("#define ESWITCH_RULES_MAX {ESWITCH_RULES_MAX}"),
        "_Static_assert(sizeof(struct invoke_wire) == 54".to_string(),
        format!("#define COUNTER_HOST {}", Verdict::Host.index()),
        format!("#define COUNTER_NIC {}", Verdict::Nic.index()),
        format!("#define COUNTER_CLIENT {}", Verdict::Client.index()),
        format!("#define COUNTER_MALFORMED {}", Verdict::Malformed.index()),
        format!(
            "#define STEER_HASH_MULTIPLIER {:#x}ULL",
            naam_engine::steer::STEER_HASH_MULTIPLIER
        ),
        format!("#define STEER_BUCKETS {}", naam_engine::steer::BUCKETS),
    ] {
        assert!(source.contains(&needle), "bpf/eswitch.c lacks `{needle}`");
    }
}
