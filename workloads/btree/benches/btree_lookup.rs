//! B-tree lookup per operation, host-native Rust against the eBPF function `btree_lookup` in
//! naam-vm's interpreter and (rows ending in `_jit`, same bytecode, same run) its Cranelift JIT:
//!
//! - `native_hit`, `native_miss`: `BTreeReader::get`;
//! - `engine_local_host_hit`, `engine_local_host_miss`: a whole message through naam-engine in
//!   `LocalHost::call` (`BTreeVm::lookup`, what `--via vm` runs): one step per level;
//! - `engine_local_host_batch8_hit`: 8 lookups of hit keys (the single rows' sequence) in
//!   flight together (`BTreeVm::lookup_batch`, through `LocalHost::call_batch_into`, each node
//!   prefetched at hand-out), criterion's throughput per lookup (`Throughput::Elements(8)`);
//!   8 as in the MICA bench;
//! - `vm_step_leaf_hit`: one `naam_vm::Vm::run` of the leaf step, on memory prepared as the
//!   engine prepares it (context, arguments, state, the fetched node).
//!
//! 1 000 000 random u64 keys bulk loaded at 90 % fill, with 1 KB nodes (Cell-style default) and
//! 256-byte nodes (a deeper tree).
//!
//! Run: `cargo bench -p naam-btree --features jit --bench btree_lookup` (without the feature the
//! `_jit` rows are skipped, said on stderr).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use naam_btree::lookup::{LOOKUP_FUNCTION_SECTION, LOOKUP_OBJECT};
use naam_btree::{BTree, BTreeConfig, BTreeReader, BTreeVm, LookupArgs};
use naam_engine::abi::{RET_DONE, STATE_BYTES_MAX, ctx};
use naam_engine::helpers::{StepCtx, naam_helpers};
use naam_vm::memory::{VM_SLOTS, slot_base};
use naam_vm::{Backend, Helpers, Memory, Program, Tier, Vm, VmConfig};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KEYS: usize = 1_000_000;
const FILL_PERCENT: u8 = 90;
const PROBES: usize = 4096;

/// A loaded tree and the keys to look up.
struct Loaded {
    region: Vec<u8>,
    hits: Vec<u64>,
    misses: Vec<u64>,
}

impl Loaded {
    fn new(node_bytes: u32) -> Loaded {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut keys: Vec<u64> = (0..KEYS).map(|_| rng.random::<u64>() | 1).collect();
        keys.sort_unstable();
        keys.dedup();
        let pairs: Vec<(u64, u64)> = keys.iter().map(|&k| (k, k ^ 0x5555)).collect();
        let nodes_max =
            BTreeConfig::nodes_for_bulk_load(node_bytes, pairs.len() as u64, FILL_PERCENT)
                .unwrap_or(2);
        let config = BTreeConfig {
            node_bytes,
            nodes_max,
        };
        let mut region = vec![0u8; config.validate().expect("valid")];
        BTree::bulk_load(config, &mut region, &pairs, FILL_PERCENT).expect("load");
        // On huge pages, as the `LocalHost` copy the engine rows read (`add_region`).
        naam_engine::local::back_with_huge_pages(&mut region);
        let mut probe_rng = ChaCha8Rng::seed_from_u64(7);
        let hits = (0..PROBES)
            .map(|_| keys[probe_rng.random_range(0..keys.len())])
            .collect();
        let misses = (0..PROBES)
            .map(|_| probe_rng.random::<u64>() & !1)
            .collect();
        Loaded {
            region,
            hits,
            misses,
        }
    }
}

fn quick<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

