//! YCSB's core workloads A–F as data: operation proportions, request distribution, scan lengths.

use std::fmt;
use std::str::FromStr;

use crate::distribution::Distribution;
use crate::error::YcsbError;

/// The kind of one operation, named as in the trace CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Read all fields of one record.
    Read,
    /// Write one random field of one record.
    Update,
    /// Insert the next new record.
    Insert,
    /// Read a run of records starting at one key.
    Scan,
    /// Read one record, then write one random field of it.
    #[serde(rename = "rmw")]
    ReadModifyWrite,
}

impl OpKind {
    /// The CSV name: `read`, `update`, `insert`, `scan` or `rmw`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Update => "update",
            Self::Insert => "insert",
            Self::Scan => "scan",
            Self::ReadModifyWrite => "rmw",
        }
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Operation proportions (YCSB's `readproportion`, …); they need not sum to 1 (YCSB normalises).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Proportions {
    /// `readproportion`.
    pub read: f64,
    /// `updateproportion`.
    pub update: f64,
    /// `insertproportion`.
    pub insert: f64,
    /// `scanproportion`.
    pub scan: f64,
    /// `readmodifywriteproportion`.
    pub read_modify_write: f64,
}

impl Proportions {
    /// The proportions in YCSB's `createOperationGenerator` order, with their property names.
    pub fn in_ycsb_order(&self) -> [(OpKind, &'static str, f64); 5] {
        [
            (OpKind::Read, "readproportion", self.read),
            (OpKind::Update, "updateproportion", self.update),
            (OpKind::Insert, "insertproportion", self.insert),
            (OpKind::Scan, "scanproportion", self.scan),
            (
                OpKind::ReadModifyWrite,
                "readmodifywriteproportion",
                self.read_modify_write,
            ),
        ]
    }
}

/// How scan lengths are drawn (`scanlengthdistribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanLengthDistribution {
    /// Uniform in `[min, max]` (YCSB's default).
    Uniform,
    /// YCSB's (unscrambled) `ZipfianGenerator(min, max)`.
    Zipfian,
}

/// Largest accepted `maxscanlength` (YCSB's default is 1000).
pub const SCAN_LENGTH_MAX: u32 = 1 << 20;
/// Largest accepted `fieldcount` (YCSB's default is 10).
pub const FIELD_COUNT_MAX: u32 = 1 << 16;
/// YCSB's default `fieldcount`.
pub const FIELD_COUNT_DEFAULT: u32 = 10;

/// A CoreWorkload description: what each operation is and how keys are chosen.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkloadSpec {
    /// Operation proportions.
    pub proportions: Proportions,
    /// `requestdistribution`.
    pub request_distribution: Distribution,
    /// `minscanlength`.
    pub scan_length_min: u32,
    /// `maxscanlength`.
    pub scan_length_max: u32,
    /// `scanlengthdistribution`.
    pub scan_length_distribution: ScanLengthDistribution,
    /// `fieldcount`: updates write one field chosen uniformly among these.
    pub field_count: u32,
}

impl WorkloadSpec {
    /// Checks every bound; [`crate::OperationGenerator::new`] calls it.
    pub fn validate(&self) -> Result<(), YcsbError> {
        let mut any = false;
        for (_, name, value) in self.proportions.in_ycsb_order() {
            if !value.is_finite() || value < 0.0 {
                return Err(YcsbError::ProportionInvalid { name, value });
            }
            any |= value > 0.0;
        }
        if !any {
            return Err(YcsbError::NoOperations);
        }
        let (min, max) = (self.scan_length_min, self.scan_length_max);
        if min == 0 || min > max || max > SCAN_LENGTH_MAX {
            return Err(YcsbError::ScanLengthInvalid {
                min,
                max,
                limit: SCAN_LENGTH_MAX,
            });
        }
        if self.field_count == 0 || self.field_count > FIELD_COUNT_MAX {
            return Err(YcsbError::FieldCountOutOfRange {
                fields: self.field_count,
                max: FIELD_COUNT_MAX,
            });
        }
        Ok(())
    }
}

/// YCSB's core workloads (the `workloads/workloada` … `workloadf` property files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// Update heavy: 50 % read, 50 % update, zipfian.
    A,
    /// Read mostly: 95 % read, 5 % update, zipfian (the paper's MICA workload).
    B,
    /// Read only: 100 % read, zipfian.
    C,
    /// Read latest: 95 % read, 5 % insert, latest.
    D,
    /// Short ranges: 95 % scan (uniform length 1..=100), 5 % insert, zipfian.
    E,
    /// Read-modify-write: 50 % read, 50 % read-modify-write, zipfian.
    F,
}

impl Workload {
    /// Every core workload.
    pub const ALL: [Workload; 6] = [Self::A, Self::B, Self::C, Self::D, Self::E, Self::F];

    /// The lowercase letter.
    pub const fn name(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
            Self::C => "c",
            Self::D => "d",
            Self::E => "e",
            Self::F => "f",
        }
    }

    /// The workload file's properties; YCSB's defaults for the rest (`minscanlength=1`,
    /// `maxscanlength=1000`, uniform scan lengths, `fieldcount=10`). "zipfian" in a YCSB workload
    /// file is the scrambled Zipfian.
    pub fn spec(self) -> WorkloadSpec {
        let p = |read, update, insert, scan, read_modify_write| Proportions {
            read,
            update,
            insert,
            scan,
            read_modify_write,
        };
        let (proportions, request_distribution, scan_length_max) = match self {
            Self::A => (
                p(0.5, 0.5, 0.0, 0.0, 0.0),
                Distribution::ScrambledZipfian,
                1000,
            ),
            Self::B => (
                p(0.95, 0.05, 0.0, 0.0, 0.0),
                Distribution::ScrambledZipfian,
                1000,
            ),
            Self::C => (
                p(1.0, 0.0, 0.0, 0.0, 0.0),
                Distribution::ScrambledZipfian,
                1000,
            ),
            Self::D => (p(0.95, 0.0, 0.05, 0.0, 0.0), Distribution::Latest, 1000),
            Self::E => (
                p(0.0, 0.0, 0.05, 0.95, 0.0),
                Distribution::ScrambledZipfian,
                100,
            ),
            Self::F => (
                p(0.5, 0.0, 0.0, 0.0, 0.5),
                Distribution::ScrambledZipfian,
                1000,
            ),
        };
        WorkloadSpec {
            proportions,
            request_distribution,
            scan_length_min: 1,
            scan_length_max,
            scan_length_distribution: ScanLengthDistribution::Uniform,
            field_count: FIELD_COUNT_DEFAULT,
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = YcsbError;

    /// Accepts `a`…`f`, upper or lower case, optionally prefixed by `workload`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let letter = lower.strip_prefix("workload").unwrap_or(&lower);
        Self::ALL
            .into_iter()
            .find(|w| w.name() == letter)
            .ok_or_else(|| YcsbError::UnknownWorkload { name: s.to_owned() })
    }
}
