//! An in-memory client–eSwitch–host–NIC exchange on a virtual clock, through the engine code the
//! roles run (client endpoint, rule table, server workers, RNIC read server): multi-step functions
//! (a two-step hash lookup, a multi-level tree walk) give identical answers at every placement.
//! Seeded: `NAAM_SEED` replays a failure.

mod support;

use std::collections::HashMap;

use naam_engine::client::Outcome;
use naam_engine::*;
use support::*;

const SEED: u64 = 0x5eed_0001;

/// Runs every stored key plus some missing ones through `shares`; returns id → (found, value).
fn run_lookups(
    seed: u64,
    shares: Shares,
    function: FunctionId,
) -> (World, HashMap<u64, (bool, u64)>) {
    let pairs = pairs(400, seed);
    let mut world = World::new(&pairs, Costs::default(), RuleTable::new(shares), None);
    let ds = world.ds.clone();
    let mut keys: Vec<u64> = ds.pairs.iter().map(|p| p.0).collect();
    keys.extend([100_001, 100_002, 100_003]);
    for (id, key) in keys.iter().enumerate() {
        let (args, descriptors) = if function == HASH_GET {
            hash_request(&ds, *key)
        } else {
            tree_request(&ds, *key)
        };
        world.send(function, id as u64, &args, descriptors);
        let at = world.now.plus_ns(2_000);
        world.run_until(at);
    }
    world.run_until(Nanos(u64::MAX / 2));
    let answers = (0..keys.len() as u64)
        .map(|id| {
            (
                keys[id as usize],
                world.answer(id).expect("every request answered"),
            )
        })
        .collect();
    (world, answers)
}

fn expected(ds_pairs: &[(u64, u64)], key: u64) -> (bool, u64) {
    ds_pairs
        .iter()
        .find(|p| p.0 == key)
        .map_or((false, 0), |p| (true, p.1))
}

fn check_placements(function: FunctionId) {
    let seed = test_seed(SEED);
    let mut all = Vec::new();
    for (shares, location) in [
        (Shares::HOST, Location::Host),
        (Shares::NIC, Location::Nic),
        (Shares::CLIENT, Location::Client),
    ] {
        let (world, answers) = run_lookups(seed.0, shares, function);
        for (key, answer) in &answers {
            assert_eq!(
                *answer,
                expected(&world.ds.pairs, *key),
                "key {key} at {location}"
            );
        }
        assert!(
            world.replies.values().all(|r| r.location == Some(location)),
            "every request ran at {location}"
        );
        let mut sorted: Vec<_> = answers.into_iter().collect();
        sorted.sort();
        all.push(sorted);
    }
    assert_eq!(all[0], all[1], "host and NIC agree");
    assert_eq!(all[0], all[2], "host and client agree");
}

#[test]
fn hash_lookup_gives_identical_answers_at_every_placement() {
    check_placements(HASH_GET);
}

#[test]
fn tree_walk_gives_identical_answers_at_every_placement() {
    check_placements(TREE_GET);
}

#[test]
fn tree_walk_takes_one_step_per_level() {
    let seed = test_seed(SEED);
    let pairs = pairs(400, seed.0);
    let (regions, memory, ds) = dataset(&pairs, 3);
    assert!(ds.tree_depth >= 3, "the test tree has several levels");
    let functions = std::sync::Arc::new(functions());
    let regions = std::sync::Arc::new(regions);
    let mut exec = Executor::new(
        ExecutorConfig::new(Location::Host),
        functions,
        regions.clone(),
    )
    .unwrap();
    let (key, value) = ds.pairs[17];
    let (args, descriptors) = tree_request(&ds, key);
    let (_c, frame) = run_at_host(
        &mut exec,
        &memory,
        &regions,
        &invoke(TENANT, TREE_GET, 1, &args, descriptors),
    );
    let (status, _, payload) = reply_of(&frame);
    assert_eq!(status, Status::Ok);
    assert_eq!(payload[0], 1);
    assert_eq!(u64::from_le_bytes(payload[1..9].try_into().unwrap()), value);
    let levels = u64::from_le_bytes(payload[9..17].try_into().unwrap());
    assert_eq!(
        levels, ds.tree_depth,
        "carried state counts one step per level"
    );
    assert_eq!(exec.stats().steps, ds.tree_depth);
}

