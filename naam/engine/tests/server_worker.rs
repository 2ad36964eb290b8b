//! The sans-IO server worker: datagrams in, accesses and steps out, replies addressed to the
//! sender's token or reply address, load samples every period, counters of the measured phase.

mod support;

use std::sync::Arc;

use naam_engine::control::{Heartbeat, HostLoad, SilenceRule, WorkerSettings};
use naam_engine::server::{
    Inbound, ReplyTarget, SOURCE_UNKNOWN, Sender, WorkerConfig, WorkerConfigError,
};
use naam_engine::wire::{LoadSample, ReplyAddr};
use naam_engine::*;
use support::*;

const PERIOD_NS: u64 = 1_000_000;

fn worker(location: Location) -> (ServerWorker, Memory, Arc<RegionTable>, Dataset) {
    let seed = test_seed(0x5e_0001);
    let (regions, memory, ds) = dataset(&pairs(64, seed.0), 4);
    let regions = Arc::new(regions);
    let w = ServerWorker::new(
        WorkerConfig::new(location, PERIOD_NS),
        Arc::new(functions()),
        Arc::clone(&regions),
        Nanos(0),
    )
    .unwrap();
    (w, memory, regions, ds)
}

fn frame_of(msg: &Invoke<'_>) -> Vec<u8> {
    let mut frame = Vec::new();
    msg.encode(&mut frame).unwrap();
    frame
}

/// Serves every access from memory and runs steps until the worker has nothing left to do.
fn settle(w: &mut ServerWorker, memory: &Memory, regions: &RegionTable, now: Nanos) -> Work {
    let mut work = Work::default();
    for _ in 0..100 {
        while let Some(a) = w.poll_access() {
            let bytes = serve(memory, regions, a.tenant, &a.descriptor).unwrap();
            assert!(w.complete_access(a.id, &bytes));
        }
        let ran = w.run(now, 64);
        work.steps += ran.steps;
        work.insn += ran.insn;
        work.data_bytes += ran.data_bytes;
        work.accesses_out += ran.accesses_out;
        work.finished += ran.finished;
        if ran.steps == 0 {
            return work;
        }
    }
    panic!("the worker did not settle in 100 rounds");
}

#[test]
fn a_lookup_is_served_and_replied_to_its_source_token() {
    let (mut w, memory, regions, ds) = worker(Location::Host);
    let (key, value) = ds.pairs[3];
    let (args, d) = hash_request(&ds, key);
    let frame = frame_of(&invoke(TENANT, HASH_GET, 9, &args, d));
    assert_eq!(
        w.handle_datagram(Nanos(10), Nanos(5), &frame, || 42),
        Inbound::Submitted
    );
    let work = settle(&mut w, &memory, &regions, Nanos(20));
    assert_eq!(work.steps, 2, "bucket, then item");
    assert_eq!(work.finished, 1);
    assert_eq!(work.accesses_out, 1, "step 1 declares the item read");
    assert_eq!(work.data_bytes, HASH_BUCKET_BYTES + HASH_ITEM_BYTES);
    assert!(work.insn > 0);
    let mut reply = Vec::new();
    let out = w.poll_reply(&mut reply).expect("a reply");
    assert_eq!(out.to, ReplyTarget::Source(42));
    assert_eq!(out.completion.arrived_at, Nanos(5));
    let (status, location, payload) = reply_of(&reply);
    assert_eq!((status, location), (Status::Ok, Location::Host));
    assert_eq!(payload[0], 1);
    assert_eq!(u64::from_le_bytes(payload[1..9].try_into().unwrap()), value);
    let totals = w.totals();
    assert_eq!((totals.completions, totals.ok, totals.steps), (1, 1, 2));
    assert_eq!(totals.accesses, 2);
    assert_eq!(totals.access_bytes, HASH_BUCKET_BYTES + HASH_ITEM_BYTES);
    assert_eq!(totals.insn, work.insn);
}

