//! Raw manifest → [`ExperimentPlan`]: bounds, per-experiment rules, resolved defaults, points.
//!
//! The only defaults live here, as named constants, and are written into the plan:
//! [`TENANTS_WHEN_NOT_SWEPT`], empty pinning lists when `[roles.pinning]` is absent, and a CPU
//! hog's `stop_ms` = the end of the measured phase.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use crate::error::{ManifestError, Source, closest};
use crate::help::field_help;
use crate::plan::*;
use crate::raw::*;
use crate::sizing::LoadScale;

/// `tenants` when the variant does not sweep it: one offloaded application.
pub const TENANTS_WHEN_NOT_SWEPT: u32 = 1;
/// Whether the iPipe series (`ipipe`, `ipipe-processes`) can run on the local, netns and
/// inventory testbeds: its runtime (`baselines/ipipe`) runs on the simulation testbed
/// (`kind = "sim"`, always accepted) and in the NIC and host role processes
/// (`naam-roles/src/ipipe`).
pub const IPIPE_ROLE_IMPLEMENTED: bool = true;

/// Bounds on every number of a manifest (inclusive).
pub mod bounds {
    /// Longest title.
    pub const TITLE_CHARS_MAX: usize = 200;
    /// Client processes.
    pub const CLIENTS_MAX: u64 = 64;
    /// Threads per client.
    pub const CLIENT_THREADS_MAX: u64 = 64;
    /// Host role workers.
    pub const HOST_WORKERS_MAX: u64 = 256;
    /// NIC role workers (BlueField-2 has 8 Arm cores; emulation may use more).
    pub const NIC_WORKERS_MAX: u64 = 64;
    /// Per-access NIC delay.
    pub const NIC_ACCESS_DELAY_NS_MAX: u64 = 1_000_000;
    /// NIC core speed factor range.
    pub const NIC_CORE_SPEED_FACTOR_MIN: f64 = 0.01;
    /// NIC core speed factor range.
    pub const NIC_CORE_SPEED_FACTOR_MAX: f64 = 100.0;
    /// Highest CPU index in a pinning list.
    pub const CPU_INDEX_MAX: u64 = 1023;
    /// vm-cost functions.
    pub const FUNCTIONS_MAX: usize = 64;
    // Workload sizes: the workloads' and the host's own limits, so that `naam check` refuses
    // exactly what a run would.
    pub use naam_btree::layout::{NODE_BYTES_MAX, NODE_BYTES_MIN};
    pub use naam_mica::config::{BUCKETS_MAX, LOG_BYTES_MAX, LOG_BYTES_MIN};
    pub use naam_mica::layout::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
    pub use naam_types::TENANTS_MAX;
    pub use naam_ycsb::generator::RECORDS_MAX;
    /// Function name length.
    pub const FUNCTION_NAME_CHARS_MAX: usize = 64;
    /// Series per experiment.
    pub const SERIES_MAX: usize = 16;
    /// Values per sweep list.
    pub const SWEEP_VALUES_MAX: usize = 64;
    /// Warm-up.
    pub const WARMUP_MS_MAX: u64 = 600_000;
    /// Measured phase.
    pub const MEASURE_MS_MAX: u64 = 3_600_000;
    /// Interval range.
    pub const INTERVAL_MS_MIN: u64 = 1;
    /// Interval range.
    pub const INTERVAL_MS_MAX: u64 = 60_000;
    /// Intervals per point (measure_ms / interval_ms).
    pub const INTERVALS_PER_POINT_MAX: u64 = 100_000;
    /// Repetitions.
    pub const REPETITIONS_MAX: u64 = 100;
    /// Offered load (total).
    pub const OFFERED_LOAD_OPS_PER_S_MAX: u64 = 100_000_000;
    /// B-tree depth.
    pub const TREE_DEPTH_MAX: u64 = 16;
    /// vm-cost iterations.
    pub const ITERATIONS_MAX: u64 = 1_000_000_000;
    /// Events per variant.
    pub const EVENTS_MAX: usize = 16;
    /// CPU hog threads.
    pub const HOG_THREADS_MAX: u64 = 256;
    /// Load-step factor range.
    pub const LOAD_STEP_FACTOR_MIN: f64 = 0.01;
    /// Load-step factor range.
    pub const LOAD_STEP_FACTOR_MAX: f64 = 100.0;
    /// Points per plan.
    pub const POINTS_MAX: usize = 10_000;
}
use bounds::*;

