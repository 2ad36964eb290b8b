//! One thread's CoreWorkload transaction stream: operation, key and the draws YCSB makes between.
//!
//! The draw order per operation is `CoreWorkload.doTransaction`'s with the default properties
//! (`readallfields=true`, `writeallfields=false`, `dataintegrity=false`, constant field length):
//!
//! | operation | draws, in order |
//! |---|---|
//! | read | op, key (with redraws) |
//! | update | op, key, field, one for the value's `RandomByteIterator` constructor |
//! | insert | op, one per field for the values' `RandomByteIterator` constructors |
//! | scan | op, key, scan length |
//! | rmw | op, key, field, one for the value's `RandomByteIterator` constructor |
//!
//! so one thread reproduces a YCSB worker thread draw for draw, against a database binding that
//! never reads the random value bytes (reading them draws more, differently per binding).
//!
//! The key chooser is wired as `CoreWorkload.init` wires it: `zipfian` (scrambled) covers
//! `records + expectednewkeys + 1` key numbers, with `expectednewkeys = (int)(operations ·
//! insertproportion · 2)`, and any key number above the last inserted one is drawn again; `uniform`
//! covers the records loaded; `latest` is YCSB's `SkewedLatestGenerator`. The plain `zipfian` of
//! this crate (no YCSB counterpart) covers `records + expectednewkeys` keys with the same redraw.
//!
//! Deviations from YCSB, each only where YCSB would misbehave:
//! - a key number above the last insert is redrawn at most [`REDRAWS_MAX`] times, then folded
//!   into the inserted range (YCSB would spin on);
//! - a negative key number (`Math.abs(Long.MIN_VALUE)`, one raw draw in 2^64) is redrawn;
//! - with `threads > 1`, each thread owns its insert counter: thread `t` inserts
//!   `records + t + k·threads`, and its redraw bound and `latest` follow its own inserts (YCSB
//!   shares one counter, which no per-thread reproducible generator can).

use crate::distribution::Distribution;
use crate::error::YcsbError;
use crate::rng::TlrRng;
use crate::workload::{OpKind, ScanLengthDistribution, WorkloadSpec};
use crate::zipfian::{ScrambledZipfian, ZETA_TERMS_MAX, ZIPFIAN_CONSTANT, Zipfian};

/// Smallest record count.
pub const RECORDS_MIN: u64 = 1;
/// Largest record count: YCSB's key chooser returns `int` key numbers.
pub const RECORDS_MAX: u64 = i32::MAX as u64;
/// Largest operation count: YCSB's `operationcount` is an `int`.
pub const OPERATIONS_MAX: u64 = i32::MAX as u64;
/// Largest key space (records + expected new keys + 1): YCSB's `int` key numbers.
pub const KEYSPACE_MAX: u64 = i32::MAX as u64;
/// Largest thread count.
pub const THREADS_MAX: u32 = 1 << 16;
/// Redraws of a not-yet-inserted key number before folding it into the inserted range.
pub const REDRAWS_MAX: u32 = 1 << 16;

/// One generated operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// What to do.
    pub kind: OpKind,
    /// The key number (`"user" + fnvhash64(keynum)` is the key name).
    pub keynum: u64,
    /// The field an update or read-modify-write writes.
    pub field: Option<u32>,
    /// How many records a scan reads.
    pub scan_length: Option<u32>,
}

/// The run-level parameters shared by every thread's generator.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    /// Records loaded before the run (`recordcount`).
    pub records: u64,
    /// Operations of the whole run (`operationcount`): sizes the keys reserved for inserts.
    pub operations: u64,
    /// The workload.
    pub spec: WorkloadSpec,
}

/// One thread's operation stream (see the module docs).
#[derive(Debug, Clone)]
pub struct OperationGenerator {
    rng: TlrRng,
    ops: OpChooser,
    keys: KeyChooser,
    inserts: InsertCounter,
    scan: ScanLength,
    field_count: i64,
    distribution: Distribution,
}

impl OperationGenerator {
    /// Thread `thread` of `threads` of a run seeded with `seed` (thread streams:
    /// [`TlrRng::for_thread`]).
    pub fn new(
        config: &RunConfig,
        seed: u64,
        thread: u32,
        threads: u32,
    ) -> Result<Self, YcsbError> {
        validate(config, thread, threads)?;
        let spec = &config.spec;
        let records = config.records as i64;
        let expected_new_keys = expected_new_keys(config);
        Ok(Self {
            rng: TlrRng::for_thread(seed, u64::from(thread)),
            ops: OpChooser::new(spec),
            keys: KeyChooser::new(spec.request_distribution, records, expected_new_keys)?,
            inserts: InsertCounter::new(records, thread, threads),
            scan: ScanLength::new(spec),
            field_count: i64::from(spec.field_count),
            distribution: spec.request_distribution,
        })
    }

