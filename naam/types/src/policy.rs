//! Steering policies with their parameters: what a manifest may set (`[policy.<name>]`), what
//! the plan records and hashes, what role configurations carry and what the engine's policies
//! (`naam_engine::policy`) run.
//!
//! Every parameter has a row in its policy's table ([`Parameters::params`]): its name, its range
//! (inclusive, named constants below) and how to read and write it. Manifest validation, role
//! configuration checks and the engine use the same tables, so what `naam check` accepts is what
//! a role runs. Default values are our reconstruction or the cited papers' (see each field); a
//! plan writes every value out, defaults included.

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

pub use crate::ipipe::IpipeParams;

/// Longest queueing delay, lag or credit a parameter may name: one second.
pub const DELAY_NS_MAX: u64 = 1_000_000_000;
/// Most samples a streak, window or epoch may span.
pub const SAMPLES_MAX: u64 = 100_000;
/// Largest backoff multiplier of the adaptive policy.
pub const BACKOFF_MAX: u64 = 1 << 16;
/// A share or fraction in permille (the eSwitch's granularity: 1000 buckets).
pub const PERMILLE_MAX: u64 = 1000;
/// Largest Kayak step or RPC share, in percentage points.
pub const PERCENT_MAX: u64 = 100;
/// Largest Splinter instruction cost (ns per interpreted instruction).
pub const INSN_NS_MAX: u64 = 1_000_000;
/// Largest Splinter backlog threshold (queued messages).
pub const BACKLOG_MAX: u64 = 1_000_000;

/// The steering policies, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Static placement at the host.
    Host,
    /// Static placement at the NIC.
    Nic,
    /// Static placement at the client (one-sided reads).
    Client,
    /// NAAM's adaptive steering (our reconstruction).
    NaamAdaptive,
    /// Kayak-style throughput gradient (NSDI'21), at each client.
    Kayak,
    /// Cell-style cost estimate (ATC'16), at each client.
    Cell,
    /// Splinter-style pushback (ATC'20), at the server.
    Splinter,
    /// The iPipe baseline (SIGCOMM'19) serves every message on the NIC: iPipe's own trusted
    /// setting (one address space).
    Ipipe,
    /// The iPipe baseline with a process per tenant (the isolation distrusting tenants' native
    /// code needs).
    IpipeProcesses,
}

impl PolicyKind {
    /// Every policy, in a stable order.
    pub const ALL: [PolicyKind; 9] = [
        PolicyKind::Host,
        PolicyKind::Nic,
        PolicyKind::Client,
        PolicyKind::NaamAdaptive,
        PolicyKind::Kayak,
        PolicyKind::Cell,
        PolicyKind::Splinter,
        PolicyKind::Ipipe,
        PolicyKind::IpipeProcesses,
    ];

