//! Open-loop schedules: exact fixed-rate times, Poisson statistics, seeding.

use naam_loadgen::{LoadMode, Schedule};

#[test]
fn fixed_rate_times_do_not_drift() {
    let mut s = Schedule::new(&LoadMode::FixedRate { rate_per_s: 3.0 }).expect("open loop");
    let times: Vec<u64> = (0..1_000_000).map(|_| s.advance()).collect();
    assert_eq!(&times[..4], &[0, 333_333_333, 666_666_666, 1_000_000_000]);
    // Each time is k·10^9/3 ns, to within the 1 ns of f64 rounding, however far into the run.
    for (k, &t) in times.iter().enumerate() {
        let exact = k as u64 * 1_000_000_000 / 3;
        assert!(t.abs_diff(exact) <= 1, "request {k}: {t} vs {exact}");
    }
}

/// Exponential gaps: mean = 1/rate and standard deviation = mean, each within 5 standard
/// errors (the standard error of a mean of n exponential gaps is mean/sqrt(n); of the standard
/// deviation, about mean·sqrt(2/n) for the exponential's kurtosis of 9).
#[test]
fn poisson_gaps_are_exponential_with_the_offered_mean() {
    const N: usize = 200_000;
    let rate_per_s = 50_000.0;
    for seed in [1u64, 2, 3] {
        let mut s = Schedule::new(&LoadMode::Poisson { rate_per_s, seed }).expect("open loop");
        let times: Vec<u64> = (0..=N).map(|_| s.advance()).collect();
        let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / N as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / N as f64).sqrt();
        let expected = 1e9 / rate_per_s;
        let se_mean = expected / (N as f64).sqrt();
        assert!(
            (mean - expected).abs() < 5.0 * se_mean,
            "NAAM_SEED={seed}: mean gap {mean}"
        );
        let se_sd = expected * (2.0 / N as f64).sqrt();
        assert!(
            (sd - expected).abs() < 5.0 * se_sd,
            "NAAM_SEED={seed}: gap sd {sd}"
        );
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "NAAM_SEED={seed}: not monotonic"
        );
    }
}

#[test]
fn poisson_schedules_are_seeded() {
    let run = |seed| {
        let mut s = Schedule::new(&LoadMode::Poisson {
            rate_per_s: 1000.0,
            seed,
        })
        .expect("open");
        (0..100).map(|_| s.advance()).collect::<Vec<_>>()
    };
    assert_eq!(run(4), run(4), "NAAM_SEED=4: not reproducible");
    assert_ne!(run(4), run(5), "NAAM_SEED=5: seed ignored");
    assert!(Schedule::new(&LoadMode::ClosedLoop { window: 1 }).is_none());
}

#[test]
fn a_fixed_rate_step_changes_the_gap_exactly_at_the_step() {
    use naam_loadgen::RateStep;
    // 1000 req/s, doubled at 10 ms: 10 requests in [0, 10 ms), then one every 0.5 ms.
    let steps = [RateStep {
        at_ns: 10_000_000,
        factor: 2.0,
    }];
    let mut s = Schedule::with_steps(&LoadMode::FixedRate { rate_per_s: 1000.0 }, &steps)
        .expect("open loop");
    let times: Vec<u64> = (0..14).map(|_| s.advance()).collect();
    assert_eq!(
        &times[..10],
        &(0..10).map(|i| i * 1_000_000).collect::<Vec<_>>()[..]
    );
    assert_eq!(
        &times[10..],
        &[10_000_000, 10_500_000, 11_000_000, 11_500_000]
    );
}

#[test]
fn a_poisson_step_changes_the_rate_seen_in_each_window() {
    use naam_loadgen::RateStep;
    let seed = 0xfeed;
    let steps = [
        RateStep {
            at_ns: 1_000_000_000,
            factor: 3.0,
        },
        RateStep {
            at_ns: 2_000_000_000,
            factor: 0.5,
        },
    ];
    let mut s = Schedule::with_steps(
        &LoadMode::Poisson {
            rate_per_s: 10_000.0,
            seed,
        },
        &steps,
    )
    .expect("open loop");
    let mut counts = [0u64; 3];
    loop {
        let t = s.advance();
        if t >= 3_000_000_000 {
            break;
        }
        counts[(t / 1_000_000_000) as usize] += 1;
    }
    // Expected 10 000, 30 000 and 5 000; Poisson counts stay within 5 standard deviations.
    for (count, expected) in counts.iter().zip([10_000.0f64, 30_000.0, 5_000.0]) {
        let sd = expected.sqrt();
        assert!(
            (*count as f64 - expected).abs() < 5.0 * sd,
            "NAAM_SEED={seed:#x} counts {counts:?}"
        );
    }
}

#[test]
fn rate_steps_are_validated() {
    use naam_loadgen::RateStep;
    use naam_loadgen::schedule::validate_steps;
    let unordered = [
        RateStep {
            at_ns: 5,
            factor: 2.0,
        },
        RateStep {
            at_ns: 5,
            factor: 1.0,
        },
    ];
    assert!(
        validate_steps(&unordered)
            .unwrap_err()
            .to_string()
            .contains("times must increase")
    );
    assert!(
        validate_steps(&[RateStep {
            at_ns: 1,
            factor: 0.0
        }])
        .is_err()
    );
}
