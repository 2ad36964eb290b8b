//! The client role's session on a virtual clock: the real load generator, MICA workload and
//! verification ([`ClientSession`]), the engine's client endpoint, a host [`ServerWorker`] over
//! MICA's regions with the host role's own data path and native writers, and the engine's RNIC
//! read server — joined by an instantaneous network whose replies a fault injector may rewrite.
//! No socket, no thread, no clock: the same code the client and host roles drive.
//!
//! What it checks: the client summary's counts (`errors`, `verify_failures`, `misses`) cover the
//! measured phase only (`experiments/SCHEMA.md`), and they do count every fault the measured
//! phase sees. Seeded: `NAAM_SEED` replays a failure.

use std::collections::BTreeMap;
use std::sync::Arc;

use naam_engine::client::{Destination, EndpointConfig};
use naam_engine::function::{FunctionBody, FunctionTable};
use naam_engine::rnic::answer_read;
use naam_engine::server::WorkerConfig;
use naam_engine::wire::{ErrorCode, ErrorKind, Reply};
use naam_engine::{
    ClientEndpoint, Frame, Location, Nanos, RegionTable, RkeySecret, ServerWorker, Status,
    WorkerSettings,
};
use naam_engine::{Code, FunctionId};
use naam_loadgen::{LoadConfig, LoadGenerator, LoadMode, TagSet, Thresholds};
use naam_roles::config::{
    Dataset, Distribution, MicaSpec, TenantPrograms, VmBackend, WorkloadSpec, YcsbWorkload,
};
use naam_roles::host::memory::{self, HostMemory};
use naam_roles::serve::{AccessPath, DirectPath, Natives};
use naam_roles::session::{ClientSession, SessionReport, SessionTimes};
use naam_roles::workload::mica::MICA_GET;
use naam_roles::workload::{self, FunctionCode, ServerWorkload};

const WARMUP_NS: u64 = 50_000_000;
const MEASURE_NS: u64 = 100_000_000;
/// Virtual time per round of the driver.
const TICK_NS: u64 = 20_000;
/// Rounds a run may take at most (its phases plus the drain grace, with room).
const ROUNDS_MAX: u64 = (WARMUP_NS + MEASURE_NS) / TICK_NS + 100_000;
/// Passes over the network in one round before it must be quiet.
const PASSES_MAX: usize = 1_000;
const TIMEOUT_NS: u64 = 5_000_000;
/// Warm-up requests are dropped only this early, so that they time out within the warm-up.
const DROP_BEFORE_NS: u64 = 20_000_000;

fn seed() -> u64 {
    let seed = std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5e55_1011);
    eprintln!("NAAM_SEED={seed}");
    seed
}

/// Which GET program each tenant's function slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Programs {
    /// One tenant, the shared GET.
    Shared,
    /// [`TENANTS_DISTINCT`] tenants, each its own program.
    Distinct,
    /// As `Distinct`, but tenant t's slot holds tenant t+1's program (a wrong registration).
    Crossed,
}

/// Tenants of the per-tenant-program points.
const TENANTS_DISTINCT: u32 = 4;

impl Programs {
    fn tenants(self) -> u32 {
        match self {
            Programs::Shared => 1,
            Programs::Distinct | Programs::Crossed => TENANTS_DISTINCT,
        }
    }
}

fn dataset(seed: u64, programs: Programs) -> Dataset {
    Dataset {
        workload: WorkloadSpec::Mica(MicaSpec {
            records: 2000,
            key_bytes: 8,
            value_bytes: 16,
            ycsb_workload: YcsbWorkload::B,
            distribution: Distribution::ScrambledZipfian,
            buckets: 1024,
            slots: 7,
            log_bytes: 1 << 20,
            tenant_programs: match programs {
                Programs::Shared => TenantPrograms::Shared,
                Programs::Distinct | Programs::Crossed => TenantPrograms::Distinct,
            },
        }),
        tenants: programs.tenants(),
        seed,
    }
}

/// When the injector rewrites replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Faults {
    None,
    /// Only replies delivered before the measured phase.
    Warmup,
    /// Only replies delivered in the measured phase.
    Measured,
}

/// What the injector did, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Injected {
    errors: u64,
    corrupted: u64,
    misses: u64,
    dropped: u64,
}

struct Point {
    session: ClientSession,
    worker: ServerWorker,
    path: DirectPath,
    natives: Natives,
    table: Arc<RegionTable>,
    memory: Arc<HostMemory>,
    faults: Faults,
    injected: Injected,
    replies_seen: u64,
    _dir: tempfile::TempDir,
}

