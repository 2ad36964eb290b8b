//! The errors of this crate's one boundary: turning a workload description into a generator.

/// A workload configuration that cannot be generated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum YcsbError {
    /// The record count is outside what YCSB's `int` key chooser supports.
    #[error("record count {records} is outside [{min}, {max}]")]
    RecordsOutOfRange {
        /// The requested record count.
        records: u64,
        /// Smallest accepted count.
        min: u64,
        /// Largest accepted count.
        max: u64,
    },
    /// The operation count exceeds YCSB's `int` operation count.
    #[error("operation count {operations} is above {max}")]
    OperationsOutOfRange {
        /// The requested operation count.
        operations: u64,
        /// Largest accepted count.
        max: u64,
    },
    /// Records plus the keys reserved for inserts do not fit YCSB's `int` key numbers.
    #[error("key space of {keyspace} key numbers (records + expected inserts + 1) is above {max}")]
    KeyspaceTooLarge {
        /// Records + expected new keys + 1.
        keyspace: u64,
        /// Largest accepted key space.
        max: u64,
    },
    /// An operation proportion is negative or not finite.
    #[error("proportion {name}={value} must be a finite number >= 0")]
    ProportionInvalid {
        /// The property name, e.g. `readproportion`.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// Every operation proportion is zero.
    #[error("all operation proportions are zero: nothing to generate")]
    NoOperations,
    /// The scan-length bounds are empty or too large.
    #[error("scan length bounds [{min}, {max}] must satisfy 1 <= min <= max <= {limit}")]
    ScanLengthInvalid {
        /// Minimum scan length.
        min: u32,
        /// Maximum scan length.
        max: u32,
        /// Largest accepted maximum.
        limit: u32,
    },
    /// The field count is zero or too large.
    #[error("field count {fields} is outside [1, {max}]")]
    FieldCountOutOfRange {
        /// The requested field count.
        fields: u32,
        /// Largest accepted count.
        max: u32,
    },
    /// The thread index does not fit the thread count.
    #[error("thread {thread} is not below the thread count {threads} (max {max})")]
    ThreadOutOfRange {
        /// The requested thread index.
        thread: u32,
        /// The run's thread count.
        threads: u32,
        /// Largest accepted thread count.
        max: u32,
    },
    /// A distribution name that is not one of this crate's.
    #[error(
        "unknown distribution {name:?}: expected scrambled-zipfian, zipfian, uniform or latest"
    )]
    UnknownDistribution {
        /// The rejected name.
        name: String,
    },
    /// A workload name that is not one of YCSB's core workloads.
    #[error("unknown workload {name:?}: expected one of a, b, c, d, e, f")]
    UnknownWorkload {
        /// The rejected name.
        name: String,
    },
    /// A plain Zipfian over more items than this crate sums ζ for.
    #[error("plain zipfian over {items} items is above the zeta bound {max}")]
    ZipfianTooLarge {
        /// The requested item count.
        items: u64,
        /// Largest accepted item count.
        max: u64,
    },
}

/// An error while writing an operation trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The trace parameters describe no valid workload.
    #[error("invalid trace parameters: {0}")]
    Config(#[from] YcsbError),
    /// The output could not be written.
    #[error("writing the operation trace failed after {lines} lines: {source}")]
    Write {
        /// Lines (header included) written before the failure.
        lines: u64,
        /// The underlying IO error.
        source: std::io::Error,
    },
}
