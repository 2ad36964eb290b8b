//! Frequency tables and operation mixes: the shape YCSB produces, within sampling error.
//!
//! Tolerances are binomial: a share `p` estimated from `n` independent draws has standard error
//! `sqrt(p(1 − p)/n)`. Checks allow `SIGMAS` standard errors (a false alarm about once in 10^6
//! per check for a truly correct generator; every seed is fixed, so a run is deterministic).
//! Top-k shares also carry selection noise (the top keys are chosen from the same sample), which
//! is of the same order; they get twice the allowance.

use std::path::PathBuf;

use naam_ycsb::zipfian::{SCRAMBLED_ZETAN, ZIPFIAN_CONSTANT, scramble};
use naam_ycsb::{
    Distribution, OpKind, OperationGenerator, RunConfig, Workload, WorkloadSpec, zeta_static,
};

/// Standard errors allowed by a sampling check.
const SIGMAS: f64 = 5.0;
/// Records and draws of the frequency tables.
const RECORDS: u64 = 1_000_000;
const DRAWS: u64 = 1_000_000;

/// One row of `frequency_1000000.csv`, or the same table measured here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrequencyTable {
    hottest_keynum: u64,
    hottest_count: u64,
    top_1pct_count: u64,
    top_10pct_count: u64,
}

fn ycsb_table(distribution: Distribution) -> (u64, FrequencyTable) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/frequency_1000000.csv");
    let text = std::fs::read_to_string(&path).expect("frequency vectors");
    let row = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f[0] == distribution.name())
        .expect("a row for the distribution");
    let n = |i: usize| row[i].parse::<u64>().expect("integer field");
    assert_eq!((n(1), n(2)), (RECORDS, DRAWS), "vector parameters");
    let table = FrequencyTable {
        hottest_keynum: n(4),
        hottest_count: n(5),
        top_1pct_count: n(6),
        top_10pct_count: n(7),
    };
    (n(3), table)
}

fn generator(spec: WorkloadSpec, records: u64, operations: u64, seed: u64) -> OperationGenerator {
    let config = RunConfig {
        records,
        operations,
        spec,
    };
    OperationGenerator::new(&config, seed, 0, 1).expect("valid configuration")
}

fn measure(distribution: Distribution, seed: u64) -> FrequencyTable {
    let mut spec = Workload::C.spec();
    spec.request_distribution = distribution;
    let mut g = generator(spec, RECORDS, DRAWS, seed);
    let mut counts = vec![0u64; RECORDS as usize];
    for _ in 0..DRAWS {
        counts[g.next_keynum() as usize] += 1;
    }
    let hottest = (0..counts.len())
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .expect("keys");
    let hottest_count = counts[hottest];
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top = |fraction: usize| counts[..counts.len() / fraction].iter().sum();
    FrequencyTable {
        hottest_keynum: hottest as u64,
        hottest_count,
        top_1pct_count: top(100),
        top_10pct_count: top(10),
    }
}

fn assert_share_close(what: &str, ours: u64, theirs: u64, allowance: f64, seed: u64) {
    let (a, b) = (ours as f64 / DRAWS as f64, theirs as f64 / DRAWS as f64);
    let sigma = (b * (1.0 - b) / DRAWS as f64).sqrt();
    assert!(
        (a - b).abs() <= allowance * SIGMAS * sigma,
        "NAAM_SEED={seed}: {what} share {a:.5} vs YCSB's {b:.5} (allowed {:.5})",
        allowance * SIGMAS * sigma
    );
}

fn check_distribution(distribution: Distribution, other_seed: u64) {
    let (seed, ycsb) = ycsb_table(distribution);
    assert_eq!(
        measure(distribution, seed),
        ycsb,
        "NAAM_SEED={seed}: same seed, same table"
    );
    let ours = measure(distribution, other_seed);
    assert_eq!(
        ours.hottest_keynum, ycsb.hottest_keynum,
        "NAAM_SEED={other_seed}: hottest key"
    );
    assert_share_close(
        "hottest key",
        ours.hottest_count,
        ycsb.hottest_count,
        1.0,
        other_seed,
    );
    assert_share_close(
        "top 1 %",
        ours.top_1pct_count,
        ycsb.top_1pct_count,
        2.0,
        other_seed,
    );
    assert_share_close(
        "top 10 %",
        ours.top_10pct_count,
        ycsb.top_10pct_count,
        2.0,
        other_seed,
    );
}

#[test]
fn scrambled_zipfian_frequency_table_looks_like_ycsb() {
    check_distribution(Distribution::ScrambledZipfian, 77);
    // The hottest key is where rank 0 folds: fnvhash64(0) mod (records + 1).
    let (_, ycsb) = ycsb_table(Distribution::ScrambledZipfian);
    assert_eq!(
        ycsb.hottest_keynum as i64,
        scramble(0, 0, RECORDS as i64 + 1)
    );
}

#[test]
fn plain_zipfian_frequency_table_looks_like_ycsb() {
    check_distribution(Distribution::Zipfian, 78);
}

/// Rank 0 is drawn when `u·ζ(n) < 1`: its probability is exactly 1/ζ(n). The scrambled generator's
/// hottest key is rank 0 (plus a ~1e-6 share of folded tail ranks), so it carries ≈ 1/ζ(10^10).
#[test]
fn hottest_key_share_is_one_over_zeta() {
    let plain = 1.0 / zeta_static(0, RECORDS as i64, ZIPFIAN_CONSTANT, 0.0);
    let scrambled = 1.0 / SCRAMBLED_ZETAN;
    for (distribution, p, seed) in [
        (Distribution::Zipfian, plain, 5),
        (Distribution::ScrambledZipfian, scrambled, 6),
    ] {
        let table = measure(distribution, seed);
        let share = table.hottest_count as f64 / DRAWS as f64;
        let sigma = (p * (1.0 - p) / DRAWS as f64).sqrt();
        assert!(
            (share - p).abs() <= SIGMAS * sigma,
            "NAAM_SEED={seed}: {distribution} hottest share {share:.5}, expected {p:.5}"
        );
    }
}

/// Each operation kind's share equals its proportion within SIGMAS binomial standard errors.
#[test]
fn operation_mixes_a_to_f_are_exact_within_sampling_error() {
    const OPS: u64 = 200_000;
    for workload in Workload::ALL {
        let spec = workload.spec();
        let seed = 1000 + workload.name().as_bytes()[0] as u64;
        let mut g = generator(spec.clone(), 10_000, OPS, seed);
        let mut counts = [0u64; 5];
        for _ in 0..OPS {
            counts[kind_index(g.next_operation().kind)] += 1;
        }
        let total: f64 = spec.proportions.in_ycsb_order().iter().map(|e| e.2).sum();
        for (kind, _, weight) in spec.proportions.in_ycsb_order() {
            let p = weight / total;
            let share = counts[kind_index(kind)] as f64 / OPS as f64;
            let sigma = (p * (1.0 - p) / OPS as f64).sqrt();
            assert!(
                (share - p).abs() <= SIGMAS * sigma,
                "NAAM_SEED={seed}: workload {workload} {kind} share {share:.5}, expected {p:.5}"
            );
        }
    }
}

fn kind_index(kind: OpKind) -> usize {
    match kind {
        OpKind::Read => 0,
        OpKind::Update => 1,
        OpKind::Insert => 2,
        OpKind::Scan => 3,
        OpKind::ReadModifyWrite => 4,
    }
}
