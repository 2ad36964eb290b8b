//! Test support: a dataset for the engine's test functions (`tests/bpf/engine_fns.c`) and a
//! deterministic virtual-clock world with one client, one host worker and one NIC worker, joined
//! by a network with fixed delays. Everything runs on one thread; the only time is the world's.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use naam_engine::control::Controller;
use naam_engine::exec::{AccessFailure, AccessRequest, Completion};
use naam_engine::function::Code;
use naam_engine::region::Denial;
use naam_engine::steer::steer_bucket;
use naam_engine::wire::{Descriptors, InvokeFlags, ReadRequest};
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
    exec.submit(Nanos(0), Nanos(0), 0, msg);
    for _ in 0..10_000 {
        while let Some(a) = exec.poll_access() {
            match serve(memory, regions, a.tenant, &a.descriptor) {
                Ok(bytes) => assert!(exec.complete_access(a.id, &bytes)),
                Err(denial) => {
                    assert!(exec.fail_access(Nanos(0), a.id, AccessFailure::Denied(denial.code())))
                }
            }
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

#[derive(Debug)]
enum Event {
    /// A message reaches the server's ingress.
    Ingress(Vec<u8>),
    /// An access of a location completes (with the bytes, or a denial code).
    AccessDone(Location, AccessRequest, Result<Vec<u8>, u32>),
    /// A worker becomes free.
    Wake(Location),
    /// A reply reaches the client.
    ReplyAtClient(Vec<u8>),
    /// Time to sample server load.
    Sample,
}

/// A client, a host worker and a NIC worker on a virtual clock.
pub struct World {
    pub now: Nanos,
    pub costs: Costs,
    pub memory: Memory,
    pub regions: Arc<RegionTable>,
    pub ds: Dataset,
    pub execs: [Executor; 3],
    pub rules: RuleTable,
    pub controller: Option<Controller>,
    pub sample_period_ns: u64,
    /// Host step cost multiplier (a CPU hog), from the given time on.
    pub host_slowdown: Option<(Nanos, u64)>,
    busy_until: [Nanos; 3],
    busy_ns: [u64; 3],
    events: BinaryHeap<Reverse<(Nanos, u64, usize)>>,
    payloads: HashMap<usize, Event>,
    seq: u64,
    /// Replies received: request id → (status, where it ran, payload, latency ns).
    pub replies: HashMap<u64, (Status, Location, Vec<u8>, u64)>,
    sent_at: HashMap<u64, Nanos>,
    /// Where each request was steered (by request id).
    pub steered: Vec<(Nanos, u64, Location)>,
}

impl World {
    /// A world over `pairs` with `policy` steering (None: the static `rules` only).
    pub fn new(
        pairs: &[(u64, u64)],
        costs: Costs,
        rules: RuleTable,
        controller: Option<Controller>,
    ) -> World {
        let (regions, memory, ds) = dataset(pairs, 9);
        let functions = Arc::new(functions());
        let regions = Arc::new(regions);
        let client_regions =
            Arc::new(RegionTable::from_catalog(&regions.catalog_for(TENANT)).expect("catalog"));
        let exec = |loc, regions: &Arc<RegionTable>| {
            Executor::new(
                ExecutorConfig::new(loc),
                Arc::clone(&functions),
                Arc::clone(regions),
            )
            .expect("executor")
        };
        let execs = [
            exec(Location::Host, &regions),
            exec(Location::Nic, &regions),
            exec(Location::Client, &client_regions),
        ];
        let mut world = World {
            now: Nanos(0),
            costs,
            memory,
            regions,
            ds,
            execs,
            rules,
            controller,
            sample_period_ns: 1_000_000,
            host_slowdown: None,
            busy_until: [Nanos(0); 3],
            busy_ns: [0; 3],
            events: BinaryHeap::new(),
            payloads: HashMap::new(),
            seq: 0,
            replies: HashMap::new(),
            sent_at: HashMap::new(),
            steered: Vec::new(),
        };
        if world.controller.is_some() {
            world.schedule(Nanos(world.sample_period_ns), Event::Sample);
        }
        world
    }

    fn schedule(&mut self, at: Nanos, event: Event) {
        self.seq += 1;
        let key = self.seq as usize;
        self.payloads.insert(key, event);
        self.events.push(Reverse((at, self.seq, key)));
    }

    /// Sends a request from the client at the current time: the client's share runs locally,
    /// the rest goes to the server's ingress.
    pub fn send(&mut self, function: FunctionId, id: u64, args: &[u8], descriptors: Descriptors) {
        let msg = invoke(TENANT, function, id, args, descriptors);
        self.sent_at.insert(id, self.now);
        let at = self.rules.route(TENANT, function, 0, RequestId(id));
        if at == Location::Client {
            self.steered.push((self.now, id, Location::Client));
            self.execs[Location::Client.index()].submit(self.now, self.now, 0, &msg);
            self.pump(Location::Client);
            return;
        }
        let mut frame = Vec::new();
        msg.encode(&mut frame).expect("encode");
        self.schedule(self.now.plus_ns(self.costs.net_ns), Event::Ingress(frame));
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
            Event::AccessDone(loc, access, result) => {
                let exec = &mut self.execs[loc.index()];
                match result {
                    Ok(bytes) => {
                        exec.complete_access(access.id, &bytes);
                    }
                    Err(code) => {
                        exec.fail_access(self.now, access.id, AccessFailure::Denied(code));
                    }
                }
                self.pump(loc);
            }
            Event::Wake(loc) => self.pump(loc),
            Event::ReplyAtClient(frame) => self.client_reply(&frame),
            Event::Sample => self.sample(),
        }
    }

    fn ingress(&mut self, frame: &[u8]) {
        let Ok(Frame::Invoke(msg)) = Frame::decode(frame) else {
            panic!("ingress got a non-invoke frame")
        };
        let mut at = self
            .rules
            .route(msg.tenant, msg.function, msg.flow, msg.request_id);
        if at == Location::Client {
            // A client that ignored the hint: the host pushes it back.
            at = Location::Host;
        }
        self.steered.push((self.now, msg.request_id.0, at));
        self.execs[at.index()].submit(self.now, self.now, 0, &msg);
        self.pump(at);
    }

    fn client_reply(&mut self, frame: &[u8]) {
        let Ok(Frame::Reply(r)) = Frame::decode(frame) else {
            panic!("client got a non-reply frame")
        };
        if r.status == Status::Pushback {
            let Ok(Frame::Invoke(cont)) = Frame::decode(r.payload) else {
                panic!("pushback without continuation")
            };
            self.execs[Location::Client.index()].submit(self.now, self.now, 0, &cont);
            self.pump(Location::Client);
            return;
        }
        let latency = self.now.since(self.sent_at[&r.request_id.0]);
        self.replies.insert(
            r.request_id.0,
            (r.status, r.location, r.payload.to_vec(), latency),
        );
    }

    /// Starts the accesses a location asked for, and one step if its worker is free. Accesses
    /// and replies produced by a step leave when the step ends.
    fn pump(&mut self, loc: Location) {
        self.start_accesses(loc, self.now);
        let i = loc.index();
        if self.busy_until[i] <= self.now && self.execs[i].run(self.now, 1) == 1 {
            let cost = self.step_cost(loc);
            self.busy_until[i] = self.now.plus_ns(cost);
            self.busy_ns[i] += cost;
            self.schedule(self.busy_until[i], Event::Wake(loc));
        }
        let depart = self.busy_until[i].max(self.now);
        self.start_accesses(loc, depart);
        self.drain_completions(loc, depart);
    }

    fn start_accesses(&mut self, loc: Location, from: Nanos) {
        while let Some(a) = self.execs[loc.index()].poll_access() {
            let (delay, tenant) = match loc {
                Location::Host => (0, a.tenant),
                Location::Nic => (self.costs.dma_ns, a.tenant),
                Location::Client => (2 * self.costs.net_ns, TENANT),
            };
            let served = self.rnic_read(tenant, &a);
            self.schedule(from.plus_ns(delay), Event::AccessDone(loc, a, served));
        }
    }

    /// What the data path returns: the region check, then the bytes (as the RNIC and DMA do).
    fn rnic_read(&self, tenant: TenantId, a: &AccessRequest) -> Result<Vec<u8>, u32> {
        let request = ReadRequest {
            tenant,
            read_id: 0,
            rkey: a.descriptor.rkey,
            offset: a.descriptor.offset,
            len: a.descriptor.len,
        };
        let d = Descriptor::read(request.rkey, request.offset, request.len);
        serve(&self.memory, &self.regions, tenant, &d).map_err(|denial| denial.code())
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

    fn drain_completions(&mut self, loc: Location, depart: Nanos) {
        let mut frame = Vec::new();
        while let Some(_c) = self.execs[loc.index()].poll_completion(&mut frame) {
            let delay = if loc == Location::Client {
                0
            } else {
                self.costs.net_ns
            };
            self.schedule(
                depart.plus_ns(delay),
                Event::ReplyAtClient(std::mem::take(&mut frame)),
            );
        }
    }

    fn sample(&mut self) {
        for loc in [Location::Host, Location::Nic] {
            let busy = std::mem::take(&mut self.busy_ns[loc.index()]);
            let sample = self.execs[loc.index()].take_sample(self.now, busy);
            let change = self.controller.as_mut().and_then(|c| c.on_sample(sample));
            if let Some(change) = change {
                self.rules.set(change.key, change.after).expect("rule");
                for exec in &mut self.execs {
                    exec.set_client_permille(change.after.of(Location::Client));
                    exec.set_pushback_credit(change.pushback_credit_insn);
                }
            }
        }
        self.schedule(self.now.plus_ns(self.sample_period_ns), Event::Sample);
    }

    /// The decoded hash-lookup answer of request `id` (found, value).
    pub fn answer(&self, id: u64) -> Option<(bool, u64)> {
        let (status, _, payload, _) = self.replies.get(&id)?;
        assert_eq!(*status, Status::Ok, "request {id}");
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
