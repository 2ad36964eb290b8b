//! Experiment manifests (TOML) → validated, explicit [`ExperimentPlan`]s.
//!
//! # Design
//!
//! One manifest per experiment (ARTIFACT.md lists them with the claims they test) lives at `experiments/<id>.toml`. It holds what
//! is common to both variants at the top level (testbed, roles, workload, series, seed) and what
//! differs in two tables, `[quick]` and `[full]` (durations, repetitions, sweeps, events), so
//! that every duration is in one obvious place. Loading happens in two phases, as ripgrep does
//! with its arguments:
//!
//! 1. **Parse** ([`raw`]): serde types mirroring the TOML, every value [`toml::Spanned`], no
//!    defaults. Unknown keys are rejected (`deny_unknown_fields`).
//! 2. **Validate** ([`validate`]): bounds (named constants in [`bounds`]), per-experiment rules,
//!    the few resolved defaults (named constants, written into the plan), and the expansion into
//!    points (repetition × sweep value × series) with per-point seeds derived from the base seed.
//!
//! Every error is a [`ManifestError`] naming the file, the line, the dotted field and what to
//! write instead. The plan serializes to canonical JSON (struct fields in declaration order, no
//! maps) so that a configuration hash can be taken over it (naam-results does).
//!
//! This crate reads the manifest file and, for `kind = "inventory"` testbeds, nothing else: it
//! knows nothing of processes, results or the testbed that executes the plan.

mod builder;
mod error;
mod help;
mod locate;
mod plan;
mod raw;
mod seeds;
mod sizing;
mod validate;

use std::path::{Path, PathBuf};

pub use builder::{BUILT_MANIFEST_NAME, ManifestBuilder};
pub use error::ManifestError;
pub use plan::*;
pub use seeds::derive as derive_seed;
pub use sizing::*;
pub use validate::{IPIPE_ROLE_IMPLEMENTED, TENANTS_WHEN_NOT_SWEPT, bounds};

/// The folder of the manifests, relative to the workspace root.
pub const EXPERIMENTS_DIR: &str = "experiments";

/// Longest manifest accepted, to bound parsing work.
pub const MANIFEST_BYTES_MAX: u64 = 1 << 20;

/// The manifest of experiment `id` in `experiments_dir` (both variants share the file).
pub fn manifest_path(experiments_dir: &Path, id: ExperimentId) -> PathBuf {
    experiments_dir.join(format!("{id}.toml"))
}

/// Reads and validates the manifest at `path` into the plan of `variant`.
pub fn load_manifest(path: &Path, variant: Variant) -> Result<ExperimentPlan, ManifestError> {
    let text = read_bounded(path)?;
    parse_manifest(&text, path, variant)
}

/// [`load_manifest`], with a quick plan on a machine-bound testbed (local, netns) sized by
/// `scale` (see [`LoadScale`]). Full variants, simulated and real-machine testbeds keep their
/// loads: their manifests say what they measure.
pub fn load_manifest_sized(
    path: &Path,
    variant: Variant,
    scale: Option<LoadScale>,
) -> Result<ExperimentPlan, ManifestError> {
    let text = read_bounded(path)?;
    parse_manifest_sized(&text, path, variant, scale)
}

/// Validates manifest `text`; `path` is used in messages and to resolve an inventory path.
pub fn parse_manifest(
    text: &str,
    path: &Path,
    variant: Variant,
) -> Result<ExperimentPlan, ManifestError> {
    parse_manifest_sized(text, path, variant, None)
}

/// [`parse_manifest`] with the sizing of [`load_manifest_sized`].
pub fn parse_manifest_sized(
    text: &str,
    path: &Path,
    variant: Variant,
    scale: Option<LoadScale>,
) -> Result<ExperimentPlan, ManifestError> {
    let src = error::Source { path, text };
    if let Err(e) = toml::de::DeTable::parse(text) {
        return Err(src.syntax(&e));
    }
    let raw: raw::RawManifest = toml::from_str(text).map_err(|e| src.schema(&e))?;
    validate::validate(src, raw, variant, scale)
}

/// Validates both variants: what `naam check` reports.
pub fn check_manifest(path: &Path) -> Result<[ExperimentPlan; 2], ManifestError> {
    let text = read_bounded(path)?;
    Ok([
        parse_manifest(&text, path, Variant::Quick)?,
        parse_manifest(&text, path, Variant::Full)?,
    ])
}

fn read_bounded(path: &Path) -> Result<String, ManifestError> {
    let read_error = |source: std::io::Error, help: &str| ManifestError::Read {
        path: path.to_path_buf(),
        source,
        help: help.to_string(),
    };
    let len = std::fs::metadata(path)
        .map_err(|e| read_error(e, "check the path; manifests live in experiments/<id>.toml"))?
        .len();
    if len > MANIFEST_BYTES_MAX {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{len} bytes"));
        return Err(read_error(
            e,
            &format!("a manifest is at most {MANIFEST_BYTES_MAX} bytes"),
        ));
    }
    std::fs::read_to_string(path).map_err(|e| read_error(e, "a manifest is a UTF-8 TOML file"))
}