impl Point {
    fn new(seed: u64, faults: Faults) -> Point {
        Point::with_programs(seed, faults, Programs::Shared)
    }

    fn with_programs(seed: u64, faults: Faults, programs: Programs) -> Point {
        let dir = tempfile::tempdir().unwrap();
        let ds = dataset(seed, programs);
        let tenants = programs.tenants();
        let server: Arc<dyn ServerWorkload> = Arc::from(workload::server(&ds).unwrap());
        let (table, memory, meta) =
            memory::build(&*server, tenants, dir.path(), "sw", RkeySecret([7; 16])).unwrap();
        let (table, memory) = (Arc::new(table), Arc::new(memory));
        let functions = Arc::new(match programs {
            Programs::Crossed => crossed_functions(&*server, tenants),
            _ => naam_roles::host::functions(&*server, tenants, VmBackend::Interpreter).unwrap(),
        });
        let mut worker = ServerWorker::new(
            WorkerConfig::new(Location::Host, 1_000_000),
            Arc::clone(&functions),
            Arc::clone(&table),
            Nanos(0),
        )
        .unwrap();
        // 30 % of GETs pushed back to the client: local runs and one-sided reads count too.
        worker.apply(WorkerSettings {
            client_permille: 300,
            pushback_credit_insn: None,
        });
        let client_table = RegionTable::from_catalog(&table.iter().copied().collect::<Vec<_>>());
        let endpoint = ClientEndpoint::new(
            EndpointConfig::new(0, TIMEOUT_NS),
            functions,
            Arc::new(client_table.unwrap()),
            None,
            Nanos(0),
        )
        .unwrap();
        let load = LoadConfig {
            mode: LoadMode::Poisson {
                rate_per_s: 20_000.0,
                seed: seed ^ 0x5c4e_d01e,
            },
            warmup_ns: WARMUP_NS,
            measure_ns: MEASURE_NS,
            requests_max: 1 << 20,
            inflight_max: 4096,
            interval_ns: 10_000_000,
            thresholds: Thresholds::default(),
            rate_steps: Vec::new(),
            sum_totals: true,
        };
        let generator = LoadGenerator::new(load, TagSet::locations()).unwrap();
        let client = workload::client(&ds, &meta, 0, seed, true).unwrap();
        let times = SessionTimes {
            warmup_ns: WARMUP_NS,
            end_ns: WARMUP_NS + MEASURE_NS,
            drain_grace_ns: 500_000_000,
        };
        Point {
            session: ClientSession::new(generator, client, endpoint, times).unwrap(),
            worker,
            path: DirectPath::new(Arc::clone(&memory)),
            natives: Natives::new(server, Arc::clone(&memory)),
            table,
            memory,
            faults,
            injected: Injected::default(),
            replies_seen: 0,
            _dir: dir,
        }
    }

    /// Runs the point to its end; the session's report.
    fn run(mut self) -> (SessionReport, Injected) {
        for round in 0..ROUNDS_MAX {
            let now = round * TICK_NS;
            self.session.handle_timeout(now);
            self.session.poll_send(now).unwrap();
            self.settle(now);
            while self.session.poll_interval(now).unwrap().is_some() {}
            if self.session.is_finished(now) {
                let report = self.session.finish(now).unwrap();
                return (report, self.injected);
            }
        }
        panic!("the point did not end in {ROUNDS_MAX} rounds");
    }

    /// Moves frames until nothing moves (bounded).
    fn settle(&mut self, now: u64) {
        for _ in 0..PASSES_MAX {
            let mut moved = self.client_to_server(now);
            moved |= self.drive_worker(now);
            moved |= self.server_to_client(now);
            moved |= self.session.run_local(now, 64).steps > 0;
            if !moved {
                return;
            }
        }
        panic!("the network did not settle in {PASSES_MAX} passes at {now} ns");
    }

    fn client_to_server(&mut self, now: u64) -> bool {
        let mut frame = Vec::new();
        let mut moved = false;
        while let Some(t) = self.session.poll_transmit(&mut frame) {
            moved = true;
            match t.to {
                Destination::Ingress => {
                    self.worker
                        .handle_datagram(Nanos(now), Nanos(now), &frame, || 0);
                }
                Destination::Rnic => {
                    let reply = self.read(&frame);
                    self.session.handle_datagram(now, &reply);
                }
            }
        }
        moved
    }

