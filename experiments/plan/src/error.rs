//! Manifest errors: each names the file, the line, the field, and what to write instead.
//!
//! Display format, one class per variant (tests snapshot each):
//!
//! ```text
//! experiments/mica-ycsb-b.toml:14: field `workload.slots`: 9 is not a MICA bucket size
//!   help: write `slots = 7` (one 64-byte cache line) or `slots = 15` (MICA's released build)
//! ```

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::help::field_help;
use crate::locate::{column_of, field_path_at, line_of};

/// Everything that can be wrong with a manifest.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("{}: cannot read the manifest: {source}\n  help: {help}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
        /// What to do.
        help: String,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: not valid TOML: {message}\n  help: {help}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The TOML parser's description.
        message: String,
        /// What to write instead.
        help: String,
    },
    /// A key the schema does not know (often a typo).
    #[error("{}:{line}: field `{field}`: unknown key\n  help: {help}", path.display())]
    UnknownField {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted path of the key.
        field: String,
        /// The closest known key and the keys that are allowed there.
        help: String,
    },
    /// A required key is absent.
    #[error("{}:{line}: field `{field}`: missing\n  help: {help}", path.display())]
    MissingField {
        /// The file.
        path: PathBuf,
        /// 1-based line of the table that lacks the key.
        line: usize,
        /// Dotted path of the missing key.
        field: String,
        /// An example of the line to add.
        help: String,
    },
    /// A value has the wrong TOML type (a string where a number belongs, ...).
    #[error("{}:{line}: field `{field}`: {problem}\n  help: {help}", path.display())]
    WrongType {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted path of the key.
        field: String,
        /// What was found and what was expected.
        problem: String,
        /// An example of a correct value.
        help: String,
    },
    /// A value of the right type that is out of bounds, unknown or inconsistent.
    #[error("{}:{line}: field `{field}`: {problem}\n  help: {help}", path.display())]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted path of the key.
        field: String,
        /// What is wrong with the value.
        problem: String,
        /// What to write instead.
        help: String,
    },
    /// A key that is valid in general but does not belong to this experiment or workload.
    #[error("{}:{line}: field `{field}`: {problem}\n  help: {help}", path.display())]
    NotApplicable {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted path of the key.
        field: String,
        /// Why it does not apply.
        problem: String,
        /// What to write instead.
        help: String,
    },
    /// The manifest asks for something the harness reserves but does not implement yet.
    #[error("{}:{line}: field `{field}`: {what} is not implemented yet\n  help: {help}", path.display())]
    NotImplemented {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Dotted path of the key.
        field: String,
        /// The reserved feature.
        what: String,
        /// What to use instead.
        help: String,
    },
}

impl ManifestError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ManifestError::Read { path, .. }
            | ManifestError::Syntax { path, .. }
            | ManifestError::UnknownField { path, .. }
            | ManifestError::MissingField { path, .. }
            | ManifestError::WrongType { path, .. }
            | ManifestError::InvalidValue { path, .. }
            | ManifestError::NotApplicable { path, .. }
            | ManifestError::NotImplemented { path, .. } => path,
        }
    }

    /// A stable name of the error class, for `--json` output.
    pub fn class(&self) -> &'static str {
        match self {
            ManifestError::Read { .. } => "read",
            ManifestError::Syntax { .. } => "syntax",
            ManifestError::UnknownField { .. } => "unknown-field",
            ManifestError::MissingField { .. } => "missing-field",
            ManifestError::WrongType { .. } => "wrong-type",
            ManifestError::InvalidValue { .. } => "invalid-value",
            ManifestError::NotApplicable { .. } => "not-applicable",
            ManifestError::NotImplemented { .. } => "not-implemented",
        }
    }
}

