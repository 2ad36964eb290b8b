//! MICA GET per operation, host-native Rust against the eBPF function `mica_get` in naam-vm's
//! interpreter and (rows ending in `_jit`, same bytecode, same run) its Cranelift JIT:
//!
//! - `native_hit`, `native_miss`: `MicaTable::get_into`;
//! - `engine_local_host_hit`, `engine_local_host_miss`: a whole message through naam-engine in
//!   `LocalHost::call_into` (submit, accesses lent in place from the regions, every step in the
//!   VM, the bare reply payload swapped into one reply buffer reused), each request built as
//!   the roles' MICA client builds it (the key hashed once, one descriptor list reused);
//! - `engine_local_host_batch8_hit`: 8 GETs of hit keys (chosen as the single rows choose
//!   them) in flight together through `LocalHost::call_batch_into` (all submitted, then run
//!   from one FIFO of ready steps, each access prefetched at hand-out), criterion's throughput
//!   per GET (`Throughput::Elements(8)`; per GET = 1e3 / Melem/s ns): the counterpart of the
//!   native row's loop of independent GETs, whose misses the CPU overlaps. 8 because 4 gave
//!   ~10 % fewer GETs per second and 16 none more;
//! - `engine_mica_vm_hit`: the same through `MicaVm::get` (what `--via vm` runs);
//! - `vm_step0_probe`, `vm_step1_fetch_hit`: one `naam_vm::Vm::run` of each step of a hit, on
//!   memory prepared as the engine prepares it (context, arguments, state, fetched bytes).
//!
//! Run: `cargo bench -p naam-mica --features jit --bench mica_get` (without the feature the
//! `_jit` rows are skipped, said on stderr).
//!
//! Table: 2^17 buckets of 15 slots, 64 MiB log, 100 000 keys, items read at their exact size;
//! its regions on huge pages (`back_with_huge_pages`), the bench's and the `LocalHost`'s alike.
//! Datasets as MICA's paper: 8 B keys / 8 B values and 16 B keys / 64 B values.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use naam_engine::abi::ctx;
use naam_engine::helpers::{StepCtx, naam_helpers};
use naam_engine::local::{LocalHost, back_with_huge_pages};
use naam_engine::wire::Descriptors;
use naam_engine::{
    Code, Descriptor, FunctionId, Invoke, Perms, RequestId, Rkey, RkeySecret, TenantId,
};
use naam_mica::get::{GET_FUNCTION_SECTION, GET_OBJECT};
use naam_mica::layout::item_bytes;
use naam_mica::{
    GetArgs, GetReply, MicaConfig, MicaRegions, MicaRegionsMut, MicaRkeys, MicaTable, MicaVm, Slots,
};
use naam_vm::{Backend, Memory, Program, Tier, Vm, VmConfig};

const KEYS: u64 = 100_000;
const TENANT: TenantId = TenantId(1);
const GET: FunctionId = FunctionId(1);

fn key(i: u64, key_bytes: usize) -> Vec<u8> {
    let mut k = i.to_le_bytes().repeat(key_bytes.div_ceil(8));
    k.truncate(key_bytes);
    k
}

/// The loaded regions of one dataset.
struct Loaded {
    config: MicaConfig,
    index: Vec<u8>,
    log: Vec<u8>,
    meta: Vec<u8>,
    hits: Vec<Vec<u8>>,
    misses: Vec<Vec<u8>>,
}

impl Loaded {
    fn new(key_bytes: usize, value_bytes: usize) -> Loaded {
        let config = MicaConfig {
            buckets: 1 << 17,
            slots: Slots::Fifteen,
            log_bytes: 1 << 26,
            item_bytes_max: item_bytes(key_bytes, value_bytes) as u32,
            ..MicaConfig::new()
        };
        let sizes = config.validate().expect("valid");
        let (mut index, mut log, mut meta) = (
            vec![0; sizes.index_bytes],
            vec![0; sizes.log_bytes],
            vec![0; sizes.meta_bytes],
        );
        let regions = MicaRegionsMut {
            index: &mut index,
            log: &mut log,
            meta: &mut meta,
        };
        let mut table = MicaTable::format(config, regions).expect("format");
        let value = vec![0xab; value_bytes];
        let hits: Vec<Vec<u8>> = (0..KEYS).map(|i| key(i, key_bytes)).collect();
        for k in &hits {
            table.set(k, &value).expect("set");
        }
        let misses = (KEYS..2 * KEYS).map(|i| key(i, key_bytes)).collect();
        // On huge pages, as MICA's table and the `LocalHost` copies the engine rows read
        // (`LocalHost::add_region`): every row pays the same page walks.
        for region in [&mut index, &mut log, &mut meta] {
            back_with_huge_pages(region);
        }
        Loaded {
            config,
            index,
            log,
            meta,
            hits,
            misses,
        }
    }