    /// The stable name (manifests, results, logs).
    pub const fn name(self) -> &'static str {
        match self {
            PolicyKind::Host => "host",
            PolicyKind::Nic => "nic",
            PolicyKind::Client => "client",
            PolicyKind::NaamAdaptive => "naam-adaptive",
            PolicyKind::Kayak => "kayak",
            PolicyKind::Cell => "cell",
            PolicyKind::Splinter => "splinter",
            PolicyKind::Ipipe => "ipipe",
            PolicyKind::IpipeProcesses => "ipipe-processes",
        }
    }

    /// Parses a stable name.
    pub fn from_name(name: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the policy runs at each client (Kayak, Cell) rather than at the server's
    /// controller; the server then stays at the host.
    pub fn runs_at_client(self) -> bool {
        matches!(self, PolicyKind::Kayak | PolicyKind::Cell)
    }

    /// Its parameters with their ranges (empty for static placements).
    pub fn param_ranges(self) -> Vec<(&'static str, RangeInclusive<u64>)> {
        fn ranges<C: Parameters>() -> Vec<(&'static str, RangeInclusive<u64>)> {
            C::params()
                .iter()
                .map(|p| (p.name, p.min..=p.max))
                .collect()
        }
        match self {
            PolicyKind::Host | PolicyKind::Nic | PolicyKind::Client => Vec::new(),
            PolicyKind::NaamAdaptive => ranges::<AdaptiveConfig>(),
            PolicyKind::Kayak => ranges::<KayakConfig>(),
            PolicyKind::Cell => ranges::<CellConfig>(),
            PolicyKind::Splinter => ranges::<SplinterConfig>(),
            PolicyKind::Ipipe | PolicyKind::IpipeProcesses => ranges::<IpipeParams>(),
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy with every parameter: `{"kind": "naam-adaptive", "congested_delay_ns": 500000, …}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PolicySpec {
    /// Static placement at the host.
    Host,
    /// Static placement at the NIC.
    Nic,
    /// Static placement at the client.
    Client,
    /// NAAM-adaptive.
    NaamAdaptive(AdaptiveConfig),
    /// Kayak-style.
    Kayak(KayakConfig),
    /// Cell-style.
    Cell(CellConfig),
    /// Splinter-style.
    Splinter(SplinterConfig),
    /// The iPipe baseline, trusted.
    Ipipe(IpipeParams),
    /// The iPipe baseline, a process per tenant.
    IpipeProcesses(IpipeParams),
}

impl PolicySpec {
    /// The policy `kind` with its default parameters.
    pub fn default_for(kind: PolicyKind) -> PolicySpec {
        match kind {
            PolicyKind::Host => PolicySpec::Host,
            PolicyKind::Nic => PolicySpec::Nic,
            PolicyKind::Client => PolicySpec::Client,
            PolicyKind::NaamAdaptive => PolicySpec::NaamAdaptive(AdaptiveConfig::default()),
            PolicyKind::Kayak => PolicySpec::Kayak(KayakConfig::default()),
            PolicyKind::Cell => PolicySpec::Cell(CellConfig::default()),
            PolicyKind::Splinter => PolicySpec::Splinter(SplinterConfig::default()),
            PolicyKind::Ipipe => PolicySpec::Ipipe(IpipeParams::default()),
            PolicyKind::IpipeProcesses => PolicySpec::IpipeProcesses(IpipeParams::default()),
        }
    }

    /// Which policy.
    pub fn kind(&self) -> PolicyKind {
        match self {
            PolicySpec::Host => PolicyKind::Host,
            PolicySpec::Nic => PolicyKind::Nic,
            PolicySpec::Client => PolicyKind::Client,
            PolicySpec::NaamAdaptive(_) => PolicyKind::NaamAdaptive,
            PolicySpec::Kayak(_) => PolicyKind::Kayak,
            PolicySpec::Cell(_) => PolicyKind::Cell,
            PolicySpec::Splinter(_) => PolicyKind::Splinter,
            PolicySpec::Ipipe(_) => PolicyKind::Ipipe,
            PolicySpec::IpipeProcesses(_) => PolicyKind::IpipeProcesses,
        }
    }

    /// The stable name.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// See [`PolicyKind::runs_at_client`].
    pub fn runs_at_client(&self) -> bool {
        self.kind().runs_at_client()
    }

    /// Sets parameter `name` to `value`, checking its range.
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), ParamError> {
        match self {
            PolicySpec::Host | PolicySpec::Nic | PolicySpec::Client => Err(ParamError {
                field: name.to_string(),
                problem: format!("{} has no parameters", self.name()),
            }),
            PolicySpec::NaamAdaptive(c) => c.set(name, value),
            PolicySpec::Kayak(c) => c.set(name, value),
            PolicySpec::Cell(c) => c.set(name, value),
            PolicySpec::Splinter(c) => c.set(name, value),
            PolicySpec::Ipipe(c) | PolicySpec::IpipeProcesses(c) => c.set(name, value),
        }
    }

    /// Checks every parameter's range and the relations between them.
    pub fn check(&self) -> Result<(), ParamError> {
        match self {
            PolicySpec::Host | PolicySpec::Nic | PolicySpec::Client => Ok(()),
            PolicySpec::NaamAdaptive(c) => c.check(),
            PolicySpec::Kayak(c) => c.check(),
            PolicySpec::Cell(c) => c.check(),
            PolicySpec::Splinter(c) => c.check(),
            PolicySpec::Ipipe(c) | PolicySpec::IpipeProcesses(c) => c.check(),
        }
    }
}

/// A parameter outside its range, or parameters that contradict each other.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct ParamError {
    /// The parameter (for a relation, the one to change).
    pub field: String,
    /// What is wrong and what is accepted.
    pub problem: String,
}

/// One parameter of a policy: name, inclusive range, accessors.
#[derive(Clone, Copy)]
pub struct Param<C> {
    /// The name in manifests and JSON.
    pub name: &'static str,
    /// Smallest value accepted.
    pub min: u64,
    /// Largest value accepted.
    pub max: u64,
    /// Reads it.
    pub get: fn(&C) -> u64,
    /// Writes it (the value is within `min..=max`, which fits the field's type).
    pub set: fn(&mut C, u64),
}

impl<C> fmt::Debug for Param<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}..={}", self.name, self.min, self.max)
    }
}

/// A policy's parameter set: a table of [`Param`]s and the relations between them.
pub trait Parameters: Default + Sized + 'static {
    /// Every parameter.
    fn params() -> &'static [Param<Self>];

    /// Relations between parameters (e.g. the relieved threshold below the congested one).
    fn relations(&self) -> Result<(), ParamError>;

    /// Sets `name` to `value` if it is a parameter and in range.
    fn set(&mut self, name: &str, value: u64) -> Result<(), ParamError> {
        let param = Self::params()
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ParamError {
                field: name.to_string(),
                problem: format!(
                    "is not a parameter; the parameters are {}",
                    Self::params()
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        in_range(param, value)?;
        (param.set)(self, value);
        Ok(())
    }

    /// Every parameter in range, and the relations hold.
    fn check(&self) -> Result<(), ParamError> {
        for param in Self::params() {
            in_range(param, (param.get)(self))?;
        }
        self.relations()
    }
}

fn in_range<C>(param: &Param<C>, value: u64) -> Result<(), ParamError> {
    if (param.min..=param.max).contains(&value) {
        Ok(())
    } else {
        Err(ParamError {
            field: param.name.to_string(),
            problem: format!("is {value}; it must be in {}..={}", param.min, param.max),
        })
    }
}

pub(crate) fn relation(ok: bool, field: &str, problem: &str) -> Result<(), ParamError> {
    if ok {
        Ok(())
    } else {
        Err(ParamError {
            field: field.to_string(),
            problem: problem.to_string(),
        })
    }
}

/// A [`Param`] row for field `$field` of `$config` in `$min..=$max`.
macro_rules! param {
    ($config:ty, $field:ident, $min:expr, $max:expr) => {
        Param::<$config> {
            name: stringify!($field),
            min: $min,
            max: $max,
            get: |c| u64::from(c.$field),
            // In range (checked before every call), so the value fits the field's type.
            set: |c, v| c.$field = v as _,
        }
    };
}
pub(crate) use param;

// ---- NAAM adaptive ----------------------------------------------------------------------------

/// Constants of the adaptive policy (our reconstruction; see `naam_engine::policy::Adaptive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveConfig {
    /// A location is congested when its queueing delay exceeds this (ns).
    pub congested_delay_ns: u64,
    /// ... and relieved when it is below this (ns). The gap is the hysteresis band.
    pub relieved_delay_ns: u64,
    /// Consecutive congested samples before load is moved away.
    pub congested_samples: u32,
    /// Consecutive relieved samples before load is moved back (multiplied by the backoff).
    pub relieved_samples: u32,
    /// Fraction (permille) of a congested location's share moved per decision.
    pub shed_permille: u16,
    /// Queueing delay (ns) above which congestion is severe ...
    pub severe_delay_ns: u64,
    /// ... and this larger fraction (permille) is moved per decision.
    pub shed_severe_permille: u16,
    /// Smallest move (permille of all traffic).
    pub shed_min_permille: u16,
    /// Share moved back per relieved decision (permille of all traffic).
    pub return_permille: u16,
    /// A return followed by congestion within this many samples doubles the backoff.
    pub relapse_window_samples: u32,
    /// Largest backoff multiplier.
    pub backoff_max: u32,
    /// Pushback is the last resort: host and NIC both congested for this many samples ...
    pub pushback_samples: u32,
    /// ... moves this share (permille of all traffic) to the clients per decision ...
    pub pushback_step_permille: u16,
    /// ... up to this share at most (clients are not an unlimited sink).
    pub client_share_max_permille: u16,
    /// Pushed-back load returns first, after this many relieved samples (no backoff) ...
    pub pushback_return_samples: u32,
    /// ... this much (permille) at a time.
    pub pushback_return_permille: u16,
}

impl Default for AdaptiveConfig {
    /// Our reconstruction's constants (assumptions, chosen so that with ~1 ms samples 90 % of
    /// the host's share moves within ~5 ms of sustained congestion; see the engine's policy).
    fn default() -> Self {
        AdaptiveConfig {
            congested_delay_ns: 500_000,
            relieved_delay_ns: 100_000,
            congested_samples: 3,
            relieved_samples: 10,
            shed_permille: 500,
            severe_delay_ns: 2_000_000,
            shed_severe_permille: 750,
            shed_min_permille: 50,
            return_permille: 100,
            relapse_window_samples: 50,
            backoff_max: 32,
            pushback_samples: 5,
            pushback_step_permille: 100,
            client_share_max_permille: 500,
            pushback_return_samples: 10,
            pushback_return_permille: 100,
        }
    }
}

impl Parameters for AdaptiveConfig {
    fn params() -> &'static [Param<Self>] {
        const PARAMS: [Param<AdaptiveConfig>; 16] = [
            param!(AdaptiveConfig, congested_delay_ns, 1, DELAY_NS_MAX),
            param!(AdaptiveConfig, relieved_delay_ns, 0, DELAY_NS_MAX),
            param!(AdaptiveConfig, congested_samples, 1, SAMPLES_MAX),
            param!(AdaptiveConfig, relieved_samples, 1, SAMPLES_MAX),
            param!(AdaptiveConfig, shed_permille, 1, PERMILLE_MAX),
            param!(AdaptiveConfig, severe_delay_ns, 1, DELAY_NS_MAX),
            param!(AdaptiveConfig, shed_severe_permille, 1, PERMILLE_MAX),
            param!(AdaptiveConfig, shed_min_permille, 0, PERMILLE_MAX),
            param!(AdaptiveConfig, return_permille, 1, PERMILLE_MAX),
            param!(AdaptiveConfig, relapse_window_samples, 0, SAMPLES_MAX),
            param!(AdaptiveConfig, backoff_max, 1, BACKOFF_MAX),
            param!(AdaptiveConfig, pushback_samples, 1, SAMPLES_MAX),
            param!(AdaptiveConfig, pushback_step_permille, 0, PERMILLE_MAX),
            param!(AdaptiveConfig, client_share_max_permille, 0, PERMILLE_MAX),
            param!(AdaptiveConfig, pushback_return_samples, 1, SAMPLES_MAX),
            param!(AdaptiveConfig, pushback_return_permille, 1, PERMILLE_MAX),
        ];
        &PARAMS
    }

    fn relations(&self) -> Result<(), ParamError> {
        relation(
            self.relieved_delay_ns < self.congested_delay_ns,
            "relieved_delay_ns",
            "must be below congested_delay_ns (the gap is the hysteresis band)",
        )?;
        relation(
            self.severe_delay_ns >= self.congested_delay_ns,
            "severe_delay_ns",
            "must be at least congested_delay_ns",
        )
    }
}

// ---- Kayak ------------------------------------------------------------------------------------

/// Constants of the Kayak-style policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KayakConfig {
    /// Smallest step of the RPC percentage (Kayak: 1–5 points).
    pub step_min_points: u32,
    /// Largest step.
    pub step_max_points: u32,
    /// Client samples per epoch (one gradient step per epoch).
    pub epoch_samples: u32,
    /// Starting RPC percentage.
    pub start_rpc_percent: u32,
    /// Relative throughput changes below this (permille) are noise: no step. Under open-loop
    /// load throughput follows the offered rate until something saturates, so without a dead
    /// band the gradient is a random walk.
    pub dead_band_permille: u32,
}

impl Default for KayakConfig {
    /// Kayak's 1–5 point steps (NSDI'21); epoch length, start and dead band are assumptions.
    fn default() -> Self {
        KayakConfig {
            step_min_points: 1,
            step_max_points: 5,
            epoch_samples: 5,
            start_rpc_percent: 100,
            dead_band_permille: 20,
        }
    }
}

impl Parameters for KayakConfig {
    fn params() -> &'static [Param<Self>] {
        const PARAMS: [Param<KayakConfig>; 5] = [
            param!(KayakConfig, step_min_points, 1, PERCENT_MAX),
            param!(KayakConfig, step_max_points, 1, PERCENT_MAX),
            param!(KayakConfig, epoch_samples, 1, SAMPLES_MAX),
            param!(KayakConfig, start_rpc_percent, 0, PERCENT_MAX),
            param!(KayakConfig, dead_band_permille, 0, PERMILLE_MAX),
        ];
        &PARAMS
    }

    fn relations(&self) -> Result<(), ParamError> {
        relation(
            self.step_min_points <= self.step_max_points,
            "step_min_points",
            "must be at most step_max_points",
        )
    }
}

