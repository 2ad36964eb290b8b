//! `naam`: the command-line tool of the NAAM reproduction harness. It binds the libraries: plans
//! (naam-plan), the runner (naam-runner) over the point executors (naam-executors: the local
//! testbed and vm-cost; naam-ssh: real machines), analysis and figures (naam-analysis), the
//! workloads, and the testbed benchmark. `anyhow` lives only here.

mod cli;
mod cmd;
mod stop;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cmd::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("naam: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
