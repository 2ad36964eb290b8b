//! The sans-IO client endpoint, driven by hand: where requests go, how replies, pushbacks, read
//! replies, timeouts and failed sends end them, and that every issued request ends exactly once.

mod support;

use std::sync::Arc;

use naam_engine::client::{
    Call, Carries, Destination, EndpointConfig, EndpointConfigError, Event, Inbound, IssueError,
    Outcome, Route,
};
use naam_engine::wire::{ErrorCode, ErrorKind, ReadReply, Reply};
use naam_engine::*;
use support::*;

const TIMEOUT_NS: u64 = 1_000_000;

struct Fixture {
    client: ClientEndpoint<u32>,
    memory: Memory,
    regions: Arc<RegionTable>,
    ds: Dataset,
}

fn fixture(flow: u32, controller: Option<Controller>) -> Fixture {
    let seed = test_seed(0xc1_0001);
    let (regions, memory, ds) = dataset(&pairs(64, seed.0), 5);
    let regions = Arc::new(regions);
    let client_regions = Arc::new(RegionTable::from_catalog(&regions.catalog_for(TENANT)).unwrap());
    let client = ClientEndpoint::new(
        EndpointConfig::new(flow, TIMEOUT_NS),
        Arc::new(functions()),
        client_regions,
        controller,
        Nanos(0),
    )
    .unwrap();
    Fixture {
        client,
        memory,
        regions,
        ds,
    }
}

fn lookup(ds: &Dataset, index: usize) -> (Vec<u8>, wire::Descriptors) {
    hash_request(ds, ds.pairs[index].0)
}

fn call<'a>(args: &'a [u8], descriptors: &'a wire::Descriptors) -> Call<'a> {
    Call {
        tenant: TENANT,
        function: HASH_GET,
        args,
        descriptors,
        server_only: false,
    }
}

fn reply_frame(
    id: RequestId,
    status: Status,
    location: Location,
    hint: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::new();
    Frame::Reply(Reply {
        request_id: id,
        status,
        location,
        steps: 2,
        attempts: 0,
        client_permille: hint,
        payload,
    })
    .encode(&mut frame)
    .unwrap();
    frame
}

/// Answers every read the client queued from memory (the RNIC), runs its local steps, until it
/// queues nothing more; returns the events.
fn serve_reads(f: &mut Fixture, now: Nanos) -> Vec<(Event<u32>, Vec<u8>)> {
    let mut events = Vec::new();
    for _ in 0..100 {
        let mut frame = Vec::new();
        let mut answered = 0;
        while let Some(t) = f.client.poll_transmit(&mut frame) {
            assert_eq!(t.to, Destination::Rnic, "only reads are queued here");
            let Ok(Frame::Read(read)) = Frame::decode(&frame) else {
                panic!("a read frame")
            };
            let mut data = vec![0; 4096];
            let memory = &f.memory;
            let reply =
                naam_engine::rnic::answer_read(&read, &f.regions, &mut data, |r, off, out| {
                    out.copy_from_slice(&memory[&r][off as usize..off as usize + out.len()]);
                    true
                });
            let mut out = Vec::new();
            Frame::ReadReply(reply).encode(&mut out).unwrap();
            assert_eq!(f.client.handle_datagram(now, &out), Inbound::ReadReply);
            answered += 1;
        }
        f.client.run_local(now, 64);
        let mut payload = Vec::new();
        while let Some(e) = f.client.poll_event(&mut payload) {
            events.push((e, std::mem::take(&mut payload)));
        }
        if answered == 0 && !f.client.local_ready() {
            return events;
        }
    }
    panic!("the client did not settle");
}