mod points;
mod policy;
mod variant;
mod workload;

use points::expand_points;
use variant::{events, sweep, timing};
use workload::workload;

/// Validates a parsed manifest into the plan of `variant`.
pub(crate) fn validate(
    src: Source<'_>,
    raw: RawManifest,
    variant: Variant,
    scale: Option<LoadScale>,
) -> Result<ExperimentPlan, ManifestError> {
    let schema = check_schema(src, &raw.schema)?;
    let id = experiment_id(src, &raw.id)?;
    let title = title(src, &raw.title)?;
    let base_seed = int(src, &raw.seed, "seed", 0, i64::MAX as u64)?;
    let testbed = testbed(src, &raw.testbed)?;
    let roles = roles(src, raw.roles.get_ref())?;
    sim_vm_backends(src, raw.roles.get_ref(), &roles, &testbed)?;
    let workload = workload(src, id, &raw.workload)?;
    let table = select_variant(src, &raw, variant)?;
    let series = series_list(src, id, &raw, table, &testbed)?;
    let elsewhere = other_variant_series(&raw, variant);
    let policies = policy::policies(src, raw.policy.as_ref(), &series, &elsewhere)?;
    let v = table.get_ref();
    let span = table.span();
    let timing = timing(src, &workload, v, variant, &span)?;
    let tenants_swept = v.tenants.is_some();
    let mut sweep = sweep(src, id, &workload, v, variant, &span)?;
    let load_scale = scale.filter(|_| is_sizable(variant, &testbed, &sweep));
    if let Some(scale) = load_scale {
        sweep.offered_load_ops_per_s = scale.apply(&sweep.offered_load_ops_per_s);
    }
    let events = events(src, id, &timing, v, variant, &span)?;
    let repetitions = int(
        src,
        &v.repetitions,
        &vfield(variant, "repetitions"),
        1,
        REPETITIONS_MAX,
    )? as u32;
    let points = expand_points(&series, &sweep, repetitions, base_seed, tenants_swept);
    if points.len() > POINTS_MAX {
        return Err(src.invalid(
            &table.span(),
            variant.as_str(),
            format!(
                "the plan has {} points, more than {POINTS_MAX}",
                points.len()
            ),
            "sweep fewer values or run fewer repetitions".to_string(),
        ));
    }
    Ok(ExperimentPlan {
        schema,
        id,
        title,
        variant,
        testbed,
        roles,
        workload,
        series,
        policies,
        sweep,
        timing,
        repetitions,
        base_seed,
        events,
        points,
        load_scale,
    })
}

/// Whether a plan's loads follow the machine: quick variants on this machine's testbeds (local,
/// netns) with an offered-load sweep. Full variants, simulated and real-machine testbeds keep
/// their manifests' loads.
fn is_sizable(variant: Variant, testbed: &Testbed, sweep: &crate::plan::Sweep) -> bool {
    variant == Variant::Quick
        && matches!(testbed, Testbed::Local | Testbed::Netns)
        && !sweep.offered_load_ops_per_s.is_empty()
}

pub(super) fn vfield(variant: Variant, key: &str) -> String {
    format!("{variant}.{key}")
}

/// An integer within `min..=max`, with an error naming the bounds.
pub(super) fn int(
    src: Source<'_>,
    value: &Spanned<i64>,
    field: &str,
    min: u64,
    max: u64,
) -> Result<u64, ManifestError> {
    let v = *value.get_ref();
    match u64::try_from(v) {
        Ok(u) if (min..=max).contains(&u) => Ok(u),
        _ => Err(src.invalid(
            &value.span(),
            field,
            format!("{v} is outside {min}..={max}"),
            field_help(field),
        )),
    }
}

pub(super) fn float(
    src: Source<'_>,
    value: &Spanned<f64>,
    field: &str,
    min: f64,
    max: f64,
) -> Result<f64, ManifestError> {
    let v = *value.get_ref();
    if v.is_finite() && (min..=max).contains(&v) {
        return Ok(v);
    }
    Err(src.invalid(
        &value.span(),
        field,
        format!("{v} is outside {min}..={max}"),
        field_help(field),
    ))
}

