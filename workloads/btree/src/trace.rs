//! File replay for `naam workload btree --load FILE --lookups FILE --via native|vm`.
//!
//! The load file has lines `key,value` (decimal u64; any order, no duplicate keys); the lookups
//! file one decimal key per line. Blank lines are skipped, and an optional header line (`key,value`
//! or `key`) is allowed as the first line. The output is CSV `key,found,value` with a header, one
//! line per lookup in input order; `value` is empty when the key is not found.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, Write};

use naam_types::text::{TRACE_LINE_BYTES_MAX, bounded_lines};

use crate::config::BTreeConfig;
use crate::error::{BuildError, LookupError};
use crate::layout::NODE_BYTES_DEFAULT;
use crate::reader::{BTreeReader, Superblock};
use crate::tree::BTree;
use crate::vm::{BTreeVm, VmError};

/// Default bulk-load fill of the CLI (Cell-style trees are bulk loaded full; 100 % leaves no
/// room for inserts, so we leave some).
pub const FILL_PERCENT_DEFAULT: u8 = 90;

/// Where lookups run: `Native` is host-native Rust, `Vm` the eBPF function (the engine's type).
pub use naam_engine::local::{Via, ViaParseError};

/// How to build the tree for a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Bytes per node.
    pub node_bytes: u32,
    /// Bulk-load fill, percent of a node's capacity.
    pub fill_percent: u8,
    /// Where lookups run.
    pub via: Via,
}

impl ReplayOptions {
    /// 1 KB nodes, `FILL_PERCENT_DEFAULT`, native.
    pub fn new() -> Self {
        ReplayOptions {
            node_bytes: NODE_BYTES_DEFAULT,
            fill_percent: FILL_PERCENT_DEFAULT,
            via: Via::Native,
        }
    }
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What is wrong with one input line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A load line is not `key,value`.
    #[error("expected `key,value`, found {text:?}")]
    NotAPair {
        /// The line (truncated to 60 characters).
        text: String,
    },
    /// A field is not a decimal u64.
    #[error("{field} {text:?} is not a decimal u64")]
    NotANumber {
        /// `key` or `value`.
        field: &'static str,
        /// The field (truncated to 40 characters).
        text: String,
    },
    /// A key appears twice in the load file.
    #[error("key {key} was already loaded at line {first_line}")]
    DuplicateKey {
        /// The key.
        key: u64,
        /// The line of its first occurrence.
        first_line: usize,
    },
}

/// A replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// `--via vm`: the engine could not be set up for the tree (region, `btree_lookup`).
    #[error("--via vm: {0}")]
    VmSetup(#[source] VmError),
    /// An input could not be read.
    #[error("{source_name}:{line}: read failed: {error}")]
    Read {
        /// File name as given.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The IO error.
        #[source]
        error: std::io::Error,
    },
    /// An input line is malformed.
    #[error("{source_name}:{line}: {error}")]
    Line {
        /// File name as given.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        #[source]
        error: LineError,
    },
    /// The tree could not be built from the load file.
    #[error("{source_name}: building the B-tree: {error}")]
    Build {
        /// The load file's name as given.
        source_name: String,
        /// The failure.
        #[source]
        error: BuildError,
    },
    /// A host-native lookup failed (corrupt tree).
    #[error("{source_name}:{line}: lookup of key {key}: {error}")]
    Lookup {
        /// The lookups file's name as given.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The key.
        key: u64,
        /// The failure.
        #[source]
        error: LookupError,
    },
    /// An eBPF lookup failed.
    #[error("{source_name}:{line}: eBPF lookup of key {key}: {error}")]
    Vm {
        /// The lookups file's name as given.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The key.
        key: u64,
        /// The failure.
        #[source]
        error: VmError,
    },
    /// The output could not be written.
    #[error("writing the output failed: {0}")]
    Write(#[source] std::io::Error),
}

/// Counts of one replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Pairs loaded.
    pub loaded: u64,
    /// Lookups that found their key.
    pub found: u64,
    /// Lookups that did not.
    pub not_found: u64,
    /// Levels of the tree.
    pub height: usize,
    /// Nodes used, superblock included.
    pub nodes_used: u64,
}

fn line_error(source_name: &str, line: usize, error: LineError) -> ReplayError {
    ReplayError::Line {
        source_name: source_name.to_string(),
        line,
        error,
    }
}

fn parse_u64(field: &'static str, text: &str) -> Result<u64, LineError> {
    let text = text.trim();
    text.parse().map_err(|_| LineError::NotANumber {
        field,
        text: text.chars().take(40).collect(),
    })
}

/// Non-blank lines of `input` with their 1-based numbers, skipping a first-line `header`.
fn data_lines<R: BufRead>(
    source_name: &str,
    input: R,
    header: &'static str,
) -> impl Iterator<Item = Result<(usize, String), ReplayError>> {
    bounded_lines(input, TRACE_LINE_BYTES_MAX)
        .enumerate()
        .filter_map(move |(n, line)| match line {
            Err(error) => Some(Err(ReplayError::Read {
                source_name: source_name.to_string(),
                line: n + 1,
                error,
            })),
            Ok(text) if text.trim().is_empty() || (n == 0 && text.trim() == header) => None,
            Ok(text) => Some(Ok((n + 1, text))),
        })
}

