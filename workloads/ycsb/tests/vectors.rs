//! Compares this crate with vectors printed by YCSB's own Java classes (see vectors/README.md).

use std::path::PathBuf;

use naam_ycsb::rng::JAVA_MAIN_THREAD_ID;
use naam_ycsb::zipfian::{SCRAMBLED_ITEM_COUNT, SCRAMBLED_ZETAN, ZIPFIAN_CONSTANT};
use naam_ycsb::{
    Distribution, Proportions, RunConfig, ScrambledZipfian, TlrRng, TraceParams, Workload, Zipfian,
    fnvhash64, key_name, write_operations_csv, zeta_static, zipfian_rank,
};

fn vector_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The data rows of a vector CSV, split on commas, with the header checked.
fn rows(name: &str, header: &str) -> Vec<Vec<String>> {
    let text = vector_file(name);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header), "{name}: header");
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    assert!(!rows.is_empty(), "{name}: no rows");
    rows
}

fn int(field: &str) -> i64 {
    field.parse().unwrap_or_else(|e| panic!("{field:?}: {e}"))
}

fn bits(field: &str) -> f64 {
    f64::from_bits(u64::from_str_radix(field, 16).unwrap_or_else(|e| panic!("{field:?}: {e}")))
}

#[test]
fn fnvhash64_matches_ycsb() {
    for row in rows("fnv.csv", "input,fnvhash64") {
        assert_eq!(
            fnvhash64(int(&row[0])),
            int(&row[1]),
            "fnvhash64({})",
            row[0]
        );
    }
}

#[test]
fn key_names_match_ycsb() {
    for row in rows("keynames.csv", "keynum,zeropadding,ordered,key") {
        let padding: usize = row[1].parse().expect("padding");
        let ordered: bool = row[2].parse().expect("ordered flag");
        assert_eq!(
            key_name(int(&row[0]), padding, ordered),
            row[3],
            "row {row:?}"
        );
    }
}

#[test]
fn zeta_matches_ycsb_bit_for_bit() {
    for row in rows("zeta.csv", "n,theta,zeta_bits,zeta") {
        let theta: f64 = row[1].parse().expect("theta");
        let zeta = zeta_static(0, int(&row[0]), theta, 0.0);
        assert_eq!(
            zeta.to_bits(),
            bits(&row[2]).to_bits(),
            "zeta({}, {theta})",
            row[0]
        );
    }
}

/// u → rank over YCSB's 10^10 + 1 item space, then rank → key number for CoreWorkload's
/// `records + 1` key chooser: both the public formula and the generator agree with YCSB.
fn check_scrambled(records: i64) {
    let name = format!("scrambled_ranks_{records}.csv");
    let params = Zipfian::with_zetan(0, SCRAMBLED_ITEM_COUNT, ZIPFIAN_CONSTANT, SCRAMBLED_ZETAN);
    for row in rows(&name, "seed,u_bits,rank,keynum") {
        let seed = int(&row[0]) as u64;
        let u = bits(&row[1]);
        let mut rng = TlrRng::from_java_state(seed, JAVA_MAIN_THREAD_ID);
        assert_eq!(
            rng.next_double().to_bits(),
            u.to_bits(),
            "NAAM_SEED={seed}: u"
        );
        let rank = zipfian_rank(u, SCRAMBLED_ITEM_COUNT + 1, params.params());
        assert_eq!(rank, int(&row[2]), "NAAM_SEED={seed}: rank of u={u}");
        let mut generator = ScrambledZipfian::new(0, records).expect("valid span");
        let mut rng = TlrRng::from_java_state(seed, JAVA_MAIN_THREAD_ID);
        assert_eq!(
            generator.next_value(&mut rng),
            int(&row[3]),
            "NAAM_SEED={seed}: keynum"
        );
    }
}

#[test]
fn scrambled_zipfian_rank_and_keynum_match_ycsb_1000_records() {
    check_scrambled(1000);
}

#[test]
fn scrambled_zipfian_rank_and_keynum_match_ycsb_1000000_records() {
    check_scrambled(1_000_000);
}