#[test]
fn latency_reflects_the_placement_costs() {
    // One lookup in an idle world: host = 2 net + 1 step; NIC adds DMA; client pays a network round
    // trip per access instead.
    let costs = Costs::default();
    let seed = test_seed(SEED);
    let mut latency = HashMap::new();
    for shares in [Shares::HOST, Shares::NIC, Shares::CLIENT] {
        let pairs = pairs(50, seed.0);
        let mut world = World::new(&pairs, costs, RuleTable::new(shares), None);
        let ds = world.ds.clone();
        let (args, d) = hash_request(&ds, ds.pairs[0].0);
        world.send(HASH_GET, 7, &args, d);
        world.run_until(Nanos(1_000_000_000));
        latency.insert(format!("{shares:?}"), world.replies[&7].latency_ns);
    }
    let host = 2 * costs.net_ns + 2 * costs.host_step_ns;
    let nic = 2 * costs.net_ns + 2 * costs.dma_ns + 2 * costs.nic_step_ns;
    let client = 2 * (2 * costs.net_ns) + 2 * costs.client_step_ns;
    assert_eq!(latency[&format!("{:?}", Shares::HOST)], host);
    assert_eq!(latency[&format!("{:?}", Shares::NIC)], nic);
    assert_eq!(latency[&format!("{:?}", Shares::CLIENT)], client);
}

#[test]
fn a_local_host_runs_functions_to_completion() {
    use naam_engine::function::Code;
    use naam_engine::local::LocalHost;
    let seed = test_seed(SEED);
    let pairs = pairs(50, seed.0);
    let (_regions, memory, ds) = dataset(&pairs, 9);
    let mut host = LocalHost::new(RkeySecret([9; 16]));
    // Same secret and order as `dataset`: the same rkeys.
    for info in [ds.index, ds.items, ds.nodes, ds.other] {
        let added = host
            .add_region(info.tenant, memory[&info.id].clone(), info.perms)
            .unwrap();
        assert_eq!(added.rkey, info.rkey);
    }
    host.register(
        TENANT,
        HASH_GET,
        "hash_get",
        Code::Elf {
            object: ENGINE_FNS,
            name: "hash_get",
        },
    )
    .unwrap();
    for &(key, value) in ds.pairs.iter().take(20) {
        let (args, d) = hash_request(&ds, key);
        let reply = host.call(&invoke(TENANT, HASH_GET, key, &args, d)).unwrap();
        assert_eq!(reply.status, Status::Ok);
        assert_eq!(reply.payload[0], 1);
        assert_eq!(
            u64::from_le_bytes(reply.payload[1..9].try_into().unwrap()),
            value
        );
        assert_eq!(reply.steps, 2);
        assert!(reply.insn > 0);
    }
}

#[test]
fn mixed_shares_spread_requests_over_every_location_with_identical_answers() {
    // host 50 %, NIC 30 %, client 20 %: the client runs its share itself, the eSwitch splits the
    // rest; every answer is the stored value whichever location computed it.
    let seed = test_seed(SEED);
    let shares = Shares::new(500, 300, 200).unwrap();
    let (world, answers) = run_lookups(seed.0, shares, HASH_GET);
    for (key, answer) in &answers {
        assert_eq!(*answer, expected(&world.ds.pairs, *key), "key {key}");
    }
    for location in Location::ALL {
        let ran = world
            .replies
            .values()
            .filter(|r| r.location == Some(location))
            .count();
        assert!(ran > 20, "{ran} requests ran at {location}");
    }
    for (id, answer) in &world.replies {
        let at = shares.location_of(bucket(*id));
        assert_eq!(
            answer.location,
            Some(at),
            "request {id} ran where its bucket says"
        );
        assert_eq!(answer.outcome, Outcome::Ok);
    }
}

#[test]
fn a_denied_client_side_access_ends_the_request_with_a_typed_error() {
    // READ_ANY run at the client asks for the other tenant's region: the access check every
    // location applies denies it (the client's catalog does not name that region), and the
    // request ends with a typed error instead of reading anything.
    let seed = test_seed(SEED);
    let pairs = pairs(20, seed.0);
    let mut world = World::new(
        &pairs,
        Costs::default(),
        RuleTable::new(Shares::CLIENT),
        None,
    );
    let other = world.ds.other;
    let mut args = Vec::new();
    for word in [other.rkey.0, 0, 8] {
        args.extend_from_slice(&word.to_le_bytes());
    }
    world.send(READ_ANY, 3, &args, wire::Descriptors::new());
    world.run_until(Nanos(1_000_000_000));
    let answer = &world.replies[&3];
    assert_eq!(answer.location, Some(Location::Client));
    match answer.outcome {
        Outcome::Error(code) => assert_eq!(code.kind, wire::ErrorKind::AccessDenied),
        other => panic!("expected an access denial, got {other:?}"),
    }
    assert_eq!(world.client.stats().reads_sent, 0, "nothing was read");
}
