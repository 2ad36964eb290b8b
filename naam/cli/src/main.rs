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
            eprintln!("naam: {}", describe_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: many errors print their source in their own
/// message (`MICA table: {0}`), and anyhow's `{:#}` would print it again.
fn describe_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::other("disk full");
        let repeated = anyhow::Error::new(io).context("writing x: disk full");
        assert_eq!(describe_chain(&repeated), "writing x: disk full");
        let io = std::io::Error::other("disk full");
        let separate = anyhow::Error::new(io).context("writing x");
        assert_eq!(describe_chain(&separate), "writing x: disk full");
    }
}
