//! Shared test support: request frames, a world of echo actors on a virtual clock with a
//! per-actor execution-time script, and compact renderings of what happened.

#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::rc::Rc;

use naam_engine::wire::{Descriptors, Frame, Invoke, Status};
use naam_engine::{FunctionId, Nanos, RequestId, TenantId};
use naam_ipipe::drive::{Logged, VirtualPair};
use naam_ipipe::{
    ActorId, ActorSpec, App, CostModel, IpipeConfig, Op, Runtime, Side, Task, TaskKind,
};

/// The echo actors' function.
pub const ECHO: FunctionId = FunctionId(7);
/// Request ids encode the actor: `actor * ID_STRIDE + sequence`.
pub const ID_STRIDE: u64 = 1_000_000_000;

/// An Invoke frame for `tenant`'s `function` with `args`.
pub fn frame(tenant: u32, function: FunctionId, request_id: u64, args: &[u8]) -> Vec<u8> {
    let invoke = Invoke::new_message(
        TenantId(tenant),
        function,
        RequestId(request_id),
        args,
        Descriptors::new(),
    );
    let mut out = Vec::new();
    invoke.encode(&mut out).expect("a small invoke encodes");
    out
}

/// A reply frame's (request id, status, location-side, payload).
pub fn reply(frame: &[u8]) -> (u64, Status, Vec<u8>) {
    match Frame::decode(frame) {
        Ok(Frame::Reply(r)) => (r.request_id.0, r.status, r.payload.to_vec()),
        other => panic!("not a reply: {other:?}"),
    }
}

/// How long each item of an actor executes, by its index among that actor's items.
pub type Script = fn(u64) -> u64;

/// Execution times per actor, counted per actor as items run.
#[derive(Default)]
pub struct Scripts {
    pub per_actor: BTreeMap<u32, Script>,
    pub ran: BTreeMap<u32, u64>,
    /// Core time per actor (execution only).
    pub exec_ns: BTreeMap<u32, u64>,
}

/// Echo actors, one per tenant (tenant i+1 ↔ actor i), on a NIC and a host.
pub struct World {
    pub pair: VirtualPair,
    pub scripts: Rc<RefCell<Scripts>>,
    pub actors: Vec<ActorId>,
    pub sent: u64,
}

/// The echo actor spec of tenant `tenant`, with an optional quantum.
pub fn echo_spec(tenant: u32, quantum_ns: Option<u64>) -> ActorSpec {
    ActorSpec {
        tenant: TenantId(tenant),
        functions: vec![(ECHO, Op::Echo)],
        quantum_ns,
    }
}

impl World {
    /// A world whose actors follow `scripts` (actor index → script), each with an object of
    /// `object_bytes[i]` bytes (0: none).
    pub fn new(
        nic: IpipeConfig,
        host: IpipeConfig,
        actors: &[(Script, Option<u64>, u64)],
    ) -> World {
        let mut nic_rt = Runtime::new(nic).expect("valid NIC config");
        let host_rt = Runtime::new(host).expect("valid host config");
        let scripts = Rc::new(RefCell::new(Scripts::default()));
        let mut ids = Vec::new();
        for (i, &(script, quantum, bytes)) in actors.iter().enumerate() {
            let id = nic_rt
                .add_actor(echo_spec(i as u32 + 1, quantum))
                .expect("add actor");
            if bytes > 0 {
                nic_rt.dmo_malloc(id, bytes).expect("object fits");
            }
            nic_rt.set_app(id, App::Echo).expect("set app");
            scripts.borrow_mut().per_actor.insert(id.0, script);
            ids.push(id);
        }
        let model = Rc::clone(&scripts);
        let exec = Box::new(move |_side: Side, task: &Task| -> u64 {
            let mut s = model.borrow_mut();
            let n = *s.ran.get(&task.actor.0).unwrap_or(&0);
            let script = s.per_actor.get(&task.actor.0).copied().unwrap_or(|_| 1_000);
            let ns = script(n);
            s.ran.insert(task.actor.0, n + 1);
            *s.exec_ns.entry(task.actor.0).or_default() += ns;
            debug_assert!(matches!(task.kind, TaskKind::Run { .. }));
            ns
        });
        World {
            pair: VirtualPair::new(nic_rt, host_rt, CostModel::default(), exec),
            scripts,
            actors: ids,
            sent: 0,
        }
    }

