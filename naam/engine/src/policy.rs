//! Steering policies: static placements, NAAM's adaptive policy, and three related-work policies
//! for comparison. NAAM's own control law is not published (only its abstract is); the adaptive
//! policy below is our reconstruction of "shift load within tens of milliseconds of host compute
//! congestion" and is documented constant by constant. The related-work policies follow the facts
//! in ARTIFACT.md §F9 (Kayak NSDI'21, Cell ATC'16, Splinter/adaptive placement ATC'20).

use crate::control::{ClientSample, Decision, LoadView, Policy};
use crate::ids::{Location, Nanos};
use crate::steer::{BUCKETS, Shares};
use crate::wire::LoadSample;

pub use naam_types::policy::{
    AdaptiveConfig, CellConfig, KayakConfig, ParamError, Parameters, PolicyKind, PolicySpec,
    SplinterConfig,
};

/// Every policy name [`by_name`] knows, in a stable order.
pub const POLICY_NAMES: [&str; 9] = [
    PolicyKind::Host.name(),
    PolicyKind::Nic.name(),
    PolicyKind::Client.name(),
    PolicyKind::NaamAdaptive.name(),
    PolicyKind::Kayak.name(),
    PolicyKind::Cell.name(),
    PolicyKind::Splinter.name(),
    PolicyKind::Ipipe.name(),
    PolicyKind::IpipeProcesses.name(),
];

/// A policy name [`by_name`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy {name:?}; known policies: {}", POLICY_NAMES.join(", "))]
pub struct UnknownPolicy {
    /// The name given.
    pub name: String,
}

/// The policy called `name`, with its default configuration.
pub fn by_name(name: &str) -> Result<Box<dyn Policy>, UnknownPolicy> {
    let kind = PolicyKind::from_name(name).ok_or_else(|| UnknownPolicy {
        name: name.to_string(),
    })?;
    Ok(build(&PolicySpec::default_for(kind)))
}

/// The policy `spec` describes, with its parameters.
pub fn build(spec: &PolicySpec) -> Box<dyn Policy> {
    match *spec {
        PolicySpec::Host => Box::new(Static::new("host", Shares::HOST)),
        PolicySpec::Nic => Box::new(Static::new("nic", Shares::NIC)),
        PolicySpec::Client => Box::new(Static::new("client", Shares::CLIENT)),
        PolicySpec::NaamAdaptive(config) => Box::new(Adaptive::new(config)),
        PolicySpec::Kayak(config) => Box::new(Kayak::new(config)),
        PolicySpec::Cell(config) => Box::new(CellCost::new(config)),
        PolicySpec::Splinter(config) => Box::new(Splinter::new(config)),
        // The iPipe baseline serves every message on the NIC (where its runtime is); its own
        // management core, not this controller, moves actors to the host and back.
        PolicySpec::Ipipe(_) => Box::new(Static::new("ipipe", Shares::NIC)),
        PolicySpec::IpipeProcesses(_) => Box::new(Static::new("ipipe-processes", Shares::NIC)),
    }
}

/// Where a policy runs: at the server controller (host/NIC samples) or at each client.
pub fn runs_at_client(name: &str) -> bool {
    PolicyKind::from_name(name).is_some_and(PolicyKind::runs_at_client)
}

// ---- static -----------------------------------------------------------------------------------

/// A fixed placement.
#[derive(Debug, Clone, Copy)]
pub struct Static {
    name: &'static str,
    shares: Shares,
}

impl Static {
    /// Always `shares`.
    pub fn new(name: &'static str, shares: Shares) -> Static {
        Static { name, shares }
    }
}

impl Policy for Static {
    fn name(&self) -> &'static str {
        self.name
    }

    fn initial(&self) -> Decision {
        Decision {
            shares: self.shares,
            pushback_credit_insn: None,
            reason: "static placement",
        }
    }

    fn decide(&mut self, _now: Nanos, _view: &LoadView, _current: &Decision) -> Option<Decision> {
        None
    }
}

// ---- NAAM adaptive ----------------------------------------------------------------------------

/// NAAM-adaptive (reconstruction). Home is the host. Decisions are taken once per host sample.
/// When the host's queueing delay stays above
/// `congested_delay_ns` for `congested_samples` samples, half of the host's share moves to the
/// NIC at every sample (with ~1 ms samples, 90 % moves in ~5 ms), three quarters while the delay
/// is severe (above `severe_delay_ns`; 90 % then moves in ~2 ms); a congested NIC alone sends
/// load back to the host. Pushback to clients is the last resort: only when host and NIC have
/// both been congested for `pushback_samples`, in small steps, up to a bounded client share, and
/// it is the first load taken back. Load returns home from the NIC in small additive steps only
/// after `relieved_samples` relieved samples, and a return that is followed by renewed
/// congestion within `relapse_window_samples` doubles that wait (exponential backoff), so a
/// persistent hog does not make the policy flap. A return that holds until the next one halves
/// the wait again, and one that holds for a whole relapse window restores the base wait, so load
/// comes home at the base pace once the hog is gone. Samples between the two thresholds neither
/// move load nor restart the count of relieved samples (only congestion does).
#[derive(Debug, Clone)]
pub struct Adaptive {
    config: AdaptiveConfig,
    host: Streak,
    nic: Streak,
    backoff: u32,
    samples_since_return: Option<u32>,
    severe: bool,
}