#[test]
fn requests_go_to_the_ingress_and_replies_end_them() {
    let mut f = fixture(3, None);
    let (args, d) = lookup(&f.ds, 0);
    let route = f
        .client
        .issue(Nanos(10), Nanos(5), 7, &call(&args, &d), 70)
        .unwrap();
    assert_eq!(route, Route::Server);
    let mut frame = Vec::new();
    assert!(f.client.has_transmit(), "the request waits to be sent");
    let t = f.client.poll_transmit(&mut frame).unwrap();
    assert!(!f.client.has_transmit(), "it was the only transmit");
    assert!(!f.client.has_event(), "nothing has ended");
    let id = f.client.request_id(7);
    assert_eq!(id, RequestId(3 << 48 | 7));
    assert_eq!(t.to, Destination::Ingress);
    assert_eq!(t.carries, Carries::Request(id));
    let Ok(Frame::Invoke(msg)) = Frame::decode(&frame) else {
        panic!("an invoke")
    };
    assert_eq!((msg.flow, msg.request_id), (3, id));
    assert!(msg.flags.has(wire::InvokeFlags::ALLOW_PUSHBACK));
    let reply = reply_frame(id, Status::Ok, Location::Nic, 0, b"\x01answer");
    assert_eq!(f.client.handle_datagram(Nanos(50), &reply), Inbound::Reply);
    let mut payload = Vec::new();
    assert!(f.client.has_event(), "the reply ended the request");
    let e = f.client.poll_event(&mut payload).unwrap();
    assert!(!f.client.has_event(), "one event");
    assert_eq!(
        (e.cookie, e.outcome, e.location),
        (70, Outcome::Ok, Some(Location::Nic))
    );
    assert_eq!(payload, b"\x01answer");
    assert_eq!(f.client.inflight(), 0);
    assert_eq!(
        f.client.handle_datagram(Nanos(60), &reply),
        Inbound::Stale,
        "a duplicate"
    );
    assert!(
        f.client.poll_event(&mut payload).is_none(),
        "ended exactly once"
    );
}

#[test]
fn the_servers_hint_sets_the_share_run_locally() {
    let mut f = fixture(0, None);
    let (args, d) = lookup(&f.ds, 0);
    f.client
        .issue(Nanos(0), Nanos(0), 1, &call(&args, &d), 1)
        .unwrap();
    let id = f.client.request_id(1);
    f.client.poll_transmit(&mut Vec::new()).unwrap();
    let reply = reply_frame(id, Status::Ok, Location::Host, 1000, &[0]);
    f.client.handle_datagram(Nanos(1), &reply);
    assert_eq!(f.client.client_permille(), 1000);
    let (args, d) = lookup(&f.ds, 1);
    assert_eq!(
        f.client
            .issue(Nanos(2), Nanos(2), 2, &call(&args, &d), 2)
            .unwrap(),
        Route::Local
    );
    let server_only = Call {
        server_only: true,
        ..call(&args, &d)
    };
    assert_eq!(
        f.client
            .issue(Nanos(2), Nanos(2), 3, &server_only, 3)
            .unwrap(),
        Route::Server,
        "a host-native call never runs at the client"
    );
}

/// The steering key of the one request `issue` put in the endpoint's transmit queue.
fn sent_key(client: &mut ClientEndpoint<u32>) -> Option<SteerKey> {
    let transmit = client.poll_transmit(&mut Vec::new()).expect("a transmit");
    assert!(!client.has_transmit());
    assert!(client.poll_transmit(&mut Vec::new()).is_none());
    transmit.steer
}

#[test]
fn a_server_only_call_is_pinned_unless_the_server_pins_nothing() {
    for pinned in [true, false] {
        let seed = test_seed(0xc1_0002);
        let (regions, _memory, ds) = dataset(&pairs(64, seed.0), 5);
        let mut config = EndpointConfig::new(0, TIMEOUT_NS);
        config.server_only_pinned = pinned;
        let catalog = regions.catalog_for(TENANT);
        let client_regions = Arc::new(RegionTable::from_catalog(&catalog).unwrap());
        let mut client: ClientEndpoint<u32> = ClientEndpoint::new(
            config,
            Arc::new(functions()),
            client_regions,
            None,
            Nanos(0),
        )
        .unwrap();
        // Even with every bucket the client's, a server-only call goes to the server.
        client.set_client_permille(1000);
        let (args, d) = lookup(&ds, 0);
        let server_only = Call {
            server_only: true,
            ..call(&args, &d)
        };
        let route = client
            .issue(Nanos(0), Nanos(0), 1, &server_only, 1)
            .unwrap();
        assert_eq!(route, Route::Server, "pinned {pinned}");
        let id = client.request_id(1);
        let expected = match pinned {
            true => SteerKey::Pinned,
            false => SteerKey::Bucket(steer::steer_bucket(id)),
        };
        assert_eq!(sent_key(&mut client), Some(expected), "pinned {pinned}");
    }
}

