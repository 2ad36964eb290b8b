//! Thousands of live functions across a hundred tenants: every one dispatches correctly.

mod support;

use std::sync::Arc;

use naam_engine::function::Code;
use naam_engine::wire::Descriptors;
use naam_engine::*;
use support::*;

const TENANTS: u32 = 128;
const FUNCTIONS_PER_TENANT: u32 = 10;

/// Whether naam-vm's JIT is built. Not `cfg!(feature = "jit")`: a workspace build can turn on
/// naam-vm's `jit` through another crate without this crate's feature. A program that every
/// backend loads (`mov r0, 0; exit`) runs on the JIT exactly when it is built.
fn jit_built() -> bool {
    const RETURN_ZERO: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
    let mut table = FunctionTable::new().with_backend(Backend::Jit);
    table
        .register_ebpf(
            TENANT,
            FunctionId(1),
            "return_zero",
            Code::Raw(&RETURN_ZERO),
        )
        .unwrap();
    table.describe_tiers() == "jit"
}

/// `(compiles, reuses)` a JIT table reports after `registrations` of `distinct` functions: the
/// cache compiles each distinct function once when the JIT is built, nothing otherwise.
fn compiles_and_reuses(registrations: u64, distinct: u64) -> (u64, u64) {
    if jit_built() {
        (distinct, registrations - distinct)
    } else {
        (0, 0)
    }
}

#[test]
fn a_thousand_functions_across_a_hundred_tenants() {
    // Loaded for the JIT (interpreted without the `jit` feature): one compile for all of them.
    let mut functions = FunctionTable::new().with_backend(Backend::Jit);
    let mut regions = RegionTable::new(RkeySecret([1; 16]));
    let mut memory = Memory::new();
    let mut tenant_regions = Vec::new();
    for t in 0..TENANTS {
        let tenant = TenantId(100 + t);
        for f in 0..FUNCTIONS_PER_TENANT {
            let code = Code::Elf {
                object: ENGINE_FNS,
                name: "read_any",
            };
            functions
                .register_ebpf(tenant, FunctionId(f), &format!("read_any_{t}_{f}"), code)
                .unwrap();
        }
        let info = regions.register(tenant, 16, Perms::READ).unwrap();
        memory.insert(info.id, vec![t as u8; 16]);
        tenant_regions.push(info);
    }
    assert_eq!(functions.len(), (TENANTS * FUNCTIONS_PER_TENANT) as usize);
    let stats = functions.jit_cache_stats();
    let registered = u64::from(TENANTS * FUNCTIONS_PER_TENANT);
    assert_eq!(
        (stats.compiles, stats.reuses),
        compiles_and_reuses(registered, 1)
    );
    let regions = Arc::new(regions);
    let mut exec = Executor::new(
        ExecutorConfig::new(Location::Host),
        Arc::new(functions),
        regions.clone(),
    )
    .unwrap();
    for t in 0..TENANTS {
        for f in [0, FUNCTIONS_PER_TENANT - 1] {
            let tenant = TenantId(100 + t);
            let args: Vec<u8> = [tenant_regions[t as usize].rkey.0, 3, 1]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            let msg = invoke(
                tenant,
                FunctionId(f),
                u64::from(t),
                &args,
                Descriptors::new(),
            );
            let (c, frame) = run_at_host(&mut exec, &memory, &regions, &msg);
            let (status, _, payload) = reply_of(&frame);
            assert_eq!(
                (status, payload),
                (Status::Ok, vec![t as u8]),
                "tenant {t} function {f}"
            );
            assert_eq!(c.tenant, tenant);
        }
    }
    let invoked = exec
        .stats()
        .functions
        .iter()
        .filter(|c| c.invocations == 1)
        .count();
    assert_eq!(
        invoked,
        2 * TENANTS as usize,
        "per-function counters are per function"
    );
}

#[test]
fn shared_code_lives_until_its_last_function_is_unregistered() {
    let mut functions = FunctionTable::new().with_backend(Backend::Jit);
    let read_any = Code::Elf {
        object: ENGINE_FNS,
        name: "read_any",
    };
    let spin = Code::Elf {
        object: ENGINE_FNS,
        name: "spin",
    };
    for (tenant, id, code) in [(1, 1, read_any), (2, 1, read_any), (1, 2, spin)] {
        functions
            .register_ebpf(TenantId(tenant), FunctionId(id), "f", code)
            .unwrap();
    }
    let live = |functions: &FunctionTable| functions.jit_cache_stats().live_codes;
    let jit = usize::from(jit_built());
    let stats = functions.jit_cache_stats();
    assert_eq!((stats.compiles, stats.reuses), compiles_and_reuses(3, 2));
    assert_eq!(live(&functions), 2 * jit);
    functions.unregister(TenantId(1), FunctionId(1)).unwrap();
    assert_eq!(live(&functions), 2 * jit, "tenant 2 still runs read_any");
    functions.unregister(TenantId(2), FunctionId(1)).unwrap();
    assert_eq!(live(&functions), jit, "read_any's code is freed");
    functions.unregister(TenantId(1), FunctionId(2)).unwrap();
    assert_eq!(live(&functions), 0);
}

#[test]
fn registration_limits_and_duplicates_are_typed_errors() {
    let mut functions = FunctionTable::new();
    let code = Code::Elf {
        object: ENGINE_FNS,
        name: "spin",
    };
    functions
        .register_ebpf(TENANT, FunctionId(1), "spin", code)
        .unwrap();
    let again = functions
        .register_ebpf(TENANT, FunctionId(1), "spin", code)
        .unwrap_err();
    assert!(
        matches!(
            again,
            naam_engine::function::FunctionError::Duplicate { .. }
        ),
        "{again}"
    );
    let bad = functions
        .register_ebpf(TENANT, FunctionId(2), "x", Code::Raw(&[0xff; 8]))
        .unwrap_err();
    assert!(
        matches!(bad, naam_engine::function::FunctionError::Load { .. }),
        "{bad}"
    );
    let missing = functions
        .register_ebpf(
            TENANT,
            FunctionId(3),
            "x",
            Code::Elf {
                object: ENGINE_FNS,
                name: "nope",
            },
        )
        .unwrap_err();
    assert!(missing.to_string().contains("nope"), "{missing}");
    functions.unregister(TENANT, FunctionId(1)).unwrap();
    assert!(functions.get(TENANT, FunctionId(1)).is_none());
}
