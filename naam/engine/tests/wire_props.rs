//! Property tests of the wire format: decode ∘ encode is the identity for every valid frame, and
//! decoding arbitrary bytes never panics.

use naam_engine::abi::{
    ACCESS_BYTES_MAX, ACCESSES_PER_STEP_MAX, ARGS_BYTES_MAX, REPLY_BYTES_MAX, STATE_BYTES_MAX,
};
use naam_engine::wire::*;
use naam_engine::*;
use proptest::prelude::*;

fn descriptor() -> impl Strategy<Value = Descriptor> {
    (
        any::<u64>(),
        any::<u64>(),
        1..=ACCESS_BYTES_MAX as u32,
        any::<bool>(),
    )
        .prop_map(|(rkey, offset, len, write)| Descriptor {
            rkey: Rkey(rkey),
            offset,
            len,
            kind: if write {
                AccessKind::Write
            } else {
                AccessKind::Read
            },
        })
}

fn descriptors() -> impl Strategy<Value = Descriptors> {
    prop::collection::vec(descriptor(), 0..=ACCESSES_PER_STEP_MAX)
        .prop_map(|v| Descriptors::from_slice(&v).unwrap())
}

#[derive(Debug, Clone)]
struct OwnedInvoke {
    fixed: (u32, u32, u64, u32, bool, u8, u8),
    reply_to: Option<ReplyAddr>,
    args: Vec<u8>,
    descriptors: Descriptors,
    origin: Descriptors,
    state: Vec<u8>,
}

impl OwnedInvoke {
    fn view(&self) -> Invoke<'_> {
        let (tenant, function, id, flow, pushback, step, attempt) = self.fixed;
        Invoke {
            tenant: TenantId(tenant),
            function: FunctionId(function),
            request_id: RequestId(id),
            flow,
            flags: InvokeFlags(if pushback {
                InvokeFlags::ALLOW_PUSHBACK
            } else {
                0
            }),
            step,
            attempt,
            reply_to: self.reply_to,
            args: &self.args,
            descriptors: self.descriptors,
            origin: if step == 0 {
                Descriptors::new()
            } else {
                self.origin
            },
            state: &self.state,
        }
    }
}

