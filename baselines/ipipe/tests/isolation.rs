//! The isolation model: iPipe's trusted setting against a process per tenant. With processes,
//! a core that changes tenant switches address space and every item is handed to the tenant's
//! process; while tenants do not outnumber the FCFS cores each has a core of its own and no
//! switch happens. Each tenant process costs memory on the side it lives on.

mod support;

use expect_test::expect;
use naam_ipipe::config::{IpipeConfig, Isolation};
use naam_ipipe::{CostModel, DmaCosts, IsolationCosts, Runtime, RuntimeError};
use support::{Script, World, echo_spec};

const US: u64 = 1_000;
const MB: u64 = 1 << 20;

fn one_us(_: u64) -> u64 {
    US
}

fn nic(isolation: Isolation) -> IpipeConfig {
    // Three cores: two FCFS, one DRR.
    IpipeConfig {
        isolation,
        ..IpipeConfig::nic(3)
    }
}

fn processes() -> Isolation {
    Isolation::ProcessPerTenant {
        process_bytes: MB,
        slice_ns: 3_000_000,
    }
}

/// Switches, hand-offs and the mean reply time with `tenants` tenants at light load.
fn run(isolation: Isolation, tenants: usize) -> String {
    let actors: Vec<(Script, Option<u64>, u64)> =
        (0..tenants).map(|_| (one_us as Script, None, 0)).collect();
    let mut w = World::new(nic(isolation), IpipeConfig::host(2), &actors);
    w.pair.costs = CostModel {
        isolation: IsolationCosts {
            tenant_switch_ns: 5 * US,
            handoff_ns: 200,
        },
        dma: DmaCosts::BF2_DOCA,
    };
    let to: Vec<usize> = (0..tenants).collect();
    w.stream(0, 5 * US, 2_000, &to);
    w.run(50_000_000);
    w.assert_every_request_answered();
    let s = w.pair.nic.stats();
    let busy_per_item = s.busy_ns / s.completed;
    format!(
        "{tenants} tenants: {} switches, {} hand-offs, {busy_per_item} ns of core per item",
        s.tenant_switches, s.handoffs
    )
}

#[test]
fn tenants_switch_address_space_only_when_they_outnumber_the_fcfs_cores() {
    let mut out = Vec::new();
    for tenants in 1..=4 {
        out.push(format!("trusted  {}", run(Isolation::Trusted, tenants)));
    }
    for tenants in 1..=4 {
        out.push(format!("process  {}", run(processes(), tenants)));
    }
    expect![[r#"
        trusted  1 tenants: 0 switches, 0 hand-offs, 1000 ns of core per item
        trusted  2 tenants: 0 switches, 0 hand-offs, 1000 ns of core per item
        trusted  3 tenants: 0 switches, 0 hand-offs, 1000 ns of core per item
        trusted  4 tenants: 0 switches, 0 hand-offs, 1000 ns of core per item
        process  1 tenants: 0 switches, 2000 hand-offs, 1200 ns of core per item
        process  2 tenants: 0 switches, 2000 hand-offs, 1200 ns of core per item
        process  3 tenants: 1332 switches, 2000 hand-offs, 4530 ns of core per item
        process  4 tenants: 1998 switches, 2000 hand-offs, 6195 ns of core per item"#]]
    .assert_eq(&out.join("\n"));
}

#[test]
fn each_tenant_process_costs_memory_until_the_side_is_full() {
    let fill = |isolation| {
        let mut rt = Runtime::new(IpipeConfig {
            memory_bytes: 10 * MB,
            ..nic(isolation)
        })
        .expect("config");
        for tenant in 1..=20u32 {
            let added = rt
                .add_actor(echo_spec(tenant, None))
                .and_then(|a| rt.dmo_malloc(a, MB));
            if let Err(e) = added {
                return format!(
                    "tenant {tenant} refused ({} bytes in use): {e}",
                    rt.memory_used_bytes()
                );
            }
        }
        format!("20 tenants fit ({} bytes in use)", rt.memory_used_bytes())
    };
    expect![[r#"
        trusted: tenant 11 refused (10485760 bytes in use): out of memory: no free extent of 1048576 bytes (0 bytes free in total)
        process: tenant 6 refused (10485760 bytes in use): out of memory: no free extent of 1048576 bytes (0 bytes free in total)"#]]
    .assert_eq(&format!("trusted: {}\nprocess: {}", fill(Isolation::Trusted), fill(processes())));
}

#[test]
fn invalid_configurations_are_refused_with_the_field_named() {
    let cases = [
        IpipeConfig {
            cores: 0,
            ..IpipeConfig::nic(2)
        },
        IpipeConfig {
            drr_cores: 0,
            ..IpipeConfig::nic(2)
        },
        IpipeConfig {
            drr_cores: 2,
            ..IpipeConfig::nic(2)
        },
        IpipeConfig {
            thresholds: naam_ipipe::Thresholds {
                alpha_permille: 1000,
                ..Default::default()
            },
            ..IpipeConfig::nic(2)
        },
        IpipeConfig {
            windows: naam_ipipe::Windows {
                actor_executions: 0,
                side_completions: 8,
            },
            ..IpipeConfig::nic(2)
        },
        IpipeConfig {
            isolation: Isolation::ProcessPerTenant {
                process_bytes: MB,
                slice_ns: 0,
            },
            ..IpipeConfig::nic(2)
        },
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|c| match Runtime::new(*c) {
            Err(RuntimeError::Config(e)) => e.to_string(),
            other => panic!("accepted or other error: {other:?}"),
        })
        .collect();
    expect![[r#"
        cores = 0: must be in 1..=256
        drr_cores = 0 with 2 cores: the NIC needs 1..cores DRR cores (core 0 stays FCFS); the host needs fewer than cores
        drr_cores = 2 with 2 cores: the NIC needs 1..cores DRR cores (core 0 stays FCFS); the host needs fewer than cores
        thresholds.alpha_permille = 1000: above its maximum 999
        windows.actor_executions = 0: must be positive
        isolation.slice_ns = 0: must be positive"#]]
    .assert_eq(&out.join("\n"));
}
