//! A discrete-event driver for the sans-IO generator: one FIFO server on a virtual clock.

#![allow(dead_code)]

use std::collections::VecDeque;

use naam_loadgen::{
    IntervalHistogram, LoadConfig, LoadGenerator, LoadMode, RunReport, SendTicket, TagId, TagSet,
    Thresholds,
};

/// Events one simulation may process before it gives up (every loop is bounded).
pub const EVENTS_MAX: u64 = 50_000_000;

/// The simulated server and client.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Service time of every request.
    pub service_ns: u64,
    /// The server serves nothing in `[start, end)`.
    pub server_stall: Option<(u64, u64)>,
    /// The client cannot send in `[start, end)` (its thread is descheduled).
    pub client_block: Option<(u64, u64)>,
    /// Every n-th request is lost (never completes).
    pub drop_every: Option<u64>,
    /// Tag chosen per request: `seq % tags`.
    pub tags: u8,
}

/// What a simulation produced.
#[derive(Debug)]
pub struct Outcome {
    /// The generator's report.
    pub report: RunReport,
    /// Every interval, in order (drained while running, then the rest).
    pub intervals: Vec<IntervalHistogram>,
    /// Every recorded latency with its completion time and tag.
    pub latencies: Vec<(u64, TagId, u64)>,
}

/// A config with the defaults these tests use.
pub fn config(mode: LoadMode, warmup_ns: u64, measure_ns: u64, interval_ns: u64) -> LoadConfig {
    LoadConfig {
        mode,
        warmup_ns,
        measure_ns,
        requests_max: 10_000_000,
        inflight_max: 1 << 20,
        interval_ns,
        thresholds: Thresholds::default(),
        rate_steps: Vec::new(),
        sum_totals: true,
    }
}

fn blocked(window: Option<(u64, u64)>, t: u64) -> u64 {
    match window {
        Some((start, end)) if (start..end).contains(&t) => end,
        _ => t,
    }
}

/// Runs the world until the schedule is exhausted and every reply is in, then finishes the run
/// `grace_ns` after the last event.
pub fn simulate(config: LoadConfig, tag_set: TagSet, world: &World, grace_ns: u64) -> Outcome {
    let mut generator = LoadGenerator::new(config, tag_set).expect("valid config");
    let mut pending: VecDeque<(u64, SendTicket)> = VecDeque::new();
    let mut intervals = Vec::new();
    let mut latencies = Vec::new();
    let (mut now, mut server_free) = (0u64, 0u64);
    for _ in 0..EVENTS_MAX {
        let send_at = generator
            .next_send_ns()
            .filter(|_| !generator.is_done(now))
            .map(|t| blocked(world.client_block, t.max(now)));
        let done_at = pending.front().map(|p| p.0);
        match (send_at, done_at) {
            (Some(s), d) if d.is_none_or(|d| s < d) => {
                now = s;
                let Some(ticket) = generator.poll_send(now).expect("monotonic") else {
                    continue;
                };
                if world.drop_every.is_some_and(|n| (ticket.seq + 1) % n == 0) {
                    continue;
                }
                let start = blocked(world.server_stall, now.max(server_free));
                server_free = start + world.service_ns;
                pending.push_back((server_free, ticket));
            }
            (_, Some(d)) => {
                now = d;
                let (_, ticket) = pending.pop_front().expect("pending reply");
                let tag = TagId((ticket.seq % u64::from(world.tags.max(1))) as u8);
                let latency = generator
                    .on_complete(&ticket, tag, now)
                    .expect("valid completion");
                latencies.push((now, tag, latency));
            }
            (None, None) => break,
            (Some(_), None) => unreachable!("guarded above"),
        }
        while let Some(interval) = generator.poll_interval(now).expect("monotonic") {
            intervals.push(interval);
        }
    }
    let mut report = generator.finish(now + grace_ns).expect("monotonic");
    intervals.append(&mut report.intervals);
    Outcome {
        report,
        intervals,
        latencies,
    }
}

/// The tag set of most tests.
pub fn locations() -> TagSet {
    TagSet::locations()
}
