//! `[policy.<name>]` tables → the plan's policies: every placement or policy series gets its
//! policy with every parameter, the manifest's values over the defaults. Ranges and relations are
//! naam-types' tables, the ones role configurations are checked against.

use toml::Spanned;

use super::{int, unknown_name};
use crate::error::{ManifestError, Source, closest};
use crate::plan::{PolicyKind, PolicySpec, Series};
use crate::raw::RawPolicies;

/// The policies of `series` (in series order), with the manifest's parameters. A table for a
/// series only the other variant has (`elsewhere`) is checked on a scratch copy.
pub(super) fn policies(
    src: Source<'_>,
    raw: Option<&Spanned<RawPolicies>>,
    series: &[Series],
    elsewhere: &[Series],
) -> Result<Vec<PolicySpec>, ManifestError> {
    let with_policy: Vec<Series> = series
        .iter()
        .copied()
        .filter(|s| s.policy_kind().is_some())
        .collect();
    let mut specs: Vec<PolicySpec> = with_policy
        .iter()
        .filter_map(|s| s.policy_kind())
        .map(PolicySpec::default_for)
        .collect();
    let Some(raw) = raw else {
        return Ok(specs);
    };
    for (name, table) in raw.get_ref() {
        let (kind, slot) = policy_table(src, name, &with_policy, elsewhere)?;
        let mut scratch = PolicySpec::default_for(kind);
        let spec = match slot {
            Some(slot) => &mut specs[slot],
            None => &mut scratch,
        };
        set_params(src, name.get_ref(), table, spec)?;
    }
    Ok(specs)
}

/// The series a `[policy.<name>]` table sets — a policy with parameters among the series, or
/// a sweep series `ipipe/<label>` — with its policy and its slot (`None`: only in the other
/// variant).
fn policy_table(
    src: Source<'_>,
    name: &Spanned<String>,
    series: &[Series],
    elsewhere: &[Series],
) -> Result<(PolicyKind, Option<usize>), ManifestError> {
    let field = format!("policy.{}", toml_key(name.get_ref()));
    let names: Vec<&str> = PolicyKind::ALL.iter().map(|k| k.name()).collect();
    let named = Series::parse(name.get_ref()).filter(|s| s.policy_kind().is_some());
    let Some((named, kind)) = named.and_then(|s| Some((s, s.policy_kind()?))) else {
        return Err(unknown_name(src, name, &field, &names));
    };
    if kind.param_ranges().is_empty() {
        return Err(src.not_applicable(
            &name.span(),
            &field,
            format!("\"{kind}\" is a static placement: it has no parameters"),
            format!("remove `[{field}]`"),
        ));
    }
    if let Some(slot) = series.iter().position(|s| *s == named) {
        return Ok((kind, Some(slot)));
    }
    if elsewhere.contains(&named) {
        return Ok((kind, None));
    }
    Err(src.not_applicable(
        &name.span(),
        &field,
        format!("\"{named}\" is not in `series`"),
        format!("add \"{named}\" to `series`, or remove `[{field}]`"),
    ))
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
        let field = format!("policy.{}.{}", toml_key(policy), param.get_ref());
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
            &format!("policy.{}.{}", toml_key(policy), e.field),
            e.problem,
            parameter_help(policy),
        )
    })
}

/// A policy table's name as a TOML key: quoted when it has a `/` (`"ipipe/tail-x4"`).
fn toml_key(name: &str) -> String {
    if name.contains('/') {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

fn parameter_help(policy: &str) -> String {
    format!(
        "see experiments/SCHEMA.md, \"Policy parameters\", for {policy}'s parameters and ranges"
    )
}