pub(super) fn required<'a, T>(
    src: Source<'_>,
    value: &'a Option<Spanned<T>>,
    table: &Range<usize>,
    field: &str,
) -> Result<&'a Spanned<T>, ManifestError> {
    value.as_ref().ok_or_else(|| src.missing(table, field))
}

pub(super) fn forbidden<T>(
    src: Source<'_>,
    value: &Option<Spanned<T>>,
    field: &str,
    why: &str,
) -> Result<(), ManifestError> {
    match value {
        None => Ok(()),
        Some(v) => Err(src.not_applicable(
            &v.span(),
            field,
            why.to_string(),
            format!("remove `{field}`"),
        )),
    }
}

pub(super) fn one_of<T: Copy>(
    src: Source<'_>,
    value: &Spanned<String>,
    field: &str,
    choices: &[(T, &str)],
) -> Result<T, ManifestError> {
    if let Some((t, _)) = choices.iter().find(|(_, name)| *name == value.get_ref()) {
        return Ok(*t);
    }
    let names: Vec<&str> = choices.iter().map(|(_, n)| *n).collect();
    Err(unknown_name(src, value, field, &names))
}

pub(super) fn unknown_name(
    src: Source<'_>,
    value: &Spanned<String>,
    field: &str,
    names: &[&str],
) -> ManifestError {
    let given = value.get_ref();
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let help = match closest(given, names) {
        Some(best) => format!(
            "did you mean \"{best}\"? write one of {}",
            quoted.join(", ")
        ),
        None => format!("write one of {}", quoted.join(", ")),
    };
    src.invalid(
        &value.span(),
        field,
        format!("unknown name \"{given}\""),
        help,
    )
}

fn check_schema(src: Source<'_>, value: &Spanned<i64>) -> Result<u32, ManifestError> {
    if *value.get_ref() == i64::from(SCHEMA_VERSION) {
        return Ok(SCHEMA_VERSION);
    }
    Err(src.invalid(
        &value.span(),
        "schema",
        format!(
            "schema version {} is not supported by this harness",
            value.get_ref()
        ),
        format!(
            "write `schema = {SCHEMA_VERSION}` and check the keys against experiments/SCHEMA.md"
        ),
    ))
}

fn experiment_id(src: Source<'_>, value: &Spanned<String>) -> Result<ExperimentId, ManifestError> {
    let names: Vec<&str> = ExperimentId::ALL.iter().map(|id| id.as_str()).collect();
    ExperimentId::parse(value.get_ref()).ok_or_else(|| unknown_name(src, value, "id", &names))
}

fn title(src: Source<'_>, value: &Spanned<String>) -> Result<String, ManifestError> {
    let t = value.get_ref().trim();
    if t.is_empty() || t.chars().count() > TITLE_CHARS_MAX {
        return Err(src.invalid(
            &value.span(),
            "title",
            format!("a title must have 1..={TITLE_CHARS_MAX} characters"),
            field_help("title"),
        ));
    }
    Ok(t.to_string())
}

#[derive(Clone, Copy)]
enum TestbedKind {
    Local,
    Netns,
    Inventory,
    Sim,
}

fn testbed(src: Source<'_>, table: &Spanned<RawTestbed>) -> Result<Testbed, ManifestError> {
    let raw = table.get_ref();
    let kinds = [
        (TestbedKind::Local, "local"),
        (TestbedKind::Netns, "netns"),
        (TestbedKind::Inventory, "inventory"),
        (TestbedKind::Sim, "sim"),
    ];
    let kind = one_of(src, &raw.kind, "testbed.kind", &kinds)?;
    let no_inventory = "an inventory file belongs to `kind = \"inventory\"` only";
    let no_profile = "a cost profile belongs to `kind = \"sim\"` only";
    let neither = |testbed: Testbed| {
        forbidden(src, &raw.inventory, "testbed.inventory", no_inventory)?;
        forbidden(src, &raw.profile, "testbed.profile", no_profile)?;
        Ok(testbed)
    };
    match kind {
        TestbedKind::Local => neither(Testbed::Local),
        TestbedKind::Netns => neither(Testbed::Netns),
        TestbedKind::Sim => {
            forbidden(src, &raw.inventory, "testbed.inventory", no_inventory)?;
            sim_profile(src, table)
        }
        TestbedKind::Inventory => {
            forbidden(src, &raw.profile, "testbed.profile", no_profile)?;
            inventory(src, table)
        }
    }
}

/// Longest cost-profile name.
pub const PROFILE_NAME_CHARS_MAX: usize = 64;

