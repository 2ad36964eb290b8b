//! The vm-cost experiment, in process: the cost of one NAAM function call per execution backend
//! on the same data and keys.
//!
//! - `native`: the workload's own Rust code (naam-mica's GET, naam-btree's lookup);
//! - `interpreter`: the eBPF function through the engine and naam-vm's interpreter, all steps of
//!   a call included (`LocalHost::call`: decode-free submit, accesses from memory, steps, reply);
//! - `jit`: the same, with the function loaded for naam-vm's Cranelift JIT (`Backend::Jit`);
//!   recorded as unavailable, with the VM's reason, when the function would run interpreted;
//! - `kernel-jit`: the Linux eBPF JIT cannot run NAAM functions, which call NAAM's helpers
//!   (`naam_read`, `naam_reply`, `naam_save_state`) that the kernel does not have — recorded as
//!   unavailable, with that reason.
//!
//! Numbers are wall time on this machine (`Instant`), mean over the iterations after a warm-up.
//! Every backend reads memory on huge pages (`back_with_huge_pages`; `LocalHost` asks for them
//! for its regions), so the rows differ by code, not by page walks.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use naam_engine::function::Code;
use naam_engine::local::{CallReply, LocalHost, back_with_huge_pages};
use naam_engine::wire::Descriptors;
use naam_engine::{
    Descriptor, FunctionId, Invoke, Perms, RequestId, Rkey, RkeySecret, Status, TenantId,
};
use naam_plan::{ExperimentPlan, PointPlan, Series, Timing, Workload};
use naam_results::raw::{self, VmCostEntry, VmCostOutcome, VmCostReport};
use naam_vm::{Backend, Tier};

use crate::TestbedError;

/// Records in the MICA table timed.
pub const MICA_RECORDS: u64 = 65_536;
/// Keys in the B-tree timed.
pub const BTREE_KEYS: u64 = 100_000;
/// Distinct keys cycled through (prepared arguments).
pub const KEYS_PREPARED: usize = 4096;
const TENANT: TenantId = TenantId(1);
const FUNCTION: FunctionId = FunctionId(1);

/// One prepared call: arguments, first access, and the key for the native path.
struct Prepared {
    args: Vec<u8>,
    first: Descriptor,
    key: Vec<u8>,
}

/// The same logic in native Rust: arguments in, "answer as expected" out.
type NativeCall = Box<dyn FnMut(&[u8]) -> bool>;

/// A function set up for timing on every backend.
struct Bench {
    host: LocalHost,
    calls: Vec<Prepared>,
    native: NativeCall,
}

/// Runs the point: every function of the plan on the point's backend.
pub fn run(plan: &ExperimentPlan, point: &PointPlan, out_dir: &Path) -> Result<(), TestbedError> {
    let (
        Workload::VmCost(w),
        Timing::Iterations {
            warmup_iterations,
            iterations,
        },
    ) = (&plan.workload, &plan.timing)
    else {
        return Err(TestbedError::Unsupported("not a vm-cost plan".into()));
    };
    let mut entries = Vec::new();
    for function in &w.functions {
        let outcome = match point.series {
            Series::Native | Series::Interpreter | Series::Jit => {
                match setup(function, point.seed, backend_of(point.series))? {
                    Ok(mut bench) => {
                        let ns_per_op = time(&mut bench, point.series, *warmup_iterations, *iterations)?;
                        VmCostOutcome::Measured { ns_per_op, iterations: *iterations }
                    }
                    Err(reason) => VmCostOutcome::Unavailable { reason },
                }
            }
            Series::KernelJit => VmCostOutcome::Unavailable {
                reason: "kernel-jit: NAAM functions call NAAM helpers (naam_read, naam_reply, naam_save_state) that the Linux kernel does not provide".into(),
            },
            other => return Err(TestbedError::Unsupported(format!("series {other} is not a VM backend"))),
        };
        entries.push(VmCostEntry {
            function: function.clone(),
            backend: point.series.as_str().to_string(),
            outcome,
        });
    }
    let report = VmCostReport {
        schema: raw::RAW_SCHEMA_VERSION,
        entries,
    };
    naam_roles::ready::write_atomic(&out_dir.join(raw::VMCOST_FILE), &report)
        .map_err(|e| TestbedError::io(out_dir, "write vmcost.json", e))
}