fn invoke() -> impl Strategy<Value = OwnedInvoke> {
    let fixed = (
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u32>(),
        any::<bool>(),
        0u8..16,
        any::<u8>(),
    );
    let reply_to = prop::option::of(
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| ReplyAddr { ip, port }),
    );
    let origin = prop::collection::vec(descriptor(), 1..=ACCESSES_PER_STEP_MAX)
        .prop_map(|v| Descriptors::from_slice(&v).unwrap());
    (
        fixed,
        reply_to,
        prop::collection::vec(any::<u8>(), 0..=ARGS_BYTES_MAX),
        descriptors(),
        origin,
        prop::collection::vec(any::<u8>(), 0..=STATE_BYTES_MAX),
    )
        .prop_map(
            |(fixed, reply_to, args, descriptors, origin, state)| OwnedInvoke {
                fixed,
                reply_to,
                args,
                descriptors,
                origin,
                state,
            },
        )
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Ok),
        Just(Status::Pushback),
        (1u16..=10, any::<u32>()).prop_map(|(k, detail)| Status::Error(ErrorCode {
            kind: ErrorKind::from_code(k).unwrap(),
            detail
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn invoke_round_trips(m in invoke()) {
        let mut buf = Vec::new();
        m.view().encode(&mut buf).unwrap();
        prop_assert!(buf.len() <= INVOKE_BYTES_MAX);
        prop_assert_eq!(Frame::decode(&buf).unwrap(), Frame::Invoke(m.view()));
    }

    #[test]
    fn a_message_head_encodes_its_invokes_bytes(m in invoke(), stale in prop::collection::vec(any::<u8>(), 0..64)) {
        let (tenant, function, id, flow, pushback, _, _) = m.fixed;
        let head = MessageHead {
            tenant: TenantId(tenant),
            function: FunctionId(function),
            request_id: RequestId(id),
            flow,
            flags: InvokeFlags(if pushback { InvokeFlags::ALLOW_PUSHBACK } else { 0 }),
            reply_to: m.reply_to,
        };
        let invoke = Invoke {
            flow,
            flags: head.flags,
            reply_to: m.reply_to,
            ..Invoke::new_message(head.tenant, head.function, head.request_id, &m.args, m.descriptors)
        };
        let (mut expected, mut buf) = (Vec::new(), stale);
        invoke.encode(&mut expected).unwrap();
        head.encode_invoke(&m.args, &m.descriptors, &mut buf).unwrap();
        prop_assert_eq!(buf, expected);
    }

    #[test]
    fn reply_round_trips(id in any::<u64>(), st in status(), loc in 0u8..3, steps in any::<u8>(), attempts in any::<u8>(),
                         permille in 0u16..=1000, payload in prop::collection::vec(any::<u8>(), 0..=REPLY_BYTES_MAX)) {
        let reply = Reply { request_id: RequestId(id), status: st, location: Location::from_code(loc).unwrap(), steps, attempts,
                            client_permille: permille, payload: &payload };
        let mut buf = Vec::new();
        Frame::Reply(reply).encode(&mut buf).unwrap();
        prop_assert!(buf.len() <= FRAME_BYTES_MAX);
        prop_assert_eq!(Frame::decode(&buf).unwrap(), Frame::Reply(reply));
    }

    #[test]
    fn reads_round_trip(tenant in any::<u32>(), id in any::<u64>(), rkey in any::<u64>(), offset in any::<u64>(),
                        len in 1..=ACCESS_BYTES_MAX as u32, data in prop::collection::vec(any::<u8>(), 0..=ACCESS_BYTES_MAX)) {
        let read = ReadRequest { tenant: TenantId(tenant), read_id: id, rkey: Rkey(rkey), offset, len };
        let mut buf = Vec::new();
        Frame::Read(read).encode(&mut buf).unwrap();
        prop_assert_eq!(Frame::decode(&buf).unwrap(), Frame::Read(read));
        let reply = ReadReply { read_id: id, denial: 0, data: &data };
        Frame::ReadReply(reply).encode(&mut buf).unwrap();
        prop_assert!(buf.len() <= FRAME_BYTES_MAX);
        prop_assert_eq!(Frame::decode(&buf).unwrap(), Frame::ReadReply(reply));
    }

    #[test]
    fn samples_round_trip(at in any::<u64>(), loc in prop::option::of(0u8..3), delay in any::<u64>(), util in any::<u16>(),
                          queue in any::<u32>(), done in any::<u64>(), period in any::<u64>()) {
        let s = LoadSample { at: Nanos(at), location: loc.and_then(Location::from_code), queue_delay_ns: delay,
                             utilisation_permille: util, queue_len: queue, completions: done, period_ns: period };
        let mut buf = Vec::new();
        Frame::Sample(s).encode(&mut buf).unwrap();
        prop_assert_eq!(Frame::decode(&buf).unwrap(), Frame::Sample(s));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Frame::decode(&bytes);
    }

    #[test]
    fn decoding_mutated_frames_never_panics(m in invoke(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
                                            cut in any::<prop::sample::Index>()) {
        let mut buf = Vec::new();
        m.view().encode(&mut buf).unwrap();
        for (at, byte) in flips {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        let _ = Frame::decode(&buf);
        let _ = Frame::decode(&buf[..cut.index(buf.len() + 1)]);
    }
}

#[test]
fn oversized_parts_are_refused_on_both_sides() {
    let args = vec![0u8; ARGS_BYTES_MAX + 1];
    let m = Invoke::new_message(
        TenantId(1),
        FunctionId(1),
        RequestId(1),
        &args,
        Descriptors::new(),
    );
    let mut buf = Vec::new();
    assert_eq!(
        m.encode(&mut buf),
        Err(EncodeError::TooLong {
            field: "args",
            len: ARGS_BYTES_MAX + 1,
            max: ARGS_BYTES_MAX
        })
    );
    let head = MessageHead {
        tenant: m.tenant,
        function: m.function,
        request_id: m.request_id,
        flow: 0,
        flags: InvokeFlags(0),
        reply_to: None,
    };
    assert_eq!(
        head.encode_invoke(&args, &Descriptors::new(), &mut buf),
        m.encode(&mut Vec::new()),
        "a message head refuses what its Invoke refuses"
    );
    let too_long = Descriptor::read(Rkey(1), 0, ACCESS_BYTES_MAX as u32 + 1);
    let descriptors = Descriptors::from_slice(&[too_long]).unwrap();
    assert_eq!(
        head.encode_invoke(&[], &descriptors, &mut buf),
        Err(EncodeError::TooLong {
            field: "descriptor.len",
            len: ACCESS_BYTES_MAX + 1,
            max: ACCESS_BYTES_MAX
        })
    );
    // A frame that claims a too-long args block is rejected before anything is read.
    let ok = Invoke { args: &[], ..m };
    ok.encode(&mut buf).unwrap();
    let args_len_at = HEADER_BYTES + 4 + 4 + 8 + 4 + 2 + 4;
    buf[args_len_at..args_len_at + 2].copy_from_slice(&(ARGS_BYTES_MAX as u16 + 1).to_le_bytes());
    assert_eq!(
        Frame::decode(&buf),
        Err(DecodeError::TooLong {
            field: "args",
            len: ARGS_BYTES_MAX + 1,
            max: ARGS_BYTES_MAX
        })
    );
}

#[test]
fn decode_errors_name_the_field() {
    expect_test::expect![[r#"frame truncated in `magic`: needs 2 more bytes, 1 left"#]]
        .assert_eq(&Frame::decode(&[0x41]).unwrap_err().to_string());
    expect_test::expect![[r#"bad magic 0x0000 (expected 0x4e41)"#]]
        .assert_eq(&Frame::decode(&[0, 0, 1, 1]).unwrap_err().to_string());
    expect_test::expect![[r#"unsupported wire version 9 (this build speaks 1)"#]]
        .assert_eq(&Frame::decode(&[0x41, 0x4e, 9, 1]).unwrap_err().to_string());
    expect_test::expect![[r#"unknown frame kind 77"#]]
        .assert_eq(&Frame::decode(&[0x41, 0x4e, 1, 77]).unwrap_err().to_string());
}

/// The fields of an encoded frame in order, with their sizes: where a field-by-field reader
/// runs out of a truncated frame.
fn truncated_at(fields: &[(&'static str, usize)], frame_len: usize) -> DecodeError {
    let mut pos = 0;
    for &(field, need) in fields {
        if pos + need > frame_len {
            return DecodeError::Truncated {
                field,
                need,
                have: frame_len - pos,
            };
        }
        pos += need;
    }
    panic!("a frame of {frame_len} bytes is not truncated");
}

const DESCRIPTOR_FIELDS: [(&str, usize); 4] = [
    ("descriptor.rkey", 8),
    ("descriptor.offset", 8),
    ("descriptor.len", 4),
    ("descriptor.kind", 4),
];

/// Every proper prefix of `frame` fails naming the field of `fields` that ran out, with what it
/// needed and what was left.
fn assert_truncations_name_the_field(frame: Frame<'_>, fields: &[(&'static str, usize)]) {
    let mut buf = Vec::new();
    frame.encode(&mut buf).unwrap();
    assert_eq!(buf.len(), fields.iter().map(|&(_, n)| n).sum::<usize>());
    for len in 0..buf.len() {
        let expected = Err(truncated_at(fields, len));
        assert_eq!(Frame::decode(&buf[..len]), expected, "{len}");
    }
}

/// Also where the decoder reads a fixed part (an Invoke's head, a descriptor) with one bounds
/// check.
#[test]
fn every_truncated_invoke_names_the_field_that_ran_out() {
    let d = |offset| Descriptor {
        rkey: Rkey(7),
        offset,
        len: 64,
        kind: AccessKind::Read,
    };
    let invoke = Invoke {
        step: 1,
        reply_to: Some(ReplyAddr {
            ip: [1; 16],
            port: 9,
        }),
        origin: Descriptors::from_slice(&[d(0)]).unwrap(),
        state: &[5; 12],
        ..Invoke::new_message(
            TenantId(1),
            FunctionId(2),
            RequestId(3),
            &[4; 10],
            Descriptors::from_slice(&[d(64), d(128)]).unwrap(),
        )
    };
    let mut fields = vec![("magic", 2), ("version", 1), ("kind", 1)];
    fields.extend([
        ("tenant", 4),
        ("function", 4),
        ("request_id", 8),
        ("flow", 4),
    ]);
    fields.extend([
        ("flags", 2),
        ("counts", 4),
        ("args_len", 2),
        ("state_len", 2),
    ]);
    fields.extend([("reply_to.present", 1), ("reply_to.pad", 1)]);
    fields.extend([("reply_to.port", 2), ("reply_to.ip", 16), ("args", 10)]);
    fields.extend(DESCRIPTOR_FIELDS.repeat(3));
    fields.push(("state", 12));
    assert_truncations_name_the_field(Frame::Invoke(invoke), &fields);
}

/// Also where the decoder reads the Reply's head with one bounds check.
#[test]
fn every_truncated_reply_names_the_field_that_ran_out() {
    let reply = Reply {
        request_id: RequestId(3),
        status: Status::Ok,
        location: Location::Nic,
        steps: 1,
        attempts: 0,
        client_permille: 10,
        payload: &[6; 7],
    };
    let mut fields = vec![("magic", 2), ("version", 1), ("kind", 1), ("request_id", 8)];
    fields.extend([("reply.status", 4), ("error.kind", 2)]);
    fields.extend([("client_permille", 2), ("error.detail", 4)]);
    fields.extend([("payload_len", 2), ("reply.pad", 2), ("payload", 7)]);
    assert_truncations_name_the_field(Frame::Reply(reply), &fields);
}

/// The client's decoder gives `Frame::decode`'s answer for the kinds a client takes, and rejects
/// every other byte string: with `Frame::decode`'s own error when it is malformed, as not for a
/// client when it is a valid frame of another kind.
fn assert_client_decode_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
    match (Frame::decode(bytes), ClientFrame::decode(bytes)) {
        (Ok(Frame::Reply(a)), Ok(ClientFrame::Reply(b))) => prop_assert_eq!(a, b),
        (Ok(Frame::ReadReply(a)), Ok(ClientFrame::ReadReply(b))) => prop_assert_eq!(a, b),
        (Ok(frame), Err(ClientDecodeError::NotForClient { kind })) => {
            prop_assert!(!matches!(frame, Frame::Reply(_) | Frame::ReadReply(_)));
            prop_assert_eq!(frame.kind(), kind);
        }
        (Err(a), Err(ClientDecodeError::Malformed(b))) => prop_assert_eq!(a, b),
        (full, client) => prop_assert!(false, "{full:?} but the client's {client:?}"),
    }
    Ok(())
}

/// [`assert_agrees_on_variants`] with the client's decoder.
fn assert_client_decode_agrees_on_variants(buf: &[u8]) -> Result<(), TestCaseError> {
    assert_agrees_on_variants(buf, assert_client_decode_agrees)
}

/// `agrees` on each prefix of `buf`, `buf` with each kind byte, each version byte and a bad
/// magic, and `buf` with a trailing byte.
fn assert_agrees_on_variants(
    buf: &[u8],
    agrees: impl Fn(&[u8]) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    for len in 0..=buf.len() {
        agrees(&buf[..len])?;
    }
    let mut variant = buf.to_vec();
    for at in 0..HEADER_BYTES.min(buf.len()) {
        for byte in 0..=u8::MAX {
            variant[at] = byte;
            agrees(&variant)?;
        }
        variant[at] = buf[at];
    }
    variant.push(0);
    agrees(&variant)
}

/// The server's in-place decoder gives `Frame::decode`'s Invoke, says "not an Invoke" exactly
/// for `Frame::decode`'s other kinds, and `Frame::decode`'s error for anything else — into a
/// fresh Invoke and into one that already holds a decoded Invoke (a reused target).
fn assert_in_place_decode_agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
    let mut invoke = Invoke::empty();
    for _ in 0..2 {
        match (
            Frame::decode(bytes),
            Frame::decode_invoke_in_place(bytes, &mut invoke),
        ) {
            (Ok(Frame::Invoke(a)), Ok(true)) => prop_assert_eq!(a, invoke),
            (Ok(frame), Ok(false)) => prop_assert!(!matches!(frame, Frame::Invoke(_))),
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (full, in_place) => prop_assert!(false, "{full:?} but in place {in_place:?}"),
        }
    }
    Ok(())
}

fn client_reply() -> impl Strategy<Value = (u64, Status, u8, u8, u8, u16, Vec<u8>)> {
    (
        any::<u64>(),
        status(),
        0u8..3,
        any::<u8>(),
        any::<u8>(),
        0u16..=1000,
        prop::collection::vec(any::<u8>(), 0..=64),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn client_decoder_agrees_on_replies((id, st, loc, steps, attempts, permille, payload) in client_reply()) {
        let reply = Reply { request_id: RequestId(id), status: st, location: Location::from_code(loc).unwrap(), steps, attempts,
                            client_permille: permille, payload: &payload };
        let mut buf = Vec::new();
        Frame::Reply(reply).encode(&mut buf).unwrap();
        prop_assert_eq!(ClientFrame::decode(&buf), Ok(ClientFrame::Reply(reply)));
        assert_client_decode_agrees_on_variants(&buf)?;
    }

    #[test]
    fn client_decoder_agrees_on_read_replies(id in any::<u64>(), denial in 0u32..3, data in prop::collection::vec(any::<u8>(), 0..=64)) {
        let data = if denial == 0 { &data[..] } else { &[] };
        let reply = ReadReply { read_id: id, denial, data };
        let mut buf = Vec::new();
        Frame::ReadReply(reply).encode(&mut buf).unwrap();
        prop_assert_eq!(ClientFrame::decode(&buf), Ok(ClientFrame::ReadReply(reply)));
        assert_client_decode_agrees_on_variants(&buf)?;
    }

    #[test]
    fn client_decoder_rejects_the_other_kinds(m in invoke(), read in any::<(u32, u64, u64, u64)>(), at in any::<u64>()) {
        let mut buf = Vec::new();
        m.view().encode(&mut buf).unwrap();
        assert_client_decode_agrees_on_variants(&buf)?;
        let (tenant, read_id, rkey, offset) = read;
        let request = ReadRequest { tenant: TenantId(tenant), read_id, rkey: Rkey(rkey), offset, len: 8 };
        Frame::Read(request).encode(&mut buf).unwrap();
        assert_client_decode_agrees_on_variants(&buf)?;
        Frame::Sample(LoadSample { at: Nanos(at), ..LoadSample::default() }).encode(&mut buf).unwrap();
        assert_client_decode_agrees_on_variants(&buf)?;
    }

    #[test]
    fn client_decoder_agrees_on_mutated_replies((id, st, loc, steps, attempts, permille, payload) in client_reply(),
                                               flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let reply = Reply { request_id: RequestId(id), status: st, location: Location::from_code(loc).unwrap(), steps, attempts,
                            client_permille: permille, payload: &payload };
        let mut buf = Vec::new();
        Frame::Reply(reply).encode(&mut buf).unwrap();
        for (at, byte) in flips {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        assert_client_decode_agrees(&buf)?;
    }

    #[test]
    fn in_place_decoder_agrees_on_invokes_and_other_kinds(m in invoke(), at in any::<u64>(),
                                                          flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut buf = Vec::new();
        m.view().encode(&mut buf).unwrap();
        assert_agrees_on_variants(&buf, assert_in_place_decode_agrees)?;
        for (at, byte) in flips {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        assert_in_place_decode_agrees(&buf)?;
        Frame::Sample(LoadSample { at: Nanos(at), ..LoadSample::default() }).encode(&mut buf).unwrap();
        assert_agrees_on_variants(&buf, assert_in_place_decode_agrees)?;
    }

    #[test]
    fn in_place_decoder_agrees_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_in_place_decode_agrees(&bytes)?;
    }

    #[test]
    fn client_decoder_agrees_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        assert_client_decode_agrees(&bytes)?;
    }
}
