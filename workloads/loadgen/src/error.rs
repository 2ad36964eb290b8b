//! Errors, one enum per boundary: configuration, recording, interval-log IO.

/// A load-generator configuration that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The rate steps are not increasing in time, have factors out of range, or are too many.
    #[error("rate steps: {reason}")]
    RateStepsInvalid {
        /// What is wrong.
        reason: String,
    },
    /// The offered rate is not a finite number within bounds.
    #[error("offered rate {rate_per_s} req/s is outside [{min}, {max}]")]
    RateOutOfRange {
        /// The requested rate.
        rate_per_s: f64,
        /// Smallest accepted rate.
        min: f64,
        /// Largest accepted rate.
        max: f64,
    },
    /// The closed-loop window is zero or too large.
    #[error("closed-loop window {window} is outside [1, {max}]")]
    WindowOutOfRange {
        /// The requested window.
        window: u32,
        /// Largest accepted window.
        max: u32,
    },
    /// The histogram interval is outside its bounds.
    #[error("interval {interval_ns} ns is outside [{min}, {max}] ns")]
    IntervalOutOfRange {
        /// The requested interval.
        interval_ns: u64,
        /// Smallest accepted interval.
        min: u64,
        /// Largest accepted interval.
        max: u64,
    },
    /// The run (warm-up + measurement) is empty or too long.
    #[error("run of warm-up {warmup_ns} ns + measurement {measure_ns} ns is outside (0, {max}] ns")]
    DurationOutOfRange {
        /// Warm-up length.
        warmup_ns: u64,
        /// Measurement length.
        measure_ns: u64,
        /// Largest accepted total.
        max: u64,
    },
    /// The request bound is zero or too large.
    #[error("request bound {requests} is outside [1, {max}]")]
    RequestsOutOfRange {
        /// The requested bound.
        requests: u64,
        /// Largest accepted bound.
        max: u64,
    },
    /// The in-flight bound is zero or too large.
    #[error("in-flight bound {inflight} is outside [1, {max}]")]
    InflightOutOfRange {
        /// The requested bound.
        inflight: u32,
        /// Largest accepted bound.
        max: u32,
    },
    /// A validity threshold is negative or not finite.
    #[error("threshold {name}={value} must be finite and >= 0")]
    ThresholdInvalid {
        /// The threshold's name.
        name: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A tag name is empty, too long, repeated, or uses characters the interval log cannot carry.
    #[error("tag {name:?} is invalid: {reason}")]
    TagInvalid {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The tag set is empty or too large.
    #[error("tag set of {count} tags is outside [1, {max}]")]
    TagCountOutOfRange {
        /// The number of tags given.
        count: usize,
        /// Largest accepted count.
        max: usize,
    },
}

/// A completion that cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The completion precedes the request's intended send time.
    #[error(
        "request {seq} completed at {done_ns} ns, before its intended send at {intended_ns} ns"
    )]
    CompletedBeforeIntended {
        /// The request's sequence number.
        seq: u64,
        /// Intended send time.
        intended_ns: u64,
        /// Completion time.
        done_ns: u64,
    },
    /// The clock went backwards: a time earlier than one already seen.
    #[error("time {now_ns} ns precedes {seen_ns} ns already seen")]
    TimeWentBackwards {
        /// The offending time.
        now_ns: u64,
        /// The latest time already seen.
        seen_ns: u64,
    },
    /// A tag id that is not in the recorder's tag set.
    #[error("tag id {tag} is not below the tag count {count}")]
    UnknownTag {
        /// The offending tag id.
        tag: u8,
        /// Tags in the set.
        count: usize,
    },
    /// More completions than requests in flight.
    #[error("request {seq} completed but no request is in flight")]
    NothingInFlight {
        /// The request's sequence number.
        seq: u64,
    },
}

/// An interval log that cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    /// Writing failed.
    #[error("writing the interval log failed: {source}")]
    Write {
        /// The IO error.
        source: std::io::Error,
    },
    /// A histogram could not be encoded.
    #[error("encoding the histogram of interval {interval_start_ns} ns failed: {detail}")]
    Encode {
        /// The interval's start.
        interval_start_ns: u64,
        /// The serializer's message.
        detail: String,
    },
    /// A line of the log could not be parsed.
    #[error("interval log line {line}: {detail}")]
    Parse {
        /// 1-based line number (0 when unknown).
        line: usize,
        /// What was wrong.
        detail: String,
    },
    /// A histogram payload could not be decoded.
    #[error("interval log entry {entry}: histogram payload does not decode: {detail}")]
    Decode {
        /// 0-based index of the interval entry.
        entry: usize,
        /// What was wrong.
        detail: String,
    },
}