/// What one interpreted call of a function costs on this machine, and what it executed: the
/// inputs `naam calibrate` fits the simulator's per-step and per-instruction costs to.
#[derive(Debug, Clone, PartialEq)]
pub struct CallCost {
    /// `mica-get` or `btree-lookup`.
    pub function: &'static str,
    /// Wall time per call (mean over the timed calls).
    pub ns_per_call: f64,
    /// Steps (VM entries) per call.
    pub steps_per_call: f64,
    /// eBPF instructions executed per call.
    pub insn_per_call: f64,
}

/// Timed runs per function; the fastest is kept (noise from other processes only adds time).
pub const CALIBRATION_REPEATS: u64 = 5;
/// `mov r0, 0; exit`: a step with nothing in it, whose cost is the engine's per-step overhead.
const TRIVIAL_FUNCTION: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
/// The trivial function's name in [`CallCost`].
pub const TRIVIAL_FUNCTION_NAME: &str = "trivial";

/// [`CallCost`] of a trivial function (two instructions), MICA GET and a B-tree lookup through
/// the engine and the interpreter: `iterations` calls per timed run, the fastest of
/// [`CALIBRATION_REPEATS`] runs, after a warm-up run.
pub fn call_costs(seed: u64, iterations: u64) -> Result<Vec<CallCost>, TestbedError> {
    let mut costs = vec![fastest(TRIVIAL_FUNCTION_NAME, &mut trivial()?, iterations)?];
    for function in ["mica-get", "btree-lookup"] {
        let mut bench =
            setup(function, seed, Backend::Interpreter)?.map_err(TestbedError::Unsupported)?;
        costs.push(fastest(function, &mut bench, iterations)?);
    }
    Ok(costs)
}

/// The fastest of [`CALIBRATION_REPEATS`] timed runs, after one warm-up run.
fn fastest(
    function: &'static str,
    bench: &mut Bench,
    iterations: u64,
) -> Result<CallCost, TestbedError> {
    timed_run(function, bench, iterations)?;
    let mut best: Option<CallCost> = None;
    for _ in 0..CALIBRATION_REPEATS {
        let run = timed_run(function, bench, iterations)?;
        if best
            .as_ref()
            .is_none_or(|b| run.ns_per_call < b.ns_per_call)
        {
            best = Some(run);
        }
    }
    Ok(best.expect("at least one repeat"))
}

fn timed_run(
    function: &'static str,
    bench: &mut Bench,
    iterations: u64,
) -> Result<CallCost, TestbedError> {
    let (mut steps, mut insn) = (0u64, 0u64);
    let started = Instant::now();
    for i in 0..iterations {
        let call = &bench.calls[i as usize % bench.calls.len()];
        let reply = call_once(&mut bench.host, call)?;
        steps += u64::from(reply.steps);
        insn += reply.insn;
    }
    let n = iterations.max(1) as f64;
    Ok(CallCost {
        function,
        ns_per_call: started.elapsed().as_nanos() as f64 / n,
        steps_per_call: steps as f64 / n,
        insn_per_call: insn as f64 / n,
    })
}

/// The trivial function with one 64-byte read, as the real functions' first step has.
fn trivial() -> Result<Bench, TestbedError> {
    let bad = |m: String| TestbedError::Output {
        path: "calibration trivial function".into(),
        message: m,
    };
    let mut host = LocalHost::new(RkeySecret([5; 16]));
    let region = host
        .add_region(TENANT, vec![0xab; 4096], Perms::READ)
        .map_err(|e| bad(e.to_string()))?;
    host.register(
        TENANT,
        FUNCTION,
        TRIVIAL_FUNCTION_NAME,
        Code::Raw(&TRIVIAL_FUNCTION),
    )
    .map_err(|e| bad(e.to_string()))?;
    let call = Prepared {
        args: vec![0; 8],
        first: Descriptor::read(region.rkey, 0, 64),
        key: Vec::new(),
    };
    Ok(Bench {
        host,
        calls: vec![call],
        native: Box::new(|_| true),
    })
}

fn time(
    bench: &mut Bench,
    series: Series,
    warmup: u64,
    iterations: u64,
) -> Result<f64, TestbedError> {
    let mut check = |i: u64| -> Result<(), TestbedError> {
        let call = &bench.calls[i as usize % bench.calls.len()];
        let ok = match series {
            Series::Native => (bench.native)(&call.key),
            _ => interpret(&mut bench.host, call)?,
        };
        if ok {
            Ok(())
        } else {
            Err(TestbedError::Output {
                path: "vm-cost".into(),
                message: format!("call {i} did not find its key"),
            })
        }
    };
    for i in 0..warmup {
        check(i)?;
    }
    let started = Instant::now();
    for i in 0..iterations {
        check(i)?;
    }
    Ok(started.elapsed().as_nanos() as f64 / iterations.max(1) as f64)
}