fn bench_native(c: &mut Criterion, name: &str, loaded: &Loaded) {
    let reader = BTreeReader::open(&loaded.region).expect("open");
    let mut group = quick(c, name);
    let mut i = 0usize;
    group.bench_function("native_hit", |b| {
        b.iter(|| {
            i = (i + 1) % PROBES;
            black_box(reader.get(black_box(loaded.hits[i])))
        })
    });
    group.bench_function("native_miss", |b| {
        b.iter(|| {
            i = (i + 1) % PROBES;
            black_box(reader.get(black_box(loaded.misses[i])))
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
    let mut vm = BTreeVm::with_backend(loaded.region.clone(), backend).expect("engine");
    let Some(suffix) = row_suffix(name, backend, vm.tier()) else {
        return;
    };
    let found = vm.lookup(loaded.hits[0]).expect("lookup");
    assert_eq!(found.value, Some(loaded.hits[0] ^ 0x5555));
    // Instructions are load-independent: print them beside the times.
    let missed = vm.lookup(loaded.misses[0]).expect("lookup");
    for (what, run) in [("hit", found), ("miss", missed)] {
        eprintln!(
            "{name}: btree_lookup {what} ({backend}): {} steps, {} eBPF instructions",
            run.steps, run.insn
        );
    }
    let mut group = quick(c, name);
    let mut i = 0usize;
    group.bench_function(format!("engine_local_host_hit{suffix}"), |b| {
        b.iter(|| {
            i = (i + 1) % PROBES;
            black_box(vm.lookup(black_box(loaded.hits[i])))
        })
    });
    group.bench_function(format!("engine_local_host_miss{suffix}"), |b| {
        b.iter(|| {
            i = (i + 1) % PROBES;
            black_box(vm.lookup(black_box(loaded.misses[i])))
        })
    });
    let mut lookups = Vec::with_capacity(BATCH);
    vm.lookup_batch(&loaded.hits[..BATCH], &mut lookups)
        .expect("batch");
    assert!(
        lookups
            .iter()
            .all(|l| l.as_ref().is_ok_and(|l| l.value.is_some()))
    );
    // Per lookup: criterion prints the batch's lookups per second.
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(format!("engine_local_host_batch{BATCH}_hit{suffix}"), |b| {
        b.iter(|| {
            let keys: [u64; BATCH] = std::array::from_fn(|_| {
                i = (i + 1) % PROBES;
                black_box(loaded.hits[i])
            });
            black_box(vm.lookup_batch(&keys, &mut lookups))
        })
    });
    group.finish();
}

/// Lookups one batch row keeps in flight (`BTreeVm::lookup_batch`), as in the MICA bench.
const BATCH: usize = 8;

/// Writes a `struct naam_ctx` for one step with one fetched buffer.
fn naam_ctx(
    args: (u64, usize),
    state: (u64, usize),
    step: u32,
    node: (u64, usize),
) -> [u8; ctx::BYTES] {
    let mut bytes = [0u8; ctx::BYTES];
    let mut put = |at: usize, value: &[u8]| bytes[at..at + value.len()].copy_from_slice(value);
    put(ctx::ARGS, &args.0.to_le_bytes());
    put(ctx::ARGS_LEN, &(args.1 as u32).to_le_bytes());
    put(ctx::STEP, &step.to_le_bytes());
    put(ctx::STATE, &state.0.to_le_bytes());
    put(ctx::STATE_LEN, &(state.1 as u32).to_le_bytes());
    put(ctx::N_DATA, &1u32.to_le_bytes());
    put(ctx::DATA, &node.0.to_le_bytes());
    put(ctx::DATA + 8, &(node.1 as u32).to_le_bytes());
    bytes
}

/// Runs one step of `btree_lookup` over `node`, mapped as the engine maps it; returns r0.
fn run_step(
    (vm, program, helpers, step_ctx): (&mut Vm, &Program, &Helpers<StepCtx>, &mut StepCtx),
    args: &[u8],
    state: &mut [u8],
    state_len: usize,
    step: u32,
    node: &[u8],
) -> u64 {
    // The engine maps the context first (the JIT's read cache starts on the first embedder
    // slot), then the args, the state and the node, each into the next slot.
    let [ctx_addr, args_addr, state_addr, node_addr] =
        [0, 1, 2, 3].map(|k| slot_base(VM_SLOTS + k));
    let context = naam_ctx(
        (args_addr, args.len()),
        (state_addr, state_len),
        step,
        (node_addr, node.len()),
    );
    let mut mem = Memory::new();
    assert_eq!(mem.map_read(&context).expect("map"), ctx_addr);
    assert_eq!(mem.map_read(args).expect("map"), args_addr);
    assert_eq!(mem.map_write(state).expect("map"), state_addr);
    assert_eq!(mem.map_read(node).expect("map"), node_addr);
    step_ctx.reset();
    vm.run(
        program,
        &mut mem,
        helpers,
        step_ctx,
        ctx_addr,
        ctx::BYTES as u64,
    )
    .expect("step runs")
    .r0
}

fn bench_vm_step(c: &mut Criterion, name: &str, loaded: &Loaded, backend: Backend) {
    let helpers = naam_helpers();
    let program = Program::from_elf_with(LOOKUP_OBJECT, LOOKUP_FUNCTION_SECTION, &helpers, backend)
        .expect("load");
    let Some(suffix) = row_suffix(name, backend, Some(program.tier())) else {
        return;
    };
    let mut vm = Vm::new(VmConfig::default());
    let mut step_ctx = StepCtx::default();
    let reader = BTreeReader::open(&loaded.region).expect("open");
    let key = loaded.hits[99];
    let args = LookupArgs::for_tree(&reader, 1, key);
    let encoded = args.encode().expect("args");
    let height = reader.superblock().height;
    // Walk to the leaf step by step to get the leaf's offset and the state carried into it.
    let mut state = vec![0u8; STATE_BYTES_MAX];
    let (mut offset, mut state_len) = (args.root_offset, 0);
    let node_bytes = reader.node_bytes() as usize;
    for step in 0..height - 1 {
        let node = &loaded.region[offset as usize..][..node_bytes];
        let parts = (&mut vm, &program, &helpers, &mut step_ctx);
        run_step(parts, &encoded, &mut state, state_len, step as u32, node);
        offset = step_ctx.reads.as_slice()[0].offset;
        state_len = step_ctx.saved_state_len;
    }
    let leaf = &loaded.region[offset as usize..][..node_bytes];
    let leaf_step = (height - 1) as u32;
    let parts = (&mut vm, &program, &helpers, &mut step_ctx);
    assert_eq!(
        run_step(parts, &encoded, &mut state, state_len, leaf_step, leaf),
        RET_DONE
    );
    assert_eq!(step_ctx.reply_bytes()[8..], (key ^ 0x5555).to_le_bytes());
    let mut group = quick(c, name);
    group.bench_function(format!("vm_step_leaf_hit{suffix}"), |b| {
        b.iter(|| {
            let parts = (&mut vm, &program, &helpers, &mut step_ctx);
            run_step(parts, &encoded, &mut state, state_len, leaf_step, leaf)
        })
    });
    group.finish();
}

fn bench_node_size(c: &mut Criterion, node_bytes: u32) {
    let loaded = Loaded::new(node_bytes);
    let height = BTreeReader::open(&loaded.region)
        .expect("open")
        .superblock()
        .height;
    let name = format!("btree_lookup/{node_bytes}B_nodes_height_{height}");
    bench_native(c, &name, &loaded);
    for backend in Backend::ALL {
        bench_local_host(c, &name, &loaded, backend);
        bench_vm_step(c, &name, &loaded, backend);
    }
}

fn benches(c: &mut Criterion) {
    bench_node_size(c, 1024);
    bench_node_size(c, 256);
}

criterion_group!(btree, benches);
criterion_main!(btree);
