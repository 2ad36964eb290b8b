//! Trace replay for `naam workload mica --trace FILE --via native|vm`.
//!
//! Input lines: `S <key-hex> <value-hex>`, `G <key-hex>`, `D <key-hex>`; blank lines and lines
//! starting with `#` are skipped. Output, one line per operation: `S ok`, `G hit <value-hex>`,
//! `G miss`, `D ok`, `D miss`. Hex is case-insensitive on input, lower-case on output.

use std::io::{BufRead, Write};

use naam_types::memory::{self, MemoryError};
use naam_types::text::{TRACE_LINE_BYTES_MAX, bounded_lines};

use crate::config::MicaConfig;
use crate::error::{OpError, OpenError};
use crate::layout::KEY_BYTES_MAX;
use crate::reader::GetOutcome;
use crate::table::{MicaRegionsMut, MicaStats, MicaTable};
use crate::vm::{MicaVm, VmError};

/// Where GETs run: `Native` is host-native Rust, `Vm` the eBPF function (the engine's type).
pub use naam_engine::local::{Via, ViaParseError};

/// One trace operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceOp {
    /// `S <key-hex> <value-hex>`.
    Set {
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// `G <key-hex>`.
    Get {
        /// Key bytes.
        key: Vec<u8>,
    },
    /// `D <key-hex>`.
    Delete {
        /// Key bytes.
        key: Vec<u8>,
    },
}