fn call_once(host: &mut LocalHost, call: &Prepared) -> Result<CallReply, TestbedError> {
    let invoke = Invoke::new_message(
        TENANT,
        FUNCTION,
        RequestId(1),
        &call.args,
        Descriptors::from_slice(&[call.first]).unwrap_or_default(),
    );
    host.call(&invoke).map_err(|e| TestbedError::Output {
        path: "vm-cost".into(),
        message: e.to_string(),
    })
}

fn interpret(host: &mut LocalHost, call: &Prepared) -> Result<bool, TestbedError> {
    let reply = call_once(host, call)?;
    Ok(black_box(
        reply.status == Status::Ok && reply.payload.first() == Some(&1),
    ))
}

/// The VM backend a series runs its eBPF function on (`native` registers it too, unused).
fn backend_of(series: Series) -> Backend {
    match series {
        Series::Jit => Backend::Jit,
        _ => Backend::Interpreter,
    }
}

/// The function set up on `backend`; `Ok(Err(reason))` when it would not run on that backend.
fn setup(
    function: &str,
    seed: u64,
    backend: Backend,
) -> Result<Result<Bench, String>, TestbedError> {
    let bench = match function {
        "mica-get" => mica(seed, backend)?,
        "btree-lookup" => btree(seed, backend)?,
        other => {
            return Err(TestbedError::Unsupported(format!(
                "vm-cost function {other:?}: known are mica-get, btree-lookup"
            )));
        }
    };
    if backend == Backend::Jit && bench.host.tier(TENANT, FUNCTION) != Some(Tier::Jit) {
        let reason = bench.host.jit_error(TENANT, FUNCTION);
        return Ok(Err(format!(
            "jit: {}",
            reason.map_or("not compiled".into(), |e| e.to_string())
        )));
    }
    Ok(Ok(bench))
}

/// Bench data lives as long as the (short-lived) vm-cost process, so the native readers can
/// borrow it for the whole timing loop without re-opening per call. On huge pages, as the
/// copies `LocalHost::add_region` gives the engine rows: every row pays the same page walks.
fn leak(bytes: Vec<u8>) -> &'static [u8] {
    let mut boxed = bytes.into_boxed_slice();
    back_with_huge_pages(&mut boxed);
    Box::leak(boxed)
}

fn keys(seed: u64, count: u64) -> Vec<u64> {
    let mut mix = naam_roles::workload::Mix(seed);
    (0..KEYS_PREPARED).map(|_| mix.next_u64() % count).collect()
}