#[test]
fn a_local_request_reads_through_the_rnic_and_verifies() {
    let mut f = fixture(0, None);
    f.client.set_client_permille(1000);
    let (key, value) = f.ds.pairs[5];
    let (args, d) = hash_request(&f.ds, key);
    assert_eq!(
        f.client
            .issue(Nanos(0), Nanos(0), 9, &call(&args, &d), 90)
            .unwrap(),
        Route::Local
    );
    let events = serve_reads(&mut f, Nanos(100));
    assert_eq!(events.len(), 1);
    let (e, payload) = &events[0];
    assert_eq!(
        (e.cookie, e.outcome, e.location),
        (90, Outcome::Ok, Some(Location::Client))
    );
    assert_eq!(u64::from_le_bytes(payload[1..9].try_into().unwrap()), value);
    let stats = f.client.stats();
    assert_eq!(
        (stats.reads_sent, stats.read_replies),
        (2, 2),
        "bucket, then item"
    );
}

#[test]
fn a_pushback_runs_its_continuation_here() {
    let mut f = fixture(0, None);
    let (key, value) = f.ds.pairs[2];
    let (args, d) = hash_request(&f.ds, key);
    f.client
        .issue(Nanos(0), Nanos(0), 4, &call(&args, &d), 40)
        .unwrap();
    let mut frame = Vec::new();
    f.client.poll_transmit(&mut frame).unwrap();
    // The server pushes the whole message back (its Invoke is the continuation).
    let reply = reply_frame(
        f.client.request_id(4),
        Status::Pushback,
        Location::Host,
        0,
        &frame,
    );
    assert_eq!(f.client.handle_datagram(Nanos(10), &reply), Inbound::Reply);
    let events = serve_reads(&mut f, Nanos(20));
    let (e, payload) = &events[0];
    assert_eq!(
        (e.cookie, e.outcome, e.location),
        (40, Outcome::Ok, Some(Location::Client))
    );
    assert_eq!(u64::from_le_bytes(payload[1..9].try_into().unwrap()), value);
    assert_eq!(f.client.stats().pushed_back, 1);
}

#[test]
fn a_denied_read_fails_the_request_with_the_denial() {
    let mut f = fixture(0, None);
    f.client.set_client_permille(1000);
    let (args, d) = lookup(&f.ds, 0);
    f.client
        .issue(Nanos(0), Nanos(0), 1, &call(&args, &d), 1)
        .unwrap();
    let mut frame = Vec::new();
    let t = f.client.poll_transmit(&mut frame).unwrap();
    let Carries::Read(read_id) = t.carries else {
        panic!("a read")
    };
    let mut out = Vec::new();
    Frame::ReadReply(ReadReply {
        read_id,
        denial: 2,
        data: &[],
    })
    .encode(&mut out)
    .unwrap();
    f.client.handle_datagram(Nanos(5), &out);
    let mut payload = Vec::new();
    let e = f.client.poll_event(&mut payload).unwrap();
    let denied = ErrorCode {
        kind: ErrorKind::AccessDenied,
        detail: 2,
    };
    assert_eq!(e.outcome, Outcome::Error(denied));
    assert_eq!(e.outcome.error_name(), Some("access-denied"));
}

#[test]
fn unanswered_requests_and_reads_time_out_at_the_sweep() {
    let mut f = fixture(0, None);
    let (args, d) = lookup(&f.ds, 0);
    f.client
        .issue(Nanos(0), Nanos(0), 1, &call(&args, &d), 1)
        .unwrap();
    f.client.set_client_permille(1000);
    f.client
        .issue(Nanos(0), Nanos(0), 2, &call(&args, &d), 2)
        .unwrap();
    assert_eq!(
        f.client.poll_timeout(),
        Nanos(0),
        "the first sweep is due at the start"
    );
    f.client.handle_timeout(Nanos(0));
    assert!(f.client.poll_event(&mut Vec::new()).is_none());
    let next = f.client.poll_timeout();
    assert!(next.0 > 0);
    f.client.handle_timeout(Nanos(TIMEOUT_NS + next.0));
    let mut ended = Vec::new();
    while let Some(e) = f.client.poll_event(&mut Vec::new()) {
        ended.push((e.cookie, e.outcome, e.location));
    }
    ended.sort_by_key(|e| e.0);
    assert_eq!(
        ended,
        vec![(1, Outcome::Timeout, None), (2, Outcome::Timeout, None)]
    );
    assert_eq!(
        f.client.stats().reads_failed,
        1,
        "the local request's read expired too"
    );
    assert_eq!(f.client.inflight(), 0);
}

