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
use crate::seeds;

/// `tenants` when the variant does not sweep it: one offloaded application.
pub const TENANTS_WHEN_NOT_SWEPT: u32 = 1;
/// Whether the `ipipe-model` series can run yet (offload-scaling's iPipe series comes later).
pub const IPIPE_MODEL_IMPLEMENTED: bool = false;

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
    /// MICA records / B-tree keys.
    pub const RECORDS_MAX: u64 = 1_000_000_000;
    /// Key size.
    pub const KEY_BYTES_MAX: u64 = 1024;
    /// Value size.
    pub const VALUE_BYTES_MAX: u64 = 1 << 20;
    /// MICA buckets.
    pub const BUCKETS_MAX: u64 = 1 << 30;
    /// MICA log size range.
    pub const LOG_BYTES_MIN: u64 = 4096;
    /// MICA log size range.
    pub const LOG_BYTES_MAX: u64 = 1 << 40;
    /// B-tree node size range.
    pub const NODE_BYTES_MIN: u64 = 256;
    /// B-tree node size range.
    pub const NODE_BYTES_MAX: u64 = 1 << 16;
    /// vm-cost functions.
    pub const FUNCTIONS_MAX: usize = 64;
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
    /// Offloaded applications.
    pub const TENANTS_MAX: u64 = 65_536;
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

/// Validates a parsed manifest into the plan of `variant`.
pub(crate) fn validate(
    src: Source<'_>,
    raw: RawManifest,
    variant: Variant,
) -> Result<ExperimentPlan, ManifestError> {
    let schema = check_schema(src, &raw.schema)?;
    let id = experiment_id(src, &raw.id)?;
    let title = title(src, &raw.title)?;
    let base_seed = int(src, &raw.seed, "seed", 0, i64::MAX as u64)?;
    let testbed = testbed(src, &raw.testbed)?;
    let roles = roles(src, raw.roles.get_ref())?;
    let workload = workload(src, id, &raw.workload)?;
    let series = series_list(src, id, &raw.series)?;
    let table = select_variant(src, &raw, variant)?;
    let v = table.get_ref();
    let span = table.span();
    let timing = timing(src, &workload, v, variant, &span)?;
    let tenants_swept = v.tenants.is_some();
    let sweep = sweep(src, id, &workload, v, variant, &span)?;
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
        sweep,
        timing,
        repetitions,
        base_seed,
        events,
        points,
    })
}

fn vfield(variant: Variant, key: &str) -> String {
    format!("{variant}.{key}")
}

/// An integer within `min..=max`, with an error naming the bounds.
fn int(
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

fn float(
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

fn required<'a, T>(
    src: Source<'_>,
    value: &'a Option<Spanned<T>>,
    table: &Range<usize>,
    field: &str,
) -> Result<&'a Spanned<T>, ManifestError> {
    value.as_ref().ok_or_else(|| src.missing(table, field))
}