fn mica(seed: u64, backend: Backend) -> Result<Bench, TestbedError> {
    use naam_mica::config::{MicaConfig, Slots};
    use naam_mica::get::{GET_FUNCTION_SECTION, GET_OBJECT, GetArgs, MicaRkeys};
    use naam_mica::table::{MicaRegionsMut, MicaTable};
    let bad = |m: String| TestbedError::Output {
        path: "vm-cost mica".into(),
        message: m,
    };
    let mut config = MicaConfig::new();
    config.buckets = 65_536;
    config.slots = Slots::Seven;
    config.log_bytes = 1 << 22;
    config.item_bytes_max = 40;
    let sizes = config.validate().map_err(|e| bad(e.to_string()))?;
    let (mut index, mut log, mut meta) = (
        vec![0u8; sizes.index_bytes],
        vec![0u8; sizes.log_bytes],
        vec![0u8; sizes.meta_bytes],
    );
    {
        let mut table = MicaTable::format(
            config,
            MicaRegionsMut {
                index: &mut index,
                log: &mut log,
                meta: &mut meta,
            },
        )
        .map_err(|e| bad(e.to_string()))?;
        for k in 0..MICA_RECORDS {
            table
                .set(&k.to_le_bytes(), &(k ^ seed).to_le_bytes())
                .map_err(|e| bad(e.to_string()))?;
        }
    }
    let mut host = LocalHost::new(RkeySecret(
        seed.to_le_bytes().repeat(2).try_into().unwrap_or([0; 16]),
    ));
    host.set_backend(backend);
    let mut add = |bytes: &Vec<u8>| {
        host.add_region(TENANT, bytes.clone(), Perms::READ)
            .map_err(|e| bad(e.to_string()))
    };
    let rkeys = MicaRkeys {
        index: add(&index)?.rkey.0,
        log: add(&log)?.rkey.0,
        meta: add(&meta)?.rkey.0,
    };
    host.register(
        TENANT,
        FUNCTION,
        "mica_get",
        Code::Elf {
            object: GET_OBJECT,
            name: GET_FUNCTION_SECTION,
        },
    )
    .map_err(|e| bad(e.to_string()))?;
    let calls = keys(seed, MICA_RECORDS)
        .into_iter()
        .map(|k| {
            let key = k.to_le_bytes().to_vec();
            let get = GetArgs::new(config, rkeys, &key);
            let mut args = Vec::new();
            get.encode(&mut args).map_err(|e| bad(e.to_string()))?;
            let a = get.initial_access();
            Ok(Prepared {
                args,
                first: Descriptor::read(Rkey(a.rkey), a.offset, a.len),
                key,
            })
        })
        .collect::<Result<Vec<_>, TestbedError>>()?;
    let regions = naam_mica::reader::MicaRegions {
        index: leak(index),
        log: leak(log),
        meta: leak(meta),
    };
    let reader = naam_mica::reader::MicaReader::open(regions).map_err(|e| bad(e.to_string()))?;
    // MICA's index is lossy: time only keys the table kept.
    let calls: Vec<Prepared> = calls
        .into_iter()
        .filter(|c| matches!(reader.get(&c.key), Ok(Some(_))))
        .collect();
    if calls.is_empty() {
        return Err(bad("no prepared key survived the load".into()));
    }
    let native = Box::new(move |key: &[u8]| matches!(reader.get(black_box(key)), Ok(Some(_))));
    Ok(Bench {
        host,
        calls,
        native,
    })
}

fn btree(seed: u64, backend: Backend) -> Result<Bench, TestbedError> {
    use naam_btree::lookup::{LOOKUP_FUNCTION_SECTION, LOOKUP_OBJECT};
    use naam_btree::{BTree, BTreeConfig, BTreeReader, LookupArgs};
    let bad = |m: String| TestbedError::Output {
        path: "vm-cost btree".into(),
        message: m,
    };
    let pairs: Vec<(u64, u64)> = (1..=BTREE_KEYS).map(|k| (k * 16, k ^ seed)).collect();
    let nodes_max = BTreeConfig::nodes_for_bulk_load(1024, BTREE_KEYS, 90)
        .ok_or_else(|| bad("bad shape".into()))?
        + 16;
    let config = BTreeConfig {
        node_bytes: 1024,
        nodes_max,
    };
    let mut nodes = vec![0u8; config.validate().map_err(|e| bad(e.to_string()))?];
    BTree::bulk_load(config, &mut nodes, &pairs, 90).map_err(|e| bad(e.to_string()))?;
    let nodes = leak(nodes);
    let reader = BTreeReader::open(nodes).map_err(|e| bad(e.to_string()))?;
    let mut host = LocalHost::new(RkeySecret([7; 16]));
    host.set_backend(backend);
    let region = host
        .add_region(TENANT, nodes.to_vec(), Perms::READ)
        .map_err(|e| bad(e.to_string()))?;
    host.register(
        TENANT,
        FUNCTION,
        "btree_lookup",
        Code::Elf {
            object: LOOKUP_OBJECT,
            name: LOOKUP_FUNCTION_SECTION,
        },
    )
    .map_err(|e| bad(e.to_string()))?;
    let calls = keys(seed, BTREE_KEYS)
        .into_iter()
        .map(|i| {
            let key = (i + 1) * 16;
            let args = LookupArgs::for_tree(&reader, region.rkey.0, key);
            let a = args.initial_access();
            let encoded = args.encode().map_err(|e| bad(e.to_string()))?;
            Ok(Prepared {
                args: encoded.to_vec(),
                first: Descriptor::read(Rkey(a.rkey), a.offset, a.len),
                key: key.to_le_bytes().to_vec(),
            })
        })
        .collect::<Result<Vec<_>, TestbedError>>()?;
    let native = Box::new(move |key: &[u8]| {
        let key = u64::from_le_bytes(key.try_into().unwrap_or([0; 8]));
        matches!(reader.get(black_box(key)), Ok(Some(_)))
    });
    Ok(Bench {
        host,
        calls,
        native,
    })
}