/// The file being validated, to turn spans into located errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    /// The line of the header of the table whose contents start at `span` (`[roles]`), or the
    /// line of `span` itself for inline tables and the root table.
    pub fn header_line(&self, span: &Range<usize>) -> usize {
        let start = span.start.min(self.text.len());
        let rest = self.text[start..].trim_start();
        if start == 0 || rest.starts_with('{') || rest.starts_with('[') {
            return self.line(span);
        }
        let before = &self.text[..start];
        match before
            .lines()
            .rev()
            .position(|l| l.trim_start().starts_with('['))
        {
            Some(back) => line_of(self.text, start) - back,
            None => self.line(span),
        }
    }

    pub fn invalid(
        &self,
        span: &Range<usize>,
        field: &str,
        problem: String,
        help: String,
    ) -> ManifestError {
        ManifestError::InvalidValue {
            path: self.path.to_path_buf(),
            line: self.line(span),
            field: field.to_string(),
            problem,
            help,
        }
    }

    pub fn not_applicable(
        &self,
        span: &Range<usize>,
        field: &str,
        problem: String,
        help: String,
    ) -> ManifestError {
        ManifestError::NotApplicable {
            path: self.path.to_path_buf(),
            line: self.line(span),
            field: field.to_string(),
            problem,
            help,
        }
    }

    pub fn missing(&self, span: &Range<usize>, field: &str) -> ManifestError {
        ManifestError::MissingField {
            path: self.path.to_path_buf(),
            line: self.header_line(span),
            field: field.to_string(),
            help: field_help(field),
        }
    }

    pub fn not_implemented(
        &self,
        span: &Range<usize>,
        field: &str,
        what: &str,
        help: &str,
    ) -> ManifestError {
        ManifestError::NotImplemented {
            path: self.path.to_path_buf(),
            line: self.line(span),
            field: field.to_string(),
            what: what.to_string(),
            help: help.to_string(),
        }
    }

    /// A TOML syntax error from the parser.
    pub fn syntax(&self, error: &toml::de::Error) -> ManifestError {
        let offset = error.span().map_or(0, |s| s.start);
        ManifestError::Syntax {
            path: self.path.to_path_buf(),
            line: line_of(self.text, offset),
            column: column_of(self.text, offset),
            message: first_line(error.message()),
            help: "fix the TOML at this position (strings in double quotes, one `key = value` per \
                   line, tables as `[name]`); see experiments/SCHEMA.md"
                .to_string(),
        }
    }

    /// A schema error from deserializing the TOML into the raw manifest types.
    pub fn schema(&self, error: &toml::de::Error) -> ManifestError {
        let span = error.span().unwrap_or(0..0);
        let line = line_of(self.text, span.start);
        let at = field_path_at(self.text, &span);
        let message = first_line(error.message());
        let path = self.path.to_path_buf();
        if let Some(rest) = message.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or_default();
            let field = if at.is_empty() { name.to_string() } else { at };
            return ManifestError::UnknownField {
                path,
                line,
                field,
                help: unknown_help(name, rest),
            };
        }
        if let Some(rest) = message.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or_default();
            let field = join_path(&at, name);
            let help = field_help(&field);
            let line = self.header_line(&span);
            return ManifestError::MissingField {
                path,
                line,
                field,
                help,
            };
        }
        let problem = plain_types(&message.replace("invalid type: ", "wrong type: found "));
        let help = field_help(&at);
        ManifestError::WrongType {
            path,
            line,
            field: at,
            problem,
            help,
        }
    }
}

/// serde's type names in words a manifest author uses.
fn plain_types(message: &str) -> String {
    message
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a sequence", "expected a list `[...]`")
        .replace("expected a string", "expected a string in double quotes")
}

fn join_path(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// "did you mean" from the list of expected keys in serde's message.
fn unknown_help(name: &str, rest: &str) -> String {
    let expected: Vec<&str> = rest
        .split_once("expected")
        .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    if expected.is_empty() {
        return "remove this key; this table takes no keys (see experiments/SCHEMA.md)".to_string();
    }
    let allowed = expected.join(", ");
    match closest(name, &expected) {
        Some(best) => format!("did you mean `{best}`? allowed keys here: {allowed}"),
        None => format!("remove or rename it; allowed keys here: {allowed}"),
    }
}

/// The candidate within edit distance ⌈len/3⌉ of `name`, if any.
pub(crate) fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = name.chars().count().div_ceil(3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_rejects_strangers() {
        let keys = ["measure_ms", "warmup_ms", "interval_ms"];
        assert_eq!(closest("measure_msec", &keys), Some("measure_ms"));
        assert_eq!(closest("warmupms", &keys), Some("warmup_ms"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
