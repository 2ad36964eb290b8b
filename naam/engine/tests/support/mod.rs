//! Test support: a dataset for the engine's test functions (`tests/bpf/engine_fns.c`), the test
//! seed (`NAAM_SEED`), and a deterministic virtual-clock world with one client endpoint, the
//! eSwitch stage, one host worker and one NIC worker, the server's control stage and an RNIC,
//! joined by a network with fixed delays. Everything runs on one thread; the only time is the
//! world's. The world drives exactly the engine code the roles drive
//! ([`ClientEndpoint`], [`RuleTable::route`], [`ServerWorker`], [`ServerControl`],
//! [`answer_read`]): it only models time.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use naam_engine::client::{Call, Destination, Outcome, Route};
use naam_engine::control::{Controller, Heartbeat, HostLoad, SilenceRule};
use naam_engine::exec::{AccessFailure, Completion};
use naam_engine::function::Code;
use naam_engine::region::Denial;
use naam_engine::rnic::answer_read;
use naam_engine::server::WorkerConfig;
use naam_engine::steer::steer_bucket;
use naam_engine::wire::{Descriptors, InvokeFlags};
use naam_engine::*;

/// The compiled test functions (committed; `scripts/build-bpf.sh --check` keeps them fresh).
pub const ENGINE_FNS: &[u8] = include_bytes!("../bpf/engine_fns.o");

pub const TENANT: TenantId = TenantId(1);
pub const OTHER_TENANT: TenantId = TenantId(2);
pub const HASH_GET: FunctionId = FunctionId(1);
pub const TREE_GET: FunctionId = FunctionId(2);
pub const READ_ANY: FunctionId = FunctionId(3);
pub const WILD_LOAD: FunctionId = FunctionId(4);
pub const SPIN: FunctionId = FunctionId(5);
pub const ALWAYS_RETRY: FunctionId = FunctionId(6);
pub const NEXT_WITHOUT_READ: FunctionId = FunctionId(7);

pub const HASH_BUCKETS: u64 = 64;
pub const HASH_SLOTS: u64 = 4;
pub const HASH_BUCKET_BYTES: u64 = HASH_SLOTS * 16;
pub const HASH_ITEM_BYTES: u64 = 24;
pub const TREE_NODE_BYTES: u64 = 128;
pub const TREE_FANOUT: usize = 8;

/// Host memory: region id → bytes.
pub type Memory = HashMap<RegionId, Vec<u8>>;

/// The regions and keys of the test dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub index: RegionInfo,
    pub items: RegionInfo,
    pub nodes: RegionInfo,
    pub other: RegionInfo,
    pub tree_root: u64,
    pub tree_depth: u64,
    pub pairs: Vec<(u64, u64)>,
}

/// Registers every test function for `TENANT` (and `READ_ANY` for `OTHER_TENANT` too).
pub fn functions() -> FunctionTable {
    let mut t = FunctionTable::new();
    let fns = [
        (HASH_GET, "hash_get"),
        (TREE_GET, "tree_get"),
        (READ_ANY, "read_any"),
        (WILD_LOAD, "wild_load"),
        (SPIN, "spin"),
        (ALWAYS_RETRY, "always_retry"),
        (NEXT_WITHOUT_READ, "next_without_read"),
    ];
    for (id, name) in fns {
        t.register_ebpf(
            TENANT,
            id,
            name,
            Code::Elf {
                object: ENGINE_FNS,
                name,
            },
        )
        .expect(name);
    }
    t.register_ebpf(
        OTHER_TENANT,
        READ_ANY,
        "read_any",
        Code::Elf {
            object: ENGINE_FNS,
            name: "naam/read_any",
        },
    )
    .expect("read_any for the other tenant");
    t
}

