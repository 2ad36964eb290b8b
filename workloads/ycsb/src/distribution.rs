//! The key distributions, with the stable names results record.

use std::fmt;
use std::str::FromStr;

use crate::error::YcsbError;

/// Which key distribution produced a trace. The string names are stable: results record them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// YCSB's `requestdistribution=zipfian`: Zipf(0.99) over 10^10 + 1 ranks with the hard-coded ζ,
    /// FNV-folded into the record count (much flatter than a plain Zipf(0.99) over the records).
    ScrambledZipfian,
    /// A plain Gray et al. Zipf(0.99) over the record count: key 0 is the hottest.
    Zipfian,
    /// YCSB's `requestdistribution=uniform` over the records loaded.
    Uniform,
    /// YCSB's `requestdistribution=latest`: Zipfian over the distance from the newest key.
    Latest,
}

impl Distribution {
    /// Every distribution, in a fixed order.
    pub const ALL: [Distribution; 4] = [
        Self::ScrambledZipfian,
        Self::Zipfian,
        Self::Uniform,
        Self::Latest,
    ];

    /// The stable name: `scrambled-zipfian`, `zipfian`, `uniform` or `latest`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ScrambledZipfian => "scrambled-zipfian",
            Self::Zipfian => "zipfian",
            Self::Uniform => "uniform",
            Self::Latest => "latest",
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Distribution {
    type Err = YcsbError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| YcsbError::UnknownDistribution { name: s.to_owned() })
    }
}