/// Consecutive congested / relieved samples of one location.
#[derive(Debug, Clone, Copy, Default)]
struct Streak {
    congested: u32,
    relieved: u32,
    last_at: Option<Nanos>,
}

impl Streak {
    /// Counts `sample` if it is new; returns whether it was.
    fn observe(&mut self, sample: Option<&LoadSample>, config: &AdaptiveConfig) -> bool {
        let Some(sample) = sample.filter(|s| Some(s.at) != self.last_at) else {
            return false;
        };
        self.last_at = Some(sample.at);
        let delay = sample.queue_delay_ns;
        if delay > config.congested_delay_ns {
            self.congested += 1;
            self.relieved = 0;
        } else if delay < config.relieved_delay_ns {
            self.relieved += 1;
            self.congested = 0;
        } else {
            // In the band: neither congested nor relieved. It breaks a congestion streak but not
            // a relieved one: on a noisy machine in-band samples come every few samples, and
            // resetting on them would keep load away from a host that is not congested.
            self.congested = 0;
        }
        true
    }
}

impl Adaptive {
    /// A policy with `config`.
    pub fn new(config: AdaptiveConfig) -> Adaptive {
        Adaptive {
            config,
            host: Streak::default(),
            nic: Streak::default(),
            backoff: 1,
            samples_since_return: None,
            severe: false,
        }
    }

    fn shed(&self, shares: Shares, from: Location, to: Location) -> Shares {
        let share = u32::from(shares.of(from));
        let fraction = if self.severe {
            self.config.shed_severe_permille
        } else {
            self.config.shed_permille
        };
        let amount =
            (share * u32::from(fraction) / 1000).max(u32::from(self.config.shed_min_permille));
        shares.shift(from, to, amount.min(u32::from(BUCKETS)) as u16)
    }

    fn note_congestion(&mut self) {
        if self
            .samples_since_return
            .is_some_and(|n| n <= self.config.relapse_window_samples)
        {
            self.backoff = (self.backoff * 2).min(self.config.backoff_max);
        }
        self.samples_since_return = None;
    }

    fn give_back(&mut self, shares: Shares) -> Option<(Shares, &'static str)> {
        if self.nic.congested > 0 {
            return None;
        }
        let config = &self.config;
        let (from, wait, step, reason) = if shares.of(Location::Client) > 0 {
            (
                Location::Client,
                config.pushback_return_samples,
                config.pushback_return_permille,
                "relieved: take back pushed-back load",
            )
        } else if shares.of(Location::Nic) > 0 {
            let wait = config.relieved_samples.saturating_mul(self.backoff);
            (
                Location::Nic,
                wait,
                config.return_permille,
                "host relieved: return load from NIC",
            )
        } else {
            return None;
        };
        if self.host.relieved < wait {
            return None;
        }
        self.host.relieved = 0;
        if from == Location::Nic {
            if self.samples_since_return.is_some() {
                // The previous return held until this one: halve the wait.
                self.backoff = (self.backoff / 2).max(1);
            }
            self.samples_since_return = Some(0);
        }
        Some((shares.shift(from, Location::Host, step), reason))
    }

    /// Moves up to a pushback step to the clients, from the host first, never past the clients'
    /// maximum share.
    fn push_back(&self, shares: Shares) -> Shares {
        let room = self
            .config
            .client_share_max_permille
            .saturating_sub(shares.of(Location::Client));
        let step = self.config.pushback_step_permille.min(room);
        let from_host = step.min(shares.of(Location::Host));
        shares
            .shift(Location::Host, Location::Client, from_host)
            .shift(Location::Nic, Location::Client, step - from_host)
    }
}