/// `count` pairs with distinct non-zero keys and values, from `seed`.
pub fn pairs(count: usize, seed: u64) -> Vec<(u64, u64)> {
    let mut rng = SplitMix(seed);
    let mut keys: Vec<u64> = Vec::new();
    while keys.len() < count {
        let k = rng.next() % 100_000 + 1;
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter().map(|k| (k, rng.next())).collect()
}

/// Builds the dataset's regions in a fresh table and memory.
pub fn dataset(pairs: &[(u64, u64)], secret: u8) -> (RegionTable, Memory, Dataset) {
    let mut regions = RegionTable::new(RkeySecret([secret; 16]));
    let mut memory = Memory::new();
    let (index_bytes, items_bytes, stored) = build_hash(pairs);
    let (tree_bytes, tree_root, tree_depth) = build_tree(pairs);
    let mut add = |tenant, bytes: Vec<u8>| {
        let info = regions
            .register(tenant, bytes.len() as u64, Perms::READ)
            .expect("register");
        memory.insert(info.id, bytes);
        info
    };
    let index = add(TENANT, index_bytes);
    let items = add(TENANT, items_bytes);
    let nodes = add(TENANT, tree_bytes);
    let other = add(OTHER_TENANT, vec![0x5a; 64]);
    let ds = Dataset {
        index,
        items,
        nodes,
        other,
        tree_root,
        tree_depth,
        pairs: stored,
    };
    (regions, memory, ds)
}

/// Hash index and items. Keys that do not fit their bucket are left out (returned: the stored).
fn build_hash(pairs: &[(u64, u64)]) -> (Vec<u8>, Vec<u8>, Vec<(u64, u64)>) {
    let mut index = vec![0u8; (HASH_BUCKETS * HASH_BUCKET_BYTES) as usize];
    let mut items = Vec::new();
    let mut stored = Vec::new();
    for &(key, value) in pairs {
        let bucket = (key % HASH_BUCKETS) * HASH_BUCKET_BYTES;
        let free = (0..HASH_SLOTS)
            .map(|s| (bucket + s * 16) as usize)
            .find(|&at| index[at..at + 8] == [0; 8]);
        let Some(at) = free else { continue };
        index[at..at + 8].copy_from_slice(&key.to_le_bytes());
        index[at + 8..at + 16].copy_from_slice(&(items.len() as u64).to_le_bytes());
        for word in [key, 0, value] {
            items.extend_from_slice(&word.to_le_bytes());
        }
        stored.push((key, value));
    }
    if items.is_empty() {
        items.resize(HASH_ITEM_BYTES as usize, 0);
    }
    (index, items, stored)
}

/// Bulk-loads a tree of 128-byte nodes; returns (bytes, root offset, depth).
fn build_tree(pairs: &[(u64, u64)]) -> (Vec<u8>, u64, u64) {
    let mut sorted = pairs.to_vec();
    sorted.sort();
    let mut bytes = Vec::new();
    // Each level: (first key, node offset) per node.
    let mut level: Vec<(u64, u64)> = sorted
        .chunks(TREE_FANOUT - 1)
        .map(|chunk| {
            let keys: Vec<u64> = chunk.iter().map(|p| p.0).collect();
            let ptrs: Vec<u64> = chunk.iter().map(|p| p.1).collect();
            (keys[0], push_node(&mut bytes, true, &keys, &ptrs))
        })
        .collect();
    let mut depth = 1;
    while level.len() > 1 {
        level = level
            .chunks(TREE_FANOUT)
            .map(|children| {
                let keys: Vec<u64> = children[1..].iter().map(|c| c.0).collect();
                let ptrs: Vec<u64> = children.iter().map(|c| c.1).collect();
                (children[0].0, push_node(&mut bytes, false, &keys, &ptrs))
            })
            .collect();
        depth += 1;
    }
    (bytes, level[0].1, depth)
}

fn push_node(bytes: &mut Vec<u8>, leaf: bool, keys: &[u64], ptrs: &[u64]) -> u64 {
    let offset = bytes.len() as u64;
    let mut node = vec![0u8; TREE_NODE_BYTES as usize];
    node[0..4].copy_from_slice(&u32::from(leaf).to_le_bytes());
    node[4..8].copy_from_slice(&(keys.len() as u32).to_le_bytes());
    for (i, k) in keys.iter().enumerate() {
        node[8 + 8 * i..16 + 8 * i].copy_from_slice(&k.to_le_bytes());
    }
    for (i, p) in ptrs.iter().enumerate() {
        node[64 + 8 * i..72 + 8 * i].copy_from_slice(&p.to_le_bytes());
    }
    bytes.extend_from_slice(&node);
    offset
}

/// Arguments and first descriptor of a hash lookup.
pub fn hash_request(ds: &Dataset, key: u64) -> (Vec<u8>, Descriptors) {
    let mut args = Vec::new();
    for word in [ds.index.rkey.0, ds.items.rkey.0, key] {
        args.extend_from_slice(&word.to_le_bytes());
    }
    let bucket = Descriptor::read(
        ds.index.rkey,
        (key % HASH_BUCKETS) * HASH_BUCKET_BYTES,
        HASH_BUCKET_BYTES as u32,
    );
    (
        args,
        Descriptors::from_slice(&[bucket]).expect("one descriptor"),
    )
}

/// Arguments and first descriptor of a tree lookup.
pub fn tree_request(ds: &Dataset, key: u64) -> (Vec<u8>, Descriptors) {
    let mut args = Vec::new();
    for word in [ds.nodes.rkey.0, key] {
        args.extend_from_slice(&word.to_le_bytes());
    }
    let root = Descriptor::read(ds.nodes.rkey, ds.tree_root, TREE_NODE_BYTES as u32);
    (
        args,
        Descriptors::from_slice(&[root]).expect("one descriptor"),
    )
}

/// An Invoke for `function` with `args` and `descriptors`.
pub fn invoke<'a>(
    tenant: TenantId,
    function: FunctionId,
    id: u64,
    args: &'a [u8],
    descriptors: Descriptors,
) -> Invoke<'a> {
    Invoke {
        flags: InvokeFlags(InvokeFlags::ALLOW_PUSHBACK),
        ..Invoke::new_message(tenant, function, RequestId(id), args, descriptors)
    }
}

