//! Every transition of iPipe's scheduler, on a virtual clock, with scripted execution times:
//! downgrade to DRR when an actor's tail exceeds `Tail_thresh` (and our upgrade below
//! `(1 − α)·Tail_thresh`), DRR service in proportion to the quanta, migration to the host when
//! the NIC's mean exceeds `Mean_thresh`, pull-back below `(1 − α)·Mean_thresh`, and migration
//! cost growing with the actor's object bytes and with the load.

mod support;

use expect_test::{Expect, expect};
use naam_ipipe::drive::Logged;
use naam_ipipe::{ActorState, Direction, IpipeConfig, Side};
use support::{Script, World};

const US: u64 = 1_000;
const MS: u64 = 1_000_000;

fn steady_1us(_: u64) -> u64 {
    US
}

fn steady_1500ns(_: u64) -> u64 {
    1_500
}

/// 2 % of items take 50 µs: the p99 of 100 executions is 50 µs.
fn spikes_2_percent(n: u64) -> u64 {
    if n % 50 == 49 { 50 * US } else { US }
}

/// 0.5 % of items take 50 µs: at most one spike in 100 executions, so the p99 stays at 1 µs.
fn spikes_half_percent(n: u64) -> u64 {
    if n % 200 == 199 { 50 * US } else { US }
}

/// Spiky for its first 200 items, then steady.
fn spikes_then_steady(n: u64) -> u64 {
    if n < 200 { spikes_2_percent(n) } else { US }
}

fn states(w: &World, side: Side) -> String {
    let rt = if side == Side::Nic {
        &w.pair.nic
    } else {
        &w.pair.host
    };
    let names: Vec<String> = w
        .actors
        .iter()
        .map(|&a| match rt.actor_state(a) {
            Ok(s) => format!("a{}={s:?}", a.0),
            Err(_) => format!("a{}=absent", a.0),
        })
        .collect();
    names.join(" ")
}

fn check_light_load(scripts: &[Script], expect: Expect) {
    let actors: Vec<_> = scripts.iter().map(|&s| (s, None, 0)).collect();
    let mut w = World::new(IpipeConfig::nic(2), IpipeConfig::host(2), &actors);
    let to: Vec<usize> = (0..scripts.len()).collect();
    w.stream(0, 10 * US, 3_000, &to);
    w.run(50 * MS);
    w.assert_every_request_answered();
    let out = format!("{}states: {}\n", w.render_log(), states(&w, Side::Nic));
    expect.assert_eq(&out);
}

