//! Textbook queues built from the simulator's parts — Poisson arrivals from [`SimRng`], events
//! from [`EventQueue`], service on a [`CorePool`] — and the closed forms they must match. They
//! are the simulator's own check that its clock, its random source and its core model are right:
//! the mean waiting time of M/D/1 (Pollaczek–Khinchine) and of M/M/c (Erlang C), and of a
//! lightly loaded core time-shared with a hog in scheduler slices ([`HogSlices`]).

use std::collections::VecDeque;

use crate::cores::{CoreCountError, CorePool, HogSlices};
use crate::des::EventQueue;
use crate::rng::SimRng;

/// Most customers one queue run may serve (bounds its events and time).
pub const CUSTOMERS_MAX: u64 = 10_000_000;

/// How service times are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Service {
    /// Every customer takes exactly this long (the "D" of M/D/c).
    Fixed {
        /// Service time.
        service_ns: u64,
    },
    /// Exponential with this mean (the second "M" of M/M/c).
    Exponential {
        /// Mean service time.
        mean_ns: f64,
    },
}

impl Service {
    fn mean_ns(self) -> f64 {
        match self {
            Service::Fixed { service_ns } => service_ns as f64,
            Service::Exponential { mean_ns } => mean_ns,
        }
    }

    fn draw_ns(self, rng: &mut SimRng) -> u64 {
        match self {
            Service::Fixed { service_ns } => service_ns,
            Service::Exponential { mean_ns } => rng.exp_ns(mean_ns),
        }
    }
}

/// One queue to simulate: Poisson arrivals, `cores` servers, FIFO.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueConfig {
    /// Mean time between arrivals.
    pub interarrival_ns_mean: f64,
    /// Service times.
    pub service: Service,
    /// Servers.
    pub cores: usize,
    /// Customers served before measuring (the queue starts empty).
    pub warmup_customers: u64,
    /// Customers measured.
    pub measured_customers: u64,
    /// Seed of the arrivals and service times.
    pub seed: u64,
    /// A hog time-sharing every core in slices, if any.
    pub hog: Option<HogSlices>,
}

/// A bad queue configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueueError {
    /// The core count.
    #[error(transparent)]
    Cores(#[from] CoreCountError),
    /// Utilisation of the cores' share left by the hog of 1 or more: no steady state.
    #[error("utilisation {rho:.3} >= 1: the queue has no steady state")]
    Unstable {
        /// λ·S / (c · the share of the cores the hog leaves).
        rho: f64,
    },
    /// More customers than [`CUSTOMERS_MAX`].
    #[error("{customers} customers > {CUSTOMERS_MAX}")]
    TooLong {
        /// Warm-up plus measured customers.
        customers: u64,
    },
}

impl QueueConfig {
    /// Utilisation ρ = λ·S / c.
    pub fn utilisation(&self) -> f64 {
        self.service.mean_ns() / self.interarrival_ns_mean / self.cores as f64
    }

    /// Utilisation of what the hog leaves of the cores (its share taken out over all time, as
    /// the hog of a queue runs from its start on).
    fn utilisation_left(&self) -> f64 {
        let left = self.hog.map_or(1.0, |h| {
            h.worker_ns as f64 / (h.hog_ns + h.worker_ns) as f64
        });
        self.utilisation() / left
    }
}

/// What a queue run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueResult {
    /// Mean time from arrival to service start over the measured customers.
    pub wait_ns_mean: f64,
    /// Customers measured.
    pub customers: u64,
    /// Events the run processed.
    pub events: u64,
}

#[derive(Debug, Clone, Copy)]
enum QueueEvent {
    Arrival,
    /// A core is free: a departure, or the end of a hog's slice.
    Free,
}