// ---- Cell -------------------------------------------------------------------------------------

/// Constants of the Cell-style policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellConfig {
    /// A side must be cheaper by this fraction (permille) to win (hysteresis).
    pub margin_permille: u64,
    /// Share (permille) kept on the losing side so its cost estimate stays fresh.
    pub probe_permille: u16,
    /// Weight (permille) of a new observation in the moving averages.
    pub ewma_weight_permille: u64,
}

impl Default for CellConfig {
    /// Assumptions (Cell, ATC'16, publishes the mechanism, not these constants).
    fn default() -> Self {
        CellConfig {
            margin_permille: 100,
            probe_permille: 20,
            ewma_weight_permille: 250,
        }
    }
}

impl Parameters for CellConfig {
    fn params() -> &'static [Param<Self>] {
        const PARAMS: [Param<CellConfig>; 3] = [
            param!(CellConfig, margin_permille, 0, PERMILLE_MAX),
            param!(CellConfig, probe_permille, 0, PERMILLE_MAX),
            param!(CellConfig, ewma_weight_permille, 1, PERMILLE_MAX),
        ];
        &PARAMS
    }

    fn relations(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

// ---- Splinter ---------------------------------------------------------------------------------

/// Constants of the Splinter-style policy (from "Adaptive Placement for In-memory Storage
/// Functions", ATC'20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplinterConfig {
    /// Compute credit of a server-side invocation: 0.5 µs in the paper.
    pub credit_ns: u64,
    /// Our conversion of the credit to VM instructions (ns per interpreted instruction; measure
    /// it with the vm-cost experiment on the target machine).
    pub insn_ns: u64,
    /// Backlog that activates pushback: 4 queued tasks in the paper.
    pub backlog_min: u32,
    /// Lag that activates pushback: more than 1 ms between dispatcher runs in the paper; we use the
    /// queueing delay as the observable stand-in.
    pub lag_ns: u64,
}