#[test]
fn an_actor_is_downgraded_when_its_tail_exceeds_tail_thresh() {
    // Tail_thresh 10 µs (default), windows of 100 executions: only the actor with 2 % of 50 µs
    // items has a p99 above it; it is downgraded when its first window fills (its 100th item).
    check_light_load(
        &[steady_1us, spikes_2_percent, spikes_half_percent],
        expect![[r#"
                3030us downgraded a1
            states: a0=Fcfs a1=Drr a2=Fcfs
        "#]],
    );
}

#[test]
fn a_drr_actor_returns_to_fcfs_below_one_minus_alpha_of_tail_thresh() {
    // After 200 spiky items the actor is steady at 1 µs: once 100 DRR executions show a p99
    // below (1 − 0.5) × 10 µs it returns to FCFS (when its mailbox is empty).
    check_light_load(
        &[steady_1us, spikes_then_steady],
        expect![[r#"
                2040us downgraded a1
                5000us upgraded a1
            states: a0=Fcfs a1=Fcfs
        "#]],
    );
}

/// Spiky until downgraded (first 100 items), then a fixed cost.
fn drr_6us(n: u64) -> u64 {
    if n < 100 { spikes_2_percent(n) } else { 6 * US }
}

fn drr_2us(n: u64) -> u64 {
    if n < 100 { spikes_2_percent(n) } else { 2 * US }
}

fn drr_8us(n: u64) -> u64 {
    if n < 100 { spikes_2_percent(n) } else { 8 * US }
}

/// Two downgraded actors, both always backlogged on the one DRR core: items and execution time
/// each gets while backlogged.
fn drr_shares(a: (Script, u64), b: (Script, u64)) -> (u64, u64, u64, u64) {
    let actors = [(a.0, Some(a.1), 0), (b.0, Some(b.1), 0)];
    let mut w = World::new(IpipeConfig::nic(2), IpipeConfig::host(2), &actors);
    // 0.5 requests/µs against a DRR core that serves at most 0.5/µs of 2 µs items: backlogged.
    w.stream(0, 2 * US, 15_000, &[0, 1]);
    w.run(5 * MS);
    let before = w.scripts.borrow().exec_ns.clone();
    let served_before = w.served(0, 5 * MS);
    w.run(25 * MS);
    let after = w.scripts.borrow().exec_ns.clone();
    let served = w.served(0, 25 * MS);
    let count =
        |m: &std::collections::BTreeMap<(usize, &str), u64>, a| *m.get(&(a, "nic")).unwrap_or(&0);
    let items = |a| count(&served, a) - count(&served_before, a);
    let time = |a: u32| after[&a] - before[&a];
    assert_eq!(w.pair.nic.actor_state(w.actors[0]), Ok(ActorState::Drr));
    assert_eq!(w.pair.nic.actor_state(w.actors[1]), Ok(ActorState::Drr));
    (items(0), items(1), time(0), time(1))
}

#[test]
fn drr_serves_backlogged_actors_in_proportion_to_their_quanta() {
    // Equal costs, quanta 20 µs and 10 µs: items (and time) 2 : 1.
    let (items_a, items_b, time_a, time_b) = drr_shares((drr_6us, 20 * US), (drr_6us, 10 * US));
    let ratio = items_a as f64 / items_b as f64;
    assert!(
        (ratio - 2.0).abs() < 0.02,
        "items {items_a}:{items_b} = {ratio:.3}, quanta 2:1"
    );
    let time_ratio = time_a as f64 / time_b as f64;
    assert!(
        (time_ratio - 2.0).abs() < 0.02,
        "time {time_a}:{time_b} = {time_ratio:.3}"
    );
    // Equal quanta, costs 2 µs and 8 µs: equal time, items 4 : 1.
    let (items_a, items_b, time_a, time_b) = drr_shares((drr_2us, 12 * US), (drr_8us, 12 * US));
    let time_ratio = time_a as f64 / time_b as f64;
    assert!(
        (time_ratio - 1.0).abs() < 0.02,
        "time {time_a}:{time_b} = {time_ratio:.3}, quanta 1:1"
    );
    let ratio = items_a as f64 / items_b as f64;
    assert!(
        (ratio - 4.0).abs() < 0.08,
        "items {items_a}:{items_b} = {ratio:.3}, costs 1:4"
    );
}

fn migrating_nic() -> IpipeConfig {
    let mut nic = IpipeConfig::nic(2);
    nic.thresholds.mean_ns = 50 * US;
    nic.windows.side_completions = 200;
    nic
}

#[test]
fn the_nic_migrates_above_mean_thresh_and_pulls_back_below_one_minus_alpha() {
    // Three actors of 1.5 µs items, each owning 1 MiB. 0–5 ms: one request per µs overloads the
    // NIC's one FCFS core (0.67 requests/µs); the mean sojourn passes 50 µs and actors move to
    // the host. Whenever the NIC then keeps up, its mean falls below 25 µs and an actor comes
    // back, overloading it again: iPipe's rule flaps while the NIC cannot hold every actor.
    // 5–40 ms: one request per 10 µs; every actor comes back, one per decision (a decision per
    // 200 completions).
    let actors = [(steady_1500ns as Script, None, 1 << 20); 3];
    let mut w = World::new(migrating_nic(), IpipeConfig::host(2), &actors);
    w.stream(0, US, 5_000, &[0, 1, 2]);
    w.stream(5 * MS, 10 * US, 3_500, &[0, 1, 2]);
    w.run(60 * MS);
    w.assert_every_request_answered();
    let mut first = Vec::new();
    for &(at, logged) in &w.pair.log {
        if let Logged::MigrationStarted(a, direction, mean_ns) = logged {
            match direction {
                Direction::ToHost => {
                    assert!(mean_ns > 50 * US, "{a:?} left at a mean of {mean_ns} ns")
                }
                Direction::ToNic => assert!(mean_ns < 25 * US, "{a:?} came back at {mean_ns} ns"),
            }
            first.push((at.0 / US, a.0, direction, mean_ns / US));
        }
    }
    let last_to_host = first
        .iter()
        .filter(|m| m.2 == Direction::ToHost)
        .map(|m| m.0)
        .max();
    assert!(
        last_to_host < Some(6_000),
        "nothing leaves once the load is light: {first:?}"
    );
    let out = format!(
        "first decisions (us, actor, direction, mean us): {:?}\nnic: {}\nhost: {}\n",
        &first[..4],
        states(&w, Side::Nic),
        states(&w, Side::Host)
    );
    expect![[r#"
        first decisions (us, actor, direction, mean us): [(300, 0, ToHost, 51), (572, 2, ToHost, 170), (752, 1, ToHost, 196), (999, 1, ToNic, 4)]
        nic: a0=Fcfs a1=Fcfs a2=Fcfs
        host: a0=absent a1=absent a2=absent
    "#]]
    .assert_eq(&out);
}

/// The duration of a migration forced at 1 ms (with `gap_ns` between requests to the migrating
/// actor, 0 for none): (µs from decision to landing, requests buffered meanwhile).
fn forced_migration(object_bytes: u64, gap_ns: u64) -> (u64, u32) {
    let actors = [(steady_1us as Script, None, object_bytes)];
    let mut w = World::new(IpipeConfig::nic(3), IpipeConfig::host(2), &actors);
    if gap_ns > 0 {
        w.stream(0, gap_ns, 20 * MS / gap_ns, &[0]);
    }
    w.run(MS);
    w.pair
        .force_migration(w.actors[0])
        .expect("idle management core");
    w.run(30 * MS);
    w.assert_every_request_answered();
    let landed = w.pair.log.iter().find_map(|&(at, l)| match l {
        Logged::MigrationDone(_, _, started, _, bytes, requests) => {
            assert_eq!(bytes, object_bytes, "every object byte moved");
            Some(((at.0 - started.0) / US, requests))
        }
        _ => None,
    });
    landed.expect("the migration landed")
}

#[test]
fn migration_cost_grows_with_the_actors_object_bytes() {
    let sizes = [64 << 10, 1 << 20, 16 << 20, 32 << 20];
    let us: Vec<u64> = sizes
        .iter()
        .map(|&bytes| forced_migration(bytes, 0).0)
        .collect();
    assert!(
        us.windows(2).all(|w| w[0] < w[1]),
        "more bytes, longer migration: {us:?}"
    );
    let table: Vec<String> = sizes
        .iter()
        .zip(&us)
        .map(|(bytes, us)| format!("{} KiB: {us} us", bytes >> 10))
        .collect();
    expect![[r#"
        64 KiB: 4 us
        1024 KiB: 66 us
        16384 KiB: 1058 us
        32768 KiB: 2116 us"#]]
    .assert_eq(&table.join("\n"));
}

#[test]
fn migration_buffers_more_requests_the_higher_the_load() {
    let table: Vec<String> = [20 * US, 5 * US, 2 * US]
        .into_iter()
        .map(|gap| {
            let (us, requests) = forced_migration(16 << 20, gap);
            format!(
                "one request per {:>2} us: {us} us, {requests} requests buffered",
                gap / US
            )
        })
        .collect();
    expect![[r#"
        one request per 20 us: 1064 us, 53 requests buffered
        one request per  5 us: 1080 us, 216 requests buffered
        one request per  2 us: 1111 us, 555 requests buffered"#]]
    .assert_eq(&table.join("\n"));
}
