//! `[quick]`/`[full]`: timing, sweeps and events.

use std::ops::Range;

use toml::Spanned;

use super::bounds::*;
use super::*;
use crate::error::{ManifestError, Source};

pub(super) fn timing(
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

pub(super) fn sweep(
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
    let tenants = tenants(src, id, v, &span, &tenants_field)?;
    Ok(Sweep {
        offered_load_ops_per_s,
        tree_depth,
        tenants,
    })
}

/// The tenants a variant sweeps (offload-scaling must sweep them; others run one).
fn tenants(
    src: Source<'_>,
    id: ExperimentId,
    v: &RawVariant,
    span: &Range<usize>,
    field: &str,
) -> Result<Vec<u32>, ManifestError> {
    let max = u64::from(TENANTS_MAX);
    Ok(match (&v.tenants, id) {
        (None, ExperimentId::OffloadScaling) => return Err(src.missing(span, field)),
        (None, _) => vec![TENANTS_WHEN_NOT_SWEPT],
        (Some(list), _) => int_list(src, list, field, 1, max, SWEEP_VALUES_MAX)?
            .into_iter()
            .map(|t| t as u32)
            .collect(),
    })
}

pub(super) fn events(
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