    fn regions(&self) -> MicaRegions<'_> {
        MicaRegions {
            index: &self.index,
            log: &self.log,
            meta: &self.meta,
        }
    }
}

fn quick<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

fn bench_native(c: &mut Criterion, name: &str, loaded: &Loaded) {
    let table = naam_mica::MicaReader::open(loaded.regions()).expect("open");
    let mut out = Vec::new();
    let mut group = quick(c, name);
    let mut i = 0usize;
    group.bench_function("native_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % loaded.hits.len();
            black_box(table.get_into(black_box(&loaded.hits[i]), &mut out))
        })
    });
    group.bench_function("native_miss", |b| {
        b.iter(|| {
            i = (i + 7919) % loaded.misses.len();
            black_box(table.get_into(black_box(&loaded.misses[i]), &mut out))
        })
    });
    group.finish();
}

/// The suffix of a backend's rows, or `None` (said on stderr) when `backend` did not load as
/// asked (the JIT not built).
fn row_suffix(name: &str, backend: Backend, tier: Option<Tier>) -> Option<&'static str> {
    match (backend, tier) {
        (Backend::Interpreter, _) => Some(""),
        (Backend::Jit, Some(Tier::Jit)) => Some("_jit"),
        (Backend::Jit, _) => {
            eprintln!("{name}: JIT rows skipped (build with `--features jit`)");
            None
        }
    }
}

fn bench_local_host(c: &mut Criterion, name: &str, loaded: &Loaded, backend: Backend) {
    let mut host = LocalHost::new(RkeySecret([3; 16]));
    host.set_backend(backend);
    let mut add = |bytes: &Vec<u8>| {
        host.add_region(TENANT, bytes.clone(), Perms::READ)
            .expect("region")
            .rkey
            .0
    };
    let rkeys = MicaRkeys {
        index: add(&loaded.index),
        log: add(&loaded.log),
        meta: add(&loaded.meta),
    };
    let code = Code::Elf {
        object: GET_OBJECT,
        name: GET_FUNCTION_SECTION,
    };
    host.register(TENANT, GET, "mica_get", code)
        .expect("register");
    let Some(suffix) = row_suffix(name, backend, host.tier(TENANT, GET)) else {
        return;
    };
    let mut args = Vec::new();
    // One reply reused across calls (`call_into`): the engine path allocates nothing per GET.
    let mut reply = naam_engine::local::CallReply::empty();
    // As the roles' MICA client builds a GET (naam-roles, `workload/mica.rs`): the key hashed
    // once for the argument block and the initial access (`encode_with_access`), the block
    // written into one buffer kept across calls. The reply is decoded as that client decodes
    // it (`GetReply::decode`); the row returns the value's length.
    let mut call = |key: &[u8], id: u64| {
        let first = GetArgs::new(loaded.config, rkeys, key)
            .encode_with_access(&mut args)
            .expect("args");
        let mut invoke = Invoke::new_message(TENANT, GET, RequestId(id), &args, Descriptors::new());
        // The descriptor written where the message holds it, not into a list copied there.
        invoke
            .descriptors
            .push(Descriptor::read(Rkey(first.rkey), first.offset, first.len))
            .expect("one");
        host.call_into(&invoke, &mut reply).expect("call");
        match GetReply::decode(&reply.payload).expect("a mica_get reply") {
            GetReply::Hit(value) => Some(value.len()),
            GetReply::Miss => None,
        }
    };
    assert!(call(&loaded.hits[0], 0).is_some(), "a hit");
    let mut group = quick(c, name);
    let mut i = 0usize;
    group.bench_function(format!("engine_local_host_hit{suffix}"), |b| {
        b.iter(|| {
            i = (i + 7919) % loaded.hits.len();
            black_box(call(black_box(&loaded.hits[i]), i as u64))
        })
    });
    group.bench_function(format!("engine_local_host_miss{suffix}"), |b| {
        b.iter(|| {
            i = (i + 7919) % loaded.misses.len();
            black_box(call(black_box(&loaded.misses[i]), i as u64))
        })
    });
    let mut batch = Batch::new(loaded, rkeys);
    assert_eq!(
        batch.get(&mut host, [&loaded.hits[0]; BATCH], 0),
        BATCH,
        "hits"
    );
    // Per GET: criterion prints the batch's GETs per second.
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(format!("engine_local_host_batch{BATCH}_hit{suffix}"), |b| {
        b.iter(|| {
            let keys = std::array::from_fn(|_| {
                i = (i + 7919) % loaded.hits.len();
                black_box(&loaded.hits[i][..])
            });
            black_box(batch.get(&mut host, keys, i as u64))
        })
    });
    group.finish();
}