/// What is wrong with one trace line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The first field is not `S`, `G` or `D`.
    #[error("unknown operation {op:?} (expected S, G or D)")]
    UnknownOp {
        /// The first field.
        op: String,
    },
    /// The operation lacks a field.
    #[error("`{op}` needs {expected} field(s) after it, found {found}")]
    FieldCount {
        /// The operation letter.
        op: char,
        /// Fields the operation takes.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A field is not an even-length, non-empty hex string.
    #[error("{field} {text:?} is not hex bytes: {reason}")]
    BadHex {
        /// `key` or `value`.
        field: &'static str,
        /// The field as given (truncated to 40 characters).
        text: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A trace replay failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The table could not be set up.
    #[error("MICA table: {0}")]
    Table(#[from] OpenError),
    /// The table would not fit in this machine's memory (checked before allocating).
    #[error("MICA table: {0}")]
    Memory(#[from] MemoryError),
    /// `--via vm`: the engine could not be set up for the table (regions, `mica_get`).
    #[error("--via vm: {0}")]
    VmSetup(#[source] VmError),
    /// `--via vm`: the eBPF GET of a line failed.
    #[error("{source_name}:{line}: eBPF GET: {error}")]
    Vm {
        /// File name as given.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What failed.
        #[source]
        error: VmError,
    },
    /// The trace could not be read.
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
    /// A line is malformed.
    #[error("{source_name}:{line}: {error}")]
    Parse {
        /// File name as given.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        #[source]
        error: LineError,
    },
    /// A well-formed operation was refused (e.g. key or value too long).
    #[error("{source_name}:{line}: {error}")]
    Op {
        /// File name as given.
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// The refusal.
        #[source]
        error: OpError,
    },
    /// The output could not be written.
    #[error("writing the output failed: {0}")]
    Write(#[source] std::io::Error),
}

/// Counts of one replay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceSummary {
    /// SET lines.
    pub sets: u64,
    /// GET lines that hit.
    pub get_hits: u64,
    /// GET lines that missed.
    pub get_misses: u64,
    /// DELETE lines that found their key.
    pub deletes_found: u64,
    /// DELETE lines that did not.
    pub deletes_missing: u64,
    /// The writer's counters at the end (evictions etc.).
    pub table: MicaStats,
}

/// Parses one line; `Ok(None)` for blank and `#` comment lines.
pub fn parse_line(line: &str) -> Result<Option<TraceOp>, LineError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut fields = trimmed.split_ascii_whitespace();
    let op = fields.next().unwrap_or_default();
    let rest: Vec<&str> = fields.collect();
    let (letter, expected) = match op {
        "S" => ('S', 2),
        "G" => ('G', 1),
        "D" => ('D', 1),
        other => {
            return Err(LineError::UnknownOp {
                op: other.to_string(),
            });
        }
    };
    if rest.len() != expected {
        return Err(LineError::FieldCount {
            op: letter,
            expected,
            found: rest.len(),
        });
    }
    let key = decode_hex("key", rest[0])?;
    Ok(Some(match letter {
        'S' => TraceOp::Set {
            key,
            value: decode_hex("value", rest[1])?,
        },
        'G' => TraceOp::Get { key },
        _ => TraceOp::Delete { key },
    }))
}

/// Decodes a non-empty, even-length hex string.
pub fn decode_hex(field: &'static str, text: &str) -> Result<Vec<u8>, LineError> {
    let bad = |reason| LineError::BadHex {
        field,
        text: text.chars().take(40).collect(),
        reason,
    };
    if text.len() % 2 == 1 {
        return Err(bad("odd number of digits"));
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(bad("non-hex digit")),
        })
        .collect()
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lower-case hex of `bytes`, appended to `out`.
pub fn encode_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

/// The sizes a user chose, as `naam workload mica` spells them.
fn describe_sizes(config: &MicaConfig) -> String {
    format!(
        "a table of --buckets {} × --slots {} (+ {} extra buckets) and --log-bytes {}",
        config.buckets,
        config.slots.count(),
        config.extra_buckets,
        config.log_bytes
    )
}

/// Zeroed index, log and meta regions for `config`, after checking that they fit in the memory
/// available now (a size the machine cannot hold is an error naming the flags, not an abort).
fn allocate_regions(config: &MicaConfig) -> Result<[Vec<u8>; 3], TraceError> {
    let sizes = config.validate().map_err(OpenError::from)?;
    let what = describe_sizes(config);
    let lens = [sizes.index_bytes, sizes.log_bytes, sizes.meta_bytes];
    let needed_bytes = lens.iter().map(|&b| b as u64).sum();
    memory::check_available(&what, needed_bytes)?;
    let [index, log, meta] = lens.map(|len| memory::try_zeroed(&what, len));
    Ok([index?, log?, meta?])
}

/// Replays a trace against a fresh table of `config`, writing one output line per operation.
/// SET and DELETE run host-native (writes run where the data lives); GET runs where `via` says:
/// host-native Rust, or the eBPF function `mica_get` through naam-engine and naam-vm over the same
/// region bytes ([`MicaVm`]). Both print the same lines for the same trace. `source_name` names
/// the input in errors, which carry the 1-based line number.
pub fn run_trace<R: BufRead, W: Write>(
    source_name: &str,
    input: R,
    config: MicaConfig,
    via: Via,
    out: &mut W,
) -> Result<TraceSummary, TraceError> {
    let [mut index, mut log, mut meta] = allocate_regions(&config)?;
    let mut vm = match via {
        Via::Native => None,
        Via::Vm => Some(MicaVm::new(config).map_err(TraceError::VmSetup)?),
    };
    let regions = MicaRegionsMut {
        index: &mut index,
        log: &mut log,
        meta: &mut meta,
    };
    let mut table = MicaTable::format(config, regions)?;
    let mut summary = TraceSummary::default();
    let mut value = Vec::new();
    let mut line_out = String::new();
    for (n, line) in bounded_lines(input, TRACE_LINE_BYTES_MAX).enumerate() {
        let at = Where {
            source_name,
            line: n + 1,
        };
        let text = line.map_err(|error| TraceError::Read {
            source_name: source_name.to_string(),
            line: at.line,
            error,
        })?;
        let op = parse_line(&text).map_err(|error| TraceError::Parse {
            source_name: source_name.to_string(),
            line: at.line,
            error,
        })?;
        let Some(op) = op else { continue };
        line_out.clear();
        match op {
            TraceOp::Set { key, value: v } => {
                table.set(&key, &v).map_err(|e| at.op(e))?;
                summary.sets += 1;
                line_out.push_str("S ok");
            }
            TraceOp::Get { key } => {
                let outcome = match vm.as_mut() {
                    None => table.get_into(&key, &mut value).map_err(|e| at.op(e))?,
                    Some(vm) => vm_get(vm, &table, &key, &mut value, at)?,
                };
                match outcome {
                    GetOutcome::Hit => {
                        summary.get_hits += 1;
                        line_out.push_str("G hit ");
                        encode_hex(&value, &mut line_out);
                    }
                    GetOutcome::Miss => {
                        summary.get_misses += 1;
                        line_out.push_str("G miss");
                    }
                }
            }
            TraceOp::Delete { key } => {
                let found = table.delete(&key).map_err(|e| at.op(e))?;
                if found {
                    summary.deletes_found += 1;
                } else {
                    summary.deletes_missing += 1;
                }
                line_out.push_str(if found { "D ok" } else { "D miss" });
            }
        }
        line_out.push('\n');
        out.write_all(line_out.as_bytes())
            .map_err(TraceError::Write)?;
    }
    summary.table = *table.stats();
    Ok(summary)
}

/// A trace line's position, for errors.
#[derive(Debug, Clone, Copy)]
struct Where<'a> {
    source_name: &'a str,
    line: usize,
}

impl Where<'_> {
    fn op(self, error: OpError) -> TraceError {
        TraceError::Op {
            source_name: self.source_name.to_string(),
            line: self.line,
            error,
        }
    }
}

/// The eBPF GET of one trace line. A key too long is refused with the native path's error, so
/// both paths fail alike on the same trace.
fn vm_get(
    vm: &mut MicaVm,
    table: &MicaTable<'_>,
    key: &[u8],
    value: &mut Vec<u8>,
    at: Where<'_>,
) -> Result<GetOutcome, TraceError> {
    if key.len() > KEY_BYTES_MAX {
        return Err(at.op(OpError::KeyTooLong {
            key_bytes: key.len(),
        }));
    }
    match vm.get(&mut table.regions(), key, value) {
        Ok(get) => Ok(get.outcome),
        Err(error) => Err(TraceError::Vm {
            source_name: at.source_name.to_string(),
            line: at.line,
            error,
        }),
    }
}
