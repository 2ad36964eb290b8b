//! The `naam workload ycsb` trace: format, reproducibility, recorded distribution, bad input.

use std::io::{self, Write};

use naam_ycsb::generator::{KEYSPACE_MAX, RECORDS_MAX};
use naam_ycsb::{
    Distribution, OperationGenerator, RunConfig, TraceError, TraceParams, Workload, YcsbError,
    key_name, write_operations_csv,
};
use proptest::prelude::*;

fn params(seed: u64) -> TraceParams {
    TraceParams {
        records: 1000,
        operations: 2000,
        seed,
        workload: Workload::E,
        distribution: None,
    }
}

fn trace(p: &TraceParams) -> Result<String, TraceError> {
    let mut out = Vec::new();
    write_operations_csv(&mut out, p)?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

#[test]
fn trace_has_header_and_one_well_formed_line_per_operation() {
    let text = trace(&params(3)).expect("valid");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("op,keynum,key"));
    let mut count = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 3, "line {line:?}");
        assert!(
            ["read", "update", "insert", "scan", "rmw"].contains(&fields[0]),
            "{line}"
        );
        let keynum: i64 = fields[1].parse().expect("decimal keynum");
        assert_eq!(fields[2], key_name(keynum, 1, false), "{line}");
        count += 1;
    }
    assert_eq!(count, 2000);
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let a = trace(&params(11)).expect("valid");
    assert_eq!(
        a,
        trace(&params(11)).expect("valid"),
        "NAAM_SEED=11: not reproducible"
    );
    assert_ne!(
        a,
        trace(&params(12)).expect("valid"),
        "NAAM_SEED=12: seed ignored"
    );
}

#[test]
fn distribution_override_is_recorded_and_used() {
    let mut p = params(5);
    assert_eq!(p.effective_distribution(), Distribution::ScrambledZipfian);
    p.distribution = Some(Distribution::Uniform);
    assert_eq!(p.effective_distribution(), Distribution::Uniform);
    assert_eq!(
        p.generator().expect("valid").distribution(),
        Distribution::Uniform
    );
    assert_eq!(
        p.run_config().spec.request_distribution,
        Distribution::Uniform
    );
    assert_eq!(
        Workload::D.spec().request_distribution,
        Distribution::Latest
    );
}

#[test]
fn names_are_stable_in_text_and_serde() {
    for d in Distribution::ALL {
        assert_eq!(d.name().parse::<Distribution>(), Ok(d));
        assert_eq!(
            serde_json::to_string(&d).expect("serialise"),
            format!("\"{}\"", d.name())
        );
    }
    assert_eq!(
        "pareto".parse::<Distribution>(),
        Err(YcsbError::UnknownDistribution {
            name: "pareto".into()
        })
    );
    for w in Workload::ALL {
        assert_eq!(w.name().parse::<Workload>(), Ok(w));
        assert_eq!(
            format!("workload{}", w.name().to_uppercase()).parse::<Workload>(),
            Ok(w)
        );
    }
    assert!(matches!(
        "g".parse::<Workload>(),
        Err(YcsbError::UnknownWorkload { .. })
    ));
}

#[test]
fn bad_parameters_are_typed_errors() {
    let check = |p: TraceParams, expected: YcsbError| match trace(&p) {
        Err(TraceError::Config(e)) => assert_eq!(e, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    };
    check(
        TraceParams {
            records: 0,
            ..params(1)
        },
        YcsbError::RecordsOutOfRange {
            records: 0,
            min: 1,
            max: RECORDS_MAX,
        },
    );
    check(
        TraceParams {
            records: RECORDS_MAX + 1,
            ..params(1)
        },
        YcsbError::RecordsOutOfRange {
            records: RECORDS_MAX + 1,
            min: 1,
            max: RECORDS_MAX,
        },
    );
    // Workload D reserves 2 · 5 % of the operations for inserts.
    let records = RECORDS_MAX - 10;
    check(
        TraceParams {
            records,
            operations: 1000,
            workload: Workload::D,
            ..params(1)
        },
        YcsbError::KeyspaceTooLarge {
            keyspace: records + 100 + 1,
            max: KEYSPACE_MAX,
        },
    );
}

#[test]
fn bad_workload_specs_are_typed_errors() {
    let config = |f: fn(&mut naam_ycsb::WorkloadSpec)| {
        let mut spec = Workload::B.spec();
        f(&mut spec);
        RunConfig {
            records: 10,
            operations: 10,
            spec,
        }
    };
    let err = |c: RunConfig| OperationGenerator::new(&c, 1, 0, 1).expect_err("invalid");
    assert_eq!(
        err(config(|s| s.proportions.read = -1.0)),
        YcsbError::ProportionInvalid {
            name: "readproportion",
            value: -1.0
        }
    );
    assert_eq!(
        err(config(|s| {
            s.proportions.read = 0.0;
            s.proportions.update = 0.0;
        })),
        YcsbError::NoOperations
    );
    assert!(matches!(
        err(config(|s| s.scan_length_min = 0)),
        YcsbError::ScanLengthInvalid { .. }
    ));
    assert!(matches!(
        err(config(|s| s.field_count = 0)),
        YcsbError::FieldCountOutOfRange { .. }
    ));
    let good = config(|_| ());
    assert!(matches!(
        OperationGenerator::new(&good, 1, 2, 2),
        Err(YcsbError::ThreadOutOfRange {
            thread: 2,
            threads: 2,
            ..
        })
    ));
}

/// A sink that accepts `limit` bytes, then fails.
struct FailingWriter {
    limit: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() > self.limit {
            return Err(io::Error::other("disk full"));
        }
        self.limit -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_failures_report_lines_written() {
    let p = TraceParams {
        operations: 10_000,
        ..params(2)
    };
    let err = write_operations_csv(&mut FailingWriter { limit: 100_000 }, &p).expect_err("fails");
    match err {
        TraceError::Write { lines, .. } => assert!(lines > 0 && lines < 10_001, "lines {lines}"),
        other => panic!("expected a write error, got {other:?}"),
    }
}

fn any_distribution() -> impl Strategy<Value = Distribution> {
    prop::sample::select(Distribution::ALL.to_vec())
}

fn any_workload() -> impl Strategy<Value = Workload> {
    prop::sample::select(Workload::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any valid configuration yields only key numbers that exist (loaded or inserted by this
    /// thread), in-range fields and scan lengths, for every thread of a run.
    #[test]
    fn operations_stay_within_the_key_space(
        records in 1u64..500,
        seed in any::<u64>(),
        workload in any_workload(),
        distribution in any_distribution(),
        threads in 1u32..4,
    ) {
        let mut spec = workload.spec();
        spec.request_distribution = distribution;
        let config = RunConfig { records, operations: 300, spec: spec.clone() };
        for thread in 0..threads {
            let mut g = OperationGenerator::new(&config, seed, thread, threads).expect("valid");
            let mut last = records - 1;
            for _ in 0..300 {
                let op = g.next_operation();
                if op.kind == naam_ycsb::OpKind::Insert {
                    prop_assert!(op.keynum > last, "NAAM_SEED={seed}: insert below last");
                    prop_assert_eq!((op.keynum - records) % u64::from(threads), u64::from(thread));
                    last = op.keynum;
                } else {
                    prop_assert!(op.keynum <= last, "NAAM_SEED={seed}: {:?} beyond {last}", op);
                }
                if let Some(field) = op.field {
                    prop_assert!(field < spec.field_count);
                }
                if let Some(len) = op.scan_length {
                    prop_assert!((spec.scan_length_min..=spec.scan_length_max).contains(&len));
                }
            }
        }
    }
}
