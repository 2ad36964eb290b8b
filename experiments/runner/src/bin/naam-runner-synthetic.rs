//! Runs one manifest's quick plan with the synthetic executor: the process the resume tests
//! kill by PID. Usage: `naam-runner-synthetic <manifest> <results-root> <pause-ms>`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use naam_plan::{Variant, load_manifest};
use naam_runner::synthetic::SyntheticExecutor;
use naam_runner::{Progress, RunOptions, run_plan};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, manifest, results, pause_ms] = args.as_slice() else {
        eprintln!("usage: naam-runner-synthetic <manifest> <results-root> <pause-ms>");
        return ExitCode::from(2);
    };
    let Ok(pause_ms) = pause_ms.parse::<u64>() else {
        eprintln!("pause-ms must be an integer, got {pause_ms:?}");
        return ExitCode::from(2);
    };
    let plan = match load_manifest(&PathBuf::from(manifest), Variant::Quick) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let options = RunOptions {
        results_root: PathBuf::from(results),
        repo_dir: PathBuf::from("."),
        manifest: manifest.clone(),
        fresh_suffix: None,
        progress: Progress::Hidden,
        stop: None,
    };
    let mut executor = SyntheticExecutor {
        pause_per_point: Duration::from_millis(pause_ms),
    };
    match run_plan(&plan, &mut executor, &options) {
        Ok(outcome) => {
            println!("{}", serde_json::to_string(&outcome).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