/// `has_output` says exactly when an access or a reply waits, so a driver may skip its polls
/// otherwise: checked before and after each poll through a lookup's accesses, steps and reply.
#[test]
fn has_output_is_true_exactly_while_an_access_or_reply_waits() {
    let (mut w, memory, regions, ds) = worker(Location::Host);
    let (args, d) = hash_request(&ds, ds.pairs[5].0);
    assert!(!w.has_output(), "a new worker has nothing");
    let frame = frame_of(&invoke(TENANT, HASH_GET, 3, &args, d));
    w.handle_datagram(Nanos(10), Nanos(10), &frame, || 7);
    let mut reply = Vec::new();
    let mut accesses = 0;
    for _ in 0..10 {
        assert!(w.has_output(), "an access or the reply waits");
        if let Some(a) = w.poll_access() {
            accesses += 1;
            assert!(!w.has_output(), "the only access was taken");
            let bytes = serve(&memory, &regions, a.tenant, &a.descriptor).unwrap();
            assert!(w.complete_access(a.id, &bytes));
            assert!(!w.has_output(), "the step has not run");
            w.run(Nanos(20), 1);
            continue;
        }
        assert!(w.poll_reply(&mut reply).is_some());
        assert!(!w.has_output(), "the reply was taken");
        assert_eq!(accesses, 2, "bucket, then item");
        return;
    }
    panic!("no reply after 10 rounds");
}

/// Runs one GET carrying reply address `addr`, sent by `token`, through worker `w` (trusting
/// `forwarder`, if any); returns where its reply goes and the worker's refusal count.
fn reply_target_of(token: u64, forwarder: Option<u64>) -> (ReplyTarget, u64) {
    let (mut w, memory, regions, ds) = worker(Location::Nic);
    if let Some(f) = forwarder {
        assert!(w.trust_forwarder(f));
    }
    let (args, d) = hash_request(&ds, ds.pairs[0].0);
    let msg = Invoke {
        reply_to: Some(THIRD_PARTY),
        ..invoke(TENANT, HASH_GET, 1, &args, d)
    };
    let mut asked = false;
    w.handle_datagram(Nanos(0), Nanos(0), &frame_of(&msg), || {
        asked = true;
        token
    });
    assert!(asked, "the token is asked for every Invoke");
    settle(&mut w, &memory, &regions, Nanos(1));
    let mut reply = Vec::new();
    let to = w.poll_reply(&mut reply).unwrap().to;
    assert_eq!(reply_of(&reply).1, Location::Nic);
    (to, w.totals().reply_to_refused)
}

const THIRD_PARTY: ReplyAddr = ReplyAddr {
    ip: [7; 16],
    port: 4242,
};

#[test]
fn a_forwarders_reply_address_is_honoured() {
    assert_eq!(
        reply_target_of(3, Some(3)),
        (ReplyTarget::Addr(THIRD_PARTY), 0)
    );
}

#[test]
fn issue_18_a_strangers_reply_address_is_refused_and_the_reply_goes_to_the_sender() {
    assert_eq!(reply_target_of(3, None), (ReplyTarget::Source(3), 1));
    assert_eq!(reply_target_of(3, Some(4)), (ReplyTarget::Source(3), 1));
    assert_eq!(
        reply_target_of(SOURCE_UNKNOWN, None),
        (ReplyTarget::Source(SOURCE_UNKNOWN), 1)
    );
}

/// A client sends from the UDP source port carrying its steering key and names the port it
/// receives on; the driver vouches for that address (same host as the source) and the reply
/// goes there, while an address it does not vouch for is refused as before (issue 14).
#[test]
fn issue_14_a_reply_address_the_driver_vouches_for_is_honoured() {
    for (vouched, expected) in [
        (true, (ReplyTarget::Addr(THIRD_PARTY), 0)),
        (false, (ReplyTarget::Source(5), 1)),
    ] {
        let (mut w, memory, regions, ds) = worker(Location::Host);
        let (args, d) = hash_request(&ds, ds.pairs[0].0);
        let msg = Invoke {
            reply_to: Some(THIRD_PARTY),
            ..invoke(TENANT, HASH_GET, 1, &args, d)
        };
        let mut seen = None;
        w.handle_datagram_from(Nanos(0), Nanos(0), &frame_of(&msg), |named| {
            seen = named;
            Sender {
                token: 5,
                reply_to_vouched: vouched,
            }
        });
        assert_eq!(
            seen,
            Some(THIRD_PARTY),
            "the resolver sees the named address"
        );
        settle(&mut w, &memory, &regions, Nanos(1));
        let to = w.poll_reply(&mut Vec::new()).unwrap().to;
        assert_eq!((to, w.totals().reply_to_refused), expected);
    }
}

#[test]
fn forwarders_are_bounded_and_never_the_unknown_source() {
    let (mut w, ..) = worker(Location::Host);
    assert!(!w.trust_forwarder(SOURCE_UNKNOWN));
    for token in 0..naam_engine::server::FORWARDERS_MAX as u64 {
        assert!(w.trust_forwarder(token));
    }
    assert!(!w.trust_forwarder(99));
}