#[test]
fn a_failed_send_ends_the_request_at_once() {
    let mut f = fixture(0, None);
    let (args, d) = lookup(&f.ds, 0);
    f.client
        .issue(Nanos(0), Nanos(0), 1, &call(&args, &d), 11)
        .unwrap();
    let t = f.client.poll_transmit(&mut Vec::new()).unwrap();
    f.client.transmit_failed(Nanos(1), t.carries);
    let e = f.client.poll_event(&mut Vec::new()).unwrap();
    assert_eq!((e.cookie, e.outcome), (11, Outcome::Send));
    assert_eq!(e.outcome.error_name(), Some("send"));
}

#[test]
fn bounds_and_ids_are_checked_at_issue() {
    let mut f = fixture(0, None);
    let mut config = EndpointConfig::new(0, TIMEOUT_NS);
    config.inflight_max = 1;
    let mut one = ClientEndpoint::new(
        config,
        Arc::new(functions()),
        Arc::clone(&f.regions),
        None,
        Nanos(0),
    )
    .unwrap();
    let (args, d) = lookup(&f.ds, 0);
    one.issue(Nanos(0), Nanos(0), 1, &call(&args, &d), 1)
        .unwrap();
    assert_eq!(
        one.issue(Nanos(0), Nanos(0), 2, &call(&args, &d), 2),
        Err(IssueError::InflightFull { max: 1 })
    );
    f.client
        .issue(Nanos(0), Nanos(0), 5, &call(&args, &d), 5)
        .unwrap();
    assert_eq!(
        f.client.issue(Nanos(0), Nanos(0), 5, &call(&args, &d), 6),
        Err(IssueError::Duplicate(RequestId(5)))
    );
    let wide = ClientEndpoint::<u32>::new(
        EndpointConfig::new(0x1_0000, TIMEOUT_NS),
        Arc::new(functions()),
        Arc::clone(&f.regions),
        None,
        Nanos(0),
    );
    assert_eq!(
        wide.unwrap_err(),
        EndpointConfigError::Flow { value: 0x1_0000 },
        "flows above 16 bits do not fit a request id"
    );
}

#[test]
fn a_client_side_policy_samples_every_period() {
    let controller = Controller::new(policy::by_name("cell").unwrap(), RuleKey::DEFAULT);
    let mut f = fixture(0, Some(controller));
    assert_eq!(
        f.client.client_permille(),
        20,
        "cell starts server-side with a probe share"
    );
    let period = naam_engine::client::SAMPLE_PERIOD_NS_DEFAULT;
    assert_eq!(f.client.poll_timeout(), Nanos(0), "the sweep first");
    f.client.handle_timeout(Nanos(0));
    assert_eq!(f.client.poll_timeout(), Nanos(period));
    // Server replies are slow, local runs (via the RNIC) are fast: Cell moves to the client.
    let mut seq = 0;
    for round in 1..=5u64 {
        let now = Nanos(round * period);
        for _ in 0..100 {
            seq += 1;
            let (args, d) = lookup(&f.ds, (seq % 40) as usize);
            let intended = Nanos(now.0 - 500_000);
            match f
                .client
                .issue(now, intended, seq, &call(&args, &d), 0)
                .unwrap()
            {
                Route::Server => {
                    f.client.poll_transmit(&mut Vec::new());
                    let id = f.client.request_id(seq);
                    let reply = reply_frame(id, Status::Ok, Location::Host, 0, &[0]);
                    f.client.handle_datagram(now, &reply);
                }
                Route::Local => {
                    serve_reads(&mut f, Nanos(now.0 - 499_000));
                }
            }
        }
        f.client.handle_timeout(now);
    }
    assert_eq!(f.client.client_permille(), 980, "the client side won");
    let changes = f.client.controller().unwrap().changes();
    assert_eq!(changes.len(), 1, "{changes:?}");
}

/// Requests in flight at once in [`windowed`]'s endpoint, and so its in-flight slots: ids whose
/// sequence numbers differ by a multiple of it share a slot, and all but the first of them are
/// kept apart (the table's fallback map).
const WINDOW: u64 = 8;

/// An endpoint of flow 0 with [`WINDOW`] requests in flight at most (all sent to the server).
fn windowed(f: &Fixture) -> ClientEndpoint<u32> {
    let mut config = EndpointConfig::new(0, TIMEOUT_NS);
    config.inflight_max = WINDOW as usize;
    ClientEndpoint::new(
        config,
        Arc::new(functions()),
        Arc::clone(&f.regions),
        None,
        Nanos(0),
    )
    .unwrap()
}

