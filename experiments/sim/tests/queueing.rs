//! The simulator's clock, random source and core pool, configured as textbook queues, against
//! the closed forms of their mean waiting time. Seeded: `NAAM_SEED` replays other draws.

use naam_sim::cores::HogSlices;
use naam_sim::queueing::{
    QueueConfig, Service, erlang_c, hog_wait_ns_mean_low_load, md1_wait_ns_mean, mmc_wait_ns_mean,
    simulate,
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
        hog: None,
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
fn a_lightly_loaded_core_shared_with_a_hog_waits_for_the_rest_of_its_slice() {
    // One core, S = 2 µs every 1 ms on average (ρ = 0.002), a hog holding the core 1 ms in
    // every 2 ms (the EEVDF base slice of a 2-CPU machine is 1.5 ms; any slice gives the law):
    // W_q = H² / (2·(H + W)) = 250 µs, against ρ·S / (2·(1 − ρ)) = 2 ns without the hog. The terms
    // the closed form leaves out are λ·S = 0.2 % of it.
    let (slice_ns, service_ns, interarrival_ns) = (1_000_000, 2_000, 1_000_000.0);
    let mut queue = config(interarrival_ns, Service::Fixed { service_ns }, 1);
    queue.hog = Some(HogSlices::from_share(0, u64::MAX, slice_ns, 0.5));
    let slices = queue.hog.unwrap();
    assert_eq!((slices.hog_ns, slices.worker_ns), (slice_ns, slice_ns));
    let closed_form = hog_wait_ns_mean_low_load(slice_ns as f64, slice_ns as f64);
    assert_eq!(closed_form, 250_000.0);
    check(queue, closed_form);
}

#[test]
fn a_hog_leaves_too_little_of_the_core_for_the_load() {
    // ρ = 0.6 of the core, 0.5 of it left: no steady state.
    let mut queue = config(1000.0, Service::Fixed { service_ns: 600 }, 1);
    queue.hog = Some(HogSlices::from_share(0, u64::MAX, 1_000_000, 0.5));
    assert!(simulate(&queue).is_err());
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
