//! The UDP transport over real loopback sockets: batches, truncation, timestamps, reuseport
//! groups, errors, and the echo ceiling.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::{Rng, receive_all};
use expect_test::expect;
use naam_engine::wire::{FRAME_BYTES_MAX, ReplyAddr};
use naam_net::{
    BATCH_MAX, NetError, PushError, RecvBatch, SendBatch, UdpConfig, UdpSocket, realtime_now_ns,
    reply_addr, socket_addr, udp_echo_ceiling,
};

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn bind(config: UdpConfig) -> UdpSocket {
    UdpSocket::bind(&config).expect("bind on loopback")
}

#[test]
fn batches_carry_every_datagram_with_its_sender() {
    let mut rng = Rng::from_env();
    let receiver = bind(UdpConfig {
        batch_max: BATCH_MAX,
        ..UdpConfig::new(loopback())
    });
    let sender = bind(UdpConfig::new(loopback()));
    let mut sent = Vec::new();
    let mut batch = SendBatch::new(BATCH_MAX);
    for i in 0..200u32 {
        let len = 4 + rng.below((FRAME_BYTES_MAX - 3) as u64) as usize;
        let mut bytes = vec![(i % 251) as u8; len];
        bytes[..4].copy_from_slice(&i.to_le_bytes());
        if !batch.push(&bytes, receiver.local_addr()) {
            assert_eq!(batch.len(), BATCH_MAX, "push refuses only when full");
            sender.send_batch(&mut batch).expect("send_batch");
            assert!(
                batch.push(&bytes, receiver.local_addr()),
                "an emptied batch takes a datagram"
            );
        }
        sent.push(bytes);
    }
    let queued = batch.len();
    assert_eq!(sender.send_batch(&mut batch).expect("send_batch"), queued);
    assert!(batch.is_empty(), "send_batch clears what it sent");

    let got = receive_all(&[&receiver], 200);
    assert!(got.iter().all(|(_, _, from)| *from == sender.local_addr()));
    let mut received: Vec<Vec<u8>> = got.into_iter().map(|(_, bytes, _)| bytes).collect();
    received.sort();
    sent.sort();
    assert_eq!(received, sent);
    let stats = receiver.stats();
    assert_eq!(
        (stats.datagrams_received, stats.truncated_dropped),
        (200, 0)
    );
    assert!(stats.recv_calls_nonempty <= 200, "{stats:?}");
    assert_eq!(sender.stats().datagrams_sent, 200);
}

#[test]
fn datagrams_longer_than_a_frame_are_counted_and_dropped_whole() {
    let receiver = bind(UdpConfig::new(loopback()));
    let raw = std::net::UdpSocket::bind(loopback()).expect("std socket");
    let to = receiver.local_addr();
    let sizes = [
        FRAME_BYTES_MAX + 1,
        FRAME_BYTES_MAX,
        60_000,
        0,
        17,
        FRAME_BYTES_MAX + 100,
    ];
    for (i, size) in sizes.iter().enumerate() {
        let mut bytes = vec![i as u8; *size];
        if let Some(first) = bytes.first_mut() {
            *first = i as u8;
        }
        raw.send_to(&bytes, to).expect("std send_to");
    }
    let got = receive_all(&[&receiver], 3);
    let lens: Vec<usize> = got.iter().map(|(_, b, _)| b.len()).collect();
    assert_eq!(
        lens,
        vec![FRAME_BYTES_MAX, 0, 17],
        "only the datagrams that fit, whole, in order"
    );
    assert!(got[0].1.iter().all(|b| *b == 1));
    assert_eq!(receiver.stats().truncated_dropped, 3);
}

#[test]
fn kernel_timestamps_are_present_and_plausible() {
    let receiver = bind(UdpConfig {
        kernel_timestamps: true,
        ..UdpConfig::new(loopback())
    });
    let plain = bind(UdpConfig::new(loopback()));
    let sender = bind(UdpConfig::new(loopback()));
    let before_ns = realtime_now_ns();
    for i in 0..10u8 {
        sender
            .send_to(&[i; 32], receiver.local_addr())
            .expect("send_to");
        sender
            .send_to(&[i; 32], plain.local_addr())
            .expect("send_to");
    }
    let mut batch = RecvBatch::new(16);
    let mut stamps = Vec::new();
    while stamps.len() < 10 {
        let n = receiver
            .recv_batch(&mut batch, common::DELIVERY_TIMEOUT)
            .expect("recv_batch");
        assert!(n > 0, "datagrams arrive");
        stamps.extend(batch.iter().map(|d| {
            d.kernel_rx_realtime_ns
                .expect("a kernel timestamp on every datagram")
        }));
    }
    let after_ns = realtime_now_ns();
    for ts in &stamps {
        assert!(
            (before_ns..=after_ns).contains(ts),
            "arrival {ts} outside the send/receive window {before_ns}..={after_ns}"
        );
    }
    assert!(
        stamps.windows(2).all(|w| w[0] <= w[1]),
        "arrivals are in order: {stamps:?}"
    );
    let n = plain
        .recv_batch(&mut batch, common::DELIVERY_TIMEOUT)
        .expect("recv_batch");
    assert!(n > 0);
    assert!(
        batch.iter().all(|d| d.kernel_rx_realtime_ns.is_none()),
        "no timestamps unless asked for"
    );
}