impl Default for SplinterConfig {
    /// The paper's credit, backlog and lag; `insn_ns` is an assumption.
    fn default() -> Self {
        SplinterConfig {
            credit_ns: 500,
            insn_ns: 2,
            backlog_min: 4,
            lag_ns: 1_000_000,
        }
    }
}

impl Parameters for SplinterConfig {
    fn params() -> &'static [Param<Self>] {
        const PARAMS: [Param<SplinterConfig>; 4] = [
            param!(SplinterConfig, credit_ns, 1, DELAY_NS_MAX),
            param!(SplinterConfig, insn_ns, 1, INSN_NS_MAX),
            param!(SplinterConfig, backlog_min, 1, BACKLOG_MAX),
            param!(SplinterConfig, lag_ns, 1, DELAY_NS_MAX),
        ];
        &PARAMS
    }

    fn relations(&self) -> Result<(), ParamError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_default() -> Vec<PolicySpec> {
        PolicyKind::ALL
            .into_iter()
            .map(PolicySpec::default_for)
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        for spec in every_default() {
            spec.check()
                .unwrap_or_else(|e| panic!("{}: {e}", spec.name()));
            let json = serde_json::to_string(&spec).unwrap();
            assert!(
                json.starts_with(&format!("{{\"kind\":\"{}\"", spec.name())),
                "{json}"
            );
            let back: PolicySpec = serde_json::from_str(&json).unwrap();
            assert_eq!(back, spec);
            assert_eq!(PolicyKind::from_name(spec.name()), Some(spec.kind()));
        }
    }

    #[test]
    fn every_parameter_takes_both_ends_of_its_range() {
        fn ends<C: Parameters + Copy>() {
            for p in C::params() {
                for v in [p.min, p.max] {
                    let mut c = C::default();
                    (p.set)(&mut c, v);
                    assert_eq!((p.get)(&c), v, "{p:?} does not hold {v}");
                }
            }
        }
        ends::<AdaptiveConfig>();
        ends::<KayakConfig>();
        ends::<CellConfig>();
        ends::<SplinterConfig>();
        ends::<IpipeParams>();
    }

    #[test]
    fn set_checks_names_ranges_and_relations() {
        let mut spec = PolicySpec::default_for(PolicyKind::NaamAdaptive);
        spec.set("congested_delay_ns", 400_000).unwrap();
        assert!(matches!(spec, PolicySpec::NaamAdaptive(c) if c.congested_delay_ns == 400_000));
        let unknown = spec.set("congested_ns", 1).unwrap_err();
        assert!(unknown.problem.contains("congested_delay_ns"), "{unknown}");
        let range = spec.set("shed_permille", 1001).unwrap_err();
        assert_eq!(range.field, "shed_permille");
        spec.set("relieved_delay_ns", 400_000).unwrap();
        assert_eq!(spec.check().unwrap_err().field, "relieved_delay_ns");
        assert!(PolicySpec::Host.set("x", 1).is_err());
    }

    #[test]
    fn unknown_fields_in_json_are_refused() {
        let json =
            r#"{"kind":"splinter","credit_ns":500,"insn_ns":2,"backlog_min":4,"lag_ns":1,"x":1}"#;
        assert!(serde_json::from_str::<PolicySpec>(json).is_err());
    }
}
