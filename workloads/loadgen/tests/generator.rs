//! The generator on a virtual clock: coordinated omission, lateness, rate accounting, verdicts,
//! warm-up, intervals merged by adding, and bad input.

mod common;

use common::{World, config, locations, simulate};
use naam_loadgen::recorder::new_histogram;
use naam_loadgen::{
    ConfigError, InvalidReason, LoadGenerator, LoadMode, RecordError, SendTicket, TagId, TagSet,
    Verdict,
};

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn fixed(rate_per_s: f64) -> LoadMode {
    LoadMode::FixedRate { rate_per_s }
}

/// A 100 ms server stall at t = 1 s under 10 k req/s: requests intended during the stall wait
/// for its end, and their latency — from the intended send — shows it. Request k of the stall
/// (intended at 1 s + k·100 µs) completes at 1.1 s + (k+1)·1 µs (FIFO, 1 µs service), so its
/// latency is 100 ms + 1 µs − k·99 µs.
#[test]
fn server_stall_shows_in_latency_from_intended_send() {
    let world = World {
        service_ns: 1_000,
        server_stall: Some((S, S + 100 * MS)),
        tags: 1,
        ..World::default()
    };
    let out = simulate(
        config(fixed(10_000.0), 0, 2 * S, 100 * MS),
        locations(),
        &world,
        MS,
    );
    let over_50ms = out.latencies.iter().filter(|l| l.2 > 50 * MS).count();
    let model = (0..1000u64)
        .filter(|k| 100 * MS + 1_000 - k * 99_000 > 50 * MS)
        .count();
    assert_eq!(over_50ms, model);
    assert_eq!(model, 506);
    let total = &out.report.totals[0];
    assert!(
        total.max() >= 99 * MS && total.max() <= 101 * MS,
        "max {}",
        total.max()
    );
    assert_eq!(out.report.verdict, Verdict::Valid, "{:?}", out.report.rate);
    assert_eq!(out.report.rate.send_lateness_ns_max, 0);
}

/// A client blocked for 30 ms sends 300 requests late by up to 30 ms: 1.5 % of the run's 20 000
/// requests, so lateness p99 is above 1 ms and the point is invalid; the late requests' latency
/// includes their lateness.
#[test]
fn a_late_generator_invalidates_the_point() {
    let world = World {
        service_ns: 1_000,
        client_block: Some((S, S + 30 * MS)),
        tags: 1,
        ..World::default()
    };
    let out = simulate(
        config(fixed(10_000.0), 0, 2 * S, 100 * MS),
        locations(),
        &world,
        MS,
    );
    let rate = &out.report.rate;
    assert!(rate.send_lateness_ns_max >= 29 * MS, "{rate:?}");
    assert!(rate.send_lateness_ns_p99 > MS, "{rate:?}");
    let Verdict::Invalid { reasons } = &out.report.verdict else {
        panic!("expected invalid")
    };
    assert!(
        matches!(reasons[0], InvalidReason::SendLateness { .. }),
        "{reasons:?}"
    );
    assert!(out.report.totals[0].max() >= 29 * MS);
}

#[test]
fn lost_replies_are_a_rate_shortfall() {
    let world = World {
        service_ns: 1_000,
        drop_every: Some(10),
        tags: 1,
        ..World::default()
    };
    let out = simulate(
        config(fixed(10_000.0), 0, S, 100 * MS),
        locations(),
        &world,
        MS,
    );
    let rate = &out.report.rate;
    assert_eq!(rate.intended, 10_000);
    assert_eq!(rate.completed, 9_000);
    assert_eq!(rate.inflight_at_end, 1_000);
    let Verdict::Invalid { reasons } = &out.report.verdict else {
        panic!("expected invalid")
    };
    assert!(
        matches!(reasons[..], [InvalidReason::RateShortfall { .. }]),
        "{reasons:?}"
    );
}

#[test]
fn closed_loop_is_labelled_and_paced_by_the_server() {
    let world = World {
        service_ns: 100_000,
        tags: 1,
        ..World::default()
    };
    let out = simulate(
        config(LoadMode::ClosedLoop { window: 4 }, 0, S, 100 * MS),
        locations(),
        &world,
        0,
    );
    let rate = &out.report.rate;
    assert_eq!(rate.mode, "closed-loop");
    assert_eq!(rate.offered_rate_per_s_nominal, None);
    // One server, 100 µs each: 10 000 completions per second whatever the window.
    assert!(
        (rate.achieved_rate_per_s - 10_000.0).abs() < 10.0,
        "{rate:?}"
    );
    assert_eq!(out.report.verdict, Verdict::Valid);
    // Four outstanding at a FIFO server: each waits for the three ahead of it.
    assert_eq!(
        out.report.totals[0].value_at_quantile(0.5),
        400_000 - 400_000 % 256 + 255
    );
}