#[test]
fn reuseport_group_spreads_senders_and_plain_sockets_cannot_share_a_port() {
    let first = bind(UdpConfig {
        reuse_port: true,
        ..UdpConfig::new(loopback())
    });
    let port_addr = first.local_addr();
    let second = bind(UdpConfig {
        reuse_port: true,
        ..UdpConfig::new(port_addr)
    });
    assert_eq!(second.local_addr(), port_addr);
    // Without a selector program the kernel picks a member by the 4-tuple hash: 64 senders on
    // different ports reach both members (all 64 on one member: probability 2^-63).
    let senders: Vec<UdpSocket> = (0..64).map(|_| bind(UdpConfig::new(loopback()))).collect();
    for s in &senders {
        s.send_to(b"hello", port_addr).expect("send_to");
    }
    let got = receive_all(&[&first, &second], senders.len());
    let members: BTreeSet<usize> = got.iter().map(|(i, _, _)| *i).collect();
    assert_eq!(members, BTreeSet::from([0, 1]));

    let err = UdpSocket::bind(&UdpConfig::new(port_addr))
        .expect_err("a socket outside the group cannot bind the port");
    match err {
        NetError::Syscall {
            call: "bind",
            addr: Some(addr),
            source,
        } => {
            assert_eq!(addr, port_addr);
            assert_eq!(source.raw_os_error(), Some(libc_eaddrinuse()));
        }
        other => panic!("unexpected error {other:?}"),
    }
}

fn libc_eaddrinuse() -> i32 {
    98 // EADDRINUSE on Linux
}

#[test]
fn busy_poll_returns_at_once_and_blocking_waits_for_the_first_datagram() {
    let busy = bind(UdpConfig {
        busy_poll: true,
        ..UdpConfig::new(loopback())
    });
    let blocking = bind(UdpConfig::new(loopback()));
    let mut batch = RecvBatch::new(8);
    assert_eq!(
        busy.recv_batch(&mut batch, Duration::from_secs(3600))
            .expect("recv"),
        0,
        "busy-poll never waits"
    );
    assert_eq!(
        blocking
            .recv_batch(&mut batch, Duration::from_millis(5))
            .expect("recv"),
        0,
        "timeout without data"
    );
    let to = blocking.local_addr();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        let s = UdpSocket::bind(&UdpConfig::new(loopback())).expect("bind");
        s.send_to(b"late", to).expect("send_to");
    });
    let n = blocking
        .recv_batch(&mut batch, common::DELIVERY_TIMEOUT)
        .expect("recv");
    sender.join().expect("sender thread");
    assert_eq!(n, 1);
    assert_eq!(batch.get(0).bytes, b"late");
    assert!(batch.try_get(1).is_none());
}

#[test]
fn bad_configurations_and_oversized_sends_are_typed_errors() {
    let check = |config: UdpConfig| {
        UdpSocket::bind(&config)
            .expect_err("invalid config")
            .to_string()
    };
    let base = UdpConfig::new(loopback());
    expect![["invalid UdpConfig.batch_max = 0: must be 1..=BATCH_MAX (64)"]].assert_eq(&check(
        UdpConfig {
            batch_max: 0,
            ..base.clone()
        },
    ));
    expect![["invalid UdpConfig.batch_max = 65: must be 1..=BATCH_MAX (64)"]].assert_eq(&check(
        UdpConfig {
            batch_max: 65,
            ..base.clone()
        },
    ));
    expect![["invalid UdpConfig.recv_buffer_bytes = 100: must be RECV_BUFFER_BYTES_MIN..=RECV_BUFFER_BYTES_MAX (8232 B ..= 1 GiB)"]]
        .assert_eq(&check(UdpConfig { recv_buffer_bytes: 100, ..base.clone() }));

    let socket = bind(base);
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let err = socket
        .send_to(&vec![0; FRAME_BYTES_MAX + 1], to)
        .expect_err("oversized");
    expect![["datagram of 4117 bytes to 127.0.0.1:9 is longer than FRAME_BYTES_MAX (4116)"]]
        .assert_eq(&err.to_string());
    let mut batch = SendBatch::new(2);
    assert_eq!(
        batch.try_push(&vec![0; FRAME_BYTES_MAX + 1], to),
        Err(PushError::TooLong {
            len: FRAME_BYTES_MAX + 1,
            max: FRAME_BYTES_MAX
        })
    );
    assert!(batch.push(b"a", to) && batch.push(b"b", to));
    assert_eq!(
        batch.try_push(b"c", to),
        Err(PushError::Full { capacity: 2 })
    );
    assert_eq!(
        SendBatch::new(0).capacity(),
        1,
        "capacities are clamped to 1..=BATCH_MAX"
    );
    assert_eq!(RecvBatch::new(1000).capacity(), BATCH_MAX);
}