impl Policy for Adaptive {
    fn name(&self) -> &'static str {
        "naam-adaptive"
    }

    fn initial(&self) -> Decision {
        Decision {
            shares: Shares::HOST,
            pushback_credit_insn: None,
            reason: "start at host",
        }
    }

    fn decide(&mut self, _now: Nanos, view: &LoadView, current: &Decision) -> Option<Decision> {
        let config = self.config;
        // NIC samples are recorded as they come; decisions are taken on the host's own ticks
        // (the controller runs at the host), once per new host sample.
        self.nic.observe(view.nic.as_ref(), &config);
        if !self.host.observe(view.host.as_ref(), &config) {
            return None;
        }
        self.severe = view
            .host
            .is_some_and(|s| s.queue_delay_ns > config.severe_delay_ns);
        if let Some(n) = self.samples_since_return.as_mut() {
            *n += 1;
        }
        if self
            .samples_since_return
            .is_some_and(|n| n > config.relapse_window_samples)
        {
            // The last return held for a whole relapse window: the wait is back to its base.
            self.backoff = 1;
        }
        let shares = current.shares;
        let host_hot = self.host.congested >= config.congested_samples;
        let nic_hot = self.nic.congested >= config.congested_samples;
        let both_hot = self.host.congested.min(self.nic.congested) >= config.pushback_samples;
        let (next, reason) = if host_hot && !nic_hot && shares.of(Location::Host) > 0 {
            self.note_congestion();
            (
                self.shed(shares, Location::Host, Location::Nic),
                "host congested: shift to NIC",
            )
        } else if both_hot {
            self.note_congestion();
            (
                self.push_back(shares),
                "host and NIC congested: push back to clients",
            )
        } else if host_hot && nic_hot {
            // Both congested, not yet for long enough to push back: wait.
            return None;
        } else if nic_hot && shares.of(Location::Nic) > 0 {
            (
                self.shed(shares, Location::Nic, Location::Host),
                "NIC congested: shift to host",
            )
        } else {
            self.give_back(shares)?
        };
        (next != shares).then_some(Decision {
            shares: next,
            pushback_credit_insn: None,
            reason,
        })
    }
}

// ---- Kayak ------------------------------------------------------------------------------------

/// Kayak-style (NSDI'21): gradient ascent of throughput with respect to the percentage of requests
/// run as RPCs at the server; the rest run at the client with one-sided reads. Each epoch the
/// percentage moves 1–5 points (in proportion to the relative throughput change) in the direction
/// that last improved throughput, reversing when throughput fell; kept in [0, 100]; changes
/// smaller than a dead band (2 %) are treated as noise (our addition, see
/// [`KayakConfig::dead_band_permille`]). Runs at each client. Kayak's second loop (request window from the SLO) belongs to closed-loop load and is not
/// modelled under our open-loop load.
#[derive(Debug, Clone)]
pub struct Kayak {
    config: KayakConfig,
    rpc_percent: u32,
    direction_up: bool,
    epoch_completions: u64,
    epoch_ns: u64,
    epoch_len: u32,
    last_throughput: Option<f64>,
}

impl Kayak {
    /// A policy with `config`.
    pub fn new(config: KayakConfig) -> Kayak {
        Kayak {
            config,
            rpc_percent: config.start_rpc_percent.min(100),
            direction_up: false,
            epoch_completions: 0,
            epoch_ns: 0,
            epoch_len: 0,
            last_throughput: None,
        }
    }

    fn shares(&self) -> Shares {
        let host = (self.rpc_percent * 10) as u16;
        Shares::new(host, 0, BUCKETS - host).unwrap_or(Shares::HOST)
    }

    fn step_points(&self, relative_change: f64) -> u32 {
        let scaled = (relative_change.abs() * 100.0).round() as u32;
        scaled.clamp(self.config.step_min_points, self.config.step_max_points)
    }
}

impl Policy for Kayak {
    fn name(&self) -> &'static str {
        "kayak"
    }

    fn initial(&self) -> Decision {
        Decision {
            shares: self.shares(),
            pushback_credit_insn: None,
            reason: "start",
        }
    }

    fn decide(&mut self, _now: Nanos, view: &LoadView, _current: &Decision) -> Option<Decision> {
        let sample: &ClientSample = view.client.as_ref()?;
        self.epoch_completions += sample.server_completions + sample.local_completions;
        self.epoch_ns += sample.period_ns;
        self.epoch_len += 1;
        if self.epoch_len < self.config.epoch_samples || self.epoch_ns == 0 {
            return None;
        }
        let throughput = self.epoch_completions as f64 * 1e9 / self.epoch_ns as f64;
        (self.epoch_completions, self.epoch_ns, self.epoch_len) = (0, 0, 0);
        let first_epoch = self.last_throughput.is_none();
        let change = match self.last_throughput {
            Some(last) if last > 0.0 => (throughput - last) / last,
            _ => 0.0,
        };
        self.last_throughput = Some(throughput);
        if !first_epoch && change.abs() * 1000.0 < f64::from(self.config.dead_band_permille) {
            return None;
        }
        if change < 0.0 {
            self.direction_up = !self.direction_up;
        }
        let step = self.step_points(change);
        self.rpc_percent = if self.direction_up {
            (self.rpc_percent + step).min(100)
        } else {
            self.rpc_percent.saturating_sub(step)
        };
        let reason = if self.direction_up {
            "throughput gradient: more RPC"
        } else {
            "throughput gradient: more client-side"
        };
        Some(Decision {
            shares: self.shares(),
            pushback_credit_insn: None,
            reason,
        })
    }
}