/// GETs one batch row keeps in flight ([`LocalHost::call_batch_into`]): 8 measured faster per
/// GET than 4 and as fast as 16 (see the header).
const BATCH: usize = 8;

/// A batch of GETs built as the single rows build one (`encode_with_access`), each into its
/// own argument buffer and reply, all kept across iterations.
struct Batch {
    config: MicaConfig,
    rkeys: MicaRkeys,
    args: [Vec<u8>; BATCH],
    replies: [naam_engine::local::CallReply; BATCH],
}

impl Batch {
    fn new(loaded: &Loaded, rkeys: MicaRkeys) -> Batch {
        Batch {
            config: loaded.config,
            rkeys,
            args: std::array::from_fn(|_| Vec::new()),
            replies: std::array::from_fn(|_| naam_engine::local::CallReply::empty()),
        }
    }

    /// GETs `keys` in one batch; returns how many hit.
    fn get(&mut self, host: &mut LocalHost, keys: [&[u8]; BATCH], first_id: u64) -> usize {
        let firsts = std::array::from_fn::<_, BATCH, _>(|j| {
            GetArgs::new(self.config, self.rkeys, keys[j])
                .encode_with_access(&mut self.args[j])
                .expect("args")
        });
        let invokes: [Invoke<'_>; BATCH] = std::array::from_fn(|j| {
            let id = RequestId(first_id + j as u64);
            let mut invoke =
                Invoke::new_message(TENANT, GET, id, &self.args[j], Descriptors::new());
            let first = firsts[j];
            invoke
                .descriptors
                .push(Descriptor::read(Rkey(first.rkey), first.offset, first.len))
                .expect("one");
            invoke
        });
        host.call_batch_into(&invokes, &mut self.replies)
            .expect("batch");
        let hit = |reply: &naam_engine::local::CallReply| {
            matches!(GetReply::decode(&reply.payload), Ok(GetReply::Hit(_)))
        };
        self.replies.iter().filter(|r| hit(r)).count()
    }
}

fn bench_mica_vm(c: &mut Criterion, name: &str, loaded: &Loaded, backend: Backend) {
    let mut vm = MicaVm::with_backend(loaded.config, backend).expect("engine");
    let Some(suffix) = row_suffix(name, backend, vm.tier()) else {
        return;
    };
    let mut regions = loaded.regions();
    let mut out = Vec::new();
    // Instructions are load-independent: print them beside the times.
    for (what, key) in [("hit", &loaded.hits[0]), ("miss", &loaded.misses[0])] {
        let run = vm.get(&mut regions, key, &mut out).expect("get");
        eprintln!(
            "{name}: mica_get {what} ({backend}): {} steps, {} eBPF instructions",
            run.steps, run.insn
        );
    }
    let mut group = quick(c, name);
    let mut i = 0usize;
    group.bench_function(format!("engine_mica_vm_hit{suffix}"), |b| {
        b.iter(|| {
            i = (i + 7919) % loaded.hits.len();
            black_box(vm.get(&mut regions, black_box(&loaded.hits[i]), &mut out))
        })
    });
    group.finish();
}

/// Writes a `struct naam_ctx` for one step over already-mapped buffers.
fn naam_ctx(
    args: (u64, usize),
    state: u64,
    state_len: usize,
    step: u32,
    data: &[(u64, usize)],
) -> [u8; ctx::BYTES] {
    let mut bytes = [0u8; ctx::BYTES];
    let mut put = |at: usize, value: &[u8]| bytes[at..at + value.len()].copy_from_slice(value);
    put(ctx::ARGS, &args.0.to_le_bytes());
    put(ctx::ARGS_LEN, &(args.1 as u32).to_le_bytes());
    put(ctx::STEP, &step.to_le_bytes());
    put(ctx::STATE, &state.to_le_bytes());
    put(ctx::STATE_LEN, &(state_len as u32).to_le_bytes());
    put(ctx::N_DATA, &(data.len() as u32).to_le_bytes());
    for (i, (addr, len)) in data.iter().enumerate() {
        let at = ctx::DATA + i * ctx::DATA_ENTRY_BYTES;
        put(at, &addr.to_le_bytes());
        put(at + 8, &(*len as u32).to_le_bytes());
    }
    bytes
}

/// The VM, the verified program and the helpers' context: one step at a time.
struct StepRunner {
    vm: Vm,
    program: Program,
    helpers: naam_vm::Helpers<StepCtx>,
    step_ctx: StepCtx,
}