    /// One request to actor index `a` at `at_ns`.
    pub fn send(&mut self, at_ns: u64, a: usize) {
        self.sent += 1;
        let id = a as u64 * ID_STRIDE + self.sent;
        let f = frame(a as u32 + 1, ECHO, id, &id.to_le_bytes());
        self.pair.arrive(Nanos(at_ns), self.sent, f);
    }

    /// Requests round robin over the actors listed in `to`, one every `gap_ns`, from `from_ns`
    /// for `count` requests.
    pub fn stream(&mut self, from_ns: u64, gap_ns: u64, count: u64, to: &[usize]) {
        for k in 0..count {
            self.send(from_ns + k * gap_ns, to[k as usize % to.len()]);
        }
    }

    /// Runs until `until_ns` (bounded).
    pub fn run(&mut self, until_ns: u64) {
        self.pair.run_until(Nanos(until_ns), 50_000_000);
    }

    /// Replies per actor index and side, counted in `[from_ns, to_ns)`.
    pub fn served(&self, from_ns: u64, to_ns: u64) -> BTreeMap<(usize, &'static str), u64> {
        let mut out = BTreeMap::new();
        for r in &self.pair.replies {
            if r.at.0 < from_ns || r.at.0 >= to_ns {
                continue;
            }
            let (id, _, _) = reply(&r.frame);
            let side = if r.side == Side::Nic { "nic" } else { "host" };
            *out.entry(((id / ID_STRIDE) as usize, side)).or_default() += 1;
        }
        out
    }

    /// The scheduler log, one line per event, times in µs.
    pub fn render_log(&self) -> String {
        let mut out = String::new();
        for (at, logged) in &self.pair.log {
            let t = at.0 / 1000;
            let line = match *logged {
                Logged::Downgraded(a) => format!("{t:>8}us downgraded a{}", a.0),
                Logged::Upgraded(a) => format!("{t:>8}us upgraded a{}", a.0),
                Logged::MigrationStarted(a, d, mean) => {
                    format!("{t:>8}us migrate a{} {d:?} (mean {} us)", a.0, mean / 1000)
                }
                Logged::MigrationDone(a, d, started, objects, bytes, requests) => format!(
                    "{t:>8}us landed a{} {d:?} after {} us: {objects} objects, {bytes} B, {requests} buffered",
                    a.0,
                    (at.0 - started.0) / 1000
                ),
            };
            let _ = writeln!(out, "{line}");
        }
        out
    }

    /// Every request got exactly one reply.
    pub fn assert_every_request_answered(&self) {
        let mut seen = std::collections::HashSet::new();
        for r in &self.pair.replies {
            let (id, status, _) = reply(&r.frame);
            assert_eq!(status, Status::Ok, "request {id} failed");
            assert!(seen.insert(id), "request {id} answered twice");
        }
        assert_eq!(seen.len() as u64, self.sent, "every request answered once");
        assert!(self.pair.failures.is_empty(), "{:?}", self.pair.failures);
    }
}

/// A seed for randomised tests: `NAAM_SEED` or a fixed default, printed so a failure replays.
pub fn seed() -> u64 {
    let seed = std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1f1e_2025);
    eprintln!("NAAM_SEED={seed}");
    seed
}

/// SplitMix64.
pub struct Mix(pub u64);

impl Mix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64() >> 11) * u128::from(n)) >> 53) as u64
    }
}