/// Serves an access from host memory after the region check (what the host's data path and the
/// emulated RNIC do).
pub fn serve(
    memory: &Memory,
    regions: &RegionTable,
    tenant: TenantId,
    d: &Descriptor,
) -> Result<Vec<u8>, Denial> {
    let region = regions.check(tenant, d)?;
    let start = d.offset as usize;
    Ok(memory[&region][start..start + d.len as usize].to_vec())
}

/// Runs one message to completion at a host executor with direct memory access.
pub fn run_at_host(
    exec: &mut Executor,
    memory: &Memory,
    regions: &RegionTable,
    msg: &Invoke<'_>,
) -> (Completion, Vec<u8>) {
    run_serving(exec, msg, |exec, a| {
        match serve(memory, regions, a.tenant, &a.descriptor) {
            Ok(bytes) => assert!(exec.complete_access(a.id, &bytes)),
            Err(denial) => {
                assert!(exec.fail_access(Nanos(0), a.id, AccessFailure::Denied(denial.code())))
            }
        }
    })
}

/// Runs one message to completion, handing each access the executor puts out to `serve_access`
/// (which completes or fails it).
pub fn run_serving(
    exec: &mut Executor,
    msg: &Invoke<'_>,
    mut serve_access: impl FnMut(&mut Executor, AccessRequest),
) -> (Completion, Vec<u8>) {
    exec.submit(Nanos(0), Nanos(0), 0, msg);
    for _ in 0..10_000 {
        while let Some(a) = exec.poll_access() {
            serve_access(exec, a);
        }
        let mut frame = Vec::new();
        if let Some(c) = exec.poll_completion(&mut frame) {
            return (c, frame);
        }
        exec.run(Nanos(0), 1);
    }
    panic!("message did not complete in 10,000 rounds");
}

/// The decoded reply payload and status of a reply frame.
pub fn reply_of(frame: &[u8]) -> (Status, Location, Vec<u8>) {
    match Frame::decode(frame).expect("a valid reply frame") {
        Frame::Reply(r) => (r.status, r.location, r.payload.to_vec()),
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// A tiny deterministic generator (SplitMix64) for test data.
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

// ---- the test seed ----------------------------------------------------------------------------

/// A test's seed: `NAAM_SEED` from the environment (decimal or `0x` hex) if set, else the test's
/// default. If the test panics, the guard prints `NAAM_SEED=…` so the failure replays.
#[derive(Debug)]
pub struct Seed(pub u64);

/// The seed of a test whose default is `default` (see [`Seed`]).
pub fn test_seed(default: u64) -> Seed {
    let seed = match std::env::var("NAAM_SEED") {
        Ok(text) => {
            parse_seed(&text).unwrap_or_else(|| panic!("NAAM_SEED={text:?} is not a number"))
        }
        Err(_) => default,
    };
    Seed(seed)
}

fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("NAAM_SEED={:#x} (set it to replay this failure)", self.0);
        }
    }
}

// ---- the virtual-clock world ------------------------------------------------------------------

