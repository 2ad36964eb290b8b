//! The simulator's clock, random source and core pool, configured as textbook queues, against
//! the closed forms of their mean waiting time. Seeded: `NAAM_SEED` replays other draws.

use naam_sim::queueing::{
    QueueConfig, Service, erlang_c, md1_wait_ns_mean, mmc_wait_ns_mean, simulate,
};

/// Largest relative error of a simulated mean wait against its closed form.
const WAIT_ERROR_MAX: f64 = 0.05;
/// Customers measured per queue (after as many in warm-up / 10): enough for the error bound at
/// these utilisations, and under a second in a debug build.
const CUSTOMERS: u64 = 400_000;

fn seed() -> u64 {
    let seed = std::env::var("NAAM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x51_0001);
    eprintln!("NAAM_SEED={seed}");
    seed
}

fn check(config: QueueConfig, closed_form_ns: f64) {
    let customers = config.measured_customers;
    let result = simulate(&config).expect("a stable queue");
    let error = (result.wait_ns_mean - closed_form_ns).abs() / closed_form_ns;
    eprintln!(
        "rho {:.2} cores {}: simulated {:.1} ns, closed form {closed_form_ns:.1} ns, error {:.2} % \
         ({} events)",
        config.utilisation(),
        config.cores,
        result.wait_ns_mean,
        error * 100.0,
        result.events
    );
    assert_eq!(result.customers, customers);
    assert!(
        error <= WAIT_ERROR_MAX,
        "mean wait {:.1} ns vs {closed_form_ns:.1} ns: error {:.2} % > {:.0} %",
        result.wait_ns_mean,
        error * 100.0,
        WAIT_ERROR_MAX * 100.0
    );
}

fn config(interarrival_ns_mean: f64, service: Service, cores: usize) -> QueueConfig {
    QueueConfig {
        interarrival_ns_mean,
        service,
        cores,
        warmup_customers: CUSTOMERS / 10,
        measured_customers: CUSTOMERS,
        seed: seed(),
    }
}

#[test]
fn md1_matches_pollaczek_khinchine() {
    // ρ = 0.6: S = 600 ns, mean inter-arrival 1 µs.
    let service = Service::Fixed { service_ns: 600 };
    check(config(1000.0, service, 1), md1_wait_ns_mean(1000.0, 600.0));
}

#[test]
fn mm1_matches_its_closed_form() {
    // ρ = 0.5: W = ρ·S/(1 − ρ) = S.
    let service = Service::Exponential { mean_ns: 1000.0 };
    check(config(2000.0, service, 1), 1000.0);
}

#[test]
fn mm8_matches_erlang_c() {
    // Eight cores (a BlueField-2's) at ρ = 0.8: waits are rarer and more correlated than with
    // one core, so this queue measures more customers.
    let service = Service::Exponential { mean_ns: 4000.0 };
    let mut queue = config(625.0, service, 8);
    queue.measured_customers = 3 * CUSTOMERS;
    check(queue, mmc_wait_ns_mean(625.0, 4000.0, 8));
}

#[test]
fn erlang_c_matches_known_values() {
    // M/M/1: P(wait) = ρ. Two servers at a = 1: 1/3 (a²/2·2/(2−1) / (1 + 1 + 1)).
    assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
    assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
}

#[test]
fn unstable_queues_are_refused() {
    let service = Service::Fixed { service_ns: 1000 };
    assert!(simulate(&config(1000.0, service, 1)).is_err());
}

#[test]
fn a_seed_replays_its_run_and_another_differs() {
    let service = Service::Exponential { mean_ns: 500.0 };
    let mut a = config(1000.0, service, 1);
    a.measured_customers = 1000;
    a.warmup_customers = 0;
    let again = simulate(&a).unwrap();
    assert_eq!(simulate(&a).unwrap(), again);
    let other = QueueConfig {
        seed: a.seed ^ 1,
        ..a
    };
    assert_ne!(simulate(&other).unwrap(), again);
}