    /// The key distribution this generator draws from.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// The next operation of the stream.
    #[inline]
    pub fn next_operation(&mut self) -> Operation {
        let kind = self.ops.next(&mut self.rng);
        let mut op = Operation {
            kind,
            keynum: 0,
            field: None,
            scan_length: None,
        };
        match kind {
            OpKind::Read => op.keynum = self.next_keynum(),
            OpKind::Update | OpKind::ReadModifyWrite => {
                op.keynum = self.next_keynum();
                op.field = Some(self.next_field());
                self.rng.skip();
            }
            OpKind::Insert => {
                op.keynum = self.inserts.next() as u64;
                for _ in 0..self.field_count {
                    self.rng.skip();
                }
            }
            OpKind::Scan => {
                op.keynum = self.next_keynum();
                op.scan_length = Some(self.scan.next(&mut self.rng));
            }
        }
        op
    }

    /// YCSB's `nextKeynum()`: a key number among those inserted so far.
    #[inline]
    pub fn next_keynum(&mut self) -> u64 {
        let last = self.inserts.last_value();
        for _ in 0..REDRAWS_MAX {
            let keynum = self.keys.next(&mut self.rng, last);
            if (0..=last).contains(&keynum) {
                return keynum as u64;
            }
        }
        let keynum = self.keys.next(&mut self.rng, last);
        keynum.rem_euclid(last + 1) as u64
    }

    fn next_field(&mut self) -> u32 {
        java_uniform(&mut self.rng, 0, self.field_count) as u32
    }
}

fn validate(config: &RunConfig, thread: u32, threads: u32) -> Result<(), YcsbError> {
    config.spec.validate()?;
    if !(RECORDS_MIN..=RECORDS_MAX).contains(&config.records) {
        return Err(YcsbError::RecordsOutOfRange {
            records: config.records,
            min: RECORDS_MIN,
            max: RECORDS_MAX,
        });
    }
    if config.operations > OPERATIONS_MAX {
        return Err(YcsbError::OperationsOutOfRange {
            operations: config.operations,
            max: OPERATIONS_MAX,
        });
    }
    if threads == 0 || threads > THREADS_MAX || thread >= threads {
        return Err(YcsbError::ThreadOutOfRange {
            thread,
            threads,
            max: THREADS_MAX,
        });
    }
    let keyspace = config.records + expected_new_keys(config) as u64 + 1;
    if keyspace > KEYSPACE_MAX {
        return Err(YcsbError::KeyspaceTooLarge {
            keyspace,
            max: KEYSPACE_MAX,
        });
    }
    Ok(())
}

/// CoreWorkload's `expectednewkeys = (int)(opcount * insertproportion * 2.0)` (Java's saturating
/// double-to-int cast, as Rust's `as`).
fn expected_new_keys(config: &RunConfig) -> i64 {
    let insert = config.spec.proportions.insert;
    i64::from((config.operations as i32 as f64 * insert * 2.0) as i32)
}

/// YCSB's `UniformLongGenerator(lb, lb + interval − 1).nextValue()`: `Math.abs(nextLong()) %
/// interval + lb`; the one raw value Java leaves negative (`Long.MIN_VALUE`) is folded unsigned.
#[inline]
fn java_uniform(rng: &mut TlrRng, lb: i64, interval: i64) -> i64 {
    let raw = rng.next_long();
    let value = match raw.checked_abs() {
        Some(abs) => abs % interval,
        None => (raw.unsigned_abs() % interval as u64) as i64,
    };
    value + lb
}

/// YCSB's `DiscreteGenerator` over the operation kinds with a positive proportion.
///
/// The entries are kept inline, not in a `Vec`: a simulated client draws an operation per request
/// between other clients' work, and a heap array of its own was one more cache line to miss.
#[derive(Debug, Clone)]
struct OpChooser {
    /// (kind, weight / sum of weights), in YCSB's order; the first `len` are the chooser's.
    entries: [(OpKind, f64); OP_KINDS],
    len: usize,
}

/// Operation kinds YCSB weighs ([`crate::workload::Proportions::in_ycsb_order`]).
const OP_KINDS: usize = 5;

impl OpChooser {
    fn new(spec: &WorkloadSpec) -> Self {
        let mut entries = [(OpKind::Read, 0.0); OP_KINDS];
        let mut len = 0;
        for (kind, _, w) in spec.proportions.in_ycsb_order() {
            if w > 0.0 {
                entries[len] = (kind, w);
                len += 1;
            }
        }
        let sum = entries[..len].iter().fold(0.0, |s, &(_, w)| s + w);
        for entry in &mut entries[..len] {
            entry.1 /= sum;
        }
        Self { entries, len }
    }