/// Simulates `config`; the mean waiting time of its measured customers.
pub fn simulate(config: &QueueConfig) -> Result<QueueResult, QueueError> {
    let rho = config.utilisation_left();
    if rho >= 1.0 {
        return Err(QueueError::Unstable { rho });
    }
    let customers = config.warmup_customers + config.measured_customers;
    if customers > CUSTOMERS_MAX {
        return Err(QueueError::TooLong { customers });
    }
    let mut pool = CorePool::new(config.cores)?;
    if let Some(hog) = config.hog {
        pool.set_hog(hog);
    }
    let mut woken_at_ns = 0;
    let mut rng = SimRng::new(config.seed);
    let mut events = EventQueue::new();
    let mut waiting: VecDeque<u64> = VecDeque::new();
    let (mut arrived, mut started, mut wait_sum_ns) = (0u64, 0u64, 0u128);
    events.schedule_in(rng.exp_ns(config.interarrival_ns_mean), QueueEvent::Arrival);
    while started < customers {
        let Some((now, event)) = events.pop() else {
            break;
        };
        if let QueueEvent::Arrival = event {
            waiting.push_back(now);
            arrived += 1;
            if arrived < customers {
                events.schedule_in(rng.exp_ns(config.interarrival_ns_mean), QueueEvent::Arrival);
            }
        }
        while let (true, Some(&arrival)) = (pool.has_free_core(now), waiting.front()) {
            waiting.pop_front();
            if started >= config.warmup_customers {
                wait_sum_ns += u128::from(now - arrival);
            }
            started += 1;
            let end = pool.occupy(now, config.service.draw_ns(&mut rng));
            events.schedule_at(end, QueueEvent::Free);
        }
        if let Some(end) = pool.held_until(now).filter(|&end| end != woken_at_ns)
            && !waiting.is_empty()
        {
            woken_at_ns = end;
            events.schedule_at(end, QueueEvent::Free);
        }
    }
    let measured = started.saturating_sub(config.warmup_customers).max(1);
    Ok(QueueResult {
        wait_ns_mean: wait_sum_ns as f64 / measured as f64,
        customers: measured,
        events: events.popped(),
    })
}

/// Mean waiting time of M/D/1 (Pollaczek–Khinchine with zero service variance):
/// `W = ρ·S / (2·(1 − ρ))`.
pub fn md1_wait_ns_mean(interarrival_ns_mean: f64, service_ns: f64) -> f64 {
    let rho = service_ns / interarrival_ns_mean;
    rho * service_ns / (2.0 * (1.0 - rho))
}

/// Mean waiting time of a core shared with a hog (`hog_ns` held, then `worker_ns` free, in turn)
/// as the load goes to zero: an arrival finds the hog's slice with probability `H / (H + W)` and
/// waits for the rest of it, on average `H / 2`: `W_q = H² / (2·(H + W))`. At load λ with
/// service S the next terms add a fraction `λ·S` (arrivals earlier in the same slice) and less.
pub fn hog_wait_ns_mean_low_load(hog_ns: f64, worker_ns: f64) -> f64 {
    hog_ns * hog_ns / (2.0 * (hog_ns + worker_ns))
}

/// Mean waiting time of M/M/c: `W = C(c, a) / (c·μ − λ)` with offered load `a = λ/μ` and
/// Erlang's C formula for the probability of waiting.
pub fn mmc_wait_ns_mean(interarrival_ns_mean: f64, service_ns_mean: f64, cores: usize) -> f64 {
    let lambda = 1.0 / interarrival_ns_mean;
    let mu = 1.0 / service_ns_mean;
    let c = cores as f64;
    erlang_c(cores, lambda / mu) / (c * mu - lambda)
}

/// Erlang's C formula: the probability that an arrival waits in M/M/c with offered load `a`.
pub fn erlang_c(cores: usize, a: f64) -> f64 {
    let c = cores as f64;
    // Terms a^k / k!, summed for k < c, built up without overflow.
    let mut term = 1.0;
    let mut below = 0.0;
    for k in 0..cores {
        below += term;
        term *= a / (k as f64 + 1.0);
    }
    let top = term * c / (c - a);
    top / (below + top)
}