/// Costs of the virtual world (ns).
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    /// One-way network delay client ↔ server.
    pub net_ns: u64,
    /// One DMA access from the NIC to host memory.
    pub dma_ns: u64,
    /// One step at the host.
    pub host_step_ns: u64,
    /// One step at the NIC (slower cores).
    pub nic_step_ns: u64,
    /// One step at the client.
    pub client_step_ns: u64,
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            net_ns: 5_000,
            dma_ns: 1_500,
            host_step_ns: 1_000,
            nic_step_ns: 3_000,
            client_step_ns: 1_000,
        }
    }
}

/// Request timeout of the world's client (virtual time).
pub const CLIENT_TIMEOUT_NS: u64 = 10_000_000_000;

#[derive(Debug)]
enum Event {
    /// A frame reaches the server's ingress (the eSwitch).
    Ingress(Vec<u8>),
    /// A one-sided read reaches the RNIC.
    AtRnic(Vec<u8>),
    /// A server worker's access completes (with the bytes, or a denial code).
    AccessDone(Location, AccessId, Result<Vec<u8>, u32>),
    /// A worker becomes free.
    Wake(Location),
    /// A datagram reaches the client.
    AtClient(Vec<u8>),
    /// Time to sample server load.
    Sample,
}

/// How one request ended at the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its outcome.
    pub outcome: Outcome,
    /// Where it ran (`None`: nowhere answered).
    pub location: Option<Location>,
    /// The reply bytes.
    pub payload: Vec<u8>,
    /// From send to answer (ns).
    pub latency_ns: u64,
}

/// A client endpoint, the eSwitch, a host worker, a NIC worker, the control stage and an RNIC on a
/// virtual clock.
pub struct World {
    pub now: Nanos,
    pub costs: Costs,
    pub memory: Memory,
    pub regions: Arc<RegionTable>,
    pub ds: Dataset,
    pub client: ClientEndpoint<u64>,
    /// Host and NIC workers, by `Location::index()`.
    pub workers: [ServerWorker; 2],
    /// The eSwitch's rules when no control stage runs.
    pub rules: RuleTable,
    pub control: Option<ServerControl>,
    pub sample_period_ns: u64,
    /// Host step cost multiplier (a CPU hog), from the given time on.
    pub host_slowdown: Option<(Nanos, u64)>,
    /// Intervals [start, end) in which the host worker has no core (a VM's stalls, a hog's
    /// time slices): it neither steps, samples nor beats.
    pub host_stalls: Vec<(Nanos, Nanos)>,
    /// Intervals in which the driver sees the host worker queued for a CPU (a hog's slices, as
    /// the roles see them; a VM's stall is not seen so). Stalls as well when set.
    pub host_preempted: Vec<(Nanos, Nanos)>,
    /// The host worker's latest heartbeat.
    host_beat: Nanos,
    busy_until: [Nanos; 3],
    events: BinaryHeap<Reverse<(Nanos, u64, usize)>>,
    payloads: HashMap<usize, Event>,
    seq: u64,
    /// Answers received: request id → answer.
    pub replies: HashMap<u64, Answer>,
    sent_at: HashMap<u64, Nanos>,
    /// Where each request was steered (by request id): the eSwitch's verdict, or the client.
    pub steered: Vec<(Nanos, u64, Location)>,
}

impl World {
    /// A world over `pairs` steered by `rules`, or — with a `controller` — by the control stage
    /// (which starts from the policy's initial decision).
    pub fn new(
        pairs: &[(u64, u64)],
        costs: Costs,
        rules: RuleTable,
        controller: Option<Controller>,
    ) -> World {
        World::with_silence_rule(
            pairs,
            costs,
            rules,
            controller,
            SilenceRule::immediate(u64::MAX),
        )
    }