#[test]
fn garbage_and_foreign_frames_are_counted_not_served() {
    let (mut w, ..) = worker(Location::Host);
    let never = || -> u64 { panic!("no token for a datagram that is not an Invoke") };
    assert_eq!(
        w.handle_datagram(Nanos(0), Nanos(0), b"not a frame", never),
        Inbound::Malformed
    );
    let mut sample = Vec::new();
    Frame::Sample(LoadSample::default())
        .encode(&mut sample)
        .unwrap();
    assert_eq!(
        w.handle_datagram(Nanos(0), Nanos(0), &sample, never),
        Inbound::Unexpected
    );
    let t = w.totals();
    assert_eq!((t.malformed, t.unexpected, t.completions), (1, 1, 0));
    assert!(w.poll_reply(&mut Vec::new()).is_none());
}

#[test]
fn load_samples_come_every_period_with_the_busy_time_reported() {
    let (mut w, ..) = worker(Location::Host);
    assert_eq!(w.poll_timeout(), Nanos(PERIOD_NS));
    assert!(w.handle_timeout(Nanos(PERIOD_NS - 1)).is_none());
    w.record_busy(PERIOD_NS / 4);
    let s = w.handle_timeout(Nanos(PERIOD_NS)).expect("a sample");
    assert_eq!(s.location, Some(Location::Host));
    assert_eq!(s.utilisation_permille, 250);
    assert_eq!(w.poll_timeout(), Nanos(2 * PERIOD_NS));
    let s = w
        .handle_timeout(Nanos(2 * PERIOD_NS))
        .expect("the next sample");
    assert_eq!(
        s.utilisation_permille, 0,
        "busy time counts in one period only"
    );
    assert_eq!(w.totals().busy_ns, PERIOD_NS / 4);
}

#[test]
fn measured_totals_exclude_warm_up_and_what_follows_the_phase() {
    let (mut w, memory, regions, ds) = worker(Location::Host);
    w.set_measured_phase(Nanos(10_000), Nanos(20_000));
    assert_eq!(
        w.poll_timeout(),
        Nanos(10_000),
        "the phase start is a timer"
    );
    let (args, d) = hash_request(&ds, ds.pairs[0].0);
    let frame = frame_of(&invoke(TENANT, HASH_GET, 1, &args, d));
    // A driver handles the timers due at a time before that time's inputs.
    let serve_one = |w: &mut ServerWorker, at: u64| {
        w.handle_timeout(Nanos(at));
        w.handle_datagram(Nanos(at), Nanos(at), &frame, || 0);
        settle(w, &memory, &regions, Nanos(at));
        w.poll_reply(&mut Vec::new()).unwrap();
        w.record_busy(100);
    };
    serve_one(&mut w, 5_000);
    serve_one(&mut w, 10_000);
    serve_one(&mut w, 15_000);
    assert_eq!(
        w.measured_totals().completions,
        2,
        "the phase is still running"
    );
    serve_one(&mut w, 20_000);
    serve_one(&mut w, 25_000);
    let m = w.measured_totals();
    assert_eq!(
        m.completions, 2,
        "warm-up and after-phase messages excluded"
    );
    assert_eq!(m.busy_ns, 200);
    assert_eq!(w.totals().completions, 5);
}

#[test]
fn pushback_settings_come_in_as_a_method_call() {
    let (mut w, memory, regions, ds) = worker(Location::Host);
    w.apply(WorkerSettings {
        client_permille: 1000,
        pushback_credit_insn: None,
    });
    let (args, d) = hash_request(&ds, ds.pairs[0].0);
    w.handle_datagram(
        Nanos(0),
        Nanos(0),
        &frame_of(&invoke(TENANT, HASH_GET, 1, &args, d)),
        || 0,
    );
    settle(&mut w, &memory, &regions, Nanos(0));
    let mut reply = Vec::new();
    w.poll_reply(&mut reply).unwrap();
    let (status, ..) = reply_of(&reply);
    assert_eq!(status, Status::Pushback);
    assert_eq!(w.totals().pushbacks, 1);
}

#[test]
fn bad_configurations_are_refused() {
    let make = |config| {
        ServerWorker::new(
            config,
            Arc::new(FunctionTable::new()),
            Arc::new(RegionTable::new(RkeySecret([0; 16]))),
            Nanos(0),
        )
        .unwrap_err()
    };
    assert_eq!(
        make(WorkerConfig::new(Location::Client, PERIOD_NS)),
        WorkerConfigError::ClientLocation
    );
    assert_eq!(
        make(WorkerConfig::new(Location::Host, 1)),
        WorkerConfigError::SamplePeriod { value: 1 }
    );
}

