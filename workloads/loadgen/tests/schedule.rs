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