/// One step's inputs: the argument block, the carried state and the fetched bytes.
struct StepInput<'a> {
    args: &'a [u8],
    state_len: usize,
    step: u32,
    data: &'a [&'a [u8]],
}

impl StepRunner {
    fn new(backend: Backend) -> StepRunner {
        let helpers = naam_helpers();
        let program = Program::from_elf_with(GET_OBJECT, GET_FUNCTION_SECTION, &helpers, backend)
            .expect("load");
        StepRunner {
            vm: Vm::new(VmConfig::default()),
            program,
            helpers,
            step_ctx: StepCtx::default(),
        }
    }

    /// Maps the buffers as the engine does, runs the step, returns r0.
    fn run(&mut self, input: &StepInput<'_>, state: &mut [u8]) -> u64 {
        let mut mem = Memory::new();
        let args_addr = mem.map_read(input.args).expect("map");
        let state_addr = mem.map_write(state).expect("map");
        let mut data = [(0u64, 0usize); naam_engine::abi::ACCESSES_PER_STEP_MAX];
        for (slot, d) in data.iter_mut().zip(input.data) {
            *slot = (mem.map_read(d).expect("map"), d.len());
        }
        let data = &data[..input.data.len()];
        let args = (args_addr, input.args.len());
        let context = naam_ctx(args, state_addr, input.state_len, input.step, data);
        let ctx_addr = mem.map_read(&context).expect("map");
        self.step_ctx.reset();
        let exit = self
            .vm
            .run(
                &self.program,
                &mut mem,
                &self.helpers,
                &mut self.step_ctx,
                ctx_addr,
                ctx::BYTES as u64,
            )
            .expect("step runs");
        exit.r0
    }
}

fn bench_vm_steps(c: &mut Criterion, name: &str, loaded: &Loaded, backend: Backend) {
    let mut runner = StepRunner::new(backend);
    let Some(suffix) = row_suffix(name, backend, Some(runner.program.tier())) else {
        return;
    };
    let rkeys = MicaRkeys {
        index: 1,
        log: 2,
        meta: 3,
    };
    let key = &loaded.hits[4242];
    let get = GetArgs::new(loaded.config, rkeys, key);
    let mut args = Vec::new();
    get.encode(&mut args).expect("args");
    let first = get.initial_access();
    let bucket = [&loaded.index[first.offset as usize..][..first.len as usize]];
    let probe = StepInput {
        args: &args,
        state_len: 0,
        step: 0,
        data: &bucket,
    };
    let mut state = vec![0u8; naam_engine::abi::STATE_BYTES_MAX];
    assert_eq!(
        runner.run(&probe, &mut state),
        naam_engine::abi::RET_NEXT,
        "step 0 finds the tag"
    );
    let region = |rkey: u64| match rkey {
        1 => &loaded.index,
        2 => &loaded.log,
        _ => &loaded.meta,
    };
    let fetched: Vec<&[u8]> = runner
        .step_ctx
        .reads
        .as_slice()
        .iter()
        .map(|d| &region(d.rkey.0)[d.offset as usize..][..d.len as usize])
        .collect();
    let fetch = StepInput {
        args: &args,
        state_len: runner.step_ctx.saved_state_len,
        step: 1,
        data: &fetched,
    };
    let mut state1 = state.clone();
    let r0 = runner.run(&fetch, &mut state1);
    let status = runner.step_ctx.reply_bytes().first().copied();
    assert_eq!(
        (r0, status),
        (naam_engine::abi::RET_DONE, Some(1)),
        "step 1 hits"
    );
    let mut group = quick(c, name);
    group.bench_function(format!("vm_step0_probe{suffix}"), |b| {
        b.iter(|| runner.run(&probe, &mut state))
    });
    group.bench_function(format!("vm_step1_fetch_hit{suffix}"), |b| {
        b.iter(|| runner.run(&fetch, &mut state1))
    });
    group.finish();
}

fn bench_dataset(c: &mut Criterion, key_bytes: usize, value_bytes: usize) {
    let loaded = Loaded::new(key_bytes, value_bytes);
    let name = format!("mica_get/{key_bytes}B_key_{value_bytes}B_value");
    bench_native(c, &name, &loaded);
    for backend in Backend::ALL {
        bench_local_host(c, &name, &loaded, backend);
        bench_mica_vm(c, &name, &loaded, backend);
        bench_vm_steps(c, &name, &loaded, backend);
    }
}

fn benches(c: &mut Criterion) {
    bench_dataset(c, 8, 8);
    bench_dataset(c, 16, 64);
}

criterion_group!(mica, benches);
criterion_main!(mica);