#[test]
fn warmup_is_kept_apart_and_intervals_add_up_to_the_totals() {
    let world = World {
        service_ns: 5_000,
        tags: 3,
        ..World::default()
    };
    let mode = LoadMode::Poisson {
        rate_per_s: 20_000.0,
        seed: 9,
    };
    let out = simulate(config(mode, 200 * MS, S, 50 * MS), locations(), &world, MS);
    let warm: u64 = out.latencies.iter().filter(|l| l.0 < 200 * MS).count() as u64;
    assert_eq!(out.report.warmup.iter().map(|h| h.len()).sum::<u64>(), warm);
    for tag in 0..3u8 {
        let mut merged = new_histogram();
        let mut starts = Vec::new();
        for interval in out.intervals.iter().filter(|i| i.tag == TagId(tag)) {
            merged.add(&interval.histogram).expect("same precision");
            starts.push((interval.start_ns, interval.length_ns));
        }
        // Contiguous intervals from the end of warm-up.
        assert_eq!(starts[0].0, 200 * MS);
        assert!(
            starts.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0),
            "gaps: {starts:?}"
        );
        let direct: Vec<u64> = out
            .latencies
            .iter()
            .filter(|l| l.1 == TagId(tag) && l.0 >= 200 * MS)
            .map(|l| l.2)
            .collect();
        assert_eq!(merged.len(), direct.len() as u64, "tag {tag}");
        assert_eq!(merged, out.report.totals[usize::from(tag)], "tag {tag}");
    }
    assert_eq!(
        out.report.verdict,
        Verdict::Valid,
        "NAAM_SEED=9: {:?}",
        out.report.rate
    );
}

#[test]
fn bad_completions_are_typed_errors() {
    let mut g =
        LoadGenerator::new(config(fixed(1000.0), 0, S, 100 * MS), locations()).expect("valid");
    let ghost = SendTicket {
        seq: 0,
        intended_ns: 0,
    };
    assert_eq!(
        g.on_complete(&ghost, TagId(0), 5),
        Err(RecordError::NothingInFlight { seq: 0 })
    );
    let ticket = g.poll_send(0).expect("ok").expect("due at 0");
    assert!(matches!(
        g.on_complete(
            &SendTicket {
                seq: 0,
                intended_ns: 10
            },
            TagId(0),
            5
        ),
        Err(RecordError::CompletedBeforeIntended { .. })
    ));
    assert_eq!(
        g.on_complete(&ticket, TagId(7), 5),
        Err(RecordError::UnknownTag { tag: 7, count: 3 })
    );
    assert_eq!(g.on_complete(&ticket, TagId(0), 5), Ok(5));
    assert_eq!(
        g.poll_send(2),
        Err(RecordError::TimeWentBackwards {
            now_ns: 2,
            seen_ns: 5
        })
    );
}

#[test]
fn bad_configurations_are_typed_errors() {
    let base = config(fixed(1000.0), 0, S, 100 * MS);
    let err = |c| LoadGenerator::new(c, locations()).expect_err("invalid");
    assert!(matches!(
        err(config(fixed(0.5), 0, S, 100 * MS)),
        ConfigError::RateOutOfRange { .. }
    ));
    assert!(matches!(
        err(config(fixed(f64::NAN), 0, S, 100 * MS)),
        ConfigError::RateOutOfRange { .. }
    ));
    assert!(matches!(
        err(config(LoadMode::ClosedLoop { window: 0 }, 0, S, 100 * MS)),
        ConfigError::WindowOutOfRange { .. }
    ));
    assert!(matches!(
        err(config(fixed(1000.0), 0, S, 1_000)),
        ConfigError::IntervalOutOfRange { .. }
    ));
    assert!(matches!(
        err(config(fixed(1000.0), 0, 0, 100 * MS)),
        ConfigError::DurationOutOfRange { .. }
    ));
    assert!(matches!(
        err(config(fixed(1000.0), u64::MAX, S, 100 * MS)),
        ConfigError::DurationOutOfRange { .. }
    ));
    let mut c = base.clone();
    c.thresholds.rate_shortfall_max = -0.1;
    assert!(matches!(err(c), ConfigError::ThresholdInvalid { .. }));
    let mut c = base.clone();
    c.requests_max = 0;
    assert!(matches!(err(c), ConfigError::RequestsOutOfRange { .. }));
    let mut c = base;
    c.inflight_max = 0;
    assert!(matches!(err(c), ConfigError::InflightOutOfRange { .. }));
}

