//! Statistics done right: percentiles from merged histograms, with confidence intervals.
//!
//! - **Within a point** (many samples): a distribution-free confidence interval for the
//!   q-quantile from order statistics. With n samples sorted, the ranks
//!   `j = ⌊nq − z·√(nq(1−q))⌋` and `k = ⌈nq + z·√(nq(1−q))⌉ + 1` bound the quantile with
//!   confidence ≈ 1 − α (normal approximation of the binomial). Source: J.-Y. Le Boudec,
//!   *Performance Evaluation of Computer and Communication Systems*, EPFL Press 2010,
//!   Theorem 2.1 and §2.2.2; Lancet (Kogias et al., USENIX ATC'19) reports tail latency the
//!   same way. Samples are independent only approximately (queueing correlates neighbours),
//!   so the interval is optimistic under heavy load; the spread across repetitions is the
//!   check for that.
//! - **Across repetitions** (few values): the exact distribution-free interval for the median
//!   from the Binomial(n, ½) law (Le Boudec Theorem 2.1, Table A.1), as Maricq et al.
//!   (OSDI'18, "Taming performance variability") recommend for testbed runs whose
//!   distributions are not normal. With fewer than 6 repetitions no interval reaches 95 %;
//!   we then report [min, max] and say which confidence it has (`1 − 2⁻ⁿ⁺¹`).

use hdrhistogram::Histogram;

/// Confidence level of every interval we report.
pub const CONFIDENCE: f64 = 0.95;
/// Standard normal quantile for a two-sided 95 % interval (Φ⁻¹(0.975)).
pub const Z_95: f64 = 1.959_963_984_540_054;

/// The value at 1-based `rank` of the samples in `h` (HdrHistogram's highest equivalent
/// value of the bucket holding that sample, as `value_at_quantile` reports). `None` if empty.
pub fn value_at_rank(h: &Histogram<u64>, rank: u64) -> Option<u64> {
    if h.is_empty() {
        return None;
    }
    let rank = rank.clamp(1, h.len());
    let mut seen = 0u64;
    for v in h.iter_recorded() {
        seen += v.count_since_last_iteration();
        if seen >= rank {
            return Some(h.highest_equivalent(v.value_iterated_to()));
        }
    }
    Some(h.highest_equivalent(h.max()))
}

/// A two-sided 95 % confidence interval for the `q`-quantile of the samples in `h`
/// (order statistics, see the module docs). Clamped to the smallest and largest sample when
/// there are too few samples for the ranks to exist. `None` if empty.
pub fn quantile_ci(h: &Histogram<u64>, q: f64) -> Option<(u64, u64)> {
    if h.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let n = h.len() as f64;
    let half_width = Z_95 * (n * q * (1.0 - q)).sqrt();
    let j = (n * q - half_width).floor().max(1.0) as u64;
    let k = ((n * q + half_width).ceil() + 1.0).min(n) as u64;
    Some((value_at_rank(h, j)?, value_at_rank(h, k)?))
}

/// Median of repetitions with its distribution-free confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedianCi {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
    /// Confidence the interval actually has (≥ [`CONFIDENCE`] from 6 repetitions on).
    pub level: f64,
}

/// The median of `values` and the widest-confidence order-statistic interval not exceeding
/// what the count allows (see the module docs). `None` when there are no finite values.
pub fn median_ci(values: &[f64]) -> Option<MedianCi> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let alpha_half = (1.0 - CONFIDENCE) / 2.0;
    // Largest j with P(B ≤ j − 1) ≤ α/2, B ~ Binomial(n, ½); j = 1 means [min, max].
    let mut j = 1;
    while j < n.div_ceil(2) && binomial_half_cdf(n, j) <= alpha_half {
        j += 1;
    }
    let level = 1.0 - 2.0 * binomial_half_cdf(n, j - 1);
    Some(MedianCi {
        median,
        lo: v[j - 1],
        hi: v[n - j],
        level,
    })
}

/// P(B ≤ k) for B ~ Binomial(n, ½).
fn binomial_half_cdf(n: usize, k: usize) -> f64 {
    let mut term = 0.5f64.powi(n as i32);
    let mut sum = term;
    for i in 1..=k.min(n) {
        term *= (n + 1 - i) as f64 / i as f64;
        sum += term;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(n: u64) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new(3).expect("3 sigfigs");
        for v in 1..=n {
            h.record(v).expect("in range");
        }
        h
    }

    #[test]
    fn ranks_walk_the_cumulative_counts() {
        let h = uniform(100);
        assert_eq!(value_at_rank(&h, 1), Some(1));
        assert_eq!(value_at_rank(&h, 50), Some(50));
        assert_eq!(value_at_rank(&h, 100), Some(100));
        assert_eq!(value_at_rank(&h, 1000), Some(100));
        assert_eq!(
            value_at_rank(&Histogram::<u64>::new(3).expect("h"), 1),
            None
        );
    }

    #[test]
    fn quantile_ci_matches_le_boudec_ranks() {
        // n = 1000, q = 0.5: half width 1.96·√250 = 30.99 → j = ⌊469.01⌋ = 469, k = ⌈530.99⌉+1 = 532.
        let h = uniform(1000);
        assert_eq!(quantile_ci(&h, 0.5), Some((469, 532)));
        // q = 0.99: half width 1.96·√9.9 = 6.17 → j = ⌊983.83⌋ = 983, k = ⌈996.17⌉+1 = 998.
        assert_eq!(quantile_ci(&h, 0.99), Some((983, 998)));
        // n = 10, q = 0.99: half width 1.96·√0.099 = 0.62 → j = ⌊9.28⌋ = 9, k = ⌈10.52⌉+1 = 12,
        // beyond the 10 samples: the interval is clamped to the largest.
        let (lo, hi) = quantile_ci(&uniform(10), 0.99).expect("ci");
        assert_eq!((lo, hi), (9, 10), "few samples clamp to the largest");
    }

    #[test]
    fn median_ci_levels_follow_the_binomial() {
        let five = median_ci(&[5.0, 1.0, 4.0, 2.0, 3.0]).expect("ci");
        assert_eq!((five.median, five.lo, five.hi), (3.0, 1.0, 5.0));
        assert!(
            (five.level - (1.0 - 2.0 / 32.0)).abs() < 1e-12,
            "{}",
            five.level
        );
        // n = 10: P(B ≤ 1) = 11/1024 ≤ 0.025 < P(B ≤ 2) = 56/1024 → j = 2, level = 1 − 22/1024.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let ci = median_ci(&ten).expect("ci");
        assert_eq!((ci.median, ci.lo, ci.hi), (5.5, 2.0, 9.0));
        assert!((ci.level - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
        let one = median_ci(&[7.0]).expect("ci");
        assert_eq!((one.lo, one.hi, one.level), (7.0, 7.0, 0.0));
        assert!(median_ci(&[f64::NAN]).is_none());
    }
}