fn check_plain(items: i64) {
    let name = format!("zipfian_ranks_{items}.csv");
    let mut generator = Zipfian::new(0, items - 1, ZIPFIAN_CONSTANT).expect("valid span");
    for row in rows(&name, "seed,u_bits,rank") {
        let seed = int(&row[0]) as u64;
        let u = bits(&row[1]);
        assert_eq!(
            zipfian_rank(u, items, generator.params()),
            int(&row[2]),
            "NAAM_SEED={seed}"
        );
        let mut rng = TlrRng::from_java_state(seed, JAVA_MAIN_THREAD_ID);
        assert_eq!(
            generator.next_value(&mut rng),
            int(&row[2]),
            "NAAM_SEED={seed}"
        );
    }
}

#[test]
fn plain_zipfian_rank_matches_ycsb_1000_items() {
    check_plain(1000);
}

#[test]
fn plain_zipfian_rank_matches_ycsb_1000000_items() {
    check_plain(1_000_000);
}

/// A whole transaction stream, byte for byte, as the trace CSV.
fn check_stream(file: &str, params: &TraceParams) {
    let mut out = Vec::new();
    write_operations_csv(&mut out, params).expect("valid parameters");
    let ours = String::from_utf8(out).expect("utf-8 trace");
    let theirs = vector_file(file);
    for (line, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        assert_eq!(
            a,
            b,
            "{file}: line {} differs (NAAM_SEED={})",
            line + 1,
            params.seed
        );
    }
    assert_eq!(
        ours.lines().count(),
        theirs.lines().count(),
        "{file}: line count"
    );
}

fn trace(
    records: u64,
    seed: u64,
    workload: Workload,
    distribution: Option<Distribution>,
) -> TraceParams {
    TraceParams {
        records,
        operations: 500,
        seed,
        workload,
        distribution,
    }
}

#[test]
fn workload_streams_a_to_f_match_ycsb() {
    for (file, workload) in [
        ("stream_a_scrambled-zipfian.csv", Workload::A),
        ("stream_b_scrambled-zipfian.csv", Workload::B),
        ("stream_c_scrambled-zipfian.csv", Workload::C),
        ("stream_d_latest.csv", Workload::D),
        ("stream_e_scrambled-zipfian.csv", Workload::E),
        ("stream_f_scrambled-zipfian.csv", Workload::F),
    ] {
        check_stream(file, &trace(1000, 42, workload, None));
    }
}

#[test]
fn workload_b_streams_under_each_distribution_match_ycsb() {
    for (file, distribution) in [
        ("stream_b_uniform.csv", Distribution::Uniform),
        ("stream_b_zipfian.csv", Distribution::Zipfian),
        ("stream_b_latest.csv", Distribution::Latest),
    ] {
        check_stream(file, &trace(1000, 7, Workload::B, Some(distribution)));
    }
}

#[test]
fn insert_streams_with_redraws_match_ycsb() {
    check_stream(
        "stream_e_small_scrambled-zipfian.csv",
        &trace(100, 9, Workload::E, None),
    );
    // 50 % read / 50 % insert, plain Zipfian: many draws above the last insert are redrawn.
    let mut spec = Workload::A.spec();
    spec.proportions = Proportions {
        read: 0.5,
        update: 0.0,
        insert: 0.5,
        scan: 0.0,
        read_modify_write: 0.0,
    };
    spec.request_distribution = Distribution::Zipfian;
    let config = RunConfig {
        records: 100,
        operations: 500,
        spec,
    };
    let mut generator = naam_ycsb::OperationGenerator::new(&config, 9, 0, 1).expect("valid");
    let theirs = vector_file("stream_insert_heavy_zipfian.csv");
    for (line, expected) in theirs.lines().skip(1).enumerate() {
        let op = generator.next_operation();
        let ours = format!(
            "{},{},{}",
            op.kind,
            op.keynum,
            key_name(op.keynum as i64, 1, false)
        );
        assert_eq!(ours, expected, "line {} (NAAM_SEED=9)", line + 2);
    }
}