/// Issues `seq` at `now` with its own number as cookie (the low 32 bits).
fn issue_seq(f: &Fixture, client: &mut ClientEndpoint<u32>, now: Nanos, seq: u64) {
    let (args, d) = lookup(&f.ds, 0);
    let route = client.issue(now, now, seq, &call(&args, &d), seq as u32);
    assert_eq!(route, Ok(Route::Server), "seq {seq}");
}

fn reply_ok(client: &mut ClientEndpoint<u32>, now: Nanos, id: RequestId) -> Inbound {
    let reply = reply_frame(id, Status::Ok, Location::Host, 0, &[0]);
    client.handle_datagram(now, &reply)
}

fn drain_ids(client: &mut ClientEndpoint<u32>) -> Vec<(u64, Outcome)> {
    let mut ended = Vec::new();
    client.drain_events_with(|e, _| ended.push((e.request_id.0, e.outcome)));
    ended
}

#[test]
fn timeouts_end_in_id_order_whichever_slot_or_map_holds_them() {
    let f = fixture(0, None);
    let mut client = windowed(&f);
    let top = naam_engine::client::SEQ_MAX;
    // 9 takes slot 1, so 1 and 17 fall back; 8 takes slot 0, so 0 falls back; the top sequence
    // number takes the last slot.
    let seqs = [9, 1, 17, 8, 0, top];
    for &seq in &seqs {
        issue_seq(&f, &mut client, Nanos(0), seq);
    }
    client.handle_timeout(Nanos(0));
    assert!(drain_ids(&mut client).is_empty(), "nothing expired yet");
    client.handle_timeout(Nanos(
        TIMEOUT_NS + naam_engine::client::SWEEP_PERIOD_NS_DEFAULT,
    ));
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    let expected: Vec<_> = sorted.iter().map(|&s| (s, Outcome::Timeout)).collect();
    assert_eq!(drain_ids(&mut client), expected);
    assert_eq!(client.stats().timeouts, seqs.len() as u64);
    assert_eq!(client.inflight(), 0);
}

#[test]
fn a_duplicate_id_is_refused_in_its_slot_and_in_the_map() {
    let f = fixture(0, None);
    let mut client = windowed(&f);
    let (args, d) = lookup(&f.ds, 0);
    issue_seq(&f, &mut client, Nanos(0), 1);
    issue_seq(&f, &mut client, Nanos(0), 1 + WINDOW);
    for seq in [1, 1 + WINDOW] {
        assert_eq!(
            client.issue(Nanos(1), Nanos(1), seq, &call(&args, &d), 0),
            Err(IssueError::Duplicate(RequestId(seq)))
        );
    }
    assert_eq!(
        reply_ok(&mut client, Nanos(2), RequestId(1)),
        Inbound::Reply
    );
    assert_eq!(
        client.issue(Nanos(3), Nanos(3), 1 + WINDOW, &call(&args, &d), 0),
        Err(IssueError::Duplicate(RequestId(1 + WINDOW))),
        "still in flight after its slot freed"
    );
    issue_seq(&f, &mut client, Nanos(3), 1);
    assert_eq!(client.inflight(), 2);
    assert_eq!(client.stats().issued, 3, "refused issues are not counted");
}

#[test]
fn late_foreign_and_slot_sharing_replies_are_stale() {
    let f = fixture(0, None);
    let mut client = windowed(&f);
    issue_seq(&f, &mut client, Nanos(0), 1);
    issue_seq(&f, &mut client, Nanos(0), 2 + WINDOW);
    let stale = [
        RequestId(1 + WINDOW),
        RequestId(2),
        RequestId(1 << 48 | 1),
        RequestId(1 << 48 | (2 + WINDOW)),
    ];
    for id in stale {
        assert_eq!(
            reply_ok(&mut client, Nanos(1), id),
            Inbound::Stale,
            "{id:?}"
        );
        let pushback = reply_frame(id, Status::Pushback, Location::Host, 0, &[]);
        assert_eq!(client.handle_datagram(Nanos(1), &pushback), Inbound::Stale);
    }
    assert_eq!(client.stats().stale, 2 * stale.len() as u64);
    assert_eq!(client.inflight(), 2, "stale replies end nothing");
    for id in [RequestId(2 + WINDOW), RequestId(1)] {
        assert_eq!(reply_ok(&mut client, Nanos(2), id), Inbound::Reply);
        assert_eq!(reply_ok(&mut client, Nanos(3), id), Inbound::Stale, "late");
    }
    let ended = drain_ids(&mut client);
    assert_eq!(ended, [(2 + WINDOW, Outcome::Ok), (1, Outcome::Ok)]);
    assert_eq!(client.stats().replies, 2);
}