    /// [`World::new`] whose control stage reads the host worker's silence by `silence`.
    pub fn with_silence_rule(
        pairs: &[(u64, u64)],
        costs: Costs,
        rules: RuleTable,
        controller: Option<Controller>,
        silence: SilenceRule,
    ) -> World {
        let (regions, memory, ds) = dataset(pairs, 9);
        let functions = Arc::new(functions());
        let regions = Arc::new(regions);
        let client_regions =
            Arc::new(RegionTable::from_catalog(&regions.catalog_for(TENANT)).expect("catalog"));
        let sample_period_ns = 1_000_000;
        let worker = |loc| {
            ServerWorker::new(
                WorkerConfig::new(loc, sample_period_ns),
                Arc::clone(&functions),
                Arc::clone(&regions),
                Nanos(0),
            )
            .expect("worker")
        };
        let workers = [worker(Location::Host), worker(Location::Nic)];
        let config = EndpointConfig::new(0, CLIENT_TIMEOUT_NS);
        let client = ClientEndpoint::new(config, functions, client_regions, None, Nanos(0))
            .expect("client endpoint");
        let control = controller.map(|c| {
            let host = HostLoad::with_silence_rule(sample_period_ns, silence);
            ServerControl::new(c, rules.clone(), host, Nanos(0)).expect("control stage")
        });
        let mut world = World {
            now: Nanos(0),
            costs,
            memory,
            regions,
            ds,
            client,
            workers,
            rules,
            control,
            sample_period_ns,
            host_slowdown: None,
            host_stalls: Vec::new(),
            host_preempted: Vec::new(),
            host_beat: Nanos(0),
            busy_until: [Nanos(0); 3],
            events: BinaryHeap::new(),
            payloads: HashMap::new(),
            seq: 0,
            replies: HashMap::new(),
            sent_at: HashMap::new(),
            steered: Vec::new(),
        };
        world.publish_settings();
        if world.control.is_some() {
            world.schedule(Nanos(sample_period_ns), Event::Sample);
        }
        world
    }

    /// The controller, if a control stage runs.
    pub fn controller(&self) -> Option<&Controller> {
        self.control.as_ref().map(ServerControl::controller)
    }

    /// The rules the eSwitch holds now.
    pub fn eswitch_rules(&self) -> &RuleTable {
        self.control
            .as_ref()
            .map_or(&self.rules, ServerControl::rules)
    }

    /// The settings of the rule in force, published to the workers (and, for a static
    /// placement, known to the client from the start).
    fn publish_settings(&mut self) {
        let settings = match &self.control {
            Some(c) => c.settings(),
            None => WorkerSettings {
                client_permille: self.rules.default_shares().of(Location::Client),
                pushback_credit_insn: None,
            },
        };
        for w in &mut self.workers {
            w.apply(settings);
        }
        if self.control.is_none() {
            self.client.set_client_permille(settings.client_permille);
        }
    }

    fn schedule(&mut self, at: Nanos, event: Event) {
        self.seq += 1;
        let key = self.seq as usize;
        self.payloads.insert(key, event);
        self.events.push(Reverse((at, self.seq, key)));
    }

    /// Issues request `id` at the current time through the client endpoint: it runs here if it
    /// falls in the client's share, else it goes to the server's ingress.
    pub fn send(&mut self, function: FunctionId, id: u64, args: &[u8], descriptors: Descriptors) {
        let call = Call {
            tenant: TENANT,
            function,
            args,
            descriptors: &descriptors,
            server_only: false,
        };
        self.sent_at.insert(id, self.now);
        let route = self
            .client
            .issue(self.now, self.now, id, &call, id)
            .expect("issue");
        if route == Route::Local {
            self.steered.push((self.now, id, Location::Client));
        }
        self.drain_client_events(self.now);
        self.pump_client();
    }