/// `profile = "<name>"`: a file stem (lower-case letters, digits, `-`) naming
/// `profiles/<name>.toml` beside the manifest.
fn sim_profile(src: Source<'_>, table: &Spanned<RawTestbed>) -> Result<Testbed, ManifestError> {
    let given = required(
        src,
        &table.get_ref().profile,
        &table.span(),
        "testbed.profile",
    )?;
    let name = given.get_ref().trim();
    let stem_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if name.is_empty() || name.len() > PROFILE_NAME_CHARS_MAX || !name.chars().all(stem_ok) {
        return Err(src.invalid(
            &given.span(),
            "testbed.profile",
            format!("{name:?} is not a profile name (1..={PROFILE_NAME_CHARS_MAX} of a-z, 0-9, -)"),
            field_help("profile"),
        ));
    }
    let dir = src.path.parent().unwrap_or(Path::new(""));
    Ok(Testbed::Sim {
        profile: name.to_string(),
        path: dir.join("profiles").join(format!("{name}.toml")),
    })
}

fn inventory(src: Source<'_>, table: &Spanned<RawTestbed>) -> Result<Testbed, ManifestError> {
    let given = required(
        src,
        &table.get_ref().inventory,
        &table.span(),
        "testbed.inventory",
    )?;
    if given.get_ref().trim().is_empty() {
        return Err(src.invalid(
            &given.span(),
            "testbed.inventory",
            "empty path".to_string(),
            field_help("inventory"),
        ));
    }
    let dir = src.path.parent().unwrap_or(Path::new(""));
    Ok(Testbed::Inventory {
        path: dir.join(given.get_ref()),
    })
}

fn roles(src: Source<'_>, raw: &RawRoles) -> Result<Roles, ManifestError> {
    Ok(Roles {
        clients: int(src, &raw.clients, "roles.clients", 1, CLIENTS_MAX)? as u32,
        client_threads: int(
            src,
            &raw.client_threads,
            "roles.client_threads",
            1,
            CLIENT_THREADS_MAX,
        )? as u32,
        host_workers: int(
            src,
            &raw.host_workers,
            "roles.host_workers",
            1,
            HOST_WORKERS_MAX,
        )? as u32,
        nic_workers: int(
            src,
            &raw.nic_workers,
            "roles.nic_workers",
            1,
            NIC_WORKERS_MAX,
        )? as u32,
        nic_access_delay_ns: int(
            src,
            &raw.nic_access_delay_ns,
            "roles.nic_access_delay_ns",
            0,
            NIC_ACCESS_DELAY_NS_MAX,
        )?,
        nic_core_speed_factor: float(
            src,
            &raw.nic_core_speed_factor,
            "roles.nic_core_speed_factor",
            NIC_CORE_SPEED_FACTOR_MIN,
            NIC_CORE_SPEED_FACTOR_MAX,
        )?,
        host_vm_backend: vm_backend(src, raw.host_vm_backend.as_ref(), "roles.host_vm_backend")?,
        nic_vm_backend: vm_backend(src, raw.nic_vm_backend.as_ref(), "roles.nic_vm_backend")?,
        pinning: pinning(src, raw.pinning.as_ref())?,
    })
}

/// The simulation testbed's profiles price interpreted eBPF instructions (`insn_ns`): a JIT's
/// modelled cost is not in them, so asking for it there is refused rather than priced as the
/// interpreter's. (The simulator *executes* on the JIT when built, whatever the manifest says:
/// it counts the same instructions, so the modelled time is the same.)
fn sim_vm_backends(
    src: Source<'_>,
    raw: &RawRoles,
    roles: &Roles,
    testbed: &Testbed,
) -> Result<(), ManifestError> {
    if !matches!(testbed, Testbed::Sim { .. }) {
        return Ok(());
    }
    let fields = [
        (
            roles.host_vm_backend,
            raw.host_vm_backend.as_ref(),
            "roles.host_vm_backend",
        ),
        (
            roles.nic_vm_backend,
            raw.nic_vm_backend.as_ref(),
            "roles.nic_vm_backend",
        ),
    ];
    for (backend, value, field) in fields {
        let Some(value) = value.filter(|_| backend != VmBackend::Interpreter) else {
            continue;
        };
        return Err(src.not_implemented(
            &value.span(),
            field,
            "a modelled JIT cost on the simulation testbed (its cost profiles price interpreted \
             eBPF instructions)",
            "remove the field (the simulator executes on the JIT when it is built either way; \
             only the modelled cost is the interpreter's), or run the JIT on the local testbed",
        ));
    }
    Ok(())
}