// ---- Cell -------------------------------------------------------------------------------------

/// Cell-style (ATC'16): each client estimates the cost of server-side execution (the observed
/// latency of server-run requests) and of client-side execution (the observed latency of local
/// runs, or reads per request × one-sided read round trip before any local run) and sends requests
/// to the cheaper side, with a hysteresis margin and a small probe share on the other side.
#[derive(Debug, Clone)]
pub struct CellCost {
    config: CellConfig,
    server_cost_ns: Option<u64>,
    local_cost_ns: Option<u64>,
    local_preferred: bool,
}

impl CellCost {
    /// A policy with `config`.
    pub fn new(config: CellConfig) -> CellCost {
        CellCost {
            config,
            server_cost_ns: None,
            local_cost_ns: None,
            local_preferred: false,
        }
    }

    fn ewma(&self, old: Option<u64>, new: u64) -> Option<u64> {
        if new == 0 {
            return old;
        }
        let w = self.config.ewma_weight_permille;
        Some(old.map_or(new, |o| (o * (1000 - w) + new * w) / 1000))
    }

    fn shares(&self) -> Shares {
        let probe = self.config.probe_permille;
        if self.local_preferred {
            Shares::new(probe, 0, BUCKETS - probe).unwrap_or(Shares::CLIENT)
        } else {
            Shares::new(BUCKETS - probe, 0, probe).unwrap_or(Shares::HOST)
        }
    }
}

impl Policy for CellCost {
    fn name(&self) -> &'static str {
        "cell"
    }

    fn initial(&self) -> Decision {
        Decision {
            shares: self.shares(),
            pushback_credit_insn: None,
            reason: "start server-side",
        }
    }

    fn decide(&mut self, _now: Nanos, view: &LoadView, _current: &Decision) -> Option<Decision> {
        let s = view.client.as_ref()?;
        self.server_cost_ns = self.ewma(self.server_cost_ns, s.server_latency_ns_mean);
        let estimate = s.read_rtt_ns_mean.saturating_mul(s.reads_per_request_milli) / 1000;
        let local = if s.local_latency_ns_mean > 0 {
            s.local_latency_ns_mean
        } else {
            estimate
        };
        self.local_cost_ns = self.ewma(self.local_cost_ns, local);
        let (server, local) = (self.server_cost_ns?, self.local_cost_ns?);
        let m = self.config.margin_permille;
        let before = self.local_preferred;
        if !before && local * 1000 < server * (1000 - m) {
            self.local_preferred = true;
        } else if before && server * 1000 < local * (1000 - m) {
            self.local_preferred = false;
        }
        let reason = if self.local_preferred {
            "client-side cheaper"
        } else {
            "server-side cheaper"
        };
        (before != self.local_preferred).then(|| Decision {
            shares: self.shares(),
            pushback_credit_insn: None,
            reason,
        })
    }
}

// ---- Splinter ---------------------------------------------------------------------------------

/// Splinter-style pushback: placement stays at the host, but while the host shows a backlog or
/// falls behind, invocations that exceed their compute credit are stopped at their next step and
/// pushed back to the client with their continuation, which the client finishes with one-sided
/// reads.
#[derive(Debug, Clone)]
pub struct Splinter {
    config: SplinterConfig,
}

impl Splinter {
    /// A policy with `config`.
    pub fn new(config: SplinterConfig) -> Splinter {
        Splinter { config }
    }

    fn credit_insn(&self) -> u64 {
        (self.config.credit_ns / self.config.insn_ns.max(1)).max(1)
    }
}

impl Policy for Splinter {
    fn name(&self) -> &'static str {
        "splinter"
    }

    fn initial(&self) -> Decision {
        Decision {
            shares: Shares::HOST,
            pushback_credit_insn: None,
            reason: "start at host",
        }
    }

    fn decide(&mut self, _now: Nanos, view: &LoadView, current: &Decision) -> Option<Decision> {
        let host = view.host.as_ref()?;
        let overloaded =
            host.queue_len >= self.config.backlog_min || host.queue_delay_ns > self.config.lag_ns;
        let credit = overloaded.then(|| self.credit_insn());
        let reason = if overloaded {
            "backlog: push back over-credit invocations"
        } else {
            "no backlog"
        };
        (credit != current.pushback_credit_insn).then_some(Decision {
            shares: Shares::HOST,
            pushback_credit_insn: credit,
            reason,
        })
    }
}