#[test]
fn tag_sets_are_validated() {
    assert!(TagSet::new(&["host", "nic", "client"]).is_ok());
    for bad in [&["Host"][..], &["a,b"], &[""], &["x"; 2], &["with space"]] {
        assert!(
            matches!(TagSet::new(bad), Err(ConfigError::TagInvalid { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        TagSet::new::<&str>(&[]),
        Err(ConfigError::TagCountOutOfRange { .. })
    ));
    let tags = TagSet::locations();
    assert_eq!(tags.id("nic"), Some(TagId(1)));
    assert_eq!(tags.name(TagId(2)), Some("client"));
    assert_eq!(tags.name(TagId(3)), None);
}

#[test]
fn failed_requests_free_their_slot_and_lower_the_achieved_rate() {
    let mut cfg = config(fixed(1000.0), 0, 100_000_000, 10_000_000);
    cfg.inflight_max = 1;
    let mut g = LoadGenerator::new(cfg, locations()).expect("valid");
    let host = locations().id("host").expect("a location tag");
    let first = g.poll_send(0).unwrap().expect("due at 0");
    assert!(
        g.poll_send(1_000_000).unwrap().is_none(),
        "the only slot is taken"
    );
    g.on_fail(&first, 1_000_000);
    assert_eq!(g.failed(), 1);
    // Every other request succeeds: half the offered rate is achieved.
    let mut t = 1_000_000;
    while t < 100_000_000 {
        if let Some(ticket) = g.poll_send(t).unwrap() {
            if ticket.seq % 2 == 0 {
                g.on_fail(&ticket, t)
            } else {
                g.on_complete(&ticket, host, t + 10).unwrap();
            }
        }
        t += 1_000_000;
    }
    let report = g.finish(100_000_000).unwrap();
    assert_eq!(report.rate.intended, 100);
    // Seq 0 and every other even seq failed; the 50 odd ones completed.
    assert_eq!(report.rate.completed, 50);
    assert!(
        matches!(report.verdict, Verdict::Invalid { .. }),
        "{:?}",
        report.verdict
    );
}

/// A driver that reads replies in batches hands the generator each reply's arrival time (e.g.
/// the kernel's receive timestamp) with the later time it handles it: the latency is measured to
/// the arrival, the completion counts in the interval of the handling time, and an arrival
/// before a time already seen is not an error (only handling times must not go backwards).
#[test]
fn completions_measure_latency_to_their_arrival() {
    let mut g =
        LoadGenerator::new(config(fixed(1000.0), 0, S, 100 * MS), locations()).expect("valid");
    let first = g.poll_send(0).expect("ok").expect("due at 0");
    let second = g.poll_send(MS).expect("ok").expect("due at 1 ms");
    // Both replies arrived at 1.5 ms; the driver reads them at 99.9 ms and 100.1 ms.
    assert_eq!(
        g.on_complete_arrived(&first, TagId(0), 99_900_000, 1_500_000),
        Ok(1_500_000)
    );
    assert_eq!(
        g.on_complete_arrived(&second, TagId(1), 100_100_000, 1_500_000),
        Ok(500_000)
    );
    let mut first_interval = [0u64; 2];
    while let Some(interval) = g.poll_interval(100_200_000).expect("ok") {
        if interval.start_ns == 0 && interval.tag.0 < 2 {
            first_interval[usize::from(interval.tag.0)] = interval.histogram.len();
        }
    }
    assert_eq!(
        first_interval,
        [1, 0],
        "only the first was handled before 100 ms"
    );
    assert!(matches!(
        g.on_complete_arrived(&first, TagId(0), 100_200_000, 0),
        Err(RecordError::CompletedBeforeIntended { .. }) | Err(RecordError::NothingInFlight { .. })
    ));
}

/// Issue 16: a send late only because every in-flight slot was taken is the system under test's
/// lateness (it held the slots), not the generator's. One slot, a request due every 1 ms, each
/// answered 3 ms after it left: sends fall ever later, yet the generator, polling every 10 µs,
/// sent each the moment a slot freed — its own lateness stays at the polling step.
#[test]
fn issue_16_lateness_while_the_window_is_full_is_not_the_generators() {
    let mut cfg = config(fixed(1000.0), 0, 50_000_000, 10_000_000);
    cfg.inflight_max = 1;
    let mut g = LoadGenerator::new(cfg, locations()).expect("valid");
    let host = locations().id("host").expect("a location tag");
    let step_ns = 10_000;
    let mut pending: Option<(SendTicket, u64)> = None;
    let mut t = 0;
    while t < 50_000_000 {
        if let Some((ticket, done_ns)) = pending.filter(|&(_, done)| done <= t) {
            g.on_complete(&ticket, host, done_ns.max(t)).unwrap();
            pending = None;
        }
        if let Some(ticket) = g.poll_send(t).unwrap() {
            pending = Some((ticket, t + 3_000_000));
        }
        t += step_ns;
    }
    let report = g.finish(50_000_000).unwrap();
    let rate = &report.rate;
    assert!(rate.send_lateness_ns_p99 > 10_000_000, "{rate:?}");
    assert!(rate.send_lateness_own_ns_p99 <= step_ns, "{rate:?}");
    assert!(rate.window_full_ns > 40_000_000, "{rate:?}");
    assert!(rate.window_delayed_sends >= 15, "{rate:?}");
    let Verdict::Invalid { reasons } = &report.verdict else {
        panic!(
            "a third of the offered rate is a shortfall: {:?}",
            report.verdict
        );
    };
    assert!(
        reasons
            .iter()
            .all(|r| !matches!(r, InvalidReason::SendLateness { .. })),
        "{reasons:?}"
    );
}

/// `interval_due` answers exactly when a poll would return an interval, so a driver may skip
/// the poll without changing what it writes: checked at every microsecond of a run with
/// completions, across warm-up and several interval boundaries, with intervals left waiting.
#[test]
fn interval_due_matches_poll_interval() {
    const STEP_NS: u64 = 1_000;
    let warmup_ns = 3 * MS;
    let mut g = LoadGenerator::new(config(fixed(10_000.0), warmup_ns, 20 * MS, MS), locations())
        .expect("valid");
    let mut polled = 0u32;
    for now in (0..warmup_ns + 20 * MS).step_by(STEP_NS as usize) {
        if let Some(ticket) = g.poll_send(now).expect("ok") {
            g.on_complete(&ticket, TagId(0), now).expect("completes");
        }
        let due = g.interval_due(now);
        // Leave a boundary's intervals waiting now and then: they keep `interval_due` true.
        let take_one_only = now % (7 * MS) == 0;
        let first = g.poll_interval(now).expect("ok");
        assert_eq!(due, first.is_some(), "at {now} ns");
        if first.is_some() {
            polled += 1;
        }
        if !take_one_only {
            while g.poll_interval(now).expect("ok").is_some() {}
        }
    }
    assert!(polled >= 20, "polled {polled} times");
}

/// On-time sends are counted and recorded as zeros when the run finishes; the report's lateness
/// must read as if every send had been recorded when made. A fixed 1 ms schedule polled at its
/// due times, one send in three late by a varying amount, against a plain recomputation.
#[test]
fn on_time_sends_recorded_at_finish_read_as_recorded_each() {
    const END_NS: u64 = 200 * MS;
    let mut g =
        LoadGenerator::new(config(fixed(1000.0), 0, END_NS, 10 * MS), locations()).expect("valid");
    let host = locations().id("host").expect("a location tag");
    let mut expected = new_histogram();
    let (mut on_time, mut late) = (0u64, 0u64);
    let mut t = 0;
    for i in 0u64.. {
        let Some(due) = g.next_send_ns().filter(|&due| due < END_NS) else {
            break;
        };
        let delay_ns = if i % 3 == 0 {
            (i * 37 % 500) * 1_000
        } else {
            0
        };
        t = t.max(due + delay_ns);
        while let Some(ticket) = g.poll_send(t).expect("time moves forward") {
            let lateness_ns = t - ticket.intended_ns;
            expected.record(lateness_ns).expect("auto-resizing");
            if lateness_ns == 0 {
                on_time += 1;
            } else {
                late += 1;
            }
            g.on_complete(&ticket, host, t).expect("in flight");
        }
    }
    assert!(
        on_time > late && late > 20,
        "{on_time} on time, {late} late"
    );
    let rate = g.finish(END_NS).expect("finish").rate;
    assert_eq!(rate.send_lateness_ns_p50, expected.value_at_quantile(0.5));
    assert_eq!(rate.send_lateness_ns_p99, expected.value_at_quantile(0.99));
    assert_eq!(rate.send_lateness_ns_max, expected.max());
    assert_eq!(
        rate.send_lateness_own_ns_p99,
        expected.value_at_quantile(0.99),
        "no window wait: own lateness is all of it"
    );
}