    fn read(&self, frame: &[u8]) -> Vec<u8> {
        let Ok(Frame::Read(read)) = Frame::decode(frame) else {
            panic!("a read frame")
        };
        let mut data = vec![0u8; naam_engine::abi::ACCESS_BYTES_MAX];
        let memory = &self.memory;
        let reply = answer_read(&read, &self.table, &mut data, |region, offset, out| {
            memory
                .region(region)
                .is_some_and(|r| r.read_into(offset, out))
        });
        let mut out = Vec::new();
        Frame::ReadReply(reply).encode(&mut out).unwrap();
        out
    }

    fn drive_worker(&mut self, now: u64) -> bool {
        let mut moved = false;
        while let Some(access) = self.worker.poll_access() {
            self.path.start(now, access, &mut self.worker);
            moved = true;
        }
        moved |= self.natives.run_pending(now, &mut self.worker);
        moved |= self.worker.run(Nanos(now), 64).steps > 0;
        moved
    }

    fn server_to_client(&mut self, now: u64) -> bool {
        let mut frame = Vec::new();
        let mut moved = false;
        while self.worker.poll_reply(&mut frame).is_some() {
            moved = true;
            if let Some(delivered) = self.inject(now, &frame) {
                self.session.handle_datagram(now, &delivered);
            }
        }
        moved
    }

    /// The fault injector: rewrites every fourth GET hit of its phase, in turn into an error, a
    /// corrupted value, a miss, or nothing (dropped; early warm-up only).
    fn inject(&mut self, now: u64, frame: &[u8]) -> Option<Vec<u8>> {
        let in_warmup = now < WARMUP_NS;
        let active = match self.faults {
            Faults::None => false,
            Faults::Warmup => in_warmup,
            Faults::Measured => !in_warmup,
        };
        let Ok(Frame::Reply(reply)) = Frame::decode(frame) else {
            panic!("a reply frame")
        };
        // GET hits only: a natural miss or a SET acknowledgement is never rewritten, so the
        // counts of a faulty run are those of a clean run plus exactly what was injected.
        if !active || reply.status != Status::Ok || reply.payload.len() <= 1 {
            return Some(frame.to_vec());
        }
        self.replies_seen += 1;
        if !self.replies_seen.is_multiple_of(4) {
            return Some(frame.to_vec());
        }
        let mut payload = reply.payload.to_vec();
        let mut status = Status::Ok;
        match (self.replies_seen / 4) % 4 {
            0 => {
                status = Status::Error(ErrorCode {
                    kind: ErrorKind::FunctionError,
                    detail: 77,
                });
                payload.clear();
                self.injected.errors += 1;
            }
            1 => {
                *payload.last_mut()? ^= 0x5a;
                self.injected.corrupted += 1;
            }
            2 => {
                payload = vec![naam_mica::get::REPLY_MISS];
                self.injected.misses += 1;
            }
            3 if in_warmup && now < DROP_BEFORE_NS => {
                self.injected.dropped += 1;
                return None;
            }
            _ => return Some(frame.to_vec()),
        }
        let mut out = Vec::new();
        Frame::Reply(Reply {
            status,
            payload: &payload,
            ..reply
        })
        .encode(&mut out)
        .unwrap();
        Some(out)
    }
}

/// Tenant t's functions registered with tenant (t+1)'s code.
fn crossed_functions(server: &dyn ServerWorkload, tenants: u32) -> FunctionTable {
    let mut table = FunctionTable::new();
    for t in 0..tenants {
        let specs = server.functions((t + 1) % tenants).unwrap();
        for f in specs {
            let tenant = workload::tenant_id(t);
            match &f.code {
                FunctionCode::Elf { object, section } => {
                    let code = Code::Elf {
                        object,
                        name: section,
                    };
                    table.register_ebpf(tenant, f.id, f.name, code).unwrap();
                }
                FunctionCode::HostNative => {
                    table.register_host_native(tenant, f.id, f.name).unwrap()
                }
            }
        }
    }
    table
}

fn counts(report: &SessionReport) -> (BTreeMap<String, u64>, u64, u64, u64, u64) {
    (
        report.errors.clone(),
        report.measured.verify_failures,
        report.measured.misses,
        report.run.rate.intended,
        report.run.rate.completed,
    )
}