#[test]
fn host_load_aggregates_workers_and_takes_silence_as_delay() {
    let sample = |delay_ns, util, queue| LoadSample {
        at: Nanos(1),
        location: Some(Location::Host),
        queue_delay_ns: delay_ns,
        utilisation_permille: util,
        queue_len: queue,
        completions: 10,
        period_ns: PERIOD_NS,
    };
    let mut load = HostLoad::new(PERIOD_NS, 2 * PERIOD_NS);
    assert!(
        load.take(Nanos(5 * PERIOD_NS), &[Heartbeat::at(Nanos(4 * PERIOD_NS))])
            .is_none()
    );
    load.push(sample(100, 200, 1));
    load.push(sample(300, 600, 2));
    let s = load
        .take(Nanos(5 * PERIOD_NS), &[Heartbeat::at(Nanos(5 * PERIOD_NS))])
        .unwrap();
    assert_eq!(
        (
            s.queue_delay_ns,
            s.utilisation_permille,
            s.queue_len,
            s.completions
        ),
        (300, 400, 3, 20)
    );
    let silent = load
        .take(
            Nanos(10 * PERIOD_NS),
            &[
                Heartbeat::at(Nanos(10 * PERIOD_NS)),
                Heartbeat::at(Nanos(PERIOD_NS)),
            ],
        )
        .expect("a silent worker is a signal");
    assert_eq!(silent.queue_delay_ns, 9 * PERIOD_NS);
}

#[test]
fn under_the_stall_tolerant_rule_only_a_worker_seen_waiting_for_a_cpu_counts_at_once() {
    let allowance_ns = 2 * PERIOD_NS;
    let mut load =
        HostLoad::with_silence_rule(PERIOD_NS, SilenceRule::stall_tolerant(allowance_ns));
    let now = Nanos(10 * PERIOD_NS);
    let silent_since = Nanos(5 * PERIOD_NS);
    let stalled = Heartbeat::at(silent_since);
    assert!(
        load.take(now, &[stalled]).is_none(),
        "an isolated silence (a VM's stall) does not count"
    );
    let queued = Heartbeat {
        at: silent_since,
        waiting_for_cpu: true,
    };
    let later = now.plus_ns(PERIOD_NS);
    let s = load
        .take(later, &[stalled, queued])
        .expect("a worker queued for a CPU is congestion");
    assert_eq!(s.queue_delay_ns, later.since(silent_since));
    let beaten = Heartbeat {
        at: later,
        waiting_for_cpu: true,
    };
    assert!(
        load.take(later, &[beaten]).is_none(),
        "within the allowance nothing counts, whatever the probe says"
    );
}

/// `take_accesses_into` hands out what `poll_access` would, in its order, after what the buffer
/// holds, and counts the same: two workers given the same lookups, drained each way, agree on
/// every access and on their totals.
#[test]
fn taking_accesses_into_a_buffer_is_polling_them() {
    let (mut polled, memory, regions, ds) = worker(Location::Host);
    let (mut taken, ..) = worker(Location::Host);
    for (i, &(key, _)) in ds.pairs.iter().take(6).enumerate() {
        let (args, d) = hash_request(&ds, key);
        let frame = frame_of(&invoke(TENANT, HASH_GET, i as u64, &args, d));
        polled.handle_datagram(Nanos(10), Nanos(10), &frame, || 1);
        taken.handle_datagram(Nanos(10), Nanos(10), &frame, || 1);
    }
    let mut buffer = vec![];
    for round in 0..10 {
        let mut expected = vec![];
        while let Some(a) = polled.poll_access() {
            expected.push(a);
        }
        let before = buffer.len();
        taken.take_accesses_into(&mut buffer);
        assert_eq!(buffer[before..], expected[..], "round {round}");
        assert!(!taken.has_access() && !polled.has_access());
        for a in &expected {
            let bytes = serve(&memory, &regions, a.tenant, &a.descriptor).unwrap();
            assert!(polled.complete_access(a.id, &bytes));
            assert!(taken.complete_access(a.id, &bytes));
        }
        assert_eq!(polled.run(Nanos(20), 64), taken.run(Nanos(20), 64));
    }
    assert_eq!(buffer.len(), 12, "bucket and item of six lookups");
    assert_eq!(polled.totals(), taken.totals());
}