    /// Processes events until `until` (inclusive) or until none is left.
    pub fn run_until(&mut self, until: Nanos) {
        while let Some(Reverse((at, _, key))) = self.events.peek().copied() {
            if at > until {
                break;
            }
            self.events.pop();
            self.now = at;
            let event = self.payloads.remove(&key).expect("event payload");
            self.handle(event);
        }
        self.now = self.now.max(until);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Ingress(frame) => self.ingress(&frame),
            Event::AtRnic(frame) => self.rnic(&frame),
            Event::AccessDone(loc, id, result) => {
                let worker = &mut self.workers[loc.index()];
                match result {
                    Ok(bytes) => {
                        worker.complete_access(id, &bytes);
                    }
                    Err(code) => {
                        worker.fail_access(self.now, id, AccessFailure::Denied(code));
                    }
                }
                self.pump_server(loc);
            }
            Event::Wake(Location::Client) => self.pump_client(),
            Event::Wake(loc) => self.pump_server(loc),
            Event::AtClient(frame) => {
                self.client.handle_datagram(self.now, &frame);
                self.drain_client_events(self.now);
                self.pump_client();
            }
            Event::Sample => self.sample(),
        }
    }

    /// The eSwitch stage: the rule table's decision; the client range goes to the host, which
    /// pushes back what the client should have run itself.
    fn ingress(&mut self, frame: &[u8]) {
        let Ok(Frame::Invoke(msg)) = Frame::decode(frame) else {
            panic!("ingress got a non-invoke frame")
        };
        let mut at = self
            .eswitch_rules()
            .route(msg.tenant, msg.function, msg.flow, msg.request_id);
        if at == Location::Client {
            at = Location::Host;
        }
        self.steered.push((self.now, msg.request_id.0, at));
        let now = self.now;
        self.workers[at.index()].handle_datagram(now, now, frame, || 0);
        self.pump_server(at);
    }

    /// The RNIC answers a one-sided read at once (the engine's read server).
    fn rnic(&mut self, frame: &[u8]) {
        let Ok(Frame::Read(read)) = Frame::decode(frame) else {
            panic!("the RNIC got a non-read frame")
        };
        let mut data = vec![0u8; naam_engine::abi::ACCESS_BYTES_MAX];
        let memory = &self.memory;
        let reply = answer_read(&read, &self.regions, &mut data, |region, offset, out| {
            let start = offset as usize;
            out.copy_from_slice(&memory[&region][start..start + out.len()]);
            true
        });
        let mut out = Vec::new();
        Frame::ReadReply(reply).encode(&mut out).expect("encode");
        self.schedule(self.now.plus_ns(self.costs.net_ns), Event::AtClient(out));
    }

    /// Starts the accesses a server worker asked for, and one step if it is free. Accesses and
    /// replies produced by a step leave when the step ends.
    fn pump_server(&mut self, loc: Location) {
        if loc == Location::Host
            && let Some(end) = self.host_stalled_until(self.now)
        {
            self.schedule(end, Event::Wake(loc));
            return;
        }
        self.start_accesses(loc, self.now);
        let i = loc.index();
        if self.busy_until[i] <= self.now && self.workers[i].step(self.now).is_some() {
            let cost = self.step_cost(loc);
            self.busy_until[i] = self.now.plus_ns(cost);
            self.workers[i].record_busy(cost);
            self.schedule(self.busy_until[i], Event::Wake(loc));
        }
        assert!(
            self.workers[i].poll_native().is_none(),
            "the world has no native functions"
        );
        let depart = self.busy_until[i].max(self.now);
        self.start_accesses(loc, depart);
        self.drain_replies(loc, depart);
    }

    /// The data path: host accesses complete at once, NIC accesses after a DMA.
    fn start_accesses(&mut self, loc: Location, from: Nanos) {
        while let Some(a) = self.workers[loc.index()].poll_access() {
            let delay = if loc == Location::Nic {
                self.costs.dma_ns
            } else {
                0
            };
            let served = serve(&self.memory, &self.regions, a.tenant, &a.descriptor)
                .map_err(|denial| denial.code());
            self.schedule(from.plus_ns(delay), Event::AccessDone(loc, a.id, served));
        }
    }

    fn drain_replies(&mut self, loc: Location, depart: Nanos) {
        let mut frame = Vec::new();
        while self.workers[loc.index()].poll_reply(&mut frame).is_some() {
            let at = depart.plus_ns(self.costs.net_ns);
            self.schedule(at, Event::AtClient(std::mem::take(&mut frame)));
        }
    }

    /// Sends the client's transmits, and runs one local step if the client is free; what the
    /// step produces leaves (or ends) when it ends.
    fn pump_client(&mut self) {
        self.flush_client(self.now);
        let i = Location::Client.index();
        if self.busy_until[i] <= self.now && self.client.local_ready() {
            self.client.run_local(self.now, 1);
            self.busy_until[i] = self.now.plus_ns(self.costs.client_step_ns);
            self.schedule(self.busy_until[i], Event::Wake(Location::Client));
        }
        let depart = self.busy_until[i].max(self.now);
        self.flush_client(depart);
        self.drain_client_events(depart);
    }

    fn flush_client(&mut self, depart: Nanos) {
        let mut frame = Vec::new();
        while let Some(t) = self.client.poll_transmit(&mut frame) {
            let at = depart.plus_ns(self.costs.net_ns);
            let bytes = std::mem::take(&mut frame);
            let event = match t.to {
                Destination::Ingress => Event::Ingress(bytes),
                Destination::Rnic => Event::AtRnic(bytes),
            };
            self.schedule(at, event);
        }
    }

    fn drain_client_events(&mut self, at: Nanos) {
        let mut payload = Vec::new();
        while let Some(e) = self.client.poll_event(&mut payload) {
            let latency_ns = at.since(self.sent_at[&e.cookie]);
            let answer = Answer {
                outcome: e.outcome,
                location: e.location,
                payload: std::mem::take(&mut payload),
                latency_ns,
            };
            self.replies.insert(e.cookie, answer);
        }
    }

    fn step_cost(&self, loc: Location) -> u64 {
        match loc {
            Location::Host => {
                let factor = self
                    .host_slowdown
                    .filter(|(from, _)| self.now >= *from)
                    .map_or(1, |(_, f)| f);
                self.costs.host_step_ns * factor
            }
            Location::Nic => self.costs.nic_step_ns,
            Location::Client => self.costs.client_step_ns,
        }
    }

    /// The sampling tick: the host worker's sample goes to the control stage's host load (its
    /// tick decides), then the NIC's; every change reaches the eSwitch (the stage's rule table)
    /// and the workers' settings.
    fn sample(&mut self) {
        let now = self.now;
        let host_runs = self.host_stalled_until(now).is_none();
        let host_waiting_for_cpu = self.host_preempted_until(now).is_some();
        let Some(control) = self.control.as_mut() else {
            return;
        };
        if host_runs {
            self.host_beat = now;
            if let Some(s) = self.workers[Location::Host.index()].handle_timeout(now) {
                control.on_host_sample(s);
            }
        }
        let beat = Heartbeat {
            at: self.host_beat,
            waiting_for_cpu: host_waiting_for_cpu,
        };
        let host = control.handle_timeout(now, &[beat]);
        let nic = self.workers[Location::Nic.index()]
            .handle_timeout(now)
            .map(|s| control.on_nic_sample(s));
        for observed in [host, nic].into_iter().flatten() {
            assert_eq!(observed.rule_error, None, "rule change refused");
        }
        self.publish_settings();
        self.schedule(now.plus_ns(self.sample_period_ns), Event::Sample);
    }

    /// Offers a hash lookup every `interval_ns` until `until_ns`, request ids from `next_id` on
    /// (cycling through the dataset's keys).
    pub fn offer_hash_gets(&mut self, next_id: &mut u64, interval_ns: u64, until_ns: u64) {
        let ds = self.ds.clone();
        while self.now.0 < until_ns {
            let id = *next_id;
            let key = ds.pairs[(id % ds.pairs.len() as u64) as usize].0;
            let (args, d) = hash_request(&ds, key);
            self.send(HASH_GET, id, &args, d);
            *next_id += 1;
            let next = self.now.plus_ns(interval_ns);
            self.run_until(next);
        }
    }

    /// Share of the requests sent in [from, to) that were steered to `location`.
    pub fn share(&self, location: Location, from_ns: u64, to_ns: u64) -> f64 {
        let window: Vec<_> = self
            .steered
            .iter()
            .filter(|s| (from_ns..to_ns).contains(&s.0.0))
            .collect();
        window.iter().filter(|s| s.2 == location).count() as f64 / window.len().max(1) as f64
    }

    /// The end of the host stall (or preemption) `at` falls in, if any.
    fn host_stalled_until(&self, at: Nanos) -> Option<Nanos> {
        end_of_interval(&self.host_stalls, at).or_else(|| self.host_preempted_until(at))
    }

    /// The end of the host preemption `at` falls in, if any.
    fn host_preempted_until(&self, at: Nanos) -> Option<Nanos> {
        end_of_interval(&self.host_preempted, at)
    }

    /// The decoded hash-lookup answer of request `id` (found, value).
    pub fn answer(&self, id: u64) -> Option<(bool, u64)> {
        let answer = self.replies.get(&id)?;
        assert_eq!(answer.outcome, Outcome::Ok, "request {id}");
        let payload = &answer.payload;
        let found = payload[0] == 1;
        let value = if found {
            u64::from_le_bytes(payload[1..9].try_into().expect("8 bytes"))
        } else {
            0
        };
        Some((found, value))
    }
}

/// Bucket of a request id (re-exported for tests that reason about steering).
pub fn bucket(id: u64) -> u16 {
    steer_bucket(RequestId(id))
}

/// The end of the interval [start, end) of `intervals` that holds `at`, if any.
fn end_of_interval(intervals: &[(Nanos, Nanos)], at: Nanos) -> Option<Nanos> {
    intervals
        .iter()
        .find(|&&(start, end)| start <= at && at < end)
        .map(|&(_, end)| end)
}