fn forbidden<T>(
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

fn one_of<T: Copy>(
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

fn unknown_name(
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
    Simulation,
}

fn testbed(src: Source<'_>, table: &Spanned<RawTestbed>) -> Result<Testbed, ManifestError> {
    let raw = table.get_ref();
    let kinds = [
        (TestbedKind::Local, "local"),
        (TestbedKind::Netns, "netns"),
        (TestbedKind::Inventory, "inventory"),
        (TestbedKind::Simulation, "simulation"),
    ];
    let kind = one_of(src, &raw.kind, "testbed.kind", &kinds)?;
    let no_inventory = "an inventory file belongs to `kind = \"inventory\"` only";
    match kind {
        TestbedKind::Local => forbidden(src, &raw.inventory, "testbed.inventory", no_inventory).map(|()| Testbed::Local),
        TestbedKind::Netns => forbidden(src, &raw.inventory, "testbed.inventory", no_inventory).map(|()| Testbed::Netns),
        TestbedKind::Simulation => Err(src.not_implemented(
            &raw.kind.span(),
            "testbed.kind",
            "the simulation testbed",
            "write `kind = \"local\"` (this machine, emulated NIC) or `kind = \"inventory\"` (real machines)",
        )),
        TestbedKind::Inventory => inventory(src, table),
    }
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
        pinning: pinning(src, raw.pinning.as_ref())?,
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
fn int_list(
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

#[derive(Clone, Copy, PartialEq)]
enum WorkloadKind {
    Mica,
    Btree,
    VmCost,
}

fn workload(
    src: Source<'_>,
    id: ExperimentId,
    table: &Spanned<RawWorkload>,
) -> Result<Workload, ManifestError> {
    let raw = table.get_ref();
    let kinds = [
        (WorkloadKind::Mica, "mica"),
        (WorkloadKind::Btree, "btree"),
        (WorkloadKind::VmCost, "vm-cost"),
    ];
    let kind = one_of(src, &raw.kind, "workload.kind", &kinds)?;
    let allowed: &[WorkloadKind] = match id {
        ExperimentId::MicaYcsbB => &[WorkloadKind::Mica],
        ExperimentId::CellLookups => &[WorkloadKind::Btree],
        ExperimentId::VmCost => &[WorkloadKind::VmCost],
        _ => &[WorkloadKind::Mica, WorkloadKind::Btree],
    };
    if !allowed.contains(&kind) {
        let names: Vec<String> = kinds
            .iter()
            .filter(|(k, _)| allowed.contains(k))
            .map(|(_, n)| format!("`kind = \"{n}\"`"))
            .collect();
        return Err(src.not_applicable(
            &raw.kind.span(),
            "workload.kind",
            format!(
                "experiment `{id}` does not run the \"{}\" workload",
                raw.kind.get_ref()
            ),
            format!("write {}", names.join(" or ")),
        ));
    }
    match kind {
        WorkloadKind::Mica => mica(src, table).map(Workload::Mica),
        WorkloadKind::Btree => btree(src, table).map(Workload::Btree),
        WorkloadKind::VmCost => vm_cost(src, table).map(Workload::VmCost),
    }
}

fn mica(src: Source<'_>, table: &Spanned<RawWorkload>) -> Result<MicaWorkload, ManifestError> {
    let raw = table.get_ref();
    let span = table.span();
    let why = "B-tree and vm-cost keys do not apply to `kind = \"mica\"`";
    forbidden(src, &raw.keys, "workload.keys", why)?;
    forbidden(src, &raw.node_bytes, "workload.node_bytes", why)?;
    forbidden(src, &raw.functions, "workload.functions", why)?;
    let buckets = required(src, &raw.buckets, &span, "workload.buckets")?;
    let buckets_value = int(src, buckets, "workload.buckets", 1, BUCKETS_MAX)?;
    if !buckets_value.is_power_of_two() {
        return Err(src.invalid(
            &buckets.span(),
            "workload.buckets",
            format!("{buckets_value} is not a power of two"),
            format!("write `buckets = {}`", buckets_value.next_power_of_two()),
        ));
    }
    let slots = required(src, &raw.slots, &span, "workload.slots")?;
    if !matches!(*slots.get_ref(), 7 | 15) {
        return Err(src.invalid(
            &slots.span(),
            "workload.slots",
            format!("{} is not a MICA bucket size", slots.get_ref()),
            field_help("slots"),
        ));
    }
    let log = required(src, &raw.log_bytes, &span, "workload.log_bytes")?;
    let log_bytes = int(src, log, "workload.log_bytes", LOG_BYTES_MIN, LOG_BYTES_MAX)?;
    if !log_bytes.is_multiple_of(8) {
        return Err(src.invalid(
            &log.span(),
            "workload.log_bytes",
            format!("{log_bytes} is not a multiple of 8"),
            format!("write `log_bytes = {}`", log_bytes.next_multiple_of(8)),
        ));
    }
    let letters = [
        (YcsbWorkload::A, "a"),
        (YcsbWorkload::B, "b"),
        (YcsbWorkload::C, "c"),
        (YcsbWorkload::D, "d"),
        (YcsbWorkload::E, "e"),
        (YcsbWorkload::F, "f"),
    ];
    Ok(MicaWorkload {
        records: int(
            src,
            required(src, &raw.records, &span, "workload.records")?,
            "workload.records",
            1,
            RECORDS_MAX,
        )?,
        key_bytes: int(
            src,
            required(src, &raw.key_bytes, &span, "workload.key_bytes")?,
            "workload.key_bytes",
            1,
            KEY_BYTES_MAX,
        )? as u32,
        value_bytes: int(
            src,
            required(src, &raw.value_bytes, &span, "workload.value_bytes")?,
            "workload.value_bytes",
            1,
            VALUE_BYTES_MAX,
        )? as u32,
        ycsb_workload: one_of(
            src,
            required(src, &raw.ycsb_workload, &span, "workload.ycsb_workload")?,
            "workload.ycsb_workload",
            &letters,
        )?,
        distribution: one_of(
            src,
            required(src, &raw.distribution, &span, "workload.distribution")?,
            "workload.distribution",
            &Distribution::ALL,
        )?,
        buckets: buckets_value,
        slots: *slots.get_ref() as u32,
        log_bytes,
    })
}

fn btree(src: Source<'_>, table: &Spanned<RawWorkload>) -> Result<BtreeWorkload, ManifestError> {
    let raw = table.get_ref();
    let span = table.span();
    let why = "MICA and vm-cost keys do not apply to `kind = \"btree\"`";
    forbidden(src, &raw.records, "workload.records", why)?;
    forbidden(src, &raw.key_bytes, "workload.key_bytes", why)?;
    forbidden(src, &raw.value_bytes, "workload.value_bytes", why)?;
    forbidden(src, &raw.ycsb_workload, "workload.ycsb_workload", why)?;
    forbidden(src, &raw.buckets, "workload.buckets", why)?;
    forbidden(src, &raw.slots, "workload.slots", why)?;
    forbidden(src, &raw.log_bytes, "workload.log_bytes", why)?;
    forbidden(src, &raw.functions, "workload.functions", why)?;
    let node = required(src, &raw.node_bytes, &span, "workload.node_bytes")?;
    let node_bytes = int(
        src,
        node,
        "workload.node_bytes",
        NODE_BYTES_MIN,
        NODE_BYTES_MAX,
    )?;
    if !node_bytes.is_power_of_two() {
        return Err(src.invalid(
            &node.span(),
            "workload.node_bytes",
            format!("{node_bytes} is not a power of two"),
            format!("write `node_bytes = {}`", node_bytes.next_power_of_two()),
        ));
    }
    Ok(BtreeWorkload {
        keys: int(
            src,
            required(src, &raw.keys, &span, "workload.keys")?,
            "workload.keys",
            1,
            RECORDS_MAX,
        )?,
        node_bytes: node_bytes as u32,
        distribution: one_of(
            src,
            required(src, &raw.distribution, &span, "workload.distribution")?,
            "workload.distribution",
            &Distribution::ALL,
        )?,
    })
}

fn vm_cost(src: Source<'_>, table: &Spanned<RawWorkload>) -> Result<VmCostWorkload, ManifestError> {
    let raw = table.get_ref();
    let why = "only `functions` applies to `kind = \"vm-cost\"`";
    forbidden(src, &raw.records, "workload.records", why)?;
    forbidden(src, &raw.key_bytes, "workload.key_bytes", why)?;
    forbidden(src, &raw.value_bytes, "workload.value_bytes", why)?;
    forbidden(src, &raw.ycsb_workload, "workload.ycsb_workload", why)?;
    forbidden(src, &raw.buckets, "workload.buckets", why)?;
    forbidden(src, &raw.slots, "workload.slots", why)?;
    forbidden(src, &raw.log_bytes, "workload.log_bytes", why)?;
    forbidden(src, &raw.distribution, "workload.distribution", why)?;
    forbidden(src, &raw.keys, "workload.keys", why)?;
    forbidden(src, &raw.node_bytes, "workload.node_bytes", why)?;
    let list = required(src, &raw.functions, &table.span(), "workload.functions")?;
    if list.get_ref().is_empty() || list.get_ref().len() > FUNCTIONS_MAX {
        return Err(src.invalid(
            &list.span(),
            "workload.functions",
            format!("a list of 1..={FUNCTIONS_MAX} names is needed"),
            field_help("functions"),
        ));
    }
    let mut functions = Vec::new();
    for (i, name) in list.get_ref().iter().enumerate() {
        let field = format!("workload.functions[{i}]");
        let n = name.get_ref();
        let well_formed = !n.is_empty()
            && n.len() <= FUNCTION_NAME_CHARS_MAX
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed {
            return Err(src.invalid(
                &name.span(),
                &field,
                format!("\"{n}\" is not a function name"),
                format!("use 1..={FUNCTION_NAME_CHARS_MAX} of a-z, 0-9 and '-', e.g. \"mica-get\""),
            ));
        }
        if functions.contains(n) {
            return Err(src.invalid(
                &name.span(),
                &field,
                format!("\"{n}\" appears twice"),
                "list each function once".to_string(),
            ));
        }
        functions.push(n.clone());
    }
    Ok(VmCostWorkload { functions })
}

fn series_list(
    src: Source<'_>,
    id: ExperimentId,
    list: &Spanned<Vec<Spanned<String>>>,
) -> Result<Vec<Series>, ManifestError> {
    if list.get_ref().is_empty() || list.get_ref().len() > SERIES_MAX {
        return Err(src.invalid(
            &list.span(),
            "series",
            format!("a list of 1..={SERIES_MAX} series is needed"),
            field_help("series"),
        ));
    }
    let mut out = Vec::new();
    for (i, name) in list.get_ref().iter().enumerate() {
        let field = format!("series[{i}]");
        let allowed = allowed_series(id);
        let Some(series) = Series::parse(name.get_ref()) else {
            let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
            return Err(unknown_name(src, name, &field, &names));
        };
        if series == Series::IpipeModel
            && id == ExperimentId::OffloadScaling
            && !IPIPE_MODEL_IMPLEMENTED
        {
            return Err(src.not_implemented(
                &name.span(),
                &field,
                "the iPipe model series",
                "remove \"ipipe-model\" from `series`; offload-scaling runs the NAAM series now",
            ));
        }
        if !allowed.contains(&series) {
            let names: Vec<String> = allowed.iter().map(|s| format!("\"{s}\"")).collect();
            return Err(src.not_applicable(
                &name.span(),
                &field,
                format!("\"{series}\" is not a series of `{id}`"),
                format!("write one of {}", names.join(", ")),
            ));
        }
        if out.contains(&series) {
            return Err(src.invalid(
                &name.span(),
                &field,
                format!("\"{series}\" appears twice"),
                "list each series once".to_string(),
            ));
        }
        out.push(series);
    }
    Ok(out)
}

fn allowed_series(id: ExperimentId) -> Vec<Series> {
    Series::ALL
        .into_iter()
        .filter(|s| match (id, s.class()) {
            (ExperimentId::VmCost, class) => class == SeriesClass::VmBackend,
            (ExperimentId::OffloadScaling, class) => class != SeriesClass::VmBackend,
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

fn timing(
    src: Source<'_>,
    workload: &Workload,
    v: &RawVariant,
    variant: Variant,
    table_span: &Range<usize>,
) -> Result<Timing, ManifestError> {
    if let Workload::VmCost(_) = workload {
        let why = "vm-cost points are timed by iterations, not durations";
        forbidden(src, &v.warmup_ms, &vfield(variant, "warmup_ms"), why)?;
        forbidden(src, &v.measure_ms, &vfield(variant, "measure_ms"), why)?;
        forbidden(src, &v.interval_ms, &vfield(variant, "interval_ms"), why)?;
        let iterations = required(
            src,
            &v.iterations,
            table_span,
            &vfield(variant, "iterations"),
        )?;
        let warmup = required(
            src,
            &v.warmup_iterations,
            table_span,
            &vfield(variant, "warmup_iterations"),
        )?;
        return Ok(Timing::Iterations {
            iterations: int(
                src,
                iterations,
                &vfield(variant, "iterations"),
                1,
                ITERATIONS_MAX,
            )?,
            warmup_iterations: int(
                src,
                warmup,
                &vfield(variant, "warmup_iterations"),
                0,
                ITERATIONS_MAX,
            )?,
        });
    }
    let why = "iteration counts belong to the vm-cost experiment";
    forbidden(src, &v.iterations, &vfield(variant, "iterations"), why)?;
    forbidden(
        src,
        &v.warmup_iterations,
        &vfield(variant, "warmup_iterations"),
        why,
    )?;
    let warmup_ms = int(
        src,
        required(src, &v.warmup_ms, table_span, &vfield(variant, "warmup_ms"))?,
        &vfield(variant, "warmup_ms"),
        0,
        WARMUP_MS_MAX,
    )?;
    let measure = required(
        src,
        &v.measure_ms,
        table_span,
        &vfield(variant, "measure_ms"),
    )?;
    let measure_ms = int(
        src,
        measure,
        &vfield(variant, "measure_ms"),
        1,
        MEASURE_MS_MAX,
    )?;
    let interval = required(
        src,
        &v.interval_ms,
        table_span,
        &vfield(variant, "interval_ms"),
    )?;
    let interval_ms = int(
        src,
        interval,
        &vfield(variant, "interval_ms"),
        INTERVAL_MS_MIN,
        INTERVAL_MS_MAX,
    )?;
    if !measure_ms.is_multiple_of(interval_ms) || measure_ms / interval_ms > INTERVALS_PER_POINT_MAX
    {
        let divisor = divisors_near(measure_ms, interval_ms);
        return Err(src.invalid(
            &interval.span(),
            &vfield(variant, "interval_ms"),
            format!("{interval_ms} ms does not divide measure_ms = {measure_ms} into at most {INTERVALS_PER_POINT_MAX} whole intervals"),
            format!("write `interval_ms = {divisor}` or change measure_ms"),
        ));
    }
    Ok(Timing::Traffic {
        warmup_ms,
        measure_ms,
        interval_ms,
    })
}

/// The divisor of `total` closest to `wanted` (1 if nothing better).
fn divisors_near(total: u64, wanted: u64) -> u64 {
    (1..=total.min(INTERVAL_MS_MAX))
        .filter(|d| total.is_multiple_of(*d) && total / d <= INTERVALS_PER_POINT_MAX)
        .min_by_key(|d| d.abs_diff(wanted))
        .unwrap_or(1)
}

fn sweep(
    src: Source<'_>,
    id: ExperimentId,
    workload: &Workload,
    v: &RawVariant,
    variant: Variant,
    table_span: &Range<usize>,
) -> Result<Sweep, ManifestError> {
    let span = table_span.clone();
    let load_field = vfield(variant, "offered_load_ops_per_s");
    let depth_field = vfield(variant, "tree_depth");
    let tenants_field = vfield(variant, "tenants");
    if let Workload::VmCost(_) = workload {
        let why = "vm-cost has no traffic to sweep";
        forbidden(src, &v.offered_load_ops_per_s, &load_field, why)?;
        forbidden(src, &v.tree_depth, &depth_field, why)?;
        forbidden(src, &v.tenants, &tenants_field, why)?;
        return Ok(Sweep {
            offered_load_ops_per_s: Vec::new(),
            tree_depth: Vec::new(),
            tenants: Vec::new(),
        });
    }
    let load = required(src, &v.offered_load_ops_per_s, &span, &load_field)?;
    let offered_load_ops_per_s = int_list(
        src,
        load,
        &load_field,
        1,
        OFFERED_LOAD_OPS_PER_S_MAX,
        SWEEP_VALUES_MAX,
    )?;
    let tree_depth = match workload {
        Workload::Btree(_) => {
            let depth = required(src, &v.tree_depth, &span, &depth_field)?;
            int_list(
                src,
                depth,
                &depth_field,
                1,
                TREE_DEPTH_MAX,
                SWEEP_VALUES_MAX,
            )?
            .into_iter()
            .map(|d| d as u32)
            .collect()
        }
        _ => {
            forbidden(
                src,
                &v.tree_depth,
                &depth_field,
                "tree depth applies to `kind = \"btree\"` workloads only",
            )?;
            Vec::new()
        }
    };
    let tenants = match (&v.tenants, id) {
        (None, ExperimentId::OffloadScaling) => return Err(src.missing(&span, &tenants_field)),
        (None, _) => vec![TENANTS_WHEN_NOT_SWEPT],
        (Some(list), _) => int_list(src, list, &tenants_field, 1, TENANTS_MAX, SWEEP_VALUES_MAX)?
            .into_iter()
            .map(|t| t as u32)
            .collect(),
    };
    Ok(Sweep {
        offered_load_ops_per_s,
        tree_depth,
        tenants,
    })
}

fn events(
    src: Source<'_>,
    id: ExperimentId,
    timing: &Timing,
    v: &RawVariant,
    variant: Variant,
    table_span: &Range<usize>,
) -> Result<Vec<Event>, ManifestError> {
    let field = vfield(variant, "events");
    let Timing::Traffic { measure_ms, .. } = *timing else {
        forbidden(
            src,
            &v.events,
            &field,
            "vm-cost has no measured traffic phase for events",
        )?;
        return Ok(Vec::new());
    };
    let list: &[Spanned<RawEvent>] = v.events.as_ref().map_or(&[], |l| l.get_ref().as_slice());
    if list.len() > EVENTS_MAX {
        let span = v.events.as_ref().map_or(0..0, |l| l.span());
        return Err(src.invalid(
            &span,
            &field,
            format!("{} events, more than {EVENTS_MAX}", list.len()),
            "remove some events".to_string(),
        ));
    }
    let mut out = Vec::new();
    for (i, raw) in list.iter().enumerate() {
        out.push(event(src, raw, &format!("{field}[{i}]"), measure_ms)?);
    }
    let has_hog = out.iter().any(|e| matches!(e, Event::CpuHog { .. }));
    if id == ExperimentId::LoadShift && !has_hog {
        let span = v.events.as_ref().map_or(table_span.clone(), |l| l.span());
        return Err(src.invalid(
            &span,
            &field,
            "load-shift needs a CPU hog to shift load away from".to_string(),
            format!(
                "write `events = [{{ kind = \"cpu-hog\", start_ms = {}, threads = 1 }}]`",
                measure_ms / 2
            ),
        ));
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum EventKind {
    CpuHog,
    LoadStep,
}

fn event(
    src: Source<'_>,
    raw: &Spanned<RawEvent>,
    field: &str,
    measure_ms: u64,
) -> Result<Event, ManifestError> {
    let span = raw.span();
    let e = raw.get_ref();
    let kind = one_of(
        src,
        &e.kind,
        &format!("{field}.kind"),
        &[
            (EventKind::CpuHog, "cpu-hog"),
            (EventKind::LoadStep, "load-step"),
        ],
    )?;
    let sub = |key: &str| format!("{field}.{key}");
    match kind {
        EventKind::CpuHog => {
            forbidden(
                src,
                &e.at_ms,
                &sub("at_ms"),
                "a cpu-hog takes start_ms/stop_ms",
            )?;
            forbidden(
                src,
                &e.factor,
                &sub("factor"),
                "a cpu-hog takes threads, not a factor",
            )?;
            let start_ms = int(
                src,
                required(src, &e.start_ms, &span, &sub("start_ms"))?,
                &sub("start_ms"),
                0,
                measure_ms - 1,
            )?;
            let stop_ms = match &e.stop_ms {
                None => measure_ms,
                Some(stop) => int(src, stop, &sub("stop_ms"), start_ms + 1, measure_ms)?,
            };
            let threads = int(
                src,
                required(src, &e.threads, &span, &sub("threads"))?,
                &sub("threads"),
                1,
                HOG_THREADS_MAX,
            )? as u32;
            Ok(Event::CpuHog {
                start_ms,
                stop_ms,
                threads,
            })
        }
        EventKind::LoadStep => {
            forbidden(
                src,
                &e.start_ms,
                &sub("start_ms"),
                "a load-step takes at_ms",
            )?;
            forbidden(src, &e.stop_ms, &sub("stop_ms"), "a load-step takes at_ms")?;
            forbidden(
                src,
                &e.threads,
                &sub("threads"),
                "a load-step takes a factor",
            )?;
            let at_ms = int(
                src,
                required(src, &e.at_ms, &span, &sub("at_ms"))?,
                &sub("at_ms"),
                0,
                measure_ms - 1,
            )?;
            let factor = float(
                src,
                required(src, &e.factor, &span, &sub("factor"))?,
                &sub("factor"),
                LOAD_STEP_FACTOR_MIN,
                LOAD_STEP_FACTOR_MAX,
            )?;
            Ok(Event::LoadStep { at_ms, factor })
        }
    }
}

/// Repetition, then sweep values, then series: a killed run holds whole early repetitions, and
/// every series at one sweep value and repetition shares a seed.
fn expand_points(
    series: &[Series],
    sweep: &Sweep,
    repetitions: u32,
    base_seed: u64,
    tenants_swept: bool,
) -> Vec<PointPlan> {
    let loads: Vec<Option<u64>> = option_values(&sweep.offered_load_ops_per_s);
    let depths: Vec<Option<u32>> = option_values(&sweep.tree_depth);
    let tenants: Vec<u32> = if sweep.tenants.is_empty() {
        vec![TENANTS_WHEN_NOT_SWEPT]
    } else {
        sweep.tenants.clone()
    };
    let mut points = Vec::new();
    for repetition in 0..repetitions {
        for &load in &loads {
            for &depth in &depths {
                for &t in &tenants {
                    let coordinates = [
                        u64::from(repetition),
                        load.unwrap_or(0),
                        u64::from(depth.unwrap_or(0)),
                        u64::from(t),
                    ];
                    let seed = seeds::derive(base_seed, &coordinates);
                    for &s in series {
                        let index = points.len() as u32;
                        let id = point_id(
                            index,
                            s,
                            load,
                            depth,
                            tenants_swept.then_some(t),
                            repetition,
                        );
                        points.push(PointPlan {
                            id,
                            index,
                            series: s,
                            offered_load_ops_per_s: load,
                            tree_depth: depth,
                            tenants: t,
                            repetition,
                            seed,
                        });
                    }
                }
            }
        }
    }
    points
}

fn option_values<T: Copy>(values: &[T]) -> Vec<Option<T>> {
    if values.is_empty() {
        vec![None]
    } else {
        values.iter().copied().map(Some).collect()
    }
}

fn point_id(
    index: u32,
    series: Series,
    load: Option<u64>,
    depth: Option<u32>,
    tenants: Option<u32>,
    repetition: u32,
) -> String {
    let mut id = format!("{index:04}-{series}");
    if let Some(l) = load {
        id.push_str(&format!("-{l}ops"));
    }
    if let Some(d) = depth {
        id.push_str(&format!("-d{d}"));
    }
    if let Some(t) = tenants {
        id.push_str(&format!("-t{t}"));
    }
    id.push_str(&format!("-r{repetition}"));
    id
}
