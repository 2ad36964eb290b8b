//! `[workload]`: MICA, B-tree and vm-cost keys.

use toml::Spanned;

use super::bounds::*;
use super::*;
use crate::error::{ManifestError, Source};
use crate::help::field_help;

#[derive(Clone, Copy, PartialEq)]
enum WorkloadKind {
    Mica,
    Btree,
    VmCost,
}

pub(super) fn workload(
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
    let buckets_value = int(src, buckets, "workload.buckets", 1, u64::from(BUCKETS_MAX))?;
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
    let log_bytes = log_bytes(src, table)?;
    let letters = YcsbWorkload::ALL.map(|w| (w, w.name()));
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
            KEY_BYTES_MAX as u64,
        )? as u32,
        value_bytes: int(
            src,
            required(src, &raw.value_bytes, &span, "workload.value_bytes")?,
            "workload.value_bytes",
            1,
            VALUE_BYTES_MAX as u64,
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
            &MANIFEST_DISTRIBUTIONS,
        )?,
        buckets: buckets_value,
        slots: *slots.get_ref() as u32,
        log_bytes,
        tenant_programs: tenant_programs(src, raw)?,
    })
}

/// `log_bytes`: within bounds and a multiple of 8.
fn log_bytes(src: Source<'_>, table: &Spanned<RawWorkload>) -> Result<u64, ManifestError> {
    let field = "workload.log_bytes";
    let log = required(src, &table.get_ref().log_bytes, &table.span(), field)?;
    let log_bytes = int(src, log, field, LOG_BYTES_MIN, LOG_BYTES_MAX)?;
    if !log_bytes.is_multiple_of(8) {
        return Err(src.invalid(
            &log.span(),
            field,
            format!("{log_bytes} is not a multiple of 8"),
            format!("write `log_bytes = {}`", log_bytes.next_multiple_of(8)),
        ));
    }
    Ok(log_bytes)
}

/// `tenant_programs`: shared unless the manifest says otherwise.
fn tenant_programs(src: Source<'_>, raw: &RawWorkload) -> Result<TenantPrograms, ManifestError> {
    raw.tenant_programs
        .as_ref()
        .map_or(Ok(TenantPrograms::Shared), |value| {
            one_of(src, value, "workload.tenant_programs", &TenantPrograms::ALL)
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
    forbidden(src, &raw.tenant_programs, "workload.tenant_programs", why)?;
    forbidden(src, &raw.functions, "workload.functions", why)?;
    let node = required(src, &raw.node_bytes, &span, "workload.node_bytes")?;
    let node_bytes = int(
        src,
        node,
        "workload.node_bytes",
        u64::from(NODE_BYTES_MIN),
        u64::from(NODE_BYTES_MAX),
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
            &MANIFEST_DISTRIBUTIONS,
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
    forbidden(src, &raw.tenant_programs, "workload.tenant_programs", why)?;
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