#[test]
fn warm_up_faults_never_reach_the_measured_counts() {
    let seed = seed();
    let (clean, none) = Point::new(seed, Faults::None).run();
    assert_eq!(none, Injected::default());
    assert!(
        clean.errors.is_empty(),
        "a clean run has no errors: {:?}",
        clean.errors
    );
    assert_eq!(clean.measured.verify_failures, 0, "{:?}", clean.measured);
    assert!(clean.run.rate.completed > 1000, "{:?}", clean.run.rate);
    let (faulty, injected) = Point::new(seed, Faults::Warmup).run();
    assert!(
        injected.errors > 10 && injected.corrupted > 10 && injected.misses > 10,
        "the injector worked in warm-up: {injected:?}"
    );
    assert!(
        injected.dropped > 10,
        "some warm-up requests timed out: {injected:?}"
    );
    let warm = &faulty.warmup;
    assert_eq!(warm.errors.get("function-error"), Some(&injected.errors));
    assert_eq!(warm.errors.get("timeout"), Some(&injected.dropped));
    assert_eq!(warm.verify_failures, injected.corrupted);
    assert!(warm.misses >= injected.misses);
    assert_eq!(
        counts(&faulty),
        counts(&clean),
        "the measured phase's counts are those of a run without warm-up faults"
    );
}

#[test]
fn measured_phase_faults_are_all_counted() {
    let seed = seed();
    let (clean, _) = Point::new(seed, Faults::None).run();
    let (faulty, injected) = Point::new(seed, Faults::Measured).run();
    assert!(injected.errors > 10 && injected.corrupted > 10 && injected.misses > 10);
    assert_eq!(injected.dropped, 0);
    assert_eq!(
        faulty.errors.get("function-error"),
        Some(&injected.errors),
        "{:?}",
        faulty.errors
    );
    assert_eq!(faulty.measured.verify_failures, injected.corrupted);
    assert_eq!(
        faulty.measured.misses,
        clean.measured.misses + injected.misses
    );
    assert_eq!(faulty.warmup, clean.warmup, "warm-up untouched");
    let failed: u64 = faulty.errors.values().sum();
    assert!(
        failed + faulty.run.rate.completed <= faulty.run.rate.intended + 100,
        "errors and completions account for what was sent (± requests across the boundary): \
         sent {} completed {} errors {failed}",
        faulty.run.rate.intended,
        faulty.run.rate.completed
    );
}

/// The GET program of every tenant in `table`.
fn get_programs(table: &FunctionTable, tenants: u32) -> Vec<&naam_vm::Program> {
    (0..tenants)
        .map(
            |t| match &table.get(workload::tenant_id(t), MICA_GET).unwrap().body {
                FunctionBody::Ebpf(program) => program,
                FunctionBody::HostNative => panic!("GET is eBPF"),
            },
        )
        .collect()
}

#[test]
fn n_tenants_register_n_distinct_programs() {
    let seed = seed();
    for (programs, distinct) in [
        (TenantPrograms::Shared, false),
        (TenantPrograms::Distinct, true),
    ] {
        let mut ds = dataset(seed, Programs::Distinct);
        let WorkloadSpec::Mica(spec) = &mut ds.workload else {
            unreachable!()
        };
        spec.tenant_programs = programs;
        let server = workload::server(&ds).unwrap();
        let table =
            naam_roles::host::functions(&*server, ds.tenants, VmBackend::Interpreter).unwrap();
        assert_eq!(
            table.len(),
            2 * ds.tenants as usize,
            "GET and SET per tenant"
        );
        let gets = get_programs(&table, ds.tenants);
        for (i, p) in gets.iter().enumerate() {
            for (j, q) in gets.iter().enumerate().skip(i + 1) {
                assert_eq!(
                    !p.same_code(q),
                    distinct,
                    "{programs:?}: tenants {i} and {j} (GET id {:?})",
                    FunctionId(MICA_GET.0)
                );
            }
        }
    }
}

#[test]
fn distinct_programs_answer_every_tenant_verified() {
    let seed = seed();
    let (report, _) = Point::with_programs(seed, Faults::None, Programs::Distinct).run();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.measured.verify_failures, 0, "{:?}", report.measured);
    assert!(report.run.rate.completed > 1000, "{:?}", report.run.rate);
}

#[test]
fn an_answer_from_another_tenants_program_fails_verification() {
    let seed = seed();
    let (report, _) = Point::with_programs(seed, Faults::None, Programs::Crossed).run();
    let m = &report.measured;
    // Every GET answer (hit or miss, at the host or run locally at the client) came from the
    // wrong program; SETs are host-native and still verify.
    assert!(m.verify_failures > 1000, "{m:?}");
    assert_eq!(
        m.misses, 0,
        "a wrong program's miss is not taken for a miss: {m:?}"
    );
    let completed = report.run.rate.completed;
    assert!(
        m.verify_failures * 100 >= completed * 90,
        "YCSB-B is 95 % GETs, all answered by the wrong program: {} failed of {completed}",
        m.verify_failures
    );
    let first = m.first_verify_failure.as_deref().unwrap_or_default();
    assert!(first.contains("another tenant's program"), "{first}");
}
