//! `[policy.<name>]` tables → the plan's policies: every placement or policy series gets its
//! policy with every parameter, the manifest's values over the defaults. Ranges and relations are
//! naam-types' tables, the ones role configurations are checked against.

use toml::Spanned;

use super::{int, unknown_name};
use crate::error::{ManifestError, Source, closest};
use crate::plan::{PolicyKind, PolicySpec, Series};
use crate::raw::RawPolicies;

/// The policies of `series` (in series order), with the manifest's parameters.
pub(super) fn policies(
    src: Source<'_>,
    raw: Option<&Spanned<RawPolicies>>,
    series: &[Series],
) -> Result<Vec<PolicySpec>, ManifestError> {
    let mut specs: Vec<PolicySpec> = series
        .iter()
        .filter_map(|s| s.policy_kind())
        .map(PolicySpec::default_for)
        .collect();
    let Some(raw) = raw else {
        return Ok(specs);
    };
    for (name, table) in raw.get_ref() {
        let kind = policy_table(src, name, &specs)?;
        let spec = specs
            .iter_mut()
            .find(|s| s.kind() == kind)
            .expect("policy_table found it among the series");
        set_params(src, name.get_ref(), table, spec)?;
    }
    Ok(specs)
}

/// The policy a `[policy.<name>]` table sets: a known policy with parameters, among the series.
fn policy_table(
    src: Source<'_>,
    name: &Spanned<String>,
    specs: &[PolicySpec],
) -> Result<PolicyKind, ManifestError> {
    let field = format!("policy.{}", name.get_ref());
    let names: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.name()).collect();
    let kind = PolicyKind::from_name(name.get_ref())
        .ok_or_else(|| unknown_name(src, name, &field, &names))?;
    if kind.param_ranges().is_empty() {
        return Err(src.not_applicable(
            &name.span(),
            &field,
            format!("\"{kind}\" is a static placement: it has no parameters"),
            format!("remove `[{field}]`"),
        ));
    }
    if !specs.iter().any(|s| s.kind() == kind) {
        return Err(src.not_applicable(
            &name.span(),
            &field,
            format!("\"{kind}\" is not in `series`"),
            format!("add \"{kind}\" to `series`, or remove `[{field}]`"),
        ));
    }
    Ok(kind)
}

/// Sets every parameter of `table` on `spec`, then checks the relations between them.
fn set_params(
    src: Source<'_>,
    policy: &str,
    table: &Spanned<std::collections::BTreeMap<Spanned<String>, Spanned<i64>>>,
    spec: &mut PolicySpec,
) -> Result<(), ManifestError> {
    let ranges = spec.kind().param_ranges();
    let names: Vec<&str> = ranges.iter().map(|(name, _)| *name).collect();
    for (param, value) in table.get_ref() {
        let field = format!("policy.{policy}.{}", param.get_ref());
        let Some((_, range)) = ranges.iter().find(|(name, _)| name == param.get_ref()) else {
            let help = match closest(param.get_ref(), &names) {
                Some(best) => format!(
                    "did you mean `{best}`? the parameters are {}",
                    names.join(", ")
                ),
                None => format!("the parameters of {policy} are {}", names.join(", ")),
            };
            return Err(src.invalid(&param.span(), &field, "unknown parameter".into(), help));
        };
        let v = int(src, value, &field, *range.start(), *range.end())?;
        spec.set(param.get_ref(), v)
            .map_err(|e| src.invalid(&value.span(), &field, e.problem, parameter_help(policy)))?;
    }
    spec.check().map_err(|e| {
        src.invalid(
            &table.span(),
            &format!("policy.{policy}.{}", e.field),
            e.problem,
            parameter_help(policy),
        )
    })
}

fn parameter_help(policy: &str) -> String {
    format!(
        "see experiments/SCHEMA.md, \"Policy parameters\", for {policy}'s parameters and ranges"
    )
}
