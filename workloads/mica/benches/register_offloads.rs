//! Wall time to register N `mica_get` offloads (one per tenant) for the JIT, N = 1, 64, 1 024:
//! through the engine's `FunctionTable` (whose `JitCache` compiles each distinct program once)
//! and through the plain loader, `Program::from_elf_with` once per tenant (what
//! `FunctionTable::register_ebpf` did before the cache: every registration compiled).
//!
//! Two kinds of tenant programs (`naam-roles`' `TenantPrograms`): `shared`, every tenant the
//! same object; `distinct`, each tenant's object patched with its own salt (`naam_mica::tenant`),
//! which changes `lddw` immediates, hence the ops: the cache cannot share those.
//!
//! `cargo bench --locked -p naam-mica --features jit --bench register_offloads` (prints a table;
//! one pass per row, no statistics: a 1 024-compile row takes seconds). Without the `jit`
//! feature every program runs interpreted and the rows time loading and verifying alone.
//! `register_offloads <plain|table> <shared|distinct> N` (the binary, e.g. under `valgrind
//! --tool=callgrind`) runs one path over N tenants' programs of one kind.

use std::time::Instant;

use naam_engine::{Backend, Code, FunctionId, FunctionTable, TenantId};
use naam_mica::get::{GET_FUNCTION_SECTION, GET_OBJECT};
use naam_mica::tenant::{TENANT_GET_SECTION, tenant_get_object, tenant_salt};
use naam_vm::Program;

/// Offload counts timed.
const OFFLOADS: [u32; 3] = [1, 64, 1024];
/// Offload counts run when not benchmarking (under `cargo test`: does the bench still run?).
const OFFLOADS_SMOKE: [u32; 1] = [2];
/// The function's id in every tenant.
const GET: FunctionId = FunctionId(1);

/// Each tenant's object and section for one kind of tenant programs.
fn objects(distinct: bool, tenants: u32) -> Vec<(Vec<u8>, &'static str)> {
    (0..tenants)
        .map(|tenant| match distinct {
            false => (GET_OBJECT.to_vec(), GET_FUNCTION_SECTION),
            true => (
                tenant_get_object(tenant_salt(tenant)).expect("the object patches"),
                TENANT_GET_SECTION,
            ),
        })
        .collect()
}

/// Registers every object in a fresh JIT table: (milliseconds, compiles, reuses).
fn through_table(objects: &[(Vec<u8>, &str)]) -> (f64, u64, u64) {
    let started = Instant::now();
    let mut table = FunctionTable::new().with_backend(Backend::Jit);
    for (tenant, (object, name)) in (0u32..).zip(objects) {
        let code = Code::Elf { object, name };
        table
            .register_ebpf(TenantId(tenant), GET, "mica_get", code)
            .expect("registers");
    }
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let stats = table.jit_cache_stats();
    (elapsed_ms, stats.compiles, stats.reuses)
}

/// Loads every object with the plain loader (one compile each): milliseconds.
fn through_plain_loader(objects: &[(Vec<u8>, &str)]) -> f64 {
    let helpers = naam_engine::helpers::naam_helpers();
    let started = Instant::now();
    let programs: Vec<Program> = objects
        .iter()
        .map(|(object, name)| {
            Program::from_elf_with(object, name, &helpers, Backend::Jit).expect("loads")
        })
        .collect();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    drop(programs);
    elapsed_ms
}

/// One path over one kind of tenant programs, from `register_offloads <plain|table>
/// <shared|distinct> N`: (through the table?, distinct?, N).
fn one_path(args: &[String]) -> Option<(bool, bool, u32)> {
    let [path, programs, offloads, ..] = args else {
        return None;
    };
    let table = match path.as_str() {
        "plain" => false,
        "table" => true,
        _ => return None,
    };
    Some((table, programs == "distinct", offloads.parse().ok()?))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some((table, distinct, offloads)) = one_path(&args) {
        let objects = objects(distinct, offloads);
        let elapsed_ms = match table {
            true => through_table(&objects).0,
            false => through_plain_loader(&objects),
        };
        println!("{args:?}: {elapsed_ms:.1} ms");
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it, and
    // then one small row of each kind checks that the bench still runs (a debug build compiles
    // ≈ 50 times slower: the full table would add minutes to the test command).
    let offload_counts: &[u32] = if args.iter().any(|a| a == "--bench") {
        &OFFLOADS
    } else {
        &OFFLOADS_SMOKE
    };
    println!("programs  offloads  plain_loader_ms  table_ms  compiles  reuses");
    for distinct in [false, true] {
        let kind = if distinct { "distinct" } else { "shared" };
        for &offloads in offload_counts {
            let objects = objects(distinct, offloads);
            let plain_ms = through_plain_loader(&objects);
            let (table_ms, compiles, reuses) = through_table(&objects);
            println!(
                "{kind:<8}  {offloads:>8}  {plain_ms:>15.1}  {table_ms:>8.1}  {compiles:>8}  {reuses:>6}"
            );
        }
    }
}