#[test]
fn sequence_numbers_wrap_the_window_many_times() {
    let f = fixture(0, None);
    let mut client = windowed(&f);
    let top = naam_engine::client::SEQ_MAX;
    // A sliding window of five requests, answered out of order, from below the top of the
    // sequence space; one straggler (the first) stays in flight all along.
    let first = top - 3 * WINDOW;
    issue_seq(&f, &mut client, Nanos(0), first);
    let mut ended = 0;
    for seq in (first + 1)..=top {
        issue_seq(&f, &mut client, Nanos(seq - first), seq);
        let answer = seq.saturating_sub(if seq % 2 == 0 { 4 } else { 2 });
        if answer > first && reply_ok(&mut client, Nanos(seq), RequestId(answer)) == Inbound::Reply
        {
            ended += 1;
        }
        let events = drain_ids(&mut client);
        assert!(events.iter().all(|e| e.1 == Outcome::Ok), "{events:?}");
        assert!(client.inflight() <= 6, "seq {seq}");
    }
    let inflight_before = client.inflight();
    assert_eq!(
        ended + inflight_before as u64,
        top - first + 1,
        "every request ended or is in flight"
    );
    assert_eq!(
        reply_ok(&mut client, Nanos(top), RequestId(first)),
        Inbound::Reply
    );
    assert_eq!(client.inflight(), inflight_before - 1);
    assert_eq!(client.stats().stale, 0);
}

/// Events with their payloads, as handed over.
type Ended = Vec<(Event<u32>, Vec<u8>)>;

/// Every event `handle_datagram_with` hands over, with its payload.
fn handle_with(client: &mut ClientEndpoint<u32>, now: Nanos, bytes: &[u8]) -> (Inbound, Ended) {
    let mut events = Vec::new();
    let inbound = client.handle_datagram_with(now, bytes, |e, payload| {
        events.push((*e, payload.to_vec()));
    });
    (inbound, events)
}

#[test]
fn a_reply_handed_over_in_place_ends_its_request_once() {
    let f = fixture(0, None);
    let mut client = windowed(&f);
    issue_seq(&f, &mut client, Nanos(0), 1);
    let id = client.request_id(1);
    let reply = reply_frame(id, Status::Ok, Location::Nic, 0, b"\x01answer");
    let (inbound, events) = handle_with(&mut client, Nanos(5), &reply);
    assert_eq!(inbound, Inbound::Reply);
    let [(e, payload)] = &events[..] else {
        panic!("one event: {events:?}")
    };
    assert_eq!(
        (e.request_id, e.cookie, e.outcome, e.location),
        (id, 1, Outcome::Ok, Some(Location::Nic))
    );
    assert_eq!(payload, b"\x01answer");
    assert!(!client.has_event(), "nothing left queued");
    assert_eq!((client.inflight(), client.stats().replies), (0, 1));
    let (inbound, events) = handle_with(&mut client, Nanos(6), &reply);
    assert_eq!((inbound, events.len()), (Inbound::Stale, 0), "ended once");
}

#[test]
fn events_queued_before_a_reply_are_handed_over_first() {
    let f = fixture(0, None);
    let mut client = windowed(&f);
    issue_seq(&f, &mut client, Nanos(0), 1);
    issue_seq(&f, &mut client, Nanos(0), 2);
    let t = client.poll_transmit(&mut Vec::new()).unwrap();
    client.transmit_failed(Nanos(1), t.carries);
    assert!(client.has_event(), "the failed send is queued");
    let code = ErrorCode {
        kind: ErrorKind::FunctionError,
        detail: 3,
    };
    let reply = reply_frame(
        client.request_id(2),
        Status::Error(code),
        Location::Host,
        0,
        &[],
    );
    let (inbound, events) = handle_with(&mut client, Nanos(2), &reply);
    assert_eq!(inbound, Inbound::Reply);
    let ended: Vec<_> = events.iter().map(|(e, _)| (e.cookie, e.outcome)).collect();
    assert_eq!(ended, [(1, Outcome::Send), (2, Outcome::Error(code))]);
    assert!(!client.has_event());
    let (inbound, events) = handle_with(&mut client, Nanos(3), b"not a frame");
    assert_eq!((inbound, events.len()), (Inbound::Malformed, 0));
    assert_eq!(client.stats().malformed, 1);
}