/// `interpreter` (the default when absent) or `jit`.
fn vm_backend(
    src: Source<'_>,
    raw: Option<&Spanned<String>>,
    field: &str,
) -> Result<VmBackend, ManifestError> {
    raw.map_or(Ok(VmBackend::Interpreter), |value| {
        one_of(src, value, field, &VmBackend::ALL)
    })
}

fn pinning(src: Source<'_>, raw: Option<&Spanned<RawPinning>>) -> Result<Pinning, ManifestError> {
    let Some(raw) = raw else {
        return Ok(Pinning {
            host_cpus: Vec::new(),
            nic_cpus: Vec::new(),
            client_cpus: Vec::new(),
        });
    };
    let raw = raw.get_ref();
    Ok(Pinning {
        host_cpus: cpu_list(src, raw.host.as_ref(), "roles.pinning.host")?,
        nic_cpus: cpu_list(src, raw.nic.as_ref(), "roles.pinning.nic")?,
        client_cpus: cpu_list(src, raw.client.as_ref(), "roles.pinning.client")?,
    })
}

fn cpu_list(
    src: Source<'_>,
    raw: Option<&Spanned<Vec<Spanned<i64>>>>,
    field: &str,
) -> Result<Vec<u32>, ManifestError> {
    let Some(list) = raw else {
        return Ok(Vec::new());
    };
    let cpus = int_list(src, list, field, 0, CPU_INDEX_MAX, SWEEP_VALUES_MAX)?;
    Ok(cpus.into_iter().map(|c| c as u32).collect())
}

