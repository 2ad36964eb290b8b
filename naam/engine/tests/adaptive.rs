//! The adaptive controller on a virtual clock, through the engine code the roles run (client
//! endpoint → eSwitch rule table → host and NIC server workers → control stage → rules and worker
//! settings): a CPU hog starts on the host mid-run and load moves to the NIC within a bounded
//! virtual time; under steady load the rules never change. Seeded: `NAAM_SEED` replays a failure.

mod support;

use naam_engine::client::Outcome;
use naam_engine::control::Controller;
use naam_engine::policy;
use naam_engine::*;
use support::*;

const SEED: u64 = 42;

const INTERVAL_NS: u64 = 10_000; // 100 k requests/s offered
const HOG_AT_NS: u64 = 100_000_000;
const HOG_SLOWDOWN: u64 = 10;
/// Virtual time allowed from congestion onset to 90 % of new requests at the NIC.
const SHIFT_NS_MAX: u64 = 10_000_000;

fn world(seed: &Seed, policy_name: &str) -> World {
    let pairs = pairs(200, seed.0);
    let controller = Controller::new(policy::by_name(policy_name).unwrap(), RuleKey::DEFAULT);
    let start = controller.current().shares;
    World::new(
        &pairs,
        Costs::default(),
        RuleTable::new(start),
        Some(controller),
    )
}

/// Offers hash lookups every `INTERVAL_NS` until `until_ns`.
fn drive(world: &mut World, until_ns: u64) {
    world.offer_hash_gets(&mut 0, INTERVAL_NS, until_ns);
}

fn share(world: &World, location: Location, from_ns: u64, to_ns: u64) -> f64 {
    world.share(location, from_ns, to_ns)
}

#[test]
fn adaptive_policy_moves_load_to_the_nic_within_bounded_time() {
    let seed = test_seed(SEED);
    let mut w = world(&seed, "naam-adaptive");
    w.host_slowdown = Some((Nanos(HOG_AT_NS), HOG_SLOWDOWN));
    drive(&mut w, HOG_AT_NS + 60_000_000);
    assert_eq!(
        share(&w, Location::Host, 0, HOG_AT_NS),
        1.0,
        "all at the host before the hog"
    );
    let shifted_at = (HOG_AT_NS..HOG_AT_NS + 60_000_000)
        .step_by(1_000_000)
        .find(|&t| share(&w, Location::Nic, t, t + 1_000_000) >= 0.9)
        .expect("load moved to the NIC");
    let shift_ns = shifted_at + 1_000_000 - HOG_AT_NS;
    println!("virtual shift time: {} ms", shift_ns as f64 / 1e6);
    assert!(shift_ns <= SHIFT_NS_MAX, "shift took {shift_ns} ns");
    let changes = w.controller().unwrap().changes();
    assert!(
        changes.iter().all(|c| c.at.0 >= HOG_AT_NS),
        "no change before congestion"
    );
    // Every request was answered, none lost in the move.
    let drained = w.now.plus_ns(5_000_000_000);
    w.run_until(drained);
    assert_eq!(w.replies.len(), w.steered.len());
    assert!(w.replies.values().all(|r| r.outcome == Outcome::Ok));
}

#[test]
fn adaptive_policy_does_not_flap_under_steady_load() {
    let seed = test_seed(SEED);
    let mut w = world(&seed, "naam-adaptive");
    drive(&mut w, 500_000_000);
    let c = w.controller().unwrap();
    assert!(
        c.changes().is_empty(),
        "changes under steady load: {:?}",
        c.changes()
    );
    assert_eq!(share(&w, Location::Host, 0, 500_000_000), 1.0);
}

#[test]
fn static_host_policy_suffers_the_hog() {
    // The contrast the load-shift experiment shows: without steering, latency explodes.
    let seed = test_seed(SEED);
    let mut w = world(&seed, "host");
    w.host_slowdown = Some((Nanos(HOG_AT_NS), HOG_SLOWDOWN));
    drive(&mut w, HOG_AT_NS + 20_000_000);
    w.run_until(Nanos(HOG_AT_NS + 2_000_000_000));
    let worst_ns = w.replies.values().map(|r| r.latency_ns).max().unwrap();
    let mut adaptive = world(&seed, "naam-adaptive");
    adaptive.host_slowdown = Some((Nanos(HOG_AT_NS), HOG_SLOWDOWN));
    drive(&mut adaptive, HOG_AT_NS + 20_000_000);
    adaptive.run_until(Nanos(HOG_AT_NS + 2_000_000_000));
    let adaptive_worst_ns = adaptive
        .replies
        .values()
        .map(|r| r.latency_ns)
        .max()
        .unwrap();
    assert!(
        adaptive_worst_ns < worst_ns,
        "adaptive {adaptive_worst_ns} ns vs static {worst_ns} ns"
    );
}