    /// The chooser's entries.
    #[inline]
    fn entries(&self) -> &[(OpKind, f64)] {
        &self.entries[..self.len.min(OP_KINDS)]
    }

    /// Subtracts normalised weights from one uniform draw, in YCSB's order and arithmetic. Where
    /// rounding leaves the draw above every weight, YCSB throws; this returns the last kind.
    #[inline]
    fn next(&self, rng: &mut TlrRng) -> OpKind {
        let mut val = rng.next_double();
        for &(kind, pw) in self.entries() {
            if val < pw {
                return kind;
            }
            val -= pw;
        }
        self.entries()
            .last()
            .map_or(OpKind::Read, |&(kind, _)| kind)
    }
}

/// The key chooser `CoreWorkload.init` builds for each request distribution.
#[derive(Debug, Clone)]
enum KeyChooser {
    Uniform { interval: i64 },
    Scrambled(ScrambledZipfian),
    Zipfian(Zipfian),
    Latest(Zipfian),
}

impl KeyChooser {
    fn new(distribution: Distribution, records: i64, expected: i64) -> Result<Self, YcsbError> {
        let too_large = |items: i64| YcsbError::ZipfianTooLarge {
            items: items as u64,
            max: ZETA_TERMS_MAX as u64,
        };
        Ok(match distribution {
            Distribution::Uniform => Self::Uniform { interval: records },
            Distribution::ScrambledZipfian => Self::Scrambled(
                ScrambledZipfian::new(0, records + expected)
                    .ok_or(too_large(records + expected))?,
            ),
            Distribution::Zipfian => {
                let items = records + expected;
                Self::Zipfian(Zipfian::new(0, items - 1, ZIPFIAN_CONSTANT).ok_or(too_large(items))?)
            }
            // SkewedLatestGenerator: ZipfianGenerator(basis.lastValue()) = over records − 1 items.
            Distribution::Latest => Self::Latest(
                Zipfian::new(0, records - 2, ZIPFIAN_CONSTANT).ok_or(too_large(records - 1))?,
            ),
        })
    }

    /// One `keychooser.nextValue().intValue()`; `last` is the last inserted key number.
    #[inline]
    fn next(&mut self, rng: &mut TlrRng, last: i64) -> i64 {
        let value = match self {
            Self::Uniform { interval } => java_uniform(rng, 0, *interval),
            Self::Scrambled(g) => g.next_value(rng),
            Self::Zipfian(g) => g.next_value(rng),
            Self::Latest(g) => last - g.next_long(last, rng),
        };
        i64::from(value as i32)
    }
}

/// YCSB's `AcknowledgedCounterGenerator(records)` for one thread (all acknowledged at once).
#[derive(Debug, Clone)]
struct InsertCounter {
    next: i64,
    step: i64,
    last: i64,
}

impl InsertCounter {
    fn new(records: i64, thread: u32, threads: u32) -> Self {
        Self {
            next: records + i64::from(thread),
            step: i64::from(threads),
            last: records - 1,
        }
    }

    fn next(&mut self) -> i64 {
        let keynum = self.next;
        self.last = keynum;
        self.next = keynum.saturating_add(self.step);
        keynum
    }

    fn last_value(&self) -> i64 {
        self.last
    }
}

/// The scan-length generator (`scanlengthdistribution`).
#[derive(Debug, Clone)]
enum ScanLength {
    Uniform { min: i64, interval: i64 },
    Zipfian(Zipfian),
}

impl ScanLength {
    fn new(spec: &WorkloadSpec) -> Self {
        let (min, max) = (
            i64::from(spec.scan_length_min),
            i64::from(spec.scan_length_max),
        );
        match spec.scan_length_distribution {
            ScanLengthDistribution::Uniform => Self::Uniform {
                min,
                interval: max - min + 1,
            },
            // Validated: max <= SCAN_LENGTH_MAX, far below the zeta bound.
            ScanLengthDistribution::Zipfian => Zipfian::new(min, max, ZIPFIAN_CONSTANT).map_or(
                Self::Uniform {
                    min,
                    interval: max - min + 1,
                },
                Self::Zipfian,
            ),
        }
    }

    #[inline]
    fn next(&mut self, rng: &mut TlrRng) -> u32 {
        let value = match self {
            Self::Uniform { min, interval } => java_uniform(rng, *min, *interval),
            Self::Zipfian(g) => g.next_value(rng),
        };
        value.clamp(0, i64::from(u32::MAX)) as u32
    }
}