/// Reads a load file into pairs sorted by key.
pub fn read_load<R: BufRead>(source_name: &str, input: R) -> Result<Vec<(u64, u64)>, ReplayError> {
    let mut first_line: HashMap<u64, usize> = HashMap::new();
    let mut pairs = Vec::new();
    for line in data_lines(source_name, input, "key,value") {
        let (line_no, text) = line?;
        let at = |error| line_error(source_name, line_no, error);
        let (key, value) = text.split_once(',').ok_or_else(|| {
            at(LineError::NotAPair {
                text: text.chars().take(60).collect(),
            })
        })?;
        let key = parse_u64("key", key).map_err(at)?;
        let value = parse_u64("value", value).map_err(at)?;
        if let Some(&first_line) = first_line.get(&key) {
            return Err(at(LineError::DuplicateKey { key, first_line }));
        }
        first_line.insert(key, line_no);
        pairs.push((key, value));
    }
    pairs.sort_unstable_by_key(|p| p.0);
    Ok(pairs)
}

/// Builds a tree from the load file and writes one CSV line per lookup. Lookups run where
/// `options.via` says: host-native Rust, or the eBPF function `btree_lookup` through
/// naam-engine and naam-vm over the same region bytes ([`BTreeVm`]); both print the same lines.
/// `load.0` and `lookups.0` name the inputs in errors, which carry the 1-based line number.
pub fn run_replay<L: BufRead, K: BufRead, W: Write>(
    load: (&str, L),
    lookups: (&str, K),
    options: ReplayOptions,
    out: &mut W,
) -> Result<ReplaySummary, ReplayError> {
    let pairs = read_load(load.0, load.1)?;
    let (nodes, sb) = build_region(&pairs, options).map_err(|error| ReplayError::Build {
        source_name: load.0.to_string(),
        error,
    })?;
    let mut summary = ReplaySummary {
        loaded: pairs.len() as u64,
        height: sb.height,
        nodes_used: sb.nodes_used,
        ..ReplaySummary::default()
    };
    let (source_name, input) = lookups;
    let at = |line, key| (source_name.to_string(), line, key);
    match options.via {
        Via::Native => {
            let reader = BTreeReader::from_checked(&nodes, sb.node_bytes);
            replay_lookups((source_name, input), out, &mut summary, |line, key| {
                reader.get(key).map_err(|error| {
                    let (source_name, line, key) = at(line, key);
                    ReplayError::Lookup {
                        source_name,
                        line,
                        key,
                        error,
                    }
                })
            })?;
        }
        Via::Vm => {
            let mut vm = BTreeVm::new(nodes).map_err(ReplayError::VmSetup)?;
            replay_lookups((source_name, input), out, &mut summary, |line, key| {
                vm.lookup(key).map(|found| found.value).map_err(|error| {
                    let (source_name, line, key) = at(line, key);
                    ReplayError::Vm {
                        source_name,
                        line,
                        key,
                        error,
                    }
                })
            })?;
        }
    }
    Ok(summary)
}

/// Writes the CSV header and one row per lookup, found by `lookup(line, key)`.
fn replay_lookups<K: BufRead, W: Write>(
    lookups: (&str, K),
    out: &mut W,
    summary: &mut ReplaySummary,
    mut lookup: impl FnMut(usize, u64) -> Result<Option<u64>, ReplayError>,
) -> Result<(), ReplayError> {
    out.write_all(b"key,found,value\n")
        .map_err(ReplayError::Write)?;
    let (source_name, input) = lookups;
    let mut row = String::new();
    for line in data_lines(source_name, input, "key") {
        let (line_no, text) = line?;
        let key = parse_u64("key", &text).map_err(|e| line_error(source_name, line_no, e))?;
        row.clear();
        match lookup(line_no, key)? {
            Some(value) => {
                summary.found += 1;
                let _ = writeln!(row, "{key},true,{value}");
            }
            None => {
                summary.not_found += 1;
                let _ = writeln!(row, "{key},false,");
            }
        }
        out.write_all(row.as_bytes()).map_err(ReplayError::Write)?;
    }
    Ok(())
}

/// Bulk loads `pairs` into a region sized for them; returns the region and its superblock.
fn build_region(
    pairs: &[(u64, u64)],
    options: ReplayOptions,
) -> Result<(Vec<u8>, Superblock), BuildError> {
    BTreeConfig {
        node_bytes: options.node_bytes,
        nodes_max: 2,
    }
    .validate()?;
    let nodes_max = BTreeConfig::nodes_for_bulk_load(
        options.node_bytes,
        pairs.len() as u64,
        options.fill_percent,
    )
    .ok_or(BuildError::FillPercent {
        fill_percent: options.fill_percent,
    })?;
    let config = BTreeConfig {
        node_bytes: options.node_bytes,
        nodes_max: nodes_max.max(2),
    };
    let mut nodes = vec![0u8; config.validate()?];
    let sb = BTree::bulk_load(config, &mut nodes, pairs, options.fill_percent)?.superblock();
    Ok((nodes, sb))
}
