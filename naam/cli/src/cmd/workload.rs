//! `naam workload ycsb|mica|btree`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{BtreeArgs, MicaArgs, WorkloadCommand, YcsbArgs};

/// Runs a workload command.
pub fn run(command: WorkloadCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkloadCommand::Ycsb(a) => ycsb(a),
        WorkloadCommand::Mica(a) => mica(a),
        WorkloadCommand::Btree(a) => btree(a),
    }
}

fn ycsb(a: YcsbArgs) -> anyhow::Result<ExitCode> {
    let workload: naam_ycsb::Workload = a
        .workload
        .parse()
        .with_context(|| format!("--workload {:?}: use a..f", a.workload))?;
    let distribution = a
        .distribution
        .as_deref()
        .map(str::parse::<naam_ycsb::Distribution>)
        .transpose()?;
    let params = naam_ycsb::TraceParams {
        records: a.records,
        operations: a.operations,
        seed: a.seed,
        workload,
        distribution,
    };
    eprintln!(
        "naam workload ycsb: distribution {} (seed {})",
        params.effective_distribution(),
        a.seed
    );
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    naam_ycsb::write_operations_csv(&mut out, &params)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn mica(a: MicaArgs) -> anyhow::Result<ExitCode> {
    let mut config = naam_mica::config::MicaConfig::new();
    if let Some(b) = a.buckets {
        config.buckets = b;
    }
    if let Some(s) = a.slots {
        config.slots = naam_mica::config::Slots::from_count(s)?;
    }
    if let Some(l) = a.log_bytes {
        config.log_bytes = l;
    }
    let via: naam_mica::trace::Via = a.via.parse()?;
    let file = File::open(&a.trace).with_context(|| format!("opening {}", a.trace.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let name = a.trace.display().to_string();
    naam_mica::trace::run_trace(&name, BufReader::new(file), config, via, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn btree(a: BtreeArgs) -> anyhow::Result<ExitCode> {
    let mut options = naam_btree::ReplayOptions::new();
    options.via = a.via.parse()?;
    if let Some(n) = a.node_bytes {
        options.node_bytes = n;
    }
    let load = File::open(&a.load).with_context(|| format!("opening {}", a.load.display()))?;
    let lookups =
        File::open(&a.lookups).with_context(|| format!("opening {}", a.lookups.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let (load_name, lookups_name) = (
        a.load.display().to_string(),
        a.lookups.display().to_string(),
    );
    naam_btree::run_replay(
        (&load_name, BufReader::new(load)),
        (&lookups_name, BufReader::new(lookups)),
        options,
        &mut out,
    )?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