#[test]
fn sending_to_an_unroutable_address_drops_that_datagram_and_keeps_the_rest() {
    let socket = bind(UdpConfig::new(loopback()));
    let receiver = bind(UdpConfig::new(loopback()));
    let mut batch = SendBatch::new(4);
    // Port 0 is not a valid destination: the kernel refuses that datagram (EINVAL).
    assert!(batch.push(b"bad", "127.0.0.1:0".parse().unwrap()));
    assert!(batch.push(b"good", receiver.local_addr()));
    let err = socket
        .send_batch(&mut batch)
        .expect_err("the first datagram is refused");
    assert!(
        matches!(err, NetError::Syscall { call: "sendmmsg", addr: Some(a), .. } if a.port() == 0),
        "{err:?}"
    );
    assert_eq!(
        batch.len(),
        1,
        "the refused datagram left the batch, the next one stayed"
    );
    assert_eq!(socket.send_batch(&mut batch).expect("send the rest"), 1);
    let got = receive_all(&[&receiver], 1);
    assert_eq!(got[0].1, b"good");
    assert_eq!(socket.stats().send_failed_dropped, 1);
}

#[test]
fn reply_addresses_round_trip() {
    let render = |text: &str| {
        let addr: SocketAddr = text.parse().unwrap();
        let reply = reply_addr(addr);
        assert_eq!(socket_addr(&reply), addr, "round trip of {text}");
        format!("{text} -> ip={:02x?} port={}", reply.ip, reply.port)
    };
    expect![["127.0.0.1:4000 -> ip=[00, 00, 00, 00, 00, 00, 00, 00, 00, 00, ff, ff, 7f, 00, 00, 01] port=4000"]]
        .assert_eq(&render("127.0.0.1:4000"));
    expect![["[2001:db8::7]:53 -> ip=[20, 01, 0d, b8, 00, 00, 00, 00, 00, 00, 00, 00, 00, 00, 00, 07] port=53"]]
        .assert_eq(&render("[2001:db8::7]:53"));
    let mapped = ReplyAddr {
        ip: "::ffff:10.1.2.3"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
        port: 9,
    };
    assert_eq!(
        socket_addr(&mapped),
        "10.1.2.3:9".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn ipv6_sockets_work_too() {
    let Ok(receiver) = UdpSocket::bind(&UdpConfig::new("[::1]:0".parse().unwrap())) else {
        panic!("IPv6 loopback is not configured on this machine");
    };
    let sender = bind(UdpConfig::new("[::1]:0".parse().unwrap()));
    sender
        .send_to(b"six", receiver.local_addr())
        .expect("send_to");
    let got = receive_all(&[&receiver], 1);
    assert_eq!(
        (got[0].1.as_slice(), got[0].2),
        (&b"six"[..], sender.local_addr())
    );
}

#[test]
fn a_dual_stack_socket_answers_ipv4_clients_at_their_reply_address() {
    let server = bind(UdpConfig::new("[::]:0".parse().unwrap()));
    let client = bind(UdpConfig::new(loopback()));
    client
        .send_to(
            b"ping",
            SocketAddr::from((Ipv4Addr::LOCALHOST, server.local_addr().port())),
        )
        .expect("send_to");
    let got = receive_all(&[&server], 1);
    let mapped = SocketAddr::new(
        Ipv4Addr::LOCALHOST.to_ipv6_mapped().into(),
        client.local_addr().port(),
    );
    assert_eq!(got[0].2, mapped, "an IPv4 sender seen by an IPv6 socket");
    // The engine carries the sender as a reply address; its socket address is plain IPv4,
    // which the IPv6 socket sends to as IPv4-mapped.
    let back = socket_addr(&reply_addr(got[0].2));
    assert_eq!(back, client.local_addr());
    server
        .send_to(b"pong", back)
        .expect("send_to an IPv4 address from an IPv6 socket");
    let mut batch = SendBatch::new(2);
    assert!(batch.push(b"pong2", back));
    assert_eq!(
        server
            .send_batch(&mut batch)
            .expect("send_batch to an IPv4 address"),
        1
    );
    let replies = receive_all(&[&client], 2);
    assert_eq!(
        replies.iter().map(|r| r.1.as_slice()).collect::<Vec<_>>(),
        vec![&b"pong"[..], &b"pong2"[..]]
    );
}

#[test]
fn echo_ceiling_measures_answered_requests() {
    for batch in [1, 8] {
        let m = udp_echo_ceiling(Duration::from_millis(30), batch).expect("echo ceiling");
        assert!(m.requests > 0, "{m:?}");
        assert_eq!(
            (m.batch, m.datagram_bytes),
            (batch, naam_net::ECHO_DATAGRAM_BYTES)
        );
        assert!(m.requests_per_s > 0.0 && m.elapsed_ns > 0);
    }
    assert!(matches!(
        udp_echo_ceiling(Duration::ZERO, 1),
        Err(NetError::Config {
            field: "udp_echo_ceiling.duration_ms",
            ..
        })
    ));
    assert!(matches!(
        udp_echo_ceiling(Duration::from_millis(1), 65),
        Err(NetError::Config {
            field: "udp_echo_ceiling.batch",
            ..
        })
    ));
}