/// A non-empty list of distinct integers within bounds.
pub(super) fn int_list(
    src: Source<'_>,
    list: &Spanned<Vec<Spanned<i64>>>,
    field: &str,
    min: u64,
    max: u64,
    len_max: usize,
) -> Result<Vec<u64>, ManifestError> {
    let items = list.get_ref();
    if items.is_empty() || items.len() > len_max {
        return Err(src.invalid(
            &list.span(),
            field,
            format!(
                "a list of 1..={len_max} values is needed, found {}",
                items.len()
            ),
            field_help(field),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let value = int(src, item, &format!("{field}[{i}]"), min, max)?;
        if !seen.insert(value) {
            return Err(src.invalid(
                &item.span(),
                &format!("{field}[{i}]"),
                format!("{value} appears twice"),
                "list each value once".to_string(),
            ));
        }
        out.push(value);
    }
    Ok(out)
}

/// The plan's series: the manifest's `series`, then the variant's own (`[full] series`: the
/// iPipe thresholds' sensitivity sweep), each checked against the experiment and the testbed.
fn series_list(
    src: Source<'_>,
    id: ExperimentId,
    raw: &RawManifest,
    table: &Spanned<RawVariant>,
    testbed: &Testbed,
) -> Result<Vec<Series>, ManifestError> {
    let list = &raw.series;
    let own = table.get_ref().series.as_ref();
    let total = list.get_ref().len() + own.map_or(0, |l| l.get_ref().len());
    if list.get_ref().is_empty() || total > SERIES_MAX {
        return Err(src.invalid(
            &list.span(),
            "series",
            format!("a list of 1..={SERIES_MAX} series is needed (with the variant's own)"),
            field_help("series"),
        ));
    }
    let common = list
        .get_ref()
        .iter()
        .enumerate()
        .map(|(i, name)| (format!("series[{i}]"), name));
    let variant = table_name(raw, table);
    let variant_own = own.into_iter().flat_map(|l| l.get_ref().iter().enumerate());
    let variant_own = variant_own.map(|(i, name)| (format!("{variant}.series[{i}]"), name));
    let tables: Vec<&str> = raw
        .policy
        .iter()
        .flat_map(|p| p.get_ref().keys())
        .map(|k| k.get_ref().as_str())
        .collect();
    let mut out = Vec::new();
    for (field, name) in common.chain(variant_own) {
        let series = one_series(src, id, name, &field, testbed)?;
        if out.contains(&series) {
            return Err(src.invalid(
                &name.span(),
                &field,
                format!("\"{series}\" appears twice"),
                "list each series once".to_string(),
            ));
        }
        if matches!(series, Series::IpipeSweep(_)) && !tables.contains(&series.as_str()) {
            return Err(src.invalid(
                &name.span(),
                &field,
                format!("the sweep series \"{series}\" has no `[policy.\"{series}\"]` table"),
                format!("add `[policy.\"{series}\"]` with the thresholds this line of the sweep runs (experiments/SCHEMA.md, \"Policy parameters\")"),
            ));
        }
        out.push(series);
    }
    Ok(out)
}

/// `quick` or `full`: the name of the variant table `table` is.
fn table_name(raw: &RawManifest, table: &Spanned<RawVariant>) -> &'static str {
    let is = |t: &Option<Spanned<RawVariant>>| t.as_ref().is_some_and(|t| std::ptr::eq(t, table));
    if is(&raw.full) {
        Variant::Full.as_str()
    } else {
        Variant::Quick.as_str()
    }
}

/// One series name: a known series of experiment `id`, or `ipipe/<label>` where `ipipe` is one.
fn one_series(
    src: Source<'_>,
    id: ExperimentId,
    name: &Spanned<String>,
    field: &str,
    testbed: &Testbed,
) -> Result<Series, ManifestError> {
    let allowed = allowed_series(id);
    let series = match name.get_ref().split_once('/') {
        Some(("ipipe", label)) => {
            SweepName::new(label)
                .map(Series::IpipeSweep)
                .map_err(|problem| {
                    src.invalid(
                        &name.span(),
                        field,
                        problem,
                        "name a sweep series `ipipe/<label>`, e.g. `ipipe/tail-x4`".to_string(),
                    )
                })?
        }
        Some((base, _)) => {
            return Err(src.not_applicable(
                &name.span(),
                field,
                format!("\"{base}\" has no threshold-sweep series: only the iPipe baseline has (`ipipe/<label>`)"),
                "write `ipipe/<label>`, or a series name without `/`".to_string(),
            ));
        }
        None => Series::parse(name.get_ref()).ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            unknown_name(src, name, field, &names)
        })?,
    };
    if series.is_ipipe() && !IPIPE_ROLE_IMPLEMENTED && !matches!(testbed, Testbed::Sim { .. }) {
        return Err(src.not_implemented(
            &name.span(),
            field,
            &format!(
                "the iPipe baseline's NIC role on the {} testbed",
                testbed.kind_name()
            ),
            "run the iPipe series on the simulation testbed (`[testbed] kind = \"sim\"`), or remove it from `series`",
        ));
    }
    let base = if matches!(series, Series::IpipeSweep(_)) {
        Series::Ipipe
    } else {
        series
    };
    if !allowed.contains(&base) {
        let names: Vec<String> = allowed.iter().map(|s| format!("\"{s}\"")).collect();
        return Err(src.not_applicable(
            &name.span(),
            field,
            format!("\"{series}\" is not a series of `{id}`"),
            format!("write one of {}", names.join(", ")),
        ));
    }
    Ok(series)
}

/// The series only the other variant adds (its `series`), whose `[policy.…]` tables are
/// checked but not planned here.
fn other_variant_series(raw: &RawManifest, variant: Variant) -> Vec<Series> {
    let other = match variant {
        Variant::Quick => raw.full.as_ref(),
        Variant::Full => raw.quick.as_ref(),
    };
    let names = other.and_then(|t| t.get_ref().series.as_ref());
    names
        .into_iter()
        .flat_map(|l| l.get_ref().iter())
        .filter_map(|name| Series::parse(name.get_ref()))
        .collect()
}

fn allowed_series(id: ExperimentId) -> Vec<Series> {
    Series::ALL
        .into_iter()
        .filter(|s| match (id, s.class()) {
            (ExperimentId::VmCost, class) => class == SeriesClass::VmBackend,
            (_, class) => class == SeriesClass::Steering,
        })
        .collect()
}

fn select_variant<'a>(
    src: Source<'_>,
    raw: &'a RawManifest,
    variant: Variant,
) -> Result<&'a Spanned<RawVariant>, ManifestError> {
    let table = match variant {
        Variant::Quick => raw.quick.as_ref(),
        Variant::Full => raw.full.as_ref(),
    };
    table.ok_or_else(|| src.missing(&(src.text.len()..src.text.len()), variant.as_str()))
}
